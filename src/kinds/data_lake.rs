//! Data Lake kinds (arm-contract §5 Gen2, §7 Gen1): `data_lake_store` (Gen1,
//! `Microsoft.DataLakeStore/accounts`, retired by Azure in 2024: kept for the local cloud and
//! the tutorial as written) and `data_lake_folder` (a folder with POSIX ACL entries, on a
//! Gen1 store through WebHDFS or on a Gen2 storage account's file system through `dfs`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, Value as J, json};

use super::env::{Desired, Env, Owner, Plane, UNKNOWN};
use super::header::{ArmHeader, arm_spec};
use super::import::{Children, Field, Imported, Read, Source, Y, imported, last, with_header};
use super::role_assignment::{RoleAssignment, role_guid};
use super::storage::{BlobContainer, StorageAccount};
use super::{Cx, Decl, Spec, arm_key, child_key, kind};
use crate::model::{Code, Diag, Sp};
use crate::model::{names, refs};

arm_spec! {
    /// A Data Lake Storage Gen1 account.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct DataLakeStore {
        /// Account name: 3–24 lowercase letters and digits, unique across Azure.
        name;
        /// Extra tags (idlab adds `idlab-plan`).
        tags;
    }
}

impl Spec for DataLakeStore {
    fn header(&self) -> Option<ArmHeader<'_>> {
        Some(self.arm_header())
    }
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let (id, _) = self.arm_header().id(env, "Microsoft.DataLakeStore/accounts");
        Some(Desired {
            immutable: vec![("location", "a Data Lake Store's location cannot change")],
            ..Desired::new(
                id,
                "2016-11-01",
                json!({
                    "location": env.location(&self.location),
                    "tags": env.tags(&self.tags),
                    "properties": { "newTier": "Consumption", "encryptionState": "Enabled", "firewallState": "Disabled" },
                }),
            )
        })
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        self.arm_header().validate(cx, Code::DataLakeStoreName, names::data_lake_store, 512);
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
    weight: 30,
    naming: crate::kinds::instance::InstanceName { field: "name", suffix: crate::kinds::instance::Suffix::Alnum, max: 24, scope: "Azure" },
    import: import_data_lake_store,
    children: import_data_lake_store_children);

/// `data_lake_store` (Gen1): name, group, location, tags (what a plan sets besides is fixed).
pub fn import_data_lake_store(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    Some(imported(id, have, "adls", 5, with_header(id, have, src, Vec::new())))
}

/// A Gen1 store's folders, read with their ACLs through WebHDFS.
pub fn import_data_lake_store_children(id: &str, _have: &J) -> Children {
    Children { found: Vec::new(), reads: vec![import_folder_read(id, false)] }
}

/// The read of a store's folders (`gen2`: a storage account's file systems).
pub fn import_folder_read(store: &str, gen2: bool) -> Read {
    Read::Folders { store: store.to_string(), gen2, kind: super::Kind::type_name(&DataLakeFolderKind) }
}

/// `data_lake_folder`: a folder with named ACL entries for principals the plan declares
/// (`${caller}` for the deploying principal); an access entry and a default one with the same
/// permissions are one entry of `scope: both`. Entries of other principals are said in a
/// comment; a folder with none of the plan's is not declared.
pub fn import_data_lake_folder(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let (store, filesystem, path) = match gen2_folder(id) {
        Some((account, container, path)) => (account, Some(container), path),
        None => {
            let f = crate::arm::datalake::FolderId::parse(id)?;
            (f.account_id, None, f.path)
        }
    };
    // (principal, access perms, default perms), in the order the ACL lists them.
    let mut mine: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    let mut outside = Vec::new();
    for (slot, perms) in have.get("acl").and_then(J::as_object).into_iter().flatten() {
        let (default, rest) = match slot.strip_prefix("default:") {
            Some(r) => (true, r),
            None => (false, slot.as_str()),
        };
        let Some(oid) = rest.strip_prefix("user:").filter(|o| !o.is_empty()) else { continue };
        let perms = perms.as_str().unwrap_or("---").to_string();
        let principal = src.principal(oid);
        if !principal.starts_with("${") {
            outside.push(format!("{}{oid}", if default { "default:" } else { "" }));
            continue;
        }
        let at = match mine.iter().position(|(p, _, _)| *p == principal) {
            Some(at) => at,
            None => {
                mine.push((principal, None, None));
                mine.len() - 1
            }
        };
        if default {
            mine[at].2 = Some(perms);
        } else {
            mine[at].1 = Some(perms);
        }
    }
    let mut i = Imported { key_hint: folder_key(&path), key_alt: "folder".into(), rank: 7, ..Imported::default() };
    if mine.is_empty() {
        i.skipped =
            Some(format!("the ACL entries of folder {path} name principals outside the plan ({})", outside.join(", ")));
        return Some(i);
    }
    let mut acl = Vec::new();
    for (principal, access, default) in mine {
        let entry = |perms: String, scope: Option<&str>| {
            let mut m = vec![Field::str("principal", principal.clone()), Field::str("permissions", perms)];
            m.extend(scope.map(|s| Field::str("scope", s)));
            Y::Map(m)
        };
        match (access, default) {
            (Some(a), Some(d)) if a == d => acl.push(entry(a, Some("both"))),
            (a, d) => {
                acl.extend(a.map(|a| entry(a, None)));
                acl.extend(d.map(|d| entry(d, Some("default"))));
            }
        }
    }
    let mut f = vec![Field::str("store", src.reference(&store).unwrap_or_else(|| store.clone()))];
    if let Some(fs) = filesystem {
        f.push(Field::str("filesystem", src.reference(&fs).unwrap_or_else(|| last(&fs).to_string())));
    }
    f.push(Field::str("path", path));
    f.push(Field::new("acl", Y::List(acl)));
    if !outside.is_empty() {
        f[0].comment = Some(format!("entries of principals outside the plan are not declared: {}", outside.join(", ")));
    }
    i.fields = f;
    Some(i)
}

/// A Gen2 folder id (`{account}/blobServices/default/containers/{fs}/folders{path}`) as
/// (account id, container id, path).
fn gen2_folder(id: &str) -> Option<(String, String, String)> {
    const CONTAINERS: &str = "/blobservices/default/containers/";
    let at = id.to_ascii_lowercase().find(CONTAINERS)?;
    let fs_at = at + CONTAINERS.len();
    let end = fs_at + id.get(fs_at..)?.find('/')?;
    let path = id.get(end..)?.strip_prefix("/folders")?;
    path.starts_with('/').then(|| (id[..at].to_string(), id[..end].to_string(), path.to_string()))
}

/// A plan key for a folder: its last segment, `root` for `/`.
fn folder_key(path: &str) -> String {
    match path.rsplit('/').next() {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "root".to_string(),
    }
}

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
    /// Gen2 only: the file system holding the folder — `${container}` (a `blob_container` of
    /// the same account, which the folder then waits for) or the name of an existing one.
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

/// The logical name a field references as a whole (`${x}`, `${x.id}`, `${caller.object_id}`
/// → `caller`), if it is one reference.
fn ref_root(s: &Sp<String>) -> Option<String> {
    let pieces = refs::parse_template(s, refs::OffsetMap::new(s.span, s.value.len())).ok()?;
    refs::whole_expr(&pieces).map(|e| e.root().to_string())
}

/// The role the deploying principal needs on a Gen2 account to create folders and change
/// their ACLs (the root of a new file system belongs to `$superuser`).
pub const GEN2_ROLE: &str = "Storage Blob Data Owner";

impl DataLakeFolder {
    /// For a folder on a Gen2 account: the account's declaration.
    fn gen2_account<'a>(&self, decls: &'a [Decl]) -> Option<(&'a Decl, &'a StorageAccount)> {
        let root = ref_root(&self.store)?;
        let d = decls.iter().find(|d| d.logical.value == root)?;
        let sa = d.spec.as_any().downcast_ref::<StorageAccount>()?;
        sa.hierarchical_namespace.then_some((d, sa))
    }

    /// The plan's role assignment giving the deploying principal [`GEN2_ROLE`] over this
    /// folder's file system (at the file system, the account, its group or the
    /// subscription).
    pub fn caller_grant<'a>(&self, decls: &'a [Decl]) -> Option<&'a Decl> {
        let (account, sa) = self.gen2_account(decls)?;
        let want = crate::roles::by_name(GEN2_ROLE).map(|r| r.guid).unwrap_or_default();
        let scopes: Vec<String> = [
            Some(account.logical.value.clone()),
            self.filesystem.as_ref().and_then(ref_root),
            ref_root(&sa.resource_group),
        ]
        .into_iter()
        .flatten()
        .collect();
        decls.iter().find(|d| {
            let Some(ra) = d.spec.as_any().downcast_ref::<RoleAssignment>() else { return false };
            ref_root(&ra.principal).as_deref() == Some("caller")
                && role_guid(&ra.role.value).eq_ignore_ascii_case(want)
                && (ra.scope.value == "subscription" || ref_root(&ra.scope).is_some_and(|r| scopes.contains(&r)))
        })
    }
}

impl Spec for DataLakeFolder {
    /// Gen1 folders (on a `data_lake_store`) are served through WebHDFS, Gen2 folders (on a
    /// hierarchical-namespace `storage_account`) through `dfs`; both on [`Plane::DataLake`],
    /// told apart by their id.
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let store = env.resolve(&self.store).or_unknown();
        let lower = store.to_ascii_lowercase();
        let id = if lower.contains("/providers/microsoft.storage/storageaccounts/") {
            let fs = self.filesystem.as_ref()?;
            let name = if refs::has_expr(fs) {
                env.resolve(fs)
                    .known()
                    .and_then(|id| id.rsplit('/').next())
                    .map_or_else(|| UNKNOWN.to_string(), str::to_string)
            } else {
                fs.value.clone()
            };
            crate::arm::datalake::folder_id(
                &format!("{store}/blobServices/default/containers/{name}"),
                &self.path.value,
            )
        } else if lower.contains("/providers/microsoft.datalakestore/accounts/") {
            crate::arm::datalake::folder_id(&store, &self.path.value)
        } else {
            return None;
        };
        Some(Desired {
            owner: Owner::Parent,
            plane: Plane::DataLake,
            ..Desired::new(id, "2016-11-01", json!({ "acl": self.entries(env) }))
        })
    }
    fn waits_for(&self, decls: &[Decl]) -> Vec<String> {
        self.caller_grant(decls).map(|d| d.logical.value.clone()).into_iter().collect()
    }
    fn depends_on(&self) -> &[Sp<String>] {
        &self.depends_on
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        let p = &self.path.value;
        if let Some((at, seg)) = names::dot_segment(p) {
            cx.push(super::storage::dot_segment_diag(&self.path, at, seg, "a Data Lake folder path"));
        }
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
                (Some(_), Some(fs)) if refs::has_expr(fs) => {
                    let container = cx.reference("filesystem", fs, &["blob_container"]);
                    let account = container
                        .and_then(|c| c.spec.as_any().downcast_ref::<BlobContainer>())
                        .and_then(|c| ref_root(&c.account));
                    if container.is_some() && account.as_deref() != Some(logical.as_str()) {
                        cx.push(
                            Diag::error(
                                Code::DataLakeTarget,
                                fs.span,
                                format!("the file system is not a container of `{logical}`"),
                            )
                            .label("another account's container")
                            .help("use a blob_container whose `account` is the folder's `store`"),
                        );
                    }
                }
                (Some(_), Some(fs)) => cx.name_rule(fs, Code::ContainerName, names::blob_container),
                (None, None) => {}
            }
        }
        if self.gen2_account(cx.decls).is_some() && self.caller_grant(cx.decls).is_none() {
            let store = self.store.value.trim_start_matches("${").trim_end_matches('}').trim_end_matches(".id");
            cx.push(
                Diag::warning(
                    Code::DataLakeGrant,
                    self.store.span,
                    format!("nothing in the plan lets the deploying principal write folder `{}` and its ACL", cx.me),
                )
                .label(format!("Gen2: idlab needs {GEN2_ROLE} here"))
                .help(format!(
                    "idlab creates Gen2 folders and sets their ACLs as the deploying principal, which needs \
{GEN2_ROLE} on the account (Owner has no data rights). Add to the plan:\n\n  \
caller-data-owner:\n    type: role_assignment\n    scope: ${{{store}}}\n    principal: ${{caller}}\n    \
role: {GEN2_ROLE}\n\nor leave it out if the role is granted outside the plan."
                )),
            );
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
`hierarchical_namespace: true`, a `blob_container` on it, a `role_assignment` giving `${{caller}}` {GEN2_ROLE} on the \
account, and each `data_lake_folder` with `store: ${{<that account>}}` and `filesystem: ${{<that container>}}` \
(see plans/datalake-gen2.yaml).",
        d.logical.value
    ))
}

kind!(DataLakeFolderKind, DataLakeFolder,
    type_name: "data_lake_folder",
    arm_type: None,
    api_version: "2016-11-01",
    attributes: &["id", "path", "url"],
    weight: 2,
    import: import_data_lake_folder);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const ACCOUNT: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct";

    fn field<'a>(i: &'a Imported, key: &str) -> &'a Y {
        &i.fields.iter().find(|f| f.key == key).unwrap_or_else(|| panic!("no {key}: {:?}", i.fields)).value
    }

    #[test]
    fn folder_entries_of_the_plan_s_principals_are_declared_by_reference() {
        let fs = format!("{ACCOUNT}/blobServices/default/containers/folders");
        let keys: BTreeMap<String, String> =
            [(ACCOUNT.to_ascii_lowercase(), "lake".to_string()), (fs.to_ascii_lowercase(), "fs".to_string())].into();
        let principals: BTreeMap<String, String> = [("aa".to_string(), "${vm.identity}".to_string())].into();
        let bodies = BTreeMap::new();
        let src = Source::for_test(&bodies, &keys, &principals);
        let body = json!({ "acl": {
            "user:aa": "rwx", "default:user:aa": "rwx",
            "user:cc": "r-x", "default:user:cc": "--x",
            "user:bb": "r--",
        }});
        let i = import_data_lake_folder(&format!("{fs}/folders/a/b"), &body, &src).expect("imported");
        assert_eq!(i.key_hint, "b");
        assert_eq!(field(&i, "store"), &Y::Str("${lake}".into()));
        assert_eq!(field(&i, "filesystem"), &Y::Str("${fs}".into()));
        assert_eq!(field(&i, "path"), &Y::Str("/a/b".into()));
        let entry = |p: &str, perms: &str, scope: Option<&str>| {
            let mut m = vec![Field::str("principal", p), Field::str("permissions", perms)];
            m.extend(scope.map(|s| Field::str("scope", s)));
            Y::Map(m)
        };
        assert_eq!(
            field(&i, "acl"),
            &Y::List(vec![
                entry("${vm.identity}", "rwx", Some("both")),
                entry("${caller}", "r-x", None),
                entry("${caller}", "--x", Some("default")),
            ])
        );
        assert!(i.fields[0].comment.as_deref().is_some_and(|c| c.contains("bb")), "{:?}", i.fields[0]);
        // In the ACL's order, per principal. Only principals outside the plan: not declared,
        // said why.
        let only = import_data_lake_folder(&format!("{fs}/folders/"), &json!({"acl": {"user:bb": "r--"}}), &src)
            .expect("imported");
        assert!(only.skipped.as_deref().is_some_and(|s| s.contains("folder /") && s.contains("bb")), "{only:?}");
        assert_eq!(only.key_hint, "root");
    }

    #[test]
    fn gen1_folders_name_their_store_and_no_file_system() {
        let store = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.DataLakeStore/accounts/adls";
        let keys: BTreeMap<String, String> = [(store.to_ascii_lowercase(), "adls".to_string())].into();
        let (principals, bodies) = (BTreeMap::new(), BTreeMap::new());
        let src = Source::for_test(&bodies, &keys, &principals);
        let i =
            import_data_lake_folder(&format!("{store}/folders/TestFolder"), &json!({"acl": {"user:cc": "rwx"}}), &src)
                .expect("imported");
        let keys: Vec<&str> = i.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["store", "path", "acl"]);
        assert_eq!(field(&i, "store"), &Y::Str("${adls}".into()));
        assert_eq!(field(&i, "path"), &Y::Str("/TestFolder".into()));
        assert!(matches!(
            import_folder_read(store, false),
            Read::Folders { gen2: false, kind: "data_lake_folder", .. }
        ));
    }

    #[test]
    fn a_hierarchical_namespace_account_reads_its_folders_as_this_kind() {
        let want = super::super::Kind::type_name(&DataLakeFolderKind);
        let folders = |hns: bool| {
            super::super::storage::import_storage_children(ACCOUNT, &json!({"properties": {"isHnsEnabled": hns}}))
                .reads
                .into_iter()
                .filter(|r| matches!(r, Read::Folders { gen2: true, kind, .. } if *kind == want))
                .count()
        };
        assert_eq!((folders(true), folders(false)), (1, 0));
    }
}
