//! Microsoft Graph v1.0, the part tools use to find principals (`az keyvault create`, `az role
//! assignment --assignee`, `az keyvault set-policy --spn`): served on the ARM port under
//! `/v1.0/` (as `graph.microsoft.com` is reached through the proxy) and `/graph/v1.0/` (the
//! `microsoftGraphResourceId` of `/metadata/endpoints`).
//!
//! | request | answer |
//! |---|---|
//! | `GET /v1.0/me` | an app token has no signed-in user: 400 `BadRequest` |
//! | `GET /v1.0/servicePrincipals` (`$filter`: `appId eq`, `id eq`, `displayName eq`, `servicePrincipalNames/any(c:c eq '…')`) | the matching service principals |
//! | `GET /v1.0/servicePrincipals/{id}`, `/v1.0/servicePrincipals(appId='…')` | one, or 404 `Request_ResourceNotFound` |
//! | `GET /v1.0/directoryObjects/{id}` | one, with its `@odata.type` |
//! | `POST /v1.0/directoryObjects/getByIds` `{"ids", "types"}` | the known ones, with their `@odata.type` |
//! | `GET /v1.0/users`, `/v1.0/groups` | no users or groups here: an empty list |
//! | `GET /v1.0/users/{id}`, `/v1.0/groups/{id}` | 404 `Request_ResourceNotFound` |
//!
//! Every principal of the local directory is a service principal: managed identities
//! (`servicePrincipalType: ManagedIdentity`), the operator and the principals made through the
//! admin API (`Application`). Any principal of the tenant may read them (Azure asks for an
//! application permission such as `Application.Read.All`; the local directory grants it to all).

use axum::http::{HeaderMap, Method};
use axum::response::Response;
use serde_json::{Value, json};

use super::http::{json_response, query_get};
use super::pipeline::Bearer;
use super::shared::{Shared, guid};
use super::store::Principal;

const CONTEXT: &str = "https://graph.microsoft.com/v1.0/$metadata";
const SERVICE_PRINCIPAL: &str = "#microsoft.graph.servicePrincipal";

/// Whether a path is Graph's: `/v1.0/…`, `/beta/…`, or either under `/graph`.
pub fn is_graph_path(lower: &str) -> bool {
    let p = lower.strip_prefix("/graph").unwrap_or(lower);
    p.starts_with("/v1.0/") || p.starts_with("/beta/") || lower.starts_with("/graph/")
}

/// The audiences Graph accepts: its App ID URI (with or without the trailing `/`) and its
/// application id.
pub fn accepts(aud: &str) -> bool {
    matches!(
        aud.trim_end_matches('/').to_ascii_lowercase().as_str(),
        "https://graph.microsoft.com" | "00000003-0000-0000-c000-000000000000"
    )
}

/// Graph's error body: `{"error": {"code", "message", "innerError": {…}}}`.
fn error(status: u16, code: &str, message: &str, headers: &HeaderMap) -> Response {
    let request_id = guid();
    let client = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| request_id.clone(), str::to_string);
    let date =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    json_response(
        status,
        &json!({ "error": { "code": code, "message": message, "innerError": { "date": date, "request-id": request_id, "client-request-id": client } } }),
        &[("request-id", request_id.clone()), ("client-request-id", client)],
    )
}

fn not_found(id: &str, headers: &HeaderMap) -> Response {
    error(
        404,
        "Request_ResourceNotFound",
        &format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
        headers,
    )
}

/// A principal as Graph's `servicePrincipal` resource.
fn service_principal(sh: &Shared, p: &Principal) -> Value {
    let managed = p.kind == "ManagedIdentity";
    let mut names = vec![json!(p.client_id)];
    let mut alternative = Vec::new();
    if managed && let Some(rid) = &p.resource_id {
        let explicit = rid.to_ascii_lowercase().contains("/userassignedidentities/");
        alternative = vec![json!(format!("isExplicit={}", if explicit { "True" } else { "False" })), json!(rid)];
        names.push(json!(format!("https://identity.azure.net/{}", super::shared::sha256_hex(rid))));
    }
    // Graph's default properties of a servicePrincipal, as it answered a read by id
    // (recording authorization/CreateRAForServicePrincipal.json, GET /v1.0/servicePrincipals/{id}
    // and /v1.0/directoryObjects/{id}): the settings a principal made here has none of are
    // null or empty.
    let created = time::OffsetDateTime::from_unix_timestamp((p.created_ms / 1000) as i64)
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok());
    json!({
        "id": p.object_id,
        "deletedDateTime": null,
        "accountEnabled": true,
        "alternativeNames": alternative,
        "appDisplayName": if managed { Value::Null } else { json!(p.display_name) },
        "appDescription": null,
        "appId": p.client_id,
        "applicationTemplateId": null,
        "appOwnerOrganizationId": if managed { Value::Null } else { json!(sh.info.tenant_id) },
        "appRoleAssignmentRequired": false,
        "createdDateTime": created,
        "description": null,
        "disabledByMicrosoftStatus": null,
        "displayName": p.display_name,
        "homepage": null,
        "loginUrl": null,
        "logoutUrl": null,
        "notes": null,
        "notificationEmailAddresses": [],
        "preferredSingleSignOnMode": null,
        "preferredTokenSigningKeyThumbprint": null,
        "replyUrls": [],
        "servicePrincipalNames": names,
        "servicePrincipalType": if managed { "ManagedIdentity" } else { "Application" },
        "signInAudience": if managed { Value::Null } else { json!("AzureADMyOrg") },
        "tags": [],
        "tokenEncryptionKeyId": null,
        "samlSingleSignOnSettings": null,
        "addIns": [],
        "appRoles": [],
        "info": { "logoUrl": null, "marketingUrl": null, "privacyStatementUrl": null, "supportUrl": null, "termsOfServiceUrl": null },
        "keyCredentials": [],
        "oauth2PermissionScopes": [],
        "passwordCredentials": [],
        "resourceSpecificApplicationPermissions": [],
        "verifiedPublisher": { "displayName": null, "verifiedPublisherId": null, "addedDateTime": null },
    })
}

fn typed(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("@odata.type".into(), json!(SERVICE_PRINCIPAL));
    }
    v
}

/// Which principals a filter keeps.
type Keep<'a> = Box<dyn Fn(&Principal) -> bool + 'a>;

/// A `$filter` on `servicePrincipals`: which principals it keeps, or `None` when Graph would
/// refuse it.
fn sp_filter(f: &str) -> Option<Keep<'_>> {
    let f = f.trim();
    let lit = |s: &str| -> Option<String> {
        let s = s.trim();
        Some(s.strip_prefix('\'')?.strip_suffix('\'')?.replace("''", "'"))
    };
    let lower = f.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("serviceprincipalnames/any(") {
        // `servicePrincipalNames/any(c:c eq 'x')`, any lambda variable.
        let inner = f[f.len() - rest.len()..].strip_suffix(')')?;
        let (var, cond) = inner.split_once(':')?;
        let (lhs, rhs) = cond.trim().split_once(" eq ")?;
        if lhs.trim() != var.trim() {
            return None;
        }
        let want = lit(rhs)?;
        return Some(Box::new(move |p: &Principal| p.client_id.eq_ignore_ascii_case(&want)));
    }
    let (key, value) = f.split_once(" eq ")?;
    let want = lit(value)?;
    match key.trim().to_ascii_lowercase().as_str() {
        "appid" => Some(Box::new(move |p: &Principal| p.client_id.eq_ignore_ascii_case(&want))),
        "id" => Some(Box::new(move |p: &Principal| p.object_id.eq_ignore_ascii_case(&want))),
        "displayname" => Some(Box::new(move |p: &Principal| p.display_name == want)),
        _ => None,
    }
}

/// Serves a Graph request (`lower` is the lower-cased path; `path` keeps the case of ids).
pub fn handle(
    sh: &Shared,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &[u8],
    bearer: &Bearer,
) -> Response {
    match bearer {
        Bearer::Checked(Ok(_)) => {}
        Bearer::Absent => return error(401, "InvalidAuthenticationToken", "Access token is empty.", headers),
        Bearer::OtherScheme | Bearer::Checked(Err(_)) => {
            return error(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience.",
                headers,
            );
        }
    }
    let trimmed = path.strip_prefix("/graph").unwrap_or(path).trim_end_matches('/');
    let Some(rest) = trimmed.strip_prefix("/v1.0/").or_else(|| trimmed.strip_prefix("/beta/")) else {
        return error(400, "BadRequest", "Invalid version.", headers);
    };
    let lower = rest.to_ascii_lowercase();
    let st = sh.store();
    let principals = || st.state.principals.values();
    let get = *method == Method::GET;
    if get && lower == "me" {
        return error(400, "BadRequest", "/me request is only valid with delegated authentication flow.", headers);
    }
    if get && (lower == "users" || lower == "groups") {
        return json_response(200, &json!({ "@odata.context": format!("{CONTEXT}#{lower}"), "value": [] }), &[]);
    }
    if get && lower == "serviceprincipals" {
        let keep = match query_get(query, "$filter") {
            None => Box::new(|_: &Principal| true) as Keep<'_>,
            Some(f) => match sp_filter(f) {
                Some(k) => k,
                None => {
                    return error(
                        400,
                        "Request_UnsupportedQuery",
                        &format!("Unsupported or invalid query filter clause specified: '{f}'."),
                        headers,
                    );
                }
            },
        };
        let value: Vec<Value> = principals().filter(|p| keep(p)).map(|p| service_principal(sh, p)).collect();
        return json_response(
            200,
            &json!({ "@odata.context": format!("{CONTEXT}#servicePrincipals"), "value": value }),
            &[],
        );
    }
    if get
        && let Some(arg) = rest.strip_prefix("servicePrincipals(appId=").or_else(|| {
            lower.starts_with("serviceprincipals(appid=").then(|| &rest["servicePrincipals(appId=".len()..])
        })
    {
        let app = arg.trim_end_matches(')').trim_matches('\'');
        return match principals().find(|p| p.client_id.eq_ignore_ascii_case(app)) {
            Some(p) => entity(sh, p, "servicePrincipals"),
            None => not_found(app, headers),
        };
    }
    // No users or groups here: a read by id is Graph's 404 (the recording above, GET
    // /v1.0/users/{id} of a service principal's id).
    for prefix in ["users/", "groups/"] {
        if get && lower.starts_with(prefix) && !lower[prefix.len()..].contains('/') {
            return not_found(&rest[prefix.len()..], headers);
        }
    }
    for (prefix, set) in [("serviceprincipals/", "servicePrincipals"), ("directoryobjects/", "directoryObjects")] {
        if get && lower.starts_with(prefix) && !lower[prefix.len()..].contains('/') {
            let id = &rest[prefix.len()..];
            return match st.state.principal(id) {
                Some(p) => entity(sh, p, set),
                None => not_found(id, headers),
            };
        }
    }
    if *method == Method::POST && lower == "directoryobjects/getbyids" {
        let Ok(req) = serde_json::from_slice::<Value>(body) else {
            return error(400, "BadRequest", "Empty Payload. JSON content expected.", headers);
        };
        let Some(ids) = req.get("ids").and_then(Value::as_array) else {
            return error(
                400,
                "Request_BadRequest",
                "Invalid value specified for property 'ids' of resource 'directoryObject'.",
                headers,
            );
        };
        let types: Vec<String> = req
            .get("types")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|t| {
                t.trim_start_matches("#microsoft.graph.").trim_start_matches("microsoft.graph.").to_ascii_lowercase()
            })
            .collect();
        let wanted = types.is_empty() || types.iter().any(|t| t == "serviceprincipal");
        let value: Vec<Value> = ids
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|id| st.state.principal(id))
            .filter(|_| wanted)
            .map(|p| typed(service_principal(sh, p)))
            .collect();
        return json_response(
            200,
            &json!({ "@odata.context": format!("{CONTEXT}#directoryObjects"), "value": value }),
            &[],
        );
    }
    let segment = rest.split('/').next().unwrap_or_default();
    error(400, "BadRequest", &format!("Resource not found for the segment '{segment}'."), headers)
}

/// One object, as Graph answers a read by key.
fn entity(sh: &Shared, p: &Principal, set: &str) -> Response {
    let mut v = service_principal(sh, p);
    if set == "directoryObjects" {
        v = typed(v);
    }
    v["@odata.context"] = json!(format!("{CONTEXT}#{set}/$entity"));
    json_response(200, &v, &[])
}
