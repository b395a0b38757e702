//! Contract tests: the request examples of `tests/fixtures/arm-specs/` for every type the local
//! cloud serves, replayed over HTTPS; the status must be one the example lists, and every
//! key of the example response (recursively) must be present in ours with the same JSON
//! type. Keys an example shows only because of inputs or features outside this contract are
//! listed, with the reason, in `ABSENT_OK`. A test fails when a fixture of a served type is
//! not used.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::root;
use crate::lab::{Lab, Resp};

/// Example files of the types the local cloud serves (by prefix).
const SERVED_PREFIXES: &[&str] =
    &["resources_", "msi_", "authorization_", "compute_", "network_", "storage_", "keyvault_", "sql_"];

/// Keys the examples show that this contract does not reproduce, and why.
const ABSENT_OK: &[(&str, &str, &str)] = &[
    ("compute_VirtualMachines_Get.json", "/resources", "VM extensions are not served by the local cloud"),
    ("compute_VirtualMachines_Get.json", "/managedBy", "VMs here are never managed by another resource"),
    (
        "sql_Servers_CreateOrUpdate.json",
        "/properties/privateEndpointConnections[]",
        "private endpoints are not served: the list is empty, as on a server that has none",
    ),
    ("keyvault_Vaults_CreateOrUpdate.json", "/systemData", "the local cloud keeps no systemData for any type"),
    (
        "keyvault_Vaults_CreateOrUpdate.json",
        "/properties/networkAcls",
        "network rules show only when set; the example shows rules its request did not send",
    ),
    (
        "keyvault_Vaults_CreateOrUpdate.json",
        "/properties/privateEndpointConnections",
        "private endpoints are not served by the local cloud",
    ),
    ("keyvault_Vaults_CreateOrUpdate.json", "/properties/hsmPoolResourceId", "HSM pools are not served"),
];

fn fixture(name: &str) -> Value {
    let path = root().join("tests/fixtures/arm-specs").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture JSON")
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Differences: example keys missing from ours, or present with another type.
fn shape_diff(example: &Value, ours: &Value, path: &str, out: &mut Vec<String>) {
    match (example, ours) {
        (Value::Object(e), Value::Object(o)) => {
            for (k, ev) in e {
                let p = format!("{path}/{k}");
                match o.get(k) {
                    None => out.push(format!("missing {p}")),
                    Some(ov) => shape_diff(ev, ov, &p, out),
                }
            }
        }
        (Value::Array(e), Value::Array(o)) => {
            if let Some(first) = e.first() {
                match o.first() {
                    None => out.push(format!("empty array {path}[] (example has items)")),
                    Some(of) => shape_diff(first, of, &format!("{path}[]"), out),
                }
            }
        }
        (Value::Null, _) => {}
        (e, o) if type_of(e) != type_of(o) => {
            out.push(format!("type of {path}: example {} vs {}", type_of(e), type_of(o)))
        }
        _ => {}
    }
}

struct Check<'a> {
    lab: &'a Lab,
    used: BTreeSet<&'static str>,
    failures: Vec<String>,
}

impl Check<'_> {
    /// Compare a response with the fixture's example for the same status.
    fn compare(&mut self, file: &'static str, resp: &Resp) {
        self.used.insert(file);
        let fx = fixture(file);
        let statuses: Vec<String> =
            fx["responses"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        let status = resp.status.to_string();
        if !statuses.contains(&status) {
            self.failures.push(format!("{file}: status {status} not among the example's {statuses:?}: {}", resp.body));
            return;
        }
        let example = &fx["responses"][&status];
        if let Some(body) = example.get("body") {
            // Ids used as keys (user-assigned identity maps) name this cloud's subscription.
            let mut text = body.to_string();
            for s in ["{subscription-id}", "subid", "a925f2f7-5c63-4b7b-8799-25a5f97bc3b2"] {
                text = text.replace(s, &self.lab.sub());
            }
            let body: Value = serde_json::from_str(&text).expect("example JSON");
            let mut diffs = Vec::new();
            shape_diff(&body, &resp.body, "", &mut diffs);
            diffs.retain(|d| {
                !ABSENT_OK.iter().any(|(f, k, _)| {
                    *f == file && (d == &format!("missing {k}") || d.starts_with(&format!("empty array {k} ")))
                })
            });
            for d in diffs {
                self.failures.push(format!("{file} ({status}): {d}"));
            }
        }
        if let Some(h) = example.get("headers").and_then(Value::as_object) {
            for k in h.keys() {
                if resp.header(&k.to_ascii_lowercase()).is_none() {
                    self.failures.push(format!("{file} ({status}): header {k} missing"));
                }
            }
        }
    }
}

/// The request body of a fixture with example ids pointing at this cloud.
fn body_of(file: &str, lab: &Lab, rename: &[(&str, &str)]) -> Value {
    let fx = fixture(file);
    let params = fx["parameters"].as_object().cloned().unwrap_or_default();
    let body = params.values().find(|v| v.is_object()).cloned().unwrap_or(json!({}));
    let mut text = body.to_string();
    for s in ["{subscription-id}", "subid", "a925f2f7-5c63-4b7b-8799-25a5f97bc3b2"] {
        text = text.replace(s, &lab.sub());
    }
    for (a, b) in rename {
        text = text.replace(a, b);
    }
    serde_json::from_str(&text).expect("rewritten body")
}

#[test]
fn arm_specs_examples_round_trip() {
    let lab = Lab::start();
    let mut c = Check { lab: &lab, used: BTreeSet::new(), failures: Vec::new() };
    let sub = lab.sub();
    let rg = |n: &str| lab.rg_path(n);

    // Resource groups.
    let b = body_of("resources_ResourceGroups_CreateOrUpdate.json", &lab, &[]);
    let r = lab.op("PUT", &format!("{}?api-version=2024-11-01", rg("my-resource-group")), Some(&b));
    assert_eq!(r.status, 201);
    c.compare("resources_ResourceGroups_CreateOrUpdate.json", &r);
    let r = lab.op("PUT", &format!("{}?api-version=2024-11-01", rg("my-resource-group")), Some(&b));
    c.compare("resources_ResourceGroups_CreateOrUpdate.json", &r);
    let r = lab.op(
        "DELETE",
        &format!(
            "{}?forceDeletionTypes=Microsoft.Compute/virtualMachines&api-version=2024-11-01",
            rg("my-resource-group")
        ),
        None,
    );
    c.compare("resources_ResourceGroups_Delete.json", &r);
    let done = lab.op("GET", &r.header("location").unwrap_or_default(), None);
    c.compare("resources_ResourceGroups_Delete.json", &done);

    // User-assigned identities.
    for g in ["rgName", "rg1", "myResourceGroup", "testrg"] {
        assert!(
            lab.op("PUT", &format!("{}?api-version=2024-11-01", rg(g)), Some(&json!({"location": "eastus"}))).status
                < 300
        );
    }
    let id = format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/resourceName?api-version=2024-11-30",
        rg("rgName")
    );
    let b = body_of("msi_userAssignedIdentities_CreateOrUpdate.json", &lab, &[]);
    let r = lab.op("PUT", &id, Some(&b));
    assert_eq!(r.status, 201);
    c.compare("msi_userAssignedIdentities_CreateOrUpdate.json", &r);
    c.compare("msi_userAssignedIdentities_CreateOrUpdate.json", &lab.op("PUT", &id, Some(&b)));
    c.compare("msi_userAssignedIdentities_Get.json", &lab.op("GET", &id, None));
    let patched = lab.op("PATCH", &id, Some(&body_of("msi_userAssignedIdentities_Update.json", &lab, &[])));
    assert_eq!(patched.body["properties"]["isolationScope"], "Regional");
    c.compare("msi_userAssignedIdentities_Update.json", &patched);
    c.compare("msi_userAssignedIdentities_Delete.json", &lab.op("DELETE", &id, None));
    c.compare("msi_userAssignedIdentities_Delete.json", &lab.op("DELETE", &id, None));

    // Role assignments and definitions. The examples' role GUID is not a built-in role, so
    // Reader stands in for it.
    let reader = "acdd72a7-3385-48ef-bd42-f606fba81ae7";
    let swap = [("0b5fe924-9a61-425c-96af-cfe6e287ca2d", reader)];
    let b = body_of("authorization_RoleAssignments_Create.json", &lab, &swap);
    let ra = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/05c5a614-a7d6-4502-b150-c2fb455033ff?api-version=2022-04-01",
        rg("testrg")
    );
    c.compare("authorization_RoleAssignments_Create.json", &lab.op("PUT", &ra, Some(&b)));
    c.compare("authorization_RoleAssignments_Create.json", &lab.op("PUT", &ra, Some(&b)));
    let sub_ra = format!(
        "/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments/b0f43c54-e787-4862-89b1-a653fa9cf747"
    );
    assert_eq!(lab.op("PUT", &format!("{sub_ra}?api-version=2022-04-01"), Some(&b)).status, 201);
    c.compare(
        "authorization_RoleAssignments_Get.json",
        &lab.op("GET", &format!("{sub_ra}?api-version=2020-10-01-preview"), None),
    );
    c.compare(
        "authorization_RoleAssignments_ListForScope.json",
        &lab.op(
            "GET",
            &format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"),
            None,
        ),
    );
    c.compare(
        "authorization_RoleAssignments_Delete.json",
        &lab.op("DELETE", &format!("{sub_ra}?api-version=2022-04-01"), None),
    );
    c.compare(
        "authorization_RoleAssignments_Delete.json",
        &lab.op("DELETE", &format!("{sub_ra}?api-version=2022-04-01"), None),
    );
    // A role with data actions, as the example has.
    let blob_reader = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1";
    let def = lab.op("GET", &format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{blob_reader}?api-version=2022-04-01"), None);
    assert_eq!(def.body["properties"]["roleName"], "Storage Blob Data Reader");
    c.compare("authorization_RoleDefinitions_GetById.json", &def);

    // Networking.
    let net = |t: &str, n: &str| format!("{}/providers/Microsoft.Network/{t}/{n}?api-version=2024-07-01", rg("rg1"));
    let b = body_of("network_VirtualNetworks_CreateOrUpdate.json", &lab, &[]);
    c.compare(
        "network_VirtualNetworks_CreateOrUpdate.json",
        &lab.op("PUT", &net("virtualNetworks", "test-vnet"), Some(&b)),
    );
    c.compare(
        "network_VirtualNetworks_CreateOrUpdate.json",
        &lab.op("PUT", &net("virtualNetworks", "test-vnet"), Some(&b)),
    );
    let vnet2 = json!({"location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.1.0.0/16"]}, "subnets": [{"name": "default", "properties": {"addressPrefix": "10.1.0.0/24"}}]}});
    assert_eq!(lab.op("PUT", &net("virtualNetworks", "rg1-vnet"), Some(&vnet2)).status, 201);
    let pip = body_of("network_PublicIPAddresses_CreateOrUpdate.json", &lab, &[]);
    let first = lab.op("PUT", &net("publicIPAddresses", "test-ip"), Some(&pip));
    assert_eq!(first.status, 201);
    let b = body_of("network_NetworkInterfaces_CreateOrUpdate.json", &lab, &[]);
    c.compare(
        "network_NetworkInterfaces_CreateOrUpdate.json",
        &lab.op("PUT", &net("networkInterfaces", "test-nic"), Some(&b)),
    );
    c.compare(
        "network_NetworkInterfaces_CreateOrUpdate.json",
        &lab.op("PUT", &net("networkInterfaces", "test-nic"), Some(&b)),
    );
    // The address reports the NIC configuration using it (the example shows one).
    c.compare(
        "network_PublicIPAddresses_CreateOrUpdate.json",
        &lab.op("PUT", &net("publicIPAddresses", "test-ip"), Some(&pip)),
    );

    // Virtual machines.
    let nic = lab.network("myResourceGroup", "contractnic");
    let nic_name = nic.rsplit('/').next().unwrap_or_default().to_string();
    let ua = lab.op(
        "PUT",
        &format!(
            "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/myIdentity?api-version=2024-11-30",
            rg("myResourceGroup")
        ),
        Some(&json!({"location": "westus"})),
    );
    assert_eq!(ua.status, 201);
    let vm = |n: &str| {
        format!("{}/providers/Microsoft.Compute/virtualMachines/{n}?api-version=2025-04-01", rg("myResourceGroup"))
    };
    let names = [("{existing-nic-name}", nic_name.as_str()), ("{myNIC}", nic_name.as_str())];
    let b = body_of("compute_VirtualMachines_CreateOrUpdate.json", &lab, &names);
    c.compare("compute_VirtualMachines_CreateOrUpdate.json", &lab.op("PUT", &vm("myVM"), Some(&b)));
    c.compare("compute_VirtualMachines_CreateOrUpdate.json", &lab.op("PUT", &vm("myVM"), Some(&b)));
    c.compare(
        "compute_VirtualMachines_Delete.json",
        &lab.op("DELETE", &format!("{}&forceDeletion=true", vm("myVM")), None),
    );
    c.compare("compute_VirtualMachines_Delete.json", &lab.op("DELETE", &vm("myVM"), None));
    let b = body_of("compute_VirtualMachines_CreateOrUpdate_UserAssignedIdentity.json", &lab, &names);
    c.compare(
        "compute_VirtualMachines_CreateOrUpdate_UserAssignedIdentity.json",
        &lab.op("PUT", &vm("myVM"), Some(&b)),
    );
    c.compare(
        "compute_VirtualMachines_CreateOrUpdate_UserAssignedIdentity.json",
        &lab.op("PUT", &vm("myVM"), Some(&b)),
    );
    // A VM's delete is accepted (202) with both operation headers, as Azure's is
    // (compute/TestVMForceDelete.json).
    let del = lab.op("DELETE", &vm("myVM"), None);
    assert_eq!(del.status, 202, "{}", del.body);
    assert!(del.header("azure-asyncoperation").is_some() && del.header("location").is_some());
    // GET: create the VM from the writable fields of the GET example, then read it.
    let get_fx = fixture("compute_VirtualMachines_Get.json");
    let mut text =
        get_fx["responses"]["200"]["body"].to_string().replace("{subscription-id}", &sub).replace("{myNIC}", &nic_name);
    text = text.replace("\"West US\"", "\"westus\"");
    let mut body: Value = serde_json::from_str(&text).expect("json");
    for k in ["id", "name", "type", "etag", "resources", "managedBy"] {
        body.as_object_mut().map(|o| o.remove(k));
    }
    let props = body["properties"].as_object_mut().expect("properties");
    for k in ["vmId", "provisioningState", "timeCreated"] {
        props.remove(k);
    }
    // The example attaches `myDataDisk1` (createOption Attach): Azure needs it to exist.
    let disk1 =
        format!("{}/providers/Microsoft.Compute/disks/myDataDisk1?api-version=2024-03-02", rg("myResourceGroup"));
    let made =
        json!({"location": "westus", "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 100}});
    assert!(lab.op("PUT", &disk1, Some(&made)).status < 300);
    assert!(lab.op("PUT", &vm("myVM"), Some(&body)).status < 300);
    c.compare("compute_VirtualMachines_Get.json", &lab.op("GET", &format!("{}&$expand=userData", vm("myVM")), None));

    // Storage.
    let st = |n: &str| format!("{}/providers/Microsoft.Storage/storageAccounts/{n}", rg("res9101"));
    assert!(
        lab.op("PUT", &format!("{}?api-version=2024-11-01", rg("res9101")), Some(&json!({"location": "eastus"})))
            .status
            < 300
    );
    let check = lab.op(
        "POST",
        &format!("/subscriptions/{sub}/providers/Microsoft.Storage/checkNameAvailability?api-version=2025-06-01"),
        Some(&body_of("storage_StorageAccounts_CheckNameAvailability.json", &lab, &[])),
    );
    c.compare("storage_StorageAccounts_CheckNameAvailability.json", &check);
    let b = body_of("storage_StorageAccounts_Create.json", &lab, &[]);
    let created = lab.op("PUT", &format!("{}?api-version=2025-06-01", st("sto4445")), Some(&b));
    c.compare("storage_StorageAccounts_Create.json", &created);
    let done = lab.op("GET", &created.header("location").unwrap_or_default(), None);
    c.compare("storage_StorageAccounts_Create.json", &done);
    // The GetProperties example shows an account with resource access rules: configure them first.
    let acls =
        fixture("storage_StorageAccounts_GetProperties.json")["responses"]["200"]["body"]["properties"]["networkAcls"]
            .clone();
    let patched = lab.op(
        "PATCH",
        &format!("{}?api-version=2025-06-01", st("sto4445")),
        Some(&json!({"properties": {"networkAcls": acls}})),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    c.compare(
        "storage_StorageAccounts_GetProperties.json",
        &lab.op("GET", &format!("{}?api-version=2025-06-01&$expand=geoReplicationStats", st("sto4445")), None),
    );
    let keys = lab.op("POST", &format!("{}/listKeys?api-version=2025-06-01", st("sto4445")), None);
    c.compare("storage_StorageAccounts_ListKeys.json", &keys);
    let sas = lab.op(
        "POST",
        &format!("{}/ListServiceSas?api-version=2025-06-01", st("sto4445")),
        Some(&body_of("storage_StorageAccounts_ListServiceSAS.json", &lab, &[("sto1299", "sto4445")])),
    );
    c.compare("storage_StorageAccounts_ListServiceSAS.json", &sas);
    let container = format!("{}/blobServices/default/containers/container6185?api-version=2025-06-01", st("sto4445"));
    let b = body_of("storage_BlobContainers_Create.json", &lab, &[]);
    c.compare("storage_BlobContainers_Create.json", &lab.op("PUT", &container, Some(&b)));
    c.compare("storage_BlobContainers_Create.json", &lab.op("PUT", &container, Some(&b)));
    c.compare(
        "storage_StorageAccounts_Delete.json",
        &lab.op("DELETE", &format!("{}?api-version=2025-06-01", st("sto4445")), None),
    );
    c.compare(
        "storage_StorageAccounts_Delete.json",
        &lab.op("DELETE", &format!("{}?api-version=2025-06-01", st("sto4445")), None),
    );
    assert_eq!(lab.op("GET", &container, None).status, 404, "the container went with its account");

    // Azure SQL: a server (Entra-only, and a SQL login whose password never comes back), its
    // Entra admin and a database; every write is a 202 polled to its end.
    let sql = |rest: &str| format!("{}/providers/Microsoft.Sql/{rest}", rg("sqlcrudtest-7398"));
    assert!(
        lab.op(
            "PUT",
            &format!("{}?api-version=2024-11-01", rg("sqlcrudtest-7398")),
            Some(&json!({"location": "eastus"}))
        )
        .status
            < 300
    );
    let check = |name: &str| {
        lab.op(
            "POST",
            &format!("/subscriptions/{sub}/providers/Microsoft.Sql/checkNameAvailability?api-version=2023-08-01"),
            Some(&json!({"name": name, "type": "Microsoft.Sql/servers"})),
        )
    };
    let free = check("sqlcrudtest-4645");
    assert_eq!((free.status, free.body["available"].as_bool()), (200, Some(true)), "{}", free.body);
    let b = body_of("sql_Servers_CreateOrUpdate.json", &lab, &[]);
    let server = sql("servers/sqlcrudtest-4645?api-version=2023-08-01");
    let created = lab.op("PUT", &server, Some(&b));
    assert_eq!(created.status, 202, "{}", created.body);
    assert!(created.header("retry-after").is_some() && created.header("azure-asyncoperation").is_some());
    c.compare("sql_Servers_CreateOrUpdate.json", &created);
    let status = lab.op("GET", &created.header("azure-asyncoperation").unwrap_or_default(), None);
    assert_eq!(status.body["status"], "Succeeded", "{}", status.body);
    let done = lab.op("GET", &created.header("location").unwrap_or_default(), None);
    c.compare("sql_Servers_CreateOrUpdate.json", &done);
    let got = lab.op("GET", &server, None);
    c.compare("sql_Servers_CreateOrUpdate.json", &got);
    assert!(!got.body.to_string().contains("PLACEHOLDER"), "the password came back: {}", got.body);
    assert_eq!(got.body["properties"]["fullyQualifiedDomainName"], "sqlcrudtest-4645.database.windows.net");
    let taken = check("sqlcrudtest-4645");
    assert_eq!(
        (taken.body["available"].as_bool(), taken.body["reason"].as_str()),
        (Some(false), Some("AlreadyExists"))
    );
    let invalid = check("SERVER1");
    assert_eq!(invalid.body["reason"], "Invalid", "{}", invalid.body);
    // The administrator example's server, with a SQL login.
    let admin_server = sql("servers/sqlcrudtest-6440?api-version=2023-08-01");
    let r = lab.op(
        "PUT",
        &admin_server,
        Some(&json!({"location": "eastus", "properties": {"administratorLogin": "dba", "administratorLoginPassword": "Not-A-Real-Secret-42"}})),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let admin = sql("servers/sqlcrudtest-6440/administrators/ActiveDirectory?api-version=2023-08-01");
    let b = body_of("sql_ServerAzureADAdministrators_CreateOrUpdate.json", &lab, &[]);
    let put = lab.op("PUT", &admin, Some(&b));
    c.compare("sql_ServerAzureADAdministrators_CreateOrUpdate.json", &put);
    c.compare("sql_ServerAzureADAdministrators_CreateOrUpdate.json", &lab.op("GET", &admin, None));
    assert_eq!(lab.op("GET", &admin_server, None).body["properties"]["administrators"]["sid"], b["properties"]["sid"]);
    // Databases on the server.
    let db = sql("servers/sqlcrudtest-4645/databases/testdb?api-version=2023-08-01");
    let b = body_of("sql_Databases_CreateOrUpdate.json", &lab, &[]);
    let put = lab.op("PUT", &db, Some(&b));
    c.compare("sql_Databases_CreateOrUpdate.json", &put);
    c.compare("sql_Databases_CreateOrUpdate.json", &lab.op("GET", &put.header("location").unwrap_or_default(), None));
    c.compare("sql_Databases_CreateOrUpdate.json", &lab.op("GET", &db, None));
    // Deleting the server removes its databases.
    assert_eq!(lab.op("DELETE", &server, None).status, 202);
    assert_eq!(lab.op("GET", &db, None).status, 404, "the database went with its server");
    // Key Vault: the vault through ARM, then the secrets data plane on the vault's own port.
    let zero = "00000000-0000-0000-0000-000000000000";
    let tenant = lab.cloud.info.tenant_id.clone();
    let kvg = rg("sample-resource-group");
    assert!(lab.op("PUT", &format!("{kvg}?api-version=2024-11-01"), Some(&json!({"location": "westus"}))).status < 300);
    let check = lab.op(
        "POST",
        &format!("/subscriptions/{sub}/providers/Microsoft.KeyVault/checkNameAvailability?api-version=2024-11-01"),
        Some(&body_of("keyvault_Vaults_CheckNameAvailability.json", &lab, &[])),
    );
    c.compare("keyvault_Vaults_CheckNameAvailability.json", &check);
    let vault = format!("{kvg}/providers/Microsoft.KeyVault/vaults/sample-vault");
    let mut b = body_of("keyvault_Vaults_CreateOrUpdate.json", &lab, &[(zero, &tenant)]);
    // The operator may use the data plane (the example's policy names the zero object id).
    b["properties"]["accessPolicies"][0]["objectId"] = json!(lab.cloud.info.operator_object_id);
    let created = lab.op("PUT", &format!("{vault}?api-version=2024-11-01"), Some(&b));
    // Key Vault answers a create 200 (`TestDeleteVault.json`; the spec allows 200 and 201).
    assert_eq!(created.status, 200, "{}", created.body);
    c.compare("keyvault_Vaults_CreateOrUpdate.json", &created);
    c.compare(
        "keyvault_Vaults_CreateOrUpdate.json",
        &lab.op("PUT", &format!("{vault}?api-version=2024-11-01"), Some(&b)),
    );
    let add = body_of("keyvault_Vaults_UpdateAccessPolicy_Add.json", &lab, &[(zero, &tenant)]);
    c.compare(
        "keyvault_Vaults_UpdateAccessPolicy_Add.json",
        &lab.op("PUT", &format!("{vault}/accessPolicies/add?api-version=2024-11-01"), Some(&add)),
    );
    let uri = created.body["properties"]["vaultUri"].as_str().unwrap_or_default().to_string();
    let kv_token = lab.operator_token_for("https://vault.azure.net/.default");
    let set = lab.send(
        Some(&kv_token),
        "PUT",
        &format!("{uri}secrets/crpsecret?api-version=7.5"),
        Some(&body_of("keyvault_dataplane_SetSecret.json", &lab, &[])),
    );
    c.compare("keyvault_dataplane_SetSecret.json", &set);
    let id = set.body["id"].as_str().unwrap_or_default().to_string();
    c.compare(
        "keyvault_dataplane_GetSecret.json",
        &lab.send(Some(&kv_token), "GET", &format!("{id}?api-version=7.5"), None),
    );
    c.compare("keyvault_Vaults_Delete.json", &lab.op("DELETE", &format!("{vault}?api-version=2024-11-01"), None));
    c.compare("keyvault_Vaults_Delete.json", &lab.op("DELETE", &format!("{vault}?api-version=2024-11-01"), None));
    let deleted =
        format!("/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/westus/deletedVaults/sample-vault");
    c.compare("keyvault_Vaults_GetDeleted.json", &lab.op("GET", &format!("{deleted}?api-version=2024-11-01"), None));
    c.compare(
        "keyvault_Vaults_PurgeDeleted.json",
        &lab.op("POST", &format!("{deleted}/purge?api-version=2024-11-01"), None),
    );
    assert_eq!(lab.op("GET", &format!("{deleted}?api-version=2024-11-01"), None).status, 404, "purged");

    // Every example of a served type was used.
    let dir = root().join("tests/fixtures/arm-specs");
    let mut unused = Vec::new();
    for e in std::fs::read_dir(&dir).expect("arm-specs").filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if SERVED_PREFIXES.iter().any(|p| name.starts_with(p)) && !c.used.contains(name.as_str()) {
            unused.push(name);
        }
    }
    assert!(unused.is_empty(), "fixtures of served types not used: {unused:?}");
    assert!(c.failures.is_empty(), "contract differences:\n{}", c.failures.join("\n"));
}

/// The Data Lake Store Gen1 examples (`datalakestore_*`): the account's ARM operations, then
/// the WebHDFS operations against the account's own endpoint.
#[test]
fn datalakestore_examples_round_trip() {
    use crate::local_datalake::{DATALAKE_SCOPE, client, hdfs, new_principal, token};
    let lab = Lab::start();
    let mut c = Check { lab: &lab, used: BTreeSet::new(), failures: Vec::new() };
    let rg = lab.rg_path("contosorg");
    assert!(lab.op("PUT", &format!("{rg}?api-version=2024-11-01"), Some(&json!({"location": "eastus2"}))).status < 300);
    let id = format!("{rg}/providers/Microsoft.DataLakeStore/accounts/contosoadla?api-version=2016-11-01");
    let b = body_of("datalakestore_Accounts_Create.json", &lab, &[]);
    let created = lab.op("PUT", &id, Some(&b));
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(created.header("azure-asyncoperation").is_some());
    // While it provisions, the create's answer has no state and no endpoint yet, as the
    // recorded Azure answer shows (`TestAdlsAccount.json`; the example fills them in): the
    // rest of the example's shape holds.
    assert_eq!(
        (&created.body["properties"]["state"], &created.body["properties"]["endpoint"]),
        (&Value::Null, &Value::Null)
    );
    let mut shown = created.body.clone();
    shown["properties"]["state"] = json!("Active");
    shown["properties"]["endpoint"] = json!("provisioning");
    c.compare(
        "datalakestore_Accounts_Create.json",
        &Resp { status: created.status, headers: created.headers.clone(), body: shown },
    );
    c.compare("datalakestore_Accounts_Create.json", &lab.op("PUT", &id, Some(&b)));
    let got = lab.op("GET", &id, None);
    assert!(got.body.get("_idlab").is_none(), "internal fields stay inside");
    c.compare("datalakestore_Accounts_Get.json", &got);

    // WebHDFS, as a principal the owner of `/` granted rwx.
    let base = format!("https://{}/webhdfs/v1", got.body["properties"]["endpoint"].as_str().unwrap_or_default());
    let http = client(&lab);
    let owner = {
        let secret = lab.cloud.operator_secret().expect("secret");
        token(&lab, &lab.cloud.info.operator_client_id.clone(), &secret, DATALAKE_SCOPE)
    };
    let (cl, secret, oid) = new_principal(&lab, &[]);
    let user = token(&lab, &cl, &secret, DATALAKE_SCOPE);
    let as_resp = |h: crate::local_datalake::Hdfs| {
        let body = serde_json::from_slice(&h.bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&h.bytes).into()));
        Resp { status: h.status, headers: h.headers, body }
    };
    let fx = fixture("datalakestore_webhdfs_ModifyAclEntries.json");
    let spec =
        fx["parameters"]["aclspec"].as_str().unwrap_or_default().replace("2666084e-edd4-4276-9a8c-d1024a5e3d94", &oid);
    let r = hdfs(&lab, &http, &owner, "PUT", &format!("{base}/?op=MODIFYACLENTRIES&aclspec={spec}"), b"");
    c.compare("datalakestore_webhdfs_ModifyAclEntries.json", &as_resp(r));
    let r = hdfs(&lab, &http, &user, "PUT", &format!("{base}/test_file_path?op=MKDIRS&permission=770"), b"");
    c.compare("datalakestore_webhdfs_Mkdirs.json", &as_resp(r));
    let r = hdfs(
        &lab,
        &http,
        &user,
        "PUT",
        &format!("{base}/test_file_path/f?op=CREATE&write=true&overwrite=false"),
        b"bytes",
    );
    c.compare("datalakestore_webhdfs_Create.json", &as_resp(r));
    let r =
        hdfs(&lab, &http, &user, "GET", &format!("{base}/test_file_path/f?op=OPEN&read=true&offset=1&length=3"), b"");
    assert_eq!(r.bytes, b"yte");
    c.compare("datalakestore_webhdfs_Open.json", &as_resp(r));
    let r = hdfs(&lab, &http, &user, "GET", &format!("{base}/test_file_path?op=LISTSTATUS&listSize=1"), b"");
    c.compare("datalakestore_webhdfs_ListFileStatus.json", &as_resp(r));
    let full = format!("user::rwx,group::r-x,other::--x,user:{oid}:rwx");
    let r = hdfs(&lab, &http, &user, "PUT", &format!("{base}/test_file_path?op=SETACL&aclspec={full}"), b"");
    c.compare("datalakestore_webhdfs_SetAcl.json", &as_resp(r));
    // GetAclStatus: the example has no `body` wrapper and a numeric `permission` (README);
    // on the wire the body is `{"AclStatus": …}` with the permission as octal text.
    let r = as_resp(hdfs(&lab, &http, &user, "GET", &format!("{base}/test_file_path?op=GETACLSTATUS"), b""));
    c.used.insert("datalakestore_webhdfs_GetAclStatus.json");
    let mut example = fixture("datalakestore_webhdfs_GetAclStatus.json")["responses"]["200"].clone();
    example["AclStatus"]["permission"] = json!("770");
    let mut diffs = Vec::new();
    shape_diff(&example, &r.body, "", &mut diffs);
    assert_eq!(r.status, 200);
    // The mask is recomputed as the union of the group class (r-x | rwx).
    assert_eq!(r.body["AclStatus"]["permission"], "771", "the SETACL above");
    c.failures.extend(diffs.into_iter().map(|d| format!("datalakestore_webhdfs_GetAclStatus.json: {d}")));

    c.compare("datalakestore_Accounts_Delete.json", &lab.op("DELETE", &id, None));
    c.compare("datalakestore_Accounts_Delete.json", &lab.op("DELETE", &id, None));
    let dir = root().join("tests/fixtures/arm-specs");
    let unused: Vec<String> = std::fs::read_dir(&dir)
        .expect("arm-specs")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("datalakestore_") && !c.used.contains(n.as_str()))
        .collect();
    assert!(unused.is_empty(), "datalakestore fixtures not used: {unused:?}");
    assert!(c.failures.is_empty(), "contract differences:\n{}", c.failures.join("\n"));
}
