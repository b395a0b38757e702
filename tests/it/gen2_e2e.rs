//! `plans/datalake-gen2.yaml` end to end through the real binary against `idlab local
//! serve`: the tutorial's folder ACLs on Data Lake Storage Gen2 (`dfs`), verify as the VM,
//! a clean re-plan with no write anywhere, drift on the plan's entries only, destroy, and
//! apply again from empty; and the plan without the deploying principal's data role.

use idlab::local::attach;
use serde_json::{Value, json};

use crate::common::{Served, folder_drift_then_destroy_and_again, root};

const VERSION: &str = "2023-11-03";

/// A principal with Storage Blob Data Owner on `scope`, and its storage token.
fn data_owner(s: &Served, scope: &str) -> String {
    let p = s.op(
        "POST",
        "/_idlab/principals",
        Some(json!({"name": "oob", "roles": [{"role": "Storage Blob Data Owner", "scope": scope}]})),
    );
    let info = attach::read_info(&s.state).expect("info");
    s.rt.block_on(async {
        let c = attach::client(&info).expect("client");
        let t: Value = c
            .post(&info.token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", p["client_id"].as_str().unwrap_or_default()),
                ("client_secret", p["secret"].as_str().unwrap_or_default()),
                ("scope", "https://storage.azure.com/.default"),
            ])
            .send()
            .await
            .expect("token")
            .json()
            .await
            .expect("json");
        t["access_token"].as_str().expect("access_token").to_string()
    })
}

/// A path's `x-ms-acl`, read with `HEAD ?action=getAccessControl`.
fn get_acl(s: &Served, token: &str, url: &str) -> String {
    let info = attach::read_info(&s.state).expect("info");
    s.rt.block_on(async {
        let c = attach::client(&info).expect("client");
        let got = c
            .head(format!("{url}?action=getAccessControl"))
            .bearer_auth(token)
            .header("x-ms-version", VERSION)
            .send()
            .await
            .expect("get");
        assert_eq!(got.status().as_u16(), 200, "{url}");
        got.headers().get("x-ms-acl").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    })
}

/// `PATCH ?action=setAccessControl` with `edit` applied to the current entries (masks left
/// out): a change made outside idlab.
fn edit_acl(s: &Served, token: &str, url: &str, edit: impl Fn(Vec<String>) -> Vec<String>) {
    let acl = get_acl(s, token, url);
    let entries = edit(acl.split(',').filter(|e| !e.contains("mask:")).map(str::to_string).collect());
    let info = attach::read_info(&s.state).expect("info");
    s.rt.block_on(async {
        let c = attach::client(&info).expect("client");
        let set = c
            .patch(format!("{url}?action=setAccessControl"))
            .bearer_auth(token)
            .header("x-ms-version", VERSION)
            .header("x-ms-acl", entries.join(","))
            .send()
            .await
            .expect("set");
        assert_eq!(set.status().as_u16(), 200);
    });
}

#[test]
fn the_gen2_data_lake_tutorial_applies_verifies_replans_clean_and_destroys() {
    let s = Served::start();
    let p = root().join("plans/datalake-gen2.yaml").display().to_string();
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    // The root exists with the file system: its entries are an update; TestFolder is created.
    assert!(a.stderr.contains("Apply complete: 10 created, 1 updated"), "{}", a.stderr);
    let v = s.idlab(&["verify", &p]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
    assert!(
        v.stdout.contains("PASS list-and-upload")
            && v.stdout.contains("(create, append, flush): 201, 202, 200")
            && v.stdout.contains("write / refused: 403 AuthorizationPermissionMismatch"),
        "{}",
        v.stdout
    );
    // Re-plan: no changes, the ACLs were read through dfs, and nothing was written anywhere.
    s.replans_clean(&p);
    let log = s.op("GET", "/_idlab/requests", None);
    let entries = log["value"].as_array().cloned().unwrap_or_default();
    let dfs_reads = entries
        .iter()
        .filter(|e| {
            e["method"] == "HEAD" && e["path"].as_str().is_some_and(|p| p.starts_with("/idlabtutorialgen2/tutorial"))
        })
        .count();
    assert_eq!(dfs_reads, 2, "one getAccessControl per folder: {log}");
    let writes = s.writes();
    assert!(writes.is_empty(), "{writes:?}");

    // Drift: the VM's entry changed outside idlab shows as exactly that entry; an entry the
    // plan does not name is left alone.
    let sub = s.subscription();
    let account = format!(
        "/subscriptions/{sub}/resourceGroups/myResourceGroup/providers/Microsoft.Storage/storageAccounts/idlabtutorialgen2"
    );
    let oid = s.vm_principal("myResourceGroup", "myVM");
    let dfs = s.op("GET", &format!("{account}?api-version=2025-06-01"), None)["properties"]["primaryEndpoints"]["dfs"]
        .as_str()
        .expect("dfs endpoint")
        .to_string();
    let folder = format!("{dfs}tutorial/TestFolder");
    let oob = data_owner(&s, &account);
    edit_acl(&s, &oob, &folder, |mut v| {
        for e in v.iter_mut() {
            if *e == format!("user:{oid}:rwx") {
                *e = format!("user:{oid}:r--");
            }
        }
        v.push("user:someone-else:r-x".into());
        v
    });
    let drift = s.idlab(&["plan", &p, "--detailed-exitcode"]);
    assert_eq!(drift.code, 2, "{}", drift.stdout);
    assert!(
        drift.stdout.contains(&format!("acl/user:{oid}: \"r--\" → \"rwx\""))
            && !drift.stdout.contains("someone-else")
            && drift.stdout.contains("Plan: 0 to create, 1 to update"),
        "{}",
        drift.stdout
    );
    // Destroying the folder alone takes out the plan's entries only: the folder and the
    // entry added outside the plan stay.
    let d = s.idlab(&["destroy", &p, "--target", "testfolder", "--auto-approve"]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    let left = get_acl(&s, &oob, &folder);
    assert!(!left.contains(&oid) && left.contains("user:someone-else:r-x"), "{left}");
    // Then the plan shows the entries missing (and nothing about someone-else), apply puts
    // them back, and the whole plan is destroyed and applied again.
    folder_drift_then_destroy_and_again(&s, &p, &oid, "Microsoft.Storage/storageAccounts?api-version=2025-06-01");
}

#[test]
fn without_the_callers_data_role_plan_explains_it_and_apply_fails_on_the_folder() {
    let s = Served::start();
    let text = std::fs::read_to_string(root().join("plans/datalake-gen2.yaml")).expect("plan");
    // The same plan without the caller-data-owner assignment.
    let start = text.find("  caller-data-owner:").expect("grant");
    let end = start + text[start..].find("\n\n").expect("end of the grant") + 2;
    let without = format!("{}{}", &text[..start], &text[end..]);
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("gen2-no-grant.yaml");
    std::fs::write(&path, without).expect("write");
    let p = path.display().to_string();
    let plan = s.idlab(&["plan", &p]);
    assert_eq!(plan.code, 0, "a warning, not an error: {}{}", plan.stdout, plan.stderr);
    assert!(
        plan.stderr.contains("E045(data-lake-grant)")
            && plan.stderr.contains("write folder `root`")
            && plan.stderr.contains("principal: ${caller}")
            && plan.stderr.contains("role: Storage Blob Data Owner"),
        "{}",
        plan.stderr
    );
    let a = s.idlab(&["apply", &p, "--auto-approve", "--principal-wait", "0"]);
    assert_eq!(a.code, 1, "{}{}", a.stdout, a.stderr);
    let all = format!("{}{}", a.stdout, a.stderr);
    assert!(
        all.contains("AuthorizationPermissionMismatch") && all.contains("needs Storage Blob Data Owner on the account"),
        "{all}"
    );
}
