//! Storage through Resource Manager as Azure answers it: blob containers in the three
//! shapes of the recording `powershell/storage/TestStorageBlobContainer.json` (2021-06-01,
//! listed in tests/fixtures/SOURCES), one container seen alike by Resource Manager and the
//! blob data plane, and the storage-account fields that depend on the api-version.

use serde_json::{Value, json};

use crate::lab::Lab;
use crate::local_blob::{blob, poll, storage_account};

const V: &str = "api-version=2021-06-01";

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    k.sort();
    k
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    k.sort();
    k
}

/// What Azure's GET of a container holds in `properties` (no metadata set).
const GET_PROPERTIES: &[&str] = &[
    "deleted",
    "remainingRetentionDays",
    "defaultEncryptionScope",
    "denyEncryptionScopeOverride",
    "publicAccess",
    "leaseStatus",
    "leaseState",
    "lastModifiedTime",
    "legalHold",
    "hasImmutabilityPolicy",
    "hasLegalHold",
];

#[test]
fn containers_through_arm_answer_the_recorded_get_list_and_write_shapes() {
    let lab = Lab::start();
    let (account_id, _) = storage_account(&lab, "arm", "idlabarmcontainers", json!({}));
    let first = format!("{account_id}/blobServices/default/containers/first?{V}");

    // A PUT of `{}` answers 201 with only id, name and type; the ETag is a header.
    let made = lab.op("PUT", &first, Some(&json!({})));
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(keys(&made.body), sorted(&["id", "name", "type"]), "{}", made.body);
    let etag = made.header("etag").expect("ETag on the create");
    assert!(etag.starts_with("\"0x") && etag.ends_with('"'), "{etag}");

    // GET: every field Azure keeps, the etag in the body and the header, no immutability object.
    let got = lab.op("GET", &first, None);
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(keys(&got.body["properties"]), sorted(GET_PROPERTIES), "{}", got.body);
    assert_eq!(got.body["etag"], json!(etag), "{}", got.body);
    assert_eq!(got.header("etag").as_deref(), Some(etag.as_str()));
    assert_eq!(got.body["properties"]["defaultEncryptionScope"], "$account-encryption-key");
    assert_eq!(got.body["properties"]["legalHold"], json!({ "hasLegalHold": false, "tags": [] }));
    let modified = got.body["properties"]["lastModifiedTime"].as_str().unwrap_or_default().to_string();
    assert!(modified.len() == 20 && modified.ends_with('Z'), "whole seconds: {modified}");

    // PATCH: the answer shows the properties it set and five of Azure's, no etag; the etag moves.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let patch = json!({ "properties": { "publicAccess": "Blob", "metadata": { "tag0": "value0" } } });
    let patched = lab.op("PATCH", &first, Some(&patch));
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(keys(&patched.body), sorted(&["id", "name", "type", "properties"]), "{}", patched.body);
    let written =
        ["deleted", "remainingRetentionDays", "metadata", "publicAccess", "hasImmutabilityPolicy", "hasLegalHold"];
    assert_eq!(keys(&patched.body["properties"]), sorted(&written), "{}", patched.body);
    let new_etag = patched.header("etag").expect("ETag on the update");
    assert_ne!(new_etag, etag, "a write renews the etag");
    // The GET after the PATCH shows its metadata (the conformance driver sends one before it).
    let after = lab.op("GET", &first, None);
    assert_eq!(after.body["properties"]["metadata"], json!({ "tag0": "value0" }), "{}", after.body);
    assert_eq!(after.body["etag"], json!(new_etag));

    // A PUT with properties answers them (201); the list shows neither metadata nor legalHold.
    let second = format!("{account_id}/blobServices/default/containers/second?{V}");
    let body = json!({ "properties": { "publicAccess": "Container", "metadata": { "tag1": "value1" } } });
    let two = lab.op("PUT", &second, Some(&body));
    assert_eq!(two.status, 201, "{}", two.body);
    assert_eq!(keys(&two.body["properties"]), sorted(&written), "{}", two.body);
    let list = lab.op("GET", &format!("{account_id}/blobServices/default/containers?{V}"), None);
    let items = list.body["value"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2, "{}", list.body);
    for item in &items {
        let p = &item["properties"];
        assert!(p.get("metadata").is_none() && p.get("legalHold").is_none(), "{item}");
        assert_eq!(p["immutableStorageWithVersioning"], json!({ "enabled": false }), "{item}");
        assert!(item["etag"].as_str().is_some_and(|e| e.starts_with("\"0x")), "{item}");
    }
}

#[test]
fn the_blob_data_plane_and_arm_show_one_container() {
    let lab = Lab::start();
    let (account_id, done) = storage_account(&lab, "arm", "idlabsharedcontainer", json!({}));
    let endpoint = done["properties"]["primaryEndpoints"]["blob"].as_str().expect("blob endpoint").to_string();
    let token =
        lab.principal_for(&[("Storage Blob Data Contributor", &account_id)], "https://storage.azure.com/.default").0;
    let auth = format!("Bearer {token}");
    let h = [("x-ms-version", "2023-11-03"), ("authorization", auth.as_str())];

    // Made through ARM with metadata: Get Container Properties shows ARM's etag and metadata.
    let arm = format!("{account_id}/blobServices/default/containers/fromarm?{V}");
    let body = json!({ "properties": { "publicAccess": "None", "metadata": { "team": "docs" } } });
    assert_eq!(lab.op("PUT", &arm, Some(&body)).status, 201);
    let shown = lab.op("GET", &arm, None);
    let props = blob(&lab, "GET", &format!("{endpoint}fromarm?restype=container"), &h, b"");
    assert_eq!(props.status, 200, "{}", String::from_utf8_lossy(&props.body));
    assert_eq!(json!(props.header("etag")), shown.body["etag"]);
    assert_eq!(props.header("x-ms-meta-team"), "docs");
    assert_eq!(props.header("x-ms-lease-state"), "available");
    assert_eq!(props.header("x-ms-blob-public-access"), "", "not public");

    // Made on the data plane with metadata and public access: ARM shows both, with the same etag.
    let made = blob(
        &lab,
        "PUT",
        &format!("{endpoint}fromdata?restype=container"),
        &[h[0], h[1], ("x-ms-meta-owner", "lab"), ("x-ms-blob-public-access", "blob")],
        b"",
    );
    assert_eq!(made.status, 201, "{}", String::from_utf8_lossy(&made.body));
    let seen = lab.op("GET", &format!("{account_id}/blobServices/default/containers/fromdata?{V}"), None);
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert_eq!(seen.body["properties"]["metadata"], json!({ "owner": "lab" }), "{}", seen.body);
    assert_eq!(seen.body["properties"]["publicAccess"], "Blob", "{}", seen.body);
    assert_eq!(json!(made.header("etag")), seen.body["etag"]);
    // An access level the service does not know is refused, and nothing is made.
    let bad = blob(
        &lab,
        "PUT",
        &format!("{endpoint}badaccess?restype=container"),
        &[h[0], h[1], ("x-ms-blob-public-access", "everyone")],
        b"",
    );
    assert_eq!((bad.status, bad.code().as_str()), (400, "InvalidHeaderValue"));
    assert_eq!(lab.op("GET", &format!("{account_id}/blobServices/default/containers/badaccess?{V}"), None).status, 404);

    // An ARM update is seen by the data plane: new metadata, new etag.
    let patch = json!({ "properties": { "metadata": { "team": "ops" } } });
    let patched = lab.op("PATCH", &arm, Some(&patch));
    let again = blob(&lab, "GET", &format!("{endpoint}fromarm?restype=container"), &h, b"");
    assert_eq!(again.header("x-ms-meta-team"), "ops");
    assert_eq!(Some(again.header("etag")), patched.header("etag"));
    assert_ne!(again.header("etag"), props.header("etag"));
}

#[test]
fn storage_accounts_show_trusted_directories_only_at_2017_10_01() {
    let lab = Lab::start();
    let rg = lab.rg_path("acct");
    assert!(
        lab.op("PUT", &format!("{rg}?api-version=2016-02-01"), Some(&json!({ "location": "westus" }))).status < 300
    );
    let id = format!("{rg}/providers/Microsoft.Storage/storageAccounts/idlabtrusted1");
    let body = json!({ "sku": { "name": "Standard_LRS" }, "kind": "StorageV2", "location": "westus" });
    let created = lab.op("PUT", &format!("{id}?api-version=2017-10-01"), Some(&body));
    assert_eq!(created.status, 202, "{}", created.body);
    let done = poll(&lab, &created.header("location").expect("Location"));
    let tenant = json!([lab.cloud.info.tenant_id]);
    assert_eq!(done.body["properties"]["trustedDirectories"], tenant, "the create's final poll: {}", done.body);
    let at = |v: &str| lab.op("GET", &format!("{id}?api-version={v}"), None).body;
    assert_eq!(at("2017-10-01")["properties"]["trustedDirectories"], tenant);
    for v in ["2015-06-15", "2021-06-01", "2025-06-01"] {
        let b = at(v);
        assert!(b["properties"].get("trustedDirectories").is_none(), "{v}: {b}");
        assert_eq!(b["properties"]["privateEndpointConnections"], json!([]), "{v}: {b}");
    }
    let list = lab.op("GET", &format!("{rg}/providers/Microsoft.Storage/storageAccounts?api-version=2017-10-01"), None);
    assert_eq!(list.body["value"][0]["properties"]["trustedDirectories"], tenant, "{}", list.body);
    let list = lab.op("GET", &format!("{rg}/providers/Microsoft.Storage/storageAccounts?api-version=2021-06-01"), None);
    assert!(list.body["value"][0]["properties"].get("trustedDirectories").is_none(), "{}", list.body);
}
