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
