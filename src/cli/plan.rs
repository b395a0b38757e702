//! `idlab plan`: show what `apply` would change, from what ARM holds now; `--out` saves it.

use std::path::PathBuf;

use clap::Args;

use crate::engine;
use crate::ui;

use super::common::{CloudArgs, Exit, OutFormat, VarArgs, fail};
use super::connect::observe_then;

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub cloud: CloudArgs,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
    /// Exit 2 when there are changes, 0 when none.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan a destroy.
    #[arg(long)]
    pub destroy: bool,
    /// Plan as `apply --adopt` would run (resources without the plan's mark are adopted); with
    /// --destroy, as `destroy --adopt` would (they are adopted and deleted).
    #[arg(long)]
    pub adopt: bool,
    /// With --destroy: plan as `destroy --force` would (what the plan does not own is deleted
    /// too, and groups with what they hold).
    #[arg(long, requires = "destroy")]
    pub force: bool,
    /// Purge soft-deleted key vaults and secrets instead of recovering them (with
    /// --destroy: purge what is deleted).
    #[arg(long)]
    pub purge: bool,
    /// Save the plan (JSON) for `idlab apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub(crate) fn cmd_plan(a: &PlanArgs) -> Exit {
    // With --out, every instance's saved plan, written once all were made.
    let saved: std::sync::Mutex<Vec<crate::plan::Saved>> = std::sync::Mutex::new(Vec::new());
    let exit = observe_then(
        &a.plan,
        &a.vars,
        &a.cloud,
        None,
        false,
        |p, cx| {
            cx.check_names = !a.destroy;
            cx.purge = a.purge;
            cx.adopt = a.adopt;
            cx.force = a.force;
            cx.destroy = a.destroy;
            cx.only = engine::targets(p, &a.cloud.targets, a.destroy)?;
            Ok(())
        },
        async |p, conn, obs| {
            let plan = crate::plan::make(&conn.cx.plan_options(&p), &p.decls, &p.dag, &obs, a.destroy);
            if a.out.is_some() {
                let mut one = crate::plan::Saved::new(
                    &a.plan.display().to_string(),
                    &std::fs::read_to_string(&a.plan).unwrap_or_default(),
                    &p.variables,
                    crate::plan::fingerprints(&obs),
                    plan.clone(),
                );
                one.instance = p.instance.clone();
                saved.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(one);
            }
            match a.format {
                OutFormat::Json => {
                    ui::out(&format!("{}\n", serde_json::to_string_pretty(&plan).unwrap_or_default()));
                }
                OutFormat::Text => {
                    ui::out(&ui::plan::text(&plan));
                }
                OutFormat::Markdown => {
                    ui::out(&ui::plan_md::markdown(&plan));
                }
            }
            step_summary(&plan);
            drop(conn.local);
            if a.detailed_exitcode && plan.has_changes() { Exit::Changes } else { Exit::Ok }
        },
    );
    let Some(out) = &a.out else { return exit };
    if !matches!(exit, Exit::Ok | Exit::Changes) {
        // An instance failed: a partial fleet is not saved.
        return exit;
    }
    match save(&a.cloud, saved.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner)) {
        Some(s) => {
            let text = serde_json::to_string_pretty(&s).unwrap_or_default();
            if let Err(e) = write_atomic(out, &text) {
                return fail(format!("cannot write {}: {e}", out.display()));
            }
            exit
        }
        None => fail("nothing to save"),
    }
}

/// The one saved plan, or a fleet's: every instance's, in the order they were given.
fn save(cloud: &super::common::CloudArgs, mut all: Vec<crate::plan::Saved>) -> Option<crate::plan::Saved> {
    let names = cloud.instance_names().unwrap_or_default();
    if names.is_empty() {
        return all.pop();
    }
    all.sort_by_key(|s| names.iter().position(|n| Some(n) == s.instance.as_ref()));
    let first = all.first()?;
    // The plan's own name: an instance's is `<plan>-<instance>`.
    let suffix = format!("-{}", first.instance.as_deref().unwrap_or_default());
    let name = first.plan.plan.strip_suffix(&suffix).unwrap_or(&first.plan.plan).to_string();
    crate::plan::Saved::fleet(&name, all)
}

/// In a GitHub Actions job (`GITHUB_STEP_SUMMARY` names a file), every `plan` appends its
/// Markdown to the job summary, whatever `--format` is. A failure to write is a warning.
fn step_summary(plan: &crate::plan::Plan) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return;
    };
    let path = PathBuf::from(path);
    let md = ui::plan_md::markdown(plan);
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{md}\n").as_bytes()));
    if let Err(e) = written {
        ui::err(&format!("warning: cannot append the plan to GITHUB_STEP_SUMMARY ({}): {e}\n", path.display()));
    }
}

fn write_atomic(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(tmp.path(), text)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
