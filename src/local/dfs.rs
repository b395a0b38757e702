//! The `dfs` data plane of the local cloud: Azure Data Lake Storage Gen2 on storage accounts
//! with `isHnsEnabled: true` (arm-contract §5, "Gen2").
//!
//! Endpoint choice: one HTTPS port for every account, path-style like the blob plane
//! (`https://127.0.0.1:PORT/{account}/{filesystem}/{path}`), published as the account's
//! `primaryEndpoints.dfs` (`https://127.0.0.1:PORT/{account}/`). A file system is a blob
//! container (created and deleted through Resource Manager). The port is recorded in the
//! state (`dfs`) and rebound on the next start.
//!
//! Operations: `PUT ?resource=directory|file` (missing parents are created), `PATCH
//! ?action=append&position=N` and `?action=flush&position=N`, `PATCH
//! ?action=setAccessControl` (`x-ms-acl` replaces the whole ACL; `x-ms-permissions`,
//! `x-ms-owner`, `x-ms-group`), `PATCH ?action=setAccessControlRecursive&mode=set|modify|remove`,
//! `HEAD ?action=getAccessControl`, `HEAD` (properties), `GET` a file (ranges → 206), `GET
//! /{filesystem}?resource=filesystem&recursive=…&directory=…` (JSON `{"paths":[…]}`) and
//! `DELETE` (`recursive`). Every request needs `x-ms-version` and a bearer token for the
//! storage audience (no SAS here).
//!
//! Authorization as Azure does for hierarchical-namespace accounts: RBAC data actions first
//! (Storage Blob Data Owner may do everything, ACL and owner changes included; Contributor
//! reads, writes and deletes; Reader reads); when no role grants the operation, the POSIX
//! ACLs ([`super::acl`]) decide for the caller's object id — execute on every ancestor, then
//! the operation's bits — and an ACL change is for the item's owner. A file system's root is
//! owned by `$superuser` with `rwxr-x---` until someone changes it. Errors are JSON
//! `{"error":{"code","message"}}` with `x-ms-error-code` (no body on `HEAD`).
//!
//! Files and directories are also visible as blobs in the same container (a directory as an
//! empty blob with `hdi_isfolder=true`), written in the same durable batch; blobs written
//! through the blob plane are not paths here. Requests are logged without their query.

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

use super::acl::{self, Entry, R, Tag, W, X};
use super::auth::Refusal;
use super::blob::{challenge, http_date, requested_range, storage_audience};
use super::datalake::{ancestors, new_child};
use super::http::{header, percent_decode, query_get, query_pairs};
use super::paths;
use super::pipeline::{self, Bearer, Errors, Ids, Note, Plane};
use super::rbac::{Grant, allowed};
use super::shared::{Shared, guid, now_ms};
use super::store::{DataPath, Op, Resource, StoredBlob};

/// The service version answered in `x-ms-version`.
const VERSION: &str = "2023-11-03";
/// The first service version with the `dfs` API.
const FIRST_VERSION: &str = "2018-06-17";
/// Owner and group of a file system's root until changed.
pub const SUPERUSER: &str = "$superuser";
/// Data actions, under `Microsoft.Storage/storageAccounts/blobServices/containers/blobs/`.
const READ: &str = "read";
const WRITE: &str = "write";
const DELETE: &str = "delete";
const MODIFY_PERMISSIONS: &str = "modifyPermissions/action";
const MANAGE_OWNERSHIP: &str = "manageOwnership/action";

pub fn router(sh: Arc<Shared>) -> axum::Router {
    pipeline::layer(&sh, plane(), axum::Router::new().fallback(entry).with_state(sh.clone()))
}

/// The store key of a path of a file system.
fn key(account: &str, fs: &str, path: &str) -> String {
    format!("{account}/{fs}:{path}")
}

/// A refusal: status, `x-ms-error-code` and message.
#[derive(Debug)]
struct Fail {
    status: u16,
    code: &'static str,
    message: String,
    extra: Vec<(&'static str, String)>,
}

fn fail(status: u16, code: &'static str, message: impl Into<String>) -> Fail {
    Fail { status, code, message: message.into(), extra: Vec::new() }
}

fn denied() -> Fail {
    fail(
        403,
        "AuthorizationPermissionMismatch",
        "This request is not authorized to perform this operation using this permission.",
    )
}

fn path_not_found() -> Fail {
    fail(404, "PathNotFound", "The specified path does not exist.")
}

fn fail_response(f: &Fail, head: bool) -> Response {
    let rid = guid();
    let time =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let body = json!({"error": {"code": f.code, "message": format!("{}\nRequestId:{rid}\nTime:{time}", f.message)}});
    let bytes = if head { Vec::new() } else { serde_json::to_vec(&body).unwrap_or_default() };
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = axum::http::StatusCode::from_u16(f.status).unwrap_or(axum::http::StatusCode::BAD_REQUEST);
    let mut h: Vec<(&str, String)> = vec![
        ("content-type", "application/json;charset=utf-8".into()),
        ("x-ms-error-code", f.code.into()),
        ("x-ms-request-id", rid),
        ("x-ms-version", VERSION.into()),
    ];
    h.extend(f.extra.iter().map(|(k, v)| (*k, v.clone())));
    super::http::add_headers(r.headers_mut(), &h);
    r
}

fn done(status: u16, body: Vec<u8>, headers: &[(&str, String)]) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK);
    let mut h: Vec<(&str, String)> = vec![("x-ms-request-id", guid()), ("x-ms-version", VERSION.into())];
    h.extend(headers.iter().map(|(k, v)| (*k, v.clone())));
    super::http::add_headers(r.headers_mut(), &h);
    r
}

/// The dfs plane: storage JSON errors, storage bearer tokens; RBAC then ACLs in the handler.
pub fn plane() -> Plane {
    Plane {
        name: "dfs",
        errors: Errors::StorageJson,
        ids: Ids::Handler,
        any_case_scheme: false,
        audiences: storage_audience,
        admit,
        authorize: pipeline::pass,
        log_path: pipeline::request_path,
        body_limit: |l| l.dfs_body,
        // Azure Storage's code, in the dfs JSON format.
        too_large: |limit| {
            let message = format!("The request body is too large and exceeds the permissible limit of {limit} bytes.");
            fail_response(&fail(413, "RequestBodyTooLarge", message), false)
        },
    }
}

/// What an authenticated request addresses.
#[derive(Clone)]
struct Addressed {
    account: String,
    fs: String,
    path: String,
    acct: Resource,
    caller: String,
}

/// Authentication, on the head: the path, the account, then the bearer token and version.
fn admit(sh: &Arc<Shared>, parts: &mut Parts, bearer: &Bearer, note: &mut Note) -> Result<(), Box<Response>> {
    note.write = matches!(parts.method, Method::PUT | Method::PATCH | Method::DELETE);
    let head = parts.method == Method::HEAD;
    let addressed = authenticate(sh, parts, bearer).map_err(|f| Box::new(fail_response(&f, head)))?;
    note.principal = Some(addressed.caller.clone());
    parts.extensions.insert(addressed);
    Ok(())
}

/// The handler, behind the pipeline (the body is read after authentication).
async fn entry(
    State(sh): State<Arc<Shared>>,
    Extension(a): Extension<Addressed>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let head = method == Method::HEAD;
    handle(&sh, a, &method, &uri, &headers, body).unwrap_or_else(|f| fail_response(&f, head))
}

/// One request's context: who, where, and what RBAC grants them there.
struct Cx<'a> {
    sh: &'a Shared,
    account: String,
    fs: String,
    container_id: String,
    caller: String,
    grants: Vec<Grant>,
}

impl Cx<'_> {
    /// Whether a role grants the data action (then ACLs are not consulted).
    fn rbac(&self, action: &str) -> bool {
        let data = format!("{}/blobs/{action}", super::table::CONTAINERS);
        allowed(&self.grants, &self.caller, &self.container_id, &data, true)
    }

    /// The path's entry; the root exists with the file system.
    fn get(&self, path: &str) -> Option<DataPath> {
        let got = self.sh.store().state.data_paths.get(&key(&self.account, &self.fs, path)).cloned();
        got.or_else(|| (path == "/").then(root))
    }

    fn acl_allows(&self, e: &DataPath, want: u8) -> bool {
        acl::allows(&acl::from_texts(&e.acl), &e.owner, &self.caller, want)
    }

    /// Without the role `action`: execute on every ancestor of `path` (missing → 404).
    fn traverse(&self, path: &str, rbac: bool) -> Result<(), Fail> {
        for a in ancestors(path) {
            let e = self.get(&a).ok_or_else(path_not_found)?;
            if !e.dir {
                return Err(path_not_found());
            }
            if !rbac && !self.acl_allows(&e, X) {
                return Err(denied());
            }
        }
        Ok(())
    }

    /// The target after the traverse check.
    fn existing(&self, path: &str, rbac: bool) -> Result<DataPath, Fail> {
        self.traverse(path, rbac)?;
        self.get(path).ok_or_else(path_not_found)
    }

    /// Require `want` on `e` unless a role granted the operation.
    fn require(&self, e: &DataPath, want: u8, rbac: bool) -> Result<(), Fail> {
        if rbac || self.acl_allows(e, want) { Ok(()) } else { Err(denied()) }
    }

    /// A new child of `parent`, owned by the caller, with the parent's owning group and
    /// the ACL inherited from the parent's default ACL (else `mode` less the umask `007`).
    fn child(&self, parent: &DataPath, dir: bool, mode: u16) -> DataPath {
        new_child(parent, &self.caller, dir, mode, String::new())
    }

    /// The parent of a new `path`, creating missing directories (write and execute on the
    /// deepest existing one, execute above it).
    fn make_parents(&self, path: &str, rbac: bool, ops: &mut Vec<Op>) -> Result<DataPath, Fail> {
        let chain = ancestors(path);
        let mut parent: Option<DataPath> = None;
        for (i, a) in chain.iter().enumerate() {
            match self.get(a) {
                Some(e) if !e.dir => {
                    return Err(fail(
                        409,
                        "PathConflict",
                        "The specified path, or an element of the path, exists and its resource type is invalid for this operation.",
                    ));
                }
                Some(e) => {
                    let last = chain.get(i + 1).is_none_or(|n| self.get(n).is_none());
                    self.require(&e, if last { W | X } else { X }, rbac)?;
                    parent = Some(e);
                }
                None => {
                    let p = parent.as_ref().ok_or_else(path_not_found)?;
                    let made = self.child(p, true, 0o777);
                    ops.extend(self.put(a, &made));
                    parent = Some(made);
                }
            }
        }
        parent.ok_or_else(|| fail(400, "InvalidUri", "The request URI is invalid."))
    }

    /// Store a path, and its blob view (`hdi_isfolder` for directories).
    fn put(&self, path: &str, e: &DataPath) -> Vec<Op> {
        let mut metadata = std::collections::BTreeMap::new();
        if e.dir {
            metadata.insert("hdi_isfolder".to_string(), "true".to_string());
        }
        let mut ops = vec![Op::PutDataPath { key: key(&self.account, &self.fs, path), path: e.clone() }];
        if path != "/" {
            let blob = StoredBlob {
                data: e.data.clone(),
                content_type: "application/octet-stream".into(),
                etag: etag(e),
                last_modified_ms: e.modified_ms,
                metadata,
                headers: std::collections::BTreeMap::new(),
                content_md5: None,
                blocks: Vec::new(),
            };
            ops.push(Op::PutBlob { key: self.blob_key(path), blob });
        }
        ops
    }

    fn blob_key(&self, path: &str) -> String {
        format!("{}/{}/{}", self.account, self.fs, path.trim_start_matches('/'))
    }

    fn write(&self, ops: Vec<Op>) -> Result<(), Fail> {
        self.sh.commit(ops).map_err(|e| fail(500, "InternalError", e.to_string()))
    }

    /// The paths under `path` (all depths), sorted, as `(path, entry)`.
    fn descendants(&self, path: &str) -> Vec<(String, DataPath)> {
        let base = if path == "/" { String::from("/") } else { format!("{path}/") };
        let prefix = key(&self.account, &self.fs, &base);
        let cut = key(&self.account, &self.fs, "").len();
        self.sh
            .store()
            .state
            .data_paths
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| k.len() > prefix.len())
            .map(|(k, v)| (k[cut..].to_string(), v.clone()))
            .collect()
    }
}

/// A file system's root before anyone changed it.
fn root() -> DataPath {
    DataPath {
        dir: true,
        owner: SUPERUSER.into(),
        group: SUPERUSER.into(),
        acl: acl::to_texts(&acl::from_mode(0o750)),
        data: String::new(),
        pending: String::new(),
        modified_ms: 0,
        accessed_ms: 0,
    }
}

fn etag(e: &DataPath) -> String {
    format!("\"0x{:X}\"", e.modified_ms)
}

fn decoded_len(b64: &str) -> usize {
    STANDARD.decode(b64).map_or(0, |d| d.len())
}

/// The normalised absolute path from the URL segments after the file system (`paths`).
fn normalise(rest: &str) -> Result<String, Fail> {
    paths::normalise(rest, true)
        .map_err(|_| fail(400, "InvalidResourceName", "The specified resource name contains invalid characters."))
}

/// The path, the account and the bearer token, in that order; refusals in dfs's words.
fn authenticate(sh: &Shared, parts: &Parts, bearer: &Bearer) -> Result<Addressed, Fail> {
    let headers = &parts.headers;
    let raw = parts.uri.path().trim_start_matches('/');
    let mut split = raw.splitn(3, '/');
    let account = percent_decode(split.next().unwrap_or_default(), false).to_ascii_lowercase();
    let fs = percent_decode(split.next().unwrap_or_default(), false).to_ascii_lowercase();
    let path = normalise(split.next().unwrap_or_default())?;
    let acct = super::storage::account_named(&sh.store().state, &account).cloned();
    let Some(acct) = acct else {
        return Err(fail(404, "ResourceNotFound", "The specified resource does not exist."));
    };
    // Authentication: a bearer token for the storage audience, with a service version.
    let (Bearer::OtherScheme | Bearer::Checked(_)) = bearer else {
        let mut f = fail(
            401,
            "NoAuthenticationInformation",
            "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
        );
        f.extra.push(("www-authenticate", challenge(sh)));
        return Err(f);
    };
    let Bearer::Checked(checked) = bearer else {
        return Err(fail(
            403,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
        ));
    };
    let version = header(headers, "x-ms-version").unwrap_or_default();
    if version.is_empty() {
        return Err(fail(
            403,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Authentication scheme Bearer is not supported in this version.",
        ));
    }
    let well_formed = version.len() == 10
        && time::Date::parse(version, &time::format_description::well_known::Iso8601::DEFAULT).is_ok();
    if !well_formed || version < FIRST_VERSION {
        let mut f =
            fail(400, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.");
        f.message.push_str(&format!(" x-ms-version: {version}"));
        return Err(f);
    }
    let caller = match checked {
        Ok(c) => c.object_id.clone(),
        Err(why) => {
            let message = match why {
                Refusal::Expired { .. } => "Lifetime validation failed. The token is expired.",
                _ => {
                    "Server failed to authenticate the request. Please refer to the information in the www-authenticate header."
                }
            };
            let mut f = fail(401, "InvalidAuthenticationInfo", message);
            f.extra.push(("www-authenticate", challenge(sh)));
            return Err(f);
        }
    };
    Ok(Addressed { account, fs, path, acct, caller })
}

fn handle(
    sh: &Shared,
    a: Addressed,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, Fail> {
    let q = query_pairs(uri.query());
    let Addressed { account, fs, path, acct, caller } = a;
    if acct.body.pointer("/properties/isHnsEnabled").and_then(Value::as_bool) != Some(true) {
        return Err(fail(
            409,
            "HierarchicalNamespaceNotEnabled",
            "This operation is only supported on a hierarchical namespace account.",
        ));
    }
    if fs.is_empty() {
        return Err(fail(400, "InvalidUri", "The request URI is invalid."));
    }
    let container_id = format!("{}/blobServices/default/containers/{fs}", acct.id);
    if !sh.store().state.resources.contains_key(&container_id.to_ascii_lowercase()) {
        return Err(fail(404, "FilesystemNotFound", "The specified filesystem does not exist."));
    }
    let grants = super::rbac::grants(&sh.store().state, now_ms());
    let cx = Cx { sh, account, fs, container_id, caller, grants };
    let resource = query_get(&q, "resource").unwrap_or_default().to_ascii_lowercase();
    let action = query_get(&q, "action").unwrap_or_default().to_ascii_lowercase();
    let on_fs = path == "/" && resource == "filesystem";
    match (method.clone(), action.as_str()) {
        (Method::GET, _) if on_fs => list(&cx, &q),
        (Method::HEAD, _) if on_fs => Ok(done(200, Vec::new(), &[("x-ms-namespace-enabled", "true".into())])),
        (Method::PUT, _) if on_fs => {
            Err(fail(409, "FilesystemAlreadyExists", "The specified filesystem already exists."))
        }
        (_, _) if on_fs => Err(fail(
            405,
            "UnsupportedHttpVerb",
            "The local cloud creates and deletes file systems (blob containers) through Resource Manager only.",
        )),
        (Method::PUT, _) => create(&cx, &path, &resource, headers),
        (Method::PATCH, "append") => append(&cx, &path, &q, body),
        (Method::PATCH, "flush") => flush(&cx, &path, &q),
        (Method::PATCH, "setaccesscontrol") => set_access(&cx, &path, headers),
        (Method::PATCH, "setaccesscontrolrecursive") => set_recursive(&cx, &path, &q, headers),
        (Method::HEAD | Method::GET, "getaccesscontrol") => get_access(&cx, &path),
        (Method::HEAD, _) => properties(&cx, &path),
        (Method::GET, _) => read(&cx, &path, headers),
        (Method::DELETE, _) => delete(&cx, &path, &q),
        (Method::PATCH, "") => Err(fail(
            400,
            "MissingRequiredQueryParameter",
            "A query parameter that's mandatory for this request is not specified. action",
        )),
        (Method::PATCH, _) => Err(fail(
            400,
            "InvalidQueryParameterValue",
            "Value for one of the query parameters specified in the request URI is invalid. action",
        )),
        _ => Err(fail(
            400,
            "InvalidHttpVerb",
            "The HTTP verb specified is invalid - it is not recognized by the server.",
        )),
    }
}

/// `PUT ?resource=directory|file`.
fn create(cx: &Cx<'_>, path: &str, resource: &str, headers: &HeaderMap) -> Result<Response, Fail> {
    let dir = match resource {
        "directory" => true,
        "file" => false,
        "" => {
            return Err(fail(
                400,
                "MissingRequiredQueryParameter",
                "A query parameter that's mandatory for this request is not specified. resource",
            ));
        }
        _ => {
            return Err(fail(
                400,
                "InvalidQueryParameterValue",
                "Value for one of the query parameters specified in the request URI is invalid. resource",
            ));
        }
    };
    if path == "/" {
        return Err(fail(409, "PathAlreadyExists", "The specified path already exists."));
    }
    let mode = match header(headers, "x-ms-permissions") {
        None => {
            if dir {
                0o777
            } else {
                0o666
            }
        }
        Some(p) => acl::parse_permissions(p).ok_or_else(|| {
            fail(400, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.")
        })?,
    };
    let rbac = cx.rbac(WRITE);
    let mut ops = Vec::new();
    let parent = cx.make_parents(path, rbac, &mut ops)?;
    let entry = match cx.get(path) {
        Some(_) if header(headers, "if-none-match") == Some("*") => {
            return Err(fail(409, "PathAlreadyExists", "The specified path already exists."));
        }
        Some(e) if e.dir != dir => {
            return Err(fail(
                409,
                "PathConflict",
                "The specified path, or an element of the path, exists and its resource type is invalid for this operation.",
            ));
        }
        // An existing directory stays as it is; an existing file starts empty again.
        Some(e) if e.dir => e,
        Some(mut e) => {
            e.data.clear();
            e.pending.clear();
            e.modified_ms = now_ms();
            e
        }
        None => cx.child(&parent, dir, mode),
    };
    ops.extend(cx.put(path, &entry));
    cx.write(ops)?;
    Ok(done(
        201,
        Vec::new(),
        &[("etag", etag(&entry)), ("last-modified", http_date(entry.modified_ms)), ("content-length", "0".into())],
    ))
}

/// `position` as a number.
fn position(q: &[(String, String)]) -> Result<usize, Fail> {
    let bad = |what: &str| {
        fail(
            400,
            if what.is_empty() { "MissingRequiredQueryParameter" } else { "InvalidQueryParameterValue" },
            format!(
                "{} position",
                if what.is_empty() {
                    "A query parameter that's mandatory for this request is not specified."
                } else {
                    "Value for one of the query parameters specified in the request URI is invalid."
                }
            ),
        )
    };
    match query_get(q, "position") {
        None | Some("") => Err(bad("")),
        Some(v) => v.parse().map_err(|_| bad(v)),
    }
}

/// An existing file, after the checks of `action`: the role, or execute on the way and
/// `want` on the file.
fn file(cx: &Cx<'_>, path: &str, action: &str, want: u8) -> Result<DataPath, Fail> {
    let rbac = cx.rbac(action);
    let e = cx.existing(path, rbac)?;
    if e.dir {
        return Err(fail(
            409,
            "ResourceTypeMismatch",
            "The resource type specified in the request does not match the type of the resource.",
        ));
    }
    cx.require(&e, want, rbac)?;
    Ok(e)
}

/// `PATCH ?action=append&position=N`: the bytes wait, uncommitted, for a flush.
fn append(cx: &Cx<'_>, path: &str, q: &[(String, String)], body: Bytes) -> Result<Response, Fail> {
    let pos = position(q)?;
    let mut e = file(cx, path, WRITE, W)?;
    let mut pending = STANDARD.decode(&e.pending).unwrap_or_default();
    let end = decoded_len(&e.data) + pending.len();
    if pos != end {
        return Err(fail(
            400,
            "InvalidFlushPosition",
            "The uploaded data is not contiguous or the position query parameter value is not equal to the length of the file after appending the uploaded data.",
        ));
    }
    pending.extend_from_slice(&body);
    e.pending = STANDARD.encode(&pending);
    cx.write(vec![Op::PutDataPath { key: key(&cx.account, &cx.fs, path), path: e }])?;
    Ok(done(202, Vec::new(), &[("content-length", "0".into())]))
}

/// `PATCH ?action=flush&position=N`: commit what was appended (N is the new length).
fn flush(cx: &Cx<'_>, path: &str, q: &[(String, String)]) -> Result<Response, Fail> {
    let pos = position(q)?;
    let mut e = file(cx, path, WRITE, W)?;
    let mut data = STANDARD.decode(&e.data).unwrap_or_default();
    data.extend(STANDARD.decode(&e.pending).unwrap_or_default());
    if pos != data.len() {
        return Err(fail(
            400,
            "InvalidFlushPosition",
            "The uploaded data is not contiguous or the position query parameter value is not equal to the length of the file after appending the uploaded data.",
        ));
    }
    e.data = STANDARD.encode(&data);
    e.pending.clear();
    e.modified_ms = now_ms();
    cx.write(cx.put(path, &e))?;
    Ok(done(
        200,
        Vec::new(),
        &[("etag", etag(&e)), ("last-modified", http_date(e.modified_ms)), ("content-length", "0".into())],
    ))
}

/// Whether the caller may change `e`'s ACL: the role, or owning it.
fn may_change_acl(cx: &Cx<'_>, e: &DataPath) -> bool {
    cx.rbac(MODIFY_PERMISSIONS) || e.owner.eq_ignore_ascii_case(&cx.caller)
}

fn bad_acl(message: String) -> Fail {
    fail(
        400,
        "InvalidHeaderValue",
        format!("The value for one of the HTTP headers is not in the correct format. x-ms-acl: {message}"),
    )
}

/// A full ACL from `x-ms-acl`: it replaces the current one, so the access entries must hold
/// `user::`, `group::` and `other::`; default entries only on directories.
fn full_acl(text: &str, dir: bool) -> Result<Vec<Entry>, Fail> {
    let spec = acl::parse_spec(text, true).map_err(bad_acl)?;
    let base = |t: Tag| spec.iter().any(|e| !e.default && e.tag == t && e.id.is_empty());
    if !(base(Tag::User) && base(Tag::Group) && base(Tag::Other)) {
        return Err(bad_acl("the user, group and other entries are required.".into()));
    }
    acl::set(&[], &spec, dir).map_err(bad_acl)
}

/// `PATCH ?action=setAccessControl`.
fn set_access(cx: &Cx<'_>, path: &str, headers: &HeaderMap) -> Result<Response, Fail> {
    let (acl_h, perms_h) = (header(headers, "x-ms-acl"), header(headers, "x-ms-permissions"));
    let (owner_h, group_h) = (header(headers, "x-ms-owner"), header(headers, "x-ms-group"));
    if acl_h.is_some() && perms_h.is_some() {
        return Err(fail(
            400,
            "InvalidInput",
            "One of the request inputs is not valid. x-ms-acl and x-ms-permissions cannot both be set.",
        ));
    }
    if acl_h.is_none() && perms_h.is_none() && owner_h.is_none() && group_h.is_none() {
        return Err(fail(
            400,
            "MissingRequiredHeader",
            "An HTTP header that's mandatory for this request is not specified. x-ms-acl",
        ));
    }
    let mut e = cx.existing(path, cx.rbac(MODIFY_PERMISSIONS))?;
    if owner_h.is_some() && !cx.rbac(MANAGE_OWNERSHIP) {
        return Err(denied());
    }
    if !may_change_acl(cx, &e) {
        return Err(denied());
    }
    if let Some(text) = acl_h {
        e.acl = acl::to_texts(&full_acl(text, e.dir)?);
    }
    if let Some(p) = perms_h {
        let mode = acl::parse_permissions(p).ok_or_else(|| {
            fail(400, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.")
        })?;
        e.acl = acl::to_texts(&acl::chmod(acl::from_texts(&e.acl), mode));
    }
    if let Some(o) = owner_h {
        e.owner = o.to_string();
    }
    if let Some(g) = group_h {
        e.group = g.to_string();
    }
    cx.write(vec![Op::PutDataPath { key: key(&cx.account, &cx.fs, path), path: e.clone() }])?;
    Ok(done(200, Vec::new(), &[("etag", etag(&e)), ("content-length", "0".into())]))
}

/// `PATCH ?action=setAccessControlRecursive&mode=set|modify|remove`: the path and all
/// below it; items the caller may not change are counted as failures.
fn set_recursive(cx: &Cx<'_>, path: &str, q: &[(String, String)], headers: &HeaderMap) -> Result<Response, Fail> {
    let mode = query_get(q, "mode").unwrap_or_default().to_ascii_lowercase();
    if !matches!(mode.as_str(), "set" | "modify" | "remove") {
        return Err(fail(
            400,
            "InvalidQueryParameterValue",
            "Value for one of the query parameters specified in the request URI is invalid. mode",
        ));
    }
    let text = header(headers, "x-ms-acl").ok_or_else(|| {
        fail(
            400,
            "MissingRequiredHeader",
            "An HTTP header that's mandatory for this request is not specified. x-ms-acl",
        )
    })?;
    let spec = acl::parse_spec(text, mode != "remove").map_err(bad_acl)?;
    let top = cx.existing(path, cx.rbac(MODIFY_PERMISSIONS))?;
    let mut items = vec![(path.to_string(), top)];
    items.extend(cx.descendants(path));
    let (mut dirs, mut files, mut failed) = (0u64, 0u64, Vec::new());
    let mut ops = Vec::new();
    for (p, mut e) in items {
        if !may_change_acl(cx, &e) {
            failed.push(json!({"errorMessage": "This request is not authorized to perform this operation using this permission.", "name": p.trim_start_matches('/'), "type": if e.dir { "DIRECTORY" } else { "FILE" }}));
            continue;
        }
        // Default entries apply to directories only.
        let own: Vec<Entry> = spec.iter().filter(|x| e.dir || !x.default).cloned().collect();
        let current = acl::from_texts(&e.acl);
        let next = match mode.as_str() {
            "set" if p == path => full_acl(text, e.dir)?,
            "set" => acl::set(&[], &own, e.dir).map_err(bad_acl)?,
            "modify" => acl::modify(&current, &own, e.dir).map_err(bad_acl)?,
            _ => acl::remove_entries(&current, &own, e.dir).map_err(bad_acl)?,
        };
        e.acl = acl::to_texts(&next);
        if e.dir {
            dirs += 1
        } else {
            files += 1
        }
        ops.push(Op::PutDataPath { key: key(&cx.account, &cx.fs, &p), path: e });
    }
    cx.write(ops)?;
    let body = json!({"directoriesSuccessful": dirs, "filesSuccessful": files, "failureCount": failed.len(), "failedEntries": failed});
    Ok(done(
        200,
        serde_json::to_vec(&body).unwrap_or_default(),
        &[("content-type", "application/json;charset=utf-8".into())],
    ))
}

fn owner_headers(e: &DataPath) -> Vec<(&'static str, String)> {
    vec![
        ("x-ms-owner", e.owner.clone()),
        ("x-ms-group", e.group.clone()),
        ("x-ms-permissions", acl::permissions_text(&acl::from_texts(&e.acl))),
    ]
}

/// `HEAD ?action=getAccessControl`: the role to read, or execute on the way.
fn get_access(cx: &Cx<'_>, path: &str) -> Result<Response, Fail> {
    let e = cx.existing(path, cx.rbac(READ))?;
    let mut h = owner_headers(&e);
    h.push(("x-ms-acl", acl::to_texts(&acl::from_texts(&e.acl)).join(",")));
    h.push(("etag", etag(&e)));
    Ok(done(200, Vec::new(), &h))
}

/// `HEAD`: the path's properties.
fn properties(cx: &Cx<'_>, path: &str) -> Result<Response, Fail> {
    let e = cx.existing(path, cx.rbac(READ))?;
    let mut h = owner_headers(&e);
    h.push(("x-ms-resource-type", if e.dir { "directory" } else { "file" }.into()));
    h.push(("content-length", decoded_len(&e.data).to_string()));
    h.push(("etag", etag(&e)));
    h.push(("last-modified", http_date(e.modified_ms)));
    Ok(done(200, Vec::new(), &h))
}

/// `GET` a file (read on it, execute on the way), whole or a range.
fn read(cx: &Cx<'_>, path: &str, headers: &HeaderMap) -> Result<Response, Fail> {
    let e = file(cx, path, READ, R)?;
    let data = STANDARD.decode(&e.data).unwrap_or_default();
    let total = data.len();
    let mut h = vec![
        ("content-type", "application/octet-stream".to_string()),
        ("etag", etag(&e)),
        ("last-modified", http_date(e.modified_ms)),
        ("x-ms-resource-type", "file".into()),
    ];
    match requested_range(headers, total) {
        Some((a, z)) if a < total && a <= z => {
            h.push(("content-range", format!("bytes {a}-{z}/{total}")));
            Ok(done(206, data[a..=z].to_vec(), &h))
        }
        Some(_) => {
            Err(fail(416, "InvalidRange", "The range specified is invalid for the current size of the resource."))
        }
        None => Ok(done(200, data, &h)),
    }
}

/// `GET /{filesystem}?resource=filesystem&recursive=…&directory=…`.
fn list(cx: &Cx<'_>, q: &[(String, String)]) -> Result<Response, Fail> {
    let recursive = match query_get(q, "recursive").map(str::to_ascii_lowercase).as_deref() {
        Some("true") => true,
        Some("false") => false,
        None => {
            return Err(fail(
                400,
                "MissingRequiredQueryParameter",
                "A query parameter that's mandatory for this request is not specified. recursive",
            ));
        }
        Some(_) => {
            return Err(fail(
                400,
                "InvalidQueryParameterValue",
                "Value for one of the query parameters specified in the request URI is invalid. recursive",
            ));
        }
    };
    let dir = normalise(query_get(q, "directory").unwrap_or_default())?;
    let rbac = cx.rbac(READ);
    let e = cx.existing(&dir, rbac)?;
    if !e.dir {
        return Err(fail(
            409,
            "ResourceTypeMismatch",
            "The resource type specified in the request does not match the type of the resource.",
        ));
    }
    cx.require(&e, R | X, rbac)?;
    let depth = dir.matches('/').count() + usize::from(dir != "/");
    let mut paths = Vec::new();
    for (p, c) in cx.descendants(&dir) {
        let level = p.matches('/').count();
        if !recursive && level != depth {
            continue;
        }
        if recursive && c.dir {
            cx.require(&c, R | X, rbac)?;
        }
        let mut item = json!({
            "name": p.trim_start_matches('/'),
            "contentLength": decoded_len(&c.data).to_string(),
            "lastModified": http_date(c.modified_ms),
            "etag": etag(&c).trim_matches('"'),
            "owner": c.owner,
            "group": c.group,
            "permissions": acl::permissions_text(&acl::from_texts(&c.acl)),
        });
        if c.dir {
            item["isDirectory"] = json!("true");
        }
        paths.push(item);
    }
    let body = serde_json::to_vec(&json!({ "paths": paths })).unwrap_or_default();
    Ok(done(200, body, &[("content-type", "application/json;charset=utf-8".into())]))
}

/// `DELETE` a path (`recursive=true` for a directory with children): write and execute on
/// the parent.
fn delete(cx: &Cx<'_>, path: &str, q: &[(String, String)]) -> Result<Response, Fail> {
    if path == "/" {
        return Err(fail(
            400,
            "InvalidUri",
            "The request URI is invalid. The root directory cannot be deleted; delete the file system through Resource Manager.",
        ));
    }
    let rbac = cx.rbac(DELETE);
    let e = cx.existing(path, rbac)?;
    let parent_path = ancestors(path).pop().unwrap_or_else(|| "/".into());
    let parent = cx.get(&parent_path).ok_or_else(path_not_found)?;
    cx.require(&parent, W | X, rbac)?;
    let recursive = query_get(q, "recursive").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if e.dir && !recursive && !cx.descendants(path).is_empty() {
        return Err(fail(
            409,
            "DirectoryNotEmpty",
            "The recursive query parameter value must be true to delete a non-empty directory.",
        ));
    }
    cx.write(vec![
        Op::DeleteDataPaths { prefix: key(&cx.account, &cx.fs, &format!("{path}/")) },
        Op::DeleteDataPath { key: key(&cx.account, &cx.fs, path) },
        Op::DeleteBlobs { prefix: format!("{}/", cx.blob_key(path)) },
        Op::DeleteBlob { key: cx.blob_key(path) },
    ])?;
    Ok(done(200, Vec::new(), &[("content-length", "0".into())]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise() {
        assert_eq!(normalise("a//b/").ok(), Some("/a/b".to_string()));
        assert!(normalise("a/../b").is_err());
    }
}
