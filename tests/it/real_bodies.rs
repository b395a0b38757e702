//! The client against real bodies (issue 18, item 2), through the real binary. For every kind
//! with a recorded Azure body (`tests/fixtures/real-bodies/<kind>.json`, extracted from Azure
//! PowerShell's recorded exchanges; `SOURCES` there), `tests/fixtures/real-bodies/plan.yaml`
//! declares the resource the body describes, setting every field the plan language can set as
//! the recording has it. Each recorded body is loaded into a served local cloud with the
//! operator's `PUT /_idlab/resources` (seed recorded state), so that ARM answers it as Azure
//! did; `idlab plan` must then find **no change**, and `idlab output` must read the recorded
//! outputs. The few fields the plan language cannot write as recorded (an old cmdlet's
//! choices, api-versions older than the field) are listed in [`UNJUDGED`] with the reason; the
//! test checks from the plan's JSON that exactly those differ, so the list cannot go stale,
//! then seeds them as idlab would write them and `plan --detailed-exitcode` must exit 0.
//!
//! What a recorded body is changed by before it is seeded: the recorded subscription and
//! tenants become the local cloud's, the canary region `eastus2euap` becomes `eastus2` (plans
//! accept public regions only), the GUID names Azure PowerShell chose for a role assignment
//! and a role definition become the ones idlab derives ([`RENAMED`]), and what an apply leaves
//! is added: idlab's ownership mark (the `idlab-plan` tag, the `idlab plan rb` description of
//! a role, the `idlab_plan` metadata of a container) and the deploying principal's
//! `{vault}:creator` access-policy entry. Declarations without a recorded body ([`HELPERS`])
//! are applied by idlab itself (`apply --target`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use idlab::local::attach;
use serde_json::{Value, json};

use crate::common::{Served, root};

const PLAN: &str = "rb";
/// The subscription plan.yaml spells (the role assignment's scope): the local one replaces it.
const PLAN_SUB: &str = "11111111-1111-1111-1111-111111111111";

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

/// Declarations without a recorded body, there because a covered one references them; the
/// test applies them with idlab (the `:creator` entries are added to the seeded vaults).
const HELPERS: &[&str] =
    &["vm-id", "fic-identity", "container-account", "sql-admin-server", "kv:creator", "kv-ap:creator"];

/// Covered declarations whose parent is a helper: seeded once the helpers are applied.
const AFTER_HELPERS: &[&str] = &["fic", "container", "sql-admin"];

/// Declarations whose recorded name is a GUID Azure PowerShell chose, where idlab derives its
/// own from the declaration: seeded under idlab's name (the rest of the id must match).
const RENAMED: &[&str] = &["ra", "rd"];

/// Kinds with no recorded body: data-plane objects (a blob's HEAD, a Key Vault secret bundle,
/// WebHDFS ACLs), which idlab reads through its data-plane clients, not as ARM bodies.
const UNCOVERED: &[&str] = &["blob", "data_lake_folder", "key_vault_secret"];

/// Fields idlab sends that the recorded body cannot judge: (declaration, path, why). A path
/// ending in `/` stands for the fields under it.
const UNJUDGED: &[(&str, &str, &str)] = &[
    (
        "vm",
        "properties/storageProfile/osDisk/",
        "the recorded api-version (2018-06-01) predates the OS disk's deleteOption, which idlab always sends",
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

fn fixture_of(logical: &str) -> &'static str {
    COVERED.iter().find(|(l, _)| *l == logical).map(|(_, f)| *f).expect("covered")
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

/// The api-version of the recorded exchange.
fn recorded_version(name: &str) -> String {
    let f = fixture(name);
    let ex = f["source"]["exchange"].as_str().expect("exchange");
    let at = ex.find("api-version=").expect("an api-version") + "api-version=".len();
    ex[at..].split([' ', '&']).next().unwrap_or_default().to_string()
}

/// Whether `path` (a change's) falls under `unjudged` (a field, or the fields under `x/`).
fn covers(unjudged: &str, path: &str) -> bool {
    if unjudged.ends_with('/') { path.starts_with(unjudged) } else { path == unjudged }
}

/// Set `path` (`a/b/0/c`) in `v` to `new`, making the objects on the way; `null` removes.
fn set_path(v: &mut Value, path: &str, new: &Value) {
    let (head, rest) = match path.split_once('/') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    if let Value::Array(a) = v {
        let slot = &mut a[head.parse::<usize>().expect("an index")];
        match rest {
            Some(r) => set_path(slot, r, new),
            None => *slot = new.clone(),
        }
        return;
    }
    if !v.is_object() {
        *v = json!({});
    }
    let o = v.as_object_mut().expect("an object");
    match rest {
        Some(r) => set_path(o.entry(head.to_string()).or_insert(json!({})), r, new),
        None if new.is_null() => {
            o.remove(head);
        }
        None => {
            o.insert(head.to_string(), new.clone());
        }
    }
}

/// A served local cloud holding every recorded body, and the plan written for it.
struct Cloud {
    s: Served,
    plan: PathBuf,
    _dir: tempfile::TempDir,
    sub: String,
    tenant: String,
    /// What `plan` wanted before anything existed, by declaration: its id and what it sends.
    planned: BTreeMap<String, Value>,
    /// What is seeded, by fixture: (id, body).
    seeded: BTreeMap<&'static str, (String, Value)>,
}

impl Cloud {
    fn start() -> Cloud {
        let s = Served::start();
        let info = attach::read_info(&s.state).expect("server.json");
        let dir = tempfile::tempdir().expect("tmp");
        let text = std::fs::read_to_string(root().join("tests/fixtures/real-bodies/plan.yaml")).expect("plan");
        let plan = dir.path().join("plan.yaml");
        std::fs::write(&plan, text.replace(PLAN_SUB, &info.subscription_id)).expect("plan copy");
        let mut c = Cloud {
            s,
            plan,
            _dir: dir,
            sub: info.subscription_id,
            tenant: info.tenant_id,
            planned: BTreeMap::new(),
            seeded: BTreeMap::new(),
        };
        let before = c.plan_json();
        for a in before["actions"].as_array().expect("actions") {
            assert_eq!(a["action"], "create", "nothing exists yet: {a}");
            c.planned.insert(a["name"].as_str().expect("name").to_string(), a.clone());
        }
        // The recorded groups the plan does not declare (UAITG123456 is the `rg` declaration's).
        let rg_name = c.planned["rg"]["id"].as_str().expect("id").rsplit('/').next().expect("name").to_string();
        let groups: BTreeSet<String> = c
            .planned
            .values()
            .filter_map(|a| a["id"].as_str()?.split('/').nth(4).map(str::to_string))
            .filter(|g| !g.eq_ignore_ascii_case(&rg_name))
            .collect();
        for g in groups {
            let id = format!("/subscriptions/{}/resourceGroups/{g}", c.sub);
            let body = json!({"id": id, "name": g, "type": "Microsoft.Resources/resourceGroups", "location": "eastus",
                "properties": {"provisioningState": "Succeeded"}});
            c.seed(&id, &body);
        }
        for (logical, _) in COVERED.iter().filter(|(l, _)| !AFTER_HELPERS.contains(l)) {
            c.seed_declared(logical, |_| {});
        }
        let plan = c.plan_path();
        let mut args = vec!["apply", plan.as_str(), "--auto-approve"];
        for h in HELPERS.iter().filter(|h| !h.contains(':')) {
            args.extend(["--target", h]);
        }
        let r = c.s.idlab(&args);
        assert_eq!(r.code, 0, "the helpers apply: {}{}", r.stdout, r.stderr);
        for logical in AFTER_HELPERS {
            c.seed_declared(logical, |_| {});
        }
        c
    }

    fn plan_path(&self) -> String {
        self.plan.to_str().expect("utf-8").to_string()
    }

    /// `PUT /_idlab/resources`: it must be stored.
    fn seed(&self, id: &str, body: &Value) {
        let r = self.s.op("PUT", "/_idlab/resources", Some(json!({"id": id, "body": body})));
        assert!(r["etag"].is_u64(), "seeding {id}: {r}");
    }

    /// Seed the recorded body of declaration `logical` as an apply would have left it, after
    /// `edit`; a vault and its access-policy entry share one body.
    fn seed_declared(&mut self, logical: &str, edit: impl Fn(&mut Value)) {
        let f = fixture_of(logical);
        let (id, mut body) = match self.seeded.get(f) {
            Some(x) => x.clone(),
            None => self.prepared(logical),
        };
        edit(&mut body);
        self.seed(&id, &body);
        self.seeded.insert(f, (id, body));
    }

    /// Declaration `logical`'s recorded body: mapped, renamed, marked.
    fn prepared(&self, logical: &str) -> (String, Value) {
        let f = fixture(fixture_of(logical));
        let body = &f["body"];
        let rec_id = body["id"].as_str().expect("a recorded body has an id");
        let rec_sub = rec_id.split('/').nth(2).expect("the id names a subscription").to_string();
        let mut ts = BTreeSet::new();
        tenants(body, &mut ts);
        let mut text = body.to_string().replace(&rec_sub, &self.sub).replace("eastus2euap", "eastus2");
        for t in ts {
            text = text.replace(&t, &self.tenant);
        }
        let want = &self.planned[logical];
        let want_id = want["id"].as_str().expect("id").to_string();
        if RENAMED.contains(&logical) {
            let mapped_id = rec_id.replace(&rec_sub, &self.sub);
            let (rec_scope, rec_name) = mapped_id.rsplit_once('/').expect("a name");
            let (want_scope, want_name) = want_id.rsplit_once('/').expect("a name");
            assert!(rec_scope.eq_ignore_ascii_case(want_scope), "{logical}: {mapped_id} against {want_id}");
            text = text.replace(rec_name, want_name);
        }
        let mut b: Value = serde_json::from_str(&text).expect("still JSON");
        let id = match logical {
            // The recorded body is the vault's; the entry is found in it.
            "kv-policy" => self.planned["kv-ap"]["id"].as_str().expect("id").to_string(),
            // Azure's 2014 answer spells the admin's id with a second `providers` block.
            "sql-admin" => want_id,
            _ => {
                let got = b["id"].as_str().expect("id");
                assert!(got.eq_ignore_ascii_case(&want_id), "{logical}: the recording's {got}, the plan's {want_id}");
                got.to_string()
            }
        };
        // The ownership mark an apply leaves, as the plan would send it.
        for c in want["changes"].as_array().into_iter().flatten() {
            match c["path"].as_str().unwrap_or_default() {
                "tags" if c["new"]["idlab-plan"] == PLAN => {
                    if !b["tags"].is_object() {
                        b["tags"] = json!({});
                    }
                    b["tags"]["idlab-plan"] = json!(PLAN);
                }
                "properties/description" => b["properties"]["description"] = c["new"].clone(),
                "properties/metadata/idlab_plan" => set_path(&mut b, "properties/metadata/idlab_plan", &c["new"]),
                _ => {}
            }
        }
        // The deploying principal's entry on a vault the plan creates.
        if let Some(creator) = self.planned.get(&format!("{logical}:creator")) {
            let oid = creator["id"].as_str().and_then(|i| i.rsplit('/').next()).expect("object id");
            let secrets = creator["changes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["path"] == "properties/permissions/secrets")
                .map(|c| c["new"].clone())
                .expect("the creator's secret permissions");
            let entry = json!({"tenantId": self.tenant, "objectId": oid, "permissions": {"secrets": secrets}});
            match b.pointer_mut("/properties/accessPolicies").and_then(Value::as_array_mut) {
                Some(list) => list.push(entry),
                None => b["properties"]["accessPolicies"] = json!([entry]),
            }
        }
        (id, b)
    }

    /// `idlab plan --format json`, which must succeed.
    fn plan_json(&self) -> Value {
        let r = self.s.idlab(&["plan", &self.plan_path(), "--format", "json"]);
        assert!(r.code == 0 || r.code == 2, "{}{}", r.stdout, r.stderr);
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
    }

    /// The changed paths of every action of a plan, by declaration.
    fn changes(&self) -> BTreeMap<String, (String, Vec<String>)> {
        let p = self.plan_json();
        p["actions"]
            .as_array()
            .expect("actions")
            .iter()
            .map(|a| {
                let paths = a["changes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["path"].as_str().map(str::to_string))
                    .collect();
                (
                    a["name"].as_str().unwrap_or_default().to_string(),
                    (a["action"].as_str().unwrap_or_default().to_string(), paths),
                )
            })
            .collect()
    }
}

fn unjudged_of(name: &str) -> Vec<&'static str> {
    UNJUDGED.iter().filter(|(l, _, _)| *l == name).map(|(_, p, _)| *p).collect()
}

#[test]
fn recorded_bodies_plan_no_change_through_the_binary() {
    let mut c = Cloud::start();

    // Coverage: every kind is covered by a recorded body or listed as uncovered.
    let covered: BTreeSet<&str> = COVERED.iter().map(|(l, _)| c.planned[*l]["type"].as_str().expect("type")).collect();
    let all: BTreeSet<&str> = idlab::kinds::KINDS.iter().map(|k| k.type_name()).collect();
    let uncovered: BTreeSet<&str> = all.difference(&covered).copied().collect();
    println!("covered kinds ({}): {covered:?}\nuncovered kinds (no recorded body): {uncovered:?}", covered.len());
    assert_eq!(uncovered, UNCOVERED.iter().copied().collect(), "a kind is neither covered nor listed as uncovered");
    let declared: BTreeSet<&str> = c.planned.keys().map(String::as_str).collect();
    let listed: BTreeSet<&str> = COVERED.iter().map(|(l, _)| *l).chain(HELPERS.iter().copied()).collect();
    assert_eq!(declared, listed, "every declaration of plan.yaml is covered or a helper");

    // The recorded bodies: nothing differs but the unjudged fields, and each of those does.
    let got = c.changes();
    for (name, (action, paths)) in &got {
        if HELPERS.contains(&name.as_str()) {
            assert_eq!(action, "no_op", "{name}: a helper is as applied: {paths:?}");
            continue;
        }
        let unjudged = unjudged_of(name);
        let spurious: Vec<&String> = paths.iter().filter(|p| !unjudged.iter().any(|u| covers(u, p))).collect();
        assert!(spurious.is_empty(), "{name}: spurious changes {spurious:?} against the recorded body");
        for u in &unjudged {
            assert!(paths.iter().any(|p| covers(u, p)), "{name}: `{u}` is listed as unjudged but does not differ");
        }
        // A field Azure cannot change in place (a public IP's SKU) makes it a replacement.
        let expected: &[&str] = if unjudged.is_empty() { &["no_op"] } else { &["update", "replace"] };
        assert!(expected.contains(&action.as_str()), "{name}: {action} {paths:?}");
    }

    // The unjudged fields as idlab writes them: then nothing at all differs.
    let plan = c.plan_json();
    for a in plan["actions"].as_array().expect("actions") {
        let name = a["name"].as_str().unwrap_or_default().to_string();
        let fixes: Vec<(String, Value)> = a["changes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|ch| (ch["path"].as_str().unwrap_or_default().to_string(), ch["new"].clone()))
            .collect();
        if fixes.is_empty() {
            continue;
        }
        c.seed_declared(&name, |b| fixes.iter().for_each(|(p, v)| set_path(b, p, v)));
    }
    c.s.replans_clean(&c.plan_path());
    let r = c.s.idlab(&["plan", &c.plan_path(), "--detailed-exitcode", "--format", "json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let p: Value = serde_json::from_str(&r.stdout).expect("json");
    let not_noop: Vec<&Value> =
        p["actions"].as_array().expect("actions").iter().filter(|a| a["action"] != "no_op").collect();
    assert!(not_noop.is_empty(), "{not_noop:?}");

    // The outputs idlab reads from the recorded bodies.
    let r = c.s.idlab(&["output", &c.plan_path(), "--format", "json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let o: Value = serde_json::from_str(&r.stdout).expect("json");
    let expect = [
        ("uai_principal_id", "84d62ad1-cb0e-4c7f-b7c8-d716357ad438"),
        ("uai_client_id", "40fc1be0-c9b4-44c1-8fe2-17463294f35c"),
        ("uai_tenant_id", c.tenant.as_str()),
        ("vm_principal_id", "74cf7596-49a6-4f7e-8eab-30c5072fc855"),
        ("vm_identity", "74cf7596-49a6-4f7e-8eab-30c5072fc855"),
        ("pip_address", "23.99.192.153"),
        ("kv_uri", "https://ps578.vault.azure.net/"),
        ("kv_ap_uri", "https://pshtestvault4594.vault.azure.net/"),
        ("blob_endpoint", "https://stopstestrg9353.blob.core.windows.net/"),
        ("dfs_endpoint", "https://stopstestrg9353.dfs.core.windows.net/"),
        ("sql_fqdn", "ps9361.database.windows.net"),
        ("adls_endpoint", "ps9613.azuredatalakestore.net"),
    ];
    for (k, v) in expect {
        assert_eq!(o[k].as_str(), Some(v), "{k}: {o}");
    }
    // A reference to the identity resolves to the id as the plan spells it, which the VM's
    // body (lower-case `resourcegroups`) matches case-insensitively (no change above).
    assert!(o["vm_id_id"].as_str().is_some_and(|id| id.contains("/resourceGroups/UAITG123456/")), "{o}");
    let vm_keys =
        c.seeded["virtual_machine"].1["identity"]["userAssignedIdentities"].as_object().cloned().unwrap_or_default();
    assert!(vm_keys.keys().all(|k| k.contains("/resourcegroups/")), "the recording spells the key in lower case");
}

#[test]
fn seeded_bodies_are_answered_as_stored_and_survive_a_restart() {
    let mut c = Cloud::start();
    let check = |c: &Cloud| {
        for (f, (id, body)) in &c.seeded {
            let version = recorded_version(f);
            let got = c.s.op("GET", &format!("{id}?api-version={version}"), None);
            let (mut got, mut want) = (got, body.clone());
            if *f == "sql_entra_admin" {
                // A view of its server: what the local cloud keeps of it is the properties.
                assert_eq!(got["properties"], want["properties"], "{f}");
                continue;
            }
            // The local cloud's own etag replaces the recorded one, on the types with one.
            for v in [&mut got, &mut want] {
                if let Some(o) = v.as_object_mut() {
                    o.remove("etag");
                }
            }
            assert_eq!(got, want, "{f}: GET {id} at {version}");
        }
    };
    check(&c);
    c.s.restart(None);
    check(&c);
}

#[test]
fn reordered_arrays_id_casing_and_empty_tags() {
    let mut c = Cloud::start();
    // Azure may answer a set in any order, and spells ids as it likes.
    c.seed_declared("nsg", |b| {
        if let Some(rules) = b.pointer_mut("/properties/securityRules").and_then(Value::as_array_mut) {
            rules.reverse();
        }
    });
    c.seed_declared("kv-policy", |b| {
        for e in b.pointer_mut("/properties/accessPolicies").and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(keys) = e.pointer_mut("/permissions/keys").and_then(Value::as_array_mut) {
                keys.reverse();
            }
        }
    });
    c.seed_declared("nic", |b| {
        let p = "/properties/ipConfigurations/0/properties/subnet/id";
        let id = b.pointer(p).and_then(Value::as_str).map(|s| s.replace("/resourceGroups/", "/resourcegroups/"));
        if let (Some(slot), Some(id)) = (b.pointer_mut(p), id) {
            *slot = json!(id);
        }
    });
    c.seed_declared("rd", |b| {
        if let Some(s) = b.pointer_mut("/properties/assignableScopes/0") {
            *s = json!(s.as_str().map(str::to_ascii_uppercase));
        }
    });
    let got = c.changes();
    for l in ["nsg", "kv-policy", "nic", "rd"] {
        let extra: Vec<&String> = got[l].1.iter().filter(|p| !unjudged_of(l).iter().any(|u| covers(u, p))).collect();
        assert!(extra.is_empty(), "{l}: {extra:?}");
    }
    // The edits that matter are seen: a rule's port changed is a change.
    c.seed_declared("nsg", |b| {
        if let Some(p) = b.pointer_mut("/properties/securityRules/1/properties/destinationPortRange") {
            *p = json!(if p == "3389" { "22" } else { "3389" });
        }
    });
    assert!(!c.changes()["nsg"].1.is_empty(), "a changed rule must show");
    // `tags: {}` and no tags at all are the same: neither carries the plan's mark.
    for tags in [Some(json!({})), None] {
        c.seed_declared("uai", |b| match &tags {
            Some(t) => b["tags"] = t.clone(),
            None => {
                b.as_object_mut().map(|o| o.remove("tags"));
            }
        });
        assert_eq!(c.changes()["uai"].0, "adopt", "tags {tags:?}");
    }
}

#[test]
fn seeding_refuses_what_the_local_cloud_would_not_hold() {
    let s = Served::start();
    let sub = s.subscription();
    let rg = format!("/subscriptions/{sub}/resourceGroups/seeded");
    let seed = |id: &str, body: Value| s.op("PUT", "/_idlab/resources", Some(json!({"id": id, "body": body})));
    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or_default().to_string();
    let vnet = format!("{rg}/providers/Microsoft.Network/virtualNetworks/v");
    // No group yet.
    assert_eq!(code(&seed(&vnet, json!({"id": vnet, "location": "eastus"}))), "ResourceGroupNotFound");
    assert!(seed(&rg, json!({"location": "eastus"}))["etag"].is_u64());
    let cases = [
        ("/subscription/x".to_string(), json!({})),
        ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/seeded".to_string(), json!({})),
        (format!("{rg}/providers/Microsoft.Nope/things/t"), json!({})),
        (format!("{vnet}/subnets/s"), json!({})),
        (
            format!(
                "/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
            ),
            json!({}),
        ),
        (vnet.clone(), json!({"id": format!("{rg}/providers/Microsoft.Network/virtualNetworks/other")})),
        (vnet.clone(), json!({"_idlab": {}})),
        (vnet.clone(), json!([])),
    ];
    for (id, body) in cases {
        let r = seed(&id, body.clone());
        assert_eq!(code(&r), "InvalidRequestContent", "{id} {body}: {r}");
    }
    let db = format!("{rg}/providers/Microsoft.Sql/servers/none/databases/d");
    assert_eq!(code(&seed(&db, json!({}))), "ParentResourceNotFound");
    // Only the operator seeds.
    let info = attach::read_info(&s.state).expect("info");
    let status = s.rt.block_on(async {
        let c = attach::client(&info).expect("client");
        c.put(format!("{}/_idlab/resources", info.arm_url))
            .json(&json!({"id": vnet, "body": {}}))
            .send()
            .await
            .expect("sent")
            .status()
            .as_u16()
    });
    assert!(status == 401 || status == 403, "{status}");
    // What was refused was not stored.
    let got = s.op("GET", &format!("{vnet}?api-version=2024-07-01"), None);
    assert_eq!(code(&got), "ResourceNotFound", "{got}");
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
