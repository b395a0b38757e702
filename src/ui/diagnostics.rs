//! Rendering diagnostics: rustc-style text through miette (file:line:col, the source line,
//! a caret under the offending text, help) and a stable JSON form.

use std::fmt;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode};
use serde_json::{Value as J, json};

use crate::model::{Diag, Severity, Span};
use crate::resolve::{Loaded, line_col};

/// Version of the JSON diagnostics format (`validate --format json`).
pub const FORMAT_VERSION: u32 = 1;

struct Rendered<'a> {
    diag: &'a Diag,
    source: Option<NamedSource<String>>,
}

impl fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl std::error::Error for Rendered<'_> {}

impl Diagnostic for Rendered<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(format!("{}({})", self.diag.code.as_str(), self.diag.code.slug())))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag.help.as_ref().map(|h| Box::new(h.clone()) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.diag.span?;
        self.source.as_ref()?;
        let label = (!self.diag.label.is_empty()).then(|| self.diag.label.clone());
        let mut labels = vec![LabeledSpan::new_primary_with_span(label, (span.offset, span.len))];
        for (s, l) in &self.diag.related {
            labels.push(LabeledSpan::new_with_span(Some(l.clone()), (s.offset, s.len)));
        }
        Some(Box::new(labels.into_iter()))
    }
}

/// Render every diagnostic of a file as text, without colour unless `color`.
pub fn render_text(loaded: &Loaded, color: bool, width: usize) -> String {
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(width).with_context_lines(1);
    let mut out = String::new();
    for d in &loaded.diags {
        // Into the masked text, then clamped to it.
        let fit = |s: Span| {
            let s = loaded.redaction.span(s);
            let offset = s.offset.min(loaded.text.len());
            Span::new(offset, s.len.min(loaded.text.len() - offset))
        };
        let mut fixed = d.clone();
        fixed.span = d.span.map(fit);
        fixed.related = d.related.iter().map(|(s, l)| (fit(*s), l.clone())).collect();
        fixed.message = printable(&fixed.message);
        fixed.label = printable(&fixed.label);
        fixed.help = fixed.help.as_deref().map(printable);
        fixed.related.iter_mut().for_each(|r| r.1 = printable(&r.1));
        let source =
            fixed.span.map(|_| NamedSource::new(printable(&loaded.path), shown(&loaded.text)).with_language("yaml"));
        let r = Rendered { diag: &fixed, source };
        let mut s = String::new();
        if handler.render_report(&mut s, &r).is_err() {
            s = format!("{}: {}\n", d.code.as_str(), d.message);
        }
        if d.span.is_none() {
            s = format!("{}: {s}", printable(&loaded.path));
        }
        out.push_str(s.trim_end());
        out.push_str("\n\n");
    }
    out
}

/// Text with control characters (a terminal escape, a NUL from a plan) written as `\u{..}`
/// escapes, so no diagnostic can drive the terminal. Line breaks and tabs stay.
pub fn printable(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return text.to_string();
    }
    text.chars()
        .map(|c| if c.is_control() && c != '\n' && c != '\t' { c.escape_unicode().to_string() } else { c.to_string() })
        .collect()
}

/// Source text for a snippet: each control character but line ends and tabs becomes `?`,
/// byte for byte, so spans still fit.
fn shown(text: &str) -> String {
    if !text.bytes().any(|b| b < 0x20 && !matches!(b, b'\n' | b'\t' | b'\r') || b == 0x7f) {
        return text.to_string();
    }
    text.chars().map(|c| if c.is_ascii_control() && !matches!(c, '\n' | '\t' | '\r') { '?' } else { c }).collect()
}

/// One diagnostic as JSON, with 1-based line/column positions.
pub fn diag_json(loaded: &Loaded, d: &Diag) -> J {
    // Positions in the file itself: through the masked text, which keeps the file's lines.
    let pos = |offset: usize, end: bool| {
        let masked = loaded.redaction.offset(offset, end);
        let (l, _) = line_col(&loaded.text, masked);
        json!({ "line": l, "column": loaded.redaction.column(&loaded.text, masked) })
    };
    json!({
        "code": d.code.as_str(),
        "name": d.code.slug(),
        "severity": d.severity,
        "message": d.message,
        "file": loaded.path,
        "start": d.span.map(|s| pos(s.offset, false)),
        "end": d.span.map(|s| pos(s.end(), true)),
        "offset": d.span.map(|s| s.offset),
        "length": d.span.map(|s| s.len),
        "label": (!d.label.is_empty()).then(|| d.label.clone()),
        "help": d.help,
        "related": d.related.iter().map(|(s, l)| json!({ "start": pos(s.offset, false), "label": l })).collect::<Vec<_>>(),
    })
}

/// The JSON document for `validate --format json`.
pub fn files_json(files: &[Loaded]) -> J {
    json!({
        "format_version": FORMAT_VERSION,
        "ok": files.iter().all(|f| !f.has_errors()),
        "files": files.iter().map(|f| json!({
            "file": f.path,
            "ok": !f.has_errors(),
            "resources": f.plan.as_ref().map(|p| p.decls.len()),
            "errors": f.diags.iter().filter(|d| d.is_error()).count(),
            "warnings": f.diags.iter().filter(|d| !d.is_error()).count(),
            "diagnostics": f.diags.iter().map(|d| diag_json(f, d)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
