//! The one retry policy of every HTTP call idlab makes: exponential backoff with jitter on
//! 429, 5xx and lost connections, honouring `retry-after-ms` and `Retry-After`, and the
//! per-request [`RetryWhile`] conditions that wait out eventual consistency. The loop that
//! applies them is [`super::client::Request::send`]. Knows nothing of plans.

use std::sync::Arc;
use std::time::Duration;

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

/// The client's stop signal: once set (the first Ctrl-C), every wait the client is in or
/// starts (a retry's backoff, a [`RetryWhile`] pause, a long-running operation's poll
/// interval) ends at once with an `Interrupted` error; requests already on the wire are not
/// cut. Clones share the signal.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<StopInner>);

#[derive(Debug, Default)]
struct StopInner {
    set: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl Stop {
    /// A signal that is not set.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Set the signal and wake every wait (idempotent).
    pub fn stop(&self) {
        self.0.set.store(true, std::sync::atomic::Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Whether [`Stop::stop`] was called on this signal or a clone.
    pub fn is_stopped(&self) -> bool {
        self.0.set.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Wait `d`; `false` when the signal is (or gets) set first.
    pub async fn sleep(&self, d: Duration) -> bool {
        let woken = self.0.notify.notified();
        if self.is_stopped() {
            return false;
        }
        tokio::select! {
            () = tokio::time::sleep(d) => !self.is_stopped(),
            () = woken => false,
        }
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

/// A per-request retry condition: while the answer is one the condition matches (a status,
/// optionally with a service error code, or any predicate over both), the client's retry
/// policy sends the request again with its usual backoff (capped at [`RetryWhile::max_delay`])
/// until the deadline; the last answer is sent at the deadline and returned as it is, so the
/// caller sees the real error when the condition never cleared.
///
/// This is how idlab waits out eventual consistency without sleeping in loops of its own:
/// - a role assignment for a principal created a moment ago: HTTP 400 `PrincipalNotFound`
///   until `--principal-wait` (arm-contract: principal replication);
/// - a Data Lake Gen2 call right after its data role was granted: HTTP 403
///   `AuthorizationPermissionMismatch` until the role takes effect;
/// - `verify --wait`: an allowed check refused with 403 while a role assignment propagates.
///
/// The error code is the response's `x-ms-error-code` header (data planes), else the ARM
/// envelope's `error.code`; it is compared without regard to case. Throttling and server
/// errors are retried by the policy as always, whatever the condition says. A condition
/// without a deadline never retries.
///
/// ```no_run
/// # async fn f(client: &idlab::arm::Client, id: &str, body: &serde_json::Value) -> Result<(), idlab::arm::Error> {
/// use idlab::arm::client::RetryWhile;
/// let principal_wait = std::time::Duration::from_secs(120);
/// let r = client
///     .request(reqwest::Method::PUT, id)
///     .api_version("2022-04-01")
///     .json(body)
///     .retry_while(RetryWhile::code(400, "PrincipalNotFound").within(principal_wait))
///     .send()
///     .await?;
/// if !r.is_success() {
///     return Err(r.error()); // still PrincipalNotFound after two minutes, or another error
/// }
/// # Ok(()) }
/// ```
/// A predicate over an answer's status and error code.
type Matcher = Arc<dyn Fn(u16, &str) -> bool + Send + Sync>;

#[derive(Clone)]
pub struct RetryWhile {
    matches: Matcher,
    deadline: Deadline,
    max_delay: Duration,
}

#[derive(Clone, Copy, Debug)]
enum Deadline {
    None,
    At(tokio::time::Instant),
    /// This long after the request is first sent.
    Within(Duration),
}

impl std::fmt::Debug for RetryWhile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryWhile").field("deadline", &self.deadline).field("max_delay", &self.max_delay).finish()
    }
}

impl RetryWhile {
    /// While the answer is `status` with the service error code `code`.
    pub fn code(status: u16, code: &'static str) -> RetryWhile {
        RetryWhile::when(move |s, c| s == status && c.eq_ignore_ascii_case(code))
    }

    /// While the answer is `status`, whatever its code.
    pub fn status(status: u16) -> RetryWhile {
        RetryWhile::when(move |s, _| s == status)
    }

    /// While `matches(status, code)` holds.
    pub fn when(matches: impl Fn(u16, &str) -> bool + Send + Sync + 'static) -> RetryWhile {
        RetryWhile { matches: Arc::new(matches), deadline: Deadline::None, max_delay: Duration::from_secs(10) }
    }

    /// Retry until this instant (a `std::time::Instant` or a `tokio::time::Instant`).
    #[must_use]
    pub fn until(mut self, deadline: impl Into<tokio::time::Instant>) -> RetryWhile {
        self.deadline = Deadline::At(deadline.into());
        self
    }

    /// Retry for this long after the request is first sent (`Duration::ZERO`: never).
    #[must_use]
    pub fn within(mut self, window: Duration) -> RetryWhile {
        self.deadline = Deadline::Within(window);
        self
    }

    /// Wait at most this long between two tries (default 10 s).
    #[must_use]
    pub fn max_delay(mut self, max: Duration) -> RetryWhile {
        self.max_delay = max;
        self
    }

    /// Whether an answer of `status` with error code `code` is one to retry.
    pub fn matches(&self, status: u16, code: &str) -> bool {
        (self.matches)(status, code)
    }

    /// The wait before the `held`-th retry under this condition: the policy's backoff, capped
    /// by [`RetryWhile::max_delay`] and by what is left of the window.
    pub(super) fn pause(&self, policy: &RetryPolicy, held: u32, left: Duration) -> Duration {
        policy.delay(held, None).min(self.max_delay).min(left)
    }

    pub(super) fn deadline(&self, start: tokio::time::Instant) -> Option<tokio::time::Instant> {
        match self.deadline {
            Deadline::None => None,
            Deadline::At(d) => Some(d),
            Deadline::Within(w) => Some(start + w),
        }
    }
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

    #[tokio::test]
    async fn a_stop_ends_waits_in_progress_and_to_come() {
        let stop = Stop::new();
        assert!(stop.sleep(Duration::from_millis(1)).await);
        let s2 = stop.clone();
        let waiting = tokio::spawn(async move { s2.sleep(Duration::from_secs(3600)).await });
        tokio::task::yield_now().await;
        stop.stop();
        assert!(!waiting.await.expect("joined"));
        assert!(!stop.sleep(Duration::from_secs(3600)).await);
    }
}
