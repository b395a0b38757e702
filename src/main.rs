//! The `idlab` binary: parse, run, map the outcome to an exit code. Nothing else.

use std::process::ExitCode;

fn main() -> ExitCode {
    // reqwest is built without a default crypto provider; install ring once, first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // IDLAB_LOG=debug logs every HTTP exchange (method, path, status, request id, duration);
    // tokens, secrets and query strings (SAS signatures) are never part of what is logged.
    if std::env::var_os("IDLAB_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("IDLAB_LOG"))
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
    }
    ExitCode::from(idlab::cli::run(std::env::args_os()).code())
}
