//! The local cloud where a recording of Azure overrides a spec (issue 18: a recording wins
//! over a spec): NIC fields Azure answered at older api-versions, a resource group's delete
//! while it runs, and a storage account's blob service.

use serde_json::{Value, json};

use crate::lab::Lab;

/// A NIC answers `isInUseWithService: false` on each IP configuration at every api-version
/// (Azure added it server-side: its 2017-10-01 answers lack it in April 2018 and carry it in
/// September 2018, as its 2018-04-01 answers do), in a GET and in a list, 2024-07-01 included;
/// `virtualNetworkTapProvisioningState: "NotProvisioned"` only at 2018-04-01, the one
/// api-version whose recordings (TestNetworkInterfaceCRUD.json) carry it.
#[test]
fn a_nic_carries_the_fields_azure_answers_beyond_its_spec() {
    let lab = Lab::start();
    let nic = lab.network("fidelity-nic", "nic1");
    let tap = "/properties/virtualNetworkTapProvisioningState";
    let in_use = "/properties/ipConfigurations/0/properties/isInUseWithService";
    for v in ["2018-04-01", "2017-10-01", "2024-07-01"] {
        let r = lab.op("GET", &format!("{nic}?api-version={v}"), None);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body.pointer(in_use).and_then(Value::as_bool), Some(false), "{v}: {}", r.body);
        let tap_state = r.body.pointer(tap).and_then(Value::as_str);
        assert_eq!(tap_state, (v == "2018-04-01").then_some("NotProvisioned"), "{v}: {}", r.body);
    }
    for v in ["2018-04-01", "2024-07-01"] {
        let list =
            format!("/subscriptions/{}/providers/Microsoft.Network/networkInterfaces?api-version={v}", lab.sub());
        let r = lab.op("GET", &list, None);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body.pointer(&format!("/value/0{in_use}")).and_then(Value::as_bool), Some(false), "{}", r.body);
        let tap_state = r.body.pointer(&format!("/value/0{tap}")).and_then(Value::as_str);
        assert_eq!(tap_state, (v == "2018-04-01").then_some("NotProvisioned"), "{v}: {}", r.body);
    }
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
    if let Some(loc) = created.header("location").filter(|_| created.status == 202) {
        location_end(lab, &loc);
    }
}

/// A resource-group delete taking `lro_ms` (3 s): the cloud with its group and network.
fn deleting_lab() -> (Lab, String, String) {
    let faults = "per_type:\n  Microsoft.Resources/resourceGroups: { lro_ms: 3000 }\n";
    let lab = Lab::with(idlab::local::faults::Faults::parse(faults).expect("faults"));
    let nic = lab.network("fidelity-rgdel", "nic1");
    let rg = lab.rg_path("fidelity-rgdel");
    (lab, rg, nic)
}

/// Poll a `Location` until it stops answering 202; its last status.
fn location_end(lab: &Lab, url: &str) -> u16 {
    for _ in 0..400 {
        let r = lab.op("GET", url, None);
        if r.status != 202 {
            return r.status;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    202
}

/// While a resource group's delete runs, Azure still serves what it holds
/// (network/TestVirtualNetworkSubnetCRUD.json: the network's GET answered 200 a second after
/// the group's delete was accepted), the group reads `Deleting`, a write into it or onto it is
/// refused 409 `ResourceGroupBeingDeleted` (Azure's answer in Azure/azure-cli#28679), and a
/// repeated DELETE is accepted again; when the operation ends (its `Location` answers 200)
/// the group and its resources are gone.
#[test]
fn a_group_being_deleted_serves_its_resources_until_its_operation_ends() {
    let (lab, rg, nic) = deleting_lab();
    let vnet = format!("{rg}/providers/Microsoft.Network/virtualNetworks/nic1-vnet");
    let del = lab.op("DELETE", &format!("{rg}?api-version=2021-04-01"), None);
    assert_eq!(del.status, 202, "{}", del.body);
    let loc = del.header("location").expect("Location");
    let g = lab.op("GET", &format!("{rg}?api-version=2021-04-01"), None);
    assert_eq!(g.status, 200, "{}", g.body);
    assert_eq!(g.body["properties"]["provisioningState"], "Deleting", "{}", g.body);
    assert!(g.body.get("_idlab").is_none(), "internal fields never show: {}", g.body);
    let listed = lab.op("GET", &format!("/subscriptions/{}/resourcegroups?api-version=2021-04-01", lab.sub()), None);
    let mine = listed.body["value"].as_array().into_iter().flatten().find(|v| v["name"] == "fidelity-rgdel").cloned();
    assert_eq!(
        mine.as_ref().map(|m| m["properties"]["provisioningState"].clone()),
        Some(json!("Deleting")),
        "{}",
        listed.body
    );
    assert!(mine.is_some_and(|m| m.get("_idlab").is_none()));
    assert_eq!(lab.op("GET", &format!("{vnet}?api-version=2018-04-01"), None).status, 200);
    assert_eq!(lab.op("GET", &format!("{nic}?api-version=2024-07-01"), None).status, 200);
    let body =
        json!({ "location": "eastus", "properties": { "addressSpace": { "addressPrefixes": ["10.1.0.0/16"] } } });
    let w = lab.op(
        "PUT",
        &format!("{rg}/providers/Microsoft.Network/virtualNetworks/late?api-version=2024-07-01"),
        Some(&body),
    );
    assert_eq!((w.status, w.code()), (409, "ResourceGroupBeingDeleted"), "{}", w.body);
    assert!(w.body["error"]["message"].as_str().is_some_and(|m| m.contains("'fidelity-rgdel'")), "{}", w.body);
    let tags = json!({ "tags": { "a": "b" } });
    let p = lab.op("PATCH", &format!("{nic}?api-version=2024-07-01"), Some(&tags));
    assert_eq!((p.status, p.code()), (409, "ResourceGroupBeingDeleted"), "{}", p.body);
    let again = lab.op("PUT", &format!("{rg}?api-version=2021-04-01"), Some(&json!({ "location": "eastus" })));
    assert_eq!((again.status, again.code()), (409, "ResourceGroupBeingDeleted"), "{}", again.body);
    assert_eq!(
        lab.op("GET", &format!("{vnet}?api-version=2018-04-01"), None).status,
        200,
        "a refused write changes nothing"
    );
    let twice = lab.op("DELETE", &format!("{rg}?api-version=2021-04-01"), None);
    assert_eq!(twice.status, 202, "{}", twice.body);
    assert_eq!(location_end(&lab, &loc), 200);
    assert_eq!(location_end(&lab, &twice.header("location").expect("Location")), 200);
    let g = lab.op("GET", &format!("{rg}?api-version=2021-04-01"), None);
    assert_eq!((g.status, g.code()), (404, "ResourceGroupNotFound"), "{}", g.body);
    assert_eq!(lab.op("GET", &format!("{nic}?api-version=2024-07-01"), None).status, 404);
    let r = lab.op("PUT", &format!("{rg}?api-version=2021-04-01"), Some(&json!({ "location": "eastus" })));
    assert_eq!(r.status, 201, "a new group of the same name is a new group: {}", r.body);
    assert_eq!(lab.op("GET", &format!("{vnet}?api-version=2018-04-01"), None).status, 404);
}

/// A restart of the local cloud in the middle of a group's delete keeps it consistent: the
/// group reads `Deleting` (never `Succeeded`) with its resources, or is gone with them, and
/// the delete ends after the restart (its end is in the journal).
#[test]
fn a_restart_mid_delete_finishes_the_group_delete() {
    let (lab, rg, nic) = deleting_lab();
    let del = lab.op("DELETE", &format!("{rg}?api-version=2021-04-01"), None);
    assert_eq!(del.status, 202, "{}", del.body);
    let lab = lab.restart();
    let mut gone = false;
    for _ in 0..400 {
        // The NIC first: a group still there after it was read means the NIC was there too.
        let n = lab.op("GET", &format!("{nic}?api-version=2024-07-01"), None);
        let g = lab.op("GET", &format!("{rg}?api-version=2021-04-01"), None);
        if g.status == 404 {
            let n = lab.op("GET", &format!("{nic}?api-version=2024-07-01"), None);
            assert_eq!(n.status, 404, "the group went without its NIC: {}", n.body);
            gone = true;
            break;
        }
        assert_eq!(g.body["properties"]["provisioningState"], "Deleting", "{}", g.body);
        assert_eq!(n.status, 200, "the NIC went before its group: {}", n.body);
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(gone, "the group's delete never ended after the restart");
    let list = lab.op(
        "GET",
        &format!("/subscriptions/{}/providers/Microsoft.Network/networkInterfaces?api-version=2024-07-01", lab.sub()),
        None,
    );
    assert_eq!(list.body["value"], json!([]), "{}", list.body);
}
