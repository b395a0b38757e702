//! `read_blob` (tutorial "Storage"): GET the blob with the identity's storage token; RBAC
//! data actions decide.

use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;

use super::run_command::Remote;
use super::{Ask, CheckKind, CheckResult, VerifyEnv};
use crate::model::Expect;

pub(crate) struct ReadBlob;

#[async_trait]
impl CheckKind for ReadBlob {
    fn name(&self) -> &'static str {
        "read_blob"
    }
    fn resource(&self, _: &str) -> &'static str {
        "https://storage.azure.com/"
    }
    async fn run(&self, ask: Ask<'_, '_>) -> CheckResult {
        let blob_id = ask.target;
        let Some(b) = crate::arm::blob::BlobId::parse(blob_id) else {
            return ask.fail(format!("{blob_id} is not a blob"));
        };
        let endpoint = match endpoint(ask.env, &b.account_id).await {
            Ok(e) => e,
            Err(e) => return ask.fail(e),
        };
        let url = format!("{endpoint}/{}/{}", b.container, crate::arm::percent_encode(&b.name, b"/"));
        let start = Instant::now();
        let req = ask.request(reqwest::Method::GET, &url).header("x-ms-version", crate::arm::blob::VERSION);
        let r = match req.private_url().send().await {
            Ok(r) => r,
            Err(e) => return ask.fail(format!("GET {url}: {}", e.message)),
        };
        let code = r.header("x-ms-error-code").unwrap_or_default().to_string();
        let allowed = r.status == 200;
        let pass = match ask.expect {
            Expect::Allowed => allowed,
            Expect::Denied => r.status == 403,
        };
        let detail = format!(
            "read blob {}/{} as {}: {}{}",
            b.container,
            b.name,
            ask.who,
            super::said(r.status, &code),
            if allowed { format!(" ({} bytes)", r.bytes.len()) } else { String::new() }
        );
        ask.judge(pass, detail, &r, start)
    }
    async fn remote(&self, ask: Ask<'_, '_>) -> Result<Option<Remote>, String> {
        let Some(b) = crate::arm::blob::BlobId::parse(ask.target) else {
            return Err(format!("{} is not a blob", ask.target));
        };
        let endpoint = endpoint(ask.env, &b.account_id).await?;
        Ok(Some(Remote {
            method: "GET",
            url: format!("{endpoint}/{}/{}", b.container, crate::arm::percent_encode(&b.name, b"/")),
            headers: vec![("x-ms-version", crate::arm::blob::VERSION.to_string())],
            body: None,
            what: format!("read blob {}/{}", b.container, b.name),
            expect_sha256: None,
            steps: Vec::new(),
            expect_oid: None,
        }))
    }
}

/// The account's blob endpoint (no trailing `/`), read as the operator through ARM, like the
/// tutorials' portal step.
pub(super) async fn endpoint(env: &VerifyEnv<'_>, account_id: &str) -> Result<String, String> {
    match env.client.get(account_id, "2025-06-01").await {
        Ok(Some(a)) => a
            .pointer("/properties/primaryEndpoints/blob")
            .and_then(Value::as_str)
            .map(|e| e.trim_end_matches('/').to_string())
            .ok_or_else(|| format!("{account_id} has no blob endpoint")),
        Ok(None) => Err(format!("{account_id} does not exist: apply the plan first")),
        Err(e) => Err(format!("reading {account_id}: {e}")),
    }
}
