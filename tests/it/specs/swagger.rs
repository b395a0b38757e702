//! Azure's Swagger 2.0 documents under `tests/fixtures/azure-specs/`: loaded once, `$ref`s
//! resolved across files (a path relative to the referring file, then a JSON pointer), and
//! operations found by method, path template and api-version.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

/// Where a schema lives: its document (repository-relative path) and the value.
#[derive(Clone, Copy)]
pub struct At<'a> {
    pub file: &'a str,
    pub value: &'a Value,
}

/// Every document, by its path under the fixture root (`specification/...`).
pub struct Specs {
    pub docs: BTreeMap<String, Value>,
}

/// One operation of a document.
pub struct Operation<'a> {
    pub file: &'a str,
    pub id: String,
    pub op: &'a Value,
    /// Path-level parameters.
    pub shared: Option<&'a Value>,
}

fn normalize(p: &Path) -> String {
    let mut out: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    out.join("/")
}

impl Specs {
    /// Load every `*.json` below `root`.
    pub fn load(root: &Path) -> Specs {
        let mut docs = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).expect("spec directory").filter_map(Result::ok) {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "json") {
                    let text = std::fs::read_to_string(&p).expect("spec file");
                    // Some upstream files start with a byte-order mark.
                    let v: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
                        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                    let rel = p.strip_prefix(root).expect("under root");
                    docs.insert(normalize(rel), v);
                }
            }
        }
        Specs { docs }
    }

    /// Resolve `reference` (as written in `file`): the target document and value.
    ///
    /// # Errors
    /// The file or the pointer does not exist.
    pub fn resolve<'a>(&'a self, file: &str, reference: &str) -> Result<At<'a>, String> {
        let (path, pointer) = reference.split_once('#').unwrap_or((reference, ""));
        let target = if path.is_empty() {
            file.to_string()
        } else {
            let dir = Path::new(file).parent().unwrap_or(Path::new(""));
            normalize(&dir.join(path))
        };
        let (key, doc) =
            self.docs.get_key_value(&target).ok_or_else(|| format!("$ref {reference} in {file}: no file {target}"))?;
        let value = if pointer.is_empty() { Some(doc) } else { doc.pointer(pointer) };
        value
            .map(|value| At { file: key.as_str(), value })
            .ok_or_else(|| format!("$ref {reference} in {file}: no {pointer} in {target}"))
    }

    /// Follow `$ref`s from `at` until a schema without one.
    pub fn deref<'a>(&'a self, at: At<'a>) -> Result<At<'a>, String> {
        let mut at = at;
        for _ in 0..64 {
            match at.value.get("$ref").and_then(Value::as_str) {
                Some(r) => at = self.resolve(at.file, r)?,
                None => return Ok(at),
            }
        }
        Err(format!("$ref loop in {}", at.file))
    }

    /// Every `$ref` in every document that does not resolve (example links excluded: the
    /// example payloads are not copied).
    pub fn dangling(&self) -> Vec<String> {
        fn walk(specs: &Specs, file: &str, v: &Value, under_examples: bool, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        if k == "$ref"
                            && !under_examples
                            && let Some(r) = x.as_str()
                            && let Err(e) = specs.resolve(file, r)
                        {
                            out.push(e);
                        }
                        walk(specs, file, x, under_examples || k == "x-ms-examples", out);
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(specs, file, x, under_examples, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        for (file, doc) in &self.docs {
            walk(self, file, doc, false, &mut out);
        }
        out
    }

    /// The number of `$ref`s checked by [`Specs::dangling`].
    pub fn ref_count(&self) -> usize {
        fn count(v: &Value, under_examples: bool) -> usize {
            match v {
                Value::Object(m) => m
                    .iter()
                    .map(|(k, x)| {
                        usize::from(k == "$ref" && !under_examples) + count(x, under_examples || k == "x-ms-examples")
                    })
                    .sum(),
                Value::Array(a) => a.iter().map(|x| count(x, under_examples)).sum(),
                _ => 0,
            }
        }
        self.docs.values().map(|d| count(d, false)).sum()
    }

    /// The operation that `method path` is at `api_version`: documents of that version whose
    /// path template matches (ARM paths from the start; data-plane documents, which have a
    /// parameterized host, against the end of the path). The template with the most literal
    /// segments wins.
    pub fn operation(&self, method: &str, path: &str, api_version: &str) -> Option<Operation<'_>> {
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let method = method.to_ascii_lowercase();
        let mut best: Option<(usize, Operation<'_>)> = None;
        for (file, doc) in &self.docs {
            if doc.pointer("/info/version").and_then(Value::as_str) != Some(api_version) {
                continue;
            }
            let data_plane = doc.get("x-ms-parameterized-host").is_some();
            for paths_key in ["paths", "x-ms-paths"] {
                let Some(paths) = doc.get(paths_key).and_then(Value::as_object) else { continue };
                for (template, item) in paths {
                    let Some(op) = item.get(&method) else { continue };
                    let tpath = template.split('?').next().unwrap_or(template);
                    let t: Vec<&str> = tpath.trim_matches('/').split('/').collect();
                    let multi = |name: &str| multi_segment(self, file, item, op, name);
                    let found = if data_plane {
                        // A data-plane path ends with the template; a trailing optional
                        // parameter (a secret's `{secret-version}`) may be left out.
                        let tail =
                            |t: &[&str]| segs.len() >= t.len() && matches(t, &segs[segs.len() - t.len()..], &multi);
                        tail(&t)
                            || (t.last().is_some_and(|l| optional(self, file, item, op, l)) && tail(&t[..t.len() - 1]))
                    } else {
                        matches(&t, &segs, &multi)
                    };
                    // An operation that pins its own api-version (Key Vault's `Vaults_List`, a
                    // `/resources` listing fixed at 2015-11-01) is not the one at this version.
                    if !found || pinned_elsewhere(self, file, item, op, api_version) {
                        continue;
                    }
                    // An x-ms-paths key's query part must be in the request too: not checked
                    // here (none of the operations idlab calls has one).
                    let literal = t.iter().filter(|s| !s.starts_with('{')).count();
                    if best.as_ref().is_none_or(|(n, _)| literal > *n) {
                        let id = op.get("operationId").and_then(Value::as_str).unwrap_or("?").to_string();
                        best = Some((literal, Operation { file, id, op, shared: item.get("parameters") }));
                    }
                }
            }
        }
        best.map(|(_, o)| o)
    }

    /// The operation's parameters (path-level ones included), resolved.
    pub fn parameters<'a>(&'a self, o: &Operation<'a>) -> Vec<Result<At<'a>, String>> {
        let mut out = Vec::new();
        for list in [o.shared, o.op.get("parameters")].into_iter().flatten() {
            for p in list.as_array().into_iter().flatten() {
                out.push(self.deref(At { file: o.file, value: p }));
            }
        }
        out
    }
}

/// Whether path parameter `name` may span several segments (`x-ms-skip-url-encoding`, such
/// as a role assignment's `{scope}`).
fn multi_segment(specs: &Specs, file: &str, item: &Value, op: &Value, name: &str) -> bool {
    [item.get("parameters"), op.get("parameters")].into_iter().flatten().flat_map(|l| l.as_array()).flatten().any(|p| {
        specs.deref(At { file, value: p }).is_ok_and(|p| {
            p.value.get("name").and_then(Value::as_str) == Some(name)
                && p.value.get("x-ms-skip-url-encoding").and_then(Value::as_bool) == Some(true)
        })
    })
}

/// Whether the operation's `api-version` parameter is an enum that leaves `api_version` out.
fn pinned_elsewhere(specs: &Specs, file: &str, item: &Value, op: &Value, api_version: &str) -> bool {
    [item.get("parameters"), op.get("parameters")].into_iter().flatten().flat_map(|l| l.as_array()).flatten().any(|p| {
        specs.deref(At { file, value: p }).is_ok_and(|p| {
            p.value.get("name").and_then(Value::as_str) == Some("api-version")
                && p.value.get("enum").and_then(Value::as_array).is_some_and(|e| !e.iter().any(|v| v == api_version))
        })
    })
}

/// Whether the template segment is a path parameter whose description calls it optional
/// (Key Vault's `{secret-version}`: "This URI fragment is optional").
fn optional(specs: &Specs, file: &str, item: &Value, op: &Value, segment: &str) -> bool {
    let Some(name) = segment.strip_prefix('{').and_then(|x| x.strip_suffix('}')) else { return false };
    [item.get("parameters"), op.get("parameters")].into_iter().flatten().flat_map(|l| l.as_array()).flatten().any(|p| {
        specs.deref(At { file, value: p }).is_ok_and(|p| {
            p.value.get("name").and_then(Value::as_str) == Some(name)
                && p.value.get("description").and_then(Value::as_str).is_some_and(|d| d.contains("optional"))
        })
    })
}

/// Whether template segments `t` match path segments `s`: literals case-insensitively, a
/// `{param}` one non-empty segment, or one or more when `multi(param)`.
fn matches(t: &[&str], s: &[&str], multi: &dyn Fn(&str) -> bool) -> bool {
    match (t.first(), s.first()) {
        (None, None) => true,
        (None, Some(_)) | (Some(_), None) => false,
        (Some(ts), Some(ss)) => {
            if let Some(name) = ts.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
                if ss.is_empty() {
                    return false;
                }
                if multi(name) {
                    return (1..=s.len()).any(|n| matches(&t[1..], &s[n..], multi));
                }
                matches(&t[1..], &s[1..], multi)
            } else {
                ts.eq_ignore_ascii_case(ss) && matches(&t[1..], &s[1..], multi)
            }
        }
    }
}

/// The fixture root.
pub fn root() -> PathBuf {
    crate::common::root().join("tests/fixtures/azure-specs")
}
