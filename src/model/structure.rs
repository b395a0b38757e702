//! The structural pass: checks a [`Node`] tree against the plan's JSON Schema (generated from
//! the Rust types by schemars), reporting *every* unknown field, missing field, wrong type and
//! value outside an enum — not only the first one serde would stop at.
//!
//! Driving the check from the generated schema keeps one source of truth: the Rust types
//! define the schema file editors use, the shape accepted here, and what serde reads next.
//! Discriminated unions (resources by `type`) are resolved by their `const` tag first, so an
//! error inside a resource is reported against that resource's kind only.
//!
//! Imports: model::{yaml, diag, span}, serde_json. No I/O. Deterministic.

use serde_json::{Map as JMap, Value as J};

use super::diag::{Code, Diag, suggest};
use super::span::Span;
use super::yaml::{Node, Value};

/// A schema that is, or may be, a `Secret` (`{ env }`, `{ file }`, `{ generate }`).
fn is_secret(schema: &J) -> bool {
    let is_ref = |s: &J| s.get("$ref").and_then(J::as_str) == Some("#/$defs/Secret");
    is_ref(schema)
        || ["anyOf", "oneOf"]
            .iter()
            .any(|k| schema.get(*k).and_then(J::as_array).is_some_and(|alts| alts.iter().any(is_ref)))
}

/// Remove repeated keys from every mapping (keeping the first), reporting each repeat.
pub fn strip_duplicates(node: &mut Node, diags: &mut Vec<Diag>) {
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| strip_duplicates(n, diags)),
        Value::Map(entries) => {
            let mut seen: std::collections::HashMap<String, Span> =
                std::collections::HashMap::with_capacity(entries.len());
            entries.retain(|(k, _)| {
                let text = k.key_text();
                if let Some(first) = seen.get(&text) {
                    diags.push(
                        Diag::error(Code::DuplicateKey, k.span, format!("duplicate key `{text}`"))
                            .label("repeated here")
                            .related(*first, "first defined here")
                            .help("YAML keys must be unique in a mapping; remove or rename one"),
                    );
                    false
                } else {
                    seen.insert(text, k.span);
                    true
                }
            });
            for (_, v) in entries.iter_mut() {
                strip_duplicates(v, diags);
            }
        }
        _ => {}
    }
}

/// Checks nodes against a schema document (with `$defs`).
pub struct Checker<'s> {
    defs: Option<&'s JMap<String, J>>,
    pub diags: Vec<Diag>,
    /// Spans of values written where a secret belongs (masked when shown).
    pub secrets: Vec<Span>,
}

/// Where a node sits, for messages (`resources.vm.identity`) and for missing-field spans.
#[derive(Clone, Copy)]
pub struct Place<'a> {
    pub path: &'a str,
    /// The span to blame for a missing field: the key that owns the mapping, when known.
    pub owner: Option<Span>,
}

impl<'s> Checker<'s> {
    pub fn new(schema: &'s J) -> Checker<'s> {
        Checker { defs: schema.get("$defs").and_then(J::as_object), diags: Vec::new(), secrets: Vec::new() }
    }

    fn resolve(&self, mut s: &'s J) -> &'s J {
        for _ in 0..32 {
            let Some(r) = s.get("$ref").and_then(J::as_str) else {
                return s;
            };
            let name = r.trim_start_matches("#/$defs/");
            match self.defs.and_then(|d| d.get(name)) {
                Some(next) => s = next,
                None => return s,
            }
        }
        s
    }

    /// Check `node` against `schema` at `place`, appending diagnostics.
    pub fn check(&mut self, node: &Node, schema: &'s J, place: Place<'_>) {
        if is_secret(schema) {
            super::sensitive::secret_place(node, &mut self.secrets);
        }
        let schema = self.resolve(schema);
        if let Some(alts) = schema.get("oneOf").or_else(|| schema.get("anyOf")).and_then(J::as_array) {
            self.check_union(node, schema, alts, place);
            return;
        }
        if let Some(c) = schema.get("const") {
            if &node.to_json() != c {
                self.diags.push(
                    Diag::error(Code::InvalidValue, node.span, format!("`{}` must be {}", place.path, c))
                        .label(format!("expected {c}")),
                );
            }
            return;
        }
        if !self.type_ok(node, schema, place) {
            return;
        }
        if let Some(values) = schema.get("enum").and_then(J::as_array) {
            self.check_enum(node, values, place);
        }
        match &node.value {
            Value::Map(entries) => self.check_object(node, entries, schema, place),
            Value::Seq(items) => {
                if let Some(min) = schema.get("minItems").and_then(J::as_u64)
                    && (items.len() as u64) < min
                {
                    self.diags.push(
                        Diag::error(
                            Code::InvalidValue,
                            node.span,
                            format!("`{}` needs at least {min} item(s)", place.path),
                        )
                        .label("too few items"),
                    );
                }
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        let path = format!("{}[{i}]", place.path);
                        self.check(item, item_schema, Place { path: &path, owner: Some(item.span) });
                    }
                }
            }
            Value::Int(i) => self.check_range(node, *i as f64, schema, place),
            Value::Float(f) => self.check_range(node, *f, schema, place),
            _ => {}
        }
    }

    fn check_range(&mut self, node: &Node, v: f64, schema: &J, place: Place<'_>) {
        let min = schema.get("minimum").and_then(J::as_f64);
        let max = schema.get("maximum").and_then(J::as_f64);
        let below = min.is_some_and(|m| v < m);
        let above = max.is_some_and(|m| v > m);
        if below || above {
            let range = match (min, max) {
                (Some(a), Some(b)) => format!("between {a} and {b}"),
                (Some(a), None) => format!("at least {a}"),
                (None, Some(b)) => format!("at most {b}"),
                (None, None) => String::new(),
            };
            self.diags.push(
                Diag::error(Code::InvalidValue, node.span, format!("`{}` must be {range}", place.path))
                    .label(format!("{v} is out of range")),
            );
        }
    }

    fn check_enum(&mut self, node: &Node, values: &[J], place: Place<'_>) {
        let j = node.to_json();
        if values.contains(&j) {
            return;
        }
        let names: Vec<&str> = values.iter().filter_map(J::as_str).collect();
        let shown = node.as_str().map_or_else(|| j.to_string(), str::to_string);
        let mut d =
            Diag::error(Code::InvalidValue, node.span, format!("`{shown}` is not a valid value for `{}`", place.path))
                .label(format!("expected one of: {}", names.join(", ")));
        if let Some(s) = node.as_str().and_then(|s| suggest(s, names.iter().copied())) {
            d = d.help(format!("did you mean `{s}`?"));
        }
        self.diags.push(d);
    }

    fn check_object(&mut self, node: &Node, entries: &[(Node, Node)], schema: &'s J, place: Place<'_>) {
        let props = schema.get("properties").and_then(J::as_object);
        let additional = schema.get("additionalProperties");
        for (k, v) in entries {
            let key = k.key_text();
            let child_path = if place.path.is_empty() { key.clone() } else { format!("{}.{key}", place.path) };
            let child = Place { path: &child_path, owner: Some(k.span) };
            if !matches!(k.value, Value::Str(_)) {
                self.diags.push(
                    Diag::error(
                        Code::WrongType,
                        k.span,
                        format!("keys must be strings, found {}", k.value.type_name()),
                    )
                    .label("not a string key"),
                );
                continue;
            }
            if let Some(p) = props.and_then(|p| p.get(&key)) {
                self.check(v, p, child);
            } else {
                match additional {
                    Some(J::Bool(false)) => {
                        let known: Vec<&str> =
                            props.map(|p| p.keys().map(String::as_str).collect()).unwrap_or_default();
                        self.unknown_field(k, &key, &known, place);
                    }
                    Some(extra @ J::Object(_)) => self.check(v, extra, child),
                    _ => {}
                }
            }
        }
        if let Some(required) = schema.get("required").and_then(J::as_array) {
            for r in required.iter().filter_map(J::as_str) {
                if !entries.iter().any(|(k, _)| k.as_str() == Some(r)) {
                    let span = place.owner.unwrap_or(node.span);
                    let where_ =
                        if place.path.is_empty() { "the plan".to_string() } else { format!("`{}`", place.path) };
                    self.diags.push(
                        Diag::error(Code::MissingField, span, format!("missing field `{r}` in {where_}"))
                            .label(format!("`{r}` is required here")),
                    );
                }
            }
        }
    }

    fn unknown_field(&mut self, k: &Node, key: &str, known: &[&str], place: Place<'_>) {
        let where_ = if place.path.is_empty() { "the plan".to_string() } else { format!("`{}`", place.path) };
        let mut d = Diag::error(Code::UnknownField, k.span, format!("unknown field `{key}` in {where_}"))
            .label("unknown field");
        d = match suggest(key, known.iter().copied()) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None if known.is_empty() => d.help("this mapping takes no fields"),
            None => d.help(format!("expected one of: {}", known.join(", "))),
        };
        self.diags.push(d);
    }

    fn check_union(&mut self, node: &Node, schema: &'s J, alts: &'s [J], place: Place<'_>) {
        let alts: Vec<&'s J> = alts.iter().map(|a| self.resolve(a)).collect();
        let non_null: Vec<&'s J> =
            alts.iter().copied().filter(|a| a.get("type").and_then(J::as_str) != Some("null")).collect();
        if node.value == Value::Null && non_null.len() < alts.len() {
            return;
        }
        if let Some(tag) = discriminator(&non_null) {
            self.check_tagged(node, &non_null, tag, place);
            return;
        }
        let fitting: Vec<&'s J> = non_null.iter().copied().filter(|a| accepts_type(a, &node.value)).collect();
        match fitting.as_slice() {
            [] => {
                let expected: Vec<String> = non_null.iter().map(|a| describe(a)).collect();
                let mut d = Diag::error(
                    Code::WrongType,
                    node.span,
                    format!("`{}` must be {}, found {}", place.path, join_or(&expected), node.value.type_name()),
                )
                .label(format!("expected {}", join_or(&expected)));
                if let Some(h) = schema.get("x-idlab-help").and_then(J::as_str) {
                    d = d.help(h);
                }
                self.diags.push(d);
            }
            [one] => self.check(node, one, place),
            many => {
                // Several object shapes: pick the one whose fields the mapping uses.
                let keys: Vec<&str> =
                    node.as_map().map(|m| m.iter().filter_map(|(k, _)| k.as_str()).collect()).unwrap_or_default();
                let score = |a: &J| {
                    let props = a.get("properties").and_then(J::as_object);
                    keys.iter().filter(|k| props.is_some_and(|p| p.contains_key(**k))).count()
                };
                let best = many.iter().copied().max_by_key(|a| score(a)).unwrap_or(many[0]);
                if node.as_map().is_some() && score(best) == 0 {
                    let all: Vec<&str> = many
                        .iter()
                        .filter_map(|a| a.get("properties").and_then(J::as_object))
                        .flat_map(|p| p.keys().map(String::as_str))
                        .collect();
                    let mut d = if let Some((k, _)) = node.as_map().and_then(|m| m.first()) {
                        let key = k.key_text();
                        let mut d = Diag::error(
                            Code::UnknownField,
                            k.span,
                            format!("unknown field `{key}` in `{}`", place.path),
                        )
                        .label("unknown field");
                        if let Some(s) = suggest(&key, all.iter().copied()) {
                            d = d.help(format!("did you mean `{s}`?"));
                        }
                        d
                    } else {
                        Diag::error(
                            Code::MissingField,
                            place.owner.unwrap_or(node.span),
                            format!("`{}` needs one of: {}", place.path, all.join(", ")),
                        )
                        .label("empty mapping")
                    };
                    if d.help.is_none()
                        && let Some(h) = schema.get("x-idlab-help").and_then(J::as_str)
                    {
                        d = d.help(h);
                    }
                    self.diags.push(d);
                    return;
                }
                self.check(node, best, place);
            }
        }
    }

    fn check_tagged(&mut self, node: &Node, alts: &[&'s J], tag: &str, place: Place<'_>) {
        let Some(entries) = node.as_map() else {
            self.diags.push(
                Diag::error(
                    Code::WrongType,
                    node.span,
                    format!("`{}` must be a mapping, found {}", place.path, node.value.type_name()),
                )
                .label("expected a mapping"),
            );
            return;
        };
        let tags: Vec<&str> = alts.iter().filter_map(|a| tag_value(a, tag)).collect();
        let Some((_, tag_node)) = entries.iter().find(|(k, _)| k.as_str() == Some(tag)) else {
            self.diags.push(
                Diag::error(
                    Code::MissingField,
                    place.owner.unwrap_or(node.span),
                    format!("missing field `{tag}` in `{}`", place.path),
                )
                .label(format!("`{tag}` is required here"))
                .help(format!("`{tag}` is one of: {}", tags.join(", "))),
            );
            return;
        };
        let Some(value) = tag_node.as_str() else {
            self.diags.push(
                Diag::error(
                    Code::WrongType,
                    tag_node.span,
                    format!("`{}.{tag}` must be a string, found {}", place.path, tag_node.value.type_name()),
                )
                .label("expected a string"),
            );
            return;
        };
        match alts.iter().find(|a| tag_value(a, tag) == Some(value)) {
            Some(alt) => self.check(node, alt, place),
            None => {
                let mut d = Diag::error(Code::UnknownKind, tag_node.span, format!("unknown resource type `{value}`"))
                    .label("not a resource type idlab knows");
                d = match suggest(value, tags.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("known types: {}", tags.join(", "))),
                };
                self.diags.push(d);
            }
        }
    }

    fn type_ok(&mut self, node: &Node, schema: &J, place: Place<'_>) -> bool {
        if schema.get("type").is_none() || accepts_type(schema, &node.value) {
            return true;
        }
        let expected = describe(schema);
        let mut d = Diag::error(
            Code::WrongType,
            node.span,
            format!("`{}` must be {expected}, found {}", place.path, node.value.type_name()),
        )
        .label(format!("expected {expected}"));
        if let Some(h) = schema.get("x-idlab-help").and_then(J::as_str) {
            d = d.help(h);
        } else if expected == "a string" && matches!(node.value, Value::Int(_) | Value::Float(_) | Value::Bool(_)) {
            d = d.help("quote the value to make it a string");
        } else if expected == "true or false"
            && let Some(s) = node.as_str()
            && matches!(s.to_ascii_lowercase().as_str(), "yes" | "no" | "on" | "off" | "y" | "n")
        {
            d = d.help("YAML 1.2 reads this as a string: write true or false");
        }
        self.diags.push(d);
        false
    }
}

/// The property name that discriminates every alternative by a `const`, if any.
fn discriminator<'a>(alts: &[&'a J]) -> Option<&'a str> {
    let first = alts.first()?;
    let props = first.get("properties")?.as_object()?;
    let (name, _) = props.iter().find(|(_, p)| p.get("const").is_some())?;
    alts.iter().all(|a| tag_value(a, name).is_some()).then_some(name.as_str()).filter(|_| alts.len() > 1)
}

fn tag_value<'a>(alt: &'a J, tag: &str) -> Option<&'a str> {
    alt.get("properties")?.get(tag)?.get("const")?.as_str()
}

fn type_names(schema: &J) -> Vec<&str> {
    match schema.get("type") {
        Some(J::String(s)) => vec![s.as_str()],
        Some(J::Array(a)) => a.iter().filter_map(J::as_str).collect(),
        _ => {
            if schema.get("properties").is_some() {
                vec!["object"]
            } else if schema.get("const").is_some_and(J::is_string) || schema.get("enum").is_some() {
                vec!["string"]
            } else {
                Vec::new()
            }
        }
    }
}

fn accepts_type(schema: &J, v: &Value) -> bool {
    let names = type_names(schema);
    if names.is_empty() {
        return true;
    }
    names.iter().any(|t| match (*t, v) {
        ("null", Value::Null)
        | ("boolean", Value::Bool(_))
        | ("integer", Value::Int(_))
        | ("number", Value::Int(_) | Value::Float(_))
        | ("string", Value::Str(_))
        | ("array", Value::Seq(_))
        | ("object", Value::Map(_)) => true,
        ("integer", Value::Float(f)) => f.fract() == 0.0,
        _ => false,
    })
}

/// "a string", "a list", "a mapping", … for a schema's accepted types.
fn describe(schema: &J) -> String {
    if let Some(c) = schema.get("const") {
        return c.to_string();
    }
    let names: Vec<&str> = type_names(schema).into_iter().filter(|t| *t != "null").collect();
    if names.is_empty() {
        return "a value".into();
    }
    let words: Vec<String> = names
        .iter()
        .map(|t| {
            match *t {
                "string" => "a string",
                "integer" => "an integer",
                "number" => "a number",
                "boolean" => "true or false",
                "array" => "a list",
                "object" => {
                    if let Some(p) = schema.get("properties").and_then(J::as_object)
                        && p.len() == 1
                        && let Some(k) = p.keys().next()
                    {
                        return format!("{{ {k}: … }}");
                    }
                    "a mapping"
                }
                _ => "a value",
            }
            .to_string()
        })
        .collect();
    join_or(&words)
}

fn join_or(items: &[String]) -> String {
    let mut items: Vec<String> = items.to_vec();
    items.dedup();
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n => format!("{} or {}", items[..n - 1].join(", "), items[n - 1]),
    }
}
