//! Tutorial environments made by hand (the portal's and Az PowerShell's requests, see
//! `common::handmade`) read back from the local cloud as Azure shows them: the references
//! between a portal VM and its disk and network, and what Azure refuses to delete while they
//! are in use (issue 17).

use serde_json::Value;

use crate::common::Served;
use crate::common::handmade::{self, Hand, Naming, Options, Unrelated};

const COMPUTE: &str = "api-version=2025-04-01";
const NETWORK: &str = "api-version=2024-07-01";
const DISKS: &str = "api-version=2024-03-02";

fn lower(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_ascii_lowercase()
}

#[test]
fn the_arm_tutorial_made_by_hand_has_the_portals_names_and_no_tags() {
    let s = Served::start();
    let made = handmade::arm_user_assigned(&s, &Options::arm());
    let h = Hand::new(&s);
    // Everything made is in the group, the OS disk Azure made included, and nothing else.
    assert_eq!(handmade::resources_in(&s, "myResourceGroupVM"), made.resource_ids());
    // Portal names.
    let vm = &made.vm;
    assert!(vm.vnet.ends_with("/virtualNetworks/myResourceGroupVM-vnet"), "{}", vm.vnet);
    assert!(vm.public_ip.ends_with("/publicIPAddresses/myVM-ip"));
    assert!(vm.nsg.ends_with("/networkSecurityGroups/myVM-nsg"));
    let nic = vm.nic.rsplit('/').next().unwrap_or_default();
    let digits = nic.strip_prefix("myvm").expect(nic);
    assert!(digits.len() == 3 && digits.chars().all(|c| c.is_ascii_digit()), "{nic}");
    let disk = vm.os_disk.rsplit('/').next().unwrap_or_default();
    let hex = disk.strip_prefix("myVM_OsDisk_1_").expect(disk);
    assert!(hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()), "{disk}");
    // No tags anywhere.
    for id in made.resource_ids().iter().chain([&made.group_id.to_ascii_lowercase()]) {
        let listed = h.call("GET", &format!("{id}?api-version=2021-04-01"), None).1;
        let tags = listed.get("tags");
        assert!(tags.is_none() || tags == Some(&serde_json::json!({})), "{id}: {listed}");
    }
    // ID1 is on the VM, Reader for ID1 on the group under a random GUID name.
    let id1 = made.identity.as_ref().expect("ID1");
    let shown = h.get(&vm.id, COMPUTE);
    assert_eq!(shown["identity"]["type"], "UserAssigned", "{shown}");
    let ua = shown["identity"]["userAssignedIdentities"].as_object().expect("user-assigned");
    assert!(ua.keys().any(|k| k.eq_ignore_ascii_case(&id1.id)), "{shown}");
    let ra = &made.assignments[0];
    assert!(uuid::Uuid::parse_str(&ra.name).is_ok(), "{}", ra.name);
    let got = h.get(&ra.id, "api-version=2022-04-01");
    assert_eq!(got["properties"]["principalId"], id1.principal_id.as_str());
    assert_eq!(got["properties"]["principalType"], "ServicePrincipal");
    assert!(lower(&got["properties"]["roleDefinitionId"]).ends_with("acdd72a7-3385-48ef-bd42-f606fba81ae7"), "{got}");
}

#[test]
fn the_keyvault_tutorial_made_by_hand_has_an_entry_by_object_id_and_its_secret() {
    let s = Served::start();
    let made = handmade::keyvault(&s, &Options::keyvault());
    let h = Hand::new(&s);
    assert_eq!(handmade::resources_in(&s, "myResourceGroup"), made.resource_ids());
    let kv = made.vault.as_ref().expect("vault");
    let vault = h.get(&kv.id, "api-version=2024-11-01");
    let oids: Vec<String> = vault["properties"]["accessPolicies"]
        .as_array()
        .expect("policies")
        .iter()
        .map(|p| lower(&p["objectId"]))
        .collect();
    let principal = made.vm.principal_id.clone().expect("system identity").to_ascii_lowercase();
    assert!(oids.contains(&principal), "{vault}");
    assert_eq!(oids.len(), 2, "{vault}");
    assert!(vault.get("tags").is_none_or(|t| t == &serde_json::json!({})), "{vault}");
    // The extra resource lands in the group.
    let extra = handmade::add_unrelated(&s, "myResourceGroup", Unrelated::StorageAccount);
    assert!(handmade::resources_in(&s, "myResourceGroup").contains(&extra.to_ascii_lowercase()));
}

/// The id in `v` at `pointer`, lower-cased.
fn id_at(v: &Value, pointer: &str) -> String {
    lower(v.pointer(pointer).unwrap_or(&Value::Null))
}

/// The ids listed at `pointer` (an array of `{id}`), lower-cased.
fn ids_at(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer).and_then(Value::as_array).into_iter().flatten().map(|r| lower(&r["id"])).collect()
}

#[test]
fn a_portal_vm_reads_back_with_azures_references() {
    let s = Served::start();
    let made = handmade::arm_user_assigned(&s, &Options::arm());
    let h = Hand::new(&s);
    let m = &made.vm;
    let (vm_id, disk, nic, pip, nsg, cfg, subnet) = (
        m.id.to_ascii_lowercase(),
        m.os_disk.to_ascii_lowercase(),
        m.nic.to_ascii_lowercase(),
        m.public_ip.to_ascii_lowercase(),
        m.nsg.to_ascii_lowercase(),
        m.ip_config.to_ascii_lowercase(),
        m.subnet.to_ascii_lowercase(),
    );
    // The VM: its OS disk by id, Detach (nothing was sent: the spec's default), its NIC.
    let vm = h.get(&m.id, COMPUTE);
    let os = &vm["properties"]["storageProfile"]["osDisk"];
    assert_eq!(id_at(os, "/managedDisk/id"), disk, "{vm}");
    assert_eq!(os["deleteOption"], "Detach", "{vm}");
    assert_eq!(os["createOption"], "FromImage", "{vm}");
    assert_eq!(ids_at(&vm, "/properties/networkProfile/networkInterfaces"), vec![nic.clone()]);
    let nic_ref = &vm["properties"]["networkProfile"]["networkInterfaces"][0];
    assert!(nic_ref.pointer("/properties/deleteOption").is_none(), "{vm}");
    // The disk Azure made: held by the VM, untagged.
    let d = h.get(&m.os_disk, DISKS);
    assert_eq!(lower(&d["managedBy"]), vm_id, "{d}");
    assert_eq!(d["properties"]["diskState"], "Attached");
    assert!(d.get("tags").is_none(), "{d}");
    // The group's listing shows the disk held by the VM too (`managedBy`), as ARM lists disks.
    let listed = h.call("GET", &format!("{}/resources?api-version=2021-04-01", made.group_id), None).1;
    let entry = listed["value"].as_array().into_iter().flatten().find(|r| lower(&r["id"]) == disk).cloned();
    assert_eq!(lower(&entry.unwrap_or_default()["managedBy"]), vm_id, "{listed}");
    // The NIC: its public IP, subnet and NSG, and the VM that holds it.
    let n = h.get(&m.nic, NETWORK);
    assert_eq!(id_at(&n, "/properties/ipConfigurations/0/properties/publicIPAddress/id"), pip, "{n}");
    assert_eq!(id_at(&n, "/properties/ipConfigurations/0/properties/subnet/id"), subnet, "{n}");
    assert_eq!(id_at(&n, "/properties/ipConfigurations/0/id"), cfg, "{n}");
    assert_eq!(id_at(&n, "/properties/networkSecurityGroup/id"), nsg, "{n}");
    assert_eq!(id_at(&n, "/properties/virtualMachine/id"), vm_id, "{n}");
    // The back-references Azure keeps.
    let p = h.get(&m.public_ip, NETWORK);
    assert_eq!(id_at(&p, "/properties/ipConfiguration/id"), cfg, "{p}");
    let g = h.get(&m.nsg, NETWORK);
    assert_eq!(ids_at(&g, "/properties/networkInterfaces"), vec![nic.clone()], "{g}");
    assert!(g.pointer("/properties/subnets").is_none(), "{g}");
    let v = h.get(&m.vnet, NETWORK);
    assert_eq!(ids_at(&v, "/properties/subnets/0/properties/ipConfigurations"), vec![cfg.clone()], "{v}");
    let sn = h.get(&m.subnet, NETWORK);
    assert_eq!(ids_at(&sn, "/properties/ipConfigurations"), vec![cfg], "{sn}");
}

/// A DELETE that Azure refuses: (status, error code, message).
fn refused(h: &Hand<'_>, id: &str, api: &str) -> (u16, String, String) {
    let (status, v) = h.call("DELETE", &format!("{id}?{api}"), None);
    (
        status,
        v["error"]["code"].as_str().unwrap_or_default().to_string(),
        v["error"]["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn what_a_portal_vm_uses_cannot_be_deleted_as_in_azure() {
    let s = Served::start();
    let made = handmade::arm_user_assigned(&s, &Options::arm());
    let h = Hand::new(&s);
    let m = &made.vm;
    let before = handmade::resources_in(&s, "myResourceGroupVM");
    // Azure's answers as its clients report them (400 with these codes and messages):
    // NicInUse (hashicorp/terraform-provider-azurerm#8105), PublicIPAddressCannotBeDeleted
    // (#2566), InUseNetworkSecurityGroupCannotBeDeleted (pulumi/pulumi-azure-native#3051),
    // InUseSubnetCannotBeDeleted (hashicorp/packer-plugin-azure#273's log).
    let (st, code, msg) = refused(&h, &m.nic, NETWORK);
    assert_eq!((st, code.as_str()), (400, "NicInUse"), "{msg}");
    assert!(msg.contains(&format!("is used by existing resource {}", m.id)), "{msg}");
    let (st, code, msg) = refused(&h, &m.public_ip, NETWORK);
    assert_eq!((st, code.as_str()), (400, "PublicIPAddressCannotBeDeleted"), "{msg}");
    assert!(
        msg.contains(&format!("can not be deleted since it is still allocated to resource {}", m.ip_config)),
        "{msg}"
    );
    let (st, code, msg) = refused(&h, &m.nsg, NETWORK);
    assert_eq!((st, code.as_str()), (400, "InUseNetworkSecurityGroupCannotBeDeleted"), "{msg}");
    assert!(msg.contains(&format!("is in use by the following resources: {}", m.nic)), "{msg}");
    for target in [&m.vnet, &m.subnet] {
        let (st, code, msg) = refused(&h, target, NETWORK);
        assert_eq!((st, code.as_str()), (400, "InUseSubnetCannotBeDeleted"), "{target}: {msg}");
        assert!(msg.contains(&format!("Subnet default is in use by {}", m.ip_config)), "{msg}");
    }
    let (st, code, _) = refused(&h, &m.os_disk, DISKS);
    assert_eq!((st, code.as_str()), (409, "OperationNotAllowed"));
    // Nothing went.
    assert_eq!(handmade::resources_in(&s, "myResourceGroupVM"), before);
    assert_eq!(ids_at(&h.get(&m.subnet, NETWORK), "/properties/ipConfigurations").len(), 1);
}

#[test]
fn deleting_a_portal_vm_leaves_its_disk_and_network_then_they_go_in_order() {
    let s = Served::start();
    let made = handmade::arm_user_assigned(&s, &Options::arm());
    let h = Hand::new(&s);
    let m = &made.vm;
    let (st, _) = h.call("DELETE", &format!("{}?{COMPUTE}", m.id), None);
    assert!(st == 200 || st == 202, "{st}");
    assert_eq!(h.call("GET", &format!("{}?{COMPUTE}", m.id), None).0, 404);
    // Detach: the disk stays, unattached and untagged; the NIC stays, held by nothing.
    let d = h.get(&m.os_disk, DISKS);
    assert!(d.get("managedBy").is_none(), "{d}");
    assert_eq!(d["properties"]["diskState"], "Unattached");
    assert!(d.get("tags").is_none(), "{d}");
    let n = h.get(&m.nic, NETWORK);
    assert!(n.pointer("/properties/virtualMachine").is_none(), "{n}");
    assert!(n.get("tags").is_none(), "{n}");
    // The NIC still holds the public IP, the NSG and the subnet.
    assert_eq!(refused(&h, &m.public_ip, NETWORK).1, "PublicIPAddressCannotBeDeleted");
    assert_eq!(refused(&h, &m.nsg, NETWORK).1, "InUseNetworkSecurityGroupCannotBeDeleted");
    assert_eq!(refused(&h, &m.vnet, NETWORK).1, "InUseSubnetCannotBeDeleted");
    // The NIC goes now; then everything it held, and the disk.
    for (id, api) in
        [(&m.nic, NETWORK), (&m.public_ip, NETWORK), (&m.nsg, NETWORK), (&m.vnet, NETWORK), (&m.os_disk, DISKS)]
    {
        let (st, v) = h.call("DELETE", &format!("{id}?{api}"), None);
        assert!(st == 200 || st == 202 || st == 204, "{id}: {st} {v}");
        assert_eq!(h.call("GET", &format!("{id}?{api}"), None).0, 404, "{id}");
    }
    let id1 = made.identity.as_ref().expect("ID1").id.to_ascii_lowercase();
    assert_eq!(handmade::resources_in(&s, "myResourceGroupVM"), vec![id1]);
}

#[test]
fn delete_option_set_by_patch_takes_the_disk_and_nic_with_the_vm() {
    let s = Served::start();
    let made = handmade::arm_user_assigned(&s, &Options::arm());
    let h = Hand::new(&s);
    let m = &made.vm;
    // What a teardown sends before deleting a VM whose children it deletes (issue 17):
    // `deleteOption: Delete` on the OS disk and the NIC reference, nothing else.
    let patch = serde_json::json!({ "properties": {
        "storageProfile": { "osDisk": { "deleteOption": "Delete" } },
        "networkProfile": { "networkInterfaces": [{ "id": m.nic, "properties": { "deleteOption": "Delete" } }] },
    }});
    let (st, v) = h.call("PATCH", &format!("{}?{COMPUTE}", m.id), Some(&patch));
    assert!(st == 200 || st == 202, "{st} {v}");
    let vm = h.get(&m.id, COMPUTE);
    assert_eq!(vm["properties"]["storageProfile"]["osDisk"]["deleteOption"], "Delete", "{vm}");
    assert_eq!(id_at(&vm, "/properties/storageProfile/osDisk/managedDisk/id"), m.os_disk.to_ascii_lowercase());
    assert_eq!(vm["properties"]["networkProfile"]["networkInterfaces"][0]["properties"]["deleteOption"], "Delete");
    // The identity and the rest of the VM are kept.
    assert_eq!(vm["identity"]["type"], "UserAssigned", "{vm}");
    let (st, _) = h.call("DELETE", &format!("{}?{COMPUTE}", m.id), None);
    assert!(st == 200 || st == 202, "{st}");
    assert_eq!(h.call("GET", &format!("{}?api-version=2024-03-02", m.os_disk), None).0, 404);
    assert_eq!(h.call("GET", &format!("{}?{NETWORK}", m.nic), None).0, 404);
    // The NIC's references went with it.
    let p = h.get(&m.public_ip, NETWORK);
    assert!(p.pointer("/properties/ipConfiguration").is_none(), "{p}");
    let g = h.get(&m.nsg, NETWORK);
    assert!(g.pointer("/properties/networkInterfaces").is_none(), "{g}");
    let sn = h.get(&m.subnet, NETWORK);
    assert!(sn.pointer("/properties/ipConfigurations").is_none(), "{sn}");
    for id in [&m.public_ip, &m.nsg, &m.vnet] {
        let (st, v) = h.call("DELETE", &format!("{id}?{NETWORK}"), None);
        assert!(st == 200 || st == 202 || st == 204, "{id}: {st} {v}");
    }
}

#[test]
fn portal_delete_with_vm_takes_the_disk_nic_and_public_ip_but_not_the_nsg_or_vnet() {
    let s = Served::start();
    // The portal's "Delete with VM" boxes: deleteOption Delete on the OS disk, the NIC and the
    // NIC's public IP.
    let o = Options { delete_option: Some("Delete"), ..Options::arm() };
    let made = handmade::arm_user_assigned(&s, &o);
    let h = Hand::new(&s);
    let m = &made.vm;
    // The NIC reads its public IP's deleteOption back (Azure/azure-sdk-for-java#39096's test).
    let n = h.get(&m.nic, NETWORK);
    let pip_ref = &n["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"];
    assert_eq!(pip_ref["properties"]["deleteOption"], "Delete", "{n}");
    assert_eq!(lower(&pip_ref["id"]), m.public_ip.to_ascii_lowercase());
    let (st, _) = h.call("DELETE", &format!("{}?{COMPUTE}", m.id), None);
    assert!(st == 200 || st == 202, "{st}");
    for (id, api) in [(&m.os_disk, DISKS), (&m.nic, NETWORK), (&m.public_ip, NETWORK)] {
        let (st, v) = h.call("GET", &format!("{id}?{api}"), None);
        assert_eq!(st, 404, "{id} is left: {v}");
    }
    // The NSG and the vnet are not the VM's to delete; nothing refers to them any more.
    let g = h.get(&m.nsg, NETWORK);
    assert!(g.pointer("/properties/networkInterfaces").is_none(), "{g}");
    let sn = h.get(&m.subnet, NETWORK);
    assert!(sn.pointer("/properties/ipConfigurations").is_none(), "{sn}");
    let left = handmade::resources_in(&s, "myResourceGroupVM");
    let mut want = vec![
        made.identity.as_ref().expect("ID1").id.to_ascii_lowercase(),
        m.nsg.to_ascii_lowercase(),
        m.vnet.to_ascii_lowercase(),
    ];
    want.sort();
    assert_eq!(left, want);
}

#[test]
fn the_storage_tutorial_made_by_hand_has_its_blob_and_a_reader_on_the_container() {
    let s = Served::start();
    let made = handmade::storage_blob(&s, &Options::storage());
    let h = Hand::new(&s);
    assert_eq!(handmade::resources_in(&s, "myResourceGroup"), made.resource_ids());
    let st = made.storage.as_ref().expect("storage");
    let c = h.get(&st.container, "api-version=2025-06-01");
    assert_eq!(c["name"], "mycontainer", "{c}");
    let ra = &made.assignments[0];
    assert_eq!(ra.scope, st.container);
    assert_eq!(ra.principal_id, made.vm.principal_id.clone().expect("system identity"));
    let got = h.get(&ra.id, "api-version=2022-04-01");
    assert!(lower(&got["properties"]["roleDefinitionId"]).ends_with("2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"), "{got}");
    assert!(st.blob_url.ends_with("/mycontainer/hello_world.txt"), "{}", st.blob_url);
}

#[test]
fn an_nsg_on_a_subnet_cannot_be_deleted_until_the_subnet_lets_go() {
    let s = Served::start();
    let h = Hand::new(&s);
    let rg = handmade::group(&h, "nsg-rg", "eastus");
    let nsg = format!("{rg}/providers/Microsoft.Network/networkSecurityGroups/subnet-nsg");
    let (st, v) = h.call("PUT", &format!("{nsg}?{NETWORK}"), Some(&serde_json::json!({ "location": "eastus" })));
    assert!(st < 300, "{v}");
    let vnet = format!("{rg}/providers/Microsoft.Network/virtualNetworks/nsg-rg-vnet");
    let body = serde_json::json!({ "location": "eastus", "properties": {
        "addressSpace": { "addressPrefixes": ["10.1.0.0/16"] },
        "subnets": [{ "name": "default", "properties": { "addressPrefix": "10.1.0.0/24", "networkSecurityGroup": { "id": nsg } } }],
    }});
    let (st, v) = h.call("PUT", &format!("{vnet}?{NETWORK}"), Some(&body));
    assert!(st < 300, "{v}");
    assert_eq!(
        ids_at(&h.get(&nsg, NETWORK), "/properties/subnets"),
        vec![format!("{vnet}/subnets/default").to_ascii_lowercase()]
    );
    let (st, code, msg) = refused(&h, &nsg, NETWORK);
    assert_eq!((st, code.as_str()), (400, "InUseNetworkSecurityGroupCannotBeDeleted"), "{msg}");
    assert!(msg.contains(&format!("{vnet}/subnets/default")), "{msg}");
    // An empty subnet goes; then the NSG is free.
    let (st, v) = h.call("DELETE", &format!("{vnet}/subnets/default?{NETWORK}"), None);
    assert!(st < 300, "{st} {v}");
    assert!(h.get(&nsg, NETWORK).pointer("/properties/subnets").is_none());
    let (st, v) = h.call("DELETE", &format!("{nsg}?{NETWORK}"), None);
    assert!(st < 300, "{st} {v}");
}

#[test]
fn an_az_cli_vm_has_the_clis_names_and_its_null_delete_option_means_detach() {
    let s = Served::start();
    let o = Options { naming: Naming::AzCli, ..Options::arm() };
    let made = handmade::arm_user_assigned(&s, &o);
    let h = Hand::new(&s);
    let m = &made.vm;
    for (id, tail) in [
        (&m.vnet, "/virtualNetworks/myVMVNET"),
        (&m.subnet, "/subnets/myVMSubnet"),
        (&m.public_ip, "/publicIPAddresses/myVMPublicIP"),
        (&m.nsg, "/networkSecurityGroups/myVMNSG"),
        (&m.nic, "/networkInterfaces/myVMVMNic"),
        (&m.ip_config, "/ipConfigurations/ipconfigmyVM"),
    ] {
        assert!(id.ends_with(tail), "{id}");
    }
    assert_eq!(handmade::resources_in(&s, "myResourceGroupVM"), made.resource_ids());
    // `"deleteOption": null` on the NIC reference is no deleteOption: not kept, and Detach.
    let vm = h.get(&m.id, COMPUTE);
    let nic_ref = &vm["properties"]["networkProfile"]["networkInterfaces"][0];
    assert!(nic_ref.get("properties").is_none(), "{vm}");
    let g = h.get(&m.nsg, NETWORK);
    assert_eq!(g["properties"]["securityRules"][0]["name"], "rdp", "{g}");
    let (st, _) = h.call("DELETE", &format!("{}?{COMPUTE}", m.id), None);
    assert!(st == 200 || st == 202, "{st}");
    let n = h.get(&m.nic, NETWORK);
    assert!(n.pointer("/properties/virtualMachine").is_none(), "{n}");
    assert!(h.get(&m.os_disk, DISKS).get("managedBy").is_none());
}

#[test]
fn a_second_nic_in_the_portals_subnet_is_listed_and_keeps_the_vnet() {
    let s = Served::start();
    let made = handmade::arm_user_assigned(&s, &Options::arm());
    let h = Hand::new(&s);
    let m = &made.vm;
    let other = format!("{}/providers/Microsoft.Network/networkInterfaces/other-nic", made.group_id);
    let body = serde_json::json!({ "location": "eastus", "properties": { "ipConfigurations": [
        { "name": "ipconfig1", "properties": { "subnet": { "id": m.subnet }, "privateIPAllocationMethod": "Dynamic" } },
    ]}});
    let (st, v) = h.call("PUT", &format!("{other}?{NETWORK}"), Some(&body));
    assert!(st < 300, "{v}");
    let mut want =
        vec![m.ip_config.to_ascii_lowercase(), format!("{other}/ipConfigurations/ipconfig1").to_ascii_lowercase()];
    want.sort();
    let mut got = ids_at(&h.get(&m.subnet, NETWORK), "/properties/ipConfigurations");
    got.sort();
    assert_eq!(got, want);
    // The VM, its NIC and what only it used go; the vnet is still in use by the other NIC.
    for (id, api) in [(&m.id, COMPUTE), (&m.nic, NETWORK), (&m.public_ip, NETWORK), (&m.nsg, NETWORK)] {
        let (st, v) = h.call("DELETE", &format!("{id}?{api}"), None);
        assert!(st < 300, "{id}: {st} {v}");
    }
    let (st, code, msg) = refused(&h, &m.vnet, NETWORK);
    assert_eq!((st, code.as_str()), (400, "InUseSubnetCannotBeDeleted"), "{msg}");
    assert!(msg.contains(&format!("{other}/ipConfigurations/ipconfig1")), "{msg}");
    assert!(!msg.contains(&m.ip_config), "{msg}");
}
