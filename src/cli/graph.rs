//! `idlab graph`: print a plan's dependency graph (DOT, Mermaid or JSON).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::resolve;
use crate::ui;

use super::common::{Exit, VarArgs, options, width};

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

pub(crate) fn cmd_graph(a: &GraphArgs, color: bool) -> Exit {
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
