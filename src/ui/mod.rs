//! Everything users see: diagnostics, graph renderings and plain output. Only the CLI layer
//! imports this module, and only this module prints.
//!
//! Imports: model, resolve, graph, miette. Writes to stdout/stderr only.
#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod diagnostics;
pub mod plan;
pub mod plan_md;

use std::io::{self, Write};

/// Write to stdout. A closed pipe (`idlab graph … | head`) is not an error: returns false.
pub fn out(text: &str) -> bool {
    let mut o = io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => false,
        Err(_) => false,
    }
}

/// Write to stderr, ignoring failures (there is nowhere else to report them).
pub fn err(text: &str) {
    let mut e = io::stderr().lock();
    let _ = e.write_all(text.as_bytes());
    let _ = e.flush();
}
