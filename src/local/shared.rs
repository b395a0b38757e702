//! State shared by every plane and service of the local cloud: the connection details, the
//! request log, long-running operations, the store behind its lock, and the one durable
//! [`Shared::commit`]. A leaf of `local` apart from `store`, `faults` and `token`.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use rand::rngs::StdRng;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::faults::Faults;
use super::store::{self, Op, Store};
use super::token::SigningKey;

/// Everything a client needs, printed as one JSON line by `idlab local serve`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConnectionInfo {
    /// ARM base URL, e.g. `https://127.0.0.1:40123`.
    pub arm_url: String,
    /// Authority host (token issuer base URL); tenants live under it.
    pub authority_url: String,
    /// `POST` client credentials here.
    pub token_url: String,
    /// Cloud metadata document for `az cloud register`.
    pub metadata_url: String,
    pub tenant_id: String,
    pub subscription_id: String,
    pub operator_client_id: String,
    pub operator_object_id: String,
    /// File holding the operator's client secret (mode 0600).
    pub operator_secret_file: PathBuf,
    /// The CA certificate to trust (`REQUESTS_CA_BUNDLE`).
    pub ca_file: PathBuf,
    /// The HTTPS proxy serving Azure's host names (`HTTPS_PROXY`), e.g.
    /// `http://127.0.0.1:40124`.
    pub proxy_url: String,
    pub state_dir: PathBuf,
    /// The process serving this state.
    pub pid: u32,
}

/// The local cloud's limits on connections and request bodies (docs/local-cloud.md,
/// "Limits"); `idlab local serve` flags set them.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// From the TCP accept to the end of the TLS handshake.
    pub handshake_timeout: std::time::Duration,
    /// From the handshake (or the previous answer) to a complete request head.
    pub header_timeout: std::time::Duration,
    /// A kept-alive connection with no request in flight for this long is closed.
    pub idle_timeout: std::time::Duration,
    /// Connections open at once, over every port of the local cloud.
    pub max_connections: usize,
    /// Request bodies, in bytes: ARM (and the token issuer, the admin API), blob (one Put
    /// Blob or Put Block), dfs and WebHDFS (one append or create), Key Vault.
    pub arm_body: u64,
    pub blob_body: u64,
    pub dfs_body: u64,
    pub webhdfs_body: u64,
    pub vault_body: u64,
    /// VM Run Command runs scripts on this host as the local cloud's user: off unless
    /// `idlab local serve --allow-run-command`.
    pub run_command: bool,
}

/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;

impl Default for Limits {
    fn default() -> Limits {
        let s = std::time::Duration::from_secs;
        Limits {
            handshake_timeout: s(10),
            header_timeout: s(30),
            idle_timeout: s(120),
            max_connections: 4096,
            // ARM: 4 MiB, as Azure Resource Manager.
            arm_body: 4 * MIB,
            // Azure takes 5,000 MiB in one Put Blob; the local cloud keeps blobs in memory.
            blob_body: 256 * MIB,
            dfs_body: 256 * MIB,
            webhdfs_body: 256 * MIB,
            // Key Vault: a secret value is at most 25 KB; the JSON around it and escapes.
            vault_body: 200 * 1024,
            run_command: false,
        }
    }
}

/// One request in the log (admin API).
#[derive(Debug, Clone, Serialize)]
pub struct LogEntry {
    pub time_ms: u64,
    pub method: String,
    pub path: String,
    pub status: u16,
    /// Object id of the caller, when authenticated.
    pub principal: Option<String>,
    /// Whether the request changed state: PUT, PATCH, DELETE and state-changing POSTs
    /// (not `listKeys`, `listServiceSas`, `checkNameAvailability`, token requests).
    pub write: bool,
}

/// A long-running operation the status URL reports on.
#[derive(Debug, Clone)]
pub struct Operation {
    pub done_ms: u64,
    pub failed: Option<(String, String)>,
    /// For `Location` polling of a PUT: the resource to return when done.
    pub resource: Option<String>,
    pub started_ms: u64,
    /// For `Location` polling of a POST action with a result (Run Command): the final answer.
    pub result: Option<serde_json::Value>,
    /// The status of the final `Location` answer when it is not 200 (`lro::final_status`).
    pub final_status: Option<u16>,
}

/// State shared by every handler.
pub struct Shared {
    pub store: Mutex<Store>,
    /// The state directory's token-signing key (RS256).
    pub key: SigningKey,
    pub base_url: String,
    pub faults: Mutex<Faults>,
    /// ARM's token buckets (`faults.throttling`) and their clock.
    pub buckets: super::throttle::Buckets,
    /// The subscription limits enforced on create (`/_idlab/quotas`).
    pub quotas: Mutex<super::table::quota::Quotas>,
    pub rng: Mutex<StdRng>,
    pub log: Mutex<VecDeque<LogEntry>>,
    pub ops: Mutex<HashMap<String, Operation>>,
    pub imds_running: Mutex<HashMap<String, tokio::sync::watch::Sender<bool>>>,
    /// Lower-cased vault name → the stop signal of its data plane.
    pub vaults_running: Mutex<HashMap<String, tokio::sync::watch::Sender<bool>>>,
    /// The TLS configuration of every HTTPS listener (ARM, blob, vaults, Data Lake stores).
    pub tls: Arc<rustls::ServerConfig>,
    /// The key secret values are sealed with in the state (AES-256-GCM), kept in its own
    /// 0600 file beside it.
    pub vault_key: [u8; 32],
    pub info: ConnectionInfo,
    /// Base URL of the blob data plane (`https://127.0.0.1:PORT`).
    pub blob_base: String,
    /// Base URL of the `dfs` (Data Lake Storage Gen2) data plane (`https://127.0.0.1:PORT`).
    pub dfs_base: String,
    pub allow_crash: bool,
    pub runtime: tokio::runtime::Handle,
    /// Lower-cased Data Lake Store (Gen1) account name → the stop signal of its WebHDFS plane.
    pub datalake_running: Mutex<HashMap<String, tokio::sync::watch::Sender<bool>>>,
    /// Uncommitted blocks (Put Block), by blob key then block id. Kept in memory only: a
    /// restart drops them (Azure keeps them a week), committed blobs are journaled.
    pub blocks: Mutex<HashMap<String, HashMap<String, Vec<u8>>>>,
    /// Connection and body limits.
    pub limits: Limits,
    /// The connection timeouts and the connection cap every listener shares.
    pub serving: super::tls::Serving,
    /// The page size of resource and resource-group lists (`/_idlab/paging`).
    pub page_size: std::sync::atomic::AtomicUsize,
}

/// The request log keeps this many entries.
pub const LOG_CAPACITY: usize = 50_000;

/// ARM's page size for resource and resource-group lists (`$top`'s default and maximum on
/// `/resources`): a longer list answers a `nextLink` with a `$skiptoken`. The admin API
/// (`PUT /_idlab/paging`) or `IDLAB_LOCAL_PAGE_SIZE` shrinks it for tests.
pub const PAGE_SIZE: usize = 1000;

/// The list page size a new local cloud starts with: `IDLAB_LOCAL_PAGE_SIZE` (a test setting),
/// else ARM's.
pub fn initial_page_size() -> usize {
    std::env::var("IDLAB_LOCAL_PAGE_SIZE")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(PAGE_SIZE)
}

impl Shared {
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn faults(&self) -> Faults {
        self.faults.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    pub fn quotas(&self) -> super::table::quota::Quotas {
        *self.quotas.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Draw from the seeded RNG: true with probability `p`.
    pub fn chance(&self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        use rand::RngExt;
        self.rng.lock().unwrap_or_else(|e| e.into_inner()).random_bool(p.min(1.0))
    }
    /// Record one request (the pipeline does, once per request): its method, path (never a
    /// query or a body, which may hold secrets), status and caller.
    pub fn record(&self, e: LogEntry) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() >= LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(e);
    }
    /// Make a batch durable, then honour `crash_after_writes`.
    ///
    /// # Errors
    /// The store could not write its journal.
    pub fn commit(&self, ops: Vec<Op>) -> Result<(), store::StoreError> {
        let writes = {
            let mut st = self.store();
            st.append(ops)?;
            st.writes
        };
        self.after_write(writes);
        Ok(())
    }

    /// After a durable write: exit if `crash_after_writes` says so (serve only).
    pub fn after_write(&self, writes: u64) {
        if !self.allow_crash {
            return;
        }
        if let Some(n) = self.faults().crash_after_writes
            && writes >= n
        {
            // Let the acknowledgement reach the client, then die like a killed process.
            std::thread::spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(30));
                std::process::abort();
            });
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A fresh random GUID.
pub fn guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A strong random secret (base64url, 40 characters).
pub fn random_secret() -> String {
    let bytes: [u8; 30] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Why the local cloud could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    Setup(String),
    #[error("cannot bind 127.0.0.1:{port}: {source}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

/// Bind 127.0.0.1:`want` (or a free port when it is taken or 0).
pub fn bind_loopback(want: u16) -> Result<std::net::TcpListener, StartError> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, want));
    match std::net::TcpListener::bind(addr) {
        Ok(l) => Ok(l),
        Err(_) if want != 0 => std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .map_err(|source| StartError::Bind { port: 0, source }),
        Err(source) => Err(StartError::Bind { port: want, source }),
    }
}
