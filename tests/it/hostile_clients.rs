//! Hostile clients (issue 16, parts 4 and 7): unauthenticated 200 MiB uploads to every plane,
//! thousands of idle and slow connections, bodies over a plane's limit, names Azure refuses
//! and Data Lake paths that climb out of their directory.
//!
//! The memory and connection tests run `idlab local serve` as a process of its own, on a state
//! directory an in-process cloud prepared (an account with a container, a Gen2 account, a
//! vault, a Data Lake Store), and read its memory from `/proc/<pid>/status`. Every client is on
//! 127.0.0.1, every loop is bounded, and nothing asserts how long anything took: the waits
//! below are ceilings that end a broken run, not measurements.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use idlab::local::{ConnectionInfo, attach};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::lab::Lab;
use crate::local_blob::{account_only, container};
use crate::local_datalake::store;
use crate::local_dfs::hns_account;
use crate::local_keyvault::vault;

const MIB: u64 = 1024 * 1024;

/// The server's resident-memory ceiling while it is attacked.
const RESIDENT_CEILING_KB: u64 = 100_000;

/// `idlab local serve` on a state directory, killed when dropped.
struct Server {
    child: Child,
    info: ConnectionInfo,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Serve the state `lab` made, as a process of its own, with extra `serve` flags.
    fn take_over(lab: Lab, flags: &[&str]) -> Server {
        let Lab { cloud, _dir, .. } = lab;
        cloud.stop();
        let state = _dir.path().join("state");
        let mut child = Command::new(env!("CARGO_BIN_EXE_idlab"))
            .args(["local", "serve", "--state"])
            .arg(&state)
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("idlab local serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("connection line");
        let info = attach::read_info(&state).expect("server.json");
        assert_eq!(info.pid, child.id(), "{line}");
        Server { child, info, _dir }
    }

    /// A `/proc/<pid>/status` field in kB (`VmHWM`: the peak resident set so far).
    fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.info.pid)).expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("field in /proc status")
    }

    /// Open file descriptors of the server.
    fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.info.pid)).expect("/proc fd").count()
    }
}

/// A TLS client configuration trusting the local CA.
fn trust(info: &ConnectionInfo) -> Arc<rustls::ClientConfig> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(&info.ca_file).expect("CA file");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("CA certificate")).expect("CA");
    }
    Arc::new(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn connect_tls(config: &Arc<rustls::ClientConfig>, port: u16) -> std::io::Result<Tls> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp).await
}

/// An answer read off the wire.
#[derive(Debug, Default)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

fn parse(got: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(got);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    Answer { status, head: head.to_string(), body: body.to_string() }
}

/// The target (path and query) and port of `url`, as sent on the wire, unnormalised.
fn target(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("https://127.0.0.1:").expect("a local URL");
    let (port, path) = rest.split_once('/').unwrap_or((rest, ""));
    (port.parse().expect("port"), format!("/{path}"))
}

/// Send `head` and then a body of `total` zero bytes (by `Content-Length`, or chunked), as
/// fast as the server takes it, from one 64 KiB block; read the answer meanwhile. Returns
/// the answer and how many body bytes were written before the server stopped taking them.
async fn flood(
    config: &Arc<rustls::ClientConfig>,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    total: u64,
    chunked: bool,
) -> (Answer, u64) {
    let (port, target) = target(url);
    let tls = connect_tls(config, port).await.expect("TLS");
    let (mut rd, mut wr) = tokio::io::split(tls);
    let framing = if chunked { "Transfer-Encoding: chunked".to_string() } else { format!("Content-Length: {total}") };
    let request =
        format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{framing}\r\n{}\r\n", lines(headers));
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let writer = tokio::spawn(async move {
        wr.write_all(request.as_bytes()).await?;
        let block = vec![0u8; 64 * 1024];
        let mut left = total;
        while left > 0 {
            let n = left.min(block.len() as u64);
            if chunked {
                wr.write_all(format!("{n:x}\r\n").as_bytes()).await?;
            }
            wr.write_all(&block[..n as usize]).await?;
            if chunked {
                wr.write_all(b"\r\n").await?;
            }
            counter.fetch_add(n, Ordering::SeqCst);
            left -= n;
        }
        if chunked {
            wr.write_all(b"0\r\n\r\n").await?;
        }
        wr.flush().await
    });
    let mut got = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    // A ceiling for a broken run, not a measurement.
    let _ = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(n) = rd.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    writer.abort();
    (parse(&got), sent.load(Ordering::SeqCst))
}

/// `Name: value` lines, each ending in CRLF.
fn lines(headers: &[(&str, &str)]) -> String {
    headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect()
}

/// One request without a body (or with a small one) sent as written: the target is not
/// normalised (a client library would resolve `..` and `%2e%2e` before sending).
fn raw(
    config: &Arc<rustls::ClientConfig>,
    rt: &tokio::runtime::Runtime,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let (port, target) = target(url);
    rt.block_on(async {
        let mut tls = connect_tls(config, port).await.expect("TLS");
        let request = format!(
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{}\r\n",
            lines(headers)
        );
        tls.write_all(request.as_bytes()).await.expect("request sent");
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), tls.read_to_end(&mut got)).await;
        parse(&got)
    })
}

/// What the hostile tests attack: one URL per data plane, addressing things that exist.
struct Targets {
    blob: String,
    dfs: String,
    webhdfs: String,
    vault: String,
}

fn prepare(lab: &Lab) -> Targets {
    let (endpoint, account_id) = account_only(lab, "hostileblob");
    container(lab, &account_id, "docs");
    let (_, dfs) = hns_account(lab, "hostilelake", true);
    let (_, uri) = vault(lab, "hostile", "hostile-kv", json!([]), true);
    let (_, webhdfs) = store(lab, &lab.operator.clone(), "hostile", "hostilestore");
    Targets {
        blob: format!("{endpoint}docs/big.bin"),
        dfs: format!("{dfs}lake/big.bin?action=append&position=0"),
        webhdfs: format!("{webhdfs}/big.bin?op=APPEND&append=true"),
        vault: format!("{uri}secrets/big?api-version=7.4"),
    }
}

/// (plane, method, URL, headers) of an upload.
type Upload = (&'static str, &'static str, String, Vec<(&'static str, &'static str)>);

/// An upload to every plane.
fn uploads(t: &Targets, arm_url: &str, sub: &str) -> Vec<Upload> {
    let storage = vec![("x-ms-version", "2023-11-03"), ("x-ms-blob-type", "BlockBlob")];
    vec![
        ("blob", "PUT", t.blob.clone(), storage.clone()),
        ("dfs", "PATCH", t.dfs.clone(), storage),
        ("webhdfs", "POST", t.webhdfs.clone(), vec![("Content-Type", "application/octet-stream")]),
        ("keyvault", "PUT", t.vault.clone(), vec![("Content-Type", "application/json")]),
        (
            "arm",
            "PUT",
            format!("{arm_url}/subscriptions/{sub}/resourceGroups/hostile-big?api-version=2024-11-01"),
            vec![("Content-Type", "application/json")],
        ),
    ]
}

#[test]
fn unauthenticated_200_mib_uploads_to_every_plane_leave_the_server_small() {
    let lab = Lab::start();
    let targets = prepare(&lab);
    let server = Server::take_over(lab, &[]);
    let config = trust(&server.info);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let before = server.status_kb("VmRSS");
    let total = 200 * MIB;
    let plans = uploads(&targets, &server.info.arm_url, &server.info.subscription_id);
    // Every plane at once, each by Content-Length and chunked, as four uploads at once once
    // took the blob plane to 711 MB.
    let results = rt.block_on(async {
        let mut tasks = Vec::new();
        for (plane, method, url, headers) in &plans {
            for chunked in [false, true] {
                let (config, url, plane, method, headers) =
                    (config.clone(), url.clone(), *plane, *method, headers.clone());
                tasks.push(tokio::spawn(async move {
                    let (answer, sent) = flood(&config, method, &url, &headers, total, chunked).await;
                    (plane, chunked, answer, sent)
                }));
            }
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("upload task"));
        }
        out
    });
    for (plane, chunked, answer, sent) in &results {
        assert_eq!(answer.status, 401, "{plane} (chunked: {chunked}): {answer:?}");
        // The answer came from the head; the connection closed long before the body was sent.
        assert!(*sent < total / 2, "{plane} (chunked: {chunked}) took {sent} of {total} bytes");
    }
    let peak = server.status_kb("VmHWM");
    assert!(peak < RESIDENT_CEILING_KB, "peak resident {peak} kB (before: {before} kB)");
    // The server still serves.
    let again = rt.block_on(metadata(&server.info));
    assert_eq!(again, Some(200));
}

#[test]
fn authenticated_uploads_over_the_cap_are_cut_off_at_it() {
    // With `--max-upload-mib 8`, callers allowed to write send 200 MiB chunked bodies (no
    // length to refuse up front) to blob, dfs and WebHDFS at once: each is read up to the cap
    // and refused, and the server stays small.
    let lab = Lab::start();
    let t = prepare(&lab);
    let blob_account = format!("{}/providers/Microsoft.Storage/storageAccounts/hostileblob", lab.rg_path("data"));
    let lake = format!("{}/providers/Microsoft.Storage/storageAccounts/hostilelake", lab.rg_path("gen2"));
    let (blob_token, _) = lab.principal_for(&[("Storage Blob Data Contributor", &blob_account)], STORAGE);
    let (dfs_token, _) = lab.principal_for(&[("Storage Blob Data Owner", &lake)], STORAGE);
    let lake_token = lab.operator_token_for(crate::local_datalake::DATALAKE_SCOPE);
    let server = Server::take_over(lab, &["--max-upload-mib", "8"]);
    let config = trust(&server.info);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let total = 200 * MIB;
    let plans = uploads(&t, &server.info.arm_url, &server.info.subscription_id);
    let results = rt.block_on(async {
        let mut tasks = Vec::new();
        for ((plane, method, url, headers), token) in plans.into_iter().zip([blob_token, dfs_token, lake_token]) {
            let config = config.clone();
            tasks.push(tokio::spawn(async move {
                let bearer = format!("Bearer {token}");
                let mut h = headers.clone();
                h.push(("Authorization", bearer.as_str()));
                let (answer, sent) = flood(&config, method, &url, &h, total, true).await;
                (plane, answer, sent)
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("upload task"));
        }
        out
    });
    assert_eq!(results.len(), 3);
    for (plane, answer, sent) in &results {
        assert_eq!(answer.status, 413, "{plane}: {answer:?}");
        assert!(*sent < total / 2, "{plane} took {sent} of {total} bytes");
    }
    let peak = server.status_kb("VmHWM");
    assert!(peak < RESIDENT_CEILING_KB, "peak resident {peak} kB");
}

/// One GET of the discovery document with a fresh connection: its status, or `None` when the
/// request failed. The client waits as long as a patient one would (a client queued behind a
/// full connection cap waits for a slot).
async fn metadata(info: &ConnectionInfo) -> Option<u16> {
    let pem = std::fs::read(&info.ca_file).ok()?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).ok()?])
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(60))
        .build()
        .ok()?;
    let r = client.get(&info.metadata_url).send().await.ok()?;
    Some(r.status().as_u16())
}

/// How a hostile connection behaves.
#[derive(Debug, Clone, Copy)]
enum Hostile {
    /// Connects and sends nothing.
    Silent,
    /// Starts a TLS record announcing a 512-byte handshake message, then sends one byte of it
    /// every 250 ms.
    SlowHandshake,
    /// Completes TLS, then sends a request head one byte every 250 ms.
    SlowHead,
}

/// Send `then` one byte every 250 ms after `first`, until the server closes the connection
/// (true) or the ceiling passes (false).
async fn drip<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S, first: &[u8], then: &[u8]) -> bool {
    let ceiling = tokio::time::Instant::now() + Duration::from_secs(20);
    if s.write_all(first).await.is_err() || s.flush().await.is_err() {
        return true;
    }
    let mut next = then.iter().cycle();
    let mut buf = [0u8; 1024];
    while tokio::time::Instant::now() < ceiling {
        tokio::select! {
            r = s.read(&mut buf) => match r {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            },
            () = tokio::time::sleep(Duration::from_millis(250)), if !then.is_empty() => {
                let byte = [*next.next().unwrap_or(&b'a')];
                if s.write_all(&byte).await.is_err() || s.flush().await.is_err() {
                    return true;
                }
            }
            () = tokio::time::sleep_until(ceiling) => return false,
        }
    }
    false
}

/// Open one hostile connection and report whether the server closed it.
async fn hostile(
    config: Arc<rustls::ClientConfig>,
    port: u16,
    kind: Hostile,
    connecting: Arc<tokio::sync::Semaphore>,
) -> bool {
    let permit = connecting.acquire_owned().await.expect("semaphore");
    let connected =
        tokio::time::timeout(Duration::from_secs(20), tokio::net::TcpStream::connect(("127.0.0.1", port))).await;
    let Ok(Ok(tcp)) = connected else { return false };
    match kind {
        Hostile::Silent => {
            drop(permit);
            drip(tcp, b"", b"").await
        }
        Hostile::SlowHandshake => {
            drop(permit);
            drip(tcp, &[0x16, 0x03, 0x01, 0x02, 0x00], &[0]).await
        }
        Hostile::SlowHead => {
            let name = ServerName::try_from("127.0.0.1").expect("server name");
            let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await;
            drop(permit);
            match tls {
                Ok(tls) => {
                    drip(tls, b"GET /metadata/endpoints", b"?a=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").await
                }
                // Closed during the handshake: by the server, which is what is asked.
                Err(_) => true,
            }
        }
    }
}

/// Short timeouts, so the test sees them work (the handshake's leaves a loaded machine time to
/// finish a real client's).
const SHORT: &[&str] = &["--handshake-timeout", "2", "--header-timeout", "1", "--idle-timeout", "1"];

#[test]
fn five_thousand_idle_and_slow_connections_are_closed_while_a_client_is_served() {
    let lab = Lab::start();
    let (endpoint, _) = account_only(&lab, "slowblob");
    let mut flags = SHORT.to_vec();
    flags.extend(["--max-connections", "8192"]);
    let server = Server::take_over(lab, &flags);
    let ports = [target(&format!("{}/", server.info.arm_url)).0, target(&endpoint).0];
    let config = trust(&server.info);
    let files_before = server.open_files();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let served = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let (closed, peak) = rt.block_on(async {
        // The legitimate client: one request after another, each on a new connection, until
        // the attack is over.
        let stop = Arc::new(tokio::sync::Notify::new());
        let legit = {
            let (info, served, failed, stop) = (server.info.clone(), served.clone(), failed.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    match metadata(&info).await {
                        Some(200) => served.fetch_add(1, Ordering::SeqCst),
                        _ => failed.fetch_add(1, Ordering::SeqCst),
                    };
                    tokio::select! {
                        () = stop.notified() => break,
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            })
        };
        // Fewer connects at once than the kernel's accept queue holds (128).
        let connecting = Arc::new(tokio::sync::Semaphore::new(100));
        let mut tasks = Vec::new();
        for i in 0..5000usize {
            let kind = match i % 10 {
                0..=5 => Hostile::Silent,
                6..=8 => Hostile::SlowHandshake,
                _ => Hostile::SlowHead,
            };
            tasks.push(tokio::spawn(hostile(config.clone(), ports[i % 2], kind, connecting.clone())));
        }
        let mut closed = 0;
        let mut peak = 0;
        for (i, t) in tasks.into_iter().enumerate() {
            if t.await.unwrap_or(false) {
                closed += 1;
            }
            if i % 500 == 0 {
                peak = peak.max(server.status_kb("VmRSS"));
            }
        }
        stop.notify_one();
        let _ = legit.await;
        (closed, peak)
    });
    assert_eq!(closed, 5000, "connections the server closed");
    assert_eq!(failed.load(Ordering::SeqCst), 0, "the legitimate client's failed requests");
    assert!(served.load(Ordering::SeqCst) > 0);
    let hwm = server.status_kb("VmHWM");
    assert!(hwm < RESIDENT_CEILING_KB, "peak resident {hwm} kB (sampled {peak} kB)");
    // Every connection the attack opened is gone from the server.
    let files_after = server.open_files();
    assert!(files_after <= files_before + 8, "open files: {files_before} before, {files_after} after");
}

#[test]
fn at_the_connection_cap_new_clients_wait_and_are_then_served() {
    let lab = Lab::start();
    let mut flags = SHORT.to_vec();
    flags.extend(["--max-connections", "16"]);
    let server = Server::take_over(lab, &flags);
    let port = target(&format!("{}/", server.info.arm_url)).0;
    let config = trust(&server.info);
    let files_before = server.open_files();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (closed, most_files, answer) = rt.block_on(async {
        let connecting = Arc::new(tokio::sync::Semaphore::new(100));
        let tasks: Vec<_> =
            (0..60).map(|_| tokio::spawn(hostile(config.clone(), port, Hostile::Silent, connecting.clone()))).collect();
        // The cap is full of silent connections (the rest wait in the kernel's queue): this
        // client waits for a slot, then is served.
        let answer = metadata(&server.info).await;
        let mut most = 0;
        let mut closed = 0;
        for t in tasks {
            most = most.max(server.open_files());
            if t.await.unwrap_or(false) {
                closed += 1;
            }
        }
        (closed, most, answer)
    });
    assert_eq!(answer, Some(200));
    assert_eq!(closed, 60);
    // Without the cap the server would hold all 60; a few files besides the sockets (the
    // state journal, the runtime's own) may be opened meanwhile.
    assert!(most_files <= files_before + 16 + 4, "open files {most_files}, {files_before} before, cap 16");
}

const STORAGE: &str = "https://storage.azure.com/.default";

#[test]
fn bodies_over_a_planes_limit_are_refused_413_in_its_own_format_after_authentication() {
    let lab = Lab::start();
    let t = prepare(&lab);
    let config = trust(&lab.cloud.info);
    let account = format!("{}/providers/Microsoft.Storage/storageAccounts", lab.rg_path("data"));
    let lake = format!("{}/providers/Microsoft.Storage/storageAccounts/hostilelake", lab.rg_path("gen2"));
    let (blob_token, _) =
        lab.principal_for(&[("Storage Blob Data Contributor", &format!("{account}/hostileblob"))], STORAGE);
    let (dfs_token, _) = lab.principal_for(&[("Storage Blob Data Owner", &lake)], STORAGE);
    let vault_token = lab.operator_token_for("https://vault.azure.net/.default");
    let lake_token = lab.operator_token_for(crate::local_datalake::DATALAKE_SCOPE);
    let tokens = [blob_token, dfs_token, lake_token, vault_token, lab.operator.clone()];
    let plans = uploads(&t, &lab.cloud.info.arm_url, &lab.sub());
    // (limit, the 413's error code) per plane, in the order of `uploads`.
    let expected: [(u64, &str); 5] = [
        (256 * MIB, "RequestBodyTooLarge"),
        (256 * MIB, "RequestBodyTooLarge"),
        (256 * MIB, "IOException"),
        (200 * 1024, "RequestEntityTooLarge"),
        (4 * MIB, "RequestEntityTooLarge"),
    ];
    let code = |plane: &str, a: &Answer| match plane {
        "blob" => a.header("x-ms-error-code").unwrap_or_default().to_string(),
        "webhdfs" => a.json()["RemoteException"]["exception"].as_str().unwrap_or_default().to_string(),
        _ => a.json()["error"]["code"].as_str().unwrap_or_default().to_string(),
    };
    for (((plane, method, url, headers), token), (limit, want)) in plans.iter().zip(&tokens).zip(expected) {
        let over = (limit + 1).to_string();
        let bearer = format!("Bearer {token}");
        let mut with_length: Vec<(&str, &str)> = headers.clone();
        with_length.push(("Content-Length", &over));
        // No token: the 401 comes first, whatever the length.
        let refused = raw(&config, &lab.rt, method, url, &with_length);
        assert_eq!(refused.status, 401, "{plane}: {refused:?}");
        // A token and a declared length over the limit: 413 at once, no byte of the body sent.
        with_length.push(("Authorization", &bearer));
        let a = raw(&config, &lab.rt, method, url, &with_length);
        assert_eq!(a.status, 413, "{plane}: {a:?}");
        assert_eq!(code(plane, &a), want, "{plane}: {a:?}");
        if *plane == "blob" {
            assert!(a.body.contains(&format!("<MaxLimit>{limit}</MaxLimit>")), "{}", a.body);
        }
    }
    // Chunked bodies are read up to the limit and then refused, on the small limits.
    for i in [3, 4] {
        let (plane, method, url, headers) = &plans[i];
        let bearer = format!("Bearer {}", tokens[i]);
        let mut h = headers.clone();
        h.push(("Authorization", &bearer));
        let (a, _) = lab.rt.block_on(flood(&config, method, url, &h, expected[i].0 + MIB, true));
        assert_eq!(a.status, 413, "{plane}: {a:?}");
        assert_eq!(code(plane, &a), expected[i].1, "{plane}: {a:?}");
    }
    // Under the limit, a body is taken.
    let ok = lab.op(
        "PUT",
        &format!("{}?api-version=2024-11-01", lab.rg_path("small")),
        Some(&json!({"location": "eastus"})),
    );
    assert_eq!(ok.status, 201, "{}", ok.body);
}

#[test]
fn names_azure_refuses_are_refused_with_its_error_and_nothing_is_made() {
    let lab = Lab::start();
    let rg = lab.rg_path("names");
    assert!(lab.op("PUT", &format!("{rg}?api-version=2024-11-01"), Some(&json!({"location": "eastus"}))).status < 300);
    let located = json!({"location": "eastus"});
    let identity = |name: &str| {
        format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}?api-version=2024-11-30")
    };
    let long = "a".repeat(129);
    for bad in ["..%2F..%2Fx", "ab", "-lead", "a.b", "a%20b", long.as_str()] {
        let r = lab.op("PUT", &identity(bad), Some(&located));
        assert_eq!((r.status, r.code()), (400, "InvalidResourceName"), "identity {bad}: {}", r.body);
        assert_eq!(lab.op("GET", &identity(bad), None).status, 404, "identity {bad} was made");
    }
    let good = lab.op("PUT", &identity("id_ok-1"), Some(&located));
    assert!(good.status == 200 || good.status == 201, "{}", good.body);
    let vnet = json!({"location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}});
    for (path, body, want) in [
        (
            format!("{rg}/providers/Microsoft.Network/virtualNetworks/vnet-?api-version=2024-05-01"),
            &vnet,
            "InvalidResourceName",
        ),
        (
            format!("{rg}/providers/Microsoft.Network/networkSecurityGroups/.nsg?api-version=2024-05-01"),
            &located,
            "InvalidResourceName",
        ),
        (
            format!("{rg}/providers/Microsoft.Compute/virtualMachines/vm_1?api-version=2025-04-01"),
            &located,
            "InvalidResourceName",
        ),
        (
            format!("{rg}/providers/Microsoft.Storage/storageAccounts/Bad?api-version=2025-06-01"),
            &json!({"location": "eastus", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}),
            "AccountNameInvalid",
        ),
        (format!("{}?api-version=2024-11-01", lab.rg_path("rg.")), &located, "InvalidResourceGroupName"),
    ] {
        let r = lab.op("PUT", &path, Some(body));
        assert_eq!((r.status, r.code().to_string()), (400, want.to_string()), "{path}: {}", r.body);
    }
    let (account_id, _) = crate::local_blob::storage_account(&lab, "names", "namesaccount", json!({}));
    for bad in ["Upper", "a--b", "ab", "-lead"] {
        let path = format!("{account_id}/blobServices/default/containers/{bad}?api-version=2025-06-01");
        let r = lab.op("PUT", &path, Some(&json!({"properties": {}})));
        assert_eq!((r.status, r.code()), (400, "InvalidResourceName"), "container {bad}: {}", r.body);
    }
}

#[test]
fn data_lake_paths_with_dot_segments_are_refused_however_spelled() {
    let lab = Lab::start();
    let t = prepare(&lab);
    let config = trust(&lab.cloud.info);
    let lake = format!("{}/providers/Microsoft.Storage/storageAccounts/hostilelake", lab.rg_path("gen2"));
    let (dfs_token, _) = lab.principal_for(&[("Storage Blob Data Owner", &lake)], STORAGE);
    let dfs_auth = format!("Bearer {dfs_token}");
    let lake_token = lab.operator_token_for(crate::local_datalake::DATALAKE_SCOPE);
    let lake_auth = format!("Bearer {lake_token}");
    let dfs_fs = t.dfs.split_once("/big.bin").expect("dfs file system").0.to_string();
    let webhdfs = t.webhdfs.split("/big.bin").next().expect("WebHDFS base").to_string();
    let storage = [("x-ms-version", "2023-11-03"), ("Authorization", dfs_auth.as_str())];
    for bad in
        ["..%2fevil.txt", "%2e%2e/evil.txt", "%2E%2e%2Fevil.txt", "a/../evil.txt", "./evil.txt", "a/%2e/evil.txt"]
    {
        let r = raw(&config, &lab.rt, "PUT", &format!("{dfs_fs}/{bad}?resource=file"), &storage);
        assert_eq!(r.status, 400, "dfs {bad}: {r:?}");
        assert_eq!(r.header("x-ms-error-code"), Some("InvalidResourceName"), "dfs {bad}: {r:?}");
        let r = raw(
            &config,
            &lab.rt,
            "PUT",
            &format!("{webhdfs}/{bad}?op=CREATE&write=true"),
            &[("Authorization", &lake_auth)],
        );
        assert_eq!(r.status, 400, "WebHDFS {bad}: {r:?}");
        assert_eq!(r.json()["RemoteException"]["exception"], "IllegalArgumentException", "WebHDFS {bad}: {r:?}");
    }
    // Nothing named `.` or `..` was stored: the listings hold no such entry.
    let listed = raw(&config, &lab.rt, "GET", &format!("{dfs_fs}?resource=filesystem&recursive=true"), &storage);
    assert_eq!(listed.status, 200, "{listed:?}");
    assert!(!listed.body.contains("evil"), "{}", listed.body);
    let listed = raw(&config, &lab.rt, "GET", &format!("{webhdfs}/?op=LISTSTATUS"), &[("Authorization", &lake_auth)]);
    assert_eq!(listed.status, 200, "{listed:?}");
    assert!(!listed.body.contains("evil") && !listed.body.contains("\"..\""), "{}", listed.body);
    // A name with dots that is not a dot segment is a name.
    let r = raw(&config, &lab.rt, "PUT", &format!("{dfs_fs}/..evil...txt?resource=file"), &storage);
    assert_eq!(r.status, 201, "{r:?}");
}

/// Send `request`, read its answer, then keep reading: the status and whether the server
/// closed the connection afterwards (false when the ceiling passed first).
async fn answered_then_closed<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    request: &str,
) -> (u16, bool) {
    if s.write_all(request.as_bytes()).await.is_err() {
        return (0, true);
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    let closed = tokio::time::timeout(Duration::from_secs(20), read_all).await.unwrap_or(false);
    (parse(&got).status, closed)
}

#[test]
fn kept_alive_connections_and_identity_endpoints_are_closed_once_idle() {
    let lab = Lab::start();
    let nic = lab.network("idle", "nic");
    let vm = format!("{}/providers/Microsoft.Compute/virtualMachines/idlevm", lab.rg_path("idle"));
    let r = lab.op(
        "PUT",
        &format!("{vm}?api-version=2025-04-01"),
        Some(&lab.vm_body(&nic, json!({"type": "SystemAssigned"}))),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let endpoint = lab.vm_endpoint(&vm);
    let imds_port: u16 = endpoint.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).expect("port");
    let server = Server::take_over(lab, SHORT);
    let config = trust(&server.info);
    let arm_port = target(&format!("{}/", server.info.arm_url)).0;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        // A kept-alive HTTPS connection: answered, then closed by the idle timeout.
        let tls = connect_tls(&config, arm_port).await.expect("TLS");
        let get = format!("GET /metadata/endpoints?api-version=2022-09-01 HTTP/1.1\r\nHost: 127.0.0.1:{arm_port}\r\n\r\n");
        assert_eq!(answered_then_closed(tls, &get).await, (200, true));
        // The identity endpoint (plain HTTP): a kept-alive connection after a refused request,
        // and a silent one, both closed.
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", imds_port)).await.expect("connect");
        let get = format!("GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/ HTTP/1.1\r\nHost: 127.0.0.1:{imds_port}\r\n\r\n");
        assert_eq!(answered_then_closed(tcp, &get).await, (400, true), "no Metadata header: 400, then closed");
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", imds_port)).await.expect("connect");
        assert!(drip(tcp, b"", b"").await, "a silent connection to the identity endpoint is closed");
    });
}
