//! Tearing down what a person made by hand (issue 17): `destroy PLAN --adopt` deletes what
//! matches the plan and what Azure made with it, writes nothing, keeps a group that holds
//! something else (naming it) unless `--force`; without `--adopt` destroy names what matches
//! and points at `--adopt`; `plan --adopt` and `apply --adopt` count adoptions as adoptions.
//! Everything through the real binary against the local cloud, on resources made by
//! `common::handmade` the way the portal, Az PowerShell or the Azure CLI make them.

use serde_json::{Value, json};

use crate::common::Served;
use crate::common::handmade::{self, Options, Unrelated, group_exists, resources_in};

/// The requests in the local cloud's log since the last clear that PUT or PATCH anything.
fn puts_and_patches(s: &Served) -> Vec<String> {
    let log = s.op("GET", "/_idlab/requests", None);
    log["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| matches!(e["method"].as_str(), Some("PUT" | "PATCH")))
        .map(|e| format!("{} {}", e["method"].as_str().unwrap_or_default(), e["path"].as_str().unwrap_or_default()))
        .collect()
}

/// The DELETEs in the log since the last clear, lower-cased paths.
fn deletes(s: &Served) -> Vec<String> {
    let log = s.op("GET", "/_idlab/requests", None);
    log["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["method"] == "DELETE" && e["path"] != "/_idlab/requests")
        .filter_map(|e| e["path"].as_str().map(str::to_ascii_lowercase))
        .collect()
}

fn status_of(s: &Served, id: &str, api: &str) -> Value {
    s.op("GET", &format!("{id}?api-version={api}"), None)
}

/// A plan of three resources made by hand: a group, an identity, Reader for it on the group.
fn small_plan(dir: &std::path::Path) -> String {
    let text = "name: small\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: handmade-rg\n  id1:\n    type: user_assigned_identity\n    name: ID1\n    resource_group: ${rg}\n  reader:\n    type: role_assignment\n    scope: ${rg}\n    principal: ${id1}\n    role: Reader\n";
    let path = dir.join("small.yaml");
    std::fs::write(&path, text).expect("plan");
    path.display().to_string()
}

#[test]
fn plan_adopt_shows_adoptions_and_apply_adopt_counts_them_adopted() {
    let s = Served::start();
    let h = handmade::Hand::new(&s);
    let rg = handmade::group(&h, "handmade-rg", "eastus");
    let id1 = handmade::identity(&h, "handmade-rg", "ID1", "eastus");
    let ra = handmade::role_assignment(&h, &rg, &id1.principal_id, "Reader");
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = small_plan(tmp.path());
    // Without --adopt: the adoptions are what apply would refuse.
    let p = s.idlab(&["plan", &plan]);
    assert_eq!(p.code, 0, "{}{}", p.stdout, p.stderr);
    assert!(p.stdout.contains("adopted (needs --adopt)"), "{}", p.stdout);
    // With --adopt: adoptions, the hand-made assignment found by (scope, principal, role)
    // under its own random name, and changes for --detailed-exitcode.
    let p = s.idlab(&["plan", &plan, "--adopt", "--detailed-exitcode"]);
    assert_eq!(p.code, 2, "{}{}", p.stdout, p.stderr);
    assert!(!p.stdout.contains("needs --adopt"), "{}", p.stdout);
    assert_eq!(p.stdout.matches("will be adopted\n").count(), 3, "{}", p.stdout);
    assert!(p.stdout.contains(&format!("<= {}", ra.id)), "{}", p.stdout);
    assert!(
        p.stdout.contains("Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 3 to adopt."),
        "{}",
        p.stdout
    );
    let j = s.idlab(&["plan", &plan, "--adopt", "--format", "json"]);
    let v: Value = serde_json::from_str(&j.stdout).expect("plan JSON");
    assert_eq!(v["summary"]["adopt"], 3, "{v}");
    assert_eq!(v["adopt"], true);
    // apply --adopt: counted as adopted, not updated.
    let r = s.idlab(&["apply", &plan, "--adopt", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("0 created, 0 updated, 0 replaced, 0 deleted, 3 adopted"), "{}", r.stderr);
    // The assignment kept its own name and now carries the plan's description.
    let got = status_of(&s, &ra.id, "2022-04-01");
    assert_eq!(got["properties"]["description"], "idlab plan small", "{got}");
    s.replans_clean(&plan);
    // And destroy (no --adopt needed now) removes all three.
    let d = s.idlab(&["destroy", &plan, "--auto-approve"]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    assert!(!group_exists(&s, "handmade-rg"));
    assert!(status_of(&s, &ra.id, "2022-04-01").get("error").is_some());
    let _ = json!(null);
}
