//! Capture of what idlab sends, for the API-spec tests: with `IDLAB_CAPTURE=FILE` set, every
//! request the client answers for good (after retries) is appended to `FILE` as one JSON line
//! `{method, url, api_version, status, request, response}`: the URL without its query (a SAS
//! stays out), the JSON body sent (`null` for none; raw bodies such as blob uploads are not
//! captured) and the JSON answer (`null` when not JSON). Secret-bearing fields are masked with
//! a placeholder of the same JSON type, so a schema still sees a string where a string was.
//! Off (and free) when the variable is unset.

use std::io::Write;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

/// The environment variable naming the capture file.
pub const ENV: &str = "IDLAB_CAPTURE";

/// What a masked string becomes.
pub const MASK: &str = "***";

fn target() -> Option<&'static std::path::PathBuf> {
    static TARGET: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    TARGET.get_or_init(|| std::env::var_os(ENV).filter(|v| !v.is_empty()).map(Into::into)).as_ref()
}

/// Whether captures are written (`IDLAB_CAPTURE` set).
pub fn enabled() -> bool {
    target().is_some()
}

/// Append one exchange to the capture file (nothing when capture is off). A failure to write
/// is logged, never fatal: capture is a test aid.
pub fn record(method: &reqwest::Method, url: &str, request: Option<&Value>, status: u16, response: &[u8]) {
    let Some(path) = target() else { return };
    let line = exchange(method, url, request, status, response).to_string();
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    if let Err(e) = written {
        tracing::debug!(error = %e, "capture not written");
    }
}

/// One captured exchange, masked.
pub fn exchange(method: &reqwest::Method, url: &str, request: Option<&Value>, status: u16, response: &[u8]) -> Value {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let api_version = query.split('&').find_map(|kv| kv.strip_prefix("api-version=")).map_or(Value::Null, |v| json!(v));
    let response = if response.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice::<Value>(response).unwrap_or(Value::Null)
    };
    json!({
        "method": method.as_str(),
        "url": base,
        "api_version": api_version,
        "status": status,
        "request": request.map_or(Value::Null, mask),
        "response": mask(&response),
    })
}

/// Whether a field of this name carries a secret when it holds a string.
fn secret_field(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "value"
        || n.contains("password")
        || n.contains("secret")
        || n.contains("token")
        || n.ends_with("sastoken")
        || n.contains("connectionstring")
        || matches!(n.as_str(), "primarykey" | "secondarykey" | "customdata" | "sig" | "keydata")
}

/// `v` with every string under a secret-bearing field replaced by [`MASK`].
pub fn mask(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let x = match x {
                        Value::String(_) if secret_field(k) => json!(MASK),
                        other => mask(other),
                    };
                    (k.clone(), x)
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(mask).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_with_strings_and_the_query_is_dropped() {
        let body = json!({
            "properties": { "administratorLoginPassword": "p@ss", "administratorLogin": "admin", "osProfile": { "adminPassword": "x", "secrets": [] } },
            "value": "s3cret",
            "keys": [{ "keyName": "key1", "value": "k" }],
            "tags": { "idlab-plan": "p" },
            "keyCreationTime": { "key1": "2026-01-01T00:00:00Z" },
        });
        let e = exchange(
            &reqwest::Method::PUT,
            "https://h/subscriptions/s/x?api-version=2023-08-01&sig=abc",
            Some(&body),
            200,
            br#"{"accountSasToken":"sv=1&sig=zz","value":[{"access_token":"t"}]}"#,
        );
        assert_eq!(e["url"], "https://h/subscriptions/s/x");
        assert_eq!(e["api_version"], "2023-08-01");
        assert_eq!(e["request"]["properties"]["administratorLoginPassword"], MASK);
        assert_eq!(e["request"]["properties"]["administratorLogin"], "admin");
        assert_eq!(e["request"]["properties"]["osProfile"]["adminPassword"], MASK);
        assert_eq!(e["request"]["properties"]["osProfile"]["secrets"], json!([]));
        assert_eq!(e["request"]["value"], MASK);
        assert_eq!(e["request"]["keys"][0], json!({ "keyName": "key1", "value": MASK }));
        assert_eq!(e["request"]["tags"]["idlab-plan"], "p");
        assert_eq!(e["request"]["keyCreationTime"]["key1"], "2026-01-01T00:00:00Z");
        assert_eq!(e["response"]["accountSasToken"], MASK);
        assert_eq!(e["response"]["value"][0]["access_token"], MASK);
        let s = e.to_string();
        for secret in ["p@ss", "s3cret", "sig=abc", "sig=zz", "\"t\""] {
            assert!(!s.contains(secret), "{secret} leaked: {s}");
        }
        let none = exchange(&reqwest::Method::GET, "https://h/a", None, 404, b"not json");
        assert_eq!(
            (none["request"].clone(), none["response"].clone(), none["api_version"].clone()),
            (Value::Null, Value::Null, Value::Null)
        );
    }
}
