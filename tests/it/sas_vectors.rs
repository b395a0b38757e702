//! Service SAS against vectors made by Azure's official Python SDKs
//! (`tests/fixtures/sas_vectors.json`, written by `tests/sdk/sas_vectors.py`): the local
//! cloud, holding the vectors' account key (imported through the admin API), signs the same
//! tokens through `ListServiceSas` as the SDK that signs with the RP's service version, and
//! its blob data plane accepts every vector for the operations its permissions allow, refuses
//! the others, and refuses each vector with any one field changed.

use serde_json::{Value, json};

use crate::lab::Lab;
use crate::local_blob::{Blob, account_only, blob, container};

fn fixture() -> Value {
    let path = crate::common::root().join("tests/fixtures/sas_vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("fixture is JSON")
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_default()
}

/// A query string as decoded (name, value) pairs, in order.
fn pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                k.to_string(),
                url::form_urlencoded::parse(format!("v={}", v.replace('+', "%2B")).as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

fn query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()))
        .collect::<Vec<_>>()
        .join("&")
}

fn sorted(mut p: Vec<(String, String)>) -> Vec<(String, String)> {
    p.sort();
    p
}

/// The URL path of a blob name (each segment percent-encoded).
fn path_of(name: &str) -> String {
    name.split('/')
        .map(|seg| url::form_urlencoded::byte_serialize(seg.as_bytes()).collect::<String>().replace('+', "%20"))
        .collect::<Vec<_>>()
        .join("/")
}

struct Setup {
    lab: Lab,
    endpoint: String,
    account_id: String,
    fx: Value,
}

impl Setup {
    fn new() -> Setup {
        let lab = Lab::start();
        let fx = fixture();
        let (endpoint, account_id) = account_only(&lab, s(&fx, "account"));
        container(&lab, &account_id, s(&fx, "container"));
        container(&lab, &account_id, "other");
        // The vectors' key replaces the account's random ones (operator-only admin API).
        let path = format!("/_idlab/storageAccounts/{}/keys", s(&fx, "account"));
        let key = s(&fx, "key").to_string();
        let imported = lab.op("PUT", &path, Some(&json!({ "keys": [key, key] })));
        assert_eq!(imported.status, 200, "{}", imported.body);
        assert!(!imported.body.to_string().contains(&key), "the admin API echoes no key");
        let keys = lab.op("POST", &format!("{account_id}/listKeys?api-version=2025-06-01"), None);
        assert_eq!(keys.body["keys"][0]["value"], key.as_str());
        Setup { lab, endpoint, account_id, fx }
    }

    /// A SAS for everything on a container, from ListServiceSas.
    fn admin_sas(&self, container: &str) -> String {
        let req = json!({"canonicalizedResource": format!("/blob/{}/{container}", s(&self.fx, "account")), "signedResource": "c", "signedPermission": "rcwdl", "signedExpiry": "2099-01-01T00:00:00Z"});
        let r = self.lab.op("POST", &format!("{}/ListServiceSas?api-version=2025-06-01", self.account_id), Some(&req));
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["serviceSasToken"].as_str().expect("token").to_string()
    }

    fn url(&self, container: &str, blob: &str) -> String {
        format!("{}{container}/{}", self.endpoint, path_of(blob))
    }

    fn seed(&self, container: &str, blob: &str) {
        let sas = self.admin_sas(container);
        let r = self.send("PUT", &format!("{}?{sas}", self.url(container, blob)), b"vector content");
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }

    fn send(&self, method: &str, url: &str, body: &[u8]) -> Blob {
        let mut h = vec![("x-ms-version", "2026-10-06")];
        if method == "PUT" {
            h.push(("x-ms-blob-type", "BlockBlob"));
        }
        blob(&self.lab, method, url, &h, body)
    }
}

/// One operation a SAS may allow: (label, letter(s) that allow it, method, URL, success status).
type Probe = (&'static str, &'static str, &'static str, String, u16);

fn probes(st: &Setup, v: &Value, sr: &str) -> Vec<Probe> {
    let c = s(&st.fx, "container");
    let b = s(&st.fx, "blob");
    let n = s(v, "name");
    if sr == "c" {
        vec![
            ("list", "l", "GET", format!("{}{c}?restype=container&comp=list", st.endpoint), 200),
            ("read", "r", "GET", st.url(c, b), 200),
            ("create", "cw", "PUT", st.url(c, &format!("new/{n}.txt")), 201),
            ("overwrite", "w", "PUT", st.url(c, b), 201),
            ("delete", "d", "DELETE", st.url(c, &format!("scratch/{n}.txt")), 202),
        ]
    } else {
        vec![
            ("read", "r", "GET", st.url(c, b), 200),
            ("overwrite", "w", "PUT", st.url(c, b), 201),
            ("delete", "d", "DELETE", st.url(c, b), 202),
        ]
    }
}

fn with_sas(url: &str, sas: &str) -> String {
    if url.contains('?') { format!("{url}&{sas}") } else { format!("{url}?{sas}") }
}

#[test]
fn list_service_sas_signs_exactly_what_the_azure_sdk_signs_for_the_rp_version() {
    let st = Setup::new();
    let mut compared = 0;
    for v in st.fx["vectors"].as_array().cloned().unwrap_or_default() {
        let Some(req) = v.get("list_service_sas") else { continue };
        let r = st.lab.op("POST", &format!("{}/ListServiceSas?api-version=2025-06-01", st.account_id), Some(req));
        assert_eq!(r.status, 200, "{}: {}", s(&v, "name"), r.body);
        let ours = sorted(pairs(r.body["serviceSasToken"].as_str().unwrap_or_default()));
        let sdk = sorted(pairs(s(&v, "sas")));
        assert_eq!(ours, sdk, "{} ({})", s(&v, "name"), s(&v, "sdk"));
        compared += 1;
    }
    assert!(compared >= 8, "every legacy vector has a ListServiceSas request: {compared}");
}

#[test]
fn the_data_plane_accepts_each_sdk_vector_for_its_permissions_and_refuses_any_changed_field() {
    let st = Setup::new();
    let (c, b) = (s(&st.fx, "container").to_string(), s(&st.fx, "blob").to_string());
    st.seed(&c, &b);
    st.seed("other", &b);
    let mut checked = 0;
    let mut tampered = 0;
    for v in st.fx["vectors"].as_array().cloned().unwrap_or_default() {
        let name = s(&v, "name").to_string();
        let sas = s(&v, "sas").to_string();
        let q = pairs(&sas);
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        let (sr, sp) = (get("sr"), get("sp"));
        st.seed(&c, &format!("scratch/{name}.txt"));
        let probes = probes(&st, &v, &sr);
        if let Some(refusal) = v["expect"].as_object() {
            // Signed correctly, refused for what it says (address, time, stored policy).
            let want = (refusal["status"].as_u64().unwrap_or(0) as u16, refusal["code"].as_str().unwrap_or_default());
            for (label, _, method, url, _) in &probes {
                let r = st.send(method, &with_sas(url, &sas), b"vector content");
                assert_eq!((r.status, r.code().as_str()), want, "{name} {label}");
            }
            checked += 1;
            continue;
        }
        assert_eq!(v["expect"], "allowed", "{name}");
        for (label, letters, method, url, ok) in &probes {
            let allowed = letters.chars().any(|l| sp.contains(l));
            let r = st.send(method, &with_sas(url, &sas), b"vector content");
            if allowed {
                assert_eq!(r.status, *ok, "{name} {label}: {}", String::from_utf8_lossy(&r.body));
            } else {
                assert_eq!((r.status, r.code().as_str()), (403, "AuthorizationPermissionMismatch"), "{name} {label}");
            }
            if allowed && *label == "read" {
                assert_eq!(r.body, b"vector content", "{name}");
                // rscc … rsct replace the blob's own response headers.
                for (k, h) in [
                    ("rscc", "cache-control"),
                    ("rscd", "content-disposition"),
                    ("rsce", "content-encoding"),
                    ("rscl", "content-language"),
                    ("rsct", "content-type"),
                ] {
                    if !get(k).is_empty() {
                        assert_eq!(r.header(h), get(k), "{name} {h}");
                    }
                }
            }
        }
        // A blob SAS's delete took the seeded blob: put it back for the next vectors.
        st.seed(&c, &b);
        checked += 1;

        // Any one field changed, added, or the path moved: the signature no longer matches.
        let (label, _, method, url, _) =
            probes.iter().find(|(_, l, ..)| l.chars().any(|x| sp.contains(x))).cloned().expect("an allowed probe");
        let mut variants: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for (i, (k, val)) in q.iter().enumerate() {
            let changed = match k.as_str() {
                "sv" => {
                    if val == "2015-04-05" {
                        "2020-12-06".to_string()
                    } else {
                        "2015-04-05".to_string()
                    }
                }
                "sr" => {
                    if val == "c" {
                        "b".into()
                    } else {
                        "c".into()
                    }
                }
                "sp" => {
                    if val.len() > 1 {
                        val[..val.len() - 1].to_string()
                    } else {
                        format!("{val}w")
                    }
                }
                "st" => val.replace(":00Z", ":01Z"),
                "se" => val.replace(":59Z", ":58Z"),
                "spr" => {
                    if val == "https" {
                        "https,http".into()
                    } else {
                        "https".into()
                    }
                }
                "sip" => {
                    if val.contains('-') {
                        "127.0.0.1".into()
                    } else {
                        "127.0.0.0-127.0.0.255".into()
                    }
                }
                "sig" => {
                    use base64::Engine;
                    let mut raw = base64::engine::general_purpose::STANDARD.decode(val).expect("sig is base64");
                    raw[0] ^= 1;
                    base64::engine::general_purpose::STANDARD.encode(raw)
                }
                _ => format!("{val}x"),
            };
            let mut p = q.clone();
            p[i].1 = changed;
            variants.push((format!("{k} changed"), p));
        }
        for k in ["st", "spr", "sip", "si", "rscc"] {
            if get(k).is_empty() {
                let mut p = q.clone();
                let val = match k {
                    "st" => "2024-01-01T00:00:00Z",
                    "spr" => "https",
                    "sip" => "127.0.0.1",
                    _ => "x",
                };
                p.insert(p.len() - 1, (k.to_string(), val.to_string()));
                variants.push((format!("{k} added"), p));
            }
        }
        for (what, p) in variants {
            let r = st.send(method, &with_sas(&url, &query(&p)), b"vector content");
            assert_eq!((r.status, r.code().as_str()), (403, "AuthenticationFailed"), "{name}: {what} ({label})");
            tampered += 1;
        }
        // The same SAS on another container (container SAS) or another blob (blob SAS).
        let moved =
            if sr == "c" { url.replacen(&format!("/{c}"), "/other", 1) } else { st.url(&c, "docs/another.txt") };
        let r = st.send(method, &with_sas(&moved, &sas), b"vector content");
        assert_eq!((r.status, r.code().as_str()), (403, "AuthenticationFailed"), "{name}: path moved ({label})");
    }
    assert!(checked >= 16 && tampered >= 80, "{checked} vectors, {tampered} changed fields");
    // No vector's signature reaches the request log.
    let log = st.lab.op("GET", "/_idlab/requests", None).body.to_string();
    for v in st.fx["vectors"].as_array().cloned().unwrap_or_default() {
        let sig = pairs(s(&v, "sas")).into_iter().find(|(k, _)| k == "sig").map(|(_, v)| v).unwrap_or_default();
        assert!(!log.contains(&sig), "a SAS signature in the request log");
    }
}

#[test]
fn the_key_import_is_for_the_operator_only_and_checks_its_keys() {
    let lab = Lab::start();
    let (_, account_id) = account_only(&lab, "idlabkeyimport");
    let path = "/_idlab/storageAccounts/idlabkeyimport/keys";
    let bad = lab.op("PUT", path, Some(&json!({"keys": ["not base64!", "AAAA"]})));
    assert_eq!((bad.status, bad.code()), (400, "InvalidRequestContent"), "{}", bad.body);
    let one = lab.op("PUT", path, Some(&json!({"keys": ["AAAA"]})));
    assert_eq!(one.status, 400, "{}", one.body);
    let missing = lab.op("PUT", "/_idlab/storageAccounts/nosuchaccount/keys", Some(&json!({"keys": ["AAAA", "AAAA"]})));
    assert_eq!((missing.status, missing.code()), (404, "ResourceNotFound"));
    let (owner, _) = lab.principal(&[("Owner", &account_id)]);
    let refused = lab.send(Some(&owner), "PUT", path, Some(&json!({"keys": ["AAAA", "AAAA"]})));
    assert_eq!((refused.status, refused.code()), (403, "AuthorizationFailed"));
    let before = lab.op("POST", &format!("{account_id}/listKeys?api-version=2025-06-01"), None);
    assert_ne!(before.body["keys"][0]["value"], "AAAA");
}
