//! PATCH as Azure does it (issue 18, item 4): `tags` and `metadata` are replaced whole (the
//! recorded identity/Update-AzUserAssignedIdentity PATCHes), and a VM's last user-assigned
//! identity goes with `identity.type` `SystemAssigned` or `None` (an empty
//! `userAssignedIdentities` is refused); a plan that drops it sends that, and converges.

use serde_json::{Value, json};

use crate::common::Served;

fn vm_plan(dir: &std::path::Path, user_assigned: bool) -> String {
    let ua = if user_assigned { "      user_assigned:\n        - ${id1}\n" } else { "" };
    let text = format!(
        r#"name: patchvm
location: eastus
resources:
  rg:
    type: resource_group
    name: patchRG
  id1:
    type: user_assigned_identity
    name: id1
    resource_group: ${{rg}}
  vm:
    type: virtual_machine
    name: patchVM
    resource_group: ${{rg}}
    image: Ubuntu2204
    admin:
      username: azureuser
      password: {{ generate: 24 }}
    identity:
      system_assigned: true
{ua}"#
    );
    let p = dir.join("vm.yaml");
    std::fs::write(&p, text).expect("plan");
    p.display().to_string()
}

fn vm(s: &Served) -> (String, Value) {
    let path = format!(
        "/subscriptions/{}/resourceGroups/patchRG/providers/Microsoft.Compute/virtualMachines/patchVM",
        s.subscription()
    );
    let body = s.op("GET", &format!("{path}?api-version=2025-04-01"), None);
    (path, body)
}

#[test]
fn a_plan_dropping_the_last_user_assigned_identity_converges() {
    let s = Served::start();
    let dir = tempfile::tempdir().expect("tmp");
    let with = vm_plan(dir.path(), true);
    assert_eq!(s.idlab(&["apply", &with, "--auto-approve"]).code, 0);
    let (_, before) = vm(&s);
    assert_eq!(before["identity"]["type"], "SystemAssigned, UserAssigned");
    let system = before["identity"]["principalId"].clone();

    let without = vm_plan(dir.path(), false);
    let r = s.idlab(&["plan", &without, "--format", "json"]);
    let plan: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|_| panic!("{}", r.render()));
    assert_eq!(crate::common::changed_fields(&plan), [("vm".to_string(), vec!["identity/type".to_string()])], "{plan}");
    s.op("DELETE", "/_idlab/requests", None);
    let a = s.idlab(&["apply", &without, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}", a.render());
    // One PATCH of the VM, accepted.
    let patches: Vec<Value> = s
        .writes()
        .into_iter()
        .filter(|w| w["method"] == "PATCH" && w["path"].as_str().is_some_and(|p| p.contains("/virtualMachines/")))
        .collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(patches[0]["status"], 200, "{patches:?}");
    let (_, after) = vm(&s);
    assert_eq!(after["identity"]["type"], "SystemAssigned", "{after}");
    assert!(after["identity"].get("userAssignedIdentities").is_none(), "{after}");
    // The system identity is the same principal.
    assert_eq!(after["identity"]["principalId"], system);
    s.replans_clean(&without);
    // The PATCH idlab sent (and the answer) follow the Compute spec.
    let v = crate::specs::violations_of(&s);
    assert!(v.is_empty(), "{v:#?}");
}

#[test]
fn identity_patches_as_azure_takes_them() {
    let s = Served::start();
    let dir = tempfile::tempdir().expect("tmp");
    let with = vm_plan(dir.path(), true);
    assert_eq!(s.idlab(&["apply", &with, "--auto-approve"]).code, 0);
    let (path, before) = vm(&s);
    let id1 = before["identity"]["userAssignedIdentities"].as_object().and_then(|m| m.keys().next().cloned());
    let id1 = id1.expect("one user-assigned identity");
    let patch = |body: Value| s.op("PATCH", &format!("{path}?api-version=2025-04-01"), Some(body));
    // Removing the last one by `null` while the type keeps UserAssigned leaves an empty set:
    // refused.
    let r = patch(
        json!({ "identity": { "type": "SystemAssigned, UserAssigned", "userAssignedIdentities": { &id1: null } } }),
    );
    assert_eq!(r["error"]["code"], "InvalidIdentityValues", "{r}");
    // `None` takes every identity away.
    let r = patch(json!({ "identity": { "type": "None" } }));
    assert_eq!(r["identity"]["type"], "None", "{r}");
    assert!(r["identity"].get("userAssignedIdentities").is_none(), "{r}");
    assert!(r["identity"].get("principalId").is_none(), "{r}");
    // And back, with the identity listed.
    let r = patch(json!({ "identity": { "type": "UserAssigned", "userAssignedIdentities": { &id1: {} } } }));
    assert_eq!(r["identity"]["type"], "UserAssigned", "{r}");
}

#[test]
fn patch_replaces_tags_and_metadata_whole() {
    let s = Served::start();
    let sub = s.subscription();
    let rg = format!("/subscriptions/{sub}/resourceGroups/patchTags");
    s.op("PUT", &format!("{rg}?api-version=2024-11-01"), Some(json!({ "location": "eastus" })));
    let uami = format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/tagged?api-version=2024-11-30");
    s.op("PUT", &uami, Some(json!({ "location": "eastus", "tags": { "key01": "value01", "key02": "value02" } })));
    // identity/Update-AzUserAssignedIdentity: PATCH {"tags":{"key03":"value03"}} answers only key03.
    let r = s.op("PATCH", &uami, Some(json!({ "tags": { "key03": "value03" } })));
    assert_eq!(r["tags"], json!({ "key03": "value03" }), "{r}");
    assert_eq!(s.op("GET", &uami, None)["tags"], json!({ "key03": "value03" }));

    let account = format!("{rg}/providers/Microsoft.Storage/storageAccounts/idlabpatchmeta");
    let put = s.op(
        "PUT",
        &format!("{account}?api-version=2025-06-01"),
        Some(json!({ "location": "eastus", "kind": "StorageV2", "sku": { "name": "Standard_LRS" } })),
    );
    assert!(put.get("error").is_none(), "{put}");
    let container = format!("{account}/blobServices/default/containers/meta?api-version=2025-06-01");
    s.op("PUT", &container, Some(json!({ "properties": { "metadata": { "a": "1", "b": "2" } } })));
    let r = s.op("PATCH", &container, Some(json!({ "properties": { "metadata": { "c": "3" } } })));
    assert_eq!(r["properties"]["metadata"], json!({ "c": "3" }), "{r}");
    assert_eq!(s.op("GET", &container, None)["properties"]["metadata"], json!({ "c": "3" }));
}
