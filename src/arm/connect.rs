//! Connecting a [`Client`] to a cloud, knowing nothing of plans: the Azure credential chosen
//! by `--auth` (or the documented order), the HTTP client, the subscription, and the deploying
//! principal (`${caller}`) and its tenant from the environment or the first token's claims.
//! The local cloud's issuer is connected the same way, given its URLs and a client secret.
//!
//! Imports: the rest of `arm` only. Starting or attaching the local cloud is the CLI's
//! (`cli::connect`): `arm` never imports `local`.

use std::sync::Arc;
use std::time::Duration;

use super::auth::{AuthMethod, Cached, LocalCredential, LocalSecret, TokenSource, azure_credential};
use super::client::{ARM_SCOPE, Client};
use super::jwt;

/// A client for one cloud, with who is calling.
pub struct Connected {
    pub client: Client,
    pub subscription: String,
    pub tenant_id: Option<String>,
    pub caller_object_id: Option<String>,
}

/// What choosing Azure needs.
pub struct AzureTarget<'a> {
    /// `--auth`, else the documented order.
    pub auth: Option<AuthMethod>,
    /// `--subscription`.
    pub subscription: Option<String>,
    /// The plan's `subscription:` as written (a `${env.NAME}` is read from the environment).
    pub plan_subscription: Option<&'a str>,
}

/// The subscription: the flag, else the plan's, else `AZURE_SUBSCRIPTION_ID`.
///
/// # Errors
/// None of them is set.
pub fn subscription(flag: Option<String>, plan: Option<&str>) -> Result<String, String> {
    let plan_sub = plan.map(|s| match s.strip_prefix("${env.").and_then(|v| v.strip_suffix('}')) {
        Some(var) => std::env::var(var).unwrap_or_default(),
        None => s.to_string(),
    });
    flag.or(plan_sub)
        .or_else(|| std::env::var("AZURE_SUBSCRIPTION_ID").ok())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            "no subscription: set `subscription:` in the plan, pass --subscription, set AZURE_SUBSCRIPTION_ID, or use --local".to_string()
        })
}

/// The HTTP client for Azure, shared by ARM, the data planes and the `azure_identity`
/// credentials. No service idlab talks to redirects except WebHDFS, whose 307 verify follows
/// by hand.
///
/// It goes through `HTTPS_PROXY` (except for the hosts of `NO_PROXY`), as reqwest reads
/// them; through a proxy it never resolves a name itself: the proxy gets the host name in
/// the `CONNECT` line. It trusts the system's roots (and `SSL_CERT_FILE` / `SSL_CERT_DIR`
/// where the platform reads them), plus the PEM certificates of `IDLAB_CA_BUNDLE` (the local
/// cloud's `ca.pem`, for its proxy). Every name it does resolve is logged at debug level
/// (`IDLAB_LOG=debug`: `dns lookup`).
///
/// # Errors
/// The TLS stack cannot be set up, or `IDLAB_CA_BUNDLE` cannot be read or holds no
/// certificate.
pub fn azure_http() -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .dns_resolver(Arc::new(LoggedResolver));
    if let Some(path) = std::env::var_os(CA_BUNDLE_VAR).filter(|p| !p.is_empty()) {
        let shown = std::path::Path::new(&path).display().to_string();
        let pem = std::fs::read(&path).map_err(|e| format!("{CA_BUNDLE_VAR}={shown}: {e}"))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("{CA_BUNDLE_VAR}={shown}: {e}"))?;
        if certs.is_empty() {
            return Err(format!("{CA_BUNDLE_VAR}={shown}: no PEM certificate in it"));
        }
        b = b.tls_certs_merge(certs);
    }
    b.build().map_err(|e| e.to_string())
}

/// The variable naming extra CA certificates idlab trusts for Azure (PEM).
pub const CA_BUNDLE_VAR: &str = "IDLAB_CA_BUNDLE";

/// The system resolver, each lookup logged (at debug level) so that a run can show it made
/// none.
struct LoggedResolver;

impl reqwest::dns::Resolve for LoggedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        tracing::debug!(%host, "dns lookup");
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let addrs: reqwest::dns::Addrs = Box::new(found.collect::<Vec<_>>().into_iter());
            Ok(addrs)
        })
    }
}

/// Connect to Azure (`https://management.azure.com`).
///
/// # Errors
/// No credential can be built, the HTTP client cannot, or no subscription is known.
pub async fn azure(t: AzureTarget<'_>) -> Result<Connected, String> {
    let http = azure_http()?;
    let cred = azure_credential(t.auth, &http).map_err(|e| e.to_string())?;
    let subscription = subscription(t.subscription, t.plan_subscription)?;
    let cred: Arc<dyn TokenSource> = Arc::new(Cached::new(cred));
    // The deploying principal and its tenant (`${caller}`, a vault's tenantId): from the
    // environment, else from the claims of the first ARM token (cached for the requests).
    let claims = match (std::env::var("AZURE_TENANT_ID").ok(), std::env::var("IDLAB_CALLER_OBJECT_ID").ok()) {
        (Some(_), Some(_)) => None,
        _ => cred.token(ARM_SCOPE).await.ok().and_then(|t| jwt::claims(t.value.expose())),
    };
    let claim = |k: &str| claims.as_ref().and_then(|c| jwt::claim(c, k));
    let tenant_id = std::env::var("AZURE_TENANT_ID").ok().or_else(|| claim("tid"));
    let caller_object_id = std::env::var("IDLAB_CALLER_OBJECT_ID").ok().or_else(|| claim("oid"));
    let client = Client::new(http, "https://management.azure.com", cred);
    Ok(Connected { client, subscription, tenant_id, caller_object_id })
}

/// What connecting to a local cloud's issuer needs.
pub struct LocalTarget {
    pub http: reqwest::Client,
    pub arm_url: String,
    pub token_url: String,
    pub tenant_id: String,
    pub client_id: String,
    /// A client secret, or a CI system's assertions.
    pub secret: LocalSecret,
    pub subscription: String,
}

/// Connect to a local cloud as the principal `client_id` (with a secret, or with a CI
/// system's assertions, exchanged by the local issuer as Entra exchanges them). Its object id (`${caller}`) comes
/// from the first token. `IDLAB_RETRY_BASE_MS` shrinks the backoff (tests).
///
/// # Errors
/// The issuer refused the secret or did not answer.
pub async fn local(t: LocalTarget) -> Result<Connected, String> {
    let mut cred = LocalCredential {
        http: t.http.clone(),
        token_url: t.token_url,
        client_id: t.client_id,
        object_id: String::new(),
        secret: t.secret,
    };
    let first = cred.token(ARM_SCOPE).await.map_err(|e| e.to_string())?;
    cred.object_id = jwt::claims(first.value.expose()).and_then(|c| jwt::claim(&c, "oid")).unwrap_or_default();
    let caller = cred.object_id.clone();
    let cached = Cached::primed(Arc::new(cred), ARM_SCOPE, first);
    let mut client = Client::new(t.http, t.arm_url, Arc::new(cached));
    if let Some(ms) = std::env::var("IDLAB_RETRY_BASE_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
        client.retry.base = Duration::from_millis(ms);
    }
    Ok(Connected { client, subscription: t.subscription, tenant_id: Some(t.tenant_id), caller_object_id: Some(caller) })
}
