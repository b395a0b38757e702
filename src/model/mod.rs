//! The plan model: YAML with spans, the typed plan document, references, naming rules and
//! diagnostics. A leaf of the module graph: it imports no other idlab module and does no
//! network I/O.
//!
//! Flow: [`yaml::parse`] → [`structure`] (shape, against the generated schema) →
//! [`de::from_node`] (typed values with spans). Semantic checks that need the kind registry
//! run in `resolve`.

pub mod de;
pub mod diag;
pub mod doc;
pub mod files;
pub mod names;
pub mod refs;
pub mod sensitive;
pub mod span;
pub mod structure;
pub mod yaml;

pub use diag::{Code, Diag, Severity};
pub use doc::{Check, Expect, OrStr, PlanDoc, Secret, SpMap};
pub use sensitive::Sensitive;
pub use span::{Sp, Span};
