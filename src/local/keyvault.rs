//! Key Vault in the local cloud (arm-contract §6, §11): the vault's ARM side (soft delete,
//! `deletedVaults`, purge, `createMode: recover`, `accessPolicies/{add|remove|replace}`,
//! `checkNameAvailability`) and the secrets data plane, served on one HTTPS loopback port per
//! vault so that secret ids have the real `scheme://host:port/secrets/NAME/VERSION` form.
//!
//! The data plane answers a request without a bearer token with the 401 challenge real
//! clients expect — before it looks at the path, the query or the body — accepts tokens for
//! `https://vault.azure.net`, and authorizes through the vault's access policies, or through
//! RBAC data actions when `enableRbacAuthorization` is on. Secret values live only in the
//! state; the request log holds methods, paths and statuses.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::{Caller, Refusal};
use super::http::{ArmError, empty, json_response, percent_decode, query_get, query_pairs};
use super::pipeline::{self, Bearer, Errors, Ids, Note, Plane};
use super::shared::{Shared, bind_loopback, now_ms};
use super::store::{Op, Resource, SecretVersion, State as CloudState, StoredSecret};

/// The ARM type of a vault.
pub const VAULT_TYPE: &str = super::table::VAULTS;

/// Token audiences the data plane accepts.
const AUDIENCES: &[&str] = &["https://vault.azure.net", "https://vault.azure.net/"];

/// Data-plane api-versions (arm-contract §0.2).
const DATA_VERSIONS: &[&str] = &[
    "2015-06-01",
    "2016-10-01",
    "7.0",
    "7.1",
    "7.2",
    "7.3",
    "7.4",
    "7.5",
    "7.6",
    "2025-07-01",
    "2026-04-01",
    "7.2-preview",
    "7.3-preview",
    "7.4-preview.1",
    "7.6-preview.2",
    "2025-06-01-preview",
    "2026-01-01-preview",
    "2026-03-01-preview",
    "2026-05-01-preview",
    "2026-07-01-preview",
];

/// The `ports` entry of a vault's data plane.
pub fn port_purpose(name: &str) -> String {
    format!("vault:{}", name.to_ascii_lowercase())
}

/// The vault with this name, in any resource group.
pub fn vault_named<'a>(st: &'a CloudState, name: &str) -> Option<&'a Resource> {
    st.resources
        .values()
        .find(|r| r.kind == VAULT_TYPE && r.id.rsplit('/').next().is_some_and(|n| n.eq_ignore_ascii_case(name)))
}

/// Bind a vault's data-plane port: the one recorded for its name, else a free one.
pub fn bind(st: &CloudState, name: &str) -> Result<(std::net::TcpListener, u16), ArmError> {
    let want = st.ports.get(&port_purpose(name)).copied().unwrap_or(0);
    let l = bind_loopback(want).map_err(|e| ArmError::new(500, "InternalServerError", e.to_string()))?;
    let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
    Ok((l, port))
}

/// The data-plane URI of a vault served on `port`.
pub fn vault_uri(port: u16) -> String {
    format!("https://127.0.0.1:{port}/")
}

/// Serve every live vault's data plane (a taken port gets a new one; the vault's `vaultUri`
/// follows).
///
/// # Errors
/// A message when a port cannot be bound or the change cannot be recorded.
pub fn start_all(sh: &Arc<Shared>) -> Result<(), String> {
    let vaults: Vec<Resource> = sh.store().state.resources.values().filter(|r| r.kind == VAULT_TYPE).cloned().collect();
    // A vault seeded through the admin API (recorded state) has no data plane, and keeps the
    // `vaultUri` it was seeded with.
    for mut r in vaults.into_iter().filter(|r| r.body.pointer("/_idlab/seeded") != Some(&json!(true))) {
        let name = r.id.rsplit('/').next().unwrap_or_default().to_ascii_lowercase();
        let (listener, port) = bind(&sh.store().state, &name).map_err(|e| e.message)?;
        let uri = vault_uri(port);
        if sh.store().state.ports.get(&port_purpose(&name)) != Some(&port)
            || r.body.pointer("/properties/vaultUri").and_then(Value::as_str) != Some(uri.as_str())
        {
            r.body["properties"]["vaultUri"] = json!(uri);
            sh.store()
                .append(vec![Op::SetPort { purpose: port_purpose(&name), port }, Op::PutResource { resource: r }])
                .map_err(|e| e.to_string())?;
        }
        serve(sh, &name, listener);
    }
    Ok(())
}

/// Serve one vault's data plane on a bound listener.
pub fn serve(sh: &Arc<Shared>, name: &str, listener: std::net::TcpListener) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    if let Some(old) = sh.vaults_running.lock().unwrap_or_else(|p| p.into_inner()).insert(name.to_string(), tx) {
        let _ = old.send(true);
    }
    let shared = sh.clone();
    let key = name.to_string();
    let tls = sh.tls.clone();
    let serving = sh.serving.clone();
    sh.runtime.spawn(async move {
        let _ = listener.set_nonblocking(true);
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
        super::tls::serve_tls(listener, tls, app(&shared, &key), rx, serving).await;
    });
}

/// A vault's data plane behind the pipeline: on its own port, and in the proxy's tunnels to
/// `{vault}.vault.azure.net`.
pub fn app(sh: &Arc<Shared>, name: &str) -> axum::Router {
    let handler = axum::Router::new().fallback(entry).with_state((sh.clone(), name.to_string()));
    pipeline::layer(sh, plane(), handler).layer(Extension(Vault(name.to_string())))
}

/// Stop one vault's data plane (soft delete).
pub fn stop(sh: &Shared, name: &str) {
    if let Some(tx) = sh.vaults_running.lock().unwrap_or_else(|p| p.into_inner()).remove(&name.to_ascii_lowercase()) {
        let _ = tx.send(true);
    }
}

/// Stop every vault's data plane.
pub fn stop_all(sh: &Shared) {
    for (_, tx) in sh.vaults_running.lock().unwrap_or_else(|p| p.into_inner()).drain() {
        let _ = tx.send(true);
    }
}

fn kv_error(status: u16, code: &str, message: &str, inner: Option<&str>) -> Response {
    let mut e = json!({ "code": code, "message": message });
    if let Some(i) = inner {
        e["innererror"] = json!({ "code": i });
    }
    json_response(status, &json!({ "error": e }), &[])
}

fn challenge(sh: &Shared, status: u16, message: &str) -> Response {
    let mut r = kv_error(status, "Unauthorized", message, None);
    super::http::add_headers(
        r.headers_mut(),
        &[(
            "www-authenticate",
            format!(
                "Bearer authorization=\"{}/{}\", resource=\"https://vault.azure.net\"",
                sh.base_url, sh.info.tenant_id
            ),
        )],
    );
    r
}

/// The vault a data-plane server serves (its name, as the request log calls it).
#[derive(Debug, Clone)]
struct Vault(String);

/// The Key Vault plane: Key Vault JSON errors with the 401 challenge, tokens for
/// `https://vault.azure.net`; access policies or RBAC (by the vault's mode) in the handler.
fn plane() -> Plane {
    Plane {
        name: "keyvault",
        errors: Errors::KeyVaultJson,
        ids: Ids::KeyVault,
        any_case_scheme: false,
        audiences: |_, aud| AUDIENCES.contains(&aud),
        admit,
        authorize: pipeline::pass,
        log_path: |parts| {
            let vault = parts.extensions.get::<Vault>().map(|v| v.0.as_str()).unwrap_or_default();
            format!("/vaults/{vault}{}", parts.uri.path())
        },
        body_limit: |l| l.vault_body,
        too_large: |limit| {
            kv_error(
                413,
                "RequestEntityTooLarge",
                &format!("The request body exceeds the limit of {limit} bytes."),
                None,
            )
        },
    }
}

/// The challenge comes first: clients send the first request without a token (and without
/// its body) to learn the authority; then the bearer check's verdict, in Key Vault's words.
fn admit(sh: &Arc<Shared>, parts: &mut Parts, bearer: &Bearer, note: &mut Note) -> Result<(), Box<Response>> {
    note.write = matches!(parts.method, Method::PUT | Method::DELETE | Method::POST | Method::PATCH);
    let refused = |message: &str| Err(Box::new(challenge(sh, 401, message)));
    match bearer {
        Bearer::Absent | Bearer::OtherScheme => refused("AKV10000: Request is missing a Bearer or PoP token."),
        Bearer::Checked(Ok(caller)) => {
            note.principal = Some(caller.object_id.clone());
            Ok(())
        }
        Bearer::Checked(Err(Refusal::Expired { .. })) => refused("AKV10022: The access token has expired."),
        Bearer::Checked(Err(Refusal::WrongAudience { aud })) => {
            refused(&format!("AKV10022: Invalid audience. Expected https://vault.azure.net, found: {aud}."))
        }
        Bearer::Checked(Err(_)) => refused("AKV10000: The access token is invalid."),
    }
}

/// The handler, behind the pipeline (the body is read after authentication).
async fn entry(
    State((sh, vault)): State<(Arc<Shared>, String)>,
    Extension(bearer): Extension<Bearer>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let Some(caller) = bearer.caller() else {
        return challenge(&sh, 401, "AKV10000: The access token is invalid.");
    };
    answer(&sh, &vault, caller, &method, &uri, &body)
}

/// The secret operations and the access-policy permission each needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SecretOp {
    Get,
    Set,
    /// Tags, content type or `enabled` of one version (PATCH).
    Update,
    List,
    Delete,
    Recover,
    Purge,
}

impl SecretOp {
    fn permission(self) -> &'static str {
        match self {
            SecretOp::Get => "get",
            SecretOp::Set | SecretOp::Update => "set",
            SecretOp::List => "list",
            SecretOp::Delete => "delete",
            SecretOp::Recover => "recover",
            SecretOp::Purge => "purge",
        }
    }
    fn data_action(self) -> String {
        let action = match self {
            SecretOp::Get => "getSecret/action",
            SecretOp::Set | SecretOp::Update => "setSecret/action",
            SecretOp::List => "readMetadata/action",
            SecretOp::Delete => "delete",
            SecretOp::Recover => "recover/action",
            SecretOp::Purge => "purge/action",
        };
        format!("{VAULT_TYPE}/secrets/{action}")
    }
}

fn answer(sh: &Shared, vault_name: &str, claims: &Caller, method: &Method, uri: &Uri, body: &Bytes) -> Response {
    let q = query_pairs(uri.query());
    match query_get(&q, "api-version") {
        None => return kv_error(400, "BadParameter", "The 'api-version' query parameter is missing.", None),
        Some(v) if !DATA_VERSIONS.contains(&v) => {
            let msg = format!(
                "The specified version ({v}) is not recognized. Consider using the latest supported version (2026-04-01)."
            );
            return kv_error(400, "BadParameter", &msg, None);
        }
        Some(_) => {}
    }
    let (vault, secrets_of_vault) = {
        let st = sh.store();
        let Some(v) = vault_named(&st.state, vault_name).cloned() else {
            return kv_error(404, "VaultNotFound", &format!("The vault '{vault_name}' does not exist."), None);
        };
        let prefix = format!("{}/", vault_name.to_ascii_lowercase());
        let s: Vec<(String, StoredSecret)> = st
            .state
            .secrets
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (v, s)
    };
    let segs: Vec<String> =
        uri.path().trim_matches('/').split('/').filter(|s| !s.is_empty()).map(|s| percent_decode(s, false)).collect();
    let seg = |i: usize| segs.get(i).map(String::as_str);
    let (op, name) = match (method, seg(0), segs.len()) {
        (&Method::GET, Some("secrets"), 1) => (SecretOp::List, None),
        (&Method::PUT, Some("secrets"), 2) => (SecretOp::Set, seg(1)),
        (&Method::GET, Some("secrets"), 2) => (SecretOp::Get, seg(1)),
        (&Method::DELETE, Some("secrets"), 2) => (SecretOp::Delete, seg(1)),
        (&Method::GET, Some("secrets"), 3) if seg(2) == Some("versions") => (SecretOp::List, seg(1)),
        (&Method::GET, Some("secrets"), 3) => (SecretOp::Get, seg(1)),
        (&Method::PATCH, Some("secrets"), 2 | 3) => (SecretOp::Update, seg(1)),
        (&Method::GET, Some("deletedsecrets"), 1 | 2) => (SecretOp::List, seg(1)),
        (&Method::DELETE, Some("deletedsecrets"), 2) => (SecretOp::Purge, seg(1)),
        (&Method::POST, Some("deletedsecrets"), 3) if seg(2) == Some("recover") => (SecretOp::Recover, seg(1)),
        _ => {
            let msg = format!("The operation {method} {} is not served by this vault.", uri.path());
            return kv_error(404, "NotFound", &msg, None);
        }
    };
    if let Some(denied) = refusal(sh, &vault, claims, op, name) {
        return denied;
    }
    let uri_base = vault
        .body
        .pointer("/properties/vaultUri")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim_end_matches('/')
        .to_string();
    let days = vault.body.pointer("/properties/softDeleteRetentionInDays").and_then(Value::as_u64).unwrap_or(90);
    let protected = vault.body.pointer("/properties/enablePurgeProtection").and_then(Value::as_bool) == Some(true);
    let cx = Cx { uri: uri_base, days, protected };
    let vault_key = vault_name.to_ascii_lowercase();
    let find = |n: &str| {
        secrets_of_vault
            .iter()
            .find(|(k, _)| *k == format!("{vault_key}/{}", n.to_ascii_lowercase()))
            .map(|(_, s)| s.clone())
    };
    match (op, name) {
        (SecretOp::List, None) if seg(0) == Some("secrets") => {
            let value: Vec<Value> = secrets_of_vault
                .iter()
                .filter(|(_, s)| s.deleted.is_none())
                .filter_map(|(_, s)| s.versions.last().map(|v| cx.item(s, v)))
                .collect();
            json_response(200, &json!({ "value": value, "nextLink": null }), &[])
        }
        (SecretOp::List, None) => {
            let value: Vec<Value> =
                secrets_of_vault.iter().filter(|(_, s)| s.deleted.is_some()).map(|(_, s)| cx.deleted(s)).collect();
            json_response(200, &json!({ "value": value, "nextLink": null }), &[])
        }
        // The versions of a secret the vault does not hold are an empty list, not a 404
        // (SecretClientLiveTests/GetSecretVersionsNonExisting.json, 7.3-preview).
        (SecretOp::List, Some(n)) if seg(0) == Some("secrets") => {
            let value: Vec<Value> = find(n)
                .filter(|s| s.deleted.is_none())
                .map(|s| s.versions.iter().map(|v| cx.bundle(&s, v)).collect())
                .unwrap_or_default();
            json_response(200, &json!({ "value": value, "nextLink": null }), &[])
        }
        (SecretOp::List, Some(n)) => match find(n).filter(|s| s.deleted.is_some()) {
            Some(s) => json_response(200, &cx.deleted(&s), &[]),
            None => not_found(n),
        },
        (SecretOp::Get, Some(n)) => {
            let version = seg(2);
            match find(n).filter(|s| s.deleted.is_none()) {
                Some(s) => {
                    let v = match version {
                        Some(want) => s.versions.iter().find(|v| v.version.eq_ignore_ascii_case(want)),
                        None => s.versions.last(),
                    };
                    match v {
                        // A disabled version's value is not served
                        // (SecretClientLiveTests/UpdateEnabled.json, 7.2).
                        Some(v) if !v.enabled => kv_error(
                            403,
                            "Forbidden",
                            "Operation get is not allowed on a disabled secret.",
                            Some("SecretDisabled"),
                        ),
                        Some(v) => {
                            let mut b = cx.bundle(&s, v);
                            match open(&sh.vault_key, &v.value) {
                                Some(plain) => b["value"] = json!(plain),
                                None => {
                                    let msg = "The secret's value cannot be opened with this state's vault.key.";
                                    return kv_error(500, "InternalServerError", msg, None);
                                }
                            }
                            json_response(200, &b, &[])
                        }
                        None => not_found(&format!("{n}/{}", version.unwrap_or_default())),
                    }
                }
                None => not_found(n),
            }
        }
        (SecretOp::Set, Some(n)) => set_secret(sh, &cx, &vault_key, n, find(n), body),
        (SecretOp::Update, Some(n)) => match find(n).filter(|s| s.deleted.is_none()) {
            Some(s) => update_secret(sh, &cx, &vault_key, s, seg(2), body),
            None => not_found(n),
        },
        (SecretOp::Delete, Some(n)) => match find(n).filter(|s| s.deleted.is_none()) {
            Some(mut s) => {
                let now_s = now_ms() / 1000;
                s.deleted = Some((now_s, now_s + days * 86_400));
                let shown = cx.deleted(&s);
                commit_or_500(
                    sh,
                    vec![Op::PutSecret { key: format!("{vault_key}/{}", n.to_ascii_lowercase()), secret: s }],
                    || json_response(200, &shown, &[]),
                )
            }
            None => not_found(n),
        },
        (SecretOp::Recover, Some(n)) => match find(n).filter(|s| s.deleted.is_some()) {
            Some(mut s) => {
                s.deleted = None;
                let shown = s.versions.last().map(|v| cx.bundle(&s, v)).unwrap_or(Value::Null);
                commit_or_500(
                    sh,
                    vec![Op::PutSecret { key: format!("{vault_key}/{}", n.to_ascii_lowercase()), secret: s }],
                    || json_response(200, &shown, &[]),
                )
            }
            None => not_found(n),
        },
        (SecretOp::Purge, Some(n)) => match find(n).filter(|s| s.deleted.is_some()) {
            Some(_) if protected => kv_error(
                403,
                "Forbidden",
                &format!(
                    "Operation \"purge\" is not allowed because purge protection is enabled for this vault. Secret {n} is purged automatically after its retention period."
                ),
                None,
            ),
            Some(_) => commit_or_500(
                sh,
                vec![Op::DeleteSecret { key: format!("{vault_key}/{}", n.to_ascii_lowercase()) }],
                || empty(204, &[]),
            ),
            None => not_found(n),
        },
        _ => kv_error(400, "BadParameter", "The request is not valid.", None),
    }
}

/// Seal a secret value for the state: `v1:` and base64 of nonce and AES-256-GCM ciphertext.
fn seal(key: &[u8; 32], plain: &str) -> String {
    use base64::Engine;
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let nonce_bytes: [u8; 12] = rand::random();
    let mut data = plain.as_bytes().to_vec();
    let sealed = UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .and_then(|k| k.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce_bytes), Aad::empty(), &mut data));
    if sealed.is_err() {
        return String::new();
    }
    let mut out = nonce_bytes.to_vec();
    out.extend(data);
    format!("v1:{}", base64::engine::general_purpose::STANDARD.encode(out))
}

/// Open a sealed value; `None` when it does not open with this key.
fn open(key: &[u8; 32], sealed: &str) -> Option<String> {
    use base64::Engine;
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let raw = base64::engine::general_purpose::STANDARD.decode(sealed.strip_prefix("v1:")?).ok()?;
    if raw.len() < 12 {
        return None;
    }
    let (nonce, rest) = raw.split_at(12);
    let mut data = rest.to_vec();
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).ok()?);
    let plain = k.open_in_place(Nonce::try_assume_unique_for_key(nonce).ok()?, Aad::empty(), &mut data).ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

fn commit_or_500(sh: &Shared, ops: Vec<Op>, ok: impl FnOnce() -> Response) -> Response {
    match sh.commit(ops).map_err(ArmError::from) {
        Ok(()) => ok(),
        Err(e) => kv_error(500, "InternalServerError", &e.message, None),
    }
}

/// 404 `SecretNotFound`, in the words Azure uses for a secret, a deleted secret and a recover
/// alike (SecretClientLiveTests GetDeletedSecretNonExisting.json, StartRecoverDeletedSecretNonExisting.json).
fn not_found(name: &str) -> Response {
    kv_error(
        404,
        "SecretNotFound",
        &format!(
            "A secret with (name/id) {name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
        ),
        None,
    )
}

/// The deletion recovery level of a vault's secrets (DeletionRecoveryLevel, data-plane spec
/// 7.4): `Customized…` below the default 90 days of retention (a 7-day vault answers
/// `CustomizedRecoverable+Purgeable`, SecretClientLiveTests/StartRecoverDeletedSecret.json,
/// 2023; a 90-day one `Recoverable+Purgeable`, GetDeletedSecret.json, 2021), without
/// `+Purgeable` under purge protection.
fn recovery_level(days: u64, protected: bool) -> &'static str {
    match (days < 90, protected) {
        (false, false) => "Recoverable+Purgeable",
        (false, true) => "Recoverable",
        (true, false) => "CustomizedRecoverable+Purgeable",
        (true, true) => "CustomizedRecoverable",
    }
}

/// What rendering a secret needs from its vault.
struct Cx {
    /// The vault URI without its trailing `/`.
    uri: String,
    days: u64,
    protected: bool,
}

impl Cx {
    fn attributes(&self, v: &SecretVersion) -> Value {
        let mut a = json!({ "enabled": v.enabled });
        // `nbf` and `exp` as set, between `enabled` and `created` as Azure orders them
        // (SecretClientLiveTests/SetSecretWithExtendedProps.json, 7.3).
        for (k, t) in [("nbf", v.nbf), ("exp", v.exp)] {
            if let Some(t) = t {
                a[k] = json!(t);
            }
        }
        a["created"] = json!(v.created);
        a["updated"] = json!(v.updated);
        a["recoveryLevel"] = json!(recovery_level(self.days, self.protected));
        a["recoverableDays"] = json!(self.days);
        a
    }
    /// A version's bundle without its value (callers add the opened value where it belongs).
    fn bundle(&self, s: &StoredSecret, v: &SecretVersion) -> Value {
        let mut b =
            json!({ "id": format!("{}/secrets/{}/{}", self.uri, s.name, v.version), "attributes": self.attributes(v) });
        if let Some(ct) = &v.content_type {
            b["contentType"] = json!(ct);
        }
        if let Some(t) = &v.tags {
            b["tags"] = t.clone();
        }
        b
    }
    fn item(&self, s: &StoredSecret, v: &SecretVersion) -> Value {
        let mut b = self.bundle(s, v);
        b["id"] = json!(format!("{}/secrets/{}", self.uri, s.name));
        b
    }
    fn deleted(&self, s: &StoredSecret) -> Value {
        let (deleted, purge) = s.deleted.unwrap_or_default();
        let mut b = s.versions.last().map(|v| self.bundle(s, v)).unwrap_or_else(|| json!({}));
        b["recoveryId"] = json!(format!("{}/deletedsecrets/{}", self.uri, s.name));
        b["deletedDate"] = json!(deleted);
        b["scheduledPurgeDate"] = json!(purge);
        b
    }
}

fn set_secret(
    sh: &Shared,
    cx: &Cx,
    vault_key: &str,
    name: &str,
    existing: Option<StoredSecret>,
    body: &Bytes,
) -> Response {
    let name_ok = (1..=127).contains(&name.len()) && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-');
    if !name_ok {
        return kv_error(
            400,
            "BadParameter",
            &format!(
                "The request URI contains an invalid name: {name}. Secret names are 1-127 letters, digits and dashes."
            ),
            None,
        );
    }
    if existing.as_ref().is_some_and(|s| s.deleted.is_some()) {
        return kv_error(
            409,
            "Conflict",
            &format!(
                "Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged."
            ),
            Some("ObjectIsDeletedButRecoverable"),
        );
    }
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return kv_error(400, "BadParameter", "The request body is not valid JSON.", None);
    };
    let Some(value) = req.get("value").and_then(Value::as_str) else {
        return kv_error(400, "BadParameter", "Property 'value' is required and must be a string.", None);
    };
    if value.len() > 25 * 1024 {
        return kv_error(400, "BadParameter", "A secret value is at most 25 KB.", None);
    }
    let now_s = now_ms() / 1000;
    let version = super::shared::guid().replace('-', "");
    let v = SecretVersion {
        version,
        value: seal(&sh.vault_key, value),
        content_type: req.get("contentType").and_then(Value::as_str).map(str::to_string),
        tags: req.get("tags").filter(|t| t.is_object()).cloned(),
        enabled: req.pointer("/attributes/enabled").and_then(Value::as_bool).unwrap_or(true),
        nbf: req.pointer("/attributes/nbf").and_then(Value::as_u64),
        exp: req.pointer("/attributes/exp").and_then(Value::as_u64),
        created: now_s,
        updated: now_s,
    };
    let mut s = existing.unwrap_or(StoredSecret { name: name.to_string(), versions: Vec::new(), deleted: None });
    s.versions.push(v);
    let mut shown = s.versions.last().map(|v| cx.bundle(&s, v)).unwrap_or(Value::Null);
    shown["value"] = json!(value);
    commit_or_500(
        sh,
        vec![Op::PutSecret { key: format!("{vault_key}/{}", name.to_ascii_lowercase()), secret: s }],
        || json_response(200, &shown, &[]),
    )
}

/// `PATCH /secrets/{name}[/{version}]`: tags, content type and `enabled` of a version (the
/// latest without one); the value stays.
fn update_secret(
    sh: &Shared,
    cx: &Cx,
    vault_key: &str,
    mut s: StoredSecret,
    version: Option<&str>,
    body: &Bytes,
) -> Response {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return kv_error(400, "BadParameter", "The request body is not valid JSON.", None);
    };
    let at = match version {
        Some(v) => s.versions.iter().position(|x| x.version.eq_ignore_ascii_case(v)),
        None => s.versions.len().checked_sub(1),
    };
    let Some(at) = at else { return not_found(&format!("{}/{}", s.name, version.unwrap_or_default())) };
    let v = &mut s.versions[at];
    if let Some(ct) = req.get("contentType").and_then(Value::as_str) {
        v.content_type = Some(ct.to_string());
    }
    if let Some(t) = req.get("tags").filter(|t| t.is_object()) {
        v.tags = Some(t.clone());
    }
    if let Some(e) = req.pointer("/attributes/enabled").and_then(Value::as_bool) {
        v.enabled = e;
    }
    if let Some(t) = req.pointer("/attributes/nbf").and_then(Value::as_u64) {
        v.nbf = Some(t);
    }
    if let Some(t) = req.pointer("/attributes/exp").and_then(Value::as_u64) {
        v.exp = Some(t);
    }
    v.updated = now_ms() / 1000;
    let shown = cx.bundle(&s, &s.versions[at]);
    let key = format!("{vault_key}/{}", s.name.to_ascii_lowercase());
    commit_or_500(sh, vec![Op::PutSecret { key, secret: s }], || json_response(200, &shown, &[]))
}

/// Access policies, or RBAC data actions on the vault when `enableRbacAuthorization` is on:
/// the 403 to answer, if the caller may not.
fn refusal(sh: &Shared, vault: &Resource, claims: &Caller, op: SecretOp, name: Option<&str>) -> Option<Response> {
    let vault_name = vault.id.rsplit('/').next().unwrap_or_default();
    let location = vault.body.get("location").and_then(Value::as_str).unwrap_or_default();
    if vault.body.pointer("/properties/enableRbacAuthorization").and_then(Value::as_bool) == Some(true) {
        let scope = match name {
            Some(n) => format!("{}/secrets/{n}", vault.id),
            None => vault.id.clone(),
        };
        let grants = super::rbac::grants(&sh.store().state, now_ms());
        if super::rbac::allowed(&grants, &claims.object_id, &scope, &op.data_action(), true) {
            return None;
        }
        let msg = format!(
            "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid={};oid={};iss={}\r\nAction: '{}'\r\nResource: '{}'\r\nAssignment: (not found)\r\nVault: {vault_name};location={location}\r\n",
            claims.client_id,
            claims.object_id,
            claims.issuer,
            op.data_action(),
            scope.to_ascii_lowercase()
        );
        return Some(kv_error(403, "Forbidden", &msg, Some("ForbiddenByRbac")));
    }
    let allowed = vault
        .body
        .pointer("/properties/accessPolicies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| {
            p.get("objectId").and_then(Value::as_str).is_some_and(|o| o.eq_ignore_ascii_case(&claims.object_id))
                && p.get("tenantId").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case(&sh.info.tenant_id))
        })
        .flat_map(|p| p.pointer("/permissions/secrets").and_then(Value::as_array).cloned().unwrap_or_default())
        .filter_map(|x| x.as_str().map(str::to_ascii_lowercase))
        .any(|x| x == op.permission() || x == "all");
    if allowed {
        return None;
    }
    let msg = format!(
        "The user, group or application 'appid={};oid={};iss={}' does not have secrets {} permission on key vault '{vault_name};location={location}'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
        claims.client_id,
        claims.object_id,
        claims.issuer,
        op.permission()
    );
    Some(kv_error(403, "Forbidden", &msg, Some("AccessDenied")))
}
