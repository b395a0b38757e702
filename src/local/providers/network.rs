//! Provider `Microsoft.Network`: virtual networks and subnets, network security groups,
//! public IP addresses and network interfaces.

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use crate::arm::id::ResourceId;
use crate::local::http::{ArmError, empty, json_response};
use crate::local::lro::*;
use crate::local::request::*;
use crate::local::shared::guid;
use crate::local::store::{Op, Resource, State as CloudState};

pub(crate) fn prefix_ok(p: &str) -> Option<(u32, u8)> {
    let (a, l) = p.split_once('/')?;
    let mut ip = 0u32;
    let parts: Vec<&str> = a.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    for o in parts {
        ip = (ip << 8) | u32::from(o.parse::<u8>().ok()?);
    }
    let l: u8 = l.parse().ok().filter(|l| *l <= 32)?;
    Some((ip, l))
}

pub(crate) fn prepare_vnet(id: &str, _existing: Option<&Resource>, body: &mut Value) -> Result<(), ArmError> {
    let spaces: Vec<(u32, u8)> = body
        .pointer("/properties/addressSpace/addressPrefixes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|p| p.as_str().and_then(prefix_ok)).collect())
        .unwrap_or_default();
    if let Some(subnets) = body.pointer_mut("/properties/subnets").and_then(Value::as_array_mut) {
        for s in subnets.iter_mut() {
            let name = s.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            if name.is_empty() {
                return Err(ArmError::new(
                    400,
                    "InvalidRequestFormat",
                    "Cannot parse the request: a subnet has no name.",
                ));
            }
            let prefix = s.pointer("/properties/addressPrefix").and_then(Value::as_str).unwrap_or_default().to_string();
            let Some((ip, len)) = prefix_ok(&prefix) else {
                return Err(ArmError::new(
                    400,
                    "InvalidAddressPrefixFormat",
                    format!("Address prefix {prefix} of resource {id}/subnets/{name} is not formatted correctly."),
                ));
            };
            let inside = spaces.iter().any(|(sip, sl)| {
                let mask = if *sl == 0 { 0 } else { u32::MAX << (32 - sl) };
                len >= *sl && ip & mask == *sip & mask
            });
            if !spaces.is_empty() && !inside {
                return Err(ArmError::new(
                    400,
                    "NetcfgSubnetRangeOutsideVnet",
                    format!(
                        "Subnet '{name}' is not valid because its IP address range is outside the IP address range of virtual network '{}'.",
                        id.rsplit('/').next().unwrap_or_default()
                    ),
                ));
            }
            s["id"] = json!(format!("{id}/subnets/{name}"));
            if let Some(p) = s.get_mut("properties").and_then(Value::as_object_mut) {
                p.insert("provisioningState".into(), json!("Succeeded"));
            }
            s["type"] = json!("Microsoft.Network/virtualNetworks/subnets");
        }
    } else if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("subnets".into(), json!([]));
    }
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.entry("virtualNetworkPeerings").or_insert(json!([]));
        p.entry("enableDdosProtection").or_insert(json!(false));
        p.insert("resourceGuid".into(), json!(guid()));
    }
    Ok(())
}

pub(crate) fn prepare_nsg(id: &str, body: &mut Value) {
    if let Some(rules) = body.pointer_mut("/properties/securityRules").and_then(Value::as_array_mut) {
        for r in rules.iter_mut() {
            let name = r.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            r["id"] = json!(format!("{id}/securityRules/{name}"));
            r["type"] = json!("Microsoft.Network/networkSecurityGroups/securityRules");
            if let Some(p) = r.get_mut("properties").and_then(Value::as_object_mut) {
                p.insert("provisioningState".into(), json!("Succeeded"));
            }
        }
    } else if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("securityRules".into(), json!([]));
    }
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("resourceGuid".into(), json!(guid()));
    }
}

pub(crate) fn prepare_pip(st: &CloudState, existing: Option<&Resource>, body: &mut Value) {
    if body.get("sku").is_none() {
        body["sku"] = json!({ "name": "Standard", "tier": "Regional" });
    }
    let standard =
        body.pointer("/sku/name").and_then(Value::as_str).is_some_and(|s| s.eq_ignore_ascii_case("Standard"));
    let old_ip = existing.and_then(|r| r.body.pointer("/properties/ipAddress").cloned());
    let used_by = existing.and_then(|r| r.body.pointer("/properties/ipConfiguration").cloned());
    let n = st.resources.values().filter(|r| r.kind == "Microsoft.Network/publicIPAddresses").count() as u32 + 1;
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.entry("publicIPAllocationMethod").or_insert(json!(if standard { "Static" } else { "Dynamic" }));
        p.entry("publicIPAddressVersion").or_insert(json!("IPv4"));
        p.entry("idleTimeoutInMinutes").or_insert(json!(4));
        p.insert(
            "ipAddress".into(),
            old_ip.unwrap_or_else(|| json!(format!("20.{}.{}.{}", 1 + (n >> 16) % 250, (n >> 8) % 256, n % 256))),
        );
        p.insert("resourceGuid".into(), json!(guid()));
        if let Some(u) = used_by {
            p.insert("ipConfiguration".into(), u);
        }
    }
}

pub(crate) fn find_subnet(st: &CloudState, subnet_id: &str) -> Option<Value> {
    let vnet = subnet_id.to_ascii_lowercase();
    let cut = vnet.rfind("/subnets/")?;
    let v = st.resources.get(&vnet[..cut])?;
    v.body
        .pointer("/properties/subnets")?
        .as_array()?
        .iter()
        .find(|s| s.get("id").and_then(Value::as_str).is_some_and(|i| i.eq_ignore_ascii_case(subnet_id)))
        .cloned()
}

pub(crate) fn prepare_nic(
    st: &CloudState,
    id: &str,
    existing: Option<&Resource>,
    body: &mut Value,
) -> Result<(), ArmError> {
    let configs = body.pointer_mut("/properties/ipConfigurations").and_then(Value::as_array_mut);
    let Some(configs) = configs.filter(|c| !c.is_empty()) else {
        return Err(ArmError::new(
            400,
            "NetworkInterfaceMustHaveAtLeastOneIpConfiguration",
            format!("Network interface {id} must have at least one IP configuration."),
        ));
    };
    let n = st.resources.values().filter(|r| r.kind == "Microsoft.Network/networkInterfaces").count() as u32;
    let primary_subnet = configs.first().and_then(|c| c.pointer("/properties/subnet/id")).cloned();
    for (i, c) in configs.iter_mut().enumerate() {
        if c.get("properties").is_none() {
            c["properties"] = json!({});
        }
        if c.pointer("/properties/subnet/id").is_none()
            && let Some(sid) = &primary_subnet
        {
            c["properties"]["subnet"] = json!({ "id": sid });
        }
        let name = c.get("name").and_then(Value::as_str).unwrap_or("ipconfig1").to_string();
        c["name"] = json!(name);
        c["id"] = json!(format!("{id}/ipConfigurations/{name}"));
        c["type"] = json!("Microsoft.Network/networkInterfaces/ipConfigurations");
        let Some(p) = c.get_mut("properties").and_then(Value::as_object_mut) else {
            return Err(ArmError::new(400, "InvalidRequestFormat", "an IP configuration has no properties"));
        };
        let subnet_id =
            p.get("subnet").and_then(|s| s.get("id")).and_then(Value::as_str).unwrap_or_default().to_string();
        let Some(subnet) = find_subnet(st, &subnet_id) else {
            return Err(invalid_reference(&subnet_id, id));
        };
        if let Some(pip) = p.get("publicIPAddress").and_then(|s| s.get("id")).and_then(Value::as_str)
            && !st.resources.contains_key(&pip.to_ascii_lowercase())
        {
            return Err(invalid_reference(pip, id));
        }
        let prefix = subnet.pointer("/properties/addressPrefix").and_then(Value::as_str).and_then(prefix_ok);
        let old = existing.and_then(|r| {
            r.body.pointer(&format!("/properties/ipConfigurations/{i}/properties/privateIPAddress")).cloned()
        });
        let ip = old.unwrap_or_else(|| {
            let (base, _) = prefix.unwrap_or((0x0a00_0000, 24));
            let a = base + 4 + n + i as u32;
            json!(format!("{}.{}.{}.{}", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255))
        });
        p.entry("privateIPAllocationMethod").or_insert(json!("Dynamic"));
        p.insert("privateIPAddress".into(), ip);
        p.entry("privateIPAddressVersion").or_insert(json!("IPv4"));
        p.entry("primary").or_insert(json!(i == 0));
        p.insert("provisioningState".into(), json!("Succeeded"));
    }
    if let Some(nsg) = body.pointer("/properties/networkSecurityGroup/id").and_then(Value::as_str)
        && !st.resources.contains_key(&nsg.to_ascii_lowercase())
    {
        return Err(invalid_reference(nsg, id));
    }
    let vm = existing.and_then(|r| r.body.pointer("/properties/virtualMachine").cloned());
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        if let Some(vm) = vm {
            p.insert("virtualMachine".into(), vm);
        }
        p.insert("resourceGuid".into(), json!(guid()));
        p.entry("macAddress").or_insert(json!(format!(
            "00-0D-3A-{:02X}-{:02X}-{:02X}",
            (n >> 16) & 255,
            (n >> 8) & 255,
            n & 255
        )));
        p.entry("enableAcceleratedNetworking").or_insert(json!(false));
        p.entry("enableIPForwarding").or_insert(json!(false));
        p.entry("vnetEncryptionSupported").or_insert(json!(false));
        let dns = p.entry("dnsSettings").or_insert(json!({}));
        if let Some(d) = dns.as_object_mut() {
            let servers = d.entry("dnsServers").or_insert(json!([])).clone();
            d.entry("appliedDnsServers").or_insert(servers);
        }
    }
    Ok(())
}

/// Public IPs record the NIC configuration that uses them (and forget it when it goes).
pub(crate) fn pip_backrefs(st: &CloudState, nic_id: &str, old: Option<&Value>, new: Option<&Value>) -> Vec<Op> {
    let refs = |b: Option<&Value>| -> Vec<(String, String)> {
        b.and_then(|b| b.pointer("/properties/ipConfigurations"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| {
                        let pip = c.pointer("/properties/publicIPAddress/id")?.as_str()?.to_ascii_lowercase();
                        let cfg = c
                            .get("id")
                            .and_then(Value::as_str)
                            .map_or_else(|| format!("{nic_id}/ipConfigurations/ipconfig1"), str::to_string);
                        Some((pip, cfg))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (before, after) = (refs(old), refs(new));
    let mut ops = Vec::new();
    for (pip, cfg) in &after {
        if let Some(mut r) = st.resources.get(pip).cloned() {
            r.body["properties"]["ipConfiguration"] = json!({ "id": cfg });
            r.etag += 1;
            ops.push(Op::PutResource { resource: r });
        }
    }
    for (pip, _) in before.iter().filter(|(p, _)| !after.iter().any(|(a, _)| a == p)) {
        if let Some(mut r) = st.resources.get(pip).cloned() {
            if let Some(p) = r.body.get_mut("properties").and_then(Value::as_object_mut) {
                p.remove("ipConfiguration");
            }
            r.etag += 1;
            ops.push(Op::PutResource { resource: r });
        }
    }
    ops
}

pub(crate) fn subnet(req: &mut Req<'_>, id: &ResourceId) -> Result<Response, ArmError> {
    let parent = id.parent().ok_or_else(|| not_found(id))?;
    let Some(mut vnet) = req.sh.store().state.resources.get(&parent.key()).cloned() else {
        return Err(parent_not_found(parent.as_str()));
    };
    let name = id.name().unwrap_or_default().to_string();
    let subnets = vnet.body.pointer("/properties/subnets").and_then(Value::as_array).cloned().unwrap_or_default();
    let pos = subnets
        .iter()
        .position(|s| s.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(&name)));
    match req.method {
        Method::GET => pos.map(|i| json_response(200, &subnets[i], &[])).ok_or_else(|| not_found(id)),
        Method::PUT => {
            if pos.is_none() {
                let canon = "Microsoft.Network/virtualNetworks/subnets";
                check_resource_name(&canon.to_ascii_lowercase(), canon, &name)?;
            }
            let mut b = parse_body(req)?;
            b["name"] = json!(name);
            let mut list = subnets.clone();
            match pos {
                Some(i) => list[i] = b,
                None => list.push(b),
            }
            vnet.body["properties"]["subnets"] = Value::Array(list);
            prepare_vnet(&vnet.id, None, &mut vnet.body)?;
            vnet.etag += 1;
            let shown = vnet
                .body
                .pointer("/properties/subnets")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find(|s| s.get("name").and_then(Value::as_str) == Some(name.as_str())).cloned())
                .unwrap_or(json!({}));
            req.sh.commit(vec![Op::PutResource { resource: vnet }])?;
            let op = start_operation(req.sh, "microsoft.network/virtualnetworks/subnets", None);
            Ok(json_response(if pos.is_some() { 200 } else { 201 }, &shown, &lro_headers(req, &op, false)))
        }
        Method::DELETE => {
            let Some(i) = pos else { return Ok(empty(204, &[])) };
            let mut list = subnets;
            list.remove(i);
            vnet.body["properties"]["subnets"] = Value::Array(list);
            vnet.etag += 1;
            req.sh.commit(vec![Op::PutResource { resource: vnet }])?;
            Ok(empty(200, &[]))
        }
        _ => Err(method_not_allowed()),
    }
}
