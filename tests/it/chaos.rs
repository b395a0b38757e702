//! The chaos suite (docs/reliability.md): `apply` of `plans/tutorials.yaml` killed (SIGKILL)
//! at seeded random points and healed by a plain re-apply, the local cloud restarted in the
//! middle of long-running operations, Ctrl-C during a long wait, an operation past its
//! deadline, and `verify` under dropped connections. Every run is bounded by a hang guard
//! (a generous limit that only catches hangs; nothing here asserts how fast anything is).
//!
//! The seed is `IDLAB_CHAOS_SEED` (default 16) and is printed, so a failure can be replayed.
#![allow(clippy::print_stderr)] // the seed and each kill point, for replaying a failure

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Run, Served, owned_by_plan};

const PLAN: &str = "plans/tutorials.yaml";

/// Longer than any run here can take unless it hangs.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// ARM requests slowed a little, so that a kill can land between any two writes.
const SLOW: &str = "latency_ms: 10\nlro_ms: 40\nretry_after_s: 1\n";

fn seed() -> u64 {
    std::env::var("IDLAB_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(16)
}

/// A small seeded generator (xorshift64*): the same seed, the same kill points.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// A child `idlab` with its output in files (no pipe to fill while the test polls).
struct Spawned {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    _dir: tempfile::TempDir,
}

impl Spawned {
    fn start(s: &Served, args: &[&str], env: &[(&str, &str)]) -> Spawned {
        let dir = tempfile::tempdir().expect("tmp");
        let (out, err) = (dir.path().join("out"), dir.path().join("err"));
        let child = s
            .command(args, env)
            .stdout(Stdio::from(std::fs::File::create(&out).expect("out")))
            .stderr(Stdio::from(std::fs::File::create(&err).expect("err")))
            .spawn()
            .expect("idlab starts");
        Spawned { child, out, err, _dir: dir }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn exited(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_some()
    }

    /// Poll until `cond` holds (`true`) or the process exits (`false`), within the guard.
    fn until(&mut self, what: &str, mut cond: impl FnMut(&Spawned) -> bool) -> bool {
        let start = Instant::now();
        loop {
            if self.exited() {
                return false;
            }
            if cond(self) {
                return true;
            }
            assert!(start.elapsed() < HANG_GUARD, "{what}: still waiting after {HANG_GUARD:?}\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Wait for the exit, within the hang guard.
    fn finish(mut self, what: &str) -> Run {
        let start = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                break st;
            }
            if start.elapsed() > HANG_GUARD {
                let _ = self.child.kill();
                panic!("{what}: hung for {HANG_GUARD:?}\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Run {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&self.out).unwrap_or_default(),
            stderr: self.stderr(),
        }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(ok.success());
    }
}

/// What the subscription holds, without the subscription id and the principal ids (which
/// differ between local clouds): groups, resources, and role assignments as (scope, role).
fn inventory(s: &Served) -> Vec<String> {
    let sub = s.subscription();
    // A VM's OS disk is named with a random suffix (`<vm>_OsDisk_1_<32 hex>`), as on Azure.
    let norm = |id: &str| {
        let id = id.replace(&sub, "SUB").to_ascii_lowercase();
        match id.find("_osdisk_1_") {
            Some(at) => format!("{}_osdisk_1_<hex>", &id[..at]),
            None => id,
        }
    };
    let mut out = Vec::new();
    for path in [
        format!("/subscriptions/{sub}/resourcegroups?api-version=2024-11-01"),
        format!("/subscriptions/{sub}/resources?api-version=2021-04-01"),
    ] {
        let v = s.op("GET", &path, None);
        out.extend(v["value"].as_array().into_iter().flatten().filter_map(|r| r["id"].as_str()).map(norm));
    }
    for a in role_assignments(s) {
        let role = a.pointer("/properties/roleDefinitionId").and_then(Value::as_str).unwrap_or_default();
        let scope = a.pointer("/properties/scope").and_then(Value::as_str).unwrap_or_default();
        out.push(format!("role {} at {}", role.rsplit('/').next().unwrap_or_default(), norm(scope)));
    }
    out.sort();
    out
}

fn role_assignments(s: &Served) -> Vec<Value> {
    let path = format!(
        "/subscriptions/{}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01",
        s.subscription()
    );
    s.op("GET", &path, None)["value"].as_array().cloned().unwrap_or_default()
}

/// No two role assignments for the same (scope, principal, role).
fn assert_no_duplicate_role_assignment(s: &Served) {
    let mut seen = HashSet::new();
    for a in role_assignments(s) {
        let key = ["/properties/scope", "/properties/principalId", "/properties/roleDefinitionId"]
            .map(|p| a.pointer(p).and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase());
        assert!(seen.insert(key.clone()), "a duplicate role assignment: {key:?}");
    }
}

/// A clean apply of `plan` on a fresh local cloud: what it leaves, and how many writes it
/// takes.
fn clean_apply(plan: &str) -> (Vec<String>, usize) {
    let s = Served::with_faults(Some(SLOW));
    s.op("DELETE", "/_idlab/requests", None);
    let a = s.idlab(&["apply", plan, "--auto-approve", "--no-progress"]);
    assert_eq!(a.code, 0, "{}", a.stderr);
    (inventory(&s), s.writes().len())
}

/// [`clean_apply`] of the tutorials, once for the whole suite.
fn reference() -> &'static (Vec<String>, usize) {
    static REF: OnceLock<(Vec<String>, usize)> = OnceLock::new();
    REF.get_or_init(|| {
        let r = clean_apply(PLAN);
        assert!(r.1 > 20, "{} writes", r.1);
        r
    })
}

/// Start `apply plan`, kill it (SIGKILL) once the local cloud has seen `k` writes; `false`
/// when it finished first.
fn apply_killed_after(s: &Served, plan: &str, k: usize) -> bool {
    s.op("DELETE", "/_idlab/requests", None);
    let mut apply = Spawned::start(s, &["apply", plan, "--auto-approve", "--no-progress"], &[]);
    let reached = apply.until("apply", |_| s.writes().len() >= k);
    apply.kill();
    reached
}

/// The healed state: converged (a plain apply exits 0), a clean re-plan, the same resources
/// and role assignments as a clean apply (no orphan, nothing twice).
fn assert_healed(s: &Served, plan: &str, want: &[String], what: &str) {
    let a = Spawned::start(s, &["apply", plan, "--auto-approve", "--no-progress"], &[]).finish(what);
    assert_eq!(a.code, 0, "{what}: the re-apply\n{}", a.stderr);
    assert!(!a.stderr.contains("FAILED"), "{what}\n{}", a.stderr);
    s.replans_clean(plan);
    assert_no_duplicate_role_assignment(s);
    assert_eq!(inventory(s), want, "{what}: not what a clean apply leaves");
}

/// `n` kills at seeded random points, each on a fresh local cloud, each healed by a plain
/// re-apply; every fourth first destroys what the killed apply left (a plain destroy must
/// work after an interruption), then applies.
fn kills(group: u64, n: u64) -> u64 {
    let seed = seed() + group;
    let mut rng = Rng::new(seed);
    let writes = reference().1 as u64;
    let mut killed = 0;
    for i in 0..n {
        // Before the last write: the apply always has work left when it is killed.
        let k = 1 + rng.below(writes - 1) as usize;
        let destroy_first = i % 4 == 3;
        let what = format!("seed {seed}, kill {i} after write {k} of {writes}, destroy first: {destroy_first}");
        eprintln!("chaos: {what}");
        let s = Served::with_faults(Some(SLOW));
        if apply_killed_after(&s, PLAN, k) {
            killed += 1;
        }
        if destroy_first {
            let d = s.idlab(&["destroy", PLAN, "--auto-approve", "--no-progress"]);
            assert_eq!(d.code, 0, "{what}: destroy after the kill\n{}", d.stderr);
            assert!(owned_by_plan(&s, "tutorials").is_empty(), "{what}: {:?}", owned_by_plan(&s, "tutorials"));
        }
        assert_healed(&s, PLAN, &reference().0, &what);
    }
    eprintln!("chaos: seed {seed}: {killed} of {n} applies killed before their end, all healed");
    killed
}

/// The Data Lake Gen2 plan killed after every one of its writes in turn, each healed by a
/// plain re-apply, with a plan that works in between: its folders are written with the data
/// role the plan grants the deploying principal, a step an interrupted apply may leave out.
#[test]
fn the_gen2_plan_killed_after_each_write_is_healed_by_a_plain_reapply() {
    for plan in ["plans/datalake-gen2.yaml"] {
        let (want, writes) = clean_apply(plan);
        for k in 1..=writes {
            let what = format!("{plan}: killed after write {k} of {writes}");
            eprintln!("chaos: {what}");
            let s = Served::with_faults(Some(SLOW));
            apply_killed_after(&s, plan, k);
            let p = s.idlab(&["plan", plan]);
            assert_eq!(p.code, 0, "{what}: plan after the kill\n{}", p.stderr);
            assert_healed(&s, plan, &want, &what);
        }
    }
}

#[test]
fn kills_of_apply_at_random_points_are_healed_by_a_plain_reapply_1() {
    assert!(kills(0, 5) >= 3, "most runs must be killed before the end");
}

#[test]
fn kills_of_apply_at_random_points_are_healed_by_a_plain_reapply_2() {
    assert!(kills(100, 5) >= 3, "most runs must be killed before the end");
}

#[test]
fn kills_of_apply_at_random_points_are_healed_by_a_plain_reapply_3() {
    assert!(kills(200, 5) >= 3, "most runs must be killed before the end");
}

#[test]
fn kills_of_apply_at_random_points_are_healed_by_a_plain_reapply_4() {
    assert!(kills(300, 5) >= 3, "most runs must be killed before the end");
}

/// Killed right after the vault exists and before the deploying principal's access policy
/// (`kv:creator`) is added: plan, destroy and apply must not be stuck on the secret they
/// cannot read.
#[test]
fn an_apply_killed_between_a_vault_and_its_creator_policy_does_not_block_the_next_run() {
    let s =
        Served::with_faults(Some("per_type:\n  Microsoft.KeyVault/vaults/accessPolicies: { latency_ms: 600000 }\n"));
    let sub = s.subscription();
    let vault = format!(
        "/subscriptions/{sub}/resourceGroups/myResourceGroupVM/providers/Microsoft.KeyVault/vaults/idlab-tutorials-kv?api-version=2024-11-01"
    );
    let mut apply = Spawned::start(&s, &["apply", PLAN, "--auto-approve", "--no-progress"], &[]);
    let vault_there = apply.until("apply", |_| s.op("GET", &vault, None)["id"].is_string());
    apply.kill();
    assert!(vault_there, "the vault was never created");
    s.op("PUT", "/_idlab/faults", Some(json!({})));
    let p = s.idlab(&["plan", PLAN, "--detailed-exitcode"]);
    assert_eq!(p.code, 2, "{}{}", p.stdout, p.stderr);
    assert!(p.stdout.contains("kv:creator (key_vault_access_policy) will be created"), "{}", p.stdout);
    assert!(!p.stderr.contains("SecretUnreadable"), "{}", p.stderr);
    let d = s.idlab(&["destroy", PLAN, "--auto-approve", "--no-progress"]);
    assert_eq!(d.code, 0, "{}", d.stderr);
    let a = s.idlab(&["apply", PLAN, "--auto-approve", "--no-progress"]);
    assert_eq!(a.code, 0, "{}", a.stderr);
    s.replans_clean(PLAN);
    // And once more from nothing (the vault purged), killed at the same point.
    let d = s.idlab(&["destroy", PLAN, "--auto-approve", "--no-progress", "--purge"]);
    assert_eq!(d.code, 0, "{}", d.stderr);
    let slow = json!({"per_type": {"Microsoft.KeyVault/vaults/accessPolicies": {"latency_ms": 600000}}});
    s.op("PUT", "/_idlab/faults", Some(slow));
    let mut apply = Spawned::start(&s, &["apply", PLAN, "--auto-approve", "--no-progress"], &[]);
    assert!(apply.until("apply", |_| s.op("GET", &vault, None)["id"].is_string()));
    apply.kill();
    s.op("PUT", "/_idlab/faults", Some(json!({})));
    let a = s.idlab(&["apply", PLAN, "--auto-approve", "--no-progress"]);
    assert_eq!(a.code, 0, "{}", a.stderr);
    assert!(a.stderr.contains("kv:creator: created"), "{}", a.stderr);
    s.replans_clean(PLAN);
}

/// The local cloud killed and restarted while operations are in progress (it forgets them:
/// their status URLs answer 404): every apply ends, within its deadline, and converges.
#[test]
fn local_cloud_restarts_during_long_running_operations_end_every_apply() {
    let faults = "lro_ms: 700\nretry_after_s: 1\n";
    let types = ["virtualNetworks", "storageAccounts", "vaults", "servers", "virtualMachines"];
    let mut forgotten = 0;
    for (i, t) in types.iter().enumerate() {
        let what = format!("restart {i}, during a PUT of {t}");
        eprintln!("chaos: {what}");
        let mut s = Served::with_faults(Some(faults));
        let mut apply =
            Spawned::start(&s, &["apply", PLAN, "--auto-approve", "--no-progress", "--operation-timeout", "60s"], &[]);
        let seen = apply.until(&what, |_| {
            s.arm_log()
                .iter()
                .any(|(m, p, _)| m == "PUT" && p.contains("/providers/Microsoft.") && p.contains(&format!("/{t}/")))
        });
        assert!(seen, "{what}: apply ended before the PUT\n{}", apply.stderr());
        s.restart(Some(faults));
        let a = apply.finish(&what);
        forgotten += forgotten_polls(&s);
        eprintln!("chaos: {what}: apply exited {}", a.code);
        // It ends: converged, or failed cleanly (a lost operation says so).
        assert!(a.code == 0 || a.code == 1, "{what}: exit {}\n{}", a.code, a.stderr);
        if a.code == 1 {
            assert!(a.stderr.contains("FAILED"), "{what}\n{}", a.stderr);
        }
        let again = s.idlab(&["apply", PLAN, "--auto-approve", "--no-progress"]);
        assert_eq!(again.code, 0, "{what}: the re-apply\n{}", again.stderr);
        s.replans_clean(PLAN);
        assert_no_duplicate_role_assignment(&s);
    }
    // The restarts did make operations vanish under a waiting apply.
    assert!(forgotten > 0, "no poll of a forgotten operation in {} restarts", types.len());
    eprintln!("chaos: {} restarts, {forgotten} polls answered 404 (operation forgotten)", types.len());
}

/// Polls of an operation status URL the local cloud answered 404 since its start.
fn forgotten_polls(s: &Served) -> usize {
    let log = s.op("GET", "/_idlab/requests", None);
    log["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["path"].as_str().is_some_and(|p| p.starts_with("/_idlab/operations/")) && e["status"] == 404)
        .count()
}

/// Ctrl-C while operations take ten minutes: the waits end, the summary is printed, 130.
#[test]
fn ctrl_c_ends_long_waits_and_prints_the_summary() {
    let s = Served::with_faults(Some("lro_ms: 600000\nretry_after_s: 1\n"));
    let mut apply = Spawned::start(&s, &["apply", PLAN, "--auto-approve", "--no-progress"], &[]);
    let waiting = apply.until("apply", |a| a.stderr().contains("(virtual_network): creating"));
    assert!(waiting, "{}", apply.stderr());
    // The vnet's PUT has been answered and its operation is being polled.
    apply.until("apply", |_| s.arm_log().iter().any(|(m, p, _)| m == "PUT" && p.contains("/virtualNetworks/")));
    apply.signal("INT");
    let r = apply.finish("apply after Ctrl-C");
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(r.stderr.contains("Interrupted: starting nothing new"), "{}", r.stderr);
    assert!(r.stderr.contains("Apply complete:"), "{}", r.stderr);
    assert!(r.stderr.contains("vm:vnet (virtual_network): interrupted while waiting for PUT"), "{}", r.stderr);
    assert!(r.stderr.contains("vm (virtual_machine): interrupted before it started"), "{}", r.stderr);
}

/// Ctrl-C while apply is still reading Azure (every read throttled, the client waiting out a
/// ten-minute `Retry-After`): the wait ends, nothing was changed, and the exit is 130.
#[test]
fn ctrl_c_while_reading_azure_exits_130_having_changed_nothing() {
    let s = Served::with_faults(Some("throttle_rate: 1.0\nretry_after_s: 600\n"));
    let mut apply = Spawned::start(&s, &["apply", PLAN, "--auto-approve", "--no-progress"], &[]);
    assert!(apply.until("apply", |_| s.arm_log().iter().any(|(m, _, _)| m == "GET")), "{}", apply.stderr());
    apply.signal("INT");
    let r = apply.finish("apply after Ctrl-C while observing");
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(r.stderr.contains("Interrupted while reading Azure: nothing was changed"), "{}", r.stderr);
    assert!(s.arm_log().iter().all(|(_, _, w)| !w), "a write after Ctrl-C: {:?}", s.arm_log());
}

/// A second Ctrl-C while a request is still on the wire (the first ends waits, not requests)
/// exits 130 at once: without the summary the end of the walk would print.
#[test]
fn a_second_ctrl_c_exits_at_once() {
    // Access-policy writes hang (observe never sends one).
    let s =
        Served::with_faults(Some("per_type:\n  Microsoft.KeyVault/vaults/accessPolicies: { latency_ms: 600000 }\n"));
    let mut apply = Spawned::start(&s, &["apply", PLAN, "--auto-approve", "--no-progress"], &[]);
    let creating = |a: &Spawned| a.stderr().contains("kv:creator (key_vault_access_policy): creating");
    assert!(apply.until("apply", creating), "{}", apply.stderr());
    apply.signal("INT");
    assert!(apply.until("apply", |a| a.stderr().contains("Interrupted: starting nothing new")), "{}", apply.stderr());
    apply.signal("INT");
    let r = apply.finish("apply after two Ctrl-C");
    assert_eq!(r.code, 130, "{}", r.stderr);
    assert!(!r.stderr.contains("Apply complete:"), "the walk was not waited for: {}", r.stderr);
}

/// An operation that outlives `--operation-timeout` fails, naming the resource, its
/// operation URL and the last answer.
#[test]
fn an_operation_past_its_deadline_names_the_resource_the_url_and_the_last_answer() {
    // Polled every 0.1 s; the operation takes 600 s × 0.1 = 60 s.
    let s = Served::with_faults(Some("lro_ms: 600000\nretry_after_s: 1\ntime_scale: 0.1\n"));
    let r = Spawned::start(
        &s,
        &["apply", PLAN, "--auto-approve", "--no-progress", "--target", "vm:vnet", "--operation-timeout", "1s"],
        &[],
    )
    .finish("apply with a deadline");
    assert_eq!(r.code, 1, "{}", r.stderr);
    let line = r.stderr.lines().find(|l| l.contains("OperationTimedOut")).unwrap_or_else(|| panic!("{}", r.stderr));
    assert!(line.contains("/providers/Microsoft.Network/virtualNetworks/myVM"), "{line}");
    assert!(line.contains("/_idlab/operations/"), "{line}");
    assert!(line.contains("last answer: HTTP 200 status `InProgress`"), "{line}");
    assert!(!line.contains("api-version="), "the URL is shown without its query: {line}");
    let bad = s.idlab(&["apply", PLAN, "--auto-approve", "--operation-timeout", "soon"]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(bad.stderr.contains("`soon` is not a duration"), "{}", bad.stderr);
}

/// `verify` with 20% of connections dropped (ARM, data planes, identity endpoints): ten runs
/// of ten pass, through retries; with every data-plane connection dropped it cannot run (1),
/// which is not a failed check (3).
#[test]
fn verify_under_dropped_connections_passes_ten_of_ten() {
    let s = Served::start();
    let a = s.idlab(&["apply", PLAN, "--auto-approve", "--no-progress"]);
    assert_eq!(a.code, 0, "{}", a.stderr);
    let fast = [("IDLAB_RETRY_BASE_MS", "20")];
    s.op("DELETE", "/_idlab/requests", None);
    let clean = s.idlab_env(&["verify", PLAN], &fast);
    assert_eq!(clean.code, 0, "{}{}", clean.stdout, clean.stderr);
    let per_run = requests(&s);
    let mut passed = 0;
    let mut sent = 0;
    for run in 0..10u64 {
        let faults = json!({"seed": seed() + run, "drop_rate": 0.2, "data_drop_rate": 0.2});
        s.op("PUT", "/_idlab/faults", Some(faults));
        s.op("DELETE", "/_idlab/requests", None);
        let v = s.idlab_env(&["verify", PLAN], &fast);
        s.op("PUT", "/_idlab/faults", Some(json!({})));
        sent += requests(&s);
        assert_eq!(v.code, 0, "run {run}: {}{}", v.stdout, v.stderr);
        assert!(v.stdout.contains("Verify: 8 passed, 0 failed, 0 skipped."), "run {run}: {}", v.stdout);
        passed += 1;
    }
    assert_eq!(passed, 10);
    // The drops happened: the runs needed more requests than ten clean ones.
    assert!(sent > 10 * per_run, "{sent} requests for 10 runs, {per_run} for a clean one");
    eprintln!("chaos: verify with 20% drops: 10 of 10 passed, {sent} requests (clean: {per_run} a run)");
    // Nothing answers on the data planes: verify cannot run; that is exit 1, not 3.
    s.op("PUT", "/_idlab/faults", Some(json!({"data_drop_rate": 1.0})));
    let v = s.idlab_env(&["verify", PLAN], &[("IDLAB_RETRY_BASE_MS", "1")]);
    assert_eq!(v.code, 1, "{}{}", v.stdout, v.stderr);
    assert!(v.stderr.contains("ConnectionFailed") || v.stdout.contains("could not run"), "{}{}", v.stdout, v.stderr);
}

/// Requests in the local cloud's log since it was last cleared (the log call itself aside).
fn requests(s: &Served) -> usize {
    let log = s.op("GET", "/_idlab/requests", None);
    let by_path: BTreeMap<String, usize> =
        log["value"].as_array().into_iter().flatten().fold(BTreeMap::new(), |mut m, e| {
            *m.entry(e["path"].as_str().unwrap_or_default().to_string()).or_default() += 1;
            m
        });
    by_path.iter().filter(|(p, _)| !p.starts_with("/_idlab/")).map(|(_, n)| n).sum()
}
