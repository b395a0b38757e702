//! The error of every ARM and data-plane call: HTTP status, service error code, message and
//! request id, kept as fields so callers branch on `code`, never on text (arm-contract §10).

use std::fmt;

/// A failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The HTTP status, or `None` when no response came (connection, TLS, timeout).
    pub status: Option<u16>,
    /// The service's error code (`AuthorizationFailed`, `PrincipalNotFound`, …), or a
    /// client-side one (`ConnectionFailed`, `Timeout`, `InvalidResponse`, `Credential`).
    pub code: String,
    pub message: String,
    /// `x-ms-request-id` of the failing response.
    pub request_id: Option<String>,
    /// `METHOD path` of the request (no query: it may hold a SAS signature).
    pub operation: String,
}

impl Error {
    pub fn new(code: &str, message: impl Into<String>) -> Error {
        Error { status: None, code: code.into(), message: message.into(), request_id: None, operation: String::new() }
    }

    /// Whether the service says the resource is not there.
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.status {
            Some(s) => write!(f, "{} {s} {}: {}", self.operation, self.code, self.message)?,
            None => write!(f, "{} {}: {}", self.operation, self.code, self.message)?,
        }
        if let Some(r) = &self.request_id {
            write!(f, " (request id {r})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
