//! HTTPS for the local cloud: a CA and a leaf certificate (IP 127.0.0.1, DNS localhost)
//! generated once into the state directory, and the accept loop that serves a router over
//! TLS. Unmodified Azure SDKs refuse bearer tokens over plain HTTP and reject a lone
//! self-signed leaf, hence the CA (arm-contract §11). Clients trust `ca.pem`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The files of the local cloud's PKI.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate clients trust (`REQUESTS_CA_BUNDLE`).
    pub ca_path: PathBuf,
    pub ca_pem: String,
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

impl Pki {
    /// Load the PKI from `dir`, generating it the first time.
    ///
    /// # Errors
    /// I/O errors, or certificate generation failing.
    pub fn load_or_create(dir: &Path) -> Result<Pki, String> {
        let ca_path = dir.join("ca.pem");
        let leaf_path = dir.join("tls-leaf.der");
        let key_path = dir.join("tls-leaf.key.der");
        if let (Ok(ca_pem), Ok(leaf_der), Ok(key_der)) =
            (std::fs::read_to_string(&ca_path), std::fs::read(&leaf_path), std::fs::read(&key_path))
        {
            return Ok(Pki { ca_path, ca_pem, leaf_der, key_der });
        }
        let now = time::OffsetDateTime::now_utc();
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "idlab local cloud CA");
        ca_params.distinguished_name.push(DnType::OrganizationName, "idlab");
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        ca_params.not_before = now - time::Duration::days(1);
        ca_params.not_after = now + time::Duration::days(3650);
        let ca_key = KeyPair::generate().map_err(|e| format!("CA key: {e}"))?;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(|e| format!("CA certificate: {e}"))?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut leaf = CertificateParams::default();
        leaf.distinguished_name.push(DnType::CommonName, "localhost");
        leaf.subject_alt_names = vec![
            SanType::IpAddress(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            SanType::DnsName("localhost".try_into().map_err(|e| format!("{e}"))?),
        ];
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.not_before = now - time::Duration::days(1);
        leaf.not_after = now + time::Duration::days(825);
        let leaf_key = KeyPair::generate().map_err(|e| format!("leaf key: {e}"))?;
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(|e| format!("leaf certificate: {e}"))?;

        let ca_pem = ca_cert.pem();
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        write_private(&key_path, &leaf_key.serialize_der()).map_err(|e| format!("{}: {e}", key_path.display()))?;
        write_private(&leaf_path, leaf_cert.der()).map_err(|e| format!("{}: {e}", leaf_path.display()))?;
        write_private(&ca_path, ca_pem.as_bytes()).map_err(|e| format!("{}: {e}", ca_path.display()))?;
        Ok(Pki { ca_path, ca_pem, leaf_der: leaf_cert.der().to_vec(), key_der: leaf_key.serialize_der() })
    }

    /// A rustls server configuration (h2 and http/1.1).
    ///
    /// # Errors
    /// When the stored key or certificate cannot be used.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut cfg = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.leaf_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
            )
            .map_err(|e| format!("TLS configuration: {e}"))?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// Serve `router` over TLS on `listener` until `shutdown` fires.
pub async fn serve_tls(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: axum::Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((tcp, peer)) = accepted else { continue };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        // Handlers that check the caller's address (a SAS's `sip`) read it as `ConnectInfo`.
        let service = router.clone().layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            let svc = TowerToHyperService::new(service);
            let _ = Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(tls), svc).await;
        });
    }
}
