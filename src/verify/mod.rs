//! `idlab verify`: the tutorials' "access data" steps, performed as the VM's identity — a
//! token from the VM's managed-identity endpoint for the exact resource URI, then the call.
//! Role assignments take a while to propagate, so an allowed check that is refused is
//! retried within a bounded window (and says so): a [`RetryWhile`] condition on the request,
//! evaluated by the ARM client's retry policy. Nothing here sleeps.
//!
//! Each check kind (the action field of a check: `read_blob`, `data_lake`, …) is one
//! `CheckKind` in `CHECKS`, in its own file; nothing else matches on check names.
//! Every request goes through [`crate::arm::Client`] and its retry policy.
//!
//! Imports: kinds, arm, engine (for observed ids). Never prints.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;

use crate::arm::Client;
use crate::arm::client::{Reply, RetryWhile};
use crate::model::{Check, Expect, Sensitive, Sp};

mod blob;
mod blob_sas;
mod data_lake;
mod list_keys;
mod resource;
pub mod run_command;
mod secret;
mod sql;

pub use sql::{SQL_RESOURCE, next_steps};

/// How one check ended.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckResult {
    pub name: String,
    /// `pass`, `fail` (it ran, and access is not as expected), `error` (it could not run:
    /// no answer) or `skip`.
    pub status: &'static str,
    pub detail: String,
}

/// What verify needs to know about the environment.
pub struct VerifyEnv<'a> {
    /// The deploying principal's client: its reads, and the transport and retry policy of
    /// every request a check sends with the identity's token.
    pub client: &'a Client,
    /// (logical, attribute) → value, from observe.
    pub values: &'a HashMap<(String, String), String>,
    /// VM resource id (lower-cased) → its identity endpoint base URL.
    pub endpoints: &'a HashMap<String, String>,
    /// Used for VMs with no known endpoint (on a real VM: `http://169.254.169.254`).
    pub default_endpoint: Option<&'a str>,
    /// How long an allowed check keeps retrying a refusal (role propagation).
    pub propagation: Duration,
}

/// One kind of check: the action field of a plan's check, the audience of the token it
/// needs, and how it runs. No I/O but through [`Ask::env`]'s client.
#[async_trait]
pub(crate) trait CheckKind: Send + Sync {
    /// The action field (`read_blob`), as [`Check::actions`] names it.
    fn name(&self) -> &'static str;
    /// The resource URI the identity's token is asked for, given the target's id.
    fn resource(&self, target_id: &str) -> &'static str;
    /// Run the check.
    async fn run(&self, ask: Ask<'_, '_>) -> CheckResult;
    /// The call the check makes when it runs on the VM (`verify --via run-command`), read
    /// with the deploying principal's client (`ask.token` is empty); `None` when the kind does
    /// not run there yet.
    async fn remote(&self, _ask: Ask<'_, '_>) -> Result<Option<run_command::Remote>, String> {
        Ok(None)
    }
}

/// Every check kind, once.
pub(crate) static CHECKS: &[&dyn CheckKind] = &[
    &resource::ReadResource,
    &resource::WriteResource,
    &blob::ReadBlob,
    &blob_sas::BlobSas,
    &list_keys::ListKeys,
    &secret::ReadSecret,
    &data_lake::DataLake,
    &sql::SqlLogin,
];

/// The check kind of an action field.
pub(crate) fn check_kind(action: &str) -> Option<&'static dyn CheckKind> {
    CHECKS.iter().copied().find(|k| k.name() == action)
}

/// The logical name behind a reference (`${vm.id}` → `vm`).
fn root(s: &Sp<String>) -> String {
    s.value.trim_start_matches("${").trim_end_matches('}').trim_end_matches(".id").to_string()
}

/// What a check works with.
#[derive(Clone, Copy)]
pub(crate) struct Ask<'a, 'e> {
    pub name: &'a str,
    pub check: &'a Check,
    /// The VM's logical name.
    pub vm: &'a str,
    /// The target's logical name and resource id.
    pub target_name: &'a str,
    pub target: &'a str,
    pub token: &'a Sensitive<String>,
    /// The identity, for messages.
    pub who: &'a str,
    pub expect: Expect,
    pub env: &'a VerifyEnv<'e>,
}

impl Ask<'_, '_> {
    fn result(&self, status: &'static str, detail: String) -> CheckResult {
        CheckResult { name: self.name.to_string(), status, detail }
    }

    fn fail(&self, detail: String) -> CheckResult {
        self.result("fail", detail)
    }

    /// The condition for `verify --wait`: an allowed check refused with 403 is asked again
    /// until the window has passed (a new role assignment propagating). None for `denied`.
    fn propagation(&self) -> Option<RetryWhile> {
        (self.expect == Expect::Allowed).then(|| RetryWhile::status(403).within(self.env.propagation))
    }

    /// A request as the identity, retried as [`Ask::propagation`] says.
    fn request(&self, method: reqwest::Method, url: &str) -> crate::arm::client::Request<'_> {
        let r = self.env.client.request(method, url).bearer(self.token);
        match self.propagation() {
            Some(w) => r.retry_while(w),
            None => r,
        }
    }

    /// The check's verdict on an answer: `pass` (saying how long it waited for role
    /// propagation, if it did) or `fail`.
    fn judge(&self, pass: bool, detail: String, reply: &Reply, start: Instant) -> CheckResult {
        if !pass {
            return self.fail(detail);
        }
        self.result("pass", format!("{detail}{}", waited(reply.held > 0, start)))
    }
}

/// The note on a passing check that waited for role propagation.
fn waited(waited: bool, start: Instant) -> String {
    if waited {
        format!(" after waiting {:.1} s for role propagation", start.elapsed().as_secs_f64())
    } else {
        String::new()
    }
}

/// A check's requests are retried (no connection, a dropped one, a timeout, 429, 5xx) for
/// at most this long, or `--wait` when that is longer.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(60);

/// Run one check, on a client of its own: the retry policy's time limit is the check's
/// deadline ([`CHECK_DEADLINE`] or the propagation window), and a check that did not get the
/// answers it needs (a request without an answer once the retries ran out) did not run: its
/// status is `error` ("could not run"), never `fail`.
pub async fn run_check(name: &str, c: &Check, env: &VerifyEnv<'_>) -> CheckResult {
    let mut client = env.client.clone();
    client.stats = std::sync::Arc::new(crate::arm::client::Stats::default());
    client.retry.max_elapsed = env.propagation.max(CHECK_DEADLINE);
    let own = VerifyEnv { client: &client, ..*env };
    let r = run_one(name, c, &own).await;
    let unanswered = client.stats.unanswered.load(std::sync::atomic::Ordering::Relaxed);
    if r.status == "fail" && unanswered > 0 {
        return CheckResult { status: "error", detail: format!("could not run: {}", r.detail), ..r };
    }
    r
}

/// Where a check runs and what it targets, from the plan and observe.
pub(crate) struct Located {
    pub kind: &'static dyn CheckKind,
    pub vm: String,
    pub vm_id: String,
    pub client_id: Option<String>,
    pub target_name: String,
    pub target_id: String,
    pub expect: Expect,
    pub who: String,
}

/// The check's kind, VM, identity and target; `Err` is the check's result already (`fail`
/// or `skip`).
pub(crate) fn locate(name: &str, c: &Check, env: &VerifyEnv<'_>) -> Result<Located, CheckResult> {
    let fail = |d: String| CheckResult { name: name.to_string(), status: "fail", detail: d };
    let actions = c.actions();
    let Some((action, target)) = actions.first() else {
        return Err(fail("no action".into()));
    };
    let Some(kind) = check_kind(action) else {
        return Err(CheckResult {
            name: name.into(),
            status: "skip",
            detail: format!("`{action}` needs the data planes of a later idlab version"),
        });
    };
    let vm = root(&c.vm);
    let Some(vm_id) = env.values.get(&(vm.clone(), "id".into())).cloned() else {
        return Err(fail(format!("VM `{vm}` is unknown: apply the plan first")));
    };
    let client_id = match &c.identity {
        Some(i) if i.value != "system" => match env.values.get(&(root(i), "client_id".into())) {
            Some(cid) => Some(cid.clone()),
            None => return Err(fail(format!("identity `{}` has no client id yet: apply the plan first", root(i)))),
        },
        _ => None,
    };
    let target_name = root(target);
    let Some(target_id) = env.values.get(&(target_name.clone(), "id".into())).cloned() else {
        return Err(fail(format!("`{target_name}` is unknown: apply the plan first")));
    };
    let expect = c.expect.as_ref().map_or(Expect::Allowed, |e| e.value);
    let who =
        client_id.as_ref().map_or_else(|| "the system-assigned identity".to_string(), |c| format!("client id {c}"));
    Ok(Located { kind, vm, vm_id, client_id, target_name, target_id, expect, who })
}

/// One check through the VM's identity endpoint, on the check's own client.
async fn run_one(name: &str, c: &Check, env: &VerifyEnv<'_>) -> CheckResult {
    let p = match locate(name, c, env) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let fail = |d: String| CheckResult { name: name.to_string(), status: "fail", detail: d };
    let vm = &p.vm;
    let endpoint = match env.endpoints.get(&p.vm_id.to_ascii_lowercase()).map(String::as_str).or(env.default_endpoint) {
        Some(e) => e.to_string(),
        None => return fail(format!("no managed-identity endpoint for VM `{vm}`")),
    };
    let who = &p.who;
    let token = match identity_token(env, &endpoint, p.kind.resource(&p.target_id), p.client_id.as_deref()).await {
        Ok(t) => t,
        Err(Refused::Status(status, why)) => {
            return fail(format!("the VM's identity endpoint refused a token for {who}: {status} {why}"));
        }
        Err(Refused::NoAnswer(e)) => return fail(format!("the VM's identity endpoint did not answer: {e}")),
    };
    let ask = Ask {
        name,
        check: c,
        vm,
        target_name: &p.target_name,
        target: &p.target_id,
        token: &token,
        who,
        expect: p.expect,
        env,
    };
    p.kind.run(ask).await
}

enum Refused {
    Status(u16, String),
    NoAnswer(String),
}

/// A token from the VM's managed-identity endpoint, retried as any request is.
async fn identity_token(
    env: &VerifyEnv<'_>,
    endpoint: &str,
    resource: &str,
    client_id: Option<&str>,
) -> Result<Sensitive<String>, Refused> {
    let mut url = format!("{endpoint}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}");
    if let Some(cid) = client_id {
        url.push_str(&format!("&client_id={cid}"));
    }
    let r = env
        .client
        .request(reqwest::Method::GET, &url)
        .no_auth()
        .header("Metadata", "true")
        .send()
        .await
        .map_err(|e| Refused::NoAnswer(e.message))?;
    let body = r.json();
    match body.get("access_token").and_then(serde_json::Value::as_str) {
        Some(t) if r.status == 200 => Ok(Sensitive::new(t.to_string())),
        _ => Err(Refused::Status(
            r.status,
            body.get("error_description").and_then(serde_json::Value::as_str).unwrap_or_default().to_string(),
        )),
    }
}

/// `status` with ` code` when there is one.
fn said(status: u16, code: &str) -> String {
    if code.is_empty() { status.to_string() } else { format!("{status} {code}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_has_every_action_field_of_a_check_once() {
        let schema = serde_json::to_value(schemars::schema_for!(Check)).expect("schema");
        let mut fields: Vec<String> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .filter(|k| !["vm", "identity", "expect"].contains(&k.as_str()))
            .cloned()
            .collect();
        let mut names: Vec<String> = CHECKS.iter().map(|k| k.name().to_string()).collect();
        fields.sort();
        names.sort();
        assert_eq!(names, fields);
        for k in CHECKS {
            assert_eq!(check_kind(k.name()).map(|f| f.name()), Some(k.name()));
        }
    }

    /// A `read_resource` check against a loopback server: the identity endpoint answers a
    /// token, ARM answers `script`.
    async fn read_rg(script: Vec<(u16, &'static str)>, expect: Expect, wait: Duration) -> (CheckResult, u64) {
        let (base, hits) = crate::arm::client::testing::server(script, false).await;
        let client = crate::arm::client::testing::client(&base);
        let vm_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm";
        let values: HashMap<(String, String), String> = [
            (("vm".to_string(), "id".to_string()), vm_id.to_string()),
            (("rg".to_string(), "id".to_string()), "/subscriptions/s/resourceGroups/rg".to_string()),
        ]
        .into_iter()
        .collect();
        let endpoints: HashMap<String, String> = [(vm_id.to_ascii_lowercase(), base.clone())].into_iter().collect();
        let env = VerifyEnv {
            client: &client,
            values: &values,
            endpoints: &endpoints,
            default_endpoint: None,
            propagation: wait,
        };
        let sp = |v: &str| Sp::new(v.to_string(), crate::model::Span::default());
        let check = Check {
            vm: sp("${vm}"),
            identity: None,
            expect: Some(Sp::new(expect, crate::model::Span::default())),
            read_resource: Some(sp("${rg.id}")),
            write_resource: None,
            read_blob: None,
            blob_sas: None,
            list_keys: None,
            read_secret: None,
            data_lake: None,
            sql_login: None,
        };
        let r = run_check("c", &check, &env).await;
        (r, hits.load(std::sync::atomic::Ordering::SeqCst))
    }

    #[tokio::test]
    async fn an_allowed_check_waits_out_a_refusal_within_verify_wait() {
        let refused = vec![(403, "AuthorizationFailed"), (403, "AuthorizationFailed"), (200, "")];
        let (r, hits) = read_rg(refused.clone(), Expect::Allowed, Duration::from_secs(60)).await;
        assert_eq!(r.status, "pass", "{r:?}");
        assert!(r.detail.starts_with("read /subscriptions/s/resourceGroups/rg as the system-assigned identity: 200"));
        assert!(r.detail.contains("after waiting"), "{r:?}");
        assert_eq!(hits, 3);

        let (r, hits) = read_rg(refused.clone(), Expect::Allowed, Duration::ZERO).await;
        assert_eq!((r.status, hits), ("fail", 1));
        assert!(r.detail.ends_with(": 403 AuthorizationFailed"), "{r:?}");

        // A denied check takes the first refusal as its answer.
        let (r, hits) = read_rg(refused, Expect::Denied, Duration::from_secs(60)).await;
        assert_eq!((r.status, hits), ("pass", 1));
        assert!(!r.detail.contains("after waiting"), "{r:?}");
    }

    #[tokio::test]
    async fn a_check_without_an_answer_could_not_run_and_one_with_a_late_answer_ran() {
        // Server errors to every try: the check could not run (exit 1), it did not fail (3).
        let (r, hits) = read_rg(vec![(503, "ServiceUnavailable")], Expect::Allowed, Duration::ZERO).await;
        assert_eq!(r.status, "error", "{r:?}");
        assert!(r.detail.starts_with("could not run: "), "{r:?}");
        assert!(hits > 1, "retried: {hits}");
        // The same for a denied check: no answer is no refusal.
        let (r, _) = read_rg(vec![(500, "InternalServerError")], Expect::Denied, Duration::ZERO).await;
        assert_eq!(r.status, "error", "{r:?}");
        // Answers after a few server errors: the check ran, and its verdict stands.
        let (r, _) = read_rg(vec![(503, ""), (429, ""), (200, "")], Expect::Allowed, Duration::ZERO).await;
        assert_eq!(r.status, "pass", "{r:?}");
        let (r, _) = read_rg(vec![(503, ""), (403, "AuthorizationFailed")], Expect::Allowed, Duration::ZERO).await;
        assert_eq!(r.status, "fail", "{r:?}");
    }
}
