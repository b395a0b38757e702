//! Tearing down what a person made by hand (issue 17): `destroy PLAN --adopt` deletes what
//! matches the plan and what Azure made with it, writes nothing, keeps a group that holds
//! something else (naming it) unless `--force`; without `--adopt` destroy names what matches
//! and points at `--adopt`; `plan --adopt` and `apply --adopt` count adoptions as adoptions.
//! Everything through the real binary against the local cloud, on resources made by
//! `common::handmade` the way the portal, Az PowerShell or the Azure CLI make them.

use serde_json::{Value, json};

use crate::common::Served;
use crate::common::handmade::{self, DataDisk, Options, Unrelated, group_exists, resources_in};

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
/// The line of `out` that starts with `head` (a summary line).
fn summary_line<'a>(out: &'a str, head: &str) -> &'a str {
    out.lines().find(|l| l.starts_with(head)).unwrap_or_else(|| panic!("no `{head}` line: {out}"))
}

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

/// A custom role made by hand (`New-AzRoleDefinition`: a random GUID) and an assignment of it
/// at a group, matching a plan's `role_definition` by its role name.
fn custom_role_by_hand(s: &Served, tmp: &std::path::Path) -> (String, String, String) {
    let h = handmade::Hand::new(s);
    let rg = handmade::group(&h, "role-rg", "eastus");
    let id1 = handmade::identity(&h, "role-rg", "ID1", "eastus");
    let role = format!(
        "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{}",
        h.subscription(),
        uuid::Uuid::new_v4()
    );
    let body = json!({ "properties": {
        "roleName": "SAS issuer (by hand)", "description": "made in the portal", "type": "CustomRole",
        "permissions": [{ "actions": ["Microsoft.Storage/storageAccounts/listServiceSas/action"], "notActions": [], "dataActions": [], "notDataActions": [] }],
        "assignableScopes": [rg.clone()],
    }});
    let (st, v) = h.call("PUT", &format!("{role}?api-version=2022-04-01"), Some(&body));
    assert!(st < 300, "{v}");
    let name = uuid::Uuid::new_v4();
    let ra = format!("{rg}/providers/Microsoft.Authorization/roleAssignments/{name}");
    let body = json!({ "properties": { "roleDefinitionId": role, "principalId": id1.principal_id, "principalType": "ServicePrincipal" } });
    let (st, v) = h.call("PUT", &format!("{ra}?api-version=2022-04-01"), Some(&body));
    assert!(st < 300, "{v}");
    let plan = tmp.join("role.yaml");
    std::fs::write(
        &plan,
        "name: role\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: role-rg\n  id1:\n    type: user_assigned_identity\n    name: ID1\n    resource_group: ${rg}\n  sas-issuer:\n    type: role_definition\n    role_name: SAS issuer (by hand)\n    description: made in the portal\n    actions: [Microsoft.Storage/storageAccounts/listServiceSas/action]\n    assignable_scopes: [\"${rg}\"]\n  grant:\n    type: role_assignment\n    scope: ${rg}\n    principal: ${id1}\n    role: ${sas-issuer}\n",
    )
    .expect("plan");
    (plan.to_str().expect("utf-8").to_string(), role, ra)
}

#[test]
fn a_custom_role_made_by_hand_is_found_by_its_role_name_adopted_only_with_adopt_and_torn_down() {
    let s = Served::start();
    let h = handmade::Hand::new(&s);
    let tmp = tempfile::tempdir().expect("tmp");
    let (plan, role, ra) = custom_role_by_hand(&s, tmp.path());
    let plan = plan.as_str();
    // Found under its own GUID; without --adopt a takeover the plan names but does not make,
    // and the assignment of it is found by its triple through it.
    let p = s.idlab(&["plan", plan, "--format", "json"]);
    assert_eq!(p.code, 0, "{}{}", p.stdout, p.stderr);
    let v: Value = serde_json::from_str(&p.stdout).expect("plan JSON");
    let action = |v: &Value, n: &str| v["actions"].as_array().and_then(|a| a.iter().find(|x| x["name"] == n)).cloned();
    let def = action(&v, "sas-issuer").expect("sas-issuer");
    assert_eq!(def["action"], "adopt", "{def}");
    assert!(def["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(&role)), "{def}");
    assert!(def["reason"].as_str().is_some_and(|r| r.contains("the same role name exists under another id")), "{def}");
    let grant = action(&v, "grant").expect("grant");
    assert!(grant["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(&ra)), "{grant}");
    let a = s.idlab(&["apply", plan, "--auto-approve"]);
    assert_eq!(a.code, 1, "{}{}", a.stdout, a.stderr);
    assert!(a.stderr.contains("rerun with --adopt"), "{}", a.stderr);
    // destroy --adopt: both hand-made objects go, by their own ids, and the group.
    let d = s.idlab(&["destroy", plan, "--adopt", "--auto-approve"]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    assert!(summary_line(&d.stderr, "Destroy complete: ").contains(" 4 deleted, 4 adopted,"), "{}", d.stderr);
    for id in [&role, &ra] {
        let (st, v) = h.call("GET", &format!("{id}?api-version=2022-04-01"), None);
        assert_eq!(st, 404, "{id}: {v}");
    }
    assert!(!group_exists(&s, "role-rg"));
}

#[test]
fn a_custom_role_made_by_hand_is_taken_over_with_apply_adopt_keeping_its_id() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let (plan, role, ra) = custom_role_by_hand(&s, tmp.path());
    let a = s.idlab(&["apply", &plan, "--adopt", "--auto-approve"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    assert!(a.stderr.contains("0 created, 0 updated, 0 replaced, 0 deleted, 4 adopted"), "{}", a.stderr);
    let got = status_of(&s, &role, "2022-04-01");
    assert_eq!(got["properties"]["description"], "idlab plan role: made in the portal", "{got}");
    let got = status_of(&s, &ra, "2022-04-01");
    assert_eq!(got["properties"]["description"], "idlab plan role", "{got}");
    s.replans_clean(&plan);
    let d = s.idlab(&["destroy", &plan, "--auto-approve"]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    assert!(status_of(&s, &role, "2022-04-01").get("error").is_some());
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
    // The summary counts what Azure made with them, by what it is.
    let with_them = |line: &str| {
        for part in ["1 OS disk", "1 network interface", "1 public IP", "1 network security group", "1 virtual network"]
        {
            assert!(line.contains(part), "{part}: {line}");
        }
    };
    with_them(summary_line(&p.stdout, "Plan: "));
    // The teardown: nothing left, the group gone, and not one PUT or PATCH sent.
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["destroy", plan, "--adopt", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(puts_and_patches(&s), Vec::<String>::new());
    assert!(r.stderr.contains("4 deleted, 4 adopted"), "{}", r.stderr);
    let done = summary_line(&r.stderr, "Destroy complete: ");
    with_them(done);
    assert_eq!(
        done.split("; with them, ").nth(1).map(|t| t.split(' ').next()),
        summary_line(&p.stdout, "Plan: ").split("; with them, ").nth(1).map(|t| t.split(' ').next()),
        "the run counts what the plan said goes with them: {done}"
    );
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
    // Every match counts as adopted, the access-policy entries that go with the vault too.
    assert!(summary_line(&r.stderr, "Destroy complete: ").contains(" 6 deleted, 6 adopted,"), "{}", r.stderr);
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
fn storage_made_by_hand_is_torn_down_blob_and_reader_before_the_account() {
    let s = Served::start();
    let made = handmade::storage_blob(&s, &Options::storage());
    let st = made.storage.as_ref().expect("storage");
    let plan = "plans/storage-blob.yaml";
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["destroy", plan, "--adopt", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(puts_and_patches(&s), Vec::<String>::new());
    let done = summary_line(&r.stderr, "Destroy complete: ");
    assert!(done.contains(" 6 deleted, 6 adopted,"), "{}", r.stderr);
    assert!(done.contains("; with them, 5 made by Azure (1 OS disk, 1 network interface"), "{done}");
    // The reader on the container goes before the container, the container before the account.
    let log = deletes(&s);
    let at = |id: &str| deleted_at(&log, id).first().copied().unwrap_or_else(|| panic!("{id} not deleted: {log:?}"));
    let container = at(&st.container);
    assert!(at(&made.assignments[0].id) < container, "{log:?}");
    assert!(container < at(&st.id), "{log:?}");
    assert!(!group_exists(&s, &made.group), "{}", r.stderr);
    let all = s.op("GET", &format!("/subscriptions/{}/resources?api-version=2021-04-01", s.subscription()), None);
    assert_eq!(all["value"], json!([]), "{all}");
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

/// A plan of a group and two Windows VMs (`network: auto`, whose default names the portal's
/// resources do not use), in `dir`.
fn two_vm_plan(dir: &std::path::Path) -> String {
    let vm = |logical: &str, name: &str| {
        format!(
            "  {logical}:\n    type: virtual_machine\n    name: {name}\n    resource_group: ${{rg}}\n    image: Win2019Datacenter\n    admin:\n      username: azureuser\n      password: {{ generate: 24 }}\n"
        )
    };
    let text = format!(
        "name: two-vms\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: myResourceGroupVM\n{}{}",
        vm("vm", "myVM"),
        vm("vm2", "myVM2")
    );
    let path = dir.join("two-vms.yaml");
    std::fs::write(&path, text).expect("plan");
    path.display().to_string()
}

/// The DELETEs in the local cloud's log since the last clear, in order: (path lower-cased,
/// status).
fn deletes(s: &Served) -> Vec<(String, u64)> {
    let log = s.op("GET", "/_idlab/requests", None);
    log["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["method"] == "DELETE" && e["path"].as_str().is_some_and(|p| p.starts_with("/subscriptions")))
        .map(|e| (e["path"].as_str().unwrap_or_default().to_ascii_lowercase(), e["status"].as_u64().unwrap_or(0)))
        .collect()
}

/// Where `id`'s DELETEs sit in `log`: every position (each must have succeeded).
fn deleted_at(log: &[(String, u64)], id: &str) -> Vec<usize> {
    let id = id.to_ascii_lowercase();
    let at: Vec<usize> = log.iter().enumerate().filter(|(_, (p, _))| *p == id).map(|(k, _)| k).collect();
    for &k in &at {
        assert!(log[k].1 < 300, "DELETE {id} answered {}: {log:?}", log[k].1);
    }
    at
}

/// Two portal VMs in group `myResourceGroupVM`, the second made into the first's subnet on
/// the first's security group, and the plan declaring both (written in the answered dir).
fn two_portal_vms(s: &Served) -> (handmade::VmMade, handmade::VmMade, String, tempfile::TempDir) {
    let h = handmade::Hand::new(s);
    let o = Options::arm();
    handmade::group(&h, &o.group, &o.location);
    let vm1 = handmade::portal_vm(&h, &o, "myVM", "Win2019Datacenter", false);
    let vm2 = handmade::portal_vm_in_subnet(&h, &o, "myVM2", &vm1.subnet, Some(&vm1.nsg));
    assert_eq!(vm2.vnet, vm1.vnet);
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = two_vm_plan(tmp.path());
    (vm1, vm2, plan, tmp)
}

/// Two portal VMs in one virtual network, the second's interface on the first's security
/// group: both torn down, the shared network and group deleted once each, after both
/// interfaces, none refused as still in use.
#[test]
fn two_vms_sharing_a_vnet_and_an_nsg_are_torn_down_the_shared_ones_once_last() {
    let s = Served::start();
    let (vm1, vm2, plan, _tmp) = two_portal_vms(&s);
    let group = Options::arm().group;
    // The plan names the shared network and group once, each to be deleted.
    let p = s.idlab(&["plan", &plan, "--destroy", "--adopt"]);
    assert_eq!(p.code, 0, "{}{}", p.stdout, p.stderr);
    let text = p.stdout.to_ascii_lowercase();
    for id in [&vm1.vnet, &vm1.nsg] {
        let line = format!(" {}: ", id.to_ascii_lowercase());
        assert_eq!(text.matches(&line).count(), 1, "{id}: {}", p.stdout);
        assert!(!text.contains(&format!("{line}kept")), "{id}: {}", p.stdout);
    }
    for id in [&vm1.nic, &vm2.nic, &vm1.public_ip, &vm2.public_ip, &vm1.os_disk, &vm2.os_disk] {
        assert!(text.contains(&format!(" {}: ", id.to_ascii_lowercase())), "{id}: {}", p.stdout);
    }
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["destroy", &plan, "--adopt", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("3 deleted, 3 adopted"), "{}", r.stderr);
    assert_eq!(puts_and_patches(&s), Vec::<String>::new());
    // Each leftover's delete shown as it happens.
    for name in
        ["myResourceGroupVM-vnet (virtual_network)", "myVM-nsg (network_security_group)", "myVM2-ip (public_ip)"]
    {
        assert_eq!(
            r.stderr.matches(&format!("] {name}: deleted, after what used it")).count(),
            1,
            "{name}: {}",
            r.stderr
        );
    }
    let log = deletes(&s);
    // Each shared one: one DELETE, after both interfaces' (and so both VMs').
    let nics: Vec<usize> = [&vm1.nic, &vm2.nic].iter().flat_map(|n| deleted_at(&log, n)).collect();
    assert_eq!(nics.len(), 2, "{log:?}");
    for shared in [&vm1.vnet, &vm1.nsg] {
        let at = deleted_at(&log, shared);
        assert_eq!(at.len(), 1, "{shared}: {log:?}");
        assert!(nics.iter().all(|&n| n < at[0]), "{shared} before an interface: {log:?}");
    }
    assert!(!group_exists(&s, &group), "{}", r.stderr);
    let all = s.op("GET", &format!("/subscriptions/{}/resources?api-version=2021-04-01", s.subscription()), None);
    assert_eq!(all["value"], json!([]), "{all}");
}

/// One of the two VMs (`--target`): the network and group the other still uses stay, each
/// named by what uses it; the next teardown takes them after the second VM.
#[test]
fn one_of_two_vms_torn_down_leaves_the_shared_ones_named_then_the_rest_goes() {
    let s = Served::start();
    let (vm1, vm2, plan, _tmp) = two_portal_vms(&s);
    let group = Options::arm().group;
    let p = s.idlab(&["plan", &plan, "--destroy", "--adopt", "--target", "vm"]);
    assert_eq!(p.code, 0, "{}{}", p.stdout, p.stderr);
    let text = p.stdout.to_ascii_lowercase();
    let (vnet, nsg, nic2) = (vm1.vnet.to_ascii_lowercase(), vm1.nsg.to_ascii_lowercase(), vm2.nic.to_ascii_lowercase());
    assert!(text.contains(&format!("{vnet}: kept: {nic2}/ipconfigurations/ipconfig1 uses it")), "{}", p.stdout);
    assert!(text.contains(&format!("{nsg}: kept: {nic2} uses it")), "{}", p.stdout);
    let r = s.idlab(&["destroy", &plan, "--adopt", "--target", "vm", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let mut want: Vec<String> = [&vm2.id, &vm2.nic, &vm2.public_ip, &vm2.os_disk, &vm1.vnet, &vm1.nsg]
        .iter()
        .map(|i| i.to_ascii_lowercase())
        .collect();
    want.sort();
    assert_eq!(resources_in(&s, &group), want, "{}", r.stderr);
    let r = s.idlab(&["destroy", &plan, "--adopt", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("2 deleted, 2 adopted"), "{}", r.stderr);
    assert!(!group_exists(&s, &group), "{}", r.stderr);
}

/// The portal's security group on the subnet as well as on the interface: it goes after the
/// virtual network whose subnet holds it; the interface's group after the interface.
#[test]
fn a_subnet_nsg_goes_after_its_vnet() {
    let s = Served::start();
    let h = handmade::Hand::new(&s);
    let o = Options::arm();
    handmade::group(&h, &o.group, &o.location);
    let id1 = handmade::identity(&h, &o.group, "ID1", &o.location);
    let vm = handmade::portal_vm(&h, &o, "myVM", "Win2019Datacenter", false);
    handmade::assign_user_identity(&h, &vm.id, &id1.id);
    let group_id = format!("/subscriptions/{}/resourceGroups/{}", s.subscription(), o.group);
    handmade::role_assignment(&h, &group_id, &id1.principal_id, "Reader");
    let subnet_nsg = handmade::subnet_nsg(&h, &o, &vm.subnet, "default-nsg");
    let plan = "plans/arm-user-assigned.yaml";
    let p = s.idlab(&["plan", plan, "--destroy", "--adopt"]);
    assert_eq!(p.code, 0, "{}{}", p.stdout, p.stderr);
    let text = p.stdout.to_ascii_lowercase();
    let line = format!("- network security group {}: ", subnet_nsg.to_ascii_lowercase());
    assert!(text.contains(&line), "{line}: {}", p.stdout);
    assert!(!text.contains(&format!("{line}kept")), "{}", p.stdout);
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["destroy", plan, "--adopt", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(puts_and_patches(&s), Vec::<String>::new());
    let log = deletes(&s);
    let (vnet, on_subnet) = (deleted_at(&log, &vm.vnet), deleted_at(&log, &subnet_nsg));
    let (nic, on_nic) = (deleted_at(&log, &vm.nic), deleted_at(&log, &vm.nsg));
    assert_eq!((vnet.len(), on_subnet.len(), nic.len(), on_nic.len()), (1, 1, 1, 1), "{log:?}");
    assert!(vnet[0] < on_subnet[0] && nic[0] < on_nic[0] && nic[0] < vnet[0], "{log:?}");
    assert!(!group_exists(&s, &o.group), "{}", r.stderr);
}

/// A subnet security group another network's subnet also uses stays, named by that subnet,
/// and keeps the group, which names both.
#[test]
fn a_subnet_nsg_something_else_uses_stays_and_keeps_the_group() {
    let s = Served::start();
    let made = handmade::arm_user_assigned(&s, &Options::arm());
    let h = handmade::Hand::new(&s);
    let o = Options::arm();
    let subnet_nsg = handmade::subnet_nsg(&h, &o, &made.vm.subnet, "shared-nsg");
    // Another network, made by hand for something else, with the same group on its subnet.
    let other = format!("{}/providers/Microsoft.Network/virtualNetworks/other-vnet", made.group_id);
    let got = s.op(
        "PUT",
        &format!("{other}?api-version=2024-07-01"),
        Some(json!({"location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]},
            "subnets": [{"name": "apps", "properties": {"addressPrefix": "10.1.0.0/24", "networkSecurityGroup": {"id": subnet_nsg}}}]}})),
    );
    assert!(got.get("error").is_none(), "{got}");
    let plan = "plans/arm-user-assigned.yaml";
    let p = s.idlab(&["plan", plan, "--destroy", "--adopt"]);
    assert_eq!(p.code, 0, "{}{}", p.stdout, p.stderr);
    let text = p.stdout.to_ascii_lowercase();
    assert!(
        text.contains(&format!("network security group {}: kept: ", subnet_nsg.to_ascii_lowercase())),
        "{}",
        p.stdout
    );
    assert!(text.contains("other-vnet/subnets/apps uses it"), "{}", p.stdout);
    assert!(
        p.stdout.contains("= rg (resource_group): it holds resources this plan does not match: ")
            && p.stdout.contains("virtual_network other-vnet")
            && p.stdout.contains("network_security_group shared-nsg"),
        "{}",
        p.stdout
    );
    let r = s.idlab(&["destroy", plan, "--adopt", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let mut left = resources_in(&s, &made.group);
    left.sort();
    let mut want = vec![other.to_ascii_lowercase(), subnet_nsg.to_ascii_lowercase()];
    want.sort();
    assert_eq!(left, want, "{}", r.stderr);
}

/// Data disks a person added to the portal VM, one created with it ("Create and attach a new
/// disk") and one made first and attached: both go after the VM, listed in the plan.
#[test]
fn data_disks_added_by_hand_go_with_the_vm() {
    let s = Served::start();
    let made = handmade::arm_user_assigned(&s, &Options::arm());
    let h = handmade::Hand::new(&s);
    let new = handmade::add_data_disk(&h, &made.vm.id, "myVM_DataDisk_0", 0, DataDisk::Empty);
    let attached = handmade::add_data_disk(&h, &made.vm.id, "mydisk", 1, DataDisk::Attach);
    let plan = "plans/arm-user-assigned.yaml";
    let p = s.idlab(&["plan", plan, "--destroy", "--adopt"]);
    assert_eq!(p.code, 0, "{}{}", p.stdout, p.stderr);
    let text = p.stdout.to_ascii_lowercase();
    for id in [&new, &attached] {
        let line = format!("- data disk {}: deleting `vm` would leave it", id.to_ascii_lowercase());
        assert!(text.contains(&line), "{line}: {}", p.stdout);
    }
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["destroy", plan, "--adopt", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(puts_and_patches(&s), Vec::<String>::new());
    let log = deletes(&s);
    let vm = deleted_at(&log, &made.vm.id);
    for id in [&new, &attached] {
        let at = deleted_at(&log, id);
        assert!(at.len() == 1 && vm.len() == 1 && vm[0] < at[0], "{id}: {log:?}");
    }
    assert!(!group_exists(&s, &made.group), "{}", r.stderr);
}

/// `idlab ARGS` running in the background, its output in files, for a Ctrl-C.
struct Background {
    child: std::process::Child,
    err: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Background {
    fn start(s: &Served, args: &[&str]) -> Background {
        let dir = tempfile::tempdir().expect("tmp");
        let err = dir.path().join("err");
        let child = s
            .command(args, &[])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::from(std::fs::File::create(&err).expect("err")))
            .spawn()
            .expect("idlab starts");
        Background { child, err, _dir: dir }
    }

    /// Poll until `cond` holds; `false` when the process exits first (or after two minutes).
    fn until(&mut self, cond: impl Fn() -> bool) -> bool {
        for _ in 0..24_000 {
            if self.child.try_wait().expect("try_wait").is_some() {
                return false;
            }
            if cond() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        false
    }

    /// Ctrl-C, then the exit code and stderr.
    fn interrupt(mut self) -> (i32, String) {
        let sent = std::process::Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -INT");
        for _ in 0..1200 {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return (st.code().unwrap_or(-1), std::fs::read_to_string(&self.err).unwrap_or_default());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("no exit after Ctrl-C: {}", std::fs::read_to_string(&self.err).unwrap_or_default());
    }
}

/// Ctrl-C while the hand-made VM's delete is under way (its operation takes three seconds):
/// that wait is not ended, since once the VM is gone nothing would find what it leaves; its
/// disk and network are deleted, nothing new is started (exit 130). The re-plan shows what is
/// left, and the re-run finishes the job.
#[test]
fn ctrl_c_during_a_teardown_finishes_what_the_vm_leaves_and_the_rerun_the_rest() {
    let s = Served::with_faults(Some(
        "retry_after_s: 1\nper_type:\n  Microsoft.Compute/virtualMachines: { lro_ms: 3000 }\n",
    ));
    let made = handmade::arm_user_assigned(&s, &Options::arm());
    let identity = made.identity.as_ref().expect("ID1");
    let plan = "plans/arm-user-assigned.yaml";
    s.op("DELETE", "/_idlab/requests", None);
    let mut run = Background::start(&s, &["destroy", plan, "--adopt", "--auto-approve", "--no-progress"]);
    let vm = made.vm.id.to_ascii_lowercase();
    let deleting = run.until(|| deletes(&s).iter().any(|(p, _)| *p == vm));
    assert!(deleting, "the VM's DELETE was not sent");
    let (code, stderr) = run.interrupt();
    assert_eq!(code, 130, "{stderr}");
    // Counted with them: what went with the VM; nothing of the group's or the identity's.
    let done = summary_line(&stderr, "Destroy complete: ");
    assert!(done.contains("1 OS disk") && done.contains("1 virtual network"), "{done}");
    assert!(stderr.contains("vm: adopted and deleted"), "{stderr}");
    assert!(stderr.contains("myResourceGroupVM-vnet (virtual_network): deleted, after what used it"), "{stderr}");
    assert!(stderr.contains("id1 (user_assigned_identity): interrupted before it started"), "{stderr}");
    assert!(stderr.contains("rg (resource_group): interrupted before it started"), "{stderr}");
    // What the VM left went; what the plan declares and the walk had not started stays.
    let log = deletes(&s);
    for id in [&made.vm.nic, &made.vm.os_disk, &made.vm.public_ip, &made.vm.nsg, &made.vm.vnet] {
        assert_eq!(deleted_at(&log, id).len(), 1, "{id}: {log:?}\n{stderr}");
    }
    assert_eq!(resources_in(&s, &made.group), vec![identity.id.to_ascii_lowercase()], "{stderr}");
    // The re-plan: the identity and the group, nothing keeping the group.
    let p = s.idlab(&["plan", plan, "--destroy", "--adopt"]);
    assert_eq!(p.code, 0, "{}{}", p.stdout, p.stderr);
    assert!(p.stdout.contains("2 to adopt and delete"), "{}", p.stdout);
    assert!(!p.stdout.contains("Kept:"), "{}", p.stdout);
    // The re-run finishes the job.
    let r = s.idlab(&["destroy", plan, "--adopt", "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!group_exists(&s, &made.group), "{}", r.stderr);
}

/// The portal's "Delete with VM" boxes checked (the OS disk's, the interface's and the public
/// IP's `deleteOption: Delete`), and `az vm create`'s names and shapes: each torn down to
/// nothing, every DELETE answered as a success (what went with the VM is gone already).
#[test]
fn portal_delete_with_vm_and_az_cli_vms_are_torn_down_to_nothing() {
    for o in [
        Options { delete_option: Some("Delete"), ..Options::arm() },
        Options { naming: handmade::Naming::AzCli, ..Options::arm() },
    ] {
        let s = Served::start();
        let made = handmade::arm_user_assigned(&s, &o);
        s.op("DELETE", "/_idlab/requests", None);
        let r = s.idlab(&["destroy", "plans/arm-user-assigned.yaml", "--adopt", "--auto-approve"]);
        assert_eq!(r.code, 0, "{o:?}: {}{}", r.stdout, r.stderr);
        assert_eq!(puts_and_patches(&s), Vec::<String>::new());
        let log = deletes(&s);
        for id in [&made.vm.id, &made.vm.vnet, &made.vm.nsg] {
            assert_eq!(deleted_at(&log, id).len(), 1, "{o:?} {id}: {log:?}");
        }
        assert!(!group_exists(&s, &made.group), "{o:?}: {}", r.stderr);
        let all = s.op("GET", &format!("/subscriptions/{}/resources?api-version=2021-04-01", s.subscription()), None);
        assert_eq!(all["value"], json!([]), "{o:?}: {all}");
    }
}
