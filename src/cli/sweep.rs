//! `idlab sweep`: destroy every environment whose `idlab-expires` has passed, without its plan
//! file, by destroy's safety rules (only what carries its mark). An environment without
//! `idlab-expires` is never swept. Exit 0 when everything expired was removed, 1 otherwise.
//! The clock is `IDLAB_NOW` when set (tests only), else the system's.

use clap::Args;

use crate::engine::envs;
use crate::ui;

use super::common::{CloudArgs, Exit, fail, runtime};
use super::connect::{connect, now};

#[derive(Debug, Args)]
pub struct SweepArgs {
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// Show what would be deleted, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Purge the swept environments' key vaults after deleting them (otherwise they stay
    /// soft-deleted, recoverable for the vault's retention period).
    #[arg(long)]
    pub purge: bool,
}

pub(crate) fn cmd_sweep(a: &SweepArgs) -> Exit {
    let Some(rt) = runtime() else { return Exit::Error };
    rt.block_on(async {
        let conn = match connect(&a.cloud, None).await {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        let (client, sub) = (&conn.cx.client, conn.cx.subscription.as_str());
        let found = match envs::list(client, sub).await {
            Ok(f) => f,
            Err(e) => return fail(e),
        };
        let now = now();
        let rfc = time::format_description::well_known::Rfc3339;
        let (mut expired, mut later, mut never, mut failed) = (0, 0, 0, 0);
        for e in &found {
            let Some(exp) = &e.expires else {
                never += 1;
                continue;
            };
            match time::OffsetDateTime::parse(exp, &rfc) {
                Ok(t) if t <= now => {}
                Ok(_) => {
                    later += 1;
                    continue;
                }
                Err(_) => {
                    ui::err(&format!("{}: idlab-expires `{}` is not a UTC time: left alone\n", e.plan, exp.escape_debug()));
                    never += 1;
                    continue;
                }
            }
            expired += 1;
            let t = match envs::teardown(client, sub, e).await {
                Ok(t) => t,
                Err(err) => {
                    failed += 1;
                    ui::err(&format!("{}: {err}\n", e.plan));
                    continue;
                }
            };
            let verb = if a.dry_run { "would delete" } else { "deleting" };
            ui::err(&format!(
                "{} (expired {exp}): {verb} {} role assignments, {} groups, {} resources outside them, {} custom roles\n",
                e.plan,
                t.assignments.len(),
                t.groups.len(),
                t.resources.len(),
                t.custom_roles.len()
            ));
            for (g, why) in &t.kept {
                ui::err(&format!("  kept {g}: {why}\n"));
            }
            if a.dry_run {
                continue;
            }
            let failures = envs::sweep(client, sub, e, &t, a.purge).await;
            for f in &failures {
                ui::err(&format!("  FAILED {f}\n"));
            }
            if !failures.is_empty() || !t.kept.is_empty() {
                failed += 1;
            }
        }
        let done = if a.dry_run { "to remove" } else { "removed" };
        ui::err(&format!(
            "Sweep: {expired} expired, {} {done}, {failed} not removed; {later} not expired, {never} without an expiry.\n",
            expired - failed
        ));
        if failed > 0 { Exit::Error } else { Exit::Ok }
    })
}
