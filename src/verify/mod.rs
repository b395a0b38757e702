//! `idlab verify`: the tutorials' "access data" steps, performed as the VM's identity — a
//! token from the VM's managed-identity endpoint for the exact resource URI, then the call.
//! Role assignments take a while to propagate, so an allowed check that is refused is
//! retried within a bounded window (and says so).
//!
//! Imports: kinds, arm, engine (for observed ids). Never prints.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};

use crate::arm::Client;
use crate::model::{Check, Expect, Sp};

/// How one check ended.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckResult {
    pub name: String,
    /// `pass`, `fail` or `skip`.
    pub status: &'static str,
    pub detail: String,
}

/// What verify needs to know about the environment.
pub struct VerifyEnv<'a> {
    pub client: &'a Client,
    pub http: &'a reqwest::Client,
    /// (logical, attribute) → value, from observe.
    pub values: &'a HashMap<(String, String), String>,
    /// VM resource id (lower-cased) → its identity endpoint base URL.
    pub endpoints: &'a HashMap<String, String>,
    /// Used for VMs with no known endpoint (on a real VM: `http://169.254.169.254`).
    pub default_endpoint: Option<&'a str>,
    /// How long an allowed check keeps retrying a refusal (role propagation).
    pub propagation: Duration,
}

fn root(s: &Sp<String>) -> String {
    s.value.trim_start_matches("${").trim_end_matches('}').trim_end_matches(".id").to_string()
}

/// Run one check.
pub async fn run_check(name: &str, c: &Check, env: &VerifyEnv<'_>) -> CheckResult {
    let fail = |d: String| CheckResult { name: name.to_string(), status: "fail", detail: d };
    let actions = c.actions();
    let Some((action, target)) = actions.first() else {
        return fail("no action".into());
    };
    if !matches!(
        *action,
        "read_resource" | "write_resource" | "read_blob" | "blob_sas" | "read_secret" | "sql_login" | "data_lake"
    ) {
        return CheckResult {
            name: name.into(),
            status: "skip",
            detail: format!("`{action}` needs the data planes of a later idlab version"),
        };
    }
    let vm = root(&c.vm);
    let Some(vm_id) = env.values.get(&(vm.clone(), "id".into())) else {
        return fail(format!("VM `{vm}` is unknown: apply the plan first"));
    };
    let endpoint = match env.endpoints.get(&vm_id.to_ascii_lowercase()).map(String::as_str).or(env.default_endpoint) {
        Some(e) => e.to_string(),
        None => return fail(format!("no managed-identity endpoint for VM `{vm}`")),
    };
    let client_id = match &c.identity {
        Some(i) if i.value != "system" => match env.values.get(&(root(i), "client_id".into())) {
            Some(cid) => Some(cid.clone()),
            None => return fail(format!("identity `{}` has no client id yet: apply the plan first", root(i))),
        },
        _ => None,
    };
    let t_name = root(target);
    let Some(target_id) = env.values.get(&(t_name.clone(), "id".into())).cloned() else {
        return fail(format!("`{t_name}` is unknown: apply the plan first"));
    };
    let expect = c.expect.as_ref().map_or(Expect::Allowed, |e| e.value);
    let who =
        client_id.as_ref().map_or_else(|| "the system-assigned identity".to_string(), |c| format!("client id {c}"));
    let resource = match *action {
        "read_blob" => "https://storage.azure.com/",
        "data_lake" if crate::arm::dfs::Gen2Folder::parse(&target_id).is_some() => "https://storage.azure.com/",
        "data_lake" => "https://datalake.azure.net/",
        "read_secret" => "https://vault.azure.net",
        "sql_login" => SQL_RESOURCE,
        _ => "https://management.azure.com/",
    };
    let mut url = format!("{endpoint}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}");
    if let Some(cid) = &client_id {
        url.push_str(&format!("&client_id={cid}"));
    }
    let token = match env.http.get(&url).header("Metadata", "true").send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            match body.get("access_token").and_then(Value::as_str) {
                Some(t) if status == 200 => crate::model::Sensitive::new(t.to_string()),
                _ => {
                    return fail(format!(
                        "the VM's identity endpoint refused a token for {who}: {status} {}",
                        body.get("error_description").and_then(Value::as_str).unwrap_or_default()
                    ));
                }
            }
        }
        Err(e) => return fail(format!("the VM's identity endpoint did not answer: {e}")),
    };
    if *action == "read_blob" {
        return read_blob(Ask { name, target: &target_id, token: &token, who: &who, expect, env }).await;
    }
    if *action == "blob_sas" {
        return blob_sas(Ask { name, target: &target_id, token: &token, who: &who, expect, env }).await;
    }
    if *action == "data_lake" {
        return data_lake(Ask { name, target: &target_id, token: &token, who: &who, expect, env }).await;
    }
    if *action == "read_secret" {
        return read_secret(Ask { name, target: &target_id, token: &token, who: &who, expect, env }).await;
    }
    if *action == "sql_login" {
        // The principal the T-SQL step names: the VM's system identity or the chosen one.
        let principal = match &c.identity {
            Some(i) if i.value != "system" => env.values.get(&(root(i), "principal_id".into())),
            _ => env.values.get(&(vm.clone(), "identity.principal_id".into())),
        };
        let ask = Ask { name, target: &target_id, token: &token, who: &who, expect, env };
        return sql_login(ask, principal.map(String::as_str)).await;
    }
    let api = crate::engine::walk::api_for_type(
        &crate::arm::id::ResourceId::parse(&target_id)
            .ok()
            .and_then(|i| i.resource_type())
            .unwrap_or_else(|| "Microsoft.Resources/resourceGroups".into()),
    );
    let api = if target_id.matches('/').count() == 4 { "2024-11-01" } else { api };
    let (method, body) = if *action == "read_resource" {
        (reqwest::Method::GET, None)
    } else {
        let tags = env
            .values
            .get(&(t_name.clone(), "tags".into()))
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .unwrap_or(json!({}));
        (reqwest::Method::PATCH, Some(json!({ "tags": tags })))
    };
    let start = Instant::now();
    let mut waited = false;
    loop {
        let mut req = env
            .http
            .request(method.clone(), format!("{}{target_id}?api-version={api}", env.client.base()))
            .bearer_auth(token.expose());
        if let Some(b) = &body {
            req = req.json(b);
        }
        let (status, code, rid) = match req.send().await {
            Ok(r)
                if (r.status().as_u16() == 429 || r.status().as_u16() >= 500)
                    && start.elapsed() < Duration::from_secs(60) =>
            {
                // Throttling and server errors are not the answer to the check: retry.
                let wait = crate::arm::client::retry_after(r.headers()).unwrap_or(Duration::from_millis(500));
                tokio::time::sleep(wait.min(Duration::from_secs(10))).await;
                continue;
            }
            Ok(r) => {
                let s = r.status().as_u16();
                let rid = r.headers().get("x-ms-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
                let b: Value = r.json().await.unwrap_or(Value::Null);
                (s, b.pointer("/error/code").and_then(Value::as_str).unwrap_or_default().to_string(), rid)
            }
            Err(e) => return fail(format!("{method} {target_id}: {e}")),
        };
        let verb = if method == reqwest::Method::GET { "read" } else { "write" };
        let detail = format!(
            "{verb} {target_id} as {who}: {status}{}{}",
            if code.is_empty() { String::new() } else { format!(" {code}") },
            rid.map(|r| format!(" (request id {r})")).unwrap_or_default()
        );
        let allowed = (200..300).contains(&status);
        let pass = match expect {
            Expect::Allowed => allowed,
            Expect::Denied => status == 403,
        };
        match judge(name, detail, pass, expect == Expect::Allowed && status == 403, start, &mut waited, env) {
            Some(done) => return done,
            None => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Send a data-plane request; throttling and server errors are not the answer a check is
/// after, so they are retried for up to a minute.
async fn settled(make: impl Fn() -> reqwest::RequestBuilder) -> Result<reqwest::Response, reqwest::Error> {
    let start = Instant::now();
    loop {
        let r = make().send().await?;
        let s = r.status().as_u16();
        if (s == 429 || s >= 500) && start.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        return Ok(r);
    }
}

/// One answer of a check: its result, or `None` to try again (an allowed check refused while
/// a new role assignment may still be propagating).
fn judge(
    name: &str,
    detail: String,
    pass: bool,
    refused_but_allowed: bool,
    start: Instant,
    waited: &mut bool,
    env: &VerifyEnv<'_>,
) -> Option<CheckResult> {
    if pass {
        let note = if *waited {
            format!(" after waiting {:.1} s for role propagation", start.elapsed().as_secs_f64())
        } else {
            String::new()
        };
        return Some(CheckResult { name: name.into(), status: "pass", detail: format!("{detail}{note}") });
    }
    if refused_but_allowed && start.elapsed() < env.propagation {
        *waited = true;
        return None;
    }
    Some(CheckResult { name: name.into(), status: "fail", detail })
}

/// What a data-plane check works with.
#[derive(Clone, Copy)]
struct Ask<'a, 'e> {
    name: &'a str,
    /// The target's resource id.
    target: &'a str,
    token: &'a crate::model::Sensitive<String>,
    /// The identity, for messages.
    who: &'a str,
    expect: Expect,
    env: &'a VerifyEnv<'e>,
}

/// The account's blob endpoint (no trailing `/`), read as the operator through ARM, like the
/// tutorials' portal step.
async fn blob_endpoint(env: &VerifyEnv<'_>, account_id: &str) -> Result<String, String> {
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

/// `read_blob`: GET the blob with the identity's storage token (RBAC data actions decide).
async fn read_blob(ask: Ask<'_, '_>) -> CheckResult {
    let Ask { name, target: blob_id, token, who, expect, env } = ask;
    let fail = |d: String| CheckResult { name: name.to_string(), status: "fail", detail: d };
    let Some(b) = crate::arm::blob::BlobId::parse(blob_id) else {
        return fail(format!("{blob_id} is not a blob"));
    };
    let endpoint = match blob_endpoint(env, &b.account_id).await {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let url = format!("{endpoint}/{}/{}", b.container, crate::arm::percent_encode(&b.name, b"/"));
    let start = Instant::now();
    let mut waited = false;
    loop {
        let req = || env.http.get(&url).bearer_auth(token.expose()).header("x-ms-version", crate::arm::blob::VERSION);
        let (status, code, len) = match settled(req).await {
            Ok(r) => {
                let s = r.status().as_u16();
                let code =
                    r.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
                let len = r.bytes().await.map(|b| b.len()).unwrap_or(0);
                (s, code, len)
            }
            Err(e) => {
                return fail(format!("GET {url}: {}", if e.is_timeout() { "timed out" } else { "no connection" }));
            }
        };
        let allowed = status == 200;
        let pass = match expect {
            Expect::Allowed => allowed,
            Expect::Denied => status == 403,
        };
        let detail = format!(
            "read blob {}/{} as {who}: {status}{}{}",
            b.container,
            b.name,
            if code.is_empty() { String::new() } else { format!(" {code}") },
            if allowed { format!(" ({len} bytes)") } else { String::new() }
        );
        match judge(name, detail, pass, expect == Expect::Allowed && status == 403, start, &mut waited, env) {
            Some(done) => return done,
            None => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// `read_secret`: GET the secret from the vault's data plane with the identity's vault token
/// (access policies or RBAC decide). The value is compared with the one the deploying
/// principal reads, in memory, and never shown.
async fn read_secret(ask: Ask<'_, '_>) -> CheckResult {
    use crate::arm::keyvault;
    let Ask { name, target: secret_id, token, who, expect, env } = ask;
    let fail = |d: String| CheckResult { name: name.to_string(), status: "fail", detail: d };
    let secret = secret_id.rsplit('/').next().unwrap_or_default().to_string();
    // One look at the vault for its URI; the deploying principal's read gives the value to
    // compare with.
    let url = match keyvault::secret_url_of(env.client, secret_id).await {
        Ok(Some(u)) => u,
        Ok(None) => return fail(format!("the vault of `{secret}` does not exist: apply the plan first")),
        Err(e) => return fail(e.to_string()),
    };
    let stored = match keyvault::get_secret_at(env.client, &url).await {
        Ok(Some(keyvault::SecretState::Live { value, .. })) => value,
        Ok(_) => return fail(format!("secret `{secret}` does not exist: apply the plan first")),
        Err(e) => return fail(format!("reading secret `{secret}` as the deploying principal: {e}")),
    };
    let start = Instant::now();
    let mut waited = false;
    loop {
        let req = || env.http.get(format!("{url}?api-version={}", keyvault::DATA_API)).bearer_auth(token.expose());
        let (status, code, same) = match settled(req).await {
            Ok(r) => {
                let s = r.status().as_u16();
                let b: Value = r.json().await.unwrap_or(Value::Null);
                let code = b.pointer("/error/innererror/code").or_else(|| b.pointer("/error/code"));
                let code = code.and_then(Value::as_str).unwrap_or_default().to_string();
                let value = crate::model::Sensitive::new(
                    b.get("value").and_then(Value::as_str).unwrap_or_default().to_string(),
                );
                (s, code, crate::engine::secrets::same(&value, &stored))
            }
            Err(e) => {
                return fail(format!(
                    "GET secret `{secret}`: {}",
                    if e.is_timeout() { "timed out" } else { "no connection" }
                ));
            }
        };
        let allowed = status == 200;
        let pass = match expect {
            Expect::Allowed => allowed && same,
            Expect::Denied => status == 403,
        };
        let detail = format!(
            "read secret {secret} as {who}: {status}{}{}",
            if code.is_empty() { String::new() } else { format!(" {code}") },
            match (allowed, same) {
                (true, true) => " (the value matches the stored one)",
                (true, false) => " (the value DIFFERS from the stored one)",
                _ => "",
            }
        );
        match judge(name, detail, pass, expect == Expect::Allowed && status == 403, start, &mut waited, env) {
            Some(done) => return done,
            None => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// A container SAS from `listServiceSas`, asked for with the identity's ARM token.
async fn list_sas(
    env: &VerifyEnv<'_>,
    token: &crate::model::Sensitive<String>,
    account_id: &str,
    resource: &str,
    expiry: time::OffsetDateTime,
) -> Result<(u16, String, Option<crate::model::Sensitive<String>>), String> {
    let expiry = expiry
        .replace_nanosecond(0)
        .unwrap_or(expiry)
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())?;
    let body = json!({
        "canonicalizedResource": resource,
        "signedResource": "c",
        "signedPermission": "rcw",
        "signedProtocol": "https",
        "signedExpiry": expiry,
    });
    let url = format!("{}{account_id}/listServiceSas?api-version=2025-06-01", env.client.base());
    let start = Instant::now();
    loop {
        let r = env.http.post(&url).bearer_auth(token.expose()).json(&body).send().await.map_err(|e| {
            format!("POST {account_id}/listServiceSas: {}", if e.is_timeout() { "timed out" } else { "no connection" })
        })?;
        let status = r.status().as_u16();
        if (status == 429 || status >= 500) && start.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let v: Value = r.json().await.unwrap_or(Value::Null);
        let code = v.pointer("/error/code").and_then(Value::as_str).unwrap_or_default().to_string();
        let sas = v.get("serviceSasToken").and_then(Value::as_str).map(|t| crate::model::Sensitive::new(t.to_string()));
        return Ok((status, code, sas));
    }
}

/// The data-plane answer to one SAS request: status, error code, body.
async fn with_sas(
    env: &VerifyEnv<'_>,
    method: reqwest::Method,
    url: &str,
    sas: &crate::model::Sensitive<String>,
    body: Option<Vec<u8>>,
) -> Result<(u16, String, Vec<u8>), String> {
    let mut r = env
        .http
        .request(method.clone(), format!("{url}?{}", sas.expose()))
        .header("x-ms-version", crate::arm::blob::VERSION);
    if let Some(b) = body {
        r = r.header("x-ms-blob-type", "BlockBlob").header("content-type", "text/plain").body(b);
    }
    let r = r
        .send()
        .await
        .map_err(|e| format!("{method} {url}: {}", if e.is_timeout() { "timed out" } else { "no connection" }))?;
    let status = r.status().as_u16();
    let code = r.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    Ok((status, code, r.bytes().await.map(|b| b.to_vec()).unwrap_or_default()))
}

/// `blob_sas` (tutorial "Storage via SAS"): with the identity's ARM token, get a container SAS
/// (`rcw`) through `listServiceSas`; upload a blob with it and read it back; then check that
/// the SAS cannot delete and that an expired SAS is refused. The test blob
/// (`idlab-verify.txt`) stays, as in the tutorial: the SAS has no `d`.
async fn blob_sas(ask: Ask<'_, '_>) -> CheckResult {
    let Ask { name, target: container_id, token, who, expect, env } = ask;
    let fail = |d: String| CheckResult { name: name.to_string(), status: "fail", detail: d };
    let Some((account_id, container)) = container_id.split_once("/blobServices/default/containers/") else {
        return fail(format!("{container_id} is not a blob container"));
    };
    let account = account_id.rsplit('/').next().unwrap_or_default();
    let endpoint = match blob_endpoint(env, account_id).await {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let resource = format!("/blob/{account}/{container}");
    let now = time::OffsetDateTime::now_utc();
    let start = Instant::now();
    let mut waited = false;
    let sas = loop {
        let (status, code, sas) =
            match list_sas(env, token, account_id, &resource, now + time::Duration::hours(1)).await {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
        let detail = format!(
            "listServiceSas on {account} as {who}: {status}{}",
            if code.is_empty() { String::new() } else { format!(" {code}") }
        );
        let got = status == 200 && sas.is_some();
        if expect == Expect::Denied || !got {
            match judge(
                name,
                detail,
                if expect == Expect::Denied { status == 403 } else { got },
                expect == Expect::Allowed && status == 403,
                start,
                &mut waited,
                env,
            ) {
                Some(done) => return done,
                None => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
        }
        break sas;
    };
    let Some(sas) = sas else { return fail("listServiceSas answered no token".into()) };
    let url = format!("{endpoint}/{container}/idlab-verify.txt");
    let content = format!("idlab verify {}", now.unix_timestamp()).into_bytes();
    let mut steps = vec![format!("listServiceSas as {who}: 200")];
    let put = match with_sas(env, reqwest::Method::PUT, &url, &sas, Some(content.clone())).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    steps.push(format!("upload {}", put.0));
    if put.0 != 201 {
        return fail(format!("{}; the SAS upload was refused: {}", steps.join(", "), put.1));
    }
    let get = match with_sas(env, reqwest::Method::GET, &url, &sas, None).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    steps.push(format!("download {}", get.0));
    if get.0 != 200 || get.2 != content {
        return fail(format!("{}; the download did not return what was uploaded", steps.join(", ")));
    }
    let del = match with_sas(env, reqwest::Method::DELETE, &url, &sas, None).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    steps.push(format!("delete refused {} {}", del.0, del.1));
    if del.0 != 403 {
        return fail(format!("{}; a SAS without `d` deleted the blob", steps.join(", ")));
    }
    let expired = match list_sas(env, token, account_id, &resource, now - time::Duration::hours(1)).await {
        Ok((200, _, Some(t))) => t,
        Ok((s, c, _)) => return fail(format!("{}; listServiceSas for an expired SAS: {s} {c}", steps.join(", "))),
        Err(e) => return fail(e),
    };
    let old = match with_sas(env, reqwest::Method::GET, &url, &expired, None).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    steps.push(format!("expired SAS refused {} {}", old.0, old.1));
    if old.0 != 403 {
        return fail(format!("{}; an expired SAS was accepted", steps.join(", ")));
    }
    let note = if waited {
        format!(" after waiting {:.1} s for role propagation", start.elapsed().as_secs_f64())
    } else {
        String::new()
    };
    CheckResult { name: name.into(), status: "pass", detail: format!("{}{note}", steps.join(", ")) }
}

/// The token audience of Azure SQL (arm-contract §9).
pub const SQL_RESOURCE: &str = "https://database.windows.net/";

/// `sql_login`, token-only: TDS is not spoken here, so the check stops where ARM's knowledge
/// ends. The VM's identity gets a token for Azure SQL; its `aud` must be that resource and its
/// `oid` the principal SQL will see: the server's Entra admin (its `sid`, read back through
/// ARM) when the identity is the admin, otherwise the identity the contained-user T-SQL step
/// names (apply prints that step).
async fn sql_login(ask: Ask<'_, '_>, principal: Option<&str>) -> CheckResult {
    let Ask { name, target: db_id, token, who, expect, env } = ask;
    let result = |status: &'static str, d: String| CheckResult {
        name: name.to_string(),
        status,
        detail: format!("token-only: {d}"),
    };
    if expect == Expect::Denied {
        return result("fail", "`expect: denied` cannot be checked without signing in; sql_login is token-only".into());
    }
    let Some(c) = crate::arm::jwt::claims(token.expose()) else {
        return result("fail", format!("the token issued to {who} is not a JWT"));
    };
    let claim = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let (aud, oid) = (claim("aud"), claim("oid"));
    if aud.trim_end_matches('/') != SQL_RESOURCE.trim_end_matches('/') {
        return result("fail", format!("the token issued to {who} is for `{aud}`, not {SQL_RESOURCE}"));
    }
    let Some((server_id, _)) = db_id.rsplit_once("/databases/") else {
        return result("fail", format!("{db_id} is not a SQL database"));
    };
    let admin_id = format!("{server_id}/administrators/ActiveDirectory");
    let admin = match env.client.get(&admin_id, "2023-08-01").await {
        Ok(a) => a,
        Err(e) => return result("fail", format!("reading {admin_id}: {e}")),
    };
    let sid = admin.as_ref().and_then(|a| a.pointer("/properties/sid")).and_then(Value::as_str);
    let login = admin.as_ref().and_then(|a| a.pointer("/properties/login")).and_then(Value::as_str);
    let head = format!("a token for {SQL_RESOURCE} issued to {who} (aud {aud}, oid {oid})");
    let Some(sid) = sid else {
        // Without an Entra admin nobody can create the contained user: no sign-in is possible.
        return result(
            "fail",
            format!(
                "{head}: the server has no Microsoft Entra admin, so no contained user can be created for the identity; declare a sql_entra_admin"
            ),
        );
    };
    if sid.eq_ignore_ascii_case(&oid) {
        return result("pass", format!("{head}: the oid is the server's Entra admin `{}`", login.unwrap_or_default()));
    }
    match principal {
        Some(p) if p.eq_ignore_ascii_case(&oid) => result(
            "pass",
            format!(
                "{head}: the oid is the identity the contained-user T-SQL names (the Entra admin is `{}`); signing in needs that user",
                login.unwrap_or_default()
            ),
        ),
        Some(p) => result("fail", format!("{head}: expected oid {p}, the identity the T-SQL step names")),
        None => result("fail", format!("{head}: the identity's principal id is unknown: apply the plan first")),
    }
}

/// The T-SQL steps after apply: one per `sql_login` check whose identity is not the server's
/// Entra admin (names filled in, deduplicated).
pub fn next_steps(
    cx: &crate::engine::Context,
    plan: &crate::resolve::Validated,
    values: &HashMap<(String, String), String>,
) -> Vec<crate::kinds::sql::ContainedUser> {
    let mut out: Vec<crate::kinds::sql::ContainedUser> = Vec::new();
    for (name, c) in &plan.checks {
        let Some(db) = &c.sql_login else { continue };
        let env = cx.env(plan, &name.value, values);
        let identity = c.identity.as_ref().filter(|i| i.value != "system").map(root);
        if let Some(step) =
            crate::kinds::sql::contained_user(&plan.decls, &env, &root(&c.vm), identity.as_deref(), &root(db))
            && !out.contains(&step)
        {
            out.push(step);
        }
    }
    out
}

/// One WebHDFS request as the identity: (status, `RemoteException` name, final URL, body).
async fn webhdfs(
    env: &VerifyEnv<'_>,
    token: &crate::model::Sensitive<String>,
    method: reqwest::Method,
    url: &str,
    body: Option<Vec<u8>>,
) -> Result<(u16, String, String, Value), String> {
    // HTTP clients here do not follow redirects: a 307 (CREATE, OPEN) is followed once, by
    // hand, as the tutorial's second call does, so the check sees that it happened.
    let mut target = url.to_string();
    for _ in 0..2 {
        let mut r = env.http.request(method.clone(), &target).bearer_auth(token.expose());
        if let Some(b) = &body {
            r = r.body(b.clone());
        }
        let r = r.send().await.map_err(|e| {
            format!(
                "{method} {}: {}",
                target.split('?').next().unwrap_or(&target),
                if e.is_timeout() { "timed out" } else { "no connection" }
            )
        })?;
        let status = r.status().as_u16();
        if status == 307
            && target == url
            && let Some(next) = r.headers().get("location").and_then(|l| l.to_str().ok())
        {
            target = next.to_string();
            continue;
        }
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let exception =
            body.pointer("/RemoteException/exception").and_then(Value::as_str).unwrap_or_default().to_string();
        return Ok((status, exception, target, body));
    }
    Err(format!("{method} {}: redirected more than once", url.split('?').next().unwrap_or(url)))
}

/// `data_lake` (tutorial "Access Data Lake Store"): with the identity's token for
/// `https://datalake.azure.net/`, list the store's root, upload `Test1.txt` into the folder
/// through `CREATE`'s 307 redirect (followed by hand to `write=true`), and check that
/// writing the root is refused (403). The uploaded file stays, as in the tutorial.
async fn data_lake(ask: Ask<'_, '_>) -> CheckResult {
    if let Some(g) = crate::arm::dfs::Gen2Folder::parse(ask.target) {
        return data_lake_gen2(ask, g).await;
    }
    let Ask { name, target: folder_id, token, who, expect, env } = ask;
    let fail = |d: String| CheckResult { name: name.to_string(), status: "fail", detail: d };
    let Some(f) = crate::arm::datalake::FolderId::parse(folder_id) else {
        return fail(format!("{folder_id} is not a Data Lake Gen1 folder"));
    };
    let endpoint = match env.client.get(&f.account_id, "2016-11-01").await {
        Ok(Some(a)) => match a.pointer("/properties/endpoint").and_then(Value::as_str) {
            Some(e) => e.to_string(),
            None => return fail(format!("{} has no endpoint", f.account_id)),
        },
        Ok(None) => return fail(format!("{} does not exist: apply the plan first", f.account_id)),
        Err(e) => return fail(format!("reading {}: {e}", f.account_id)),
    };
    let base = format!("https://{endpoint}/webhdfs/v1");
    let list = match webhdfs(env, token, reqwest::Method::GET, &format!("{base}/?op=LISTSTATUS"), None).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let entries = list.3.pointer("/FileStatuses/FileStatus").and_then(Value::as_array).map_or(0, Vec::len);
    let mut steps = vec![format!(
        "list / as {who}: {}{}",
        list.0,
        if list.1.is_empty() { String::new() } else { format!(" {}", list.1) }
    )];
    if expect == Expect::Denied {
        let pass = list.0 == 403;
        return CheckResult { name: name.into(), status: if pass { "pass" } else { "fail" }, detail: steps.join(", ") };
    }
    if list.0 != 200 {
        return fail(steps.join(", "));
    }
    steps[0].push_str(&format!(" ({entries} entries)"));
    let folder = f.path.trim_end_matches('/');
    let file = format!("{folder}/Test1.txt");
    let content = b"Test file.".to_vec();
    let url = format!("{base}{}?op=CREATE&overwrite=true", crate::arm::percent_encode(&file, b"/"));
    let put = match webhdfs(env, token, reqwest::Method::PUT, &url, Some(content)).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    // The upload was redirected: the URL that answered is the 307's `write=true` one.
    let redirected = put.2 != url && put.2.contains("write=true");
    steps.push(format!(
        "upload {file} {}{}{}",
        if redirected { "through the 307 redirect: " } else { "" },
        put.0,
        if put.1.is_empty() { String::new() } else { format!(" {}", put.1) }
    ));
    if put.0 != 201 || !redirected {
        return fail(steps.join(", "));
    }
    let root = match webhdfs(
        env,
        token,
        reqwest::Method::PUT,
        &format!("{base}/Test1.txt?op=CREATE&write=true&overwrite=true"),
        Some(b"no".to_vec()),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    steps.push(format!("write / refused: {} {}", root.0, root.1));
    if root.0 != 403 {
        return fail(format!("{}; the identity could write the root", steps.join(", ")));
    }
    CheckResult { name: name.into(), status: "pass", detail: steps.join(", ") }
}

/// One `dfs` request as the identity: (status, `x-ms-error-code`, JSON body).
async fn dfs(
    env: &VerifyEnv<'_>,
    token: &crate::model::Sensitive<String>,
    method: reqwest::Method,
    url: &str,
    body: Vec<u8>,
) -> Result<(u16, String, Value), String> {
    let r = env
        .http
        .request(method.clone(), url)
        .bearer_auth(token.expose())
        .header("x-ms-version", crate::arm::dfs::VERSION)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            let what = if e.is_timeout() { "timed out" } else { "no connection" };
            format!("{method} {}: {what}", url.split('?').next().unwrap_or(url))
        })?;
    let status = r.status().as_u16();
    let code = r.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    Ok((status, code, body))
}

/// `data_lake` on Data Lake Storage Gen2: with the identity's token for
/// `https://storage.azure.com/`, list the file system's root, upload `Test1.txt` into the
/// folder (create, append, flush), and check that writing the root is refused (403). The
/// uploaded file stays, as in the tutorial.
async fn data_lake_gen2(ask: Ask<'_, '_>, f: crate::arm::dfs::Gen2Folder) -> CheckResult {
    let Ask { name, token, who, expect, env, .. } = ask;
    let fail = |d: String| CheckResult { name: name.to_string(), status: "fail", detail: d };
    let endpoint = match env.client.get(&f.account_id, "2025-06-01").await {
        Ok(Some(a)) => match a.pointer("/properties/primaryEndpoints/dfs").and_then(Value::as_str) {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => return fail(format!("{} has no dfs endpoint", f.account_id)),
        },
        Ok(None) => return fail(format!("{} does not exist: apply the plan first", f.account_id)),
        Err(e) => return fail(format!("reading {}: {e}", f.account_id)),
    };
    let base = format!("{endpoint}/{}", f.filesystem);
    let said = |(status, code, _): &(u16, String, Value)| {
        if code.is_empty() { status.to_string() } else { format!("{status} {code}") }
    };
    let list =
        match dfs(env, token, reqwest::Method::GET, &format!("{base}?resource=filesystem&recursive=false"), Vec::new())
            .await
        {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
    let mut steps = vec![format!("list / as {who}: {}", said(&list))];
    if expect == Expect::Denied {
        let pass = list.0 == 403;
        return CheckResult { name: name.into(), status: if pass { "pass" } else { "fail" }, detail: steps.join(", ") };
    }
    if list.0 != 200 {
        return fail(steps.join(", "));
    }
    let paths = list.2.get("paths").and_then(Value::as_array).map_or(0, Vec::len);
    steps[0].push_str(&format!(" ({paths} paths)"));
    let file = format!("{}/Test1.txt", f.path.trim_end_matches('/'));
    let url = format!("{base}{}", crate::arm::percent_encode(&file, b"/"));
    let content = b"Test file.".to_vec();
    let len = content.len();
    let calls = [
        (reqwest::Method::PUT, format!("{url}?resource=file"), Vec::new(), 201),
        (reqwest::Method::PATCH, format!("{url}?action=append&position=0"), content, 202),
        (reqwest::Method::PATCH, format!("{url}?action=flush&position={len}"), Vec::new(), 200),
    ];
    let mut upload = Vec::new();
    for (method, u, body, want) in calls {
        let r = match dfs(env, token, method, &u, body).await {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        upload.push(said(&r));
        if r.0 != want {
            steps.push(format!("upload {file}: {}", upload.join(", ")));
            return fail(steps.join(", "));
        }
    }
    steps.push(format!("upload {file} (create, append, flush): {}", upload.join(", ")));
    let root = match dfs(env, token, reqwest::Method::PUT, &format!("{base}/Test1.txt?resource=file"), Vec::new()).await
    {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    steps.push(format!("write / refused: {}", said(&root)));
    if root.0 != 403 {
        return fail(format!("{}; the identity could write the root", steps.join(", ")));
    }
    CheckResult { name: name.into(), status: "pass", detail: steps.join(", ") }
}
