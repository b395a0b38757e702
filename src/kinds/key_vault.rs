//! Key Vault kinds (arm-contract §6): `key_vault` (`Microsoft.KeyVault/vaults`),
//! `key_vault_secret` (data plane) and `key_vault_access_policy` (managed through
//! `accessPolicies/add|remove`, so policies the plan does not own survive).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::env::{Desired, Env, Lenient, NameCheck, Owner, Plane, UNKNOWN};
use super::header::{ArmHeader, arm_spec};
use super::import::{
    Children, Field, Imported, Read, Source, Y, env_name, imported, last, placeholder, same, text, with_header,
};
use super::{Cx, Expanded, Spec, child_key, kind};
use crate::model::names;
use crate::model::{Code, Diag, Secret, Sp};
use serde_json::Value as J;
use std::collections::BTreeMap;

/// The api-version of the vault and its access policies.
const VAULT_API: &str = "2024-11-01";

/// The placeholder a secret's value is planned and diffed as: the value itself never enters
/// a plan. An observed secret shows it when its value is the wanted one.
pub const SENSITIVE: &str = "(sensitive value)";
/// What an observed secret shows when its value differs from the wanted one.
pub const DIFFERENT: &str = "(a different value)";

/// The secret permissions the deploying principal gets on a vault the plan creates: enough
/// to write, compare and delete secrets, and to recover or purge ones an earlier destroy
/// soft-deleted.
pub const CREATOR_SECRETS: &[SecretPermission] = &[
    SecretPermission::Get,
    SecretPermission::List,
    SecretPermission::Set,
    SecretPermission::Delete,
    SecretPermission::Recover,
    SecretPermission::Purge,
];

/// Vault SKU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VaultSku {
    Standard,
    Premium,
}

arm_spec! {
    /// A key vault. Soft delete is always on, as in Azure.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct KeyVault {
        /// Vault name: 3–24 letters, digits and hyphens, starting with a letter, unique across Azure.
        name;
        /// Extra tags (idlab adds `idlab-plan`).
        tags;
        /// `standard` (default) or `premium`.
        #[serde(default)]
        pub sku: Option<VaultSku>,
        /// Days a deleted vault is kept (7–90, default 90).
        #[serde(default)]
        #[schemars(range(min = 7, max = 90))]
        pub soft_delete_retention_days: Option<Sp<u32>>,
        /// Purge protection (cannot be turned off again); default false.
        #[serde(default)]
        pub purge_protection: bool,
        /// Use Azure RBAC instead of access policies; default false (the tutorial uses policies).
        #[serde(default)]
        pub rbac_authorization: bool,
        /// The deploying principal's secret permissions on the vault (its `{vault}:creator`
        /// access policy): at least get, list, set, delete, recover and purge, which idlab
        /// needs (the default, exactly those).
        #[serde(default)]
        pub creator_secrets: Option<Sp<Vec<SecretPermission>>>,
    }
}

impl Spec for KeyVault {
    fn header(&self) -> Option<ArmHeader<'_>> {
        Some(self.arm_header())
    }
    /// Deleting a vault leaves its soft-deleted copy (purged only with `--purge`).
    fn implicit(&self, have: &serde_json::Value) -> Vec<super::Implicit> {
        let (Some(id), Some(location)) =
            (have.get("id").and_then(|v| v.as_str()), have.get("location").and_then(|v| v.as_str()))
        else {
            return Vec::new();
        };
        let sub = &id[..id.to_ascii_lowercase().find("/resourcegroups/").unwrap_or(id.len())];
        let name = id.rsplit('/').next().unwrap_or_default();
        vec![super::Implicit {
            id: format!("{sub}/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{name}"),
            what: "soft-deleted vault",
            fate: super::ImplicitFate::Remains(
                "deleting the vault soft-deletes it: recoverable until its retention ends (--purge purges it)",
            ),
        }]
    }
    /// A PUT would replace the vault's access policies, which access-policy resources
    /// manage: updates PATCH the desired body.
    fn update_patch(&self, want: &Value, _have: Option<&Value>) -> Option<super::Patch> {
        Some(super::Patch { body: want.clone(), if_match: false })
    }
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let (id, _) = self.arm_header().id(env, "Microsoft.KeyVault/vaults");
        let sku = match self.sku.unwrap_or(VaultSku::Standard) {
            VaultSku::Standard => "standard",
            VaultSku::Premium => "premium",
        };
        let mut props = json!({
            "tenantId": env.tenant_id.unwrap_or(UNKNOWN),
            "sku": { "family": "A", "name": sku },
            "enableRbacAuthorization": self.rbac_authorization,
            "enableSoftDelete": true,
            "softDeleteRetentionInDays": self.soft_delete_retention_days.as_ref().map_or(90, |d| d.value),
        });
        if self.purge_protection {
            props["enablePurgeProtection"] = json!(true);
        }
        Some(Desired {
            immutable: vec![("location", "a vault's location cannot change")],
            soft_delete: true,
            // Recorded answers (keyvault/TestDeleteVault, TestSetRemoveAccessPolicyByObjectId)
            // leave out fields never sent (their spec defaults) and spell the SKU `Premium`.
            lenient: vec![
                ("properties/enableRbacAuthorization", Lenient::Absent(json!(false))),
                ("properties/softDeleteRetentionInDays", Lenient::Absent(json!(90))),
                ("properties/sku/name", Lenient::AnyCase),
                ("properties/sku/family", Lenient::AnyCase),
            ],
            ..Desired::new(
                id,
                VAULT_API,
                json!({ "location": env.location(&self.location), "tags": env.tags(&self.tags), "properties": props }),
            )
        })
    }
    /// Azure refuses a vault created without `accessPolicies`. The list is sent empty at
    /// creation only: entries are managed one principal at a time through
    /// `accessPolicies/add|remove` (the deploying principal's through `{name}:creator`), and a
    /// later PUT or PATCH carrying the list would replace them all.
    fn create_only(&self, _env: &Env<'_>) -> Vec<(String, Value)> {
        vec![("/properties/accessPolicies".to_string(), json!([]))]
    }
    fn name_check(&self, env: &Env<'_>) -> Option<NameCheck> {
        let name = env.resolve(&self.name).known()?.to_string();
        Some(NameCheck {
            path: format!("/subscriptions/{}/providers/Microsoft.KeyVault/checkNameAvailability", env.subscription),
            api_version: VAULT_API,
            body: json!({ "name": name, "type": "Microsoft.KeyVault/vaults" }),
            name,
        })
    }
    /// The deploying principal's access to the secrets: an access policy (or, on an RBAC
    /// vault, `Key Vault Secrets Officer`), owned by the plan.
    fn expand(&self, logical: &str) -> Vec<Expanded> {
        let at = self.name.span;
        let lit = |s: &str| Sp::new(s.to_string(), at);
        let (kind, spec): (&'static dyn super::Kind, Box<dyn Spec>) = if self.rbac_authorization {
            (
                &super::role_assignment::RoleAssignmentKind,
                Box::new(super::role_assignment::RoleAssignment {
                    kind: lit("role_assignment"),
                    scope: lit(&format!("${{{logical}}}")),
                    principal: lit("${caller}"),
                    role: lit("Key Vault Secrets Officer"),
                    description: Some(lit("the deploying principal's access to the vault's secrets")),
                    condition: None,
                    condition_version: None,
                    depends_on: Vec::new(),
                }),
            )
        } else {
            (
                &AccessPolicyKind,
                Box::new(AccessPolicy {
                    kind: lit("key_vault_access_policy"),
                    vault: lit(&format!("${{{logical}}}")),
                    principal: lit("${caller}"),
                    secrets: self
                        .creator_secrets
                        .as_ref()
                        .map_or_else(|| CREATOR_SECRETS.to_vec(), |c| c.value.clone()),
                    keys: Vec::new(),
                    certificates: Vec::new(),
                    depends_on: Vec::new(),
                }),
            )
        };
        vec![Expanded { logical: format!("{logical}:creator"), kind, spec, depends_on: vec![logical.to_string()] }]
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        self.arm_header().validate(cx, Code::KeyVaultName, names::key_vault, 512);
        if let Some(c) = &self.creator_secrets {
            let all = c.value.contains(&SecretPermission::All);
            let missing: Vec<String> = CREATOR_SECRETS
                .iter()
                .filter(|p| !all && !c.value.contains(p))
                .map(|p| format!("{p:?}").to_ascii_lowercase())
                .collect();
            if !missing.is_empty() {
                cx.push(
                    Diag::error(
                        Code::InvalidValue,
                        c.span,
                        format!(
                            "`creator_secrets` leaves out {}, which idlab needs to manage the vault's secrets",
                            missing.join(", ")
                        ),
                    )
                    .label("not enough for idlab"),
                );
            }
        }
    }
    fn identity_key(&self) -> Option<String> {
        Some(format!("vaults|{}", self.name.value.to_ascii_lowercase()))
    }
}

/// `key_vault`: SKU, retention, purge protection, the permission model.
pub fn import_key_vault(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let mut own = Vec::new();
    if text(have, "/properties/sku/name").is_some_and(|s| same(s, "premium")) {
        own.push(Field::str("sku", "premium"));
    }
    if let Some(d) = have.pointer("/properties/softDeleteRetentionInDays").and_then(J::as_i64).filter(|d| *d != 90) {
        own.push(Field::new("soft_delete_retention_days", Y::Int(d)));
    }
    if have.pointer("/properties/enablePurgeProtection").and_then(J::as_bool) == Some(true) {
        own.push(Field::new("purge_protection", Y::Bool(true)));
    }
    let rbac = have.pointer("/properties/enableRbacAuthorization").and_then(J::as_bool) == Some(true);
    if rbac {
        own.push(Field::new("rbac_authorization", Y::Bool(true)));
    }
    // The deploying principal's entry is the plan's `{vault}:creator`: its secret permissions
    // are the vault's `creator_secrets` when they are not the default.
    let mut unexpressed = Vec::new();
    if !rbac && let Some(caller) = src.caller {
        let entries = have.pointer("/properties/accessPolicies").and_then(J::as_array);
        let mine = entries.into_iter().flatten().find(|e| text(e, "/objectId").is_some_and(|o| same(o, caller)));
        let needed =
            permissions(&serde_json::json!({ "secrets": CREATOR_SECRETS })).remove("secrets").unwrap_or_default();
        match mine.map(|e| permissions(e.get("permissions").unwrap_or(&J::Null))) {
            Some(mut p) => {
                let secrets = p.remove("secrets").unwrap_or_default();
                if !p.is_empty() {
                    let kinds: Vec<&str> = p.keys().map(String::as_str).collect();
                    unexpressed.push(format!(
                        "the deploying principal's access policy grants {} permissions (a plan gives it secret permissions only)",
                        kinds.join(" and ")
                    ));
                }
                let enough = needed.iter().all(|n| secrets.contains(n)) || secrets.iter().any(|s| s == "all");
                if secrets == needed {
                    // The default.
                } else if enough {
                    own.push(Field::new("creator_secrets", Y::Flow(secrets.into_iter().map(Y::Str).collect())));
                } else {
                    unexpressed.push(format!(
                        "the deploying principal's secret permissions ({}) leave out some a plan gives it (get, list, set, delete, recover, purge)",
                        secrets.join(", ")
                    ));
                }
            }
            None => unexpressed.push("the deploying principal has no access policy (a plan gives it one)".into()),
        }
    }
    let mut i = imported(id, have, "kv", 5, with_header(id, have, src, own));
    i.unexpressed = unexpressed;
    Some(i)
}

/// Access-policy permissions as lower-case sorted lists per kind, empty kinds left out.
fn permissions(p: &J) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for k in ["certificates", "keys", "secrets"] {
        let mut v: Vec<String> = p
            .get(k)
            .and_then(J::as_array)
            .into_iter()
            .flatten()
            .map(|x| x.as_str().map_or_else(|| x.to_string().trim_matches('"').to_string(), str::to_string))
            .map(|x| x.to_ascii_lowercase())
            .collect();
        v.sort();
        v.dedup();
        if !v.is_empty() {
            out.insert(k.to_string(), v);
        }
    }
    out
}

/// A vault's access-policy entries and secrets.
pub fn import_key_vault_children(id: &str, have: &J) -> Children {
    let mut c = Children::default();
    for e in have.pointer("/properties/accessPolicies").and_then(J::as_array).into_iter().flatten() {
        if let Some(oid) = text(e, "/objectId") {
            c.found.push((format!("{id}/accessPolicies/{oid}"), e.clone(), super::Kind::type_name(&AccessPolicyKind)));
        }
    }
    if let Some(uri) = text(have, "/properties/vaultUri") {
        c.reads.push(Read::Secrets {
            vault: id.to_string(),
            uri: uri.to_string(),
            kind: super::Kind::type_name(&SecretKind),
        });
    }
    c
}

/// The names a permission list may use, in the plan's spelling (keys are camelCase).
const KEY_PERMISSIONS: &[&str] = &[
    "get",
    "list",
    "update",
    "create",
    "import",
    "delete",
    "recover",
    "backup",
    "restore",
    "decrypt",
    "encrypt",
    "unwrapKey",
    "wrapKey",
    "verify",
    "sign",
    "purge",
    "release",
    "rotate",
    "all",
];

/// `key_vault_access_policy`: an entry of a principal the plan declares (the deploying
/// principal's is the vault's `:creator`; others are listed, not declared).
pub fn import_access_policy(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let vault = id.rsplit_once("/accessPolicies/").map_or(id, |(v, _)| v);
    let oid = text(have, "/objectId").unwrap_or_default();
    let mut i = Imported { key_alt: "policy".into(), rank: 6, late_key: true, ..Imported::default() };
    if src.caller.is_some_and(|c| same(c, oid)) {
        return None;
    }
    let principal = src.principal(oid);
    if !principal.starts_with("${") {
        i.skipped =
            Some(format!("access policy of vault {} for principal {oid}: a principal outside the plan", last(vault)));
        return Some(i);
    }
    let root = principal.trim_start_matches("${").split(['.', '}']).next().unwrap_or_default().to_string();
    i.key_hint = format!("{root}-policy");
    let mut f = vec![
        Field::str("vault", src.reference(vault).unwrap_or_else(|| vault.to_string())),
        Field::str("principal", principal),
    ];
    let perms = permissions(have.get("permissions").unwrap_or(&J::Null));
    for (k, v) in &perms {
        let list: Vec<Y> = v
            .iter()
            .map(|p| {
                let spelled = if k == "keys" {
                    KEY_PERMISSIONS.iter().find(|x| x.eq_ignore_ascii_case(p)).map_or(p.as_str(), |x| *x)
                } else {
                    p.as_str()
                };
                Y::Str(spelled.to_string())
            })
            .collect();
        f.push(Field::new(k, Y::Flow(list)));
    }
    i.fields = f;
    Some(i)
}

/// `key_vault_secret`: its value a placeholder (import never reads secret values).
pub fn import_secret(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let (vault, name) = id.rsplit_once("/secrets/")?;
    let vault_key = src.key(vault).unwrap_or(last(vault)).to_string();
    let var = env_name(&format!("{vault_key}_{name}"), "");
    let (value, p) = placeholder(
        var,
        format!("the value of secret {name} in vault {} (import never reads secret values)", last(vault)),
    );
    let mut v = Field::new("value", value);
    v.comment = Some(format!("set {}: {}", p.name, p.what));
    let mut f = vec![
        Field::str("name", name),
        Field::str("vault", src.reference(vault).unwrap_or_else(|| vault.to_string())),
        v,
    ];
    if let Some(ct) = text(have, "/contentType") {
        f.push(Field::str("content_type", ct));
    }
    Some(Imported {
        key_hint: name.to_string(),
        key_alt: "secret".into(),
        rank: 6,
        fields: f,
        placeholders: vec![p],
        ..Imported::default()
    })
}

kind!(KeyVaultKind, KeyVault,
    type_name: "key_vault",
    arm_type: Some("Microsoft.KeyVault/vaults"),
    api_version: "2024-11-01",
    attributes: &["id", "name", "uri"],
    weight: 20,
    naming: crate::kinds::instance::InstanceName { field: "name", suffix: crate::kinds::instance::Suffix::Dash, max: 24, scope: "Azure" },
    import: import_key_vault,
    children: import_key_vault_children);

/// The vault id a `vault: ${kv}` field resolves to.
fn vault_id(env: &Env<'_>, vault: &Sp<String>) -> String {
    env.resolve(vault).or_unknown()
}

/// A secret in a vault.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyVaultSecret {
    #[serde(rename = "type")]
    #[schemars(skip)]
    pub kind: Sp<String>,
    /// Secret name: 1–127 letters, digits and hyphens.
    pub name: Sp<String>,
    /// The vault: `${kv}`.
    pub vault: Sp<String>,
    /// The value: `{ env }`, `{ file }` or `{ generate }`, never inline.
    pub value: Secret,
    /// Content type stored with the secret.
    #[serde(default)]
    pub content_type: Option<Sp<String>>,
    /// Logical names this resource must wait for, beyond its references.
    #[serde(default)]
    pub depends_on: Vec<Sp<String>>,
}

impl Spec for KeyVaultSecret {
    /// The value is planned as [`SENSITIVE`]; the engine reads the current version and
    /// compares it with the source in memory, so a plan never holds the value.
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let name = env.resolve(&self.name).or_unknown();
        let mut body = json!({ "value": SENSITIVE, "tags": env.tags(&None) });
        if let Some(ct) = &self.content_type {
            body["contentType"] = json!(env.resolve(ct).or_unknown());
        }
        Some(Desired {
            secrets: vec![("/value".to_string(), self.value.clone())],
            plane: Plane::Secret,
            soft_delete: true,
            ..Desired::new(format!("{}/secrets/{name}", vault_id(env, &self.vault)), "7.4", body)
        })
    }
    fn name(&self) -> Option<&Sp<String>> {
        Some(&self.name)
    }
    fn depends_on(&self) -> &[Sp<String>] {
        &self.depends_on
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        cx.name_rule(&self.name, Code::ChildName, names::key_vault_secret);
        cx.reference("vault", &self.vault, &["key_vault"]);
        cx.secret(&self.value);
    }
    fn identity_key(&self) -> Option<String> {
        Some(child_key("secrets", &self.vault, &self.name))
    }
}

kind!(SecretKind, KeyVaultSecret,
    type_name: "key_vault_secret",
    arm_type: None,
    api_version: "7.4",
    attributes: &["id", "name", "uri"],
    weight: 2,
    import: import_secret);

/// Secret permissions of an access policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretPermission {
    Get,
    List,
    Set,
    Delete,
    Backup,
    Restore,
    Recover,
    Purge,
    All,
}

/// Key permissions of an access policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum KeyPermission {
    Get,
    List,
    Update,
    Create,
    Import,
    Delete,
    Recover,
    Backup,
    Restore,
    Decrypt,
    Encrypt,
    UnwrapKey,
    WrapKey,
    Verify,
    Sign,
    Purge,
    Release,
    Rotate,
    All,
}

/// Certificate permissions of an access policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CertificatePermission {
    Get,
    List,
    Update,
    Create,
    Import,
    Delete,
    Recover,
    Backup,
    Restore,
    Managecontacts,
    Manageissuers,
    Getissuers,
    Listissuers,
    Setissuers,
    Deleteissuers,
    Purge,
    All,
}

/// An access policy entry for one principal on one vault.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessPolicy {
    #[serde(rename = "type")]
    #[schemars(skip)]
    pub kind: Sp<String>,
    /// The vault: `${kv}`.
    pub vault: Sp<String>,
    /// Who: `${identity}`, `${vm.identity}`, `${caller}` or an object id.
    pub principal: Sp<String>,
    /// Secret permissions, e.g. `[get, list]`.
    #[serde(default)]
    pub secrets: Vec<SecretPermission>,
    /// Key permissions.
    #[serde(default)]
    pub keys: Vec<KeyPermission>,
    /// Certificate permissions.
    #[serde(default)]
    pub certificates: Vec<CertificatePermission>,
    /// Logical names this resource must wait for, beyond its references.
    #[serde(default)]
    pub depends_on: Vec<Sp<String>>,
}

impl AccessPolicy {
    /// The permissions as the planner compares them: lower-case, sorted, empty kinds left out.
    pub fn permissions(&self) -> Value {
        let list = |v: Vec<Value>| {
            let mut names: Vec<String> = v.iter().filter_map(Value::as_str).map(str::to_ascii_lowercase).collect();
            names.sort();
            names.dedup();
            names
        };
        let mut out = serde_json::Map::new();
        let kinds = [
            ("certificates", serde_json::to_value(&self.certificates).ok()),
            ("keys", serde_json::to_value(&self.keys).ok()),
            ("secrets", serde_json::to_value(&self.secrets).ok()),
        ];
        for (k, v) in kinds {
            let names = list(v.and_then(|v| v.as_array().cloned()).unwrap_or_default());
            if !names.is_empty() {
                out.insert(k.to_string(), json!(names));
            }
        }
        Value::Object(out)
    }
}

impl Spec for AccessPolicy {
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let oid = env.principal(&self.principal).or_unknown();
        Some(Desired {
            owner: Owner::Parent,
            plane: Plane::AccessPolicy,
            ..Desired::new(
                format!("{}/accessPolicies/{oid}", vault_id(env, &self.vault)),
                VAULT_API,
                json!({ "properties": {
                "tenantId": env.tenant_id.unwrap_or(UNKNOWN),
                "permissions": self.permissions(),
            } }),
            )
        })
    }
    fn depends_on(&self) -> &[Sp<String>] {
        &self.depends_on
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        if let Some(v) = cx.reference("vault", &self.vault, &["key_vault"])
            && let Some(kv) = v.spec.as_any().downcast_ref::<KeyVault>()
            && kv.rbac_authorization
        {
            let msg = format!("vault `{}` uses RBAC authorization, so access policies have no effect", v.logical.value);
            cx.push(
                Diag::error(Code::Conflict, self.vault.span, msg)
                    .label("RBAC vault")
                    .help("grant a role such as `Key Vault Secrets User` with a role_assignment instead"),
            );
        }
        cx.principal("principal", &self.principal);
        if self.secrets.is_empty() && self.keys.is_empty() && self.certificates.is_empty() {
            cx.push(
                Diag::error(
                    Code::Conflict,
                    self.principal.span,
                    "an access policy needs at least one of `secrets`, `keys` or `certificates`",
                )
                .label("grants nothing"),
            );
        }
    }
    fn identity_key(&self) -> Option<String> {
        Some(child_key("accessPolicies", &self.vault, &self.principal))
    }
}

kind!(AccessPolicyKind, AccessPolicy,
    type_name: "key_vault_access_policy",
    arm_type: Some("Microsoft.KeyVault/vaults/accessPolicies"),
    api_version: "2024-11-01",
    attributes: &["id"],
    weight: 3,
    import: import_access_policy);
