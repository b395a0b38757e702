//! The client side's one JWT reader: the claims of a token, without checking its signature
//! (a client never can: only the service that accepts the token does). Used for the caller's
//! object id and tenant, and by `verify` to look at the token a VM's identity was issued.
//!
//! Never logs or returns the token itself.

use base64::Engine;
use serde_json::Value;

/// The claims (the payload) of a JWT, or `None` when `token` is not one.
///
/// ```
/// let token = "eyJhbGciOiJub25lIn0.eyJvaWQiOiJhYmMifQ.";
/// let c = idlab::arm::jwt::claims(token).expect("a JWT");
/// assert_eq!(c["oid"], "abc");
/// assert!(idlab::arm::jwt::claims("not a token").is_none());
/// ```
pub fn claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// One string claim (`oid`, `tid`, `aud`), or `None`.
pub fn claim(claims: &Value, name: &str) -> Option<String> {
    claims.get(name).and_then(Value::as_str).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_padded_and_unpadded_payloads() {
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE.encode(s);
        let t = format!("h.{}.s", b(r#"{"tid":"t1","oid":"o"}"#));
        let c = claims(&t).expect("claims");
        assert_eq!(claim(&c, "tid").as_deref(), Some("t1"));
        assert_eq!(claim(&c, "nope"), None);
        assert!(claims("a.b").is_none());
        assert!(claims("").is_none());
    }
}
