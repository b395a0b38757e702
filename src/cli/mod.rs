//! The command line: clap definitions and dispatch. `main` only calls [`run`] and turns its
//! [`Exit`] into the process exit code (table in `docs/cli.md`).
//!
//! One file per command, each with its `Args` and a `cmd_*` function (the cargo/jj layout);
//! `common` holds what several share and `connect` chooses and connects to a cloud. This
//! module only parses and delegates: no command module imports it, so the CLI modules form
//! no cycle.
//!
//! Imports: every layer; the only place (with `ui`) that knows about terminals.

use std::io::IsTerminal;

use clap::{Parser, Subcommand};

use crate::ui;

mod apply;
mod common;
mod connect;
mod destroy;
mod graph;
mod import;
mod list;
mod local;
mod output;
mod plan;
mod schema;
mod sweep;
mod validate;
mod verify;

pub use apply::ApplyArgs;
pub use common::{AuthArg, CloudArgs, Exit, OutFormat, VarArgs};
pub use destroy::DestroyArgs;
pub use graph::{GraphArgs, GraphFormat};
pub use import::ImportArgs;
pub use list::ListArgs;
pub use local::{EnvArgs, EnvFormat, ExecArgs, LocalCommand, MiTokenArgs, ServeArgs, VmArgs};
pub use output::OutputArgs;
pub use plan::PlanArgs;
pub use schema::schema_text;
pub use sweep::SweepArgs;
pub use validate::{DiagFormat, ValidateArgs};
pub use verify::VerifyArgs;

/// idlab: Azure managed-identity environments, declared in YAML and converged through ARM.
#[derive(Debug, Parser)]
#[command(name = "idlab", version, about, max_term_width = 100)]
pub struct Cli {
    /// Never colour output (also: NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check plan files: syntax, fields, names, references, roles, cycles.
    Validate(ValidateArgs),
    /// Print a plan's dependency graph.
    Graph(GraphArgs),
    /// Print the JSON Schema of plan files.
    Schema,
    /// Show what apply would change (diff against what ARM holds).
    Plan(PlanArgs),
    /// Converge Azure (or the local cloud) to the plan.
    Apply(ApplyArgs),
    /// Delete what the plan owns, dependents first.
    Destroy(DestroyArgs),
    /// Run the plan's access checks as the VMs' managed identities.
    Verify(VerifyArgs),
    /// Print the plan's outputs from what ARM holds.
    Output(OutputArgs),
    /// Write a plan from what resource groups hold (secrets as placeholders).
    Import(ImportArgs),
    /// Every idlab environment in the subscription, from tags alone.
    List(ListArgs),
    /// Destroy every environment whose `idlab-expires` has passed.
    Sweep(SweepArgs),
    /// The built-in local cloud: ARM, token issuer and VM identity endpoints on 127.0.0.1.
    #[command(subcommand)]
    Local(LocalCommand),
}

/// Parse arguments and run. clap's usage errors exit 1 (2 means "changes present").
pub fn run<I, T>(args: I) -> Exit
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { Exit::Error } else { Exit::Ok };
            let text = e.render().to_string();
            if e.use_stderr() {
                ui::err(&text);
            } else {
                ui::out(&text);
            }
            return code;
        }
    };
    let color = !cli.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    match cli.command {
        Command::Validate(a) => validate::cmd_validate(&a, color),
        Command::Graph(a) => graph::cmd_graph(&a, color),
        Command::Schema => schema::cmd_schema(),
        Command::Plan(a) => plan::cmd_plan(&a),
        Command::Apply(a) => apply::cmd_apply(&a),
        Command::Destroy(a) => destroy::cmd_destroy(&a),
        Command::Verify(a) => verify::cmd_verify(&a),
        Command::Output(a) => output::cmd_output(&a),
        Command::Import(a) => import::cmd_import(&a),
        Command::List(a) => list::cmd_list(&a),
        Command::Sweep(a) => sweep::cmd_sweep(&a),
        Command::Local(LocalCommand::Serve(a)) => local::cmd_serve(&a),
        Command::Local(LocalCommand::Env(a)) => local::cmd_env(&a),
        Command::Local(LocalCommand::Exec(a)) => local::cmd_exec(&a),
        Command::Local(LocalCommand::MiToken(a)) => local::cmd_mi_token(&a),
        Command::Local(LocalCommand::OidcServer(a)) => local::cmd_oidc_server(&a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_exit_1_not_2() {
        assert_eq!(run(["idlab", "validate"]), Exit::Error);
        assert_eq!(run(["idlab", "--bogus"]), Exit::Error);
        assert_eq!(run(["idlab", "--version"]), Exit::Ok);
    }
}
