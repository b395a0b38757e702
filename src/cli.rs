//! The command line: clap definitions and one function per command. `main` only calls
//! [`run`] and turns its [`Exit`] into the process exit code (table in `docs/cli.md`).
//!
//! Imports: every layer; the only place (with `ui`) that knows about terminals.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::resolve::{self, Loaded, Options};
use crate::ui;

/// Process exit codes (design.md): one table, each row tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success; for `plan --detailed-exitcode`, no changes.
    Ok = 0,
    /// Invalid plan, usage error, API or network failure, partial failure.
    Error = 1,
    /// `plan --detailed-exitcode`: changes present.
    Changes = 2,
    /// `verify`: it ran and at least one check failed.
    VerifyFailed = 3,
    /// Interrupted.
    Interrupted = 130,
}

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
    /// Show what apply would change (not available yet).
    Plan(Reserved),
    /// Converge Azure to the plan (not available yet).
    Apply(Reserved),
    /// Delete what the plan owns (not available yet).
    Destroy(Reserved),
    /// Run the plan's access checks as the VM identities (not available yet).
    Verify(Reserved),
    /// The built-in local cloud (not available yet).
    Local(Reserved),
}

/// Arguments of commands that later versions implement.
#[derive(Debug, Args)]
pub struct Reserved {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

/// Variable overrides, shared by every command that loads a plan.
#[derive(Debug, Args, Clone, Default)]
pub struct VarArgs {
    /// Set a variable: NAME=VALUE (repeatable; wins over --var-file).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from a YAML file of NAME: VALUE (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Plan files.
    #[arg(required = true, value_name = "PLAN")]
    pub plans: Vec<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiagFormat::Text)]
    pub format: DiagFormat,
    /// Treat unavailable secrets and environment values as errors, as plan and apply do.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
    Json,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Plan file.
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
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
        Command::Validate(a) => validate(&a, color),
        Command::Graph(a) => graph(&a, color),
        Command::Schema => {
            ui::out(&schema_text());
            Exit::Ok
        }
        Command::Plan(_) => reserved("plan"),
        Command::Apply(_) => reserved("apply"),
        Command::Destroy(_) => reserved("destroy"),
        Command::Verify(_) => reserved("verify"),
        Command::Local(_) => reserved("local"),
    }
}

fn reserved(cmd: &str) -> Exit {
    ui::err(&format!("error: `idlab {cmd}` is not available in this version yet\n"));
    Exit::Error
}

/// The schema file's exact text (`schemas/plan.schema.json`).
pub fn schema_text() -> String {
    let mut s = serde_json::to_string_pretty(resolve::schema()).unwrap_or_default();
    s.push('\n');
    s
}

fn options(v: &VarArgs, strict: bool) -> Options {
    Options { vars: v.vars.clone(), var_files: v.var_files.clone(), strict }
}

fn width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(100)
}

fn validate(a: &ValidateArgs, color: bool) -> Exit {
    let opts = options(&a.vars, a.strict);
    let files: Vec<Loaded> = a.plans.iter().map(|p| resolve::load(p, &opts)).collect();
    let failed = files.iter().filter(|f| f.has_errors()).count();
    match a.format {
        DiagFormat::Json => {
            let text = serde_json::to_string_pretty(&ui::diagnostics::files_json(&files)).unwrap_or_default();
            ui::out(&format!("{text}\n"));
        }
        DiagFormat::Text => {
            for f in &files {
                ui::err(&ui::diagnostics::render_text(f, color, width()));
                let errors = f.diags.iter().filter(|d| d.is_error()).count();
                let warnings = f.diags.len() - errors;
                let line = match (&f.plan, errors) {
                    (Some(p), 0) => format!(
                        "{}: ok — plan `{}`, {} resources{}\n",
                        f.path,
                        p.name,
                        p.decls.len(),
                        if warnings > 0 { format!(", {warnings} warning(s)") } else { String::new() }
                    ),
                    _ => format!("{}: {errors} error(s), {warnings} warning(s)\n", f.path),
                };
                ui::out(&line);
            }
        }
    }
    if failed > 0 { Exit::Error } else { Exit::Ok }
}

fn graph(a: &GraphArgs, color: bool) -> Exit {
    let f = resolve::load(&a.plan, &options(&a.vars, false));
    ui::err(&ui::diagnostics::render_text(&f, color, width()));
    let Some(p) = &f.plan else {
        return Exit::Error;
    };
    let text = match a.format {
        GraphFormat::Dot => p.dag.to_dot(),
        GraphFormat::Mermaid => p.dag.to_mermaid(),
        GraphFormat::Json => format!("{}\n", serde_json::to_string_pretty(&p.dag.to_json()).unwrap_or_default()),
    };
    ui::out(&text);
    Exit::Ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_table() {
        assert_eq!(Exit::Ok as i32, 0);
        assert_eq!(Exit::Error as i32, 1);
        assert_eq!(Exit::Changes as i32, 2);
        assert_eq!(Exit::VerifyFailed as i32, 3);
        assert_eq!(Exit::Interrupted as i32, 130);
    }

    #[test]
    fn usage_errors_exit_1_not_2() {
        assert_eq!(run(["idlab", "validate"]), Exit::Error);
        assert_eq!(run(["idlab", "--bogus"]), Exit::Error);
        assert_eq!(run(["idlab", "--version"]), Exit::Ok);
    }
}
