//! HTTPS for the local cloud: a CA (its key kept, 0600) and a leaf certificate (IP
//! 127.0.0.1, DNS localhost) generated once into the state directory, leaves for Azure's host
//! names issued on the fly for the proxy ([`Leaves`]), and the accept loop that serves a
//! router over TLS. Unmodified Azure SDKs refuse bearer tokens over plain HTTP and reject a lone
//! self-signed leaf, hence the CA (arm-contract §11). Clients trust `ca.pem`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// The files of the local cloud's PKI.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate clients trust (`REQUESTS_CA_BUNDLE`).
    pub ca_path: PathBuf,
    pub ca_pem: String,
    /// Whether this start made the CA (a state directory from an idlab that kept no CA key
    /// gets a new one: clients must trust the new `ca.pem`).
    pub made: bool,
    ca_key_der: Vec<u8>,
    leaf_der: Vec<u8>,
    key_der: Vec<u8>,
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::write(tmp.path(), bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The CA's subject and usages: what its certificate says and what every leaf names as its
/// issuer (the key identifier comes from the key, so a stored key gives the same issuer).
fn ca_params() -> CertificateParams {
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "idlab local cloud CA");
    ca_params.distinguished_name.push(DnType::OrganizationName, "idlab");
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca_params
}

/// A server leaf for `names` (DNS names, or IP addresses when they parse as one), signed by
/// `issuer`, valid from a day ago for `days`: the certificate and its PKCS#8 key, DER.
fn leaf(names: &[&str], issuer: &Issuer<'_, KeyPair>, days: i64) -> Result<(Vec<u8>, Vec<u8>), String> {
    let now = time::OffsetDateTime::now_utc();
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("localhost"));
    leaf.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => (*n).try_into().map(SanType::DnsName).map_err(|e| format!("{n}: {e}")),
        })
        .collect::<Result<_, _>>()?;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = now - time::Duration::days(1);
    leaf.not_after = now + time::Duration::days(days);
    let leaf_key = KeyPair::generate().map_err(|e| format!("leaf key: {e}"))?;
    let cert = leaf.signed_by(&leaf_key, issuer).map_err(|e| format!("leaf certificate: {e}"))?;
    Ok((cert.der().to_vec(), leaf_key.serialize_der()))
}

/// A rustls server configuration (h2 and http/1.1) for one certificate.
fn config(leaf_der: &[u8], key_der: &[u8]) -> Result<Arc<rustls::ServerConfig>, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(leaf_der.to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.to_vec())),
        )
        .map_err(|e| format!("TLS configuration: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

impl Pki {
    /// Load the PKI from `dir`, generating it the first time (and when the CA key is missing:
    /// an earlier idlab did not keep it, and leaves for Azure's host names need it).
    ///
    /// # Errors
    /// I/O errors, or certificate generation failing.
    pub fn load_or_create(dir: &Path) -> Result<Pki, String> {
        let ca_path = dir.join("ca.pem");
        let ca_key_path = dir.join("ca.key.der");
        let leaf_path = dir.join("tls-leaf.der");
        let key_path = dir.join("tls-leaf.key.der");
        if let (Ok(ca_pem), Ok(ca_key_der), Ok(leaf_der), Ok(key_der)) = (
            std::fs::read_to_string(&ca_path),
            std::fs::read(&ca_key_path),
            std::fs::read(&leaf_path),
            std::fs::read(&key_path),
        ) {
            return Ok(Pki { ca_path, ca_pem, made: false, ca_key_der, leaf_der, key_der });
        }
        let now = time::OffsetDateTime::now_utc();
        let mut ca_params = ca_params();
        ca_params.not_before = now - time::Duration::days(1);
        ca_params.not_after = now + time::Duration::days(3650);
        let ca_key = KeyPair::generate().map_err(|e| format!("CA key: {e}"))?;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(|e| format!("CA certificate: {e}"))?;
        let ca_key_der = ca_key.serialize_der();
        let issuer = Issuer::new(ca_params, ca_key);
        let (leaf_der, key_der) = leaf(&["localhost", "127.0.0.1"], &issuer, 825)?;
        let ca_pem = ca_cert.pem();
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        write_private(&ca_key_path, &ca_key_der).map_err(|e| format!("{}: {e}", ca_key_path.display()))?;
        write_private(&key_path, &key_der).map_err(|e| format!("{}: {e}", key_path.display()))?;
        write_private(&leaf_path, &leaf_der).map_err(|e| format!("{}: {e}", leaf_path.display()))?;
        write_private(&ca_path, ca_pem.as_bytes()).map_err(|e| format!("{}: {e}", ca_path.display()))?;
        Ok(Pki { ca_path, ca_pem, made: true, ca_key_der, leaf_der, key_der })
    }

    /// The issuer of leaves for host names ([`Leaves`]).
    ///
    /// # Errors
    /// The stored CA key cannot be used.
    pub fn leaves(&self) -> Result<Leaves, String> {
        let key = KeyPair::try_from(self.ca_key_der.as_slice()).map_err(|e| format!("CA key: {e}"))?;
        Ok(Leaves { issuer: Issuer::new(ca_params(), key), cache: std::sync::Mutex::new(HashMap::new()) })
    }

    /// A rustls server configuration (h2 and http/1.1).
    ///
    /// # Errors
    /// When the stored key or certificate cannot be used.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        config(&self.leaf_der, &self.key_der)
    }
}

/// Leaf certificates for the Azure host names the proxy serves (`management.azure.com`,
/// `{account}.blob.core.windows.net`, …), issued by the local CA when a name is first asked
/// for and kept in memory (at most [`Leaves::CAPACITY`] names; then the cache starts over).
pub struct Leaves {
    issuer: Issuer<'static, KeyPair>,
    cache: std::sync::Mutex<HashMap<String, Arc<rustls::ServerConfig>>>,
}

impl std::fmt::Debug for Leaves {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaves").finish_non_exhaustive()
    }
}

impl Leaves {
    /// The most host names kept at once.
    pub const CAPACITY: usize = 4096;

    /// The TLS configuration presenting a leaf for `host` (a DNS name, lower case).
    ///
    /// # Errors
    /// The name is not a valid DNS name, or the certificate cannot be made.
    pub fn config_for(&self, host: &str) -> Result<Arc<rustls::ServerConfig>, String> {
        if let Some(c) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(host) {
            return Ok(c.clone());
        }
        let (leaf_der, key_der) = leaf(&[host], &self.issuer, 90)?;
        let cfg = config(&leaf_der, &key_der)?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= Leaves::CAPACITY {
            cache.clear();
        }
        cache.insert(host.to_string(), cfg.clone());
        Ok(cfg)
    }
}

/// How long a connection may take and how many may be open at once (docs/local-cloud.md,
/// "Connections"). One value is shared by every listener of a local cloud, so the cap counts
/// the connections of all its ports together.
#[derive(Debug, Clone)]
pub struct Serving {
    /// From the TCP accept to the end of the TLS handshake.
    pub handshake_timeout: Duration,
    /// From the handshake (or the previous answer's start) to a complete request head.
    pub header_timeout: Duration,
    /// A kept-alive connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// Connections open at once, over every port; beyond it the next accept waits for a slot.
    pub max_connections: usize,
    pub(crate) slots: Arc<Semaphore>,
}

impl Serving {
    pub fn new(handshake_timeout: Duration, header_timeout: Duration, idle_timeout: Duration, max: usize) -> Serving {
        let max_connections = max.clamp(1, Semaphore::MAX_PERMITS);
        Serving {
            handshake_timeout,
            header_timeout,
            idle_timeout,
            max_connections,
            slots: Arc::new(Semaphore::new(max_connections)),
        }
    }

    /// Connections open now, over every port.
    pub fn open_connections(&self) -> usize {
        self.max_connections - self.slots.available_permits()
    }
}

/// Requests in flight on one connection and when the last one ended, for the idle timeout.
#[derive(Debug, Default)]
struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds since the connection's start when the last request ended (0: none yet).
    last_end_ms: AtomicU64,
    requests: AtomicU64,
}

/// Serve `router` over TLS on `listener` until `shutdown` fires, within `serving`'s limits.
///
/// A connection holds one of the shared slots from its accept to its close; when none is free
/// the loop stops accepting (the kernel queues new connections meanwhile) until the timeouts
/// or clients free one, so the clients already served keep being served and new ones wait
/// rather than being refused. A connection is closed when its TLS handshake takes longer than
/// the handshake timeout, when no complete request head arrives within the header timeout
/// (after the handshake, and HTTP/1's own timer for a head being sent slowly), and when it
/// is idle (no request in flight) past the idle timeout: first gracefully, then, if it has not
/// ended one timeout later, by dropping it.
pub async fn serve_tls(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: axum::Router,
    shutdown: tokio::sync::watch::Receiver<bool>,
    serving: Serving,
) {
    serve(listener, Some(TlsAcceptor::from(config)), router, shutdown, serving).await;
}

/// Serve `router` over plain HTTP (the managed-identity endpoints, as on a VM), within the
/// same limits as [`serve_tls`] but the handshake.
pub async fn serve_plain(
    listener: TcpListener,
    router: axum::Router,
    shutdown: tokio::sync::watch::Receiver<bool>,
    serving: Serving,
) {
    serve(listener, None, router, shutdown, serving).await;
}

/// The HTTP server settings of every connection (HTTP/1 head timeout, HTTP/2 timer).
fn http_builder(serving: &Serving) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(serving.header_timeout);
    builder.http2().timer(TokioTimer::new());
    builder
}

/// Serve `router` on one stream that is already decrypted (the proxy's tunnels), within
/// `serving`'s header and idle timeouts, until it ends.
pub async fn serve_stream<I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static>(
    io: I,
    peer: std::net::SocketAddr,
    router: axum::Router,
    serving: &Serving,
) {
    Box::pin(serve_connection(io, peer, router, serving, &http_builder(serving))).await;
}

/// The next connection on `listener`, holding one of `serving`'s connection slots: `None` when
/// `shutdown` fires, `Some(None)` when an accept failed (the caller goes on).
pub(crate) async fn accept_next(
    listener: &TcpListener,
    serving: &Serving,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<Option<(tokio::sync::OwnedSemaphorePermit, tokio::net::TcpStream, std::net::SocketAddr)>> {
    let slot = tokio::select! {
        s = serving.slots.clone().acquire_owned() => s,
        _ = shutdown.changed() => return None,
    };
    let slot = slot.ok()?;
    let accepted = tokio::select! {
        a = listener.accept() => a,
        _ = shutdown.changed() => return None,
    };
    let Ok((tcp, peer)) = accepted else { return Some(None) };
    let _ = tcp.set_nodelay(true);
    Some(Some((slot, tcp, peer)))
}

async fn serve(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    router: axum::Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    serving: Serving,
) {
    let builder = Arc::new(http_builder(&serving));
    loop {
        let Some(next) = accept_next(&listener, &serving, &mut shutdown).await else { return };
        let Some((slot, tcp, peer)) = next else { continue };
        let (acceptor, router, serving, builder) = (acceptor.clone(), router.clone(), serving.clone(), builder.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let Some(acceptor) = acceptor else {
                Box::pin(serve_connection(tcp, peer, router, &serving, &builder)).await;
                return;
            };
            // The TLS state is made once the client sends its first byte: a silent connection
            // holds only its socket until the handshake timeout closes it.
            let handshake = async {
                tcp.readable().await?;
                Box::pin(acceptor.accept(tcp)).await
            };
            let Ok(Ok(tls)) = tokio::time::timeout(serving.handshake_timeout, handshake).await else {
                return;
            };
            // Boxed: a connection still in its handshake holds only the small future above.
            Box::pin(serve_connection(tls, peer, router, &serving, &builder)).await;
        });
    }
}

/// Serve one connection (after its handshake), until it ends or is closed for idling.
async fn serve_connection<I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static>(
    io: I,
    peer: std::net::SocketAddr,
    router: axum::Router,
    serving: &Serving,
    builder: &Builder<TokioExecutor>,
) {
    let activity = Arc::new(Activity::default());
    let started = tokio::time::Instant::now();
    // Handlers that check the caller's address (a SAS's `sip`) read it as `ConnectInfo`.
    let service = router
        .layer(axum::Extension(axum::extract::ConnectInfo(peer)))
        .layer(axum::middleware::from_fn_with_state((activity.clone(), started), count));
    let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = idle(&activity, started, serving) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(serving.idle_timeout.max(serving.header_timeout), conn).await;
}

/// Counts a request in flight on its connection, for [`idle`].
async fn count(
    axum::extract::State((activity, started)): axum::extract::State<(Arc<Activity>, tokio::time::Instant)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    activity.in_flight.fetch_add(1, Ordering::SeqCst);
    activity.requests.fetch_add(1, Ordering::SeqCst);
    let answer = next.run(request).await;
    let now = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX).max(1);
    activity.last_end_ms.store(now, Ordering::SeqCst);
    activity.in_flight.fetch_sub(1, Ordering::SeqCst);
    answer
}

/// Returns once the connection has had no request in flight for its limit: the header
/// timeout before its first request, the idle timeout after.
async fn idle(activity: &Activity, started: tokio::time::Instant, serving: &Serving) {
    loop {
        let limit =
            if activity.requests.load(Ordering::SeqCst) == 0 { serving.header_timeout } else { serving.idle_timeout };
        let since = Duration::from_millis(activity.last_end_ms.load(Ordering::SeqCst));
        let deadline = started + since + limit;
        if activity.in_flight.load(Ordering::SeqCst) == 0 && tokio::time::Instant::now() >= deadline {
            return;
        }
        let wake = if activity.in_flight.load(Ordering::SeqCst) == 0 {
            deadline.max(tokio::time::Instant::now() + Duration::from_millis(10))
        } else {
            tokio::time::Instant::now() + limit.min(Duration::from_secs(1))
        };
        tokio::time::sleep_until(wake).await;
    }
}
