//! `plans/tutorials.yaml` — every tutorial in one environment — through the real binary
//! against `idlab local serve`: apply from empty, every verify check passes, a re-plan shows no
//! changes and writes nothing (ARM or data planes), destroy leaves nothing the plan owns, and
//! apply works again from there (the soft-deleted vault and secret are recovered).

use crate::common::root;
use crate::engine_e2e::Served;

/// What carries the plan's tag in the subscription: groups and resources.
fn owned(s: &Served) -> Vec<String> {
    let sub = s.subscription();
    let filter = "$filter=tagName%20eq%20'idlab-plan'%20and%20tagValue%20eq%20'tutorials'";
    let mut out = Vec::new();
    for path in [
        format!("/subscriptions/{sub}/resourcegroups?{filter}&api-version=2024-11-01"),
        format!("/subscriptions/{sub}/resources?{filter}&api-version=2021-04-01"),
    ] {
        let v = s.op("GET", &path, None);
        out.extend(v["value"].as_array().into_iter().flatten().filter_map(|r| r["id"].as_str().map(str::to_string)));
    }
    out
}

fn verify_all(s: &Served, p: &str) {
    let v = s.idlab(&["verify", p]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("Verify: 8 passed, 0 failed, 0 skipped."), "{}", v.stdout);
    for check in [
        "rm-system",
        "rm-user-assigned",
        "rm-cannot-write",
        "storage-token",
        "storage-sas",
        "key-vault",
        "data-lake",
        "sql",
    ] {
        assert!(v.stdout.contains(&format!("PASS {check}:")), "{check}: {}", v.stdout);
    }
}

#[test]
fn every_tutorial_in_one_environment_applies_verifies_replans_clean_destroys_and_applies_again() {
    let s = Served::start();
    let p = root().join("plans/tutorials.yaml").display().to_string();
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    assert!(a.stderr.contains("0 failed, 0 skipped"), "{}", a.stderr);
    verify_all(&s, &p);
    // Re-plan and re-apply: no changes, and no write anywhere.
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["plan", &p, "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("No changes."), "{}", r.stdout);
    let again = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(s.writes().is_empty(), "{:?}", s.writes());
    // Destroy: nothing owned is left.
    assert!(!owned(&s).is_empty());
    let d = s.idlab(&["destroy", &p, "--auto-approve"]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    assert!(owned(&s).is_empty(), "{:?}", owned(&s));
    // Apply again from there: the vault and the secret are recovered, the rest created.
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    assert!(a.stderr.contains("2 recovered"), "{}", a.stderr);
    verify_all(&s, &p);
    assert_eq!(s.idlab(&["plan", &p, "--detailed-exitcode"]).code, 0);
    // And from nothing at all, after destroy --purge.
    assert_eq!(s.idlab(&["destroy", &p, "--auto-approve", "--purge"]).code, 0);
    assert!(owned(&s).is_empty());
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    assert!(!a.stderr.contains("recovered"), "{}", a.stderr);
    verify_all(&s, &p);
}
