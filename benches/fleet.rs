//! Fleet bench: 50 copies of `plans/tutorials.yaml` (1,150 resources) applied at once against
//! the in-process local cloud with ARM throttling on (Azure's documented buckets: reads 250 +
//! 25/s, writes and deletes 200 + 10/s per subscription and principal, role-assignment writes
//! 120 a minute) and per-kind latencies and long-running operations, time compressed by the
//! fault file's `time_scale` (every time below is in scaled, Azure-like, seconds).
//!
//! Fleets (`--instances`) are built on another branch: until they land, each copy is the plan
//! with its own plan name (`tutorials-NN`, its ownership tag) and its variables suffixed
//! (`myResourceGroupVM-NN`, `idlabtutorialsNN`, …), all 50 applied concurrently through one
//! ARM client, as one `apply --instances 50` will. The merger can switch this to the
//! instances code.
//!
//! Reported: wall time against the lower bound max(critical path, the time the buckets
//! permit for the fleet's fixed minimum requests: the observe reads, the successful ARM
//! writes and deletes, the role-assignment writes); the 429 answers; the peak memory of the
//! process (VmHWM; the local cloud runs in it); and a baseline in the same run: no pacing, at
//! most 10 requests in flight ("10 wide", the old retry policy), and its ratio.
//!
//! Run: `cargo bench --bench fleet` (`-- paced` or `-- baseline` for one side; `FLEET_N`
//! copies, default 50; `FLEET_RUNS` paced runs, default 3; `FLEET_BASELINE_RUNS`, default 1).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used, clippy::disallowed_types)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use idlab::arm::Client;
use idlab::arm::auth::{Cached, LocalCredential};
use idlab::arm::pace::{PaceConfig, Pacer};
use idlab::engine::{self, Context, Event, Outcome, Reporter, Shared};
use idlab::local::faults::{Faults, Throttling, TypeFaults};
use idlab::local::{Cloud, Config, attach};
use idlab::model::Sensitive;
use idlab::resolve::{Options, Validated, load_str};

/// Scaled time: 1 s of the bench's clock is 10 s of Azure's.
const TIME_SCALE: f64 = 0.1;

struct Quiet;
impl Reporter for Quiet {
    fn event(&self, _: Event) {}
}

/// Per ARM type: (added latency, long-running operation), in Azure milliseconds.
fn latencies() -> Vec<(&'static str, u64, u64)> {
    vec![
        ("Microsoft.Resources/resourceGroups", 300, 0),
        ("Microsoft.ManagedIdentity/userAssignedIdentities", 500, 0),
        ("Microsoft.Authorization/roleAssignments", 800, 0),
        ("Microsoft.Network/virtualNetworks", 300, 4_000),
        ("Microsoft.Network/networkSecurityGroups", 300, 3_000),
        ("Microsoft.Network/publicIPAddresses", 300, 3_000),
        ("Microsoft.Network/networkInterfaces", 300, 2_000),
        ("Microsoft.Compute/virtualMachines", 500, 30_000),
        ("Microsoft.Storage/storageAccounts", 300, 15_000),
        ("Microsoft.Storage/storageAccounts/blobServices/containers", 300, 0),
        ("Microsoft.KeyVault/vaults", 500, 10_000),
        ("Microsoft.KeyVault/vaults/accessPolicies", 500, 0),
        ("Microsoft.DataLakeStore/accounts", 500, 15_000),
        ("Microsoft.Sql/servers", 500, 30_000),
        ("Microsoft.Sql/servers/databases", 500, 15_000),
        ("Microsoft.Sql/servers/administrators", 500, 5_000),
    ]
}

fn faults() -> Faults {
    // Long-running operations ask to be polled every 10 s, as Azure's providers commonly do.
    let mut f = Faults { time_scale: TIME_SCALE, retry_after_s: 10, ..Faults::default() };
    for (t, lat, lro) in latencies() {
        f.per_type.insert(t.into(), TypeFaults { latency_ms: Some(lat), lro_ms: (lro > 0).then_some(lro) });
    }
    f.throttling = Throttling { enabled: true, ..Throttling::default() };
    f
}

/// The copies: the tutorials plan under its own plan name, with suffixed global names.
fn copies(n: usize) -> Vec<Validated> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("plans/tutorials.yaml")).unwrap();
    (1..=n)
        .map(|i| {
            let id = format!("{i:02}");
            let t = text
                .replacen("\nname: tutorials\n", &format!("\nname: tutorials-{id}\n"), 1)
                .replacen(
                    "resource_group: myResourceGroupVM\n",
                    &format!("resource_group: myResourceGroupVM-{id}\n"),
                    1,
                )
                .replacen("storage_account: idlabtutorials\n", &format!("storage_account: idlabtutorials{id}\n"), 1)
                .replacen("vault: idlab-tutorials-kv\n", &format!("vault: idlab-tutorials-kv-{id}\n"), 1)
                .replacen("store: idlabtutorialsadls\n", &format!("store: idlabtutorialsadls{id}\n"), 1)
                .replacen("server: idlab-tutorials-sql\n", &format!("server: idlab-tutorials-sql-{id}\n"), 1);
            load_str("tutorials.yaml", t, &root.join("plans"), &Options::default()).plan.expect("valid copy")
        })
        .collect()
}

/// The critical path of one copy, in Azure milliseconds: the longest chain of
/// latency + long-running operation over the dependency graph.
fn critical_path_ms(plan: &Validated) -> u64 {
    let by_type: HashMap<String, u64> =
        latencies().into_iter().map(|(t, lat, lro)| (t.to_ascii_lowercase(), lat + lro)).collect();
    let cost = |i: usize| -> u64 {
        let arm = plan.decls[i].kind.arm_type().unwrap_or_default().to_ascii_lowercase();
        by_type.get(&arm).copied().unwrap_or(0)
    };
    let order = plan.dag.topo_order().expect("acyclic");
    let mut finish = vec![0u64; plan.decls.len()];
    for i in order {
        let start = plan.dag.dependencies(i).into_iter().map(|d| finish[d]).max().unwrap_or(0);
        finish[i] = start + cost(i);
    }
    finish.into_iter().max().unwrap_or(0)
}

fn client(cloud: &Cloud, pace: Pacer) -> Client {
    let info = &cloud.info;
    let http = attach::client(info).unwrap();
    let cred = LocalCredential {
        http: http.clone(),
        token_url: info.token_url.clone(),
        client_id: info.operator_client_id.clone(),
        object_id: info.operator_object_id.clone(),
        secret: idlab::arm::auth::LocalSecret::Secret(Sensitive::new(cloud.operator_secret().unwrap())),
    };
    let mut c = Client::new(http, info.arm_url.clone(), Arc::new(Cached::new(Arc::new(cred))));
    c.pace = Arc::new(pace);
    c
}

fn context(cloud: &Cloud, client: Client) -> Context {
    Context {
        client,
        subscription: cloud.info.subscription_id.clone(),
        tenant_id: Some(cloud.info.tenant_id.clone()),
        caller_object_id: Some(cloud.info.operator_object_id.clone()),
        parallelism: 10,
        adopt: false,
        force: false,
        only: None,
        fifo: false,
        principal_wait: Duration::from_secs(120),
        check_names: true,
        purge: false,
        cancel: engine::Cancel::new(),
    }
}

/// One fleet apply from empty: (wall time, requests, 429s, failed resources, minimum
/// requests by bucket: reads, writes, deletes, role writes).
struct Run {
    wall: Duration,
    requests: u64,
    throttled: u64,
    failed: usize,
    minimum: [u64; 4],
}

fn run(plans: &[Validated], pace: fn() -> Pacer) -> Run {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::new(tmp.path().join("state"));
    config.port = Some(0);
    config.faults = faults();
    let cloud = Cloud::start(config).unwrap();
    let client = client(&cloud, pace());
    let start = Instant::now();
    let (failed, observe_reads) = rt.block_on(async {
        let runs = plans.iter().map(|plan| {
            let cx = context(&cloud, client.clone());
            async move {
                let obs = engine::observe(&cx, plan).await.expect("observe");
                // Observe's ARM reads: one per resource ARM holds, and the four listings.
                // With one poll per long-running operation (its fewest).
                let lros = plan
                    .decls
                    .iter()
                    .filter(|d| {
                        let t = d.kind.arm_type().unwrap_or_default();
                        latencies().iter().any(|(k, _, lro)| *lro > 0 && k.eq_ignore_ascii_case(t))
                    })
                    .count() as u64;
                let reads = plan.decls.iter().filter(|d| d.kind.arm_type().is_some()).count() as u64 + 4 + lros;
                let sh = Shared { cx: &cx, plan, reporter: Arc::new(Quiet) };
                let results = engine::walk::apply(&sh, obs).await;
                let failed: Vec<_> =
                    results.iter().filter(|r| matches!(r.2, Outcome::Failed(_) | Outcome::Skipped(_))).collect();
                if let Some(f) = failed.first() {
                    println!("    {}: {} {:?}", plan.name, f.0, f.2);
                }
                (failed.len(), reads)
            }
        });
        let all = futures::future::join_all(runs).await;
        (all.iter().map(|a| a.0).sum::<usize>(), all.iter().map(|a| a.1).sum::<u64>())
    });
    let wall = start.elapsed();
    let requests = client.stats.requests.load(Ordering::Relaxed);
    let throttled = client.pace.stats.throttled.load(Ordering::Relaxed);
    // The successful ARM writes, deletes and role-assignment writes, from the request log.
    let log = rt.block_on(async {
        let off = self::client(&cloud, Pacer::off());
        off.send(reqwest::Method::GET, "/_idlab/requests", None, None, &[]).await.unwrap().body
    });
    let mut minimum = [observe_reads, 0, 0, 0];
    for e in log["value"].as_array().unwrap() {
        let path = e["path"].as_str().unwrap_or_default().to_ascii_lowercase();
        if !path.starts_with("/subscriptions") || e["status"] == 429 {
            continue;
        }
        match e["method"].as_str().unwrap_or_default() {
            "GET" | "HEAD" => {}
            "DELETE" => minimum[2] += 1,
            method => {
                minimum[1] += 1;
                if method == "PUT" && path.contains("/providers/microsoft.authorization/roleassignments/") {
                    minimum[3] += 1;
                }
            }
        }
    }
    cloud.stop();
    Run { wall, requests, throttled, failed, minimum }
}

/// Seconds the buckets need for `n` requests: none within the size, then the refill rate.
fn bucket_s(n: u64, size: u64, per_second: f64) -> f64 {
    n.saturating_sub(size) as f64 / per_second
}

fn peak_memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        .unwrap_or_default()
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wants = |s: &str| only.is_empty() || only.iter().any(|o| o == s);
    let n: usize = std::env::var("FLEET_N").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let runs: usize = std::env::var("FLEET_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let plans = copies(n);
    let resources: usize = plans.iter().map(|p| p.decls.len()).sum();
    let critical = critical_path_ms(&plans[0]) as f64 / 1000.0;
    let scaled = |d: Duration| d.as_secs_f64() / TIME_SCALE;
    println!(
        "fleet: {n} copies of plans/tutorials.yaml, {resources} resources, throttling on (Azure's buckets), time_scale {TIME_SCALE} (times below in Azure seconds)"
    );
    let mut paced_median = None;
    let mut bound = 0.0;
    for (label, wanted, pace) in [
        (
            "paced (AIMD + buckets), parallelism 10 per copy",
            wants("paced"),
            (|| Pacer::new(PaceConfig { speedup: 1.0 / TIME_SCALE, ..PaceConfig::default() })) as fn() -> Pacer,
        ),
        (
            "baseline: no pacing, 10 requests in flight, old retry policy",
            wants("baseline"),
            (|| Pacer::fixed(10)) as fn() -> Pacer,
        ),
    ] {
        if !wanted {
            continue;
        }
        // The baseline is long: one run unless FLEET_BASELINE_RUNS says more.
        let runs = if paced_median.is_some() || label.starts_with("baseline") {
            std::env::var("FLEET_BASELINE_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
        } else {
            runs
        };
        let mut all: Vec<Run> = (0..runs).map(|_| run(&plans, pace)).collect();
        all.sort_by_key(|r| r.wall);
        let m = &all[all.len() / 2];
        let [reads, writes, deletes, roles] = m.minimum;
        let buckets = bucket_s(reads, 250, 25.0)
            .max(bucket_s(writes, 200, 10.0))
            .max(bucket_s(deletes, 200, 10.0))
            .max(bucket_s(roles, 120, 2.0));
        if bound == 0.0 {
            bound = critical.max(buckets);
        }
        let wall = scaled(m.wall);
        println!("  {label}:");
        println!(
            "    wall median {wall:.1} s (min {:.1}, max {:.1}, {runs} runs); lower bound max(critical path {critical:.1} s, buckets {buckets:.1} s for {reads} reads (observe, one poll per long-running operation), {writes} writes, {deletes} deletes, {roles} role-assignment writes) = {bound:.1} s; ratio {:.2}",
            scaled(all[0].wall),
            scaled(all[all.len() - 1].wall),
            wall / bound
        );
        println!(
            "    requests {}, 429 answers {} ({:.2} %), resources failed or skipped {}",
            m.requests,
            m.throttled,
            100.0 * m.throttled as f64 / m.requests.max(1) as f64,
            m.failed
        );
        match paced_median {
            None => paced_median = Some(wall),
            Some(p) => println!("    baseline / paced: {:.2}×", wall / p),
        }
    }
    println!("  peak memory of the bench process (local cloud included): {}", peak_memory());
}
