//! `Sensitive<T>`: a value that prints, debugs and serializes as `(sensitive)`. Secrets,
//! tokens and passwords live only inside it.
//!
//! Also the redaction of plan text before it is shown in a diagnostic: a secret written
//! inline (where `{ env }`, `{ file }` or `{ generate }` belongs, or under a key named like a
//! password) is replaced by `********` in the snippet, and every span is moved to match.

use std::fmt;

use serde::{Serialize, Serializer};

use super::span::Span;
use super::yaml::{Node, Value};

/// What a redacted secret looks like in a snippet.
pub const MASK: &str = "********";

/// Spans of every scalar under a node that sits where a secret belongs, but the keys of the
/// `{ env: NAME }` and `{ file: PATH }` forms (a name or a path is no secret).
pub fn secret_place(node: &Node, out: &mut Vec<Span>) {
    match &node.value {
        Value::Map(entries) => {
            for (k, v) in entries {
                if !matches!(k.as_str(), Some("env" | "file" | "generate")) || v.as_map().is_some() {
                    scalars(v, out);
                }
            }
        }
        _ => scalars(node, out),
    }
}

fn scalars(node: &Node, out: &mut Vec<Span>) {
    match &node.value {
        Value::Map(entries) => entries.iter().for_each(|(_, v)| scalars(v, out)),
        Value::Seq(items) => items.iter().for_each(|v| scalars(v, out)),
        Value::Null => {}
        _ => out.push(node.span),
    }
}

/// A key whose value is a secret when written inline (`password`, `client_secret`, …).
pub fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let near = |word: &str| k.len() >= 5 && super::diag::edit_distance(&k, word) <= 2;
    near("password")
        || near("secret")
        || k.contains("password")
        || k.contains("passwd")
        || k.ends_with("secret")
        || k.ends_with("token")
        || k.contains("connection_string")
}

/// Spans of the values under keys named like secrets ([`secret_key`]), anywhere in the
/// tree; a whole `${...}` reference is left alone.
pub fn by_key_name(node: &Node, out: &mut Vec<Span>) {
    match &node.value {
        Value::Map(entries) => {
            for (k, v) in entries {
                let scalar = !matches!(v.value, Value::Map(_) | Value::Seq(_) | Value::Null);
                if scalar && k.as_str().is_some_and(secret_key) && !is_reference(v) {
                    out.push(v.span);
                } else {
                    by_key_name(v, out);
                }
            }
        }
        Value::Seq(items) => items.iter().for_each(|v| by_key_name(v, out)),
        _ => {}
    }
}

fn is_reference(node: &Node) -> bool {
    node.as_str().is_some_and(|s| s.starts_with("${") && s.ends_with('}') && s.matches("${").count() == 1)
}

/// For text that did not parse: the rest of each line `KEY: VALUE` whose key is named like
/// a secret, unless the value starts a flow mapping or a reference.
pub fn by_text(text: &str, out: &mut Vec<Span>) {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if let Some(colon) = bare.find(':') {
            let key = bare[..colon].trim().trim_start_matches("- ").trim_matches(['"', '\'', ' ']);
            let rest = &bare[colon + 1..];
            let value = rest.trim_start();
            let start = colon + 1 + (rest.len() - value.len());
            if secret_key(key) && !value.is_empty() && !value.starts_with('{') && !value.starts_with("${") {
                out.push(Span::new(offset + start, bare.len() - start));
            }
        }
        offset += line.len();
    }
}

/// Plan text with secrets masked, and where each original offset went.
#[derive(Debug, Clone, Default)]
pub struct Redacted {
    pub text: String,
    /// (old start, old end, new start, new end, old length in characters) of each masked
    /// piece, in order.
    moves: Vec<(usize, usize, usize, usize, usize)>,
}

impl Redacted {
    /// Mask `spans` in `text`. A span over several lines is masked line by line, so line
    /// numbers stay those of the file.
    pub fn new(text: &str, mut spans: Vec<Span>) -> Redacted {
        spans.retain(|s| s.len > 0 && s.end() <= text.len());
        spans.sort();
        let mut pieces: Vec<(usize, usize)> = Vec::new();
        for s in spans {
            let mut start = s.offset;
            for part in text[s.offset..s.end()].split_inclusive('\n') {
                // Only the text of each line: indentation and line ends stay as they are.
                let body = part.trim_end();
                let lead = body.len() - body.trim_start().len();
                if body.len() > lead {
                    pieces.push((start + lead, start + body.len()));
                }
                start += part.len();
            }
        }
        pieces.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (a, b) in pieces {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut moves = Vec::new();
        let mut at = 0;
        for (a, b) in merged {
            if !text.is_char_boundary(a) || !text.is_char_boundary(b) {
                continue;
            }
            out.push_str(&text[at..a]);
            let new_start = out.len();
            out.push_str(MASK);
            moves.push((a, b, new_start, out.len(), text[a..b].chars().count()));
            at = b;
        }
        out.push_str(&text[at..]);
        Redacted { text: out, moves }
    }

    /// Where an original offset lands in the masked text (inside a mask: its start for a
    /// span's start, its end for a span's end).
    pub fn offset(&self, o: usize, end: bool) -> usize {
        let mut shifted = o;
        for &(a, b, na, nb, _) in &self.moves {
            if o >= b {
                shifted = nb + (o - b);
            } else if o > a {
                return if end { nb } else { na };
            } else {
                break;
            }
        }
        shifted
    }

    /// The 1-based column, in the original text, of offset `n` of the masked text `masked`.
    pub fn column(&self, masked: &str, n: usize) -> usize {
        let mut n = n.min(masked.len());
        while !masked.is_char_boundary(n) {
            n -= 1;
        }
        let start = masked[..n].rfind('\n').map_or(0, |i| i + 1);
        let mut col = masked[start..n].chars().count() + 1;
        for &(_, _, na, nb, chars) in &self.moves {
            if na >= start && nb <= n {
                col = col + chars - MASK.len();
            }
        }
        col
    }

    /// An original span, moved into the masked text.
    pub fn span(&self, s: Span) -> Span {
        let start = self.offset(s.offset, false);
        let end = self.offset(s.end(), true).max(start);
        Span::new(start, end - start)
    }
}

/// A secret value. Read it with [`Sensitive::expose`], only where it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    pub fn new(v: T) -> Sensitive<T> {
        Sensitive(v)
    }
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

impl<T> fmt::Display for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(sensitive)")
    }
}

impl<T> Serialize for Sensitive<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("(sensitive)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_the_value() {
        let s = Sensitive::new("hunter2".to_string());
        assert_eq!(format!("{s} {s:?}"), "(sensitive) (sensitive)");
        assert_eq!(serde_json::to_string(&s).unwrap_or_default(), "\"(sensitive)\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn redaction_masks_and_moves_spans() {
        let text = "a: 1\npassword: hunter2hunter2 # x\nb: 2\n";
        let mut spans = Vec::new();
        by_text(text, &mut spans);
        let r = Redacted::new(text, spans);
        assert_eq!(r.text, "a: 1\npassword: ********\nb: 2\n");
        let secret = Span::new(15, 14);
        assert_eq!(&r.text[r.span(secret).offset..r.span(secret).end()], MASK);
        let b = Span::new(text.find("b:").unwrap_or(0), 1);
        assert_eq!(&r.text[r.span(b).offset..r.span(b).end()], "b");
        assert_eq!(r.span(Span::new(0, 1)), Span::new(0, 1));
        let flow = "a: { password: hunter2hunter2, x: 1 }\n";
        let r = Redacted::new(flow, vec![Span::new(15, 14)]);
        let x = r.span(Span::new(31, 1));
        assert_eq!(&r.text[x.offset..x.end()], "x");
        assert_eq!(r.column(&r.text, x.offset), 32);
        assert_eq!(r.column(&r.text, r.offset(29, true)), 30);
    }

    #[test]
    fn keys_named_like_secrets() {
        for k in ["password", "admin_password", "pasword", "Passwrd", "client_secret", "sas_token", "secrt"] {
            assert!(secret_key(k), "{k}");
        }
        for k in ["name", "username", "type", "source", "value", "scope"] {
            assert!(!secret_key(k), "{k}");
        }
    }

    #[test]
    fn block_scalars_keep_their_lines() {
        let text = "p: |\n  one\n  two\nq: 1\n";
        let r = Redacted::new(text, vec![Span::new(5, 12)]);
        assert_eq!(r.text, "p: |\n  ********\n  ********\nq: 1\n");
    }
}
