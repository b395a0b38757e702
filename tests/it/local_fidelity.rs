//! The local cloud where a recording of Azure overrides a spec (issue 18: a recording wins
//! over a spec): NIC fields Azure answered at older api-versions, a resource group's delete
//! while it runs, and a storage account's blob service.

use serde_json::{Value, json};

use crate::lab::Lab;

/// At the api-versions the recordings show (2018-04-01 in TestNetworkInterfaceCRUD.json,
/// 2017-10-01 in TestSimpleNewVmWithSystemAssignedAndUserAssignedIdentity.json) a NIC answers
/// `virtualNetworkTapProvisioningState: "NotProvisioned"` and `isInUseWithService: false` on
/// each IP configuration, in a GET and in a list; at 2024-07-01, whose spec declares neither,
/// it does not.
#[test]
fn a_nic_carries_the_recorded_fields_at_the_recorded_api_versions_only() {
    let lab = Lab::start();
    let nic = lab.network("fidelity-nic", "nic1");
    let tap = "/properties/virtualNetworkTapProvisioningState";
    let in_use = "/properties/ipConfigurations/0/properties/isInUseWithService";
    for v in ["2018-04-01", "2017-10-01"] {
        let r = lab.op("GET", &format!("{nic}?api-version={v}"), None);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body.pointer(tap).and_then(Value::as_str), Some("NotProvisioned"), "{v}: {}", r.body);
        assert_eq!(r.body.pointer(in_use).and_then(Value::as_bool), Some(false), "{v}: {}", r.body);
    }
    let list =
        format!("/subscriptions/{}/providers/Microsoft.Network/networkInterfaces?api-version=2018-04-01", lab.sub());
    let r = lab.op("GET", &list, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.pointer(&format!("/value/0{tap}")).and_then(Value::as_str), Some("NotProvisioned"), "{}", r.body);
    assert_eq!(r.body.pointer(&format!("/value/0{in_use}")).and_then(Value::as_bool), Some(false), "{}", r.body);
    let r = lab.op("GET", &format!("{nic}?api-version=2024-07-01"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.pointer(tap).is_none(), "{}", r.body);
    assert!(
        r.body
            .pointer("/properties/ipConfigurations/0/properties")
            .is_some_and(|p| p.get("isInUseWithService").is_none()),
        "{}",
        r.body
    );
}

/// An account's blob service (`blobServices/default`) as Azure answers it
/// (TestStorageBlobServiceProperties.json, 2023-05-01): before any PUT its GET shows the
/// account's sku, empty CORS rules and a disabled delete retention; a PUT answers 200 with the
/// properties it sent, and a property a later PUT leaves out keeps its value. Another name is
/// not found, a missing account refuses the write, DELETE is not an operation of the type, and
/// the blob service goes with its account.
#[test]
fn an_account_has_one_blob_service_whose_properties_a_put_sets() {
    let lab = Lab::start();
    let rg = lab.rg_path("fidelity-blob");
    assert!(
        lab.op("PUT", &format!("{rg}?api-version=2021-04-01"), Some(&json!({ "location": "westus" }))).status < 300
    );
    let account = format!("{rg}/providers/Microsoft.Storage/storageAccounts/idlabblobsvc1");
    let body = json!({ "sku": { "name": "Standard_GRS" }, "kind": "StorageV2", "location": "westus" });
    let created = lab.op("PUT", &format!("{account}?api-version=2023-05-01"), Some(&body));
    assert!(created.status < 300, "{}", created.body);
    settle(&lab, &created);
    let svc = format!("{account}/blobServices/default?api-version=2023-05-01");
    let r = lab.op("GET", &svc, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"], "default");
    assert_eq!(r.body["type"], "Microsoft.Storage/storageAccounts/blobServices");
    assert_eq!(r.body["sku"]["name"], "Standard_GRS", "{}", r.body);
    assert_eq!(r.body["properties"]["cors"], json!({ "corsRules": [] }), "{}", r.body);
    assert_eq!(
        r.body["properties"]["deleteRetentionPolicy"],
        json!({ "allowPermanentDelete": false, "enabled": false }),
        "{}",
        r.body
    );
    let put = json!({ "properties": { "defaultServiceVersion": "2018-03-28" } });
    let r = lab.op("PUT", &svc, Some(&put));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["properties"], put["properties"], "the PUT answers what it sent: {}", r.body);
    let retention = json!({ "properties": { "deleteRetentionPolicy": { "enabled": true, "days": 3 } } });
    assert_eq!(lab.op("PUT", &svc, Some(&retention)).status, 200);
    let r = lab.op("GET", &svc, None);
    assert_eq!(r.body["properties"]["defaultServiceVersion"], "2018-03-28", "kept: {}", r.body);
    assert_eq!(r.body["properties"]["deleteRetentionPolicy"]["days"], 3, "{}", r.body);
    assert_eq!(r.body["properties"]["cors"], json!({ "corsRules": [] }), "{}", r.body);
    let list = lab.op("GET", &format!("{account}/blobServices?api-version=2023-05-01"), None);
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body["value"].as_array().map(Vec::len), Some(1), "{}", list.body);
    assert_eq!(list.body["value"][0]["properties"]["defaultServiceVersion"], "2018-03-28", "{}", list.body);
    assert_eq!(lab.op("GET", &format!("{account}/blobServices/other?api-version=2023-05-01"), None).status, 404);
    assert_eq!(lab.op("DELETE", &svc, None).status, 405);
    let missing = format!(
        "{rg}/providers/Microsoft.Storage/storageAccounts/idlabnoacct1/blobServices/default?api-version=2023-05-01"
    );
    let r = lab.op("PUT", &missing, Some(&put));
    assert_eq!((r.status, r.code()), (404, "ParentResourceNotFound"), "{}", r.body);
    let gone = lab.op("DELETE", &format!("{account}?api-version=2023-05-01"), None);
    assert!(gone.status < 300, "{}", gone.body);
    assert_eq!(lab.op("GET", &svc, None).status, 404);
    let again = lab.op("PUT", &format!("{account}?api-version=2023-05-01"), Some(&body));
    assert!(again.status < 300, "{}", again.body);
    settle(&lab, &again);
    let r = lab.op("GET", &svc, None);
    assert!(r.body["properties"].get("defaultServiceVersion").is_none(), "a new account's service is new: {}", r.body);
}

/// Wait for a create answered 202 to end (its `Location` stops answering 202).
fn settle(lab: &Lab, created: &crate::lab::Resp) {
    let Some(loc) = created.header("location").filter(|_| created.status == 202) else { return };
    for _ in 0..200 {
        if lab.op("GET", &loc, None).status != 202 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
