//! Tearing down what a person made by hand (issue 17): `destroy PLAN --adopt` deletes what
//! matches the plan and what Azure made with it, writes nothing, keeps a group that holds
//! something else (naming it) unless `--force`; without `--adopt` destroy names what matches
//! and points at `--adopt`; `plan --adopt` and `apply --adopt` count adoptions as adoptions.
//! Everything through the real binary against the local cloud, on resources made by
//! `common::handmade` the way the portal, Az PowerShell or the Azure CLI make them.

use serde_json::{Value, json};

use crate::common::Served;
use crate::common::handmade::{self, Options, Unrelated, group_exists, resources_in};

/// The requests in the local cloud's log since the last clear that PUT or PATCH anything
/// (ARM and the data planes): a teardown sends none. (It deletes what a VM leaves explicitly
/// rather than PATCHing the VM's `deleteOption`s first, so not even those.)
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

/// The soft-deleted vault `name` in eastus, as ARM answers it (an error when there is none).
fn deleted_vault(s: &Served, name: &str) -> Value {
    let sub = s.subscription();
    s.op("GET", &format!("/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/eastus/deletedVaults/{name}?api-version=2024-11-01"), None)
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

/// The plan's declarations that exist by hand in `plans/arm-user-assigned.yaml` (logical
/// names), as `destroy` names them.
const ARM_MATCHED: [&str; 4] =
    ["rg (resource_group)", "id1 (user_assigned_identity)", "vm (virtual_machine)", "id1-reader (role_assignment)"];

#[test]
fn arm_user_assigned_made_by_hand_is_torn_down_and_nothing_is_written() {
    let s = Served::start();
    let made = handmade::arm_user_assigned(&s, &Options::arm());
    let plan = "plans/arm-user-assigned.yaml";
    let before = resources_in(&s, &made.group);
    assert_eq!(before, made.resource_ids());
    // Without --adopt: nothing deleted, every match named, --adopt pointed at.
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["destroy", plan, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for m in ARM_MATCHED {
        assert!(r.stderr.contains(&format!("? {m} ")), "{m}: {}", r.stderr);
    }
    assert!(r.stderr.contains(&format!("? id1-reader (role_assignment) {}", made.assignments[0].id)), "{}", r.stderr);
    assert!(r.stderr.contains("--adopt"), "{}", r.stderr);
    assert_eq!(s.writes(), Vec::<Value>::new(), "destroy without --adopt wrote");
    assert_eq!(resources_in(&s, &made.group), before);
    // As a plan: nothing to do without --adopt (exit 0), changes with it (exit 2).
    let p = s.idlab(&["plan", plan, "--destroy", "--detailed-exitcode"]);
    assert_eq!(p.code, 0, "{}{}", p.stdout, p.stderr);
    assert!(p.stdout.contains("run destroy with --adopt"), "{}", p.stdout);
    let p = s.idlab(&["plan", plan, "--destroy", "--adopt", "--detailed-exitcode"]);
    assert_eq!(p.code, 2, "{}{}", p.stdout, p.stderr);
    let j = s.idlab(&["plan", plan, "--destroy", "--adopt", "--format", "json"]);
    let v: Value = serde_json::from_str(&j.stdout).expect("plan JSON");
    assert_eq!(v["summary"]["adopt_delete"], 4, "{v}");
    assert!(
        v["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .all(|a| a["action"] == "adopt_delete" || a["action"] == "no_op"),
        "{v}"
    );
    // The destroy plan with --adopt: each match adopted and deleted, what the portal made with
    // the VM found through its references.
    let p = s.idlab(&["plan", plan, "--destroy", "--adopt"]);
    assert_eq!(p.code, 0, "{}{}", p.stdout, p.stderr);
    for id in [&made.group_id, &made.vm.id, &made.identity.as_ref().expect("ID1").id, &made.assignments[0].id] {
        assert!(
            p.stdout.to_ascii_lowercase().contains(&format!("<=- {}\n", id.to_ascii_lowercase())),
            "{id}: {}",
            p.stdout
        );
    }
    for (what, id) in [
        ("OS disk", &made.vm.os_disk),
        ("network interface", &made.vm.nic),
        ("public IP", &made.vm.public_ip),
        ("network security group", &made.vm.nsg),
        ("virtual network", &made.vm.vnet),
    ] {
        let line = format!("- {what} {}: ", id.to_ascii_lowercase());
        assert!(p.stdout.to_ascii_lowercase().contains(&line.to_ascii_lowercase()), "{line}: {}", p.stdout);
    }
    assert!(p.stdout.contains("4 to adopt and delete"), "{}", p.stdout);
    // The teardown: nothing left, the group gone, and not one PUT or PATCH sent.
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["destroy", plan, "--adopt", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(puts_and_patches(&s), Vec::<String>::new());
    assert!(r.stderr.contains("4 deleted, 4 adopted"), "{}", r.stderr);
    assert!(!group_exists(&s, &made.group), "{}", r.stderr);
    assert_eq!(resources_in(&s, &made.group), Vec::<String>::new());
    let all = s.op("GET", &format!("/subscriptions/{}/resources?api-version=2021-04-01", s.subscription()), None);
    assert_eq!(all["value"], json!([]), "{all}");
    let ra = status_of(&s, &made.assignments[0].id, "2022-04-01");
    assert_eq!(ra["error"]["code"], "RoleAssignmentNotFound", "{ra}");
}

#[test]
fn keyvault_made_by_hand_is_torn_down_leaving_the_vault_soft_deleted() {
    let s = Served::start();
    let made = handmade::keyvault(&s, &Options::keyvault());
    let vault = made.vault.as_ref().expect("a vault");
    let plan = "plans/keyvault.yaml";
    // Without --adopt: the vault, the secret and the access-policy entry (matched by the VM's
    // object id) are named, nothing is deleted.
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["destroy", plan, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for m in [
        "rg (resource_group)",
        "vm (virtual_machine)",
        "kv (key_vault)",
        "secret (key_vault_secret)",
        "vm-policy (key_vault_access_policy)",
    ] {
        assert!(r.stderr.contains(&format!("? {m} ")), "{m}: {}", r.stderr);
    }
    assert_eq!(s.writes(), Vec::<Value>::new(), "destroy without --adopt wrote");
    // The teardown.
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["destroy", plan, "--adopt", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(puts_and_patches(&s), Vec::<String>::new());
    assert!(r.stderr.contains(&format!("<=- {}", vault.id)), "{}", r.stderr);
    assert!(r.stderr.contains("soft-deleted vault"), "{}", r.stderr);
    for id in [&made.vm.nic, &made.vm.public_ip, &made.vm.nsg, &made.vm.vnet, &made.vm.os_disk] {
        assert!(r.stderr.contains(id.as_str()), "{id}: {}", r.stderr);
    }
    assert!(!group_exists(&s, &made.group), "{}", r.stderr);
    assert_eq!(resources_in(&s, &made.group), Vec::<String>::new());
    let all = s.op("GET", &format!("/subscriptions/{}/resources?api-version=2021-04-01", s.subscription()), None);
    assert_eq!(all["value"], json!([]), "{all}");
    // The vault was deleted, not purged: its soft-deleted copy stays (without --purge).
    let deleted = deleted_vault(&s, &vault.name);
    assert_eq!(deleted["name"], vault.name.as_str(), "{deleted}");
}

#[test]
fn an_unrelated_resource_keeps_the_group_and_is_named_until_force() {
    let s = Served::start();
    let made = handmade::arm_user_assigned(&s, &Options::arm());
    let extra = handmade::add_unrelated(&s, &made.group, Unrelated::StorageAccount);
    let extra_name = extra.rsplit('/').next().unwrap_or_default().to_string();
    let plan = "plans/arm-user-assigned.yaml";
    // The plan says what keeps the group, by type and name.
    let p = s.idlab(&["plan", plan, "--destroy", "--adopt"]);
    assert!(
        p.stdout.contains(&format!(
            "= rg (resource_group): it holds resources this plan does not match: storage_account {extra_name}"
        )),
        "{}",
        p.stdout
    );
    let r = s.idlab(&["destroy", plan, "--adopt", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "kept rg (resource_group): it holds resources this plan does not match: storage_account {extra_name}"
        )),
        "{}",
        r.stderr
    );
    // Everything matched and made with it went; the group and the stranger stay.
    assert!(group_exists(&s, &made.group));
    assert_eq!(resources_in(&s, &made.group), vec![extra.to_ascii_lowercase()]);
    // With --force the group goes, the stranger with it, said beforehand.
    let p = s.idlab(&["plan", plan, "--destroy", "--adopt", "--force"]);
    assert!(p.stdout.contains(&format!("Deleted with their resource group (--force), though this plan does not match them: storage_account {extra_name}")), "{}", p.stdout);
    let r = s.idlab(&["destroy", plan, "--adopt", "--force", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!group_exists(&s, &made.group), "{}", r.stderr);
}

#[test]
fn a_vnet_another_interface_uses_stays_and_keeps_the_group() {
    let s = Served::start();
    let made = handmade::arm_user_assigned(&s, &Options::arm());
    // A second interface in the portal's subnet, made by hand for something else.
    let other = format!("{}/providers/Microsoft.Network/networkInterfaces/other-nic", made.group_id);
    let got = s.op(
        "PUT",
        &format!("{other}?api-version=2024-07-01"),
        Some(json!({"location": "eastus", "properties": {"ipConfigurations": [
            {"name": "ipconfig1", "properties": {"subnet": {"id": made.vm.subnet}, "privateIPAllocationMethod": "Dynamic"}}
        ]}})),
    );
    assert!(got.get("error").is_none(), "{got}");
    let p = s.idlab(&["plan", "plans/arm-user-assigned.yaml", "--destroy", "--adopt"]);
    assert!(p.stdout.contains(&format!("virtual network {}: kept: ", made.vm.vnet)), "{}", p.stdout);
    assert!(p.stdout.to_ascii_lowercase().contains("other-nic/ipconfigurations/ipconfig1 uses it"), "{}", p.stdout);
    let r = s.idlab(&["destroy", "plans/arm-user-assigned.yaml", "--adopt", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let mut left = resources_in(&s, &made.group);
    left.sort();
    let mut want = vec![made.vm.vnet.to_ascii_lowercase(), other.to_ascii_lowercase()];
    want.sort();
    assert_eq!(left, want);
}

#[test]
fn keyvault_made_by_hand_torn_down_with_purge_leaves_no_soft_deleted_vault() {
    let s = Served::start();
    let made = handmade::keyvault(&s, &Options::keyvault());
    let vault = made.vault.as_ref().expect("a vault");
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["destroy", "plans/keyvault.yaml", "--adopt", "--purge", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(puts_and_patches(&s), Vec::<String>::new());
    assert!(!group_exists(&s, &made.group), "{}", r.stderr);
    let deleted = deleted_vault(&s, &vault.name);
    assert!(deleted.get("error").is_some(), "the vault was not purged: {deleted}");
}
