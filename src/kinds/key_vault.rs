//! Key Vault kinds (arm-contract §6): `key_vault` (`Microsoft.KeyVault/vaults`),
//! `key_vault_secret` (data plane) and `key_vault_access_policy` (managed through
//! `accessPolicies/add|remove`, so policies the plan does not own survive).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Cx, Spec, child_key, kind};
use crate::model::names;
use crate::model::{Code, Diag, Secret, Sp, SpMap};

/// Vault SKU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VaultSku {
    Standard,
    Premium,
}

/// A key vault. Soft delete is always on, as in Azure.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyVault {
    #[serde(rename = "type")]
    #[schemars(skip)]
    pub kind: Sp<String>,
    /// Vault name: 3–24 letters, digits and hyphens, starting with a letter, unique across Azure.
    pub name: Sp<String>,
    /// The resource group: `${rg}` or the name of an existing group.
    pub resource_group: Sp<String>,
    /// Region; defaults to the plan's `location`.
    #[serde(default)]
    pub location: Option<Sp<String>>,
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
    /// Extra tags (idlab adds `idlab-plan`).
    #[serde(default)]
    pub tags: Option<SpMap<Sp<String>>>,
    /// Logical names this resource must wait for, beyond its references.
    #[serde(default)]
    pub depends_on: Vec<Sp<String>>,
}

impl Spec for KeyVault {
    fn name(&self) -> Option<&Sp<String>> {
        Some(&self.name)
    }
    fn depends_on(&self) -> &[Sp<String>] {
        &self.depends_on
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        cx.name_rule(&self.name, Code::KeyVaultName, names::key_vault);
        cx.resource_group(&self.resource_group);
        cx.location(&self.location);
        cx.tags(&self.tags, 512);
    }
    fn identity_key(&self) -> Option<String> {
        Some(format!("vaults|{}", self.name.value.to_ascii_lowercase()))
    }
}

kind!(KeyVaultKind, KeyVault,
    type_name: "key_vault",
    arm_type: Some("Microsoft.KeyVault/vaults"),
    api_version: "2024-11-01",
    attributes: &["id", "name", "uri"],
    weight: 20);

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
    weight: 2);

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

impl Spec for AccessPolicy {
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
    weight: 3);
