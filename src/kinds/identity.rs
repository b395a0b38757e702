//! `user_assigned_identity`: `Microsoft.ManagedIdentity/userAssignedIdentities`
//! (arm-contract §2). ARM accepts 3–128 characters; an identity assigned to a VM must stay
//! within 24 (checked in `resolve`, which sees the VMs).

use schemars::JsonSchema;
use serde::Deserialize;

use serde_json::json;

use super::env::{Desired, Env};
use super::{Cx, Spec, arm_key, kind};
use crate::model::names;
use crate::model::{Code, Sp, SpMap};

/// A user-assigned managed identity.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserAssignedIdentity {
    #[serde(rename = "type")]
    #[schemars(skip)]
    pub kind: Sp<String>,
    /// Identity name: starts with a letter or digit; letters, digits, `-`, `_`; at most 24
    /// characters when assigned to a VM (3–128 otherwise).
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

impl Spec for UserAssignedIdentity {
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let rg = env.group_id(&self.resource_group).or_unknown();
        let name = env.resolve(&self.name).or_unknown();
        Some(Desired {
            immutable: vec![("location", "an identity's location cannot change")],
            ..Desired::new(
                format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"),
                "2024-11-30",
                json!({ "location": env.location(&self.location), "tags": env.tags(&self.tags) }),
            )
        })
    }
    fn name(&self) -> Option<&Sp<String>> {
        Some(&self.name)
    }
    fn depends_on(&self) -> &[Sp<String>] {
        &self.depends_on
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        cx.name_rule(&self.name, Code::IdentityName, names::user_assigned_identity);
        cx.resource_group(&self.resource_group);
        cx.location(&self.location);
        cx.tags(&self.tags, 512);
    }
    fn identity_key(&self) -> Option<String> {
        Some(arm_key("userAssignedIdentities", &self.resource_group, &self.name))
    }
}

kind!(UserAssignedIdentityKind, UserAssignedIdentity,
    type_name: "user_assigned_identity",
    arm_type: Some("Microsoft.ManagedIdentity/userAssignedIdentities"),
    api_version: "2024-11-30",
    attributes: &["id", "name", "principal_id", "client_id", "tenant_id"],
    weight: 3,
    identity: true);
