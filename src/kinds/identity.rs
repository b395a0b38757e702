//! `user_assigned_identity`: `Microsoft.ManagedIdentity/userAssignedIdentities`
//! (arm-contract §2). ARM accepts 3–128 characters; an identity assigned to a VM must stay
//! within 24 (checked in `resolve`, which sees the VMs).

use schemars::JsonSchema;
use serde::Deserialize;

use serde_json::json;

use super::env::{Desired, Env};
use super::header::{ArmHeader, arm_spec};
use super::import::{Children, Imported, Read, Source, imported, text, with_header};
use super::{Cx, Spec, kind};
use crate::model::Code;
use crate::model::names;
use serde_json::Value as J;

arm_spec! {
    /// A user-assigned managed identity.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct UserAssignedIdentity {
        /// Identity name: starts with a letter or digit; letters, digits, `-`, `_`; at most 24
        /// characters when assigned to a VM (3–128 otherwise).
        name;
        /// Extra tags (idlab adds `idlab-plan`).
        tags;
    }
}

impl Spec for UserAssignedIdentity {
    fn header(&self) -> Option<ArmHeader<'_>> {
        Some(self.arm_header())
    }
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let (id, _) = self.arm_header().id(env, "Microsoft.ManagedIdentity/userAssignedIdentities");
        Some(Desired {
            immutable: vec![("location", "an identity's location cannot change")],
            ..Desired::new(
                id,
                "2024-11-30",
                json!({ "location": env.location(&self.location), "tags": env.tags(&self.tags) }),
            )
        })
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        self.arm_header().validate(cx, Code::IdentityName, names::user_assigned_identity, 512);
    }
    fn identity_key(&self) -> Option<String> {
        Some(self.arm_header().key("userAssignedIdentities"))
    }
}

/// `user_assigned_identity`.
pub fn import_identity(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let mut i = imported(id, have, "identity", 1, with_header(id, have, src, Vec::new()));
    if let Some(p) = text(have, "/properties/principalId") {
        i.principals.push((p.to_ascii_lowercase(), ""));
    }
    Some(i)
}

kind!(UserAssignedIdentityKind, UserAssignedIdentity,
    type_name: "user_assigned_identity",
    arm_type: Some("Microsoft.ManagedIdentity/userAssignedIdentities"),
    api_version: "2024-11-30",
    attributes: &["id", "name", "principal_id", "client_id", "tenant_id"],
    weight: 3,
    identity: true,
    import: import_identity,
    children: import_identity_children);

/// An identity's federated credentials, read through ARM.
pub fn import_identity_children(id: &str, _have: &J) -> Children {
    let kind = super::Kind::type_name(&super::federated_credential::FederatedIdentityCredentialKind);
    let api = super::federated_credential::API;
    Children {
        found: Vec::new(),
        reads: vec![Read::Arm { path: format!("{id}/federatedIdentityCredentials"), api, kind }],
    }
}
