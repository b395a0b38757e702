//! Durability: `idlab local serve` killed with SIGKILL (or crashing by configuration) in the
//! middle of a burst of concurrent writes restarts with every acknowledged write present and
//! no partial one. Seeded, 24 runs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use idlab::local::{ConnectionInfo, attach};
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

fn serve(dir: &std::path::Path, faults: Option<&std::path::Path>) -> (Child, ConnectionInfo) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_idlab"));
    cmd.args(["local", "serve", "--port", "0", "--state"]).arg(dir).stdout(Stdio::piped()).stderr(Stdio::null());
    if let Some(f) = faults {
        cmd.arg("--faults").arg(f);
    }
    let mut child = cmd.spawn().expect("serve starts");
    let out = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("first line");
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("connection line {line:?}: {e}"));
    let info = attach::read_info(dir).unwrap_or_else(|| panic!("server.json for {v}"));
    (child, info)
}

#[test]
fn acknowledged_writes_survive_sigkill_and_crashes() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut seeds = rand::rngs::StdRng::seed_from_u64(0x1d1ab);
    for run in 0..24u32 {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("state");
        crate::common::seed_key(&dir);
        let kill_after: usize = seeds.random_range(3..40);
        // Odd runs crash by configuration right after the Nth acknowledged write.
        let faults_file = tmp.path().join("faults.yaml");
        let crash = run % 2 == 1;
        // The first write of a fresh state is its initialisation, then the port record.
        std::fs::write(&faults_file, format!("crash_after_writes: {}\n", kill_after + 2)).expect("faults");
        let (mut child, info) = serve(&dir, crash.then_some(faults_file.as_path()));
        let acked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
        rt.block_on(async {
            let client = attach::client(&info).expect("client");
            let token = attach::operator_token(&info, &client).await.expect("token");
            let mut tasks = Vec::new();
            for t in 0..4 {
                let (client, token, info, acked) = (client.clone(), token.clone(), info.clone(), acked.clone());
                tasks.push(tokio::spawn(async move {
                    for i in 0..200 {
                        let name = format!("rg-{t}-{i}");
                        let url = format!("{}/subscriptions/{}/resourceGroups/{name}?api-version=2024-11-01", info.arm_url, info.subscription_id);
                        let body = json!({"location": "eastus", "tags": {"writer": t.to_string(), "seq": i.to_string(), "padding": "x".repeat(200)}});
                        match client.put(url).bearer_auth(&token).json(&body).send().await {
                            Ok(r) if r.status().is_success() => acked.lock().expect("lock").push(name),
                            _ => return,
                        }
                    }
                }));
            }
            if !crash {
                loop {
                    if acked.lock().expect("lock").len() >= kill_after {
                        let _ = child.kill();
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
            for t in tasks {
                let _ = t.await;
            }
        });
        let _ = child.kill();
        let _ = child.wait();
        let acked = acked.lock().expect("lock").clone();
        if crash {
            // The server died on its own, right after the configured write: the burst was cut short.
            assert!(!acked.is_empty() && acked.len() < 800, "run {run}: {} writes acknowledged", acked.len());
        } else {
            assert!(acked.len() >= kill_after, "run {run}: killed after {} of {kill_after}", acked.len());
        }
        // Restart on the same state and check every acknowledged write, and every group's shape.
        let (mut child2, info2) = serve(&dir, None);
        rt.block_on(async {
            let client = attach::client(&info2).expect("client");
            let token = attach::operator_token(&info2, &client).await.expect("token");
            let list: Value = client
                .get(format!(
                    "{}/subscriptions/{}/resourcegroups?api-version=2024-11-01",
                    info2.arm_url, info2.subscription_id
                ))
                .bearer_auth(&token)
                .send()
                .await
                .expect("list")
                .json()
                .await
                .expect("json");
            let groups = list["value"].as_array().cloned().unwrap_or_default();
            let names: Vec<String> = groups.iter().filter_map(|g| g["name"].as_str().map(str::to_string)).collect();
            for a in &acked {
                assert!(
                    names.contains(a),
                    "run {run} (crash={crash}, after {kill_after}): acknowledged {a} is missing after restart"
                );
            }
            for g in &groups {
                let name = g["name"].as_str().unwrap_or_default();
                let parts: Vec<&str> = name.split('-').collect();
                assert_eq!(g["tags"]["writer"].as_str(), parts.get(1).copied(), "run {run}: partial group {g}");
                assert_eq!(g["tags"]["seq"].as_str(), parts.get(2).copied(), "run {run}: partial group {g}");
                assert_eq!(g["tags"]["padding"].as_str().map(str::len), Some(200), "run {run}: partial group {g}");
            }
        });
        let _ = child2.kill();
        let _ = child2.wait();
    }
}

#[test]
fn commands_attach_to_a_running_server_or_start_one_and_ports_are_rebound() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("state");
    crate::common::seed_key(&dir);
    // Nothing serves the directory: start in-process, on a port then recorded.
    let first_port = rt.block_on(async {
        let l = idlab::local::Local::attach_or_start(&dir).await.expect("start");
        assert!(matches!(l, idlab::local::Local::Started { .. }));
        // A `serve` on the same directory meanwhile is refused.
        let out = Command::new(env!("CARGO_BIN_EXE_idlab"))
            .args(["local", "serve", "--state"])
            .arg(&dir)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("already serving"));
        l.info().arm_url.clone()
    });
    // A server in another process: attach to it, on the same (rebound) port.
    let (mut child, info) = serve_default_port(&dir);
    assert_eq!(info.arm_url, first_port, "the recorded port was not rebound");
    rt.block_on(async {
        let l = idlab::local::Local::attach_or_start(&dir).await.expect("attach");
        assert!(matches!(&l, idlab::local::Local::Attached(i) if i.pid == info.pid));
    });
    let _ = child.kill();
    let _ = child.wait();
}

fn serve_default_port(dir: &std::path::Path) -> (Child, ConnectionInfo) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_idlab"))
        .args(["local", "serve", "--state"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let out = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("first line");
    let info = attach::read_info(dir).expect("server.json");
    (child, info)
}
