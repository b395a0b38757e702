//! The local cloud's blob data plane: storage accounts created through ARM, then blobs read
//! and written with Entra tokens (RBAC data actions) or a service SAS from `ListServiceSas`.

use serde_json::json;

use crate::lab::Lab;

pub(crate) struct Blob {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Blob {
    pub(crate) fn code(&self) -> String {
        self.headers.get("x-ms-error-code").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }
    pub(crate) fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }
}

pub(crate) fn blob(lab: &Lab, method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Blob {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    lab.rt.block_on(async {
        let mut r = lab.http.request(m, url).body(body.to_vec());
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let resp = r.send().await.expect("blob endpoint answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.unwrap_or_default().to_vec();
        Blob { status, headers, body }
    })
}

/// A principal with `roles` and a storage-audience token for it.
fn storage_principal(lab: &Lab, roles: &[(&str, &str)]) -> String {
    lab.principal_for(roles, "https://storage.azure.com/.default").0
}

/// A group, an account (through its long-running create) and a container; answers the
/// account's blob endpoint and the container id.
fn account(lab: &Lab, name: &str) -> (String, String) {
    let (endpoint, account_id) = account_only(lab, name);
    (endpoint, container(lab, &account_id, "docs"))
}

/// A group and an account (through its long-running create): its blob endpoint and id.
pub(crate) fn account_only(lab: &Lab, name: &str) -> (String, String) {
    let (id, done) = storage_account(lab, "data", name, json!({}));
    let endpoint = done["properties"]["primaryEndpoints"]["blob"].as_str().expect("blob endpoint").to_string();
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    (endpoint, id)
}

/// A container in the account; answers its id.
pub(crate) fn container(lab: &Lab, account_id: &str, name: &str) -> String {
    let container = format!("{account_id}/blobServices/default/containers/{name}");
    let c = lab.op("PUT", &format!("{container}?api-version=2025-06-01"), Some(&json!({"properties": {}})));
    assert!(c.status == 200 || c.status == 201, "{}", c.body);
    container
}

/// A group and a StorageV2 account with `properties`, through its long-running create:
/// answers the account id and its body once created.
pub fn storage_account(lab: &Lab, rg: &str, name: &str, properties: serde_json::Value) -> (String, serde_json::Value) {
    let rg = lab.rg_path(rg);
    assert!(lab.op("PUT", &format!("{rg}?api-version=2024-11-01"), Some(&json!({"location": "eastus"}))).status < 300);
    let id = format!("{rg}/providers/Microsoft.Storage/storageAccounts/{name}");
    let body =
        json!({"location": "eastus", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2", "properties": properties});
    let created = lab.op("PUT", &format!("{id}?api-version=2025-06-01"), Some(&body));
    assert_eq!(created.status, 202, "{}", created.body);
    let location = created.header("location").expect("Location on 202");
    let done = poll(lab, &location);
    assert_eq!(done.status, 200, "{}", done.body);
    (id, done.body)
}

/// Poll a `Location` URL until it answers 200 (or give up after 50 tries).
pub(crate) fn poll(lab: &Lab, location: &str) -> crate::lab::Resp {
    let mut done = lab.op("GET", location, None);
    for _ in 0..50 {
        if done.status == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        done = lab.op("GET", location, None);
    }
    done
}

#[test]
fn blobs_need_a_data_role_or_a_sas_with_the_right_letters() {
    let lab = Lab::start();
    let (endpoint, container) = account(&lab, "idlabdata1");
    let account_id = container.split("/blobServices/").next().unwrap_or_default().to_string();
    let url = format!("{endpoint}docs/hello.txt");
    let v = ("x-ms-version", "2023-11-03");

    // A SAS with create+write (from the RP, signed with the account key) uploads.
    let sas = |perms: &str| {
        let req = json!({"canonicalizedResource": "/blob/idlabdata1/docs", "signedResource": "c", "signedPermission": perms, "signedProtocol": "https", "signedExpiry": "2099-01-01T00:00:00Z"});
        let r = lab.op("POST", &format!("{account_id}/ListServiceSas?api-version=2025-06-01"), Some(&req));
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["serviceSasToken"].as_str().expect("token").to_string()
    };
    let write_sas = sas("cw");
    let put = blob(
        &lab,
        "PUT",
        &format!("{url}?{write_sas}"),
        &[v, ("x-ms-blob-type", "BlockBlob"), ("content-type", "text/plain")],
        b"Hello world from the VM!",
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    // MD5 of the content (`openssl md5 -binary | base64`), as the service reports it.
    assert_eq!(put.header("content-md5"), "TvprNf0UbXvMaWb8p+BvqA==");

    // The same SAS has no `r`: reading is refused; a tampered signature fails authentication.
    let read_with_write_sas = blob(&lab, "GET", &format!("{url}?{write_sas}"), &[v], b"");
    assert_eq!(
        (read_with_write_sas.status, read_with_write_sas.code().as_str()),
        (403, "AuthorizationPermissionMismatch")
    );
    let tampered = write_sas.replace("sp=cw", "sp=rcw");
    let t = blob(&lab, "GET", &format!("{url}?{tampered}"), &[v], b"");
    assert_eq!((t.status, t.code().as_str()), (403, "AuthenticationFailed"));

    // Deleting one blob leaves the blobs whose names start with its name.
    let all = sas("rcwdl");
    for n in ["report", "report.old", "report/2024.csv"] {
        let r = blob(
            &lab,
            "PUT",
            &format!("{endpoint}docs/{n}?{all}"),
            &[v, ("x-ms-blob-type", "BlockBlob")],
            n.as_bytes(),
        );
        assert_eq!(r.status, 201);
    }
    let d = blob(&lab, "DELETE", &format!("{endpoint}docs/report?{all}"), &[v], b"");
    assert_eq!(d.status, 202);
    let listed = blob(&lab, "GET", &format!("{endpoint}docs?restype=container&comp=list&{all}"), &[v], b"");
    let text = String::from_utf8_lossy(&listed.body).to_string();
    assert!(
        !text.contains("<Name>report</Name>")
            && text.contains("<Name>report.old</Name>")
            && text.contains("<Name>report/2024.csv</Name>"),
        "{text}"
    );
    // prefix and delimiter: names past the delimiter fold into one BlobPrefix.
    let folded = blob(
        &lab,
        "GET",
        &format!("{endpoint}docs?restype=container&comp=list&prefix=rep&delimiter=/&{all}"),
        &[v],
        b"",
    );
    let text = String::from_utf8_lossy(&folded.body).to_string();
    // In name order: `report.old` sorts before `report/`.
    assert!(
        text.contains("<Prefix>rep</Prefix><Delimiter>/</Delimiter><Blobs><Blob><Name>report.old</Name>"),
        "{text}"
    );
    assert!(text.contains("</Blob><BlobPrefix><Name>report/</Name></BlobPrefix></Blobs>"), "{text}");
    assert!(!text.contains("hello.txt") && !text.contains("2024.csv"), "{text}");
    // Container-level requests are not blob requests: a service SAS names a container and
    // cannot create (or delete) one.
    let c = blob(&lab, "PUT", &format!("{endpoint}docs?restype=container&{all}"), &[v], b"");
    assert_eq!((c.status, c.code().as_str()), (403, "AuthorizationPermissionMismatch"));
    let bare = blob(&lab, "GET", &format!("{endpoint}docs?{all}"), &[v], b"");
    assert_eq!((bare.status, bare.code().as_str()), (400, "InvalidUri"));
    // HEAD reports the size and an HTTP date.
    let h = blob(&lab, "HEAD", &format!("{url}?{all}"), &[v], b"");
    assert_eq!((h.status, h.header("content-length").as_str()), (200, "24"));
    assert!(h.header("last-modified").ends_with(" GMT"), "{}", h.header("last-modified"));
    // A storage account body with a non-object sku is a 400, not a dropped connection.
    let bad = lab.op(
        "PUT",
        &format!("{account_id}2?api-version=2025-06-01"),
        Some(&json!({"location": "eastus", "sku": "Standard_LRS"})),
    );
    assert_eq!((bad.status, bad.code()), (400, "InvalidRequestContent"), "{}", bad.body);

    // Expired SAS: signed correctly by the RP, refused by the data plane.
    let expired_req = json!({"canonicalizedResource": "/blob/idlabdata1/docs", "signedResource": "c", "signedPermission": "rcwd", "signedExpiry": "2020-01-01T00:00:00Z"});
    let expired = lab.op("POST", &format!("{account_id}/ListServiceSas?api-version=2025-06-01"), Some(&expired_req));
    assert_eq!(expired.status, 200, "{}", expired.body);
    let e = blob(
        &lab,
        "GET",
        &format!("{url}?{}", expired.body["serviceSasToken"].as_str().unwrap_or_default()),
        &[v],
        b"",
    );
    assert_eq!((e.status, e.code().as_str()), (403, "AuthenticationFailed"));
    // A read/create/write SAS cannot delete; the blob is still there afterwards.
    let rcw = sas("rcw");
    let del = blob(&lab, "DELETE", &format!("{url}?{rcw}"), &[v], b"");
    assert_eq!((del.status, del.code().as_str()), (403, "AuthorizationPermissionMismatch"));
    let still = blob(&lab, "GET", &format!("{url}?{rcw}"), &[v], b"");
    assert_eq!((still.status, still.body.as_slice()), (200, b"Hello world from the VM!".as_slice()));
    // The RP refuses to sign letters out of Azure's order, an unknown resource type, or another
    // account's resource.
    for (sp, sr, res) in
        [("wr", "c", "/blob/idlabdata1/docs"), ("r", "x", "/blob/idlabdata1/docs"), ("r", "c", "/blob/other/docs")]
    {
        let req = json!({"canonicalizedResource": res, "signedResource": sr, "signedPermission": sp, "signedExpiry": "2099-01-01T00:00:00Z"});
        let r = lab.op("POST", &format!("{account_id}/ListServiceSas?api-version=2025-06-01"), Some(&req));
        assert_eq!((r.status, r.code()), (400, "InvalidValuesForRequestParameters"), "{sp} {sr} {res}: {}", r.body);
    }

    // ListServiceSas needs listServiceSas/action: a Reader is refused, Storage Account
    // Contributor is allowed.
    let sas_req = json!({"canonicalizedResource": "/blob/idlabdata1/docs", "signedResource": "c", "signedPermission": "r", "signedExpiry": "2099-01-01T00:00:00Z"});
    let (reader_mgmt, _) = lab.principal(&[("Reader", &account_id)]);
    let r = lab.send(
        Some(&reader_mgmt),
        "POST",
        &format!("{account_id}/ListServiceSas?api-version=2025-06-01"),
        Some(&sas_req),
    );
    assert_eq!((r.status, r.code()), (403, "AuthorizationFailed"), "{}", r.body);
    let (contributor, _) = lab.principal(&[("Storage Account Contributor", &account_id)]);
    let r = lab.send(
        Some(&contributor),
        "POST",
        &format!("{account_id}/ListServiceSas?api-version=2025-06-01"),
        Some(&sas_req),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // No credentials at all: 401 with a bearer challenge naming the storage resource.
    let anon = blob(&lab, "GET", &url, &[v], b"");
    assert_eq!((anon.status, anon.code().as_str()), (401, "NoAuthenticationInformation"));
    assert!(anon.header("www-authenticate").contains("resource_id=https://storage.azure.com"), "{:?}", anon.headers);

    // An Owner-style management token is the wrong audience for the data plane.
    let mgmt = format!("Bearer {}", lab.operator);
    let wrong_aud = blob(&lab, "GET", &url, &[v, ("authorization", &mgmt)], b"");
    assert_eq!((wrong_aud.status, wrong_aud.code().as_str()), (401, "InvalidAuthenticationInfo"));

    // A principal with only Reader (control plane) on the account has no data actions.
    let reader_only = format!("Bearer {}", storage_principal(&lab, &[("Reader", &account_id)]));
    let denied = blob(&lab, "GET", &url, &[v, ("authorization", &reader_only)], b"");
    assert_eq!((denied.status, denied.code().as_str()), (403, "AuthorizationPermissionMismatch"));

    // Storage Blob Data Reader on the container: reads (whole and ranged), lists, cannot write.
    let reader = format!("Bearer {}", storage_principal(&lab, &[("Storage Blob Data Reader", &container)]));
    let got = blob(&lab, "GET", &url, &[v, ("authorization", &reader)], b"");
    assert_eq!(got.status, 200);
    assert_eq!(got.body, b"Hello world from the VM!");
    assert_eq!(got.header("content-type"), "text/plain");
    let ranged = blob(&lab, "GET", &url, &[v, ("authorization", &reader), ("x-ms-range", "bytes=6-10")], b"");
    assert_eq!((ranged.status, ranged.body.as_slice()), (206, b"world".as_slice()));
    assert_eq!(ranged.header("content-range"), "bytes 6-10/24");
    let listed = blob(
        &lab,
        "GET",
        &format!("{endpoint}docs?restype=container&comp=list"),
        &[v, ("authorization", &reader)],
        b"",
    );
    assert_eq!(listed.status, 200);
    assert!(
        String::from_utf8_lossy(&listed.body)
            .contains("<Name>hello.txt</Name><Properties><Content-Length>24</Content-Length>")
    );
    let overwrite = blob(&lab, "PUT", &url, &[v, ("authorization", &reader), ("x-ms-blob-type", "BlockBlob")], b"x");
    assert_eq!((overwrite.status, overwrite.code().as_str()), (403, "AuthorizationPermissionMismatch"));
    // Bearer tokens need a service version that supports them.
    let old = blob(&lab, "GET", &url, &[("x-ms-version", "2017-04-17"), ("authorization", &reader)], b"");
    assert_eq!((old.status, old.code().as_str()), (403, "AuthenticationFailed"));
    assert!(
        String::from_utf8_lossy(&old.body).contains("<AuthenticationErrorDetail>Authentication scheme Bearer is not supported in this version.</AuthenticationErrorDetail>"),
        "{}",
        String::from_utf8_lossy(&old.body)
    );

    // The role on the container does not reach a sibling container; missing ones are 404.
    let other = blob(&lab, "GET", &format!("{endpoint}nope/hello.txt"), &[v, ("authorization", &reader)], b"");
    assert_eq!((other.status, other.code().as_str()), (404, "ContainerNotFound"));

    // Turning off Shared Key access stops ListServiceSas.
    let patched = lab.op(
        "PATCH",
        &format!("{account_id}?api-version=2025-06-01"),
        Some(&json!({"properties": {"allowSharedKeyAccess": false}})),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    let req = json!({"canonicalizedResource": "/blob/idlabdata1/docs", "signedResource": "c", "signedPermission": "r", "signedExpiry": "2099-01-01T00:00:00Z"});
    let refused = lab.op("POST", &format!("{account_id}/ListServiceSas?api-version=2025-06-01"), Some(&req));
    assert_eq!((refused.status, refused.code()), (400, "KeyBasedAuthenticationNotPermitted"));
    // ... and a SAS issued before stops working.
    let old_sas = blob(&lab, "GET", &format!("{url}?{all}"), &[v], b"");
    assert_eq!((old_sas.status, old_sas.code().as_str()), (403, "KeyBasedAuthenticationNotPermitted"));

    // Deleting the account removes its blobs: a new account of the same name starts empty.
    let del = lab.op("DELETE", &format!("{account_id}?api-version=2025-06-01"), None);
    assert_eq!(del.status, 200, "{}", del.body);
    let (_, container2) = account(&lab, "idlabdata1");
    let reader2 = format!("Bearer {}", storage_principal(&lab, &[("Storage Blob Data Reader", &container2)]));
    let gone = blob(&lab, "GET", &url, &[v, ("authorization", &reader2)], b"");
    assert_eq!((gone.status, gone.code().as_str()), (404, "BlobNotFound"));

    // The SAS signature never reaches the request log.
    let log = lab.op("GET", "/_idlab/requests", None).body.to_string();
    let sig = write_sas.split("sig=").nth(1).unwrap_or("-");
    assert!(!log.contains(sig), "the request log holds a SAS signature");
    assert!(log.contains("/idlabdata1/docs/hello.txt"), "blob requests are logged");
}

#[test]
fn blob_role_by_operation_matrix() {
    let lab = Lab::start();
    let (endpoint, container) = account(&lab, "idlabmatrix");
    let v = ("x-ms-version", "2023-11-03");
    let account_id = container.split("/blobServices/").next().unwrap_or_default().to_string();
    let req = json!({"canonicalizedResource": "/blob/idlabmatrix/docs", "signedResource": "c", "signedPermission": "rcwd", "signedExpiry": "2099-01-01T00:00:00Z"});
    let r = lab.op("POST", &format!("{account_id}/ListServiceSas?api-version=2025-06-01"), Some(&req));
    let sas = r.body["serviceSasToken"].as_str().expect("sas").to_string();
    let url = format!("{endpoint}docs/m.txt");
    // (role, scope, [read, write, delete, list]) → allowed?
    let matrix: [(&str, &str, [bool; 4]); 7] = [
        ("Storage Blob Data Owner", &account_id, [true, true, true, true]),
        ("Storage Blob Data Contributor", &container, [true, true, true, true]),
        ("Storage Blob Data Reader", &container, [true, false, false, true]),
        ("Storage Blob Data Reader", &account_id, [true, false, false, true]),
        ("Storage Account Contributor", &account_id, [false, false, false, false]),
        ("Owner", &account_id, [false, false, false, false]),
        ("Reader", &account_id, [false, false, false, false]),
    ];
    for (role, scope, allowed) in matrix {
        let tok = storage_principal(&lab, &[(role, scope)]);
        let auth = format!("Bearer {tok}");
        let ops: [(&str, String, &[u8]); 4] = [
            ("GET", url.clone(), b""),
            ("PUT", url.clone(), b"new"),
            ("DELETE", url.clone(), b""),
            ("GET", format!("{endpoint}docs?restype=container&comp=list"), b""),
        ];
        for ((method, u, body), ok) in ops.into_iter().zip(allowed) {
            // The blob exists before each operation.
            let put = blob(&lab, "PUT", &format!("{url}?{sas}"), &[v, ("x-ms-blob-type", "BlockBlob")], b"old");
            assert_eq!(put.status, 201);
            let r =
                blob(&lab, method, &u, &[v, ("authorization", auth.as_str()), ("x-ms-blob-type", "BlockBlob")], body);
            if ok {
                assert!((200..300).contains(&r.status), "{role} at {scope} may {method} {u}: {}", r.status);
            } else {
                assert_eq!(
                    (r.status, r.code().as_str()),
                    (403, "AuthorizationPermissionMismatch"),
                    "{role} at {scope} may not {method} {u}"
                );
            }
        }
    }
}

#[test]
fn resource_lists_show_accounts_but_not_their_containers() {
    let lab = Lab::start();
    let (_, container) = account(&lab, "idlablisted1");
    let listed = lab.op("GET", &format!("{}/resources?api-version=2024-11-01", lab.rg_path("data")), None);
    let ids: Vec<&str> = listed.body["value"]
        .as_array()
        .map(|v| v.iter().filter_map(|r| r["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert!(ids[0].ends_with("/storageAccounts/idlablisted1"));
    assert!(!ids.iter().any(|i| i.eq_ignore_ascii_case(&container)));
}

/// A SAS for everything on the `docs` container of `account`.
fn full_sas(lab: &Lab, account_id: &str, account: &str) -> String {
    let req = json!({"canonicalizedResource": format!("/blob/{account}/docs"), "signedResource": "c", "signedPermission": "rcwdl", "signedExpiry": "2099-01-01T00:00:00Z"});
    let r = lab.op("POST", &format!("{account_id}/ListServiceSas?api-version=2025-06-01"), Some(&req));
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["serviceSasToken"].as_str().expect("token").to_string()
}

/// The text of each `<tag>` in `xml`, in order.
fn all_of(xml: &str, tag: &str) -> Vec<String> {
    xml.split(&format!("<{tag}>"))
        .skip(1)
        .filter_map(|p| p.split_once(&format!("</{tag}>")).map(|(v, _)| v.to_string()))
        .collect()
}

#[test]
fn list_blobs_pages_with_maxresults_and_next_marker() {
    let lab = Lab::start();
    let (endpoint, container) = account(&lab, "idlabpaging1");
    let account_id = container.split("/blobServices/").next().unwrap_or_default().to_string();
    let sas = full_sas(&lab, &account_id, "idlabpaging1");
    let v = ("x-ms-version", "2023-11-03");
    let mut names: Vec<String> = (0..7).map(|i| format!("b{i:02}")).collect();
    names.extend(["dir/x".to_string(), "dir/y".to_string(), "e".to_string()]);
    for n in &names {
        let r = blob(&lab, "PUT", &format!("{endpoint}docs/{n}?{sas}"), &[v, ("x-ms-blob-type", "BlockBlob")], b"x");
        assert_eq!(r.status, 201);
    }
    // Pages of 3 with a delimiter: `dir/` is one entry; following NextMarker visits each
    // entry once, in order, and the last page has an empty NextMarker.
    let mut seen: Vec<String> = Vec::new();
    let mut marker = String::new();
    let mut pages = 0;
    loop {
        let url = format!("{endpoint}docs?restype=container&comp=list&delimiter=/&maxresults=3&marker={marker}&{sas}");
        let r = blob(&lab, "GET", &url, &[v], b"");
        assert_eq!(r.status, 200);
        let xml = String::from_utf8_lossy(&r.body).to_string();
        assert!(xml.contains("<MaxResults>3</MaxResults>"), "{xml}");
        let page = all_of(&xml, "Name");
        assert!(page.len() <= 3, "{xml}");
        seen.extend(page);
        pages += 1;
        match all_of(&xml, "NextMarker").first() {
            Some(next) if !next.is_empty() => {
                assert!(xml.contains("<Marker>") || marker.is_empty(), "{xml}");
                marker = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
            }
            _ => {
                assert!(xml.ends_with("</Blobs><NextMarker /></EnumerationResults>"), "{xml}");
                break;
            }
        }
        assert!(pages < 10, "paging does not end");
    }
    let want = ["b00", "b01", "b02", "b03", "b04", "b05", "b06", "dir/", "e"];
    assert_eq!(seen, want);
    assert_eq!(pages, 3);
    // maxresults outside 1..=5000 and an unreadable marker are refused.
    for (q, code) in [
        ("maxresults=0", "OutOfRangeQueryParameterValue"),
        ("maxresults=x", "OutOfRangeQueryParameterValue"),
        ("marker=%21%21", "InvalidQueryParameterValue"),
    ] {
        let r = blob(&lab, "GET", &format!("{endpoint}docs?restype=container&comp=list&{q}&{sas}"), &[v], b"");
        assert_eq!((r.status, r.code().as_str()), (400, code), "{q}");
    }
}

#[test]
fn put_block_and_put_block_list_assemble_a_blob_with_its_headers() {
    let lab = Lab::start();
    let (endpoint, container) = account(&lab, "idlabblocks1");
    let account_id = container.split("/blobServices/").next().unwrap_or_default().to_string();
    let sas = full_sas(&lab, &account_id, "idlabblocks1");
    let v = ("x-ms-version", "2023-11-03");
    let url = format!("{endpoint}docs/big.bin");
    let id = |i: u8| url::form_urlencoded::byte_serialize(base64_of(&[b'b', i]).as_bytes()).collect::<String>();
    for (i, part) in [(0u8, b"first-".as_slice()), (1, b"second-"), (2, b"third")] {
        let r = blob(&lab, "PUT", &format!("{url}?comp=block&blockid={}&{sas}", id(i)), &[v], part);
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    }
    // Nothing is visible before the commit.
    let before = blob(&lab, "GET", &format!("{url}?{sas}"), &[v], b"");
    assert_eq!((before.status, before.code().as_str()), (404, "BlobNotFound"));
    // Blocks commit in the listed order (not the upload order); the MD5 header is the one given.
    let list = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList><Latest>{}</Latest><Uncommitted>{}</Uncommitted><Latest>{}</Latest></BlockList>",
        base64_of(b"b\x01"),
        base64_of(b"b\x00"),
        base64_of(b"b\x02")
    );
    let md5 = base64_of(b"0123456789abcdef");
    let headers = [
        v,
        ("x-ms-blob-content-md5", md5.as_str()),
        ("x-ms-blob-content-type", "application/x-test"),
        ("x-ms-blob-cache-control", "max-age=60"),
        ("x-ms-blob-content-language", "fr"),
        ("x-ms-meta-idlab_plan", "p"),
    ];
    let r = blob(&lab, "PUT", &format!("{url}?comp=blocklist&{sas}"), &headers, list.as_bytes());
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let got = blob(&lab, "GET", &format!("{url}?{sas}"), &[v], b"");
    assert_eq!((got.status, got.body.as_slice()), (200, b"second-first-third".as_slice()));
    assert_eq!(got.header("content-md5"), md5);
    assert_eq!(got.header("content-type"), "application/x-test");
    assert_eq!(got.header("cache-control"), "max-age=60");
    assert_eq!(got.header("content-language"), "fr");
    assert_eq!(got.header("x-ms-meta-idlab_plan"), "p");
    // A committed block can be kept by id while a new one replaces the rest.
    let r = blob(&lab, "PUT", &format!("{url}?comp=block&blockid={}&{sas}", id(3)), &[v], b"+new");
    assert_eq!(r.status, 201);
    let keep = format!(
        "<BlockList><Committed>{}</Committed><Latest>{}</Latest></BlockList>",
        base64_of(b"b\x00"),
        base64_of(b"b\x03")
    );
    let r = blob(&lab, "PUT", &format!("{url}?comp=blocklist&{sas}"), &[v], keep.as_bytes());
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let got = blob(&lab, "GET", &format!("{url}?{sas}"), &[v], b"");
    assert_eq!(got.body, b"first-+new");
    // Without x-ms-blob-content-md5 a block list blob has no Content-MD5.
    assert_eq!(got.header("content-md5"), "");
    // Unknown blocks, other XML, bad or mixed-length block ids are refused.
    let unknown = format!("<BlockList><Uncommitted>{}</Uncommitted></BlockList>", base64_of(b"b\x09"));
    let r = blob(&lab, "PUT", &format!("{url}?comp=blocklist&{sas}"), &[v], unknown.as_bytes());
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidBlockList"));
    let r = blob(&lab, "PUT", &format!("{url}?comp=blocklist&{sas}"), &[v], b"<Nope/>");
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidXmlDocument"));
    let r = blob(&lab, "PUT", &format!("{url}?comp=block&blockid=not%20base64&{sas}"), &[v], b"x");
    assert_eq!((r.status, r.code().as_str()), (400, "InvalidQueryParameterValue"));
    let r = blob(&lab, "PUT", &format!("{url}?comp=block&blockid=AA%3D%3D&{sas}"), &[v], b"x");
    let eight = base64_of(b"long");
    let longer = blob(&lab, "PUT", &format!("{url}?comp=block&blockid={eight}&{sas}"), &[v], b"x");
    assert!(
        r.status == 201 && (longer.status, longer.code().as_str()) == (400, "InvalidBlobOrBlock"),
        "{}",
        longer.status
    );
    // A SAS without c or w cannot stage blocks; an unserved comp is a clear 501.
    let read_only = full_sas(&lab, &account_id, "idlabblocks1").replace("sp=rcwdl", "sp=r");
    let r = blob(&lab, "PUT", &format!("{url}?comp=block&blockid={}&{read_only}", id(5)), &[v], b"x");
    assert_eq!((r.status, r.code().as_str()), (403, "AuthenticationFailed"), "tampered letters break the signature");
    let req = json!({"canonicalizedResource": "/blob/idlabblocks1/docs", "signedResource": "c", "signedPermission": "rl", "signedExpiry": "2099-01-01T00:00:00Z"});
    let rl = lab.op("POST", &format!("{account_id}/ListServiceSas?api-version=2025-06-01"), Some(&req));
    let rl = rl.body["serviceSasToken"].as_str().unwrap_or_default().to_string();
    let r = blob(&lab, "PUT", &format!("{url}?comp=block&blockid={}&{rl}", id(5)), &[v], b"x");
    assert_eq!((r.status, r.code().as_str()), (403, "AuthorizationPermissionMismatch"));
    let r = blob(&lab, "GET", &format!("{url}?comp=tags&{sas}"), &[v], b"");
    assert_eq!((r.status, r.code().as_str()), (501, "NotImplemented"));
    let r = blob(&lab, "GET", &format!("{endpoint}docs?restype=container&comp=acl&{sas}"), &[v], b"");
    assert_eq!((r.status, r.code().as_str()), (501, "NotImplemented"));
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[test]
fn create_and_delete_container_on_the_data_plane_with_rbac_and_seen_by_arm() {
    let lab = Lab::start();
    let (endpoint, account_id) = account_only(&lab, "idlabcontainers1");
    let v = ("x-ms-version", "2023-11-03");
    let data_contributor = storage_principal(&lab, &[("Storage Blob Data Contributor", &account_id)]);
    let reader = storage_principal(&lab, &[("Storage Blob Data Reader", &account_id)]);
    let auth = |t: &str| format!("Bearer {t}");
    let (dc, rd) = (auth(&data_contributor), auth(&reader));
    let url = format!("{endpoint}made-here?restype=container");
    let arm = format!("{account_id}/blobServices/default/containers/made-here?api-version=2025-06-01");

    // A reader may not create; nothing is made.
    let refused = blob(&lab, "PUT", &url, &[v, ("authorization", &rd)], b"");
    assert_eq!((refused.status, refused.code().as_str()), (403, "AuthorizationPermissionMismatch"));
    assert_eq!(lab.op("GET", &arm, None).status, 404);
    // Storage Blob Data Contributor creates: 201 with an ETag, and ARM shows the container.
    let made = blob(&lab, "PUT", &url, &[v, ("authorization", &dc)], b"");
    assert_eq!(made.status, 201, "{}", String::from_utf8_lossy(&made.body));
    assert!(made.header("etag").starts_with("\"0x"), "{}", made.header("etag"));
    let shown = lab.op("GET", &arm, None);
    assert_eq!((shown.status, shown.body["name"].as_str()), (200, Some("made-here")), "{}", shown.body);
    assert_eq!(shown.body["type"], "Microsoft.Storage/storageAccounts/blobServices/containers");
    assert_eq!(shown.body["properties"]["publicAccess"], "None", "{}", shown.body);
    // Again: 409; a bad name: 400.
    let again = blob(&lab, "PUT", &url, &[v, ("authorization", &dc)], b"");
    assert_eq!((again.status, again.code().as_str()), (409, "ContainerAlreadyExists"));
    let bad = blob(&lab, "PUT", &format!("{endpoint}Bad--Name?restype=container"), &[v, ("authorization", &dc)], b"");
    assert_eq!((bad.status, bad.code().as_str()), (400, "InvalidResourceName"));
    // The new container holds blobs.
    let put = blob(
        &lab,
        "PUT",
        &format!("{endpoint}made-here/a.txt"),
        &[v, ("authorization", &dc), ("x-ms-blob-type", "BlockBlob")],
        b"data",
    );
    assert_eq!(put.status, 201, "{}", String::from_utf8_lossy(&put.body));
    // A reader may not delete; the contributor does (202), then it is gone everywhere.
    let refused = blob(&lab, "DELETE", &url, &[v, ("authorization", &rd)], b"");
    assert_eq!((refused.status, refused.code().as_str()), (403, "AuthorizationPermissionMismatch"));
    let gone = blob(&lab, "DELETE", &url, &[v, ("authorization", &dc)], b"");
    assert_eq!(gone.status, 202, "{}", String::from_utf8_lossy(&gone.body));
    assert_eq!(lab.op("GET", &arm, None).status, 404);
    let read = blob(&lab, "GET", &format!("{endpoint}made-here/a.txt"), &[v, ("authorization", &dc)], b"");
    assert_eq!((read.status, read.code().as_str()), (404, "ContainerNotFound"));
    let twice = blob(&lab, "DELETE", &url, &[v, ("authorization", &dc)], b"");
    assert_eq!((twice.status, twice.code().as_str()), (404, "ContainerNotFound"));
    // A container made through ARM is deleted on the data plane as well.
    let through_arm = container(&lab, &account_id, "from-arm");
    let d = blob(&lab, "DELETE", &format!("{endpoint}from-arm?restype=container"), &[v, ("authorization", &dc)], b"");
    assert_eq!(d.status, 202);
    assert_eq!(lab.op("GET", &format!("{through_arm}?api-version=2025-06-01"), None).status, 404);
}
