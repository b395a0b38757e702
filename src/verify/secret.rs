//! `read_secret` (tutorial "Key Vault"): GET the secret from the vault's data plane with the
//! identity's vault token; access policies or RBAC decide. The value is compared with the one
//! the deploying principal reads, in memory, and never shown.

use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;

use super::run_command::{Remote, json_sha256};
use super::{Ask, CheckKind, CheckResult};
use crate::arm::keyvault;
use crate::model::{Expect, Sensitive};

pub(crate) struct ReadSecret;

#[async_trait]
impl CheckKind for ReadSecret {
    fn name(&self) -> &'static str {
        "read_secret"
    }
    fn resource(&self, _: &str) -> &'static str {
        "https://vault.azure.net"
    }
    async fn run(&self, ask: Ask<'_, '_>) -> CheckResult {
        let secret_id = ask.target;
        let secret = secret_id.rsplit('/').next().unwrap_or_default().to_string();
        // One look at the vault for its URI; the deploying principal's read gives the value
        // to compare with.
        let url = match keyvault::secret_url_of(ask.env.client, secret_id).await {
            Ok(Some(u)) => u,
            Ok(None) => return ask.fail(format!("the vault of `{secret}` does not exist: apply the plan first")),
            Err(e) => return ask.fail(e.to_string()),
        };
        let stored = match keyvault::get_secret_at(ask.env.client, &url).await {
            Ok(Some(keyvault::SecretState::Live { value, .. })) => value,
            Ok(_) => return ask.fail(format!("secret `{secret}` does not exist: apply the plan first")),
            Err(e) => return ask.fail(format!("reading secret `{secret}` as the deploying principal: {e}")),
        };
        let start = Instant::now();
        let req = ask.request(reqwest::Method::GET, &url).api_version(keyvault::DATA_API).private_url();
        let r = match req.send().await {
            Ok(r) => r,
            Err(e) => return ask.fail(format!("GET secret `{secret}`: {}", e.message)),
        };
        let b = r.json();
        let code = b.pointer("/error/innererror/code").or_else(|| b.pointer("/error/code"));
        let code = code.and_then(Value::as_str).unwrap_or_default();
        let value = Sensitive::new(b.get("value").and_then(Value::as_str).unwrap_or_default().to_string());
        let same = crate::engine::secrets::same(&value, &stored);
        let allowed = r.status == 200;
        let pass = match ask.expect {
            Expect::Allowed => allowed && same,
            Expect::Denied => r.status == 403,
        };
        let detail = format!(
            "read secret {secret} as {}: {}{}",
            ask.who,
            super::said(r.status, code),
            match (allowed, same) {
                (true, true) => " (the value matches the stored one)",
                (true, false) => " (the value DIFFERS from the stored one)",
                _ => "",
            }
        );
        ask.judge(pass, detail, &r, start)
    }
    /// On the VM: the script hashes the value it read; the stored value's hash is what it
    /// must match. Neither value leaves its side.
    async fn remote(&self, ask: Ask<'_, '_>) -> Result<Option<Remote>, String> {
        let secret = ask.target.rsplit('/').next().unwrap_or_default().to_string();
        let url = match keyvault::secret_url_of(ask.env.client, ask.target).await {
            Ok(Some(u)) => u,
            Ok(None) => return Err(format!("the vault of `{secret}` does not exist: apply the plan first")),
            Err(e) => return Err(e.to_string()),
        };
        let stored = match keyvault::get_secret_at(ask.env.client, &url).await {
            Ok(Some(keyvault::SecretState::Live { value, .. })) => value,
            Ok(_) => return Err(format!("secret `{secret}` does not exist: apply the plan first")),
            Err(e) => return Err(format!("reading secret `{secret}` as the deploying principal: {e}")),
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        Ok(Some(Remote {
            method: "GET",
            url: format!("{url}{sep}api-version={}", keyvault::DATA_API),
            headers: Vec::new(),
            body: None,
            what: format!("read secret {secret}"),
            expect_sha256: Some(json_sha256(&stored)),
            steps: Vec::new(),
            expect_oid: None,
        }))
    }
}
