//! The client against real bodies (issue 18, item 2). For every kind with a recorded Azure
//! body (`tests/fixtures/real-bodies/<kind>.json`, extracted from Azure PowerShell's recorded
//! exchanges; `SOURCES` there), `tests/fixtures/real-bodies/plan.yaml` declares the resource
//! the body describes, setting every field the plan language can set as the recording has it.
//! The plan is loaded with idlab's own loader, each declaration's desired body is built by its
//! kind, the recorded body stands for what `observe` would read, and idlab's pure planning
//! (`plan::stamp`, `plan::make`: what `idlab plan` runs on what it observed) must find **no
//! change**. The few fields the plan language cannot write as recorded (an old cmdlet's
//! choices, api-versions older than the field) are listed in [`UNJUDGED`] with the reason, and
//! the test checks that exactly those differ, so the list cannot go stale.
//!
//! This runs the library, not the binary: `idlab plan` talks only to Azure or the local cloud
//! (TLS, tokens and the operator credentials of a state directory), so serving recorded bodies
//! to the binary would need a fake of all of that; the planning code it runs is the same.
//!
//! What a recorded body is changed by before the diff: the recorded subscription and tenants
//! become the test's ([`SUB`], [`TENANT`]), the canary region `eastus2euap` becomes `eastus2`
//! (plans accept public regions only), and idlab's ownership mark (the `idlab-plan` tag, or the
//! `idlab plan rb` description of a role, the `idlab_plan` metadata of a container) is added,
//! as an apply would have left it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use idlab::kinds::env::{Env, Owner, Plane};
use idlab::plan::{self, ActionKind, Observed, Options};
use serde_json::{Value, json};

use crate::common::root;

const SUB: &str = "11111111-1111-1111-1111-111111111111";
const TENANT: &str = "22222222-2222-2222-2222-222222222222";
const PLAN: &str = "rb";

/// (declaration in plan.yaml, fixture file) for every covered kind.
const COVERED: &[(&str, &str)] = &[
    ("rg", "resource_group"),
    ("uai", "user_assigned_identity"),
    ("vnet", "virtual_network"),
    ("nsg", "network_security_group"),
    ("pip", "public_ip"),
    ("nic", "network_interface"),
    ("vm", "virtual_machine"),
    ("fic", "federated_identity_credential"),
    ("ra", "role_assignment"),
    ("rd", "role_definition"),
    ("kv", "key_vault"),
    // The vault of TestSetRemoveAccessPolicyByObjectId, and its access-policy entry.
    ("kv-ap", "key_vault_access_policy"),
    ("kv-policy", "key_vault_access_policy"),
    ("storage", "storage_account"),
    ("container", "blob_container"),
    ("sql", "sql_server"),
    ("db", "sql_database"),
    ("sql-admin", "sql_entra_admin"),
    ("adls", "data_lake_store"),
];

/// Declarations without a recorded body, there because a covered one references them (and
/// the `:creator` access policies a vault expands into).
const HELPERS: &[&str] =
    &["vm-id", "fic-identity", "container-account", "sql-admin-server", "kv:creator", "kv-ap:creator"];

/// Kinds with no recorded body: data-plane objects (a blob's HEAD, a Key Vault secret bundle,
/// WebHDFS ACLs), which idlab reads through its data-plane clients, not as ARM bodies.
const UNCOVERED: &[&str] = &["blob", "data_lake_folder", "key_vault_secret"];

/// Fields idlab sends that the recorded body cannot judge: (declaration, path, why). A path
/// ending in `/` stands for the fields under it.
const UNJUDGED: &[(&str, &str, &str)] = &[
    (
        "vm",
        "properties/storageProfile/osDisk/",
        "New-AzVM chose Premium_LRS, plans have no OS-disk type (idlab asks for Standard_LRS); the recorded api-version (2018-06-01) predates deleteOption",
    ),
    (
        "vm",
        "properties/networkProfile/networkInterfaces/0/properties/",
        "New-AzVM sent the NIC reference without properties (`primary`, later `deleteOption`), and Azure answers what it was sent",
    ),
    (
        "nic",
        "properties/ipConfigurations/0/name",
        "idlab names its one IP configuration ipconfig1; New-AzVM named it after the VM",
    ),
    ("pip", "sku/name", "New-AzVM (2018) made a Basic public IP; Basic is retired, plans offer Standard only"),
    (
        "kv-ap",
        "properties/enableSoftDelete",
        "recorded at 2015-06-01, before soft delete; idlab always turns it on (Azure refuses to turn it off)",
    ),
    (
        "sql",
        "properties/minimalTlsVersion",
        "recorded at 2015-05-01-preview, which predates the field (idlab asks for 1.2)",
    ),
    (
        "sql",
        "properties/publicNetworkAccess",
        "recorded at 2015-05-01-preview, which predates the field (idlab asks for Enabled)",
    ),
];

fn fixture(name: &str) -> Value {
    let path = root().join("tests/fixtures/real-bodies").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn tenants(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "tenantId"
                    && let Some(t) = x.as_str()
                {
                    out.insert(t.to_string());
                }
                tenants(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| tenants(x, out)),
        _ => {}
    }
}

/// A recorded body with the recorded subscription and tenants mapped to the test's.
fn mapped(name: &str) -> Value {
    let f = fixture(name);
    let body = &f["body"];
    let id = body["id"].as_str().expect("a recorded body has an id");
    let sub = id.split('/').nth(2).expect("the id names a subscription").to_string();
    let mut ts = BTreeSet::new();
    tenants(body, &mut ts);
    let mut text = body.to_string().replace(&sub, SUB).replace("eastus2euap", "eastus2");
    for t in ts {
        text = text.replace(&t, TENANT);
    }
    serde_json::from_str(&text).expect("still JSON")
}

/// What `plan` would observe for each declaration, and what it would decide.
struct Run {
    plan: idlab::resolve::Validated,
    obs: Observed,
    actions: Vec<plan::Action>,
}

fn run(edit: impl Fn(&str, &mut Value)) -> Run {
    let loaded = idlab::resolve::load(&root().join("tests/fixtures/real-bodies/plan.yaml"), &Default::default());
    assert!(!loaded.has_errors(), "{:?}", loaded.diags);
    let plan = loaded.plan.expect("the plan loads");
    let fixtures: HashMap<&str, &str> = COVERED.iter().copied().collect();
    let n = plan.decls.len();
    let order = plan.dag.topo_order().expect("no cycles");
    let mut values: HashMap<(String, String), String> = HashMap::new();
    let mut desired = vec![None; n];
    let mut bodies: Vec<Option<Value>> = vec![None; n];
    for i in order {
        let d = &plan.decls[i];
        let logical = d.logical.value.as_str();
        let env = Env {
            subscription: SUB,
            plan: PLAN,
            location: &plan.location,
            logical,
            values: &values,
            caller_object_id: None,
            tenant_id: Some(TENANT),
            base_dir: &plan.base_dir,
        };
        let want = d.spec.desired(&env).unwrap_or_else(|| panic!("{logical}: no desired body"));
        let body = fixtures.get(logical).map(|f| {
            let mut b = mapped(f);
            if want.plane == Plane::AccessPolicy {
                // What `observe` reads for an access policy: the entry in its vault's body.
                let oid = want.id.rsplit('/').next().unwrap_or_default();
                b = idlab::arm::keyvault::policy_entry(&b, oid, TENANT).expect("the recorded vault holds the entry");
            }
            // The ownership mark an apply leaves.
            match want.owner {
                Owner::Tag => {
                    if !b["tags"].is_object() {
                        b["tags"] = json!({});
                    }
                    b["tags"]["idlab-plan"] = json!(PLAN);
                }
                Owner::Description => b["properties"]["description"] = want.body["properties"]["description"].clone(),
                Owner::Metadata => {
                    if !b["properties"]["metadata"].is_object() {
                        b["properties"]["metadata"] = json!({});
                    }
                    b["properties"]["metadata"]["idlab_plan"] = json!(PLAN);
                }
                Owner::Parent => {}
            }
            edit(logical, &mut b);
            b
        });
        idlab::engine::record(&mut values, logical, &want.id, body.as_ref());
        desired[i] = Some(want);
        bodies[i] = body;
    }
    let mut obs = Observed {
        desired,
        bodies,
        values,
        orphans: Vec::new(),
        foreign_access: Vec::new(),
        unread: Vec::new(),
        not_looked_for: Vec::new(),
    };
    plan::stamp(&plan.decls, &mut obs, &plan::Stamp::default());
    let opts = Options {
        plan_name: PLAN,
        subscription: SUB,
        tenant_id: Some(TENANT),
        caller_object_id: None,
        adopt: false,
        purge: false,
        force: false,
        only: None,
    };
    let actions = plan::make(&opts, &plan.decls, &plan.dag, &obs, false).actions;
    Run { plan, obs, actions }
}

fn changes(r: &Run) -> BTreeMap<String, Vec<String>> {
    r.actions.iter().map(|a| (a.name.clone(), a.changes.iter().map(|c| c.path.clone()).collect())).collect()
}

#[test]
fn every_kind_is_covered_or_listed_as_uncovered() {
    let r = run(|_, _| {});
    let mut covered: BTreeSet<&str> = BTreeSet::new();
    for (logical, _) in COVERED {
        let d = r.plan.decls.iter().find(|d| d.logical.value == *logical).expect("declared");
        covered.insert(d.kind.type_name());
    }
    let all: BTreeSet<&str> = idlab::kinds::KINDS.iter().map(|k| k.type_name()).collect();
    let uncovered: BTreeSet<&str> = all.difference(&covered).copied().collect();
    println!("covered kinds: {covered:?}\nuncovered kinds (no recorded body): {uncovered:?}");
    assert_eq!(uncovered, UNCOVERED.iter().copied().collect(), "a kind is neither covered nor listed as uncovered");
    assert_eq!(
        r.plan.decls.len(),
        COVERED.len() + HELPERS.len(),
        "every declaration of plan.yaml is covered or a helper"
    );
}

#[test]
fn recorded_bodies_give_no_change_beyond_the_unjudged_fields() {
    let r = run(|_, _| {});
    let got = changes(&r);
    for a in &r.actions {
        let name = a.name.as_str();
        if HELPERS.contains(&name) {
            // No body: the harness sees the absence (so a covered one with no change was read).
            assert_eq!(a.action, ActionKind::Create, "{name}");
            continue;
        }
        let unjudged: Vec<&str> = UNJUDGED.iter().filter(|(l, _, _)| *l == name).map(|(_, p, _)| *p).collect();
        let covers = |u: &str, p: &str| if u.ends_with('/') { p.starts_with(u) } else { p == u };
        // Nothing else differs, and each unjudged field does (so the list cannot go stale).
        let spurious: Vec<&String> = got[name].iter().filter(|p| !unjudged.iter().any(|u| covers(u, p))).collect();
        assert!(
            spurious.is_empty(),
            "{name}: spurious changes {spurious:?} against the recorded body: {:#?}",
            a.changes
        );
        for u in &unjudged {
            assert!(got[name].iter().any(|p| covers(u, p)), "{name}: `{u}` is listed as unjudged but does not differ");
        }
        let expected = if unjudged.is_empty() { ActionKind::NoOp } else { a.action };
        assert_eq!(a.action, expected, "{name}: {:?}", a.reason);
        assert!(a.action != ActionKind::Adopt && a.action != ActionKind::Conflict, "{name}: {:?}", a.reason);
    }
}

#[test]
fn outputs_are_read_from_the_recorded_bodies() {
    let r = run(|_, _| {});
    let v = |l: &str, a: &str| r.obs.values.get(&(l.to_string(), a.to_string())).cloned();
    assert_eq!(v("uai", "principal_id").as_deref(), Some("84d62ad1-cb0e-4c7f-b7c8-d716357ad438"));
    assert_eq!(v("uai", "client_id").as_deref(), Some("40fc1be0-c9b4-44c1-8fe2-17463294f35c"));
    assert_eq!(v("uai", "tenant_id").as_deref(), Some(TENANT));
    assert_eq!(v("vm", "identity.principal_id").as_deref(), Some("74cf7596-49a6-4f7e-8eab-30c5072fc855"));
    assert_eq!(v("vm", "identity").as_deref(), Some("74cf7596-49a6-4f7e-8eab-30c5072fc855"));
    assert_eq!(v("pip", "ip_address").as_deref(), Some("23.99.192.153"));
    assert_eq!(v("kv", "uri").as_deref(), Some("https://ps578.vault.azure.net/"));
    assert_eq!(v("kv-ap", "uri").as_deref(), Some("https://pshtestvault4594.vault.azure.net/"));
    assert_eq!(v("storage", "blob_endpoint").as_deref(), Some("https://stopstestrg9353.blob.core.windows.net/"));
    assert_eq!(v("storage", "dfs_endpoint").as_deref(), Some("https://stopstestrg9353.dfs.core.windows.net/"));
    assert_eq!(v("sql", "fqdn").as_deref(), Some("ps9361.database.windows.net"));
    assert_eq!(v("adls", "endpoint").as_deref(), Some("ps9613.azuredatalakestore.net"));
    // A reference to the identity resolves to the id as the plan spells it, which the VM's
    // body (lower-case `resourcegroups`) matches case-insensitively (no change above).
    assert!(v("vm-id", "id").is_some_and(|id| id.contains("/resourceGroups/UAITG123456/")));
}

#[test]
fn reordered_arrays_and_id_casing_give_no_change() {
    // Azure may answer a set in any order, and spells ids as it likes.
    let r = run(|logical, b| match logical {
        "nsg" => {
            if let Some(rules) = b.pointer_mut("/properties/securityRules").and_then(Value::as_array_mut) {
                rules.reverse();
            }
        }
        "kv-policy" => {
            if let Some(keys) = b.pointer_mut("/properties/permissions/keys").and_then(Value::as_array_mut) {
                keys.reverse();
            }
        }
        "nic" => {
            let p = "/properties/ipConfigurations/0/properties/subnet/id";
            let id = b.pointer(p).and_then(Value::as_str).map(|s| s.replace("/resourceGroups/", "/resourcegroups/"));
            if let (Some(slot), Some(id)) = (b.pointer_mut(p), id) {
                *slot = json!(id);
            }
        }
        "rd" => {
            if let Some(s) = b.pointer_mut("/properties/assignableScopes/0") {
                *s = json!(s.as_str().map(str::to_ascii_uppercase));
            }
        }
        _ => {}
    });
    let got = changes(&r);
    for l in ["nsg", "kv-policy", "nic", "rd"] {
        let extra: Vec<&String> =
            got[l].iter().filter(|p| !UNJUDGED.iter().any(|(n, u, _)| *n == l && p.starts_with(u))).collect();
        assert!(extra.is_empty(), "{l}: {extra:?}");
    }
    // The same edits that matter are seen: a rule's port changed is a change.
    let r = run(|logical, b| {
        if logical == "nsg"
            && let Some(p) = b.pointer_mut("/properties/securityRules/1/properties/destinationPortRange")
        {
            *p = json!("22");
        }
    });
    assert!(!changes(&r)["nsg"].is_empty(), "a changed rule must show");
}

#[test]
fn the_fixtures_record_their_source() {
    let sources = std::fs::read_to_string(root().join("tests/fixtures/real-bodies/SOURCES")).expect("SOURCES");
    let files: BTreeSet<&str> = COVERED.iter().map(|(_, f)| *f).collect();
    for f in files {
        let v = fixture(f);
        assert_eq!(v["source"]["repository"], "Azure/azure-powershell", "{f}");
        let commit = v["source"]["commit"].as_str().unwrap_or_default();
        assert!(commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit()), "{f}: commit {commit}");
        assert!(
            sources.lines().any(|l| l.starts_with(&format!("{f}.json ")) && l.contains(commit)),
            "{f}: no SOURCES line"
        );
        assert!(Path::new(&root().join("tests/fixtures/real-bodies").join(format!("{f}.json"))).is_file());
    }
}

#[test]
fn sets_compare_in_any_order_and_lenient_fields_as_azure_answers_them() {
    use idlab::kinds::env::{Desired, Lenient};
    let decide = |d: &Desired, have: &Value| plan::decide("x", "k", "p", d, Some(have));
    let mut d = Desired::new(
        "/subscriptions/s/resourceGroups/rg/providers/X/y/x".into(),
        "x",
        json!({"tags": {"idlab-plan": "p"}, "properties": {
            "rules": [{"name": "a", "properties": {"port": "22"}}, {"name": "b", "properties": {"port": "80"}}],
            "prefixes": ["10.0.0.0/16", "10.1.0.0/16"],
            "sku": {"name": "premium"}, "retention": 90,
        }}),
    );
    let have = json!({"tags": {"idlab-plan": "p"}, "properties": {
        "rules": [{"name": "b", "properties": {"port": "80"}}, {"name": "a", "properties": {"port": "22"}}],
        "prefixes": ["10.1.0.0/16", "10.0.0.0/16"],
        "sku": {"name": "Premium"},
    }});
    let a = decide(&d, &have);
    let paths: Vec<&str> = a.changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["properties/sku/name", "properties/retention"]);
    d.lenient = vec![("properties/sku/name", Lenient::AnyCase), ("properties/retention", Lenient::Absent(json!(90)))];
    assert_eq!(decide(&d, &have).action, ActionKind::NoOp);
    // Absent is the default only: another value still differs.
    d.body["properties"]["retention"] = json!(30);
    assert_eq!(decide(&d, &have).action, ActionKind::Update);
    // A field the plan wants absent: held, it is a change.
    d.body["properties"]["retention"] = json!(90);
    d.cleared = vec!["properties/condition"];
    let mut held = have.clone();
    held["properties"]["condition"] = json!("x");
    let a = decide(&d, &held);
    assert_eq!(a.changes.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["properties/condition"]);
    held["properties"]["condition"] = Value::Null;
    assert_eq!(decide(&d, &held).action, ActionKind::NoOp);
    // `tags: {}` and no tags at all are the same: neither carries the plan's mark.
    let d = Desired::new("/subscriptions/s/resourceGroups/rg".into(), "x", json!({"tags": {"idlab-plan": "p"}}));
    for t in [json!({"tags": {}}), json!({})] {
        assert_eq!(decide(&d, &t).action, ActionKind::Adopt);
    }
}
