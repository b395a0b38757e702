//! The request pipeline (issue 10): authentication runs on the request head, before the body
//! is read. A request that announces a 256 MiB body, sends none and carries no (or a bad)
//! token is answered at once, in the plane's own error format; before the pipeline the planes
//! read the body first, so such a request waited for its body (blob, Key Vault and ARM alike).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::lab::Lab;
use crate::local_blob::{account_only, container};
use crate::local_keyvault::vault;

/// How long a client waits for an answer; a plane that waits for the body misses it.
const PATIENCE: Duration = Duration::from_secs(10);

/// An answer read off the wire: status, headers (lower-cased names) and body.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Send only the head of `method url` over TLS, announcing a 256 MiB body and sending none of
/// it; the answer, or `None` when none arrived within [`PATIENCE`].
fn head_only(lab: &Lab, method: &str, url: &str, headers: &[(&str, &str)]) -> Option<Raw> {
    let url = reqwest::Url::parse(url).expect("url");
    let port = url.port().expect("port");
    let target = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let pem = std::fs::read(&lab.cloud.info.ca_file).expect("CA file");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("CA certificate")).expect("CA");
    }
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    lab.rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        let name = ServerName::try_from("127.0.0.1").expect("server name");
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS");
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 268435456\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        tls.write_all(head.as_bytes()).await.expect("send the head");
        tls.flush().await.expect("flush");
        let deadline = Instant::now() + PATIENCE;
        let mut got = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, tls.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => got.extend_from_slice(&chunk[..n]),
                _ => break,
            }
            if let Some(raw) = parse(&got) {
                return Some(raw);
            }
        }
        parse(&got)
    })
}

/// A complete HTTP/1.1 answer with a `Content-Length` body, if `got` holds one.
fn parse(got: &[u8]) -> Option<Raw> {
    let text = String::from_utf8_lossy(got);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok())?;
    (body.len() >= len).then(|| Raw { status, headers, body: body[..len].to_string() })
}

#[test]
fn a_refused_request_is_answered_before_its_body_is_read() {
    let lab = Lab::start();
    // Blob: no token, then a token that is not one — storage XML, before the body.
    let (endpoint, account_id) = account_only(&lab, "pipelinebody");
    container(&lab, &account_id, "docs");
    let blob = format!("{endpoint}docs/big.bin");
    let storage = [("x-ms-version", "2023-11-03"), ("x-ms-blob-type", "BlockBlob")];
    let r = head_only(&lab, "PUT", &blob, &storage).expect("blob answers a tokenless PUT without its body");
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.header("x-ms-error-code"), Some("NoAuthenticationInformation"));
    assert!(r.body.contains("<Code>NoAuthenticationInformation</Code>"), "{}", r.body);
    let bad = [storage[0], storage[1], ("Authorization", "Bearer not-a-token")];
    let r = head_only(&lab, "PUT", &blob, &bad).expect("blob answers a bad token without the body");
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.header("x-ms-error-code"), Some("InvalidAuthenticationInfo"));

    // Key Vault: the 401 challenge, before the body.
    let (_, uri) = vault(&lab, "pipeline", "pipeline-kv", json!([]), true);
    let r = head_only(&lab, "PUT", &format!("{uri}secrets/x?api-version=7.4"), &[("Content-Type", "application/json")])
        .expect("Key Vault answers a tokenless PUT without its body");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.header("www-authenticate").is_some_and(|c| c.contains("resource=\"https://vault.azure.net\"")));
    let v: Value = serde_json::from_str(&r.body).expect("Key Vault JSON");
    assert_eq!(v["error"]["code"], "Unauthorized");

    // ARM: the 401 envelope, before the body.
    let url = format!("{}{}?api-version=2024-11-01", lab.cloud.info.arm_url, lab.rg_path("pipeline-big"));
    let r = head_only(&lab, "PUT", &url, &[("Content-Type", "application/json")])
        .expect("ARM answers a tokenless PUT without its body");
    assert_eq!(r.status, 401, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).expect("ARM JSON");
    assert_eq!(v["error"]["code"], "AuthenticationFailed");
    assert!(r.header("x-ms-request-id").is_some());
}

#[test]
fn a_refused_arm_action_is_answered_before_the_handler() {
    // ARM authorizes the action an endpoint declares in the pipeline: a Reader's PUT of a
    // resource is refused from its head, so the handler (which reads the body) never runs
    // and nothing is created. Before, the handler authorized, after waiting for the body.
    let lab = Lab::start();
    let rg = lab.rg_path("pipeline-reader");
    assert_eq!(
        lab.op("PUT", &format!("{rg}?api-version=2024-11-01"), Some(&json!({"location": "eastus"}))).status,
        201
    );
    let (token, oid) = lab.principal(&[("Reader", &rg)]);
    let path =
        format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/refused?api-version=2024-11-30");
    let auth = format!("Bearer {token}");
    let url = format!("{}{path}", lab.cloud.info.arm_url);
    let r = head_only(&lab, "PUT", &url, &[("Content-Type", "application/json"), ("Authorization", &auth)])
        .expect("ARM refuses a Reader's PUT without its body");
    assert_eq!(r.status, 403, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).expect("ARM JSON");
    assert_eq!(v["error"]["code"], "AuthorizationFailed");
    let m = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        m.contains(&format!("with object id '{oid}'"))
            && m.contains("perform action 'Microsoft.ManagedIdentity/userAssignedIdentities/write'"),
        "{m}"
    );
    assert!(r.header("x-ms-request-id").is_some());
    // The handler never ran: the identity does not exist, for the operator or the Reader.
    assert_eq!(lab.op("GET", &path, None).status, 404);
    let read = lab.send(Some(&token), "GET", &path, None);
    assert_eq!((read.status, read.code()), (404, "ResourceNotFound"), "{}", read.body);
    // A POST action answers a malformed body (400) before the refusal, as it always did.
    let check =
        format!("/subscriptions/{}/providers/Microsoft.Sql/checkNameAvailability?api-version=2023-08-01", lab.sub());
    let bad = lab.send(Some(&token), "POST", &check, Some(&json!([1])));
    assert_eq!((bad.status, bad.code()), (400, "InvalidRequestContent"), "{}", bad.body);
    let refused = lab.send(Some(&token), "POST", &check, Some(&json!({"name": "x", "type": "Microsoft.Sql/servers"})));
    assert_eq!((refused.status, refused.code()), (403, "AuthorizationFailed"), "{}", refused.body);
}
