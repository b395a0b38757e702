//! The Markdown rendering of a plan, for pull-request comments and job summaries: a marker a
//! workflow finds its comment by, a one-line summary of counts, and the per-resource changes
//! folded in `<details>`, never longer than GitHub accepts in a comment.
//!
//! GitHub refuses comment bodies over 65,536 characters. The rendering is measured in UTF-16
//! code units (never fewer than characters, so it is under the limit however GitHub counts)
//! and kept within [`MAX_UNITS`], which leaves a margin below GitHub's limit. When the changes
//! do not fit, lines are cut: every delete and replace line stays (as long as those alone
//! fit), the other lines are kept in plan order while they fit, and a note says how many
//! lines were cut and that the full plan is in the job log.

use crate::plan::{Action, ActionKind, Plan};

use super::plan::{change_lines, counts, implicit_lines, sym, with_them};

/// GitHub's limit on a comment body, in characters.
pub const GITHUB_LIMIT: usize = 65_536;

/// The most UTF-16 code units a rendering holds: GitHub's limit less a margin of 536.
pub const MAX_UNITS: usize = 65_000;

/// The marker a plan's comment starts with, by which a workflow finds it to update it.
pub fn marker(plan: &str) -> String {
    // A comment cannot hold `--`; plan names are DNS-like, so this only guards odd input.
    format!("<!-- idlab-plan: {} -->", plan.replace("--", "-"))
}

/// The Markdown rendering of a plan, at most [`MAX_UNITS`] UTF-16 code units.
pub fn markdown(p: &Plan) -> String {
    markdown_within(p, MAX_UNITS)
}

fn units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// One line of the changes block; `keep` marks the lines a cut never drops.
struct Line {
    text: String,
    keep: bool,
}

fn lines(p: &Plan) -> Vec<Line> {
    let mut out = Vec::new();
    for d in &p.drift {
        out.push(Line { text: format!("! changed outside this plan: {}: {}", d.id, d.detail), keep: false });
    }
    for n in &p.not_looked_for {
        out.push(Line { text: format!("? not looked for: {n}"), keep: true });
    }
    for a in p.actions.iter().filter(|a| a.action != ActionKind::NoOp) {
        out.push(Line { text: header(p, a), keep: kept(a) });
        if let Some(r) = &a.reason {
            out.push(Line { text: format!("      because {r}"), keep: false });
        }
        for c in change_lines(a) {
            out.push(Line { text: format!("      {c}"), keep: false });
        }
        for c in implicit_lines(p, a) {
            out.push(Line { text: format!("      {c}"), keep: kept(a) });
        }
    }
    // Destroy: what it keeps and why, what matches without the plan's mark, what else the
    // groups hold.
    for a in p.actions.iter().filter(|a| p.destroy && a.action == ActionKind::NoOp) {
        if let Some(r) = &a.reason {
            out.push(Line { text: format!("= {} ({}): {r}", a.name, a.kind), keep: true });
        }
    }
    for u in &p.untagged {
        out.push(Line { text: format!("? without this plan's mark (destroy --adopt deletes it): {u}"), keep: true });
    }
    for e in &p.elsewhere {
        out.push(Line { text: format!("- deleted with its group (--force), not matched: {e}"), keep: true });
    }
    out
}

/// Deletes and replaces (a purge deletes too) are never cut.
fn kept(a: &Action) -> bool {
    matches!(a.action, ActionKind::Delete | ActionKind::Replace | ActionKind::Purge | ActionKind::AdoptDelete)
}

fn header(p: &Plan, a: &Action) -> String {
    let symbol = if p.destroy && a.action == ActionKind::Purge { "x" } else { sym(a.action) };
    let verb = match a.action {
        ActionKind::Create => "create",
        ActionKind::Update => "update",
        ActionKind::Replace => "replace",
        ActionKind::Delete => "delete",
        ActionKind::Adopt if p.adopt || crate::plan::adopts_without_flag(a) => "adopt",
        ActionKind::Adopt => "adopt (needs --adopt)",
        ActionKind::AdoptDelete => "adopt and delete",
        ActionKind::Conflict => "refused",
        ActionKind::NoOp => "no-op",
        ActionKind::Recover => "recover",
        ActionKind::Purge if p.destroy => "delete and purge",
        ActionKind::Purge => "purge and create",
    };
    match group(&a.id) {
        Some(rg) => format!("{symbol} {} ({}): {verb}, in {rg}", a.name, a.kind),
        None => format!("{symbol} {} ({}): {verb}", a.name, a.kind),
    }
}

/// The resource group a resource lies in (none for a group itself or a subscription-level
/// id). Lines name it rather than the whole id (the job log has that), so that many deletes
/// and replaces fit.
fn group(id: &str) -> Option<&str> {
    let at = id.to_ascii_lowercase().find("/resourcegroups/")? + "/resourcegroups/".len();
    let (rg, rest) = id[at..].split_once('/')?;
    (!rg.is_empty() && !rest.trim_matches('/').is_empty()).then_some(rg)
}

/// A code fence longer than any run of backticks in the lines.
fn fence(lines: &[Line]) -> String {
    let longest = lines.iter().flat_map(|l| l.text.split(|c| c != '`').map(str::len)).max().unwrap_or(0);
    "`".repeat((longest + 1).max(3))
}

fn markdown_within(p: &Plan, max: usize) -> String {
    let mut head = format!("{}\n**idlab plan `{}`**: ", marker(&p.plan), p.plan);
    let all = lines(p);
    let changed = p.actions.iter().filter(|a| a.action != ActionKind::NoOp).count();
    if changed == 0 {
        head.push_str(&format!("no changes. Azure matches plan `{}`.\n", p.plan));
    } else {
        let implicit = with_them(p.implicit.iter().filter(|c| c.action == ActionKind::Delete));
        head.push_str(&format!("{}{implicit}.\n", counts(&p.summary)));
    }
    if !p.not_applied.is_empty() {
        head.push_str(&format!("\nNot applied by this version of idlab: {}.\n", p.not_applied.join(", ")));
    }
    if all.is_empty() {
        return head;
    }
    let fence = fence(&all);
    let open = |cut: bool| {
        format!(
            "\n<details><summary>{changed} resource change{}{}</summary>\n\n{fence}diff\n",
            if changed == 1 { "" } else { "s" },
            if cut { " (shortened)" } else { "" }
        )
    };
    let close = format!("{fence}\n\n</details>\n");
    let whole: usize = all.iter().map(|l| units(&l.text) + 1).sum();
    let fixed = units(&head) + units(&close);
    if fixed + units(&open(false)) + whole <= max {
        let mut out = head + &open(false);
        for l in &all {
            out.push_str(&l.text);
            out.push('\n');
        }
        return out + &close;
    }
    // Cut: the worst-case note (counts as long as the plan's line count) is reserved first.
    let note = |other: usize, kept_cut: usize| {
        let also = if kept_cut > 0 {
            format!(", and {kept_cut} delete or replace line{} too", if kept_cut == 1 { "" } else { "s" })
        } else {
            " (every delete and replace line is shown)".to_string()
        };
        format!(
            "\n**This comment is shortened to fit GitHub's limit: {other} other line{} of the plan {} cut{also}. The full plan is in the job log.**\n",
            if other == 1 { "" } else { "s" },
            if other == 1 { "was" } else { "were" },
        )
    };
    let budget = max.saturating_sub(fixed + units(&open(true)) + units(&note(all.len(), all.len())));
    let must: usize = all.iter().filter(|l| l.keep).map(|l| units(&l.text) + 1).sum();
    let mut room = budget.saturating_sub(must.min(budget));
    let mut kept_room = budget.min(must);
    let (mut shown, mut other_cut, mut kept_cut) = (Vec::new(), 0usize, 0usize);
    let mut stopped = false;
    for l in &all {
        let n = units(&l.text) + 1;
        if l.keep {
            if n <= kept_room {
                kept_room -= n;
                shown.push(l.text.as_str());
            } else {
                kept_cut += 1;
            }
        } else if !stopped && n <= room {
            room -= n;
            shown.push(l.text.as_str());
        } else {
            // Once one line is cut, later optional lines are too, so what shows is a prefix
            // of the plan plus every kept line, never a change line without its resource.
            stopped = true;
            other_cut += 1;
        }
    }
    let mut out = head + &open(true);
    for t in shown {
        out.push_str(t);
        out.push('\n');
    }
    out + &close + &note(other_cut, kept_cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Plan};

    fn action(name: &str, action: ActionKind) -> Action {
        Action {
            name: name.into(),
            kind: "user_assigned_identity".into(),
            id: format!(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
            ),
            action,
            changes: vec![],
            reason: None,
        }
    }

    #[test]
    fn a_small_plan_is_whole_with_marker_summary_and_details() {
        let p = Plan::new("demo", "s", false, vec![action("a", ActionKind::Create), action("b", ActionKind::Delete)]);
        let md = markdown(&p);
        let mut it = md.lines();
        assert_eq!(it.next(), Some("<!-- idlab-plan: demo -->"));
        assert_eq!(
            it.next(),
            Some("**idlab plan `demo`**: 1 to create, 0 to update, 0 to replace, 1 to delete, 0 to adopt.")
        );
        assert!(md.contains("<details><summary>2 resource changes</summary>"), "{md}");
        assert!(md.contains("\n+ a (user_assigned_identity): create, in rg\n"), "{md}");
        assert!(md.contains("\n- b (user_assigned_identity): delete, in rg\n"), "{md}");
        assert!(md.trim_end().ends_with("</details>"), "{md}");
        assert!(!md.contains("shortened"), "{md}");
    }

    #[test]
    fn lines_name_the_group_not_the_whole_id() {
        assert_eq!(group("/subscriptions/s/resourceGroups/rg/providers/P/t/x"), Some("rg"));
        assert_eq!(group("/subscriptions/s/resourcegroups/rg"), None);
        assert_eq!(group("/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/r"), None);
    }

    #[test]
    fn no_changes_has_no_details() {
        let p = Plan::new("demo", "s", false, vec![action("a", ActionKind::NoOp)]);
        let md = markdown(&p);
        assert_eq!(md, "<!-- idlab-plan: demo -->\n**idlab plan `demo`**: no changes. Azure matches plan `demo`.\n");
    }

    #[test]
    fn a_cut_keeps_every_delete_and_replace_and_counts_the_rest() {
        let mut acts = Vec::new();
        for i in 0..400 {
            acts.push(action(&format!("c{i}"), ActionKind::Create));
            if i % 10 == 0 {
                acts.push(action(&format!("d{i}"), ActionKind::Delete));
                acts.push(action(&format!("r{i}"), ActionKind::Replace));
            }
        }
        let p = Plan::new("demo", "s", false, acts);
        let max = 20_000;
        let md = markdown_within(&p, max);
        assert!(units(&md) <= max, "{}", units(&md));
        for i in (0..400).step_by(10) {
            assert!(md.contains(&format!("\n- d{i} (")), "d{i} cut");
            assert!(md.contains(&format!("\n-/+ r{i} (")), "r{i} cut");
        }
        let shown = md.lines().filter(|l| l.starts_with("+ c")).count();
        assert!(shown < 400 && shown > 0, "{shown}");
        let note = format!("{} other lines of the plan were cut", 400 - shown);
        assert!(md.contains(&note), "{md}");
        assert!(md.contains("The full plan is in the job log"));
        assert!(md.contains("(every delete and replace line is shown)"));
    }

    #[test]
    fn a_fence_outgrows_backticks_in_values() {
        let mut a = action("a", ActionKind::Update);
        a.reason = Some("````x".into());
        let p = Plan::new("demo", "s", false, vec![a]);
        assert!(markdown(&p).contains("\n`````diff\n"));
    }
}
