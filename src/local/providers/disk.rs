//! Provider `Microsoft.Compute/disks` (DiskRP): managed disks, the OS disk a VM's create
//! makes (named as Azure names it, `<vm>_OsDisk_1_<32 hex>`, `managedBy` the VM, untagged),
//! data disks a VM's PUT or PATCH attaches (`createOption: Attach`) or detaches (left out of
//! `dataDisks`), and what a VM's delete does with its disks and network interfaces: their
//! `deleteOption` (`Delete` removes them, `Detach`, Azure's default, leaves them with
//! `managedBy` cleared). Bodies follow the DiskRP spec (2025-01-02 `Disk_Get`,
//! `Disk_Create_Empty` examples); the refusal to delete an attached disk is Azure's 409
//! `OperationNotAllowed`, "Disk {name} is attached to VM {id}.".

use serde_json::{Value, json};

use crate::local::http::ArmError;
use crate::local::providers::network::{canonical, network_backrefs};
use crate::local::shared::guid;
use crate::local::store::{Op, Resource, State as CloudState};
use crate::local::table::DISKS;

const NETWORK_INTERFACES: &str = "Microsoft.Network/networkInterfaces";

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

fn disk_name(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// The server-filled fields of a disk body, kept from what it held before.
fn fill_disk(body: &mut Value, existing: Option<&Value>) {
    let keep = |p: &str| existing.and_then(|e| e.pointer(p)).cloned();
    if body.get("sku").is_none() {
        body["sku"] = keep("/sku").unwrap_or(json!({ "name": "Standard_LRS", "tier": "Standard" }));
    }
    // `managedBy` is read-only: only a VM's attach or detach changes it.
    match keep("/managedBy") {
        Some(m) => body["managedBy"] = m,
        None => {
            if let Some(o) = body.as_object_mut() {
                o.remove("managedBy");
            }
        }
    }
    let attached = body.get("managedBy").is_some();
    let size = body.pointer("/properties/diskSizeGB").and_then(Value::as_u64);
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("uniqueId".into(), keep("/properties/uniqueId").unwrap_or_else(|| json!(guid())));
        p.insert("timeCreated".into(), keep("/properties/timeCreated").unwrap_or_else(|| json!(now_rfc3339())));
        p.insert("diskState".into(), json!(if attached { "Attached" } else { "Unattached" }));
        p.entry("encryption").or_insert(json!({ "type": "EncryptionAtRestWithPlatformKey" }));
        p.entry("networkAccessPolicy").or_insert(json!("AllowAll"));
        p.entry("publicNetworkAccess").or_insert(json!("Enabled"));
        if let Some(gb) = size {
            p.insert("diskSizeBytes".into(), json!(gb * 1024 * 1024 * 1024));
        }
    }
}

/// What an OS disk made from a VM's `imageReference` records as its source: DiskRP's
/// `ImageDiskReference` (2024-03-02 `diskRPCommon.json`) holds an `id`, not the VM's
/// publisher, offer, sku and version; for a platform image, the id of the image version
/// (`/Subscriptions/{sub}/Providers/Microsoft.Compute/Locations/{location}/Publishers/{p}/ArtifactTypes/VMImage/Offers/{o}/Skus/{s}/Versions/{v}`,
/// as `az disk show` prints an OS disk in Azure's VM tutorial); for a custom or gallery image,
/// its id. `None` when the VM names no image.
fn image_disk_reference(vm_id: &str, location: &Value, image: Option<&Value>) -> Option<Value> {
    let image = image?;
    if let Some(id) = image.get("id").and_then(Value::as_str) {
        return Some(json!({ "id": id }));
    }
    let part = |k: &str| image.get(k).and_then(Value::as_str);
    let (p, o, s, v) = (part("publisher")?, part("offer")?, part("sku")?, part("version").unwrap_or("latest"));
    let sub = vm_id.split('/').nth(2).unwrap_or_default();
    let loc = location.as_str().unwrap_or_default().replace(' ', "").to_ascii_lowercase();
    Some(json!({
        "id": format!("/Subscriptions/{sub}/Providers/Microsoft.Compute/Locations/{loc}/Publishers/{p}/ArtifactTypes/VMImage/Offers/{o}/Skus/{s}/Versions/{v}")
    }))
}

/// A disk's PUT: `creationData.createOption` is required, an `Empty` disk needs its size.
pub(crate) fn prepare_disk(existing: Option<&Resource>, body: &mut Value) -> Result<(), ArmError> {
    let option = body.pointer("/properties/creationData/createOption").and_then(Value::as_str).map(str::to_string);
    let option = match (option, existing) {
        (Some(o), _) => o,
        (None, Some(e)) => {
            let c = e.body.pointer("/properties/creationData").cloned().unwrap_or(json!({}));
            body["properties"]["creationData"] = c.clone();
            c.get("createOption").and_then(Value::as_str).unwrap_or("Empty").to_string()
        }
        (None, None) => {
            return Err(ArmError::new(
                400,
                "InvalidParameter",
                "Required parameter 'disk.properties.creationData' is missing (null).",
            ));
        }
    };
    if option.eq_ignore_ascii_case("Empty") && body.pointer("/properties/diskSizeGB").and_then(Value::as_u64).is_none()
    {
        return Err(ArmError::new(
            400,
            "InvalidParameter",
            "Required parameter 'diskSizeGB' is missing (null) for a disk created with createOption 'Empty'.",
        ));
    }
    fill_disk(body, existing.map(|r| &r.body));
    Ok(())
}

/// Refuses deleting a disk a VM holds, as Azure does.
pub(crate) fn check_disk_delete(st: &CloudState, disk: &Resource) -> Result<(), ArmError> {
    if let Some(vm) = disk.body.get("managedBy").and_then(Value::as_str)
        && st.resources.contains_key(&vm.to_ascii_lowercase())
    {
        return Err(ArmError::new(
            409,
            "OperationNotAllowed",
            format!("Disk {} is attached to VM {vm}.", disk_name(&disk.id)),
        ));
    }
    Ok(())
}

/// A disk resource attached to `vm_id` (or detached with `None`), as an op.
fn set_owner(disk: &Resource, vm_id: Option<&str>) -> Op {
    let mut d = disk.clone();
    match vm_id {
        Some(v) => d.body["managedBy"] = json!(v),
        None => {
            if let Some(o) = d.body.as_object_mut() {
                o.remove("managedBy");
            }
        }
    }
    d.body["properties"]["diskState"] = json!(if vm_id.is_some() { "Attached" } else { "Unattached" });
    d.etag += 1;
    Op::PutResource { resource: d }
}

/// The enum values of a VM's disk entries and NIC references as Compute answers them,
/// whatever the case a client sent: `az vm create` sends `createOption: fromImage`
/// (Azure/azure-cli, `vm/_template_builder.py`, `build_vm_resource`) and the VM reads back
/// `FromImage`; the values are the spec's (`DiskCreateOptionTypes`, `CachingTypes`,
/// `DiskDeleteOptionTypes`, `DeleteOptions`, ComputeRP 2025-04-01). An unknown value is kept
/// as sent; a `null` is dropped (the default applies), as `az vm create` sends the NIC
/// reference's `deleteOption` when none is asked (`vm/custom.py`, `create_vm`).
pub(crate) fn canonical_enums(entry: &mut serde_json::Map<String, Value>) {
    const ENUMS: &[(&str, &[&str])] = &[
        ("createOption", &["FromImage", "Empty", "Attach", "Copy", "Restore"]),
        ("caching", &["None", "ReadOnly", "ReadWrite"]),
        ("deleteOption", &["Delete", "Detach"]),
    ];
    for (key, values) in ENUMS {
        // `null` is no value: the default applies (ARM clients send it for what was not asked,
        // as `az vm create` does for `deleteOption`).
        if entry.get(*key).is_some_and(Value::is_null) {
            entry.remove(*key);
        }
        let known = entry.get(*key).and_then(Value::as_str).and_then(|v| canonical(v, values));
        if let Some(c) = known {
            entry.insert((*key).to_string(), json!(c));
        }
    }
}

/// The managed disk ids a VM body refers to: its OS disk, then its data disks.
pub(crate) fn vm_disk_ids(body: &Value) -> Vec<String> {
    let os = body.pointer("/properties/storageProfile/osDisk/managedDisk/id").and_then(Value::as_str);
    let data = body
        .pointer("/properties/storageProfile/dataDisks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| d.pointer("/managedDisk/id").and_then(Value::as_str));
    os.into_iter().chain(data).map(str::to_string).collect()
}

/// What a VM's PUT or PATCH does to disks: names and creates its OS disk (kept from the VM it
/// replaces), attaches data disks given with `Attach`, creates `Empty` ones, and detaches
/// the data disks it no longer lists. Fills the disk fields of `body`'s storage profile.
pub(crate) fn vm_disks(
    st: &CloudState,
    vm_id: &str,
    existing: Option<&Resource>,
    body: &mut Value,
    windows: bool,
    now: u64,
) -> Result<Vec<Op>, ArmError> {
    let mut ops = Vec::new();
    let rg_prefix = vm_id.split("/providers/").next().unwrap_or_default().to_string();
    let vm_name = disk_name(vm_id).to_string();
    let location = body.get("location").cloned().unwrap_or(json!(""));
    let disk_id = |name: &str| format!("{rg_prefix}/providers/{DISKS}/{name}");
    let old_os = existing.and_then(|r| r.body.pointer("/properties/storageProfile/osDisk")).cloned();
    let image = body.pointer("/properties/storageProfile/imageReference").cloned();
    let size = body.pointer("/properties/hardwareProfile/vmSize").and_then(Value::as_str).unwrap_or_default();
    let account_type = json!(if premium_capable(size) { "Premium_LRS" } else { "Standard_LRS" });
    let Some(sp) = body.pointer_mut("/properties/storageProfile").and_then(Value::as_object_mut) else {
        return Ok(ops);
    };
    // A VM made from an image gets an OS disk even when the body names none.
    if sp.contains_key("imageReference") && !sp.contains_key("osDisk") {
        sp.insert("osDisk".into(), old_os.clone().unwrap_or_else(|| json!({ "createOption": "FromImage" })));
    }
    if let Some(os) = sp.get_mut("osDisk").and_then(Value::as_object_mut) {
        canonical_enums(os);
    }
    let unmanaged = sp.get("osDisk").is_some_and(|o| o.get("vhd").is_some());
    if let Some(os) = sp.get_mut("osDisk").and_then(Value::as_object_mut)
        && unmanaged
    {
        // An unmanaged disk (a VHD in a storage account): no disk resource.
        os.entry("osType").or_insert(json!(if windows { "Windows" } else { "Linux" }));
        os.entry("caching").or_insert(json!("ReadWrite"));
        os.entry("diskSizeGB").or_insert(json!(if windows { 127 } else { 30 }));
    } else if let Some(os) = sp.get_mut("osDisk").and_then(Value::as_object_mut) {
        // What Azure fixed at create stays: the disk's name and id.
        for k in ["name", "osType", "diskSizeGB"] {
            if let Some(v) = old_os.as_ref().and_then(|o| o.get(k)) {
                os.entry(k).or_insert(v.clone());
            }
        }
        os.entry("osType").or_insert(json!(if windows { "Windows" } else { "Linux" }));
        let name = os
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("{vm_name}_OsDisk_1_{}", guid().replace('-', "")), str::to_string);
        os.insert("name".into(), json!(name.clone()));
        os.entry("caching").or_insert(json!("ReadWrite"));
        os.entry("diskSizeGB").or_insert(json!(if windows { 127 } else { 30 }));
        os.entry("deleteOption")
            .or_insert(old_os.as_ref().and_then(|o| o.get("deleteOption")).cloned().unwrap_or_else(|| json!("Detach")));
        let old_md = old_os.as_ref().and_then(|o| o.get("managedDisk")).cloned().unwrap_or(json!({}));
        let md = os.entry("managedDisk").or_insert(json!({}));
        if let (Some(m), Some(o)) = (md.as_object_mut(), old_md.as_object()) {
            for (k, v) in o {
                m.entry(k.clone()).or_insert(v.clone());
            }
        }
        if let Some(m) = md.as_object_mut() {
            m.entry("storageAccountType").or_insert(account_type);
            m.entry("id").or_insert(json!(disk_id(&name)));
        }
        let id =
            os.get("managedDisk").and_then(|m| m.get("id")).and_then(Value::as_str).unwrap_or_default().to_string();
        if !st.resources.contains_key(&id.to_ascii_lowercase()) {
            let sku = os
                .get("managedDisk")
                .and_then(|m| m.get("storageAccountType"))
                .cloned()
                .unwrap_or(json!("Standard_LRS"));
            let mut disk = json!({
                "id": id, "name": name, "type": DISKS, "location": location, "managedBy": vm_id,
                "sku": { "name": sku },
                "properties": {
                    "osType": os.get("osType"),
                    "hyperVGeneration": "V2",
                    "creationData": { "createOption": "FromImage" },
                    "diskSizeGB": os.get("diskSizeGB"),
                    "provisioningState": "Succeeded",
                },
            });
            if let Some(r) = image_disk_reference(vm_id, &location, image.as_ref()) {
                disk["properties"]["creationData"]["imageReference"] = r;
            }
            fill_disk(&mut disk, None);
            disk["managedBy"] = json!(vm_id);
            disk["properties"]["diskState"] = json!("Attached");
            ops.push(Op::PutResource { resource: new_resource(&id, disk, now) });
        }
    }
    let old_data: Vec<String> = existing
        .map(|r| vm_disk_ids(&r.body).into_iter().skip(1).map(|d| d.to_ascii_lowercase()).collect())
        .unwrap_or_default();
    let mut now_data = Vec::new();
    if let Some(list) = sp.entry("dataDisks").or_insert(json!([])).as_array_mut() {
        for (i, d) in list.iter_mut().enumerate() {
            let Some(o) = d.as_object_mut() else { continue };
            canonical_enums(o);
            o.entry("lun").or_insert(json!(i));
            o.entry("caching").or_insert(json!("None"));
            o.entry("deleteOption").or_insert(json!("Detach"));
            let attach =
                o.get("createOption").and_then(Value::as_str).is_some_and(|c| c.eq_ignore_ascii_case("Attach"));
            let given = o.get("managedDisk").and_then(|m| m.get("id")).and_then(Value::as_str).map(str::to_string);
            let id = match (attach, given) {
                (true, Some(id)) => id,
                (true, None) => {
                    return Err(ArmError::new(
                        400,
                        "InvalidParameter",
                        "Required parameter 'dataDisk.managedDisk.id' is missing (null) for createOption 'Attach'.",
                    ));
                }
                (false, Some(id)) => id,
                (false, None) => {
                    let name = o
                        .get("name")
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("{vm_name}_DataDisk_{i}_{}", guid().replace('-', "")), str::to_string);
                    disk_id(&name)
                }
            };
            let key = id.to_ascii_lowercase();
            match st.resources.get(&key).filter(|r| r.kind == DISKS) {
                Some(disk) => {
                    if let Some(other) = disk.body.get("managedBy").and_then(Value::as_str)
                        && !other.eq_ignore_ascii_case(vm_id)
                        && st.resources.contains_key(&other.to_ascii_lowercase())
                    {
                        return Err(ArmError::new(
                            409,
                            "ConflictingUserInput",
                            format!(
                                "Disk '{}' cannot be attached as the disk is already owned by VM '{other}'.",
                                disk_name(&disk.id)
                            ),
                        ));
                    }
                    o.insert("name".into(), json!(disk_name(&disk.id)));
                    o.entry("diskSizeGB")
                        .or_insert(disk.body.pointer("/properties/diskSizeGB").cloned().unwrap_or(json!(0)));
                    o.insert(
                        "managedDisk".into(),
                        json!({ "id": disk.id, "storageAccountType": disk.body.pointer("/sku/name") }),
                    );
                    if disk.body.get("managedBy").is_none() {
                        ops.push(set_owner(disk, Some(vm_id)));
                    }
                }
                None if attach => {
                    return Err(ArmError::new(404, "NotFound", format!("Disk {id} was not found.")));
                }
                None => {
                    let name = disk_name(&id).to_string();
                    let size = o.get("diskSizeGB").cloned().unwrap_or(json!(32));
                    o.insert("name".into(), json!(name.clone()));
                    o.insert("diskSizeGB".into(), size.clone());
                    o.insert("managedDisk".into(), json!({ "id": id, "storageAccountType": "Standard_LRS" }));
                    let mut disk = json!({
                        "id": id, "name": name, "type": DISKS, "location": location,
                        "properties": { "creationData": { "createOption": "Empty" }, "diskSizeGB": size, "provisioningState": "Succeeded" },
                    });
                    fill_disk(&mut disk, None);
                    disk["managedBy"] = json!(vm_id);
                    disk["properties"]["diskState"] = json!("Attached");
                    ops.push(Op::PutResource { resource: new_resource(&id, disk, now) });
                }
            }
            now_data.push(key);
        }
    }
    // Data disks no longer listed are detached.
    for gone in old_data.iter().filter(|d| !now_data.contains(d)) {
        if let Some(disk) = st.resources.get(gone) {
            ops.push(set_owner(disk, None));
        }
    }
    Ok(ops)
}

/// Whether a VM size takes premium storage (an `s` in its family: `Standard_DS1_v2`,
/// `Standard_B2s`, `Standard_D2s_v3`), whose OS disk then defaults to `Premium_LRS`, as the
/// recording of a `Standard_DS1_v2` shows; otherwise `Standard_LRS`.
fn premium_capable(size: &str) -> bool {
    let family = size.strip_prefix("Standard_").unwrap_or(size);
    let family = family.split('_').next().unwrap_or_default();
    family.chars().skip(1).any(|c| c.eq_ignore_ascii_case(&'s'))
}

fn new_resource(id: &str, body: Value, now: u64) -> Resource {
    Resource {
        id: id.to_string(),
        kind: DISKS.to_string(),
        body,
        etag: 1,
        created_ms: now,
        busy_until_ms: 0,
        effective_ms: None,
    }
}

fn deletes(entry: Option<&Value>) -> bool {
    entry
        .and_then(|e| e.get("deleteOption").or_else(|| e.pointer("/properties/deleteOption")))
        .and_then(Value::as_str)
        .is_some_and(|o| o.eq_ignore_ascii_case("Delete"))
}

/// What a VM's delete does with its disks and network interfaces, by their `deleteOption`:
/// `Delete` removes them, anything else (`Detach`, the default) leaves them unattached.
pub(crate) fn vm_delete_ops(st: &CloudState, vm: &Resource) -> Vec<Op> {
    let mut ops = Vec::new();
    let sp = vm.body.pointer("/properties/storageProfile");
    let os = sp.and_then(|s| s.get("osDisk"));
    let data = sp.and_then(|s| s.get("dataDisks")).and_then(Value::as_array).cloned().unwrap_or_default();
    for entry in os.into_iter().chain(data.iter()) {
        let Some(id) = entry.pointer("/managedDisk/id").and_then(Value::as_str) else { continue };
        let Some(disk) = st.resources.get(&id.to_ascii_lowercase()) else { continue };
        if deletes(Some(entry)) {
            ops.push(Op::DeleteResource { key: id.to_ascii_lowercase() });
        } else {
            ops.push(set_owner(disk, None));
        }
    }
    let nics = vm.body.pointer("/properties/networkProfile/networkInterfaces").and_then(Value::as_array);
    for n in nics.into_iter().flatten() {
        let Some(id) = n.get("id").and_then(Value::as_str) else { continue };
        let key = id.to_ascii_lowercase();
        let Some(mut nic) = st.resources.get(&key).filter(|r| r.kind == NETWORK_INTERFACES).cloned() else { continue };
        if deletes(Some(n)) {
            ops.push(Op::DeleteResource { key });
            ops.extend(network_backrefs(st, &nic.kind, &nic.id, None));
            // Its public IPs whose reference says `Delete` go with it (after the back-reference
            // updates, which would otherwise write them again).
            for c in nic.body.pointer("/properties/ipConfigurations").and_then(Value::as_array).into_iter().flatten() {
                let Some(pip) = c.pointer("/properties/publicIPAddress") else { continue };
                let key = pip.get("id").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
                if deletes(Some(pip)) && st.resources.contains_key(&key) {
                    ops.push(Op::DeleteResource { key });
                }
            }
        } else {
            if let Some(p) = nic.body.get_mut("properties").and_then(Value::as_object_mut) {
                p.remove("virtualMachine");
            }
            nic.etag += 1;
            ops.push(Op::PutResource { resource: nic });
        }
    }
    ops
}
