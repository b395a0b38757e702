//! The engine: reads what ARM holds ([`observe()`]), asks [`crate::plan`] for the diff, and
//! converges ([`walk::apply`]) or tears down ([`walk::destroy`]) by walking the graph with
//! the [`schedule`]r — bounded parallelism, longest remaining path first, a failure skips
//! its dependents while independent branches finish, cancellation through a [`Cancel`]
//! token. Requests are built and sent per plane ([`plane`]). Only the engine, `arm` and
//! `verify` do I/O.
//!
//! Imports: graph, plan, kinds, arm, resolve. Reports through [`Reporter`]; never prints.
//! This file only declares and re-exports: shared types live in [`context`].

pub mod context;
pub mod envs;
pub mod import;
pub mod observe;
pub mod plane;
pub mod quota;
pub mod schedule;
pub mod secrets;
pub mod walk;

pub use context::{Context, Event, Outcome, Reporter, Shared, Traffic};
pub use observe::{observe, read, record, record_decl, targets};
pub use schedule::Cancel;

pub use crate::kinds::kind_of_arm_type as kind_of_type;
pub use crate::plan::{Observed, fingerprints, managed_projection, not_owned_reason, owned, owned_by, parent_of};
