//! A test OIDC issuer (`idlab::local::oidc`) on 127.0.0.1, run on a runtime of its own, and
//! the environment a GitHub Actions job or an Azure Pipelines task gives a step.

use idlab::local::oidc::{self, OidcServer};

/// The bearer token the test issuer's token endpoints require.
pub(crate) const REQUEST_TOKEN: &str = "test-request-token-8d1f";

/// The service connection the Azure Pipelines variables name.
pub(crate) const CONNECTION: &str = "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b";

pub(crate) struct Oidc {
    pub(crate) server: OidcServer,
    _rt: tokio::runtime::Runtime,
}

/// The two CI systems idlab signs in from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ci {
    Github,
    Pipelines,
}

impl Ci {
    pub(crate) const BOTH: [Ci; 2] = [Ci::Github, Ci::Pipelines];
}

impl Oidc {
    /// Start an issuer publishing the fixture key `other-signing` and signing wrongly signed
    /// assertions with `token-signing` (the local cloud's own test key).
    pub(crate) fn start() -> Oidc {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let server = rt
            .block_on(async {
                oidc::start(
                    listener,
                    include_bytes!("../../fixtures/keys/other-signing.key.der"),
                    include_bytes!("../../fixtures/keys/token-signing.key.der"),
                    REQUEST_TOKEN,
                )
            })
            .expect("oidc server");
        Oidc { server, _rt: rt }
    }

    /// The issuer URL (a federated credential's `issuer`).
    pub(crate) fn issuer(&self) -> &str {
        &self.server.base
    }

    /// The variables `ci` gives a step, signing in as `client_id` in `tenant`.
    pub(crate) fn env(&self, ci: Ci, client_id: &str, tenant: &str) -> Vec<(&'static str, String)> {
        let mut v = vec![("AZURE_CLIENT_ID", client_id.to_string()), ("AZURE_TENANT_ID", tenant.to_string())];
        match ci {
            Ci::Github => {
                v.push(("ACTIONS_ID_TOKEN_REQUEST_URL", self.server.github_url()));
                v.push(("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN.to_string()));
            }
            Ci::Pipelines => {
                v.push(("SYSTEM_OIDCREQUESTURI", self.server.pipelines_url()));
                v.push(("SYSTEM_ACCESSTOKEN", REQUEST_TOKEN.to_string()));
                v.push(("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", CONNECTION.to_string()));
            }
        }
        v
    }
}
