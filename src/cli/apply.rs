//! `idlab apply`: converge ARM to a plan file, or apply a plan saved with `plan --out`
//! after checking it is not stale.

use std::path::PathBuf;

use clap::Args;

use crate::engine::{self, Outcome, Shared};
use crate::ui;

use super::common::{
    CloudArgs, Exit, OutFormat, VarArgs, confirm_or_refuse, fail, instance_prefix, interrupted_exit, prepare_walk,
};
use super::connect::observe_then;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan file, or a plan saved with `plan --out`.
    #[arg(value_name = "PLAN|FILE")]
    pub plan: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Take over resources that exist without this plan's tag.
    #[arg(long)]
    pub adopt: bool,
    /// Purge soft-deleted key vaults and secrets in the way instead of recovering them.
    #[arg(long)]
    pub purge: bool,
    /// The environment expires this long from now (e.g. 8h, 3d): sets `idlab-expires` on its
    /// groups and top-level resources, replacing an earlier expiry; `idlab sweep` removes it
    /// afterwards. Overrides the plan's `expires_after`.
    #[arg(long, value_name = "DURATION", value_parser = parse_expiry)]
    pub expires_after: Option<u64>,
    /// Progress as NDJSON events on stdout.
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

pub(crate) fn cmd_apply(a: &ApplyArgs) -> Exit {
    let saved = read_saved(&a.plan);
    let source = saved.as_ref().map_or_else(|| a.plan.clone(), |s| std::path::PathBuf::from(&s.source));
    if let Some(s) = &saved
        && let Err(e) = s.check_source(&source, &std::fs::read_to_string(&source).unwrap_or_default())
    {
        return fail(e);
    }
    if saved.is_some()
        && (!a.cloud.instance.is_empty() || a.cloud.instances.is_some() || a.cloud.instances_file.is_some())
    {
        return fail("a saved plan is applied as it was saved: drop --instance/--instances");
    }
    // A fleet's saved plan runs its own instances.
    let mut cloud = a.cloud.clone();
    if let Some(s) = &saved {
        cloud.instance = s.instance_names();
    }
    let destroying_saved = saved.as_ref().is_some_and(|s| s.plan.destroy);
    observe_then(
        &source,
        &a.vars,
        &cloud,
        a.expires_after,
        !destroying_saved,
        |p, cx| {
            cx.adopt = a.adopt;
            cx.destroy = destroying_saved;
            cx.check_names = !destroying_saved;
            // A saved plan that purges was made with --purge.
            cx.purge = a.purge || saved.as_ref().is_some_and(crate::plan::Saved::purges);
            cx.only = engine::targets(p, &a.cloud.targets, destroying_saved)?;
            prepare_walk(cx, &a.cloud);
            Ok(())
        },
        async |p, conn, obs| {
            let cx = &conn.cx;
            let destroying = destroying_saved;
            // Each instance's saved plan is checked on its own: a stale one is refused, the
            // others apply.
            let saved = match saved.as_ref().map(|s| s.for_instance(p.instance.as_deref())).transpose() {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            if let Some(s) = saved
                && let Err(e) = s.check_observed(&p.variables, &crate::plan::fingerprints(&obs))
            {
                return fail(tagged(&p, e));
            }
            let plan = crate::plan::make(&cx.plan_options(&p), &p.decls, &p.dag, &obs, destroying);
            // Same plan file, variables and Azure: the actions can still differ when a file the
            // plan reads (a blob source) changed. Apply only what was reviewed.
            if let Some(s) = saved
                && let Err(e) = s.check_actions(&plan)
            {
                return fail(tagged(&p, e));
            }
            if a.format != OutFormat::Json {
                ui::err(&ui::plan::text(&plan));
            }
            let steps = if destroying { Vec::new() } else { crate::verify::next_steps(cx, &p, &obs.values) };
            if !plan.has_changes() {
                ui::plan::next_steps(&steps, a.format == OutFormat::Json);
                return Exit::Ok;
            }
            if saved.is_none()
                && let Err(e) = confirm_or_refuse(a.auto_approve, "apply these actions")
            {
                return e;
            }
            let total = plan.actions.iter().filter(|x| x.action != crate::plan::ActionKind::NoOp).count() as u64;
            let reporter =
                ui::plan::reporter_for(a.format == OutFormat::Json, a.cloud.no_progress, total, p.instance.as_deref());
            let sh = Shared { cx, plan: &p, reporter };
            let results =
                if destroying { engine::walk::destroy(&sh, obs).await } else { engine::walk::apply(&sh, obs).await };
            if a.format != OutFormat::Json {
                ui::err(&instance_prefix(&p, ui::plan::summary(&results, "Apply", "")));
            }
            ui::plan::traffic(&cx.traffic(), a.format == OutFormat::Json);
            drop(conn.local);
            if cx.cancel.is_cancelled() {
                return interrupted_exit(a.cloud.timeout);
            }
            if results.iter().any(|r| matches!(r.2, Outcome::Failed(_) | Outcome::Skipped(_))) {
                Exit::Error
            } else {
                ui::plan::next_steps(&steps, a.format == OutFormat::Json);
                Exit::Ok
            }
        },
    )
}

/// A message about one instance of a fleet, prefixed `[instance] ` as its progress is.
fn tagged(p: &crate::resolve::Validated, e: String) -> String {
    match &p.instance {
        Some(i) => format!("[{i}] {e}"),
        None => e,
    }
}

fn parse_expiry(s: &str) -> Result<u64, String> {
    crate::kinds::env::parse_duration(s)
}

/// A saved plan, when `path` holds one.
fn read_saved(path: &std::path::Path) -> Option<crate::plan::Saved> {
    let text = std::fs::read_to_string(path).ok()?;
    if !text.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str::<crate::plan::Saved>(&text).ok().filter(|s| s.kind == "idlab-saved-plan")
}
