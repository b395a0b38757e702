//! Federated client assertions, checked the way Entra checks them before it exchanges one
//! for a token: a federated credential of the target matches the assertion's issuer, subject
//! and audience exactly; the signature verifies against the keys the issuer publishes (its
//! `{iss}/.well-known/openid-configuration` names the `jwks_uri`); the assertion is within its
//! validity window. An assertion may be presented again while it is valid: Entra does not
//! refuse a replayed federated assertion (the Azure CLI signs in once with a GitHub Actions
//! token and exchanges that same token for every later access token until it expires, when
//! Entra answers AADSTS700024: github.com/Azure/login issue 180), and `azure_identity`'s
//! workload-identity credential reads its token file once per ten minutes for every scope.
//!
//! The local cloud fetches an issuer's keys only from loopback hosts (`127.0.0.1`,
//! `localhost`, `::1`), plus the hosts listed in `IDLAB_LOCAL_OIDC_HOSTS` (comma-separated),
//! so a plan cannot make it call out. Keys are cached per issuer for a minute.
//!
//! Refusals carry Entra's codes: 700211 (no credential for the issuer), 70021 (none for the
//! issuer and subject), 700212 (none for the audience), 700024 (outside its validity window),
//! 50013 (invalid assertion: a bad signature, or keys that cannot be had), 50027 (malformed).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::store::State;
use super::token::rs256_valid;

/// The audience Entra expects of a federated assertion.
pub const DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Clock skew allowed on `exp` and `nbf`, seconds.
pub const SKEW: i64 = 300;

/// How long an issuer's keys are reused.
const KEY_CACHE: Duration = Duration::from_secs(60);

/// The environment variable naming further hosts whose issuers' keys may be fetched.
pub const HOSTS_VAR: &str = "IDLAB_LOCAL_OIDC_HOSTS";

/// One federated identity credential: what an assertion must carry.
#[derive(Debug, Clone)]
pub struct Record {
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
}

/// Why an assertion was refused: Entra's code and description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: u32,
    pub message: String,
}

fn refused(code: u32, message: impl Into<String>) -> Refused {
    Refused { code, message: message.into() }
}

type Keys = Vec<(Option<String>, Vec<u8>, Vec<u8>)>;

fn key_cache() -> &'static Mutex<HashMap<String, (Instant, Keys)>> {
    static C: OnceLock<Mutex<HashMap<String, (Instant, Keys)>>> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Whether the local cloud may fetch keys from `url`'s host.
pub fn host_allowed(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else { return false };
    if !matches!(u.scheme(), "http" | "https") {
        return false;
    }
    let host = u.host_str().unwrap_or_default().trim_matches(['[', ']']).to_ascii_lowercase();
    if matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1") {
        return true;
    }
    std::env::var(HOSTS_VAR)
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .any(|h| !h.is_empty() && h == host)
}

/// The `aud` claim's values (a string or an array).
fn audiences(c: &Value) -> Vec<String> {
    match c.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

/// Check `assertion` against the target's federated credentials `records` at `now` (Unix
/// seconds), and remember it when it is accepted.
///
/// # Errors
/// The [`Refused`] code and description Entra would answer.
pub async fn check(assertion: &str, records: &[Record], now: i64) -> Result<(), Refused> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let malformed = || refused(50027, "JWT token is invalid or malformed.");
    let [head, body, sig] = parts.as_slice() else { return Err(malformed()) };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let (Some(header), Some(claims)) = (decode(head), decode(body)) else { return Err(malformed()) };
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| malformed())?;
    let s = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let (iss, sub, aud) = (s("iss"), s("sub"), audiences(&claims));
    let shown_aud = aud.join(",");
    let for_issuer: Vec<&Record> = records.iter().filter(|r| r.issuer == iss).collect();
    if for_issuer.is_empty() {
        return Err(refused(
            700211,
            format!("No matching federated identity record found for presented assertion issuer '{iss}'."),
        ));
    }
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(refused(50013, "Assertion failed signature validation. [Reason - The algorithm is not RS256.]"));
    }
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_string);
    let keys = issuer_keys(&iss).await?;
    let input = format!("{head}.{body}");
    let verified = keys
        .iter()
        .filter(|(k, _, _)| kid.is_none() || k.is_none() || *k == kid)
        .any(|(_, n, e)| rs256_valid(n, e, input.as_bytes(), &sig));
    if !verified {
        return Err(refused(
            50013,
            format!(
                "Assertion failed signature validation. [Reason - No key published by issuer '{iss}' verifies the signature, Key id of the assertion: '{}'.]",
                kid.unwrap_or_default()
            ),
        ));
    }
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
    if now >= exp + SKEW || now + SKEW < nbf {
        let at = |t: i64| {
            time::OffsetDateTime::from_unix_timestamp(t)
                .ok()
                .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_default()
        };
        return Err(refused(
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}.",
                at(now),
                at(nbf),
                at(exp)
            ),
        ));
    }
    let for_subject: Vec<&&Record> = for_issuer.iter().filter(|r| r.subject == sub).collect();
    if for_subject.is_empty() {
        return Err(refused(
            70021,
            format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{shown_aud}'."
            ),
        ));
    }
    if !for_subject.iter().any(|r| r.audiences.iter().any(|a| aud.contains(a))) {
        return Err(refused(
            700212,
            format!("No matching federated identity record found for presented assertion audience '{shown_aud}'."),
        ));
    }
    Ok(())
}

/// The RSA keys issuer `iss` publishes (from its OpenID configuration's `jwks_uri`), cached
/// for a minute.
async fn issuer_keys(iss: &str) -> Result<Keys, Refused> {
    if let Some((at, keys)) = key_cache().lock().unwrap_or_else(|p| p.into_inner()).get(iss)
        && at.elapsed() < KEY_CACHE
    {
        return Ok(keys.clone());
    }
    let no_keys = |why: String| {
        refused(
            50013,
            format!("Assertion is invalid. [Reason - The signing keys of issuer '{iss}' could not be read: {why}.]"),
        )
    };
    let config = format!("{}/.well-known/openid-configuration", iss.trim_end_matches('/'));
    if !host_allowed(&config) {
        return Err(no_keys(format!(
            "the local cloud fetches keys only from loopback issuers and the hosts in {HOSTS_VAR}"
        )));
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| no_keys(e.to_string()))?;
    let get = async |url: &str| -> Result<Value, Refused> {
        let r = http.get(url).send().await.map_err(|e| no_keys(format!("{url}: {e}")))?;
        if !r.status().is_success() {
            return Err(no_keys(format!("{url} answered {}", r.status().as_u16())));
        }
        r.json::<Value>().await.map_err(|e| no_keys(format!("{url}: {e}")))
    };
    let doc = get(&config).await?;
    let jwks_uri = doc.get("jwks_uri").and_then(Value::as_str).unwrap_or_default().to_string();
    if !host_allowed(&jwks_uri) {
        return Err(no_keys(format!("jwks_uri '{jwks_uri}' is not on an allowed host")));
    }
    let jwks = get(&jwks_uri).await?;
    let keys: Keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|k| k.get("kty").and_then(Value::as_str) == Some("RSA"))
                .filter_map(|k| {
                    let b = |f: &str| k.get(f).and_then(Value::as_str).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
                    Some((k.get("kid").and_then(Value::as_str).map(str::to_string), b("n")?, b("e")?))
                })
                .collect()
        })
        .unwrap_or_default();
    key_cache().lock().unwrap_or_else(|p| p.into_inner()).insert(iss.to_string(), (Instant::now(), keys.clone()));
    Ok(keys)
}

/// The federated identity credentials of the user-assigned identity `identity_id` (its
/// `federatedIdentityCredentials` children).
pub fn credentials(st: &State, identity_id: &str) -> Vec<Record> {
    let prefix = format!("{}/federatedidentitycredentials/", identity_id.to_ascii_lowercase());
    st.resources
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(_, r)| {
            let p = r.body.get("properties");
            let s = |k: &str| p.and_then(|p| p.get(k)).and_then(Value::as_str).unwrap_or_default().to_string();
            let aud = p
                .and_then(|p| p.get("audiences"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default();
            Record { issuer: s("issuer"), subject: s("subject"), audiences: aud }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_issuers_are_fetched() {
        assert!(host_allowed("http://127.0.0.1:4000/.well-known/openid-configuration"));
        assert!(host_allowed("http://localhost/x"));
        assert!(host_allowed("http://[::1]:80/x"));
        assert!(!host_allowed("https://token.actions.githubusercontent.com/.well-known/openid-configuration"));
        assert!(!host_allowed("http://10.0.0.1/x"));
        assert!(!host_allowed("file:///etc/passwd"));
    }

    #[tokio::test]
    async fn an_unknown_issuer_is_refused_before_any_fetch() {
        let head = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#);
        let body =
            URL_SAFE_NO_PAD.encode(r#"{"iss":"https://a.example","sub":"s","aud":"api://AzureADTokenExchange"}"#);
        let records = [Record { issuer: "https://b.example".into(), subject: "s".into(), audiences: vec![] }];
        let r = check(&format!("{head}.{body}.AA"), &records, 0).await;
        assert_eq!(r.map_err(|e| e.code), Err(700211));
        assert_eq!(check("nope", &records, 0).await.map_err(|e| e.code), Err(50027));
    }
}
