//! `idlab destroy`: delete what the plan owns, dependents first.

use std::path::PathBuf;

use clap::Args;

use crate::engine::{self, Outcome, Shared};
use crate::ui;

use super::common::{
    CloudArgs, Exit, OutFormat, VarArgs, confirm_or_refuse, instance_prefix, interrupted_exit, prepare_walk,
};
use super::connect::observe_then;

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub cloud: CloudArgs,
    #[arg(long)]
    pub auto_approve: bool,
    /// Delete resources the plan does not own too.
    #[arg(long)]
    pub force: bool,
    /// Purge key vaults and secrets after deleting them: they cannot be recovered.
    #[arg(long)]
    pub purge: bool,
    /// Tear down what matches the plan without its mark (made by hand): each resource that
    /// matches a declaration, and what Azure made with it; creates and updates nothing.
    #[arg(long)]
    pub adopt: bool,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

pub(crate) fn cmd_destroy(a: &DestroyArgs) -> Exit {
    observe_then(
        &a.plan,
        &a.vars,
        &a.cloud,
        None,
        false,
        |p, cx| {
            cx.force = a.force;
            cx.purge = a.purge;
            cx.adopt = a.adopt;
            cx.destroy = true;
            cx.only = engine::targets(p, &a.cloud.targets, true)?;
            prepare_walk(cx, &a.cloud);
            Ok(())
        },
        async |p, conn, obs| {
            let cx = &conn.cx;
            let plan = crate::plan::make(&cx.plan_options(&p), &p.decls, &p.dag, &obs, true);
            if a.format != OutFormat::Json {
                ui::err(&ui::plan::text(&plan));
            }
            if !plan.has_changes() {
                return Exit::Ok;
            }
            if let Err(e) = confirm_or_refuse(a.auto_approve, "destroy these resources") {
                return e;
            }
            let reporter = ui::plan::reporter_for(
                a.format == OutFormat::Json,
                a.cloud.no_progress,
                plan.actions.iter().filter(|x| x.action != crate::plan::ActionKind::NoOp).count() as u64,
                p.instance.as_deref(),
            );
            let sh = Shared { cx, plan: &p, reporter };
            let results = engine::walk::destroy(&sh, obs).await;
            if a.format != OutFormat::Json {
                let gone = ui::plan::gone_with_them(&plan, &results);
                ui::err(&instance_prefix(&p, ui::plan::summary(&results, "Destroy", &gone)));
            }
            ui::plan::traffic(&cx.traffic(), a.format == OutFormat::Json);
            drop(conn.local);
            if cx.cancel.is_cancelled() {
                return interrupted_exit(a.cloud.timeout);
            }
            if results.iter().any(|r| matches!(r.2, Outcome::Failed(_))) { Exit::Error } else { Exit::Ok }
        },
    )
}
