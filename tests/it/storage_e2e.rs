//! Storage through the real binary: a blob larger than one Put Blob goes up in blocks and
//! converges (a second apply writes nothing), and containers and blobs export `url`.

use serde_json::{Value, json};

use crate::common::Served;
use idlab::arm::blob::{BLOCK_SIZE, BLOCK_THRESHOLD};
use idlab::local::attach;

const PLAN: &str = "name: big-blob
location: eastus
resources:
  rg:
    type: resource_group
    name: big-rg
  storage:
    type: storage_account
    name: idlabbigblob1
    resource_group: ${rg}
  docs:
    type: blob_container
    name: docs
    account: ${storage}
  big:
    type: blob
    name: dir/big file.bin
    container: ${docs}
    source: big.bin
outputs:
  endpoint: ${storage.blob_endpoint}
  container_url: ${docs.url}
  blob_url: ${big.url}
";

/// Deterministic bytes that do not repeat with the block size.
fn content(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

fn md5_b64(data: &[u8]) -> String {
    use base64::Engine;
    use md5::{Digest, Md5};
    base64::engine::general_purpose::STANDARD.encode(Md5::digest(data))
}

/// GET a blob URL with a SAS from ListServiceSas (as the operator): (status, Content-MD5, body).
fn download(s: &Served, account_id: &str, url: &str) -> (u16, String, Vec<u8>) {
    let req = json!({"canonicalizedResource": "/blob/idlabbigblob1/docs", "signedResource": "c", "signedPermission": "r", "signedExpiry": "2099-01-01T00:00:00Z"});
    let sas = s.op("POST", &format!("{account_id}/ListServiceSas?api-version=2025-06-01"), Some(req));
    let sas = sas["serviceSasToken"].as_str().expect("a SAS").to_string();
    let info = attach::read_info(&s.state).expect("server.json");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    rt.block_on(async {
        let c = attach::client(&info).expect("client");
        let r = c.get(format!("{url}?{sas}")).header("x-ms-version", "2023-11-03").send().await.expect("blob GET");
        let status = r.status().as_u16();
        let md5 = r.headers().get("content-md5").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        (status, md5, r.bytes().await.unwrap_or_default().to_vec())
    })
}

/// PUTs on `path` in the request log.
fn puts_on(s: &Served, path: &str) -> usize {
    let log = s.op("GET", "/_idlab/requests", None);
    log["value"].as_array().map(|v| v.iter().filter(|e| e["method"] == "PUT" && e["path"] == path).count()).unwrap_or(0)
}

#[test]
fn a_blob_above_the_block_threshold_uploads_in_blocks_converges_and_exports_its_url() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = content(2 * BLOCK_SIZE + 12_345);
    assert!(data.len() > BLOCK_THRESHOLD);
    std::fs::write(tmp.path().join("big.bin"), &data).expect("file");
    std::fs::write(tmp.path().join("big.yaml"), PLAN).expect("plan");
    let p = tmp.path().join("big.yaml").display().to_string();
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);

    // One Put Block per block, then one Put Block List, all on the blob's path.
    let blob_path = "/idlabbigblob1/docs/dir/big%20file.bin";
    assert_eq!(puts_on(&s, blob_path), data.len().div_ceil(BLOCK_SIZE) + 1);

    // The outputs: the container and blob URLs under the account's blob endpoint.
    let out = s.idlab(&["output", &p, "--format", "json"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let outputs: Value = serde_json::from_str(&out.stdout).expect("JSON outputs");
    let endpoint = outputs["endpoint"].as_str().expect("endpoint").to_string();
    assert!(endpoint.starts_with("https://127.0.0.1:") && endpoint.ends_with("/idlabbigblob1/"), "{endpoint}");
    assert_eq!(outputs["container_url"], format!("{endpoint}docs"));
    let url = format!("{endpoint}docs/dir/big%20file.bin");
    assert_eq!(outputs["blob_url"], url.as_str());

    // The blob at that URL is the file, and reports the whole file's MD5.
    let sub = s.subscription();
    let account_id =
        format!("/subscriptions/{sub}/resourceGroups/big-rg/providers/Microsoft.Storage/storageAccounts/idlabbigblob1");
    let (status, md5, body) = download(&s, &account_id, &url);
    assert_eq!(status, 200);
    assert!(body == data, "the downloaded blob differs from the file ({} bytes vs {})", body.len(), data.len());
    assert_eq!(md5, md5_b64(&data));

    // A second apply sends nothing.
    s.assert_second_apply_writes_nothing(&p);

    // Changed content is an update of the MD5; applying it uploads the new file.
    let mut changed = data.clone();
    changed[BLOCK_SIZE + 1] ^= 0xff;
    std::fs::write(tmp.path().join("big.bin"), &changed).expect("file");
    let plan = s.idlab(&["plan", &p, "--detailed-exitcode"]);
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("~ properties/contentMd5:"), "{}", plan.stdout);
    assert_eq!(s.idlab(&["apply", &p, "--auto-approve"]).code, 0);
    let (_, md5, body) = download(&s, &account_id, &url);
    assert!(body == changed, "the blob was not replaced");
    assert_eq!(md5, md5_b64(&changed));
    let d = s.idlab(&["destroy", &p, "--auto-approve"]);
    assert_eq!(d.code, 0, "{}{}", d.stdout, d.stderr);
}
