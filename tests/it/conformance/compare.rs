//! Comparing one local answer with Azure's: status, long-running-operation headers, error
//! code and body structure (every key path of Azure's answer present locally with the same
//! JSON type and key casing; array elements matched by `name` or `id`, else by index).

use serde_json::Value;

/// One disagreement: `field` is what known differences name (`status`, `header:location`,
/// `code`, `body:properties.tenantId`, `poll:status`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    pub field: String,
    pub detail: String,
}

/// What the comparison found.
#[derive(Debug, Default)]
pub struct Found {
    pub diffs: Vec<Diff>,
    /// Keys the local cloud adds (listed, not failed).
    pub extra: Vec<String>,
    /// Azure list items with no local counterpart (made outside the recording).
    pub unmatched: usize,
}

/// Rewrites local values back to the recorded ones (subscription, tenant, principals) so ids
/// can be matched.
pub struct Norm {
    /// (local, recorded), lower case.
    pub back: Vec<(String, String)>,
}

impl Norm {
    fn key(&self, s: &str) -> String {
        let mut s = s.to_ascii_lowercase();
        for (l, r) in &self.back {
            s = s.replace(l.as_str(), r.as_str());
        }
        s.trim_end_matches('/').to_string()
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The error code of an answer: ARM's `error.code`, a bare `code`, OData's, WebHDFS's
/// exception name.
pub fn error_code(v: &Value) -> Option<String> {
    v.pointer("/error/code")
        .or_else(|| v.get("code"))
        .or_else(|| v.get("Code"))
        .or_else(|| v.pointer("/odata.error/code"))
        .or_else(|| v.pointer("/RemoteException/exception"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// Compare the structure of `local` against `azure` under `prefix` (`body`, `poll:body`).
pub fn structure(azure: &Value, local: &Value, prefix: &str, norm: &Norm, found: &mut Found) {
    walk(azure, local, "", prefix, norm, found);
}

fn walk(azure: &Value, local: &Value, path: &str, prefix: &str, norm: &Norm, found: &mut Found) {
    let field = |p: &str| if p.is_empty() { prefix.to_string() } else { format!("{prefix}:{p}") };
    match (azure, local) {
        // Azure's null says "no value": any local value (or null) is fine.
        (Value::Null, _) => {}
        (Value::Object(a), Value::Object(l)) => {
            for (k, av) in a {
                let p = join(path, k);
                match l.get(k) {
                    Some(lv) => walk(av, lv, &p, prefix, norm, found),
                    // A null and an absent key read the same in every SDK.
                    None if av.is_null() => {}
                    None => {
                        let other = l.keys().find(|lk| lk.eq_ignore_ascii_case(k));
                        let detail = match other {
                            Some(o) => format!("key casing: Azure `{k}`, local `{o}`"),
                            None => format!("missing (Azure: {})", kind(av)),
                        };
                        found.diffs.push(Diff { field: field(&p), detail });
                    }
                }
            }
            for k in l.keys() {
                if !a.contains_key(k) && !a.keys().any(|ak| ak.eq_ignore_ascii_case(k)) {
                    found.extra.push(join(path, k));
                }
            }
        }
        (Value::Array(a), Value::Array(l)) => array(a, l, path, prefix, norm, found),
        (a, l) if kind(a) == kind(l) => {}
        (a, l) => {
            found.diffs.push(Diff { field: field(path), detail: format!("type: Azure {}, local {}", kind(a), kind(l)) })
        }
    }
}

/// An element's identity: its `name`, else its `id`.
fn ident(v: &Value, norm: &Norm) -> Option<String> {
    v.get("name").and_then(Value::as_str).or_else(|| v.get("id").and_then(Value::as_str)).map(|s| norm.key(s))
}

fn array(a: &[Value], l: &[Value], path: &str, prefix: &str, norm: &Norm, found: &mut Found) {
    let listing = path == "value";
    let mut matched = 0;
    let mut missing = Vec::new();
    for (i, av) in a.iter().enumerate() {
        let counterpart = match ident(av, norm) {
            Some(key) => l.iter().find(|lv| ident(lv, norm).as_deref() == Some(key.as_str())),
            None if av.is_object() || av.is_array() => l.get(i),
            // Scalars: the type of the first local element, when there is one.
            None => l.first(),
        };
        let label = match ident(av, norm) {
            Some(k) if av.get("name").is_some() => format!("{path}[{k}]"),
            _ => format!("{path}[{i}]"),
        };
        match counterpart {
            Some(lv) => {
                matched += 1;
                walk(av, lv, &label, prefix, norm, found);
            }
            None if av.is_object() || av.is_array() => missing.push(label),
            None => {}
        }
    }
    if listing {
        // A listing holds what the recorded subscription held before the test: items not
        // made in the recording are noted, and when none matches the first items' shapes
        // are compared.
        found.unmatched += missing.len();
        if matched == 0
            && let (Some(av), Some(lv)) = (a.first(), l.first())
        {
            walk(av, lv, &format!("{path}[0]"), prefix, norm, found);
        }
    } else {
        for label in missing {
            let field = if prefix.is_empty() { label } else { format!("{prefix}:{label}") };
            found.diffs.push(Diff { field, detail: "element missing".into() });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn structure_rules() {
        let norm = Norm { back: vec![("local-sub".into(), "rec-sub".into())] };
        let azure = json!({"id": "/subscriptions/rec-sub/x", "Tags": {}, "p": {"n": 1, "s": null},
            "arr": [{"name": "a", "v": true}], "value": [{"id": "/subscriptions/rec-sub/gone"}]});
        let local = json!({"id": "/subscriptions/local-sub/x", "tags": {}, "p": {"n": "1", "s": "x"},
            "arr": [{"name": "b"}, {"name": "A", "v": false}], "value": [], "more": 1});
        let mut f = Found::default();
        structure(&azure, &local, "body", &norm, &mut f);
        let fields: Vec<&str> = f.diffs.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, vec!["body:Tags", "body:p.n"]);
        assert!(f.diffs[0].detail.contains("casing"));
        assert_eq!(f.extra, vec!["more"]);
        assert_eq!(f.unmatched, 1);
        let mut g = Found::default();
        structure(&json!({"arr": [{"name": "z"}]}), &json!({"arr": []}), "body", &norm, &mut g);
        assert_eq!(g.diffs[0].field, "body:arr[z]");
    }
}
