//! Response helpers: ARM's error envelope and the headers every ARM response carries.
//! Store and RBAC errors are plain values; only this edge turns them into HTTP.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

/// An ARM error: status, code and message (arm-contract §10).
#[derive(Debug, Clone, PartialEq)]
pub struct ArmError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub headers: Vec<(&'static str, String)>,
}

impl ArmError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> ArmError {
        ArmError { status, code: code.into(), message: message.into(), headers: Vec::new() }
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> ArmError {
        self.headers.push((name, value.into()));
        self
    }
    pub fn body(&self) -> Value {
        json!({ "error": { "code": self.code, "message": self.message } })
    }
}

/// A write that could not be made durable: 500, and nothing changed.
impl From<super::store::StoreError> for ArmError {
    fn from(e: super::store::StoreError) -> ArmError {
        ArmError::new(500, "InternalServerError", format!("The local cloud could not persist the change: {e}"))
    }
}

/// A JSON response with extra headers.
pub fn json_response(status: u16, body: &Value, headers: &[(&str, String)]) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert("content-type", HeaderValue::from_static("application/json; charset=utf-8"));
    add_headers(r.headers_mut(), headers);
    r
}

/// An empty response with headers.
pub fn empty(status: u16, headers: &[(&str, String)]) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    add_headers(r.headers_mut(), headers);
    r
}

pub fn add_headers(map: &mut HeaderMap, headers: &[(&str, String)]) {
    for (k, v) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            map.insert(name, value);
        }
    }
}

pub fn error_response(e: &ArmError) -> Response {
    let headers: Vec<(&str, String)> = e.headers.iter().map(|(k, v)| (*k, v.clone())).collect();
    json_response(e.status, &e.body(), &headers)
}

/// A successful JSON answer with its body rewritten by `f` (each item of a `value` list, else
/// the body): how an answer takes the shape of an older api-version. Anything else is returned
/// as it is.
pub async fn reshape(resp: Response, f: impl Fn(&mut Value)) -> Response {
    let json = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"));
    if !json || !resp.status().is_success() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    match v.get_mut("value").and_then(Value::as_array_mut) {
        Some(items) => items.iter_mut().for_each(&f),
        None => f(&mut v),
    }
    parts.headers.remove("content-length");
    Response::from_parts(parts, Body::from(serde_json::to_vec(&v).unwrap_or_default()))
}

/// A header's value as text.
pub fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Decode `%XX` escapes (and `+` as space in queries).
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse a query string into decoded pairs (keys as given).
pub fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// A query parameter, key compared case-insensitively (ARM does).
pub fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%20b%2Fc", false), "a b/c");
        assert_eq!(percent_decode("a+b", true), "a b");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz", false), "%zz");
        let q = query_pairs(Some("api-version=2022-04-01&$filter=principalId%20eq%20'x'"));
        assert_eq!(query_get(&q, "$FILTER"), Some("principalId eq 'x'"));
    }
}
