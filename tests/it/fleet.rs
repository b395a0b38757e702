//! Fleets (issue 15 part 3): many instances of one plan in one command. Five instances of
//! `plans/tutorials.yaml` apply, verify, re-plan without a write and destroy, sharing nothing;
//! a resource group owned by another plan under one instance's name fails that instance only;
//! names that cannot take the instance suffix are plan-time diagnostics.

use std::collections::HashSet;

use crate::common::{Served, idlab, owned_by_plan, root};

const N: usize = 5;

fn instance_plan(i: usize) -> String {
    format!("tutorials-{i:02}")
}

#[test]
fn five_instances_apply_verify_replan_clean_and_destroy_each_in_one_command() {
    let s = Served::start();
    let p = root().join("plans/tutorials.yaml").display().to_string();
    let a = s.idlab(&["apply", &p, "--instances", "5", "--auto-approve"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    assert!(a.stderr.contains("5 instances, none failed."), "{}", a.stderr);
    for i in 1..=N {
        assert!(a.stderr.contains(&format!("[{i:02}] Apply complete:")), "{}", a.stderr);
    }
    // Each instance is its own plan: its own mark, its own names; the five share nothing.
    let mut seen: HashSet<String> = HashSet::new();
    for i in 1..=N {
        let ids = owned_by_plan(&s, &instance_plan(i));
        assert!(ids.len() > 10, "instance {i}: {ids:?}");
        assert!(ids.iter().any(|id| id.ends_with(&format!("/resourceGroups/myResourceGroupVM-{i:02}"))), "{ids:?}");
        assert!(ids.iter().any(|id| id.ends_with(&format!("/storageAccounts/idlabtutorials{i:02}"))), "{ids:?}");
        assert!(ids.iter().any(|id| id.ends_with(&format!("/vaults/idlab-tutorials-kv-{i:02}"))), "{ids:?}");
        for id in ids {
            assert!(seen.insert(id.to_ascii_lowercase()), "shared by two instances: {id}");
        }
    }
    assert!(owned_by_plan(&s, "tutorials").is_empty(), "the plan itself owns nothing");
    // Verify every instance in one command.
    let v = s.idlab(&["verify", &p, "--instances", "5"]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    for i in 1..=N {
        assert!(v.stdout.contains(&format!("[{i:02}] Verify: 8 passed, 0 failed, 0 skipped.")), "{}", v.stdout);
    }
    // Re-plan: no changes in any instance, and no write anywhere.
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["plan", &p, "--instances", "5", "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let again = s.idlab(&["apply", &p, "--instances", "5", "--auto-approve", "--format", "json"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(s.writes().is_empty(), "{:?}", s.writes());
    // Output shows each instance's final names.
    let o = s.idlab(&["output", &p, "--instance", "03", "--format", "json"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let out: serde_json::Value = serde_json::from_str(o.stdout.trim()).expect("json");
    assert_eq!(out["instance"], "03");
    assert_eq!(out["outputs"]["sql_fqdn"], "idlab-tutorials-sql-03.database.windows.net", "{out}");
    // Destroy all five in one command: nothing any instance owned is left.
    let d = s.idlab(&["destroy", &p, "--instances", "5", "--auto-approve", "--format", "json"]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    // NDJSON events name their instance.
    let events: Vec<serde_json::Value> = d.stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let instances: HashSet<&str> =
        events.iter().filter(|e| e["event"] == "finished").filter_map(|e| e["instance"].as_str()).collect();
    assert_eq!(instances.len(), N, "{}", d.stdout);
    for i in 1..=N {
        assert!(owned_by_plan(&s, &instance_plan(i)).is_empty(), "instance {i} left resources");
    }
}

#[test]
fn a_group_owned_by_another_plan_fails_one_instance_and_the_others_converge() {
    let s = Served::start();
    let p = root().join("plans/tutorials.yaml").display().to_string();
    let sub = s.subscription();
    s.op(
        "PUT",
        &format!("/subscriptions/{sub}/resourcegroups/myResourceGroupVM-03?api-version=2024-11-01"),
        Some(serde_json::json!({"location": "eastus", "tags": {"idlab-plan": "someone-else"}})),
    );
    let a = s.idlab(&["apply", &p, "--instances", "5", "--auto-approve"]);
    assert_eq!(a.code, 1, "{}{}", a.stdout, a.stderr);
    assert!(a.stderr.contains("5 instances, 1 failed: 03."), "{}", a.stderr);
    assert!(a.stderr.contains("  03: FAILED"), "{}", a.stderr);
    // The other four converged: a re-plan of them shows no changes.
    let r = s.idlab(&[
        "plan",
        &p,
        "--instance",
        "01",
        "--instance",
        "02",
        "--instance",
        "04",
        "--instance",
        "05",
        "--detailed-exitcode",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // Instance 3 still has changes, so the fleet's detailed exit code says so.
    assert_eq!(s.idlab(&["plan", &p, "--instances", "5", "--detailed-exitcode"]).code, 2);
    // The other plan's group is untouched.
    let g =
        s.op("GET", &format!("/subscriptions/{sub}/resourcegroups/myResourceGroupVM-03?api-version=2024-11-01"), None);
    assert_eq!(g["tags"]["idlab-plan"], "someone-else", "{g}");
}

#[test]
fn names_take_the_instance_by_their_kind_and_a_name_that_cannot_is_a_diagnostic() {
    let dir = tempfile::tempdir().expect("tmp");
    let plan = dir.path().join("fleet.yaml");
    std::fs::write(
        &plan,
        "name: f\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: rg-${idlab.instance}-x\n  sa:\n    type: storage_account\n    name: abcdefghijklmnopqrstuvw\n    resource_group: ${rg}\n",
    )
    .expect("plan");
    let p = plan.display().to_string();
    // 23 characters + "01" is over a storage account's 24: file:line:col of the name.
    let r = idlab(&["plan", &p, "--instances", "2"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("fleet.yaml:9:11"), "{}", r.stderr);
    assert!(r.stderr.contains("abcdefghijklmnopqrstuvw01"), "{}", r.stderr);
    // Bad instance names are refused before anything is read.
    let r = idlab(&["plan", &p, "--instance", "a b"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("instance `a b`"), "{}", r.stderr);
    // Against a cloud: ${idlab.instance} places the instance (nothing appended), the storage
    // account takes it in lowercase letters and digits, and the group reference follows.
    std::fs::write(
        &plan,
        "name: f\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: rg-${idlab.instance}-x\n  sa:\n    type: storage_account\n    name: idlabfleet\n    resource_group: ${rg}\n",
    )
    .expect("plan");
    let s = Served::start();
    let r = s.idlab(&["plan", &p, "--instance", "Ab-1", "--format", "json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("/resourceGroups/rg-Ab-1-x/providers/Microsoft.Storage/storageAccounts/idlabfleetab1"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\"plan\": \"f-Ab-1\""), "{}", r.stdout);
    // Without instances, ${idlab.instance} is empty and nothing is appended.
    let r = s.idlab(&["plan", &p, "--format", "json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("/resourceGroups/rg--x/providers/Microsoft.Storage/storageAccounts/idlabfleet\""),
        "{}",
        r.stdout
    );
}
