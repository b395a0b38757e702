//! The HTTP core for ARM (and later the data planes): bearer tokens, retries with
//! exponential backoff and jitter on 429 / 5xx / connection errors honouring
//! `retry-after-ms`, `Retry-After` seconds or an HTTP date, long-running operations polled
//! through `Azure-AsyncOperation` or `Location` at the interval the service asks for, and
//! errors that keep status, code, message and request id. Knows nothing of plans.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use super::auth::TokenSource;
use super::error::Error;

/// The ARM audience idlab asks tokens for.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// When and how often to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base: Duration,
    pub max_delay: Duration,
    /// Give up retrying after this long in total.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry `attempt` (1-based): the server's hint, else exponential with
    /// ±20% jitter, capped.
    pub fn delay(&self, attempt: u32, hint: Option<Duration>) -> Duration {
        if let Some(h) = hint {
            return h.min(self.max_delay);
        }
        let exp = self.base.saturating_mul(1 << attempt.saturating_sub(1).min(16));
        use rand::RngExt;
        let jitter: f64 = rand::rng().random_range(0.8..1.2);
        exp.mul_f64(jitter).min(self.max_delay)
    }
}

/// How long the service asks us to wait: `retry-after-ms`, then `Retry-After` as seconds or
/// as an HTTP date.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let get = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_millis(ms));
    }
    let v = get("retry-after")?;
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let when = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let secs = (when - time::OffsetDateTime::now_utc()).whole_milliseconds().max(0);
    Some(Duration::from_millis(u64::try_from(secs).unwrap_or(0)))
}

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
}

/// An ARM client for one cloud.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    cred: Arc<dyn TokenSource>,
    pub retry: RetryPolicy,
    pub stats: Arc<Stats>,
}

fn redact(url: &str) -> String {
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
        let url = self.url(path, api_version);
        let operation = format!("{method} {}", redact(&url));
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.cred.token(scope).await.map_err(|e| Error { operation: operation.clone(), ..e })?;
            let mut req = self.http.request(method.clone(), &url).bearer_auth(token.value.expose());
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let t0 = Instant::now();
            let result = req.send().await;
            let retryable_elapsed = start.elapsed() < self.retry.max_elapsed && attempt < self.retry.max_attempts;
            match result {
                Err(e) => {
                    tracing::debug!(%operation, error = %e, "connection error");
                    if retryable_elapsed {
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(self.retry.delay(attempt, None)).await;
                        continue;
                    }
                    let code = if e.is_timeout() { "Timeout" } else { "ConnectionFailed" };
                    return Err(Error { operation, ..Error::new(code, e.to_string()) });
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    let request_id = headers.get("x-ms-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
                    let bytes = match resp.bytes().await {
                        Ok(b) => b,
                        Err(e) => {
                            if retryable_elapsed {
                                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(self.retry.delay(attempt, None)).await;
                                continue;
                            }
                            return Err(Error {
                                operation,
                                request_id,
                                ..Error::new("ConnectionFailed", e.to_string())
                            });
                        }
                    };
                    tracing::debug!(%operation, status, request_id = request_id.as_deref().unwrap_or("-"), ms = t0.elapsed().as_millis() as u64, "http");
                    if (status == 429 || status >= 500) && retryable_elapsed {
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(self.retry.delay(attempt, retry_after(&headers))).await;
                        continue;
                    }
                    let body = if bytes.is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
                    };
                    return Ok(Response { status, headers, body, request_id });
                }
            }
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
            self.wait(&method, path, &r).await?;
            // Without an operation to poll (a key vault registering its DNS name), the
            // resource itself is read until its provisioning state settles.
            let mut attempt = 0u32;
            while let Some(v) = self.get(path, api).await? {
                attempt += 1;
                if !in_progress(&v) || attempt >= 600 {
                    return Ok(v);
                }
                tokio::time::sleep(self.retry.delay(attempt.min(4), None)).await;
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
                self.wait(&Method::DELETE, path, &r).await?;
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
            self.wait(&Method::POST, path, &r).await?;
        }
        Ok(())
    }

    /// Poll a long-running operation to its end.
    async fn wait(&self, method: &Method, path: &str, first: &Response) -> Result<(), Error> {
        let header = |k: &str| first.headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
        let mut hint = retry_after(&first.headers);
        if let Some(url) = header("azure-asyncoperation") {
            for attempt in 1..=10_000u32 {
                tokio::time::sleep(hint.unwrap_or_else(|| self.retry.delay(attempt.min(4), None))).await;
                let r = self.send(Method::GET, &url, None, None, &[]).await?;
                hint = retry_after(&r.headers);
                match r.body.get("status").and_then(Value::as_str).unwrap_or("") {
                    "Succeeded" => return Ok(()),
                    "Failed" | "Canceled" => {
                        let e = r.body.get("error").cloned().unwrap_or(Value::Null);
                        return Err(Error {
                            status: Some(r.status),
                            code: e.get("code").and_then(Value::as_str).unwrap_or("OperationFailed").to_string(),
                            message: e
                                .get("message")
                                .and_then(Value::as_str)
                                .unwrap_or("the long-running operation failed")
                                .to_string(),
                            request_id: r.request_id,
                            operation: format!("{method} {}", redact(path)),
                        });
                    }
                    _ => {}
                }
            }
        } else if let Some(url) = header("location") {
            for attempt in 1..=10_000u32 {
                tokio::time::sleep(hint.unwrap_or_else(|| self.retry.delay(attempt.min(4), None))).await;
                let r = self.send(Method::GET, &url, None, None, &[]).await?;
                hint = retry_after(&r.headers);
                match r.status {
                    202 => continue,
                    200 | 201 | 204 => return Ok(()),
                    _ => return Err(Client::error(method, path, &r)),
                }
            }
        }
        Ok(())
    }
}

fn in_progress(body: &Value) -> bool {
    matches!(
        body.pointer("/properties/provisioningState").and_then(Value::as_str),
        Some("Creating" | "Updating" | "Accepted" | "Running" | "Deleting" | "RegisteringDns")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "3".parse().expect("header"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", "250".parse().expect("header"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut d = reqwest::header::HeaderMap::new();
        d.insert("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("header"));
        assert_eq!(retry_after(&d), Some(Duration::ZERO));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert!(p.delay(1, None) <= Duration::from_millis(600));
        assert!(p.delay(4, None) >= Duration::from_millis(3200));
        assert_eq!(p.delay(30, None), p.max_delay);
        assert_eq!(p.delay(2, Some(Duration::from_secs(2))), Duration::from_secs(2));
    }
}
