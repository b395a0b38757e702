//! The local cloud's Key Vault: the vault through ARM (soft delete, deleted vaults, recover,
//! purge, access-policy updates, name checks) and the secrets data plane on the vault's own
//! HTTPS port (the 401 challenge first, access policies and RBAC with Azure's codes).

use serde_json::{Value, json};

use crate::lab::{Lab, Resp};

const API: &str = "api-version=2024-11-01";

fn principal(lab: &Lab, roles: &[(&str, &str)], scope: &str) -> (String, String) {
    lab.principal_for(roles, scope)
}

fn vault_token(lab: &Lab) -> (String, String) {
    principal(lab, &[], "https://vault.azure.net/.default")
}

/// The operator's own token for the vault audience.
fn operator_vault_token(lab: &Lab) -> String {
    lab.operator_token_for("https://vault.azure.net/.default")
}

fn vault_body(lab: &Lab, policies: Value, rbac: bool) -> Value {
    json!({
        "location": "eastus",
        "tags": {"env": "test"},
        "properties": {
            "tenantId": lab.cloud.info.tenant_id,
            "sku": {"family": "A", "name": "standard"},
            "accessPolicies": policies,
            "enableRbacAuthorization": rbac,
            "softDeleteRetentionInDays": 7
        }
    })
}

fn policy(lab: &Lab, oid: &str, secrets: &[&str]) -> Value {
    json!({"tenantId": lab.cloud.info.tenant_id, "objectId": oid, "permissions": {"secrets": secrets}})
}

/// A group and a vault in it; answers the vault's ARM path and its data-plane URI.
pub(crate) fn vault(lab: &Lab, rg: &str, name: &str, policies: Value, rbac: bool) -> (String, String) {
    let rgp = lab.rg_path(rg);
    assert!(lab.op("PUT", &format!("{rgp}?{API}"), Some(&json!({"location": "eastus"}))).status < 300);
    let path = format!("{rgp}/providers/Microsoft.KeyVault/vaults/{name}");
    let r = lab.op("PUT", &format!("{path}?{API}"), Some(&vault_body(lab, policies, rbac)));
    assert_eq!(r.status, 200, "{}", r.body);
    let uri = r.body.pointer("/properties/vaultUri").and_then(Value::as_str).expect("vaultUri").to_string();
    (path, uri)
}

/// A data-plane request: `path` relative to the vault URI (without the leading `/`).
pub(crate) fn kv(lab: &Lab, token: Option<&str>, method: &str, uri: &str, path: &str, body: Option<&[u8]>) -> Resp {
    let url = format!("{uri}{path}");
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    lab.rt.block_on(async {
        let mut r = lab.http.request(m, url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b.to_vec());
        }
        let resp = r.send().await.expect("vault answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap_or_default();
        Resp { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
    })
}

/// A vault whose access policy gives the operator every secret permission: the operator's
/// vault token and the vault URI.
fn operator_vault(lab: &Lab, rg: &str, name: &str) -> (String, String) {
    let oid = lab.cloud.info.operator_object_id.clone();
    let (_, uri) = vault(lab, rg, name, json!([policy(lab, &oid, &["all"])]), false);
    (operator_vault_token(lab), uri)
}

pub(crate) fn set(lab: &Lab, token: &str, uri: &str, name: &str, value: &str) -> Resp {
    let body = serde_json::to_vec(&json!({ "value": value })).unwrap_or_default();
    kv(lab, Some(token), "PUT", uri, &format!("secrets/{name}?api-version=7.4"), Some(&body))
}

#[test]
fn the_data_plane_challenges_first_then_checks_audience_version_and_policies() {
    let lab = Lab::start();
    let (me, me_oid) = vault_token(&lab);
    let (_, uri) = vault(&lab, "kv1", "idlab-kv-one", json!([policy(&lab, &me_oid, &["get", "set"])]), false);
    assert!(uri.starts_with("https://127.0.0.1:") && uri.ends_with('/'), "{uri}");

    // No token: the 401 challenge, before the (invalid) body or the (missing) version is read.
    let r = kv(&lab, None, "PUT", &uri, "secrets/x", Some(b"not json"));
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer authorization=\""), "{challenge}");
    assert!(challenge.contains(&lab.cloud.info.tenant_id), "{challenge}");
    assert!(challenge.ends_with("resource=\"https://vault.azure.net\""), "{challenge}");
    assert_eq!(r.body["error"]["code"], "Unauthorized");
    assert!(r.header("x-ms-request-id").is_some_and(|id| id.len() == 36), "a request id on every answer");

    // A management token is for another audience.
    let r = kv(&lab, Some(&lab.operator.clone()), "GET", &uri, "secrets/x?api-version=7.4", None);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap_or_default().contains("Invalid audience"));

    // api-version: required and known.
    assert_eq!(kv(&lab, Some(&me), "GET", &uri, "secrets/x", None).body["error"]["code"], "BadParameter");
    let r = kv(&lab, Some(&me), "GET", &uri, "secrets/x?api-version=9.9", None);
    assert_eq!(r.status, 400);
    assert!(r.body["error"]["message"].as_str().unwrap_or_default().contains("(9.9) is not recognized"));

    // Set and get through the policy; ids have the real scheme://host:port/secrets/NAME/VERSION form.
    let r = set(&lab, &me, &uri, "db-password", "s3cret-value");
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.body["id"].as_str().unwrap_or_default().to_string();
    let version = id.rsplit('/').next().unwrap_or_default().to_string();
    assert_eq!(id, format!("{uri}secrets/db-password/{version}"));
    assert!(version.len() == 32 && version.chars().all(|c| c.is_ascii_hexdigit()), "{version}");
    // A 7-day vault: `CustomizedRecoverable+Purgeable`, as Azure answers for one.
    assert_eq!(r.body["attributes"]["recoveryLevel"], "CustomizedRecoverable+Purgeable");
    assert_eq!(r.body["attributes"]["recoverableDays"], 7);
    // SDKs ask for `/secrets/NAME/` (empty version).
    let got = kv(&lab, Some(&me), "GET", &uri, "secrets/db-password/?api-version=7.4", None);
    assert_eq!((got.status, got.body["value"].as_str()), (200, Some("s3cret-value")));
    let second = set(&lab, &me, &uri, "db-password", "next-value");
    let old = kv(&lab, Some(&me), "GET", &uri, &format!("secrets/db-password/{version}?api-version=7.4"), None);
    assert_eq!(old.body["value"], "s3cret-value");
    assert_ne!(second.body["id"], json!(id));
    assert_eq!(
        kv(&lab, Some(&me), "GET", &uri, "secrets/missing?api-version=7.4", None).body["error"]["code"],
        "SecretNotFound"
    );

    // No list permission: 403 with the access-policy message and inner code.
    let r = kv(&lab, Some(&me), "GET", &uri, "secrets?api-version=7.4", None);
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"]["innererror"]["code"], "AccessDenied");
    let msg = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains(&format!("oid={me_oid}")) && msg.contains("does not have secrets list permission"), "{msg}");
    assert!(msg.contains("key vault 'idlab-kv-one;location=eastus'"), "{msg}");

    // The request log never holds a secret value, and the state holds it sealed.
    let log = lab.op("GET", "/_idlab/requests", None).body.to_string();
    assert!(!log.contains("s3cret-value") && !log.contains("next-value"));
    use base64::Engine;
    let mut state = String::new();
    for e in std::fs::read_dir(lab._dir.path().join("state")).expect("state dir").filter_map(Result::ok) {
        state.push_str(&String::from_utf8_lossy(&std::fs::read(e.path()).unwrap_or_default()));
    }
    assert!(state.contains("db-password"), "the secret is in the state");
    for form in ["s3cret-value".to_string(), base64::engine::general_purpose::STANDARD.encode("s3cret-value")] {
        assert!(!state.contains(&form), "the state holds the value as {form}");
    }
    assert!(log.contains("/vaults/idlab-kv-one/secrets/db-password"), "{log}");
}

/// The recovery level follows the vault's retention and purge protection as Azure reports
/// it: `Recoverable+Purgeable` at 90 days (SecretClientLiveTests/GetDeletedSecret.json),
/// `CustomizedRecoverable+Purgeable` below (StartRecoverDeletedSecret.json, a 7-day vault),
/// without `+Purgeable` under purge protection (DeletionRecoveryLevel, data-plane spec 7.4).
#[test]
fn the_recovery_level_follows_retention_and_purge_protection() {
    let lab = Lab::start();
    let me = operator_vault_token(&lab);
    let oid = lab.cloud.info.operator_object_id.clone();
    let rgp = lab.rg_path("levels");
    assert!(lab.op("PUT", &format!("{rgp}?{API}"), Some(&json!({"location": "eastus"}))).status < 300);
    let cases = [
        ("kv-ninety", 90, false, "Recoverable+Purgeable"),
        ("kv-thirty", 30, false, "CustomizedRecoverable+Purgeable"),
        ("kv-protected", 90, true, "Recoverable"),
        ("kv-protected-short", 7, true, "CustomizedRecoverable"),
    ];
    for (name, days, protected, want) in cases {
        let mut body = vault_body(&lab, json!([policy(&lab, &oid, &["get", "set", "delete"])]), false);
        body["properties"]["softDeleteRetentionInDays"] = json!(days);
        if protected {
            body["properties"]["enablePurgeProtection"] = json!(true);
        }
        let r = lab.op("PUT", &format!("{rgp}/providers/Microsoft.KeyVault/vaults/{name}?{API}"), Some(&body));
        assert_eq!(r.status, 200, "{}", r.body);
        let uri = r.body.pointer("/properties/vaultUri").and_then(Value::as_str).unwrap_or_default().to_string();
        let r = set(&lab, &me, &uri, "s", "v");
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["attributes"]["recoveryLevel"], want, "{name}");
        assert_eq!(r.body["attributes"]["recoverableDays"], days, "{name}");
        let r = kv(&lab, Some(&me), "DELETE", &uri, "secrets/s?api-version=7.4", None);
        assert_eq!(r.body["attributes"]["recoveryLevel"], want, "{name}: the deleted secret's too");
    }
}

#[test]
fn access_policy_permissions_decide_each_secret_operation() {
    let lab = Lab::start();
    let owner = operator_vault_token(&lab);
    let op_oid = lab.cloud.info.operator_object_id.clone();
    let all = ["get", "list", "set", "delete", "recover", "purge"];
    let (path, uri) = vault(&lab, "kv2", "idlab-kv-matrix", json!([policy(&lab, &op_oid, &all)]), false);
    // (operation, method, path template, body?) — each needs exactly its own permission.
    let body = serde_json::to_vec(&json!({"value": "v"})).unwrap_or_default();
    let ops: [(&str, &str, &str); 6] = [
        ("get", "GET", "secrets/s?api-version=7.4"),
        ("list", "GET", "secrets?api-version=7.4"),
        ("set", "PUT", "secrets/s?api-version=7.4"),
        ("delete", "DELETE", "secrets/s?api-version=7.4"),
        ("recover", "POST", "deletedsecrets/s/recover?api-version=7.4"),
        ("purge", "DELETE", "deletedsecrets/s?api-version=7.4"),
    ];
    for (granted, _, _) in ops {
        let (tok, oid) = vault_token(&lab);
        let add = json!({"properties": {"accessPolicies": [policy(&lab, &oid, &[granted])]}});
        assert_eq!(lab.op("PUT", &format!("{path}/accessPolicies/add?{API}"), Some(&add)).status, 200);
        for (needed, method, p) in ops {
            // Put the secret in the state the operation needs, as the operator.
            let _ = kv(&lab, Some(&owner), "DELETE", &uri, "deletedsecrets/s?api-version=7.4", None);
            let _ = kv(&lab, Some(&owner), "DELETE", &uri, "secrets/s?api-version=7.4", None);
            let _ = kv(&lab, Some(&owner), "DELETE", &uri, "deletedsecrets/s?api-version=7.4", None);
            assert_eq!(set(&lab, &owner, &uri, "s", "v").status, 200);
            if matches!(needed, "recover" | "purge") {
                assert_eq!(kv(&lab, Some(&owner), "DELETE", &uri, "secrets/s?api-version=7.4", None).status, 200);
            }
            let b = (method == "PUT").then_some(body.as_slice());
            let r = kv(&lab, Some(&tok), method, &uri, p, b);
            if granted == needed {
                assert!(r.status == 200 || r.status == 204, "{granted} allows {needed}: {} {}", r.status, r.body);
            } else {
                assert_eq!(r.status, 403, "{granted} must not allow {needed}: {}", r.body);
                assert_eq!(r.body["error"]["code"], "Forbidden");
            }
        }
        // Removing the permission takes the entry away.
        let rm = json!({"properties": {"accessPolicies": [policy(&lab, &oid, &[granted])]}});
        assert_eq!(lab.op("PUT", &format!("{path}/accessPolicies/remove?{API}"), Some(&rm)).status, 200);
        let v = lab.op("GET", &format!("{path}?{API}"), None);
        let entries =
            v.body.pointer("/properties/accessPolicies").and_then(Value::as_array).cloned().unwrap_or_default();
        assert!(!entries.iter().any(|e| e["objectId"] == json!(oid)), "{entries:?}");
        assert!(entries.iter().any(|e| e["objectId"] == json!(op_oid)), "policies the update did not name survive");
    }
}

#[test]
fn rbac_vaults_use_data_actions_with_forbidden_by_rbac() {
    let lab = Lab::start();
    let (path, uri) = vault(&lab, "kv3", "idlab-kv-rbac", json!([]), true);
    let (user, _) = principal(&lab, &[("Key Vault Secrets User", &path)], "https://vault.azure.net/.default");
    let (officer, _) = principal(&lab, &[("Key Vault Secrets Officer", &path)], "https://vault.azure.net/.default");
    let (reader, _) = principal(&lab, &[("Key Vault Reader", &path)], "https://vault.azure.net/.default");
    let r = set(&lab, &user, &uri, "app", "v1");
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"]["innererror"]["code"], "ForbiddenByRbac");
    let msg = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("Action: 'Microsoft.KeyVault/vaults/secrets/setSecret/action'"), "{msg}");
    assert_eq!(set(&lab, &officer, &uri, "app", "v1").status, 200);
    assert_eq!(kv(&lab, Some(&user), "GET", &uri, "secrets/app?api-version=7.4", None).body["value"], "v1");
    assert_eq!(kv(&lab, Some(&reader), "GET", &uri, "secrets/app?api-version=7.4", None).status, 403);
    assert_eq!(kv(&lab, Some(&reader), "GET", &uri, "secrets?api-version=7.4", None).status, 200);
    // An access policy means nothing on an RBAC vault.
    let (tok, oid) = vault_token(&lab);
    let add = json!({"properties": {"accessPolicies": [policy(&lab, &oid, &["get"])]}});
    assert_eq!(lab.op("PUT", &format!("{path}/accessPolicies/add?{API}"), Some(&add)).status, 200);
    assert_eq!(kv(&lab, Some(&tok), "GET", &uri, "secrets/app?api-version=7.4", None).status, 403);
}

#[test]
fn rbac_role_by_operation_matrix_on_an_rbac_vault() {
    let lab = Lab::start();
    let (path, uri) = vault(&lab, "kv7", "idlab-kv-roles", json!([]), true);
    let owner = operator_vault_token(&lab);
    // The operator is Owner of the subscription: management only, no data actions.
    assert_eq!(set(&lab, &owner, &uri, "s", "v").status, 403, "Owner has no data actions");
    let (officer, _) = principal(&lab, &[("Key Vault Secrets Officer", &path)], "https://vault.azure.net/.default");
    let body = serde_json::to_vec(&json!({"value": "v"})).unwrap_or_default();
    // (role, [get, set, list, delete]) → allowed?
    let matrix: [(&str, [bool; 4]); 6] = [
        ("Key Vault Secrets Officer", [true, true, true, true]),
        ("Key Vault Secrets User", [true, false, true, false]),
        ("Key Vault Reader", [false, false, true, false]),
        ("Reader", [false, false, false, false]),
        ("Contributor", [false, false, false, false]),
        ("Storage Blob Data Owner", [false, false, false, false]),
    ];
    for (role, allowed) in matrix {
        let (tok, _) = principal(&lab, &[(role, &path)], "https://vault.azure.net/.default");
        let ops: [(&str, &str, Option<&[u8]>); 4] = [
            ("GET", "secrets/s?api-version=7.4", None),
            ("PUT", "secrets/s?api-version=7.4", Some(body.as_slice())),
            ("GET", "secrets?api-version=7.4", None),
            ("DELETE", "secrets/s?api-version=7.4", None),
        ];
        for ((method, p, b), ok) in ops.into_iter().zip(allowed) {
            // The secret exists (live) before each operation.
            let _ = kv(&lab, Some(&officer), "POST", &uri, "deletedsecrets/s/recover?api-version=7.4", None);
            assert_eq!(set(&lab, &officer, &uri, "s", "v").status, 200);
            let r = kv(&lab, Some(&tok), method, &uri, p, b);
            if ok {
                assert_eq!(r.status, 200, "{role} may {method} {p}: {}", r.body);
            } else {
                assert_eq!(r.status, 403, "{role} may not {method} {p}: {}", r.body);
                assert_eq!(r.body["error"]["innererror"]["code"], "ForbiddenByRbac", "{role}");
            }
        }
    }
}

#[test]
fn deleted_secrets_block_their_name_until_recovered_or_purged() {
    let lab = Lab::start();
    let owner = operator_vault_token(&lab);
    let oid = lab.cloud.info.operator_object_id.clone();
    let (_, uri) = vault(&lab, "kv4", "idlab-kv-soft", json!([policy(&lab, &oid, &["all"])]), false);
    assert_eq!(set(&lab, &owner, &uri, "s", "one").status, 200);
    let d = kv(&lab, Some(&owner), "DELETE", &uri, "secrets/s?api-version=7.4", None);
    assert_eq!(d.status, 200, "{}", d.body);
    assert_eq!(d.body["recoveryId"], json!(format!("{uri}deletedsecrets/s")));
    assert!(d.body.get("value").is_none() && d.body["scheduledPurgeDate"].is_u64());
    assert_eq!(kv(&lab, Some(&owner), "GET", &uri, "secrets/s?api-version=7.4", None).status, 404);
    let c = set(&lab, &owner, &uri, "s", "two");
    assert_eq!(
        (c.status, c.body["error"]["innererror"]["code"].as_str()),
        (409, Some("ObjectIsDeletedButRecoverable"))
    );
    assert_eq!(kv(&lab, Some(&owner), "GET", &uri, "deletedsecrets/s?api-version=7.4", None).status, 200);
    assert_eq!(kv(&lab, Some(&owner), "POST", &uri, "deletedsecrets/s/recover?api-version=7.4", None).status, 200);
    assert_eq!(kv(&lab, Some(&owner), "GET", &uri, "secrets/s?api-version=7.4", None).body["value"], "one");
    assert_eq!(kv(&lab, Some(&owner), "DELETE", &uri, "secrets/s?api-version=7.4", None).status, 200);
    assert_eq!(kv(&lab, Some(&owner), "DELETE", &uri, "deletedsecrets/s?api-version=7.4", None).status, 204);
    // A purged (or never deleted) secret: 404 in the words Azure uses for every missing
    // secret (SecretClientLiveTests GetDeletedSecretNonExisting.json, …RecoverDeletedSecretNonExisting.json).
    for (method, path) in [("GET", "deletedsecrets/s"), ("POST", "deletedsecrets/s/recover")] {
        let r = kv(&lab, Some(&owner), method, &uri, &format!("{path}?api-version=7.4"), None);
        assert_eq!((r.status, r.body["error"]["code"].as_str()), (404, Some("SecretNotFound")), "{path}");
        let msg = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.starts_with("A secret with (name/id) s was not found in this key vault."), "{msg}");
    }
    assert_eq!(set(&lab, &owner, &uri, "s", "three").status, 200);
    assert_eq!(set(&lab, &owner, &uri, "bad_name", "x").body["error"]["code"], "BadParameter");
}

#[test]
fn a_deleted_vault_is_kept_for_recovery_until_purged() {
    let lab = Lab::start();
    let owner = operator_vault_token(&lab);
    let oid = lab.cloud.info.operator_object_id.clone();
    let sub = lab.sub();
    let check = |name: &str| {
        lab.op(
            "POST",
            &format!("/subscriptions/{sub}/providers/Microsoft.KeyVault/checkNameAvailability?{API}"),
            Some(&json!({"name": name, "type": "Microsoft.KeyVault/vaults"})),
        )
        .body
    };
    assert_eq!(check("idlab-kv-life")["nameAvailable"], true);
    assert_eq!(check("1bad")["reason"], "AccountNameInvalid");
    let (path, uri) = vault(&lab, "kv5", "idlab-kv-life", json!([policy(&lab, &oid, &["all"])]), false);
    assert_eq!(check("idlab-kv-life")["reason"], "AlreadyExists");
    assert_eq!(set(&lab, &owner, &uri, "kept", "value").status, 200);
    // The same name in another group of the subscription: names are global.
    let other = lab.rg_path("other");
    assert!(lab.op("PUT", &format!("{other}?{API}"), Some(&json!({"location": "eastus"}))).status < 300);
    let clash = lab.op(
        "PUT",
        &format!("{other}/providers/Microsoft.KeyVault/vaults/idlab-kv-life?{API}"),
        Some(&vault_body(&lab, json!([]), false)),
    );
    assert_eq!((clash.status, clash.body["error"]["code"].as_str()), (409, Some("VaultAlreadyExists")));
    // Soft delete.
    assert_eq!(lab.op("DELETE", &format!("{path}?{API}"), None).status, 200);
    assert_eq!(lab.op("GET", &format!("{path}?{API}"), None).status, 404);
    let deleted =
        format!("/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/eastus/deletedVaults/idlab-kv-life");
    let d = lab.op("GET", &format!("{deleted}?{API}"), None);
    assert_eq!(d.status, 200, "{}", d.body);
    assert_eq!(d.body["type"], "Microsoft.KeyVault/deletedVaults");
    assert!(d.body["properties"]["vaultId"].as_str().unwrap_or_default().eq_ignore_ascii_case(&path));
    assert_eq!(lab.op("GET", &format!("{}?{API}", deleted.replace("/eastus/", "/westus/")), None).status, 404);
    let list = lab.op("GET", &format!("/subscriptions/{sub}/providers/Microsoft.KeyVault/deletedVaults?{API}"), None);
    assert_eq!(list.body["value"].as_array().map(Vec::len), Some(1));
    // Its data plane is gone: new connections are refused, a kept-alive one gets 404.
    let gone = lab.rt.block_on(async {
        lab.http.get(format!("{uri}secrets/kept?api-version=7.4")).bearer_auth(&owner).send().await
    });
    if let Ok(resp) = gone {
        assert_eq!(resp.status().as_u16(), 404, "a soft-deleted vault's data plane must not serve secrets");
    }
    // A plain create is refused; recover restores the vault, its policies and its secrets.
    let again = lab.op("PUT", &format!("{path}?{API}"), Some(&vault_body(&lab, json!([]), false)));
    assert_eq!((again.status, again.body["error"]["code"].as_str()), (409, Some("ConflictError")));
    let mut rec = vault_body(&lab, json!([]), false);
    rec["properties"]["createMode"] = json!("recover");
    let r = lab.op("PUT", &format!("{path}?{API}"), Some(&rec));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.pointer("/properties/accessPolicies/0/objectId"), Some(&json!(oid)));
    assert!(r.body.pointer("/properties/createMode").is_none());
    let uri2 = r.body["properties"]["vaultUri"].as_str().unwrap_or_default().to_string();
    assert_eq!(kv(&lab, Some(&owner), "GET", &uri2, "secrets/kept?api-version=7.4", None).body["value"], "value");
    // Delete again and purge: the name is free and a new vault starts empty.
    assert_eq!(lab.op("DELETE", &format!("{path}?{API}"), None).status, 200);
    let p = lab.op("POST", &format!("{deleted}/purge?{API}"), None);
    assert_eq!(p.status, 202, "{}", p.body);
    assert!(p.header("location").is_some());
    assert_eq!(lab.op("GET", &format!("{deleted}?{API}"), None).status, 404);
    assert_eq!(check("idlab-kv-life")["nameAvailable"], true);
    let (_, uri3) = vault(&lab, "kv5", "idlab-kv-life", json!([policy(&lab, &oid, &["all"])]), false);
    assert_eq!(kv(&lab, Some(&owner), "GET", &uri3, "secrets/kept?api-version=7.4", None).status, 404);
    // Purge protection cannot be turned off, and blocks purging.
    let mut protected = vault_body(&lab, json!([]), false);
    protected["properties"]["enablePurgeProtection"] = json!(true);
    assert_eq!(lab.op("PUT", &format!("{path}?{API}"), Some(&protected)).status, 200);
    protected["properties"]["enablePurgeProtection"] = json!(false);
    assert_eq!(lab.op("PUT", &format!("{path}?{API}"), Some(&protected)).status, 400);
    assert_eq!(lab.op("DELETE", &format!("{path}?{API}"), None).status, 200);
    assert_eq!(lab.op("POST", &format!("{deleted}/purge?{API}"), None).status, 409);
}

#[test]
fn vault_bodies_are_checked_and_completed() {
    let lab = Lab::start();
    let rgp = lab.rg_path("kv6");
    assert!(lab.op("PUT", &format!("{rgp}?{API}"), Some(&json!({"location": "eastus"}))).status < 300);
    let path = format!("{rgp}/providers/Microsoft.KeyVault/vaults/idlab-kv-body");
    let bad_name = lab.op(
        "PUT",
        &format!("{rgp}/providers/Microsoft.KeyVault/vaults/a--b?{API}"),
        Some(&vault_body(&lab, json!([]), false)),
    );
    assert_eq!(bad_name.body["error"]["code"], "VaultNameNotValid");
    let mut no_sku = vault_body(&lab, json!([]), false);
    no_sku["properties"].as_object_mut().map(|p| p.remove("sku"));
    assert_eq!(lab.op("PUT", &format!("{path}?{API}"), Some(&no_sku)).status, 400);
    // Azure refuses a create without accessPolicies (an empty list will do).
    let mut no_policies = vault_body(&lab, json!([]), false);
    no_policies["properties"].as_object_mut().map(|p| p.remove("accessPolicies"));
    let r = lab.op("PUT", &format!("{path}?{API}"), Some(&no_policies));
    assert_eq!(
        (r.status, r.body["error"]["message"].as_str()),
        (400, Some("The parameter accessPolicies is not specified."))
    );
    let mut no_soft = vault_body(&lab, json!([]), false);
    no_soft["properties"]["enableSoftDelete"] = json!(false);
    assert_eq!(lab.op("PUT", &format!("{path}?{API}"), Some(&no_soft)).status, 400);
    // From 2026-02-01 a vault without the flag uses RBAC; before, access policies.
    let mut plain = vault_body(&lab, json!([]), false);
    plain["properties"].as_object_mut().map(|p| p.remove("enableRbacAuthorization"));
    let new = lab.op("PUT", &format!("{path}?api-version=2026-02-01"), Some(&plain));
    assert_eq!(new.body["properties"]["enableRbacAuthorization"], true);
    let r = lab.op("GET", &format!("{path}?{API}"), None);
    assert_eq!(r.body["properties"]["enableSoftDelete"], true);
    assert_eq!(r.body["properties"]["softDeleteRetentionInDays"], 7);
    assert_eq!(r.body["properties"]["sku"]["name"], "standard");
    let mut longer = plain.clone();
    longer["properties"]["softDeleteRetentionInDays"] = json!(30);
    assert_eq!(lab.op("PUT", &format!("{path}?{API}"), Some(&longer)).status, 400, "retention is set at create");
    assert_eq!(
        lab.op("PUT", &format!("{path}?api-version=2015-01-01"), Some(&plain)).body["error"]["code"],
        "InvalidApiVersionParameter"
    );
}

#[test]
fn vaults_secrets_and_their_ports_survive_a_restart() {
    let lab = Lab::start();
    let oid = lab.cloud.info.operator_object_id.clone();
    let (path, uri) = vault(&lab, "kv8", "idlab-kv-restart", json!([policy(&lab, &oid, &["all"])]), false);
    let owner = operator_vault_token(&lab);
    assert_eq!(set(&lab, &owner, &uri, "kept", "across-restarts").status, 200);
    let (gone_path, _) = vault(&lab, "kv8", "idlab-kv-deleted", json!([policy(&lab, &oid, &["all"])]), false);
    assert_eq!(lab.op("DELETE", &format!("{gone_path}?{API}"), None).status, 200);
    let lab = lab.restart();
    // The same URI answers, the value opens with the kept key, the deleted vault stays deleted.
    let owner = operator_vault_token(&lab);
    let r = kv(&lab, Some(&owner), "GET", &uri, "secrets/kept?api-version=7.4", None);
    assert_eq!((r.status, r.body["value"].as_str()), (200, Some("across-restarts")), "{}", r.body);
    assert_eq!(lab.op("GET", &format!("{path}?{API}"), None).body["properties"]["vaultUri"], json!(uri));
    let sub = lab.sub();
    let deleted =
        lab.op("GET", &format!("/subscriptions/{sub}/providers/Microsoft.KeyVault/deletedVaults?{API}"), None);
    assert_eq!(deleted.body["value"].as_array().map(Vec::len), Some(1), "{}", deleted.body);
}

/// A vault in a location named by its display name ("North Central US"), as Azure shows it
/// in KeyVaultManagementListDeletedVaults.json (2021-06-01-preview): its network rules come
/// back with both rule lists, its deleted record is found through the display name or the
/// short name and its id names the short one, and its purge's `Location` poll ends with
/// Key Vault's operation record.
#[test]
fn deleted_vaults_answer_by_display_or_short_location_and_purge_ends_with_its_record() {
    let lab = Lab::with(idlab::local::faults::Faults::parse("lro_ms: 1\n").expect("faults"));
    let sub = lab.sub();
    let rgp = lab.rg_path("ncus");
    assert!(lab.op("PUT", &format!("{rgp}?{API}"), Some(&json!({"location": "North Central US"}))).status < 300);
    let path = format!("{rgp}/providers/Microsoft.KeyVault/vaults/idlab-kv-ncus");
    let mut body = vault_body(&lab, json!([]), false);
    body["location"] = json!("North Central US");
    body["properties"]["networkAcls"] =
        json!({"bypass": "AzureServices", "defaultAction": "Allow", "ipRules": [{"value": "1.2.3.4/32"}]});
    let r = lab.op("PUT", &format!("{path}?{API}"), Some(&body));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.pointer("/properties/networkAcls/virtualNetworkRules"), Some(&json!([])));
    assert_eq!(r.body.pointer("/properties/networkAcls/ipRules/0/value"), Some(&json!("1.2.3.4/32")));
    assert_eq!(lab.op("DELETE", &format!("{path}?{API}"), None).status, 200);
    let base = format!("/subscriptions/{sub}/providers/Microsoft.KeyVault/locations");
    for location in ["North%20Central%20US", "northcentralus"] {
        let d = lab.op("GET", &format!("{base}/{location}/deletedVaults/idlab-kv-ncus?{API}"), None);
        assert_eq!(d.status, 200, "{location}: {}", d.body);
        assert_eq!(d.body["id"], json!(format!("{base}/northcentralus/deletedVaults/idlab-kv-ncus")));
        let shown = d.body["properties"]["location"].as_str().unwrap_or_default().replace(' ', "");
        assert!(shown.eq_ignore_ascii_case("northcentralus"), "{shown}");
    }
    let p = lab.op("POST", &format!("{base}/North%20Central%20US/deletedVaults/idlab-kv-ncus/purge?{API}"), None);
    assert_eq!(p.status, 202, "{}", p.body);
    let poll = p.header("location").expect("Location");
    let mut end = lab.op("GET", &poll, None);
    for _ in 0..100 {
        if end.status != 202 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        end = lab.op("GET", &poll, None);
    }
    assert_eq!(end.status, 200, "{}", end.body);
    assert_eq!(end.body["status"], "Succeeded");
    for k in ["createdDateTime", "lastActionDateTime"] {
        let t = end.body[k].as_str().unwrap_or_default();
        assert!(t.len() == 20 && t.as_bytes()[10] == b' ' && t.ends_with('Z'), "{k}: {t}");
    }
    assert_eq!(lab.op("GET", &format!("{base}/northcentralus/deletedVaults/idlab-kv-ncus?{API}"), None).status, 404);
}

/// `GET /secrets/{name}/versions` lists every version of the secret (ids with their version,
/// no values), and a secret the vault does not hold has an empty list, as Azure answers
/// (SecretClientLiveTests/GetSecretVersionsNonExisting.json: 200 `{"value": [], "nextLink": null}`).
#[test]
fn secret_versions_are_listed_and_a_missing_secret_has_none() {
    let lab = Lab::start();
    let (me, uri) = operator_vault(&lab, "kvv", "idlab-kv-versions");
    let first = set(&lab, &me, &uri, "rotated", "one");
    let second = set(&lab, &me, &uri, "rotated", "two");
    let r = kv(&lab, Some(&me), "GET", &uri, "secrets/rotated/versions?api-version=7.4", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let ids: Vec<&str> = r.body["value"].as_array().into_iter().flatten().filter_map(|v| v["id"].as_str()).collect();
    assert_eq!(ids.len(), 2, "{}", r.body);
    for made in [&first, &second] {
        assert!(ids.contains(&made.body["id"].as_str().unwrap_or_default()), "{ids:?}");
    }
    assert!(
        !r.body.to_string().contains("\"one\"") && !r.body.to_string().contains("\"two\""),
        "no values in a listing"
    );
    let none = kv(&lab, Some(&me), "GET", &uri, "secrets/never-set/versions?api-version=7.3-preview", None);
    assert_eq!((none.status, none.body.clone()), (200, json!({"value": [], "nextLink": null})));
}

/// A disabled secret keeps its metadata but not its value: reading it is 403 `Forbidden` with
/// inner code `SecretDisabled` until it is enabled again, as Azure answers
/// (SecretClientLiveTests/UpdateEnabled.json, 7.2).
#[test]
fn a_disabled_secret_is_not_read_until_enabled_again() {
    let lab = Lab::start();
    let (me, uri) = operator_vault(&lab, "kvd", "idlab-kv-disabled");
    let made = set(&lab, &me, &uri, "off", "hidden-value");
    let version = made.body["id"].as_str().unwrap_or_default().rsplit('/').next().unwrap_or_default().to_string();
    let patch = |enabled: bool| {
        let body = serde_json::to_vec(&json!({"attributes": {"enabled": enabled}})).unwrap_or_default();
        kv(&lab, Some(&me), "PATCH", &uri, &format!("secrets/off/{version}?api-version=7.2"), Some(&body))
    };
    let r = patch(false);
    assert_eq!((r.status, r.body["attributes"]["enabled"].as_bool()), (200, Some(false)), "{}", r.body);
    for path in ["secrets/off/", &format!("secrets/off/{version}")] {
        let r = kv(&lab, Some(&me), "GET", &uri, &format!("{path}?api-version=7.2"), None);
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "Forbidden");
        assert_eq!(r.body["error"]["innererror"]["code"], "SecretDisabled");
        assert!(!r.body.to_string().contains("hidden-value"));
    }
    // Its metadata is still listed.
    let list = kv(&lab, Some(&me), "GET", &uri, "secrets/off/versions?api-version=7.2", None);
    assert_eq!(list.body["value"][0]["attributes"]["enabled"], false);
    assert_eq!(patch(true).status, 200);
    let r = kv(&lab, Some(&me), "GET", &uri, "secrets/off?api-version=7.2", None);
    assert_eq!((r.status, r.body["value"].as_str()), (200, Some("hidden-value")));
}

/// `attributes.nbf` and `exp` are kept as set, shown on every answer about the version (set,
/// get, delete) and changed by PATCH, as Azure answers (SecretClientLiveTests/
/// SetSecretWithExtendedProps.json, 7.3: an expired secret is still read).
#[test]
fn not_before_and_expiry_are_kept_and_shown() {
    let lab = Lab::start();
    let (me, uri) = operator_vault(&lab, "kvx", "idlab-kv-expiry");
    let body = serde_json::to_vec(&json!({"value": "v", "contentType": "password",
        "attributes": {"nbf": 1564536012u64, "exp": 1567128012u64}, "tags": {"tag1": "value1"}}))
    .unwrap_or_default();
    let r = kv(&lab, Some(&me), "PUT", &uri, "secrets/timed?api-version=7.3", Some(&body));
    assert_eq!(r.status, 200, "{}", r.body);
    let keys: Vec<&String> = r.body["attributes"].as_object().map(|m| m.keys().collect()).unwrap_or_default();
    assert_eq!(keys, ["enabled", "nbf", "exp", "created", "updated", "recoveryLevel", "recoverableDays"]);
    let got = kv(&lab, Some(&me), "GET", &uri, "secrets/timed/?api-version=7.3", None);
    assert_eq!(got.status, 200, "an expired secret is still read: {}", got.body);
    assert_eq!(
        (got.body["attributes"]["nbf"].as_u64(), got.body["attributes"]["exp"].as_u64()),
        (Some(1564536012), Some(1567128012))
    );
    let patch = serde_json::to_vec(&json!({"attributes": {"exp": 4102444800u64}})).unwrap_or_default();
    let r = kv(&lab, Some(&me), "PATCH", &uri, "secrets/timed?api-version=7.3", Some(&patch));
    assert_eq!(r.body["attributes"]["exp"], 4102444800u64);
    assert_eq!(r.body["attributes"]["nbf"], 1564536012u64);
    let d = kv(&lab, Some(&me), "DELETE", &uri, "secrets/timed?api-version=7.3", None);
    assert_eq!(
        (d.body["attributes"]["exp"].as_u64(), d.body["contentType"].as_str()),
        (Some(4102444800), Some("password"))
    );
}
