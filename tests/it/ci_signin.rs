//! CI sign-ins (`--auth github`, `--auth azure-pipelines`) against the local cloud: the real
//! binary with the variables a GitHub Actions job or an Azure Pipelines task sets, a test OIDC
//! issuer on 127.0.0.1 giving the assertions, and the local issuer checking them as Entra
//! does. The assertions' times are set by the test (no sleeps).

use serde_json::{Value, json};

use crate::common::oidc::{CONNECTION, Ci, Oidc};
use crate::common::{Run, Served};
use idlab::local::attach;
use idlab::local::oidc::{SUBJECT, pipelines_subject};

/// A plan of one resource group and one identity: one ARM token.
const ONE_TOKEN_PLAN: &str = "name: ci-one\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: ci-one-rg\n  id:\n    type: user_assigned_identity\n    name: ci-one-id\n    resource_group: ${rg}\n";

/// A plan that writes a Key Vault secret: an ARM token and a vault token.
const TWO_TOKEN_PLAN: &str = "name: ci-two
location: eastus
resources:
  rg:
    type: resource_group
    name: ci-two-rg
  kv:
    type: key_vault
    name: idlab-ci-two-kv
    resource_group: ${rg}
    sku: standard
  secret:
    type: key_vault_secret
    name: pipeline-secret
    vault: ${kv}
    value: { generate: 32 }
";

struct Lab {
    s: Served,
    oidc: Oidc,
    tmp: tempfile::TempDir,
    tenant: String,
}

impl Lab {
    fn start() -> Lab {
        let s = Served::start();
        let oidc = Oidc::start();
        let tenant = attach::read_info(&s.state).expect("info").tenant_id;
        let tmp = tempfile::tempdir().expect("tmp");
        std::fs::write(tmp.path().join("one.yaml"), ONE_TOKEN_PLAN).expect("plan");
        std::fs::write(tmp.path().join("two.yaml"), TWO_TOKEN_PLAN).expect("plan");
        Lab { s, oidc, tmp, tenant }
    }

    /// An app registration (Owner of the subscription) trusting the test issuer's default
    /// subject: its client id.
    fn app(&self) -> String {
        let p = self.s.op(
            "POST",
            "/_idlab/principals",
            Some(json!({
                "name": "pipeline-app",
                "roles": [{"role": "Owner"}],
                "federated": [
                    {"issuer": self.oidc.issuer(), "subject": SUBJECT},
                    {"issuer": self.oidc.issuer(), "subject": pipelines_subject(CONNECTION)},
                ],
            })),
        );
        p["client_id"].as_str().expect("client id").to_string()
    }

    fn plan(&self, name: &str) -> String {
        self.tmp.path().join(name).display().to_string()
    }

    /// Run idlab as `client_id` signed in from `ci`.
    fn run(&self, ci: Ci, client_id: &str, args: &[&str]) -> Run {
        let env = self.oidc.env(ci, client_id, &self.tenant);
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = self.s.idlab_env(args, &env);
        if let Some(a) = self.oidc.server.last_assertion() {
            let (head, rest) = a.split_at(a.len() / 2);
            for part in [head, rest] {
                assert!(!r.stdout.contains(part) && !r.stderr.contains(part), "an assertion was printed");
            }
        }
        r
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[test]
fn each_ci_sign_in_plans_with_one_fresh_assertion() {
    let lab = Lab::start();
    let app = lab.app();
    for ci in Ci::BOTH {
        let before = lab.oidc.server.requests();
        let r = lab.run(ci, &app, &["plan", &lab.plan("one.yaml")]);
        assert_eq!(r.code, 0, "{ci:?}: {}", r.stderr);
        assert!(r.stdout.contains("Plan: 2 to create"), "{ci:?}: {}", r.stdout);
        assert_eq!(lab.oidc.server.requests() - before, 1, "{ci:?}: one ARM token, one assertion");
    }
    // Forced: `--auth github` with the Pipelines variables only names what is missing.
    let env = lab.oidc.env(Ci::Pipelines, &app, &lab.tenant);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = lab.s.idlab_env(&["plan", &lab.plan("one.yaml"), "--auth", "github"], &env);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("ACTIONS_ID_TOKEN_REQUEST_URL"), "{}", r.stderr);
}

/// Refusals: what the next assertion carries, the AADSTS code the issuer must answer.
fn refused(set: impl Fn(&mut idlab::local::oidc::Control), code: &str, also: &str) {
    let lab = Lab::start();
    let app = lab.app();
    lab.oidc.server.set(set);
    for ci in Ci::BOTH {
        let r = lab.run(ci, &app, &["plan", &lab.plan("one.yaml")]);
        assert_eq!(r.code, 1, "{ci:?}: {}", r.stdout);
        assert!(r.stderr.contains(code), "{ci:?}: {}", r.stderr);
        assert!(r.stderr.contains(also), "{ci:?}: {}", r.stderr);
    }
}

#[test]
fn a_wrong_subject_is_refused_with_aadsts70021() {
    refused(|c| c.subject = Some("repo:someone/else:ref:refs/heads/main".into()), "AADSTS70021", "repo:someone/else");
}

#[test]
fn a_wrong_audience_is_refused_with_aadsts700212() {
    refused(|c| c.audience = Some("api://not-the-exchange".into()), "AADSTS700212", "api://not-the-exchange");
}

#[test]
fn a_wrongly_signed_assertion_is_refused_with_aadsts50013() {
    refused(|c| c.wrong_key = true, "AADSTS50013", "signature");
}

#[test]
fn an_expired_assertion_is_refused_with_aadsts700024() {
    let t = now();
    refused(
        move |c| {
            c.iat = Some(t - 7200);
            c.exp = Some(t - 3600);
        },
        "AADSTS700024",
        "valid time range",
    );
}

#[test]
fn an_assertion_not_yet_valid_is_refused_with_aadsts700024() {
    let t = now();
    refused(
        move |c| {
            c.iat = Some(t + 3600);
            c.exp = Some(t + 4000);
        },
        "AADSTS700024",
        "valid time range",
    );
}

/// Entra accepts a federated assertion again while it is valid (the Azure CLI reuses the one
/// GitHub Actions token for every access token until it expires: github.com/Azure/login
/// issue 180); once expired, the same assertion is refused with AADSTS700024.
#[test]
fn a_reused_assertion_is_accepted_until_it_expires() {
    let lab = Lab::start();
    let app = lab.app();
    for ci in Ci::BOTH {
        lab.oidc.server.set(|c| c.repeat = false);
        let first = lab.run(ci, &app, &["plan", &lab.plan("one.yaml")]);
        assert_eq!(first.code, 0, "{ci:?}: {}", first.stderr);
        lab.oidc.server.set(|c| c.repeat = true);
        let again = lab.run(ci, &app, &["plan", &lab.plan("one.yaml")]);
        assert_eq!(again.code, 0, "{ci:?}: the same assertion again: {}", again.stderr);
    }
    // An expired assertion, presented for the first time and then again, is refused both times.
    let t = now();
    for repeat in [false, true] {
        lab.oidc.server.set(|c| {
            c.repeat = repeat;
            c.iat = Some(t - 4000);
            c.exp = Some(t - 3600);
        });
        let old = lab.run(Ci::Github, &app, &["plan", &lab.plan("one.yaml")]);
        assert_eq!(old.code, 1, "{}", old.stdout);
        assert!(old.stderr.contains("AADSTS700024"), "{}", old.stderr);
    }
}

#[test]
fn a_run_needing_two_tokens_fetches_two_assertions() {
    for ci in Ci::BOTH {
        let lab = Lab::start();
        let app = lab.app();
        let r = lab.run(ci, &app, &["apply", &lab.plan("two.yaml"), "--auto-approve"]);
        assert_eq!(r.code, 0, "{ci:?}: {}{}", r.stdout, r.stderr);
        assert_eq!(lab.oidc.server.requests(), 2, "{ci:?}: an ARM token and a vault token");
        let kv = lab.s.op(
            "GET",
            &format!(
                "/subscriptions/{}/resourceGroups/ci-two-rg/providers/Microsoft.KeyVault/vaults/idlab-ci-two-kv?api-version=2023-07-01",
                lab.s.subscription()
            ),
            None,
        );
        assert_eq!(kv["name"], "idlab-ci-two-kv", "{kv}");
    }
}

/// The pipeline's identity: a user-assigned identity trusting the test issuer, Reader of the
/// subscription (a plan lists the subscription's role assignments and custom roles) and
/// Contributor on its own group only. Applied by the operator.
const PIPELINE_IDENTITY_PLAN: &str = "name: pipeline-identity
location: eastus
variables:
  issuer: https://token.actions.githubusercontent.com
  subject: repo:idlab/idlab:ref:refs/heads/main
resources:
  app_rg:
    type: resource_group
    name: app-rg
  other_rg:
    type: resource_group
    name: other-rg
  pipeline:
    type: user_assigned_identity
    name: pipeline-id
    resource_group: ${app_rg}
  github_main:
    type: federated_identity_credential
    name: github-main
    identity: ${pipeline}
    issuer: ${var.issuer}
    subject: ${var.subject}
  deployer:
    type: role_assignment
    scope: ${app_rg}
    principal: ${pipeline}
    role: Contributor
  reader:
    type: role_assignment
    scope: subscription
    principal: ${pipeline}
    role: Reader
";

fn app_plan(group: &str) -> String {
    format!(
        "name: pipeline-app-{group}\nlocation: eastus\nresources:\n  worker:\n    type: user_assigned_identity\n    name: worker-id\n    resource_group: {group}\n"
    )
}

#[test]
fn a_pipeline_signs_in_as_its_identity_and_deploys_within_its_role_only() {
    let lab = Lab::start();
    std::fs::write(lab.tmp.path().join("identity.yaml"), PIPELINE_IDENTITY_PLAN).expect("plan");
    std::fs::write(lab.tmp.path().join("inside.yaml"), app_plan("app-rg")).expect("plan");
    std::fs::write(lab.tmp.path().join("outside.yaml"), app_plan("other-rg")).expect("plan");
    let issuer_var = format!("issuer={}", lab.oidc.issuer());
    let r = lab.s.idlab(&["apply", &lab.plan("identity.yaml"), "--auto-approve", "--var", &issuer_var]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let sub = lab.s.subscription();
    let uai = format!(
        "/subscriptions/{sub}/resourceGroups/app-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pipeline-id"
    );
    let identity = lab.s.op("GET", &format!("{uai}?api-version=2023-01-31"), None);
    let client_id = identity["properties"]["clientId"].as_str().expect("client id").to_string();
    let fic = lab.s.op("GET", &format!("{uai}/federatedIdentityCredentials/github-main?api-version=2023-01-31"), None);
    assert_eq!(fic["properties"]["issuer"], lab.oidc.issuer(), "{fic}");
    assert_eq!(fic["properties"]["audiences"], json!(["api://AzureADTokenExchange"]), "{fic}");
    // A second apply changes nothing: the credential reads back as declared.
    let again = lab.s.idlab(&["plan", &lab.plan("identity.yaml"), "--detailed-exitcode", "--var", &issuer_var]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);

    for ci in Ci::BOTH {
        let inside = lab.run(ci, &client_id, &["apply", &lab.plan("inside.yaml"), "--auto-approve"]);
        if ci == Ci::Pipelines {
            // The identity trusts only GitHub's subject: the Azure Pipelines service
            // connection's assertion (subject `sc://…`) is refused.
            assert_eq!(inside.code, 1, "{}", inside.stdout);
            assert!(inside.stderr.contains("AADSTS70021"), "{}", inside.stderr);
            continue;
        }
        assert_eq!(inside.code, 0, "{}{}", inside.stdout, inside.stderr);
        let worker = lab.s.op(
            "GET",
            &format!("/subscriptions/{sub}/resourceGroups/app-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/worker-id?api-version=2023-01-31"),
            None,
        );
        assert_eq!(worker["name"], "worker-id", "{worker}");
        let outside = lab.run(ci, &client_id, &["apply", &lab.plan("outside.yaml"), "--auto-approve"]);
        assert_eq!(outside.code, 1, "{}", outside.stdout);
        assert!(outside.stderr.contains("AuthorizationFailed"), "{}", outside.stderr);
        assert!(outside.stderr.contains("other-rg"), "{}", outside.stderr);
    }
    let gone = lab.s.op(
        "GET",
        &format!("/subscriptions/{sub}/resourceGroups/other-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/worker-id?api-version=2023-01-31"),
        None,
    );
    assert_eq!(gone["error"]["code"], "ResourceNotFound", "{gone}");
    // Deleting the identity deletes its federated credentials.
    lab.s.op("DELETE", &format!("{uai}?api-version=2023-01-31"), None);
    let fic: Value =
        lab.s.op("GET", &format!("{uai}/federatedIdentityCredentials/github-main?api-version=2023-01-31"), None);
    assert!(fic.get("error").is_some(), "{fic}");
}

#[test]
fn federated_credentials_follow_azures_rules_in_the_local_cloud() {
    let s = Served::start();
    let sub = s.subscription();
    let rg = format!("/subscriptions/{sub}/resourceGroups/fic-rg");
    s.op("PUT", &format!("{rg}?api-version=2024-11-01"), Some(json!({"location": "eastus"})));
    let uai = format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/fic-id");
    s.op("PUT", &format!("{uai}?api-version=2023-01-31"), Some(json!({"location": "eastus"})));
    let body = |sub: &str| json!({"properties": {"issuer": "https://token.actions.githubusercontent.com", "subject": sub, "audiences": ["api://AzureADTokenExchange"]}});
    let fic = |name: &str| format!("{uai}/federatedIdentityCredentials/{name}?api-version=2023-01-31");
    let bad_name = s.op("PUT", &fic("-starts-with-dash"), Some(body("a")));
    assert_eq!(bad_name["error"]["code"], "InvalidResourceName", "{bad_name}");
    let orphan = s.op(
        "PUT",
        &format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/none/federatedIdentityCredentials/x1x?api-version=2023-01-31"),
        Some(body("a")),
    );
    assert_eq!(orphan["error"]["code"], "ParentResourceNotFound", "{orphan}");
    let two = s.op(
        "PUT",
        &fic("two-audiences"),
        Some(json!({"properties": {"issuer": "https://a.example", "subject": "s", "audiences": ["x", "y"]}})),
    );
    assert_eq!(two["error"]["code"], "BadRequest", "{two}");
    for i in 0..20 {
        let r = s.op("PUT", &fic(&format!("fic-{i:02}")), Some(body(&format!("sub-{i}"))));
        assert_eq!(r["properties"]["subject"], format!("sub-{i}"), "{r}");
        assert!(r.get("location").is_none() && r["properties"].get("provisioningState").is_none(), "{r}");
    }
    let over = s.op("PUT", &fic("fic-20"), Some(body("sub-20")));
    assert_eq!(over["error"]["code"], "BadRequest", "{over}");
    assert!(over["error"]["message"].as_str().unwrap_or_default().contains("20"), "{over}");
    let list = s.op("GET", &format!("{uai}/federatedIdentityCredentials?api-version=2023-01-31"), None);
    assert_eq!(list["value"].as_array().map(Vec::len), Some(20), "{list}");
}
