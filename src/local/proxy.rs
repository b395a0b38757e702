//! The local cloud's HTTPS proxy: unmodified tools reach the local cloud by Azure's own host
//! names (`management.azure.com`, `login.microsoftonline.com`, `graph.microsoft.com`,
//! `{account}.blob.core.windows.net`, `{account}.dfs.core.windows.net`,
//! `{vault}.vault.azure.net`, `{store}.azuredatalakestore.net`) with
//! `HTTPS_PROXY=http://127.0.0.1:PORT` and the local CA trusted.
//!
//! It listens on 127.0.0.1 only and answers `CONNECT host:443` for those names alone: it
//! terminates TLS itself with a leaf for the name ([`super::tls::Leaves`]) and serves the
//! decrypted stream with the plane's own router, so every request goes through the one
//! pipeline (authentication and RBAC once). Any other host, any IP literal, any other port
//! and any request that is not `CONNECT` gets 403 with a body saying why. There is no
//! forwarding code: the proxy never opens a connection and never resolves a name.
//!
//! The edge translates both ways ([`Names`]): a request's host becomes the plane's local path
//! (`{account}.blob.core.windows.net/c/b` → `/{account}/c/b`, `graph.microsoft.com/v1.0/…` →
//! `/graph/v1.0/…`); an answer's local addresses become Azure's host names (`vaultUri`,
//! `primaryEndpoints`, LRO URLs, the discovery documents, challenges). The rule: an answer
//! names the hosts the request came in by. The same request sent straight to 127.0.0.1
//! gets the loopback addresses, as before.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::shared::{LogEntry, Shared, now_ms};
use super::tls::Leaves;

/// Azure Resource Manager.
pub const ARM_HOST: &str = "management.azure.com";
/// Microsoft Entra ID: the token issuer and its discovery documents.
pub const LOGIN_HOST: &str = "login.microsoftonline.com";
/// Microsoft Graph.
pub const GRAPH_HOST: &str = "graph.microsoft.com";
/// `{account}` + this: the blob service.
pub const BLOB_SUFFIX: &str = ".blob.core.windows.net";
/// `{account}` + this: Data Lake Storage Gen2.
pub const DFS_SUFFIX: &str = ".dfs.core.windows.net";
/// `{vault}` + this: Key Vault.
pub const VAULT_SUFFIX: &str = ".vault.azure.net";
/// `{store}` + this: Data Lake Store Gen1 (WebHDFS).
pub const STORE_SUFFIX: &str = ".azuredatalakestore.net";

/// The longest `CONNECT` request head read.
const HEAD_LIMIT: usize = 8 * 1024;

/// The largest answer body the edge reads to translate (larger ones pass untouched).
const TRANSLATE_LIMIT: usize = 64 * 1024 * 1024;

/// A host name the proxy serves, and what serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Arm,
    Login,
    Graph,
    Blob(String),
    Dfs(String),
    Vault(String),
    Store(String),
}

impl Host {
    /// The host name, as Azure spells it.
    pub fn name(&self) -> String {
        match self {
            Host::Arm => ARM_HOST.into(),
            Host::Login => LOGIN_HOST.into(),
            Host::Graph => GRAPH_HOST.into(),
            Host::Blob(a) => format!("{a}{BLOB_SUFFIX}"),
            Host::Dfs(a) => format!("{a}{DFS_SUFFIX}"),
            Host::Vault(v) => format!("{v}{VAULT_SUFFIX}"),
            Host::Store(s) => format!("{s}{STORE_SUFFIX}"),
        }
    }
}

/// Why a `CONNECT` is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not `host:port`.
    Malformed(String),
    /// Not a host of the local cloud (IP literals included).
    NotServed(String),
    /// A served host, on another port than 443.
    Port(String, String),
    /// A vault or Data Lake Store the local cloud does not have.
    NoSuch { what: &'static str, name: String },
}

impl Refused {
    /// The status and the body the client gets.
    pub fn answer(&self) -> (u16, String) {
        let served = "management.azure.com, login.microsoftonline.com, graph.microsoft.com, {account}.blob.core.windows.net, {account}.dfs.core.windows.net, {vault}.vault.azure.net and {store}.azuredatalakestore.net, on port 443";
        match self {
            Refused::Malformed(t) => (400, format!("idlab local cloud proxy: `{t}` is not host:port.\n")),
            Refused::NotServed(h) => (
                403,
                format!(
                    "idlab local cloud proxy: {h} is not a host of the local cloud, so it is refused; nothing leaves this machine. It serves {served}.\n"
                ),
            ),
            Refused::Port(h, p) => (
                403,
                format!(
                    "idlab local cloud proxy: {h} is served on port 443 only, not {p}; nothing leaves this machine.\n"
                ),
            ),
            Refused::NoSuch { what, name } => (
                404,
                format!(
                    "idlab local cloud proxy: the local cloud has no {what} named `{name}` (on Azure the name would not resolve).\n"
                ),
            ),
        }
    }
}

/// A name label of a served host: lower-case letters, digits and inner hyphens.
fn label(s: &str) -> Option<String> {
    let ok = (1..=63).contains(&s.len())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    ok.then(|| s.to_string())
}

/// The host a `CONNECT` target names, if the proxy serves it.
///
/// # Errors
/// Why the target is refused (see [`Refused::answer`]).
pub fn host_of(target: &str) -> Result<Host, Refused> {
    let (host, port) = match target.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => (h, p),
        _ => return Err(Refused::Malformed(target.to_string())),
    };
    let lower = host.trim_end_matches('.').to_ascii_lowercase();
    let found = match lower.as_str() {
        ARM_HOST => Some(Host::Arm),
        LOGIN_HOST => Some(Host::Login),
        GRAPH_HOST => Some(Host::Graph),
        h => {
            let first = |suffix: &str| h.strip_suffix(suffix).and_then(label);
            first(BLOB_SUFFIX)
                .map(Host::Blob)
                .or_else(|| first(DFS_SUFFIX).map(Host::Dfs))
                .or_else(|| first(VAULT_SUFFIX).map(Host::Vault))
                .or_else(|| first(STORE_SUFFIX).map(Host::Store))
        }
    };
    let Some(found) = found else {
        return Err(Refused::NotServed(host.to_string()));
    };
    if port != "443" {
        return Err(Refused::Port(host.to_string(), port.to_string()));
    }
    Ok(found)
}

/// The local cloud's loopback addresses and the Azure names they stand for, read from the
/// state when an answer holds a loopback address.
#[derive(Debug, Clone, Default)]
pub struct Names {
    arm: u16,
    blob: u16,
    dfs: u16,
    tenant: String,
    vaults: HashMap<u16, String>,
    stores: HashMap<u16, String>,
}

/// The port of `https://127.0.0.1:PORT`.
fn port_of(base: &str) -> u16 {
    base.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).unwrap_or(0)
}

/// The first path segments that are the token issuer's (a tenant, or its aliases).
const LOGIN_TENANTS: &[&str] = &["common", "organizations", "consumers"];

impl Names {
    pub fn of(sh: &Shared) -> Names {
        let st = sh.store();
        let vaults = st
            .state
            .ports
            .iter()
            .filter_map(|(purpose, port)| Some((*port, purpose.strip_prefix("vault:")?.to_string())))
            .collect();
        let stores = st
            .state
            .resources
            .values()
            .filter(|r| r.kind == super::table::DATA_LAKE_STORES)
            .filter_map(|r| {
                let port = u16::try_from(r.body.pointer("/_idlab/port")?.as_u64()?).ok()?;
                Some((port, r.id.rsplit('/').next()?.to_ascii_lowercase()))
            })
            .collect();
        Names {
            arm: port_of(&sh.base_url),
            blob: port_of(&sh.blob_base),
            dfs: port_of(&sh.dfs_base),
            tenant: sh.info.tenant_id.clone(),
            vaults,
            stores,
        }
    }

    /// The Azure URL of the local URL `https://127.0.0.1:{port}{rest}`, if it is one of the
    /// local cloud's.
    fn public(&self, port: u16, rest: &str) -> Option<String> {
        let first = rest.trim_start_matches('/').split(['/', '?']).next().unwrap_or_default();
        let account_host = |suffix: &str| {
            let tail = rest.trim_start_matches('/').strip_prefix(first).unwrap_or_default();
            (!first.is_empty()).then(|| {
                format!("https://{}{suffix}{}", first.to_ascii_lowercase(), if tail.is_empty() { "/" } else { tail })
            })
        };
        if port == self.arm && port != 0 {
            if first.eq_ignore_ascii_case(&self.tenant) || LOGIN_TENANTS.iter().any(|t| first.eq_ignore_ascii_case(t)) {
                return Some(format!("https://{LOGIN_HOST}{rest}"));
            }
            if first.eq_ignore_ascii_case("graph") {
                let tail = &rest.trim_start_matches('/')[first.len()..];
                return Some(format!("https://{GRAPH_HOST}{}", if tail.is_empty() { "/" } else { tail }));
            }
            return Some(format!("https://{ARM_HOST}{rest}"));
        }
        if port == self.blob && port != 0 {
            return account_host(BLOB_SUFFIX);
        }
        if port == self.dfs && port != 0 {
            return account_host(DFS_SUFFIX);
        }
        if let Some(v) = self.vaults.get(&port) {
            return Some(format!("https://{v}{VAULT_SUFFIX}{}", if rest.is_empty() { "/" } else { rest }));
        }
        self.stores.get(&port).map(|s| format!("https://{s}{STORE_SUFFIX}{rest}"))
    }

    /// `text` with every local URL (`https://127.0.0.1:PORT…`) the local cloud serves replaced
    /// by its Azure URL; a URL ends at a quote, a space, a comma, `<`, `>` or the end.
    pub fn translate(&self, text: &str) -> String {
        const LOCAL: &str = "https://127.0.0.1:";
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(LOCAL) {
            out.push_str(&rest[..at]);
            let url = &rest[at..];
            let end =
                url.find(|c: char| c == '"' || c == '\'' || c == ',' || c == '<' || c == '>' || c.is_whitespace());
            let (url, after) = url.split_at(end.unwrap_or(url.len()));
            let tail = &url[LOCAL.len()..];
            let digits = tail.find(|c: char| !c.is_ascii_digit()).unwrap_or(tail.len());
            let public = tail[..digits].parse::<u16>().ok().and_then(|port| self.public(port, &tail[digits..]));
            out.push_str(public.as_deref().unwrap_or(url));
            rest = after;
        }
        out.push_str(rest);
        out
    }

    /// A JSON answer with its local addresses translated. Strings under `value` are left
    /// alone when `keep_values` (a Key Vault secret's value is the user's data); the cloud's
    /// own names in the discovery documents become Azure's.
    pub fn translate_json(&self, v: &mut Value, keep_values: bool) {
        match v {
            Value::Object(map) => {
                for (k, x) in map.iter_mut() {
                    match (k.as_str(), x) {
                        ("value", Value::String(_)) if keep_values => {}
                        ("loginEndpoint", Value::String(s)) if self.is_arm_root(s) => {
                            *s = format!("https://{LOGIN_HOST}/")
                        }
                        ("cloud_instance_name", Value::String(s)) => *s = "microsoftonline.com".into(),
                        ("cloud_graph_host_name", Value::String(s)) => *s = "graph.windows.net".into(),
                        ("msgraph_host", Value::String(s)) => *s = GRAPH_HOST.into(),
                        ("endpoint", Value::String(s)) if self.store_endpoint(s).is_some() => {
                            *s = self.store_endpoint(s).unwrap_or_default();
                        }
                        (_, x) => self.translate_json(x, keep_values),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|x| self.translate_json(x, keep_values)),
            Value::String(s) if s.contains("https://127.0.0.1:") => *s = self.translate(s),
            _ => {}
        }
    }

    /// Whether `s` is the ARM base URL itself (the metadata document's login endpoint).
    fn is_arm_root(&self, s: &str) -> bool {
        s.trim_end_matches('/') == format!("https://127.0.0.1:{}", self.arm)
    }

    /// A Data Lake Store's `endpoint` (`127.0.0.1:PORT`) as Azure writes it.
    fn store_endpoint(&self, s: &str) -> Option<String> {
        let port = s.strip_prefix("127.0.0.1:")?.parse::<u16>().ok()?;
        self.stores.get(&port).map(|name| format!("{name}{STORE_SUFFIX}"))
    }
}

/// The planes' routers, handed over by the entry point (the proxy imports no plane).
#[derive(Clone, Copy)]
pub struct Planes {
    /// ARM with the token issuer, discovery and the local Graph (under `/graph`).
    pub arm: fn(Arc<Shared>) -> axum::Router,
    /// Blob, path-style (`/{account}/…`).
    pub blob: fn(Arc<Shared>) -> axum::Router,
    /// Data Lake Storage Gen2, path-style (`/{account}/…`).
    pub dfs: fn(Arc<Shared>) -> axum::Router,
    /// One vault's data plane.
    pub vault: fn(&Arc<Shared>, &str) -> axum::Router,
    /// One Data Lake Store's WebHDFS plane.
    pub store: fn(&Arc<Shared>, &str) -> axum::Router,
}

/// What the proxy shares with its tunnels.
struct Proxy {
    sh: Arc<Shared>,
    leaves: Leaves,
    planes: Planes,
}

/// Serve the proxy on `listener` until `shutdown` fires: each connection holds one of the
/// local cloud's connection slots, as every listener's do.
pub async fn serve(
    sh: Arc<Shared>,
    leaves: Leaves,
    planes: Planes,
    listener: TcpListener,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let proxy = Arc::new(Proxy { sh, leaves, planes });
    loop {
        let Some(next) = crate::local::tls::accept_next(&listener, &proxy.sh.serving, &mut shutdown).await else {
            return;
        };
        let Some((slot, tcp, peer)) = next else { continue };
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let _slot = slot;
            Box::pin(connection(&proxy, tcp, peer)).await;
        });
    }
}

/// Read the request head: its lines, up to [`HEAD_LIMIT`] bytes. `None`: the client sent
/// no complete head.
async fn read_head<R: tokio::io::AsyncBufRead + Unpin>(io: &mut R) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = Vec::new();
        let n = io.read_until(b'\n', &mut line).await.ok()?;
        total += n;
        if n == 0 || total > HEAD_LIMIT {
            return None;
        }
        let text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string();
        if text.is_empty() {
            return Some(lines);
        }
        lines.push(text);
    }
}

/// One client connection: the `CONNECT`, then the tunnel's TLS and HTTP.
async fn connection(proxy: &Proxy, tcp: tokio::net::TcpStream, peer: SocketAddr) {
    let sh = &proxy.sh;
    let mut io = BufReader::new(tcp);
    let Ok(Some(head)) = tokio::time::timeout(sh.serving.header_timeout, read_head(&mut io)).await else {
        return;
    };
    let mut words = head.first().map(|l| l.split_whitespace()).into_iter().flatten();
    let (method, target) = (words.next().unwrap_or_default().to_string(), words.next().unwrap_or_default().to_string());
    let decided = if method.eq_ignore_ascii_case("CONNECT") {
        host_of(&target).and_then(|h| served(sh, h))
    } else {
        // An absolute-form request (`GET http://host/…`) would be forwarded by a proxy that
        // forwards: this one never does.
        Err(Refused::NotServed(target.split('/').nth(2).unwrap_or(&target).to_string()))
    };
    let status = decided.as_ref().map_or_else(|r| r.answer().0, |_| 200);
    // The log never holds a query (a forwarded URL's could carry a signature), nor a long line.
    let logged: String = target.split('?').next().unwrap_or_default().chars().take(256).collect();
    sh.record(LogEntry {
        time_ms: now_ms(),
        method: method.clone(),
        path: logged,
        status,
        principal: None,
        write: false,
    });
    let host = match decided {
        Ok(h) => h,
        Err(refused) => {
            let (status, body) = refused.answer();
            let reason = match status {
                400 => "Bad Request",
                404 => "Not Found",
                _ => "Forbidden",
            };
            let answer = format!(
                "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = io.write_all(answer.as_bytes()).await;
            let _ = io.shutdown().await;
            return;
        }
    };
    if io.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await.is_err() || io.flush().await.is_err() {
        return;
    }
    let Ok(config) = proxy.leaves.config_for(&host.name()) else { return };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let Ok(Ok(tls)) = tokio::time::timeout(sh.serving.handshake_timeout, acceptor.accept(io)).await else {
        return;
    };
    let router = router_for(sh, &proxy.planes, host);
    super::tls::serve_stream(tls, peer, router, &sh.serving).await;
}

/// A served host, if the local cloud has it: vaults and Data Lake Stores must exist (their
/// planes run); storage accounts are the blob and dfs planes' to answer for.
fn served(sh: &Shared, host: Host) -> Result<Host, Refused> {
    let running = |m: &std::sync::Mutex<HashMap<String, tokio::sync::watch::Sender<bool>>>, name: &str| {
        m.lock().unwrap_or_else(|p| p.into_inner()).contains_key(name)
    };
    match &host {
        Host::Vault(v) if !running(&sh.vaults_running, v) => {
            Err(Refused::NoSuch { what: "Key Vault", name: v.clone() })
        }
        Host::Store(s) if !running(&sh.datalake_running, s) => {
            Err(Refused::NoSuch { what: "Data Lake Store", name: s.clone() })
        }
        _ => Ok(host),
    }
}

/// How the edge treats one tunnel's requests and answers.
#[derive(Debug, Clone)]
struct Edge {
    /// Put before the request's path (the plane's local path for the host).
    prefix: String,
    /// Key Vault: secret values are never translated.
    keep_values: bool,
    /// Blob: only the list answers (`comp=list`) carry the service's address in their body.
    lists_only: bool,
}

/// The plane's router for `host`, behind the edge.
fn router_for(sh: &Arc<Shared>, planes: &Planes, host: Host) -> axum::Router {
    let (router, prefix) = match &host {
        Host::Arm | Host::Login => ((planes.arm)(sh.clone()), String::new()),
        Host::Graph => ((planes.arm)(sh.clone()), "/graph".to_string()),
        Host::Blob(a) => ((planes.blob)(sh.clone()), format!("/{a}")),
        Host::Dfs(a) => ((planes.dfs)(sh.clone()), format!("/{a}")),
        Host::Vault(v) => ((planes.vault)(sh, v), String::new()),
        Host::Store(s) => ((planes.store)(sh, s), String::new()),
    };
    let edge = Edge {
        prefix,
        keep_values: matches!(host, Host::Vault(_)),
        lists_only: matches!(host, Host::Blob(_) | Host::Dfs(_) | Host::Store(_)),
    };
    router.layer(axum::middleware::from_fn_with_state((sh.clone(), Arc::new(edge)), edge_layer))
}

/// The request's path with the host's prefix, its query kept.
fn prefixed(uri: &Uri, prefix: &str) -> Option<Uri> {
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(format!("{prefix}{pq}").parse().ok()?);
    Uri::from_parts(parts).ok()
}

async fn edge_layer(State((sh, edge)): State<(Arc<Shared>, Arc<Edge>)>, mut request: Request, next: Next) -> Response {
    if !edge.prefix.is_empty()
        && let Some(uri) = prefixed(request.uri(), &edge.prefix)
    {
        *request.uri_mut() = uri;
    }
    let listing = request.uri().query().is_some_and(|q| q.split('&').any(|p| p.eq_ignore_ascii_case("comp=list")));
    let response = next.run(request).await;
    let mut names = None;
    let mut names_of = || names.get_or_insert_with(|| Names::of(&sh)).clone();
    let (mut parts, body) = response.into_parts();
    for value in parts.headers.values_mut() {
        if let Ok(text) = value.to_str()
            && text.contains("https://127.0.0.1:")
            && let Ok(v) = HeaderValue::from_str(&names_of().translate(text))
        {
            *value = v;
        }
    }
    let kind = parts.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let json = kind.contains("json");
    let wanted = if edge.lists_only { listing && (json || kind.contains("xml")) } else { json };
    if !wanted {
        return Response::from_parts(parts, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, TRANSLATE_LIMIT).await else {
        return Response::from_parts(parts, broken());
    };
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains("127.0.0.1:") {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let names = names_of();
    let out = if json {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(mut v) => {
                names.translate_json(&mut v, edge.keep_values);
                serde_json::to_vec(&v).unwrap_or_else(|_| bytes.to_vec())
            }
            Err(_) => bytes.to_vec(),
        }
    } else {
        names.translate(&text).into_bytes()
    };
    parts.headers.remove("content-length");
    Response::from_parts(parts, Body::from(out))
}

/// A body that fails at once: the answer's own body broke off (a dropped connection).
fn broken() -> Body {
    Body::from_stream(futures::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "the answer broke off",
        ))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(host_of("management.azure.com:443"), Ok(Host::Arm));
        assert_eq!(host_of("LOGIN.microsoftonline.com.:443"), Ok(Host::Login));
        assert_eq!(host_of("acct1.blob.core.windows.net:443"), Ok(Host::Blob("acct1".into())));
        assert_eq!(host_of("acct1.dfs.core.windows.net:443"), Ok(Host::Dfs("acct1".into())));
        assert_eq!(host_of("my-kv.vault.azure.net:443"), Ok(Host::Vault("my-kv".into())));
        assert_eq!(host_of("store1.azuredatalakestore.net:443"), Ok(Host::Store("store1".into())));
        assert!(matches!(host_of("example.com:443"), Err(Refused::NotServed(_))));
        assert!(matches!(host_of("10.0.0.1:443"), Err(Refused::NotServed(_))));
        assert!(matches!(host_of("127.0.0.1:443"), Err(Refused::NotServed(_))));
        assert!(matches!(host_of("[::1]:443"), Err(Refused::NotServed(_))));
        assert!(matches!(host_of("a.b.blob.core.windows.net:443"), Err(Refused::NotServed(_))));
        assert!(matches!(host_of("management.azure.com.evil.example:443"), Err(Refused::NotServed(_))));
        assert!(matches!(host_of("management.azure.com:80"), Err(Refused::Port(..))));
        assert!(matches!(host_of("management.azure.com"), Err(Refused::Malformed(_))));
    }

    fn names() -> Names {
        Names {
            arm: 40000,
            blob: 40001,
            dfs: 40002,
            tenant: "t-1".into(),
            vaults: HashMap::from([(40003, "kv1".to_string())]),
            stores: HashMap::from([(40004, "dl1".to_string())]),
        }
    }

    #[test]
    fn local_urls_become_azure_ones() {
        let n = names();
        assert_eq!(
            n.translate("https://127.0.0.1:40000/subscriptions/s/providers/x/operations/1?api-version=1"),
            "https://management.azure.com/subscriptions/s/providers/x/operations/1?api-version=1"
        );
        assert_eq!(
            n.translate("Bearer authorization_uri=\"https://127.0.0.1:40000/t-1\", error=\"x\""),
            "Bearer authorization_uri=\"https://login.microsoftonline.com/t-1\", error=\"x\""
        );
        assert_eq!(n.translate("https://127.0.0.1:40000/graph/v1.0/me"), "https://graph.microsoft.com/v1.0/me");
        assert_eq!(n.translate("https://127.0.0.1:40001/acct/"), "https://acct.blob.core.windows.net/");
        assert_eq!(n.translate("https://127.0.0.1:40002/acct/"), "https://acct.dfs.core.windows.net/");
        assert_eq!(n.translate("https://127.0.0.1:40003/secrets/s/v"), "https://kv1.vault.azure.net/secrets/s/v");
        assert_eq!(n.translate("https://127.0.0.1:40003/"), "https://kv1.vault.azure.net/");
        // Not the local cloud's: left as it is.
        assert_eq!(n.translate("https://127.0.0.1:50000/x"), "https://127.0.0.1:50000/x");
        assert_eq!(n.translate("no url here"), "no url here");
    }

    #[test]
    fn json_answers_keep_secret_values() {
        let n = names();
        let mut v = serde_json::json!({
            "value": "https://127.0.0.1:40003/not-translated",
            "id": "https://127.0.0.1:40003/secrets/s/1",
            "list": [{"blob": "https://127.0.0.1:40001/acct/"}],
            "loginEndpoint": "https://127.0.0.1:40000/",
            "endpoint": "127.0.0.1:40004",
        });
        n.translate_json(&mut v, true);
        assert_eq!(v["value"], "https://127.0.0.1:40003/not-translated");
        assert_eq!(v["id"], "https://kv1.vault.azure.net/secrets/s/1");
        assert_eq!(v["list"][0]["blob"], "https://acct.blob.core.windows.net/");
        assert_eq!(v["loginEndpoint"], "https://login.microsoftonline.com/");
        assert_eq!(v["endpoint"], "dl1.azuredatalakestore.net");
        let mut lists = serde_json::json!({"value": [{"id": "https://127.0.0.1:40003/secrets/a"}]});
        n.translate_json(&mut lists, true);
        assert_eq!(lists["value"][0]["id"], "https://kv1.vault.azure.net/secrets/a");
    }
}
