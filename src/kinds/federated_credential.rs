//! `federated_identity_credential`:
//! `Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials`. It lets a
//! workload outside Azure (a GitHub Actions job, an Azure Pipelines service connection, a
//! Kubernetes service account) sign in as a user-assigned identity with its own OIDC token:
//! Entra exchanges an assertion whose `iss`, `sub` and `aud` match the credential exactly.
//! A child of its identity, without tags: it is the plan's when its identity is
//! ([`Owner::Parent`]), and it goes with the identity.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::env::{Desired, Env, Owner};
use super::import::{Field, Imported, Source, Y, last, text};
use super::{Cx, Spec, child_key, kind};
use crate::model::refs;
use crate::model::{Code, Diag, Sp};
use serde_json::Value as J;

/// The api-version idlab sends: the identity's own (2022-01-31-preview added the type,
/// 2023-01-31 was its first generally available one), whose published spec the API-spec tests
/// hold.
pub const API: &str = "2024-11-30";

/// The audience Entra expects of a federated assertion, and the default of `audiences`.
pub const DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";

/// A federated identity credential on a user-assigned identity.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FederatedIdentityCredential {
    #[serde(rename = "type")]
    #[schemars(skip)]
    pub kind: Sp<String>,
    /// Credential name: 3 to 120 characters, letters, digits, `-` and `_`, starting with a
    /// letter or digit.
    pub name: Sp<String>,
    /// The identity it signs in as: `${identity}`.
    pub identity: Sp<String>,
    /// The OIDC issuer, exactly as the token's `iss` (e.g.
    /// `https://token.actions.githubusercontent.com`).
    pub issuer: Sp<String>,
    /// The token's `sub`, exactly (e.g. `repo:org/repo:ref:refs/heads/main`).
    pub subject: Sp<String>,
    /// Accepted `aud` values; default `["api://AzureADTokenExchange"]`.
    #[serde(default)]
    pub audiences: Vec<Sp<String>>,
    /// Logical names this resource must wait for, beyond its references.
    #[serde(default)]
    pub depends_on: Vec<Sp<String>>,
}

/// Why `name` is not a federated credential name Azure accepts (3–120 characters,
/// `^[a-zA-Z0-9][a-zA-Z0-9-_]*$`).
pub fn name_problem(name: &str) -> Option<&'static str> {
    let n = name.chars().count();
    if !(3..=120).contains(&n) {
        return Some("a federated credential name must be 3 to 120 characters long");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some("a federated credential name must start with a letter or digit");
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Some("a federated credential name may hold only letters, digits, `-` and `_`");
    }
    None
}

/// Whether an issuer is one Azure takes (`https://`), or a loopback `http://` issuer the local
/// cloud takes (a test OIDC server).
pub fn issuer_ok(issuer: &str) -> bool {
    if issuer.starts_with("https://") {
        return true;
    }
    let Some(rest) = issuer.strip_prefix("http://") else { return false };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

impl Spec for FederatedIdentityCredential {
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let identity = env.resolve(&self.identity).or_unknown();
        let name = env.resolve(&self.name).or_unknown();
        let audiences: Vec<String> = if self.audiences.is_empty() {
            vec![DEFAULT_AUDIENCE.to_string()]
        } else {
            self.audiences.iter().map(|a| env.resolve(a).or_unknown()).collect()
        };
        let body = json!({ "properties": {
            "issuer": env.resolve(&self.issuer).or_unknown(),
            "subject": env.resolve(&self.subject).or_unknown(),
            "audiences": audiences,
        }});
        Some(Desired {
            owner: Owner::Parent,
            ..Desired::new(format!("{identity}/federatedIdentityCredentials/{name}"), API, body)
        })
    }
    fn name(&self) -> Option<&Sp<String>> {
        Some(&self.name)
    }
    fn depends_on(&self) -> &[Sp<String>] {
        &self.depends_on
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        if !refs::has_expr(&self.name)
            && let Some(why) = name_problem(&self.name)
        {
            cx.push(
                Diag::error(Code::ChildName, self.name.span, format!("invalid name `{}`: {why}", self.name.value))
                    .label("this name"),
            );
        }
        cx.reference("identity", &self.identity, &["user_assigned_identity"]);
        if !refs::has_expr(&self.issuer) && !issuer_ok(&self.issuer) {
            cx.push(
                Diag::error(Code::ChildName, self.issuer.span, "the issuer must be an https:// URL")
                    .label("not an https URL")
                    .help("Azure accepts only HTTPS issuers, e.g. https://token.actions.githubusercontent.com (http:// only on 127.0.0.1 or localhost, for the local cloud)"),
            );
        }
        if self.subject.value.is_empty() {
            cx.push(Diag::error(Code::ChildName, self.subject.span, "the subject is empty").label("empty"));
        }
        if self.audiences.len() > 1 {
            cx.push(
                Diag::error(Code::ChildName, self.audiences[1].span, "Azure accepts one audience per credential")
                    .label("a second audience"),
            );
        }
    }
    fn identity_key(&self) -> Option<String> {
        Some(child_key("federatedIdentityCredentials", &self.identity, &self.name))
    }
}

/// `federated_identity_credential`: its identity as a reference, issuer, subject, audiences.
pub fn import_federated_credential(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let identity = id.to_ascii_lowercase().find("/federatedidentitycredentials/").map(|at| &id[..at])?;
    let name = text(have, "/name").unwrap_or(last(id));
    let mut f = vec![
        Field::str("name", name),
        Field::str("identity", src.reference(identity).unwrap_or_else(|| identity.to_string())),
        Field::str("issuer", text(have, "/properties/issuer").unwrap_or_default()),
        Field::str("subject", text(have, "/properties/subject").unwrap_or_default()),
    ];
    let audiences: Vec<&str> = have
        .pointer("/properties/audiences")
        .and_then(J::as_array)
        .into_iter()
        .flatten()
        .filter_map(J::as_str)
        .collect();
    if audiences != [DEFAULT_AUDIENCE] {
        f.push(Field::new("audiences", Y::List(audiences.into_iter().map(|a| Y::Str(a.into())).collect())));
    }
    Some(Imported {
        key_hint: name.to_string(),
        key_alt: "credential".into(),
        rank: 2,
        fields: f,
        ..Imported::default()
    })
}

kind!(FederatedIdentityCredentialKind, FederatedIdentityCredential,
    type_name: "federated_identity_credential",
    arm_type: Some("Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"),
    api_version: "2024-11-30",
    attributes: &["id", "name"],
    weight: 3,
    import: import_federated_credential);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_azure() {
        assert!(name_problem("github-main").is_none());
        assert!(name_problem("ab").is_some());
        assert!(name_problem("-abc").is_some());
        assert!(name_problem("a.bc").is_some());
        assert!(name_problem(&"a".repeat(121)).is_some());
        assert!(name_problem(&"a".repeat(120)).is_none());
        assert!(issuer_ok("https://token.actions.githubusercontent.com"));
        assert!(issuer_ok("http://127.0.0.1:4000"));
        assert!(!issuer_ok("http://example.com"));
        assert!(!issuer_ok("ftp://127.0.0.1"));
    }
}
