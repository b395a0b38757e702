//! The catalogue of built-in roles: recounted against its source (tests/fixtures/roles), every
//! role accepted by `idlab validate` (a seeded random sample through the real binary), and
//! served by the local cloud (list, `$filter`, get by id at every scope level).

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::common::{idlab, json_codes, root};
use crate::lab::Lab;

/// `(path, roleName, GUID)` per file of the source, from `tests/fixtures/roles/source-index.tsv`,
/// and the commit its header names.
fn source_index() -> (String, Vec<(String, String, String)>) {
    let text = std::fs::read_to_string(root().join("tests/fixtures/roles/source-index.tsv")).expect("index");
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    let commit = header.split_whitespace().nth(3).expect("commit in the header").to_string();
    let rows = lines
        .map(|l| {
            let mut f = l.split('\t');
            let mut next = || f.next().expect("three columns").to_string();
            (next(), next(), next())
        })
        .collect();
    (commit, rows)
}

#[test]
fn the_catalogue_has_every_role_of_its_source_once() {
    let (commit, rows) = source_index();
    let all = idlab::roles::built_in();
    assert_eq!(idlab::roles::source().commit, commit);
    assert_eq!(all.len(), rows.len(), "one role per file of the source");
    assert_eq!(idlab::roles::source().count, rows.len());
    assert!(all.len() > 900, "{}", all.len());
    let names: HashSet<String> = all.iter().map(|r| r.name.to_lowercase()).collect();
    let guids: HashSet<String> = all.iter().map(|r| r.guid.to_lowercase()).collect();
    assert_eq!(names.len(), all.len(), "role names are unique, case-insensitively");
    assert_eq!(guids.len(), all.len(), "role GUIDs are unique");
    for (path, name, guid) in &rows {
        let r = idlab::roles::by_name(name).unwrap_or_else(|| panic!("{path}: `{name}` is not in the catalogue"));
        assert_eq!(r.guid, guid.as_str(), "{path}");
        assert_eq!(idlab::roles::by_guid(&guid.to_uppercase()).map(|r| r.name), Some(r.name), "{path}");
    }
}

#[test]
fn acr_push_key_vault_administrator_and_vm_contributor_are_the_sources_own() {
    for (file, guid) in [
        ("AcrPush.json", Some("8311e382-0749-4cb8-b61a-304f252e45ec")),
        ("Key Vault Administrator.json", None),
        ("Virtual Machine Contributor.json", None),
    ] {
        let text = std::fs::read_to_string(root().join("tests/fixtures/roles").join(file)).expect("fixture");
        let src: Value = serde_json::from_str(&text).expect("JSON");
        let name = src["roleName"].as_str().expect("roleName");
        let r = idlab::roles::by_name(&name.to_uppercase()).expect("in the catalogue");
        assert_eq!(r.guid, src["name"].as_str().expect("name"), "{file}");
        if let Some(g) = guid {
            assert_eq!(r.guid, g);
        }
        assert_eq!(r.description, src["description"].as_str().unwrap_or_default(), "{file}");
        let perms = src["permissions"].as_array().expect("permissions");
        assert_eq!(r.permissions.len(), perms.len(), "{file}");
        for (mine, theirs) in r.permissions.iter().zip(perms) {
            let list = |k: &str| -> Vec<String> {
                theirs[k].as_array().expect(k).iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect()
            };
            assert_eq!(mine.actions, list("actions"), "{file} actions");
            assert_eq!(mine.data_actions, list("dataActions"), "{file} dataActions");
            assert_eq!(mine.not_actions, list("notActions"), "{file} notActions");
            assert_eq!(mine.not_data_actions, list("notDataActions"), "{file} notDataActions");
        }
    }
    // The three are among the roles the old 12-role table did not know.
    assert!(
        idlab::roles::by_name("Key Vault Administrator")
            .is_some_and(|r| r.data_actions().any(|a| a == "Microsoft.KeyVault/vaults/*"))
    );
}

/// A small seeded generator (xorshift64*), so a failing sample can be replayed with its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// The sample's seed: `IDLAB_ROLES_SEED` to replay one, else the clock.
fn seed() -> u64 {
    std::env::var("IDLAB_ROLES_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
    })
}

#[test]
fn validate_accepts_built_in_roles_by_name_in_any_case() {
    let seed = seed();
    let mut rng = Rng(seed);
    let all = idlab::roles::built_in();
    let mut picked: Vec<&str> = Vec::new();
    while picked.len() < 12 {
        let r = all[(rng.next() % all.len() as u64) as usize].name;
        if !picked.contains(&r) {
            picked.push(r);
        }
    }
    // The three the issue names are always in.
    picked.extend(["AcrPush", "Key Vault Administrator", "Virtual Machine Contributor"]);
    eprintln!("roles sample: seed {seed} (IDLAB_ROLES_SEED={seed} replays it): {picked:?}");
    let mut plan = String::from("name: roles-sample\nlocation: eastus\nresources:\n");
    for (i, name) in picked.iter().enumerate() {
        // Every other name in another case: Azure compares role names case-insensitively.
        let written = match i % 3 {
            0 => name.to_string(),
            1 => name.to_lowercase(),
            _ => name.to_uppercase(),
        };
        let quoted = serde_json::to_string(&written).expect("quoted");
        plan.push_str(&format!(
            "  ra{i}:\n    type: role_assignment\n    scope: subscription\n    principal: 00000000-0000-0000-0000-{i:012}\n    role: {quoted}\n"
        ));
    }
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("roles.yaml");
    std::fs::write(&path, &plan).expect("plan");
    let r = idlab(&["validate", &path.display().to_string()]);
    assert_eq!(r.code, 0, "seed {seed}, roles {picked:?}: {}", r.render());
    assert!(r.stdout.contains(&format!("{} resources", picked.len())), "{}", r.render());
}

#[test]
fn validate_accepts_every_role_of_the_catalogue() {
    let mut plan = String::from("name: every-role\nlocation: eastus\nresources:\n");
    for (i, r) in idlab::roles::built_in().iter().enumerate() {
        let quoted = serde_json::to_string(r.name).expect("quoted");
        plan.push_str(&format!(
            "  ra{i}:\n    type: role_assignment\n    scope: subscription\n    principal: 00000000-0000-0000-0000-{i:012}\n    role: {quoted}\n"
        ));
    }
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("every.yaml");
    std::fs::write(&path, &plan).expect("plan");
    let r = idlab(&["validate", &path.display().to_string()]);
    assert_eq!(r.code, 0, "{}", r.render());
    assert!(r.stdout.contains(&format!("{} resources", idlab::roles::built_in().len())), "{}", r.render());
}

#[test]
fn an_unknown_role_is_e018_with_the_nearest_built_in_name() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("typo.yaml");
    std::fs::write(
        &path,
        "name: typo\nlocation: eastus\nresources:\n  ra:\n    type: role_assignment\n    scope: subscription\n    principal: 00000000-0000-0000-0000-000000000001\n    role: Key Vault Administrater\n",
    )
    .expect("plan");
    let r = idlab(&["validate", &path.display().to_string(), "--format", "json"]);
    assert_ne!(r.code, 0);
    assert_eq!(json_codes(&r), vec![("E018".to_string(), 8, 11)], "{}", r.render());
    let v: Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(v["files"][0]["diagnostics"][0]["help"], "did you mean `Key Vault Administrator`?");
}

fn def_path(scope: &str, guid: &str) -> String {
    format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}?api-version=2022-04-01")
}

#[test]
fn the_local_cloud_serves_every_built_in_role_at_every_scope() {
    let lab = Lab::start();
    let sub = format!("/subscriptions/{}", lab.sub());
    let list =
        lab.op("GET", &format!("{sub}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01"), None);
    assert_eq!(list.status, 200);
    let value = list.body["value"].as_array().expect("value");
    assert_eq!(value.len(), idlab::roles::built_in().len());
    let filtered = lab.op(
        "GET",
        &format!("{sub}/providers/Microsoft.Authorization/roleDefinitions?$filter=roleName%20eq%20'acrpush'&api-version=2022-04-01"),
        None,
    );
    let only = filtered.body["value"].as_array().expect("value");
    assert_eq!(only.len(), 1, "{}", filtered.body);
    assert_eq!(only[0]["name"], "8311e382-0749-4cb8-b61a-304f252e45ec");
    // A group and an account, to ask at the group and resource levels.
    let (account, _) = crate::local_blob::storage_account(&lab, "defs", "idlabdefs", json!({}));
    let rg = lab.rg_path("defs");
    let kva = idlab::roles::by_name("Key Vault Administrator").expect("role");
    for scope in [sub.clone(), rg, account] {
        let r = lab.op("GET", &def_path(&scope, kva.guid), None);
        assert_eq!(r.status, 200, "{scope}: {}", r.body);
        // Azure answers with the subscription's id at and below it (the recordings).
        assert_eq!(r.body["id"], format!("{sub}/providers/Microsoft.Authorization/roleDefinitions/{}", kva.guid));
        assert_eq!(r.body["type"], "Microsoft.Authorization/roleDefinitions");
        assert_eq!(r.body["name"], kva.guid);
        let p = &r.body["properties"];
        assert_eq!(p["roleName"], "Key Vault Administrator");
        assert_eq!(p["type"], "BuiltInRole");
        assert_eq!(p["description"], kva.description);
        assert_eq!(p["assignableScopes"], json!(["/"]));
        assert_eq!(p["permissions"][0]["dataActions"], json!(["Microsoft.KeyVault/vaults/*"]));
        assert_eq!(p["permissions"][0]["notDataActions"], json!([]));
        assert_eq!(p["permissions"][0]["actions"].as_array().map(Vec::len), Some(kva.actions().count()));
    }
    let tenant = lab.op("GET", &def_path("", kva.guid), None);
    assert_eq!(tenant.body["id"], format!("/providers/Microsoft.Authorization/roleDefinitions/{}", kva.guid));
    let missing = lab.op("GET", &def_path(&sub, "00000000-0000-0000-0000-00000000dead"), None);
    assert_eq!((missing.status, missing.code()), (404, "RoleDefinitionDoesNotExist"));
    let bad = lab.op(
        "GET",
        &format!("{sub}/providers/Microsoft.Authorization/roleDefinitions?$filter=permissions%20eq%20'x'&api-version=2022-04-01"),
        None,
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
}

/// A custom role body: `actions`, `data` (dataActions), `not_data`, assignable at `scopes`.
pub(crate) fn custom_role(name: &str, actions: &[&str], data: &[&str], not_data: &[&str], scopes: &[&str]) -> Value {
    json!({"properties": {
        "roleName": name,
        "description": "a test role",
        "type": "CustomRole",
        "permissions": [{"actions": actions, "notActions": [], "dataActions": data, "notDataActions": not_data}],
        "assignableScopes": scopes,
    }})
}

#[test]
fn custom_roles_are_created_listed_refused_while_assigned_and_deleted() {
    let lab = Lab::start();
    let sub = format!("/subscriptions/{}", lab.sub());
    let (account, _) = crate::local_blob::storage_account(&lab, "custom", "idlabcustom", json!({}));
    let rg = lab.rg_path("custom");
    let guid = uuid::Uuid::new_v4().to_string();
    let body =
        custom_role("SAS issuer", &["Microsoft.Storage/storageAccounts/listServiceSas/action"], &[], &[], &[&rg]);
    let created = lab.op("PUT", &def_path(&rg, &guid), Some(&body));
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["id"], format!("{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"));
    assert_eq!(created.body["properties"]["type"], "CustomRole");
    assert_eq!(created.body["properties"]["assignableScopes"], json!([rg]));
    // Listed (and filtered) with the built-in roles, at and below its assignable scope.
    let at = |scope: &str, filter: &str| {
        let r = lab.op(
            "GET",
            &format!("{scope}/providers/Microsoft.Authorization/roleDefinitions?{filter}api-version=2022-04-01"),
            None,
        );
        r.body["value"].as_array().cloned().unwrap_or_default()
    };
    assert_eq!(at(&account, "").len(), idlab::roles::built_in().len() + 1);
    let custom = at(&sub, "$filter=type%20eq%20'CustomRole'&");
    assert_eq!(custom.len(), 1);
    assert_eq!(custom[0]["properties"]["roleName"], "SAS issuer");
    assert_eq!(at(&sub, "$filter=roleName%20eq%20'sas%20issuer'&").len(), 1);
    assert!(at(&lab.rg_path("elsewhere"), "$filter=type%20eq%20'CustomRole'&").is_empty());
    // The name is the tenant's: another definition (or a built-in name) cannot take it.
    let again = lab.op("PUT", &def_path(&rg, &uuid::Uuid::new_v4().to_string()), Some(&body));
    assert_eq!((again.status, again.code()), (409, "RoleDefinitionWithSameNameExists"), "{}", again.body);
    let builtin = custom_role("reader", &["*/read"], &[], &[], &[&rg]);
    let taken = lab.op("PUT", &def_path(&rg, &uuid::Uuid::new_v4().to_string()), Some(&builtin));
    assert_eq!(taken.code(), "RoleDefinitionWithSameNameExists");
    // Custom roles are never assignable at the root.
    let root_scoped = custom_role("rooted", &["*/read"], &[], &[], &["/"]);
    assert_eq!(lab.op("PUT", &def_path(&sub, &uuid::Uuid::new_v4().to_string()), Some(&root_scoped)).status, 400);
    // Built-in roles cannot be changed.
    let kva = idlab::roles::by_name("Key Vault Administrator").expect("role").guid;
    assert_eq!(lab.op("DELETE", &def_path(&sub, kva), None).status, 403);
    // Assignable at its scope and below, not outside it.
    let (_, oid) = lab.principal(&[]);
    let assign = |scope: &str| {
        let ra = format!(
            "{scope}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01",
            uuid::Uuid::new_v4()
        );
        let b = json!({"properties": {"roleDefinitionId": format!("{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"), "principalId": oid, "principalType": "ServicePrincipal"}});
        lab.op("PUT", &ra, Some(&b))
    };
    let outside = assign(&sub);
    assert_eq!((outside.status, outside.code()), (400, "RoleDefinitionDoesNotExist"), "{}", outside.body);
    let inside = assign(&account);
    assert_eq!(inside.status, 201, "{}", inside.body);
    // Not deleted while an assignment uses it; narrowing its scopes may not orphan it either.
    let refused = lab.op("DELETE", &def_path(&sub, &guid), None);
    assert_eq!((refused.status, refused.code()), (409, "RoleDefinitionHasAssignments"), "{}", refused.body);
    let other = lab.rg_path("narrow");
    assert!(
        lab.op("PUT", &format!("{other}?api-version=2024-11-01"), Some(&json!({"location": "eastus"}))).status < 300
    );
    let narrowed = custom_role("SAS issuer", &["*/read"], &[], &[], &[&other]);
    let n = lab.op("PUT", &def_path(&other, &guid), Some(&narrowed));
    assert_eq!((n.status, n.code()), (400, "RoleScopeBeingRemovedContainsAssignments"), "{}", n.body);
    let ra_id = inside.body["id"].as_str().expect("id").to_string();
    assert_eq!(lab.op("DELETE", &format!("{ra_id}?api-version=2022-04-01"), None).status, 200);
    let deleted = lab.op("DELETE", &def_path(&sub, &guid), None);
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(deleted.body["properties"]["roleName"], "SAS issuer");
    assert_eq!(lab.op("GET", &def_path(&sub, &guid), None).status, 404);
    assert_eq!(lab.op("DELETE", &def_path(&sub, &guid), None).status, 204);
}

#[test]
fn role_definitions_in_plans_are_checked_where_they_are_written() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("custom.yaml");
    std::fs::write(
        &path,
        r#"name: custom
location: eastus
resources:
  rg:
    type: resource_group
    name: rg
  taken:
    type: role_definition
    role_name: Reader
    actions: [ "*/read" ]
  empty:
    type: role_definition
    role_name: nothing
    assignable_scopes: [ "${rg}" ]
  bad-op:
    type: role_definition
    role_name: bad op
    actions: [ "read everything" ]
  ra:
    type: role_assignment
    scope: ${rg}
    principal: 00000000-0000-0000-0000-000000000001
    role: ${rg}
"#,
    )
    .expect("plan");
    let r = idlab(&["validate", &path.display().to_string(), "--format", "json"]);
    assert_ne!(r.code, 0);
    // The built-in name, the role allowing nothing, the operation, the reference to a group.
    let want = [("E006", 9, 16), ("E006", 13, 16), ("E006", 18, 16), ("E014", 23, 11)];
    let want: Vec<(String, u64, u64)> = want.iter().map(|(c, l, k)| (c.to_string(), *l, *k)).collect();
    assert_eq!(json_codes(&r), want, "{}", r.render());
    let ok = dir.path().join("ok.yaml");
    std::fs::write(
        &ok,
        "name: ok\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: rg\n  mine:\n    type: role_definition\n    role_name: mine\n    data_actions: [ \"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*\" ]\n    not_data_actions: [ \"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete\" ]\n    assignable_scopes: [ \"${rg}\", subscription ]\n  ra:\n    type: role_assignment\n    scope: ${rg}\n    principal: 00000000-0000-0000-0000-000000000001\n    role: ${mine}\n",
    )
    .expect("plan");
    let r = idlab(&["validate", &ok.display().to_string()]);
    assert_eq!(r.code, 0, "{}", r.render());
}

#[test]
fn custom_roles_and_their_assignments_survive_a_restart() {
    let lab = Lab::start();
    let sub = format!("/subscriptions/{}", lab.sub());
    let guid = uuid::Uuid::new_v4().to_string();
    let body =
        custom_role("group reader", &["Microsoft.Resources/subscriptions/resourceGroups/read"], &[], &[], &[&sub]);
    assert_eq!(lab.op("PUT", &def_path(&sub, &guid), Some(&body)).status, 201);
    let rg = lab.rg_path("kept");
    assert!(lab.op("PUT", &format!("{rg}?api-version=2024-11-01"), Some(&json!({"location": "eastus"}))).status < 300);
    let r = lab.op("POST", "/_idlab/principals", Some(&json!({"name": "kept"})));
    let (client, secret, oid) = (r.body["client_id"].clone(), r.body["secret"].clone(), r.body["object_id"].clone());
    let ra = format!(
        "{sub}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01",
        uuid::Uuid::new_v4()
    );
    let def = format!("{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}");
    let assigned =
        json!({"properties": {"roleDefinitionId": def, "principalId": oid, "principalType": "ServicePrincipal"}});
    assert_eq!(lab.op("PUT", &ra, Some(&assigned)).status, 201);
    let lab = lab.restart();
    let got = lab.op("GET", &def_path(&sub, &guid), None);
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.body["properties"]["roleName"], "group reader");
    let token = lab.token_as(client.as_str().unwrap_or_default(), secret.as_str().unwrap_or_default());
    assert_eq!(lab.send(Some(&token), "GET", &format!("{rg}?api-version=2024-11-01"), None).status, 200);
    let write =
        lab.send(Some(&token), "PUT", &format!("{rg}?api-version=2024-11-01"), Some(&json!({"location": "eastus"})));
    assert_eq!(write.status, 403);
}
