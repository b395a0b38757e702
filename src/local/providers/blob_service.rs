//! `Microsoft.Storage/storageAccounts/blobServices`: an account's one blob service
//! (`default`), a view of its account. Shapes from Azure's recording
//! `StorageBlobTests/TestStorageBlobServiceProperties.json` (Az PowerShell, 2023-05-01) and
//! the Storage spec 2025-06-01 (`blob.json`, `BlobServices_GetServiceProperties`,
//! `BlobServices_SetServiceProperties`, `BlobServices_List`):
//! - GET answers the account's `sku`, `id`, `name: default`, `type` and the properties, with
//!   `cors: { corsRules: [] }` and `deleteRetentionPolicy: { allowPermanentDelete: false,
//!   enabled: false }` until a PUT sets them;
//! - PUT (200) sets each property it sends (a property it leaves out keeps its value: the
//!   recorded GET after a PUT of `defaultServiceVersion` alone still shows `cors` and
//!   `deleteRetentionPolicy`) and answers `id`, `name`, `type` and the properties it sent.

use axum::http::Method;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::arm::id::ResourceId;
use crate::local::http::{ArmError, json_response};
use crate::local::request::*;
use crate::local::shared::now_ms;
use crate::local::store::{Op, Resource};
use crate::local::table;

/// The one blob service an account has.
const DEFAULT: &str = "default";

/// The properties a blob service answers before any PUT (the recording's first GET).
fn defaults() -> Map<String, Value> {
    let v = json!({
        "cors": { "corsRules": [] },
        "deleteRetentionPolicy": { "allowPermanentDelete": false, "enabled": false },
    });
    v.as_object().cloned().unwrap_or_default()
}

/// The blob service as its GET answers it.
fn view(account: &Resource, stored: Option<&Resource>) -> Value {
    let mut props = defaults();
    if let Some(p) = stored.and_then(|s| s.body.get("properties")).and_then(Value::as_object) {
        props.extend(p.clone());
    }
    let mut out = json!({
        "id": format!("{}/blobServices/{DEFAULT}", account.id),
        "name": DEFAULT,
        "type": table::BLOB_SERVICES,
        "properties": props,
    });
    if let Some(sku) = account.body.get("sku") {
        out["sku"] = sku.clone();
    }
    out
}

/// `GET`/`PUT …/storageAccounts/{a}/blobServices/default`.
pub(crate) fn blob_service(req: &mut Req<'_>, id: &ResourceId) -> Result<Response, ArmError> {
    if !id.name().is_some_and(|n| n.eq_ignore_ascii_case(DEFAULT)) {
        return Err(not_found(id));
    }
    let parent = id.parent().ok_or_else(|| not_found(id))?;
    let (account, stored) = {
        let st = req.sh.store();
        (st.state.resources.get(&parent.key()).cloned(), st.state.resources.get(&id.key()).cloned())
    };
    let Some(account) = account else {
        return Err(if req.method == Method::GET { not_found(id) } else { parent_not_found(parent.as_str()) });
    };
    match req.method {
        Method::GET => Ok(json_response(200, &view(&account, stored.as_ref()), &[])),
        Method::PUT => {
            let given = parse_body(req)?;
            let sent = match given.get("properties") {
                None => Map::new(),
                Some(Value::Object(p)) => p.clone(),
                Some(_) => {
                    return Err(ArmError::new(
                        400,
                        "InvalidRequestContent",
                        "The request content was invalid and could not be deserialized: 'properties' is not an object.",
                    ));
                }
            };
            let mut props = stored
                .as_ref()
                .and_then(|s| s.body.get("properties"))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            props.extend(sent.clone());
            let rid = format!("{}/blobServices/{DEFAULT}", account.id);
            let resource = Resource {
                id: rid.clone(),
                kind: table::BLOB_SERVICES.into(),
                body: json!({ "id": rid, "name": DEFAULT, "type": table::BLOB_SERVICES, "properties": props }),
                etag: stored.as_ref().map_or(1, |s| s.etag + 1),
                created_ms: stored.as_ref().map_or_else(now_ms, |s| s.created_ms),
                busy_until_ms: 0,
                effective_ms: None,
            };
            req.sh.commit(vec![Op::PutResource { resource }])?;
            let out = json!({ "id": rid, "name": DEFAULT, "type": table::BLOB_SERVICES, "properties": sent });
            Ok(json_response(200, &out, &[]))
        }
        _ => Err(method_not_allowed()),
    }
}

/// `GET …/storageAccounts/{a}/blobServices`: the one service (`BlobServices_List`).
pub(crate) fn list(req: &Req<'_>, account_id: &str) -> Result<Response, ArmError> {
    let st = req.sh.store();
    let key = account_id.to_ascii_lowercase();
    let Some(account) = st.state.resources.get(&key) else {
        return Err(ArmError::new(
            404,
            "ResourceNotFound",
            format!("The Resource '{}' was not found.", account_id.rsplit('/').next().unwrap_or_default()),
        ));
    };
    let stored = st.state.resources.get(&format!("{key}/blobservices/{DEFAULT}"));
    Ok(json_response(200, &json!({ "value": [view(account, stored)] }), &[]))
}
