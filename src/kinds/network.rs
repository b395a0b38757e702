//! Networking kinds (`Microsoft.Network`, arm-contract §3): `virtual_network` with subnets,
//! `network_security_group` with rules, `public_ip`, `network_interface`. A VM's
//! `network: auto` expands into one of each (see `vm.rs`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use serde_json::{Value, json};

use super::env::{Desired, Env, Lenient};
use super::header::{ArmHeader, arm_spec};
use super::import::{Covers, Field, Imported, Source, Y, group_id, imported, last, same, text, user_tags, with_header};
use super::{Cx, Spec, kind};
use crate::model::names;
use crate::model::{Code, Diag, Sp};
use serde_json::Value as J;

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

/// `virtual_network`.
pub fn import_virtual_network(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let space: Vec<Y> = have
        .pointer("/properties/addressSpace/addressPrefixes")
        .and_then(J::as_array)
        .into_iter()
        .flatten()
        .filter_map(J::as_str)
        .map(|s| Y::Str(s.to_string()))
        .collect();
    let mut unexpressed = Vec::new();
    let subnets: Vec<Y> = have
        .pointer("/properties/subnets")
        .and_then(J::as_array)
        .into_iter()
        .flatten()
        .map(|s| {
            let name = text(s, "/name").unwrap_or_default();
            let prefix = text(s, "/properties/addressPrefix")
                .or_else(|| s.pointer("/properties/addressPrefixes/0").and_then(J::as_str))
                .unwrap_or_default();
            if s.pointer("/properties/addressPrefixes").and_then(J::as_array).is_some_and(|a| a.len() > 1) {
                unexpressed.push(format!("subnet {name} has several prefixes; plans give one"));
            }
            let mut f = vec![Field::str("name", name), Field::str("address_prefix", prefix)];
            if let Some(n) = text(s, "/properties/networkSecurityGroup/id") {
                f.push(Field::str("nsg", src.reference(n).unwrap_or_else(|| n.to_string())));
            }
            Y::Map(f)
        })
        .collect();
    let mut own = vec![Field::new("address_space", Y::Flow(space))];
    if !subnets.is_empty() {
        own.push(Field::new("subnets", Y::List(subnets)));
    }
    let mut i = imported(id, have, "vnet", 2, with_header(id, have, src, own));
    i.unexpressed = unexpressed;
    Some(i)
}

/// An NSG rule as a plan writes it, or why it cannot.
pub fn nsg_rule(r: &J) -> Result<Vec<Field>, String> {
    let name = text(r, "/name").unwrap_or_default();
    let p = |k: &str| text(r, &format!("/properties/{k}"));
    let mut f = vec![Field::str("name", name)];
    let priority = r.pointer("/properties/priority").and_then(J::as_i64).unwrap_or_default();
    f.push(Field::new("priority", Y::Int(priority)));
    if p("direction").is_some_and(|d| same(d, "Outbound")) {
        f.push(Field::str("direction", "outbound"));
    }
    if p("access").is_some_and(|d| same(d, "Deny")) {
        f.push(Field::str("access", "deny"));
    }
    match p("protocol").unwrap_or("Tcp").to_ascii_lowercase().as_str() {
        "tcp" => {}
        "*" => f.push(Field::str("protocol", "any")),
        other @ ("udp" | "icmp") => f.push(Field::str("protocol", other)),
        other => return Err(format!("rule {name}: protocol {other}")),
    }
    let source = p("sourceAddressPrefix").unwrap_or("*");
    if source != "*" {
        f.push(Field::str("source", source));
    }
    if p("sourcePortRange").is_some_and(|s| s != "*") || p("destinationAddressPrefix").is_some_and(|s| s != "*") {
        return Err(format!("rule {name}: a source port range or destination prefix other than *"));
    }
    let Some(ports) = p("destinationPortRange") else {
        return Err(format!("rule {name}: several destination port ranges"));
    };
    f.push(Field::str("destination_ports", ports));
    Ok(f)
}

/// `network_security_group`.
pub fn import_nsg(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let mut unexpressed = Vec::new();
    let rules: Vec<Y> = have
        .pointer("/properties/securityRules")
        .and_then(J::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| match nsg_rule(r) {
            Ok(f) => Some(Y::Map(f)),
            Err(e) => {
                unexpressed.push(e);
                None
            }
        })
        .collect();
    let own = if rules.is_empty() { Vec::new() } else { vec![Field::new("rules", Y::List(rules))] };
    let mut i = imported(id, have, "nsg", 2, with_header(id, have, src, own));
    i.unexpressed = unexpressed;
    Some(i)
}

/// `public_ip`: Standard and static are the plan language's only choices (its defaults).
pub fn import_public_ip(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let mut i = imported(id, have, "ip", 2, with_header(id, have, src, Vec::new()));
    if let Some(s) = text(have, "/sku/name").filter(|s| !same(s, "Standard")) {
        i.unexpressed.push(format!("SKU {s} (plans make Standard public IPs)"));
    }
    if let Some(a) = text(have, "/properties/publicIPAllocationMethod").filter(|a| !same(a, "Static")) {
        i.unexpressed.push(format!("{a} allocation (Standard public IPs are static)"));
    }
    Some(i)
}

/// `network_interface`.
pub fn import_network_interface(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let configs = have.pointer("/properties/ipConfigurations").and_then(J::as_array).cloned().unwrap_or_default();
    let first = configs.first().cloned().unwrap_or(J::Null);
    let subnet = text(&first, "/properties/subnet/id").unwrap_or_default();
    let vnet = subnet.rsplit_once("/subnets/").map_or(subnet, |(v, _)| v);
    let mut own = vec![
        Field::str("virtual_network", src.reference(vnet).unwrap_or_else(|| vnet.to_string())),
        Field::str("subnet", last(subnet)),
    ];
    if let Some(p) = text(&first, "/properties/publicIPAddress/id") {
        own.push(Field::str("public_ip", src.reference(p).unwrap_or_else(|| p.to_string())));
    }
    if let Some(n) = text(have, "/properties/networkSecurityGroup/id") {
        own.push(Field::str("nsg", src.reference(n).unwrap_or_else(|| n.to_string())));
    }
    if let Some(n) = text(&first, "/name").filter(|n| *n != NIC_IP_CONFIG) {
        own.push(Field::str("ip_configuration", n));
    }
    let mut i = imported(id, have, "nic", 3, with_header(id, have, src, own));
    if configs.len() > 1 {
        i.unexpressed.push("several IP configurations (plans give one)".into());
    }
    Some(i)
}

/// The one IP configuration a plan's network interface has.
pub const NIC_IP_CONFIG: &str = "ipconfig1";

kind!(VirtualNetworkKind, VirtualNetwork,
type_name: "virtual_network",
arm_type: Some("Microsoft.Network/virtualNetworks"),
api_version: "2024-07-01",
attributes: &["id", "name"],
weight: 6,
references: super::References {
    makes: false,
    children: super::none,
    by_hand: Some(vnet_made_with),
    users: |h| super::ids_at(h, "/properties/subnets", Some("/properties/ipConfigurations")),
},
import: import_virtual_network);

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

/// The most rules a network security group holds (Azure's limit, per group).
const MAX_RULES: usize = 1000;

/// The paths of each rule's enums, as a plan's changes name them, rule by rule.
static RULE_ENUMS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    (0..MAX_RULES)
        .flat_map(|i| {
            ["protocol", "access", "direction"].map(|f| format!("properties/securityRules/{i}/properties/{f}"))
        })
        .collect()
});

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
            // Azure keeps a rule's protocol, access and direction in the case they were sent
            // (`TCP`, as the portal and Terraform users send it: prowler-cloud/prowler#3808,
            // Azure/azure-powershell#1715), so they compare in any case.
            lenient: RULE_ENUMS.iter().take(3 * rules.len()).map(|p| (p.as_str(), Lenient::AnyCase)).collect(),
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
    by_hand: None,
    users: |h| {
        let mut u = super::ids_at(h, "/properties/networkInterfaces", None);
        u.extend(super::ids_at(h, "/properties/subnets", None));
        u
    },
},
import: import_nsg);

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
    by_hand: None,
    users: |h| super::ids_at(h, "/properties/ipConfiguration", None),
},
import: import_public_ip);

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
        /// The name of its one IP configuration (default `ipconfig1`, the portal's;
        /// `az vm create` names it `ipconfig<vm>`, New-AzVM after the VM).
        #[serde(default)]
        pub ip_configuration: Option<Sp<String>>,
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
        let config =
            self.ip_configuration.as_ref().map_or_else(|| NIC_IP_CONFIG.to_string(), |c| env.resolve(c).or_unknown());
        let mut props = json!({ "ipConfigurations": [{ "name": config, "properties": ip }] });
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

/// What `network: auto` makes when the plan names nothing (as New-AzVM does).
pub mod auto {
    /// The virtual network's address space.
    pub const ADDRESS_SPACE: &str = "192.168.0.0/16";
    /// The subnet's prefix.
    pub const SUBNET_PREFIX: &str = "192.168.1.0/24";
    /// The priority of the first security rule; the next ones follow.
    pub const FIRST_PRIORITY: u64 = 1000;
    /// The port opened on Windows (RDP) and Linux (SSH).
    pub const WINDOWS_PORT: u16 = 3389;
    pub const LINUX_PORT: u16 = 22;
}

/// The network a VM's single interface is in, when it has `network: auto`'s shape: the
/// interface named as the VM, in a network with one subnet, with its own security group
/// (the rules `auto` writes) and public IP, used by nothing else, deleted with the VM. Returns
/// the `network:` fields (empty: the defaults) and the ids it stands for.
pub fn auto_network(vm: &J, vm_name: &str, windows: bool, src: &Source<'_>) -> Option<(Vec<Field>, Covers)> {
    use auto as d;
    let nics = vm.pointer("/properties/networkProfile/networkInterfaces").and_then(J::as_array)?;
    let [entry] = nics.as_slice() else { return None };
    let delete = entry.pointer("/properties/deleteOption").or_else(|| entry.get("deleteOption")).and_then(J::as_str);
    if !delete.is_some_and(|o| same(o, "Delete")) {
        return None;
    }
    let nic_id = text(entry, "/id")?;
    let nic = src.body(nic_id)?;
    if !same(last(nic_id), vm_name) || !same(&group_id(nic_id), &group_id(text(vm, "/id")?)) {
        return None;
    }
    let configs = nic.pointer("/properties/ipConfigurations").and_then(J::as_array)?;
    let [ipc] = configs.as_slice() else { return None };
    if text(ipc, "/name") != Some(NIC_IP_CONFIG) {
        return None;
    }
    let subnet_id = text(ipc, "/properties/subnet/id")?;
    let (vnet_id, subnet_name) = subnet_id.rsplit_once("/subnets/")?;
    let pip_id = text(ipc, "/properties/publicIPAddress/id")?;
    let nsg_id = text(nic, "/properties/networkSecurityGroup/id")?;
    let (vnet, pip, nsg) = (src.body(vnet_id)?, src.body(pip_id)?, src.body(nsg_id)?);
    // The same tags and location as the VM: `auto` gives them its own.
    let tags = user_tags(vm);
    let loc = text(vm, "/location");
    if [nic, vnet, pip, nsg].iter().any(|b| user_tags(b) != tags || text(b, "/location") != loc) {
        return None;
    }
    // Nothing else uses them: no other resource names the network, the group or the IP.
    let own = [nic_id, vnet_id, nsg_id, pip_id].map(str::to_ascii_lowercase);
    let named = [format!("{}/", own[1]), format!("\"{}\"", own[2]), format!("\"{}\"", own[3])];
    let used_elsewhere = src.bodies.iter().any(|(id, b)| {
        let text = b.to_string().to_ascii_lowercase();
        !own.contains(id) && named.iter().any(|n| text.contains(n.as_str()))
    });
    if used_elsewhere {
        return None;
    }
    let subnets = vnet.pointer("/properties/subnets").and_then(J::as_array)?;
    let [subnet] = subnets.as_slice() else { return None };
    let spaces = vnet.pointer("/properties/addressSpace/addressPrefixes").and_then(J::as_array)?;
    let [space] = spaces.as_slice() else { return None };
    let space = space.as_str()?;
    let prefix = text(subnet, "/properties/addressPrefix")?;
    if subnet.pointer("/properties/networkSecurityGroup").is_some_and(|n| !n.is_null()) {
        return None;
    }
    if !same(text(pip, "/sku/name")?, "Standard") || !same(text(pip, "/properties/publicIPAllocationMethod")?, "Static")
    {
        return None;
    }
    // The rules `auto` writes: `{vm}{port}` at 1000, 1001, … inbound TCP from anywhere.
    let rules = nsg.pointer("/properties/securityRules").and_then(J::as_array)?;
    let mut ports = Vec::new();
    for (n, r) in rules.iter().enumerate() {
        let f = nsg_rule(r).ok()?;
        let port: u16 = text(r, "/properties/destinationPortRange")?.parse().ok()?;
        let plain =
            f.len() == 3 && f.iter().all(|x| matches!(x.key.as_str(), "name" | "priority" | "destination_ports"));
        let name_ok = text(r, "/name") == Some(format!("{vm_name}{port}").as_str());
        let prio = r.pointer("/properties/priority").and_then(J::as_u64) == Some(d::FIRST_PRIORITY + n as u64);
        if !(plain && name_ok && prio) {
            return None;
        }
        ports.push(port);
    }
    let mut f = Vec::new();
    let named = |key: &str, id: &str, f: &mut Vec<Field>| {
        if last(id) != vm_name {
            f.push(Field::str(key, last(id)));
        }
    };
    named("vnet", vnet_id, &mut f);
    if subnet_name != vm_name {
        f.push(Field::str("subnet", subnet_name));
    }
    named("nsg", nsg_id, &mut f);
    named("public_ip", pip_id, &mut f);
    if space != d::ADDRESS_SPACE {
        f.push(Field::str("address_prefix", space));
    }
    if prefix != d::SUBNET_PREFIX {
        f.push(Field::str("subnet_prefix", prefix));
    }
    let default_port = if windows { d::WINDOWS_PORT } else { d::LINUX_PORT };
    if ports != [default_port] {
        f.push(Field::new("open_ports", Y::Flow(ports.into_iter().map(|p| Y::Int(i64::from(p))).collect())));
    }
    let covers = vec![
        (nic_id.to_ascii_lowercase(), "network interface".to_string()),
        (vnet_id.to_ascii_lowercase(), "virtual network".to_string()),
        (nsg_id.to_ascii_lowercase(), "network security group".to_string()),
        (pip_id.to_ascii_lowercase(), "public IP".to_string()),
    ];
    Some((f, covers))
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
    by_hand: None,
    users: |h| super::ids_at(h, "/properties/virtualMachine", None),
},
import: import_network_interface);

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
    fn nsg_rules_leave_defaults_out() {
        let r = serde_json::json!({ "name": "RDP", "properties": { "priority": 300, "direction": "Inbound", "access": "Allow",
            "protocol": "TCP", "sourceAddressPrefix": "*", "sourcePortRange": "*", "destinationAddressPrefix": "*",
            "destinationPortRange": "3389" } });
        let f = nsg_rule(&r).expect("expressible");
        let keys: Vec<&str> = f.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(keys, ["name", "priority", "destination_ports"]);
        let mut odd = r.clone();
        odd["properties"]["destinationAddressPrefix"] = serde_json::json!("10.0.0.4");
        assert!(nsg_rule(&odd).is_err());
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
