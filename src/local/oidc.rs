//! A test OIDC issuer on loopback, shaped like the two CI systems idlab signs in from: it
//! publishes `/.well-known/openid-configuration` and its keys (`/keys`), answers GitHub
//! Actions' token request (`GET /github/token?audience=…` → `{"value"}`) and Azure
//! Pipelines' (`POST /ado/oidctoken?api-version=7.1&serviceConnectionId=…` →
//! `{"oidcToken"}`), both behind a bearer request token, and counts the assertions it gave.
//! Its issuer is its own base URL (`http://127.0.0.1:PORT`).
//!
//! What the next assertions carry is set through [`Control`] (in process) or `PUT /_control`
//! (JSON, same fields): the subject, an audience overriding the requested one, `iat`/`exp`
//! (so tests inject the clock instead of sleeping), signing with a key it does not publish,
//! and repeating the last assertion. `GET /_control` answers the settings and the count.
//! Served by `idlab local oidc-server` (hidden) for pipelines' example steps.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::token::{SigningKey, sign_value};

/// What the next assertions carry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Control {
    /// The `sub` claim (default [`SUBJECT`] from the GitHub endpoint,
    /// `sc://idlab/idlab/{serviceConnectionId}` from the Azure Pipelines one).
    pub subject: Option<String>,
    /// An `aud` that overrides the requested audience.
    pub audience: Option<String>,
    /// `iat` and `nbf` (Unix seconds; default now).
    pub iat: Option<i64>,
    /// `exp` (Unix seconds; default `iat` + 300).
    pub exp: Option<i64>,
    /// Sign with the key the issuer does not publish.
    pub wrong_key: bool,
    /// Give the previous assertion again instead of a new one.
    pub repeat: bool,
    /// Assertions given so far (read only).
    pub requests: u64,
}

/// The default subject.
pub const SUBJECT: &str = "repo:idlab/idlab:ref:refs/heads/main";

struct Issuer {
    base: String,
    request_token: String,
    key: SigningKey,
    other: SigningKey,
    control: Mutex<Control>,
    last: Mutex<Option<String>>,
}

/// A running test issuer.
pub struct OidcServer {
    /// `http://127.0.0.1:PORT`: the issuer and the base of its endpoints.
    pub base: String,
    /// The bearer token its token endpoints require.
    pub request_token: String,
    inner: Arc<Issuer>,
}

impl OidcServer {
    /// The GitHub-style token request URL (`ACTIONS_ID_TOKEN_REQUEST_URL`).
    pub fn github_url(&self) -> String {
        format!("{}/github/token?run=1", self.base)
    }
    /// The Azure-Pipelines-style token request URL (`SYSTEM_OIDCREQUESTURI`).
    pub fn pipelines_url(&self) -> String {
        format!("{}/ado/oidctoken", self.base)
    }
    /// Change what the next assertions carry (the count is kept).
    pub fn set(&self, f: impl FnOnce(&mut Control)) {
        let mut c = self.inner.control.lock().unwrap_or_else(|p| p.into_inner());
        let n = c.requests;
        f(&mut c);
        c.requests = n;
    }
    /// The last assertion given (tests check it never shows in output).
    pub fn last_assertion(&self) -> Option<String> {
        self.inner.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// Assertions given so far.
    pub fn requests(&self) -> u64 {
        self.inner.control.lock().unwrap_or_else(|p| p.into_inner()).requests
    }
}

/// Start the issuer on `listener` on the current tokio runtime, signing with `key` (published)
/// and `other` (never published, for wrongly signed assertions). Token requests must carry
/// `request_token`.
///
/// # Errors
/// The listener cannot be used by tokio, or a key is not an RSA PKCS#8 key.
pub fn start(
    listener: std::net::TcpListener,
    key_der: &[u8],
    other_der: &[u8],
    request_token: &str,
) -> Result<OidcServer, String> {
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let base = format!("http://127.0.0.1:{port}");
    let inner = Arc::new(Issuer {
        base: base.clone(),
        request_token: request_token.to_string(),
        key: SigningKey::from_pkcs8(key_der)?,
        other: SigningKey::from_pkcs8(other_der)?,
        control: Mutex::new(Control::default()),
        last: Mutex::new(None),
    });
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
    let app = axum::Router::new().fallback(handle).with_state(inner.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(OidcServer { base, request_token: request_token.to_string(), inner })
}

fn reply(status: u16, body: &Value) -> Response {
    (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), axum::Json(body.clone())).into_response()
}

async fn handle(State(is): State<Arc<Issuer>>, method: Method, uri: Uri, headers: HeaderMap, body: String) -> Response {
    let path = uri.path().trim_end_matches('/');
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let q = |k: &str| query.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    match (method.as_str(), path) {
        ("GET", "/.well-known/openid-configuration") => reply(
            200,
            &json!({
                "issuer": is.base,
                "jwks_uri": format!("{}/keys", is.base),
                "subject_types_supported": ["public"],
                "response_types_supported": ["id_token"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf"],
            }),
        ),
        ("GET", "/keys") => reply(200, &json!({ "keys": [is.key.jwk(&is.base)] })),
        ("GET", "/_control") => reply(
            200,
            &serde_json::to_value(&*is.control.lock().unwrap_or_else(|p| p.into_inner())).unwrap_or_default(),
        ),
        ("PUT", "/_control") => match serde_json::from_str::<Control>(&body) {
            Ok(mut c) => {
                let mut cur = is.control.lock().unwrap_or_else(|p| p.into_inner());
                c.requests = cur.requests;
                *cur = c;
                reply(200, &serde_json::to_value(&*cur).unwrap_or_default())
            }
            Err(e) => reply(400, &json!({ "error": e.to_string() })),
        },
        ("GET", "/github/token") | ("POST", "/ado/oidctoken") => {
            let bearer = headers.get("authorization").and_then(|h| h.to_str().ok()).unwrap_or_default();
            if bearer != format!("Bearer {}", is.request_token) {
                return reply(401, &json!({ "message": "Bad credentials" }));
            }
            let github = path == "/github/token";
            let (aud, sub) = if github {
                (q("audience").unwrap_or_else(|| "api://AzureADTokenExchange".into()), SUBJECT.to_string())
            } else {
                let (Some(_), Some(connection)) = (q("api-version"), q("serviceConnectionId")) else {
                    return reply(400, &json!({ "message": "api-version and serviceConnectionId are required" }));
                };
                ("api://AzureADTokenExchange".into(), pipelines_subject(&connection))
            };
            let jwt = assertion(&is, &aud, &sub);
            reply(200, &if github { json!({ "value": jwt }) } else { json!({ "oidcToken": jwt }) })
        }
        _ => reply(404, &json!({ "message": "Not Found" })),
    }
}

/// The subject of the Azure Pipelines endpoint's assertions for a service connection.
pub fn pipelines_subject(connection: &str) -> String {
    format!("sc://idlab/idlab/{connection}")
}

fn assertion(is: &Issuer, requested_aud: &str, default_sub: &str) -> String {
    let c = {
        let mut c = is.control.lock().unwrap_or_else(|p| p.into_inner());
        c.requests += 1;
        c.clone()
    };
    let mut last = is.last.lock().unwrap_or_else(|p| p.into_inner());
    if c.repeat
        && let Some(prev) = last.clone()
    {
        return prev;
    }
    let iat = c.iat.unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp());
    let claims = json!({
        "iss": is.base,
        "sub": c.subject.clone().unwrap_or_else(|| default_sub.to_string()),
        "aud": c.audience.clone().unwrap_or_else(|| requested_aud.to_string()),
        "iat": iat,
        "nbf": iat,
        "exp": c.exp.unwrap_or(iat + 300),
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    let jwt = sign_value(if c.wrong_key { &is.other } else { &is.key }, &claims);
    *last = Some(jwt.clone());
    jwt
}
