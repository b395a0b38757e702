//! The ARM client side: resource ids (shared with the local cloud), credentials, and the
//! HTTP core with retries and long-running operations. Knows nothing of plans.

pub mod auth;
pub mod client;
pub mod error;
pub mod id;

pub use client::Client;
pub use error::Error;
