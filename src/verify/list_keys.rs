//! `list_keys`: ask for a storage account's keys (`POST {account}/listKeys`) with the
//! identity's Resource Manager token. A least-privilege role (the SAS tutorial with a custom
//! role allowing only `listServiceSas`) checks it with `expect: denied`; an allowed check
//! passes on 200. The keys themselves are never read into the result.

use std::time::Instant;

use super::run_command::Remote;
use super::{Ask, CheckKind, CheckResult};
use async_trait::async_trait;

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
        super::resource::verdict(&ask, &format!("list the keys of {}", ask.target), &r, start)
    }
    /// On the VM the answer (the keys) stays in the script's temporary file, removed at its
    /// end; only the status comes back.
    async fn remote(&self, ask: Ask<'_, '_>) -> Result<Option<Remote>, String> {
        Ok(Some(Remote {
            method: "POST",
            url: format!(
                "{}{}/listKeys?api-version={}",
                ask.env.client.base(),
                ask.target,
                crate::engine::walk::api_for_type("Microsoft.Storage/storageAccounts")
            ),
            headers: Vec::new(),
            body: None,
            what: format!("list the keys of {}", ask.target),
            expect_sha256: None,
            steps: Vec::new(),
            expect_oid: None,
        }))
    }
}
