//! Credentials. The local cloud's client-credentials issuer, or Azure through
//! `azure_identity` in the documented order (`docs/cli.md`): a CI sign-in (GitHub Actions'
//! or Azure Pipelines' OIDC request endpoint, a client assertion fetched anew for every token
//! request), workload identity (`AZURE_FEDERATED_TOKEN_FILE`), client secret (`AZURE_CLIENT_SECRET`), managed identity
//! (`IDENTITY_ENDPOINT` or `--auth msi`), then developer tools (Azure CLI / azd). Tokens are
//! cached until five minutes before they expire and never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use azure_core::credentials::TokenCredential;

use super::error::Error;
use crate::model::Sensitive;

/// A bearer token and when it expires.
#[derive(Clone, Debug)]
pub struct Token {
    pub value: Sensitive<String>,
    pub expires: SystemTime,
}

/// Anything that gives tokens for a scope.
#[async_trait]
pub trait TokenSource: Send + Sync {
    /// A token for `scope` (e.g. `https://management.azure.com/.default`).
    ///
    /// # Errors
    /// An [`Error`] with code `Credential` when no token can be had.
    async fn token(&self, scope: &str) -> Result<Token, Error>;
    /// The principal's object id when the source knows it (`${caller.object_id}`).
    fn object_id(&self) -> Option<String> {
        None
    }
}

/// How a principal proves itself to the local cloud's issuer.
pub enum LocalSecret {
    /// A client secret.
    Secret(Sensitive<String>),
    /// A federated client assertion from a CI system, fetched anew for every token.
    Assertion(Arc<CiAssertion>),
}

/// Client credentials against the local cloud's issuer.
pub struct LocalCredential {
    pub http: reqwest::Client,
    pub token_url: String,
    pub client_id: String,
    pub object_id: String,
    pub secret: LocalSecret,
}

#[async_trait]
impl TokenSource for LocalCredential {
    async fn token(&self, scope: &str) -> Result<Token, Error> {
        let assertion;
        let form: Vec<(&str, &str)> = match &self.secret {
            LocalSecret::Secret(s) => vec![
                ("grant_type", "client_credentials"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", s.expose().as_str()),
                ("scope", scope),
            ],
            LocalSecret::Assertion(a) => {
                assertion = a.fetch().await?;
                vec![
                    ("grant_type", "client_credentials"),
                    ("client_id", self.client_id.as_str()),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", assertion.expose().as_str()),
                    ("scope", scope),
                ]
            }
        };
        let cred_err = |m: String| Error { operation: "POST token".into(), ..Error::new("Credential", m) };
        let r = self
            .http
            .post(&self.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| cred_err(format!("the local token endpoint did not answer: {e}")))?;
        let status = r.status().as_u16();
        let v: serde_json::Value = r.json().await.map_err(|e| cred_err(format!("invalid token response: {e}")))?;
        let Some(t) = v.get("access_token").and_then(|t| t.as_str()) else {
            let d = v.get("error_description").and_then(|d| d.as_str()).unwrap_or("no access token");
            return Err(Error { status: Some(status), ..cred_err(d.to_string()) });
        };
        let secs = v
            .get("expires_in")
            .and_then(|e| e.as_u64().or_else(|| e.as_str().and_then(|s| s.parse().ok())))
            .unwrap_or(3599);
        Ok(Token { value: Sensitive::new(t.to_string()), expires: SystemTime::now() + Duration::from_secs(secs) })
    }
    fn object_id(&self) -> Option<String> {
        Some(self.object_id.clone())
    }
}

/// Any `azure_identity` credential.
pub struct AzureCredential(pub Arc<dyn TokenCredential>);

#[async_trait]
impl TokenSource for AzureCredential {
    async fn token(&self, scope: &str) -> Result<Token, Error> {
        let t = self.0.get_token(&[scope], None).await.map_err(|e| Error::new("Credential", e.to_string()))?;
        let expires =
            SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.expires_on.unix_timestamp()).unwrap_or(0));
        Ok(Token { value: Sensitive::new(t.token.secret().to_string()), expires })
    }
    fn object_id(&self) -> Option<String> {
        None
    }
}

/// The `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The audience GitHub Actions is asked to put in its OIDC token.
pub const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// The variables GitHub Actions' OIDC sign-in needs.
pub const GITHUB_VARS: &[&str] =
    &["ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "AZURE_CLIENT_ID", "AZURE_TENANT_ID"];

/// The variables Azure Pipelines' OIDC sign-in needs.
pub const PIPELINES_VARS: &[&str] = &[
    "SYSTEM_OIDCREQUESTURI",
    "SYSTEM_ACCESSTOKEN",
    "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
];

fn env_var(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

/// The CI sign-in whose variables are all set (GitHub Actions first), if any.
pub fn ci_detected() -> Option<AuthMethod> {
    let all = |vars: &[&str]| vars.iter().all(|v| env_var(v).is_some());
    if all(GITHUB_VARS) {
        Some(AuthMethod::Github)
    } else if all(PIPELINES_VARS) {
        Some(AuthMethod::AzurePipelines)
    } else {
        None
    }
}

/// A CI system's OIDC request endpoint: where a new assertion is fetched for every token
/// request. The request token and the assertions are never printed.
pub struct CiAssertion {
    /// `github` or `azure-pipelines`, for messages.
    pub system: &'static str,
    http: reqwest::Client,
    url: String,
    bearer: Sensitive<String>,
    /// Azure Pipelines POSTs; GitHub GETs.
    post: bool,
    /// The client (`AZURE_CLIENT_ID`) and tenant (`AZURE_TENANT_ID`) to sign in as.
    pub client_id: String,
    pub tenant_id: String,
}

impl std::fmt::Debug for CiAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CiAssertion").field("system", &self.system).finish_non_exhaustive()
    }
}

impl CiAssertion {
    /// The CI sign-in `method` (`Github` or `AzurePipelines`) from its variables.
    ///
    /// # Errors
    /// A needed variable is unset, or the request URL is not a URL.
    pub fn from_env(method: AuthMethod) -> Result<CiAssertion, Error> {
        let e = |m: String| Error::new("Credential", m);
        let (system, vars) = match method {
            AuthMethod::Github => ("github", GITHUB_VARS),
            AuthMethod::AzurePipelines => ("azure-pipelines", PIPELINES_VARS),
            _ => return Err(e("not a CI sign-in".into())),
        };
        let missing: Vec<&str> = vars.iter().copied().filter(|v| env_var(v).is_none()).collect();
        if !missing.is_empty() {
            return Err(e(format!("--auth {system} needs {} (not set)", missing.join(", "))));
        }
        let v = |k: &str| env_var(k).unwrap_or_default();
        let (base, bearer, post, query) = if method == AuthMethod::Github {
            (
                v("ACTIONS_ID_TOKEN_REQUEST_URL"),
                v("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
                false,
                vec![("audience", EXCHANGE_AUDIENCE.to_string())],
            )
        } else {
            (
                v("SYSTEM_OIDCREQUESTURI"),
                v("SYSTEM_ACCESSTOKEN"),
                true,
                vec![
                    ("api-version", "7.1".to_string()),
                    ("serviceConnectionId", v("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID")),
                ],
            )
        };
        let mut url = url::Url::parse(&base)
            .map_err(|x| e(format!("--auth {system}: the OIDC request URL is not a URL ({x})")))?;
        url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        // A test's endpoint on loopback is reached directly, whatever proxy is configured.
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        let mut b = reqwest::Client::builder().timeout(Duration::from_secs(60));
        if loopback {
            b = b.no_proxy();
        }
        let http = b.build().map_err(|x| e(format!("HTTP client: {x}")))?;
        Ok(CiAssertion {
            system,
            http,
            url: url.to_string(),
            bearer: Sensitive::new(bearer),
            post,
            client_id: v("AZURE_CLIENT_ID"),
            tenant_id: v("AZURE_TENANT_ID"),
        })
    }

    /// A new assertion from the CI system.
    ///
    /// # Errors
    /// The endpoint did not answer, refused, or gave no token.
    pub async fn fetch(&self) -> Result<Sensitive<String>, Error> {
        let e = |m: String| Error {
            operation: format!("{} OIDC token request", self.system),
            ..Error::new("Credential", m)
        };
        let req = if self.post {
            self.http
                .post(&self.url)
                .header("content-type", "application/json")
                .header("X-TFS-FedAuthRedirect", "Suppress")
                .body("")
        } else {
            self.http.get(&self.url)
        };
        let r = req
            .bearer_auth(self.bearer.expose())
            .send()
            .await
            .map_err(|x| e(format!("the OIDC request endpoint did not answer: {}", x.without_url())))?;
        let status = r.status().as_u16();
        if !r.status().is_success() {
            return Err(Error { status: Some(status), ..e(format!("the OIDC request endpoint answered {status}")) });
        }
        let v: serde_json::Value = r
            .json()
            .await
            .map_err(|x| e(format!("the OIDC request endpoint answered no JSON: {}", x.without_url())))?;
        let field = if self.post { "oidcToken" } else { "value" };
        match v.get(field).and_then(|t| t.as_str()) {
            Some(t) if !t.is_empty() => Ok(Sensitive::new(t.to_string())),
            _ => Err(e(format!("the OIDC request endpoint's answer has no `{field}`"))),
        }
    }
}

/// `azure_identity`'s assertion source, for [`azure_identity::ClientAssertionCredential`].
#[derive(Debug, Clone)]
pub struct SharedAssertion(pub Arc<CiAssertion>);

#[async_trait]
impl azure_identity::ClientAssertion for SharedAssertion {
    async fn secret(&self, _options: Option<azure_core::http::ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        self.0
            .fetch()
            .await
            .map(|s| s.expose().clone())
            .map_err(|x| azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, x.to_string()))
    }
}

/// Which Azure credential to use (`--auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Github,
    AzurePipelines,
    Workload,
    Secret,
    Msi,
    Cli,
}

/// Pick an Azure credential in the documented order, or the forced one. Its token requests
/// go through `http` (idlab's own client: its proxy and the CAs it trusts).
///
/// # Errors
/// The chosen credential cannot be built (missing variables).
pub fn azure_credential(forced: Option<AuthMethod>, http: &reqwest::Client) -> Result<Arc<dyn TokenSource>, Error> {
    use azure_identity::{
        ClientAssertionCredential, ClientAssertionCredentialOptions, ClientSecretCredential,
        ClientSecretCredentialOptions, DeveloperToolsCredential, ManagedIdentityCredential,
        ManagedIdentityCredentialOptions, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
    };
    let client_options = || azure_core::http::ClientOptions {
        transport: Some(azure_core::http::Transport::new(Arc::new(http.clone()))),
        ..Default::default()
    };
    let var = env_var;
    let method = forced.or_else(ci_detected).unwrap_or(if var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
        AuthMethod::Workload
    } else if var("AZURE_CLIENT_SECRET").is_some() {
        AuthMethod::Secret
    } else if var("IDENTITY_ENDPOINT").is_some() {
        AuthMethod::Msi
    } else {
        AuthMethod::Cli
    });
    let e = |m: String| Error::new("Credential", m);
    let cred: Arc<dyn TokenCredential> = match method {
        AuthMethod::Github | AuthMethod::AzurePipelines => {
            let a = CiAssertion::from_env(method)?;
            let (tenant, client) = (a.tenant_id.clone(), a.client_id.clone());
            let options = ClientAssertionCredentialOptions { client_options: client_options() };
            ClientAssertionCredential::new(tenant, client, SharedAssertion(Arc::new(a)), Some(options)).map_err(
                |x| {
                    e(format!(
                        "--auth {}: {x}",
                        if method == AuthMethod::Github { "github" } else { "azure-pipelines" }
                    ))
                },
            )?
        }
        AuthMethod::Workload => {
            let options = WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions { client_options: client_options() },
                ..Default::default()
            };
            WorkloadIdentityCredential::new(Some(options)).map_err(|x| e(format!("workload identity: {x}")))?
        }
        AuthMethod::Secret => {
            let tenant = var("AZURE_TENANT_ID").ok_or_else(|| e("AZURE_TENANT_ID is not set".into()))?;
            let client = var("AZURE_CLIENT_ID").ok_or_else(|| e("AZURE_CLIENT_ID is not set".into()))?;
            let secret = var("AZURE_CLIENT_SECRET").ok_or_else(|| e("AZURE_CLIENT_SECRET is not set".into()))?;
            let options = ClientSecretCredentialOptions { client_options: client_options() };
            ClientSecretCredential::new(&tenant, client, secret.into(), Some(options))
                .map_err(|x| e(format!("client secret: {x}")))?
        }
        AuthMethod::Msi => {
            let options = ManagedIdentityCredentialOptions { client_options: client_options(), ..Default::default() };
            ManagedIdentityCredential::new(Some(options)).map_err(|x| e(format!("managed identity: {x}")))?
        }
        AuthMethod::Cli => DeveloperToolsCredential::new(None).map_err(|x| e(format!("developer tools: {x}")))?,
    };
    Ok(Arc::new(AzureCredential(cred)))
}

/// Caches tokens per scope until five minutes before expiry.
pub struct Cached {
    inner: Arc<dyn TokenSource>,
    cache: Mutex<HashMap<String, Token>>,
}

impl Cached {
    pub fn new(inner: Arc<dyn TokenSource>) -> Cached {
        Cached { inner, cache: Mutex::new(HashMap::new()) }
    }

    /// A cache already holding `token` for `scope` (the token a connection was made with).
    pub fn primed(inner: Arc<dyn TokenSource>, scope: &str, token: Token) -> Cached {
        Cached { inner, cache: Mutex::new(HashMap::from([(scope.to_string(), token)])) }
    }
}

#[async_trait]
impl TokenSource for Cached {
    async fn token(&self, scope: &str) -> Result<Token, Error> {
        let margin = Duration::from_secs(300);
        if let Some(t) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(scope).cloned()
            && t.expires > SystemTime::now() + margin
        {
            return Ok(t);
        }
        let t = self.inner.token(scope).await?;
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(scope.to_string(), t.clone());
        Ok(t)
    }
    fn object_id(&self) -> Option<String> {
        self.inner.object_id()
    }
}
