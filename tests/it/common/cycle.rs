//! The acceptance cycle every tutorial plan goes through, and the checks several tutorials
//! share: secrets appearing nowhere, a global name taken elsewhere, folder ACL drift.

use serde_json::json;

use super::root;
use super::served::{Served, owned_by_plan};

/// The acceptance cycle of one tutorial plan: apply from empty, verify passes, a re-plan shows
/// no changes and a re-apply writes nothing (ARM or data planes), destroy leaves nothing the
/// plan owns, and apply and verify work again from there.
pub(crate) fn acceptance_cycle(plan: &str, name: &str, checks: usize) {
    let s = Served::start();
    let p = root().join(plan).display().to_string();
    let passed = format!("Verify: {checks} passed, 0 failed, 0 skipped.");
    for round in 0..2 {
        let a = s.idlab(&["apply", &p, "--auto-approve"]);
        assert_eq!(a.code, 0, "round {round}: {}{}", a.stdout, a.stderr);
        let v = s.idlab(&["verify", &p]);
        assert!(v.code == 0 && v.stdout.contains(&passed), "round {round}: {}{}", v.stdout, v.stderr);
        s.replans_clean(&p);
        assert_eq!(s.idlab(&["apply", &p, "--auto-approve"]).code, 0);
        assert!(s.writes().is_empty(), "round {round}: {:?}", s.writes());
        assert!(!owned_by_plan(&s, name).is_empty());
        let d = s.idlab(&["destroy", &p, "--auto-approve"]);
        assert_eq!(d.code, 0, "round {round}: {}{}", d.stdout, d.stderr);
        assert!(owned_by_plan(&s, name).is_empty(), "round {round}: {:?}", owned_by_plan(&s, name));
    }
}

/// Every command a secret flows through, in text and JSON: plan, apply (twice), verify,
/// destroy, a plan saved to `saved` and its apply. Returns everything seen, the saved plan
/// included; the resources exist again at the end.
pub(crate) fn secret_runs(s: &Served, plan: &str, saved: &std::path::Path, env: &[(&str, &str)]) -> String {
    let saved_s = saved.display().to_string();
    let mut seen = String::new();
    for args in [
        vec!["plan", plan, "--format", "json"],
        vec!["apply", plan, "--auto-approve", "--format", "json"],
        vec!["apply", plan, "--auto-approve"],
        vec!["verify", plan, "--format", "json"],
        vec!["destroy", plan, "--auto-approve"],
        vec!["plan", plan, "--out", saved_s.as_str()],
        vec!["apply", saved_s.as_str()],
    ] {
        seen.push_str(&everything_seen(s, &args, env));
    }
    seen.push_str(&std::fs::read_to_string(saved).unwrap_or_default());
    seen
}

/// Run one command, which must succeed, and gather everything a secret could leak into
/// meanwhile: its stdout and stderr, the local cloud's state files and its request log, and
/// the exchanges idlab captured (`IDLAB_CAPTURE`).
pub(crate) fn everything_seen(s: &Served, args: &[&str], env: &[(&str, &str)]) -> String {
    let r = s.idlab_env(args, env);
    assert!(r.code == 0, "{args:?}: {}{}", r.stdout, r.stderr);
    let mut seen = format!("{}{}", r.stdout, r.stderr);
    for entry in std::fs::read_dir(&s.state).expect("state").filter_map(Result::ok) {
        if entry.path().is_file() {
            seen.push_str(&String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap_or_default()));
        }
    }
    seen.push_str(&s.op("GET", "/_idlab/requests", None).to_string());
    seen.push_str(&std::fs::read_to_string(&s.log).unwrap_or_default());
    seen.push_str(&std::fs::read_to_string(&s.capture).unwrap_or_default());
    seen
}

/// The secret appears in `seen` in none of its forms: plain, URL-encoded, base64.
pub(crate) fn assert_not_leaked(seen: &str, secret: &str) {
    use base64::Engine;
    let forms = [
        secret.to_string(),
        secret.replace('!', "%21").replace('/', "%2F").replace('+', "%2B").replace('=', "%3D"),
        base64::engine::general_purpose::STANDARD.encode(secret),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
    ];
    for f in forms {
        assert!(!seen.contains(&f), "the secret leaked as {f}");
    }
}

/// With a global name taken elsewhere, `plan` and `apply` of `plan` fail with `message` before
/// any write; with `free_var` (`NAME=VALUE`, another name) the plan is clean.
pub(crate) fn assert_name_taken(s: &Served, plan: &str, message: &str, free_var: &str) {
    s.op("DELETE", "/_idlab/requests", None);
    let p = root().join(plan).display().to_string();
    for cmd in [vec!["plan", &p], vec!["apply", &p, "--auto-approve"]] {
        let r = s.idlab(&cmd);
        assert_eq!(r.code, 1, "{cmd:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(message), "{}", r.stderr);
    }
    assert!(s.arm_log().iter().all(|(_, _, write)| !write), "{:?}", s.arm_log());
    let ok = s.idlab(&["plan", &p, "--var", free_var]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
}

/// The plan shows exactly the folder entry of `oid` changed out of band (and nothing about
/// `someone-else`); apply puts it back; destroy leaves no resource group and no account of
/// the listed type (`list`: `Type?api-version=…`); apply and verify work again from empty.
pub(crate) fn folder_drift_then_destroy_and_again(s: &Served, p: &str, oid: &str, list: &str) {
    let drift = s.idlab(&["plan", p, "--detailed-exitcode"]);
    assert_eq!(drift.code, 2, "{}", drift.stdout);
    assert!(
        drift.stdout.contains(&format!("acl/user:{oid}"))
            && !drift.stdout.contains("someone-else")
            && drift.stdout.contains("Plan: 0 to create, 1 to update"),
        "{}",
        drift.stdout
    );
    assert_eq!(s.idlab(&["apply", p, "--auto-approve"]).code, 0);
    assert_eq!(s.idlab(&["plan", p, "--detailed-exitcode"]).code, 0);
    // Destroy leaves nothing the plan owned; applying again from empty works.
    let d = s.idlab(&["destroy", p, "--auto-approve"]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    let sub = s.subscription();
    assert_eq!(
        s.op("GET", &format!("/subscriptions/{sub}/resourceGroups/myResourceGroup?api-version=2024-11-01"), None)["error"]
            ["code"],
        "ResourceGroupNotFound"
    );
    let accounts = s.op("GET", &format!("/subscriptions/{sub}/providers/{list}"), None);
    assert_eq!(accounts["value"], json!([]), "{accounts}");
    let again = s.idlab(&["apply", p, "--auto-approve"]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(s.idlab(&["verify", p]).code, 0);
}
