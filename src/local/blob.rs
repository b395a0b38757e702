//! The blob data plane of the local cloud, path-style as Azure SDKs use on loopback
//! (`https://127.0.0.1:PORT/{account}/{container}/{blob}`, arm-contract §5 and §11): block
//! blob upload (Put Blob, or Put Block then Put Block List), download (with
//! `x-ms-range`/`Range` → 206), delete, container listing with `maxresults`/`marker` paging.
//! It accepts bearer tokens for the storage audience and enforces RBAC data actions, or a
//! service SAS signed with an account key ([`super::sas`]: signature, `si`, time window,
//! protocol, `sip`, permissions, response-header overrides). Errors are Azure's XML bodies
//! with `x-ms-error-code`.

use std::sync::Arc;

use std::net::SocketAddr;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::auth::Refusal;
use super::http::{header, percent_decode, query_get, query_pairs};
use super::pipeline::{self, Bearer, Errors, Ids, Note, Plane};
use super::rbac;
use super::shared::{Shared, guid, now_ms};
use super::store::{Op, StoredBlob};

/// Audiences the blob service accepts (plus `https://{account}.blob.core.windows.net`).
const AUDIENCES: &[&str] = &["https://storage.azure.com/", "https://storage.azure.com"];

/// The most entries one List Blobs page holds (and the default `maxresults`).
const MAX_RESULTS: usize = 5000;

pub fn router(sh: Arc<Shared>) -> axum::Router {
    let handler = axum::Router::new().fallback(entry).layer(axum::extract::DefaultBodyLimit::disable());
    pipeline::layer(&sh, plane(), handler.with_state(sh.clone()))
}

fn xml_error(status: u16, code: &str, message: &str, extra: &[(&str, String)]) -> Response {
    xml_error_detail(status, code, message, None, extra)
}

/// An XML error, with `<AuthenticationErrorDetail>` when there is one.
fn xml_error_detail(
    status: u16,
    code: &str,
    message: &str,
    detail: Option<&str>,
    extra: &[(&str, String)],
) -> Response {
    let rid = guid();
    let time =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let detail =
        detail.map(|d| format!("<AuthenticationErrorDetail>{d}</AuthenticationErrorDetail>")).unwrap_or_default();
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}\nRequestId:{rid}\nTime:{time}</Message>{detail}</Error>"
    );
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::BAD_REQUEST);
    let mut h: Vec<(&str, String)> =
        vec![("content-type", "application/xml".into()), ("x-ms-error-code", code.into()), ("x-ms-request-id", rid)];
    h.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    super::http::add_headers(r.headers_mut(), &h);
    r
}

fn ok(status: u16, body: Vec<u8>, headers: &[(&str, String)]) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK);
    let mut h: Vec<(&str, String)> = vec![("x-ms-request-id", guid()), ("x-ms-version", "2023-11-03".into())];
    h.extend(headers.iter().map(|(k, v)| (*k, v.clone())));
    super::http::add_headers(r.headers_mut(), &h);
    r
}

/// The blob plane's descriptor: storage XML errors; bearer tokens for the storage audience or
/// the account's own host, a service SAS, or the 401 `NoAuthenticationInformation` challenge.
pub fn plane() -> Plane {
    Plane {
        name: "blob",
        errors: Errors::StorageXml,
        ids: Ids::Handler,
        any_case_scheme: false,
        audiences: storage_audience,
        admit,
        authorize,
        log_path: pipeline::request_path,
        body_limit: |l| l.blob_body,
        too_large,
    }
}

/// Azure Storage's 413 for a body over the limit, with the limit in `<MaxLimit>`.
pub fn too_large(limit: u64) -> Response {
    let rid = guid();
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>RequestBodyTooLarge</Code><Message>The request body is too large and exceeds the maximum permissible limit.\nRequestId:{rid}</Message><MaxLimit>{limit}</MaxLimit></Error>"
    );
    ok(
        413,
        body.into_bytes(),
        &[
            ("content-type", "application/xml".into()),
            ("x-ms-error-code", "RequestBodyTooLarge".into()),
            ("x-ms-request-id", rid),
        ],
    )
}

/// The account a storage request addresses (its first path segment, lower-cased).
fn account_of(parts: &Parts) -> String {
    let first = parts.uri.path().trim_start_matches('/').split('/').next().unwrap_or_default();
    percent_decode(first, false).to_ascii_lowercase()
}

/// The audiences the storage planes (blob and dfs) accept: the storage audience, or the
/// account's own blob or dfs host.
pub(super) fn storage_audience(parts: &Parts, aud: &str) -> bool {
    let account = account_of(parts);
    let own = |svc: &str| {
        aud.trim_end_matches('/').eq_ignore_ascii_case(&format!("https://{account}.{svc}.core.windows.net"))
    };
    AUDIENCES.contains(&aud) || own("blob") || own("dfs")
}

/// What a request addresses, after authentication.
#[derive(Clone)]
struct Addressed {
    account: String,
    container: String,
    blob: String,
    container_id: String,
    auth: Auth,
}

/// What an authorized request does.
#[derive(Clone)]
struct Admitted {
    account: String,
    container: String,
    container_id: String,
    key: String,
    comp: String,
    operation: Operation,
    exists: bool,
    overrides: Vec<(&'static str, String)>,
}

/// Authentication, on the head: the account, then a SAS in the query, or a bearer token.
fn admit(sh: &Arc<Shared>, parts: &mut Parts, bearer: &Bearer, note: &mut Note) -> Result<(), Box<Response>> {
    note.write = matches!(parts.method, Method::PUT | Method::DELETE);
    let q = query_pairs(parts.uri.query());
    let segs: Vec<String> =
        parts.uri.path().trim_start_matches('/').splitn(3, '/').map(|p| percent_decode(p, false)).collect();
    let account = segs.first().cloned().unwrap_or_default().to_ascii_lowercase();
    let container = segs.get(1).cloned().unwrap_or_default().to_ascii_lowercase();
    let blob = segs.get(2).cloned().unwrap_or_default();
    let account_res = super::storage::account_named(&sh.store().state, &account).cloned();
    let Some(account_res) = account_res else {
        return Err(Box::new(xml_error(404, "ResourceNotFound", "The specified resource does not exist.", &[])));
    };
    let container_id = format!("{}/blobServices/default/containers/{container}", account_res.id);
    let auth = if query_get(&q, "sig").is_some() {
        let now = time::OffsetDateTime::now_utc();
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        match super::sas::check(&account_res.body, (&account, &container, &blob), &q, peer, now) {
            Ok(grant) => Auth::Sas(grant),
            Err(r) => return Err(Box::new(xml_error_detail(r.status, r.code, &r.message, r.detail.as_deref(), &[]))),
        }
    } else if header(&parts.headers, "authorization").is_some() {
        Auth::Principal(bearer_refusal(sh, bearer, &parts.headers)?)
    } else {
        return Err(Box::new(xml_error(
            401,
            "NoAuthenticationInformation",
            "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
            &[("www-authenticate", challenge(sh))],
        )));
    };
    if let Auth::Principal(p) = &auth {
        note.principal = Some(p.clone());
    }
    parts.extensions.insert(Addressed { account, container, blob, container_id, auth });
    Ok(())
}

/// Authorization, on the head: the container and the operation, then the data action (the
/// one RBAC function) or the SAS letter the operation needs.
fn authorize(sh: &Arc<Shared>, parts: &mut Parts, _: &Bearer, _: &mut Note) -> Result<(), Box<Response>> {
    let Some(a) = parts.extensions.remove::<Addressed>() else {
        return Err(Box::new(xml_error(500, "InternalError", "The request was not authenticated.", &[])));
    };
    let q = query_pairs(parts.uri.query());
    let invalid_uri = || {
        Box::new(xml_error(400, "InvalidUri", "The requested URI does not represent any resource on the server.", &[]))
    };
    if a.container.is_empty() {
        return Err(invalid_uri());
    }
    if let Some(admitted) = container_write(sh, parts, &a, &q)? {
        parts.extensions.insert(admitted);
        return Ok(());
    }
    if !sh.store().state.resources.contains_key(&a.container_id.to_ascii_lowercase()) {
        return Err(Box::new(xml_error(404, "ContainerNotFound", "The specified container does not exist.", &[])));
    }
    let key = format!("{}/{}/{}", a.account, a.container, a.blob);
    let container_op = a.blob.is_empty() && query_get(&q, "restype") == Some("container");
    if a.blob.is_empty() && !container_op {
        return Err(invalid_uri());
    }
    let comp = query_get(&q, "comp").unwrap_or_default().to_string();
    let operation = operation(&parts.method, container_op, &comp)?;
    let exists = sh.store().state.blobs.contains_key(&key);
    let (action, letter) = match operation {
        Operation::List | Operation::ContainerProperties | Operation::Read => ("read", 'r'),
        Operation::Write if exists => ("write", 'w'),
        Operation::Write => ("write", 'c'),
        // Container writes were authorized by `container_write`.
        Operation::Delete | Operation::CreateContainer | Operation::DeleteContainer => ("delete", 'd'),
    };
    let letter = if operation == Operation::List { 'l' } else { letter };
    let allowed = match &a.auth {
        Auth::Principal(p) => {
            let grants = super::rbac::grants(&sh.store().state, now_ms());
            let data = format!("{}/blobs/{action}", super::table::CONTAINERS);
            // A blob's own scope, so ABAC conditions see its container and path.
            let scope =
                if a.blob.is_empty() { a.container_id.clone() } else { format!("{}/blobs/{}", a.container_id, a.blob) };
            rbac::allowed(&grants, p, &scope, &data, true)
                || (action == "write"
                    && !exists
                    && rbac::allowed(
                        &grants,
                        p,
                        &scope,
                        &format!("{}/blobs/add/action", super::table::CONTAINERS),
                        true,
                    ))
        }
        Auth::Sas(g) => g.permissions.contains(letter) || (letter == 'c' && g.permissions.contains('w')),
    };
    if !allowed {
        return Err(Box::new(permission_mismatch()));
    }
    let overrides = match a.auth {
        Auth::Sas(g) => g.overrides,
        Auth::Principal(_) => Vec::new(),
    };
    let (account, container, container_id) = (a.account, a.container, a.container_id);
    parts.extensions.insert(Admitted { account, container, container_id, key, comp, operation, exists, overrides });
    Ok(())
}

/// Blob's 403 for a caller whose role or SAS lacks what the operation needs.
fn permission_mismatch() -> Response {
    xml_error(
        403,
        "AuthorizationPermissionMismatch",
        "This request is not authorized to perform this operation using this permission.",
        &[],
    )
}

/// Create Container and Delete Container (`PUT`/`DELETE …?restype=container`): the name, then
/// the RBAC action the Blob service documents for each with Entra authorization
/// (`…/blobServices/containers/write`, `…/delete`; Storage Blob Data Contributor has both).
/// A service SAS names one container and cannot create or delete it. `None`: another
/// operation.
fn container_write(
    sh: &Shared,
    parts: &Parts,
    a: &Addressed,
    q: &[(String, String)],
) -> Result<Option<Admitted>, Box<Response>> {
    let create = parts.method == Method::PUT;
    if !a.blob.is_empty()
        || query_get(q, "restype") != Some("container")
        || query_get(q, "comp").is_some()
        || !(create || parts.method == Method::DELETE)
    {
        return Ok(None);
    }
    if !super::storage::valid_container_name(&a.container) {
        // Azure's message, spelling included.
        return Err(Box::new(xml_error(
            400,
            "InvalidResourceName",
            "The specifed resource name contains invalid characters.",
            &[],
        )));
    }
    let action = format!("{}/{}", super::table::CONTAINERS, if create { "write" } else { "delete" });
    let allowed = match &a.auth {
        Auth::Principal(p) => {
            rbac::allowed(&rbac::grants(&sh.store().state, now_ms()), p, &a.container_id, &action, false)
        }
        Auth::Sas(_) => false,
    };
    if !allowed {
        return Err(Box::new(permission_mismatch()));
    }
    let operation = if create { Operation::CreateContainer } else { Operation::DeleteContainer };
    Ok(Some(Admitted {
        account: a.account.clone(),
        container: a.container.clone(),
        container_id: a.container_id.clone(),
        key: a.container_id.clone(),
        comp: String::new(),
        operation,
        exists: sh.store().state.resources.contains_key(&a.container_id.to_ascii_lowercase()),
        overrides: Vec::new(),
    }))
}

/// Create Container (201 with its `ETag`, 409 if it exists) and Delete Container (202, 404 if
/// it does not), both seen by Resource Manager too.
fn container_write_answer(sh: &Shared, a: &Admitted, headers: &HeaderMap) -> Response {
    let create = a.operation == Operation::CreateContainer;
    match (create, a.exists) {
        (true, true) => xml_error(409, "ContainerAlreadyExists", "The specified container already exists.", &[]),
        (false, false) => xml_error(404, "ContainerNotFound", "The specified container does not exist.", &[]),
        (true, false) => {
            let access = header(headers, "x-ms-blob-public-access");
            let made =
                super::storage::container_created(&sh.store().state, &a.key, now_ms(), &metadata(headers), access);
            match made {
                // The same ETag and time as Resource Manager's view of the container.
                Ok(resource) => {
                    let h = super::storage::container_headers(&resource.body, false);
                    commit_then(sh, vec![Op::PutResource { resource }], || container_answer(201, h))
                }
                Err(e) => xml_error(e.status, &e.code, &e.message, &[]),
            }
        }
        (false, true) => commit_then(sh, super::storage::container_deleted(&a.key, &a.account, &a.container), || {
            ok(202, Vec::new(), &[])
        }),
    }
}

/// An answer with a container's headers (`storage::container_headers`).
fn container_answer(status: u16, h: Vec<(String, String)>) -> Response {
    ok(status, Vec::new(), &h.iter().map(|(k, v)| (k.as_str(), v.clone())).collect::<Vec<_>>())
}

/// The handler, behind the pipeline: the body is read only now.
async fn entry(
    State(sh): State<Arc<Shared>>,
    Extension(a): Extension<Admitted>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // The pipeline has read the body already, within the blob plane's limit.
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return too_large(sh.limits.blob_body);
    };
    let q = query_pairs(uri.query());
    let key = &a.key;
    match a.operation {
        Operation::List => list(&sh, &a.account, &a.container, &q),
        Operation::ContainerProperties => {
            let container =
                sh.store().state.resources.get(&a.container_id.to_ascii_lowercase()).map(|r| r.body.clone());
            container_answer(200, super::storage::container_headers(&container.unwrap_or_default(), true))
        }
        Operation::Read => download(&sh, key, &headers, method == Method::HEAD, &a.overrides),
        Operation::Write => match a.comp.as_str() {
            "block" => put_block(&sh, key, &q, &body),
            "blocklist" => put_block_list(&sh, key, &headers, &body),
            _ => upload(&sh, key, &headers, body),
        },
        Operation::CreateContainer | Operation::DeleteContainer => container_write_answer(&sh, &a, &headers),
        Operation::Delete if !a.exists => xml_error(404, "BlobNotFound", "The specified blob does not exist.", &[]),
        Operation::Delete => {
            sh.blocks.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
            commit_then(&sh, vec![Op::DeleteBlob { key: key.clone() }], || ok(202, Vec::new(), &[]))
        }
    }
}

/// Who may do what: a principal (RBAC) or a SAS's grant.
#[derive(Clone)]
enum Auth {
    Principal(String),
    Sas(super::sas::Grant),
}

/// What a request on a blob or container asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    List,
    ContainerProperties,
    Read,
    /// Put Blob, Put Block and Put Block List: a write (`w`), or a create (`c`) when the
    /// blob does not exist yet.
    Write,
    Delete,
    CreateContainer,
    DeleteContainer,
}

/// The operation a method, `restype=container` and `comp` ask for; other combinations are
/// answered here.
fn operation(method: &Method, container_op: bool, comp: &str) -> Result<Operation, Box<Response>> {
    let not_served = |what: &str| {
        xml_error(
            501,
            "NotImplemented",
            &format!(
                "The requested operation is not implemented on the specified resource: {what} is not served by the local cloud."
            ),
            &[],
        )
    };
    let bad_verb = || xml_error(405, "UnsupportedHttpVerb", "The resource doesn't support specified Http Verb.", &[]);
    if container_op {
        return match (method.clone(), comp) {
            (Method::GET, "list") => Ok(Operation::List),
            (Method::GET | Method::HEAD | Method::PUT, "acl") => {
                Err(Box::new(not_served("container access policies (comp=acl)")))
            }
            (Method::GET | Method::HEAD, "") => Ok(Operation::ContainerProperties),
            (_, "" | "list") => Err(Box::new(bad_verb())),
            (_, other) => Err(Box::new(not_served(&format!("comp={other} on a container")))),
        };
    }
    match (method.clone(), comp) {
        (Method::GET | Method::HEAD, "") => Ok(Operation::Read),
        (Method::PUT, "" | "block" | "blocklist") => Ok(Operation::Write),
        (Method::DELETE, "") => Ok(Operation::Delete),
        (_, "" | "block" | "blocklist") => Err(Box::new(bad_verb())),
        (_, other) => Err(Box::new(not_served(&format!("comp={other} on a blob")))),
    }
}

/// The pipeline's bearer outcome for a storage request: the caller's object id, or the
/// refusal in storage's words (the scheme, then the service version, then the token).
fn bearer_refusal(sh: &Shared, bearer: &Bearer, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let Bearer::Checked(checked) = bearer else {
        return Err(Box::new(xml_error(
            403,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
            &[],
        )));
    };
    let version = header(headers, "x-ms-version").unwrap_or_default();
    if version.is_empty() || version < "2017-11-09" {
        return Err(Box::new(xml_error_detail(
            403,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
            Some("Authentication scheme Bearer is not supported in this version."),
            &[],
        )));
    }
    match checked {
        Ok(caller) => Ok(caller.object_id.clone()),
        Err(Refusal::Expired { .. }) => Err(Box::new(xml_error(
            401,
            "InvalidAuthenticationInfo",
            "Lifetime validation failed. The token is expired.",
            &[("www-authenticate", challenge(sh))],
        ))),
        Err(_) => Err(Box::new(invalid_token(sh))),
    }
}

/// Commit `ops` and answer `done()`, or a 500 when the state cannot be written.
fn commit_then(sh: &Shared, ops: Vec<Op>, done: impl FnOnce() -> Response) -> Response {
    match sh.commit(ops) {
        Ok(()) => done(),
        Err(e) => xml_error(500, "InternalError", &format!("The server encountered an internal error: {e}"), &[]),
    }
}

/// A bearer token this account does not accept (bad signature, wrong audience).
fn invalid_token(sh: &Shared) -> Response {
    xml_error(
        401,
        "InvalidAuthenticationInfo",
        "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
        &[("www-authenticate", challenge(sh))],
    )
}

/// An HTTP date (`Last-Modified`): `Tue, 01 Aug 2023 10:00:00 GMT`.
pub(super) fn http_date(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            ))
            .ok()
        })
        .unwrap_or_default()
}

pub(super) fn challenge(sh: &Shared) -> String {
    format!(
        "Bearer authorization_uri={}/{}/oauth2/authorize resource_id=https://storage.azure.com",
        sh.base_url, sh.info.tenant_id
    )
}

/// The content headers a write sets (`x-ms-blob-cache-control` …), by the response header
/// a read answers them under.
fn content_headers(headers: &HeaderMap) -> std::collections::BTreeMap<String, String> {
    ["cache-control", "content-disposition", "content-encoding", "content-language"]
        .iter()
        .filter_map(|h| Some((h.to_string(), header(headers, &format!("x-ms-blob-{h}"))?.to_string())))
        .collect()
}

fn metadata(headers: &HeaderMap) -> std::collections::BTreeMap<String, String> {
    headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().strip_prefix("x-ms-meta-")?.to_string(), v.to_str().ok()?.to_string())))
        .collect()
}

/// Store a committed blob and answer 201 with its ETag.
fn store_blob(sh: &Shared, key: &str, blob: StoredBlob, md5_header: Option<String>) -> Response {
    let etag = blob.etag.clone();
    // Uncommitted blocks of a blob go when it is written whole.
    sh.blocks.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    commit_then(sh, vec![Op::PutBlob { key: key.to_string(), blob }], || {
        let mut h = vec![("etag", etag), ("x-ms-request-server-encrypted", "true".to_string())];
        h.extend(md5_header.map(|m| ("content-md5", m)));
        ok(201, Vec::new(), &h)
    })
}

fn new_etag() -> String {
    format!("\"0x{:X}\"", now_ms())
}

fn upload(sh: &Shared, key: &str, headers: &HeaderMap, body: Bytes) -> Response {
    if header(headers, "x-ms-blob-type").is_none() {
        return xml_error(
            400,
            "MissingRequiredHeader",
            "An HTTP header that's mandatory for this request is not specified.",
            &[],
        );
    }
    let content_type = header(headers, "x-ms-blob-content-type")
        .or_else(|| header(headers, "content-type"))
        .unwrap_or("application/octet-stream")
        .to_string();
    let md5 = STANDARD.encode(md5(&body));
    let blob = StoredBlob {
        data: STANDARD.encode(&body),
        content_type,
        etag: new_etag(),
        last_modified_ms: now_ms(),
        metadata: metadata(headers),
        headers: content_headers(headers),
        // `x-ms-blob-content-md5` sets the property as given; else it is the body's MD5.
        content_md5: header(headers, "x-ms-blob-content-md5").map(str::to_string),
        blocks: Vec::new(),
    };
    store_blob(sh, key, blob, Some(md5))
}

/// The longest block id Azure accepts, in bytes before base64.
const MAX_BLOCK_ID: usize = 64;

/// Put Block (`comp=block&blockid=`): keep the block, uncommitted, until a Put Block List.
fn put_block(sh: &Shared, key: &str, q: &[(String, String)], body: &[u8]) -> Response {
    let id = query_get(q, "blockid").unwrap_or_default().to_string();
    let valid = STANDARD.decode(&id).is_ok_and(|d| !d.is_empty() && d.len() <= MAX_BLOCK_ID);
    if !valid {
        return xml_error(
            400,
            "InvalidQueryParameterValue",
            "Value for one of the query parameters specified in the request URI is invalid.",
            &[("x-ms-query-parameter-name", "blockid".into()), ("x-ms-query-parameter-value", id)],
        );
    }
    let mut blocks = sh.blocks.lock().unwrap_or_else(|p| p.into_inner());
    let pending = blocks.entry(key.to_string()).or_default();
    // All block ids of one blob have the same length.
    if pending.keys().next().is_some_and(|other| other.len() != id.len()) {
        return xml_error(400, "InvalidBlobOrBlock", "The specified blob or block content is invalid.", &[]);
    }
    pending.insert(id, body.to_vec());
    drop(blocks);
    ok(
        201,
        Vec::new(),
        &[("content-md5", STANDARD.encode(md5(body))), ("x-ms-request-server-encrypted", "true".into())],
    )
}

/// Which list a block of a Put Block List names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockFrom {
    Committed,
    Uncommitted,
    Latest,
}

/// The entries of `<BlockList><Latest>id</Latest>…</BlockList>`; `None` when the body is not one.
fn parse_block_list(xml: &str) -> Option<Vec<(BlockFrom, String)>> {
    let mut rest = xml.trim_start_matches('\u{feff}').trim();
    if rest.starts_with("<?xml") {
        rest = rest[rest.find("?>")? + 2..].trim_start();
    }
    rest = rest.strip_prefix("<BlockList>")?.trim_end().strip_suffix("</BlockList>")?;
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Some(out);
        }
        let (tag, from) = [
            ("Latest", BlockFrom::Latest),
            ("Committed", BlockFrom::Committed),
            ("Uncommitted", BlockFrom::Uncommitted),
        ]
        .into_iter()
        .find(|(t, _)| rest.starts_with(&format!("<{t}>")))?;
        let body = &rest[tag.len() + 2..];
        let end = body.find(&format!("</{tag}>"))?;
        let id = body[..end].trim().replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
        out.push((from, id));
        rest = &body[end + tag.len() + 3..];
    }
}

/// Put Block List (`comp=blocklist`): the blob becomes the listed blocks, in order.
fn put_block_list(sh: &Shared, key: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let invalid = || xml_error(400, "InvalidBlockList", "The specified block list is invalid.", &[]);
    let Some(list) = std::str::from_utf8(body).ok().and_then(parse_block_list) else {
        return xml_error(400, "InvalidXmlDocument", "XML specified is not syntactically valid.", &[]);
    };
    let existing = sh.store().state.blobs.get(key).cloned();
    let committed: Vec<u8> =
        existing.as_ref().map(|b| STANDARD.decode(&b.data).unwrap_or_default()).unwrap_or_default();
    // Committed blocks by id: their slice of the current content.
    let mut offsets = std::collections::HashMap::new();
    let mut at = 0usize;
    for (id, len) in existing.as_ref().map(|b| b.blocks.as_slice()).unwrap_or_default() {
        let len = *len as usize;
        offsets.insert(id.clone(), (at, len));
        at += len;
    }
    let pending = sh.blocks.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned().unwrap_or_default();
    let mut data = Vec::new();
    let mut blocks = Vec::new();
    for (from, id) in list {
        let uncommitted = || pending.get(&id).cloned();
        let from_committed = || offsets.get(&id).and_then(|&(a, n)| committed.get(a..a + n)).map(<[u8]>::to_vec);
        let bytes = match from {
            BlockFrom::Uncommitted => uncommitted(),
            BlockFrom::Committed => from_committed(),
            BlockFrom::Latest => uncommitted().or_else(from_committed),
        };
        let Some(bytes) = bytes else { return invalid() };
        blocks.push((id, bytes.len() as u64));
        data.extend_from_slice(&bytes);
    }
    let blob = StoredBlob {
        data: STANDARD.encode(&data),
        content_type: header(headers, "x-ms-blob-content-type").unwrap_or("application/octet-stream").to_string(),
        etag: new_etag(),
        last_modified_ms: now_ms(),
        metadata: metadata(headers),
        headers: content_headers(headers),
        // A block list sets no MD5 of its own: only the one the client gives.
        content_md5: Some(header(headers, "x-ms-blob-content-md5").unwrap_or_default().to_string()),
        blocks,
    };
    store_blob(sh, key, blob, None)
}

/// The `Content-MD5` a blob reports, if it has one.
fn content_md5(b: &StoredBlob, data: &[u8]) -> Option<String> {
    match &b.content_md5 {
        None => Some(STANDARD.encode(md5(data))),
        Some(m) if m.is_empty() => None,
        Some(m) => Some(m.clone()),
    }
}

/// The `Content-MD5` the service reports for a block blob upload.
fn md5(body: &[u8]) -> Vec<u8> {
    use md5::{Digest, Md5};
    Md5::digest(body).to_vec()
}

/// Text escaped for an XML element.
fn xml_text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Get Blob / Get Blob Properties; `overrides` (from a SAS's `rscc` … `rsct`) replace the
/// blob's own content headers.
fn download(sh: &Shared, key: &str, headers: &HeaderMap, head: bool, overrides: &[(&str, String)]) -> Response {
    let Some(b) = sh.store().state.blobs.get(key).cloned() else {
        return xml_error(404, "BlobNotFound", "The specified blob does not exist.", &[]);
    };
    let data = STANDARD.decode(&b.data).unwrap_or_default();
    let total = data.len();
    let lm = http_date(b.last_modified_ms);
    let md5 = content_md5(&b, &data);
    let meta: Vec<(String, String)> = b.metadata.iter().map(|(k, v)| (format!("x-ms-meta-{k}"), v.clone())).collect();
    let mut base = vec![
        ("x-ms-blob-type", "BlockBlob".to_string()),
        ("content-type", b.content_type.clone()),
        ("etag", b.etag.clone()),
        ("last-modified", lm),
    ];
    base.extend(b.headers.iter().filter_map(|(k, v)| {
        ["cache-control", "content-disposition", "content-encoding", "content-language"]
            .into_iter()
            .find(|h| h == k)
            .map(|h| (h, v.clone()))
    }));
    base.extend(meta.iter().map(|(k, v)| (k.as_str(), v.clone())));
    // A SAS's overrides win over the blob's own headers (later headers replace earlier ones).
    base.extend(overrides.iter().cloned());
    let range = requested_range(headers, total);
    match range {
        Some((a, z)) if a < total && a <= z => {
            let slice = data[a..=z].to_vec();
            let mut h = base;
            h.push(("content-range", format!("bytes {a}-{z}/{total}")));
            // A range answers the whole blob's MD5 under its own name.
            h.extend(md5.map(|m| ("x-ms-blob-content-md5", m)));
            if head {
                h.push(("content-length", (z - a + 1).to_string()));
            }
            ok(206, if head { Vec::new() } else { slice }, &h)
        }
        Some(_) => {
            xml_error(416, "InvalidRange", "The range specified is invalid for the current size of the resource.", &[])
        }
        None => {
            base.extend(md5.map(|m| ("content-md5", m)));
            if head {
                base.push(("content-length", total.to_string()));
            }
            ok(200, if head { Vec::new() } else { data }, &base)
        }
    }
}

/// The byte range `x-ms-range` (or `Range`) asks for, clipped to `total`: `(first, last)`.
pub(super) fn requested_range(headers: &HeaderMap, total: usize) -> Option<(usize, usize)> {
    header(headers, "x-ms-range").or_else(|| header(headers, "range")).and_then(|r| r.strip_prefix("bytes=")).and_then(
        |r| {
            let (a, z) = r.split_once('-')?;
            let a: usize = a.parse().ok()?;
            let z: usize = if z.is_empty() { total.saturating_sub(1) } else { z.parse().ok()? };
            Some((a, z.min(total.saturating_sub(1))))
        },
    )
}

/// One entry of a listing: a blob, or a `BlobPrefix` that folds the names past a delimiter.
enum Entry {
    Blob(String, StoredBlob),
    Prefix(String),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Blob(n, _) | Entry::Prefix(n) => n,
        }
    }
}

/// List Blobs with `prefix`, `delimiter` (names past the delimiter fold into one
/// `BlobPrefix`), and paging: at most `maxresults` entries (1–5000, default 5000) from
/// `marker` on, and a `NextMarker` when more remain. Markers are opaque to clients (here the
/// next entry's name, base64).
fn list(sh: &Shared, account: &str, container: &str, q: &[(String, String)]) -> Response {
    let name_prefix = query_get(q, "prefix").unwrap_or_default();
    let delimiter = query_get(q, "delimiter");
    let max = match query_get(q, "maxresults").map(str::parse::<usize>) {
        None => MAX_RESULTS,
        Some(Ok(n)) if n >= 1 => n.min(MAX_RESULTS),
        Some(_) => {
            let v = query_get(q, "maxresults").unwrap_or_default().to_string();
            return xml_error(
                400,
                "OutOfRangeQueryParameterValue",
                "One of the query parameters specified in the request URI is outside the permissible range.",
                &[("x-ms-query-parameter-name", "maxresults".into()), ("x-ms-query-parameter-value", v)],
            );
        }
    };
    let marker = query_get(q, "marker").filter(|m| !m.is_empty());
    let from = match marker.map(|m| STANDARD.decode(m).ok().and_then(|d| String::from_utf8(d).ok())) {
        None => String::new(),
        Some(Some(name)) => name,
        Some(None) => {
            return xml_error(
                400,
                "InvalidQueryParameterValue",
                "Value for one of the query parameters specified in the request URI is invalid.",
                &[("x-ms-query-parameter-name", "marker".into())],
            );
        }
    };
    let prefix = format!("{account}/{container}/");
    let mut entries: Vec<Entry> = Vec::new();
    {
        let st = sh.store();
        for (k, b) in st.state.blobs.range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix)) {
            let name = &k[prefix.len()..];
            let Some(rest) = name.strip_prefix(name_prefix) else { continue };
            if let Some(d) = delimiter.filter(|d| !d.is_empty())
                && let Some(at) = rest.find(d)
            {
                let p = format!("{name_prefix}{}", &rest[..at + d.len()]);
                if entries.last().is_none_or(|e| e.name() != p) {
                    entries.push(Entry::Prefix(p));
                }
                continue;
            }
            entries.push(Entry::Blob(name.to_string(), b.clone()));
        }
    }
    let mut page = entries.into_iter().skip_while(|e| e.name() < from.as_str());
    let shown: Vec<Entry> = page.by_ref().take(max).collect();
    let next = page.next().map(|e| STANDARD.encode(e.name()));
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ServiceEndpoint=\"{}/{account}/\" ContainerName=\"{container}\">",
        sh.blob_base
    );
    if !name_prefix.is_empty() {
        xml.push_str(&format!("<Prefix>{}</Prefix>", xml_text(name_prefix)));
    }
    if let Some(m) = marker {
        xml.push_str(&format!("<Marker>{}</Marker>", xml_text(m)));
    }
    if query_get(q, "maxresults").is_some() {
        xml.push_str(&format!("<MaxResults>{max}</MaxResults>"));
    }
    if let Some(d) = delimiter {
        xml.push_str(&format!("<Delimiter>{}</Delimiter>", xml_text(d)));
    }
    xml.push_str("<Blobs>");
    for e in &shown {
        match e {
            Entry::Prefix(p) => xml.push_str(&format!("<BlobPrefix><Name>{}</Name></BlobPrefix>", xml_text(p))),
            Entry::Blob(name, b) => {
                let data = STANDARD.decode(&b.data).unwrap_or_default();
                let md5 = content_md5(b, &data)
                    .map(|m| format!("<Content-MD5>{m}</Content-MD5>"))
                    .unwrap_or_else(|| "<Content-MD5 />".into());
                xml.push_str(&format!(
                    "<Blob><Name>{}</Name><Properties><Content-Length>{}</Content-Length><Content-Type>{}</Content-Type>{md5}<Etag>{}</Etag><BlobType>BlockBlob</BlobType></Properties></Blob>",
                    xml_text(name),
                    data.len(),
                    xml_text(&b.content_type),
                    xml_text(&b.etag)
                ));
            }
        }
    }
    match next {
        Some(n) => xml.push_str(&format!("</Blobs><NextMarker>{n}</NextMarker></EnumerationResults>")),
        None => xml.push_str("</Blobs><NextMarker /></EnumerationResults>"),
    }
    ok(200, xml.into_bytes(), &[("content-type", "application/xml".into())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_lists_parse_in_order_and_refuse_other_xml() {
        let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<BlockList>\n  <Latest>AAA=</Latest><Committed>AAE=</Committed>\n  <Uncommitted>AAI=</Uncommitted></BlockList>";
        assert_eq!(
            parse_block_list(xml),
            Some(vec![
                (BlockFrom::Latest, "AAA=".into()),
                (BlockFrom::Committed, "AAE=".into()),
                (BlockFrom::Uncommitted, "AAI=".into())
            ])
        );
        assert_eq!(parse_block_list("<BlockList></BlockList>"), Some(Vec::new()));
        assert_eq!(parse_block_list("<BlockList><Other>x</Other></BlockList>"), None);
        assert_eq!(parse_block_list("<BlockList><Latest>x</BlockList>"), None);
        assert_eq!(parse_block_list("not xml"), None);
    }
}
