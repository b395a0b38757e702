//! plan / apply / verify / destroy end to end: the real binary against a local cloud served
//! by `idlab local serve` (so every command attaches to the same server and its request log
//! sees everything).

use std::process::{Command, Stdio};

use idlab::local::attach;
use serde_json::{Value, json};

use crate::common::{
    Served, assert_name_taken, assert_not_leaked, changed_fields, everything_seen, folder_drift_then_destroy_and_again,
    root, secret_runs,
};

fn tutorial(plan: &str, resources: usize) {
    let s = Served::start();
    let plan_path = root().join("plans").join(plan).display().to_string();
    // plan: creates, with values known only after apply.
    let r = s.idlab(&["plan", &plan_path, "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.contains(&format!("Plan: {resources} to create, 0 to update")), "{}", r.stdout);
    assert!(r.stdout.contains("(known after apply)"), "{}", r.stdout);
    // apply creates them.
    let r = s.idlab(&["apply", &plan_path, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("Apply complete: {resources} created")), "{}", r.stderr);
    assert!(!r.stderr.contains("adminPassword\""), "{}", r.stderr);
    // verify passes.
    let r = s.idlab(&["verify", &plan_path]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Verify: 2 passed, 0 failed"), "{}", r.stdout);
    // plan again: no changes, one GET per resource plus the four ownership listings (tagged groups,
    // tagged resources, custom roles, role assignments), no write.
    s.replans_clean(&plan_path);
    let log = s.arm_log();
    assert!(log.iter().all(|(_, _, w)| !w), "writes during plan: {log:?}");
    assert_eq!(log.len(), resources + 4, "{log:?}");
    // A second apply writes nothing.
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["apply", &plan_path, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(s.arm_log().iter().all(|(_, _, w)| !w));
    // A foreign resource in the group survives destroy, and so does the group.
    let rg = r.stderr.lines().find_map(|l| {
        l.split_whitespace()
            .find(|w| w.starts_with("/subscriptions/") && w.matches('/').count() == 4)
            .map(str::to_string)
    });
    let rg = rg.unwrap_or_else(|| {
        let v =
            s.op("GET", &format!("/subscriptions/{}/resourcegroups?api-version=2024-11-01", s.subscription()), None);
        v["value"][0]["id"].as_str().unwrap_or_default().to_string()
    });
    let foreign =
        format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/not-ours?api-version=2024-11-30");
    assert_eq!(s.op("PUT", &foreign, Some(json!({"location": "eastus"})))["name"], "not-ours");
    let r = s.idlab(&["destroy", &plan_path, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("it holds resources this plan does not match: user_assigned_identity not-ours"),
        "{}",
        r.stderr
    );
    assert_eq!(s.op("GET", &foreign, None)["name"], "not-ours");
    // Everything the plan owned is gone: the next plan creates all but the kept group.
    let r = s.idlab(&["plan", &plan_path, "--detailed-exitcode"]);
    assert!(r.stdout.contains(&format!("Plan: {} to create", resources - 1)), "{}", r.stdout);
    // A second destroy is a no-op.
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["destroy", &plan_path, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(s.arm_log().iter().all(|(_, _, w)| !w), "{:?}", s.arm_log());
}

#[test]
fn arm_user_assigned_tutorial_end_to_end() {
    tutorial("arm-user-assigned.yaml", 8);
}

#[test]
fn arm_system_assigned_tutorial_end_to_end() {
    tutorial("arm-system-assigned.yaml", 7);
}

#[test]
fn apply_without_a_terminal_needs_auto_approve() {
    let s = Served::start();
    let plan_path = root().join("plans/arm-system-assigned.yaml").display().to_string();
    let r = s.idlab(&["apply", &plan_path]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("pass --auto-approve"), "{}", r.stderr);
    assert!(s.arm_log().iter().all(|(_, _, w)| !w));
}

#[test]
fn a_reader_only_operator_gets_a_clear_authorization_error_and_nothing_is_left_half_done() {
    let s = Served::start();
    let sub = format!("/subscriptions/{}", s.subscription());
    let p = s.op(
        "POST",
        "/_idlab/principals",
        Some(json!({"name": "reader-only", "roles": [{"role": "Reader", "scope": sub}]})),
    );
    let (client, secret) =
        (p["client_id"].as_str().expect("client").to_string(), p["secret"].as_str().expect("secret").to_string());
    let plan_path = root().join("plans/arm-user-assigned.yaml").display().to_string();
    let r = s.idlab_env(
        &["apply", &plan_path, "--auto-approve"],
        &[("AZURE_CLIENT_ID", &client), ("AZURE_CLIENT_SECRET", &secret)],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("AuthorizationFailed"), "{}", r.stderr);
    assert!(r.stderr.contains("Microsoft.Resources/subscriptions/resourceGroups/write"), "{}", r.stderr);
    assert!(r.stderr.contains("resourceGroups/myResourceGroupVM"), "{}", r.stderr);
    assert!(r.stderr.contains("skipped"), "{}", r.stderr);
    // Nothing exists without its tag (here: nothing at all was created).
    let all = s.op("GET", &format!("{sub}/resources?api-version=2021-04-01"), None);
    assert_eq!(all["value"].as_array().map(Vec::len), Some(0), "{all}");
}

/// An identity granted one resource group (as a pipeline's often is) cannot list role
/// assignments at subscription scope: the plan still runs, and says what it
/// could not look for instead of failing on the listing.
#[test]
fn an_operator_scoped_to_one_group_applies_and_is_told_what_was_not_looked_for() {
    let s = Served::start();
    let sub = format!("/subscriptions/{}", s.subscription());
    let rg = format!("{sub}/resourceGroups/team-rg");
    let made = s.op("PUT", &format!("{rg}?api-version=2024-11-01"), Some(json!({"location": "eastus"})));
    assert!(made["id"].is_string(), "{made}");
    let p = s.op(
        "POST",
        "/_idlab/principals",
        Some(json!({"name": "group-only", "roles": [{"role": "Contributor", "scope": rg}]})),
    );
    let (client, secret) =
        (p["client_id"].as_str().expect("client").to_string(), p["secret"].as_str().expect("secret").to_string());
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = tmp.path().join("team.yaml");
    std::fs::write(
        &plan,
        "name: team-app\nlocation: eastus\nresources:\n  id:\n    type: user_assigned_identity\n    name: team-id\n    resource_group: team-rg\n",
    )
    .expect("plan");
    let plan = plan.display().to_string();
    let env = [("AZURE_CLIENT_ID", client.as_str()), ("AZURE_CLIENT_SECRET", secret.as_str())];
    let a = s.idlab_env(&["apply", &plan, "--auto-approve"], &env);
    assert_eq!(a.code, 0, "{}", a.render());
    assert!(a.render().contains("Not looked for (no permission to list them):"), "{}", a.render());
    assert!(a.render().contains("? role assignments this plan made and no longer declares"), "{}", a.render());
    let id = s.op(
        "GET",
        &format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/team-id?api-version=2024-11-30"),
        None,
    );
    assert_eq!(id["tags"]["idlab-plan"], "team-app", "{id}");
    let r = s.idlab_env(&["plan", &plan, "--detailed-exitcode", "--format", "json"], &env);
    assert_eq!(r.code, 0, "{}", r.render());
    let j: serde_json::Value = serde_json::from_str(&r.stdout).expect("json plan");
    // Role definitions are readable by any caller; role assignments at subscription scope are not.
    assert_eq!(j["not_looked_for"].as_array().map(Vec::len), Some(1), "{j}");
    // The operator, who may list them, is told nothing of the kind.
    let r = s.idlab(&["plan", &plan, "--format", "json"]);
    let j: serde_json::Value = serde_json::from_str(&r.stdout).expect("json plan");
    assert!(j.get("not_looked_for").is_none(), "{j}");
}

#[test]
fn secrets_never_appear_in_output_logs_or_state() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let text = std::fs::read_to_string(root().join("plans/arm-system-assigned.yaml"))
        .expect("plan")
        .replace("password: { generate: 24 }", "password: { env: IDLAB_CANARY }");
    let plan_path = tmp.path().join("canary.yaml");
    std::fs::write(&plan_path, text).expect("write");
    let p = plan_path.display().to_string();
    let canary = "Canary-Secret-9f7Q!x/+=";
    let env = [("IDLAB_CANARY", canary), ("IDLAB_LOG", "debug")];
    let mut seen = secret_runs(&s, &p, &tmp.path().join("saved.json"), &env);
    seen.push_str(&everything_seen(&s, &["destroy", p.as_str(), "--auto-approve", "--format", "json"], &env));
    assert_not_leaked(&seen, canary);
    assert!(seen.contains("\"event\":\"finished\""), "the NDJSON stream was not produced");
    assert!(seen.contains("DEBUG"), "debug logging was not on");
    assert!(std::fs::read_to_string(&s.log).unwrap_or_default().contains("DEBUG"), "the server's debug log was read");
}

#[test]
fn apply_converges_through_throttling_errors_and_slow_operations() {
    let faults = "seed: 7\ntime_scale: 0.01\nthrottle_rate: 0.3\nerror_500_rate: 0.05\nlro_ms: 3000\npropagation_ms: 2000\nreplication_ms: 5000\n";
    let s = Served::with_faults(Some(faults));
    let plan_path = root().join("plans/arm-user-assigned.yaml").display().to_string();
    let env = [("IDLAB_RETRY_BASE_MS", "5")];
    let r = s.idlab_env(&["apply", &plan_path, "--auto-approve"], &env);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Apply complete: 8 created"), "{}", r.stderr);
    let v = s.idlab_env(&["verify", &plan_path], &env);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    let log = s.op("GET", "/_idlab/requests", None);
    let statuses: Vec<u64> =
        log["value"].as_array().map(|a| a.iter().filter_map(|e| e["status"].as_u64()).collect()).unwrap_or_default();
    assert!(statuses.contains(&429), "no throttling was injected");
    let again = s.idlab_env(&["plan", &plan_path, "--detailed-exitcode"], &env);
    assert_eq!(again.code, 0, "{}", again.stdout);
}

#[test]
fn drift_shows_exactly_the_changed_fields() {
    let s = Served::start();
    let plan_path = root().join("plans/arm-user-assigned.yaml").display().to_string();
    assert_eq!(s.idlab(&["apply", &plan_path, "--auto-approve"]).code, 0);
    let sub = s.subscription();
    let rg = format!("/subscriptions/{sub}/resourceGroups/myResourceGroupVM");
    // A tag changed out of band on the group: plan shows `tags`, and only that.
    let mut tags = s.op("GET", &format!("{rg}?api-version=2024-11-01"), None)["tags"].clone();
    tags["owner"] = json!("someone");
    s.op("PATCH", &format!("{rg}?api-version=2024-11-01"), Some(json!({"tags": tags})));
    let r = s.idlab(&["plan", &plan_path, "--format", "json", "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let p: Value = serde_json::from_str(&r.stdout).expect("plan JSON");
    let changed = changed_fields(&p);
    assert_eq!(changed, vec![("rg".to_string(), vec!["tags".to_string()])]);
    assert_eq!(s.idlab(&["apply", &plan_path, "--auto-approve"]).code, 0);
    // The VM size changed out of band: plan shows the size.
    let vm = format!("{rg}/providers/Microsoft.Compute/virtualMachines/myVM?api-version=2025-04-01");
    s.op("PATCH", &vm, Some(json!({"properties": {"hardwareProfile": {"vmSize": "Standard_D4s_v5"}}})));
    let r = s.idlab(&["plan", &plan_path]);
    assert!(
        r.stdout.contains("~ properties/hardwareProfile/vmSize: \"Standard_D4s_v5\" → \"Standard_B2s\""),
        "{}",
        r.stdout
    );
    assert_eq!(s.idlab(&["apply", &plan_path, "--auto-approve"]).code, 0);
    // An identity added to the VM out of band shows as a change of its identity set, and
    // apply removes only that one.
    let extra = s.op(
        "PUT",
        &format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/extra?api-version=2024-11-30"),
        Some(json!({"location": "eastus"})),
    );
    let extra_id = extra["id"].as_str().expect("id").to_string();
    let id1 = format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ID1");
    s.op(
        "PATCH",
        &vm,
        Some(json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {extra_id.clone(): {}}}})),
    );
    let r = s.idlab(&["plan", &plan_path]);
    assert!(r.stdout.contains("identity/userAssignedIdentities"), "{}", r.stdout);
    assert_eq!(s.idlab(&["apply", &plan_path, "--auto-approve"]).code, 0);
    let after = s.op("GET", &vm, None);
    let keys: Vec<String> = after["identity"]["userAssignedIdentities"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].eq_ignore_ascii_case(&id1), "{keys:?}");
    // A role assignment added out of band on the owned group shows as drift.
    let ra = format!(
        "{rg}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01",
        uuid::Uuid::new_v4()
    );
    let principal = extra["properties"]["principalId"].as_str().expect("principal");
    s.op("PUT", &ra, Some(json!({"properties": {"roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c"), "principalId": principal, "principalType": "ServicePrincipal"}})));
    let r = s.idlab(&["plan", &plan_path]);
    assert!(
        r.stdout.contains(&format!("Contributor for principal {principal} at {rg}, added outside this plan")),
        "{}",
        r.stdout
    );
}

#[test]
fn a_saved_plan_is_refused_when_azure_changed() {
    let s = Served::start();
    let plan_path = root().join("plans/arm-system-assigned.yaml").display().to_string();
    let tmp = tempfile::tempdir().expect("tmp");
    let saved = tmp.path().join("plan.json").display().to_string();
    assert_eq!(s.idlab(&["plan", &plan_path, "--out", &saved]).code, 0);
    assert!(std::fs::read_to_string(&saved).expect("saved").contains("\"kind\": \"idlab-saved-plan\""));
    // Applying the saved plan as is works.
    let r = s.idlab(&["apply", &saved]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Save again, change a tag out of band, and the saved plan is refused with nothing written.
    assert_eq!(s.idlab(&["plan", &plan_path, "--out", &saved]).code, 0);
    let rg = format!("/subscriptions/{}/resourceGroups/myResourceGroup?api-version=2024-11-01", s.subscription());
    s.op("PATCH", &rg, Some(json!({"tags": {"idlab-plan": "arm-system-assigned", "x": "y"}})));
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["apply", &saved]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("Azure changed since the plan was saved"), "{}", r.stderr);
    assert!(s.arm_log().iter().all(|(_, _, w)| !w), "{:?}", s.arm_log());
}

const BRANCHES: &str = "name: branches\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: rg-ok\n  good:\n    type: user_assigned_identity\n    name: good-id\n    resource_group: ${rg}\n  good-reader:\n    type: role_assignment\n    scope: ${rg}\n    principal: ${good}\n    role: Reader\n  bad:\n    type: user_assigned_identity\n    name: bad-id\n    resource_group: group-that-does-not-exist\n  bad-reader:\n    type: role_assignment\n    scope: ${rg}\n    principal: ${bad}\n    role: Reader\n";

#[test]
fn a_failed_branch_skips_its_dependents_and_the_others_finish() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = tmp.path().join("branches.yaml");
    std::fs::write(&plan, BRANCHES).expect("write");
    let p = plan.display().to_string();
    let r = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("FAILED bad (user_assigned_identity)"), "{}", r.stderr);
    assert!(r.stderr.contains("ResourceGroupNotFound"), "{}", r.stderr);
    assert!(r.stderr.contains("skipped bad-reader (role_assignment): depends on `bad`"), "{}", r.stderr);
    assert!(r.stderr.contains("Apply complete: 3 created"), "{}", r.stderr);
    assert!(r.stderr.contains("1 failed, 1 skipped"), "{}", r.stderr);
}

#[test]
fn an_apply_killed_after_each_write_converges_on_the_next_run() {
    // The smallest tutorial plan: kill apply right after its Nth acknowledged write, for every
    // N, then apply again: it converges with no duplicate role assignment and nothing untagged.
    let plan_path = root().join("plans/arm-system-assigned.yaml").display().to_string();
    let total_writes = 7;
    for n in 1..=total_writes {
        let s = Served::with_faults(Some("lro_ms: 400\n"));
        let state = s.state.display().to_string();
        let mut child = Command::new(env!("CARGO_BIN_EXE_idlab"))
            .args(["apply", &plan_path, "--auto-approve", "--parallelism", "1", "--local", "--state", &state])
            .current_dir(root())
            .env_clear()
            .env("HOME", std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("apply");
        let start = std::time::Instant::now();
        loop {
            let writes = s.arm_log().iter().filter(|(_, _, w)| *w).count();
            if writes >= n || start.elapsed() > std::time::Duration::from_secs(20) {
                let _ = child.kill();
                break;
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let _ = child.wait();
        let r = s.idlab(&["apply", &plan_path, "--auto-approve"]);
        assert_eq!(r.code, 0, "after write {n}: {}", r.stderr);
        let sub = s.subscription();
        let ras = s.op(
            "GET",
            &format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"),
            None,
        );
        let ours: Vec<&Value> = ras["value"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|x| {
                        x["properties"]["description"]
                            .as_str()
                            .is_some_and(|d| d.starts_with("idlab plan arm-system-assigned"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(ours.len(), 1, "after write {n}: {ours:?}");
        let all = s.op("GET", &format!("/subscriptions/{sub}/resources?api-version=2021-04-01"), None);
        // (Azure makes a VM's OS disk untagged, as the VM's own child.)
        let made_by_azure = |r: &Value| r["id"].as_str().is_some_and(|i| i.contains("/disks/myVM_OsDisk_1_"));
        for r in all["value"].as_array().cloned().unwrap_or_default().iter().filter(|r| !made_by_azure(r)) {
            assert_eq!(r["tags"]["idlab-plan"], "arm-system-assigned", "after write {n}: untagged {r}");
        }
        let again = s.idlab(&["plan", &plan_path, "--detailed-exitcode"]);
        assert_eq!(again.code, 0, "after write {n}: {}", again.stdout);
    }
}

#[test]
fn target_limits_plan_and_apply_to_a_resource_and_what_it_needs() {
    let s = Served::start();
    let plan_path = root().join("plans/arm-user-assigned.yaml").display().to_string();
    let r = s.idlab(&["plan", &plan_path, "--target", "id1", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let p: Value = serde_json::from_str(&r.stdout).expect("json");
    let names: Vec<&str> =
        p["actions"].as_array().map(|a| a.iter().filter_map(|x| x["name"].as_str()).collect()).unwrap_or_default();
    assert_eq!(names, vec!["rg", "id1"]);
    let r = s.idlab(&["apply", &plan_path, "--target", "id1", "--auto-approve"]);
    assert!(r.stderr.contains("Apply complete: 2 created"), "{}", r.stderr);
    let r = s.idlab(&["plan", &plan_path, "--target", "idl"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("did you mean `id1`?"), "{}", r.stderr);
    // Destroy with a target takes what depends on it too, and nothing else.
    assert_eq!(s.idlab(&["apply", &plan_path, "--auto-approve"]).code, 0);
    let r = s.idlab(&["destroy", &plan_path, "--target", "id1", "--auto-approve"]);
    assert!(r.stderr.contains("Destroy complete: 0 created, 0 updated, 0 replaced, 3 deleted"), "{}", r.stderr);
}

#[test]
fn every_managed_field_changed_out_of_band_shows_as_exactly_that_field() {
    let s = Served::start();
    let plan_path = root().join("plans/arm-user-assigned.yaml").display().to_string();
    assert_eq!(s.idlab(&["apply", &plan_path, "--auto-approve"]).code, 0);
    let rg = format!("/subscriptions/{}/resourceGroups/myResourceGroupVM", s.subscription());
    let net = format!("{rg}/providers/Microsoft.Network");
    let tags = json!({"tags": {"idlab-plan": "arm-user-assigned", "changed": "out-of-band"}});
    // (logical name, path and api-version, PATCH body, the paths plan must show)
    let cases: Vec<(&str, String, Value, &[&str])> = vec![
        ("rg", format!("{rg}?api-version=2024-11-01"), tags.clone(), &["tags"]),
        (
            "id1",
            format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ID1?api-version=2024-11-30"),
            tags.clone(),
            &["tags"],
        ),
        (
            "vm:vnet",
            format!("{net}/virtualNetworks/myVnet?api-version=2024-07-01"),
            json!({"properties": {"addressSpace": {"addressPrefixes": ["10.9.0.0/16"]}, "subnets": [{"name": "mySubnet", "properties": {"addressPrefix": "10.9.1.0/24"}}]}}),
            &["properties/addressSpace/addressPrefixes/0", "properties/subnets/0/properties/addressPrefix"],
        ),
        (
            "vm:nsg",
            format!("{net}/networkSecurityGroups/myNetworkSecurityGroup?api-version=2024-07-01"),
            json!({"properties": {"securityRules": [{"name": "myVM3389", "properties": {"priority": 1000, "direction": "Inbound", "access": "Allow", "protocol": "Tcp", "sourceAddressPrefix": "*", "sourcePortRange": "*", "destinationAddressPrefix": "*", "destinationPortRange": "22"}}]}}),
            &["properties/securityRules/0/properties/destinationPortRange"],
        ),
        (
            "vm:pip",
            format!("{net}/publicIPAddresses/myPublicIpAddress?api-version=2024-07-01"),
            tags.clone(),
            &["tags"],
        ),
        ("vm:nic", format!("{net}/networkInterfaces/myVM?api-version=2024-07-01"), tags.clone(), &["tags"]),
        (
            "vm",
            format!("{rg}/providers/Microsoft.Compute/virtualMachines/myVM?api-version=2025-04-01"),
            tags.clone(),
            &["tags"],
        ),
        (
            "vm",
            format!("{rg}/providers/Microsoft.Compute/virtualMachines/myVM?api-version=2025-04-01"),
            json!({"properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"}}}),
            &["properties/hardwareProfile/vmSize"],
        ),
    ];
    for (name, path, patch, want) in cases {
        s.op("PATCH", &path, Some(patch.clone()));
        let r = s.idlab(&["plan", &plan_path, "--format", "json"]);
        let p: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{name}: {e}: {}", r.stderr));
        let changed = changed_fields(&p);
        assert_eq!(
            changed,
            vec![(name.to_string(), want.iter().map(|w| w.to_string()).collect::<Vec<_>>())],
            "after changing {want:?} of {name}"
        );
        let r = s.idlab(&["apply", &plan_path, "--auto-approve"]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let again = s.idlab(&["plan", &plan_path, "--detailed-exitcode"]);
        assert_eq!(again.code, 0, "{name} did not converge: {}", again.stdout);
    }
}

#[test]
fn an_existing_assignment_of_the_same_triple_is_adopted() {
    let s = Served::start();
    let plan_path = root().join("plans/arm-user-assigned.yaml").display().to_string();
    assert_eq!(s.idlab(&["apply", &plan_path, "--target", "id1", "--auto-approve"]).code, 0);
    let sub = s.subscription();
    let rg = format!("/subscriptions/{sub}/resourceGroups/myResourceGroupVM");
    let id1 = s.op(
        "GET",
        &format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ID1?api-version=2024-11-30"),
        None,
    );
    let principal = id1["properties"]["principalId"].as_str().expect("principal").to_string();
    // Someone granted the same role by hand, under another name.
    let manual = format!(
        "{rg}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01",
        uuid::Uuid::new_v4()
    );
    s.op("PUT", &manual, Some(json!({"properties": {"roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"), "principalId": principal, "principalType": "ServicePrincipal"}})));
    let r = s.idlab(&["apply", &plan_path, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("id1-reader: adopted"), "{}", r.stderr);
    let list = s.op("GET", &format!("{rg}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=principalId%20eq%20'{principal}'"), None);
    assert_eq!(list["value"].as_array().map(Vec::len), Some(1), "a duplicate was created: {list}");
}

#[test]
fn a_saved_destroy_plan_and_the_cloud_endpoint_flag() {
    let s = Served::start();
    let plan_path = root().join("plans/arm-system-assigned.yaml").display().to_string();
    assert_eq!(s.idlab(&["apply", &plan_path, "--auto-approve"]).code, 0);
    let tmp = tempfile::tempdir().expect("tmp");
    let saved = tmp.path().join("destroy.json").display().to_string();
    assert_eq!(s.idlab(&["plan", &plan_path, "--destroy", "--out", &saved]).code, 0);
    let r = s.idlab(&["apply", &saved]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("7 deleted"), "{}", r.stderr);
    // --cloud-endpoint names the running server; a wrong URL is refused clearly.
    let url = attach::read_info(&s.state).expect("info").arm_url;
    let state = s.state.display().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec!["plan", plan_path.as_str(), "--state", state.as_str()];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_idlab"))
            .args(&args)
            .current_dir(root())
            .env_clear()
            .env("HOME", std::env::temp_dir())
            .output()
            .expect("runs")
    };
    let ok = run(&["--cloud-endpoint", &url]);
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let bad = run(&["--cloud-endpoint", "https://127.0.0.1:1"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not https://127.0.0.1:1"));
}

#[test]
fn an_assignment_to_an_unknown_outside_principal_fails_fast() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = tmp.path().join("outside.yaml");
    std::fs::write(&plan, "name: outside\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: rg-outside\n  grant:\n    type: role_assignment\n    scope: ${rg}\n    principal: 11111111-2222-3333-4444-555555555555\n    role: Reader\n").expect("write");
    let p = plan.display().to_string();
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("PrincipalNotFound"), "{}", r.stderr);
    assert!(r.stderr.contains("11111111"), "{}", r.stderr);
    // One attempt, no replication retries: the principal is not one this plan creates.
    let puts = s.arm_log().iter().filter(|(m, path, _)| m == "PUT" && path.contains("roleAssignments")).count();
    assert_eq!(puts, 1);
}

#[test]
fn a_storage_account_applies_through_its_long_running_create_converges_and_is_destroyed() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let plan_path = tmp.path().join("sa.yaml");
    let plan = |shared_key: bool| {
        format!(
            "name: sa-test\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: sa-rg\n  storage:\n    type: storage_account\n    name: idlabsatest1\n    resource_group: ${{rg}}\n    sku: Standard_GRS\n    allow_shared_key_access: {shared_key}\noutputs:\n  blob_endpoint: ${{storage.blob_endpoint}}\n"
        )
    };
    std::fs::write(&plan_path, plan(true)).expect("plan");
    let p = plan_path.display().to_string();
    let first = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    // The account was created by PUT then polled through its Location operation.
    let log = s.arm_log();
    assert!(log.iter().any(|(m, path, _)| m == "PUT" && path.ends_with("/storageAccounts/idlabsatest1")), "{log:?}");
    let raw = s.op("GET", "/_idlab/requests", None).to_string();
    assert!(raw.contains("/_idlab/operations/"), "the create was not polled: {raw}");
    let sub = s.subscription();
    let id =
        format!("/subscriptions/{sub}/resourceGroups/sa-rg/providers/Microsoft.Storage/storageAccounts/idlabsatest1");
    let body = s.op("GET", &format!("{id}?api-version=2025-06-01"), None);
    assert_eq!(body["sku"]["name"], "Standard_GRS");
    assert_eq!(body["tags"]["idlab-plan"], "sa-test");
    assert_eq!(body["properties"]["minimumTlsVersion"], "TLS1_2");
    // The output comes from the account's endpoints.
    let out = s.idlab(&["output", &p]);
    let endpoint = body["properties"]["primaryEndpoints"]["blob"].as_str().expect("endpoint");
    assert!(out.stdout.contains(&format!("blob_endpoint = {endpoint}")), "{}", out.stdout);
    // A second apply changes nothing: only reads.
    s.op("DELETE", "/_idlab/requests", None);
    let again = s.idlab(&["plan", &p, "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(s.arm_log().iter().all(|(_, _, write)| !write));
    // Out-of-band change of a managed field: plan shows exactly it, apply puts it back.
    let patched = s.op(
        "PATCH",
        &format!("{id}?api-version=2025-06-01"),
        Some(json!({"properties": {"minimumTlsVersion": "TLS1_0"}})),
    );
    assert_eq!(patched["properties"]["minimumTlsVersion"], "TLS1_0");
    let drift = s.idlab(&["plan", &p, "--detailed-exitcode"]);
    assert_eq!(drift.code, 2);
    assert!(drift.stdout.contains("~ properties/minimumTlsVersion: \"TLS1_0\" → \"TLS1_2\""), "{}", drift.stdout);
    // A changed plan field updates in place.
    std::fs::write(&plan_path, plan(false)).expect("plan");
    let upd = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(upd.code, 0, "{}{}", upd.stdout, upd.stderr);
    let body = s.op("GET", &format!("{id}?api-version=2025-06-01"), None);
    assert_eq!(
        (body["properties"]["allowSharedKeyAccess"].clone(), body["properties"]["minimumTlsVersion"].clone()),
        (json!(false), json!("TLS1_2"))
    );
    assert_eq!(s.idlab(&["plan", &p, "--detailed-exitcode"]).code, 0);
    // Turning on the hierarchical namespace is a replacement, with the reason.
    std::fs::write(
        &plan_path,
        plan(false).replace("    sku: Standard_GRS\n", "    sku: Standard_GRS\n    hierarchical_namespace: true\n"),
    )
    .expect("plan");
    let hns = s.idlab(&["plan", &p, "--format", "json"]);
    let hp: Value = serde_json::from_str(&hns.stdout).expect("plan JSON");
    let sa =
        hp["actions"].as_array().and_then(|a| a.iter().find(|x| x["name"] == "storage")).cloned().unwrap_or_default();
    assert_eq!(
        (sa["action"].as_str(), sa["reason"].as_str()),
        (Some("replace"), Some("the hierarchical namespace is set when an account is created")),
        "{sa}"
    );
    // Destroy removes it.
    let d = s.idlab(&["destroy", &p, "--auto-approve"]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    assert_eq!(s.op("GET", &format!("{id}?api-version=2025-06-01"), None)["error"]["code"], "ResourceGroupNotFound");
}

#[test]
fn a_blob_container_is_owned_through_its_metadata_and_scopes_a_role_assignment() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let plan_path = tmp.path().join("c.yaml");
    std::fs::write(
        &plan_path,
        "name: c-test\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: c-rg\n  id:\n    type: user_assigned_identity\n    name: reader-id\n    resource_group: ${rg}\n  storage:\n    type: storage_account\n    name: idlabctest1\n    resource_group: ${rg}\n  container:\n    type: blob_container\n    name: mycontainer\n    account: ${storage}\n  reader:\n    type: role_assignment\n    scope: ${container}\n    principal: ${id}\n    role: Storage Blob Data Reader\n",
    )
    .expect("plan");
    let p = plan_path.display().to_string();
    let sub = s.subscription();
    let account =
        format!("/subscriptions/{sub}/resourceGroups/c-rg/providers/Microsoft.Storage/storageAccounts/idlabctest1");
    let container = format!("{account}/blobServices/default/containers/mycontainer");
    // A container of the same name made out of band (no mark) is an adopt, not a silent take-over.
    assert_eq!(s.idlab(&["apply", &p, "--auto-approve", "--target", "storage"]).code, 0);
    s.op("PUT", &format!("{container}?api-version=2025-06-01"), Some(json!({"properties": {}})));
    let r = s.idlab(&["plan", &p, "--format", "json"]);
    let plan: Value = serde_json::from_str(&r.stdout).expect("plan JSON");
    let action = plan["actions"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == "container"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(action["action"], "adopt", "{action}");
    assert!(action["reason"].as_str().unwrap_or_default().contains("idlab_plan metadata"), "{action}");
    let a = s.idlab(&["apply", &p, "--auto-approve", "--adopt"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    let c = s.op("GET", &format!("{container}?api-version=2025-06-01"), None);
    assert_eq!(c["properties"]["metadata"]["idlab_plan"], "c-test", "{c}");
    assert_eq!(c["properties"]["publicAccess"], "None");
    // The role assignment is scoped to the container and is the plan's.
    let ras = s.op(
        "GET",
        &format!(
            "{container}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope()"
        ),
        None,
    );
    let scoped: Vec<&Value> = ras["value"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter(|r| r["properties"]["scope"].as_str().is_some_and(|sc| sc.eq_ignore_ascii_case(&container)))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(scoped.len(), 1, "{ras}");
    assert!(
        scoped[0]["properties"]["roleDefinitionId"]
            .as_str()
            .unwrap_or_default()
            .ends_with("2a2b9908-6ea1-4ae2-8e65-a410df84e7d1")
    );
    assert_eq!(s.idlab(&["plan", &p, "--detailed-exitcode"]).code, 0);
    // Public access opened out of band is drift on exactly that field.
    s.op(
        "PATCH",
        &format!("{container}?api-version=2025-06-01"),
        Some(json!({"properties": {"publicAccess": "Container"}})),
    );
    let drift = s.idlab(&["plan", &p, "--detailed-exitcode"]);
    assert_eq!(drift.code, 2);
    assert!(drift.stdout.contains("~ properties/publicAccess: \"Container\" → \"None\""), "{}", drift.stdout);
    assert_eq!(s.idlab(&["apply", &p, "--auto-approve"]).code, 0);
    // Destroying only the container takes its role assignment with it and keeps the account.
    let d = s.idlab(&["destroy", &p, "--auto-approve", "--target", "container"]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    let said = format!("{}{}", d.stdout, d.stderr);
    assert!(said.contains("reader: deleted") && said.contains("container: deleted"), "{said}");
    assert_eq!(s.op("GET", &format!("{container}?api-version=2025-06-01"), None)["error"]["code"], "ResourceNotFound");
    assert_eq!(s.op("GET", &format!("{account}?api-version=2025-06-01"), None)["name"], "idlabctest1");
}

#[test]
fn the_storage_tutorial_uploads_its_blob_and_the_vm_identity_reads_it_only_with_its_role() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    // A copy of the tutorial next to its own file, so the test can change the content.
    std::fs::create_dir_all(tmp.path().join("files")).expect("dir");
    std::fs::copy(root().join("plans/storage-blob.yaml"), tmp.path().join("storage-blob.yaml")).expect("plan");
    std::fs::write(tmp.path().join("files/hello_world.txt"), "Hello world from the VM!\n").expect("file");
    let p = tmp.path().join("storage-blob.yaml").display().to_string();
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    let v = s.idlab(&["verify", &p, "--format", "json"]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("\"pass\"") && v.stdout.contains("200 (25 bytes)"), "{}", v.stdout);
    // The upload carried the file's MD5 and the plan's mark; a second apply sends no write.
    s.assert_second_apply_writes_nothing(&p);
    // Changed content is an in-place update of exactly the MD5.
    std::fs::write(tmp.path().join("files/hello_world.txt"), "Hello again\n").expect("file");
    let plan = s.idlab(&["plan", &p, "--detailed-exitcode"]);
    assert_eq!(plan.code, 2);
    assert!(plan.stdout.contains("~ properties/contentMd5:"), "{}", plan.stdout);
    assert!(plan.stdout.contains("Plan: 0 to create, 1 to update"), "{}", plan.stdout);
    // A saved plan reviewed one content; if the file changes before apply, it is refused.
    let saved = tmp.path().join("saved.json").display().to_string();
    assert_eq!(s.idlab(&["plan", &p, "--out", &saved]).code, 0);
    std::fs::write(tmp.path().join("files/hello_world.txt"), "Not what was reviewed\n").expect("file");
    let refused = s.idlab(&["apply", &saved, "--auto-approve"]);
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("differ from the saved plan's") && refused.stderr.contains("Differs: hello"),
        "{}",
        refused.stderr
    );
    std::fs::write(tmp.path().join("files/hello_world.txt"), "Hello again\n").expect("file");
    assert_eq!(s.idlab(&["apply", &p, "--auto-approve"]).code, 0);
    let v = s.idlab(&["verify", &p]);
    assert!(v.stdout.contains("200 (12 bytes)"), "{}", v.stdout);
    // Without its Storage Blob Data Reader assignment the identity is refused (no waiting).
    let sub = s.subscription();
    let container = format!(
        "/subscriptions/{sub}/resourceGroups/myResourceGroup/providers/Microsoft.Storage/storageAccounts/idlabtutorialblob/blobServices/default/containers/mycontainer"
    );
    let ras = s.op(
        "GET",
        &format!("{container}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"),
        None,
    );
    for ra in ras["value"].as_array().cloned().unwrap_or_default() {
        let id = ra["id"].as_str().unwrap_or_default();
        if ra["properties"]["scope"].as_str().is_some_and(|sc| sc.eq_ignore_ascii_case(&container)) {
            s.op("DELETE", &format!("{id}?api-version=2022-04-01"), None);
        }
    }
    let denied = s.idlab(&["verify", &p, "--wait", "0"]);
    assert_eq!(denied.code, 3, "{}{}", denied.stdout, denied.stderr);
    assert!(denied.stdout.contains("403 AuthorizationPermissionMismatch"), "{}", denied.stdout);
    // The request log never holds a SAS signature; destroy removes everything.
    let log = s.op("GET", "/_idlab/requests", None).to_string();
    assert!(!log.contains("sig="), "SAS in the request log");
    let d = s.idlab(&["destroy", &p, "--auto-approve"]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    assert_eq!(
        s.op("GET", &format!("/subscriptions/{sub}/resourceGroups/myResourceGroup?api-version=2024-11-01"), None)["error"]
            ["code"],
        "ResourceGroupNotFound"
    );
}

#[test]
fn the_sas_tutorial_gets_a_container_sas_as_the_vm_and_its_limits_hold() {
    let s = Served::start();
    let p = root().join("plans/storage-sas.yaml").display().to_string();
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    s.op("DELETE", "/_idlab/requests", None);
    let v = s.idlab(&["verify", &p]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    for step in [
        "listServiceSas as the system-assigned identity: 200",
        "upload 201",
        "download 200",
        "delete refused 403 AuthorizationPermissionMismatch",
        "expired SAS refused 403 AuthenticationFailed",
    ] {
        assert!(v.stdout.contains(step), "{step}: {}", v.stdout);
    }
    // listServiceSas was called by the VM's identity, not the operator; the SAS never logged.
    let log = s.op("GET", "/_idlab/requests", None);
    let entries = log["value"].as_array().cloned().unwrap_or_default();
    let vm_principal = s.op("GET", &format!("/subscriptions/{}/resourceGroups/myResourceGroup/providers/Microsoft.Compute/virtualMachines/myVM?api-version=2025-04-01", s.subscription()), None)["identity"]["principalId"].as_str().unwrap_or_default().to_string();
    assert!(
        entries.iter().any(|e| e["path"].as_str().is_some_and(|p| p.ends_with("/listServiceSas"))
            && e["principal"] == vm_principal.as_str()),
        "{log}"
    );
    assert!(
        entries.iter().any(|e| e["method"] == "PUT"
            && e["path"] == "/idlabtutorialsas/mycontainer/idlab-verify.txt"
            && e["status"] == 201),
        "{log}"
    );
    assert!(!log.to_string().contains("sig="));
    // Without Storage Account Contributor, listServiceSas is refused and the check fails.
    let sub = s.subscription();
    let account = format!(
        "/subscriptions/{sub}/resourceGroups/myResourceGroup/providers/Microsoft.Storage/storageAccounts/idlabtutorialsas"
    );
    let ras = s.op(
        "GET",
        &format!("{account}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"),
        None,
    );
    for ra in ras["value"].as_array().cloned().unwrap_or_default() {
        if ra["properties"]["scope"].as_str().is_some_and(|sc| sc.eq_ignore_ascii_case(&account)) {
            s.op("DELETE", &format!("{}?api-version=2022-04-01", ra["id"].as_str().unwrap_or_default()), None);
        }
    }
    let denied = s.idlab(&["verify", &p, "--wait", "0"]);
    assert_eq!(denied.code, 3, "{}{}", denied.stdout, denied.stderr);
    assert!(
        denied
            .stdout
            .contains("listServiceSas on idlabtutorialsas as the system-assigned identity: 403 AuthorizationFailed"),
        "{}",
        denied.stdout
    );
}

#[test]
fn a_storage_account_name_taken_elsewhere_is_a_plan_error_and_nothing_is_written() {
    let s = Served::start();
    let sub = s.subscription();
    // Someone else's account already has the name, in another group.
    let other = format!("/subscriptions/{sub}/resourceGroups/someone-else");
    s.op("PUT", &format!("{other}?api-version=2024-11-01"), Some(json!({"location": "eastus"})));
    s.op(
        "PUT",
        &format!("{other}/providers/Microsoft.Storage/storageAccounts/idlabtutorialblob?api-version=2025-06-01"),
        Some(json!({"location": "eastus", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2", "properties": {}})),
    );
    assert_name_taken(
        &s,
        "plans/storage-blob.yaml",
        "storage (storage_account): the name `idlabtutorialblob` cannot be used (AlreadyExists)",
        "storage_account=idlabmine1",
    );
}

#[test]
fn the_data_lake_tutorial_grants_folder_acls_the_vm_uses_and_destroy_leaves_nothing() {
    let s = Served::start();
    let p = root().join("plans/datalake.yaml").display().to_string();
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    // The root exists with the account: its entries are an update; TestFolder is created.
    assert!(a.stderr.contains("Apply complete: 8 created, 1 updated"), "{}", a.stderr);
    let v = s.idlab(&["verify", &p]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert!(
        v.stdout.contains("PASS list-and-upload")
            && v.stdout.contains("through the 307 redirect: 201")
            && v.stdout.contains("write / refused: 403 AccessControlException"),
        "{}",
        v.stdout
    );
    // Re-plan: no changes, and nothing written anywhere (ARM or WebHDFS).
    s.replans_clean(&p);
    let log = s.op("GET", "/_idlab/requests", None);
    let entries = log["value"].as_array().cloned().unwrap_or_default();
    assert!(entries.iter().any(|e| e["path"].as_str().is_some_and(|p| p.starts_with("/webhdfs/v1"))), "{log}");
    assert!(s.writes().is_empty(), "{:?}", s.writes());
    // An entry changed out of band shows as exactly that entry, and apply puts it back.
    let sub = s.subscription();
    let account = format!(
        "/subscriptions/{sub}/resourceGroups/myResourceGroup/providers/Microsoft.DataLakeStore/accounts/idlabtutorialadls"
    );
    let oid = s.vm_principal("myResourceGroup", "myVM");
    let endpoint = s.op("GET", &format!("{account}?api-version=2016-11-01"), None)["properties"]["endpoint"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let info = attach::read_info(&s.state).expect("info");
    let status = s.rt.block_on(async {
        let c = attach::client(&info).expect("client");
        let secret = std::fs::read_to_string(&info.operator_secret_file).expect("secret");
        let t = c
            .post(&info.token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", info.operator_client_id.as_str()),
                ("client_secret", secret.trim()),
                ("scope", "https://datalake.azure.net//.default"),
            ])
            .send()
            .await
            .expect("token")
            .json::<Value>()
            .await
            .expect("json");
        let token = t["access_token"].as_str().expect("access_token").to_string();
        let url = format!("https://{endpoint}/webhdfs/v1/TestFolder?op=MODIFYACLENTRIES&aclspec=user:{oid}:r--");
        c.put(url).bearer_auth(token).send().await.expect("sent").status().as_u16()
    });
    assert_eq!(status, 200);
    folder_drift_then_destroy_and_again(&s, &p, &oid, "Microsoft.DataLakeStore/accounts?api-version=2016-11-01");
}

#[test]
fn a_gen1_plan_aimed_at_azure_fails_at_plan_time_pointing_at_gen2() {
    let out = Command::new(env!("CARGO_BIN_EXE_idlab"))
        .args(["plan", "plans/datalake.yaml", "--subscription", "00000000-0000-0000-0000-000000000000"])
        .current_dir(root())
        .env_clear()
        .env("HOME", std::env::temp_dir())
        .env("NO_COLOR", "1")
        .output()
        .expect("idlab runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("adls (data_lake_store)")
            && stderr.contains("retired by Azure on 2024-02-29")
            && stderr.contains("hierarchical_namespace: true"),
        "{stderr}"
    );
}
