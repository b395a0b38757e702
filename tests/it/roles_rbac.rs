//! RBAC over the whole catalogue, through real HTTP against the local cloud: a principal gets
//! a role through ARM, a token as itself, then calls ARM and the data planes and gets 200 or
//! 403. Roles the old 12-role table did not know, wildcards (`*`, `*/read`, `Namespace/*`),
//! `notActions`, `notDataActions`, custom roles; and the least-privilege SAS plan, whose
//! custom role is created and assigned by the plan itself.

use serde_json::{Value, json};

use crate::common::{Served, root};
use crate::lab::Lab;
use crate::local_blob::{blob, container, storage_account};
use crate::local_keyvault::{kv, set, vault};
use crate::roles::custom_role;

const STORAGE: &str = "https://storage.azure.com/.default";
const VAULT: &str = "https://vault.azure.net/.default";

/// What the matrix works on: a group, a storage account with a container and a blob, an RBAC
/// vault with a secret.
struct World {
    sub: String,
    rg: String,
    account: String,
    blob_url: String,
    vault: String,
    vault_uri: String,
}

fn world(lab: &Lab) -> World {
    let (account, done) = storage_account(lab, "m", "idlabmatrix", json!({}));
    let endpoint = done["properties"]["primaryEndpoints"]["blob"].as_str().expect("endpoint").to_string();
    container(lab, &account, "box");
    let blob_url = format!("{endpoint}box/b.txt");
    let (writer, _) = lab.principal_for(&[("Storage Blob Data Owner", &account)], STORAGE);
    let put = put_blob(lab, &writer, &blob_url);
    assert_eq!(put, 201);
    let (vault, vault_uri) = vault(lab, "m", "idlab-kv-matrix", json!([]), true);
    let (officer, _) = lab.principal_for(&[("Key Vault Secrets Officer", &vault)], VAULT);
    assert_eq!(set(lab, &officer, &vault_uri, "s", "v").status, 200);
    World { sub: format!("/subscriptions/{}", lab.sub()), rg: lab.rg_path("m"), account, blob_url, vault, vault_uri }
}

fn put_blob(lab: &Lab, token: &str, url: &str) -> u16 {
    let auth = format!("Bearer {token}");
    let h = [("authorization", auth.as_str()), ("x-ms-version", "2023-11-03"), ("x-ms-blob-type", "BlockBlob")];
    blob(lab, "PUT", url, &h, b"data").status
}

fn blob_op(lab: &Lab, token: &str, method: &str, url: &str) -> u16 {
    if method == "PUT" {
        return put_blob(lab, token, url);
    }
    let auth = format!("Bearer {token}");
    blob(lab, method, url, &[("authorization", auth.as_str()), ("x-ms-version", "2023-11-03")], b"").status
}

/// One request of the matrix and the status it must get.
enum Call {
    /// An ARM request: method, path (with its api-version), body.
    Arm(&'static str, String, Option<Value>),
    /// A blob request on the world's blob.
    Blob(&'static str),
    /// A secret request on the world's vault: method, path under the vault URI.
    Secret(&'static str, &'static str),
}

/// Tokens as one new principal: (ARM, storage, vault) and its object id.
fn principal(lab: &Lab) -> ([String; 3], String) {
    let r = lab.op("POST", "/_idlab/principals", Some(&json!({ "name": "matrix", "roles": [] })));
    assert_eq!(r.status, 200, "{}", r.body);
    let id = |k: &str| r.body[k].as_str().expect(k).to_string();
    let (client, secret) = (id("client_id"), id("secret"));
    let token = |scope: &str| {
        let t = lab.token_request(
            &lab.cloud.info.tenant_id.clone(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client),
                ("client_secret", &secret),
                ("scope", scope),
            ],
        );
        assert_eq!(t.status, 200, "{}", t.body);
        t.body["access_token"].as_str().expect("access_token").to_string()
    };
    ([token("https://management.azure.com/.default"), token(STORAGE), token(VAULT)], id("object_id"))
}

/// Assign `role` (a built-in name, or the GUID of a custom role) at `scope` to a new
/// principal through ARM, as a user would, then run every call as it.
fn run(lab: &Lab, w: &World, role: &str, scope: &str, calls: Vec<(Call, u16)>) {
    let ([arm, storage, vault_tok], oid) = principal(lab);
    let guid = idlab::roles::by_name(role).map_or_else(|| role.to_string(), |r| r.guid.to_string());
    let ra = format!(
        "{scope}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01",
        uuid::Uuid::new_v4()
    );
    let def = format!("{}/providers/Microsoft.Authorization/roleDefinitions/{guid}", w.sub);
    let body =
        json!({"properties": {"roleDefinitionId": def, "principalId": oid, "principalType": "ServicePrincipal"}});
    let r = lab.op("PUT", &ra, Some(&body));
    assert_eq!(r.status, 201, "{role}: {}", r.body);
    for (call, want) in calls {
        let (what, got) = match &call {
            Call::Arm(m, p, b) => {
                let r = lab.send(Some(&arm), m, p, b.as_ref());
                if want == 403 {
                    assert_eq!(r.code(), "AuthorizationFailed", "{role}: {m} {p}: {}", r.body);
                }
                (format!("{m} {p}"), r.status)
            }
            Call::Blob(m) => (format!("blob {m}"), blob_op(lab, &storage, m, &w.blob_url)),
            Call::Secret(m, p) => {
                let body = serde_json::to_vec(&json!({"value": "v2"})).unwrap_or_default();
                let b = (*m == "PUT").then_some(body.as_slice());
                (format!("secret {m} {p}"), kv(lab, Some(&vault_tok), m, &w.vault_uri, p, b).status)
            }
        };
        assert_eq!(got, want, "{role} at {scope}: {what}");
    }
}

/// A role, the scope it is assigned at, and the calls with the status each must get.
type Case<'a> = (&'a str, String, Vec<(Call, u16)>);

fn arm(m: &'static str, p: String, b: Option<Value>) -> Call {
    Call::Arm(m, p, b)
}

/// The roles idlab knew before the catalogue.
const OLD_TWELVE: [&str; 12] = [
    "Contributor",
    "Key Vault Reader",
    "Key Vault Secrets Officer",
    "Key Vault Secrets User",
    "Owner",
    "Reader",
    "Reader and Data Access",
    "Storage Account Contributor",
    "Storage Blob Data Contributor",
    "Storage Blob Data Owner",
    "Storage Blob Data Reader",
    "User Access Administrator",
];

#[test]
fn built_in_roles_beyond_the_first_twelve_allow_and_refuse_what_azure_says() {
    let lab = Lab::start();
    let w = world(&lab);
    let (rg, account, vault_path) = (w.rg.clone(), w.account.clone(), w.vault.clone());
    let vm = format!("{rg}/providers/Microsoft.Compute/virtualMachines/none?api-version=2025-04-01");
    let vnet = |n: &str| format!("{rg}/providers/Microsoft.Network/virtualNetworks/{n}?api-version=2024-05-01");
    let vnet_body = json!({"location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}});
    let keys = format!("{account}/listKeys?api-version=2025-06-01");
    let read_account = format!("{account}?api-version=2025-06-01");
    let read_vault = format!("{vault_path}?api-version=2024-11-01");
    let purge = format!(
        "{}/providers/Microsoft.KeyVault/locations/eastus/deletedVaults/gone/purge?api-version=2024-11-01",
        w.sub
    );
    let identity =
        format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi-a?api-version=2024-11-30");
    let sql = format!("{rg}/providers/Microsoft.Sql/servers/none");
    let ra = || {
        format!(
            "{rg}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01",
            uuid::Uuid::new_v4()
        )
    };
    let reader =
        format!("{}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7", w.sub);
    let ra_body = json!({"properties": {"roleDefinitionId": reader, "principalId": lab.cloud.info.operator_object_id, "principalType": "ServicePrincipal"}});
    let entra_only = json!({"properties": {"azureADOnlyAuthentication": true}});
    let secret = || Call::Secret("GET", "secrets/s?api-version=7.4");
    let cases: Vec<Case> = vec![
        // Microsoft.Compute/virtualMachines/* and an exact listKeys; no network writes.
        (
            "Virtual Machine Contributor",
            rg.clone(),
            vec![
                (arm("GET", vm.clone(), None), 404),
                (arm("POST", keys.clone(), None), 200),
                (arm("PUT", vnet("v1"), Some(vnet_body.clone())), 403),
                (Call::Blob("GET"), 403),
            ],
        ),
        // Microsoft.Network/*: every network operation, no other provider's.
        (
            "Network Contributor",
            rg.clone(),
            vec![
                (arm("PUT", vnet("v2"), Some(vnet_body.clone())), 201),
                (arm("GET", read_account.clone(), None), 403),
                (arm("POST", keys.clone(), None), 403),
            ],
        ),
        // `listkeys` in lower case still names listKeys; no read of the account.
        (
            "Storage Account Key Operator Service Role",
            account.clone(),
            vec![(arm("POST", keys.clone(), None), 200), (arm("GET", read_account.clone(), None), 403)],
        ),
        // Microsoft.KeyVault/* minus notActions' purge.
        (
            "Key Vault Contributor",
            w.sub.clone(),
            vec![(arm("GET", read_vault.clone(), None), 200), (arm("POST", purge.clone(), None), 403), (secret(), 403)],
        ),
        // Contributor may purge: its 404 says the request got past RBAC.
        ("Contributor", w.sub.clone(), vec![(arm("POST", purge.clone(), None), 404)]),
        // Microsoft.Sql/servers/* minus notActions (Entra-only authentication writes).
        (
            "SQL Server Contributor",
            rg.clone(),
            vec![
                (arm("GET", format!("{sql}?api-version=2023-08-01"), None), 404),
                (
                    arm(
                        "PUT",
                        format!("{sql}/azureADOnlyAuthentications/Default?api-version=2023-08-01"),
                        Some(entra_only),
                    ),
                    403,
                ),
            ],
        ),
        // */read plus role assignments.
        (
            "Role Based Access Control Administrator",
            rg.clone(),
            vec![
                (arm("GET", read_account.clone(), None), 200),
                (arm("PUT", ra(), Some(ra_body.clone())), 201),
                (arm("PUT", vnet("v3"), Some(vnet_body.clone())), 403),
            ],
        ),
        (
            "Managed Identity Contributor",
            rg.clone(),
            vec![
                (arm("PUT", identity.clone(), Some(json!({"location": "eastus"}))), 201),
                (arm("PUT", vnet("v4"), Some(vnet_body.clone())), 403),
            ],
        ),
        // A registry role: nothing here, not even the group.
        (
            "AcrPush",
            w.sub.clone(),
            vec![
                (arm("GET", format!("{rg}?api-version=2024-11-01"), None), 403),
                (arm("GET", read_account.clone(), None), 403),
            ],
        ),
        // Microsoft.KeyVault/vaults/* as data actions: every secret operation, no ARM write.
        (
            "Key Vault Administrator",
            vault_path.clone(),
            vec![
                (secret(), 200),
                (Call::Secret("PUT", "secrets/s?api-version=7.4"), 200),
                (arm("PUT", read_vault.clone(), Some(json!({"location": "eastus"}))), 403),
            ],
        ),
        // Certificates only.
        (
            "Key Vault Certificates Officer",
            vault_path.clone(),
            vec![(secret(), 403), (arm("PUT", read_vault, Some(json!({"location": "eastus"}))), 403)],
        ),
        // A delegation key, no blob data.
        ("Storage Blob Delegator", account.clone(), vec![(Call::Blob("GET"), 403), (Call::Blob("PUT"), 403)]),
        // Table data is not blob data.
        ("Storage Table Data Reader", account.clone(), vec![(Call::Blob("GET"), 403)]),
        // Blob data at the account, inherited by the container's blobs.
        ("Storage Blob Data Reader", account.clone(), vec![(Call::Blob("GET"), 200), (Call::Blob("DELETE"), 403)]),
    ];
    let beyond: Vec<&str> = cases.iter().map(|c| c.0).filter(|r| !OLD_TWELVE.contains(r)).collect();
    assert!(beyond.len() >= 10, "{beyond:?}");
    for (role, scope, calls) in cases {
        run(&lab, &w, role, &scope, calls);
    }
}

#[test]
fn custom_roles_take_away_with_not_actions_and_not_data_actions() {
    let lab = Lab::start();
    let w = world(&lab);
    let define = |body: Value| {
        let guid = uuid::Uuid::new_v4().to_string();
        let p = format!("{}/providers/Microsoft.Authorization/roleDefinitions/{guid}?api-version=2022-04-01", w.sub);
        let r = lab.op("PUT", &p, Some(&body));
        assert_eq!(r.status, 201, "{}", r.body);
        guid
    };
    let blobs = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs";
    // Every blob operation but delete.
    let no_delete = define(custom_role(
        "blobs but delete",
        &[],
        &[&format!("{blobs}/*")],
        &[&format!("{blobs}/delete")],
        &[&w.sub],
    ));
    let (get, put, del) = (Call::Blob("GET"), Call::Blob("PUT"), Call::Blob("DELETE"));
    run(&lab, &w, &no_delete, &w.account, vec![(get, 200), (put, 201), (del, 403)]);
    // Microsoft.Storage/* minus listKeys (notActions, written in another case).
    let mut body = custom_role("storage but keys", &["Microsoft.Storage/*"], &[], &[], &[&w.rg]);
    body["properties"]["permissions"][0]["notActions"] = json!(["microsoft.storage/storageaccounts/LISTKEYS/action"]);
    let no_keys = define(body);
    let account = w.account.clone();
    let sas = json!({"canonicalizedResource": "/blob/idlabmatrix/box", "signedResource": "c", "signedPermission": "r", "signedExpiry": "2099-01-01T00:00:00Z"});
    run(
        &lab,
        &w,
        &no_keys,
        &w.rg,
        vec![
            (arm("GET", format!("{account}?api-version=2025-06-01"), None), 200),
            (arm("POST", format!("{account}/listKeys?api-version=2025-06-01"), None), 403),
            (arm("POST", format!("{account}/listServiceSas?api-version=2025-06-01"), Some(sas)), 200),
            (Call::Blob("GET"), 403),
        ],
    );
    // `*` minus `*/write` and `*/delete`: reads and POST actions everywhere, no writes; `*`
    // grants no data.
    let mut body = custom_role("star but writes", &["*"], &[], &[], &[&w.sub]);
    body["properties"]["permissions"][0]["notActions"] = json!(["*/write", "*/delete"]);
    let star = define(body);
    let made = format!("{}?api-version=2024-11-01", lab.rg_path("made"));
    run(
        &lab,
        &w,
        &star,
        &w.sub,
        vec![
            (arm("GET", format!("{}?api-version=2024-11-01", w.rg), None), 200),
            (arm("PUT", made, Some(json!({"location": "eastus"}))), 403),
            (arm("POST", format!("{account}/listKeys?api-version=2025-06-01"), None), 200),
            (Call::Blob("GET"), 403),
            (Call::Secret("GET", "secrets/s?api-version=7.4"), 403),
        ],
    );
    // Secret data actions on the vault's data plane, minus reading a value.
    let metadata_only = define(custom_role(
        "vault metadata",
        &[],
        &["Microsoft.KeyVault/vaults/secrets/*"],
        &["Microsoft.KeyVault/vaults/secrets/getSecret/action"],
        &[&w.sub],
    ));
    let list = Call::Secret("GET", "secrets?api-version=7.4");
    let get = Call::Secret("GET", "secrets/s?api-version=7.4");
    run(&lab, &w, &metadata_only, &w.vault, vec![(list, 200), (get, 403)]);
}

#[test]
fn the_least_privilege_sas_plan_applies_verifies_replans_clean_and_destroys_its_role() {
    let s = Served::start();
    let p = root().join("plans/storage-sas-least-privilege.yaml").display().to_string();
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}", a.render());
    let sub = s.subscription();
    let custom_roles = || -> Vec<Value> {
        let path = format!(
            "/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions?$filter=type%20eq%20'CustomRole'&api-version=2022-04-01"
        );
        s.op("GET", &path, None)["value"].as_array().cloned().unwrap_or_default()
    };
    let custom = custom_roles();
    assert_eq!(custom.len(), 1, "{custom:?}");
    let role = &custom[0]["properties"];
    assert_eq!(role["roleName"], "Storage Service SAS Issuer (idlab)");
    assert_eq!(role["permissions"][0]["actions"], json!(["Microsoft.Storage/storageAccounts/listServiceSas/action"]));
    let desc = role["description"].as_str().unwrap_or_default();
    assert!(desc.starts_with("idlab plan storage-sas-least-privilege: "), "{desc}");
    let account = format!(
        "/subscriptions/{sub}/resourceGroups/mySasLeastPrivilegeGroup/providers/Microsoft.Storage/storageAccounts/idlabsasleast"
    );
    assert_eq!(role["assignableScopes"], json!([account]));
    let name = custom[0]["name"].as_str().expect("name").to_string();
    assert_eq!(name, idlab::kinds::role_definition::definition_name(&sub, "Storage Service SAS Issuer (idlab)"));
    let assignments = |scope: &str| -> Vec<Value> {
        let path = format!("{scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01");
        s.op("GET", &path, None)["value"].as_array().cloned().unwrap_or_default()
    };
    let uses_role = |a: &Value| a["properties"]["roleDefinitionId"].as_str().is_some_and(|d| d.ends_with(&name));
    let on_account: Vec<Value> = assignments(&account).into_iter().filter(uses_role).collect();
    assert_eq!(on_account.len(), 1);
    assert_eq!(on_account[0]["properties"]["principalId"], s.vm_principal("mySasLeastPrivilegeGroup", "myVM").as_str());

    // Verify as the VM: the SAS works, the keys are refused.
    let v = s.idlab(&["verify", &p]);
    assert_eq!(v.code, 0, "{}", v.render());
    assert!(v.stdout.contains("Verify: 2 passed, 0 failed, 0 skipped."), "{}", v.stdout);
    assert!(
        v.stdout.contains("PASS sas-upload-download: listServiceSas as the system-assigned identity: 200"),
        "{}",
        v.stdout
    );
    let keys = v.stdout.lines().find(|l| l.starts_with("PASS no-account-keys")).unwrap_or_default();
    assert!(keys.contains(": 403 AuthorizationFailed"), "{}", v.stdout);
    s.replans_clean(&p);
    s.assert_second_apply_writes_nothing(&p);

    let d = s.idlab(&["destroy", &p, "--auto-approve"]);
    assert_eq!(d.code, 0, "{}", d.render());
    assert!(custom_roles().is_empty());
    let path =
        format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{name}?api-version=2022-04-01");
    assert_eq!(s.op("GET", &path, None)["error"]["code"], "RoleDefinitionDoesNotExist");
    assert!(assignments(&format!("/subscriptions/{sub}")).iter().all(|a| !uses_role(a)));
}

/// The least-privilege plan copied into a temporary directory and applied: the cloud, the
/// directory (kept alive), the copy's path and its text.
fn least_privilege_applied() -> (Served, tempfile::TempDir, String, String) {
    let s = Served::start();
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("p.yaml");
    let original = std::fs::read_to_string(root().join("plans/storage-sas-least-privilege.yaml")).expect("plan");
    std::fs::write(&p, &original).expect("plan");
    let p = p.display().to_string();
    assert_eq!(s.idlab(&["apply", &p, "--auto-approve"]).code, 0);
    (s, dir, p, original)
}

/// The subscription's custom role definitions.
fn custom_roles(s: &Served) -> Vec<Value> {
    let path = format!(
        "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions?$filter=type%20eq%20'CustomRole'&api-version=2022-04-01",
        s.subscription()
    );
    s.op("GET", &path, None)["value"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_plan_role_changed_in_place_or_renamed_leaves_no_old_definition() {
    let (s, _dir, p, original) = least_privilege_applied();
    let custom = || custom_roles(&s);
    let first = custom()[0]["name"].clone();
    // One more action: the same definition, updated in place.
    let read = "      - Microsoft.Storage/storageAccounts/listServiceSas/action\n      - Microsoft.Storage/storageAccounts/read\n";
    let wider = original.replace("      - Microsoft.Storage/storageAccounts/listServiceSas/action\n", read);
    std::fs::write(&p, &wider).expect("plan");
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert!(a.render().contains("0 created, 1 updated"), "{}", a.render());
    assert_eq!(custom().len(), 1);
    assert_eq!(custom()[0]["name"], first);
    assert_eq!(custom()[0]["properties"]["permissions"][0]["actions"][1], "Microsoft.Storage/storageAccounts/read");
    // Another name: another definition; the old one and its assignment go.
    std::fs::write(&p, wider.replace("Storage Service SAS Issuer (idlab)", "Renamed SAS issuer")).expect("plan");
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert!(a.render().contains("2 created, 0 updated, 0 replaced, 2 deleted"), "{}", a.render());
    let now = custom();
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0]["properties"]["roleName"], "Renamed SAS issuer");
    assert_ne!(now[0]["name"], first);
    s.replans_clean(&p);
    assert_eq!(s.idlab(&["destroy", &p, "--auto-approve"]).code, 0);
    assert!(custom().is_empty());
}

#[test]
fn a_plans_last_custom_role_taken_out_of_it_is_deleted_as_an_orphan() {
    let (s, _dir, p, original) = least_privilege_applied();
    let custom = || custom_roles(&s);
    assert_eq!(custom().len(), 1);
    // The role and its assignment out of the plan (and the check that needs them): the plan
    // declares no role_definition any more, yet it still finds the one it made.
    let start = original.find("  # The least-privilege role").expect("role block");
    std::fs::write(&p, format!("{}{}", &original[..start], "verify: {}\n")).expect("plan");
    let plan = s.idlab(&["plan", &p]);
    assert_eq!(plan.code, 0, "{}", plan.render());
    assert!(plan.render().contains("0 to create, 0 to update, 0 to replace, 2 to delete"), "{}", plan.render());
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}", a.render());
    assert!(a.render().contains("2 deleted"), "{}", a.render());
    assert!(custom().is_empty(), "{:?}", custom());
    s.replans_clean(&p);
}

#[test]
fn a_custom_roles_data_actions_hold_on_the_data_lake_gen2_plane_too() {
    let lab = Lab::start();
    let c = crate::local_datalake::client(&lab);
    let (account, base) = crate::local_dfs::hns_account(&lab, "idlabrolesdfs", true);
    let sub = format!("/subscriptions/{}", lab.sub());
    let blobs = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs";
    let guid = uuid::Uuid::new_v4().to_string();
    let def = format!("{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}");
    let role =
        custom_role("lake but delete", &[], &[&format!("{blobs}/*")], &[&format!("{blobs}/delete")], &[&account]);
    assert_eq!(lab.op("PUT", &format!("{def}?api-version=2022-04-01"), Some(&role)).status, 201);
    let (client, secret, oid) = crate::local_datalake::new_principal(&lab, &[]);
    let ra = format!(
        "{account}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01",
        uuid::Uuid::new_v4()
    );
    let body =
        json!({"properties": {"roleDefinitionId": def, "principalId": oid, "principalType": "ServicePrincipal"}});
    assert_eq!(lab.op("PUT", &ra, Some(&body)).status, 201);
    let tok = crate::local_datalake::token(&lab, &client, &secret, STORAGE);
    let dfs = |m: &str, q: &str| crate::local_dfs::dfs(&lab, &c, &tok, m, &format!("{base}lake/d{q}"), &[], b"").status;
    assert_eq!(dfs("PUT", "?resource=directory"), 201);
    assert_eq!(dfs("HEAD", ""), 200);
    assert_eq!(dfs("DELETE", "?recursive=true"), 403, "notDataActions take delete away");
    // The operator's Owner role is management only: no data action, so no directory.
    let (oc, os, _) = crate::local_datalake::new_principal(&lab, &[("Owner", &sub)]);
    let owner = crate::local_datalake::token(&lab, &oc, &os, STORAGE);
    assert_eq!(crate::local_dfs::dfs(&lab, &c, &owner, "HEAD", &format!("{base}lake/d"), &[], b"").status, 403);
}
