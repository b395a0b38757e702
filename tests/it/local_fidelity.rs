//! The local cloud where a recording of Azure overrides a spec (issue 18: a recording wins
//! over a spec): NIC fields Azure answered at older api-versions, a resource group's delete
//! while it runs, and a storage account's blob service.

use serde_json::Value;

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
