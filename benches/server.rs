//! Local cloud bench: GET throughput and latency over keep-alive HTTPS, server CPU time per
//! request, resident memory holding 10,000 resources, and restart time with that state.
//!
//! Run: `cargo bench --bench server` (needs `wrk`, Debian package `wrk`, as the load tool:
//! 64 connections, 2 threads, 10 s). The server runs in this process, so its CPU time is
//! read from /proc/self/stat around the load; wrk runs in its own process.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used, clippy::disallowed_types)]

use std::time::{Duration, Instant};

use idlab::local::store::{Op, Resource};
use idlab::local::{Cloud, Config, attach};
use serde_json::json;

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let mut config = Config::new(&dir);
    config.port = Some(0);
    let cloud = Cloud::start(config).unwrap();
    let info = cloud.info.clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (token, url) = rt.block_on(async {
        let c = attach::client(&info).unwrap();
        let t = attach::operator_token(&info, &c).await.unwrap();
        let rg = format!("{}/subscriptions/{}/resourceGroups/bench", info.arm_url, info.subscription_id);
        c.put(format!("{rg}?api-version=2024-11-01"))
            .bearer_auth(&t)
            .json(&json!({"location": "eastus"}))
            .send()
            .await
            .unwrap();
        let id =
            format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bench?api-version=2024-11-30");
        let r = c.put(&id).bearer_auth(&t).json(&json!({"location": "eastus"})).send().await.unwrap();
        assert!(r.status().is_success());
        (t, id)
    });

    // 1. Throughput: wrk, 64 keep-alive connections over HTTPS.
    let cpu0 = cpu_seconds();
    let out = std::process::Command::new("wrk")
        .args(["-t2", "-c64", "-d10s", "--latency", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(&url)
        .output();
    let cpu1 = cpu_seconds();
    match out {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout).to_string();
            let reqs: f64 = text
                .lines()
                .find(|l| l.starts_with("Requests/sec:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|x| x.parse().ok())
                .unwrap_or(0.0);
            let total: f64 = text
                .lines()
                .find(|l| l.contains("requests in"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|x| x.parse().ok())
                .unwrap_or(0.0);
            let p99 = text
                .lines()
                .find(|l| l.trim_start().starts_with("99%"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
                .unwrap_or_default();
            let p50 = text
                .lines()
                .find(|l| l.trim_start().starts_with("50%"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
                .unwrap_or_default();
            let non2xx =
                text.lines().find(|l| l.contains("Non-2xx")).unwrap_or("Non-2xx or 3xx responses: 0").to_string();
            println!(
                "GET throughput (wrk -t2 -c64 -d10s, HTTPS keep-alive): {reqs:.0} req/s, p50 {p50}, p99 {p99}, {non2xx}"
            );
            if total > 0.0 {
                println!(
                    "server CPU per request: {:.1} µs ({:.2} s CPU for {total:.0} requests)",
                    (cpu1 - cpu0) / total * 1e6,
                    cpu1 - cpu0
                );
            }
        }
        Err(e) => println!("wrk not available ({e}): install Debian's `wrk` for the throughput numbers"),
    }

    // 2. Memory holding 10,000 resources, and restart time with that state.
    let rss_before = rss_mb();
    {
        let sub = info.subscription_id.clone();
        let mut ops = Vec::with_capacity(10_000);
        for i in 0..10_000 {
            let id = format!(
                "/subscriptions/{sub}/resourceGroups/bench/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-{i}"
            );
            let body = json!({"id": id, "name": format!("id-{i}"), "type": "Microsoft.ManagedIdentity/userAssignedIdentities", "location": "eastus",
                "tags": {"idlab-plan": "bench"},
                "properties": {"tenantId": info.tenant_id, "principalId": uuid::Uuid::new_v4().to_string(), "clientId": uuid::Uuid::new_v4().to_string(), "isolationScope": "None", "provisioningState": "Succeeded"}});
            ops.push(Op::PutResource {
                resource: Resource {
                    id,
                    kind: "Microsoft.ManagedIdentity/userAssignedIdentities".into(),
                    body,
                    etag: 1,
                    created_ms: 0,
                    busy_until_ms: 0,
                    effective_ms: None,
                },
            });
        }
        let mut st = cloud.shared().store();
        st.append(ops).unwrap();
        st.snapshot().unwrap();
    }
    let rss_after = rss_mb();
    println!(
        "bench process (server + load bookkeeping): {rss_before:.1} MB after the load, {rss_after:.1} MB after adding 10,000 resources"
    );
    cloud.stop();
    // The server's own footprint and restart time: `idlab local serve` on that state, 5 times.
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_idlab"))
            .args(["local", "serve", "--port", "0", "--state"])
            .arg(&dir)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        times.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(200));
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|k| k.parse().ok())
            .unwrap_or(0.0);
        rss.push(kb / 1024.0);
        let _ = child.kill();
        let _ = child.wait();
    }
    times.sort();
    rss.sort_by(f64::total_cmp);
    println!(
        "`idlab local serve` holding 10,000+ resources: resident memory median {:.1} MB; restart (spawn to connection line) median {:?} (of 5: {:?})",
        rss[2], times[2], times
    );
}
