//! Provider `Microsoft.ManagedIdentity`: user-assigned identities and system identities.

use axum::response::Response;
use serde_json::{Value, json};

use crate::local::http::{ArmError, json_response};
use crate::local::request::*;
use crate::local::shared::{Shared, guid, now_ms};
use crate::local::store::{Op, Principal, Resource, State as CloudState};

pub(crate) fn system_identity(req: &Req<'_>, res: &str) -> Result<Response, ArmError> {
    let st = req.sh.store();
    let r = st
        .state
        .resources
        .get(&res.to_ascii_lowercase())
        .ok_or_else(|| ArmError::new(404, "ResourceNotFound", format!("The Resource '{res}' was not found.")))?;
    let pid = r
        .body
        .pointer("/identity/principalId")
        .and_then(Value::as_str)
        .ok_or_else(|| ArmError::new(404, "ResourceNotFound", "The resource has no system-assigned identity."))?;
    let p = st
        .state
        .principals
        .get(pid)
        .ok_or_else(|| ArmError::new(404, "ResourceNotFound", "The system-assigned identity was not found."))?;
    Ok(json_response(
        200,
        &json!({
            "id": format!("{}/providers/Microsoft.ManagedIdentity/identities/default", r.id),
            "name": "default",
            "type": "Microsoft.ManagedIdentity/identities",
            "location": r.body.get("location"),
            "properties": { "tenantId": req.sh.info.tenant_id, "principalId": p.object_id, "clientId": p.client_id, "clientSecretUrl": format!("{}/_idlab/msi/{}", req.sh.base_url, p.object_id) },
        }),
        &[],
    ))
}

pub(crate) fn prepare_identity(
    sh: &Shared,
    st: &CloudState,
    id: &str,
    existing: Option<&Resource>,
    body: &mut Value,
    extra: &mut Vec<Op>,
) {
    let old = existing.and_then(|r| r.body.get("properties")).cloned().unwrap_or(json!({}));
    let principal_id = old.get("principalId").and_then(Value::as_str).map_or_else(guid, str::to_string);
    let client_id = old.get("clientId").and_then(Value::as_str).map_or_else(guid, str::to_string);
    let iso = body
        .pointer("/properties/isolationScope")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| old.get("isolationScope").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "None".into());
    body["properties"] = json!({ "tenantId": sh.info.tenant_id, "principalId": principal_id, "clientId": client_id, "isolationScope": iso });
    // Managed Identity writes its ids with `resourcegroups` in lower case, whatever the
    // request's casing (every identity recording).
    body["id"] = json!(lower_resource_groups(id));
    // Azure answers `tags: {}` for an identity without tags (every identity recording).
    if body.get("tags").is_none_or(Value::is_null) {
        body["tags"] = json!({});
    }
    if !st.principals.contains_key(&principal_id) {
        extra.push(Op::PutPrincipal {
            principal: Principal {
                object_id: principal_id,
                client_id,
                display_name: id.rsplit('/').next().unwrap_or_default().to_string(),
                kind: "ManagedIdentity".into(),
                secret_sha256: None,
                federated: Vec::new(),
                resource_id: Some(id.to_string()),
                created_ms: now_ms(),
            },
        });
    }
}

/// The lower-cased type of a user-assigned identity's federated credentials.
pub(crate) const FIC_LOWER: &str = "microsoft.managedidentity/userassignedidentities/federatedidentitycredentials";

/// How many federated credentials Azure allows on one identity.
pub const FEDERATED_PER_IDENTITY: usize = 20;

/// A federated identity credential's PUT: its identity must exist, it names an `https`
/// issuer, a subject and exactly one audience, and an identity holds at most
/// [`FEDERATED_PER_IDENTITY`] of them. The body keeps only `properties` (Azure's answer has no
/// location, tags or provisioning state).
pub(crate) fn prepare_federated_credential(
    st: &CloudState,
    id: &str,
    existing: Option<&Resource>,
    body: &mut Value,
) -> Result<(), ArmError> {
    let lower = id.to_ascii_lowercase();
    let Some((parent, _)) = lower.rsplit_once("/federatedidentitycredentials/") else {
        return Err(ArmError::new(404, "NotFound", "Not found."));
    };
    if !st.resources.contains_key(parent) {
        let shown = &id[..parent.len()];
        return Err(crate::local::request::parent_not_found(shown));
    }
    let bad = |m: &str| ArmError::new(400, "BadRequest", m.to_string());
    let p = body.get("properties").cloned().unwrap_or(json!({}));
    let issuer = p.get("issuer").and_then(Value::as_str).unwrap_or_default();
    let subject = p.get("subject").and_then(Value::as_str).unwrap_or_default();
    if !issuer.starts_with("https://") && !issuer.starts_with("http://") {
        return Err(bad("The issuer must be a valid URL using the https scheme."));
    }
    if subject.is_empty() {
        return Err(bad("The subject must not be empty."));
    }
    let audiences: Vec<&str> = p
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if audiences.len() != 1 {
        return Err(bad("Exactly one audience is supported for a federated identity credential."));
    }
    let prefix = format!("{parent}/federatedidentitycredentials/");
    if existing.is_none() && st.resources.keys().filter(|k| k.starts_with(&prefix)).count() >= FEDERATED_PER_IDENTITY {
        return Err(bad(&format!(
            "The user-assigned identity already has {FEDERATED_PER_IDENTITY} federated identity credentials, the most it can have."
        )));
    }
    let keep = json!({ "issuer": issuer, "subject": subject, "audiences": audiences });
    if let Some(o) = body.as_object_mut() {
        o.retain(|k, _| matches!(k.as_str(), "id" | "name" | "type"));
        o.insert("properties".into(), keep);
        o.insert("id".into(), json!(lower_resource_groups(id)));
    }
    Ok(())
}

/// The lower-cased type of user-assigned identities.
pub(crate) const UAMI_LOWER: &str = "microsoft.managedidentity/userassignedidentities";

/// The api-version whose identities carry `properties.clientSecretUrl` (TestCrud.json).
pub(crate) const SECRET_URL_VERSION: &str = "2015-08-31-preview";

/// An identity as 2015-08-31-preview shows it: with the URL of its credentials (here the
/// local cloud's, as for system identities).
pub(crate) fn with_secret_url(body: &mut Value, base: &str) {
    let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) else { return };
    let Some(oid) = p.get("principalId").and_then(Value::as_str).map(str::to_string) else { return };
    p.insert("clientSecretUrl".into(), json!(format!("{base}/_idlab/msi/{oid}")));
}

/// An id with its `resourceGroups` segment in lower case, as Managed Identity writes its ids
/// and `Location` headers.
pub(crate) fn lower_resource_groups(id: &str) -> String {
    let mut parts: Vec<String> = id.split('/').map(str::to_string).collect();
    if let Some(p) = parts.iter_mut().find(|p| p.eq_ignore_ascii_case("resourcegroups")) {
        *p = "resourcegroups".into();
    }
    parts.join("/")
}
