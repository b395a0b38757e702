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
    if !matches!(*action, "read_resource" | "write_resource" | "read_blob") {
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
    let resource = if *action == "read_blob" { "https://storage.azure.com/" } else { "https://management.azure.com/" };
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
        return read_blob(name, &target_id, &token, &who, expect, env).await;
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

/// `read_blob`: GET the blob with the identity's storage token (RBAC data actions decide).
async fn read_blob(
    name: &str,
    blob_id: &str,
    token: &crate::model::Sensitive<String>,
    who: &str,
    expect: Expect,
    env: &VerifyEnv<'_>,
) -> CheckResult {
    let fail = |d: String| CheckResult { name: name.to_string(), status: "fail", detail: d };
    let Some(b) = crate::arm::blob::BlobId::parse(blob_id) else {
        return fail(format!("{blob_id} is not a blob"));
    };
    // The account's blob endpoint, read as the operator (ARM), like the tutorial's portal step.
    let endpoint = match env.client.get(&b.account_id, "2025-06-01").await {
        Ok(Some(a)) => match a.pointer("/properties/primaryEndpoints/blob").and_then(Value::as_str) {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => return fail(format!("{} has no blob endpoint", b.account_id)),
        },
        Ok(None) => return fail(format!("{} does not exist: apply the plan first", b.account_id)),
        Err(e) => return fail(format!("reading {}: {e}", b.account_id)),
    };
    let url = format!("{endpoint}/{}/{}", b.container, b.name.replace(' ', "%20"));
    let start = Instant::now();
    let mut waited = false;
    loop {
        let req = env.http.get(&url).bearer_auth(token.expose()).header("x-ms-version", crate::arm::blob::VERSION);
        let (status, code, len) = match req.send().await {
            Ok(r)
                if (r.status().as_u16() == 429 || r.status().as_u16() >= 500)
                    && start.elapsed() < Duration::from_secs(60) =>
            {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
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
