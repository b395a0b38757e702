//! The local cloud: ARM, an Entra-style token issuer and a managed-identity endpoint per VM,
//! with RBAC enforced, faults injectable and every acknowledged write durable. It behaves
//! like Azure on the wire (`arm-contract.md`), so users can point their own tools at it.
//!
//! Layout (docs/architecture.md, "The local cloud's layout"): [`shared`] (state shared by
//! every handler, the request log, the one durable commit), [`store`] (state and journal),
//! [`pipeline`] (the one request pipeline every plane's server goes through: request id,
//! authentication on the head, ARM faults, authorization, the request log), [`auth`] (the one
//! bearer check, called by the pipeline only), [`token`] (JWTs), [`rbac`], [`principals`], [`http`]
//! (ARM's error envelope), [`tls`]; the ARM front door [`arm`] with the provider table
//! [`table`] (with its api-versions), the provider kit [`request`], [`lro`], [`cascade`] and the provider families in
//! [`providers`] (bodies of [`storage`], [`sql`]); the planes: [`login`] (token endpoint and
//! discovery), [`imds`] (per-VM identity endpoints), [`blob`] with [`sas`], [`dfs`] (Data Lake
//! Storage Gen2), [`datalake`] (Data Lake Store Gen1 and WebHDFS, one port per account) with
//! [`acl`], [`keyvault`] (secrets), [`admin`] (the operator-only admin API under `/_idlab/`);
//! [`proxy`] (Azure's host names on loopback: a CONNECT proxy handing each tunnel to its
//! plane's router); [`faults`], [`attach`].
//!
//! Imports: `arm::id` and `roles` only from the rest of idlab — nothing of the client side,
//! so each keeps the other honest.

pub mod acl;
pub mod admin;
pub mod arm;
pub mod attach;
pub mod auth;
pub mod blob;
pub mod cascade;
pub mod datalake;
pub mod dfs;
pub mod faults;
pub mod federated;
pub mod graph;
pub mod http;
pub mod imds;
pub mod keyvault;
pub mod login;
pub mod lro;
pub mod oidc;
pub mod paths;
pub mod pipeline;
pub mod principals;
pub mod providers;
pub mod proxy;
pub mod rbac;
pub mod request;
pub mod sas;
pub mod shared;
pub mod sql;
pub mod storage;
pub mod store;
pub mod table;
pub mod throttle;
pub mod tls;
pub mod token;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use rand::SeedableRng;
use rand::rngs::StdRng;

use self::faults::Faults;
pub use self::shared::{
    ConnectionInfo, LOG_CAPACITY, Limits, LogEntry, Operation, Shared, StartError, bind_loopback, guid, now_ms,
    random_secret, sha256_hex,
};
use self::store::{Op, Principal, Resource, State, Store};

/// How to start a local cloud.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the state, certificates and operator secret live (`.idlab/local/` by default).
    pub state_dir: PathBuf,
    /// ARM port: `Some(0)` picks a free one; `None` reuses the recorded one (else free).
    pub port: Option<u16>,
    pub faults: Faults,
    /// Honour `crash_after_writes` by exiting the process (only `idlab local serve`).
    pub allow_crash: bool,
    /// Connection timeouts, the connection cap and request body limits.
    pub limits: Limits,
}

impl Config {
    pub fn new(state_dir: impl Into<PathBuf>) -> Config {
        Config {
            state_dir: state_dir.into(),
            port: None,
            faults: Faults::default(),
            allow_crash: false,
            limits: Limits::default(),
        }
    }
}

/// A running local cloud; dropping it stops the server and waits for its thread.
pub struct Cloud {
    pub info: ConnectionInfo,
    /// What `serve` says once at start (e.g. that an older state directory's tokens are
    /// refused from now on).
    pub notices: Vec<String>,
    shared: Arc<Shared>,
    shutdown: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Cloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cloud").field("arm_url", &self.info.arm_url).finish()
    }
}

fn fresh_state(dir: &Path) -> Result<(State, String), StartError> {
    let tenant = guid();
    let subscription = guid();
    let operator = Principal {
        object_id: guid(),
        client_id: guid(),
        display_name: "idlab-operator".into(),
        kind: "ServicePrincipal".into(),
        secret_sha256: None,
        federated: Vec::new(),
        resource_id: None,
        created_ms: 0,
    };
    let secret = random_secret();
    let mut p = operator.clone();
    p.secret_sha256 = Some(sha256_hex(&secret));
    let mut state = State {
        tenant_id: tenant,
        subscription_id: subscription.clone(),
        subscription_name: "idlab local subscription".into(),
        operator_object_id: p.object_id.clone(),
        ..State::default()
    };
    let owner = crate::roles::by_name("Owner").map(|r| r.guid).unwrap_or_default();
    let ra_name = guid();
    let scope = format!("/subscriptions/{subscription}");
    let ra_id = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{ra_name}");
    let ra = Resource {
        id: ra_id.clone(),
        kind: table::ROLE_ASSIGNMENTS.into(),
        body: rbac::role_assignment_body(
            &ra_id,
            &ra_name,
            &scope,
            &format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{owner}"),
            &p.object_id,
            "ServicePrincipal",
            Some("idlab local cloud operator"),
            &p.object_id,
            0,
        ),
        etag: 1,
        created_ms: 0,
        busy_until_ms: 0,
        effective_ms: Some(0),
    };
    state.apply(&Op::PutPrincipal { principal: p });
    state.apply(&Op::PutResource { resource: ra });
    let _ = dir;
    Ok((state, secret))
}

fn write_secret_file(path: &Path, secret: &str) -> Result<(), StartError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| StartError::Setup(format!("{}: {e}", dir.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o600));
    }
    std::fs::write(tmp.path(), secret).map_err(|e| StartError::Setup(format!("{}: {e}", path.display())))?;
    tmp.persist(path).map_err(|e| StartError::Setup(format!("{}: {}", path.display(), e.error)))?;
    Ok(())
}

/// The line to show when a state directory that already existed got a new token-signing key:
/// every token issued before is refused from now on.
fn key_notice(dir: &Path, fresh: bool, origin: token::KeyOrigin, legacy_hmac: bool) -> Option<String> {
    if fresh || origin != token::KeyOrigin::Generated {
        return None;
    }
    let file = dir.join(token::KEY_FILE);
    Some(if legacy_hmac {
        format!(
            "note: {} was made by an earlier idlab that signed tokens with HS256; tokens are now signed with RS256 and a new key ({}), so tokens issued before are refused: get new ones",
            dir.display(),
            file.display()
        )
    } else {
        format!(
            "note: {} had no token-signing key; a new one was made ({}), so tokens issued before are refused: get new ones",
            dir.display(),
            file.display()
        )
    })
}

/// The key that seals secret values in the state: read, or made on first use.
fn vault_key(path: &Path) -> Result<[u8; 32], StartError> {
    let decode = |text: &str| base64::engine::general_purpose::STANDARD.decode(text.trim()).ok();
    if let Ok(text) = std::fs::read_to_string(path) {
        return decode(&text)
            .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
            .ok_or_else(|| StartError::Setup(format!("{}: not a 32-byte base64 key", path.display())));
    }
    let key: [u8; 32] = rand::random();
    write_secret_file(path, &base64::engine::general_purpose::STANDARD.encode(key))?;
    Ok(key)
}

impl Cloud {
    /// Start the local cloud on its own thread and runtime, bound to 127.0.0.1 only.
    ///
    /// # Errors
    /// The state cannot be opened, certificates cannot be made, or no port can be bound.
    pub fn start(config: Config) -> Result<Cloud, StartError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = config.state_dir.clone();
        store::private_dir(&dir).map_err(|e| StartError::Setup(format!("{}: {e}", dir.display())))?;
        let dir = dir.canonicalize().unwrap_or(dir);
        let secret_path = dir.join("operator.secret");
        let mut new_secret = None;
        let store = Store::open(&dir, || match fresh_state(&dir) {
            Ok((s, secret)) => {
                new_secret = Some(secret);
                s
            }
            Err(_) => State::default(),
        })?;
        let fresh = new_secret.is_some();
        if let Some(secret) = new_secret {
            write_secret_file(&secret_path, &secret)?;
        }
        let (key, origin) = token::load_or_create(&dir).map_err(StartError::Setup)?;
        let mut notices: Vec<String> =
            key_notice(&dir, fresh, origin, !store.state.signing_key.is_empty()).into_iter().collect();
        let vault_key = vault_key(&dir.join("vault.key"))?;
        let pki = tls::Pki::load_or_create(&dir).map_err(StartError::Setup)?;
        let tls_config = pki.server_config().map_err(StartError::Setup)?;
        let leaves = pki.leaves().map_err(StartError::Setup)?;
        if pki.made && !fresh {
            notices.push(format!(
                "note: {} kept no CA key, which the proxy's certificates need: a new CA was made, trust the new {}",
                dir.display(),
                pki.ca_path.display()
            ));
        }
        let want = config.port.unwrap_or_else(|| store.state.ports.get("arm").copied().unwrap_or(0));
        let listener = bind_loopback(want)?;
        let port = listener.local_addr().map_err(|source| StartError::Bind { port: want, source })?.port();
        listener.set_nonblocking(true).map_err(|source| StartError::Bind { port, source })?;
        let blob_want = store.state.ports.get("blob").copied().unwrap_or(0);
        let blob_listener = bind_loopback(if config.port == Some(0) { 0 } else { blob_want })?;
        let blob_port =
            blob_listener.local_addr().map_err(|source| StartError::Bind { port: blob_want, source })?.port();
        blob_listener.set_nonblocking(true).map_err(|source| StartError::Bind { port: blob_port, source })?;
        let dfs_want = store.state.ports.get("dfs").copied().unwrap_or(0);
        let dfs_listener = bind_loopback(if config.port == Some(0) { 0 } else { dfs_want })?;
        let dfs_port = dfs_listener.local_addr().map_err(|source| StartError::Bind { port: dfs_want, source })?.port();
        dfs_listener.set_nonblocking(true).map_err(|source| StartError::Bind { port: dfs_port, source })?;
        let proxy_want = store.state.ports.get("proxy").copied().unwrap_or(0);
        let proxy_listener = bind_loopback(if config.port == Some(0) { 0 } else { proxy_want })?;
        let proxy_port =
            proxy_listener.local_addr().map_err(|source| StartError::Bind { port: proxy_want, source })?.port();
        proxy_listener.set_nonblocking(true).map_err(|source| StartError::Bind { port: proxy_port, source })?;
        let base_url = format!("https://127.0.0.1:{port}");
        let operator = store.state.principals.get(&store.state.operator_object_id).cloned();
        let info = ConnectionInfo {
            arm_url: base_url.clone(),
            authority_url: base_url.clone(),
            token_url: format!("{base_url}/{}/oauth2/v2.0/token", store.state.tenant_id),
            metadata_url: format!("{base_url}/metadata/endpoints?api-version=2022-09-01"),
            tenant_id: store.state.tenant_id.clone(),
            subscription_id: store.state.subscription_id.clone(),
            operator_client_id: operator.as_ref().map(|p| p.client_id.clone()).unwrap_or_default(),
            operator_object_id: operator.as_ref().map(|p| p.object_id.clone()).unwrap_or_default(),
            operator_secret_file: secret_path,
            ca_file: pki.ca_path.clone(),
            proxy_url: format!("http://127.0.0.1:{proxy_port}"),
            state_dir: dir.clone(),
            pid: std::process::id(),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("idlab-local")
            .enable_all()
            .build()
            .map_err(|e| StartError::Setup(format!("runtime: {e}")))?;
        let faults = config.faults.clone();
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            key,
            base_url,
            rng: Mutex::new(StdRng::seed_from_u64(faults.seed)),
            faults: Mutex::new(faults),
            buckets: throttle::Buckets::default(),
            quotas: Mutex::new(table::quota::Quotas::default()),
            log: Mutex::new(VecDeque::new()),
            ops: Mutex::new(HashMap::new()),
            imds_running: Mutex::new(HashMap::new()),
            vaults_running: Mutex::new(HashMap::new()),
            tls: tls_config.clone(),
            vault_key,
            info: info.clone(),
            blob_base: format!("https://127.0.0.1:{blob_port}"),
            dfs_base: format!("https://127.0.0.1:{dfs_port}"),
            allow_crash: config.allow_crash,
            runtime: runtime.handle().clone(),
            datalake_running: Mutex::new(HashMap::new()),
            blocks: Mutex::new(HashMap::new()),
            serving: tls::Serving::new(
                config.limits.handshake_timeout,
                config.limits.header_timeout,
                config.limits.idle_timeout,
                config.limits.max_connections,
            ),
            limits: config.limits.clone(),
            page_size: std::sync::atomic::AtomicUsize::new(shared::initial_page_size()),
        });
        {
            let mut st = shared.store();
            let mut ops = Vec::new();
            if st.state.ports.get("arm") != Some(&port) {
                ops.push(Op::SetPort { purpose: "arm".into(), port });
            }
            if st.state.ports.get("blob") != Some(&blob_port) {
                ops.push(Op::SetPort { purpose: "blob".into(), port: blob_port });
            }
            if st.state.ports.get("dfs") != Some(&dfs_port) {
                ops.push(Op::SetPort { purpose: "dfs".into(), port: dfs_port });
            }
            if st.state.ports.get("proxy") != Some(&proxy_port) {
                ops.push(Op::SetPort { purpose: "proxy".into(), port: proxy_port });
            }
            st.append(ops)?;
        }
        let (tx, rx) = tokio::sync::watch::channel(false);
        let sh = shared.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let thread = std::thread::Builder::new()
            .name("idlab-local-cloud".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    if let Err(e) = imds::start_all(&sh)
                        .and_then(|()| keyvault::start_all(&sh))
                        .and_then(|()| datalake::start_all(&sh))
                    {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                    let blob_listener = match tokio::net::TcpListener::from_std(blob_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let dfs_listener = match tokio::net::TcpListener::from_std(dfs_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let proxy_listener = match tokio::net::TcpListener::from_std(proxy_listener) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let planes = proxy::Planes {
                        arm: arm::router,
                        blob: blob::router,
                        dfs: dfs::router,
                        vault: keyvault::app,
                        store: datalake::app,
                    };
                    tokio::spawn(proxy::serve(sh.clone(), leaves, planes, proxy_listener, rx.clone()));
                    let serving = sh.serving.clone();
                    tokio::spawn(tls::serve_tls(
                        blob_listener,
                        tls_config.clone(),
                        blob::router(sh.clone()),
                        rx.clone(),
                        serving.clone(),
                    ));
                    tokio::spawn(tls::serve_tls(
                        dfs_listener,
                        tls_config.clone(),
                        dfs::router(sh.clone()),
                        rx.clone(),
                        serving.clone(),
                    ));
                    let _ = ready_tx.send(Ok(()));
                    tls::serve_tls(listener, tls_config, arm::router(sh.clone()), rx, serving).await;
                    imds::stop_all(&sh);
                    keyvault::stop_all(&sh);
                });
            })
            .map_err(|e| StartError::Setup(format!("thread: {e}")))?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(StartError::Setup(e)),
            Err(_) => return Err(StartError::Setup("the local cloud thread stopped".into())),
        }
        Ok(Cloud { info, notices, shared, shutdown: tx, thread: Some(thread) })
    }

    /// The shared state (tests and the admin API use it).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The operator's client secret.
    ///
    /// # Errors
    /// When the secret file cannot be read.
    pub fn operator_secret(&self) -> std::io::Result<String> {
        std::fs::read_to_string(&self.info.operator_secret_file).map(|s| s.trim().to_string())
    }

    /// Stop serving and wait for the server thread.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// A local cloud for a command's `--local` flag: the one already serving the state
/// directory, or one started in-process for the command's duration.
pub enum Local {
    /// Another process serves the directory.
    Attached(Box<ConnectionInfo>),
    /// Started here; stops when dropped. Holds the directory's lock meanwhile.
    Started { cloud: Box<Cloud>, _lock: std::fs::File },
}

impl Local {
    /// Attach to the server of `dir` (connection file + health check), else start one here.
    ///
    /// # Errors
    /// The in-process start failed, or another process holds the lock without answering.
    pub async fn attach_or_start(dir: &Path) -> Result<Local, StartError> {
        if let Some(info) = attach::running(dir).await {
            return Ok(Local::Attached(Box::new(info)));
        }
        let lock = attach::lock(dir).map_err(StartError::Setup)?;
        let dir = dir.to_path_buf();
        let cloud = tokio::task::spawn_blocking(move || Cloud::start(Config::new(dir)))
            .await
            .map_err(|e| StartError::Setup(format!("start: {e}")))??;
        Ok(Local::Started { cloud: Box::new(cloud), _lock: lock })
    }

    pub fn info(&self) -> &ConnectionInfo {
        match self {
            Local::Attached(i) => i,
            Local::Started { cloud, .. } => &cloud.info,
        }
    }
}
