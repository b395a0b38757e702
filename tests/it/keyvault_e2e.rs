//! Key Vault end to end: `plans/keyvault.yaml` through the real binary against `idlab local
//! serve` — apply, verify (the VM reads the secret), a clean re-plan without writes, destroy
//! (soft delete), apply again (recover), destroy `--purge`, apply from empty; soft-deleted
//! secrets recovered or purged instead of failing with 409; access-policy entries converged
//! without touching other principals'; secret values (from the environment and generated)
//! appearing nowhere; a vault name taken elsewhere.

use serde_json::{Value, json};

use crate::common::{Served, assert_name_taken, assert_not_leaked, changed_fields, everything_seen, root, secret_runs};
use idlab::local::attach;

const API: &str = "api-version=2024-11-01";

fn vault_path(s: &Served, name: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/myResourceGroup/providers/Microsoft.KeyVault/vaults/{name}",
        s.subscription()
    )
}

/// The current value of a secret, read as the operator through the vault's data plane.
fn secret_value(s: &Served, vault: &str, name: &str) -> Option<String> {
    let info = attach::read_info(&s.state).expect("info");
    let v = s.op("GET", &format!("{}?{API}", vault_path(s, vault)), None);
    let uri = v.pointer("/properties/vaultUri").and_then(Value::as_str)?.to_string();
    let secret = std::fs::read_to_string(&info.operator_secret_file).expect("secret");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    rt.block_on(async {
        let c = attach::client(&info).expect("client");
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", info.operator_client_id.as_str()),
            ("client_secret", secret.trim()),
            ("scope", "https://vault.azure.net/.default"),
        ];
        let t: Value = c.post(&info.token_url).form(&form).send().await.ok()?.json().await.ok()?;
        let token = t["access_token"].as_str()?.to_string();
        let r = c.get(format!("{uri}secrets/{name}?api-version=7.4")).bearer_auth(token).send().await.ok()?;
        let b: Value = r.json().await.ok()?;
        b["value"].as_str().map(str::to_string)
    })
}

fn deleted_vaults(s: &Served) -> usize {
    let sub = s.subscription();
    let l = s.op("GET", &format!("/subscriptions/{sub}/providers/Microsoft.KeyVault/deletedVaults?{API}"), None);
    l["value"].as_array().map_or(0, Vec::len)
}

#[test]
fn the_key_vault_tutorial_applies_verifies_recovers_and_purges() {
    let s = Served::start();
    let p = root().join("plans/keyvault.yaml").display().to_string();
    let plan = s.idlab(&["plan", &p, "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    // The vault, the deploying principal's access, the secret, the VM's access, and the rest.
    assert!(plan.stdout.contains("# kv:creator (key_vault_access_policy) will be created"), "{}", plan.stdout);
    assert!(plan.stdout.contains("+ value = (sensitive)"), "{}", plan.stdout);
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    assert!(a.stderr.contains("Apply complete: 10 created"), "{}", a.stderr);
    let v = s.idlab(&["verify", &p]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("PASS read-secret: read secret tutorial-secret as the system-assigned identity: 200 (the value matches the stored one)"), "{}", v.stdout);
    let generated = secret_value(&s, "idlab-tutorial-kv", "tutorial-secret").expect("the secret exists");
    assert_eq!(generated.len(), 32);
    // Re-plan and re-apply: no changes, and nothing written to ARM or the vault.
    s.op("DELETE", "/_idlab/requests", None);
    let r = s.idlab(&["plan", &p, "--detailed-exitcode"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let again = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(s.writes().is_empty(), "{:?}", s.writes());
    let log = s.op("GET", "/_idlab/requests", None).to_string();
    assert!(log.contains("/vaults/idlab-tutorial-kv/secrets/tutorial-secret"), "the secret was read through its vault");
    // Destroy soft-deletes the vault (and the secret): nothing owned is left live.
    let d = s.idlab(&["destroy", &p, "--auto-approve"]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    let group = format!("/subscriptions/{}/resourceGroups/myResourceGroup?{API}", s.subscription());
    assert_eq!(s.op("GET", &group, None)["error"]["code"], "ResourceGroupNotFound");
    assert_eq!(deleted_vaults(&s), 1);
    // The next plan recovers the vault instead of failing on its name; apply does, and the
    // generated secret keeps its value.
    let r = s.idlab(&["plan", &p]);
    assert!(r.stdout.contains("# kv (key_vault) will be recovered"), "{}", r.stdout);
    assert!(r.stdout.contains("1 to recover"), "{}", r.stdout);
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    assert!(a.stderr.contains("2 recovered"), "{}", a.stderr);
    assert_eq!(deleted_vaults(&s), 0);
    assert_eq!(secret_value(&s, "idlab-tutorial-kv", "tutorial-secret").as_deref(), Some(generated.as_str()));
    // Destroy removed the entries for real, so the recovered vault holds only today's: the
    // deploying principal's and the new VM's (the old VM's principal is gone).
    let v = s.op("GET", &format!("{}?{API}", vault_path(&s, "idlab-tutorial-kv")), None);
    let entries = v["properties"]["accessPolicies"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(s.idlab(&["verify", &p]).code, 0);
    assert_eq!(s.idlab(&["plan", &p, "--detailed-exitcode"]).code, 0);
    // Destroy --purge leaves nothing to recover; apply then creates everything anew.
    let d = s.idlab(&["destroy", &p, "--auto-approve", "--purge"]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    assert!(d.stderr.contains("kv: purged"), "{}", d.stderr);
    assert_eq!(deleted_vaults(&s), 0);
    let r = s.idlab(&["plan", &p]);
    assert!(r.stdout.contains("Plan: 10 to create, 0 to update"), "{}", r.stdout);
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    let fresh = secret_value(&s, "idlab-tutorial-kv", "tutorial-secret").expect("a new secret");
    assert_ne!(fresh, generated, "a purged secret is generated anew");
    assert_eq!(s.idlab(&["verify", &p]).code, 0);
}

#[test]
fn a_soft_deleted_vault_is_purged_and_created_anew_with_purge() {
    let s = Served::start();
    let p = root().join("plans/keyvault.yaml").display().to_string();
    assert_eq!(s.idlab(&["apply", &p, "--auto-approve"]).code, 0);
    let before = secret_value(&s, "idlab-tutorial-kv", "tutorial-secret").expect("secret");
    assert_eq!(s.idlab(&["destroy", &p, "--auto-approve"]).code, 0);
    let r = s.idlab(&["plan", &p, "--purge"]);
    assert!(r.stdout.contains("# kv (key_vault) will be purged and created anew"), "{}", r.stdout);
    assert!(r.stdout.contains("1 to purge"), "{}", r.stdout);
    // A saved plan that purges is applied as reviewed.
    let tmp = tempfile::tempdir().expect("tmp");
    let saved = tmp.path().join("purge.json").display().to_string();
    assert_eq!(s.idlab(&["plan", &p, "--purge", "--out", &saved]).code, 0);
    let a = s.idlab(&["apply", &saved]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    assert_eq!(deleted_vaults(&s), 0);
    let after = secret_value(&s, "idlab-tutorial-kv", "tutorial-secret").expect("secret");
    assert_ne!(before, after);
    assert_eq!(s.idlab(&["verify", &p]).code, 0);
}

#[test]
fn a_soft_deleted_secret_is_recovered_or_purged_instead_of_a_409() {
    let s = Served::start();
    let p = root().join("plans/keyvault.yaml").display().to_string();
    assert_eq!(s.idlab(&["apply", &p, "--auto-approve"]).code, 0);
    let first = secret_value(&s, "idlab-tutorial-kv", "tutorial-secret").expect("secret");
    // Destroy only the secret: it is soft-deleted inside a live vault.
    let d = s.idlab(&["destroy", &p, "--auto-approve", "--target", "secret"]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    assert!(secret_value(&s, "idlab-tutorial-kv", "tutorial-secret").is_none());
    let r = s.idlab(&["plan", &p, "--detailed-exitcode"]);
    assert_eq!(r.code, 2);
    assert!(r.stdout.contains("# secret (key_vault_secret) will be recovered"), "{}", r.stdout);
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    assert!(a.stderr.contains("secret: recovered"), "{}", a.stderr);
    assert_eq!(secret_value(&s, "idlab-tutorial-kv", "tutorial-secret").as_deref(), Some(first.as_str()));
    // Again, with --purge: a new secret.
    assert_eq!(s.idlab(&["destroy", &p, "--auto-approve", "--target", "secret"]).code, 0);
    let a = s.idlab(&["apply", &p, "--auto-approve", "--purge"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    let second = secret_value(&s, "idlab-tutorial-kv", "tutorial-secret").expect("secret");
    assert_ne!(second, first);
    assert_eq!(s.idlab(&["plan", &p, "--detailed-exitcode"]).code, 0);
}

#[test]
fn access_policy_entries_converge_and_other_principals_entries_survive() {
    let s = Served::start();
    let p = root().join("plans/keyvault.yaml").display().to_string();
    assert_eq!(s.idlab(&["apply", &p, "--auto-approve"]).code, 0);
    let vault = vault_path(&s, "idlab-tutorial-kv");
    let body = s.op("GET", &format!("{vault}?{API}"), None);
    let tenant = body["properties"]["tenantId"].as_str().unwrap_or_default().to_string();
    let vm = s.op("GET", &format!("/subscriptions/{}/resourceGroups/myResourceGroup/providers/Microsoft.Compute/virtualMachines/myVM?api-version=2024-07-01", s.subscription()), None);
    let vm_oid = vm["identity"]["principalId"].as_str().unwrap_or_default().to_string();
    let entry = |oid: &str, secrets: &[&str]| json!({"properties": {"accessPolicies": [{"tenantId": tenant, "objectId": oid, "permissions": {"secrets": secrets}}]}});
    // Someone else's entry, and an extra permission on the VM's, added out of band.
    let other = "3c1d4e2f-0000-4000-8000-00000000abcd";
    let add = format!("{vault}/accessPolicies/add?{API}");
    assert!(s.op("PUT", &add, Some(entry(other, &["get"])))["properties"].is_object());
    // The portal stores permissions capitalized; `remove` must use that casing.
    assert!(s.op("PUT", &add, Some(entry(&vm_oid, &["Delete"])))["properties"].is_object());
    let r = s.idlab(&["plan", &p, "--format", "json"]);
    let plan: Value = serde_json::from_str(&r.stdout).expect("json");
    let changed = changed_fields(&plan);
    assert_eq!(
        changed,
        vec![("vm-policy".to_string(), vec!["properties/permissions/secrets".to_string()])],
        "{}",
        r.stdout
    );
    assert_eq!(s.idlab(&["apply", &p, "--auto-approve"]).code, 0);
    let policies = |s: &Served| s.op("GET", &format!("{vault}?{API}"), None)["properties"]["accessPolicies"].clone();
    let now = policies(&s);
    let of = |oid: &str| now.as_array().and_then(|a| a.iter().find(|e| e["objectId"] == json!(oid))).cloned();
    assert_eq!(of(&vm_oid).map(|e| e["permissions"]["secrets"].clone()), Some(json!(["get", "list"])));
    assert!(of(other).is_some(), "another principal's entry survives apply");
    // Removing permissions out of band is drift that apply restores.
    let rm = format!("{vault}/accessPolicies/remove?{API}");
    s.op("PUT", &rm, Some(entry(&vm_oid, &["list"])));
    let r = s.idlab(&["plan", &p, "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stdout.contains("# vm-policy (key_vault_access_policy) will be updated in place"), "{}", r.stdout);
    assert_eq!(s.idlab(&["apply", &p, "--auto-approve"]).code, 0);
    assert_eq!(s.idlab(&["plan", &p, "--detailed-exitcode"]).code, 0);
    // Destroying the VM's entry takes away the plan's permissions only.
    s.op("PUT", &add, Some(entry(&vm_oid, &["backup"])));
    let d = s.idlab(&["destroy", &p, "--auto-approve", "--target", "vm-policy"]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    let now = policies(&s);
    let vm_entry = now.as_array().and_then(|a| a.iter().find(|e| e["objectId"] == json!(vm_oid))).cloned();
    assert_eq!(vm_entry.map(|e| e["permissions"]["secrets"].clone()), Some(json!(["backup"])));
    assert!(now.as_array().is_some_and(|a| a.iter().any(|e| e["objectId"] == json!(other))));
    // Without the policy the VM is refused, with Key Vault's own code.
    s.op("PUT", &rm, Some(entry(&vm_oid, &["backup"])));
    let v = s.idlab(&["verify", &p, "--wait", "0"]);
    assert_eq!(v.code, 3, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("403 AccessDenied"), "{}", v.stdout);
}

#[test]
fn a_secret_the_deploying_principal_cannot_read_waits_for_its_access_and_is_never_overwritten() {
    let s = Served::start();
    let p = root().join("plans/keyvault.yaml").display().to_string();
    assert_eq!(s.idlab(&["apply", &p, "--auto-approve"]).code, 0);
    let before = secret_value(&s, "idlab-tutorial-kv", "tutorial-secret").expect("secret");
    let info = attach::read_info(&s.state).expect("info");
    let vault = vault_path(&s, "idlab-tutorial-kv");
    let all = ["get", "list", "set", "delete", "recover", "purge"];
    // Someone removes the deploying principal's access policy (as an apply killed before
    // `kv:creator` leaves it), then only its `get`: each time, plan shows the policy to
    // restore (not an error), and apply restores it before it reads the secret, which it
    // finds unchanged: no write to the secret.
    for (taken, says) in [(&all[..], "will be created"), (&["get"][..], "will be updated in place")] {
        let rm = json!({"properties": {"accessPolicies": [{"tenantId": info.tenant_id, "objectId": info.operator_object_id, "permissions": {"secrets": taken}}]}});
        s.op("PUT", &format!("{vault}/accessPolicies/remove?{API}"), Some(rm));
        let r = s.idlab(&["plan", &p, "--detailed-exitcode"]);
        assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(&format!("# kv:creator (key_vault_access_policy) {says}")), "{}", r.stdout);
        s.op("DELETE", "/_idlab/requests", None);
        let a = s.idlab(&["apply", &p, "--auto-approve"]);
        assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
        let writes = s.writes();
        assert!(writes.iter().all(|w| !w["path"].as_str().unwrap_or_default().contains("/secrets/")), "{writes:?}");
        assert!(
            writes.iter().any(|w| w["path"].as_str().unwrap_or_default().ends_with("/accessPolicies/add")),
            "{writes:?}"
        );
        assert_eq!(s.idlab(&["plan", &p, "--detailed-exitcode"]).code, 0);
        assert_eq!(secret_value(&s, "idlab-tutorial-kv", "tutorial-secret").as_deref(), Some(before.as_str()));
    }
}

#[test]
fn secret_values_from_the_environment_and_generated_appear_nowhere() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let text = std::fs::read_to_string(root().join("plans/keyvault.yaml"))
        .expect("plan")
        .replace("password: { generate: 24 }", "password: { env: IDLAB_VM_CANARY }")
        .replace("value: { generate: 32 }", "value: { env: IDLAB_KV_CANARY }");
    let plan = tmp.path().join("canary.yaml");
    std::fs::write(&plan, text).expect("write");
    let p = plan.display().to_string();
    let vm_canary = "Vm-Canary-7Qx!/+=pw";
    let kv_canary = "Kv-Canary-3Zy!/+=secret";
    let env = [("IDLAB_VM_CANARY", vm_canary), ("IDLAB_KV_CANARY", kv_canary), ("IDLAB_LOG", "debug")];
    let mut seen = secret_runs(&s, &p, &tmp.path().join("saved.json"), &env);
    // A changed value is an update of exactly the (sensitive) value.
    let changed = "Kv-Canary-Changed-8Wd!/+=";
    let env2 = [("IDLAB_VM_CANARY", vm_canary), ("IDLAB_KV_CANARY", changed), ("IDLAB_LOG", "debug")];
    let r = s.idlab_env(&["plan", &p, "--detailed-exitcode"], &env2);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("~ value: (sensitive) → (sensitive)"), "{}", r.stdout);
    seen.push_str(&r.stdout);
    seen.push_str(&r.stderr);
    seen.push_str(&everything_seen(&s, &["apply", &p, "--auto-approve", "--format", "json"], &env2));
    assert_eq!(secret_value(&s, "idlab-tutorial-kv", "tutorial-secret").as_deref(), Some(changed));
    seen.push_str(&everything_seen(&s, &["verify", &p, "--format", "json"], &env2));
    seen.push_str(&everything_seen(&s, &["destroy", &p, "--auto-approve", "--format", "json"], &env2));
    for secret in [vm_canary, kv_canary, changed] {
        assert_not_leaked(&seen, secret);
    }
    assert!(seen.contains("\"event\":\"finished\"") && seen.contains("DEBUG"), "NDJSON and debug logs were produced");
    assert!(std::fs::read_to_string(&s.log).unwrap_or_default().contains("DEBUG"), "the server's debug log was read");
    // The generated secret of the tutorial plan, too.
    let t = root().join("plans/keyvault.yaml").display().to_string();
    let dbg = [("IDLAB_LOG", "debug")];
    let mut seen = everything_seen(&s, &["apply", &t, "--auto-approve", "--format", "json", "--purge"], &dbg);
    seen.push_str(&secret_runs(&s, &t, &tmp.path().join("saved2.json"), &dbg));
    let generated = secret_value(&s, "idlab-tutorial-kv", "tutorial-secret").expect("generated secret");
    assert_not_leaked(&seen, &generated);
}

#[test]
fn a_vault_name_taken_elsewhere_is_a_plan_error_and_nothing_is_written() {
    let s = Served::start();
    let sub = s.subscription();
    let info = attach::read_info(&s.state).expect("info");
    let other = format!("/subscriptions/{sub}/resourceGroups/someone-else");
    s.op("PUT", &format!("{other}?{API}"), Some(json!({"location": "eastus"})));
    let made = s.op(
        "PUT",
        &format!("{other}/providers/Microsoft.KeyVault/vaults/idlab-tutorial-kv?{API}"),
        Some(json!({"location": "eastus", "properties": {"tenantId": info.tenant_id, "sku": {"family": "A", "name": "standard"}, "accessPolicies": []}})),
    );
    assert_eq!(made["name"], "idlab-tutorial-kv", "{made}");
    assert_name_taken(
        &s,
        "plans/keyvault.yaml",
        "kv (key_vault): the name `idlab-tutorial-kv` cannot be used (AlreadyExists)",
        "vault=idlab-kv-mine",
    );
}

#[test]
fn a_vault_registering_its_dns_name_is_waited_for_and_faults_are_weathered() {
    // New vaults report `RegisteringDns` for 400 ms; ARM throttles and fails now and then.
    let faults = "seed: 11\ntime_scale: 0.01\nthrottle_rate: 0.2\nerror_500_rate: 0.05\nper_type:\n  Microsoft.KeyVault/vaults:\n    lro_ms: 40000\n";
    let s = Served::with_faults(Some(faults));
    let p = root().join("plans/keyvault.yaml").display().to_string();
    let env = [("IDLAB_RETRY_BASE_MS", "5")];
    let a = s.idlab_env(&["apply", &p, "--auto-approve"], &env);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    let log = s.op("GET", "/_idlab/requests", None);
    let entries = log["value"].as_array().cloned().unwrap_or_default();
    let vault_gets = entries
        .iter()
        .filter(|e| {
            e["method"] == "GET" && e["path"].as_str().is_some_and(|p| p.ends_with("/vaults/idlab-tutorial-kv"))
        })
        .count();
    assert!(vault_gets >= 2, "the vault was read until it settled: {vault_gets}");
    let v = s.idlab_env(&["verify", &p], &env);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert_eq!(s.idlab_env(&["plan", &p, "--detailed-exitcode"], &env).code, 0);
}

#[test]
fn a_vault_soft_deleted_in_another_group_is_refused_at_plan_time_or_purged() {
    let s = Served::start();
    let p = root().join("plans/keyvault.yaml").display().to_string();
    assert_eq!(s.idlab(&["apply", &p, "--auto-approve", "--var", "resource_group=groupA"]).code, 0);
    assert_eq!(s.idlab(&["destroy", &p, "--auto-approve", "--var", "resource_group=groupA"]).code, 0);
    // The same plan in another group: the name is held by a vault that can be recovered only
    // in groupA.
    let other = ["--var", "resource_group=groupB"];
    let r = s.idlab(&[&["plan", p.as_str()][..], &other].concat());
    assert!(r.stdout.contains("# kv (key_vault) will be refused"), "{}", r.stdout);
    assert!(r.stdout.contains("belongs to") && r.stdout.contains("groupA"), "{}", r.stdout);
    s.op("DELETE", "/_idlab/requests", None);
    let a = s.idlab(&[&["apply", p.as_str(), "--auto-approve"][..], &other].concat());
    assert_eq!(a.code, 1, "{}{}", a.stdout, a.stderr);
    assert!(a.stderr.contains("SoftDeletedElsewhere"), "{}", a.stderr);
    let vault_writes: Vec<Value> = s
        .writes()
        .into_iter()
        .filter(|w| w["path"].as_str().is_some_and(|p| p.to_ascii_lowercase().contains("keyvault")))
        .collect();
    assert!(vault_writes.is_empty(), "{vault_writes:?}");
    // With --purge it is purged and created in groupB.
    let r = s.idlab(&[&["plan", p.as_str(), "--purge"][..], &other].concat());
    assert!(r.stdout.contains("# kv (key_vault) will be purged and created anew"), "{}", r.stdout);
    let a = s.idlab(&[&["apply", p.as_str(), "--auto-approve", "--purge"][..], &other].concat());
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    assert_eq!(deleted_vaults(&s), 0);
    assert_eq!(s.idlab(&[&["verify", p.as_str()][..], &other].concat()).code, 0);
}
