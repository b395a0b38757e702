//! The `idlab` binary: parse, run, map the outcome to an exit code. Nothing else.

use std::process::ExitCode;

fn main() -> ExitCode {
    // reqwest is built without a default crypto provider; install ring once, first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    ExitCode::from(idlab::cli::run(std::env::args_os()).code())
}
