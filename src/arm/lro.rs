//! Long-running operations: polling `Azure-AsyncOperation` or `Location` to the end, within
//! a deadline ([`Client::operation_time`]), and never forever:
//! - an operation URL that answers 404 or 410 is an operation the service forgot (a
//!   restart, an expired record): the resource itself is read to learn the outcome;
//! - an answer that cannot be understood (no `status`, not JSON, an unexpected status) is
//!   tolerated a few times in a row ([`UNCLEAR_TRIES`]), then it is an error;
//! - past the deadline, the error names the resource, the operation URL (without its query,
//!   which may be signed) and the last answer;
//! - every wait between polls ends at once when the client is stopped (Ctrl-C).
//!
//! Knows nothing of plans.

use std::time::Instant;

use reqwest::Method;
use serde_json::Value;

use super::client::{Client, Response, in_progress, redact, retry_after};
use super::error::Error;

/// How many answers in a row that cannot be understood end the wait.
pub const UNCLEAR_TRIES: u32 = 5;

/// What one poll says.
#[derive(Debug, PartialEq, Eq)]
enum Poll {
    Done,
    Failed,
    Running,
    /// 404 or 410: the service no longer knows the operation.
    Gone,
    Unclear,
}

fn poll_state(r: &Response, async_op: bool) -> Poll {
    match r.status {
        404 | 410 => return Poll::Gone,
        _ if !async_op => {
            return match r.status {
                202 => Poll::Running,
                200 | 201 | 204 => Poll::Done,
                s if (400..500).contains(&s) => Poll::Failed,
                _ => Poll::Unclear,
            };
        }
        200..=299 => {}
        _ => return Poll::Unclear,
    }
    match r.body.get("status").and_then(Value::as_str) {
        Some(s) if s.eq_ignore_ascii_case("Succeeded") => Poll::Done,
        Some(s) if s.eq_ignore_ascii_case("Failed") || s.eq_ignore_ascii_case("Canceled") => Poll::Failed,
        Some(s) if !s.is_empty() => Poll::Running,
        _ => Poll::Unclear,
    }
}

/// A poll's answer in a few words: the status, the operation's `status` or the error code.
/// Never the body (it may hold a resource's secrets).
fn describe(r: &Response) -> String {
    let code = r.body.pointer("/error/code").and_then(Value::as_str);
    match (r.body.get("status").and_then(Value::as_str), code) {
        (Some(s), _) => format!("HTTP {} status `{s}`", r.status),
        (None, Some(c)) => format!("HTTP {} {c}", r.status),
        (None, None) if r.body.is_null() => format!("HTTP {} without a JSON body", r.status),
        (None, None) => format!("HTTP {} without a `status`", r.status),
    }
}

impl Client {
    fn lro_error(method: &Method, path: &str, r: Option<&Response>, code: &str, message: String) -> Error {
        Error {
            status: r.map(|r| r.status),
            request_id: r.and_then(|r| r.request_id.clone()),
            operation: format!("{method} {}", redact(path)),
            ..Error::new(code, message)
        }
    }

    /// Poll the long-running operation `first` started, until it ends or `deadline`.
    /// `api`: the resource's api-version, to read it when the operation is gone (`None`
    /// for an action, which has no resource to read).
    pub(super) async fn wait(
        &self,
        method: &Method,
        path: &str,
        api: Option<&str>,
        first: &Response,
        deadline: Instant,
    ) -> Result<(), Error> {
        let header = |k: &str| first.headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (url, async_op) = match (header("azure-asyncoperation"), header("location")) {
            (Some(u), _) => (u, true),
            (None, Some(u)) => (u, false),
            (None, None) => return Ok(()),
        };
        let shown = redact(&url);
        let op = format!("{method} {}", redact(path));
        let mut hint = retry_after(&first.headers);
        let mut last = format!("HTTP {} (the request itself)", first.status);
        let (mut attempt, mut unclear) = (0u32, 0u32);
        loop {
            attempt += 1;
            let pause = hint.unwrap_or_else(|| self.retry.delay(attempt.min(4), None));
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out(method, path, &shown, &last));
            }
            self.pause(pause.min(left), &op).await?;
            let r = self.send(Method::GET, &url, None, None, &[]).await?;
            hint = retry_after(&r.headers);
            last = describe(&r);
            match poll_state(&r, async_op) {
                Poll::Done => return Ok(()),
                Poll::Running => unclear = 0,
                Poll::Failed if async_op => {
                    let e = r.body.get("error").cloned().unwrap_or(Value::Null);
                    let code = e.get("code").and_then(Value::as_str).unwrap_or("OperationFailed");
                    let message =
                        e.get("message").and_then(Value::as_str).unwrap_or("the long-running operation failed");
                    return Err(Client::lro_error(method, path, Some(&r), code, message.to_string()));
                }
                Poll::Failed => return Err(Client::error(method, path, &r)),
                Poll::Gone => return self.gone(method, path, api, &shown, deadline).await,
                Poll::Unclear => {
                    unclear += 1;
                    if unclear >= UNCLEAR_TRIES {
                        return Err(Client::lro_error(
                            method,
                            path,
                            Some(&r),
                            "InvalidOperationStatus",
                            format!(
                                "the long-running operation {shown} answered {unclear} times in a row with nothing idlab understands (last: {last}); the resource's state is unknown: read it, or run again"
                            ),
                        ));
                    }
                }
            }
        }
    }

    fn timed_out(&self, method: &Method, path: &str, url: &str, last: &str) -> Error {
        let limit = self.operation_time(path);
        Client::lro_error(
            method,
            path,
            None,
            "OperationTimedOut",
            format!(
                "{} did not finish within {} s (operation {url}; last answer: {last}); raise --operation-timeout to wait longer",
                redact(path),
                limit.as_secs()
            ),
        )
    }

    /// The service forgot the operation: the resource says how it ended.
    async fn gone(
        &self,
        method: &Method,
        path: &str,
        api: Option<&str>,
        url: &str,
        deadline: Instant,
    ) -> Result<(), Error> {
        let lost = |what: &str| {
            Client::lro_error(
                method,
                path,
                None,
                "OperationLost",
                format!("the service no longer knows the operation {url} (404), and {what}; run again"),
            )
        };
        let Some(api) = api else {
            return Err(lost("there is no resource to read its outcome from"));
        };
        let deleting = *method == Method::DELETE;
        let last = self.settle(method, path, api, deadline, |v| v.is_none_or(|v| !in_progress(v))).await?;
        match (deleting, last) {
            (true, None) | (false, Some(_)) => Ok(()),
            (true, Some(_)) => Err(lost(&format!("{} still exists: the delete did not happen", redact(path)))),
            (false, None) => Err(lost(&format!("{} does not exist: the write did not happen", redact(path)))),
        }
    }

    /// Read the resource until `done` says it settled (`None`: it does not exist), or
    /// `deadline`. Answers the last read.
    pub(super) async fn settle(
        &self,
        method: &Method,
        path: &str,
        api: &str,
        deadline: Instant,
        done: impl Fn(Option<&Value>) -> bool,
    ) -> Result<Option<Value>, Error> {
        let op = format!("{method} {}", redact(path));
        let mut attempt = 0u32;
        loop {
            let v = self.get(path, api).await?;
            if done(v.as_ref()) {
                return Ok(v);
            }
            attempt += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let state = v
                    .as_ref()
                    .and_then(|v| v.pointer("/properties/provisioningState"))
                    .and_then(Value::as_str)
                    .unwrap_or("unknown");
                let last = format!("provisioningState `{state}`");
                return Err(self.timed_out(method, path, &format!("none, the resource read {attempt} times"), &last));
            }
            self.pause(self.retry.delay(attempt.min(4), None).min(left), &op).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use axum::response::IntoResponse;
    use serde_json::json;

    use super::*;
    use crate::arm::client::testing::client;

    /// A loopback ARM: `PUT`/`DELETE /r` start an operation (202 + `Azure-AsyncOperation`),
    /// `GET /op` answers `op` (status, body; `null` for an empty body) to every poll, and
    /// `GET /r` answers the resource when `exists`, else 404.
    async fn arm(op: (u16, Value), exists: bool) -> (String, Arc<AtomicU64>) {
        let polls = Arc::new(AtomicU64::new(0));
        let counter = polls.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let op_url = format!("{base}/op?sig=secret");
        let start = move || {
            let op_url = op_url.clone();
            async move {
                (
                    axum::http::StatusCode::ACCEPTED,
                    [("azure-asyncoperation", op_url), ("retry-after-ms", "1".into())],
                    "{}",
                )
            }
        };
        let poll = move || {
            let counter = counter.clone();
            let (status, body) = op.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let status = axum::http::StatusCode::from_u16(status).expect("status");
                let body = if body.is_null() { String::new() } else { body.to_string() };
                (status, [("retry-after-ms", "1")], body).into_response()
            }
        };
        let read = move || async move {
            if exists {
                (
                    axum::http::StatusCode::OK,
                    json!({"id": "/r", "properties": {"provisioningState": "Succeeded"}}).to_string(),
                )
            } else {
                (
                    axum::http::StatusCode::NOT_FOUND,
                    json!({"error": {"code": "ResourceNotFound", "message": "m"}}).to_string(),
                )
            }
        };
        let app = axum::Router::new()
            .route("/r", axum::routing::put(start.clone()).delete(start).get(read))
            .route("/op", axum::routing::get(poll));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, polls)
    }

    async fn put(base: &str, time: Duration) -> Result<Value, Error> {
        let mut c = client(base);
        c.set_operation_time(Arc::new(move |_| time));
        c.write(Method::PUT, "/r", "1", &json!({}), &[]).await
    }

    #[tokio::test]
    async fn a_forgotten_operation_is_settled_by_reading_the_resource() {
        let (base, _) = arm((404, json!({"error": {"code": "OperationNotFound"}})), true).await;
        let v = put(&base, Duration::from_secs(60)).await.expect("the resource exists: the PUT succeeded");
        assert_eq!(v["id"], "/r");

        let (base, _) = arm((404, json!({"error": {"code": "OperationNotFound"}})), false).await;
        let e = put(&base, Duration::from_secs(60)).await.expect_err("absent: the PUT did not happen");
        assert_eq!(e.code, "OperationLost");
        assert!(e.message.contains("does not exist"), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");

        let (base, _) = arm((410, Value::Null), false).await;
        assert!(client(&base).delete("/r", "1").await.expect("gone and absent: deleted"));
        let (base, _) = arm((404, Value::Null), true).await;
        let e = client(&base).delete("/r", "1").await.expect_err("gone but still there");
        assert_eq!(e.code, "OperationLost");
    }

    #[tokio::test]
    async fn answers_without_a_status_end_the_wait_after_a_few_tries() {
        for body in [json!({}), Value::Null, json!({"status": ""})] {
            let (base, polls) = arm((200, body.clone()), true).await;
            let e = put(&base, Duration::from_secs(60)).await.expect_err("not understood");
            assert_eq!(e.code, "InvalidOperationStatus", "{body}: {e}");
            assert_eq!(polls.load(Ordering::SeqCst), u64::from(UNCLEAR_TRIES), "{body}");
        }
        let (base, _) =
            arm((200, json!({"status": "Failed", "error": {"code": "Conflict", "message": "no"}})), true).await;
        assert_eq!(put(&base, Duration::from_secs(60)).await.expect_err("failed").code, "Conflict");
    }

    #[tokio::test]
    async fn past_its_deadline_a_wait_names_the_resource_the_operation_and_the_last_answer() {
        let (base, polls) = arm((200, json!({"status": "InProgress"})), true).await;
        let e = put(&base, Duration::from_millis(50)).await.expect_err("never ends");
        assert_eq!(e.code, "OperationTimedOut");
        assert!(polls.load(Ordering::SeqCst) >= 1);
        let text = e.to_string();
        assert!(text.contains("PUT /r") && text.contains(&format!("{base}/op")), "{text}");
        assert!(text.contains("status `InProgress`"), "{text}");
        assert!(!text.contains("sig=secret"), "{text}");
    }

    #[tokio::test]
    async fn a_stop_ends_a_wait_at_once() {
        let (base, _) = arm((200, json!({"status": "InProgress"})), true).await;
        let mut c = client(&base);
        c.set_operation_time(Arc::new(|_| Duration::from_secs(3600)));
        c.retry.base = Duration::from_secs(3600);
        let stop = c.stop.clone();
        let waiting = tokio::spawn(async move { c.write(Method::PUT, "/r", "1", &json!({}), &[]).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.stop();
        let e = waiting.await.expect("joined").expect_err("interrupted");
        assert_eq!(e.code, "Interrupted");
    }
}
