//! Fleets (issue 15 part 3): many instances of one plan in one command. Five instances of
//! `plans/tutorials.yaml` apply, verify, re-plan without a write and destroy, sharing nothing;
//! a resource group owned by another plan under one instance's name fails that instance only;
//! names that cannot take the instance suffix are plan-time diagnostics; expired environments
//! are swept (vaults purged only with --purge); a fleet over a lowered limit is refused.

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
    // An instances file names them one per line; a bad name in it is refused.
    let list = dir.path().join("instances.txt");
    std::fs::write(&list, "# students\n01\n\nbad name\n").expect("list");
    let r = idlab(&["plan", &p, "--instances-file", &list.display().to_string()]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("instance `bad name`"), "{}", r.stderr);
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
    std::fs::write(&list, "# students\nAb-1\n").expect("list");
    let r = s.idlab(&["plan", &p, "--instances-file", &list.display().to_string(), "--format", "json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("storageAccounts/idlabfleetab1"), "{}", r.stdout);
    // Without instances, ${idlab.instance} is empty and nothing is appended.
    let r = s.idlab(&["plan", &p, "--format", "json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("/resourceGroups/rg--x/providers/Microsoft.Storage/storageAccounts/idlabfleet\""),
        "{}",
        r.stdout
    );
}

const SWEEP_PLAN: &str = "name: sw
location: eastus
resources:
  rg:
    type: resource_group
    name: sw-rg
  id:
    type: user_assigned_identity
    name: sw-id
    resource_group: ${rg}
  outside:
    type: user_assigned_identity
    name: sw-out
    resource_group: shared-rg
  reader:
    type: role_assignment
    scope: ${rg}
    principal: ${id}
    role: Reader
";

#[test]
fn sweep_removes_only_expired_environments_and_dry_run_writes_nothing() {
    let s = Served::start();
    let sub = s.subscription();
    let dir = tempfile::tempdir().expect("tmp");
    let plan = dir.path().join("sw.yaml");
    std::fs::write(&plan, SWEEP_PLAN).expect("plan");
    let p = plan.display().to_string();
    let group = |name: &str| format!("/subscriptions/{sub}/resourcegroups/{name}?api-version=2024-11-01");
    // A group nobody's plan owns, holding one instance's resource outside its own group.
    s.op("PUT", &group("shared-rg"), Some(serde_json::json!({"location": "eastus"})));
    // A foreign group with an expired idlab-expires but another plan's mark is swept only as
    // that plan; one without any idlab mark is never looked at.
    s.op(
        "PUT",
        &group("foreign-rg"),
        Some(serde_json::json!({"location": "eastus", "tags": {"idlab-expires": "2000-01-01T00:00:00Z"}})),
    );
    let t0 = [("IDLAB_NOW", "2026-01-01T00:00:00Z")];
    for (inst, exp) in [("01", Some("1h")), ("02", Some("1d")), ("03", None)] {
        let mut args = vec!["apply", p.as_str(), "--instance", inst, "--auto-approve"];
        if let Some(e) = exp {
            args.extend(["--expires-after", e]);
        }
        let a = s.idlab_env(&args, &t0);
        assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    }
    // The tags are no drift: a re-plan (later, without the flag) has no changes.
    let later = [("IDLAB_NOW", "2026-01-01T02:00:00Z")];
    let r = s.idlab_env(&["plan", &p, "--instances", "3", "--detailed-exitcode"], &later);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // list: from tags alone.
    let l = s.idlab_env(&["list", "--format", "json"], &later);
    assert_eq!(l.code, 0, "{}", l.stderr);
    let v: serde_json::Value = serde_json::from_str(l.stdout.trim()).expect("json");
    let envs = v["environments"].as_array().expect("environments");
    let by = |plan: &str| envs.iter().find(|e| e["plan"] == plan).cloned().unwrap_or_default();
    assert_eq!(by("sw-01")["expires"], "2026-01-01T01:00:00Z", "{v}");
    assert_eq!(by("sw-01")["created"], "2026-01-01T00:00:00Z", "{v}");
    assert_eq!(by("sw-01")["instance"], "01", "{v}");
    assert_eq!(by("sw-01")["resources"], 3, "{v}");
    assert!(by("sw-01")["applied_by"].as_str().is_some_and(|a| !a.is_empty()), "{v}");
    assert_eq!(by("sw-02")["expires"], "2026-01-02T00:00:00Z", "{v}");
    assert!(by("sw-03")["expires"].is_null(), "{v}");
    let text = s.idlab_env(&["list"], &later);
    assert!(text.stdout.lines().next().unwrap_or_default().starts_with("PLAN"), "{}", text.stdout);
    // Dry run: names what it would remove, writes nothing.
    s.op("DELETE", "/_idlab/requests", None);
    let d = s.idlab_env(&["sweep", "--dry-run"], &later);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    assert!(
        d.stderr.contains(
            "sw-01 (expired 2026-01-01T01:00:00Z): would delete 1 role assignments, 1 groups, 1 resources outside them"
        ),
        "{}",
        d.stderr
    );
    assert!(!d.stderr.contains("sw-02 ("), "{}", d.stderr);
    assert!(s.writes().is_empty(), "{:?}", s.writes());
    // Sweep: the expired instance goes, with its role assignment and its resource outside.
    let w = s.idlab_env(&["sweep"], &later);
    assert_eq!(w.code, 0, "{}{}", w.stdout, w.stderr);
    assert!(
        w.stderr.contains("Sweep: 1 expired, 1 removed, 0 not removed; 1 not expired, 1 without an expiry."),
        "{}",
        w.stderr
    );
    assert!(owned_by_plan(&s, "sw-01").is_empty(), "{:?}", owned_by_plan(&s, "sw-01"));
    let assignments = s.op(
        "GET",
        &format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"),
        None,
    );
    let marks: Vec<String> = assignments["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["properties"]["description"].as_str().map(str::to_string))
        .collect();
    assert!(!marks.iter().any(|m| m == "idlab plan sw-01"), "{marks:?}");
    assert!(
        marks.iter().any(|m| m == "idlab plan sw-02") && marks.iter().any(|m| m == "idlab plan sw-03"),
        "{marks:?}"
    );
    // Untouched: the unexpired instance, the one without expiry, the foreign groups.
    assert_eq!(owned_by_plan(&s, "sw-02").len(), 3);
    assert_eq!(owned_by_plan(&s, "sw-03").len(), 3);
    for g in ["shared-rg", "foreign-rg"] {
        assert_eq!(s.op("GET", &group(g), None)["name"], g);
    }
    // Nothing expired is left: a second sweep has nothing to do.
    let again = s.idlab_env(&["sweep"], &later);
    assert!(again.stderr.contains("Sweep: 0 expired"), "{}", again.stderr);
}

#[test]
fn a_fleet_over_a_lowered_limit_is_refused_before_any_write() {
    let s = Served::start();
    let sub = s.subscription();
    let p = root().join("plans/tutorials.yaml").display().to_string();
    // The limits come from the cloud, as Azure exposes them: storage `usages` per region and
    // the role-assignment usage metrics. Five instances need five storage accounts in eastus.
    s.op("PUT", "/_idlab/quotas", Some(serde_json::json!({ "storage_accounts_per_region": 3 })));
    let usages =
        format!("/subscriptions/{sub}/providers/Microsoft.Storage/locations/eastus/usages?api-version=2023-05-01");
    let u = s.op("GET", &usages, None);
    assert_eq!(u["value"][0]["name"]["value"], "StorageAccounts", "{u}");
    assert_eq!((u["value"][0]["currentValue"].as_u64(), u["value"][0]["limit"].as_u64()), (Some(0), Some(3)), "{u}");
    s.op("DELETE", "/_idlab/requests", None);
    let a = s.idlab(&["apply", &p, "--instances", "5", "--auto-approve"]);
    assert_eq!(a.code, 1, "{}{}", a.stdout, a.stderr);
    assert!(
        a.stderr.contains("Storage accounts per region per subscription") && a.stderr.contains("eastus"),
        "{}",
        a.stderr
    );
    assert!(a.stderr.contains("nothing was written"), "{}", a.stderr);
    assert!(!a.stderr.contains("Role assignments per subscription"), "only what does not fit: {}", a.stderr);
    assert!(s.writes().is_empty(), "{:?}", s.writes());
    // Role assignments: the metrics' count against their limit (four per instance here).
    let metrics = format!(
        "/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignmentsUsageMetrics?api-version=2019-08-01-preview"
    );
    let m = s.op("GET", &metrics, None);
    assert_eq!(m["roleAssignmentsLimit"], 4000, "{m}");
    let n = m["roleAssignmentsCurrentCount"].as_u64().expect("a count");
    s.op("PUT", "/_idlab/quotas", Some(serde_json::json!({ "role_assignments": n + 7 })));
    assert_eq!(s.op("GET", &metrics, None)["roleAssignmentsRemainingCount"], 7);
    s.op("DELETE", "/_idlab/requests", None);
    let b = s.idlab(&["apply", &p, "--instances", "2", "--auto-approve"]);
    assert_eq!(b.code, 1, "{}{}", b.stdout, b.stderr);
    assert!(b.stderr.contains("Role assignments per subscription"), "{}", b.stderr);
    assert!(!b.stderr.contains("Storage accounts per region"), "two accounts fit three: {}", b.stderr);
    assert!(s.writes().is_empty(), "{:?}", s.writes());
    // Within the limits the fleet applies, and the cloud's usages count what it made.
    s.op(
        "PUT",
        "/_idlab/quotas",
        Some(serde_json::json!({ "role_assignments": n + 8, "storage_accounts_per_region": 2 })),
    );
    let ok = s.idlab(&["apply", &p, "--instances", "2", "--auto-approve"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert_eq!(s.op("GET", &usages, None)["value"][0]["currentValue"], 2);
    assert_eq!(s.op("GET", &metrics, None)["roleAssignmentsCurrentCount"].as_u64(), Some(n + 8));
    // A third instance fits neither limit now.
    let over = s.idlab(&["apply", &p, "--instances", "3", "--auto-approve"]);
    assert_eq!(over.code, 1, "{}{}", over.stdout, over.stderr);
    assert!(
        over.stderr.contains("Storage accounts per region per subscription")
            && over.stderr.contains("Role assignments per subscription"),
        "{}",
        over.stderr
    );
}

#[test]
fn sweep_leaves_a_vault_soft_deleted_unless_purge() {
    let s = Served::start();
    let sub = s.subscription();
    let dir = tempfile::tempdir().expect("tmp");
    let plan = dir.path().join("kv.yaml");
    std::fs::write(
        &plan,
        "name: kvs\nlocation: eastus\nexpires_after: 1h\nresources:\n  rg:\n    type: resource_group\n    name: kvs-rg\n  kv:\n    type: key_vault\n    name: kvs-vault\n    resource_group: ${rg}\n",
    )
    .expect("plan");
    let p = plan.display().to_string();
    let t0 = [("IDLAB_NOW", "2026-01-01T00:00:00Z")];
    for inst in ["a1", "b1"] {
        let a = s.idlab_env(&["apply", &p, "--instance", inst, "--auto-approve"], &t0);
        assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    }
    let deleted = || {
        let v = s.op(
            "GET",
            &format!("/subscriptions/{sub}/providers/Microsoft.KeyVault/deletedVaults?api-version=2024-11-01"),
            None,
        );
        v["value"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["name"].as_str().map(str::to_string))
            .collect::<Vec<_>>()
    };
    // The plan's expires_after: both have expired an hour later; without --purge their vaults
    // stay soft-deleted.
    let later = [("IDLAB_NOW", "2026-01-01T01:00:01Z")];
    let w = s.idlab_env(&["sweep"], &later);
    assert_eq!(w.code, 0, "{}{}", w.stdout, w.stderr);
    let mut names = deleted();
    names.sort();
    assert_eq!(names, vec!["kvs-vault-a1", "kvs-vault-b1"], "{}", w.stderr);
    // Applied again, then swept with --purge: nothing stays soft-deleted.
    let a = s.idlab_env(&["apply", &p, "--instance", "a1", "--auto-approve", "--purge"], &t0);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    let w = s.idlab_env(&["sweep", "--purge"], &later);
    assert_eq!(w.code, 0, "{}{}", w.stdout, w.stderr);
    assert_eq!(deleted(), vec!["kvs-vault-b1"], "{}", w.stderr);
}

/// The status the local cloud answered the last logged request to `path` with.
fn status_of(s: &Served, path: &str) -> Option<u64> {
    let log = s.op("GET", "/_idlab/requests", None);
    log["value"].as_array()?.iter().rev().find(|e| e["path"] == path).and_then(|e| e["status"].as_u64())
}

#[test]
fn vcpu_limits_come_from_the_cloud_and_the_cloud_enforces_them() {
    let s = Served::start();
    let sub = s.subscription();
    let p = root().join("plans/arm-system-assigned-linux.yaml").display().to_string();
    // Each instance's VM is a Standard_B2s: 2 vCPUs of the BS family. Three BS vCPUs fit one.
    let q = s.op("PUT", "/_idlab/quotas", Some(serde_json::json!({ "family_vcpus": 3 })));
    assert_eq!(q["family_vcpus"], 3, "{q}");
    assert_eq!(q["regional_vcpus"], 350, "fields left out keep the defaults: {q}");
    s.op("DELETE", "/_idlab/requests", None);
    let a = s.idlab(&["apply", &p, "--instances", "2", "--auto-approve"]);
    assert_eq!(a.code, 1, "{}{}", a.stdout, a.stderr);
    assert!(a.stderr.contains("Standard BS Family vCPUs"), "names the family limit: {}", a.stderr);
    assert!(!a.stderr.contains("Total Regional vCPUs"), "only what does not fit: {}", a.stderr);
    assert!(a.stderr.contains("nothing was written"), "{}", a.stderr);
    assert!(s.writes().is_empty(), "{:?}", s.writes());
    // The regional limit is checked on its own.
    s.op("PUT", "/_idlab/quotas", Some(serde_json::json!({ "regional_vcpus": 3 })));
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["apply", &p, "--instances", "2", "--auto-approve"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("Total Regional vCPUs"), "names the regional limit: {}", r.stderr);
    assert!(!r.stderr.contains("Standard BS Family vCPUs"), "{}", r.stderr);
    assert!(s.writes().is_empty(), "{:?}", s.writes());
    // One instance fits, and usages count its VM.
    let one = s.idlab(&["apply", &p, "--instances", "1", "--auto-approve"]);
    assert_eq!(one.code, 0, "{}{}", one.stdout, one.stderr);
    let base = format!("/subscriptions/{sub}/providers/Microsoft.Compute/locations/eastus");
    let u = s.op("GET", &format!("{base}/usages?api-version=2024-07-01"), None);
    let entry = |name: &str| u["value"].as_array().and_then(|a| a.iter().find(|e| e["name"]["value"] == name)).cloned();
    let cores = entry("cores").expect("cores usage");
    assert_eq!((cores["currentValue"].as_u64(), cores["limit"].as_u64()), (Some(2), Some(3)), "{u}");
    assert_eq!(entry("standardBSFamily").expect("BS usage")["currentValue"], 2, "{u}");
    let sizes = s.op("GET", &format!("{base}/vmSizes?api-version=2024-07-01"), None);
    let b2s = sizes["value"].as_array().and_then(|a| a.iter().find(|e| e["name"] == "Standard_B2s")).cloned();
    assert_eq!(b2s.map(|b| b["numberOfCores"].clone()), Some(serde_json::json!(2)), "{sizes}");
    // The cloud itself refuses a VM beyond the limit, in Azure's words.
    let vms = s.op("GET", "/_idlab/vms", None);
    let first = vms["value"][0]["id"].as_str().expect("the instance's VM").to_string();
    let vm = format!("{}/extra", first.rsplit_once('/').expect("an id").0);
    let body = serde_json::json!({
        "location": "eastus",
        "properties": { "hardwareProfile": { "vmSize": "Standard_B2s" } }
    });
    let e = s.op("PUT", &format!("{vm}?api-version=2024-07-01"), Some(body));
    assert_eq!(e["error"]["code"], "OperationNotAllowed", "{e}");
    let msg = e["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("exceeding approved Total Regional Cores quota") && msg.contains("Current Limit: 3"), "{msg}");
    assert_eq!(status_of(&s, &vm), Some(409));
}

#[test]
fn the_cloud_refuses_groups_and_role_assignments_beyond_a_lowered_limit() {
    let s = Served::start();
    let sub = s.subscription();
    let groups = |s: &Served| {
        let l = s.op("GET", &format!("/subscriptions/{sub}/resourcegroups?api-version=2021-04-01"), None);
        l["value"].as_array().map_or(0, Vec::len) as u64
    };
    let have = groups(&s);
    s.op("PUT", "/_idlab/quotas", Some(serde_json::json!({ "resource_groups": have + 1 })));
    let rg = |name: &str| format!("/subscriptions/{sub}/resourcegroups/{name}");
    let ok =
        s.op("PUT", &format!("{}?api-version=2021-04-01", rg("fits")), Some(serde_json::json!({"location": "eastus"})));
    assert_eq!(ok["name"], "fits", "{ok}");
    let e =
        s.op("PUT", &format!("{}?api-version=2021-04-01", rg("over")), Some(serde_json::json!({"location": "eastus"})));
    assert_eq!(e["error"]["code"], "ResourceGroupQuotaExceeded", "{e}");
    assert_eq!(status_of(&s, &rg("over")), Some(400));
    // Updating a group that exists is not a create.
    let again =
        s.op("PUT", &format!("{}?api-version=2021-04-01", rg("fits")), Some(serde_json::json!({"location": "eastus"})));
    assert_eq!(again["name"], "fits", "{again}");
    // Storage accounts count per region: none fit in eastus, one in westus still does.
    s.op("PUT", "/_idlab/quotas", Some(serde_json::json!({ "storage_accounts_per_region": 1 })));
    let account = |name: &str, location: &str| {
        let id = format!("{}/providers/Microsoft.Storage/storageAccounts/{name}", rg("fits"));
        let body = serde_json::json!({"location": location, "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"});
        (s.op("PUT", &format!("{id}?api-version=2023-05-01"), Some(body)), id)
    };
    let (first, _) = account("idlabquotaone", "eastus");
    assert!(first.get("error").is_none(), "{first}");
    let (second, id) = account("idlabquotatwo", "eastus");
    assert_eq!(second["error"]["code"], "MaxStorageAccountsCountPerSubscriptionExceeded", "{second}");
    assert_eq!(status_of(&s, &id), Some(400));
    let (west, _) = account("idlabquotawest", "westus");
    assert!(west.get("error").is_none(), "another region has its own limit: {west}");
    // Role assignments: at the limit, one more is refused.
    let list = s.op(
        "GET",
        &format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"),
        None,
    );
    let n = list["value"].as_array().map_or(0, Vec::len);
    s.op("PUT", "/_idlab/quotas", Some(serde_json::json!({ "role_assignments": n })));
    let ra = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/0b9a3c1e-4f6d-4a8e-9d2b-7c5e1f3a6b80",
        rg("fits")
    );
    let reader = format!(
        "/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
    );
    let body = serde_json::json!({ "properties": {
        "roleDefinitionId": reader,
        "principalId": "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b",
        "principalType": "ServicePrincipal"
    }});
    let e = s.op("PUT", &format!("{ra}?api-version=2022-04-01"), Some(body.clone()));
    assert_eq!(e["error"]["code"], "RoleAssignmentLimitExceeded", "{e}");
    assert_eq!(status_of(&s, &ra), Some(400));
    s.op("PUT", "/_idlab/quotas", Some(serde_json::json!({ "role_assignments": n + 1 })));
    let ok = s.op("PUT", &format!("{ra}?api-version=2022-04-01"), Some(body));
    assert_eq!(ok["properties"]["principalId"], "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b", "{ok}");
}

#[test]
fn a_saved_plan_holds_every_instance_and_each_is_checked_for_staleness_on_its_own() {
    let s = Served::start();
    let sub = s.subscription();
    let dir = tempfile::tempdir().expect("tmp");
    let plan = dir.path().join("sv.yaml");
    std::fs::write(
        &plan,
        "name: sv\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: sv-rg\n  id:\n    type: user_assigned_identity\n    name: sv-id\n    resource_group: ${rg}\n",
    )
    .expect("plan");
    let plan = plan.display().to_string();
    let out = dir.path().join("fleet.json");
    let out_s = out.display().to_string();
    let p = s.idlab(&["plan", &plan, "--instances", "3", "--out", &out_s, "--detailed-exitcode"]);
    assert_eq!(p.code, 2, "{}{}", p.stdout, p.stderr);
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).expect("saved")).expect("json");
    let instances = saved["instances"].as_array().expect("a fleet's saved plan");
    let names: Vec<&str> = instances.iter().filter_map(|i| i["instance"].as_str()).collect();
    assert_eq!(names, ["01", "02", "03"], "{saved}");
    for (i, one) in instances.iter().enumerate() {
        assert_eq!(one["plan"]["plan"], format!("sv-{:02}", i + 1));
        let ids: Vec<&str> =
            one["plan"]["actions"].as_array().into_iter().flatten().filter_map(|a| a["id"].as_str()).collect();
        assert!(ids.iter().any(|id| id.ends_with(&format!("/resourceGroups/sv-rg-{:02}", i + 1))), "{ids:?}");
    }
    // Instance 02's group appears out of band: only its saved plan is stale.
    let rg02 = format!("/subscriptions/{sub}/resourcegroups/sv-rg-02?api-version=2021-04-01");
    s.op("PUT", &rg02, Some(serde_json::json!({ "location": "eastus", "tags": { "idlab-plan": "sv-02" } })));
    let a = s.idlab(&["apply", &out_s]);
    assert_eq!(a.code, 1, "{}{}", a.stdout, a.stderr);
    assert!(a.stderr.contains("[02] Azure changed since the plan was saved"), "{}", a.stderr);
    assert!(a.stderr.contains("3 instances, 1 failed: 02."), "{}", a.stderr);
    let identity = |i: u32| {
        let path = format!(
            "/subscriptions/{sub}/resourceGroups/sv-rg-{i:02}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/sv-id?api-version=2023-01-31"
        );
        s.op("GET", &path, None)["properties"]["principalId"].is_string()
    };
    assert_eq!((identity(1), identity(2), identity(3)), (true, false, true));
    // A fleet's saved plan runs its own instances: no --instances with it.
    let flags = s.idlab(&["apply", &out_s, "--instances", "3"]);
    assert_eq!(flags.code, 1, "{}", flags.stderr);
    assert!(flags.stderr.contains("applied as it was saved"), "{}", flags.stderr);
    // Saved again, it applies every instance; then nothing is left to do.
    let again = s.idlab(&["plan", &plan, "--instances", "3", "--out", &out_s]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let b = s.idlab(&["apply", &out_s]);
    assert_eq!(b.code, 0, "{}{}", b.stdout, b.stderr);
    assert!(identity(2));
    s.op("DELETE", "/_idlab/requests", None);
    let clean = s.idlab(&["plan", &plan, "--instances", "3", "--detailed-exitcode"]);
    assert_eq!(clean.code, 0, "{}{}", clean.stdout, clean.stderr);
    assert!(s.writes().is_empty(), "{:?}", s.writes());
}
