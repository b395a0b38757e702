//! Networking kinds (`Microsoft.Network`, arm-contract §3): `virtual_network` with subnets,
//! `network_security_group` with rules, `public_ip`, `network_interface`. A VM's
//! `network: auto` expands into one of each (see `vm.rs`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use serde_json::{Value, json};

use super::env::{Desired, Env};
use super::header::{ArmHeader, arm_spec};
use super::{Cx, Spec, kind};
use crate::model::names;
use crate::model::{Code, Diag, Sp};

arm_spec! {
    /// A virtual network with its subnets.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct VirtualNetwork {
        /// Network name: 1–80 letters, digits, `_`, `.`, `-`.
        name;
        /// Extra tags (idlab adds `idlab-plan`).
        tags;
        /// Address prefixes in CIDR form, e.g. `[10.0.0.0/16]`.
        #[schemars(length(min = 1))]
        pub address_space: Vec<Sp<String>>,
        /// Subnets; each prefix must lie inside the address space.
        #[serde(default)]
        pub subnets: Vec<Subnet>,
    }
}

/// A subnet of a virtual network.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    /// Subnet name.
    pub name: Sp<String>,
    /// Prefix in CIDR form, e.g. `10.0.0.0/24`.
    pub address_prefix: Sp<String>,
    /// Network security group for the subnet: `${nsg}`.
    #[serde(default)]
    pub nsg: Option<Sp<String>>,
}

/// An IPv4 prefix: (network address, prefix length).
pub fn parse_cidr(s: &str) -> Result<(u32, u8), String> {
    let (addr, len) = s.split_once('/').ok_or_else(|| format!("`{s}` is not in CIDR form (address/length)"))?;
    let octets: Vec<&str> = addr.split('.').collect();
    if octets.len() != 4 {
        return Err(format!("`{addr}` is not an IPv4 address"));
    }
    let mut ip: u32 = 0;
    for o in octets {
        let v: u8 = o.parse().map_err(|_| format!("`{addr}` is not an IPv4 address"))?;
        ip = (ip << 8) | u32::from(v);
    }
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= 32)
        .ok_or_else(|| format!("`/{len}` is not a prefix length between 0 and 32"))?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    if ip & !mask != 0 {
        return Err(format!("`{s}` has host bits set; the network is `{}/{len}`", fmt_ip(ip & mask)));
    }
    Ok((ip, len))
}

fn fmt_ip(ip: u32) -> String {
    let b = ip.to_be_bytes();
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

fn contains(outer: (u32, u8), inner: (u32, u8)) -> bool {
    let mask = if outer.1 == 0 { 0 } else { u32::MAX << (32 - outer.1) };
    inner.1 >= outer.1 && inner.0 & mask == outer.0
}

impl Spec for VirtualNetwork {
    fn header(&self) -> Option<ArmHeader<'_>> {
        Some(self.arm_header())
    }
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let (id, _) = self.arm_header().id(env, "Microsoft.Network/virtualNetworks");
        let subnets: Vec<Value> = self
            .subnets
            .iter()
            .map(|s| {
                let mut p = json!({ "addressPrefix": env.resolve(&s.address_prefix).or_unknown() });
                if let Some(n) = &s.nsg {
                    p["networkSecurityGroup"] = json!({ "id": env.resolve(n).or_unknown() });
                }
                json!({ "name": env.resolve(&s.name).or_unknown(), "properties": p })
            })
            .collect();
        let space: Vec<String> = self.address_space.iter().map(|a| env.resolve(a).or_unknown()).collect();
        Some(Desired {
            immutable: vec![("location", "a virtual network's location cannot change")],
            ..Desired::new(
                id,
                "2024-07-01",
                json!({ "location": env.location(&self.location), "tags": env.tags(&self.tags), "properties": { "addressSpace": { "addressPrefixes": space }, "subnets": subnets } }),
            )
        })
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        cx.name_rule(&self.name, Code::ChildName, |n| names::network(n, "a virtual network name"));
        cx.resource_group(&self.resource_group);
        cx.location(&self.location);
        cx.tags(&self.tags, 512);
        let mut spaces = Vec::new();
        for a in &self.address_space {
            match parse_cidr(a) {
                Ok(c) => spaces.push(c),
                Err(e) => cx.push(Diag::error(Code::Cidr, a.span, e).label("not a valid prefix")),
            }
        }
        let mut seen: Vec<&str> = Vec::new();
        for s in &self.subnets {
            cx.name_rule(&s.name, Code::ChildName, |n| names::network(n, "a subnet name"));
            if seen.iter().any(|n| n.eq_ignore_ascii_case(&s.name)) {
                cx.push(
                    Diag::error(Code::ChildName, s.name.span, format!("subnet `{}` is declared twice", s.name.value))
                        .label("again here"),
                );
            }
            seen.push(&s.name);
            match parse_cidr(&s.address_prefix) {
                Ok(p) if !spaces.is_empty() && !spaces.iter().any(|sp| contains(*sp, p)) => cx.push(
                    Diag::error(
                        Code::Cidr,
                        s.address_prefix.span,
                        format!("subnet prefix `{}` is outside the network's address space", s.address_prefix.value),
                    )
                    .label("not inside address_space"),
                ),
                Ok(_) => {}
                Err(e) => cx.push(Diag::error(Code::Cidr, s.address_prefix.span, e).label("not a valid prefix")),
            }
            if let Some(nsg) = &s.nsg {
                cx.reference("nsg", nsg, &["network_security_group"]);
            }
        }
    }
    fn identity_key(&self) -> Option<String> {
        Some(self.arm_header().key("virtualNetworks"))
    }
}

kind!(VirtualNetworkKind, VirtualNetwork,
type_name: "virtual_network",
arm_type: Some("Microsoft.Network/virtualNetworks"),
api_version: "2024-07-01",
attributes: &["id", "name"],
weight: 6,
references: super::References {
    makes: true,
    children: vnet_made_with,
    users: |h| super::ids_at(h, "/properties/subnets", Some("/properties/ipConfigurations")),
});

/// What a virtual network's subnets refer to that was made with it: the security groups on
/// its subnets (`properties.subnets[].properties.networkSecurityGroup.id`, the portal's
/// subnet NSG). Each is deleted after the network (Azure refuses to delete one a subnet
/// holds), when nothing else uses it.
fn vnet_made_with(have: &Value) -> Vec<super::Implicit> {
    let after = super::ImplicitFate::After { api_version: NETWORK_API };
    let mut out: Vec<super::Implicit> = Vec::new();
    for id in super::ids_at(have, "/properties/subnets", Some("/properties/networkSecurityGroup")) {
        if !out.iter().any(|c| c.id.eq_ignore_ascii_case(&id)) {
            out.push(super::Implicit { id, what: "network security group", fate: after });
        }
    }
    out
}

arm_spec! {
    /// A network security group.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct NetworkSecurityGroup {
        /// NSG name: 1–80 letters, digits, `_`, `.`, `-`.
        name;
        /// Extra tags (idlab adds `idlab-plan`).
        tags;
        /// Security rules.
        #[serde(default)]
        pub rules: Vec<NsgRule>,
    }
}

/// Traffic direction of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

/// Whether a rule allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Allow,
    Deny,
}

/// Protocol a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Any,
}

/// One security rule.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NsgRule {
    /// Rule name.
    pub name: Sp<String>,
    /// 100–4096; lower runs first; unique per direction.
    #[schemars(range(min = 100, max = 4096))]
    pub priority: Sp<u32>,
    /// `inbound` (default) or `outbound`.
    #[serde(default)]
    pub direction: Option<Direction>,
    /// `allow` (default) or `deny`.
    #[serde(default)]
    pub access: Option<Access>,
    /// `tcp` (default), `udp`, `icmp` or `any`.
    #[serde(default)]
    pub protocol: Option<Protocol>,
    /// Source address prefix; `*` (default), a CIDR or a service tag such as `Internet`.
    #[serde(default)]
    pub source: Option<Sp<String>>,
    /// Destination ports: `*`, `3389`, or a range `8000-8080`.
    pub destination_ports: Sp<String>,
}

/// Check a port spec: `*`, `N` or `N-M` with 0 ≤ N ≤ M ≤ 65535.
pub fn port_spec(s: &str) -> Result<(), String> {
    if s == "*" {
        return Ok(());
    }
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
        (Ok(a), Ok(b)) if a <= b => Ok(()),
        (Ok(_), Ok(_)) => Err(format!("port range `{s}` runs backwards")),
        _ => Err(format!("`{s}` is not a port (0–65535), a range `N-M` or `*`")),
    }
}

impl Spec for NetworkSecurityGroup {
    fn implicit(&self, have: &Value) -> Vec<super::Implicit> {
        super::child_ids(have, "/properties/defaultSecurityRules", "default security rule", "part of its group")
    }
    fn header(&self) -> Option<ArmHeader<'_>> {
        Some(self.arm_header())
    }
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let (id, _) = self.arm_header().id(env, "Microsoft.Network/networkSecurityGroups");
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|r| {
                let protocol = match r.protocol.unwrap_or(Protocol::Tcp) {
                    Protocol::Tcp => "Tcp",
                    Protocol::Udp => "Udp",
                    Protocol::Icmp => "Icmp",
                    Protocol::Any => "*",
                };
                json!({ "name": env.resolve(&r.name).or_unknown(), "properties": {
                    "priority": r.priority.value,
                    "direction": if r.direction == Some(Direction::Outbound) { "Outbound" } else { "Inbound" },
                    "access": if r.access == Some(Access::Deny) { "Deny" } else { "Allow" },
                    "protocol": protocol,
                    "sourceAddressPrefix": r.source.as_ref().map_or_else(|| "*".to_string(), |s| env.resolve(s).or_unknown()),
                    "sourcePortRange": "*",
                    "destinationAddressPrefix": "*",
                    "destinationPortRange": env.resolve(&r.destination_ports).or_unknown(),
                } })
            })
            .collect();
        Some(Desired {
            immutable: vec![("location", "a network security group's location cannot change")],
            ..Desired::new(
                id,
                "2024-07-01",
                json!({ "location": env.location(&self.location), "tags": env.tags(&self.tags), "properties": { "securityRules": rules } }),
            )
        })
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        cx.name_rule(&self.name, Code::ChildName, |n| names::network(n, "a network security group name"));
        cx.resource_group(&self.resource_group);
        cx.location(&self.location);
        cx.tags(&self.tags, 512);
        let mut seen: Vec<(Direction, u32, &Sp<u32>)> = Vec::new();
        for r in &self.rules {
            cx.name_rule(&r.name, Code::ChildName, |n| names::network(n, "a security rule name"));
            if let Err(e) = port_spec(&r.destination_ports) {
                cx.push(Diag::error(Code::NsgRule, r.destination_ports.span, e).label("bad port"));
            }
            let dir = r.direction.unwrap_or(Direction::Inbound);
            if let Some((_, _, first)) = seen.iter().find(|(d, p, _)| *d == dir && *p == r.priority.value) {
                cx.push(
                    Diag::error(
                        Code::NsgRule,
                        r.priority.span,
                        format!("two {dir:?} rules have priority {}", r.priority.value).to_lowercase(),
                    )
                    .label("same priority")
                    .related(first.span, "first used here"),
                );
            }
            seen.push((dir, r.priority.value, &r.priority));
        }
    }
    fn identity_key(&self) -> Option<String> {
        Some(self.arm_header().key("networkSecurityGroups"))
    }
}

kind!(NsgKind, NetworkSecurityGroup,
type_name: "network_security_group",
arm_type: Some("Microsoft.Network/networkSecurityGroups"),
api_version: "2024-07-01",
attributes: &["id", "name"],
weight: 4,
references: super::References {
    makes: false,
    children: super::none,
    users: |h| {
        let mut u = super::ids_at(h, "/properties/networkInterfaces", None);
        u.extend(super::ids_at(h, "/properties/subnets", None));
        u
    },
});

/// Public IP SKU. Basic was retired by Azure; only Standard is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum PublicIpSku {
    Standard,
}

/// How the address is allocated. Standard public IPs are static.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Allocation {
    Static,
    Dynamic,
}

arm_spec! {
    /// A public IP address.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct PublicIp {
        /// Public IP name: 1–80 letters, digits, `_`, `.`, `-`.
        name;
        /// Extra tags (idlab adds `idlab-plan`).
        tags;
        /// `Standard` (the default; Basic is retired).
        #[serde(default)]
        pub sku: Option<PublicIpSku>,
        /// `static` (default) or `dynamic` (not allowed with Standard).
        #[serde(default)]
        pub allocation: Option<Sp<Allocation>>,
    }
}

impl Spec for PublicIp {
    fn header(&self) -> Option<ArmHeader<'_>> {
        Some(self.arm_header())
    }
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let (id, _) = self.arm_header().id(env, "Microsoft.Network/publicIPAddresses");
        Some(Desired {
            immutable: vec![
                ("location", "a public IP's location cannot change"),
                ("sku", "a public IP's SKU cannot change"),
            ],
            ..Desired::new(
                id,
                "2024-07-01",
                json!({ "location": env.location(&self.location), "tags": env.tags(&self.tags), "sku": { "name": "Standard" }, "properties": { "publicIPAllocationMethod": "Static" } }),
            )
        })
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        cx.name_rule(&self.name, Code::ChildName, |n| names::network(n, "a public IP name"));
        cx.resource_group(&self.resource_group);
        cx.location(&self.location);
        cx.tags(&self.tags, 512);
        if let Some(a) = &self.allocation
            && a.value == Allocation::Dynamic
        {
            cx.push(
                Diag::error(Code::Conflict, a.span, "a Standard public IP must use static allocation")
                    .label("dynamic")
                    .help("remove `allocation` or set it to `static`"),
            );
        }
    }
    fn identity_key(&self) -> Option<String> {
        Some(self.arm_header().key("publicIPAddresses"))
    }
}

kind!(PublicIpKind, PublicIp,
type_name: "public_ip",
arm_type: Some("Microsoft.Network/publicIPAddresses"),
api_version: "2024-07-01",
attributes: &["id", "name", "ip_address"],
weight: 4,
references: super::References {
    makes: false,
    children: super::none,
    users: |h| super::ids_at(h, "/properties/ipConfiguration", None),
});

arm_spec! {
    /// A network interface in a subnet.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct NetworkInterface {
        /// NIC name: 1–80 letters, digits, `_`, `.`, `-`.
        name;
        /// Extra tags (idlab adds `idlab-plan`).
        tags;
        /// The virtual network: `${vnet}`.
        pub virtual_network: Sp<String>,
        /// The subnet's name inside that network.
        pub subnet: Sp<String>,
        /// A public IP to attach: `${pip}`.
        #[serde(default)]
        pub public_ip: Option<Sp<String>>,
        /// A network security group for the NIC: `${nsg}`.
        #[serde(default)]
        pub nsg: Option<Sp<String>>,
    }
}

impl Spec for NetworkInterface {
    fn implicit(&self, have: &Value) -> Vec<super::Implicit> {
        super::child_ids(have, "/properties/ipConfigurations", "IP configuration", "part of its interface")
    }
    fn header(&self) -> Option<ArmHeader<'_>> {
        Some(self.arm_header())
    }
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let (id, _) = self.arm_header().id(env, "Microsoft.Network/networkInterfaces");
        let vnet = env.resolve(&self.virtual_network).or_unknown();
        let mut ip =
            json!({ "subnet": { "id": format!("{vnet}/subnets/{}", env.resolve(&self.subnet).or_unknown()) } });
        if let Some(p) = &self.public_ip {
            ip["publicIPAddress"] = json!({ "id": env.resolve(p).or_unknown() });
        }
        let mut props = json!({ "ipConfigurations": [{ "name": "ipconfig1", "properties": ip }] });
        if let Some(n) = &self.nsg {
            props["networkSecurityGroup"] = json!({ "id": env.resolve(n).or_unknown() });
        }
        Some(Desired {
            immutable: vec![("location", "a network interface's location cannot change")],
            ..Desired::new(
                id,
                "2024-07-01",
                json!({ "location": env.location(&self.location), "tags": env.tags(&self.tags), "properties": props }),
            )
        })
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        cx.name_rule(&self.name, Code::ChildName, |n| names::network(n, "a network interface name"));
        cx.resource_group(&self.resource_group);
        cx.location(&self.location);
        cx.tags(&self.tags, 512);
        if let Some(vnet) = cx.reference("virtual_network", &self.virtual_network, &["virtual_network"]) {
            let logical = vnet.logical.value.clone();
            let has = vnet
                .spec
                .as_any()
                .downcast_ref::<VirtualNetwork>()
                .is_some_and(|v| v.subnets.iter().any(|s| s.name.value.eq_ignore_ascii_case(&self.subnet)));
            if !has {
                cx.push(
                    Diag::error(
                        Code::UndeclaredResource,
                        self.subnet.span,
                        format!("virtual network `{logical}` declares no subnet `{}`", self.subnet.value),
                    )
                    .label("no such subnet"),
                );
            }
        }
        if let Some(p) = &self.public_ip {
            cx.reference("public_ip", p, &["public_ip"]);
        }
        if let Some(n) = &self.nsg {
            cx.reference("nsg", n, &["network_security_group"]);
        }
    }
    fn identity_key(&self) -> Option<String> {
        Some(self.arm_header().key("networkInterfaces"))
    }
}

kind!(NetworkInterfaceKind, NetworkInterface,
type_name: "network_interface",
arm_type: Some("Microsoft.Network/networkInterfaces"),
api_version: "2024-07-01",
attributes: &["id", "name", "private_ip_address"],
weight: 5,
references: super::References {
    makes: true,
    children: nic_made_with,
    users: |h| super::ids_at(h, "/properties/virtualMachine", None),
});

/// The api-version destroy deletes what an interface refers to with (Microsoft.Network).
const NETWORK_API: &str = "2024-07-01";

/// What an interface refers to that was made with it (the portal and New-AzVM make them for
/// the VM): its IP configurations' public IPs (`properties.publicIPAddress.id`), its
/// security group (`properties.networkSecurityGroup.id`) and the virtual network of its
/// subnets (`properties.subnet.id`). Each is deleted after the interface, when nothing else
/// uses it.
pub fn nic_made_with(have: &Value) -> Vec<super::Implicit> {
    use super::{Implicit, ImplicitFate};
    let after = ImplicitFate::After { api_version: NETWORK_API };
    let mut out = Vec::new();
    let mut push = |id: String, what: &'static str| {
        if !out.iter().any(|c: &Implicit| c.id.eq_ignore_ascii_case(&id)) {
            out.push(Implicit { id, what, fate: after });
        }
    };
    for id in super::ids_at(have, "/properties/ipConfigurations", Some("/properties/publicIPAddress")) {
        push(id, "public IP");
    }
    for id in super::ids_at(have, "/properties/networkSecurityGroup", None) {
        push(id, "network security group");
    }
    for subnet in super::ids_at(have, "/properties/ipConfigurations", Some("/properties/subnet")) {
        if let Some(at) = subnet.to_ascii_lowercase().rfind("/subnets/") {
            push(subnet[..at].to_string(), "virtual network");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr() {
        assert_eq!(parse_cidr("10.0.0.0/16"), Ok((0x0a00_0000, 16)));
        assert!(parse_cidr("10.0.0.1/16").is_err());
        assert!(parse_cidr("10.0.0.0/33").is_err());
        assert!(parse_cidr("10.0.0/8").is_err());
        let space = parse_cidr("192.168.0.0/16").expect("ok");
        assert!(contains(space, parse_cidr("192.168.1.0/24").expect("ok")));
        assert!(!contains(space, parse_cidr("10.1.0.0/24").expect("ok")));
    }

    #[test]
    fn ports() {
        assert!(port_spec("3389").is_ok());
        assert!(port_spec("*").is_ok());
        assert!(port_spec("80-90").is_ok());
        assert!(port_spec("90-80").is_err());
        assert!(port_spec("70000").is_err());
    }
}
