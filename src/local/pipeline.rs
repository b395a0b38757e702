//! The one request pipeline of the local cloud. Every plane's server (the ARM port with its
//! token issuer, discovery and admin API; blob; dfs; WebHDFS; Key Vault; the managed-identity
//! endpoints) is wrapped by [`layer`], which does once, in this order, on the request head
//! only (the body stays unread until the handler runs):
//!
//! 1. the request id ([`RequestId`], stamped on the answer as the plane's [`Ids`] say);
//! 2. authentication: the one bearer check ([`auth::bearer_check`]) with the audiences the
//!    plane accepts, giving a [`Bearer`] outcome; then the plane's `admit` step, which renders
//!    a refusal in the plane's own error format (or accepts its other scheme: a service SAS,
//!    the `Metadata`/`X-IDENTITY-HEADER` secret, no credential at all for the token issuer)
//!    and notes the caller for the request log ([`Note`]) — in the order the plane checked
//!    before (an ARM path or api-version error, a storage account that does not exist, …);
//! 3. fault injection: ARM requests ([`FaultScope`], set by ARM's `admit`); other planes: drops;
//! 4. authorization: the plane's `authorize` step; the action or data action an endpoint
//!    declares is then evaluated by the one RBAC function (`rbac`) — here for ARM and blob,
//!    in the handler where it depends on state only the handler reads (dfs, WebHDFS, Key
//!    Vault; docs/architecture.md lists where each lives);
//! 5. the body, read only now, up to the plane's limit ([`Plane::body_limit`]): a declared
//!    `Content-Length` over it is answered 413 without reading a byte, a chunked body is read
//!    until it passes the limit and then refused the same way ([`Plane::too_large`], the
//!    plane's own format); a refused body is never drained, the connection is closed instead;
//! 6. the handler, with the [`Bearer`] outcome as an `Extension` (handlers never parse tokens);
//! 7. the request log entry: method, path (never the query or the body), status and caller.
//!
//! [`auth::bearer_check`]: super::auth::bearer_check

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::Method;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use super::auth::{Caller, Refusal, Trust, bearer_check};
use super::http::{ArmError, add_headers, error_response, header};
use super::shared::{Limits, LogEntry, Shared, guid, now_ms};

/// What the request's `Authorization` header holds, checked once by the pipeline.
#[derive(Debug, Clone)]
pub enum Bearer {
    /// No `Authorization` header.
    Absent,
    /// A header that is not a bearer token (another scheme).
    OtherScheme,
    /// A bearer token, and the bearer check's verdict.
    Checked(Result<Caller, Refusal>),
}

impl Bearer {
    /// The authenticated caller, if the token passed the bearer check.
    pub fn caller(&self) -> Option<&Caller> {
        match self {
            Bearer::Checked(Ok(c)) => Some(c),
            _ => None,
        }
    }
}

/// The request's id, made once by the pipeline.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// What the request log records of the caller: the principal and whether it asked to write.
#[derive(Debug, Clone, Default)]
pub struct Note {
    pub principal: Option<String>,
    pub write: bool,
}

/// An ARM request the fault configuration applies to: its lower-cased resource type.
#[derive(Debug, Clone)]
pub struct FaultScope(pub String);

/// The error format a plane answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errors {
    /// `{"error":{"code","message"}}` (ARM, the admin API).
    ArmJson,
    /// OAuth 2.0 errors (the token issuer, the managed-identity endpoints).
    OAuthJson,
    /// `<Error><Code>…` with `x-ms-error-code` (blob).
    StorageXml,
    /// `{"error":{"code","message"}}` with `x-ms-error-code` (dfs).
    StorageJson,
    /// `{"RemoteException":{…}}` (WebHDFS).
    RemoteException,
    /// Key Vault's JSON, with the `WWW-Authenticate` challenge on 401.
    KeyVaultJson,
}

/// How the plane stamps the request id on its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ids {
    /// `x-ms-request-id`, `x-ms-correlation-request-id`, `x-ms-routing-request-id` and the
    /// remaining-requests header, on every answer.
    Arm,
    /// `x-ms-request-id`, on every answer.
    KeyVault,
    /// The handler writes its ids itself (storage bodies and headers, WebHDFS bodies).
    Handler,
}

/// A plane step on the request head: `Err` is the answer (the body is never read).
pub type Step = fn(&Arc<Shared>, &mut Parts, &Bearer, &mut Note) -> Result<(), Box<Response>>;

/// What a plane declares to the pipeline.
pub struct Plane {
    pub name: &'static str,
    pub errors: Errors,
    pub ids: Ids,
    /// Whether `bearer` (lower case) is accepted as the scheme name, as well as `Bearer`.
    pub any_case_scheme: bool,
    /// The audiences the plane accepts (given the request head, for per-account hosts).
    pub audiences: fn(&Parts, &str) -> bool,
    /// Authentication: a refusal in the plane's format, or the plane's other scheme.
    pub admit: Step,
    /// Authorization that needs no state the handler alone reads.
    pub authorize: Step,
    /// What the request log calls the path.
    pub log_path: fn(&Parts) -> String,
    /// The largest request body the plane reads, in bytes, from the local cloud's limits.
    pub body_limit: fn(&Limits) -> u64,
    /// The plane's 413 answer for a body over `body_limit` (given the limit).
    pub too_large: fn(u64) -> Response,
}

/// A step that lets every request through.
pub fn pass(_: &Arc<Shared>, _: &mut Parts, _: &Bearer, _: &mut Note) -> Result<(), Box<Response>> {
    Ok(())
}

/// No bearer token is accepted (the plane has its own scheme, or none).
pub fn no_audience(_: &Parts, _: &str) -> bool {
    false
}

/// The path as requested.
pub fn request_path(parts: &Parts) -> String {
    parts.uri.path().to_string()
}

/// Wrap a plane's router in the pipeline.
pub fn layer(sh: &Arc<Shared>, plane: Plane, router: axum::Router) -> axum::Router {
    // The pipeline enforces the plane's own limit; axum's default (2 MB per extractor) would
    // answer in plain text.
    router
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn_with_state((sh.clone(), Arc::new(plane)), run))
}

async fn run(State((sh, plane)): State<(Arc<Shared>, Arc<Plane>)>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let request_id = guid();
    parts.extensions.insert(RequestId(request_id.clone()));
    let correlation = header(&parts.headers, "x-ms-correlation-request-id").map_or_else(guid, str::to_string);
    let method = parts.method.clone();
    let bearer = authenticate(&sh, &plane, &parts);
    let mut note = Note::default();
    let mut response = match (plane.admit)(&sh, &mut parts, &bearer, &mut note) {
        Err(refused) => *refused,
        Ok(()) => match faults(&sh, &plane, &parts).await {
            Some(injected) => injected,
            None => match (plane.authorize)(&sh, &mut parts, &bearer, &mut note) {
                Err(refused) => *refused,
                Ok(()) => match read_body(&parts, body, (plane.body_limit)(&sh.limits)).await {
                    Err(BodyRefused::TooLarge(limit)) => close_after((plane.too_large)(limit), &parts),
                    Err(BodyRefused::Broken) => closed(),
                    Ok(body) => {
                        parts.extensions.insert(bearer);
                        next.run(Request::from_parts(parts.clone(), body)).await
                    }
                },
            },
        },
    };
    stamp(plane.ids, &mut response, &method, request_id, correlation);
    sh.record(LogEntry {
        time_ms: now_ms(),
        method: method.to_string(),
        path: (plane.log_path)(&parts),
        status: response.status().as_u16(),
        principal: note.principal,
        write: note.write,
    });
    response
}

/// Why a body was not read.
enum BodyRefused {
    /// Longer than the limit (declared or sent).
    TooLarge(u64),
    /// The client stopped sending or the connection broke.
    Broken,
}

/// Read the body, after authentication and authorization, refusing it past `limit`: at once
/// when its `Content-Length` says so, else as soon as the bytes read pass the limit.
async fn read_body(parts: &Parts, body: Body, limit: u64) -> Result<Body, BodyRefused> {
    let declared = header(&parts.headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyRefused::TooLarge(limit));
    }
    if declared == Some(0) {
        return Ok(body);
    }
    let cap = usize::try_from(limit).unwrap_or(usize::MAX);
    // A declared length is only a hint: the buffer grows with what arrives.
    let hint = declared.map_or(0, |n| usize::try_from(n).unwrap_or(0).min(cap).min(1 << 20));
    let mut buffer: Vec<u8> = Vec::with_capacity(hint);
    let mut frames = body.into_data_stream();
    while let Some(chunk) = futures::StreamExt::next(&mut frames).await {
        let chunk = chunk.map_err(|_| BodyRefused::Broken)?;
        if buffer.len().saturating_add(chunk.len()) > cap {
            return Err(BodyRefused::TooLarge(limit));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(Body::from(buffer))
}

/// An HTTP/1.1 answer given before the body was read: the connection closes after it (HTTP/2
/// resets the stream instead).
fn close_after(mut r: Response, parts: &Parts) -> Response {
    if parts.version <= axum::http::Version::HTTP_11 {
        r.headers_mut().insert("connection", axum::http::HeaderValue::from_static("close"));
    }
    r
}

/// The answer to a request whose body broke off: 400, and the connection closes.
fn closed() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    r.headers_mut().insert("connection", axum::http::HeaderValue::from_static("close"));
    r
}

/// The bearer check, the only place it is called: the plane's scheme names and audiences.
fn authenticate(sh: &Shared, plane: &Plane, parts: &Parts) -> Bearer {
    let Some(value) = header(&parts.headers, "authorization") else {
        return Bearer::Absent;
    };
    let token =
        value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ").filter(|_| plane.any_case_scheme));
    let Some(token) = token else {
        return Bearer::OtherScheme;
    };
    let st = sh.store();
    let trust = Trust { key: &sh.key, tenant: &sh.info.tenant_id, state: &st.state };
    Bearer::Checked(bearer_check(&trust, token, |aud| (plane.audiences)(parts, aud)))
}

/// Injected faults (docs/local-cloud.md): the ones ARM's `admit` scoped; other planes only drop.
async fn faults(sh: &Shared, plane: &Plane, parts: &Parts) -> Option<Response> {
    if plane.errors != Errors::ArmJson {
        return sh.chance(sh.faults().data_drop_rate).then(dropped);
    }
    let FaultScope(type_lower) = parts.extensions.get::<FaultScope>()?;
    let faults = sh.faults();
    let latency = faults.latency(type_lower);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if sh.chance(faults.drop_rate) {
        return Some(dropped());
    }
    if sh.chance(faults.throttle_rate) {
        let ms = faults.scaled(faults.retry_after_s.max(1) * 1000).as_millis().max(1);
        return Some(error_response(
            &ArmError::new(429, "TooManyRequests", "The request is being throttled as the limit has been reached for operation type - Read_ObservationWindow_00:05:00. For more information, see - https://aka.ms/srpthrottlinglimits")
                .header("retry-after", faults.retry_after_s.max(1).to_string())
                .header("retry-after-ms", ms.to_string()),
        ));
    }
    if sh.chance(faults.error_500_rate) {
        return Some(error_response(&ArmError::new(
            500,
            "InternalServerError",
            "Encountered internal server error. Diagnostic information: timestamp '', subscription id '', tracking id '', request correlation id ''.",
        )));
    }
    if sh.chance(faults.error_503_rate) {
        return Some(error_response(
            &ArmError::new(503, "ServiceUnavailable", "The service is temporarily unavailable. Please retry.")
                .header("retry-after", "1"),
        ));
    }
    None
}

/// A dropped connection: the answer's body fails mid-stream.
fn dropped() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "dropped by fault injection",
        ))
    });
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = axum::http::StatusCode::OK;
    r
}

fn stamp(ids: Ids, response: &mut Response, method: &Method, request_id: String, correlation: String) {
    let h = response.headers_mut();
    match ids {
        Ids::Arm => {
            add_headers(
                h,
                &[
                    ("x-ms-request-id", request_id.clone()),
                    ("x-ms-correlation-request-id", correlation),
                    ("x-ms-routing-request-id", format!("LOCAL:{}:{request_id}", time_tag())),
                ],
            );
            let kind = match *method {
                Method::GET | Method::HEAD => "reads",
                Method::DELETE => "deletes",
                _ => "writes",
            };
            add_headers(h, &[(&format!("x-ms-ratelimit-remaining-subscription-{kind}"), "11999".to_string())]);
        }
        Ids::KeyVault => add_headers(h, &[("x-ms-request-id", request_id)]),
        Ids::Handler => {}
    }
}

fn time_tag() -> String {
    let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::now_utc().format(f).unwrap_or_default()
}
