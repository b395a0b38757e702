//! `blob_sas` (tutorial "Storage via SAS"): with the identity's ARM token, get a container SAS
//! (`rcw`) through `listServiceSas`; upload a blob with it and read it back; then check that
//! the SAS cannot delete and that an expired SAS is refused. The test blob
//! (`idlab-verify.txt`) stays, as in the tutorial: the SAS has no `d`.

use std::time::Instant;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::run_command::{Auth, Remote, Step};
use super::{Ask, CheckKind, CheckResult};
use crate::model::{Expect, Sensitive};

pub(crate) struct BlobSas;

#[async_trait]
impl CheckKind for BlobSas {
    fn name(&self) -> &'static str {
        "blob_sas"
    }
    fn resource(&self, _: &str) -> &'static str {
        "https://management.azure.com/"
    }
    async fn run(&self, ask: Ask<'_, '_>) -> CheckResult {
        blob_sas(ask).await
    }
    /// On the VM, as the tutorial: `listServiceSas` with the identity's ARM token (the gate),
    /// then upload a blob with the SAS, read it back (its SHA-256 is compared with the
    /// upload's) and check that the SAS cannot delete it. The SAS stays on the VM.
    async fn remote(&self, ask: Ask<'_, '_>) -> Result<Option<Remote>, String> {
        let Some((account_id, container)) = ask.target.split_once("/blobServices/default/containers/") else {
            return Err(format!("{} is not a blob container", ask.target));
        };
        let account = account_id.rsplit('/').next().unwrap_or_default();
        let endpoint = super::blob::endpoint(ask.env, account_id).await?;
        let now = time::OffsetDateTime::now_utc();
        let body = sas_body(&format!("/blob/{account}/{container}"), now + time::Duration::hours(1))?;
        let url = format!("{endpoint}/{container}/idlab-verify.txt");
        let content = format!("idlab verify {}", now.unix_timestamp());
        let version = || vec![("x-ms-version", crate::arm::blob::VERSION.to_string())];
        let step = |label: &str, method, want| Step {
            label: label.to_string(),
            method,
            url: url.clone(),
            headers: version(),
            content_type: None,
            body: None,
            want,
            auth: Auth::Sas,
            follow: false,
            hash: false,
            new_sas: false,
        };
        let mut upload = step("upload", "PUT", 201);
        upload.headers.push(("x-ms-blob-type", "BlockBlob".into()));
        upload.content_type = Some("text/plain");
        upload.body = Some(content.clone());
        let download = Step { hash: true, ..step("download", "GET", 200) };
        // Another SAS, expired an hour ago, asked for with the ARM token: it must be refused.
        let arm = format!("{}{account_id}/listServiceSas?api-version=2025-06-01", ask.env.client.base());
        let old = sas_body(&format!("/blob/{account}/{container}"), now - time::Duration::hours(1))?;
        let expired = Step {
            url: arm.clone(),
            headers: Vec::new(),
            content_type: Some("application/json"),
            body: Some(old.to_string()),
            auth: Auth::Token,
            new_sas: true,
            ..step("expired SAS issued", "POST", 200)
        };
        Ok(Some(Remote {
            method: "POST",
            url: arm,
            headers: Vec::new(),
            body: Some(body.to_string()),
            what: format!("listServiceSas on {account}"),
            expect_sha256: Some(vec![super::run_command::sha256_hex(content.as_bytes())]),
            steps: vec![
                upload,
                download,
                step("delete refused", "DELETE", 403),
                expired,
                step("expired SAS refused", "GET", 403),
            ],
            expect_oid: None,
        }))
    }
}

/// The `listServiceSas` body of a container SAS (`rcw`) for `resource` (`/blob/ACCOUNT/CONTAINER`).
fn sas_body(resource: &str, expiry: time::OffsetDateTime) -> Result<Value, String> {
    let expiry = expiry
        .replace_nanosecond(0)
        .unwrap_or(expiry)
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())?;
    Ok(json!({
        "canonicalizedResource": resource,
        "signedResource": "c",
        "signedPermission": "rcw",
        "signedProtocol": "https",
        "signedExpiry": expiry,
    }))
}

/// What `listServiceSas` answered: status, error code, the SAS, and whether the answer
/// waited for role propagation.
struct Listed {
    status: u16,
    code: String,
    sas: Option<Sensitive<String>>,
    waited: bool,
}

/// A container SAS from `listServiceSas`, asked for with the identity's ARM token (with
/// `wait`, an allowed check waits out a refusal while its role propagates).
async fn list_sas(
    ask: &Ask<'_, '_>,
    account_id: &str,
    resource: &str,
    expiry: time::OffsetDateTime,
    wait: bool,
) -> Result<Listed, String> {
    let body = sas_body(resource, expiry)?;
    let path = format!("{account_id}/listServiceSas");
    let req = if wait {
        ask.request(reqwest::Method::POST, &path)
    } else {
        ask.env.client.request(reqwest::Method::POST, &path).bearer(ask.token)
    };
    let r = req
        .api_version("2025-06-01")
        .json(&body)
        .private_url()
        .send()
        .await
        .map_err(|e| format!("POST {account_id}/listServiceSas: {}", e.message))?;
    let v = r.json();
    let code = v.pointer("/error/code").and_then(Value::as_str).unwrap_or_default().to_string();
    let sas = v.get("serviceSasToken").and_then(Value::as_str).map(|t| Sensitive::new(t.to_string()));
    Ok(Listed { status: r.status, code, sas, waited: r.held > 0 })
}

/// The data-plane answer to one SAS request: status, error code, body.
async fn with_sas(
    ask: &Ask<'_, '_>,
    method: reqwest::Method,
    url: &str,
    sas: &Sensitive<String>,
    body: Option<Vec<u8>>,
) -> Result<(u16, String, Vec<u8>), String> {
    let mut r = ask
        .env
        .client
        .request(method.clone(), &format!("{url}?{}", sas.expose()))
        .no_auth()
        .private_url()
        .header("x-ms-version", crate::arm::blob::VERSION);
    if let Some(b) = body {
        r = r.header("x-ms-blob-type", "BlockBlob").header("content-type", "text/plain").body(b);
    }
    let r = r.send().await.map_err(|e| format!("{method} {url}: {}", e.message))?;
    let code = r.header("x-ms-error-code").unwrap_or_default().to_string();
    Ok((r.status, code, r.bytes))
}

async fn blob_sas(ask: Ask<'_, '_>) -> CheckResult {
    let container_id = ask.target;
    let fail = |d: String| ask.fail(d);
    let Some((account_id, container)) = container_id.split_once("/blobServices/default/containers/") else {
        return fail(format!("{container_id} is not a blob container"));
    };
    let account = account_id.rsplit('/').next().unwrap_or_default();
    let endpoint = match super::blob::endpoint(ask.env, account_id).await {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let resource = format!("/blob/{account}/{container}");
    let now = time::OffsetDateTime::now_utc();
    let start = Instant::now();
    let listed = match list_sas(&ask, account_id, &resource, now + time::Duration::hours(1), true).await {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let detail = format!("listServiceSas on {account} as {}: {}", ask.who, super::said(listed.status, &listed.code));
    let got = listed.status == 200 && listed.sas.is_some();
    if ask.expect == Expect::Denied {
        return if listed.status == 403 { ask.result("pass", detail) } else { fail(detail) };
    }
    let Some(sas) = listed.sas.filter(|_| got) else { return fail(detail) };
    let url = format!("{endpoint}/{container}/idlab-verify.txt");
    let content = format!("idlab verify {}", now.unix_timestamp()).into_bytes();
    let mut steps = vec![format!("listServiceSas as {}: 200", ask.who)];
    let put = match with_sas(&ask, reqwest::Method::PUT, &url, &sas, Some(content.clone())).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    steps.push(format!("upload {}", put.0));
    if put.0 != 201 {
        return fail(format!("{}; the SAS upload was refused: {}", steps.join(", "), put.1));
    }
    let get = match with_sas(&ask, reqwest::Method::GET, &url, &sas, None).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    steps.push(format!("download {}", get.0));
    if get.0 != 200 || get.2 != content {
        return fail(format!("{}; the download did not return what was uploaded", steps.join(", ")));
    }
    let del = match with_sas(&ask, reqwest::Method::DELETE, &url, &sas, None).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    steps.push(format!("delete refused {} {}", del.0, del.1));
    if del.0 != 403 {
        return fail(format!("{}; a SAS without `d` deleted the blob", steps.join(", ")));
    }
    let expired = match list_sas(&ask, account_id, &resource, now - time::Duration::hours(1), false).await {
        Ok(Listed { status: 200, sas: Some(t), .. }) => t,
        Ok(l) => {
            return fail(format!("{}; listServiceSas for an expired SAS: {} {}", steps.join(", "), l.status, l.code));
        }
        Err(e) => return fail(e),
    };
    let old = match with_sas(&ask, reqwest::Method::GET, &url, &expired, None).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    steps.push(format!("expired SAS refused {} {}", old.0, old.1));
    if old.0 != 403 {
        return fail(format!("{}; an expired SAS was accepted", steps.join(", ")));
    }
    ask.result("pass", format!("{}{}", steps.join(", "), super::waited(listed.waited, start)))
}
