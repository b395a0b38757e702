//! `plan --format markdown` for pull requests: the marker a workflow finds its comment by, the
//! one-line summary, the changes folded in `<details>`, the size guard (at most 65,536
//! characters for a 5,000-resource plan, keeping every delete and replace line), and
//! `GITHUB_STEP_SUMMARY`, which every `plan` appends to.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::common::Served;

/// GitHub's limit on a comment body.
const LIMIT: usize = 65_536;

/// A plan of many user-assigned identities. `first`: group `rg0` with 200 identities `kidN`
/// (kept) and 200 `oidN` (orphaned later). Otherwise the 200 `kidN` move to westus (an
/// identity's location cannot change: replaced), the `oidN` are gone (deleted as orphans), and
/// 10 more groups hold 4,789 new identities: 5,000 declared resources in all.
fn many(first: bool) -> String {
    let mut y = String::from(
        "name: prmd\nlocation: eastus\nresources:\n  rg0:\n    type: resource_group\n    name: prmd-rg0\n",
    );
    let id = |y: &mut String, key: &str, group: &str, extra: &str| {
        y.push_str(&format!(
            "  {key}:\n    type: user_assigned_identity\n    name: {key}\n    resource_group: ${{{group}}}\n{extra}"
        ));
    };
    for i in 0..200 {
        id(&mut y, &format!("kid{i}"), "rg0", if first { "" } else { "    location: westus\n" });
    }
    if first {
        for i in 0..200 {
            id(&mut y, &format!("oid{i}"), "rg0", "");
        }
    } else {
        for g in 0..10 {
            y.push_str(&format!("  g{g}:\n    type: resource_group\n    name: prmd-g{g}\n"));
        }
        for i in 0..4789 {
            id(&mut y, &format!("nid{i}"), &format!("g{}", i % 10), "");
        }
    }
    y
}

/// The counts of the summary line (`**idlab plan `NAME`**: 1 to create, 2 to update, …`).
fn counts(line: &str) -> BTreeMap<String, u64> {
    let (_, list) = line.split_once("**: ").unwrap_or_else(|| panic!("no summary line: {line}"));
    list.trim_end_matches('.')
        .split(", ")
        .map(|part| {
            let (n, what) = part.split_once(" to ").unwrap_or_else(|| panic!("odd count `{part}`"));
            (what.to_string(), n.parse().unwrap_or_else(|_| panic!("odd number `{n}`")))
        })
        .collect()
}

/// The lines inside the `diff` code block of `<details>`.
fn block(md: &str) -> Vec<&str> {
    let start = md.find("```diff\n").expect("a diff block") + "```diff\n".len();
    let end = start + md[start..].find("\n```\n").expect("the block's end");
    md[start..end].lines().collect()
}

#[test]
fn a_5000_resource_plan_fits_a_comment_keeping_every_delete_and_replace() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, b) = (tmp.path().join("a.yaml"), tmp.path().join("b.yaml"));
    std::fs::write(&a, many(true)).expect("write a");
    std::fs::write(&b, many(false)).expect("write b");
    let r = s.idlab(&["apply", &a.display().to_string(), "--auto-approve", "--no-progress"]);
    assert_eq!(r.code, 0, "{}", r.render());

    // One plan: the JSON on stdout, the Markdown in the job summary (the same rendering as
    // `--format markdown`, which the next test compares).
    let summary = tmp.path().join("summary.md");
    let r = s.idlab_env(
        &["plan", &b.display().to_string(), "--format", "json"],
        &[("GITHUB_STEP_SUMMARY", &summary.display().to_string())],
    );
    assert_eq!(r.code, 0, "{}", r.render());
    let plan: Value = serde_json::from_str(&r.stdout).expect("plan JSON");
    let md = std::fs::read_to_string(&summary).expect("the job summary");
    let md = md.strip_suffix('\n').unwrap_or(&md);

    let actions = plan["actions"].as_array().expect("actions");
    let declared = actions.iter().filter(|a| a["action"] != "delete").count();
    assert_eq!(declared, 5000, "the plan declares 5,000 resources");
    assert!(md.chars().count() <= LIMIT, "{} characters", md.chars().count());
    assert!(md.encode_utf16().count() <= LIMIT, "{} UTF-16 units", md.encode_utf16().count());

    // The summary counts are the full plan's.
    let mut lines = md.lines();
    assert_eq!(lines.next(), Some("<!-- idlab-plan: prmd -->"));
    let got = counts(lines.next().expect("summary line"));
    let sum = &plan["summary"];
    for what in ["create", "update", "replace", "delete", "adopt"] {
        assert_eq!(got.get(what).copied(), sum[what].as_u64(), "{what}: {md:.300}");
    }
    assert!(sum["delete"].as_u64() >= Some(200) && sum["replace"].as_u64() >= Some(200), "{sum}");

    // No delete or replace line is cut.
    let shown = block(md);
    for a in actions {
        let sym = match a["action"].as_str() {
            Some("delete") => "-",
            Some("replace") => "-/+",
            _ => continue,
        };
        let head =
            format!("{sym} {} ({}): ", a["name"].as_str().unwrap_or_default(), a["type"].as_str().unwrap_or_default());
        assert!(shown.iter().any(|l| l.starts_with(&head)), "`{head}` was cut");
    }

    // It was cut, and the note counts exactly the lines that are missing.
    let full: usize = actions
        .iter()
        .filter(|a| a["action"] != "no_op")
        .map(|a| 1 + usize::from(a["reason"].is_string()) + a["changes"].as_array().map_or(0, Vec::len))
        .sum::<usize>()
        + plan["drift"].as_array().map_or(0, Vec::len);
    let cut = full - shown.len();
    assert!(cut > 0, "a 5,000-resource plan cannot fit whole");
    let note = format!("{cut} other lines of the plan were cut (every delete and replace line is shown)");
    assert!(md.contains(&note), "no `{note}` in the end: {}", &md[md.len().saturating_sub(400)..]);
    assert!(md.contains("The full plan is in the job log."), "{}", &md[md.len().saturating_sub(400)..]);
}

#[test]
fn markdown_opens_with_the_marker_and_summary_and_folds_the_changes() {
    let s = Served::start();
    let r = s.idlab(&["plan", "plans/arm-user-assigned.yaml", "--format", "markdown"]);
    assert_eq!(r.code, 0, "{}", r.render());
    let j = s.idlab(&["plan", "plans/arm-user-assigned.yaml", "--format", "json"]);
    let plan: Value = serde_json::from_str(&j.stdout).expect("plan JSON");
    let md = &r.stdout;
    let mut lines = md.lines();
    assert_eq!(lines.next(), Some("<!-- idlab-plan: arm-user-assigned -->"), "{md}");
    let got = counts(lines.next().expect("summary line"));
    assert_eq!(got.get("create").copied(), plan["summary"]["create"].as_u64(), "{md}");
    let creates = plan["summary"]["create"].as_u64().unwrap_or_default();
    assert!(md.contains(&format!("\n<details><summary>{creates} resource changes</summary>\n\n```diff\n")), "{md}");
    assert!(md.ends_with("```\n\n</details>\n"), "{md}");
    assert!(!md.contains("shortened"), "{md}");
    // Every change is inside the block, each resource on a line of its own.
    let shown = block(md);
    for a in plan["actions"].as_array().expect("actions") {
        let head = format!(
            "+ {} ({}): create",
            a["name"].as_str().unwrap_or_default(),
            a["type"].as_str().unwrap_or_default()
        );
        assert!(shown.iter().any(|l| l.starts_with(&head)), "no `{head}` in {md}");
    }

    // No changes: the marker and the summary, nothing folded.
    let r = s.idlab(&["apply", "plans/arm-user-assigned.yaml", "--auto-approve", "--no-progress"]);
    assert_eq!(r.code, 0, "{}", r.render());
    let r = s.idlab(&["plan", "plans/arm-user-assigned.yaml", "--format", "markdown"]);
    assert_eq!(
        r.stdout,
        "<!-- idlab-plan: arm-user-assigned -->\n**idlab plan `arm-user-assigned`**: no changes. Azure matches plan `arm-user-assigned`.\n",
        "{}",
        r.render()
    );
}

#[test]
fn every_plan_appends_its_markdown_to_the_job_summary() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let summary = tmp.path().join("step_summary.md");
    std::fs::write(&summary, "## an earlier step\n").expect("write");
    // One clock for the three plans: a group to create shows its `idlab-created` time.
    let now = ("IDLAB_NOW", "2026-12-07T08:00:00Z");
    let env = [("GITHUB_STEP_SUMMARY", summary.to_str().expect("utf-8 path")), now];
    let md = s.idlab_env(&["plan", "plans/arm-user-assigned.yaml", "--format", "markdown"], &[now]).stdout;
    let mut texts = Vec::new();
    for _ in 0..2 {
        let r = s.idlab_env(&["plan", "plans/arm-user-assigned.yaml", "--detailed-exitcode"], &env);
        assert_eq!(r.code, 2, "{}", r.render());
        assert!(r.stdout.starts_with("idlab will perform these actions"), "stdout stays text: {}", r.render());
        texts.push(r.stdout);
    }
    let got = std::fs::read_to_string(&summary).expect("summary");
    // Appended, not truncated: the earlier step's text, then the same Markdown twice.
    assert_eq!(got, format!("## an earlier step\n{md}\n{md}\n"));
    assert_eq!(got.matches("<!-- idlab-plan: arm-user-assigned -->").count(), 2);

    // A summary that cannot be written is a warning; the plan and its exit code stand.
    let r = s.idlab_env(
        &["plan", "plans/arm-user-assigned.yaml", "--detailed-exitcode"],
        &[("GITHUB_STEP_SUMMARY", tmp.path().to_str().expect("utf-8 path")), now],
    );
    assert_eq!(r.code, 2, "{}", r.render());
    assert_eq!(r.stdout, texts[0]);
    assert!(r.stderr.contains("warning: cannot append the plan to GITHUB_STEP_SUMMARY"), "{}", r.render());
}
