//! Rendering plans and apply/destroy progress, in the style users know from Terraform:
//! `+` create, `~` update, `-/+` replace, `-` delete, field-level `old → new`, secrets as
//! `(sensitive)`, and a summary line.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value;

use crate::engine::{Event, Outcome, Reporter, Traffic};
use crate::plan::{Action, ActionKind, ImplicitChild, Plan, Summary};

pub(super) fn sym(a: ActionKind) -> &'static str {
    match a {
        ActionKind::Create => "+",
        ActionKind::Update => "~",
        ActionKind::Replace => "-/+",
        ActionKind::Delete => "-",
        ActionKind::Adopt => "<=",
        ActionKind::Conflict => "!",
        ActionKind::NoOp => " ",
        ActionKind::Recover => "^",
        ActionKind::Purge => "x/+",
        ActionKind::AdoptDelete => "<=-",
    }
}

fn show(v: &Option<Value>) -> String {
    match v {
        None => "(none)".into(),
        Some(Value::String(s)) => format!("{s:?}"),
        Some(v) => v.to_string(),
    }
}

/// The text rendering of a plan.
pub fn text(p: &Plan) -> String {
    let mut out = String::new();
    if !p.drift.is_empty() {
        out.push_str("Changes outside this plan (apply leaves them alone):\n");
        for d in &p.drift {
            out.push_str(&format!("  ! {}: {}\n", d.id, d.detail));
        }
        out.push('\n');
    }
    if !p.not_applied.is_empty() {
        out.push_str(&format!("Not applied by this version of idlab: {}.\n\n", p.not_applied.join(", ")));
    }
    if !p.not_looked_for.is_empty() {
        out.push_str("Not looked for (no permission to list them):\n");
        for n in &p.not_looked_for {
            out.push_str(&format!("  ? {n}\n"));
        }
        out.push('\n');
    }
    let changed: Vec<_> = p.actions.iter().filter(|a| a.action != ActionKind::NoOp).collect();
    let kept: Vec<_> =
        p.actions.iter().filter(|a| p.destroy && a.action == ActionKind::NoOp && a.reason.is_some()).collect();
    if changed.is_empty() {
        out.push_str(&untagged(p));
        if p.untagged.is_empty() {
            out.push_str(&kept_lines(&kept));
        }
        out.push_str(&elsewhere(p));
        out.push_str(&format!("No changes. Azure matches plan `{}`.\n", p.plan));
        return out;
    }
    out.push_str(&format!("idlab will perform these actions for plan `{}`:\n\n", p.plan));
    for a in &changed {
        let verb = match a.action {
            ActionKind::Create => "created",
            ActionKind::Update => "updated in place",
            ActionKind::Replace => "replaced",
            ActionKind::Delete => "deleted",
            ActionKind::Adopt if p.adopt || crate::plan::adopts_without_flag(a) => "adopted",
            ActionKind::Adopt => "adopted (needs --adopt)",
            ActionKind::AdoptDelete => "adopted and deleted",
            ActionKind::Conflict => "refused",
            ActionKind::NoOp => "left alone",
            ActionKind::Recover => "recovered",
            ActionKind::Purge if p.destroy => "deleted and purged",
            ActionKind::Purge => "purged and created anew",
        };
        out.push_str(&format!("  # {} ({}) will be {verb}\n", a.name, a.kind));
        let symbol = if p.destroy && a.action == ActionKind::Purge { "x" } else { sym(a.action) };
        out.push_str(&format!("  {symbol} {}\n", a.id));
        if let Some(r) = &a.reason {
            out.push_str(&format!("      because {r}\n"));
        }
        for line in change_lines(a) {
            out.push_str(&format!("      {line}\n"));
        }
        for line in implicit_lines(p, a) {
            out.push_str(&format!("      {line}\n"));
        }
        out.push('\n');
    }
    out.push_str(&kept_lines(&kept));
    out.push_str(&elsewhere(p));
    out.push_str(&format!(
        "Plan: {}{}.\n",
        counts(&p.summary),
        with_them(p.implicit.iter().filter(|c| c.action == ActionKind::Delete))
    ));
    out
}

/// What Azure made with the plan's resources that goes with them, for the summary lines:
/// `; with them, 3 made by Azure (1 OS disk, 2 network interfaces)` (empty for none).
pub(crate) fn with_them<'a>(children: impl Iterator<Item = &'a ImplicitChild>) -> String {
    let mut by_what: Vec<(&str, usize)> = Vec::new();
    for c in children {
        match by_what.iter_mut().find(|(w, _)| *w == c.what) {
            Some((_, n)) => *n += 1,
            None => by_what.push((&c.what, 1)),
        }
    }
    let total: usize = by_what.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return String::new();
    }
    let parts: Vec<String> = by_what
        .iter()
        .map(|(w, n)| match (*n, w.ends_with('s')) {
            (1, _) | (_, true) => format!("{n} {w}"),
            _ => format!("{n} {w}s"),
        })
        .collect();
    format!("; with them, {total} made by Azure ({})", parts.join(", "))
}

/// What went with the resources a destroy deleted, for its summary (as `with_them` says it): the
/// implicit children the plan deletes whose parent the run deleted and that are not
/// reported as left behind.
pub fn gone_with_them(p: &Plan, results: &[(String, String, Outcome)]) -> String {
    let parent_gone = |name: &str| {
        results.iter().any(|r| {
            r.0 == name && matches!(r.2, Outcome::Deleted(_) | Outcome::AdoptedDeleted(_) | Outcome::Purged(_))
        })
    };
    let gone = p
        .implicit
        .iter()
        .filter(|c| c.action == ActionKind::Delete && parent_gone(&c.parent))
        .filter(|c| !results.iter().any(|r| r.0.eq_ignore_ascii_case(&c.id)));
    with_them(gone)
}

/// Destroy: what it keeps, and why (`  = rg (resource_group): kept: it holds …`).
fn kept_lines(kept: &[&Action]) -> String {
    if kept.is_empty() {
        return String::new();
    }
    let mut out = String::from("Kept:\n");
    for a in kept {
        out.push_str(&format!("  = {} ({}): {}\n", a.name, a.kind, a.reason.as_deref().unwrap_or_default()));
    }
    out.push('\n');
    out
}

/// Destroy without `--adopt`: what matches the plan but carries no mark of it, and how to
/// tear it down.
fn untagged(p: &Plan) -> String {
    if p.untagged.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "Found {} resource(s) matching plan `{}` without its mark (made outside idlab?); destroy leaves them:\n",
        p.untagged.len(),
        p.plan
    );
    for u in &p.untagged {
        out.push_str(&format!("  ? {u}\n"));
    }
    out.push_str("To delete them (and what Azure made with them), run destroy with --adopt.\n\n");
    out
}

/// Destroy with `--force`: what else the plan's resource groups hold (by type and name),
/// deleted with them.
fn elsewhere(p: &Plan) -> String {
    if p.elsewhere.is_empty() {
        return String::new();
    }
    format!(
        "Deleted with their resource group (--force), though this plan does not match them: {}.\n\n",
        p.elsewhere.join(", ")
    )
}

/// What Azure made with an action's resource and what destroy does with it, one line each
/// (`- OS disk /subscriptions/…: deleted with `vm` (…)`).
pub(super) fn implicit_lines(p: &Plan, a: &Action) -> Vec<String> {
    p.implicit
        .iter()
        .filter(|c| c.parent == a.name)
        .map(|c| format!("{} {} {}: {}", sym(c.action), c.what, c.id, c.reason))
        .collect()
}

/// An action's field changes, one line each (`+ path = new` for a create, `~ path: old → new`
/// otherwise), with secret-looking paths as `(sensitive)`.
pub(super) fn change_lines(a: &Action) -> Vec<String> {
    a.changes
        .iter()
        .map(|c| {
            let sensitive = c.path.contains("adminPassword") || c.path == "value" || c.path.ends_with("/value");
            let (old, new) = if sensitive {
                ("(sensitive)".to_string(), "(sensitive)".to_string())
            } else {
                (show(&c.old), show(&c.new))
            };
            match a.action {
                ActionKind::Create => format!("+ {} = {new}", c.path),
                _ => format!("~ {}: {old} → {new}", c.path),
            }
        })
        .collect()
}

/// The counts of a plan's summary line: `1 to create, 0 to update, …` (recover, purge and
/// refused only when there are some).
pub(super) fn counts(s: &Summary) -> String {
    format!(
        "{} to create, {} to update, {} to replace, {} to delete, {} to adopt{}{}{}",
        s.create,
        s.update,
        s.replace,
        s.delete,
        s.adopt,
        if s.recover > 0 { format!(", {} to recover", s.recover) } else { String::new() },
        if s.purge > 0 { format!(", {} to purge", s.purge) } else { String::new() },
        if s.conflict > 0 { format!(", {} refused", s.conflict) } else { String::new() }
    ) + &if s.adopt_delete > 0 { format!(", {} to adopt and delete", s.adopt_delete) } else { String::new() }
}

/// Progress as plain, timestamped lines on stderr (what pipelines and logs want).
pub struct Lines {
    start: Instant,
    json: bool,
    lock: Mutex<()>,
    /// The instance this run is (a fleet): an `instance` field in NDJSON, a prefix in text.
    instance: Option<String>,
}

impl Lines {
    pub fn new(json: bool) -> Lines {
        Lines { start: Instant::now(), json, lock: Mutex::new(()), instance: None }
    }

    /// Lines for one instance of a fleet.
    pub fn for_instance(json: bool, instance: &str) -> Lines {
        Lines { instance: Some(instance.to_string()), ..Lines::new(json) }
    }
}

impl Reporter for Lines {
    fn event(&self, e: Event) {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let t = self.start.elapsed().as_secs_f64();
        if self.json {
            let v = match &e {
                Event::Started { name, kind, action } => {
                    serde_json::json!({"event": "started", "t": t, "name": name, "type": kind, "action": action})
                }
                Event::Finished { name, outcome } => {
                    serde_json::json!({"event": "finished", "t": t, "name": name, "outcome": outcome_word(outcome), "detail": outcome_detail(outcome)})
                }
                Event::Note(n) => serde_json::json!({"event": "note", "t": t, "message": n}),
            };
            let mut v = v;
            if let (Some(i), Some(m)) = (&self.instance, v.as_object_mut()) {
                m.insert("instance".into(), serde_json::Value::String(i.clone()));
            }
            super::out(&format!("{v}\n"));
            return;
        }
        let line = match &e {
            Event::Started { name, kind, action } => format!(
                "[{t:7.2}s] {name} ({kind}): {}…",
                match action {
                    ActionKind::Create => "creating",
                    ActionKind::Update => "updating",
                    ActionKind::Replace => "replacing",
                    ActionKind::Delete => "deleting",
                    ActionKind::Adopt => "adopting",
                    ActionKind::Recover => "recovering",
                    ActionKind::Purge => "purging",
                    ActionKind::AdoptDelete => "adopting and deleting",
                    _ => "working",
                }
            ),
            Event::Finished { name, outcome } => {
                format!("[{t:7.2}s] {name}: {} {}", outcome_word(outcome), outcome_detail(outcome))
            }
            Event::Note(n) => format!("[{t:7.2}s] {n}"),
        };
        match &self.instance {
            Some(i) => super::err(&format!("[{i}] {line}\n")),
            None => super::err(&format!("{line}\n")),
        }
    }
}

/// The last lines of a fleet: each instance and how it ended (by its exit code).
pub fn fleet_summary(rows: &[(String, u8)]) -> String {
    let word = |code: u8| match code {
        0 => "ok",
        2 => "changes",
        3 => "checks failed",
        130 => "interrupted",
        _ => "FAILED",
    };
    let mut out = String::from("Instances:\n");
    for (name, code) in rows {
        out.push_str(&format!("  {name}: {}\n", word(*code)));
    }
    let failed: Vec<&str> = rows.iter().filter(|r| !matches!(r.1, 0 | 2)).map(|r| r.0.as_str()).collect();
    if failed.is_empty() {
        out.push_str(&format!("{} instances, none failed.\n", rows.len()));
    } else {
        out.push_str(&format!("{} instances, {} failed: {}.\n", rows.len(), failed.len(), failed.join(", ")));
    }
    out
}

/// The limits a fleet does not fit: (limit, scope, in use, the fleet adds, limit value).
pub fn quota_table(rows: &[(String, String, u64, u64, u64)]) -> String {
    let mut out = String::from("The fleet does not fit the subscription's limits:\n");
    out.push_str(&format!("  {:<46} {:<14} {:>8} {:>8} {:>8}\n", "LIMIT", "SCOPE", "IN USE", "ADDS", "LIMIT"));
    for (limit, scope, used, adds, max) in rows {
        out.push_str(&format!("  {limit:<46} {scope:<14} {used:>8} {adds:>8} {max:>8}\n"));
    }
    out
}

pub fn outcome_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Created(_) => "created",
        Outcome::Updated(_) => "updated",
        Outcome::Replaced(_) => "replaced",
        Outcome::Deleted(_) => "deleted",
        Outcome::Adopted(_) => "adopted",
        Outcome::AdoptedDeleted(_) => "adopted and deleted",
        Outcome::Recovered(_) => "recovered",
        Outcome::Purged(_) => "purged",
        Outcome::Unchanged => "unchanged",
        Outcome::Kept(_) => "kept",
        Outcome::Failed(_) => "FAILED",
        Outcome::Skipped(_) => "skipped",
    }
}

pub fn outcome_detail(o: &Outcome) -> String {
    match o {
        Outcome::Created(id)
        | Outcome::Updated(id)
        | Outcome::Replaced(id)
        | Outcome::Deleted(id)
        | Outcome::Adopted(id)
        | Outcome::AdoptedDeleted(id)
        | Outcome::Recovered(id)
        | Outcome::Purged(id) => id.clone(),
        Outcome::Unchanged => String::new(),
        Outcome::Kept(why) | Outcome::Skipped(why) => why.clone(),
        Outcome::Failed(e) => e.to_string(),
    }
}

/// The summary after apply or destroy; `extra` ends its last line (what went with the
/// plan's resources, as `with_them` says it).
pub fn summary(results: &[(String, String, Outcome)], verb: &str, extra: &str) -> String {
    let count = |w: &str| results.iter().filter(|r| outcome_word(&r.2) == w).count();
    let mut out = String::new();
    for (name, kind, o) in results {
        if matches!(o, Outcome::Failed(_) | Outcome::Skipped(_) | Outcome::Kept(_)) {
            out.push_str(&format!("  {} {name} ({kind}): {}\n", outcome_word(o), outcome_detail(o)));
        }
    }
    out.push_str(&format!(
        "{verb} complete: {} created, {} updated, {} replaced, {} deleted, {} adopted, {}{}{} unchanged, {} kept; {} failed, {} skipped{extra}.\n",
        count("created"),
        count("updated"),
        count("replaced"),
        count("deleted") + count("adopted and deleted"),
        count("adopted") + count("adopted and deleted"),
        match count("recovered") {
            0 => String::new(),
            n => format!("{n} recovered, "),
        },
        match count("purged") {
            0 => String::new(),
            n => format!("{n} purged, "),
        },
        count("unchanged"),
        count("kept"),
        count("FAILED"),
        count("skipped"),
    ));
    out
}

/// What the command sent, after the summary: a line on stderr, or with `--format json` a
/// `requests` NDJSON event on stdout (`requests`, `throttled`: 429 answers, `pacing_wait_s`:
/// seconds requests waited for pacing, summed over requests).
pub fn traffic(t: &Traffic, json: bool) {
    if json {
        let v = serde_json::json!({
            "event": "requests",
            "requests": t.requests,
            "throttled": t.throttled,
            "pacing_wait_s": t.pacing_wait.as_secs_f64(),
        });
        super::out(&format!("{v}\n"));
    } else {
        super::err(&format!(
            "Requests: {} sent, {} throttled (429), {:.1} s waited for pacing.\n",
            t.requests,
            t.throttled,
            t.pacing_wait.as_secs_f64()
        ));
    }
}

/// Whether stdin is a terminal (apply asks for confirmation only there).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Ask "yes" on the terminal.
pub fn confirm(question: &str) -> bool {
    super::err(question);
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok() && line.trim() == "yes"
}

/// Progress on a terminal: one spinner per resource in flight with its elapsed time, and a
/// total bar. Finished resources print a line above the bars.
pub struct Bars {
    mp: indicatif::MultiProgress,
    total: indicatif::ProgressBar,
    bars: Mutex<std::collections::HashMap<String, indicatif::ProgressBar>>,
}

impl Bars {
    pub fn new(total: u64) -> Bars {
        let mp = indicatif::MultiProgress::new();
        let style = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} resources, {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        let bar = mp.add(indicatif::ProgressBar::new(total).with_style(style));
        Bars { mp, total: bar, bars: Mutex::new(std::collections::HashMap::new()) }
    }
}

impl Reporter for Bars {
    fn event(&self, e: Event) {
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            Event::Started { name, kind, action } => {
                let style = indicatif::ProgressStyle::with_template("{spinner} {prefix} {msg} {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
                let b = self.mp.insert_before(&self.total, indicatif::ProgressBar::new_spinner().with_style(style));
                b.set_prefix(format!("{name} ({kind})"));
                b.set_message(format!("{action:?}").to_lowercase());
                b.enable_steady_tick(std::time::Duration::from_millis(120));
                bars.insert(name, b);
            }
            Event::Finished { name, outcome } => {
                if let Some(b) = bars.remove(&name) {
                    b.finish_and_clear();
                }
                self.total.inc(1);
                let _ = self.mp.println(format!("{name}: {} {}", outcome_word(&outcome), outcome_detail(&outcome)));
            }
            Event::Note(n) => {
                let _ = self.mp.println(n);
            }
        }
    }
}

/// The reporter for a run: NDJSON for pipelines, bars on a terminal, else plain lines.
pub fn reporter(json: bool, no_progress: bool, total: u64) -> std::sync::Arc<dyn Reporter> {
    reporter_for(json, no_progress, total, None)
}

/// [`reporter`] for one instance of a fleet: lines (one view for every instance, each line
/// naming its instance; NDJSON events carry an `instance` field), never bars.
pub fn reporter_for(json: bool, no_progress: bool, total: u64, instance: Option<&str>) -> std::sync::Arc<dyn Reporter> {
    if let Some(i) = instance {
        return std::sync::Arc::new(Lines::for_instance(json, i));
    }
    if !json && !no_progress && std::io::stderr().is_terminal() {
        std::sync::Arc::new(Bars::new(total))
    } else {
        std::sync::Arc::new(Lines::new(json))
    }
}

/// The steps apply cannot take through ARM (a SQL database's contained user), after the
/// summary: NDJSON `next_step` events on stdout with `--format json`, else text on stderr.
pub fn next_steps(steps: &[crate::kinds::sql::ContainedUser], json: bool) {
    for s in steps {
        if json {
            let v = serde_json::json!({
                "event": "next_step",
                "kind": "t-sql",
                "server": s.server,
                "database": s.database,
                "run_as": s.admin,
                "user": s.user,
                "sql": s.sql,
            });
            super::out(&format!("{v}\n"));
        } else {
            super::err(&format!(
                "Next step (T-SQL; ARM cannot do it): connect to database `{}` on {} as the server's Microsoft Entra admin `{}`, and run:\n    {}\n",
                s.database, s.server, s.admin, s.sql
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(parent: &str, id: &str, what: &str, action: ActionKind) -> ImplicitChild {
        ImplicitChild { parent: parent.into(), id: id.into(), what: what.into(), action, reason: String::new() }
    }

    #[test]
    fn with_them_counts_by_what_and_says_nothing_for_none() {
        let c = [
            child("vm", "/d1", "OS disk", ActionKind::Delete),
            child("vm", "/n1", "network interface", ActionKind::Delete),
            child("vm2", "/n2", "network interface", ActionKind::Delete),
            child("nsg", "/r1", "default security rules", ActionKind::Delete),
        ];
        assert_eq!(
            with_them(c.iter()),
            "; with them, 4 made by Azure (1 OS disk, 2 network interfaces, 1 default security rules)"
        );
        assert_eq!(with_them([].iter()), "");
    }

    #[test]
    fn gone_with_them_counts_only_children_of_deleted_parents_not_left_behind() {
        let mut p = Plan::new("demo", "s", true, vec![]);
        p.implicit = vec![
            child("vm", "/disk", "OS disk", ActionKind::Delete),
            child("vm", "/nic", "network interface", ActionKind::Delete),
            child("kept", "/pip", "public IP", ActionKind::Delete),
            child("vault", "/deleted", "soft-deleted vault", ActionKind::NoOp),
        ];
        let results = vec![
            ("vm".to_string(), "vm".to_string(), Outcome::AdoptedDeleted("/vm".into())),
            ("kept".to_string(), "nic".to_string(), Outcome::Kept("in use".into())),
            ("vault".to_string(), "key_vault".to_string(), Outcome::Deleted("/v".into())),
            // A leftover destroy could not delete is reported as a row of its own.
            ("/NIC".to_string(), "nic".to_string(), Outcome::Skipped("not reached".into())),
        ];
        assert_eq!(gone_with_them(&p, &results), "; with them, 1 made by Azure (1 OS disk)");
    }
}
