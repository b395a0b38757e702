//! Tutorial environments made by hand (the portal's and Az PowerShell's requests, see
//! `common::handmade`) read back from the local cloud as Azure shows them: the references
//! between a portal VM and its disk and network, and what Azure refuses to delete while they
//! are in use (issue 17).

use serde_json::Value;

use crate::common::Served;
use crate::common::handmade::{self, Hand, Options, Unrelated};

const COMPUTE: &str = "api-version=2025-04-01";
const NETWORK: &str = "api-version=2024-07-01";

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
    let _ = NETWORK;
}
