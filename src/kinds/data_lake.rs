//! Data Lake kinds (arm-contract §5 Gen2, §7 Gen1): `data_lake_store` (Gen1,
//! `Microsoft.DataLakeStore/accounts`, retired by Azure in 2024: kept for the local cloud and
//! the tutorial as written) and `data_lake_folder` (a folder with POSIX ACL entries, on a
//! Gen1 store through WebHDFS or on a Gen2 storage account's file system through `dfs`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::env::{Desired, Env, Owner, Plane, UNKNOWN};
use super::storage::StorageAccount;
use super::{Cx, Spec, arm_key, child_key, kind};
use crate::model::names;
use crate::model::{Code, Diag, Sp, SpMap};

/// A Data Lake Storage Gen1 account.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataLakeStore {
    #[serde(rename = "type")]
    #[schemars(skip)]
    pub kind: Sp<String>,
    /// Account name: 3–24 lowercase letters and digits, unique across Azure.
    pub name: Sp<String>,
    /// The resource group: `${rg}` or the name of an existing group.
    pub resource_group: Sp<String>,
    /// Region; defaults to the plan's `location`.
    #[serde(default)]
    pub location: Option<Sp<String>>,
    /// Extra tags (idlab adds `idlab-plan`).
    #[serde(default)]
    pub tags: Option<SpMap<Sp<String>>>,
    /// Logical names this resource must wait for, beyond its references.
    #[serde(default)]
    pub depends_on: Vec<Sp<String>>,
}

impl Spec for DataLakeStore {
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let rg = env.group_id(&self.resource_group).or_unknown();
        let name = env.resolve(&self.name).or_unknown();
        Some(Desired {
            id: format!("{rg}/providers/Microsoft.DataLakeStore/accounts/{name}"),
            api_version: "2016-11-01",
            body: json!({
                "location": env.location(&self.location),
                "tags": env.tags(&self.tags),
                "properties": { "newTier": "Consumption", "encryptionState": "Enabled", "firewallState": "Disabled" },
            }),
            secrets: Vec::new(),
            immutable: vec![("location", "a Data Lake Store's location cannot change")],
            owner: Owner::Tag,
            principal_from_plan: false,
            plane: Plane::Arm,
            soft_delete: false,
        })
    }
    fn name(&self) -> Option<&Sp<String>> {
        Some(&self.name)
    }
    fn depends_on(&self) -> &[Sp<String>] {
        &self.depends_on
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        cx.name_rule(&self.name, Code::DataLakeStoreName, names::data_lake_store);
        cx.resource_group(&self.resource_group);
        cx.location(&self.location);
        cx.tags(&self.tags, 512);
    }
    fn identity_key(&self) -> Option<String> {
        Some(arm_key("dataLakeStoreAccounts", &Sp::new(String::new(), self.name.span), &self.name))
    }
}

kind!(DataLakeStoreKind, DataLakeStore,
    type_name: "data_lake_store",
    arm_type: Some("Microsoft.DataLakeStore/accounts"),
    api_version: "2016-11-01",
    attributes: &["id", "name", "endpoint"],
    weight: 30);

/// Whether an ACL entry is an access entry, a default entry (inherited by new children),
/// or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AclScope {
    Access,
    Default,
    Both,
}

/// One ACL entry for a principal.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AclEntry {
    /// Who: `${identity}`, `${vm.identity}`, `${caller}` or an object id.
    pub principal: Sp<String>,
    /// POSIX permissions: three characters from `r`, `w`, `x` or `-`, e.g. `r-x`, `rwx`.
    pub permissions: Sp<String>,
    /// `access` (default), `default` or `both`.
    #[serde(default)]
    pub scope: Option<AclScope>,
}

/// A folder with ACL entries.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DataLakeFolder {
    #[serde(rename = "type")]
    #[schemars(skip)]
    pub kind: Sp<String>,
    /// The store: a `data_lake_store` (Gen1) or a `storage_account` with
    /// `hierarchical_namespace: true` (Gen2).
    pub store: Sp<String>,
    /// Gen2 only: the file system (container) holding the folder.
    #[serde(default)]
    pub filesystem: Option<Sp<String>>,
    /// Absolute folder path: `/` for the root, `/TestFolder`, …
    pub path: Sp<String>,
    /// ACL entries to merge into the folder's ACL.
    #[serde(default)]
    pub acl: Vec<AclEntry>,
    /// Logical names this resource must wait for, beyond its references.
    #[serde(default)]
    pub depends_on: Vec<Sp<String>>,
}

/// Check a POSIX permission triple such as `r-x`.
pub fn permissions(p: &str) -> Result<(), String> {
    let b = p.as_bytes();
    let ok = b.len() == 3 && matches!(b[0], b'r' | b'-') && matches!(b[1], b'w' | b'-') && matches!(b[2], b'x' | b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{p}` is not a permission triple: three characters `r`/`-`, `w`/`-`, `x`/`-` in that order, e.g. `r-x`"
        ))
    }
}

impl DataLakeFolder {
    /// The ACL entries the plan names, by slot (`user:{oid}`, `default:user:{oid}`) → bits.
    pub fn entries(&self, env: &Env<'_>) -> Value {
        let mut m = Map::new();
        for e in &self.acl {
            let who = env.principal(&e.principal).known().map_or_else(|| UNKNOWN.to_string(), str::to_string);
            let scopes: &[&str] = match e.scope.unwrap_or(AclScope::Access) {
                AclScope::Access => &[""],
                AclScope::Default => &["default:"],
                AclScope::Both => &["", "default:"],
            };
            for s in scopes {
                m.insert(format!("{s}user:{who}"), json!(e.permissions.value));
            }
        }
        Value::Object(m)
    }
}

impl Spec for DataLakeFolder {
    /// Gen1 folders (on a `data_lake_store`) are served through WebHDFS; Gen2 folders are not
    /// handled yet.
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let store = env.resolve(&self.store).or_unknown();
        let gen1 = store.to_ascii_lowercase().contains("/providers/microsoft.datalakestore/accounts/");
        if !gen1 {
            return None;
        }
        Some(Desired {
            id: crate::arm::datalake::folder_id(&store, &self.path.value),
            api_version: "2016-11-01",
            body: json!({ "acl": self.entries(env) }),
            secrets: Vec::new(),
            immutable: Vec::new(),
            owner: Owner::Parent,
            principal_from_plan: false,
            plane: Plane::DataLake,
            soft_delete: false,
        })
    }
    fn depends_on(&self) -> &[Sp<String>] {
        &self.depends_on
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        let p = &self.path.value;
        if !p.starts_with('/') || p.contains("//") || (p.len() > 1 && p.ends_with('/')) {
            cx.push(
                Diag::error(Code::ChildName, self.path.span, format!("`{p}` is not an absolute folder path"))
                    .label("bad path")
                    .help("start with `/`, e.g. `/TestFolder`; use `/` for the root"),
            );
        }
        if let Some(store) = cx.reference("store", &self.store, &["data_lake_store", "storage_account"]) {
            let gen2 = store.spec.as_any().downcast_ref::<StorageAccount>();
            let logical = store.logical.value.clone();
            match (gen2, &self.filesystem) {
                (Some(sa), _) if !sa.hierarchical_namespace => cx.push(
                    Diag::error(
                        Code::DataLakeTarget,
                        self.store.span,
                        format!("storage account `{logical}` has no hierarchical namespace"),
                    )
                    .label("not a Data Lake Gen2 account")
                    .help("set `hierarchical_namespace: true` on the account"),
                ),
                (Some(_), None) => cx.push(
                    Diag::error(Code::DataLakeTarget, self.store.span, "a folder on a Gen2 account needs `filesystem`")
                        .label("which file system?"),
                ),
                (None, Some(fs)) => cx.push(
                    Diag::error(
                        Code::DataLakeTarget,
                        fs.span,
                        format!("`{logical}` is a Gen1 store, which has no file systems"),
                    )
                    .label("Gen2 only"),
                ),
                (Some(_), Some(fs)) => cx.name_rule(fs, Code::ContainerName, names::blob_container),
                (None, None) => {}
            }
        }
        for e in &self.acl {
            cx.principal("acl.principal", &e.principal);
            if let Err(why) = permissions(&e.permissions) {
                cx.push(Diag::error(Code::Acl, e.permissions.span, why).label("bad permissions"));
            }
        }
    }
    fn identity_key(&self) -> Option<String> {
        let fs = self.filesystem.as_ref().map_or("", |f| f.value.as_str());
        Some(child_key("folders", &self.store, &format!("{fs}{}", self.path.value)))
    }
}

/// Why a plan cannot run against Azure: it declares a Gen1 store, which Azure retired. `None`
/// when it declares none.
pub fn gen1_refused(decls: &[crate::kinds::Decl]) -> Option<String> {
    let d = decls.iter().find(|d| d.kind.type_name() == "data_lake_store")?;
    Some(format!(
        "{} (data_lake_store): Data Lake Storage Gen1 was retired by Azure on 2024-02-29 and cannot be created there. \
Run this plan against the local cloud (--local), or move it to Gen2: a `storage_account` with \
`hierarchical_namespace: true`, and each `data_lake_folder` with `store: ${{<that account>}}` and `filesystem: <container>`.",
        d.logical.value
    ))
}

kind!(DataLakeFolderKind, DataLakeFolder,
    type_name: "data_lake_folder",
    arm_type: None,
    api_version: "2016-11-01",
    attributes: &["id", "path", "url"],
    weight: 2);
