//! idlab's real-Azure code path, without `--local`, against the local cloud through its
//! proxy: `https://management.azure.com`, the `azure_identity` credentials (client secret;
//! workload identity through a token file) and the data planes' host names, all reaching
//! `idlab local serve` by Azure's own names through `HTTPS_PROXY` with `IDLAB_CA_BUNDLE`
//! trusting the local CA. And the proxy refusing every other host without connecting
//! anywhere.

use std::io::{Read, Write};

use serde_json::{Value, json};

use crate::common::oidc::{Ci, Oidc, REQUEST_TOKEN};
use crate::common::{Run, Served, idlab_env, owned_by_plan, root};
use idlab::local::attach;

/// The environment `idlab local env --format json` gives a tool (its files read), less
/// `drop`, plus `more` and idlab's debug log (every HTTP exchange, and every name it
/// resolves).
fn azure_env(s: &Served, drop: &[&str], more: &[(&str, String)]) -> Vec<(String, String)> {
    let state = s.state.display().to_string();
    let printed = idlab_env(&["local", "env", "--state", &state, "--format", "json"], &[]);
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    let v: Value = serde_json::from_str(&printed.stdout).expect("json");
    let mut env: Vec<(String, String)> = v["variables"]
        .as_object()
        .expect("variables")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("text").to_string()))
        .collect();
    for (k, path) in v["from_files"].as_object().expect("from_files") {
        let text = std::fs::read_to_string(path.as_str().expect("path")).expect("file");
        env.push((k.clone(), text.trim().to_string()));
    }
    env.retain(|(k, _)| !drop.contains(&k.as_str()));
    env.retain(|(k, _)| !more.iter().any(|(m, _)| m == k));
    env.extend(more.iter().map(|(k, v)| ((*k).to_string(), v.clone())));
    env.push(("IDLAB_LOG".to_string(), "idlab=debug".to_string()));
    env
}

#[test]
fn local_env_prints_what_a_tool_needs_and_no_secret() {
    let s = Served::start();
    let info = attach::read_info(&s.state).expect("info");
    let secret = std::fs::read_to_string(&info.operator_secret_file).expect("secret").trim().to_string();
    let state = s.state.display().to_string();
    let shell = idlab_env(&["local", "env", "--state", &state], &[]);
    assert_eq!(shell.code, 0, "{}", shell.stderr);
    let ca = info.ca_file.display().to_string();
    for line in [
        format!("export HTTPS_PROXY={}", info.proxy_url),
        "export NO_PROXY=127.0.0.1,localhost".to_string(),
        format!("export REQUESTS_CA_BUNDLE={ca}"),
        format!("export CURL_CA_BUNDLE={ca}"),
        format!("export SSL_CERT_FILE={ca}"),
        format!("export NODE_EXTRA_CA_CERTS={ca}"),
        format!("export IDLAB_CA_BUNDLE={ca}"),
        format!("export AZURE_TENANT_ID={}", info.tenant_id),
        format!("export AZURE_CLIENT_ID={}", info.operator_client_id),
        format!("export AZURE_CLIENT_SECRET=\"$(cat {})\"", info.operator_secret_file.display()),
        "export AZURE_CORE_COLLECT_TELEMETRY=no".to_string(),
    ] {
        assert!(shell.stdout.lines().any(|l| l == line), "{line} in {}", shell.stdout);
    }
    assert!(!shell.stdout.contains(&secret) && !shell.stderr.contains(&secret));
    // With --vm: the VM's identity endpoint as before; without a running cloud: a clear error.
    let none = idlab_env(&["local", "env", "--state", "/nonexistent/idlab-state"], &[]);
    assert_ne!(none.code, 0);
    assert!(none.stderr.contains("no local cloud is serving /nonexistent/idlab-state"), "{}", none.stderr);
}

/// `idlab ARGS` without `--local`, in `env` only; it must not have resolved a single name.
fn azure(env: &[(String, String)], args: &[&str]) -> Run {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = idlab_env(args, &env);
    assert!(r.stderr.contains("idlab::arm"), "the debug log is on: {}", r.stderr);
    assert!(!r.stderr.contains("dns lookup"), "idlab resolved a name itself: {}", r.stderr);
    r
}

/// The identity endpoint of the one VM of the local cloud (`verify --imds-endpoint`: idlab
/// "on the VM").
fn vm_endpoint(s: &Served) -> String {
    let vms = s.op("GET", "/_idlab/vms", None);
    let vms = vms["value"].as_array().expect("vms");
    assert_eq!(vms.len(), 1, "{vms:?}");
    vms[0]["endpoint"].as_str().expect("endpoint").to_string()
}

/// The proxy's `CONNECT`s in the request log: (target, status).
fn connects(s: &Served) -> Vec<(String, u64)> {
    s.op("GET", "/_idlab/requests", None)["value"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["method"] == "CONNECT")
        .map(|e| (e["path"].as_str().unwrap_or_default().to_string(), e["status"].as_u64().unwrap_or_default()))
        .collect()
}

/// Apply, verify (as the VM), re-plan with no changes and destroy `plan` on the Azure path,
/// calling `before` ahead of every run. The proxy saw only Azure names, all served.
fn azure_cycle(s: &Served, env: &[(String, String)], plan: &str, name: &str, checks: usize, before: &dyn Fn()) {
    let p = root().join(plan).display().to_string();
    s.op("DELETE", "/_idlab/requests", None);
    before();
    let a = azure(env, &["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    assert!(!owned_by_plan(s, name).is_empty());
    let seen = connects(s);
    for host in ["management.azure.com:443", "login.microsoftonline.com:443"] {
        assert!(seen.iter().any(|(t, st)| t == host && *st == 200), "{host} in {seen:?}");
    }
    assert!(seen.iter().all(|(_, st)| *st == 200), "{seen:?}");
    let endpoint = vm_endpoint(s);
    before();
    let v = azure(env, &["verify", &p, "--imds-endpoint", &endpoint]);
    let passed = format!("Verify: {checks} passed, 0 failed, 0 skipped.");
    assert!(v.code == 0 && v.stdout.contains(&passed), "{}{}", v.stdout, v.stderr);
    before();
    let again = azure(env, &["plan", &p, "--detailed-exitcode"]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);
    before();
    let d = azure(env, &["destroy", &p, "--auto-approve"]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
    assert!(owned_by_plan(s, name).is_empty(), "{:?}", owned_by_plan(s, name));
}

/// The object ids of the callers of the ARM requests in the log.
fn arm_callers(s: &Served) -> Vec<String> {
    let log = s.op("GET", "/_idlab/requests", None);
    log["value"]
        .as_array()
        .expect("log")
        .iter()
        .filter(|e| e["path"].as_str().is_some_and(|p| p.starts_with("/subscriptions/")))
        .map(|e| e["principal"].as_str().unwrap_or("-").to_string())
        .collect()
}

#[test]
fn the_storage_tutorial_on_the_azure_path_with_a_client_secret() {
    let s = Served::start();
    let info = attach::read_info(&s.state).expect("info");
    // The operator, signed in with its client secret: what `local env` prints.
    let env = azure_env(&s, &[], &[]);
    azure_cycle(&s, &env, "plans/storage-blob.yaml", "storage-blob", 1, &|| {});
    // The data plane was reached by the account's own host name (the upload carries a
    // service SAS, from listServiceSas); ARM as the operator signed in by azure_identity's
    // client secret credential.
    let p = root().join("plans/storage-blob.yaml").display().to_string();
    s.op("DELETE", "/_idlab/requests", None);
    let a = azure(&env, &["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    let seen = connects(&s);
    assert!(seen.iter().any(|(t, st)| t == "idlabtutorialblob.blob.core.windows.net:443" && *st == 200), "{seen:?}");
    let log = s.op("GET", "/_idlab/requests", None);
    let blob_put = log["value"].as_array().expect("log").iter().any(|e| {
        e["method"] == "PUT" && e["path"] == "/idlabtutorialblob/mycontainer/hello_world.txt" && e["status"] == 201
    });
    assert!(blob_put, "{log}");
    let callers = arm_callers(&s);
    assert!(!callers.is_empty() && callers.iter().all(|c| *c == info.operator_object_id), "{callers:?}");
    // The answers name Azure's hosts: the account's blob endpoint is its real one.
    let out = azure(&env, &["output", &p]);
    assert!(out.stdout.contains("https://idlabtutorialblob.blob.core.windows.net/"), "{}{}", out.stdout, out.stderr);
    assert_eq!(azure(&env, &["destroy", &p, "--auto-approve"]).code, 0);
}

#[test]
fn the_key_vault_and_gen2_tutorials_on_the_azure_path_by_their_host_names() {
    let s = Served::start();
    let env = azure_env(&s, &[], &[]);
    for (plan, name, host) in [
        ("plans/keyvault.yaml", "keyvault", "idlab-tutorial-kv.vault.azure.net:443"),
        ("plans/datalake-gen2.yaml", "datalake-gen2", ".dfs.core.windows.net:443"),
    ] {
        azure_cycle(&s, &env, plan, name, 1, &|| {});
        let p = root().join(plan).display().to_string();
        s.op("DELETE", "/_idlab/requests", None);
        let a = azure(&env, &["apply", &p, "--auto-approve"]);
        assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
        let seen = connects(&s);
        assert!(seen.iter().any(|(t, st)| t.ends_with(host) && *st == 200), "{host} in {seen:?}");
        let out = azure(&env, &["output", &p]);
        if name == "keyvault" {
            assert!(out.stdout.contains("https://idlab-tutorial-kv.vault.azure.net/"), "{}{}", out.stdout, out.stderr);
        }
        assert_eq!(azure(&env, &["destroy", &p, "--auto-approve", "--purge"]).code, 0);
    }
}

#[test]
fn the_arm_tutorial_on_the_azure_path_with_workload_identity() {
    let s = Served::start();
    let oidc = Oidc::start();
    let tenant = attach::read_info(&s.state).expect("info").tenant_id;
    // An app registration trusting the test issuer, Owner of the subscription.
    let app = s.op(
        "POST",
        "/_idlab/principals",
        Some(json!({
            "name": "workload-app",
            "roles": [{"role": "Owner"}],
            "federated": [{"issuer": oidc.issuer(), "subject": idlab::local::oidc::SUBJECT}],
        })),
    );
    let client_id = app["client_id"].as_str().expect("client id").to_string();
    let vars = oidc.env(Ci::Github, &client_id, &tenant);
    let url = vars.iter().find(|(k, _)| *k == "ACTIONS_ID_TOKEN_REQUEST_URL").expect("url").1.clone();
    let tmp = tempfile::tempdir().expect("tmp");
    let token_file = tmp.path().join("token");
    // The projected service-account token a workload reads, renewed before every run (the
    // local cloud accepts an assertion once).
    let renew = || {
        let assertion = s.rt.block_on(async {
            let c = reqwest::Client::builder().no_proxy().build().expect("client");
            let v: Value = c
                .get(format!("{url}&audience=api://AzureADTokenExchange"))
                .bearer_auth(REQUEST_TOKEN)
                .send()
                .await
                .expect("sent")
                .json()
                .await
                .expect("json");
            v["value"].as_str().expect("assertion").to_string()
        });
        std::fs::write(&token_file, assertion).expect("token file");
    };
    let env = azure_env(
        &s,
        &["AZURE_CLIENT_SECRET"],
        &[("AZURE_CLIENT_ID", client_id), ("AZURE_FEDERATED_TOKEN_FILE", token_file.display().to_string())],
    );
    azure_cycle(&s, &env, "plans/arm-user-assigned.yaml", "arm-user-assigned", 2, &renew);
    // The ARM requests were the app's, signed in by azure_identity's workload identity
    // credential at login.microsoftonline.com.
    let p = root().join("plans/arm-user-assigned.yaml").display().to_string();
    s.op("DELETE", "/_idlab/requests", None);
    renew();
    assert_eq!(azure(&env, &["plan", &p]).code, 0);
    let callers = arm_callers(&s);
    let app_oid = app["object_id"].as_str().expect("object id");
    assert!(!callers.is_empty() && callers.iter().all(|c| c == app_oid), "{callers:?}");
}

/// Send `head` to the proxy; its whole answer.
fn proxy_answer(proxy: &str, head: &str) -> String {
    let addr = proxy.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).expect("proxy");
    c.write_all(head.as_bytes()).expect("sent");
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    answer
}

#[test]
fn the_proxy_refuses_every_other_host_and_connects_nowhere() {
    let s = Served::start();
    let info = attach::read_info(&s.state).expect("info");
    // A loopback listener: were the proxy to forward anything, this is where it could.
    let bait = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    bait.set_nonblocking(true).expect("nonblocking");
    let bait_port = bait.local_addr().expect("addr").port();
    s.op("DELETE", "/_idlab/requests", None);
    let refused = [
        ("example.com:443".to_string(), "example.com is not a host of the local cloud"),
        ("10.0.0.1:443".to_string(), "10.0.0.1 is not a host of the local cloud"),
        (format!("127.0.0.1:{bait_port}"), "127.0.0.1 is not a host of the local cloud"),
        (format!("localhost:{bait_port}"), "localhost is not a host of the local cloud"),
        ("management.azure.com:80".to_string(), "served on port 443 only"),
    ];
    for (target, says) in &refused {
        let answer = proxy_answer(&info.proxy_url, &format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"));
        assert!(answer.starts_with("HTTP/1.1 403 "), "{target}: {answer}");
        assert!(answer.contains(says) && answer.contains("nothing leaves this machine"), "{target}: {answer}");
    }
    // A request to forward (not a tunnel) is refused the same way.
    let forward =
        proxy_answer(&info.proxy_url, &format!("GET http://127.0.0.1:{bait_port}/ HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert!(forward.starts_with("HTTP/1.1 403 "), "{forward}");
    // A vault the local cloud does not have: 404, as a name that does not resolve.
    let vault = proxy_answer(&info.proxy_url, "CONNECT nosuchvault.vault.azure.net:443 HTTP/1.1\r\n\r\n");
    assert!(vault.starts_with("HTTP/1.1 404 ") && vault.contains("no Key Vault named `nosuchvault`"), "{vault}");
    // Nothing ever connected to the bait.
    assert_eq!(bait.accept().map(|_| ()).map_err(|e| e.kind()), Err(std::io::ErrorKind::WouldBlock));
    // Every refusal is in the request log, and nothing else passed.
    let seen = connects(&s);
    for (target, _) in &refused {
        assert!(seen.contains(&(target.clone(), 403)), "{target} in {seen:?}");
    }
    assert!(seen.contains(&("nosuchvault.vault.azure.net:443".to_string(), 404)), "{seen:?}");
    // A served name is tunnelled.
    let mut c = std::net::TcpStream::connect(info.proxy_url.trim_start_matches("http://")).expect("proxy");
    c.write_all(b"CONNECT management.azure.com:443 HTTP/1.1\r\n\r\n").expect("sent");
    let mut first = [0u8; 39];
    c.read_exact(&mut first).expect("answer");
    assert_eq!(&first[..], b"HTTP/1.1 200 Connection Established\r\n\r\n");
}
