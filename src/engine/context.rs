//! What the engine's files share: where a run happens ([`Context`]), what it reports
//! ([`Reporter`], [`Event`]) and how each resource ended ([`Outcome`]).
//!
//! Imports: plan, kinds, arm, resolve, the scheduler's [`Cancel`]. No I/O.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::schedule::Cancel;
use crate::arm::{Client, Error};
use crate::kinds::env::Env;
use crate::plan::ActionKind;
use crate::resolve::Validated;

/// What the engine tells the user about, as it happens.
pub trait Reporter: Send + Sync {
    fn event(&self, e: Event);
}

/// One progress event.
#[derive(Debug, Clone)]
pub enum Event {
    Started { name: String, kind: String, action: ActionKind },
    Finished { name: String, outcome: Outcome },
    Note(String),
}

/// How one resource ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Created(String),
    Updated(String),
    Replaced(String),
    Deleted(String),
    Adopted(String),
    /// Destroy with `--adopt`: matched without this plan's mark, and deleted.
    AdoptedDeleted(String),
    /// A soft-deleted object brought back.
    Recovered(String),
    /// Deleted and purged (destroy with `--purge`): it cannot be recovered.
    Purged(String),
    Unchanged,
    /// Left in place on purpose (destroy), with why.
    Kept(String),
    Failed(Error),
    Skipped(String),
}

/// Where an apply or destroy runs, and as whom.
pub struct Context {
    pub client: Client,
    pub subscription: String,
    pub tenant_id: Option<String>,
    pub caller_object_id: Option<String>,
    pub parallelism: usize,
    /// Take over resources that exist without the plan's tag.
    pub adopt: bool,
    /// Destroy: delete what the plan does not own too.
    pub force: bool,
    /// A destroy (run or plan): observe also reads what a teardown needs (the resources the
    /// declared ones refer to, what the declared groups hold) and looks for role assignments
    /// under other names, so an untagged match is named.
    pub destroy: bool,
    /// `--target`: only these declarations (with what they need, or for destroy what needs
    /// them); `None` for all.
    pub only: Option<HashSet<usize>>,
    /// Start ready nodes in declaration order instead of longest-remaining-path first
    /// (benches compare the two).
    pub fifo: bool,
    /// How long `PrincipalNotFound` for an identity this plan just created is retried.
    pub principal_wait: std::time::Duration,
    /// Plan and apply (not destroy): check that globally named resources that do not exist
    /// yet have a free name.
    pub check_names: bool,
    /// `--purge`: soft-deleted copies (key vaults, secrets) are purged instead of recovered,
    /// and destroy purges what it deletes.
    pub purge: bool,
    /// Set on Ctrl-C (or `--timeout`): walkers start nothing new, let in-flight calls finish.
    pub cancel: Cancel,
}

/// A long-running operation may take this many times its kind's weight (a rough create time
/// in seconds, [`crate::kinds::Kind::weight`]) ...
pub const OPERATION_MARGIN: u32 = 10;
/// ... and never less than this.
pub const OPERATION_FLOOR: Duration = Duration::from_secs(300);

/// How long a long-running operation on resource `id` may take: its kind's weight ×
/// [`OPERATION_MARGIN`], at least [`OPERATION_FLOOR`] (a VM: 15 minutes).
pub fn operation_time(id: &str) -> Duration {
    let arm_type = match crate::arm::id::ResourceId::parse(id) {
        Ok(rid) => rid.resource_type().unwrap_or_else(|| "Microsoft.Resources/resourceGroups".to_string()),
        Err(_) => return OPERATION_FLOOR,
    };
    let weight = crate::kinds::KINDS
        .iter()
        .filter(|k| k.arm_type().is_some_and(|t| t.eq_ignore_ascii_case(&arm_type)))
        .map(|k| k.weight())
        .max()
        .unwrap_or(0);
    Duration::from_secs(u64::from(weight * OPERATION_MARGIN)).max(OPERATION_FLOOR)
}

impl Context {
    /// Give every long-running operation its deadline: `over` (`--operation-timeout`) when
    /// set, else [`operation_time`] of the resource.
    pub fn set_operation_timeout(&mut self, over: Option<Duration>) {
        match over {
            Some(d) => self.client.set_operation_time(Arc::new(move |_| d)),
            None => self.client.set_operation_time(Arc::new(operation_time)),
        }
    }

    /// What a kind sees when it builds declaration `logical`'s request.
    pub fn env<'a>(
        &'a self,
        plan: &'a Validated,
        logical: &'a str,
        values: &'a HashMap<(String, String), String>,
    ) -> Env<'a> {
        Env {
            subscription: &self.subscription,
            plan: &plan.name,
            location: &plan.location,
            logical,
            values,
            caller_object_id: self.caller_object_id.as_deref(),
            tenant_id: self.tenant_id.as_deref(),
            base_dir: &plan.base_dir,
        }
    }

    /// The options pure planning needs ([`crate::plan::make`]).
    pub fn plan_options<'a>(&'a self, plan: &'a Validated) -> crate::plan::Options<'a> {
        crate::plan::Options {
            plan_name: &plan.name,
            subscription: &self.subscription,
            tenant_id: self.tenant_id.as_deref(),
            caller_object_id: self.caller_object_id.as_deref(),
            adopt: self.adopt,
            purge: self.purge,
            force: self.force,
            only: self.only.as_ref(),
        }
    }
}

/// What the ARM client sent for a command, for its summary: requests (every attempt), 429
/// answers, and the time requests waited for pacing (summed over requests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traffic {
    pub requests: u64,
    pub throttled: u64,
    pub pacing_wait: std::time::Duration,
}

impl Context {
    /// The client's counters so far.
    pub fn traffic(&self) -> Traffic {
        use std::sync::atomic::Ordering;
        Traffic {
            requests: self.client.stats.requests.load(Ordering::Relaxed),
            throttled: self.client.pace.stats.throttled.load(Ordering::Relaxed),
            pacing_wait: self.client.pace.stats.waited(),
        }
    }
}

/// Shared by the walkers: the engine's view while applying.
pub struct Shared<'a> {
    pub cx: &'a Context,
    pub plan: &'a Validated,
    pub reporter: Arc<dyn Reporter>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_deadlines_follow_the_kind_with_a_floor() {
        let sub = "/subscriptions/00000000-0000-0000-0000-000000000000";
        let vm = format!("{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm");
        let vm_weight = crate::kinds::KINDS
            .iter()
            .find(|k| k.arm_type() == Some("Microsoft.Compute/virtualMachines"))
            .map(|k| k.weight())
            .expect("a VM kind");
        assert_eq!(operation_time(&vm), Duration::from_secs(u64::from(vm_weight * OPERATION_MARGIN)));
        assert!(operation_time(&vm) > OPERATION_FLOOR);
        assert_eq!(operation_time(&format!("{sub}/resourceGroups/rg")), OPERATION_FLOOR);
        assert_eq!(operation_time("not an id"), OPERATION_FLOOR);
    }
}
