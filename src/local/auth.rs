//! The one bearer check of the local cloud. Every plane that takes Entra tokens (ARM and the
//! admin API, blob, dfs, WebHDFS, Key Vault) asks it, with the audiences that plane accepts;
//! each plane only renders the [`Refusal`] in its own error format. Handlers get the
//! [`Caller`] and never parse tokens.

use super::store::State;
use super::token::{SigningKey, TokenError, verify};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub object_id: String,
    pub client_id: String,
    /// The token's `iss` (Key Vault names it in its refusals).
    pub issuer: String,
}

/// Why a bearer token was refused, in the order the checks run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a JWT, not signed by this local cloud, or signed with another algorithm than
    /// RS256 (an HS256 token of an older state directory, `none`).
    Invalid,
    Expired {
        exp: i64,
        now: i64,
    },
    NotYetValid {
        nbf: i64,
    },
    /// Another tenant's token (its `iss`).
    WrongTenant {
        iss: String,
    },
    /// An audience this plane does not accept (its `aud`).
    WrongAudience {
        aud: String,
    },
    /// The token's principal no longer exists (deleted since the token was issued).
    UnknownPrincipal,
}

/// What a plane trusts: the signing key, its tenant and the directory of principals.
pub struct Trust<'a> {
    pub key: &'a SigningKey,
    pub tenant: &'a str,
    pub state: &'a State,
}

/// The bearer check: the algorithm (RS256 only), signature, expiry and not-before (with Azure's 5-minute skew), tenant,
/// the audiences the plane `accepts`, and that the principal still exists.
///
/// # Errors
/// The first check that fails.
pub fn bearer_check(trust: &Trust<'_>, token: &str, accepts: impl Fn(&str) -> bool) -> Result<Caller, Refusal> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = verify(trust.key, token.trim(), now).map_err(|e| match e {
        TokenError::Expired { exp } => Refusal::Expired { exp, now },
        TokenError::NotYetValid { nbf } => Refusal::NotYetValid { nbf },
        TokenError::Malformed | TokenError::WrongAlgorithm | TokenError::BadSignature => Refusal::Invalid,
    })?;
    if !claims.tid.eq_ignore_ascii_case(trust.tenant) {
        return Err(Refusal::WrongTenant { iss: claims.iss });
    }
    if !accepts(&claims.aud) {
        return Err(Refusal::WrongAudience { aud: claims.aud });
    }
    if trust.state.principal(&claims.oid).is_none() {
        return Err(Refusal::UnknownPrincipal);
    }
    let client_id = claims.client_id().to_string();
    Ok(Caller { object_id: claims.oid, client_id, issuer: claims.iss })
}
