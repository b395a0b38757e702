//! Engine bench against the in-process local cloud.
//!
//! First, a generated 200-resource plan of a fixed shape, with per-kind latencies set in the
//! local cloud's fault configuration: 1 resource group (every request +100 ms); 60
//! user-assigned identities (+150 ms), each with a Reader role assignment on the group
//! (+100 ms), so the chain group → identity → assignment is the critical path of requests; 39
//! virtual networks and 40 network security groups, long-running operations of 300 ms and
//! 200 ms. Apply wall time is compared with the lower bound max(critical path, total latency ÷
//! parallelism), and with a FIFO ready queue and a serial walk.
//!
//! Second, a no-op plan of 1,000 resources: wall time of observe + diff, the request count,
//! and the process's peak memory.
//!
//! Third, `plans/tutorials.yaml` (every tutorial in one environment) applied from empty by
//! the real binary against the local cloud with default settings (`idlab apply --local`,
//! which starts the local cloud in-process from a fresh state directory), then `verify`:
//! wall time of each, median of 5. Target: apply under 2 s.
//!
//! Run: `cargo bench --bench apply` (all), or with `-- tutorials`, `-- apply200` or
//! `-- noop` for one section.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used, clippy::disallowed_types)]

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use idlab::arm::Client;
use idlab::arm::auth::{Cached, LocalCredential};
use idlab::engine::{self, Context, Event, Reporter, Shared};
use idlab::local::faults::{Faults, TypeFaults};
use idlab::local::{Cloud, Config, attach};
use idlab::model::Sensitive;
use idlab::resolve::{Options, load_str};

struct Quiet;
impl Reporter for Quiet {
    fn event(&self, _: Event) {}
}

fn plan_200() -> String {
    let mut s = String::from(
        "name: bench200\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: bench-rg\n",
    );
    for i in 0..60 {
        let _ = write!(
            s,
            "  id{i}:\n    type: user_assigned_identity\n    name: id-{i}\n    resource_group: ${{rg}}\n  ra{i}:\n    type: role_assignment\n    scope: ${{rg}}\n    principal: ${{id{i}}}\n    role: Reader\n"
        );
    }
    for i in 0..39 {
        let _ = write!(
            s,
            "  vnet{i}:\n    type: virtual_network\n    name: vnet-{i}\n    resource_group: ${{rg}}\n    address_space: [10.{i}.0.0/16]\n"
        );
    }
    for i in 0..40 {
        let _ =
            write!(s, "  nsg{i}:\n    type: network_security_group\n    name: nsg-{i}\n    resource_group: ${{rg}}\n");
    }
    s
}

fn plan_noop(n: usize) -> String {
    let mut s = String::from(
        "name: bench1000\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: noop-rg\n",
    );
    for i in 0..n - 1 {
        let _ =
            write!(s, "  id{i}:\n    type: user_assigned_identity\n    name: nid-{i}\n    resource_group: ${{rg}}\n");
    }
    s
}

fn faults() -> Faults {
    let mut f = Faults::default();
    let t = |lat: Option<u64>, lro: Option<u64>| TypeFaults { latency_ms: lat, lro_ms: lro };
    f.per_type.insert("Microsoft.Resources/resourceGroups".into(), t(Some(100), None));
    f.per_type.insert("Microsoft.ManagedIdentity/userAssignedIdentities".into(), t(Some(150), None));
    f.per_type.insert("Microsoft.Authorization/roleAssignments".into(), t(Some(100), None));
    f.per_type.insert("Microsoft.Network/virtualNetworks".into(), t(None, Some(300)));
    f.per_type.insert("Microsoft.Network/networkSecurityGroups".into(), t(None, Some(200)));
    f
}

async fn context(cloud: &Cloud, parallelism: usize, fifo: bool) -> Context {
    let info = &cloud.info;
    let http = attach::client(info).unwrap();
    let cred = LocalCredential {
        http: http.clone(),
        token_url: info.token_url.clone(),
        client_id: info.operator_client_id.clone(),
        object_id: info.operator_object_id.clone(),
        secret: idlab::arm::auth::LocalSecret::Secret(Sensitive::new(cloud.operator_secret().unwrap())),
    };
    let client = Client::new(http, info.arm_url.clone(), Arc::new(Cached::new(Arc::new(cred))));
    Context {
        client,
        subscription: info.subscription_id.clone(),
        tenant_id: Some(info.tenant_id.clone()),
        caller_object_id: Some(info.operator_object_id.clone()),
        parallelism,
        adopt: false,
        force: false,
        destroy: false,
        only: None,
        fifo,
        principal_wait: Duration::from_secs(120),
        check_names: true,
        purge: false,
        cancel: engine::Cancel::new(),
    }
}

/// `plans/tutorials.yaml` from empty through the binary: apply, then verify, 5 times each.
fn tutorials() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let plan = root.join("plans/tutorials.yaml");
    let run = |args: &[&str], state: &std::path::Path| -> Duration {
        let start = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_idlab"))
            .args(args)
            .arg(&plan)
            .args(["--local", "--state"])
            .arg(state)
            .current_dir(root)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let t = start.elapsed();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        t
    };
    let (mut applies, mut verifies) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        applies.push(run(&["apply", "--auto-approve"], &state));
        verifies.push(run(&["verify"], &state));
    }
    applies.sort();
    verifies.sort();
    let ms = |d: &Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    println!(
        "plans/tutorials.yaml from empty (idlab apply --local, fresh state, default settings): median {} (min {}, max {}); verify median {} — target apply < 2 s, ratio {:.2}",
        ms(&applies[2]),
        ms(&applies[0]),
        ms(&applies[4]),
        ms(&verifies[2]),
        applies[2].as_secs_f64() / 2.0
    );
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wants = |s: &str| only.is_empty() || only.iter().any(|o| o == s);
    if wants("tutorials") {
        tutorials();
    }
    if wants("apply200") {
        apply200();
    }
    if wants("noop") {
        noop();
    }
}

fn apply200() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let text = plan_200();
    let plan =
        load_str("bench200.yaml", text, std::path::Path::new("."), &Options::default()).plan.expect("valid plan");
    assert_eq!(plan.decls.len(), 200);
    // Lower bound from the configured latencies: the critical path of requests and the total.
    let per_node = |k: &str| -> u64 {
        match k {
            "resource_group" => 100,
            "user_assigned_identity" => 150,
            "role_assignment" => 100,
            "virtual_network" => 300,
            _ => 200,
        }
    };
    let total: u64 = plan.decls.iter().map(|d| per_node(d.kind.type_name())).sum();
    let critical: u64 = 100 + 150 + 100;
    for parallelism in [10usize] {
        let bound = Duration::from_millis(critical.max(total / parallelism as u64));
        let mut lines = Vec::new();
        for (label, par, fifo) in [
            ("critical-path first", parallelism, false),
            ("FIFO ready queue", parallelism, true),
            ("serial walk", 1, false),
        ] {
            let mut times = Vec::new();
            for _ in 0..3 {
                let tmp = tempfile::tempdir().unwrap();
                let mut config = Config::new(tmp.path().join("state"));
                config.port = Some(0);
                config.faults = faults();
                let cloud = Cloud::start(config).unwrap();
                let t = rt.block_on(async {
                    let cx = context(&cloud, par, fifo).await;
                    let obs = engine::observe(&cx, &plan).await.unwrap();
                    let sh = Shared { cx: &cx, plan: &plan, reporter: Arc::new(Quiet) };
                    let start = Instant::now();
                    let results = engine::walk::apply(&sh, obs).await;
                    let t = start.elapsed();
                    assert!(
                        results.iter().all(|r| matches!(r.2, engine::Outcome::Created(_))),
                        "{:?}",
                        results.iter().find(|r| !matches!(r.2, engine::Outcome::Created(_)))
                    );
                    t
                });
                times.push(t);
                if par == 1 {
                    break; // the serial walk is long; one run is enough
                }
            }
            times.sort();
            let median = times[times.len() / 2];
            lines.push(format!(
                "  {label:<20} median {:>7.2} s  ratio to bound {:.2}",
                median.as_secs_f64(),
                median.as_secs_f64() / bound.as_secs_f64()
            ));
        }
        println!(
            "apply of 200 resources, parallelism {parallelism}: lower bound max(critical path {critical} ms, total {total} ms / {parallelism}) = {:.2} s",
            bound.as_secs_f64()
        );
        for l in lines {
            println!("{l}");
        }
    }
}

/// A no-op plan of 1,000 resources.
fn noop() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let text = plan_noop(1000);
    let plan =
        load_str("bench1000.yaml", text, std::path::Path::new("."), &Options::default()).plan.expect("valid plan");
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::new(tmp.path().join("state"));
    config.port = Some(0);
    let cloud = Cloud::start(config).unwrap();
    rt.block_on(async {
        let cx = context(&cloud, 10, false).await;
        let obs = engine::observe(&cx, &plan).await.unwrap();
        let sh = Shared { cx: &cx, plan: &plan, reporter: Arc::new(Quiet) };
        let _ = engine::walk::apply(&sh, obs).await;
        let mut times = Vec::new();
        let mut requests = 0;
        for _ in 0..5 {
            let cx = context(&cloud, 10, false).await;
            let start = Instant::now();
            let obs = engine::observe(&cx, &plan).await.unwrap();
            let p = idlab::plan::make(&cx.plan_options(&plan), &plan.decls, &plan.dag, &obs, false);
            times.push(start.elapsed());
            assert!(!p.has_changes());
            requests = cx.client.stats.requests.load(Ordering::Relaxed);
        }
        times.sort();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let hwm = status.lines().find(|l| l.starts_with("VmHWM")).map(|l| l.trim_start_matches("VmHWM:").trim().to_string()).unwrap_or_default();
        println!("no-op plan of 1,000 resources: median {:.3} s (of 5), {requests} requests (1,000 reads + 3 ownership listings), peak memory of the bench process (local cloud included) {hwm}", times[2].as_secs_f64());
    });
}
