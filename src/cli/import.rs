//! `idlab import`: write a plan from what resource groups hold. The reads are
//! `engine::import`, the writing the pure `crate::import`; this file connects, checks `--out`
//! and prints the summary.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::ui;

use super::common::{CloudArgs, Exit, fail, runtime};
use super::connect::connect;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A resource group to import (repeatable).
    #[arg(long = "resource-group", short = 'g', required = true, value_name = "NAME")]
    pub groups: Vec<String>,
    /// Write the plan to FILE (atomically; an existing file only with --force) instead of
    /// standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// With --out: overwrite FILE if it exists.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// The plan's `name` (default: the first resource group's).
    #[arg(long, value_name = "PLAN")]
    pub name: Option<String>,
    #[command(flatten)]
    pub cloud: CloudArgs,
}

pub(crate) fn cmd_import(a: &ImportArgs) -> Exit {
    if !a.cloud.targets.is_empty() || a.cloud.instance_names().is_ok_and(|n| !n.is_empty()) {
        return fail("import reads resource groups: --target and instances do not apply");
    }
    if let Some(out) = &a.out
        && !a.force
        && out.exists()
    {
        return fail(format!("{} exists: pass --force to overwrite it", out.display()));
    }
    let Some(rt) = runtime() else { return Exit::Error };
    let plan_name = a.name.clone().unwrap_or_else(|| a.groups[0].clone());
    let read = rt.block_on(async {
        let conn = connect(&a.cloud, None).await?;
        let cx = &conn.cx;
        let got = crate::engine::import::read(
            &cx.client,
            &cx.subscription,
            cx.caller_object_id.as_deref(),
            &a.groups,
            &plan_name,
            cx.parallelism,
        )
        .await
        .map_err(|e| e.message.clone());
        drop(conn.local);
        got
    });
    let input = match read {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    let out = crate::import::write(&input);
    match &a.out {
        Some(path) => {
            if let Err(e) = write_new(path, &out.text, a.force) {
                return fail(format!("cannot write {}: {e}", path.display()));
            }
        }
        None => {
            ui::out(&out.text);
        }
    }
    let mut s = format!(
        "Imported {} declaration(s) from {}; {} resource(s) made with them are implicit, {} of kinds idlab does not manage are listed at the end{}.\n",
        out.declared,
        input.groups.join(", "),
        out.implicit,
        out.unsupported,
        a.out.as_ref().map(|p| format!(", written to {}", p.display())).unwrap_or_default()
    );
    if !out.placeholders.is_empty() {
        s.push_str("Set these before `idlab plan` or `apply` (secret values are never read):\n");
        for p in &out.placeholders {
            s.push_str(&format!("  {}: {}\n", p.name, p.what));
        }
    }
    for (key, what) in &out.unexpressed {
        s.push_str(&format!(
            "warning: {key}: {what}: a plan cannot write it as Azure holds it, so `plan` shows a change\n"
        ));
    }
    ui::err(&s);
    Exit::Ok
}

/// Write `text` to `path` through a file next to it, renamed over it at the end: a reader
/// never sees half a plan. Without `force`, an existing `path` is never replaced.
fn write_new(path: &Path, text: &str, force: bool) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.as_file().sync_all()?;
    if force {
        tmp.persist(path).map_err(|e| e.error)?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| e.error)?;
    }
    Ok(())
}
