//! The local cloud's security fixes (issue 10): a deleted principal's unexpired token is
//! refused on every plane; the state directory and its secret files are owner-only, also
//! when an older version left them readable; no provider answer carries a storage
//! account's keys, which only `listKeys` shows.

use serde_json::{Value, json};

use crate::lab::Lab;
use crate::local_datalake::{client, store};

const STORAGE_VERSION: &str = "2023-11-03";

/// One data-plane request with a bearer token and `headers`: (status, body text).
fn call(lab: &Lab, token: &str, method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let c = client(lab);
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    lab.rt.block_on(async {
        let mut r = c.request(m, url).bearer_auth(token).body(body.to_vec());
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let resp = r.send().await.expect("the plane answers");
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    })
}

/// A role assignment for `principal` at the subscription.
fn assign(lab: &Lab, principal: &str, role: &str) {
    let sub = format!("/subscriptions/{}", lab.sub());
    let guid = idlab::roles::by_name(role).expect("built-in role").guid;
    let ra = format!("{sub}/providers/Microsoft.Authorization/roleAssignments/{}", uuid::Uuid::new_v4());
    let body = json!({"properties": {"roleDefinitionId": format!("{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"), "principalId": principal, "principalType": "ServicePrincipal"}});
    let r = lab.op("PUT", &format!("{ra}?api-version=2022-04-01"), Some(&body));
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn a_deleted_principals_unexpired_token_is_refused_on_every_plane() {
    let lab = Lab::start();
    // A user-assigned identity: its principal goes when the identity is deleted, while its
    // role assignments stay (as in Azure, until cleaned up).
    let rgp = lab.rg_path("sec");
    assert!(lab.op("PUT", &format!("{rgp}?api-version=2024-11-01"), Some(&json!({"location": "eastus"}))).status < 300);
    let uai = format!("{rgp}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/gone?api-version=2023-01-31");
    let r = lab.op("PUT", &uai, Some(&json!({"location": "eastus"})));
    assert!(r.status < 300, "{}", r.body);
    let oid = r.body["properties"]["principalId"].as_str().expect("principalId").to_string();
    let client_id = r.body["properties"]["clientId"].as_str().expect("clientId").to_string();
    for role in ["Owner", "Storage Blob Data Owner", "Key Vault Secrets Officer"] {
        assign(&lab, &oid, role);
    }
    // Tokens as the identity endpoint issues them, one per audience.
    let token = |aud: &str| {
        lab.forge(None, |c| {
            c.aud = aud.into();
            c.oid = oid.clone();
            c.sub = oid.clone();
            c.appid = client_id.clone();
            c.azp = client_id.clone();
        })
    };
    let arm = token("https://management.azure.com/");
    let storage = token("https://storage.azure.com/");
    let vault_aud = token("https://vault.azure.net");
    let lake = token(idlab::local::datalake::AUDIENCE);

    // The planes: a blob account, a hierarchical-namespace account, an RBAC vault, a Gen1 store.
    let (_, done) = crate::local_blob::storage_account(&lab, "sec", "secblob", json!({}));
    let blob_base = done["properties"]["primaryEndpoints"]["blob"].as_str().expect("blob endpoint").to_string();
    let account = lab.rg_path("sec") + "/providers/Microsoft.Storage/storageAccounts/secblob";
    let c = lab.op(
        "PUT",
        &format!("{account}/blobServices/default/containers/docs?api-version=2025-06-01"),
        Some(&json!({})),
    );
    assert!(c.status < 300, "{}", c.body);
    let (_, dfs_base) = crate::local_dfs::hns_account(&lab, "seclake", true);
    let vault = format!("{rgp}/providers/Microsoft.KeyVault/vaults/secvault?api-version=2024-11-01");
    let v = lab.op(
        "PUT",
        &vault,
        Some(&json!({"location": "eastus", "properties": {"tenantId": lab.cloud.info.tenant_id, "sku": {"family": "A", "name": "standard"}, "accessPolicies": [], "enableRbacAuthorization": true}})),
    );
    assert_eq!(v.status, 200, "a vault create answers 200 (TestDeleteVault.json): {}", v.body);
    let vault_uri = v.body["properties"]["vaultUri"].as_str().expect("vaultUri").to_string();
    let (_, webhdfs) = store(&lab, &lab.operator.clone(), "sec", "secgen1");

    let blob_url = format!("{blob_base}docs/f.txt");
    let version = ("x-ms-version", STORAGE_VERSION);
    let secret_url = format!("{vault_uri}secrets/s?api-version=7.4");
    let json_type = ("content-type", "application/json");
    let requests = |when: &str| -> Vec<(&'static str, u16)> {
        vec![
            ("arm", lab.send(Some(&arm), "GET", &format!("{rgp}?api-version=2024-11-01"), None).status),
            (
                "blob",
                call(&lab, &storage, "PUT", &blob_url, &[version, ("x-ms-blob-type", "BlockBlob")], when.as_bytes()).0,
            ),
            (
                "dfs",
                call(&lab, &storage, "PUT", &format!("{dfs_base}lake/{when}?resource=directory"), &[version], b"").0,
            ),
            ("key vault", call(&lab, &vault_aud, "PUT", &secret_url, &[json_type], br#"{"value":"v"}"#).0),
            ("webhdfs", call(&lab, &lake, "GET", &format!("{webhdfs}/?op=LISTSTATUS"), &[], b"").0),
        ]
    };
    // While the principal exists, every plane serves its token.
    for (plane, status) in requests("before") {
        assert!(status < 300, "{plane}: a live principal's token is served, got {status}");
    }
    let r = lab.op("DELETE", &uai, None);
    assert!(r.status < 300, "{}", r.body);
    // Once it is deleted, its unexpired token is refused everywhere.
    let served: Vec<String> =
        requests("after").into_iter().filter(|(_, s)| *s != 401).map(|(p, s)| format!("{p}={s}")).collect();
    assert!(served.is_empty(), "a deleted principal's token is still served by: {served:?}");
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn the_state_directory_and_its_secret_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::start();
    let dir = lab.cloud.info.state_dir.clone();
    // A write that puts account keys in the journal, then a snapshot.
    crate::local_blob::storage_account(&lab, "perm", "permacct", json!({}));
    let check = |what: &str| {
        assert_eq!(mode(&dir), 0o700, "{what}: the state directory is 0700");
        for name in
            ["journal.jsonl", "state.json", "operator.secret", "vault.key", "tls-leaf.key.der", "token-signing.key.der"]
        {
            let p = dir.join(name);
            if p.exists() {
                assert_eq!(mode(&p), 0o600, "{what}: {name} is 0600");
            }
        }
    };
    check("new state");
    assert_eq!(lab.op("POST", "/_idlab/snapshot", None).status, 200);
    assert!(dir.join("state.json").exists());
    check("after a snapshot");
    // A directory an older version left readable is tightened on the next start.
    let lab = {
        let set = |p: &std::path::Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
        set(&dir, 0o755).expect("chmod dir");
        set(&dir.join("journal.jsonl"), 0o644).expect("chmod journal");
        set(&dir.join("state.json"), 0o644).expect("chmod state");
        set(&dir.join("token-signing.key.der"), 0o644).expect("chmod token key");
        lab.restart()
    };
    check("after a restart");
    drop(lab);
}

#[test]
fn account_keys_appear_only_in_list_keys() {
    let lab = Lab::start();
    let rg = lab.rg_path("keys");
    assert!(lab.op("PUT", &format!("{rg}?api-version=2024-11-01"), Some(&json!({"location": "eastus"}))).status < 300);
    let id = format!("{rg}/providers/Microsoft.Storage/storageAccounts/keyacct");
    let body = json!({"location": "eastus", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2", "properties": {}});
    let created = lab.op("PUT", &format!("{id}?api-version=2025-06-01"), Some(&body));
    assert_eq!(created.status, 202, "{}", created.body);
    let location = created.header("location").expect("Location");
    let mut answers: Vec<(&str, Value)> = vec![("create", created.body.clone())];
    let done = crate::local_blob::poll(&lab, &location);
    assert_eq!(done.status, 200, "{}", done.body);
    answers.push(("operation status", done.body.clone()));
    // Azure answers the final status of a storage account's creation with the account as GET
    // shows it, without keys (recorded: tests/fixtures/azure-recordings/).
    let recorded: Value =
        serde_json::from_str(include_str!("../fixtures/azure-recordings/storage_account_create_final_status.json"))
            .expect("recorded exchange");
    assert_eq!(recorded["operation_status"]["body"], recorded["get"]["body"], "the recording: status = GET");
    assert!(!recorded["operation_status"]["body"].to_string().contains("\"keys\""));
    let get = lab.op("GET", &format!("{id}?api-version=2025-06-01"), None);
    assert_eq!(done.body, get.body, "the final status is the account as GET shows it, as on Azure");
    let keys = lab.op("POST", &format!("{id}/listKeys?api-version=2025-06-01"), None);
    assert_eq!(keys.status, 200, "{}", keys.body);
    let values: Vec<String> = keys.body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["value"].as_str().expect("key value").to_string())
        .collect();
    assert_eq!(values.len(), 2);
    let update = lab.op("PATCH", &format!("{id}?api-version=2025-06-01"), Some(&json!({"tags": {"a": "b"}})));
    answers.push(("update", update.body));
    answers.push(("get", lab.op("GET", &format!("{id}?api-version=2025-06-01"), None).body));
    let sub = format!("/subscriptions/{}", lab.sub());
    for (what, path) in [
        ("list in group", format!("{rg}/providers/Microsoft.Storage/storageAccounts?api-version=2025-06-01")),
        ("list in subscription", format!("{sub}/providers/Microsoft.Storage/storageAccounts?api-version=2025-06-01")),
        ("resources", format!("{sub}/resources?api-version=2021-04-01")),
        ("group resources", format!("{rg}/resources?api-version=2021-04-01")),
    ] {
        let r = lab.op("GET", &path, None);
        assert_eq!(r.status, 200, "{what}: {}", r.body);
        answers.push((what, r.body));
    }
    for (what, answer) in answers {
        let text = answer.to_string();
        assert!(!text.contains("_idlab"), "{what}: internal fields stay inside: {text}");
        for v in &values {
            assert!(!text.contains(v.as_str()), "{what}: a key appears");
        }
    }
}
