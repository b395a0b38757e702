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

/// A weak etag in Azure Network's form (`W/"<guid>"`), given to the sub-resources
/// (subnets, rules, IP configurations) of a resource each time it is written.
fn weak_etag() -> Value {
    json!(format!("W/\"{}\"", guid()))
}

/// A reference as Azure Network stores it: only its `id` (a request may send the whole
/// referenced resource).
fn id_only(v: &mut Value, key: &str) {
    if let Some(id) = v.get(key).and_then(|r| r.get("id")).cloned() {
        v[key] = json!({ "id": id });
    }
}

/// `value` as one of an enum's `values` in the enum's own case (ARM's enums are taken in any
/// case and answered in the spec's), or `None` when it is not one of them.
pub(crate) fn canonical(value: &str, values: &[&'static str]) -> Option<&'static str> {
    values.iter().copied().find(|c| c.eq_ignore_ascii_case(value))
}

/// A NIC configuration's public IP as Azure Network keeps it: its `id` and, when sent, the
/// `deleteOption` (`Delete`, `Detach`) that decides whether the public IP goes when the VM
/// using the NIC is deleted. The spec (`PublicIPAddressPropertiesFormat.deleteOption`, Network
/// 2024-07-01) puts it on the public IP; it takes effect only on the NIC's reference, which
/// reads it back (Azure/azure-sdk-for-java#38806, its test in #39096).
fn public_ip_reference(v: &mut Value) {
    let option = v
        .pointer("/publicIPAddress/properties/deleteOption")
        .and_then(Value::as_str)
        .and_then(|o| canonical(o, &["Delete", "Detach"]));
    id_only(v, "publicIPAddress");
    if let (Some(o), Some(r)) = (option, v.get_mut("publicIPAddress")) {
        r["properties"] = json!({ "deleteOption": o });
    }
}

/// The resource GUID is made once, at creation, and kept by every update.
fn keep_guid(existing: Option<&Resource>, body: &mut Value) {
    let g = existing.and_then(|r| r.body.pointer("/properties/resourceGuid").cloned()).unwrap_or_else(|| json!(guid()));
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("resourceGuid".into(), g);
    }
}

pub(crate) fn prepare_vnet(
    st: &CloudState,
    id: &str,
    existing: Option<&Resource>,
    body: &mut Value,
) -> Result<(), ArmError> {
    let spaces: Vec<(u32, u8)> = body
        .pointer("/properties/addressSpace/addressPrefixes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|p| p.as_str().and_then(prefix_ok)).collect())
        .unwrap_or_default();
    let etag = weak_etag();
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
            s["etag"] = etag.clone();
            if let Some(o) = s.as_object_mut() {
                o.remove("tags");
            }
            if let Some(p) = s.get_mut("properties").and_then(Value::as_object_mut) {
                p.insert("provisioningState".into(), json!("Succeeded"));
                p.entry("delegations").or_insert(json!([]));
                // Read-only: IP configurations are listed by the NICs that use the subnet.
                p.remove("ipConfigurations");
                p.remove("resourceNavigationLinks");
            }
            let mut props = s.get("properties").cloned().unwrap_or(json!({}));
            id_only(&mut props, "networkSecurityGroup");
            if let Some(nsg) = props.pointer("/networkSecurityGroup/id").and_then(Value::as_str)
                && !st.resources.contains_key(&nsg.to_ascii_lowercase())
            {
                return Err(invalid_reference(nsg, id));
            }
            s["properties"] = props;
            s["type"] = json!("Microsoft.Network/virtualNetworks/subnets");
        }
    } else if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("subnets".into(), json!([]));
    }
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.entry("virtualNetworkPeerings").or_insert(json!([]));
        p.entry("enableDdosProtection").or_insert(json!(false));
        p.entry("enableVmProtection").or_insert(json!(false));
    }
    keep_guid(existing, body);
    Ok(())
}

/// The six rules Azure puts in every network security group (names, priorities and
/// descriptions as `TestNetworkSecurityGroupCRUD.json` records them):
/// (name, description, source, destination, access, priority, direction).
const DEFAULT_RULES: &[(&str, &str, &str, &str, &str, u32, &str)] = &[
    (
        "AllowVnetInBound",
        "Allow inbound traffic from all VMs in VNET",
        "VirtualNetwork",
        "VirtualNetwork",
        "Allow",
        65000,
        "Inbound",
    ),
    (
        "AllowAzureLoadBalancerInBound",
        "Allow inbound traffic from azure load balancer",
        "AzureLoadBalancer",
        "*",
        "Allow",
        65001,
        "Inbound",
    ),
    ("DenyAllInBound", "Deny all inbound traffic", "*", "*", "Deny", 65500, "Inbound"),
    (
        "AllowVnetOutBound",
        "Allow outbound traffic from all VMs to all VMs in VNET",
        "VirtualNetwork",
        "VirtualNetwork",
        "Allow",
        65000,
        "Outbound",
    ),
    (
        "AllowInternetOutBound",
        "Allow outbound traffic from all VMs to Internet",
        "*",
        "Internet",
        "Allow",
        65001,
        "Outbound",
    ),
    ("DenyAllOutBound", "Deny all outbound traffic", "*", "*", "Deny", 65500, "Outbound"),
];

/// The default rules of the group `id`.
pub(crate) fn default_security_rules(id: &str, etag: &Value) -> Value {
    let rules: Vec<Value> = DEFAULT_RULES
        .iter()
        .map(|(name, description, source, destination, access, priority, direction)| {
            json!({
                "name": name,
                "id": format!("{id}/defaultSecurityRules/{name}"),
                "etag": etag,
                "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
                "properties": {
                    "provisioningState": "Succeeded",
                    "description": description,
                    "protocol": "*",
                    "sourcePortRange": "*",
                    "destinationPortRange": "*",
                    "sourceAddressPrefix": source,
                    "destinationAddressPrefix": destination,
                    "access": access,
                    "priority": priority,
                    "direction": direction,
                    "sourcePortRanges": [],
                    "destinationPortRanges": [],
                    "sourceAddressPrefixes": [],
                    "destinationAddressPrefixes": [],
                }
            })
        })
        .collect();
    Value::Array(rules)
}

pub(crate) fn prepare_nsg(id: &str, existing: Option<&Resource>, body: &mut Value) {
    let etag = weak_etag();
    if let Some(rules) = body.pointer_mut("/properties/securityRules").and_then(Value::as_array_mut) {
        for r in rules.iter_mut() {
            let name = r.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            r["id"] = json!(format!("{id}/securityRules/{name}"));
            r["type"] = json!("Microsoft.Network/networkSecurityGroups/securityRules");
            r["etag"] = etag.clone();
            if let Some(p) = r.get_mut("properties").and_then(Value::as_object_mut) {
                p.insert("provisioningState".into(), json!("Succeeded"));
                for list in
                    ["sourcePortRanges", "destinationPortRanges", "sourceAddressPrefixes", "destinationAddressPrefixes"]
                {
                    p.entry(list).or_insert(json!([]));
                }
            }
        }
    } else if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("securityRules".into(), json!([]));
    }
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        // Read-only: the defaults are Azure's, the back-references are the users'.
        p.insert("defaultSecurityRules".into(), default_security_rules(id, &etag));
        p.remove("networkInterfaces");
        p.remove("subnets");
    }
    keep_guid(existing, body);
}

pub(crate) fn prepare_pip(st: &CloudState, existing: Option<&Resource>, body: &mut Value) {
    if body.get("sku").is_none() {
        body["sku"] = json!({ "name": "Standard", "tier": "Regional" });
    }
    if let Some(sku) = body.get_mut("sku").and_then(Value::as_object_mut) {
        sku.entry("tier").or_insert(json!("Regional"));
    }
    let standard =
        body.pointer("/sku/name").and_then(Value::as_str).is_some_and(|s| s.eq_ignore_ascii_case("Standard"));
    let old_ip = existing.and_then(|r| r.body.pointer("/properties/ipAddress").cloned());
    let n = st.resources.values().filter(|r| r.kind == "Microsoft.Network/publicIPAddresses").count() as u32 + 1;
    let location = body.get("location").and_then(Value::as_str).map(normalize_location).unwrap_or_default();
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.entry("publicIPAllocationMethod").or_insert(json!(if standard { "Static" } else { "Dynamic" }));
        p.entry("publicIPAddressVersion").or_insert(json!("IPv4"));
        p.entry("idleTimeoutInMinutes").or_insert(json!(4));
        p.entry("ipTags").or_insert(json!([]));
        p.insert(
            "ipAddress".into(),
            old_ip.unwrap_or_else(|| json!(format!("20.{}.{}.{}", 1 + (n >> 16) % 250, (n >> 8) % 256, n % 256))),
        );
        // Read-only: the NIC configuration that uses it is set by the NIC.
        p.remove("ipConfiguration");
        if let Some(d) = p.get_mut("dnsSettings").and_then(Value::as_object_mut)
            && let Some(label) = d.get("domainNameLabel").and_then(Value::as_str).map(str::to_ascii_lowercase)
        {
            d.insert("fqdn".into(), json!(format!("{label}.{location}.cloudapp.azure.com")));
        }
    }
    keep_guid(existing, body);
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
    let etag = weak_etag();
    let mut vnet_guid = String::new();
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
        c["etag"] = etag.clone();
        c["type"] = json!("Microsoft.Network/networkInterfaces/ipConfigurations");
        id_only(&mut c["properties"], "subnet");
        public_ip_reference(&mut c["properties"]);
        let Some(p) = c.get_mut("properties").and_then(Value::as_object_mut) else {
            return Err(ArmError::new(400, "InvalidRequestFormat", "an IP configuration has no properties"));
        };
        let subnet_id =
            p.get("subnet").and_then(|s| s.get("id")).and_then(Value::as_str).unwrap_or_default().to_string();
        let Some(subnet) = find_subnet(st, &subnet_id) else {
            return Err(invalid_reference(&subnet_id, id));
        };
        if vnet_guid.is_empty()
            && let Some(cut) = subnet_id.to_ascii_lowercase().rfind("/subnets/")
            && let Some(g) = st
                .resources
                .get(&subnet_id.to_ascii_lowercase()[..cut])
                .and_then(|v| v.body.pointer("/properties/resourceGuid").and_then(Value::as_str).map(str::to_string))
        {
            vnet_guid = g;
        }
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
    if let Some(props) = body.get_mut("properties") {
        id_only(props, "networkSecurityGroup");
    }
    if let Some(nsg) = body.pointer("/properties/networkSecurityGroup/id").and_then(Value::as_str)
        && !st.resources.contains_key(&nsg.to_ascii_lowercase())
    {
        return Err(invalid_reference(nsg, id));
    }
    let vm = existing.and_then(|r| r.body.pointer("/properties/virtualMachine").cloned());
    // Azure names a VNet's internal DNS suffix once per virtual network.
    let suffix: String = vnet_guid.chars().filter(char::is_ascii_alphanumeric).take(26).collect();
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        if let Some(vm) = vm {
            p.insert("virtualMachine".into(), vm);
        }
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
            d.insert("internalDomainNameSuffix".into(), json!(format!("{suffix}.dx.internal.cloudapp.net")));
        }
    }
    keep_guid(existing, body);
    Ok(())
}

/// The read-only back-references Azure Network keeps: a public IP names the NIC
/// configuration that uses it (`ipConfiguration`), a subnet the NIC configurations in it
/// (`ipConfigurations`), a network security group the NICs (`networkInterfaces`) and
/// subnets (`subnets`) it is attached to.
#[derive(Default)]
struct BackRefs {
    pip: std::collections::HashMap<String, String>,
    subnet: std::collections::HashMap<String, Vec<String>>,
    nsg_nics: std::collections::HashMap<String, Vec<String>>,
    nsg_subnets: std::collections::HashMap<String, Vec<String>>,
}

impl BackRefs {
    fn collect<'a>(resources: impl Iterator<Item = (&'a str, &'a Value)>) -> BackRefs {
        let mut b = BackRefs::default();
        let s = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        for (kind, body) in resources {
            if kind.eq_ignore_ascii_case("Microsoft.Network/networkInterfaces") {
                let nic = s(body, "/id").unwrap_or_default();
                for c in body.pointer("/properties/ipConfigurations").and_then(Value::as_array).into_iter().flatten() {
                    let cfg = s(c, "/id").unwrap_or_default();
                    if let Some(pip) = s(c, "/properties/publicIPAddress/id") {
                        b.pip.insert(pip.to_ascii_lowercase(), cfg.clone());
                    }
                    if let Some(sub) = s(c, "/properties/subnet/id") {
                        b.subnet.entry(sub.to_ascii_lowercase()).or_default().push(cfg.clone());
                    }
                }
                if let Some(nsg) = s(body, "/properties/networkSecurityGroup/id") {
                    b.nsg_nics.entry(nsg.to_ascii_lowercase()).or_default().push(nic);
                }
            } else if kind.eq_ignore_ascii_case("Microsoft.Network/virtualNetworks") {
                for sub in body.pointer("/properties/subnets").and_then(Value::as_array).into_iter().flatten() {
                    if let (Some(nsg), Some(id)) = (s(sub, "/properties/networkSecurityGroup/id"), s(sub, "/id")) {
                        b.nsg_subnets.entry(nsg.to_ascii_lowercase()).or_default().push(id);
                    }
                }
            }
        }
        b
    }

    /// Set the back-references of one resource in its body.
    fn apply(&self, kind: &str, id: &str, body: &mut Value) {
        let key = id.to_ascii_lowercase();
        let refs = |ids: &[String]| Value::Array(ids.iter().map(|i| json!({ "id": i })).collect());
        let set = |p: &mut serde_json::Map<String, Value>, k: &str, v: Option<Value>| match v {
            Some(v) => {
                p.insert(k.into(), v);
            }
            None => {
                p.remove(k);
            }
        };
        if kind.eq_ignore_ascii_case("Microsoft.Network/publicIPAddresses") {
            if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
                set(p, "ipConfiguration", self.pip.get(&key).map(|c| json!({ "id": c })));
            }
        } else if kind.eq_ignore_ascii_case("Microsoft.Network/networkSecurityGroups") {
            if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
                set(p, "networkInterfaces", self.nsg_nics.get(&key).map(|v| refs(v)));
                set(p, "subnets", self.nsg_subnets.get(&key).map(|v| refs(v)));
            }
        } else if kind.eq_ignore_ascii_case("Microsoft.Network/virtualNetworks") {
            for sub in body.pointer_mut("/properties/subnets").and_then(Value::as_array_mut).into_iter().flatten() {
                let sk = sub.get("id").and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
                if let Some(p) = sub.get_mut("properties").and_then(Value::as_object_mut) {
                    set(p, "ipConfigurations", self.subnet.get(&sk).map(|v| refs(v)));
                }
            }
        }
    }
}

/// Azure Network's refusals to delete what is still in use, all `400` and synchronous, with
/// the codes and messages Azure answers (as its clients report them: `NicInUse` in
/// hashicorp/terraform-provider-azurerm#8105, `PublicIPAddressCannotBeDeleted` in #2566,
/// `InUseNetworkSecurityGroupCannotBeDeleted` in DataBiosphere/terra-workspace-manager#502 and
/// pulumi/pulumi-azure-native#3051, `InUseSubnetCannotBeDeleted` in
/// hashicorp/packer-plugin-azure#273): a NIC a VM holds, a public IP a NIC configuration uses,
/// a network security group attached to a NIC or a subnet, a virtual network one of whose
/// subnets holds a NIC configuration.
pub(crate) fn check_network_delete(st: &CloudState, r: &Resource) -> Result<(), ArmError> {
    let kind = r.kind.to_ascii_lowercase();
    if kind == "microsoft.network/networkinterfaces" {
        if let Some(vm) = r.body.pointer("/properties/virtualMachine/id").and_then(Value::as_str)
            && st.resources.contains_key(&vm.to_ascii_lowercase())
        {
            return Err(ArmError::new(
                400,
                "NicInUse",
                format!(
                    "Network Interface {} is used by existing resource {vm}. In order to delete the network interface, it must be dissociated from the resource. To learn more, see aka.ms/deletenic.",
                    r.id
                ),
            ));
        }
        return Ok(());
    }
    let refs = BackRefs::collect(st.resources.values().map(|x| (x.kind.as_str(), &x.body)));
    let key = r.id.to_ascii_lowercase();
    match kind.as_str() {
        "microsoft.network/publicipaddresses" => match refs.pip.get(&key) {
            Some(cfg) => Err(ArmError::new(
                400,
                "PublicIPAddressCannotBeDeleted",
                format!(
                    "Public IP address {} can not be deleted since it is still allocated to resource {cfg}. In order to delete the public IP, disassociate/detach the Public IP address from the resource.  To learn how to do this, see aka.ms/deletepublicip.",
                    r.id
                ),
            )),
            None => Ok(()),
        },
        "microsoft.network/networksecuritygroups" => {
            let users: Vec<&String> =
                refs.nsg_nics.get(&key).into_iter().chain(refs.nsg_subnets.get(&key)).flatten().collect();
            if users.is_empty() {
                return Ok(());
            }
            let list: Vec<&str> = users.iter().map(|u| u.as_str()).collect();
            Err(ArmError::new(
                400,
                "InUseNetworkSecurityGroupCannotBeDeleted",
                format!(
                    "Network security group {} cannot be deleted because it is in use by the following resources: {}. In order to delete the Network security group, remove the association with the resource(s).",
                    r.id,
                    list.join(", ")
                ),
            ))
        }
        "microsoft.network/virtualnetworks" => {
            for sub in r.body.pointer("/properties/subnets").and_then(Value::as_array).into_iter().flatten() {
                let id = sub.get("id").and_then(Value::as_str).unwrap_or_default();
                let name = sub.get("name").and_then(Value::as_str).unwrap_or_default();
                subnet_free(&refs, id, name)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `InUseSubnetCannotBeDeleted` when NIC configurations are in subnet `id` (`name`).
fn subnet_free(refs: &BackRefs, id: &str, name: &str) -> Result<(), ArmError> {
    match refs.subnet.get(&id.to_ascii_lowercase()).filter(|c| !c.is_empty()) {
        Some(cfgs) => Err(ArmError::new(
            400,
            "InUseSubnetCannotBeDeleted",
            format!(
                "Subnet {name} is in use by {} and cannot be deleted. In order to delete the subnet, delete all the resources within the subnet. See aka.ms/deletesubnet.",
                cfgs.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// After a write of the network resource `id` (its new body, or `None` when it is deleted):
/// set the back-references in that body and return the updates of the other network
/// resources whose back-references change.
pub(crate) fn network_backrefs(st: &CloudState, kind: &str, id: &str, new: Option<&mut Value>) -> Vec<Op> {
    let key = id.to_ascii_lowercase();
    let others = st.resources.iter().filter(|(k, _)| **k != key).map(|(_, r)| (r.kind.as_str(), &r.body));
    let refs = match new.as_deref() {
        Some(b) => BackRefs::collect(others.chain(std::iter::once((kind, b)))),
        None => BackRefs::collect(others),
    };
    if let Some(b) = new {
        refs.apply(kind, id, b);
    }
    let mut ops = Vec::new();
    for (k, r) in st.resources.iter().filter(|(k, r)| **k != key && r.kind.starts_with("Microsoft.Network/")) {
        let mut body = r.body.clone();
        refs.apply(&r.kind, k, &mut body);
        if body != r.body {
            let mut r = r.clone();
            r.body = body;
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
            let old = vnet.clone();
            let mut extra = {
                let st = req.sh.store();
                prepare_vnet(&st.state, &vnet.id, Some(&old), &mut vnet.body)?;
                network_backrefs(&st.state, &vnet.kind, &vnet.id, Some(&mut vnet.body))
            };
            vnet.etag += 1;
            let shown = vnet
                .body
                .pointer("/properties/subnets")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find(|s| s.get("name").and_then(Value::as_str) == Some(name.as_str())).cloned())
                .unwrap_or(json!({}));
            extra.insert(0, Op::PutResource { resource: vnet });
            req.sh.commit(extra)?;
            let op = start_operation(req.sh, "microsoft.network/virtualnetworks/subnets", None);
            Ok(json_response(if pos.is_some() { 200 } else { 201 }, &shown, &lro_headers(req, &op, false)))
        }
        Method::DELETE => {
            let Some(i) = pos else { return Ok(empty(204, &[])) };
            {
                let st = req.sh.store();
                let refs = BackRefs::collect(st.state.resources.values().map(|x| (x.kind.as_str(), &x.body)));
                let sid = subnets[i].get("id").and_then(Value::as_str).unwrap_or_default();
                let sname = subnets[i].get("name").and_then(Value::as_str).unwrap_or(&name);
                subnet_free(&refs, sid, sname)?;
            }
            let mut list = subnets;
            list.remove(i);
            vnet.body["properties"]["subnets"] = Value::Array(list);
            vnet.etag += 1;
            let mut ops = network_backrefs(&req.sh.store().state, &vnet.kind, &vnet.id, Some(&mut vnet.body));
            ops.insert(0, Op::PutResource { resource: vnet });
            req.sh.commit(ops)?;
            Ok(empty(200, &[]))
        }
        _ => Err(method_not_allowed()),
    }
}

fn parse_ip(s: &str) -> Option<u32> {
    prefix_ok(&format!("{s}/32")).map(|(ip, _)| ip)
}

fn show_ip(a: u32) -> String {
    format!("{}.{}.{}.{}", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255)
}

/// `GET …/virtualNetworks/{vnet}/CheckIPAddressAvailability?ipAddress=…`: whether an
/// address of one of the network's subnets is free; when it is not, up to five free ones
/// (Azure keeps the first four addresses and the last of every subnet;
/// `TestVirtualNetworkCRUD.json`).
pub(crate) fn check_ip_availability(st: &CloudState, vnet_id: &str, ip: &str) -> Result<Value, ArmError> {
    let vnet = st.resources.get(&vnet_id.to_ascii_lowercase()).ok_or_else(|| parent_not_found(vnet_id))?;
    let Some(addr) = parse_ip(ip) else {
        return Err(ArmError::new(
            400,
            "InvalidPrivateIPAddressFormat",
            format!("Private IP address {ip} is not formatted correctly."),
        ));
    };
    let subnets = vnet.body.pointer("/properties/subnets").and_then(Value::as_array).cloned().unwrap_or_default();
    let range = subnets.iter().find_map(|s| {
        let (base, len) = prefix_ok(s.pointer("/properties/addressPrefix")?.as_str()?)?;
        let size = 1u64 << (32 - u32::from(len));
        (u64::from(addr) >= u64::from(base) && u64::from(addr) < u64::from(base) + size).then_some((base, size))
    });
    let Some((base, size)) = range else {
        return Err(ArmError::new(
            400,
            "PrivateIPAddressNotInAnySubnet",
            format!(
                "Private static IP address {ip} does not belong to the range of any subnet in the virtual network {vnet_id}."
            ),
        ));
    };
    let prefix = format!("{}/subnets/", vnet.id.to_ascii_lowercase());
    let used: Vec<u32> = st
        .resources
        .values()
        .filter(|r| r.kind == "Microsoft.Network/networkInterfaces")
        .flat_map(|r| {
            r.body.pointer("/properties/ipConfigurations").and_then(Value::as_array).cloned().unwrap_or_default()
        })
        .filter(|c| {
            c.pointer("/properties/subnet/id")
                .and_then(Value::as_str)
                .is_some_and(|s| s.to_ascii_lowercase().starts_with(&prefix))
        })
        .filter_map(|c| c.pointer("/properties/privateIPAddress").and_then(Value::as_str).and_then(parse_ip))
        .collect();
    let free = |a: u32| {
        let off = u64::from(a) - u64::from(base);
        off >= 4 && off + 1 < size && !used.contains(&a)
    };
    if free(addr) {
        return Ok(json!({ "available": true }));
    }
    let list: Vec<String> = (4..size.saturating_sub(1))
        .map(|o| (u64::from(base) + o) as u32)
        .filter(|a| free(*a))
        .take(5)
        .map(show_ip)
        .collect();
    Ok(json!({ "available": false, "availableIPAddresses": list }))
}

/// `Microsoft.Network/networkInterfaces`, in lower case (how a route names its type).
pub(crate) const NICS_LOWER: &str = "microsoft.network/networkinterfaces";

/// The api-version at which a recording of Azure shows a NIC's
/// `virtualNetworkTapProvisioningState: "NotProvisioned"` (TestNetworkInterfaceCRUD.json and
/// TestNetworkSecurityGroupCRUD.json, May 2018); the NIC answers of September 2018 at
/// 2017-10-01 (TestSimpleNewVmWithSystemAssignedAndUserAssignedIdentity.json) lack it, and the
/// Network spec 2024-07-01 does not declare it, so it is served at this api-version only.
const NIC_TAP_STATE_AT: &str = "2018-04-01";

/// A NIC answer (or a list of NICs) at `version` as Azure answers it where its spec is silent:
/// `isInUseWithService: false` on each IP configuration at every api-version (Azure added it
/// server-side: its answers at 2017-10-01 lack it in April 2018
/// (TestSimpleNewVmWithSystemAssignedIdentity.json) and carry it in September 2018
/// (TestSimpleNewVmWithSystemAssignedAndUserAssignedIdentity.json), as at 2018-04-01; current
/// Azure Resource Graph queries still read it), and `virtualNetworkTapProvisioningState` at
/// [`NIC_TAP_STATE_AT`].
pub(crate) fn nic_at(v: &mut Value, version: &str) {
    if let Some(items) = v.get_mut("value").and_then(Value::as_array_mut) {
        items.iter_mut().for_each(|i| nic_at(i, version));
        return;
    }
    let is_nic = v.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case(NICS_LOWER));
    let Some(p) = v.get_mut("properties").and_then(Value::as_object_mut).filter(|_| is_nic) else { return };
    if version == NIC_TAP_STATE_AT {
        p.entry("virtualNetworkTapProvisioningState").or_insert(json!("NotProvisioned"));
    }
    for c in p.get_mut("ipConfigurations").and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(cp) = c.get_mut("properties").and_then(Value::as_object_mut) {
            cp.entry("isInUseWithService").or_insert(json!(false));
        }
    }
}
