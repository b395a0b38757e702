//! idlab: provision Azure managed-identity environments declaratively.
//!
//! Data flows one way: YAML → [`model`] (spanned tree, typed document, diagnostics) →
//! [`resolve`] (kinds from the [`kinds`] registry, references, semantic checks) →
//! [`graph`] (the DAG). Later layers diff against ARM and converge it.
//!
//! Module rules (see `docs/architecture.md`): `model`, `roles` are leaves; `kinds` uses
//! model and roles and is pure; `graph` is pure; `resolve` composes them; `ui` is used only
//! by `cli`, and only `ui` prints.

#[allow(clippy::disallowed_types)]
pub mod arm;
pub mod cli;
#[allow(clippy::disallowed_types)]
pub mod engine;
pub mod graph;
pub mod import;
pub mod kinds;
#[allow(clippy::disallowed_types)]
pub mod local;
pub mod model;
pub mod plan;
pub mod resolve;
pub mod roles;
pub mod ui;
pub mod verify;
