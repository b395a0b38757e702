//! `list_keys`: ask for a storage account's keys (`POST {account}/listKeys`) with the
//! identity's Resource Manager token. A least-privilege role (the SAS tutorial with a custom
//! role allowing only `listServiceSas`) checks it with `expect: denied`; an allowed check
//! passes on 200. The keys themselves are never read into the result.

use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;

use super::{Ask, CheckKind, CheckResult};
use crate::model::Expect;

pub(crate) struct ListKeys;

#[async_trait]
impl CheckKind for ListKeys {
    fn name(&self) -> &'static str {
        "list_keys"
    }
    fn resource(&self, _: &str) -> &'static str {
        "https://management.azure.com/"
    }
    async fn run(&self, ask: Ask<'_, '_>) -> CheckResult {
        let path = format!("{}/listKeys", ask.target);
        let start = Instant::now();
        let r = match ask
            .request(reqwest::Method::POST, &path)
            .api_version(crate::engine::walk::api_for_type("Microsoft.Storage/storageAccounts"))
            .private_url()
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return ask.fail(format!("POST {path}: {}", e.message)),
        };
        let code = r.json().pointer("/error/code").and_then(Value::as_str).unwrap_or_default().to_string();
        let detail = format!(
            "list the keys of {} as {}: {}{}",
            ask.target,
            ask.who,
            super::said(r.status, &code),
            r.request_id.as_ref().map(|id| format!(" (request id {id})")).unwrap_or_default()
        );
        let pass = match ask.expect {
            Expect::Allowed => r.is_success(),
            Expect::Denied => r.status == 403,
        };
        ask.judge(pass, detail, &r, start)
    }
}
