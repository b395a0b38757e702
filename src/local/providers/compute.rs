//! Provider `Microsoft.Compute`: virtual machines and their identities.

use serde_json::{Map, Value, json};

use crate::local::auth::Caller;
use crate::local::http::ArmError;
use crate::local::principals;
use crate::local::rbac::{self};
use crate::local::request::*;
use crate::local::shared::{Shared, guid};
use crate::local::store::{Op, Resource, State as CloudState};

pub(crate) fn vm_nics(body: &Value) -> Vec<String> {
    body.pointer("/properties/networkProfile/networkInterfaces")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|n| n.get("id").and_then(Value::as_str).map(str::to_string)).collect())
        .unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare_vm(
    sh: &Shared,
    st: &CloudState,
    id: &str,
    existing: Option<&Resource>,
    body: &mut Value,
    extra: &mut Vec<Op>,
    caller: Option<&Caller>,
    now: u64,
) -> Result<(), ArmError> {
    // Network interfaces must exist and not belong to another VM.
    let nics = vm_nics(body);
    for nic in &nics {
        let Some(n) = st.resources.get(&nic.to_ascii_lowercase()) else {
            return Err(invalid_reference(nic, id));
        };
        if let Some(other) = n.body.pointer("/properties/virtualMachine/id").and_then(Value::as_str)
            && !other.eq_ignore_ascii_case(id)
            && st.resources.contains_key(&other.to_ascii_lowercase())
        {
            return Err(ArmError::new(
                400,
                "NicInUse",
                format!("Network interface {nic} is in use by virtual machine {other}."),
            ));
        }
    }
    // Identities.
    let ident = body.get("identity").cloned().unwrap_or(json!({ "type": "None" }));
    let raw_type = ident.get("type").and_then(Value::as_str).unwrap_or("None");
    let mut system = false;
    let mut user = false;
    for part in raw_type.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.to_ascii_lowercase().as_str() {
            "systemassigned" => system = true,
            "userassigned" => user = true,
            "none" => {}
            _ => {
                return Err(ArmError::new(
                    400,
                    "InvalidIdentityType",
                    format!(
                        "The identity type '{raw_type}' is invalid. Allowed values: 'SystemAssigned', 'UserAssigned', 'SystemAssigned, UserAssigned', 'None'."
                    ),
                ));
            }
        }
    }
    let ua: Vec<String> = ident
        .get("userAssignedIdentities")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    if user && ua.is_empty() {
        return Err(ArmError::new(
            400,
            "InvalidIdentityValues",
            "Invalid value for the identities: 'userAssignedIdentities' is required when the type contains 'UserAssigned'.",
        ));
    }
    if !user && !ua.is_empty() {
        return Err(ArmError::new(
            400,
            "InvalidIdentityValues",
            "Invalid value for the identities: the type must contain 'UserAssigned' when 'userAssignedIdentities' is given.",
        ));
    }
    let old_ua: Vec<String> = existing
        .and_then(|r| r.body.pointer("/identity/userAssignedIdentities"))
        .and_then(Value::as_object)
        .map(|m| m.keys().map(|k| k.to_ascii_lowercase()).collect())
        .unwrap_or_default();
    let g = rbac::grants(st, now);
    let mut ua_out = Map::new();
    for uid in &ua {
        let Some(r) = st
            .resources
            .get(&uid.to_ascii_lowercase())
            .filter(|r| r.kind == "Microsoft.ManagedIdentity/userAssignedIdentities")
        else {
            return Err(ArmError::new(
                400,
                "FailedIdentityOperation",
                format!("Identity (principal) with resource id '{uid}' was not found."),
            ));
        };
        if !old_ua.contains(&uid.to_ascii_lowercase())
            && let Some(c) = caller
        {
            let action = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action";
            if !rbac::allowed(&g, &c.object_id, &r.id, action, false) {
                return Err(ArmError::new(
                    403,
                    "LinkedAuthorizationFailed",
                    format!(
                        "The client '{}' with object id '{}' has permission to perform action 'Microsoft.Compute/virtualMachines/write' on scope '{id}'; however, it does not have permission to perform action(s) '{action}' on the linked scope(s) '{}' (respectively) or the linked scope(s) are invalid.",
                        c.client_id, c.object_id, r.id
                    ),
                ));
            }
        }
        ua_out.insert(r.id.clone(), json!({ "principalId": r.body.pointer("/properties/principalId"), "clientId": r.body.pointer("/properties/clientId") }));
    }
    let old_sys =
        existing.and_then(|r| r.body.pointer("/identity/principalId")).and_then(Value::as_str).map(str::to_string);
    let mut identity = json!({ "type": match (system, user) { (true, true) => "SystemAssigned, UserAssigned", (true, false) => "SystemAssigned", (false, true) => "UserAssigned", _ => "None" } });
    if system {
        let pid = principals::system_principal(st, old_sys.as_deref(), id, now, extra);
        identity["principalId"] = json!(pid);
        identity["tenantId"] = json!(sh.info.tenant_id);
    } else if let Some(p) = old_sys {
        extra.push(Op::DeletePrincipal { object_id: p });
    }
    if user {
        identity["userAssignedIdentities"] = Value::Object(ua_out);
    }
    body["identity"] = identity;
    // Secrets never come back, and server-filled fields.
    let vm_id = existing.and_then(|r| r.body.pointer("/properties/vmId").cloned()).unwrap_or_else(|| json!(guid()));
    let created = existing.and_then(|r| r.body.pointer("/properties/timeCreated").cloned()).unwrap_or_else(|| {
        json!(
            time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
        )
    });
    let rg_prefix = id.split("/providers/").next().unwrap_or_default().to_string();
    let vm_name = id.rsplit('/').next().unwrap_or_default().to_string();
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        let windows = p
            .get("storageProfile")
            .and_then(|s| s.pointer("/imageReference/publisher"))
            .and_then(Value::as_str)
            .is_some_and(|x| x.to_ascii_lowercase().contains("windows"))
            || p.get("storageProfile")
                .and_then(|s| s.pointer("/osDisk/osType"))
                .and_then(Value::as_str)
                .is_some_and(|x| x.eq_ignore_ascii_case("Windows"));
        if let Some(os) = p.get_mut("osProfile").and_then(Value::as_object_mut) {
            os.remove("adminPassword");
            os.remove("customData");
            os.entry("secrets").or_insert(json!([]));
            let (key, defaults) = if windows {
                ("windowsConfiguration", json!({ "provisionVMAgent": true, "enableAutomaticUpdates": true }))
            } else {
                ("linuxConfiguration", json!({ "disablePasswordAuthentication": false, "provisionVMAgent": true }))
            };
            let cfg = os.entry(key).or_insert(json!({}));
            if let (Some(c), Some(d)) = (cfg.as_object_mut(), defaults.as_object()) {
                for (k, v) in d {
                    c.entry(k.clone()).or_insert(v.clone());
                }
            }
        }
        if let Some(sp) = p.get_mut("storageProfile").and_then(Value::as_object_mut) {
            let disk_id = |name: &str| json!(format!("{rg_prefix}/providers/Microsoft.Compute/disks/{name}"));
            if let Some(os) = sp.get_mut("osDisk").and_then(Value::as_object_mut) {
                os.entry("osType").or_insert(json!(if windows { "Windows" } else { "Linux" }));
                let name = os
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("{vm_name}_OsDisk_1"), str::to_string);
                os.entry("name").or_insert(json!(name.clone()));
                os.entry("diskSizeGB").or_insert(json!(if windows { 127 } else { 30 }));
                if let Some(md) = os.entry("managedDisk").or_insert(json!({})).as_object_mut() {
                    md.entry("id").or_insert(disk_id(&name));
                }
            }
            if let Some(list) = sp.entry("dataDisks").or_insert(json!([])).as_array_mut() {
                for (i, d) in list.iter_mut().enumerate() {
                    let name = d
                        .get("name")
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("{vm_name}_DataDisk_{i}"), str::to_string);
                    if let Some(o) = d.as_object_mut() {
                        o.entry("name").or_insert(json!(name.clone()));
                        o.entry("diskSizeGB").or_insert(json!(32));
                        if let Some(md) = o.entry("managedDisk").or_insert(json!({})).as_object_mut() {
                            md.entry("id").or_insert(disk_id(&name));
                        }
                    }
                }
            }
        }
        p.insert("vmId".into(), vm_id);
        p.insert("timeCreated".into(), created);
    }
    // NICs point back at their VM.
    for nic in nics {
        if let Some(mut n) = st.resources.get(&nic.to_ascii_lowercase()).cloned() {
            n.body["properties"]["virtualMachine"] = json!({ "id": id });
            n.etag += 1;
            extra.push(Op::PutResource { resource: n });
        }
    }
    Ok(())
}
