//! The spanned YAML tree every later pass works on.
//!
//! Place in the flow: plan text → [`parse`] → [`Node`] tree → structural checks
//! (`model::structure`) → typed model (`model::de`). Parsing is done by serde-saphyr into
//! our own tree so that *every* value and *every* key keeps its byte span: serde alone stops
//! at the first error and loses spans inside tagged enums. Duplicate keys are forwarded to
//! us (policy `PassThrough`) and reported with both locations instead of aborting.
//!
//! Imports: serde, serde-saphyr. No I/O. Deterministic.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{Location, Spanned};

use super::diag::Code;
use super::span::Span;

/// One YAML value with the byte span of its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: Span,
    pub value: Value,
}

/// The YAML data model after scalar resolution (YAML 1.2 core schema).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in document order; duplicates are kept (they are diagnosed, not dropped).
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// The JSON-Schema type name of this value, as used in diagnostics.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::Seq(_) => "array",
            Value::Map(_) => "object",
        }
    }
}

impl Node {
    pub fn new(span: Span, value: Value) -> Node {
        Node { span, value }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value of the first entry whose key is the string `key`.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v)
    }

    /// The key node of the first entry named `key`.
    pub fn key(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(k, _)| k)
    }

    /// Convert to JSON (used by the schema conformance test and `--format json`).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(entries.iter().map(|(k, v)| (k.key_text(), v.to_json())).collect()),
        }
    }

    /// A key rendered as text (YAML allows non-string keys; JSON does not).
    pub fn key_text(&self) -> String {
        match &self.value {
            Value::Str(s) => s.clone(),
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Seq(_) | Value::Map(_) => "<complex key>".into(),
        }
    }
}

/// A YAML syntax error, with its position when the parser gave one, and its diagnostic code:
/// [`Code::YamlSyntax`], [`Code::MultipleDocuments`] or [`Code::YamlLimit`].
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub code: Code,
    pub message: String,
    pub span: Span,
}

/// Parse YAML text into a [`Node`] tree. Never panics; a syntax error is returned with the
/// position the parser reported (or the end of the text when it reported none).
///
/// # Errors
/// Returns a [`SyntaxError`] for malformed YAML, alias bombs over the budget, or
/// multi-document input.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::PassThrough;
    // YAML 1.2 core schema: `yes`/`no`/`n` are strings, `0755` keeps its zero.
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    options.underscored_numbers_as_strings = true;
    if text.trim().is_empty() {
        return Ok(Node::new(Span::new(0, 0), Value::Null));
    }
    match serde_saphyr::from_str_with_options::<RawNode>(text, options) {
        Ok(raw) => Ok(raw.0),
        Err(err) => {
            let known = err.location().filter(|l| l.line() > 0).map(|l| location_span(text, &l));
            let span = known.unwrap_or_else(|| Span::new(text.len(), 0));
            let mut inner = &err;
            while let serde_saphyr::Error::AliasError { error, .. } | serde_saphyr::Error::WithSnippet { error, .. } =
                inner
            {
                inner = error;
            }
            Err(match inner {
                serde_saphyr::Error::MultipleDocuments { .. } => SyntaxError {
                    code: Code::MultipleDocuments,
                    message: "this file holds more than one YAML document; a plan is one document".into(),
                    span: second_document(text).unwrap_or(span),
                },
                serde_saphyr::Error::Budget { breach, .. } => SyntaxError {
                    code: Code::YamlLimit,
                    message: budget_words(breach),
                    span: known.unwrap_or_default(),
                },
                other => {
                    let full = other.to_string();
                    let limit = full.contains("alias") && full.contains("limit");
                    let message = if limit {
                        "the YAML expands aliases too many times (an alias bomb?)".to_string()
                    } else {
                        strip_position(&full)
                    };
                    SyntaxError { code: if limit { Code::YamlLimit } else { Code::YamlSyntax }, message, span }
                }
            })
        }
    }
}

/// A reader budget breach in plain words. The limits are serde-saphyr's defaults.
fn budget_words(breach: &BudgetBreach) -> String {
    let what = match breach {
        BudgetBreach::Depth { .. } => "the YAML is nested more than 64 levels deep".to_string(),
        BudgetBreach::Nodes { .. } => "the YAML has more than 250,000 values, counting each alias expansion".into(),
        BudgetBreach::Events { .. } => "the YAML has more than 1,000,000 parser events (values, keys, ends)".into(),
        BudgetBreach::Aliases { .. } => "the YAML uses more than 50,000 aliases (`*name`)".into(),
        BudgetBreach::Anchors { .. } => "the YAML defines more than 50,000 anchors (`&name`)".into(),
        BudgetBreach::AliasAnchorRatio { aliases, anchors } => {
            format!("the YAML uses {aliases} aliases for {anchors} anchors, an alias bomb")
        }
        BudgetBreach::Documents { .. } => "the file holds too many YAML documents".into(),
        BudgetBreach::ScalarBytes { .. } => "the YAML's strings total more than 64 MiB".into(),
        BudgetBreach::MergeKeys { .. } => "the YAML uses more than 10,000 merge keys (`<<`)".into(),
        BudgetBreach::RecordedAnchorEvents { .. } | BudgetBreach::RecordedAnchorBytes { .. } => {
            "the YAML's anchors hold too much to copy (an alias bomb?)".into()
        }
        other => format!("the YAML is too large or too complex ({other:?})"),
    };
    format!("{what}: over the YAML reader's limit")
}

/// Where the second document of a multi-document stream starts: the `---` (or the content
/// after a `...`) at the start of a line that begins a document after the first one.
fn second_document(text: &str) -> Option<Span> {
    let mut offset = 0usize;
    let mut content_seen = false;
    let mut ended = false;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        let marker = |m: &str| bare == m || bare.starts_with(&format!("{m} ")) || bare.starts_with(&format!("{m}\t"));
        let blank = bare.trim().is_empty() || bare.trim_start().starts_with('#') || bare.starts_with('%');
        if marker("---") {
            if content_seen {
                return Some(Span::new(offset, 3));
            }
            content_seen = true;
        } else if marker("...") {
            ended = true;
        } else if !blank {
            if ended {
                return Some(Span::new(offset, bare.len()));
            }
            content_seen = true;
        }
        offset += line.len();
    }
    None
}

/// serde-saphyr ends messages with " at line L, column C"; we render positions ourselves.
fn strip_position(message: &str) -> String {
    let msg = message.lines().next().unwrap_or(message).trim();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Turn a parser location into a byte span inside `text`, clamped to the text.
fn location_span(text: &str, loc: &Location) -> Span {
    let span = loc.span();
    if let (Some(off), Some(len)) = (span.byte_offset(), span.byte_len()) {
        let off = usize::try_from(off).unwrap_or(usize::MAX).min(text.len());
        let len = usize::try_from(len).unwrap_or(0).min(text.len() - off);
        return Span::new(off, len);
    }
    Span::new(line_col_offset(text, loc.line(), loc.column()), 0)
}

/// Byte offset of a 1-based line and (character) column, clamped to the text.
pub fn line_col_offset(text: &str, line: u64, column: u64) -> usize {
    let mut offset = 0usize;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if (i as u64) + 1 == line {
            let col = usize::try_from(column.saturating_sub(1)).unwrap_or(0);
            let within = l.char_indices().nth(col).map_or(l.len(), |(b, _)| b);
            return offset + within;
        }
        offset += l.len();
    }
    text.len()
}

/// Deserialization target: a [`Node`] built from serde-saphyr's spanned values.
struct RawNode(Node);

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<RawValue>::deserialize(d)?;
        let loc = &spanned.referenced;
        let span = loc_to_span(loc);
        Ok(RawNode(Node::new(span, spanned.value.0)))
    }
}

fn loc_to_span(loc: &Location) -> Span {
    let s = loc.span();
    match (s.byte_offset(), s.byte_len()) {
        (Some(off), Some(len)) => Span::new(usize::try_from(off).unwrap_or(0), usize::try_from(len).unwrap_or(0)),
        _ => Span::new(0, 0),
    }
}

struct RawValue(Value);

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor).map(RawValue)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(RawNode(n)) = seq.next_element()? {
            items.push(n);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(RawNode(k)) = map.next_key()? {
            let RawNode(v) = map.next_value()?;
            entries.push((k, v));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'a>(text: &'a str, n: &Node) -> &'a str {
        &text[n.span.offset..n.span.offset + n.span.len]
    }

    #[test]
    fn keys_and_values_keep_spans() {
        let text = "name: demo\nresources:\n  rg:\n    type: resource_group\n    n: 12\n";
        let root = parse(text).expect("valid yaml");
        let res = root.get("resources").expect("resources");
        let rg = res.get("rg").expect("rg");
        assert_eq!(at(text, rg.key("type").expect("key")), "type");
        assert_eq!(at(text, rg.get("type").expect("v")), "resource_group");
        assert_eq!(rg.get("n").map(|n| &n.value), Some(&Value::Int(12)));
        assert_eq!(at(text, root.key("resources").expect("k")), "resources");
    }

    #[test]
    fn duplicate_keys_are_kept() {
        let text = "a: 1\nb: 2\na: 3\n";
        let root = parse(text).expect("valid yaml");
        let m = root.as_map().expect("map");
        assert_eq!(m.len(), 3);
        assert_eq!(at(text, &m[2].0), "a");
        assert_eq!(m[2].0.span.offset, 10);
    }

    #[test]
    fn syntax_error_has_position() {
        let text = "a: [1, 2\nb: 3\n";
        let err = parse(text).expect_err("unclosed");
        assert!(err.span.offset <= text.len());
        assert!(!err.message.contains("at line"), "{}", err.message);
    }
}
