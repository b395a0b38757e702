//! `verify --via run-command` against the local cloud: each check runs as a `sh` script on
//! the host through the VM Run Command API (only with `idlab local serve
//! --allow-run-command`), with the VM's identity endpoint, and prints one JSON result line.

use serde_json::json;

use crate::common::{Served, idlab, root, seed_key};

fn plan(name: &str) -> String {
    root().join("plans").join(name).display().to_string()
}

/// The `runCommand` POSTs in the local cloud's request log, with their status.
fn run_command_posts(s: &Served) -> Vec<u16> {
    s.op("GET", "/_idlab/requests", None)["value"]
        .as_array()
        .expect("log")
        .iter()
        .filter(|e| e["method"] == "POST" && e["path"].as_str().is_some_and(|p| p.ends_with("/runCommand")))
        .map(|e| e["status"].as_u64().unwrap_or(0) as u16)
        .collect()
}

#[test]
fn both_linux_tutorial_plans_verify_on_the_vm_and_a_denied_check_is_reported_denied() {
    let s = Served::with_flags(&["--allow-run-command"]);
    let arm = plan("arm-system-assigned-linux.yaml");
    assert_eq!(s.idlab(&["apply", &arm, "--auto-approve"]).code, 0);
    let v = s.idlab(&["verify", &arm, "--via", "run-command"]);
    assert_eq!(v.code, 0, "{}", v.render());
    assert!(v.stdout.contains("PASS read-resource-group: read /subscriptions/"), "{}", v.stdout);
    assert!(v.stdout.contains("on VM vm through Run Command: 200"), "{}", v.stdout);
    // Reader cannot write: the script saw ARM's 403, and the denied check passes on it.
    assert!(v.stdout.contains("PASS cannot-write-resource-group: write /subscriptions/"), "{}", v.stdout);
    assert!(v.stdout.contains("through Run Command: 403 AuthorizationFailed"), "{}", v.stdout);
    assert!(v.stdout.contains("Verify: 2 passed, 0 failed, 0 skipped."), "{}", v.stdout);
    assert_eq!(run_command_posts(&s), vec![202, 202]);

    let blob = plan("storage-blob-linux.yaml");
    let a = s.idlab(&[
        "apply",
        &blob,
        "--auto-approve",
        "--var",
        "storage_account=idlabruncmdlinux",
        "--var",
        "resource_group=rcLinuxBlob",
    ]);
    assert_eq!(a.code, 0, "{}", a.render());
    let v = s.idlab(&[
        "verify",
        &blob,
        "--via",
        "run-command",
        "--var",
        "storage_account=idlabruncmdlinux",
        "--var",
        "resource_group=rcLinuxBlob",
    ]);
    assert_eq!(v.code, 0, "{}", v.render());
    assert!(v.stdout.contains("PASS read-hello-world: read blob mycontainer/hello_world.txt"), "{}", v.stdout);
    assert!(v.stdout.contains("PASS cannot-list-keys: list the keys of"), "{}", v.stdout);
    assert!(v.stdout.contains("403 AuthorizationFailed"), "{}", v.stdout);
    // The keys the denied check did not get, and the token, never reach the output.
    assert!(!v.stdout.contains("access_token") && !v.stdout.contains("eyJ"), "{}", v.stdout);
}

#[test]
fn an_allowed_check_refused_on_the_vm_fails_with_exit_3() {
    let s = Served::with_flags(&["--allow-run-command"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let text = std::fs::read_to_string(plan("arm-system-assigned-linux.yaml")).expect("plan");
    // The same plan expecting the Reader to write: the VM's answer (403) fails the check.
    let wrong = text.replace("    expect: denied\n", "");
    assert_ne!(wrong, text);
    let p = tmp.path().join("wrong.yaml");
    std::fs::write(&p, wrong).expect("write");
    let p = p.display().to_string();
    assert_eq!(s.idlab(&["apply", &p, "--auto-approve"]).code, 0);
    let v = s.idlab(&["verify", &p, "--via", "run-command", "--format", "json"]);
    assert_eq!(v.code, 3, "{}", v.render());
    let out: serde_json::Value = serde_json::from_str(v.stdout.trim()).expect("json");
    let checks = out["checks"].as_array().expect("checks");
    let by = |n: &str| checks.iter().find(|c| c["name"] == n).cloned().unwrap_or(json!(null));
    assert_eq!(by("read-resource-group")["status"], "pass");
    assert_eq!(by("cannot-write-resource-group")["status"], "fail");
    assert!(
        by("cannot-write-resource-group")["detail"].as_str().unwrap_or_default().ends_with(": 403 AuthorizationFailed")
    );
}

#[test]
fn without_the_opt_in_run_command_is_refused_with_exit_1() {
    let s = Served::start();
    let arm = plan("arm-system-assigned-linux.yaml");
    assert_eq!(s.idlab(&["apply", &arm, "--auto-approve"]).code, 0);
    let v = s.idlab(&["verify", &arm, "--via", "run-command"]);
    assert_eq!(v.code, 1, "{}", v.render());
    assert!(v.stderr.contains("OperationNotAllowed"), "{}", v.stderr);
    assert!(v.stderr.contains("--allow-run-command"), "{}", v.stderr);
    assert_eq!(run_command_posts(&s), vec![409]);
    // The default path still verifies.
    assert_eq!(s.idlab(&["verify", &arm]).code, 0);
}

#[test]
fn a_caller_without_the_run_command_action_is_refused() {
    let s = Served::with_flags(&["--allow-run-command"]);
    let arm = plan("arm-system-assigned-linux.yaml");
    assert_eq!(s.idlab(&["apply", &arm, "--auto-approve"]).code, 0);
    let sub = format!("/subscriptions/{}", s.subscription());
    let p = s.op(
        "POST",
        "/_idlab/principals",
        Some(json!({"name": "reader", "roles": [{"role": "Reader", "scope": sub}]})),
    );
    let (client, secret) = (p["client_id"].as_str().expect("client"), p["secret"].as_str().expect("secret"));
    let v = s.idlab_env(
        &["verify", &arm, "--via", "run-command"],
        &[("AZURE_CLIENT_ID", client), ("AZURE_CLIENT_SECRET", secret)],
    );
    assert_eq!(v.code, 1, "{}", v.render());
    assert!(v.stderr.contains("AuthorizationFailed"), "{}", v.stderr);
    assert!(v.stderr.contains("Microsoft.Compute/virtualMachines/runCommand/action"), "{}", v.stderr);
    assert_eq!(run_command_posts(&s), vec![403]);
}

#[test]
fn a_secret_read_on_the_vm_compares_hashes_and_the_value_never_leaves() {
    let s = Served::with_flags(&["--allow-run-command"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let text = std::fs::read_to_string(plan("keyvault.yaml")).expect("plan");
    let linux = text
        .replace("image: Win2022Datacenter", "image: Ubuntu2204")
        .replace("value: { generate: 32 }", "value: { env: RUNCMD_SECRET }");
    assert_ne!(linux, text);
    let p = tmp.path().join("kv-linux.yaml");
    std::fs::write(&p, linux).expect("write");
    let p = p.display().to_string();
    // Characters JSON escapes (quote, backslash, slash, non-ASCII) and a canary.
    let canary = "canary-7f3a\"quoted\\back/slash-é";
    let env = [("RUNCMD_SECRET", canary)];
    let a = s.idlab_env(&["apply", &p, "--auto-approve", "--var", "vault=idlab-runcmd-kv"], &env);
    assert_eq!(a.code, 0, "{}", a.render());
    let v = s.idlab_env(&["verify", &p, "--via", "run-command", "--var", "vault=idlab-runcmd-kv"], &env);
    assert_eq!(v.code, 0, "{}", v.render());
    assert!(v.stdout.contains("PASS read-secret: read secret tutorial-secret as the system-assigned identity, on VM vm through Run Command: 200 (the value matches the stored one)"), "{}", v.stdout);
    for out in [&v.stdout, &v.stderr] {
        assert!(!out.contains("canary-7f3a"), "{}", v.render());
    }
    let log = std::fs::read_to_string(&s.log).unwrap_or_default();
    assert!(!log.contains("canary-7f3a"), "the server log holds the secret");
}

#[test]
fn the_in_process_local_cloud_serves_run_command_only_with_the_verify_flag() {
    let tmp = tempfile::tempdir().expect("tmp");
    let state = tmp.path().join("state");
    seed_key(&state);
    let state = state.display().to_string();
    let arm = plan("arm-system-assigned-linux.yaml");
    let local = ["--local", "--state", state.as_str()];
    let apply = idlab(&[&["apply", arm.as_str(), "--auto-approve"][..], &local[..]].concat());
    assert_eq!(apply.code, 0, "{}", apply.render());
    let refused = idlab(&[&["verify", arm.as_str(), "--via", "run-command"][..], &local[..]].concat());
    assert_eq!(refused.code, 1, "{}", refused.render());
    assert!(refused.stderr.contains("OperationNotAllowed"), "{}", refused.stderr);
    let v = idlab(&[&["verify", arm.as_str(), "--via", "run-command", "--allow-run-command"][..], &local[..]].concat());
    assert_eq!(v.code, 0, "{}", v.render());
    assert!(v.stdout.contains("Verify: 2 passed, 0 failed, 0 skipped."), "{}", v.stdout);
    // The flag is for the local cloud only.
    let alone = idlab(&["verify", arm.as_str(), "--via", "run-command", "--allow-run-command"]);
    assert_eq!(alone.code, 1, "{}", alone.render());
    assert!(alone.stderr.contains("--local"), "{}", alone.stderr);
}

#[test]
fn a_windows_image_vm_is_not_served_run_command_locally() {
    let s = Served::with_flags(&["--allow-run-command"]);
    let windows = plan("arm-system-assigned.yaml");
    assert_eq!(s.idlab(&["apply", &windows, "--auto-approve"]).code, 0);
    let v = s.idlab(&["verify", &windows, "--via", "run-command"]);
    assert_eq!(v.code, 1, "{}", v.render());
    assert!(v.stderr.contains("OperationNotAllowed"), "{}", v.stderr);
    assert!(v.stderr.contains("not supported in the local cloud"), "{}", v.stderr);
    assert!(v.stderr.contains("check `read-resource-group`"), "{}", v.stderr);
    assert_eq!(run_command_posts(&s), vec![409]);
}

/// A tutorial plan with its Windows VM made a Linux one, in `dir`.
fn linux_copy(dir: &std::path::Path, name: &str) -> String {
    let text = std::fs::read_to_string(plan(name)).expect("plan");
    let linux = text.replace("image: Win2022Datacenter", "image: Ubuntu2204");
    assert_ne!(linux, text);
    let p = dir.join(name);
    std::fs::write(&p, linux).expect("write");
    p.display().to_string()
}

#[test]
fn a_sas_check_uploads_and_downloads_on_the_vm_and_the_sas_never_leaves() {
    let s = Served::with_flags(&["--allow-run-command"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let p = linux_copy(tmp.path(), "storage-sas-least-privilege.yaml");
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}", a.render());
    let v = s.idlab(&["verify", &p, "--via", "run-command"]);
    assert_eq!(v.code, 0, "{}", v.render());
    assert!(
        v.stdout.contains("PASS sas-upload-download: listServiceSas on idlabsasleast as the system-assigned identity, on VM vm through Run Command: 200, upload: 201, download: 200, delete refused: 403"),
        "{}",
        v.stdout
    );
    assert!(v.stdout.contains("(the download matches the upload)"), "{}", v.stdout);
    assert!(v.stdout.contains(", expired SAS issued: 200, expired SAS refused: 403"), "{}", v.stdout);
    assert!(v.stdout.contains("Verify: 2 passed, 0 failed, 0 skipped."), "{}", v.stdout);
    // The SAS (its signature and the rest of its query) stays on the VM.
    for out in [&v.stdout, &v.stderr] {
        assert!(!out.contains("sig=") && !out.contains("sv=") && !out.contains("se="), "{}", v.render());
    }
    // The blob the VM uploaded is there, with what the script wrote.
    let log = s.op("GET", "/_idlab/requests", None);
    let puts: Vec<u64> = log["value"]
        .as_array()
        .expect("log")
        .iter()
        .filter(|e| {
            e["method"] == "PUT" && e["path"].as_str().is_some_and(|p| p.ends_with("/mycontainer/idlab-verify.txt"))
        })
        .map(|e| e["status"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(puts, vec![201], "{log}");
}

#[test]
fn a_data_lake_check_lists_uploads_and_is_refused_the_root_on_the_vm() {
    let s = Served::with_flags(&["--allow-run-command"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let p = linux_copy(tmp.path(), "datalake-gen2.yaml");
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}", a.render());
    let v = s.idlab(&["verify", &p, "--via", "run-command"]);
    assert_eq!(v.code, 0, "{}", v.render());
    assert!(
        v.stdout.contains("PASS list-and-upload: list / as the system-assigned identity, on VM vm through Run Command: 200, create /TestFolder/Test1.txt: 201, append: 202, flush: 200, write / refused: 403"),
        "{}",
        v.stdout
    );
    assert!(!v.stdout.contains("eyJ"), "{}", v.stdout);

    let gen1 = linux_copy(tmp.path(), "datalake.yaml");
    let rg = ["--var", "resource_group=rcGen1"];
    let a = s.idlab(&[&["apply", gen1.as_str(), "--auto-approve"][..], &rg[..]].concat());
    assert_eq!(a.code, 0, "{}", a.render());
    let v = s.idlab(&[&["verify", gen1.as_str(), "--via", "run-command"][..], &rg[..]].concat());
    assert_eq!(v.code, 0, "{}", v.render());
    assert!(
        v.stdout.contains(
            "through Run Command: 200, upload /TestFolder/Test1.txt through the 307 redirect: 201, write / refused: 403"
        ),
        "{}",
        v.stdout
    );
}

#[test]
fn a_sas_check_without_the_sas_action_is_denied_on_the_vm() {
    let s = Served::with_flags(&["--allow-run-command"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let p = linux_copy(tmp.path(), "storage-sas-least-privilege.yaml");
    // Reader instead of the SAS-only role: listServiceSas is refused on the VM.
    let text = std::fs::read_to_string(&p).expect("plan");
    let reader = text.replace("    role: ${sas-only}\n", "    role: Reader\n");
    assert_ne!(reader, text);
    let denied = reader.replace("    blob_sas: ${container}\n", "    blob_sas: ${container}\n    expect: denied\n");
    std::fs::write(&p, &denied).expect("write");
    assert_eq!(s.idlab(&["apply", &p, "--auto-approve"]).code, 0);
    let v = s.idlab(&["verify", &p, "--via", "run-command"]);
    assert_eq!(v.code, 0, "{}", v.render());
    assert!(
        v.stdout.contains("PASS sas-upload-download: listServiceSas on idlabsasleast as the system-assigned identity, on VM vm through Run Command: 403 AuthorizationFailed"),
        "{}",
        v.stdout
    );
    // Expected allowed, the same refusal fails the check (exit 3) and no upload was tried.
    std::fs::write(&p, &reader).expect("write");
    let v = s.idlab(&["verify", &p, "--via", "run-command"]);
    assert_eq!(v.code, 3, "{}", v.render());
    assert!(v.stdout.contains("FAIL sas-upload-download: listServiceSas on idlabsasleast"), "{}", v.stdout);
    assert!(!v.stdout.contains("upload:"), "{}", v.stdout);
}

#[test]
fn a_sql_check_is_token_only_on_the_vm_too() {
    let s = Served::with_flags(&["--allow-run-command"]);
    let tmp = tempfile::tempdir().expect("tmp");
    let p = linux_copy(tmp.path(), "sql.yaml");
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}", a.render());
    let v = s.idlab(&["verify", &p, "--via", "run-command"]);
    assert_eq!(v.code, 0, "{}", v.render());
    assert!(v.stdout.contains("PASS sign-in: token-only: a token for https://database.windows.net/"), "{}", v.stdout);
    assert!(v.stdout.contains(": as expected)"), "{}", v.stdout);
    assert!(!v.stdout.contains("eyJ"), "{}", v.stdout);
    // The oid the VM printed is the VM identity's, which the default path sees too.
    let oid = v.stdout.split("(oid ").nth(1).and_then(|t| t.split(':').next()).unwrap_or_default().to_string();
    assert_eq!(oid.len(), 36, "{}", v.stdout);
    let d = s.idlab(&["verify", &p]);
    assert_eq!(d.code, 0, "{}", d.render());
    assert!(d.stdout.contains(&format!("oid {oid}")), "{}\n{}", d.stdout, v.stdout);
}
