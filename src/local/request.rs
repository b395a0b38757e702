//! The provider kit: what every ARM provider handler shares, so no provider names the
//! router. The request a handler gets (`Req`, with the authenticated caller), the per-item
//! read filter of lists (`can_read`; the endpoint's own action is authorized by the pipeline,
//! in the front door), body parsing, ARM's common errors and the output filter (`present`)
//! that every answer goes through.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method};
use serde_json::{Value, json};

use crate::arm::id::ResourceId;
use crate::local::auth::Caller;
use crate::local::http::ArmError;
use crate::local::rbac::{self, Grant};
use crate::local::shared::Shared;
use crate::local::store::{Resource, State};
use crate::local::table::names;
use crate::local::table::*;

/// Everything a handler needs about the request.
pub(crate) struct Req<'a> {
    pub(crate) sh: &'a Arc<Shared>,
    pub(crate) method: Method,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) caller: Option<Caller>,
    pub(crate) api_version: String,
}

pub(crate) fn auth_missing() -> ArmError {
    ArmError::new(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
}

pub(crate) fn authorization_failed(c: &Caller, action: &str, scope: &str) -> ArmError {
    ArmError::new(
        403,
        "AuthorizationFailed",
        format!(
            "The client '{}' with object id '{}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
            c.client_id, c.object_id
        ),
    )
}

pub(crate) fn can_read(g: &[Grant], c: &Caller, action: &str, scope: &str) -> bool {
    rbac::allowed(g, &c.object_id, scope, action, false)
}

/// What a list shows `c`: the resources `keep` selects on which `c` holds the read `action`
/// (the effective role assignments are worked out once for the whole list).
pub(crate) fn readable<'s>(
    state: &'s State,
    c: &Caller,
    keep: impl Fn(&Resource) -> bool,
    action: impl Fn(&Resource) -> String,
) -> Vec<&'s Resource> {
    let g = rbac::grants(state, crate::local::shared::now_ms());
    state.resources.values().filter(|r| keep(r)).filter(|r| can_read(&g, c, &action(r), &r.id)).collect()
}

pub(crate) fn verb(m: &Method) -> &'static str {
    match *m {
        Method::GET | Method::HEAD => "read",
        Method::DELETE => "delete",
        _ => "write",
    }
}

pub(crate) fn rg_id(sh: &Shared, name: &str) -> String {
    format!("/subscriptions/{}/resourceGroups/{name}", sh.info.subscription_id)
}

pub(crate) fn rg_not_found(name: &str) -> ArmError {
    ArmError::new(404, "ResourceGroupNotFound", format!("Resource group '{name}' could not be found."))
}

pub(crate) fn parse_body(req: &Req<'_>) -> Result<Value, ArmError> {
    if req.body.is_empty() {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_slice(&req.body).map_err(|e| {
        ArmError::new(
            400,
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: '{e}'."),
        )
    })?;
    if !v.is_object() {
        return Err(ArmError::new(
            400,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: expected a JSON object.",
        ));
    }
    Ok(v)
}

/// A new resource's name checked by its type's Azure naming rules (`table::names`): ARM's
/// 400 `InvalidResourceName` when it breaks them. Types with a check of their own (storage
/// accounts, vaults, SQL servers, Data Lake Store accounts, resource groups) only have the
/// characters no resource name may hold refused here.
pub(crate) fn check_resource_name(type_lower: &str, canon: &str, name: &str) -> Result<(), ArmError> {
    let rule = names::rule(type_lower);
    if names::never_valid(name) || rule.is_some_and(|r| !names::follows(&r, name)) {
        let says = rule.map_or(
            "The name cannot contain '/', '\\', '?', '#', '%' or control characters, and cannot be '.' or '..'.",
            |r| r.says,
        );
        return Err(ArmError::new(
            400,
            "InvalidResourceName",
            format!("The resource name '{name}' is invalid for a resource of type '{canon}'. {says}"),
        ));
    }
    Ok(())
}

pub(crate) fn method_not_allowed() -> ArmError {
    ArmError::new(405, "MethodNotAllowed", "The requested method is not supported for this resource.")
}

pub(crate) fn normalize_location(l: &str) -> String {
    l.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

pub(crate) fn parent_not_found(parent: &str) -> ArmError {
    let name = parent.rsplit('/').next().unwrap_or(parent);
    ArmError::new(
        404,
        "ParentResourceNotFound",
        format!(
            "Failed to perform 'write' on resource(s) of type '{}', because the parent resource '{parent}' could not be found.",
            name
        ),
    )
}

pub(crate) fn not_found(id: &ResourceId) -> ArmError {
    let t = id.resource_type().unwrap_or_default();
    let rg = id.resource_group.clone().unwrap_or_default();
    ArmError::new(
        404,
        "ResourceNotFound",
        format!(
            "The Resource '{}/{}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
            t,
            id.name().unwrap_or_default()
        ),
    )
}

/// The body as GET shows it now (provisioning state of busy operations).
pub(crate) fn present(r: &Resource, now: u64) -> Value {
    let mut b = r.body.clone();
    if let Some(o) = b.as_object_mut() {
        o.remove("_idlab");
    }
    if r.busy_until_ms > now
        && let Some(p) = b.get_mut("properties").and_then(Value::as_object_mut)
    {
        let state = if r.kind == VAULTS {
            "RegisteringDns"
        } else if r.etag <= 1 {
            "Creating"
        } else {
            "Updating"
        };
        p.insert("provisioningState".into(), json!(state));
    }
    if has_etag(&r.kind.to_ascii_lowercase()) {
        b["etag"] = json!(format!("\"{}\"", r.etag));
    }
    b
}

/// Deep merge for PATCH: objects merge recursively, `null` removes; `tags` and `metadata`
/// are replaced whole, as Azure does (identity/Update-AzUserAssignedIdentity: a PATCH's tags
/// are the resource's tags after it).
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else if k == "tags" || k == "metadata" {
                    t.insert(k.clone(), v.clone());
                } else if let Some(existing) = t.get_mut(k)
                    && existing.is_object()
                    && v.is_object()
                {
                    merge(existing, v);
                } else {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// ARM's identity PATCH: `type` states the final set; listed user identities are added,
/// `null` removes one, others are kept. A type without `UserAssigned` drops them all: that
/// is how the last one goes (`SystemAssigned` or `None`), since an empty map is refused.
pub(crate) fn patch_identity(old: &Value, patch: &Value) -> Value {
    let mut out = json!({});
    out["type"] = patch.get("type").cloned().unwrap_or_else(|| old.get("type").cloned().unwrap_or(json!("None")));
    let user = out["type"].as_str().is_some_and(|t| t.to_ascii_lowercase().contains("userassigned"));
    if !user {
        // Identities added with a type that has none: the resource checks and refuses it.
        let added: serde_json::Map<String, Value> = patch
            .get("userAssignedIdentities")
            .and_then(Value::as_object)
            .map(|m| m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        if !added.is_empty() {
            out["userAssignedIdentities"] = Value::Object(added);
        }
        return out;
    }
    let mut map = old.get("userAssignedIdentities").and_then(Value::as_object).cloned().unwrap_or_default();
    if let Some(p) = patch.get("userAssignedIdentities").and_then(Value::as_object) {
        for (k, v) in p {
            let existing_key = map.keys().find(|x| x.eq_ignore_ascii_case(k)).cloned();
            if v.is_null() {
                if let Some(e) = existing_key {
                    map.remove(&e);
                }
            } else if existing_key.is_none() {
                map.insert(k.clone(), json!({}));
            }
        }
    }
    out["userAssignedIdentities"] = Value::Object(map);
    out
}

pub(crate) fn invalid_reference(what: &str, by: &str) -> ArmError {
    ArmError::new(
        400,
        "InvalidResourceReference",
        format!(
            "Resource {what} referenced by resource {by} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region."
        ),
    )
}

pub(crate) fn bad_filter(f: &str) -> ArmError {
    ArmError::new(400, "InvalidFilterInQueryString", format!("Invalid $filter '{f}' specified in the query string."))
}
