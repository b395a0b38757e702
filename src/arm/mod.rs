//! The ARM client side: resource ids (shared with the local cloud), credentials, and the
//! HTTP core with retries and long-running operations. Knows nothing of plans.

pub mod auth;
pub mod blob;
pub mod capture;
pub mod client;
pub mod connect;
pub mod datalake;
pub mod dfs;
pub mod error;
pub mod id;
pub mod jwt;
pub mod keyvault;
pub mod lro;
pub mod pace;
pub mod retry;

pub use client::Client;

/// Percent-encode everything but unreserved characters and those in `keep`.
pub fn percent_encode(s: &str, keep: &[u8]) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || keep.contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
pub use error::Error;
