//! Azure Data Lake Storage Gen1 in the local cloud (arm-contract §7): the
//! `Microsoft.DataLakeStore/accounts` resource type and its WebHDFS data plane.
//!
//! Endpoint choice: each account gets its own HTTPS port on 127.0.0.1, and its
//! `properties.endpoint` is `127.0.0.1:PORT` — the same shape as Azure's
//! `{account}.azuredatalakestore.net`, so clients build `https://{endpoint}/webhdfs/v1/{path}`
//! exactly as the tutorial does, with no account segment in the path. The port is kept in
//! the stored account (`_idlab.port`, never shown) and rebound on the next start; a port that
//! is taken by then gets a new one and the account's `endpoint` is updated.
//!
//! Data plane: `LISTSTATUS`, `GETFILESTATUS`, `MKDIRS`, `CREATE` (307 to `write=true`, then
//! 201), `OPEN` (307 to `read=true`, then 200), `APPEND` (307 to `append=true`), `DELETE`, and
//! the ACL operations (`SETACL`, `MODIFYACLENTRIES`, `REMOVEACLENTRIES`, `REMOVEACL`,
//! `REMOVEDEFAULTACL`, `GETACLSTATUS`). Tokens must be for `https://datalake.azure.net/`
//! exactly. Access is decided by POSIX ACLs ([`super::acl`]) for the caller's object id:
//! execute on every ancestor directory, then the operation's own bits; ACL changes are for
//! the owner. Owners of the account through RBAC (the `Owner` role at or above it) are
//! super-users, as in Azure; the principal that created the account owns `/`. Errors are
//! WebHDFS `RemoteException` bodies. Requests are logged without their query.

use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::acl::{self, Entry, R, W, X};
use super::auth::Refusal;
use super::http::{ArmError, header, json_response, query_get, query_pairs};
use super::paths;
use super::pipeline::{self, Bearer, Errors, Ids, Note, Plane, RequestId};
use super::shared::{Shared, guid, now_ms};
use super::store::{DataPath, Op, Resource, State as CloudState};
use crate::arm::id::is_scope_prefix;

/// The only audience the Gen1 data plane accepts (arm-contract §9: the trailing slash matters).
pub const AUDIENCE: &str = "https://datalake.azure.net/";

/// The ARM type.
pub const TYPE: &str = super::table::DATA_LAKE_STORES;

/// WebHDFS api-versions accepted in the (optional) `api-version` query parameter.
const DATA_VERSIONS: &[&str] = &["2016-11-01", "2015-10-01-preview"];

/// Block size WebHDFS reports for files.
const BLOCK_SIZE: u64 = 268_435_456;

/// The store key of a path.
fn key(account: &str, path: &str) -> String {
    format!("{account}:{path}")
}

/// The op that removes every path of an account (account names have no `:` or `/`).
pub fn delete_paths(account: &str) -> Op {
    Op::DeleteDataPaths { prefix: format!("{}:", account.to_ascii_lowercase()) }
}

/// The Data Lake Store account of this name, in any group (names are global).
pub fn account_named<'a>(st: &'a CloudState, name: &str) -> Option<&'a Resource> {
    st.resources
        .values()
        .find(|r| r.kind == TYPE && r.id.rsplit('/').next().is_some_and(|n| n.eq_ignore_ascii_case(name)))
}

fn name_ok(name: &str) -> bool {
    (3..=24).contains(&name.len()) && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// Expand `firewallRules` / `trustedIdProviders` request items into sub-resources; an item
/// that is not an object is a 400.
fn sub_resources(account_id: &str, items: Option<&Value>, child: &str) -> Result<Value, ArmError> {
    let list = items.and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out = Vec::with_capacity(list.len());
    for mut item in list {
        let name = item.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
        let Some(obj) = item.as_object_mut() else {
            return Err(ArmError::new(
                400,
                "InvalidRequestContent",
                format!("Every item of properties.{child} must be an object."),
            ));
        };
        obj.insert("id".into(), json!(format!("{account_id}/{child}/{name}")));
        obj.insert("type".into(), json!(format!("{TYPE}/{child}")));
        out.push(item);
    }
    Ok(Value::Array(out))
}

/// Fill a Gen1 account's server fields on PUT. A new account gets a listener (returned, to
/// be served once the write is committed), a root directory owned by `caller`, and — when
/// asked — a system-assigned identity.
///
/// # Errors
/// A bad name, a name taken by another account, a bad identity type, or no free port.
#[allow(clippy::too_many_arguments)]
pub fn prepare_account(
    tenant: &str,
    st: &CloudState,
    id: &str,
    existing: Option<&Resource>,
    body: &mut Value,
    extra: &mut Vec<Op>,
    caller: &str,
    now: u64,
) -> Result<Option<std::net::TcpListener>, ArmError> {
    let name = id.rsplit('/').next().unwrap_or_default().to_string();
    if !name_ok(&name) {
        return Err(ArmError::new(
            400,
            "InvalidResourceName",
            format!(
                "The account name '{name}' is invalid: Data Lake Store account names are 3 to 24 characters of lower-case letters and digits."
            ),
        ));
    }
    if existing.is_none() && account_named(st, &name).is_some() {
        return Err(ArmError::new(
            409,
            "Conflict",
            format!("The Data Lake Store account name '{name}' is already taken."),
        ));
    }
    let old = existing.map(|r| &r.body);
    let old_prop = |k: &str| old.and_then(|b| b.pointer(&format!("/properties/{k}"))).cloned();
    let time = |ms: u64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_default()
    };
    // The identity: SystemAssigned only, as the RP offers.
    match body.pointer("/identity/type").and_then(Value::as_str) {
        None => {
            if let Some(o) = body.as_object_mut() {
                o.remove("identity");
            }
        }
        Some(t) if t.eq_ignore_ascii_case("SystemAssigned") => {
            let old_pid = old.and_then(|b| b.pointer("/identity/principalId")).and_then(Value::as_str);
            let pid = super::principals::system_principal(st, old_pid, id, now, extra);
            body["identity"] = json!({"type": "SystemAssigned", "principalId": pid, "tenantId": tenant});
        }
        Some(t) => {
            return Err(ArmError::new(
                400,
                "InvalidRequestContent",
                format!("The identity type '{t}' is not supported: use 'SystemAssigned'."),
            ));
        }
    }
    let (port, listener) = match old.and_then(|b| b.pointer("/_idlab/port")).and_then(Value::as_u64) {
        Some(p) => (p as u16, None),
        None => {
            let l = super::shared::bind_loopback(0)
                .map_err(|e| ArmError::new(500, "InternalServerError", e.to_string()))?;
            let p = l.local_addr().map(|a| a.port()).unwrap_or(0);
            (p, Some(l))
        }
    };
    let p = body
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| ArmError::new(400, "InvalidRequestContent", "properties must be an object"))?;
    let tier = p.get("newTier").cloned().unwrap_or(json!("Consumption"));
    p.insert("newTier".into(), tier.clone());
    p.insert("currentTier".into(), tier);
    p.insert("accountId".into(), old_prop("accountId").unwrap_or_else(|| json!(guid())));
    p.insert("creationTime".into(), old_prop("creationTime").unwrap_or_else(|| json!(time(now))));
    p.insert("lastModifiedTime".into(), json!(time(now)));
    p.entry("encryptionState").or_insert(json!("Enabled"));
    p.entry("encryptionConfig").or_insert(json!({"type": "ServiceManaged"}));
    p.insert("encryptionProvisioningState".into(), json!("Succeeded"));
    p.entry("firewallState").or_insert(json!("Disabled"));
    p.entry("firewallAllowAzureIps").or_insert(json!("Disabled"));
    p.entry("trustedIdProviderState").or_insert(json!("Disabled"));
    let rules = sub_resources(id, p.get("firewallRules"), "firewallRules")?;
    p.insert("firewallRules".into(), rules);
    let providers = sub_resources(id, p.get("trustedIdProviders"), "trustedIdProviders")?;
    p.insert("trustedIdProviders".into(), providers);
    let vnets = sub_resources(id, p.get("virtualNetworkRules"), "virtualNetworkRules")?;
    p.insert("virtualNetworkRules".into(), vnets);
    p.insert("endpoint".into(), json!(format!("127.0.0.1:{port}")));
    p.insert("state".into(), json!("Active"));
    let default_group = p.get("defaultGroup").and_then(Value::as_str).unwrap_or(caller).to_string();
    body["_idlab"] = json!({ "port": port });
    if existing.is_none() {
        let lower = name.to_ascii_lowercase();
        extra.push(delete_paths(&lower));
        extra.push(Op::PutDataPath {
            key: key(&lower, "/"),
            path: DataPath {
                dir: true,
                owner: caller.to_string(),
                group: default_group,
                acl: acl::to_texts(&acl::from_mode(0o770)),
                data: String::new(),
                pending: String::new(),
                modified_ms: now,
                accessed_ms: now,
            },
        });
    }
    Ok(listener)
}

/// Serve one account's data plane on an already bound listener.
pub fn serve(sh: &Arc<Shared>, account: &str, listener: std::net::TcpListener) {
    let account = account.to_ascii_lowercase();
    let (tx, rx) = tokio::sync::watch::channel(false);
    if let Some(old) = sh.datalake_running.lock().unwrap_or_else(|p| p.into_inner()).insert(account.clone(), tx) {
        let _ = old.send(true);
    }
    let router = app(sh, &account);
    let tls = sh.tls.clone();
    let serving = sh.serving.clone();
    sh.runtime.spawn(async move {
        let _ = listener.set_nonblocking(true);
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
        super::tls::serve_tls(listener, tls, router, rx, serving).await;
    });
}

/// An account's WebHDFS plane behind the pipeline: on its own port, and in the proxy's
/// tunnels to `{store}.azuredatalakestore.net`.
pub fn app(sh: &Arc<Shared>, account: &str) -> axum::Router {
    let account = account.to_ascii_lowercase();
    let handler = axum::Router::new().fallback(entry).with_state((sh.clone(), account.clone()));
    pipeline::layer(sh, plane(), handler).layer(Extension(Account(account)))
}

/// Stop the listener of the account an op deletes the paths of (an account's delete).
pub fn stop_for(sh: &Shared, op: &Op) {
    if let Op::DeleteDataPaths { prefix } = op
        && let Some(account) = prefix.strip_suffix(':')
        && !account.contains('/')
        && let Some(tx) = sh.datalake_running.lock().unwrap_or_else(|p| p.into_inner()).remove(account)
    {
        let _ = tx.send(true);
    }
}

/// Bind and serve every account recorded in the state (a taken port gets a new one, and
/// the account's endpoint is updated).
///
/// # Errors
/// A message when no port can be bound or the change cannot be recorded.
pub fn start_all(sh: &Arc<Shared>) -> Result<(), String> {
    let accounts: Vec<Resource> = sh.store().state.resources.values().filter(|r| r.kind == TYPE).cloned().collect();
    for mut r in accounts {
        let want = r.body.pointer("/_idlab/port").and_then(Value::as_u64).unwrap_or(0) as u16;
        let listener = super::shared::bind_loopback(want).map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        if port != want {
            r.body["_idlab"]["port"] = json!(port);
            r.body["properties"]["endpoint"] = json!(format!("127.0.0.1:{port}"));
            sh.store().append(vec![Op::PutResource { resource: r.clone() }]).map_err(|e| e.to_string())?;
        }
        let name = r.id.rsplit('/').next().unwrap_or_default().to_string();
        serve(sh, &name, listener);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// WebHDFS

/// A refusal: status, `RemoteException` exception name and message.
#[derive(Debug)]
struct Fail {
    status: u16,
    exception: &'static str,
    message: String,
}

fn fail(status: u16, exception: &'static str, message: impl Into<String>) -> Fail {
    Fail { status, exception, message: message.into() }
}

fn java_class(exception: &str) -> &'static str {
    match exception {
        "FileNotFoundException" => "java.io.FileNotFoundException",
        "AccessControlException" => "org.apache.hadoop.security.AccessControlException",
        "SecurityException" => "java.lang.SecurityException",
        "IllegalArgumentException" => "java.lang.IllegalArgumentException",
        "FileAlreadyExistsException" => "org.apache.hadoop.fs.FileAlreadyExistsException",
        "BadOffsetException" => "org.apache.hadoop.fs.adl.BadOffsetException",
        "IOException" => "java.io.IOException",
        _ => "java.lang.RuntimeException",
    }
}

fn remote(f: &Fail, rid: &str, sh: &Shared) -> Response {
    let body = json!({"RemoteException": {
        "exception": f.exception,
        "message": format!("{} [{rid}]", f.message),
        "javaClassName": java_class(f.exception),
    }});
    let mut h: Vec<(&str, String)> = vec![("x-ms-request-id", rid.to_string())];
    if f.status == 401 {
        h.push((
            "www-authenticate",
            format!(
                "Bearer authorization_uri=\"{}/{}/oauth2/authorize\", resource_id=\"{AUDIENCE}\"",
                sh.base_url, sh.info.tenant_id
            ),
        ));
    }
    json_response(f.status, &body, &h)
}

/// The account a WebHDFS server serves.
#[derive(Debug, Clone)]
struct Account(String);

/// The WebHDFS plane: `RemoteException` errors, tokens for the Gen1 audience only; RBAC (the
/// account's owners are superusers) then POSIX ACLs in the handler.
fn plane() -> Plane {
    Plane {
        name: "webhdfs",
        errors: Errors::RemoteException,
        ids: Ids::Handler,
        any_case_scheme: true,
        audiences: |_, aud| aud == AUDIENCE,
        admit,
        authorize: pipeline::pass,
        log_path: pipeline::request_path,
        body_limit: |l| l.webhdfs_body,
        too_large: |limit| {
            let rid = guid();
            let body = json!({"RemoteException": {
                "exception": "IOException",
                "message": format!("The request body is larger than the limit of {limit} bytes. [{rid}]"),
                "javaClassName": java_class("IOException"),
            }});
            json_response(413, &body, &[("x-ms-request-id", rid)])
        },
    }
}

/// What an authenticated request addresses.
#[derive(Debug, Clone)]
struct Addressed {
    account_id: String,
    path: String,
    op: String,
    caller: String,
}

/// The head checks, in order: the account, the path, the api-version, the operation and its
/// method, then the bearer token.
fn admit(sh: &Arc<Shared>, parts: &mut Parts, bearer: &Bearer, note: &mut Note) -> Result<(), Box<Response>> {
    note.write = matches!(parts.method, Method::PUT | Method::POST | Method::DELETE);
    let rid = parts.extensions.get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let account = parts.extensions.get::<Account>().map(|a| a.0.clone()).unwrap_or_default();
    let addressed = head(sh, &account, parts, bearer).map_err(|f| Box::new(remote(&f, &rid, sh)))?;
    note.principal = Some(addressed.caller.clone());
    parts.extensions.insert(addressed);
    Ok(())
}

/// The handler, behind the pipeline (the body is read after authentication).
async fn entry(
    State((sh, account)): State<(Arc<Shared>, String)>,
    Extension(a): Extension<Addressed>,
    Extension(RequestId(rid)): Extension<RequestId>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&sh, &account, a, &uri, &headers, body, &rid).unwrap_or_else(|f| remote(&f, &rid, &sh))
}

/// The pipeline's bearer outcome for the Gen1 audience: the caller's object id, or why not.
fn authenticate(bearer: &Bearer) -> Result<String, Fail> {
    let denied = |m: &str| fail(401, "SecurityException", m);
    let checked = match bearer {
        Bearer::Absent => return Err(denied("The 'Authorization' header is missing.")),
        Bearer::OtherScheme => return Err(denied("The 'Authorization' header is not a bearer token.")),
        Bearer::Checked(checked) => checked.clone(),
    };
    match checked {
        Ok(caller) => Ok(caller.object_id),
        Err(Refusal::Expired { .. }) => Err(denied("The access token is expired.")),
        Err(Refusal::Invalid | Refusal::NotYetValid { .. }) => Err(denied("The access token is invalid.")),
        Err(Refusal::WrongTenant { .. }) => Err(denied("The access token is from another tenant.")),
        Err(Refusal::WrongAudience { aud }) => Err(denied(&format!(
            "The access token was issued for the audience '{aud}'; this service accepts '{AUDIENCE}' only."
        ))),
        Err(Refusal::UnknownPrincipal) => Err(denied("The access token's principal does not exist.")),
    }
}

/// The absolute, normalised path after `/webhdfs/v1`.
fn data_path(uri_path: &str) -> Result<String, Fail> {
    let rest =
        uri_path.strip_prefix("/webhdfs/v1").filter(|r| r.is_empty() || r.starts_with('/')).ok_or_else(|| {
            fail(400, "IllegalArgumentException", format!("Invalid path '{uri_path}': expected /webhdfs/v1/{{path}}."))
        })?;
    let path = paths::normalise(rest, true)
        .map_err(|seg| fail(400, "IllegalArgumentException", format!("Invalid path segment '{seg}'.")))?;
    match path.split('/').find(|seg| seg.contains(':')) {
        Some(seg) => Err(fail(400, "IllegalArgumentException", format!("Invalid path segment '{seg}'."))),
        None => Ok(path),
    }
}

/// The directories above `path`, root first (none for `/`).
pub(super) fn ancestors(path: &str) -> Vec<String> {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    (0..parts.len()).map(|i| format!("/{}", parts[..i].join("/"))).collect()
}

/// A new child of `parent` owned by `owner`, with the parent's owning group and the ACL
/// inherited from the parent's default ACL (else `mode` less the umask `007`).
pub(super) fn new_child(parent: &DataPath, owner: &str, dir: bool, mode: u16, data: String) -> DataPath {
    let now = now_ms();
    DataPath {
        dir,
        owner: owner.to_string(),
        group: parent.group.clone(),
        acl: acl::to_texts(&acl::inherit(&acl::from_texts(&parent.acl), dir, mode)),
        data,
        pending: String::new(),
        modified_ms: now,
        accessed_ms: now,
    }
}

/// One request's context.
struct Cx<'a> {
    sh: &'a Shared,
    account: &'a str,
    caller: String,
    superuser: bool,
    op: String,
}

impl Cx<'_> {
    fn get(&self, path: &str) -> Option<DataPath> {
        self.sh.store().state.data_paths.get(&key(self.account, path)).cloned()
    }

    fn denied(&self, path: &str) -> Fail {
        fail(
            403,
            "AccessControlException",
            format!(
                "{} failed with error: Forbidden. ACL verification failed on '{path}'. Either the resource does not exist or the user is not authorized to perform the requested operation.",
                self.op
            ),
        )
    }

    fn not_found(&self, path: &str) -> Fail {
        fail(404, "FileNotFoundException", format!("{} failed: file or folder does not exist: {path}", self.op))
    }

    /// Require `want` bits on `entry` at `path`.
    fn check(&self, entry: &DataPath, path: &str, want: u8) -> Result<(), Fail> {
        if self.superuser || acl::allows(&acl::from_texts(&entry.acl), &entry.owner, &self.caller, want) {
            Ok(())
        } else {
            Err(self.denied(path))
        }
    }

    /// Execute on every ancestor directory of `path` (which must all exist).
    fn traverse(&self, path: &str) -> Result<(), Fail> {
        for a in ancestors(path) {
            let e = self.get(&a).ok_or_else(|| self.not_found(path))?;
            if !e.dir {
                return Err(self.not_found(path));
            }
            self.check(&e, &a, X)?;
        }
        Ok(())
    }

    /// The target, after the traverse check.
    fn existing(&self, path: &str) -> Result<DataPath, Fail> {
        self.traverse(path)?;
        self.get(path).ok_or_else(|| self.not_found(path))
    }

    /// A new child of `parent`, owned by the caller.
    fn child(&self, parent: &DataPath, dir: bool, mode: u16, data: String) -> DataPath {
        new_child(parent, &self.caller, dir, mode, data)
    }

    /// The parent directory of `path`, creating missing directories above it (write and
    /// execute are needed on the deepest existing one, execute on those above it).
    fn parent(&self, path: &str, mode: u16, ops: &mut Vec<Op>) -> Result<DataPath, Fail> {
        let chain = ancestors(path);
        let mut parent: Option<DataPath> = None;
        for (i, a) in chain.iter().enumerate() {
            match self.get(a) {
                Some(e) if !e.dir => {
                    return Err(fail(403, "FileAlreadyExistsException", format!("{a} exists and is not a directory.")));
                }
                Some(e) => {
                    let next_exists = chain.get(i + 1).is_some_and(|n| self.get(n).is_some());
                    self.check(&e, a, if next_exists { X } else { W | X })?;
                    parent = Some(e);
                }
                None => {
                    let p = parent.as_ref().ok_or_else(|| self.not_found(path))?;
                    let made = self.child(p, true, mode, String::new());
                    ops.push(Op::PutDataPath { key: key(self.account, a), path: made.clone() });
                    parent = Some(made);
                }
            }
        }
        parent.ok_or_else(|| fail(403, "IOException", "The root directory has no parent."))
    }

    fn write(&self, ops: Vec<Op>) -> Result<(), Fail> {
        self.sh.commit(ops).map_err(|e| fail(500, "RuntimeException", e.to_string()))
    }

    fn children(&self, path: &str) -> Vec<(String, DataPath)> {
        let prefix = if path == "/" { key(self.account, "/") } else { key(self.account, &format!("{path}/")) };
        self.sh
            .store()
            .state
            .data_paths
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| !k[prefix.len()..].is_empty() && !k[prefix.len()..].contains('/'))
            .map(|(k, v)| (k[prefix.len()..].to_string(), v.clone()))
            .collect()
    }

    fn status(&self, path: &str, e: &DataPath, suffix: &str) -> Value {
        let entries = acl::from_texts(&e.acl);
        let len = if e.dir { 0 } else { STANDARD.decode(&e.data).map_or(0, |d| d.len()) };
        json!({
            "length": len,
            "pathSuffix": suffix,
            "type": if e.dir { "DIRECTORY" } else { "FILE" },
            "blockSize": if e.dir { 0 } else { BLOCK_SIZE },
            "accessTime": e.accessed_ms,
            "modificationTime": e.modified_ms,
            "replication": if e.dir { 0 } else { 1 },
            "permission": acl::mode_text(&entries),
            "owner": e.owner,
            "group": e.group,
            "aclBit": acl::extended(&entries),
            "childrenNum": if e.dir { self.children(path).len() } else { 0 },
            "msExpirationTime": 0,
        })
    }
}

fn boolean(v: bool, rid: &str) -> Response {
    json_response(200, &json!({ "boolean": v }), &[("x-ms-request-id", rid.to_string())])
}

fn done(status: u16, rid: &str, extra: &[(&str, String)]) -> Response {
    let mut h: Vec<(&str, String)> = vec![("x-ms-request-id", rid.to_string()), ("content-length", "0".into())];
    h.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    super::http::empty(status, &h)
}

fn flag(q: &[(String, String)], name: &str) -> bool {
    query_get(q, name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn number(q: &[(String, String)], name: &str) -> Result<Option<u64>, Fail> {
    match query_get(q, name) {
        None | Some("") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            fail(400, "IllegalArgumentException", format!("Invalid value for webhdfs parameter \"{name}\": {v}"))
        }),
    }
}

/// The `permission` parameter (octal), or the default.
fn permission(q: &[(String, String)], default: u16) -> Result<u16, Fail> {
    match query_get(q, "permission") {
        None | Some("") => Ok(default),
        Some(v) => u16::from_str_radix(v, 8).ok().filter(|m| *m <= 0o1777).map(|m| m & 0o777).ok_or_else(|| {
            fail(400, "IllegalArgumentException", format!("Invalid value for webhdfs parameter \"permission\": {v}"))
        }),
    }
}

/// The same URL with `extra` appended to its query (the 307 of CREATE, OPEN and APPEND).
fn redirect(uri: &Uri, headers: &HeaderMap, extra: &str, rid: &str) -> Response {
    let host = uri.authority().map(|a| a.to_string()).or_else(|| header(headers, "host").map(str::to_string));
    let query = uri.query().map_or_else(|| extra.to_string(), |q| format!("{q}&{extra}"));
    let location = format!("https://{}{}?{query}", host.unwrap_or_default(), uri.path());
    done(307, rid, &[("location", location)])
}

#[allow(clippy::too_many_arguments)]
/// The head checks of [`admit`], in order.
fn head(sh: &Shared, account: &str, parts: &Parts, bearer: &Bearer) -> Result<Addressed, Fail> {
    let account_id = account_named(&sh.store().state, account)
        .map(|r| r.id.clone())
        .ok_or_else(|| fail(404, "FileNotFoundException", format!("The account '{account}' does not exist.")))?;
    let path = data_path(parts.uri.path())?;
    let q = query_pairs(parts.uri.query());
    if let Some(v) = query_get(&q, "api-version")
        && !DATA_VERSIONS.contains(&v)
    {
        return Err(fail(
            400,
            "IllegalArgumentException",
            format!("The api-version '{v}' is not supported; use {}.", DATA_VERSIONS.join(" or ")),
        ));
    }
    let op = query_get(&q, "op").map(str::to_ascii_uppercase).unwrap_or_default();
    let want_method = match op.as_str() {
        "LISTSTATUS" | "GETFILESTATUS" | "OPEN" | "GETACLSTATUS" => Method::GET,
        "MKDIRS" | "CREATE" | "SETACL" | "MODIFYACLENTRIES" | "REMOVEACLENTRIES" | "REMOVEACL" | "REMOVEDEFAULTACL" => {
            Method::PUT
        }
        "APPEND" => Method::POST,
        "DELETE" => Method::DELETE,
        "" => return Err(fail(400, "IllegalArgumentException", "The webhdfs parameter \"op\" is required.")),
        other => {
            return Err(fail(
                400,
                "IllegalArgumentException",
                format!("Invalid value for webhdfs parameter \"op\": No enum constant {other}"),
            ));
        }
    };
    if parts.method != want_method {
        return Err(fail(
            400,
            "IllegalArgumentException",
            format!("Invalid HTTP method {} for operation {op}: use {want_method}.", parts.method),
        ));
    }
    let caller = authenticate(bearer)?;
    Ok(Addressed { account_id, path, op, caller })
}

fn handle(
    sh: &Shared,
    account: &str,
    a: Addressed,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    rid: &str,
) -> Result<Response, Fail> {
    let Addressed { account_id, path, op, caller } = a;
    let q = query_pairs(uri.query());
    let owner_guid = crate::roles::by_name("Owner").map(|r| r.guid).unwrap_or_default();
    let superuser = super::rbac::grants(&sh.store().state, now_ms()).iter().any(|g| {
        g.principal_id.eq_ignore_ascii_case(&caller)
            && g.role_guid.eq_ignore_ascii_case(owner_guid)
            && is_scope_prefix(&g.scope, &account_id)
    });
    let cx = Cx { sh, account, caller, superuser, op: op.clone() };
    match op.as_str() {
        "GETFILESTATUS" => {
            let e = cx.existing(&path)?;
            let s = cx.status(&path, &e, "");
            Ok(json_response(200, &json!({ "FileStatus": s }), &[("x-ms-request-id", rid.to_string())]))
        }
        "LISTSTATUS" => list(&cx, &path, &q, rid),
        "GETACLSTATUS" => {
            let e = cx.existing(&path)?;
            let entries = acl::from_texts(&e.acl);
            Ok(json_response(
                200,
                &json!({"AclStatus": {
                    "entries": acl::status_entries(&entries),
                    "owner": e.owner,
                    "group": e.group,
                    "permission": acl::mode_text(&entries),
                    "stickyBit": false,
                }}),
                &[("x-ms-request-id", rid.to_string())],
            ))
        }
        "MKDIRS" => {
            if let Some(e) = cx.get(&path) {
                cx.traverse(&path)?;
                return if e.dir {
                    Ok(boolean(true, rid))
                } else {
                    Err(fail(403, "FileAlreadyExistsException", format!("{path} already exists as a file.")))
                };
            }
            let mode = permission(&q, 0o777)?;
            let mut ops = Vec::new();
            let parent = cx.parent(&path, mode, &mut ops)?;
            let made = cx.child(&parent, true, mode, String::new());
            ops.push(Op::PutDataPath { key: key(account, &path), path: made });
            cx.write(ops)?;
            Ok(boolean(true, rid))
        }
        "CREATE" if !flag(&q, "write") => {
            cx.traverse(&path).or_else(|f| if f.status == 404 { Ok(()) } else { Err(f) })?;
            Ok(redirect(uri, headers, "write=true", rid))
        }
        "CREATE" => {
            let mode = permission(&q, 0o666)?;
            let mut ops = Vec::new();
            let parent = cx.parent(&path, 0o777, &mut ops)?;
            let data = STANDARD.encode(&body);
            let file = match cx.get(&path) {
                Some(e) if e.dir => {
                    return Err(fail(
                        403,
                        "FileAlreadyExistsException",
                        format!("{path} already exists as a directory."),
                    ));
                }
                Some(_) if !flag(&q, "overwrite") => {
                    return Err(fail(403, "FileAlreadyExistsException", format!("{path} already exists.")));
                }
                Some(mut e) => {
                    e.data = data;
                    e.modified_ms = now_ms();
                    e
                }
                None => cx.child(&parent, false, mode, data),
            };
            ops.push(Op::PutDataPath { key: key(account, &path), path: file });
            cx.write(ops)?;
            let location = format!(
                "https://{}{}",
                uri.authority()
                    .map(|a| a.to_string())
                    .or_else(|| header(headers, "host").map(str::to_string))
                    .unwrap_or_default(),
                uri.path()
            );
            Ok(done(201, rid, &[("location", location)]))
        }
        "OPEN" | "APPEND" if !flag(&q, if op == "OPEN" { "read" } else { "append" }) => {
            cx.existing(&path)?;
            Ok(redirect(uri, headers, if op == "OPEN" { "read=true" } else { "append=true" }, rid))
        }
        "OPEN" => {
            let e = cx.existing(&path)?;
            if e.dir {
                return Err(fail(404, "FileNotFoundException", format!("OPEN failed: {path} is a directory.")));
            }
            cx.check(&e, &path, R)?;
            let data = STANDARD.decode(&e.data).unwrap_or_default();
            let offset = number(&q, "offset")?.unwrap_or(0) as usize;
            if offset > data.len() {
                return Err(fail(
                    400,
                    "BadOffsetException",
                    format!("OPEN failed: offset {offset} is past the end of the file ({} bytes).", data.len()),
                ));
            }
            let end = number(&q, "length")?.map_or(data.len(), |l| {
                offset.saturating_add(usize::try_from(l).unwrap_or(usize::MAX)).min(data.len())
            });
            let mut r = Response::new(Body::from(data[offset..end].to_vec()));
            super::http::add_headers(
                r.headers_mut(),
                &[("content-type", "application/octet-stream".into()), ("x-ms-request-id", rid.to_string())],
            );
            Ok(r)
        }
        "APPEND" => {
            let mut e = cx.existing(&path)?;
            if e.dir {
                return Err(fail(404, "FileNotFoundException", format!("APPEND failed: {path} is a directory.")));
            }
            cx.check(&e, &path, W)?;
            let mut data = STANDARD.decode(&e.data).unwrap_or_default();
            if let Some(off) = number(&q, "offset")?
                && off as usize != data.len()
            {
                return Err(fail(
                    400,
                    "BadOffsetException",
                    format!("APPEND failed: offset {off} is not the end of the file ({} bytes).", data.len()),
                ));
            }
            data.extend_from_slice(&body);
            e.data = STANDARD.encode(&data);
            e.modified_ms = now_ms();
            cx.write(vec![Op::PutDataPath { key: key(account, &path), path: e }])?;
            Ok(done(200, rid, &[]))
        }
        "DELETE" => {
            if path == "/" {
                return Err(fail(403, "IOException", "DELETE failed: the root directory cannot be deleted."));
            }
            cx.traverse(&path)?;
            let Some(e) = cx.get(&path) else { return Ok(boolean(false, rid)) };
            let parent_path = ancestors(&path).pop().unwrap_or_else(|| "/".into());
            let parent = cx.get(&parent_path).ok_or_else(|| cx.not_found(&path))?;
            cx.check(&parent, &parent_path, W | X)?;
            if e.dir && !flag(&q, "recursive") && !cx.children(&path).is_empty() {
                return Err(fail(403, "IOException", format!("DELETE failed: {path} is a non-empty directory.")));
            }
            cx.write(vec![
                Op::DeleteDataPaths { prefix: key(account, &format!("{path}/")) },
                Op::DeleteDataPath { key: key(account, &path) },
            ])?;
            Ok(boolean(true, rid))
        }
        _ => change_acl(&cx, &path, &op, &q, rid),
    }
}

fn list(cx: &Cx<'_>, path: &str, q: &[(String, String)], rid: &str) -> Result<Response, Fail> {
    let e = cx.existing(path)?;
    let statuses: Vec<Value> = if e.dir {
        cx.check(&e, path, R | X)?;
        let size = number(q, "listSize")?.map(|n| n as usize);
        let after = query_get(q, "listAfter").filter(|s| !s.is_empty());
        let before = query_get(q, "listBefore").filter(|s| !s.is_empty());
        cx.children(path)
            .into_iter()
            .filter(|(n, _)| after.is_none_or(|a| n.as_str() > a) && before.is_none_or(|b| n.as_str() < b))
            .take(size.unwrap_or(usize::MAX))
            .map(|(n, c)| {
                let child = if path == "/" { format!("/{n}") } else { format!("{path}/{n}") };
                cx.status(&child, &c, &n)
            })
            .collect()
    } else {
        vec![cx.status(path, &e, "")]
    };
    Ok(json_response(
        200,
        &json!({ "FileStatuses": { "FileStatus": statuses } }),
        &[("x-ms-request-id", rid.to_string())],
    ))
}

/// `SETACL`, `MODIFYACLENTRIES`, `REMOVEACLENTRIES`, `REMOVEACL`, `REMOVEDEFAULTACL`: for
/// the owner (or a super-user) only.
fn change_acl(cx: &Cx<'_>, path: &str, op: &str, q: &[(String, String)], rid: &str) -> Result<Response, Fail> {
    let mut e = cx.existing(path)?;
    if !cx.superuser && !e.owner.eq_ignore_ascii_case(&cx.caller) {
        return Err(fail(
            403,
            "AccessControlException",
            format!(
                "{op} failed with error: Forbidden. Only the owner of '{path}' or a super-user can change its ACL."
            ),
        ));
    }
    let spec = |perms: bool| -> Result<Vec<Entry>, Fail> {
        let text = query_get(q, "aclspec").filter(|s| !s.is_empty()).ok_or_else(|| {
            fail(400, "IllegalArgumentException", format!("{op} needs the webhdfs parameter \"aclspec\"."))
        })?;
        acl::parse_spec(text, perms).map_err(|m| fail(400, "IllegalArgumentException", m))
    };
    let current = acl::from_texts(&e.acl);
    let bad = |m: String| fail(400, "IllegalArgumentException", m);
    let next = match op {
        "SETACL" => acl::set(&current, &spec(true)?, e.dir).map_err(bad)?,
        "MODIFYACLENTRIES" => acl::modify(&current, &spec(true)?, e.dir).map_err(bad)?,
        "REMOVEACLENTRIES" => acl::remove_entries(&current, &spec(false)?, e.dir).map_err(bad)?,
        "REMOVEACL" => acl::remove_all(&current),
        _ => acl::remove_default(&current),
    };
    e.acl = acl::to_texts(&next);
    cx.write(vec![Op::PutDataPath { key: key(cx.account, path), path: e }])?;
    Ok(done(200, rid, &[]))
}
