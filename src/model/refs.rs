//! `${...}` expressions inside plan strings: parsing, and the map from string offsets back
//! to file spans.
//!
//! Grammar: `${root(.segment)*}` where each part is `[A-Za-z_][A-Za-z0-9_:-]*` (`:` names
//! nodes a VM's `network: auto` expands into, such as `${vm:nic}`); `$${` is a
//! literal `${`. Roots: `var` (a plan variable), `env` (an environment variable; only in
//! `subscription`), `caller` (the deploying principal) or a logical resource name. `${rg}`
//! is short for `${rg.id}`.
//!
//! Imports: model::span. No I/O. Deterministic.

use super::span::Span;

/// One `${...}` occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    /// `["vm", "identity", "principal_id"]` for `${vm.identity.principal_id}`.
    pub path: Vec<String>,
    /// Span of the whole `${...}` text in the file.
    pub span: Span,
}

impl Expr {
    pub fn root(&self) -> &str {
        self.path.first().map_or("", String::as_str)
    }

    /// The attribute part after the root, joined with `.` (empty for `${rg}`).
    pub fn attr(&self) -> String {
        self.path.get(1..).map(|p| p.join(".")).unwrap_or_default()
    }

    pub fn text(&self) -> String {
        format!("${{{}}}", self.path.join("."))
    }
}

/// A piece of a template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    Expr(Expr),
}

/// A template parse failure: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefError {
    pub message: String,
    pub span: Span,
}

/// Maps byte offsets inside a scalar's value to spans in the file.
///
/// A plain scalar's text is its value; a quoted one is shifted by the quote. When escapes
/// make the two differ in length we fall back to the whole scalar's span.
#[derive(Debug, Clone, Copy)]
pub struct OffsetMap {
    node: Span,
    shift: Option<usize>,
}

impl OffsetMap {
    pub fn new(node: Span, value_len: usize) -> OffsetMap {
        let shift = if node.len == value_len {
            Some(0)
        } else if node.len == value_len + 2 {
            Some(1)
        } else {
            None
        };
        OffsetMap { node, shift }
    }

    pub fn span(&self, start: usize, len: usize) -> Span {
        match self.shift {
            Some(s) => Span::new(self.node.offset + s + start, len),
            None => self.node,
        }
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':'))
}

/// Split a string into literal text and `${...}` expressions.
///
/// ```
/// use idlab::model::refs::{parse_template, OffsetMap, Piece};
/// use idlab::model::span::Span;
/// let s = "${var.prefix}-vm";
/// let pieces = parse_template(s, OffsetMap::new(Span::new(10, s.len()), s.len())).unwrap();
/// assert_eq!(pieces.len(), 2);
/// assert!(matches!(&pieces[1], Piece::Lit(l) if l == "-vm"));
/// ```
///
/// # Errors
/// An unclosed `${`, an empty expression or a part that is not an identifier.
pub fn parse_template(s: &str, map: OffsetMap) -> Result<Vec<Piece>, RefError> {
    let mut pieces = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    let bytes = s.as_bytes();
    while i < s.len() {
        if s[i..].starts_with("$${") {
            lit.push_str("${");
            i += 3;
            continue;
        }
        if s[i..].starts_with("${") {
            let Some(close) = s[i + 2..].find('}') else {
                return Err(RefError {
                    message: "unclosed `${`: a reference ends with `}`".into(),
                    span: map.span(i, s.len() - i),
                });
            };
            let inner = &s[i + 2..i + 2 + close];
            let span = map.span(i, close + 3);
            let path: Vec<String> = inner.trim().split('.').map(str::to_string).collect();
            if inner.trim().is_empty() {
                return Err(RefError { message: "empty reference `${}`".into(), span });
            }
            if let Some(bad) = path.iter().find(|p| !is_ident(p)) {
                return Err(RefError {
                    message: format!(
                        "`{bad}` is not a valid reference part: use letters, digits, '_' and '-', separated by '.'"
                    ),
                    span,
                });
            }
            if !lit.is_empty() {
                pieces.push(Piece::Lit(std::mem::take(&mut lit)));
            }
            pieces.push(Piece::Expr(Expr { path, span }));
            i += close + 3;
            continue;
        }
        let ch_len = s[i..].chars().next().map_or(1, char::len_utf8);
        lit.push_str(&s[i..i + ch_len]);
        i += ch_len;
        debug_assert!(i <= bytes.len());
    }
    if !lit.is_empty() {
        pieces.push(Piece::Lit(lit));
    }
    Ok(pieces)
}

/// The single expression when the whole string is exactly one `${...}`.
pub fn whole_expr(pieces: &[Piece]) -> Option<&Expr> {
    match pieces {
        [Piece::Expr(e)] => Some(e),
        _ => None,
    }
}

/// Whether a string contains any `${` expression (escapes aside).
pub fn has_expr(s: &str) -> bool {
    s.replace("$${", "").contains("${")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Vec<Piece>, RefError> {
        parse_template(s, OffsetMap::new(Span::new(0, s.len()), s.len()))
    }

    #[test]
    fn whole_reference() {
        let p = parse("${vm.identity.principal_id}").expect("ok");
        let e = whole_expr(&p).expect("one expr");
        assert_eq!(e.root(), "vm");
        assert_eq!(e.attr(), "identity.principal_id");
        assert_eq!(e.span, Span::new(0, 27));
    }

    #[test]
    fn escapes_and_errors() {
        assert_eq!(parse("a$${b}").expect("ok"), vec![Piece::Lit("a${b}".into())]);
        assert!(parse("${vm").is_err());
        assert!(parse("${}").is_err());
        assert!(parse("${vm..x}").is_err());
        assert!(parse("${1vm}").is_err());
    }

    #[test]
    fn quoted_scalar_offsets() {
        let s = "x-${a}";
        let p = parse_template(s, OffsetMap::new(Span::new(100, s.len() + 2), s.len())).expect("ok");
        match &p[1] {
            Piece::Expr(e) => assert_eq!(e.span, Span::new(103, 4)),
            other => panic!("unexpected {other:?}"),
        }
    }
}
