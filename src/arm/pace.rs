//! Pacing ARM requests under Azure's throttling, so that many resources (a fleet) are applied
//! under the limits instead of bouncing off them. Two mechanisms, both in front of every ARM
//! request the client sends with its own credential ([`super::client::Request::send`] calls
//! [`Pacer::admit`] before each attempt and [`Pacer::observe`] on its answer):
//!
//! - **Token buckets** keyed as Azure's (subscription, principal, operation type: reads 250
//!   and 25 a second, writes 200 and 10, deletes 200 and 10 — Azure's "Understand how Azure
//!   Resource Manager throttles requests"; the principal is the client's credential, so the
//!   key here is the subscription and the operation type), plus the authorization provider's
//!   role-assignment writes (120 a minute). They start full at the documented sizes and are
//!   corrected by each answer's `x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}`
//!   (less the requests of that bucket still in flight), so another process using the same
//!   bucket, or a smaller one, is followed. A request waits for a token before it is sent.
//!   When a bucket is short, its tokens go by priority, not by arrival: a request sent inside
//!   [`with_priority`] (the engine passes each resource's longest remaining path, the
//!   scheduler's own order) is admitted before every lower one waiting on the same bucket, so
//!   the writes on a fleet's critical path are not queued behind its bulk.
//! - **Adaptive concurrency** (AIMD): at most `limit` requests in flight; the limit grows by
//!   one per `limit` answers that were not throttled, and halves on a 429 (which empties the
//!   bucket it hit). A 429 is still retried by the retry policy, honouring `Retry-After`.
//!
//! [`PaceStats`] counts 429 answers and the time requests spent waiting here.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use tokio::sync::{Semaphore, SemaphorePermit};

/// A bucket's size and refill rate (tokens a second).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub size: f64,
    pub per_second: f64,
}

/// How the client paces.
#[derive(Debug, Clone, PartialEq)]
pub struct PaceConfig {
    /// Off: no bucket and no concurrency limit beyond `initial_concurrency` when `adaptive`
    /// is off too (429s are still counted).
    pub enabled: bool,
    /// The concurrency limit adapts (AIMD); else it stays `initial_concurrency`.
    pub adaptive: bool,
    pub reads: Bucket,
    pub writes: Bucket,
    pub deletes: Bucket,
    /// `Microsoft.Authorization/roleAssignments` PUTs (the provider's own limit).
    pub role_assignment_writes: Bucket,
    /// Requests in flight at first, and the bounds of the adaptive limit.
    pub initial_concurrency: usize,
    pub max_concurrency: usize,
    /// Refill runs this many times faster (a local cloud whose `time_scale` compresses time:
    /// `1 / time_scale`). 1 against Azure.
    pub speedup: f64,
}

impl Default for PaceConfig {
    fn default() -> PaceConfig {
        PaceConfig {
            enabled: true,
            adaptive: true,
            reads: Bucket { size: 250.0, per_second: 25.0 },
            writes: Bucket { size: 200.0, per_second: 10.0 },
            deletes: Bucket { size: 200.0, per_second: 10.0 },
            role_assignment_writes: Bucket { size: 120.0, per_second: 2.0 },
            initial_concurrency: 16,
            max_concurrency: 128,
            speedup: 1.0,
        }
    }
}

/// What pacing saw (read them for the summary).
#[derive(Debug, Default)]
pub struct PaceStats {
    /// Answers with status 429.
    pub throttled: AtomicU64,
    /// Microseconds requests spent waiting for a token or a slot, summed over requests.
    pub waited_us: AtomicU64,
}

impl PaceStats {
    /// The summed waiting time.
    pub fn waited(&self) -> Duration {
        Duration::from_micros(self.waited_us.load(Ordering::Relaxed))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Read,
    Write,
    Delete,
    RoleWrite,
}

tokio::task_local! {
    /// The priority of the requests sent inside [`with_priority`].
    static PRIORITY: u64;
}

/// Run `work` with every request it sends admitted at `priority`: when a bucket is short,
/// waiting requests get its tokens highest priority first (then oldest first). Outside it a
/// request has priority 0.
pub async fn with_priority<F: Future>(priority: u64, work: F) -> F::Output {
    PRIORITY.scope(priority, work).await
}

/// A request waiting for a bucket's token: highest priority first, then oldest.
type Place = (Reverse<u64>, u64);

#[derive(Debug)]
struct Tokens {
    tokens: f64,
    at: Instant,
    in_flight: u64,
    /// The requests waiting for a token, in the order they get one.
    waiting: BTreeSet<Place>,
}

#[derive(Debug)]
struct State {
    buckets: HashMap<(String, Op), Tokens>,
    /// The adaptive limit (fractional: it grows by 1/limit per good answer).
    limit: f64,
    /// Permits to forget as they come back (the limit was cut while they were out).
    debt: usize,
    /// Arrivals, numbered: the tie-break of equal priorities.
    arrivals: u64,
}

/// The pacer of one client (shared by its clones).
#[derive(Debug)]
pub struct Pacer {
    cfg: PaceConfig,
    state: Mutex<State>,
    slots: Semaphore,
    pub stats: PaceStats,
}

impl Default for Pacer {
    fn default() -> Pacer {
        Pacer::new(PaceConfig::default())
    }
}

/// A request admitted: its buckets and its slot, given back to [`Pacer::observe`] (or
/// dropped when no answer came).
#[derive(Debug)]
pub struct Ticket<'p> {
    keys: Vec<(String, Op)>,
    slot: Option<SemaphorePermit<'p>>,
    pacer: &'p Pacer,
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let mut st = self.pacer.lock();
        for k in &self.keys {
            if let Some(t) = st.buckets.get_mut(k) {
                t.in_flight = t.in_flight.saturating_sub(1);
            }
        }
        if let Some(slot) = self.slot.take() {
            if st.debt > 0 {
                st.debt -= 1;
                slot.forget();
            } else {
                drop(slot);
            }
        }
    }
}

impl Pacer {
    pub fn new(cfg: PaceConfig) -> Pacer {
        let initial = cfg.initial_concurrency.clamp(1, cfg.max_concurrency.max(1));
        Pacer {
            state: Mutex::new(State { buckets: HashMap::new(), limit: initial as f64, debt: 0, arrivals: 0 }),
            slots: Semaphore::new(initial),
            cfg,
            stats: PaceStats::default(),
        }
    }

    /// No pacing: requests go out as the caller sends them (429s are still counted).
    pub fn off() -> Pacer {
        Pacer::fixed(Semaphore::MAX_PERMITS)
    }

    /// No buckets and a fixed number of requests in flight (a baseline: "N wide").
    pub fn fixed(concurrency: usize) -> Pacer {
        Pacer::new(PaceConfig {
            enabled: false,
            adaptive: false,
            initial_concurrency: concurrency,
            max_concurrency: concurrency,
            ..PaceConfig::default()
        })
    }

    pub fn config(&self) -> &PaceConfig {
        &self.cfg
    }

    /// The adaptive concurrency limit now.
    pub fn limit(&self) -> usize {
        self.lock().limit as usize
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bucket(&self, op: Op) -> Bucket {
        let b = match op {
            Op::Read => self.cfg.reads,
            Op::Write => self.cfg.writes,
            Op::Delete => self.cfg.deletes,
            Op::RoleWrite => self.cfg.role_assignment_writes,
        };
        Bucket { size: b.size, per_second: b.per_second * self.cfg.speedup.max(f64::MIN_POSITIVE) }
    }

    /// Wait until the request `method path` may go: a token from each of its buckets, then a
    /// slot under the concurrency limit. `path` is the URL's path (its subscription).
    pub async fn admit(&self, method: &Method, path: &str) -> Ticket<'_> {
        if !self.cfg.enabled {
            let start = Instant::now();
            let slot = if self.cfg.initial_concurrency < Semaphore::MAX_PERMITS {
                self.slots.acquire().await.ok()
            } else {
                None
            };
            self.note_wait(start.elapsed());
            return Ticket { keys: Vec::new(), slot, pacer: self };
        }
        let subscription = subscription_of(path);
        let op = match *method {
            Method::GET | Method::HEAD => Op::Read,
            Method::DELETE => Op::Delete,
            _ => Op::Write,
        };
        let mut keys = vec![(subscription.clone(), op)];
        if *method == Method::PUT && is_role_assignment(path) {
            keys.push((subscription, Op::RoleWrite));
        }
        let start = Instant::now();
        for key in &keys {
            self.take(key).await;
        }
        let slot = self.slots.acquire().await.ok();
        self.note_wait(start.elapsed());
        Ticket { keys, slot, pacer: self }
    }

    /// Count a wait (not the microseconds every admission takes).
    fn note_wait(&self, waited: Duration) {
        if waited >= Duration::from_micros(100) {
            self.stats.waited_us.fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
        }
    }

    /// Take one token from a bucket, waiting for the refill when it is short: a request takes
    /// one only when the bucket holds one more than the requests queued ahead of it need.
    async fn take(&self, key: &(String, Op)) {
        let rate = self.bucket(key.1);
        let place = {
            let mut st = self.lock();
            st.arrivals += 1;
            (Reverse(PRIORITY.try_with(|p| *p).unwrap_or(0)), st.arrivals)
        };
        // Leaves the queue however the wait ends (a request dropped while waiting).
        let mut queued = Queued { pacer: self, key, place, done: false };
        loop {
            let wait = {
                let mut st = self.lock();
                let now = Instant::now();
                let t = st.buckets.entry(key.clone()).or_insert_with(|| Tokens {
                    tokens: rate.size,
                    at: now,
                    in_flight: 0,
                    waiting: BTreeSet::new(),
                });
                t.tokens = (t.tokens + now.duration_since(t.at).as_secs_f64() * rate.per_second).min(rate.size);
                t.at = now;
                t.waiting.insert(place);
                let ahead = t.waiting.range(..place).count() as f64;
                if t.tokens >= ahead + 1.0 {
                    t.tokens -= 1.0;
                    t.in_flight += 1;
                    t.waiting.remove(&place);
                    queued.done = true;
                    return;
                }
                Duration::from_secs_f64(((ahead + 1.0 - t.tokens) / rate.per_second).min(60.0))
            };
            tokio::time::sleep(wait.max(Duration::from_micros(500))).await;
        }
    }

    /// Learn from an answer: the 429 count, the remaining-requests header, the concurrency.
    pub fn observe(&self, ticket: Ticket<'_>, status: u16, headers: &reqwest::header::HeaderMap) {
        if status == 429 {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
        }
        if !self.cfg.enabled {
            return;
        }
        let mut st = self.lock();
        for key in &ticket.keys {
            let rate = self.bucket(key.1);
            let header = match key.1 {
                Op::Read => "x-ms-ratelimit-remaining-subscription-reads",
                Op::Write => "x-ms-ratelimit-remaining-subscription-writes",
                Op::Delete => "x-ms-ratelimit-remaining-subscription-deletes",
                Op::RoleWrite => "",
            };
            let remaining =
                headers.get(header).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f64>().ok());
            if let Some(t) = st.buckets.get_mut(key) {
                // This request is still counted in flight until the ticket drops.
                let others = t.in_flight.saturating_sub(1) as f64;
                if let Some(r) = remaining {
                    t.tokens = (r - others).clamp(0.0, rate.size);
                    t.at = Instant::now();
                }
            }
        }
        if status == 429 {
            // The bucket it hit is empty: nothing more goes until the refill.
            let code_is_provider = ticket.keys.len() > 1 && remaining_is_positive(headers);
            for key in &ticket.keys {
                if (key.1 == Op::RoleWrite || !code_is_provider)
                    && let Some(t) = st.buckets.get_mut(key)
                {
                    t.tokens = t.tokens.min(0.0);
                    t.at = Instant::now();
                }
            }
            if !self.cfg.adaptive {
                drop(st);
                drop(ticket);
                return;
            }
            let before = st.limit as usize;
            st.limit = (st.limit / 2.0).max(1.0);
            let cut = before.saturating_sub(st.limit as usize);
            let forgotten = self.slots.forget_permits(cut);
            st.debt += cut - forgotten;
        } else if self.cfg.adaptive {
            let before = st.limit as usize;
            st.limit = (st.limit + 1.0 / st.limit).min(self.cfg.max_concurrency as f64);
            let grown = (st.limit as usize).saturating_sub(before);
            // Pay the debt first: permits still owed are not given back twice.
            let repaid = grown.min(st.debt);
            st.debt -= repaid;
            if grown > repaid {
                self.slots.add_permits(grown - repaid);
            }
        }
        drop(st);
        drop(ticket);
    }
}

/// A place in a bucket's queue, left when the wait ends or is dropped.
struct Queued<'p, 'k> {
    pacer: &'p Pacer,
    key: &'k (String, Op),
    place: Place,
    done: bool,
}

impl Drop for Queued<'_, '_> {
    fn drop(&mut self) {
        if !self.done
            && let Some(t) = self.pacer.lock().buckets.get_mut(self.key)
        {
            t.waiting.remove(&self.place);
        }
    }
}

/// A 429 whose remaining-requests header is above zero came from a provider's own limit,
/// not from ARM's bucket.
fn remaining_is_positive(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get("x-ms-ratelimit-remaining-subscription-writes")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}

/// The subscription a path is in (lower case), or empty for a tenant-level request.
fn subscription_of(path: &str) -> String {
    let lower = path.to_ascii_lowercase();
    let path = lower.split_once("://").map_or(lower.as_str(), |(_, rest)| rest.find('/').map_or("", |i| &rest[i..]));
    path.strip_prefix("/subscriptions/")
        .map_or_else(String::new, |rest| rest.split(['/', '?']).next().unwrap_or("").to_string())
}

fn is_role_assignment(path: &str) -> bool {
    path.to_ascii_lowercase().contains("/providers/microsoft.authorization/roleassignments/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_subscription() {
        assert_eq!(subscription_of("https://h:1/subscriptions/ABC/resourceGroups/x?api-version=1"), "abc");
        assert_eq!(subscription_of("/subscriptions/abc"), "abc");
        assert_eq!(subscription_of("https://h/providers/Microsoft.Authorization/x"), "");
        assert!(is_role_assignment("/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/g"));
    }

    #[tokio::test]
    async fn headers_correct_the_bucket_and_a_429_halves_the_limit() {
        let p = Pacer::new(PaceConfig { initial_concurrency: 8, ..PaceConfig::default() });
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("x-ms-ratelimit-remaining-subscription-writes", "3".parse().expect("header"));
        let t = p.admit(&Method::PUT, "/subscriptions/s/resourceGroups/a").await;
        p.observe(t, 200, &h);
        let tokens = |p: &Pacer| p.lock().buckets.get(&("s".to_string(), Op::Write)).map(|t| t.tokens.floor());
        assert_eq!(tokens(&p), Some(3.0));
        assert_eq!(p.limit(), 8);
        let t = p.admit(&Method::PUT, "/subscriptions/s/resourceGroups/a").await;
        p.observe(t, 429, &reqwest::header::HeaderMap::new());
        assert_eq!((p.limit(), p.stats.throttled.load(Ordering::Relaxed)), (4, 1));
        assert_eq!(p.slots.available_permits(), 4);
        // Grows back by one after about `limit` good answers (by 1/limit each).
        for _ in 0..5 {
            let t = p.admit(&Method::GET, "/subscriptions/s").await;
            p.observe(t, 200, &reqwest::header::HeaderMap::new());
        }
        assert_eq!(p.limit(), 5);
        assert_eq!(p.slots.available_permits(), 5);
    }

    #[tokio::test]
    async fn an_empty_bucket_makes_requests_wait_for_the_refill() {
        let cfg = PaceConfig { writes: Bucket { size: 2.0, per_second: 100.0 }, ..PaceConfig::default() };
        let p = Pacer::new(cfg);
        for _ in 0..4 {
            let t = p.admit(&Method::PUT, "/subscriptions/s/x").await;
            p.observe(t, 200, &reqwest::header::HeaderMap::new());
        }
        // Two waited for a token (10 ms each at 100 a second).
        assert!(p.stats.waited() >= Duration::from_millis(15), "{:?}", p.stats.waited());
        let off = Pacer::off();
        let t = off.admit(&Method::PUT, "/subscriptions/s/x").await;
        off.observe(t, 429, &reqwest::header::HeaderMap::new());
        assert_eq!(off.stats.throttled.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_short_bucket_admits_the_highest_priority_first() {
        // One write token, refilled every 200 ms: three requests queue; the last to arrive has
        // the highest priority and goes first, the two others by arrival.
        let cfg = PaceConfig { writes: Bucket { size: 1.0, per_second: 5.0 }, ..PaceConfig::default() };
        let p = std::sync::Arc::new(Pacer::new(cfg));
        let t = p.admit(&Method::PUT, "/subscriptions/s/x").await;
        p.observe(t, 200, &reqwest::header::HeaderMap::new());
        let order = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, priority) in [("low-first", 1u64), ("low-second", 1), ("high", 9)] {
            let (p, order) = (p.clone(), order.clone());
            tasks.push(tokio::spawn(with_priority(priority, async move {
                let t = p.admit(&Method::PUT, "/subscriptions/s/x").await;
                order.lock().expect("lock").push(name);
                p.observe(t, 200, &reqwest::header::HeaderMap::new());
            })));
            // Each is queued before the next arrives.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for t in tasks {
            t.await.expect("task");
        }
        assert_eq!(*order.lock().expect("lock"), ["high", "low-first", "low-second"]);
        assert!(p.lock().buckets.values().all(|t| t.waiting.is_empty()));
    }
}
