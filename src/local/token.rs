//! Tokens: RS256 JWTs with the claims Entra's access tokens carry, signed with the state
//! directory's own RSA key and checked against it; the key's public half is published as a
//! JWKS (`{tenant}/discovery/v2.0/keys`), so any service can validate a local token the way
//! it validates Entra's.
//!
//! The algorithm is pinned: a token whose header names anything but `RS256` (`HS256`, `none`,
//! `RS384`…) is refused before its signature is looked at. Signing and verifying use `ring`;
//! the key is generated once per state directory by the RustCrypto `rsa` crate (`ring` cannot
//! generate RSA keys). The JWS compact form itself (two base64url JSON segments and the
//! signature) is written here.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The one signature algorithm issued and accepted.
pub const ALGORITHM: &str = "RS256";

/// The key file in the state directory: PKCS#8 DER of a 2048-bit RSA key, mode 0600. Never
/// printed or logged.
pub const KEY_FILE: &str = "token-signing.key.der";

/// Bits of a generated key.
pub const KEY_BITS: usize = 2048;

/// The claims idlab issues and checks. v1 tokens (`ver` `1.0`) carry `appid`, `appidacr` and
/// `idp`; v2 tokens carry `azp` and `azpacr` instead. Absent claims are empty or `None` and
/// are not serialized.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Claims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub appid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub appidacr: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub azp: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub azpacr: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub idp: String,
    #[serde(default)]
    pub idtyp: String,
    pub oid: String,
    pub sub: String,
    pub tid: String,
    #[serde(default)]
    pub uti: String,
    #[serde(default)]
    pub ver: String,
    /// The managed identity's resource id (the VM's id for a system-assigned identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_mirid: Option<String>,
}

impl Claims {
    /// The client (application) id: `appid` in v1 tokens, `azp` in v2 tokens.
    pub fn client_id(&self) -> &str {
        if self.appid.is_empty() { &self.azp } else { &self.appid }
    }
}

/// Whether Entra issues v1 tokens to an audience: the Microsoft resources whose service
/// principals accept v1 tokens (ARM, Storage and its accounts, Key Vault, SQL, Data Lake,
/// Microsoft Graph). Other audiences (an application of your own) get v2 tokens.
pub fn v1_audience(aud: &str) -> bool {
    let host = aud.strip_prefix("https://").unwrap_or(aud).split('/').next().unwrap_or_default().to_ascii_lowercase();
    matches!(
        host.as_str(),
        "management.azure.com"
            | "management.core.windows.net"
            | "storage.azure.com"
            | "vault.azure.net"
            | "database.windows.net"
            | "datalake.azure.net"
            | "graph.microsoft.com"
            | "graph.windows.net"
    ) || host.ends_with(".core.windows.net")
        || host.ends_with(".vault.azure.net")
}

/// The `iss` of a tenant's tokens: v1 `https://sts.windows.net/{tid}/`, v2
/// `https://login.microsoftonline.com/{tid}/v2.0` (as Entra's, and as the OpenID
/// configurations name them).
pub fn issuer(tenant: &str, v1: bool) -> String {
    if v1 {
        format!("https://sts.windows.net/{tenant}/")
    } else {
        format!("https://login.microsoftonline.com/{tenant}/v2.0")
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    /// The header names another algorithm than `RS256` (an `HS256` token of an older state
    /// directory, `none`, …).
    WrongAlgorithm,
    BadSignature,
    Expired {
        exp: i64,
    },
    NotYetValid {
        nbf: i64,
    },
}

/// The signing key of a state directory: the RSA key pair, its key id and public numbers.
pub struct SigningKey {
    pair: RsaKeyPair,
    kid: String,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A key from PKCS#8 DER.
    ///
    /// # Errors
    /// Not an RSA private key `ring` accepts (2048 to 8192 bits).
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey, String> {
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| format!("not an RSA PKCS#8 private key ({e})"))?;
        let public: RsaPublicKeyComponents<Vec<u8>> = pair.public().into();
        let (n, e) = (public.n, public.e);
        let kid = thumbprint(&n, &e);
        Ok(SigningKey { pair, kid, n, e })
    }

    /// A new 2048-bit key, as PKCS#8 DER.
    ///
    /// # Errors
    /// Key generation or encoding failed.
    pub fn generate() -> Result<Vec<u8>, String> {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::PrivateKey::new(&mut rand::rng(), KEY_BITS).map_err(|e| format!("RSA key generation: {e}"))?;
        key.to_pkcs8_der().map(|d| d.as_bytes().to_vec()).map_err(|e| format!("RSA key encoding: {e}"))
    }

    /// The `kid` of this key: its RFC 7638 JWK thumbprint (SHA-256, base64url).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as Entra publishes it in a JWKS (`kty`, `use`, `kid`, `n`, `e`, and the
    /// `issuer` that v2 key sets name).
    pub fn jwk(&self, issuer: &str) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
            "alg": ALGORITHM,
            "cloud_instance_name": "idlab.local",
            "issuer": issuer,
        })
    }
}

/// The RFC 7638 thumbprint of an RSA public key.
fn thumbprint(n: &[u8], e: &[u8]) -> String {
    let canonical =
        format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, URL_SAFE_NO_PAD.encode(e), URL_SAFE_NO_PAD.encode(n));
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// How the state directory's key was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// Read from [`KEY_FILE`].
    Read,
    /// Generated now and written to [`KEY_FILE`].
    Generated,
}

/// Read the state directory's signing key, or generate and write it (0600) when there is none.
///
/// # Errors
/// The file is unreadable or not a key, or a new key cannot be written.
pub fn load_or_create(dir: &Path) -> Result<(SigningKey, KeyOrigin), String> {
    let path = dir.join(KEY_FILE);
    match std::fs::read(&path) {
        Ok(der) => {
            owner_only(&path)?;
            SigningKey::from_pkcs8(&der).map(|k| (k, KeyOrigin::Read)).map_err(|e| format!("{}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let der = SigningKey::generate()?;
            let key = SigningKey::from_pkcs8(&der)?;
            write_private(&path, &der)?;
            Ok((key, KeyOrigin::Generated))
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Make the key file 0600 (a copy or an older tool may have left it readable).
fn owner_only(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    owner_only(tmp.path())?;
    std::fs::write(tmp.path(), bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    tmp.persist(path).map_err(|e| format!("{}: {}", path.display(), e.error))?;
    Ok(())
}

/// Sign claims into a compact JWT (header `{"typ":"JWT","alg":"RS256","kid":…}`).
pub fn sign(key: &SigningKey, claims: &Claims) -> String {
    sign_value(key, &serde_json::to_value(claims).unwrap_or_default())
}

/// Sign any JSON claims into a compact RS256 JWT (the test OIDC issuer's assertions).
pub fn sign_value(key: &SigningKey, claims: &Value) -> String {
    let header = json!({ "typ": "JWT", "alg": ALGORITHM, "kid": key.kid });
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut sig = vec![0u8; key.pair.public().modulus_len()];
    let rng = ring::rand::SystemRandom::new();
    match key.pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig) {
        Ok(()) => format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)),
        Err(_) => format!("{input}."),
    }
}

/// Decode the claims without checking the signature (for tests and diagnostics; client
/// assertions are checked in `federated`).
pub fn peek(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let _ = parts.next()?;
    let body = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
    serde_json::from_slice(&body).ok()
}

/// Verify the algorithm (`RS256` only), the key id, the signature and the validity window
/// (with Azure's 5-minute clock skew).
///
/// # Errors
/// The [`TokenError`] that decides the 401 code.
pub fn verify(key: &SigningKey, token: &str, now: i64) -> Result<Claims, TokenError> {
    let parts: Vec<&str> = token.split('.').collect();
    let [head, body, sig] = parts.as_slice() else {
        return Err(TokenError::Malformed);
    };
    let header: Value =
        URL_SAFE_NO_PAD.decode(head).ok().and_then(|h| serde_json::from_slice(&h).ok()).ok_or(TokenError::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some(ALGORITHM) {
        return Err(TokenError::WrongAlgorithm);
    }
    if header.get("kid").and_then(Value::as_str).is_some_and(|k| k != key.kid) {
        return Err(TokenError::BadSignature);
    }
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| TokenError::Malformed)?;
    let public = RsaPublicKeyComponents { n: &key.n, e: &key.e };
    public
        .verify(&RSA_PKCS1_2048_8192_SHA256, format!("{head}.{body}").as_bytes(), &sig)
        .map_err(|_| TokenError::BadSignature)?;
    let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| TokenError::Malformed)?;
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

/// Whether `sig` is an RS256 signature of `input` by the RSA public key (`n`, `e`): for keys
/// other issuers publish (federated assertions).
pub fn rs256_valid(n: &[u8], e: &[u8], input: &[u8], sig: &[u8]) -> bool {
    RsaPublicKeyComponents { n, e }.verify(&RSA_PKCS1_2048_8192_SHA256, input, sig).is_ok()
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

    fn key() -> SigningKey {
        SigningKey::from_pkcs8(include_bytes!("../../tests/fixtures/keys/token-signing.key.der")).expect("fixture key")
    }

    fn claims(exp: i64, nbf: i64) -> Claims {
        Claims {
            aud: "https://management.azure.com/".into(),
            iss: issuer("t", true),
            iat: nbf,
            nbf,
            exp,
            tid: "t".into(),
            oid: "o".into(),
            sub: "o".into(),
            appid: "a".into(),
            appidacr: "1".into(),
            idtyp: "app".into(),
            ver: "1.0".into(),
            ..Claims::default()
        }
    }

    fn segment(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    #[test]
    fn round_trip_and_failures() {
        let key = key();
        let t = sign(&key, &claims(2000, 1000));
        let head: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD.decode(t.split('.').next().unwrap_or_default()).unwrap_or_default(),
        )
        .unwrap_or_default();
        assert_eq!(head, json!({ "typ": "JWT", "alg": "RS256", "kid": key.kid() }));
        assert_eq!(verify(&key, &t, 1500).map(|c| c.oid), Ok("o".to_string()));
        let other =
            SigningKey::from_pkcs8(include_bytes!("../../tests/fixtures/keys/other-signing.key.der")).expect("key");
        assert_ne!(other.kid(), key.kid());
        assert_eq!(verify(&other, &t, 1500), Err(TokenError::BadSignature));
        assert_eq!(verify(&key, &t, 2400), Err(TokenError::Expired { exp: 2000 }));
        assert_eq!(verify(&key, &t, 600), Err(TokenError::NotYetValid { nbf: 1000 }));
        assert_eq!(verify(&key, "abc", 1500), Err(TokenError::Malformed));
        // The body changed under the same signature.
        let parts: Vec<&str> = t.split('.').collect();
        let mut c = claims(2000, 1000);
        c.oid = "someone else".into();
        let swapped =
            format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default()), parts[2]);
        assert_eq!(verify(&key, &swapped, 1500), Err(TokenError::BadSignature));
        // The same key id with another key's signature.
        let mut forged = sign(&other, &claims(2000, 1000));
        forged = format!("{}.{}", parts[0], forged.split_once('.').map(|(_, rest)| rest).unwrap_or_default());
        assert_eq!(verify(&key, &forged, 1500), Err(TokenError::BadSignature));
    }

    #[test]
    fn only_rs256_is_accepted() {
        let key = key();
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(2000, 1000)).unwrap_or_default());
        let good_sig = sign(&key, &claims(2000, 1000)).rsplit('.').next().unwrap_or_default().to_string();
        for alg in ["HS256", "none", "RS384", "PS256", "rs256"] {
            let head = segment(&json!({ "typ": "JWT", "alg": alg, "kid": key.kid() }));
            for sig in ["", good_sig.as_str()] {
                assert_eq!(
                    verify(&key, &format!("{head}.{body}.{sig}"), 1500),
                    Err(TokenError::WrongAlgorithm),
                    "{alg}"
                );
            }
        }
        let no_alg = segment(&json!({ "typ": "JWT", "kid": key.kid() }));
        assert_eq!(verify(&key, &format!("{no_alg}.{body}.{good_sig}"), 1500), Err(TokenError::WrongAlgorithm));
    }

    #[test]
    fn versions_and_issuers() {
        for aud in [
            "https://management.azure.com/",
            "https://management.core.windows.net/",
            "https://storage.azure.com",
            "https://acct.blob.core.windows.net",
            "https://vault.azure.net",
            "https://database.windows.net/",
            "https://datalake.azure.net/",
            "https://graph.microsoft.com",
        ] {
            assert!(v1_audience(aud), "{aud}");
        }
        for aud in ["api://my-api", "11111111-2222-3333-4444-555555555555", "https://example.com"] {
            assert!(!v1_audience(aud), "{aud}");
        }
        assert_eq!(issuer("t", true), "https://sts.windows.net/t/");
        assert_eq!(issuer("t", false), "https://login.microsoftonline.com/t/v2.0");
        let v2 = Claims { azp: "z".into(), ..Claims::default() };
        assert_eq!(v2.client_id(), "z");
        assert_eq!(claims(1, 1).client_id(), "a");
    }

    #[test]
    fn the_jwk_is_the_public_key() {
        let key = key();
        let jwk = key.jwk("https://login.microsoftonline.com/t/v2.0");
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["e"], "AQAB");
        let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap_or_default()).unwrap_or_default();
        assert_eq!(n.len(), 256);
        assert_eq!(jwk["kid"].as_str(), Some(thumbprint(&n, &[1, 0, 1]).as_str()));
        assert!(!jwk.to_string().contains("\"d\""), "no private part");
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
