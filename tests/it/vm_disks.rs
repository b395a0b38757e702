//! A VM's disks and interfaces end to end (issue 18, items 4 and 5): idlab sends
//! `deleteOption: Delete` for the OS disk and the interface it makes, the local cloud makes
//! the OS disk as Azure does and honours `deleteOption` when the VM goes, and `destroy`
//! names what Azure made on its own and leaves nothing behind; a disk attached outside idlab
//! keeps the group, named as the reason.

use serde_json::{Value, json};

use crate::common::Served;

/// A plan with one Linux VM (`network: auto`) in group `group`, declared by the plan when
/// `declare_group`, else made outside it.
fn vm_plan(dir: &std::path::Path, declare_group: bool) -> String {
    let (rg_decl, rg_ref) = if declare_group {
        ("  rg:\n    type: resource_group\n    name: disks-rg\n", "${rg}")
    } else {
        ("", "outside-rg")
    };
    let text = format!(
        "name: disks\nlocation: eastus\nresources:\n{rg_decl}  vm:\n    type: virtual_machine\n    name: diskvm\n    resource_group: {rg_ref}\n    image: Ubuntu2204\n    admin:\n      username: azureuser\n      password: {{ generate: 24 }}\n    network: auto\n"
    );
    let path = dir.join("disks.yaml");
    std::fs::write(&path, text).expect("plan");
    path.display().to_string()
}

fn group(s: &Served, rg: &str) -> String {
    format!("/subscriptions/{}/resourceGroups/{rg}", s.subscription())
}

fn vm_path(s: &Served, rg: &str) -> String {
    format!("{}/providers/Microsoft.Compute/virtualMachines/diskvm?api-version=2025-04-01", group(s, rg))
}

/// The ids of the resources in group `rg`.
fn resources_in(s: &Served, rg: &str) -> Vec<String> {
    let v = s.op("GET", &format!("{}/resources?api-version=2021-04-01", group(s, rg)), None);
    v["value"].as_array().expect("listing").iter().filter_map(|r| r["id"].as_str().map(str::to_string)).collect()
}

fn disk_url(id: &str) -> String {
    format!("{id}?api-version=2024-03-02")
}

fn apply(s: &Served, plan: &str) {
    let r = s.idlab(&["apply", plan, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

/// The VM's OS disk id, after checking it is named and owned as Azure does it.
fn os_disk(s: &Served, rg: &str) -> String {
    let vm = s.op("GET", &vm_path(s, rg), None);
    let os = &vm["properties"]["storageProfile"]["osDisk"];
    let name = os["name"].as_str().expect("OS disk name");
    let suffix = name.strip_prefix("diskvm_OsDisk_1_").expect(name);
    assert!(suffix.len() == 32 && suffix.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
    let id = os["managedDisk"]["id"].as_str().expect("disk id").to_string();
    assert!(id.ends_with(&format!("/providers/Microsoft.Compute/disks/{name}")), "{id}");
    let disk = s.op("GET", &disk_url(&id), None);
    assert_eq!(disk["managedBy"].as_str().map(str::to_ascii_lowercase), vm["id"].as_str().map(str::to_ascii_lowercase));
    assert_eq!(disk["properties"]["diskState"], "Attached");
    assert_eq!(disk["properties"]["creationData"]["createOption"], "FromImage");
    assert!(disk.get("tags").is_none(), "{disk}");
    id
}

#[test]
fn a_vm_plan_destroyed_leaves_nothing_and_its_group_goes() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = vm_plan(tmp.path(), true);
    apply(&s, &plan);
    let vm = s.op("GET", &vm_path(&s, "disks-rg"), None);
    // idlab asked for the OS disk and the interface it made to go with the VM.
    assert_eq!(vm["properties"]["storageProfile"]["osDisk"]["deleteOption"], "Delete", "{vm}");
    assert_eq!(vm["properties"]["networkProfile"]["networkInterfaces"][0]["properties"]["deleteOption"], "Delete");
    let disk = os_disk(&s, "disks-rg");
    assert!(resources_in(&s, "disks-rg").iter().any(|r| r.eq_ignore_ascii_case(&disk)));
    // Azure refuses to delete a disk a VM holds.
    let refused = s.op("DELETE", &disk_url(&disk), None);
    assert_eq!(refused["error"]["code"], "OperationNotAllowed", "{refused}");
    // A second apply has nothing to change.
    s.replans_clean(&plan);
    // The Markdown destroy plan (for pull requests) names it too.
    let md = s.idlab(&["plan", &plan, "--destroy", "--format", "markdown"]);
    assert!(md.stdout.contains(&format!("- OS disk {disk}: deleted with `vm`")), "{}", md.stdout);
    // destroy names what Azure made with the VM, deletes everything and the group with it.
    let r = s.idlab(&["destroy", &plan, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let name = disk.rsplit('/').next().unwrap_or_default();
    assert!(
        r.stderr.contains(&format!("OS disk {disk}: deleted with `vm` (its deleteOption is Delete)")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("IP configuration"), "{}", r.stderr);
    assert!(!r.stderr.contains("does not match"), "{}", r.stderr);
    let gone = s.op("GET", &format!("{}?api-version=2021-04-01", group(&s, "disks-rg")), None);
    assert_eq!(gone["error"]["code"], "ResourceGroupNotFound", "{gone}");
    let all = s.op("GET", &format!("/subscriptions/{}/resources?api-version=2021-04-01", s.subscription()), None);
    assert_eq!(all["value"], json!([]), "{name} or another resource is left: {all}");
}

#[test]
fn destroy_in_a_group_made_outside_leaves_the_group_empty() {
    let s = Served::start();
    s.op("PUT", &format!("{}?api-version=2021-04-01", group(&s, "outside-rg")), Some(json!({"location": "eastus"})));
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = vm_plan(tmp.path(), false);
    apply(&s, &plan);
    os_disk(&s, "outside-rg");
    let r = s.idlab(&["destroy", &plan, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // The group is not the plan's: it stays, with nothing the VM made left in it.
    assert_eq!(resources_in(&s, "outside-rg"), Vec::<String>::new());
}

#[test]
fn a_disk_attached_outside_idlab_keeps_the_group_and_is_named() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = vm_plan(tmp.path(), true);
    apply(&s, &plan);
    let os = os_disk(&s, "disks-rg");
    // A data disk made and attached by hand.
    let ext = format!("{}/providers/Microsoft.Compute/disks/extdisk", group(&s, "disks-rg"));
    let made = s.op(
        "PUT",
        &disk_url(&ext),
        Some(json!({"location": "eastus", "properties": {"creationData": {"createOption": "Empty"}, "diskSizeGB": 8}})),
    );
    assert_eq!(made["properties"]["diskState"], "Unattached", "{made}");
    let vm = s.op("GET", &vm_path(&s, "disks-rg"), None);
    let attach = json!({"properties": {"storageProfile": {"dataDisks": [
        {"lun": 0, "createOption": "Attach", "managedDisk": {"id": ext}}
    ]}}});
    let patched = s.op("PATCH", &vm_path(&s, "disks-rg"), Some(attach));
    assert_eq!(patched["properties"]["storageProfile"]["dataDisks"][0]["name"], "extdisk", "{patched}");
    // Disks are listed per group and per subscription, at the DiskRP's api-version.
    for scope in [group(&s, "disks-rg"), format!("/subscriptions/{}", s.subscription())] {
        let list = s.op("GET", &format!("{scope}/providers/Microsoft.Compute/disks?api-version=2024-03-02"), None);
        let mut names: Vec<&str> =
            list["value"].as_array().expect("disks").iter().filter_map(|d| d["name"].as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, vec![os.rsplit('/').next().unwrap_or_default(), "extdisk"], "{list}");
    }
    let held = s.op("GET", &disk_url(&ext), None);
    assert_eq!(held["managedBy"], vm["id"], "{held}");
    assert_eq!(held["properties"]["diskState"], "Attached");
    // destroy: the VM and what it made go, the hand-made disk and so the group stay.
    let r = s.idlab(&["destroy", &plan, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("it holds resources this plan does not match: Microsoft.Compute/disks extdisk"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("does not match: Microsoft.Compute/disks diskvm_OsDisk"), "{}", r.stderr);
    let left = resources_in(&s, "disks-rg");
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].eq_ignore_ascii_case(&ext), "{left:?}");
    // Detached, as Azure's default deleteOption leaves it; the OS disk went with the VM.
    let detached = s.op("GET", &disk_url(&ext), None);
    assert!(detached.get("managedBy").is_none(), "{detached}");
    assert_eq!(detached["properties"]["diskState"], "Unattached");
    assert_eq!(s.op("GET", &disk_url(&os), None)["error"]["code"], "ResourceNotFound");
}

/// Make the VM look like one made without `deleteOption` (by an older idlab, or by hand):
/// both fall back to Azure's default, `Detach`.
fn without_delete_option(s: &Served, rg: &str) {
    let vm = s.op("GET", &vm_path(s, rg), None);
    let nic = vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"].clone();
    let body = json!({"properties": {
        "storageProfile": {"osDisk": {"deleteOption": "Detach"}},
        "networkProfile": {"networkInterfaces": [{"id": nic, "properties": {"primary": true}}]},
    }});
    let v = s.op("PATCH", &vm_path(s, rg), Some(body));
    assert_eq!(v["properties"]["storageProfile"]["osDisk"]["deleteOption"], "Detach", "{v}");
}

#[test]
fn a_vm_made_without_delete_option_is_updated_and_destroyed_without_leftovers() {
    let s = Served::start();
    s.op("PUT", &format!("{}?api-version=2021-04-01", group(&s, "outside-rg")), Some(json!({"location": "eastus"})));
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = vm_plan(tmp.path(), false);
    apply(&s, &plan);
    without_delete_option(&s, "outside-rg");
    // plan shows the change, as an update in place.
    let r = s.idlab(&["plan", &plan, "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("~ properties/storageProfile/osDisk/deleteOption: \"Detach\" → \"Delete\""),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("networkInterfaces/0/properties/deleteOption"), "{}", r.stdout);
    assert!(r.stdout.contains("Plan: 0 to create, 1 to update, 0 to replace"), "{}", r.stdout);
    // apply sets it.
    apply(&s, &plan);
    let vm = s.op("GET", &vm_path(&s, "outside-rg"), None);
    assert_eq!(vm["properties"]["storageProfile"]["osDisk"]["deleteOption"], "Delete", "{vm}");
    s.replans_clean(&plan);
    // Made without it again; destroy without applying first deletes the disk itself.
    without_delete_option(&s, "outside-rg");
    let disk = os_disk(&s, "outside-rg");
    let r = s.idlab(&["destroy", &plan, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains(&format!("OS disk {disk}: deleting `vm` would leave it")), "{}", r.stderr);
    assert_eq!(resources_in(&s, "outside-rg"), Vec::<String>::new());
}

#[test]
fn the_local_cloud_detaches_what_a_deleted_vm_leaves_and_deletes_what_it_takes() {
    let s = Served::start();
    s.op("PUT", &format!("{}?api-version=2021-04-01", group(&s, "outside-rg")), Some(json!({"location": "eastus"})));
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = vm_plan(tmp.path(), false);
    apply(&s, &plan);
    // The OS disk left with Detach; the interface (deleteOption Delete) taken.
    let body = json!({"properties": {"storageProfile": {"osDisk": {"deleteOption": "Detach"}}}});
    s.op("PATCH", &vm_path(&s, "outside-rg"), Some(body));
    let disk = os_disk(&s, "outside-rg");
    let vm = s.op("GET", &vm_path(&s, "outside-rg"), None);
    let nic = vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"].as_str().expect("nic").to_string();
    let deleted = s.op("DELETE", &vm_path(&s, "outside-rg"), None);
    assert!(deleted.is_null() || deleted.get("error").is_none(), "{deleted}");
    let left = s.op("GET", &disk_url(&disk), None);
    assert!(left.get("managedBy").is_none(), "{left}");
    assert_eq!(left["properties"]["diskState"], "Unattached");
    assert!(left.get("tags").is_none(), "{left}");
    let nic = s.op("GET", &format!("{nic}?api-version=2024-07-01"), None);
    assert_eq!(nic["error"]["code"], "ResourceNotFound", "{nic}");
    // Now unattached, the disk may be deleted.
    let gone: Value = s.op("DELETE", &disk_url(&disk), None);
    assert!(gone.get("error").is_none(), "{gone}");
    assert_eq!(s.op("GET", &disk_url(&disk), None)["error"]["code"], "ResourceNotFound");
}

#[test]
fn recorded_vm_shapes_an_os_disk_by_default_and_extensions_listed_in_the_vm() {
    let s = Served::start();
    s.op("PUT", &format!("{}?api-version=2021-04-01", group(&s, "outside-rg")), Some(json!({"location": "eastus"})));
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = vm_plan(tmp.path(), false);
    apply(&s, &plan);
    let g = group(&s, "outside-rg");
    // A second interface on the plan's subnet, for a VM made as Az PowerShell makes it.
    let nic = format!("{g}/providers/Microsoft.Network/networkInterfaces/nic2");
    let subnet = format!("{g}/providers/Microsoft.Network/virtualNetworks/diskvm/subnets/diskvm");
    let ipc = json!([{"name": "ipconfig1", "properties": {"subnet": {"id": subnet}}}]);
    let made = s.op(
        "PUT",
        &format!("{nic}?api-version=2024-07-01"),
        Some(json!({"location": "eastus", "properties": {"ipConfigurations": ipc}})),
    );
    assert!(made.get("error").is_none(), "{made}");
    // The body of recording compute/TestSimpleNewVmWithSystemAssignedAndUserAssignedIdentity.json:
    // no osDisk, at api-version 2018-06-01.
    let vm2 = format!("{g}/providers/Microsoft.Compute/virtualMachines/vm2?api-version=2018-06-01");
    let image = json!({"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": "2016-Datacenter", "version": "latest"});
    let body = json!({"location": "eastus", "properties": {
        "hardwareProfile": {"vmSize": "Standard_DS1_v2"},
        "storageProfile": {"imageReference": image},
        "osProfile": {"computerName": "vm2", "adminUsername": "admin01", "adminPassword": "Pa55-w0rd-not-real", "windowsConfiguration": {}},
        "networkProfile": {"networkInterfaces": [{"id": nic}]},
    }});
    let v = s.op("PUT", &vm2, Some(body));
    let os = &v["properties"]["storageProfile"]["osDisk"];
    assert_eq!(os["createOption"], "FromImage", "{v}");
    assert_eq!(os["osType"], "Windows");
    assert_eq!(os["caching"], "ReadWrite");
    assert_eq!(os["managedDisk"]["storageAccountType"], "Premium_LRS");
    assert_eq!(os["deleteOption"], "Detach");
    assert_eq!(v["properties"]["osProfile"]["allowExtensionOperations"], true);
    assert!(v["properties"]["osProfile"].get("adminPassword").is_none());
    let disk = os["managedDisk"]["id"].as_str().expect("a managed OS disk");
    assert_eq!(s.op("GET", &disk_url(disk), None)["sku"]["name"], "Premium_LRS");
    // An extension is listed in its VM: whole in the VM's GET, by id in the list.
    let ext = format!("{g}/providers/Microsoft.Compute/virtualMachines/vm2/extensions/BGInfo?api-version=2017-12-01");
    let e = s.op(
        "PUT",
        &ext,
        Some(json!({"location": "East US", "properties": {"publisher": "Microsoft.Compute", "type": "BGInfo", "typeHandlerVersion": "2.1"}})),
    );
    assert_eq!(e["properties"]["provisioningState"], "Succeeded", "{e}");
    let v = s.op("GET", &vm2, None);
    assert_eq!(v["resources"][0]["name"], "BGInfo", "{v}");
    assert_eq!(v["resources"][0]["properties"]["typeHandlerVersion"], "2.1");
    let list = s.op("GET", &format!("{g}/providers/Microsoft.Compute/virtualMachines?api-version=2017-12-01"), None);
    let listed = list["value"].as_array().expect("list").iter().find(|x| x["name"] == "vm2").cloned().expect("vm2");
    assert!(listed["resources"][0]["id"].as_str().is_some_and(|i| i.ends_with("/extensions/BGInfo")), "{listed}");
    assert_eq!(listed["resources"][0].as_object().map(serde_json::Map::len), Some(1), "{listed}");
    s.op("DELETE", &ext, None);
    assert!(s.op("GET", &vm2, None).get("resources").is_none());
    // A VM extension needs its VM.
    let orphan = format!("{g}/providers/Microsoft.Compute/virtualMachines/none/extensions/x?api-version=2017-12-01");
    let r = s.op("PUT", &orphan, Some(json!({"location": "eastus", "properties": {}})));
    assert_eq!(r["error"]["code"], "ParentResourceNotFound", "{r}");
}

#[test]
fn sweep_takes_the_group_of_an_expired_vm_with_its_os_disk() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = vm_plan(tmp.path(), true);
    let t0 = [("IDLAB_NOW", "2026-01-01T00:00:00Z")];
    let a = s.idlab_env(&["apply", &plan, "--expires-after", "1h", "--auto-approve"], &t0);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    // The OS disk is untagged, as Azure makes it, and held by the VM.
    let disk = os_disk(&s, "disks-rg");
    let later = [("IDLAB_NOW", "2026-01-01T02:00:00Z")];
    let r = s.idlab_env(&["sweep"], &later);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!r.stderr.contains("does not match"), "{}", r.stderr);
    let gone = s.op("GET", &format!("{}?api-version=2021-04-01", group(&s, "disks-rg")), None);
    assert_eq!(gone["error"]["code"], "ResourceGroupNotFound", "{gone}");
    assert_eq!(s.op("GET", &disk_url(&disk), None)["error"]["code"], "ResourceGroupNotFound");
}

#[test]
fn a_vm_no_longer_declared_goes_with_its_os_disk_and_the_group_too() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = vm_plan(tmp.path(), true);
    apply(&s, &plan);
    let disk = os_disk(&s, "disks-rg");
    // The plan now declares only the group: the VM and its network are orphans.
    let only_group = "name: disks\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: disks-rg\n";
    std::fs::write(&plan, only_group).expect("plan");
    let r = s.idlab(&["destroy", &plan, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!r.stderr.contains("does not match"), "{}", r.stderr);
    let gone = s.op("GET", &format!("{}?api-version=2021-04-01", group(&s, "disks-rg")), None);
    assert_eq!(gone["error"]["code"], "ResourceGroupNotFound", "{gone}");
    assert_eq!(s.op("GET", &disk_url(&disk), None)["error"]["code"], "ResourceGroupNotFound");
}
