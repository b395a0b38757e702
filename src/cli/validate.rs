//! `idlab validate`: check plan files; sends nothing to any cloud.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::resolve::{self, Loaded};
use crate::ui;

use super::common::{Exit, VarArgs, options, width};

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

pub(crate) fn cmd_validate(a: &ValidateArgs, color: bool) -> Exit {
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
                let path = ui::diagnostics::printable(&f.path);
                let line = match (&f.plan, errors) {
                    (Some(p), 0) => format!(
                        "{}: ok — plan `{}`, {} resources{}\n",
                        path,
                        ui::diagnostics::printable(&p.name),
                        p.decls.len(),
                        if warnings > 0 { format!(", {warnings} warning(s)") } else { String::new() }
                    ),
                    _ => format!("{path}: {errors} error(s), {warnings} warning(s)\n"),
                };
                ui::out(&line);
            }
        }
    }
    if failed > 0 { Exit::Error } else { Exit::Ok }
}
