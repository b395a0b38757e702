//! Every tutorial plan through the real binary against `idlab local serve`, the acceptance
//! cycle of each: apply from empty, every verify check passes, a re-plan shows no changes and
//! a re-apply writes nothing (ARM or data planes), destroy leaves nothing the plan owns, and
//! apply and verify work again from there (soft-deleted vaults and secrets are recovered).
//! `plans/tutorials.yaml` — all of them in one environment — also after `destroy --purge`.

use crate::common::{Served, acceptance_cycle, owned_by_plan, root};

/// What carries the plan's tag in the subscription: groups and resources.
fn owned(s: &Served) -> Vec<String> {
    owned_by_plan(s, "tutorials")
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
    s.replans_clean(&p);
    let again = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(s.writes().is_empty(), "{:?}", s.writes());
    // --target reads only the selection and what it needs: no name checks for the globally
    // named resources it did not read, no ownership listings.
    s.op("DELETE", "/_idlab/requests", None);
    for cmd in [
        vec!["plan", p.as_str(), "--target", "vm", "--detailed-exitcode"],
        vec!["apply", p.as_str(), "--target", "vm", "--auto-approve"],
    ] {
        let r = s.idlab(&cmd);
        assert_eq!(r.code, 0, "{cmd:?}: {}{}", r.stdout, r.stderr);
    }
    let log = s.op("GET", "/_idlab/requests", None);
    let paths: Vec<String> =
        log["value"].as_array().into_iter().flatten().filter_map(|e| e["path"].as_str().map(str::to_string)).collect();
    assert!(paths.iter().any(|p| p.ends_with("/virtualMachines/myVM")), "{paths:?}");
    let sub = s.subscription();
    for p in &paths {
        assert!(!p.contains("checkNameAvailability"), "a name check under --target: {p}");
        assert!(
            p != &format!("/subscriptions/{sub}/resources") && p != &format!("/subscriptions/{sub}/resourcegroups"),
            "an ownership listing under --target: {p}"
        );
    }
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

#[test]
fn the_arm_user_assigned_tutorial_full_cycle() {
    acceptance_cycle("plans/arm-user-assigned.yaml", "arm-user-assigned", 2);
}

#[test]
fn the_arm_system_assigned_tutorial_full_cycle() {
    acceptance_cycle("plans/arm-system-assigned.yaml", "arm-system-assigned", 2);
}

#[test]
fn the_storage_blob_tutorial_full_cycle() {
    acceptance_cycle("plans/storage-blob.yaml", "storage-blob", 1);
}

#[test]
fn the_storage_sas_tutorial_full_cycle() {
    acceptance_cycle("plans/storage-sas.yaml", "storage-sas", 1);
}

#[test]
fn the_sql_tutorial_full_cycle() {
    acceptance_cycle("plans/sql.yaml", "sql", 1);
}

#[test]
fn the_data_lake_tutorial_full_cycle() {
    acceptance_cycle("plans/datalake.yaml", "datalake", 1);
}

#[test]
fn the_key_vault_tutorial_full_cycle() {
    acceptance_cycle("plans/keyvault.yaml", "keyvault", 1);
}

#[test]
fn the_data_lake_gen2_tutorial_full_cycle() {
    acceptance_cycle("plans/datalake-gen2.yaml", "datalake-gen2", 1);
}
