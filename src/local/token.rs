//! Tokens: HS256 JWTs with the claims Azure's v1 access tokens carry (arm-contract §9).
//! Clients never verify the signature, so a symmetric key kept in the state is enough; the
//! local cloud itself verifies every token it is shown.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The claims idlab issues and checks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub tid: String,
    pub oid: String,
    pub sub: String,
    pub appid: String,
    pub azp: String,
    #[serde(default)]
    pub appidacr: String,
    #[serde(default)]
    pub idtyp: String,
    #[serde(default)]
    pub ver: String,
    /// The managed identity's resource id (VM id for system-assigned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_mirid: Option<String>,
    #[serde(default)]
    pub uti: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    BadSignature,
    Expired { exp: i64 },
    NotYetValid { nbf: i64 },
}

/// Sign claims into a compact JWT.
pub fn sign(key: &[u8], claims: &Claims) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT","kid":"idlab-local"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let input = format!("{header}.{body}");
    let sig = match HmacSha256::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("{input}.{sig}")
}

/// Decode the claims without checking the signature (for client assertions from other
/// issuers, which the local cloud cannot verify).
pub fn peek(token: &str) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let _ = parts.next()?;
    let body = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
    serde_json::from_slice(&body).ok()
}

/// Verify signature and validity window (with Azure's 5-minute clock skew).
///
/// # Errors
/// The [`TokenError`] that decides the 401 code.
pub fn verify(key: &[u8], token: &str, now: i64) -> Result<Claims, TokenError> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(TokenError::Malformed);
    }
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).map_err(|_| TokenError::Malformed)?;
    let mut mac = HmacSha256::new_from_slice(key).map_err(|_| TokenError::Malformed)?;
    mac.update(parts[0].as_bytes());
    mac.update(b".");
    mac.update(parts[1].as_bytes());
    mac.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
    let body = URL_SAFE_NO_PAD.decode(parts[1]).map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&body).map_err(|_| TokenError::Malformed)?;
    const SKEW: i64 = 300;
    if now >= claims.exp + SKEW {
        return Err(TokenError::Expired { exp: claims.exp });
    }
    if now + SKEW < claims.nbf {
        return Err(TokenError::NotYetValid { nbf: claims.nbf });
    }
    Ok(claims)
}

/// The audience of a v2 scope: the scope without `/.default` (`https://management.core.windows.net//.default`
/// gives `https://management.core.windows.net/`).
pub fn scope_audience(scope: &str) -> String {
    let first = scope
        .split_whitespace()
        .find(|s| s.ends_with("/.default"))
        .or_else(|| scope.split_whitespace().next())
        .unwrap_or_default();
    first.strip_suffix("/.default").unwrap_or(first).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64, nbf: i64) -> Claims {
        Claims {
            aud: "https://management.azure.com/".into(),
            iss: "https://sts.windows.net/t/".into(),
            iat: nbf,
            nbf,
            exp,
            tid: "t".into(),
            oid: "o".into(),
            sub: "o".into(),
            appid: "a".into(),
            azp: "a".into(),
            appidacr: "1".into(),
            idtyp: "app".into(),
            ver: "1.0".into(),
            xms_mirid: None,
            uti: "u".into(),
        }
    }

    #[test]
    fn round_trip_and_failures() {
        let key = b"0123456789abcdef0123456789abcdef";
        let t = sign(key, &claims(2000, 1000));
        assert_eq!(verify(key, &t, 1500).map(|c| c.oid), Ok("o".to_string()));
        assert_eq!(verify(b"another key another key 12345678", &t, 1500), Err(TokenError::BadSignature));
        assert_eq!(verify(key, &t, 2400), Err(TokenError::Expired { exp: 2000 }));
        assert_eq!(verify(key, &t, 600), Err(TokenError::NotYetValid { nbf: 1000 }));
        assert_eq!(verify(key, "abc", 1500), Err(TokenError::Malformed));
        let mut forged = t.clone();
        forged.insert(t.find('.').unwrap_or(0) + 3, 'x');
        assert!(verify(key, &forged, 1500).is_err());
    }

    #[test]
    fn audiences_from_scopes() {
        assert_eq!(
            scope_audience("https://management.core.windows.net//.default"),
            "https://management.core.windows.net/"
        );
        assert_eq!(scope_audience("https://vault.azure.net/.default"), "https://vault.azure.net");
        assert_eq!(scope_audience("https://storage.azure.com/.default offline_access"), "https://storage.azure.com");
    }
}
