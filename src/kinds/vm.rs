//! `virtual_machine`: `Microsoft.Compute/virtualMachines` (arm-contract §3), with its
//! managed identities and `network: auto`, which expands into a virtual network + subnet,
//! a network security group (RDP 3389 for Windows, SSH 22 for Linux, as New-AzVM opens), a
//! public IP and a NIC — real graph nodes named `<vm>:vnet`, `<vm>:nsg`, `<vm>:pip`,
//! `<vm>:nic`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::network::{NetworkInterface, NetworkSecurityGroup, NsgRule, PublicIp, Subnet, VirtualNetwork};
use serde_json::{Value, json};

use super::disk::{DiskType, OsDiskSpec};
use super::env::{Desired, Env, Lenient, UNKNOWN};
use super::header::{ArmHeader, arm_spec};
use super::import::{Field, Imported, Source, Y, env_name, imported, last, placeholder, same, text, with_header};
use super::network::auto;
use super::{Cx, Expanded, Spec, VmIdentity, kind};
use crate::model::names;
use crate::model::{Code, Diag, OrStr, Secret, Sp, Span};
use serde_json::Value as J;

arm_spec! {
    /// A virtual machine.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct VirtualMachine {
        /// VM name: 1–64 characters (the computer name defaults to it: 15 on Windows).
        name;
        /// Extra tags (idlab adds `idlab-plan`).
        tags;
        /// VM size; default `Standard_B2s`.
        #[serde(default)]
        pub size: Option<Sp<String>>,
        /// An image alias (`Win2022Datacenter`, `Win2019Datacenter`, `Ubuntu2404`, …) or
        /// `{ publisher, offer, sku, version, os }`.
        pub image: Sp<OrStr<ImageRef>>,
        /// Host name; defaults to `name`.
        #[serde(default)]
        pub computer_name: Option<Sp<String>>,
        /// The administrator account.
        pub admin: Admin,
        /// `auto` (the default) creates network resources the way New-AzVM does; a mapping
        /// names them, or gives `nic: ${nic}` to use a declared interface instead.
        #[serde(default)]
        pub network: Option<Sp<OrStr<NetworkSpec>>>,
        /// Managed identities.
        #[serde(default)]
        pub identity: Option<IdentitySpec>,
        /// The OS disk Azure makes from the image: its storage type, and whether it goes with
        /// the VM (default: `Standard_LRS`, deleted with the VM).
        #[serde(default)]
        pub os_disk: Option<OsDiskSpec>,
    }
}

/// A marketplace image.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageRef {
    pub publisher: Sp<String>,
    pub offer: Sp<String>,
    pub sku: Sp<String>,
    /// Default `latest`.
    #[serde(default)]
    pub version: Option<Sp<String>>,
    /// `windows` or `linux` (default `linux`, or `windows` for publisher MicrosoftWindowsServer).
    #[serde(default)]
    pub os: Option<Os>,
}

/// Operating system family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Os {
    Windows,
    Linux,
}

/// Image aliases, as the Azure CLI and New-AzVM know them:
/// (alias, publisher, offer, sku, os).
pub const IMAGE_ALIASES: &[(&str, &str, &str, &str, Os)] = &[
    ("Debian12", "Debian", "debian-12", "12-gen2", Os::Linux),
    ("RHEL9", "RedHat", "RHEL", "9-lvm-gen2", Os::Linux),
    ("Ubuntu2204", "Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2", Os::Linux),
    ("Ubuntu2404", "Canonical", "ubuntu-24_04-lts", "server", Os::Linux),
    ("Win2016Datacenter", "MicrosoftWindowsServer", "WindowsServer", "2016-Datacenter", Os::Windows),
    ("Win2019Datacenter", "MicrosoftWindowsServer", "WindowsServer", "2019-Datacenter", Os::Windows),
    ("Win2022Datacenter", "MicrosoftWindowsServer", "WindowsServer", "2022-datacenter-azure-edition", Os::Windows),
    ("Win2025Datacenter", "MicrosoftWindowsServer", "WindowsServer", "2025-datacenter-azure-edition", Os::Windows),
];

/// The administrator account: a user name and exactly one of a password or an SSH key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Admin user name (not `admin`, `administrator`, `root`, …).
    pub username: Sp<String>,
    /// Password: `{ env }`, `{ file }` or `{ generate }`, never inline.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Path of an SSH public key file (Linux only), relative to the plan.
    #[serde(default)]
    pub ssh_public_key_file: Option<Sp<String>>,
}

/// Network settings for `network: auto`, or an explicit NIC.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// Use this declared network interface (`${nic}`) instead of creating one.
    #[serde(default)]
    pub nic: Option<Sp<String>>,
    /// Virtual network name (default: the VM name).
    #[serde(default)]
    pub vnet: Option<Sp<String>>,
    /// Subnet name (default: the VM name).
    #[serde(default)]
    pub subnet: Option<Sp<String>>,
    /// Network security group name (default: the VM name).
    #[serde(default)]
    pub nsg: Option<Sp<String>>,
    /// Public IP name (default: the VM name).
    #[serde(default)]
    pub public_ip: Option<Sp<String>>,
    /// Address space (default `192.168.0.0/16`).
    #[serde(default)]
    pub address_prefix: Option<Sp<String>>,
    /// Subnet prefix (default `192.168.1.0/24`).
    #[serde(default)]
    pub subnet_prefix: Option<Sp<String>>,
    /// Inbound ports to open (default 3389 on Windows, 22 on Linux).
    #[serde(default)]
    pub open_ports: Option<Vec<Sp<u16>>>,
}

/// A VM's managed identities.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentitySpec {
    /// Give the VM a system-assigned identity (`${vm.identity}`).
    #[serde(default)]
    pub system_assigned: bool,
    /// User-assigned identities to attach: `[${id1}]`.
    #[serde(default)]
    pub user_assigned: Vec<Sp<String>>,
}

const RESERVED_USERS: &[&str] = &[
    "administrator",
    "admin",
    "user",
    "user1",
    "test",
    "user2",
    "test1",
    "user3",
    "admin1",
    "1",
    "123",
    "a",
    "actuser",
    "adm",
    "admin2",
    "aspnet",
    "backup",
    "console",
    "david",
    "guest",
    "john",
    "owner",
    "root",
    "server",
    "sql",
    "support",
    "support_388945a0",
    "sys",
    "test2",
    "test3",
    "user4",
    "user5",
];

impl VirtualMachine {
    /// The OS family from the image.
    pub fn os(&self) -> Option<Os> {
        match &self.image.value {
            OrStr::Str(alias) => IMAGE_ALIASES.iter().find(|a| a.0.eq_ignore_ascii_case(alias)).map(|a| a.4),
            OrStr::Full(img) => {
                Some(img.os.unwrap_or(if img.publisher.value.eq_ignore_ascii_case("MicrosoftWindowsServer") {
                    Os::Windows
                } else {
                    Os::Linux
                }))
            }
        }
    }

    fn network_spec(&self) -> Option<&NetworkSpec> {
        match self.network.as_ref().map(|n| &n.value) {
            Some(OrStr::Full(n)) => Some(n),
            _ => None,
        }
    }

    fn auto_network(&self) -> bool {
        self.network_spec().is_none_or(|n| n.nic.is_none())
    }
}

/// The size a VM gets when the plan gives none.
pub const DEFAULT_SIZE: &str = "Standard_B2s";
/// The storage type of the OS disk a plan's VM gets.
pub const OS_DISK_TYPE: &str = "Standard_LRS";

/// The DiskRP api-version destroy deletes a VM's left-behind disks with.
pub const DISK_API_VERSION: &str = "2024-03-02";

/// What Azure does with a VM's disk or network interface when the VM is deleted: `Delete`
/// removes it; anything else (`Detach`, Azure's default) leaves it.
fn deletes_with_vm(entry: &Value) -> bool {
    entry
        .get("deleteOption")
        .or_else(|| entry.pointer("/properties/deleteOption"))
        .and_then(Value::as_str)
        .is_some_and(|o| o.eq_ignore_ascii_case("Delete"))
}

/// A VM's implicit children, from its own body: the OS disk and the data disks it made
/// (not those attached with `Attach`: made outside it), each deleted with the VM when its
/// `deleteOption` is `Delete`, else by destroy after the VM; and the interfaces it deletes.
pub fn vm_implicit(have: &Value) -> Vec<super::Implicit> {
    vm_children(have, false)
}

/// What a VM made by hand refers to ([`super::References`], teardown with `--adopt`): what
/// [`vm_implicit`] finds, and the data disks attached with `Attach` too (the person made and
/// attached them: a portal user's "attach existing disk"), each deleted after the VM unless
/// its `deleteOption` is `Delete`.
fn vm_made_with(have: &Value) -> Vec<super::Implicit> {
    vm_children(have, true)
}

fn vm_children(have: &Value, attached_too: bool) -> Vec<super::Implicit> {
    use super::{Implicit, ImplicitFate};
    let mut out = Vec::new();
    let disk = |d: &Value, what: &'static str, out: &mut Vec<Implicit>| {
        if let Some(id) = d.pointer("/managedDisk/id").and_then(Value::as_str) {
            let fate = if deletes_with_vm(d) {
                ImplicitFate::WithParent("its deleteOption is Delete")
            } else {
                ImplicitFate::After { api_version: DISK_API_VERSION }
            };
            out.push(Implicit { id: id.to_string(), what, fate });
        }
    };
    let sp = have.pointer("/properties/storageProfile");
    if let Some(os) = sp.and_then(|s| s.get("osDisk")) {
        disk(os, "OS disk", &mut out);
    }
    for d in sp.and_then(|s| s.get("dataDisks")).and_then(Value::as_array).into_iter().flatten() {
        let attached = d.get("createOption").and_then(Value::as_str).is_some_and(|c| c.eq_ignore_ascii_case("Attach"));
        if !attached || attached_too {
            disk(d, "data disk", &mut out);
        }
    }
    let nics = have.pointer("/properties/networkProfile/networkInterfaces").and_then(Value::as_array);
    for n in nics.into_iter().flatten() {
        if let Some(id) = n.get("id").and_then(Value::as_str) {
            // One whose deleteOption is not Delete (Azure's default, Detach: the portal's and
            // New-AzVM's interface) is left by the VM's delete, and goes right after it.
            let fate = if deletes_with_vm(n) {
                ImplicitFate::WithParent("its deleteOption is Delete")
            } else {
                ImplicitFate::After { api_version: super::Kind::api_version(&super::network::NetworkInterfaceKind) }
            };
            out.push(Implicit { id: id.to_string(), what: "network interface", fate });
        }
    }
    out
}

/// The body a VM update PATCHes: the fields that can change in place (with the disk's and
/// the interfaces' `deleteOption`).
pub fn vm_patch(body: &Value, observed: Option<&Value>) -> Value {
    let mut p = json!({ "tags": body.get("tags"), "identity": body.get("identity"), "properties": {
        "hardwareProfile": body.pointer("/properties/hardwareProfile"),
        // `createOption` is required in every `OSDisk` (ComputeRP 2025-04-01), a PATCH's too.
        "storageProfile": { "osDisk": {
            "createOption": body.pointer("/properties/storageProfile/osDisk/createOption"),
            "deleteOption": body.pointer("/properties/storageProfile/osDisk/deleteOption"),
        } },
        "networkProfile": body.pointer("/properties/networkProfile"),
    } });
    // Identities that are no longer wanted are removed one by one (`{id: null}`).
    if let (Some(want), Some(have)) = (
        body.pointer("/identity/userAssignedIdentities").and_then(Value::as_object),
        observed.and_then(|o| o.pointer("/identity/userAssignedIdentities")).and_then(Value::as_object),
    ) {
        let mut m = want.clone();
        for k in have.keys() {
            if !want.keys().any(|w| w.eq_ignore_ascii_case(k)) {
                m.insert(k.clone(), Value::Null);
            }
        }
        p["identity"]["userAssignedIdentities"] = Value::Object(m);
    }
    p
}

impl Spec for VirtualMachine {
    fn header(&self) -> Option<ArmHeader<'_>> {
        Some(self.arm_header())
    }
    /// Only some fields change in place: read-modify-write by PATCH, guarded by the ETag.
    fn update_patch(&self, want: &Value, have: Option<&Value>) -> Option<super::Patch> {
        Some(super::Patch { body: vm_patch(want, have), if_match: true })
    }
    fn implicit(&self, have: &Value) -> Vec<super::Implicit> {
        vm_implicit(have)
    }
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let (id, name) = self.arm_header().id(env, "Microsoft.Compute/virtualMachines");
        let image = match &self.image.value {
            OrStr::Str(alias) => IMAGE_ALIASES.iter().find(|a| a.0.eq_ignore_ascii_case(alias)).map_or_else(
                || json!({}),
                |a| json!({ "publisher": a.1, "offer": a.2, "sku": a.3, "version": "latest" }),
            ),
            OrStr::Full(i) => json!({
                "publisher": env.resolve(&i.publisher).or_unknown(),
                "offer": env.resolve(&i.offer).or_unknown(),
                "sku": env.resolve(&i.sku).or_unknown(),
                "version": i.version.as_ref().map_or_else(|| "latest".to_string(), |v| env.resolve(v).or_unknown()),
            }),
        };
        let nic = match self.network_spec().and_then(|n| n.nic.as_ref()) {
            Some(n) => env.resolve(n).or_unknown(),
            None => env
                .values
                .get(&(format!("{}:nic", env.logical), "id".to_string()))
                .cloned()
                .unwrap_or_else(|| UNKNOWN.to_string()),
        };
        let nic_ref = if self.auto_network() {
            json!({ "id": nic, "properties": { "primary": true, "deleteOption": "Delete" } })
        } else {
            json!({ "id": nic, "properties": { "primary": true } })
        };
        let computer = self.computer_name.as_ref().map_or_else(|| name.clone(), |c| env.resolve(c).or_unknown());
        let mut os =
            json!({ "computerName": computer, "adminUsername": env.resolve(&self.admin.username).or_unknown() });
        let mut secrets = Vec::new();
        if let Some(p) = &self.admin.password {
            secrets.push(("/properties/osProfile/adminPassword".to_string(), p.clone()));
        }
        if let Some(k) = &self.admin.ssh_public_key_file {
            os["linuxConfiguration"] = json!({ "disablePasswordAuthentication": true, "ssh": { "publicKeys": [{ "path": format!("/home/{}/.ssh/authorized_keys", env.resolve(&self.admin.username).or_unknown()) }] } });
            secrets.push((
                "/properties/osProfile/linuxConfiguration/ssh/publicKeys/0/keyData".to_string(),
                Secret::File(k.clone()),
            ));
        }
        let vmi = self.vm_identity();
        let system = vmi.as_ref().is_some_and(|v| v.system_assigned);
        let users: Vec<String> = vmi
            .as_ref()
            .map(|v| v.user_assigned.iter().map(|u| env.resolve(u).or_unknown()).collect())
            .unwrap_or_default();
        let ty = match (system, !users.is_empty()) {
            (true, true) => "SystemAssigned, UserAssigned",
            (true, false) => "SystemAssigned",
            (false, true) => "UserAssigned",
            (false, false) => "None",
        };
        let mut identity = json!({ "type": ty });
        if !users.is_empty() {
            identity["userAssignedIdentities"] = Value::Object(users.into_iter().map(|u| (u, json!({}))).collect());
        }
        let disk = self.os_disk.as_ref();
        let os_type = disk.and_then(|d| d.storage_type).map_or(OS_DISK_TYPE, DiskType::arm);
        let os_delete = if disk.and_then(|d| d.delete_with_vm).unwrap_or(true) { "Delete" } else { "Detach" };
        Some(Desired {
            secrets,
            // The one interface of a VM is its primary one (ComputeRP 2025-04-01,
            // `NetworkInterfaceReferenceProperties.primary`: "in case the virtual machine has
            // more than 1 network interface"): Azure answers a reference sent without it so.
            lenient: vec![(
                "properties/networkProfile/networkInterfaces/0/properties/primary",
                Lenient::Absent(json!(true)),
            )],
            immutable: vec![
                ("location", "a VM's location cannot change"),
                ("properties/storageProfile/imageReference", "a VM's image cannot change in place"),
                ("properties/storageProfile/osDisk/createOption", "a VM's OS disk cannot change in place"),
                ("properties/storageProfile/osDisk/managedDisk", "a VM's OS disk cannot change in place"),
                ("properties/osProfile", "a VM's OS profile (computer name, admin user) cannot change in place"),
            ],
            ..Desired::new(
                id,
                "2025-04-01",
                json!({
                    "location": env.location(&self.location),
                    "tags": env.tags(&self.tags),
                    "identity": identity,
                    "properties": {
                        "hardwareProfile": { "vmSize": self.size.as_ref().map_or_else(|| DEFAULT_SIZE.to_string(), |s| env.resolve(s).or_unknown()) },
                        // The OS disk (unless `os_disk.delete_with_vm: false`), and the interface `network:
                        // auto` makes, go with the VM.
                        "storageProfile": { "imageReference": image, "osDisk": { "createOption": "FromImage", "deleteOption": os_delete, "managedDisk": { "storageAccountType": os_type } } },
                        "osProfile": os,
                        "networkProfile": { "networkInterfaces": [nic_ref] },
                    },
                }),
            )
        })
    }
    fn vm_identity(&self) -> Option<VmIdentity<'_>> {
        Some(VmIdentity {
            system_assigned: self.identity.as_ref().is_some_and(|i| i.system_assigned),
            user_assigned: self.identity.as_ref().map_or(&[], |i| i.user_assigned.as_slice()),
        })
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        self.arm_header().validate(cx, Code::VmName, names::virtual_machine, 512);
        let os = self.os();
        if let OrStr::Str(alias) = &self.image.value
            && os.is_none()
        {
            let aliases = IMAGE_ALIASES.iter().map(|a| a.0);
            let mut d = Diag::error(Code::ImageAlias, self.image.span, format!("unknown image alias `{alias}`"))
                .label("not an alias idlab knows");
            d = match crate::model::diag::suggest(alias, aliases.clone()) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!(
                    "use one of {} or {{ publisher, offer, sku }}",
                    aliases.collect::<Vec<_>>().join(", ")
                )),
            };
            cx.push(d);
        }
        let windows = os == Some(Os::Windows);
        let computer = self.computer_name.as_ref().unwrap_or(&self.name);
        if self.computer_name.is_some() || !crate::model::refs::has_expr(computer) {
            cx.name_rule(computer, Code::VmName, |n| names::computer_name(n, windows));
        }
        self.validate_admin(cx, windows);
        if let Some(i) = &self.identity {
            for (n, r) in i.user_assigned.iter().enumerate() {
                cx.reference("identity.user_assigned", r, &["user_assigned_identity"]);
                if let Some(first) = i.user_assigned[..n].iter().find(|p| p.value == r.value) {
                    cx.push(
                        Diag::error(Code::InvalidValue, r.span, format!("identity `{}` is listed twice", r.value))
                            .label("again here")
                            .related(first.span, "first listed here"),
                    );
                }
            }
        }
        if let Some(net) = self.network_spec() {
            self.validate_network(cx, net);
        }
    }
    fn expand(&self, logical: &str) -> Vec<Expanded> {
        if !self.auto_network() {
            return Vec::new();
        }
        let default = NetworkSpec::default();
        let net = self.network_spec().unwrap_or(&default);
        let at = self.network.as_ref().map_or(self.name.span, |n| n.span);
        let named = |v: &Option<Sp<String>>| v.clone().unwrap_or_else(|| Sp::new(self.name.value.clone(), at));
        let lit = |s: &str| Sp::new(s.to_string(), at);
        let rg = self.resource_group.clone();
        let location = self.location.clone();
        let tags = self.tags.clone();
        let windows = self.os() == Some(Os::Windows);
        let ports: Vec<u16> = match &net.open_ports {
            Some(p) => p.iter().map(|p| p.value).collect(),
            None if windows => vec![auto::WINDOWS_PORT],
            None => vec![auto::LINUX_PORT],
        };
        let subnet_name = named(&net.subnet);
        let vnet = VirtualNetwork {
            kind: lit("virtual_network"),
            name: named(&net.vnet),
            resource_group: rg.clone(),
            location: location.clone(),
            address_space: vec![net.address_prefix.clone().unwrap_or_else(|| lit(auto::ADDRESS_SPACE))],
            subnets: vec![Subnet {
                name: subnet_name.clone(),
                address_prefix: net.subnet_prefix.clone().unwrap_or_else(|| lit(auto::SUBNET_PREFIX)),
                nsg: None,
            }],
            tags: tags.clone(),
            depends_on: Vec::new(),
        };
        let nsg = NetworkSecurityGroup {
            kind: lit("network_security_group"),
            name: named(&net.nsg),
            resource_group: rg.clone(),
            location: location.clone(),
            rules: ports
                .iter()
                .enumerate()
                .map(|(i, p)| NsgRule {
                    name: lit(&format!("{}{p}", self.name.value)),
                    priority: Sp::new(auto::FIRST_PRIORITY as u32 + i as u32, at),
                    direction: None,
                    access: None,
                    protocol: None,
                    source: None,
                    destination_ports: lit(&p.to_string()),
                })
                .collect(),
            tags: tags.clone(),
            depends_on: Vec::new(),
        };
        let pip = PublicIp {
            kind: lit("public_ip"),
            name: named(&net.public_ip),
            resource_group: rg.clone(),
            location: location.clone(),
            sku: None,
            allocation: None,
            tags: tags.clone(),
            depends_on: Vec::new(),
        };
        let (v, n, p, nic_name) =
            (format!("{logical}:vnet"), format!("{logical}:nsg"), format!("{logical}:pip"), format!("{logical}:nic"));
        let nic = NetworkInterface {
            kind: lit("network_interface"),
            name: Sp::new(self.name.value.clone(), at),
            resource_group: rg,
            location,
            virtual_network: lit(&format!("${{{v}}}")),
            subnet: subnet_name,
            public_ip: Some(lit(&format!("${{{p}}}"))),
            nsg: Some(lit(&format!("${{{n}}}"))),
            ip_configuration: None,
            tags,
            depends_on: Vec::new(),
        };
        vec![
            Expanded {
                logical: v.clone(),
                kind: &super::network::VirtualNetworkKind,
                spec: Box::new(vnet),
                depends_on: Vec::new(),
            },
            Expanded {
                logical: n.clone(),
                kind: &super::network::NsgKind,
                spec: Box::new(nsg),
                depends_on: Vec::new(),
            },
            Expanded {
                logical: p.clone(),
                kind: &super::network::PublicIpKind,
                spec: Box::new(pip),
                depends_on: Vec::new(),
            },
            Expanded {
                logical: nic_name.clone(),
                kind: &super::network::NetworkInterfaceKind,
                spec: Box::new(nic),
                depends_on: vec![v, n, p],
            },
        ]
    }
    fn identity_key(&self) -> Option<String> {
        Some(self.arm_header().key("virtualMachines"))
    }
}

impl VirtualMachine {
    fn validate_admin(&self, cx: &mut Cx<'_>, windows: bool) {
        let user = &self.admin.username;
        let max = if windows { 20 } else { 64 };
        if !crate::model::refs::has_expr(user) {
            let problem = if RESERVED_USERS.contains(&user.value.to_ascii_lowercase().as_str()) {
                Some(format!("`{}` is a reserved user name on Azure VMs", user.value))
            } else if user.value.is_empty() || user.value.chars().count() > max {
                Some(format!("an admin user name must be 1 to {max} characters long"))
            } else if user.value.ends_with('.') || user.value.chars().any(|c| "\\/\"[]:|<>+=;,?*@& ".contains(c)) {
                Some("an admin user name may not hold \\/\"[]:|<>+=;,?*@& or spaces, nor end with '.'".to_string())
            } else {
                None
            };
            if let Some(p) = problem {
                cx.push(Diag::error(Code::VmName, user.span, p).label("this user name"));
            }
        }
        match (&self.admin.password, &self.admin.ssh_public_key_file) {
            (Some(_), Some(k)) => cx.push(
                Diag::error(Code::Conflict, k.span, "give either `password` or `ssh_public_key_file`, not both")
                    .label("second credential"),
            ),
            (None, None) => cx.push(
                Diag::error(Code::Conflict, user.span, "the admin account needs `password` or `ssh_public_key_file`")
                    .label("no credential")
                    .help("e.g. password: { generate: 24 }"),
            ),
            (None, Some(k)) if windows => cx.push(
                Diag::error(Code::Conflict, k.span, "a Windows VM needs an admin `password`; SSH keys are for Linux")
                    .label("SSH key on Windows"),
            ),
            (None, Some(k)) => {
                if !cx.file_outside(k, "SSH public key file") && !cx.base_dir.join(&k.value).is_file() {
                    cx.push(
                        Diag::error(
                            Code::FileNotFound,
                            k.span,
                            format!("SSH public key file `{}` does not exist", k.value),
                        )
                        .label("no such file")
                        .help("paths are relative to the plan file"),
                    );
                }
            }
            (Some(p), None) => cx.secret(p),
        }
    }

    fn validate_network(&self, cx: &mut Cx<'_>, net: &NetworkSpec) {
        if let Some(nic) = &net.nic {
            let others: Vec<Span> =
                [&net.vnet, &net.subnet, &net.nsg, &net.public_ip, &net.address_prefix, &net.subnet_prefix]
                    .into_iter()
                    .flatten()
                    .map(|s| s.span)
                    .collect();
            if let Some(first) = others.first() {
                cx.push(
                    Diag::error(
                        Code::Conflict,
                        *first,
                        "`nic` uses a declared interface; the other network fields only apply to `auto`",
                    )
                    .label("ignored with `nic`")
                    .related(nic.span, "nic given here"),
                );
            }
            cx.reference("network.nic", nic, &["network_interface"]);
            return;
        }
        for n in [&net.vnet, &net.subnet, &net.nsg, &net.public_ip].into_iter().flatten() {
            cx.name_rule(n, Code::ChildName, |s| names::network(s, "a network resource name"));
        }
        let space = net.address_prefix.as_ref().map(|a| (a, super::network::parse_cidr(a)));
        let sub = net.subnet_prefix.as_ref().map(|a| (a, super::network::parse_cidr(a)));
        for (s, r) in [&space, &sub].into_iter().flatten() {
            if let Err(e) = r {
                cx.push(Diag::error(Code::Cidr, s.span, e.clone()).label("not a valid prefix"));
            }
        }
        if let Some(p) = net.open_ports.as_ref().and_then(|p| p.iter().find(|p| p.value == 0)) {
            cx.push(Diag::error(Code::NsgRule, p.span, "port 0 cannot be opened").label("bad port"));
        }
    }
}

/// `virtual_machine`: its image (an alias when it is one), admin account (the password a
/// placeholder), identities as references, and its network (`auto`, a named `network:`
/// block, or `nic: ${nic}` for an interface declared on its own). Its disks are implicit.
pub fn import_virtual_machine(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let name = text(have, "/name").unwrap_or(last(id)).to_string();
    let key = src.key(id).unwrap_or(&name).to_string();
    let mut i = imported(id, have, "vm", 4, Vec::new());
    let mut own = Vec::new();
    if let Some(s) = text(have, "/properties/hardwareProfile/vmSize").filter(|s| *s != DEFAULT_SIZE) {
        own.push(Field::str("size", s));
    }
    let img = have.pointer("/properties/storageProfile/imageReference").cloned().unwrap_or(J::Null);
    let os_type = text(have, "/properties/storageProfile/osDisk/osType");
    let windows = os_type.is_some_and(|o| same(o, "Windows"))
        || have.pointer("/properties/osProfile/windowsConfiguration").is_some()
        || text(&img, "/publisher").is_some_and(|p| same(p, "MicrosoftWindowsServer"));
    let os = if windows { Os::Windows } else { Os::Linux };
    let (publisher, offer, sku) = (
        text(&img, "/publisher").unwrap_or_default(),
        text(&img, "/offer").unwrap_or_default(),
        text(&img, "/sku").unwrap_or_default(),
    );
    let version = text(&img, "/version").unwrap_or("latest");
    let alias = IMAGE_ALIASES
        .iter()
        .find(|a| same(a.1, publisher) && same(a.2, offer) && same(a.3, sku) && a.4 == os && version == "latest");
    match alias {
        Some(a) => own.push(Field::str("image", a.0)),
        None => {
            let mut f = vec![Field::str("publisher", publisher), Field::str("offer", offer), Field::str("sku", sku)];
            if version != "latest" {
                f.push(Field::str("version", version));
            }
            let default_os = if same(publisher, "MicrosoftWindowsServer") { Os::Windows } else { Os::Linux };
            if os != default_os {
                f.push(Field::str("os", if windows { "windows" } else { "linux" }));
            }
            own.push(Field::new("image", Y::Map(f)));
        }
    }
    if let Some(c) = text(have, "/properties/osProfile/computerName").filter(|c| *c != name) {
        own.push(Field::str("computer_name", c));
    }
    let user = text(have, "/properties/osProfile/adminUsername").unwrap_or_default();
    let mut admin = vec![Field::str("username", user)];
    let ssh_only = have
        .pointer("/properties/osProfile/linuxConfiguration/disablePasswordAuthentication")
        .and_then(J::as_bool)
        .unwrap_or(false);
    if ssh_only {
        let file = format!("{}.pub", key);
        let mut f = Field::str("ssh_public_key_file", file.clone());
        f.comment = Some(format!(
            "save the VM's SSH public key (Azure holds it in osProfile.linuxConfiguration.ssh.publicKeys) as {file}, next to this plan"
        ));
        admin.push(f);
    } else {
        let (value, p) = placeholder(
            env_name(&key, "admin_password"),
            format!(
                "the admin password of VM {name} (Azure never returns it; it is sent only if the VM is created again)"
            ),
        );
        let mut f = Field::new("password", value);
        f.comment = Some(format!("set {}: {}", p.name, p.what));
        admin.push(f);
        i.placeholders.push(p);
    }
    own.push(Field::new("admin", Y::Map(admin)));
    // The network.
    match super::network::auto_network(have, &name, windows, src) {
        Some((f, covers)) => {
            if !f.is_empty() {
                own.push(Field::new("network", Y::Map(f)));
            }
            i.covers.extend(covers);
        }
        None => {
            let nics = have.pointer("/properties/networkProfile/networkInterfaces").and_then(J::as_array);
            let nics: Vec<&str> = nics.into_iter().flatten().filter_map(|n| text(n, "/id")).collect();
            if let Some(n) = nics.first() {
                let r = src.reference(n).unwrap_or_else(|| (*n).to_string());
                own.push(Field::new("network", Y::Map(vec![Field::str("nic", r)])));
            }
            if nics.len() > 1 {
                i.unexpressed.push("several network interfaces (plans give one)".into());
            }
        }
    }
    // Identities.
    let ty = text(have, "/identity/type").unwrap_or("None").to_ascii_lowercase();
    let mut ident = Vec::new();
    if ty.contains("systemassigned") {
        ident.push(Field::new("system_assigned", Y::Bool(true)));
        if let Some(p) = text(have, "/identity/principalId") {
            i.principals.push((p.to_ascii_lowercase(), ".identity"));
        }
    }
    let mut users: Vec<String> = have
        .pointer("/identity/userAssignedIdentities")
        .and_then(J::as_object)
        .into_iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .collect();
    users.sort_by_key(|u| u.to_ascii_lowercase());
    // Identities the import could not read (the first pass has no keys yet) cannot be listed.
    let (known, unread): (Vec<&String>, Vec<&String>) = users.iter().partition(|u| src.reference(u).is_some());
    if !src.keys.is_empty() {
        for u in unread {
            i.unexpressed.push(format!("user-assigned identity {u} could not be read, so it is not listed"));
        }
    }
    if !known.is_empty() {
        let refs = known.iter().filter_map(|u| src.reference(u)).map(Y::Str).collect();
        ident.push(Field::new("user_assigned", Y::List(refs)));
    }
    if !ident.is_empty() {
        own.push(Field::new("identity", Y::Map(ident)));
    }
    // Its disks are its implicit children.
    for c in vm_implicit(have) {
        if !c.what.contains("interface") {
            i.covers.push((c.id.to_ascii_lowercase(), c.what.to_string()));
        }
    }
    // The OS disk's type and fate, when they are not a plan's defaults.
    let os_disk = have.pointer("/properties/storageProfile/osDisk").cloned().unwrap_or(J::Null);
    let mut disk = Vec::new();
    if let Some(t) = text(&os_disk, "/managedDisk/storageAccountType").filter(|t| !same(t, OS_DISK_TYPE)) {
        match DiskType::from_arm(t) {
            Some(d) => disk.push(Field::str("type", d.arm())),
            None => i.unexpressed.push(format!("OS disk type {t} (not one an OS disk can have)")),
        }
    }
    // Absent, Azure's default is Detach.
    if !text(&os_disk, "/deleteOption").is_some_and(|o| same(o, "Delete")) {
        disk.push(Field::new("delete_with_vm", Y::Bool(false)));
    }
    if !disk.is_empty() {
        own.push(Field::new("os_disk", Y::Map(disk)));
    }
    i.fields = with_header(id, have, src, own);
    Some(i)
}

kind!(VirtualMachineKind, VirtualMachine,
    type_name: "virtual_machine",
    arm_type: Some("Microsoft.Compute/virtualMachines"),
    api_version: "2025-04-01",
    attributes: &["id", "name", "identity", "identity.principal_id", "identity.tenant_id", "computer_name"],
    weight: 90,
    references: super::References { makes: true, children: vm_implicit, by_hand: Some(vm_made_with), users: |_| Vec::new() },
    import: import_virtual_machine,
    children: import_vm_children);

/// A VM's user-assigned identities: the import reads those outside the imported groups too,
/// so the VM keeps them.
pub fn import_vm_children(_id: &str, have: &Value) -> super::import::Children {
    let kind = super::Kind::type_name(&super::identity::UserAssignedIdentityKind);
    let users = have.pointer("/identity/userAssignedIdentities").and_then(Value::as_object);
    super::import::Children {
        found: Vec::new(),
        reads: users.into_iter().flatten().map(|(id, _)| super::import::Read::Get { id: id.clone(), kind }).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::ImplicitFate;

    #[test]
    fn a_vm_s_implicit_children_come_from_its_body() {
        let have = json!({ "properties": {
            "storageProfile": {
                "osDisk": { "deleteOption": "Detach", "managedDisk": { "id": "/g/disks/vm_OsDisk_1_ab" } },
                "dataDisks": [
                    { "createOption": "Empty", "deleteOption": "Delete", "managedDisk": { "id": "/g/disks/made" } },
                    { "createOption": "Attach", "managedDisk": { "id": "/g/disks/theirs" } },
                ],
            },
            "networkProfile": { "networkInterfaces": [
                { "id": "/g/nics/a", "properties": { "deleteOption": "Delete" } },
                { "id": "/g/nics/b" },
            ] },
        } });
        let got: Vec<(String, &str, ImplicitFate)> =
            vm_implicit(&have).into_iter().map(|c| (c.id, c.what, c.fate)).collect();
        let with = ImplicitFate::WithParent("its deleteOption is Delete");
        assert_eq!(
            got,
            vec![
                ("/g/disks/vm_OsDisk_1_ab".into(), "OS disk", ImplicitFate::After { api_version: DISK_API_VERSION }),
                ("/g/disks/made".into(), "data disk", with),
                ("/g/nics/a".into(), "network interface", with),
                ("/g/nics/b".into(), "network interface", ImplicitFate::After { api_version: "2024-07-01" }),
            ]
        );
        // Made by hand (teardown with --adopt): the disk attached with Attach goes too, after.
        let made: Vec<String> = vm_made_with(&have).into_iter().map(|c| c.id).collect();
        assert_eq!(made, ["/g/disks/vm_OsDisk_1_ab", "/g/disks/made", "/g/disks/theirs", "/g/nics/a", "/g/nics/b"]);
        // Through the kind's references: the attached disk only for what was made by hand.
        let refs = super::super::Kind::references(&VirtualMachineKind).expect("references");
        let ids = |by_hand: bool| -> Vec<String> { refs.made_with(&have, by_hand).into_iter().map(|c| c.id).collect() };
        assert!(!ids(false).contains(&"/g/disks/theirs".to_string()));
        assert_eq!(ids(true), made);
    }
}
