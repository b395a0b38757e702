//! ARM throttling as Azure does it since 2024 (Azure's "Understand how Azure Resource Manager
//! throttles requests", the token bucket table): one token bucket per subscription, principal
//! and operation type (reads 250 and 25 a second, writes 200 and 10, deletes 200 and 10), and
//! the authorization provider's own limit on role-assignment writes (120 a minute, answered
//! 429 `ResourceRequestsThrottled`). Turned on by the fault file's `throttling` section
//! ([`super::faults::Throttling`]).
//!
//! The buckets' clock is virtual: real time divided by the fault file's `time_scale` (so a
//! test at 0.01 runs a minute of refill in 0.6 s), plus whatever the admin API advanced it by
//! (`POST /_idlab/clock`); with `throttling.frozen_clock` only the admin API moves it, so a
//! test counts tokens exactly. Tokens are kept in integer micro-units: refill is exact.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::faults::{Rate, Throttling};

/// An operation type, as ARM's buckets count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpType {
    Read,
    Write,
    Delete,
}

impl OpType {
    /// GET and HEAD read, DELETE deletes, everything else (PUT, PATCH, POST) writes.
    pub fn of(method: &str) -> OpType {
        match method {
            "GET" | "HEAD" => OpType::Read,
            "DELETE" => OpType::Delete,
            _ => OpType::Write,
        }
    }

    /// The suffix of the `x-ms-ratelimit-remaining-subscription-*` header.
    pub fn plural(self) -> &'static str {
        match self {
            OpType::Read => "reads",
            OpType::Write => "writes",
            OpType::Delete => "deletes",
        }
    }
}

/// Which limit a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// ARM's bucket for the operation type (429 `TooManyRequests`).
    Arm,
    /// The authorization provider's role-assignment writes (429 `ResourceRequestsThrottled`).
    RoleAssignments,
}

/// A request over a limit: which one, and after how many (virtual) seconds a token is back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub limit: Limit,
    pub op: OpType,
    /// Tokens left in the operation type's ARM bucket (for the remaining header).
    pub remaining: u64,
    /// Virtual seconds until the next token, rounded up (at least 1).
    pub retry_after_s: u64,
    /// The same in virtual microseconds (exact).
    pub retry_after_us: u64,
}

/// Micro-units per token per minute of rate: refill is `elapsed_us × per_minute` units.
const UNIT: u128 = 60_000_000;

#[derive(Debug, Clone)]
struct Bucket {
    units: u128,
    at_us: u64,
}

impl Bucket {
    fn full(rate: &Rate, now_us: u64) -> Bucket {
        Bucket { units: u128::from(rate.size) * UNIT, at_us: now_us }
    }

    fn refill(&mut self, rate: &Rate, now_us: u64) {
        let elapsed = u128::from(now_us.saturating_sub(self.at_us));
        let cap = u128::from(rate.size) * UNIT;
        self.units = (self.units + elapsed * u128::from(rate.per_minute())).min(cap);
        self.at_us = self.at_us.max(now_us);
    }

    fn tokens(&self) -> u64 {
        u64::try_from(self.units / UNIT).unwrap_or(u64::MAX)
    }

    /// Microseconds until one whole token is in the bucket.
    fn wait_us(&self, rate: &Rate) -> u64 {
        let missing = UNIT.saturating_sub(self.units);
        let per = u128::from(rate.per_minute().max(1));
        u64::try_from(missing.div_ceil(per)).unwrap_or(u64::MAX)
    }
}

/// The buckets and their clock (one per local cloud).
#[derive(Debug)]
pub struct Buckets {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Virtual microseconds added by the admin API.
    advanced_us: u64,
    /// The virtual time at the last configuration change (time_scale may change).
    base_us: u64,
    base_real: Instant,
    arm: HashMap<(String, String, OpType), Bucket>,
    roles: HashMap<(String, String), Bucket>,
}

impl Default for Buckets {
    fn default() -> Buckets {
        let now = Instant::now();
        Buckets {
            inner: Mutex::new(Inner {
                advanced_us: 0,
                base_us: 0,
                base_real: now,
                arm: HashMap::new(),
                roles: HashMap::new(),
            }),
        }
    }
}

impl Inner {
    fn now_us(&self, cfg: &Throttling, time_scale: f64) -> u64 {
        let running = if cfg.frozen_clock {
            0
        } else if time_scale <= 0.0 {
            // No time at all between two requests: every bucket refills at once.
            u64::MAX / 4
        } else {
            (self.base_real.elapsed().as_secs_f64() * 1e6 / time_scale) as u64
        };
        self.base_us.saturating_add(running).saturating_add(self.advanced_us)
    }
}

impl Buckets {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Move the virtual clock forward by `us` microseconds (the admin API).
    pub fn advance(&self, us: u64) {
        let mut i = self.lock();
        i.advanced_us = i.advanced_us.saturating_add(us);
    }

    /// Forget every bucket (a new fault configuration): they start full again.
    pub fn reset(&self) {
        let mut i = self.lock();
        i.arm.clear();
        i.roles.clear();
        i.advanced_us = 0;
        i.base_us = 0;
        i.base_real = Instant::now();
    }

    /// The virtual clock in microseconds.
    pub fn clock_us(&self, cfg: &Throttling, time_scale: f64) -> u64 {
        self.lock().now_us(cfg, time_scale)
    }

    /// Take a token for a request by `principal` in `subscription` (empty for tenant-level
    /// requests); `role_write` when it writes a role assignment. `Ok(remaining)` is what is left
    /// in the operation type's bucket.
    ///
    /// # Errors
    /// The limit the request ran into, with the wait.
    pub fn take(
        &self,
        cfg: &Throttling,
        time_scale: f64,
        subscription: &str,
        principal: &str,
        op: OpType,
        role_write: bool,
    ) -> Result<u64, Throttled> {
        let mut i = self.lock();
        let now = i.now_us(cfg, time_scale);
        let rate = match op {
            OpType::Read => &cfg.reads,
            OpType::Write => &cfg.writes,
            OpType::Delete => &cfg.deletes,
        };
        let key = (subscription.to_ascii_lowercase(), principal.to_ascii_lowercase(), op);
        let bucket = i.arm.entry(key.clone()).or_insert_with(|| Bucket::full(rate, now));
        bucket.refill(rate, now);
        if bucket.units < UNIT {
            let wait = bucket.wait_us(rate);
            return Err(Throttled {
                limit: Limit::Arm,
                op,
                remaining: 0,
                retry_after_s: wait.div_ceil(1_000_000).max(1),
                retry_after_us: wait,
            });
        }
        bucket.units -= UNIT;
        let remaining = bucket.tokens();
        if role_write {
            let rate = &cfg.role_assignment_writes;
            let bucket = i.roles.entry((key.0, key.1)).or_insert_with(|| Bucket::full(rate, now));
            bucket.refill(rate, now);
            if bucket.units < UNIT {
                let wait = bucket.wait_us(rate);
                return Err(Throttled {
                    limit: Limit::RoleAssignments,
                    op,
                    remaining,
                    retry_after_s: wait.div_ceil(1_000_000).max(1),
                    retry_after_us: wait,
                });
            }
            bucket.units -= UNIT;
        }
        Ok(remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frozen() -> Throttling {
        Throttling { enabled: true, frozen_clock: true, ..Throttling::default() }
    }

    #[test]
    fn a_burst_empties_the_bucket_and_the_clock_refills_it_exactly() {
        let b = Buckets::default();
        let cfg = frozen();
        for n in (0..250).rev() {
            assert_eq!(b.take(&cfg, 1.0, "s", "p", OpType::Read, false), Ok(n));
        }
        let t = b.take(&cfg, 1.0, "s", "p", OpType::Read, false).expect_err("251st");
        assert_eq!((t.limit, t.retry_after_s, t.retry_after_us), (Limit::Arm, 1, 40_000));
        // Another principal has its own bucket.
        assert_eq!(b.take(&cfg, 1.0, "s", "q", OpType::Read, false), Ok(249));
        b.advance(7 * 40_000);
        for _ in 0..7 {
            assert!(b.take(&cfg, 1.0, "s", "p", OpType::Read, false).is_ok());
        }
        assert!(b.take(&cfg, 1.0, "s", "p", OpType::Read, false).is_err());
    }

    #[test]
    fn role_assignment_writes_have_their_own_limit() {
        let b = Buckets::default();
        let cfg = frozen();
        for _ in 0..120 {
            assert!(b.take(&cfg, 1.0, "s", "p", OpType::Write, true).is_ok());
        }
        let t = b.take(&cfg, 1.0, "s", "p", OpType::Write, true).expect_err("121st");
        assert_eq!((t.limit, t.retry_after_s), (Limit::RoleAssignments, 1));
        // Other writes still pass: the ARM bucket had 200.
        assert_eq!(b.take(&cfg, 1.0, "s", "p", OpType::Write, false), Ok(78));
    }
}
