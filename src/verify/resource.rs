//! `read_resource` and `write_resource` (tutorials "access Resource Manager"): GET the target,
//! or PATCH its tags as they are, with the identity's Resource Manager token.

use std::time::Instant;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::run_command::Remote;
use super::{Ask, CheckKind, CheckResult};
use crate::arm::client::Reply;
use crate::model::Expect;

pub(crate) struct ReadResource;
pub(crate) struct WriteResource;

#[async_trait]
impl CheckKind for ReadResource {
    fn name(&self) -> &'static str {
        "read_resource"
    }
    fn resource(&self, _: &str) -> &'static str {
        "https://management.azure.com/"
    }
    async fn run(&self, ask: Ask<'_, '_>) -> CheckResult {
        call(ask, false).await
    }
    async fn remote(&self, ask: Ask<'_, '_>) -> Result<Option<Remote>, String> {
        Ok(Some(remote(&ask, false)))
    }
}

#[async_trait]
impl CheckKind for WriteResource {
    fn name(&self) -> &'static str {
        "write_resource"
    }
    fn resource(&self, _: &str) -> &'static str {
        "https://management.azure.com/"
    }
    async fn run(&self, ask: Ask<'_, '_>) -> CheckResult {
        call(ask, true).await
    }
    async fn remote(&self, ask: Ask<'_, '_>) -> Result<Option<Remote>, String> {
        Ok(Some(remote(&ask, true)))
    }
}

/// The api-version of the target's type (a resource group's when the id is one).
fn api_of(target_id: &str) -> &'static str {
    let api = crate::engine::walk::api_for_type(
        &crate::arm::id::ResourceId::parse(target_id)
            .ok()
            .and_then(|i| i.resource_type())
            .unwrap_or_else(|| "Microsoft.Resources/resourceGroups".into()),
    );
    if target_id.matches('/').count() == 4 { "2024-11-01" } else { api }
}

/// The write check's body: the target's tags as they are.
fn tags_body(ask: &Ask<'_, '_>) -> Value {
    let tags = ask
        .env
        .values
        .get(&(ask.target_name.to_string(), "tags".into()))
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .unwrap_or(json!({}));
    json!({ "tags": tags })
}

/// The same call, made on the VM (`verify --via run-command`).
fn remote(ask: &Ask<'_, '_>, write: bool) -> Remote {
    let target_id = ask.target;
    Remote {
        method: if write { "PATCH" } else { "GET" },
        url: format!("{}{target_id}?api-version={}", ask.env.client.base(), api_of(target_id)),
        headers: Vec::new(),
        body: write.then(|| tags_body(ask).to_string()),
        what: format!("{} {target_id}", if write { "write" } else { "read" }),
        expect_sha256: None,
        steps: Vec::new(),
        expect_oid: None,
    }
}

async fn call(ask: Ask<'_, '_>, write: bool) -> CheckResult {
    let target_id = ask.target;
    let method = if write { reqwest::Method::PATCH } else { reqwest::Method::GET };
    let mut req = ask.request(method.clone(), target_id).api_version(api_of(target_id));
    if write {
        req = req.json(&tags_body(&ask));
    }
    let start = Instant::now();
    let r = match req.send().await {
        Ok(r) => r,
        Err(e) => return ask.fail(format!("{method} {target_id}: {}", e.message)),
    };
    let verb = if write { "write" } else { "read" };
    verdict(&ask, &format!("{verb} {target_id}"), &r, start)
}

/// An ARM answer judged against the check's expectation: any success when allowed, 403 when
/// denied; the detail says what was done (`what`), as whom, the status, code and request id.
pub(super) fn verdict(ask: &Ask<'_, '_>, what: &str, r: &Reply, start: Instant) -> CheckResult {
    let code = r.json().pointer("/error/code").and_then(Value::as_str).unwrap_or_default().to_string();
    let detail = format!(
        "{what} as {}: {}{}",
        ask.who,
        super::said(r.status, &code),
        r.request_id.as_ref().map(|id| format!(" (request id {id})")).unwrap_or_default()
    );
    let pass = match ask.expect {
        Expect::Allowed => r.is_success(),
        Expect::Denied => r.status == 403,
    };
    ask.judge(pass, detail, r, start)
}
