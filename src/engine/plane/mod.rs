//! Per-plane request drivers: what one node's request is and how it is sent. The walkers
//! decide *whether* and *when* (with the scheduler); a plane decides *how*: ARM
//! ([`arm`]), blobs ([`blob`]), Key Vault secrets ([`secret`]), access-policy entries
//! ([`policy`]) and Data Lake folders ([`datalake`]).
//!
//! [`Work`] is the request a worker performs, built by [`for_change`] and [`for_delete`]
//! from the desired state, and sent by [`run`].
//!
//! Imports: kinds, plan, arm, engine's shared types. No scheduling. This file only
//! declares and re-exports: the shared types are in `work.rs`, the dispatch in `dispatch.rs`.

pub mod arm;
pub mod blob;
pub mod datalake;
mod dispatch;
pub mod policy;
pub mod secret;
mod work;

pub use dispatch::{for_change, for_delete, run, soft};
pub use work::{Done, PlaneCx, SecretWrite, SoftDeleted, Work};
