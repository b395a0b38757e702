//! The managed-identity endpoint of each VM: its own plain-HTTP loopback port (IMDS is not
//! TLS) answering the IMDS protocol (`GET /metadata/identity/oauth2/token`, header
//! `Metadata: true`) and the App Service protocol (`GET /msi/token`, header
//! `X-IDENTITY-HEADER`), as arm-contract §9 and §11 describe. The VM's identities are read
//! at every request, so removing an identity stops its tokens at once.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::http::{header, json_response, query_get, query_pairs};
use super::login;
use super::pipeline::{self, Bearer, Errors, Ids, Note, Plane};
use super::shared::{Shared, bind_loopback};
use super::store::{ImdsEndpoint, Op};
use super::token::sign;

/// Token lifetime of managed-identity tokens (IMDS shows about a day).
pub const MI_TOKEN_SECONDS: i64 = 86399;

/// Resource URIs the endpoint issues tokens for (the services' identifier URIs).
pub const KNOWN_RESOURCES: &[&str] = &[
    "https://management.azure.com/",
    "https://management.azure.com",
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    "https://storage.azure.com/",
    "https://storage.azure.com",
    "https://vault.azure.net",
    "https://vault.azure.net/",
    "https://datalake.azure.net/",
    "https://database.windows.net/",
    "https://database.windows.net",
    "https://graph.microsoft.com",
    "https://graph.microsoft.com/",
];

fn known_resource(r: &str) -> bool {
    KNOWN_RESOURCES.contains(&r)
        || (r.starts_with("https://")
            && (r.ends_with(".blob.core.windows.net") || r.ends_with(".blob.core.windows.net/")))
}

/// Bind and serve every endpoint recorded in the state (a taken port gets a new one, and
/// the record is updated).
///
/// # Errors
/// A message when a port cannot be bound at all or the change cannot be recorded.
pub fn start_all(sh: &Arc<Shared>) -> Result<(), String> {
    let endpoints: Vec<(String, ImdsEndpoint)> =
        sh.store().state.imds.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (key, ep) in endpoints {
        let listener = bind_loopback(ep.port).map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        if port != ep.port {
            let mut moved = ep.clone();
            moved.port = port;
            sh.store().append(vec![Op::PutImds { key: key.clone(), endpoint: moved }]).map_err(|e| e.to_string())?;
        }
        serve(sh, &key, listener);
    }
    Ok(())
}

/// Serve one VM's endpoint on an already bound listener.
pub fn serve(sh: &Arc<Shared>, key: &str, listener: std::net::TcpListener) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    if let Some(old) = sh.imds_running.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_string(), tx) {
        let _ = old.send(true);
    }
    let shared = sh.clone();
    let key = key.to_string();
    sh.runtime.spawn(async move {
        let _ = listener.set_nonblocking(true);
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
        let handler = axum::Router::new().fallback(handle).with_state((shared.clone(), key.clone()));
        let app = pipeline::layer(&shared, plane(), handler).layer(Extension(Endpoint(key)));
        super::tls::serve_plain(listener, app, rx, shared.serving.clone()).await;
    });
}

/// Stop one VM's endpoint.
pub fn stop(sh: &Shared, key: &str) {
    if let Some(tx) = sh.imds_running.lock().unwrap_or_else(|p| p.into_inner()).remove(key) {
        let _ = tx.send(true);
    }
}

/// Stop every endpoint.
pub fn stop_all(sh: &Shared) {
    for (_, tx) in sh.imds_running.lock().unwrap_or_else(|p| p.into_inner()).drain() {
        let _ = tx.send(true);
    }
}

fn imds_error(status: u16, error: &str, description: &str) -> Response {
    json_response(status, &json!({ "error": error, "error_description": description }), &[])
}

/// The VM (its state key) a managed-identity endpoint serves.
#[derive(Debug, Clone)]
struct Endpoint(String);

/// The managed-identity plane: OAuth JSON errors; no bearer token, but the `Metadata: true`
/// header (IMDS) or the endpoint's `X-IDENTITY-HEADER` secret (App Service).
fn plane() -> Plane {
    Plane {
        name: "imds",
        errors: Errors::OAuthJson,
        ids: Ids::Handler,
        any_case_scheme: false,
        audiences: pipeline::no_audience,
        admit,
        authorize: pipeline::pass,
        log_path: pipeline::request_path,
        body_limit: |_| 64 * 1024,
        too_large: |limit| imds_error(413, "invalid_request", &format!("The request body exceeds {limit} bytes.")),
    }
}

/// The head checks, in order: the path, the method, the endpoint, then its header.
fn admit(sh: &Arc<Shared>, parts: &mut Parts, _: &Bearer, _: &mut Note) -> Result<(), Box<Response>> {
    let key = parts.extensions.get::<Endpoint>().map(|e| e.0.clone()).unwrap_or_default();
    let path = parts.uri.path().trim_end_matches('/').to_ascii_lowercase();
    let app_service = path == "/msi/token";
    if path != "/metadata/identity/oauth2/token" && !app_service {
        return Err(Box::new(imds_error(
            404,
            "not_found",
            "The requested path is not served by this managed-identity endpoint: use /metadata/identity/oauth2/token (IMDS) or /msi/token (App Service).",
        )));
    }
    if parts.method != Method::GET {
        return Err(Box::new(imds_error(405, "invalid_request", "Only GET is supported.")));
    }
    let endpoint = sh.store().state.imds.get(&key).cloned();
    let Some(endpoint) = endpoint else {
        return Err(Box::new(imds_error(400, "invalid_request", "Identity not found")));
    };
    if app_service {
        if header(&parts.headers, "x-identity-header") != Some(endpoint.header_secret.as_str()) {
            return Err(Box::new(imds_error(
                401,
                "invalid_request",
                "The X-IDENTITY-HEADER header is missing or incorrect.",
            )));
        }
    } else if header(&parts.headers, "metadata").map(str::to_ascii_lowercase).as_deref() != Some("true")
        || parts.headers.contains_key("x-forwarded-for")
    {
        return Err(Box::new(imds_error(400, "invalid_request", "Required metadata header not specified")));
    }
    Ok(())
}

/// The handler, behind the pipeline (the body is never read).
async fn handle(State((sh, key)): State<(Arc<Shared>, String)>, uri: Uri) -> Response {
    answer(&sh, &key, &uri)
}

fn answer(sh: &Shared, key: &str, uri: &Uri) -> Response {
    let q = query_pairs(uri.query());
    let app_service = uri.path().trim_end_matches('/').eq_ignore_ascii_case("/msi/token");
    let Some(resource) = query_get(&q, "resource").map(str::to_string) else {
        return imds_error(400, "invalid_request", "Required query variable 'resource' is missing");
    };
    if query_get(&q, "api-version").is_none() {
        return imds_error(400, "invalid_request", "Required query variable 'api-version' is missing");
    }
    if !known_resource(&resource) {
        return imds_error(
            400,
            "invalid_resource",
            &format!(
                "AADSTS500011: The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                sh.info.tenant_id
            ),
        );
    }
    // The VM's current identities.
    let (vm, principals) = {
        let st = sh.store();
        let Some(vm) = st.state.resources.get(key).cloned() else {
            return imds_error(400, "invalid_request", "Identity not found");
        };
        let mut ids: Vec<(String, String, String)> = Vec::new(); // (object id, client id, mirid)
        if let Some(p) =
            vm.body.pointer("/identity/principalId").and_then(Value::as_str).and_then(|p| st.state.principals.get(p))
        {
            ids.push((p.object_id.clone(), p.client_id.clone(), vm.id.clone()));
        }
        let mut user = Vec::new();
        if let Some(m) = vm.body.pointer("/identity/userAssignedIdentities").and_then(Value::as_object) {
            for rid in m.keys() {
                if let Some(r) = st.state.resources.get(&rid.to_ascii_lowercase())
                    && let Some(p) = r
                        .body
                        .pointer("/properties/principalId")
                        .and_then(Value::as_str)
                        .and_then(|p| st.state.principals.get(p))
                {
                    user.push((p.object_id.clone(), p.client_id.clone(), r.id.clone()));
                }
            }
        }
        let system = ids.first().cloned();
        (vm, (system, user))
    };
    let (system, user) = principals;
    let by = |f: &dyn Fn(&(String, String, String)) -> bool| system.iter().chain(user.iter()).find(|x| f(x)).cloned();
    let chosen = if let Some(c) = query_get(&q, "client_id") {
        by(&|x| x.1.eq_ignore_ascii_case(c))
    } else if let Some(o) = query_get(&q, "object_id").or_else(|| query_get(&q, "principal_id")) {
        by(&|x| x.0.eq_ignore_ascii_case(o))
    } else if let Some(r) = query_get(&q, "msi_res_id").or_else(|| query_get(&q, "mi_res_id")) {
        by(&|x| x.2.eq_ignore_ascii_case(r))
    } else if system.is_some() {
        system.clone()
    } else if user.len() == 1 {
        user.first().cloned()
    } else if user.len() > 1 {
        return imds_error(
            400,
            "invalid_request",
            "Multiple user assigned identities exist, please specify the clientId / resourceId of the identity in the token request",
        );
    } else {
        None
    };
    let Some((oid, cid, mirid)) = chosen else {
        return imds_error(400, "invalid_request", "Identity not found");
    };
    let _ = vm;
    let claims = login::claims_for(sh, &oid, &cid, &resource, MI_TOKEN_SECONDS, Some(mirid), "2");
    let token = sign(&sh.key, &claims);
    let body = if app_service {
        json!({ "access_token": token, "expires_on": claims.exp.to_string(), "resource": resource, "token_type": "Bearer", "client_id": cid })
    } else {
        json!({
            "access_token": token,
            "refresh_token": "",
            "expires_in": MI_TOKEN_SECONDS.to_string(),
            "expires_on": claims.exp.to_string(),
            "ext_expires_in": MI_TOKEN_SECONDS.to_string(),
            "not_before": claims.nbf.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": cid,
        })
    };
    json_response(200, &body, &[])
}
