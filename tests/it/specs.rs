//! Azure's API specs as the judge of what idlab sends and what the local cloud answers.
//!
//! The end-to-end harness has every idlab run append its exchanges to a per-test file
//! (`IDLAB_CAPTURE`, secrets masked; see `src/arm/capture.rs`). Here a representative set of
//! plans (every tutorial at once, the least-privilege custom role, the Linux VM, a federated
//! credential) is applied, re-planned and destroyed with capture on (the VM left with its OS
//! disk's `deleteOption` at `Detach`, so that `destroy` deletes the disk), and every captured ARM and
//! Key Vault exchange is matched to its operation in Azure's Swagger 2.0 documents
//! (`tests/fixtures/azure-specs/`) by method, path template and the exact api-version sent: the
//! request body is checked against the operation's `in: body` schema, and the local cloud's
//! JSON answer against the response schema of its status (or `default`). Zero violations; every
//! `$ref` of the fixture documents resolves; and one negative case per operation with a body
//! (a required field removed, a wrong type, a closed enum broken, a read-only field sent) is
//! rejected each time, so the check is known to bite.

mod swagger;
mod validate;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::common::{Served, root};
use swagger::{At, Operation, Specs};
use validate::{Mode, Sites, Walker, violations};

/// The plans the capture run applies, re-plans and destroys (paths under the repository).
const PLANS: &[&str] =
    &["plans/tutorials.yaml", "plans/storage-sas-least-privilege.yaml", "plans/arm-system-assigned-linux.yaml"];

/// A plan with what the tutorials lack: a federated identity credential.
const FEDERATED_PLAN: &str = "name: specs-federated
location: eastus
resources:
  rg:
    type: resource_group
    name: specs-fed-rg
  id:
    type: user_assigned_identity
    name: specs-fed-id
    resource_group: ${rg}
  trust:
    type: federated_identity_credential
    name: github-main
    identity: ${id}
    issuer: https://token.actions.githubusercontent.com
    subject: repo:idlab/idlab:ref:refs/heads/main
";

/// The plan of [`PLANS`] whose VM the run leaves with its OS disk's `deleteOption` at `Detach`
/// (as a VM made by hand or by an idlab that did not send `Delete`), so that `destroy` deletes
/// the disk itself after the VM, at DiskRP's api-version: the only disk request idlab makes
/// (a DELETE, no body). Its group and VM names.
const DISK_PLAN: (&str, &str, &str) = ("plans/arm-system-assigned-linux.yaml", "myResourceGroup", "myVM");

/// What a recorded Azure answer shows that the spec does not allow.
#[derive(Clone, Copy, PartialEq)]
enum Recorded {
    /// Azure answers `null` where the spec has no `x-nullable`.
    Null,
    /// Azure answers a property the spec does not declare.
    Extra,
}

const RA_RECORDING: &str = "Azure/azure-powershell src/Resources/Resources.Test/SessionRecords/Microsoft.Azure.Commands.Resources.Test.ScenarioTests.RoleAssignmentTests/CreateRAForServicePrincipal.json";
const RD_RECORDING: &str = "Azure/azure-powershell src/ResourceManager/Resources/Commands.Resources.Test/SessionRecords/Microsoft.Azure.Commands.Resources.Test.ScenarioTests.RoleDefinitionTests/RDGetScenario.json";

const NIC_RECORDING: &str = "Azure/azure-powershell src/ResourceManager/Compute/Commands.Compute.Test/SessionRecords/Microsoft.Azure.Commands.Compute.Test.ScenarioTests.VirtualMachineTests/TestSimpleNewVmWithSystemAssignedAndUserAssignedIdentity.json (tests/fixtures/azure-recordings/powershell/compute/; and network/TestNetworkInterfaceCRUD.json)";

/// Where a recording of real Azure overrides the spec for an answer (a recording beats a spec):
/// (operationId prefix, property path, what Azure sends, the recording). Only answers: a
/// request body gets no such allowance.
const RECORDED_OVERRIDES: &[(&str, &str, Recorded, &str)] = &[
    ("RoleAssignments_", "/properties/condition", Recorded::Null, RA_RECORDING),
    ("RoleAssignments_", "/properties/conditionVersion", Recorded::Null, RA_RECORDING),
    ("RoleAssignments_", "/properties/delegatedManagedIdentityResourceId", Recorded::Null, RA_RECORDING),
    ("RoleDefinitions_", "/properties/createdOn", Recorded::Extra, RD_RECORDING),
    ("RoleDefinitions_", "/properties/updatedOn", Recorded::Extra, RD_RECORDING),
    ("RoleDefinitions_", "/properties/createdBy", Recorded::Extra, RD_RECORDING),
    ("RoleDefinitions_", "/properties/updatedBy", Recorded::Extra, RD_RECORDING),
    ("NetworkInterfaces_", "/properties/isInUseWithService", Recorded::Extra, NIC_RECORDING),
];

/// Whether answer violation `v` (`pointer: message`) of operation `op` is one a recording
/// overrides.
fn recorded(op: &str, v: &str) -> bool {
    let (ptr, msg) = v.split_once(": ").unwrap_or((v, ""));
    RECORDED_OVERRIDES.iter().any(|(prefix, prop, what, _)| {
        op.starts_with(prefix)
            && ptr.ends_with(prop)
            && match what {
                Recorded::Null => msg.starts_with("null where"),
                Recorded::Extra => msg.starts_with("a property the spec does not declare"),
            }
    })
}

/// ARM's error envelope (common types), for an error status the operation does not list: every
/// ARM error answer has this shape, whether or not the operation's spec says so (storage's
/// GET of an account declares only 200, yet Azure answers 404 `ResourceNotFound`).
const ERROR_ENVELOPE: (&str, &str) =
    ("specification/common-types/resource-management/v5/types.json", "#/definitions/ErrorResponse");

struct Captured {
    arm_url: String,
    exchanges: Vec<Value>,
}

/// Apply, re-plan (no changes) and destroy each plan against a fresh local cloud, capturing.
fn captured() -> &'static Captured {
    static RUN: OnceLock<Captured> = OnceLock::new();
    RUN.get_or_init(|| {
        let s = Served::start();
        let tmp = tempfile::tempdir().expect("tmp");
        let fed = tmp.path().join("federated.yaml");
        std::fs::write(&fed, FEDERATED_PLAN).expect("plan");
        let mut plans: Vec<String> = PLANS.iter().map(|p| root().join(p).display().to_string()).collect();
        plans.push(fed.display().to_string());
        let mut read = Vec::new();
        for p in &plans {
            let a = s.idlab(&["apply", p, "--auto-approve"]);
            assert_eq!(a.code, 0, "{p}: {}{}", a.stdout, a.stderr);
            let again = s.idlab(&["plan", p, "--detailed-exitcode"]);
            assert_eq!(again.code, 0, "{p}: {}{}", again.stdout, again.stderr);
            let disk = p.ends_with(DISK_PLAN.0).then(|| detach_os_disk(&s, &mut read));
            let d = s.idlab(&["destroy", p, "--auto-approve"]);
            assert_eq!(d.code, 0, "{p}: {}{}", d.stdout, d.stderr);
            if let Some(disk) = disk {
                assert!(d.stderr.contains(&format!("OS disk {disk}: deleting `vm` would leave it")), "{}", d.stderr);
            }
        }
        let info = idlab::local::attach::read_info(&s.state).expect("server.json");
        let mut exchanges = s.captured();
        exchanges.extend(read);
        Captured { arm_url: info.arm_url.trim_end_matches('/').to_string(), exchanges }
    })
}

/// Leave [`DISK_PLAN`]'s VM with its OS disk's `deleteOption` at `Detach`, as its operator
/// (outside idlab), and read the disk as the local cloud answers it at DiskRP's api-version
/// (idlab reads no disk; its `destroy` only deletes it), alone and listed in its group: those
/// answers go into `read`, marked `"by": "test"`, to be checked like idlab's. The disk's id.
fn detach_os_disk(s: &Served, read: &mut Vec<Value>) -> String {
    let (_, rg, vm) = DISK_PLAN;
    let api = idlab::kinds::vm::DISK_API_VERSION;
    let group = format!("/subscriptions/{}/resourceGroups/{rg}", s.subscription());
    let body = json!({"properties": {"storageProfile": {"osDisk": {"deleteOption": "Detach"}}}});
    let vm = s.op(
        "PATCH",
        &format!("{group}/providers/Microsoft.Compute/virtualMachines/{vm}?api-version=2025-04-01"),
        Some(body),
    );
    let os = &vm["properties"]["storageProfile"]["osDisk"];
    assert_eq!(os["deleteOption"], "Detach", "{vm}");
    let disk = os["managedDisk"]["id"].as_str().expect("a managed OS disk").to_string();
    let info = idlab::local::attach::read_info(&s.state).expect("server.json");
    for path in [disk.clone(), format!("{group}/providers/Microsoft.Compute/disks")] {
        let answer = s.op("GET", &format!("{path}?api-version={api}"), None);
        assert!(answer.get("error").is_none(), "{path}: {answer}");
        // An OS disk made from a platform image names it by the image version's id.
        let image = answer
            .pointer("/properties/creationData/imageReference/id")
            .or_else(|| answer.pointer("/value/0/properties/creationData/imageReference/id"));
        assert!(
            image.and_then(Value::as_str).is_some_and(|i| i.contains("/ArtifactTypes/VMImage/Offers/")),
            "{answer}"
        );
        let url = format!("{}{path}", info.arm_url.trim_end_matches('/'));
        read.push(json!({"method": "GET", "url": url, "api_version": api, "status": 200, "request": null, "response": answer, "by": "test"}));
    }
    disk
}

/// The spec violations in what the idlab runs of another test (`s`) captured.
pub(crate) fn violations_of(s: &Served) -> Vec<String> {
    let info = idlab::local::attach::read_info(&s.state).expect("server.json");
    let c = Captured { arm_url: info.arm_url.trim_end_matches('/').to_string(), exchanges: s.captured() };
    check_all(&c).violations
}

fn specs() -> &'static Specs {
    static SPECS: OnceLock<Specs> = OnceLock::new();
    SPECS.get_or_init(|| Specs::load(&swagger::root()))
}

/// Which plane an exchange went to.
enum Plane {
    Arm(String),
    KeyVault(String),
    /// Blob XML, Data Lake WebHDFS and Gen2, tokens: out of scope.
    Other,
}

fn plane(c: &Captured, e: &Value) -> Plane {
    let url = e["url"].as_str().unwrap_or_default();
    if let Some(path) = url.strip_prefix(&c.arm_url)
        && (path.starts_with("/subscriptions") || path.starts_with("/providers"))
    {
        return Plane::Arm(path.to_string());
    }
    let path = url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap_or_default();
    if e["api_version"] == "7.4" && (path.contains("/secrets") || path.contains("/deletedsecrets")) {
        return Plane::KeyVault(path);
    }
    Plane::Other
}

/// The body parameter's schema and whether it is required.
fn body_schema<'a>(specs: &'a Specs, o: &Operation<'a>) -> Result<Option<(At<'a>, bool)>, String> {
    for p in specs.parameters(o) {
        let p = p?;
        if p.value.get("in").and_then(Value::as_str) == Some("body") {
            let schema = p.value.get("schema").ok_or_else(|| format!("{}: a body parameter without schema", o.id))?;
            let required = p.value.get("required").and_then(Value::as_bool) == Some(true);
            return Ok(Some((At { file: p.file, value: schema }, required)));
        }
    }
    Ok(None)
}

/// The response schema for `status` (`None`: the status declares no body).
fn response_schema<'a>(specs: &'a Specs, o: &Operation<'a>, status: u64) -> Result<Option<At<'a>>, String> {
    let responses = o.op.get("responses").ok_or_else(|| format!("{}: no responses", o.id))?;
    let Some(r) = responses.get(status.to_string()).or_else(|| responses.get("default")) else {
        if status >= 400 {
            return specs.resolve(ERROR_ENVELOPE.0, ERROR_ENVELOPE.1).map(Some);
        }
        return Err(format!("status {status} is not among the operation's responses"));
    };
    let r = specs.deref(At { file: o.file, value: r })?;
    Ok(r.value.get("schema").map(|s| At { file: r.file, value: s }))
}

/// Per operation (`operationId @ api-version`): request bodies and answers checked.
#[derive(Default)]
struct Tally {
    requests: usize,
    responses: usize,
}

struct Report {
    tally: BTreeMap<String, Tally>,
    violations: Vec<String>,
    out_of_scope: usize,
    /// Answer violations a recording of Azure overrides ([`RECORDED_OVERRIDES`]).
    overridden: usize,
}

fn check_all(c: &Captured) -> Report {
    let specs = specs();
    let mut r = Report { tally: BTreeMap::new(), violations: Vec::new(), out_of_scope: 0, overridden: 0 };
    for e in &c.exchanges {
        let path = match plane(c, e) {
            Plane::Arm(p) | Plane::KeyVault(p) => p,
            Plane::Other => {
                r.out_of_scope += 1;
                continue;
            }
        };
        let method = e["method"].as_str().unwrap_or_default();
        let api = e["api_version"].as_str().unwrap_or_default();
        let what = format!("{method} {path}?api-version={api}");
        let Some(o) = specs.operation(method, &path, api) else {
            r.violations.push(format!("{what}: no operation in the fixture specs"));
            continue;
        };
        let key = format!("{} @ {api}", o.id);
        let tally = r.tally.entry(key.clone()).or_default();
        match body_schema(specs, &o) {
            Err(err) => r.violations.push(format!("{what} [{key}]: {err}")),
            Ok(schema) => match (schema, e["request"].is_null()) {
                (Some((s, _)), false) => {
                    tally.requests += 1;
                    for v in violations(specs, s, &e["request"], Mode::Request) {
                        r.violations.push(format!("{what} [{key}] request {v}"));
                    }
                }
                (Some((_, true)), true) => r.violations.push(format!("{what} [{key}]: the required body is missing")),
                (None, false) => r.violations.push(format!("{what} [{key}]: a body the operation does not take")),
                _ => {}
            },
        }
        let status = e["status"].as_u64().unwrap_or_default();
        match response_schema(specs, &o, status) {
            Err(err) => r.violations.push(format!("{what} [{key}] answer {status}: {err}")),
            Ok(Some(s)) if !e["response"].is_null() => {
                tally.responses += 1;
                for v in violations(specs, s, &e["response"], Mode::Response) {
                    if recorded(&o.id, &v) {
                        r.overridden += 1;
                    } else {
                        r.violations.push(format!("{what} [{key}] answer {status} {v}"));
                    }
                }
            }
            Ok(_) => {}
        }
    }
    r
}

#[test]
fn every_ref_in_the_fixture_specs_resolves() {
    let started = std::time::Instant::now();
    let specs = Specs::load(&swagger::root());
    let loaded = started.elapsed();
    let dangling = specs.dangling();
    assert!(dangling.is_empty(), "{} dangling $refs:\n{}", dangling.len(), dangling.join("\n"));
    assert!(specs.ref_count() > 1000, "{}", specs.ref_count());
    eprintln!(
        "specs: {} documents, {} $refs, all resolved; loaded in {} ms",
        specs.docs.len(),
        specs.ref_count(),
        loaded.as_millis()
    );
    // The check bites: a $ref to a missing file and one to a missing pointer are both reported.
    let broken = Specs {
        docs: [(
            "specification/x/a.json".to_string(),
            json!({"definitions": {"A": {"$ref": "./missing.json#/definitions/A"}, "B": {"$ref": "#/definitions/Nope"}}}),
        )]
        .into(),
    };
    let found = broken.dangling();
    assert!(
        found.len() == 2
            && found.iter().any(|e| e.contains("no file"))
            && found.iter().any(|e| e.contains("no /definitions/Nope")),
        "{found:?}"
    );
}

#[test]
fn every_body_idlab_sends_and_every_json_answer_of_the_local_cloud_follows_azure_s_specs() {
    let c = captured();
    let r = check_all(c);
    let (mut requests, mut responses) = (0, 0);
    for (op, t) in &r.tally {
        eprintln!("specs: {op}: {} request bodies, {} answers", t.requests, t.responses);
        requests += t.requests;
        responses += t.responses;
    }
    eprintln!(
        "specs: {} operations, {requests} request bodies and {responses} answers validated; {} exchanges out of scope (blob, Data Lake, tokens); {} answer deviations allowed by a recording of Azure; {} violations",
        r.tally.len(),
        r.out_of_scope,
        r.overridden,
        r.violations.len()
    );
    assert!(r.violations.is_empty(), "{} violations:\n{}", r.violations.len(), r.violations.join("\n"));
    // The capture holds no secret: the secret's value and the VM's password are masked (the
    // tutorials' SQL server has no SQL login; capture.rs's unit test covers that password).
    let masked = |ptr: &str, suffix: &str| {
        let hits: Vec<&Value> = c
            .exchanges
            .iter()
            .filter(|e| e["url"].as_str().is_some_and(|u| u.contains(suffix)) && e["method"] == "PUT")
            .filter_map(|e| e["request"].pointer(ptr))
            .collect();
        assert!(!hits.is_empty() && hits.iter().all(|v| *v == idlab::arm::capture::MASK), "{ptr}: {hits:?}");
    };
    masked("/value", "/secrets/");
    masked("/properties/osProfile/adminPassword", "/Microsoft.Compute/virtualMachines/");
    // idlab's one disk request, the DELETE destroy sends after the VM, matched its DiskRP
    // operation at DISK_API_VERSION (it has no body; its answer none either), and the local
    // cloud's disk answers, alone and listed, were checked against DiskRP's schemas.
    let disk_api = idlab::kinds::vm::DISK_API_VERSION;
    let deleted = c.exchanges.iter().any(|e| {
        e.get("by").is_none()
            && e["method"] == "DELETE"
            && e["api_version"] == disk_api
            && e["url"].as_str().is_some_and(|u| u.contains("/providers/Microsoft.Compute/disks/"))
    });
    assert!(deleted && r.tally.contains_key(&format!("Disks_Delete @ {disk_api}")), "no disk DELETE by idlab");
    for op in ["Disks_Get", "Disks_ListByResourceGroup"] {
        assert!(r.tally.get(&format!("{op} @ {disk_api}")).is_some_and(|t| t.responses > 0), "no {op} answer checked");
    }
    // The run covered what it is for: a body of every ARM kind the plans hold, and secrets.
    for op in [
        "ResourceGroups_CreateOrUpdate",
        "UserAssignedIdentities_CreateOrUpdate",
        "FederatedIdentityCredentials_CreateOrUpdate",
        "RoleAssignments_Create",
        "RoleDefinitions_CreateOrUpdate",
        "StorageAccounts_Create",
        "BlobContainers_Create",
        "Vaults_CreateOrUpdate",
        "Vaults_UpdateAccessPolicy",
        "SetSecret",
        "Servers_CreateOrUpdate",
        "Databases_CreateOrUpdate",
        "ServerAzureADAdministrators_CreateOrUpdate",
        "Accounts_Create",
        "VirtualMachines_CreateOrUpdate",
        "VirtualNetworks_CreateOrUpdate",
        "NetworkSecurityGroups_CreateOrUpdate",
        "PublicIPAddresses_CreateOrUpdate",
        "NetworkInterfaces_CreateOrUpdate",
    ] {
        assert!(
            r.tally.iter().any(|(k, t)| k.starts_with(&format!("{op} @")) && t.requests > 0),
            "no {op} body captured"
        );
    }
}

/// A copy of `body` with the value at JSON pointer `ptr` replaced (`None`: removed).
fn mutate(body: &Value, ptr: &str, to: Option<Value>) -> Value {
    let mut b = body.clone();
    let (parent, last) = ptr.rsplit_once('/').expect("a pointer below the root");
    let key = last.replace("~1", "/").replace("~0", "~");
    let slot = b.pointer_mut(parent).expect("the parent exists");
    match (slot, to) {
        (Value::Object(m), Some(v)) => {
            m.insert(key, v);
        }
        (Value::Object(m), None) => {
            m.remove(&key);
        }
        (Value::Array(a), Some(v)) => a[key.parse::<usize>().expect("index")] = v,
        (Value::Array(a), None) => {
            a.remove(key.parse::<usize>().expect("index"));
        }
        (other, _) => panic!("{ptr}: parent is {other}"),
    }
    b
}

fn wrong_type(ty: &str) -> Value {
    match ty {
        "string" => json!(42),
        _ => json!("not-a-number-or-boolean"),
    }
}

#[test]
fn negative_cases_per_kind_and_api_version_are_rejected() {
    let c = captured();
    let specs = specs();
    // The first captured body of each operation that takes one.
    let mut firsts: BTreeMap<String, (At<'_>, Value)> = BTreeMap::new();
    for e in &c.exchanges {
        let (Plane::Arm(path) | Plane::KeyVault(path)) = plane(c, e) else { continue };
        let (method, api) = (e["method"].as_str().unwrap_or_default(), e["api_version"].as_str().unwrap_or_default());
        if e["request"].is_null() || !matches!(method, "PUT" | "PATCH") {
            continue;
        }
        let Some(o) = specs.operation(method, &path, api) else { continue };
        if let Ok(Some((s, _))) = body_schema(specs, &o) {
            firsts.entry(format!("{} @ {api}", o.id)).or_insert((s, e["request"].clone()));
        }
    }
    // Managed disks have none: idlab's only disk request is a DELETE, without a body.
    assert!(firsts.len() >= 19, "{:?}", firsts.keys().collect::<Vec<_>>());
    let mut cases = 0;
    let mut none: [Vec<String>; 4] = Default::default();
    for (op, (schema, body)) in &firsts {
        let mut w = Walker::new(specs, Mode::Request);
        w.sites = Some(Sites::default());
        w.check(*schema, body, "");
        assert!(w.errors.is_empty(), "{op}: the captured body is not valid: {:?}", w.errors);
        let sites = w.sites.take().expect("sites");
        let mut broken: Vec<(String, Value, &str)> = Vec::new();
        match sites.required.first() {
            Some(req) => {
                broken.push((format!("without {req}"), mutate(body, req, None), "a required property is missing"));
            }
            None => none[0].push(op.clone()),
        }
        match sites.typed.first() {
            Some((ptr, ty)) => {
                broken.push((format!("{ptr} not a {ty}"), mutate(body, ptr, Some(wrong_type(ty))), "wrong type"));
            }
            None => none[1].push(op.clone()),
        }
        match sites.closed_enum.first() {
            Some(ptr) => broken.push((
                format!("{ptr} outside its enum"),
                mutate(body, ptr, Some(json!("NotAnAzureValue"))),
                "closed enum",
            )),
            None => none[2].push(op.clone()),
        }
        match sites.read_only.first() {
            Some((obj, name, v)) => broken.push((
                format!("read-only {obj}/{name} sent"),
                mutate(body, &format!("{obj}/{name}"), Some(v.clone())),
                "read-only",
            )),
            None => none[3].push(op.clone()),
        }
        assert!(broken.len() >= 2, "{op}: fewer than two negative cases can be built from {body}");
        for (what, bad, expect) in broken {
            let v = violations(specs, *schema, &bad, Mode::Request);
            assert!(v.iter().any(|x| x.contains(expect)), "{op}: {what} was not rejected as `{expect}`: {v:?}");
            eprintln!("specs: negative {op}: {what}: rejected ({})", v.join("; "));
            cases += 1;
        }
    }
    eprintln!("specs: {} negative cases over {} operations, all rejected", cases, firsts.len());
    for (i, what) in
        ["a required property present", "a typed scalar", "a closed enum", "a read-only property"].iter().enumerate()
    {
        eprintln!("specs: bodies without {what} (no such negative case): {}", none[i].join(", "));
    }
    // Every kind of break was made somewhere.
    assert!(none.iter().all(|n| n.len() < firsts.len()), "{none:?}");
}
