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
            a.out.is_some(),
        )
        .await
        .map_err(|e| e.message.clone());
        drop(conn.local);
        let i = got?;
        let out = crate::import::write(&i);
        // The files the plan names go next to it first: the check below reads them.
        let written = match &a.out {
            Some(path) => write_files(plan_dir(path), &out.files, a.force)?,
            None => Vec::new(),
        };
        let base = a.out.as_deref().map_or(Path::new("."), plan_dir);
        let changes = would_change(&out.text, &i, cx, base);
        Ok::<_, String>((i, out, changes, written))
    });
    let (input, out, changes, written) = match read {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    match &a.out {
        Some(path) => {
            if let Err(e) = write_new(path, out.text.as_bytes(), a.force) {
                // No files without the plan that names them.
                for f in &written {
                    let _ = std::fs::remove_file(f);
                }
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
    if !out.files.is_empty() {
        s.push_str(&format!(
            "Wrote {} blob file(s) the plan names, {} byte(s), under {}.\n",
            out.files.len(),
            out.files.iter().map(|f| f.1.len()).sum::<usize>(),
            a.out.as_deref().map_or(Path::new("."), plan_dir).join("files").display()
        ));
    }
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
    for c in &changes {
        s.push_str(&format!("warning: `plan --adopt` would change {c}\n"));
    }
    ui::err(&s);
    Exit::Ok
}

/// Write `bytes` to `path` through a file next to it, renamed over it at the end: a reader
/// never sees half a file. Without `force`, an existing `path` is never replaced.
fn write_new(path: &Path, bytes: &[u8], force: bool) -> std::io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(plan_dir(path))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    if force {
        tmp.persist(path).map_err(|e| e.error)?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| e.error)?;
    }
    Ok(())
}

/// The directory a file is in (a plan's paths are relative to it).
fn plan_dir(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Write each (path relative to `dir`, content): every one checked before any is written (an
/// existing file with other content only with `force`), each written whole through a file
/// next to it. Answers the files it made or replaced.
fn write_files(dir: &Path, files: &[(String, Vec<u8>)], force: bool) -> Result<Vec<PathBuf>, String> {
    let mut todo = Vec::new();
    for (rel, content) in files {
        let path = dir.join(rel);
        match std::fs::read(&path) {
            Ok(have) if have == *content => continue,
            Ok(_) if !force => {
                return Err(format!("{} exists with other content: pass --force to overwrite it", path.display()));
            }
            _ => todo.push((path, content)),
        }
    }
    let mut written = Vec::new();
    for (path, content) in todo {
        let made = std::fs::create_dir_all(plan_dir(&path)).and_then(|()| write_new(&path, content, true));
        if let Err(e) = made {
            for f in &written {
                let _ = std::fs::remove_file(f);
            }
            return Err(format!("cannot write {}: {e}", path.display()));
        }
        written.push(path);
    }
    Ok(written)
}

/// What `plan --adopt` would change besides taking the resources over (their tag or metadata
/// mark): the written plan loaded and diffed, offline, against the ARM bodies just read, as
/// `key (fields)`. Role assignments (found by content) and data-plane objects are left to
/// `plan`.
fn would_change(text: &str, input: &crate::import::Input, cx: &crate::engine::Context, base: &Path) -> Vec<String> {
    use crate::kinds::env::Plane;
    let loaded = crate::resolve::load_str("imported plan", text.to_string(), base, &crate::resolve::Options::default());
    let Some(plan) = loaded.plan else {
        return vec!["everything: the written plan does not validate (a bug: please report it)".into()];
    };
    let bodies: std::collections::HashMap<String, &serde_json::Value> =
        input.found.iter().map(|f| (f.id.to_ascii_lowercase(), &f.body)).collect();
    let mut values = std::collections::HashMap::new();
    let mut out = Vec::new();
    for i in plan.dag.topo_order().unwrap_or_else(|| (0..plan.decls.len()).collect()) {
        let d = &plan.decls[i];
        let Some(w) = d.spec.desired(&cx.env(&plan, &d.logical.value, &values)) else { continue };
        let have = bodies.get(&w.id.to_ascii_lowercase()).copied().filter(|_| w.plane == Plane::Arm);
        crate::engine::record(&mut values, &d.logical.value, &w.id, have);
        let Some(have) = have else { continue };
        let a = crate::plan::decide(&d.logical.value, d.kind.type_name(), &plan.name, &w, Some(have));
        let changed: Vec<&str> =
            a.changes.iter().map(|c| c.path.as_str()).filter(|p| *p != "tags" && !p.ends_with("/idlab_plan")).collect();
        if !changed.is_empty() {
            out.push(format!("{} ({})", d.logical.value, changed.join(", ")));
        }
    }
    out
}
