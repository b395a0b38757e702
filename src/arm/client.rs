//! The HTTP core for ARM and the data planes: every request is a [`Request`] built with
//! [`Client::request`] (bearer tokens from the credential, or given, or none), sent through
//! the one retry policy ([`super::retry`]): exponential backoff and jitter on 429 / 5xx /
//! connection errors honouring `retry-after-ms`, `Retry-After` seconds or an HTTP date, plus
//! the request's own [`RetryWhile`] conditions; long-running operations polled
//! through `Azure-AsyncOperation` or `Location` at the interval the service asks for, and
//! errors that keep status, code, message and request id. Knows nothing of plans.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use super::auth::TokenSource;
use super::error::Error;
use super::pace::Pacer;
pub use super::retry::{RetryPolicy, RetryWhile, Stop, retry_after};
use crate::model::Sensitive;

/// The ARM audience idlab asks tokens for.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// A response read whole.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub request_id: Option<String>,
}

/// Counters of what the client sent (for summaries and the request budget).
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    /// Requests that got no usable answer once the retries ran out: no connection, a dropped
    /// one, a timeout, or a 429 / 5xx to the last try (`verify` tells "could not run" from
    /// "failed" with it).
    pub unanswered: AtomicU64,
}

/// How long a long-running operation on a resource may take, by the resource's id (see
/// [`Client::set_operation_time`]).
pub type OperationTime = Arc<dyn Fn(&str) -> Duration + Send + Sync>;

/// The deadline of a long-running operation when nobody set one: 30 minutes.
pub const DEFAULT_OPERATION_TIME: Duration = Duration::from_secs(1800);

/// An ARM client for one cloud.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    cred: Arc<dyn TokenSource>,
    pub retry: RetryPolicy,
    pub stats: Arc<Stats>,
    /// Set on the first Ctrl-C: every wait ends at once (see [`Stop`]).
    pub stop: Stop,
    operation_time: OperationTime,
    /// Pacing under ARM's throttling ([`super::pace`]): on by default.
    pub pace: Arc<Pacer>,
}

pub(super) fn redact(url: &str) -> String {
    match url.split_once('?') {
        Some((path, _)) => path.to_string(),
        None => url.to_string(),
    }
}

impl Client {
    pub fn new(http: reqwest::Client, base: impl Into<String>, cred: Arc<dyn TokenSource>) -> Client {
        Client {
            http,
            base: base.into().trim_end_matches('/').to_string(),
            cred,
            retry: RetryPolicy::default(),
            stats: Arc::new(Stats::default()),
            stop: Stop::new(),
            operation_time: Arc::new(|_| DEFAULT_OPERATION_TIME),
            pace: Arc::new(Pacer::default()),
        }
    }

    /// How long a long-running operation on resource `id` may take before the wait fails
    /// (`OperationTimedOut`): polls, and reads of the resource until it settles, included.
    pub fn set_operation_time(&mut self, f: OperationTime) {
        self.operation_time = f;
    }

    /// The deadline of a long-running operation on `id`, from now.
    pub fn operation_time(&self, id: &str) -> Duration {
        (self.operation_time)(id)
    }

    /// Wait `d`, unless the client is stopped first ([`Stop`]): then an `Interrupted` error
    /// for `operation`.
    ///
    /// # Errors
    /// `Interrupted` when [`Client::stop`] is set before `d` has passed.
    pub async fn pause(&self, d: Duration, operation: &str) -> Result<(), Error> {
        if self.stop.sleep(d).await {
            Ok(())
        } else {
            Err(Error {
                operation: operation.to_string(),
                ..Error::new(
                    "Interrupted",
                    "interrupted (Ctrl-C) while waiting; the service may still finish the request",
                )
            })
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The HTTP client (for data-plane calls, which carry their own authorization).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn credential(&self) -> &Arc<dyn TokenSource> {
        &self.cred
    }

    fn url(&self, path_or_url: &str, api_version: Option<&str>) -> String {
        let mut u = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        if let Some(v) = api_version {
            u.push(if u.contains('?') { '&' } else { '?' });
            u.push_str("api-version=");
            u.push_str(v);
        }
        u
    }

    /// Send one request with retries; answers any status (callers decide), errors only when
    /// no answer came or retries ran out on a retryable status.
    ///
    /// # Errors
    /// Transport failures, credential failures, or a retryable status that persisted.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        api_version: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Result<Response, Error> {
        self.send_scoped(ARM_SCOPE, method, path, api_version, body, headers).await
    }

    /// [`Client::send`] with a token for another audience (data planes such as Key Vault).
    ///
    /// # Errors
    /// As [`Client::send`].
    pub async fn send_scoped(
        &self,
        scope: &str,
        method: Method,
        path: &str,
        api_version: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> Result<Response, Error> {
        let mut req = self.request(method, path).scope(scope);
        if let Some(v) = api_version {
            req = req.api_version(v);
        }
        for (k, v) in headers {
            req = req.header(k, v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Ok(req.send().await?.into_response())
    }

    /// A request to build: an ARM path (or a full URL, for data planes), with an ARM token
    /// unless told otherwise. See [`Request`] and [`RetryWhile`].
    pub fn request(&self, method: Method, path_or_url: &str) -> Request<'_> {
        Request {
            client: self,
            method,
            url: self.url(path_or_url, None),
            auth: Auth::Scope(ARM_SCOPE.to_string()),
            headers: Vec::new(),
            body: None,
            retry_while: None,
            attempts: None,
            private_url: false,
        }
    }

    /// Turn a non-success response into an [`Error`].
    pub fn error(method: &Method, path: &str, r: &Response) -> Error {
        let e = r.body.get("error").cloned().unwrap_or(Value::Null);
        Error {
            status: Some(r.status),
            code: e.get("code").and_then(Value::as_str).unwrap_or("HttpError").to_string(),
            message: e
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| format!("HTTP {}", r.status), str::to_string),
            request_id: r.request_id.clone(),
            operation: format!("{method} {}", redact(path)),
        }
    }

    /// GET a resource; `None` when it does not exist.
    ///
    /// # Errors
    /// Any failure but 404.
    pub async fn get(&self, path: &str, api: &str) -> Result<Option<Value>, Error> {
        let r = self.send(Method::GET, path, Some(api), None, &[]).await?;
        match r.status {
            200 => Ok(Some(r.body)),
            404 => Ok(None),
            _ => Err(Client::error(&Method::GET, path, &r)),
        }
    }

    /// GET every page of a list.
    ///
    /// # Errors
    /// Any failure.
    pub async fn list(&self, path: &str, api: &str) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let r = match &next {
                None => self.send(Method::GET, path, Some(api), None, &[]).await?,
                Some(url) => self.send(Method::GET, url, None, None, &[]).await?,
            };
            if r.status != 200 {
                return Err(Client::error(&Method::GET, path, &r));
            }
            if let Some(v) = r.body.get("value").and_then(Value::as_array) {
                out.extend(v.iter().cloned());
            }
            match r.body.get("nextLink").and_then(Value::as_str) {
                Some(n) if !n.is_empty() => next = Some(n.to_string()),
                _ => return Ok(out),
            }
        }
    }

    /// PUT or PATCH and wait for the long-running operation; returns the final resource.
    ///
    /// # Errors
    /// The service refused, or the operation ended `Failed`/`Canceled`.
    pub async fn write(
        &self,
        method: Method,
        path: &str,
        api: &str,
        body: &Value,
        headers: &[(&str, String)],
    ) -> Result<Value, Error> {
        let r = self.send(method.clone(), path, Some(api), Some(body), headers).await?;
        if !(200..300).contains(&r.status) {
            return Err(Client::error(&method, path, &r));
        }
        if r.status == 202 || in_progress(&r.body) {
            let deadline = Instant::now() + self.operation_time(path);
            self.wait(&method, path, Some(api), &r, deadline).await?;
            // Without an operation to poll (a key vault registering its DNS name), the
            // resource itself is read until its provisioning state settles.
            if let Some(v) = self.settle(&method, path, api, deadline, |v| v.is_none_or(|v| !in_progress(v))).await? {
                return Ok(v);
            }
        }
        Ok(r.body)
    }

    /// DELETE and wait; `Ok(false)` when there was nothing to delete.
    ///
    /// # Errors
    /// The service refused, or the operation failed.
    pub async fn delete(&self, path: &str, api: &str) -> Result<bool, Error> {
        let r = self.send(Method::DELETE, path, Some(api), None, &[]).await?;
        match r.status {
            204 | 404 => Ok(false),
            200 => Ok(true),
            201 | 202 => {
                let deadline = Instant::now() + self.operation_time(path);
                self.wait(&Method::DELETE, path, Some(api), &r, deadline).await?;
                Ok(true)
            }
            _ => Err(Client::error(&Method::DELETE, path, &r)),
        }
    }

    /// POST an action.
    ///
    /// # Errors
    /// The service refused.
    pub async fn post(&self, path: &str, api: &str, body: &Value) -> Result<Value, Error> {
        let r = self.send(Method::POST, path, Some(api), Some(body), &[]).await?;
        if !(200..300).contains(&r.status) {
            return Err(Client::error(&Method::POST, path, &r));
        }
        Ok(r.body)
    }

    /// POST an action that may be a long-running operation (202 + `Location`), and wait.
    ///
    /// # Errors
    /// The service refused, or the operation failed.
    pub async fn post_wait(&self, path: &str, api: &str) -> Result<(), Error> {
        let r = self.send(Method::POST, path, Some(api), None, &[]).await?;
        if !(200..300).contains(&r.status) {
            return Err(Client::error(&Method::POST, path, &r));
        }
        if r.status == 202 {
            let deadline = Instant::now() + self.operation_time(path);
            self.wait(&Method::POST, path, None, &r, deadline).await?;
        }
        Ok(())
    }

    /// POST an action whose answer is a long-running operation with its result at the end
    /// (`final-state-via: location`, as VM Run Command): after the wait, the `Location`
    /// answer is the result. A 200 answer is the result itself.
    ///
    /// # Errors
    /// The service refused, or the operation failed.
    pub async fn post_result(&self, path: &str, api: &str, body: &Value) -> Result<Value, Error> {
        let r = self.send(Method::POST, path, Some(api), Some(body), &[]).await?;
        if !(200..300).contains(&r.status) {
            return Err(Client::error(&Method::POST, path, &r));
        }
        let location = r.headers.get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
        if r.status != 202 {
            return Ok(r.body);
        }
        let deadline = Instant::now() + self.operation_time(path);
        self.wait(&Method::POST, path, None, &r, deadline).await?;
        let Some(url) = location else { return Ok(Value::Null) };
        let last = self.send(Method::GET, &url, None, None, &[]).await?;
        if !(200..300).contains(&last.status) {
            return Err(Client::error(&Method::POST, path, &last));
        }
        Ok(last.body)
    }
}

/// How a [`Request`] authenticates.
enum Auth {
    /// A token from the client's credential for this scope.
    Scope(String),
    /// This bearer token (a VM identity's, in `verify`).
    Bearer(Sensitive<String>),
    /// None: the URL carries a SAS, or the endpoint needs no token.
    None,
}

enum Body {
    Json(Value),
    Bytes(Vec<u8>),
}

/// One request through the client's retry policy: throttling (429), server errors and lost
/// connections are retried with backoff honouring `Retry-After`; a [`RetryWhile`] condition
/// adds the answers to wait out. Build it with [`Client::request`], send it with
/// [`Request::send`].
#[must_use]
pub struct Request<'c> {
    client: &'c Client,
    method: Method,
    url: String,
    auth: Auth,
    headers: Vec<(String, String)>,
    body: Option<Body>,
    retry_while: Option<RetryWhile>,
    attempts: Option<u32>,
    private_url: bool,
}

impl Request<'_> {
    /// Append `api-version=v` to the query.
    pub fn api_version(mut self, v: &str) -> Self {
        self.url.push(if self.url.contains('?') { '&' } else { '?' });
        self.url.push_str("api-version=");
        self.url.push_str(v);
        self
    }

    /// A token for this audience from the client's credential (default: ARM).
    pub fn scope(mut self, scope: &str) -> Self {
        self.auth = Auth::Scope(scope.to_string());
        self
    }

    /// This bearer token instead of the client's credential.
    pub fn bearer(mut self, token: &Sensitive<String>) -> Self {
        self.auth = Auth::Bearer(token.clone());
        self
    }

    /// No `Authorization` header (the URL carries a SAS).
    pub fn no_auth(mut self) -> Self {
        self.auth = Auth::None;
        self
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// A JSON body.
    pub fn json(mut self, body: &Value) -> Self {
        self.body = Some(Body::Json(body.clone()));
        self
    }

    /// A raw body.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(Body::Bytes(body));
        self
    }

    /// Also retry while the answer matches `cond`, until its deadline.
    pub fn retry_while(mut self, cond: RetryWhile) -> Self {
        self.retry_while = Some(cond);
        self
    }

    /// At most this many tries for throttling, server errors and lost connections (default:
    /// the policy's). `1`: no retry (an endpoint that may not exist, such as IMDS off Azure).
    pub fn attempts(mut self, n: u32) -> Self {
        self.attempts = Some(n.max(1));
        self
    }

    /// The URL holds a secret (a SAS): a transport failure says only `timed out` or
    /// `no connection`, never the URL.
    pub fn private_url(mut self) -> Self {
        self.private_url = true;
        self
    }

    /// Send, retrying as the policy and the condition say. Any status is an answer: the
    /// caller decides (see [`Reply::error`]).
    ///
    /// # Errors
    /// Transport or credential failures once the retries ran out.
    pub async fn send(self) -> Result<Reply, Error> {
        let c = self.client;
        let operation = format!("{} {}", self.method, redact(&self.url));
        let start = Instant::now();
        let first = tokio::time::Instant::now();
        let deadline = self.retry_while.as_ref().and_then(|w| w.deadline(first));
        let max_attempts = self.attempts.unwrap_or(c.retry.max_attempts);
        let (mut attempt, mut held) = (0u32, 0u32);
        loop {
            attempt += 1;
            let mut req = c.http.request(self.method.clone(), &self.url);
            match &self.auth {
                Auth::Scope(scope) => {
                    let token = c.cred.token(scope).await.map_err(|e| Error { operation: operation.clone(), ..e })?;
                    req = req.bearer_auth(token.value.expose());
                }
                Auth::Bearer(t) => req = req.bearer_auth(t.expose()),
                Auth::None => {}
            }
            for (k, v) in &self.headers {
                req = req.header(k, v);
            }
            match &self.body {
                Some(Body::Json(b)) => req = req.json(b),
                Some(Body::Bytes(b)) => req = req.body(b.clone()),
                None => {}
            }
            // ARM requests with the client's own credential are paced (super::pace).
            let paced = matches!(self.auth, Auth::Scope(_)) && self.url.starts_with(&c.base);
            let mut ticket = if paced { Some(c.pace.admit(&self.method, &self.url).await) } else { None };
            c.stats.requests.fetch_add(1, Ordering::Relaxed);
            let t0 = Instant::now();
            let result = req.send().await;
            let retryable = start.elapsed() < c.retry.max_elapsed && attempt < max_attempts;
            let failed = |e: reqwest::Error, request_id: Option<String>| {
                let code = if e.is_timeout() { "Timeout" } else { "ConnectionFailed" };
                let message = match (self.private_url, e.is_timeout()) {
                    (false, _) => e.to_string(),
                    (true, true) => "timed out".to_string(),
                    (true, false) => "no connection".to_string(),
                };
                Error { operation: operation.clone(), request_id, ..Error::new(code, message) }
            };
            let resp = match result {
                Ok(r) => r,
                Err(e) => {
                    let err = failed(e, None);
                    tracing::debug!(%operation, error = %err.message, "connection error");
                    if retryable {
                        c.stats.retries.fetch_add(1, Ordering::Relaxed);
                        c.pause(c.retry.delay(attempt, None), &operation).await?;
                        continue;
                    }
                    c.stats.unanswered.fetch_add(1, Ordering::Relaxed);
                    return Err(err);
                }
            };
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            if let Some(t) = ticket.take() {
                c.pace.observe(t, status, &headers);
            }
            let request_id = headers.get("x-ms-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
            let bytes = match resp.bytes().await {
                Ok(b) => b.to_vec(),
                Err(e) => {
                    if retryable {
                        c.stats.retries.fetch_add(1, Ordering::Relaxed);
                        c.pause(c.retry.delay(attempt, None), &operation).await?;
                        continue;
                    }
                    c.stats.unanswered.fetch_add(1, Ordering::Relaxed);
                    return Err(failed(e, request_id));
                }
            };
            tracing::debug!(%operation, status, request_id = request_id.as_deref().unwrap_or("-"), ms = t0.elapsed().as_millis() as u64, "http");
            if status == 429 || status >= 500 {
                if retryable {
                    c.stats.retries.fetch_add(1, Ordering::Relaxed);
                    c.pause(c.retry.delay(attempt, retry_after(&headers)), &operation).await?;
                    continue;
                }
                c.stats.unanswered.fetch_add(1, Ordering::Relaxed);
            }
            let reply = Reply { status, headers, bytes, request_id, held, operation: operation.clone() };
            if let (Some(cond), Some(deadline)) = (&self.retry_while, deadline) {
                let now = tokio::time::Instant::now();
                if now < deadline && cond.matches(status, &reply.code()) {
                    held += 1;
                    attempt = 0;
                    c.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%operation, status, code = %reply.code(), "waiting on a retry condition");
                    let wait = cond.pause(&c.retry, held, deadline - now);
                    c.pause(wait, &operation).await?;
                    continue;
                }
            }
            if super::capture::enabled() {
                let json = match &self.body {
                    Some(Body::Json(b)) => Some(b),
                    Some(Body::Bytes(_)) => return Ok(reply),
                    None => None,
                };
                super::capture::record(&self.method, &self.url, json, reply.status, &reply.bytes);
            }
            return Ok(reply);
        }
    }
}

/// An answer read whole, from [`Request::send`].
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
    pub request_id: Option<String>,
    /// How many times a [`RetryWhile`] condition sent the request again.
    pub held: u32,
    operation: String,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON (`null` when empty or not JSON).
    pub fn json(&self) -> Value {
        if self.bytes.is_empty() { Value::Null } else { serde_json::from_slice(&self.bytes).unwrap_or(Value::Null) }
    }

    /// The service's error code: `x-ms-error-code`, else the ARM envelope's `error.code`,
    /// else empty.
    pub fn code(&self) -> String {
        if let Some(c) = self.header("x-ms-error-code") {
            return c.to_string();
        }
        let body = self.json();
        body.pointer("/error/code").and_then(Value::as_str).unwrap_or_default().to_string()
    }

    /// This answer as an [`Error`] (ARM envelope: status, code, message, request id).
    /// The code is [`Reply::code`] (`HttpError` when there is none).
    pub fn error(&self) -> Error {
        let code = self.code();
        let body = self.json();
        Error {
            status: Some(self.status),
            code: if code.is_empty() { "HttpError".to_string() } else { code },
            message: body
                .pointer("/error/message")
                .and_then(Value::as_str)
                .map_or_else(|| format!("HTTP {}", self.status), str::to_string),
            request_id: self.request_id.clone(),
            operation: self.operation.clone(),
        }
    }

    /// The ARM view: the body parsed as JSON.
    pub fn into_response(self) -> Response {
        let body = self.json();
        Response { status: self.status, headers: self.headers, body, request_id: self.request_id }
    }
}

pub(super) fn in_progress(body: &Value) -> bool {
    matches!(
        body.pointer("/properties/provisioningState").and_then(Value::as_str),
        Some("Creating" | "Updating" | "Accepted" | "Running" | "Deleting" | "RegisteringDns")
    )
}

/// Test support shared with other modules' tests: a scripted loopback server and a client
/// for it.
#[cfg(test)]
pub(crate) mod testing {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::Client;
    use crate::arm::auth::{Token, TokenSource};
    use crate::arm::error::Error;
    use crate::model::Sensitive;

    /// A loopback server that answers `script[n]` (status, error code) to the n-th request,
    /// then the last entry forever; ARM-style codes in the body, data-plane ones in
    /// `x-ms-error-code` (`header: true`). A managed-identity token request
    /// (`/metadata/identity/oauth2/token`) is answered with a token and not counted.
    pub(crate) async fn server(script: Vec<(u16, &'static str)>, header: bool) -> (String, Arc<AtomicU64>) {
        use axum::response::IntoResponse;
        let hits = Arc::new(AtomicU64::new(0));
        let counter = hits.clone();
        let token = || async { axum::Json(serde_json::json!({"access_token": "mi-token", "expires_in": 3600})) };
        let app = axum::Router::new().route("/metadata/identity/oauth2/token", axum::routing::get(token)).fallback(
            move || {
                let counter = counter.clone();
                let script = script.clone();
                async move {
                    let n = counter.fetch_add(1, Ordering::SeqCst) as usize;
                    let (status, code) = script[n.min(script.len() - 1)];
                    let status = axum::http::StatusCode::from_u16(status).expect("status");
                    let body = serde_json::json!({"error": {"code": code, "message": "m"}}).to_string();
                    if header && !code.is_empty() {
                        (status, [("x-ms-error-code", code)], body).into_response()
                    } else {
                        (status, body).into_response()
                    }
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}"), hits)
    }

    struct Fixed;

    #[async_trait::async_trait]
    impl TokenSource for Fixed {
        async fn token(&self, _: &str) -> Result<Token, Error> {
            Ok(Token {
                value: Sensitive::new("t".into()),
                expires: std::time::SystemTime::now() + Duration::from_secs(3600),
            })
        }
    }

    pub(crate) fn client(base: &str) -> Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut c = Client::new(reqwest::Client::new(), base, Arc::new(Fixed));
        c.retry.base = Duration::from_millis(1);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{client, server};
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn retry_while_waits_out_a_code_then_answers() {
        let (base, hits) =
            server(vec![(400, "PrincipalNotFound"); 3].into_iter().chain([(201, "")]).collect(), false).await;
        let c = client(&base);
        let r = c
            .request(Method::PUT, "/x")
            .api_version("1")
            .json(&serde_json::json!({}))
            .retry_while(RetryWhile::code(400, "PrincipalNotFound").within(Duration::from_secs(60)))
            .send()
            .await
            .expect("answer");
        assert_eq!((r.status, r.held), (201, 3));
        assert_eq!(hits.load(Ordering::SeqCst), 4);
        assert_eq!(c.stats.requests.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn retry_while_returns_the_last_answer_at_the_deadline() {
        let (base, hits) = server(vec![(403, "AuthorizationPermissionMismatch")], true).await;
        let c = client(&base);
        let deadline = std::time::Instant::now() + Duration::from_millis(40);
        let r = c
            .request(Method::HEAD, &format!("{base}/fs/dir?action=getAccessControl"))
            .retry_while(RetryWhile::code(403, "AuthorizationPermissionMismatch").until(deadline))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status, 403);
        assert_eq!(r.code(), "AuthorizationPermissionMismatch");
        assert!(r.held >= 1 && u64::from(r.held) + 1 == hits.load(Ordering::SeqCst));
        assert!(std::time::Instant::now() >= deadline);
        assert_eq!(r.error().code, "AuthorizationPermissionMismatch");
        assert_eq!(r.error().status, Some(403));
    }

    #[tokio::test]
    async fn other_answers_and_no_window_are_final() {
        let (base, hits) = server(vec![(400, "InvalidPrincipalId"), (201, "")], false).await;
        let c = client(&base);
        let cond = RetryWhile::code(400, "PrincipalNotFound").within(Duration::from_secs(60));
        let r = c.request(Method::PUT, "/x").retry_while(cond).send().await.expect("answer");
        assert_eq!((r.status, r.held, r.code().as_str()), (400, 0, "InvalidPrincipalId"));
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        let (base, hits) = server(vec![(400, "PrincipalNotFound"), (201, "")], false).await;
        let c = client(&base);
        let r = c
            .request(Method::PUT, "/x")
            .retry_while(RetryWhile::code(400, "PrincipalNotFound").within(Duration::ZERO))
            .send()
            .await
            .expect("answer");
        assert_eq!((r.status, r.held), (400, 0));
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        let no_deadline = RetryWhile::status(400);
        let r = c.request(Method::PUT, "/x").retry_while(no_deadline).send().await.expect("answer");
        assert_eq!((r.status, r.held), (201, 0));
    }

    #[tokio::test]
    async fn throttling_is_retried_whatever_the_condition_and_predicates_see_status_and_code() {
        let (base, hits) = server(vec![(429, ""), (503, ""), (403, "AuthorizationFailed"), (200, "")], false).await;
        let c = client(&base);
        let cond = RetryWhile::when(|s, code| s == 403 && code.starts_with("Authorization"))
            .within(Duration::from_secs(60))
            .max_delay(Duration::from_millis(5));
        let r = c.request(Method::GET, "/x").no_auth().retry_while(cond).send().await.expect("answer");
        assert_eq!((r.status, r.held), (200, 1));
        assert_eq!(hits.load(Ordering::SeqCst), 4);
        assert!(RetryWhile::code(400, "PrincipalNotFound").matches(400, "principalnotfound"));
        assert!(!RetryWhile::code(400, "PrincipalNotFound").matches(404, "PrincipalNotFound"));
    }

    #[tokio::test]
    async fn private_urls_never_appear_in_transport_errors() {
        let c = client("http://127.0.0.1:9");
        let e = c
            .request(Method::GET, "http://127.0.0.1:9/c/b?sig=secret")
            .no_auth()
            .private_url()
            .attempts(1)
            .send()
            .await
            .expect_err("nothing listens on port 9");
        assert_eq!(e.code, "ConnectionFailed");
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
