//! Credentials. The local cloud's client-credentials issuer, or Azure through
//! `azure_identity` in the documented order (`docs/cli.md`): workload identity
//! (`AZURE_FEDERATED_TOKEN_FILE`), client secret (`AZURE_CLIENT_SECRET`), managed identity
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

/// Client credentials against the local cloud's issuer.
pub struct LocalCredential {
    pub http: reqwest::Client,
    pub token_url: String,
    pub client_id: String,
    pub object_id: String,
    pub secret: Sensitive<String>,
}

#[async_trait]
impl TokenSource for LocalCredential {
    async fn token(&self, scope: &str) -> Result<Token, Error> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.secret.expose().as_str()),
            ("scope", scope),
        ];
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

/// Which Azure credential to use (`--auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Workload,
    Secret,
    Msi,
    Cli,
}

/// Pick an Azure credential in the documented order, or the forced one.
///
/// # Errors
/// The chosen credential cannot be built (missing variables).
pub fn azure_credential(forced: Option<AuthMethod>) -> Result<Arc<dyn TokenSource>, Error> {
    use azure_identity::{
        ClientSecretCredential, DeveloperToolsCredential, ManagedIdentityCredential, WorkloadIdentityCredential,
    };
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let method = forced.unwrap_or(if var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
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
        AuthMethod::Workload => {
            WorkloadIdentityCredential::new(None).map_err(|x| e(format!("workload identity: {x}")))?
        }
        AuthMethod::Secret => {
            let tenant = var("AZURE_TENANT_ID").ok_or_else(|| e("AZURE_TENANT_ID is not set".into()))?;
            let client = var("AZURE_CLIENT_ID").ok_or_else(|| e("AZURE_CLIENT_ID is not set".into()))?;
            let secret = var("AZURE_CLIENT_SECRET").ok_or_else(|| e("AZURE_CLIENT_SECRET is not set".into()))?;
            ClientSecretCredential::new(&tenant, client, secret.into(), None)
                .map_err(|x| e(format!("client secret: {x}")))?
        }
        AuthMethod::Msi => ManagedIdentityCredential::new(None).map_err(|x| e(format!("managed identity: {x}")))?,
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
