//! Fleet bench: `idlab apply plans/tutorials.yaml --instances 50` (1,150 resources), the real
//! binary through its real command path, against a local cloud with ARM throttling on
//! (Azure's documented buckets: reads 250 + 25/s, writes and deletes 200 + 10/s per
//! subscription and principal, role-assignment writes 120 a minute) and per-kind latencies
//! and long-running operations, time compressed by the fault file's `time_scale` (every time
//! below is in scaled, Azure-like, seconds). The local cloud runs in this process; the CLI
//! attaches to it through `--state`, as to any running `idlab local serve`.
//!
//! Reported, per side (median of the runs):
//! - wall time against the lower bound max(critical path, the time the buckets permit for the
//!   fleet's fixed minimum requests: its successful ARM reads, writes, deletes and
//!   role-assignment writes, from the cloud's request log), and the ratio;
//! - ARM requests and 429 answers (from the cloud's request log);
//! - peak memory: this process (the local cloud in it) plus the CLI process, each its VmHWM.
//!
//! The baseline, in the same run: the same command with `IDLAB_PACING=off` (no buckets, no
//! adaptive concurrency: at most `--parallelism 10` requests in flight, the retry policy
//! honouring `Retry-After`: the engine and retry policy before pacing).
//!
//! Run: `cargo bench --bench fleet` (`-- paced` or `-- baseline` for one side; `FLEET_N`
//! instances, default 50; `FLEET_RUNS` paced runs, default 3; `FLEET_BASELINE_RUNS`,
//! default 1).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used, clippy::disallowed_types)]

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use idlab::arm::Client;
use idlab::arm::auth::{Cached, LocalCredential};
use idlab::arm::pace::Pacer;
use idlab::local::faults::{Faults, Throttling, TypeFaults};
use idlab::local::{Cloud, Config, attach};
use idlab::model::Sensitive;
use idlab::resolve::{Options, Validated, load_str};

/// Scaled time: 1 s of the bench's clock is 10 s of Azure's.
const TIME_SCALE: f64 = 0.1;

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

fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tutorials() -> Validated {
    let text = std::fs::read_to_string(root().join("plans/tutorials.yaml")).unwrap();
    load_str("tutorials.yaml", text, &root().join("plans"), &Options::default()).plan.expect("valid plan")
}

/// The critical path of one instance, in Azure milliseconds: the longest chain of
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

/// An operator client of the local cloud, unpaced (to read its request log).
fn operator(cloud: &Cloud) -> Client {
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
    c.pace = Arc::new(Pacer::off());
    c
}

/// One fleet apply from empty.
struct Run {
    wall: Duration,
    /// ARM requests the cloud answered, and its 429s.
    requests: u64,
    throttled: u64,
    /// The CLI's exit code and its fleet summary line.
    code: i32,
    summary: String,
    /// Successful ARM requests by bucket: reads, writes, deletes, role-assignment writes.
    minimum: [u64; 4],
    /// VmHWM in kB: this process (the cloud in it), the CLI.
    peak_kb: (u64, u64),
}

fn vm_hwm_kb(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn run(n: usize, paced: bool) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let mut config = Config::new(&state);
    config.port = Some(0);
    config.faults = faults();
    // Served as `idlab local serve` serves it: the lock, then the connection file.
    let _lock = attach::lock(&state).unwrap();
    let cloud = Cloud::start(config).unwrap();
    attach::write_info(&cloud.info).unwrap();
    let err_path = tmp.path().join("stderr.txt");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_idlab"));
    cmd.current_dir(root())
        .args(["apply", "plans/tutorials.yaml", "--instances", &n.to_string(), "--local", "--state"])
        .arg(&state)
        .args(["--auto-approve", "--no-progress", "--parallelism", "10"])
        .env("NO_COLOR", "1")
        .env_remove("IDLAB_PACING")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap());
    if !paced {
        cmd.env("IDLAB_PACING", "off");
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("the idlab binary runs");
    let pid = child.id().to_string();
    let mut cli_peak = 0;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        cli_peak = cli_peak.max(vm_hwm_kb(&pid));
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = start.elapsed();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let summary = stderr.lines().rev().find(|l| l.contains(" instances, ")).unwrap_or("(no summary)").to_string();
    if std::env::var_os("FLEET_KEEP_LOG").is_some() {
        let _ = std::fs::copy(&err_path, format!("/tmp/fleet-{}.log", if paced { "paced" } else { "baseline" }));
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let log = rt.block_on(async {
        operator(&cloud).send(reqwest::Method::GET, "/_idlab/requests", None, None, &[]).await.unwrap().body
    });
    let (mut requests, mut throttled, mut minimum) = (0, 0, [0u64; 4]);
    for e in log["value"].as_array().unwrap() {
        let path = e["path"].as_str().unwrap_or_default().to_ascii_lowercase();
        if !path.starts_with("/subscriptions") {
            continue;
        }
        requests += 1;
        if e["status"] == 429 {
            throttled += 1;
            continue;
        }
        match e["method"].as_str().unwrap_or_default() {
            "GET" | "HEAD" => minimum[0] += 1,
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
    let own = vm_hwm_kb("self");
    Run { wall, requests, throttled, code: status.code().unwrap_or(-1), summary, minimum, peak_kb: (own, cli_peak) }
}

/// Seconds the buckets need for `n` requests: none within the size, then the refill rate.
fn bucket_s(n: u64, size: u64, per_second: f64) -> f64 {
    n.saturating_sub(size) as f64 / per_second
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wants = |s: &str| only.is_empty() || only.iter().any(|o| o == s);
    let env = |k: &str, d: usize| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let n = env("FLEET_N", 50);
    let plan = tutorials();
    let critical = critical_path_ms(&plan) as f64 / 1000.0;
    let scaled = |d: Duration| d.as_secs_f64() / TIME_SCALE;
    println!(
        "fleet: idlab apply plans/tutorials.yaml --instances {n} ({} resources), throttling on (Azure's buckets), time_scale {TIME_SCALE} (times below in Azure seconds)",
        n * plan.decls.len()
    );
    let mut paced_median = None;
    let mut bound = 0.0;
    for (label, side, paced, runs) in [
        ("paced (buckets by priority + AIMD), --parallelism 10", "paced", true, env("FLEET_RUNS", 3)),
        (
            "baseline: IDLAB_PACING=off, --parallelism 10 (10 requests in flight, retries honour Retry-After)",
            "baseline",
            false,
            env("FLEET_BASELINE_RUNS", 1),
        ),
    ] {
        if !wants(side) || runs == 0 {
            continue;
        }
        let mut all: Vec<Run> = (0..runs).map(|_| run(n, paced)).collect();
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
            "    wall median {wall:.1} s (runs: {}); lower bound max(critical path {critical:.1} s, buckets {buckets:.1} s for {reads} reads, {writes} writes, {deletes} deletes, {roles} role-assignment writes) = {bound:.1} s; ratio {:.2}",
            all.iter().map(|r| format!("{:.1}", scaled(r.wall))).collect::<Vec<_>>().join(", "),
            wall / bound
        );
        println!(
            "    requests {}, 429 answers {} ({:.2} %); exit {}: {}",
            m.requests,
            m.throttled,
            100.0 * m.throttled as f64 / m.requests.max(1) as f64,
            m.code,
            m.summary.trim()
        );
        let peak = all.iter().map(|r| r.peak_kb.0 + r.peak_kb.1).max().unwrap_or(0);
        println!(
            "    peak memory: {:.0} MB (this process with the local cloud {:.0} MB + the CLI {:.0} MB, the largest run)",
            peak as f64 / 1024.0,
            m.peak_kb.0 as f64 / 1024.0,
            m.peak_kb.1 as f64 / 1024.0
        );
        match paced_median {
            None => paced_median = Some(wall),
            Some(p) => println!("    baseline / paced: {:.2}×", wall / p),
        }
    }
}
