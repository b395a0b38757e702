//! Hand-made tutorial environments: the resources of `plans/arm-user-assigned.yaml`,
//! `plans/keyvault.yaml` and `plans/storage-blob.yaml` made in a running local cloud the way a person makes them with the
//! portal, the Azure CLI or Az PowerShell, through plain ARM REST and the Key Vault data plane,
//! never through idlab. No tags anywhere.
//!
//! Where each body comes from:
//! - resource group, virtual network, public IP, network security group, network interface,
//!   VM: the requests `New-AzVM` sends in the recording
//!   `tests/fixtures/azure-recordings/powershell/compute/TestSimpleNewVmWithSystemAssignedIdentity.json`
//!   (no `deleteOption` on the OS disk or the NIC: Azure's default, `Detach`, the spec's
//!   `OSDisk.deleteOption` in `ComputeRP/stable/2025-04-01`), with the names and shapes the
//!   portal gives them: a vnet `<group>-vnet` (10.0.0.0/16) with a subnet `default`
//!   (10.0.0.0/24), a Standard static public IP `<vm>-ip`, a network security group `<vm>-nsg`
//!   with the portal's `RDP` rule (priority 300) attached to the NIC, a NIC named from the
//!   lower-cased VM name and three digits (`myvm123`) with an `ipconfig1`; the OS disk is named
//!   by the cloud (`<vm>_OsDisk_1_<32 hex>`); `createOption` is sent as `fromImage`, the case
//!   `az vm create`'s template builder uses;
//! - user-assigned identity: `New-AzUserAssignedIdentity` (recording
//!   `identity/New-AzUserAssignedIdentity.Recording.json`: the location only); assigned to the
//!   VM as `Update-AzVM -IdentityType UserAssigned` does it: the VM's own GET body sent back
//!   with the identity set;
//! - role assignments: `New-AzRoleAssignment` (recording
//!   `authorization/CreateRAForServicePrincipal.json`): a random GUID name, `principalType:
//!   ServicePrincipal`, the role definition id at the subscription;
//! - Key Vault: `New-AzKeyVault` (recording `keyvault/TestDeleteVault.json`) without purge
//!   protection or tags, with the creator's own access policy as the portal gives it; the VM's
//!   entry added by object id as `Set-AzKeyVaultAccessPolicy -ObjectId` does it (recording
//!   `keyvault/TestSetRemoveAccessPolicyByObjectId.json`: a PUT of the whole vault); the secret
//!   set on the data plane (`PUT {vault}/secrets/{name}?api-version=7.4`, spec
//!   `keyvault/data-plane/Microsoft.KeyVault/stable/7.4/secrets.json`).

// A support API: the teardown and import tests (their own branches) read fields and call helpers
// this module's own tests do not.
#![allow(dead_code)]

use idlab::local::attach;
use idlab::local::shared::ConnectionInfo;
use serde_json::{Value, json};

use super::Served;

const GROUPS: &str = "api-version=2021-04-01";
const MSI: &str = "api-version=2023-01-31";
const NETWORK: &str = "api-version=2024-07-01";
const COMPUTE: &str = "api-version=2025-04-01";
const AUTHORIZATION: &str = "api-version=2022-04-01";
const KEYVAULT: &str = "api-version=2024-11-01";
const STORAGE: &str = "api-version=2025-06-01";
const SECRETS: &str = "api-version=7.4";

/// A caller of the local cloud's ARM and data planes as the person at the portal: the local
/// cloud's operator (Owner of the subscription).
pub(crate) struct Hand<'a> {
    pub(crate) s: &'a Served,
    info: ConnectionInfo,
    http: reqwest::Client,
    token: String,
}

impl<'a> Hand<'a> {
    pub(crate) fn new(s: &'a Served) -> Hand<'a> {
        let info = attach::read_info(&s.state).expect("server.json");
        let http = attach::client(&info).expect("client");
        let token = s.rt.block_on(attach::operator_token(&info, &http)).expect("operator token");
        Hand { s, info, http, token }
    }

    pub(crate) fn subscription(&self) -> &str {
        &self.info.subscription_id
    }

    pub(crate) fn tenant(&self) -> &str {
        &self.info.tenant_id
    }

    /// The operator's object id (the person who made everything).
    pub(crate) fn me(&self) -> &str {
        &self.info.operator_object_id
    }

    /// `METHOD path` on ARM (`path` from `/subscriptions…`), or on a full URL (a data plane)
    /// with `token`: (status, JSON body or `Null`).
    pub(crate) fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.call_as(&self.token, method, path, body, &[])
    }

    fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = if path.starts_with("https://") { path.to_string() } else { format!("{}{path}", self.info.arm_url) };
        self.s.rt.block_on(async {
            let mut r = self
                .http
                .request(reqwest::Method::from_bytes(method.as_bytes()).expect("method"), url)
                .bearer_auth(token);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            if let Some(b) = body {
                r = r.json(b);
            }
            let resp = r.send().await.expect("the local cloud answers");
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.unwrap_or_default();
            (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
        })
    }

    /// `METHOD url` on a data plane with the operator's token for `scope`
    /// (`https://datalake.azure.net//.default`) and `headers` (`x-ms-version`, `x-ms-acl`):
    /// (status, JSON body or `Null`).
    pub(crate) fn data(&self, scope: &str, method: &str, url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        self.call_as(&self.token_for(scope), method, url, None, headers)
    }

    /// A write that must succeed; answers the body.
    fn ok(&self, method: &str, path: &str, body: &Value) -> Value {
        let (status, v) = self.call(method, path, Some(body));
        assert!(status < 300, "{method} {path}: {status} {v}");
        v
    }

    /// A GET that must succeed.
    pub(crate) fn get(&self, id: &str, api: &str) -> Value {
        let (status, v) = self.call("GET", &format!("{id}?{api}"), None);
        assert_eq!(status, 200, "GET {id}: {v}");
        v
    }

    /// The operator's token for another audience (`https://vault.azure.net/.default`).
    fn token_for(&self, scope: &str) -> String {
        let secret = std::fs::read_to_string(&self.info.operator_secret_file).expect("operator secret");
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.info.operator_client_id.as_str()),
            ("client_secret", secret.trim()),
            ("scope", scope),
        ];
        self.s.rt.block_on(async {
            let r = self.http.post(&self.info.token_url).form(&form).send().await.expect("token request");
            let v: Value = r.json().await.expect("token JSON");
            v["access_token"].as_str().expect("access_token").to_string()
        })
    }

    fn group_id(&self, rg: &str) -> String {
        format!("/subscriptions/{}/resourceGroups/{rg}", self.subscription())
    }
}

/// What the portal made for one VM. Ids as the local cloud answers them.
#[derive(Debug, Clone)]
pub(crate) struct VmMade {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) vnet: String,
    pub(crate) subnet: String,
    pub(crate) public_ip: String,
    pub(crate) nsg: String,
    pub(crate) nic: String,
    /// The NIC's IP configuration (`{nic}/ipConfigurations/ipconfig1`).
    pub(crate) ip_config: String,
    /// The OS disk Azure made with the VM (`<vm>_OsDisk_1_<32 hex>`).
    pub(crate) os_disk: String,
    /// The system-assigned identity's principal, when it has one.
    pub(crate) principal_id: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct IdentityMade {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) principal_id: String,
    pub(crate) client_id: String,
}

#[derive(Debug, Clone)]
pub(crate) struct AssignmentMade {
    pub(crate) id: String,
    /// A random GUID, as `New-AzRoleAssignment` names it.
    pub(crate) name: String,
    pub(crate) scope: String,
    pub(crate) principal_id: String,
    pub(crate) role: String,
}

#[derive(Debug, Clone)]
pub(crate) struct VaultMade {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) uri: String,
    pub(crate) secret: String,
    /// The secret's value (generated; the test may check it never shows).
    pub(crate) secret_value: String,
    /// The object ids of its access-policy entries, in order: the creator's, then the VM's.
    pub(crate) policy_object_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct StorageMade {
    /// The account's id.
    pub(crate) id: String,
    pub(crate) name: String,
    /// `{account}/blobServices/default/containers/mycontainer`.
    pub(crate) container: String,
    /// The blob's URL on the local blob plane.
    pub(crate) blob_url: String,
}

/// One hand-made tutorial environment.
#[derive(Debug, Clone)]
pub(crate) struct Made {
    pub(crate) subscription: String,
    pub(crate) group: String,
    pub(crate) group_id: String,
    pub(crate) vm: VmMade,
    pub(crate) identity: Option<IdentityMade>,
    pub(crate) assignments: Vec<AssignmentMade>,
    pub(crate) vault: Option<VaultMade>,
    pub(crate) storage: Option<StorageMade>,
}

impl Made {
    /// Every ARM resource made in the group (what `GET {group}/resources` lists), the OS disk
    /// included, lower-cased and sorted.
    pub(crate) fn resource_ids(&self) -> Vec<String> {
        let v = &self.vm;
        let mut ids: Vec<String> = [&v.id, &v.vnet, &v.public_ip, &v.nsg, &v.nic, &v.os_disk]
            .into_iter()
            .cloned()
            .chain(self.identity.iter().map(|i| i.id.clone()))
            .chain(self.vault.iter().map(|k| k.id.clone()))
            .chain(self.storage.iter().map(|k| k.id.clone()))
            .map(|i| i.to_ascii_lowercase())
            .collect();
        ids.sort();
        ids
    }
}

/// How to make it: the names the plans use by default, and what to send for `deleteOption`.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) group: String,
    pub(crate) location: String,
    pub(crate) vault: String,
    pub(crate) storage_account: String,
    /// `deleteOption` sent for the OS disk, the NIC and the public IP; `None` (the default)
    /// sends none, as `New-AzVM` and `az vm create` do, and Azure keeps `Detach`. The portal
    /// checks "Delete with VM" for the OS disk by default (learn.microsoft.com,
    /// virtual-machines/delete): `Some("Delete")` makes that.
    pub(crate) delete_option: Option<&'static str>,
    /// Whose names and shapes the VM's network gets.
    pub(crate) naming: Naming,
}

/// Who made the VM's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Naming {
    /// The portal: `<group>-vnet` with `default`, `<vm>-ip`, `<vm>-nsg` (rule `RDP`, 300), a NIC
    /// `<vm lower-cased><3 digits>` with `ipconfig1`.
    Portal,
    /// The portal naming the vnet after the VM (`<vm>-vnet`).
    PortalVmVnet,
    /// `az vm create`: `<vm>VNET` with `<vm>Subnet`, `<vm>PublicIP`, `<vm>NSG` (rule `rdp`,
    /// 1000), a NIC `<vm>VMNic` with `ipconfig<vm>`, the NIC reference's `deleteOption` sent as
    /// `null` (Azure/azure-cli `vm/custom.py` `create_vm` and `vm/_template_builder.py`).
    AzCli,
}

/// The names of a VM's network and the NSG's one rule (name, priority).
struct NetNames {
    vnet: String,
    subnet: String,
    public_ip: String,
    nsg: String,
    nic: String,
    ip_config: String,
    /// The NSG's one rule: name, priority, protocol as the client spells it.
    rule: (&'static str, u32, &'static str),
    /// `az vm create` sends the NIC reference's `deleteOption` as `null` when none is asked.
    null_nic_delete_option: bool,
}

impl Naming {
    fn names(self, group: &str, vm: &str) -> NetNames {
        match self {
            Naming::Portal | Naming::PortalVmVnet => NetNames {
                vnet: if self == Naming::Portal { format!("{group}-vnet") } else { format!("{vm}-vnet") },
                subnet: "default".into(),
                public_ip: format!("{vm}-ip"),
                nsg: format!("{vm}-nsg"),
                nic: nic_name(vm),
                ip_config: "ipconfig1".into(),
                rule: ("RDP", 300, "TCP"),
                null_nic_delete_option: false,
            },
            Naming::AzCli => NetNames {
                vnet: format!("{vm}VNET"),
                subnet: format!("{vm}Subnet"),
                public_ip: format!("{vm}PublicIP"),
                nsg: format!("{vm}NSG"),
                nic: format!("{vm}VMNic"),
                ip_config: format!("ipconfig{vm}"),
                rule: ("rdp", 1000, "Tcp"),
                null_nic_delete_option: true,
            },
        }
    }
}

impl Options {
    /// `plans/arm-user-assigned.yaml`'s names.
    pub(crate) fn arm() -> Options {
        Options {
            group: "myResourceGroupVM".into(),
            location: "eastus".into(),
            vault: String::new(),
            storage_account: String::new(),
            delete_option: None,
            naming: Naming::Portal,
        }
    }

    /// `plans/keyvault.yaml`'s names.
    pub(crate) fn keyvault() -> Options {
        Options { group: "myResourceGroup".into(), vault: "idlab-tutorial-kv".into(), ..Options::arm() }
    }

    /// `plans/storage-blob.yaml`'s names.
    pub(crate) fn storage() -> Options {
        Options { group: "myResourceGroup".into(), storage_account: "idlabtutorialblob".into(), ..Options::arm() }
    }
}

/// `New-AzResourceGroup -Name rg -Location loc`.
pub(crate) fn group(h: &Hand<'_>, rg: &str, location: &str) -> String {
    let id = h.group_id(rg);
    h.ok("PUT", &format!("{id}?{GROUPS}"), &json!({ "location": location }));
    id
}

/// `New-AzUserAssignedIdentity -ResourceGroupName rg -Name name`.
pub(crate) fn identity(h: &Hand<'_>, rg: &str, name: &str, location: &str) -> IdentityMade {
    let id = format!("{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}", h.group_id(rg));
    let v = h.ok("PUT", &format!("{id}?{MSI}"), &json!({ "location": location }));
    IdentityMade {
        id: v["id"].as_str().unwrap_or(&id).to_string(),
        name: name.to_string(),
        principal_id: v["properties"]["principalId"].as_str().expect("principalId").to_string(),
        client_id: v["properties"]["clientId"].as_str().expect("clientId").to_string(),
    }
}

/// `New-AzRoleAssignment -ObjectId principal -RoleDefinitionName role -Scope scope`: a
/// random GUID name, `principalType: ServicePrincipal`.
pub(crate) fn role_assignment(h: &Hand<'_>, scope: &str, principal: &str, role: &str) -> AssignmentMade {
    let def = idlab::roles::by_name(role).expect("a built-in role");
    let name = uuid::Uuid::new_v4().to_string();
    let id = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
    let body = json!({ "properties": {
        "principalType": "ServicePrincipal",
        "roleDefinitionId": format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{}", h.subscription(), def.guid),
        "principalId": principal,
    }});
    let v = h.ok("PUT", &format!("{id}?{AUTHORIZATION}"), &body);
    AssignmentMade {
        id: v["id"].as_str().unwrap_or(&id).to_string(),
        name,
        scope: scope.to_string(),
        principal_id: principal.to_string(),
        role: def.name.to_string(),
    }
}

/// The image a plan's alias names (as `New-AzVM -Image` resolves it).
fn image(alias: &str) -> Value {
    let sku = match alias {
        "Win2019Datacenter" => "2019-Datacenter",
        "Win2022Datacenter" => "2022-datacenter-azure-edition",
        other => panic!("no image for {other}"),
    };
    json!({ "publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": sku, "version": "latest" })
}

/// A NIC name as the portal makes it: the VM's name lower-cased and three digits.
fn nic_name(vm: &str) -> String {
    let n: u16 = rand::random::<u16>() % 900 + 100;
    format!("{}{n}", vm.to_ascii_lowercase())
}

/// The portal's VM (or `az vm create`'s, by `o.naming`): its network (vnet, public IP, NSG,
/// NIC) made first, then the VM, the OS disk left to Azure. `system_identity` turns on the
/// system-assigned identity at create.
pub(crate) fn portal_vm(h: &Hand<'_>, o: &Options, vm: &str, image_alias: &str, system_identity: bool) -> VmMade {
    let rg = h.group_id(&o.group);
    let net = format!("{rg}/providers/Microsoft.Network");
    let loc = o.location.as_str();
    let names = o.naming.names(&o.group, vm);
    let vnet = format!("{net}/virtualNetworks/{}", names.vnet);
    h.ok(
        "PUT",
        &format!("{vnet}?{NETWORK}"),
        &json!({ "location": loc, "properties": {
            "addressSpace": { "addressPrefixes": ["10.0.0.0/16"] },
            "subnets": [{ "name": names.subnet, "properties": { "addressPrefix": "10.0.0.0/24" } }],
        }}),
    );
    let subnet = format!("{vnet}/subnets/{}", names.subnet);
    let public_ip = format!("{net}/publicIPAddresses/{}", names.public_ip);
    h.ok(
        "PUT",
        &format!("{public_ip}?{NETWORK}"),
        &json!({ "location": loc, "sku": { "name": "Standard", "tier": "Regional" }, "properties": {
            "publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4",
        }}),
    );
    let nsg = format!("{net}/networkSecurityGroups/{}", names.nsg);
    let (rule, priority, protocol) = names.rule;
    h.ok(
        "PUT",
        &format!("{nsg}?{NETWORK}"),
        &json!({ "location": loc, "properties": { "securityRules": [{ "name": rule, "properties": {
            "priority": priority, "protocol": protocol, "access": "Allow", "direction": "Inbound",
            "sourceAddressPrefix": "*", "sourcePortRange": "*",
            "destinationAddressPrefix": "*", "destinationPortRange": "3389",
        }}]}}),
    );
    let nic = format!("{net}/networkInterfaces/{}", names.nic);
    let mut pip_ref = json!({ "id": public_ip });
    if let Some(d) = o.delete_option {
        pip_ref["properties"] = json!({ "deleteOption": d });
    }
    h.ok(
        "PUT",
        &format!("{nic}?{NETWORK}"),
        &json!({ "location": loc, "properties": {
            "ipConfigurations": [{ "name": names.ip_config, "properties": {
                "subnet": { "id": subnet }, "privateIPAllocationMethod": "Dynamic", "publicIPAddress": pip_ref,
            }}],
            "networkSecurityGroup": { "id": nsg },
        }}),
    );
    let id = format!("{rg}/providers/Microsoft.Compute/virtualMachines/{vm}");
    let mut os_disk = json!({ "createOption": "fromImage", "caching": "ReadWrite", "managedDisk": { "storageAccountType": "Premium_LRS" } });
    let mut nic_ref = json!({ "id": nic });
    if names.null_nic_delete_option {
        nic_ref["properties"] = json!({ "deleteOption": null });
    }
    if let Some(d) = o.delete_option {
        os_disk["deleteOption"] = json!(d);
        nic_ref["properties"] = json!({ "deleteOption": d });
    }
    let mut body = json!({ "location": loc, "properties": {
        "hardwareProfile": { "vmSize": "Standard_DS1_v2" },
        "storageProfile": { "imageReference": image(image_alias), "osDisk": os_disk },
        "osProfile": {
            "computerName": vm, "adminUsername": "azureuser",
            "adminPassword": format!("Hm!{}", uuid::Uuid::new_v4().simple()),
            "windowsConfiguration": { "enableAutomaticUpdates": true, "provisionVMAgent": true },
        },
        "networkProfile": { "networkInterfaces": [nic_ref] },
    }});
    if system_identity {
        body["identity"] = json!({ "type": "SystemAssigned" });
    }
    let v = h.ok("PUT", &format!("{id}?{COMPUTE}"), &body);
    let shown = h.get(v["id"].as_str().unwrap_or(&id), COMPUTE);
    VmMade {
        id: shown["id"].as_str().unwrap_or(&id).to_string(),
        name: vm.to_string(),
        vnet,
        subnet,
        public_ip,
        nsg,
        ip_config: format!("{nic}/ipConfigurations/{}", names.ip_config),
        nic,
        os_disk: shown["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"]
            .as_str()
            .expect("the OS disk Azure made")
            .to_string(),
        principal_id: shown["identity"]["principalId"].as_str().map(str::to_string),
    }
}

/// `Update-AzVM -IdentityType UserAssigned -IdentityID id`: the VM's GET body sent back with
/// the identity set (a PUT, as the cmdlet sends it).
pub(crate) fn assign_user_identity(h: &Hand<'_>, vm: &str, identity: &str) {
    let mut body = h.get(vm, COMPUTE);
    body["identity"] = json!({ "type": "UserAssigned", "userAssignedIdentities": { identity: {} } });
    h.ok("PUT", &format!("{vm}?{COMPUTE}"), &body);
}

/// `plans/arm-user-assigned.yaml` made by hand: the group, ID1, the portal's VM with ID1
/// assigned, Reader for ID1 on the group.
pub(crate) fn arm_user_assigned(s: &Served, o: &Options) -> Made {
    let h = Hand::new(s);
    let group_id = group(&h, &o.group, &o.location);
    let id1 = identity(&h, &o.group, "ID1", &o.location);
    let vm = portal_vm(&h, o, "myVM", "Win2019Datacenter", false);
    assign_user_identity(&h, &vm.id, &id1.id);
    let reader = role_assignment(&h, &group_id, &id1.principal_id, "Reader");
    Made {
        subscription: h.subscription().to_string(),
        group: o.group.clone(),
        group_id,
        vm,
        identity: Some(id1),
        assignments: vec![reader],
        vault: None,
        storage: None,
    }
}

/// `plans/keyvault.yaml` made by hand: the group, the portal's VM with its system-assigned
/// identity, the vault (access policies, the creator's entry), the VM's entry added by object
/// id with secret get and list, the secret set on the data plane.
pub(crate) fn keyvault(s: &Served, o: &Options) -> Made {
    let h = Hand::new(s);
    let group_id = group(&h, &o.group, &o.location);
    let vm = portal_vm(&h, o, "myVM", "Win2022Datacenter", true);
    let principal = vm.principal_id.clone().expect("a system-assigned identity");
    let vault = vault(&h, &o.group, &o.vault, &o.location);
    add_access_policy(&h, &vault.id, &principal, &["get", "list"]);
    let value = format!("hand-{}", uuid::Uuid::new_v4().simple());
    set_secret(&h, &vault.uri, "tutorial-secret", &value);
    Made {
        subscription: h.subscription().to_string(),
        group: o.group.clone(),
        group_id,
        vm,
        identity: None,
        assignments: Vec::new(),
        vault: Some(VaultMade {
            secret: "tutorial-secret".into(),
            secret_value: value,
            policy_object_ids: vec![h.me().to_string(), principal],
            ..vault
        }),
        storage: None,
    }
}

/// `plans/storage-blob.yaml` made by hand: the group, the portal's VM with its
/// system-assigned identity, the account (`New-AzStorageAccount -SkuName Standard_LRS -Kind
/// StorageV2`, recording `storage/TestNewAzureStorageAccount.json`), the container through ARM
/// (`New-AzRmStorageContainer`: `PUT …/blobServices/default/containers/mycontainer` with `{}`,
/// recording `storage/TestStorageBlobContainer.json`), `hello_world.txt` uploaded with a service SAS from
/// the account key (`ListServiceSas`, as the portal's access-key upload does), Storage Blob
/// Data Reader for the VM on the container (random GUID name).
pub(crate) fn storage_blob(s: &Served, o: &Options) -> Made {
    let h = Hand::new(s);
    let group_id = group(&h, &o.group, &o.location);
    let vm = portal_vm(&h, o, "myVM", "Win2022Datacenter", true);
    let principal = vm.principal_id.clone().expect("a system-assigned identity");
    let account = storage_account(&h, &o.group, &o.storage_account, &o.location);
    let container = format!("{account}/blobServices/default/containers/mycontainer");
    h.ok("PUT", &format!("{container}?{STORAGE}"), &json!({}));
    let endpoint =
        h.get(&account, STORAGE)["properties"]["primaryEndpoints"]["blob"].as_str().expect("blob endpoint").to_string();
    let blob_url = format!("{}/mycontainer/hello_world.txt", endpoint.trim_end_matches('/'));
    let sas_request = json!({
        "canonicalizedResource": format!("/blob/{}/mycontainer", o.storage_account),
        "signedResource": "c", "signedPermission": "cw", "signedProtocol": "https",
        "signedExpiry": "2099-01-01T00:00:00Z",
    });
    let sas = h.ok("POST", &format!("{account}/ListServiceSas?{STORAGE}"), &sas_request)["serviceSasToken"]
        .as_str()
        .expect("serviceSasToken")
        .to_string();
    let content = std::fs::read(super::root().join("plans/files/hello_world.txt")).expect("hello_world.txt");
    let status = s.rt.block_on(async {
        let r = h
            .http
            .put(format!("{blob_url}?{sas}"))
            .header("x-ms-version", "2023-11-03")
            .header("x-ms-blob-type", "BlockBlob")
            .header("content-type", "text/plain")
            .body(content)
            .send()
            .await
            .expect("the blob plane answers");
        r.status().as_u16()
    });
    assert_eq!(status, 201, "upload hello_world.txt");
    let reader = role_assignment(&h, &container, &principal, "Storage Blob Data Reader");
    Made {
        subscription: h.subscription().to_string(),
        group: o.group.clone(),
        group_id,
        vm,
        identity: None,
        assignments: vec![reader],
        vault: None,
        storage: Some(StorageMade { id: account, name: o.storage_account.clone(), container, blob_url }),
    }
}

/// `New-AzStorageAccount -SkuName Standard_LRS -Kind StorageV2` (answered 202, then made);
/// answers its id.
pub(crate) fn storage_account(h: &Hand<'_>, rg: &str, name: &str, location: &str) -> String {
    let id = format!("{}/providers/Microsoft.Storage/storageAccounts/{name}", h.group_id(rg));
    let (status, v) = h.call(
        "PUT",
        &format!("{id}?{STORAGE}"),
        Some(&json!({ "sku": { "name": "Standard_LRS" }, "kind": "StorageV2", "location": location })),
    );
    assert!(status < 300, "storage account: {status} {v}");
    h.get(&id, STORAGE)["id"].as_str().unwrap_or(&id).to_string()
}

/// `New-AzKeyVault` (access-policy model, soft delete on, no purge protection, no tags) with
/// the creator's own entry, as the portal adds it.
pub(crate) fn vault(h: &Hand<'_>, rg: &str, name: &str, location: &str) -> VaultMade {
    let id = format!("{}/providers/Microsoft.KeyVault/vaults/{name}", h.group_id(rg));
    let all = ["get", "list", "set", "delete", "recover", "backup", "restore", "purge"];
    let v = h.ok(
        "PUT",
        &format!("{id}?{KEYVAULT}"),
        &json!({ "location": location, "properties": {
            "tenantId": h.tenant(),
            "sku": { "name": "standard", "family": "A" },
            "accessPolicies": [{ "tenantId": h.tenant(), "objectId": h.me(), "permissions": { "secrets": all } }],
            "vaultUri": "",
            "enabledForDeployment": false,
            "enabledForDiskEncryption": false,
            "enabledForTemplateDeployment": false,
            "enableSoftDelete": true,
            "enableRbacAuthorization": false,
            "networkAcls": { "bypass": "AzureServices", "defaultAction": "Allow" },
        }}),
    );
    VaultMade {
        id: v["id"].as_str().unwrap_or(&id).to_string(),
        name: name.to_string(),
        uri: v["properties"]["vaultUri"].as_str().expect("vaultUri").to_string(),
        secret: String::new(),
        secret_value: String::new(),
        policy_object_ids: vec![h.me().to_string()],
    }
}

/// `Set-AzKeyVaultAccessPolicy -VaultName v -ObjectId oid -PermissionsToSecrets …`: the vault
/// read, the entry appended, the whole vault PUT back.
pub(crate) fn add_access_policy(h: &Hand<'_>, vault: &str, object_id: &str, secrets: &[&str]) {
    let v = h.get(vault, KEYVAULT);
    let mut policies = v["properties"]["accessPolicies"].as_array().cloned().unwrap_or_default();
    policies.push(json!({ "tenantId": h.tenant(), "objectId": object_id, "permissions": { "secrets": secrets } }));
    let p = &v["properties"];
    let body = json!({
        "properties": {
            "vaultUri": p["vaultUri"], "tenantId": p["tenantId"], "sku": p["sku"],
            "accessPolicies": policies,
            "enabledForDeployment": p["enabledForDeployment"],
            "enabledForDiskEncryption": p["enabledForDiskEncryption"],
            "enabledForTemplateDeployment": p["enabledForTemplateDeployment"],
        },
        "location": v["location"],
        "tags": {},
    });
    h.ok("PUT", &format!("{vault}?{KEYVAULT}"), &body);
}

/// `Set-AzKeyVaultSecret`: the data plane's `PUT secrets/{name}` as the creator.
pub(crate) fn set_secret(h: &Hand<'_>, vault_uri: &str, name: &str, value: &str) {
    let token = h.token_for("https://vault.azure.net/.default");
    let url = format!("{}/secrets/{name}?{SECRETS}", vault_uri.trim_end_matches('/'));
    let (status, v) = h.call_as(&token, "PUT", &url, Some(&json!({ "value": value })), &[]);
    assert_eq!(status, 200, "set secret: {v}");
}

/// An unrelated resource someone added to the group by hand.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unrelated {
    /// A second user-assigned identity, `extra-identity`.
    Identity,
    /// A storage account nobody declared (`extra<8 hex>`).
    StorageAccount,
}

/// Add one unrelated resource to group `rg`; answers its id.
pub(crate) fn add_unrelated(s: &Served, rg: &str, what: Unrelated) -> String {
    let h = Hand::new(s);
    let location = h.get(&h.group_id(rg), GROUPS)["location"].as_str().unwrap_or("eastus").to_string();
    match what {
        Unrelated::Identity => identity(&h, rg, "extra-identity", &location).id,
        Unrelated::StorageAccount => {
            let name = format!("extra{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
            storage_account(&h, rg, &name, &location)
        }
    }
}

/// The ids in group `rg` (`GET {group}/resources`), lower-cased and sorted; empty when the
/// group is gone.
pub(crate) fn resources_in(s: &Served, rg: &str) -> Vec<String> {
    let h = Hand::new(s);
    let (_, v) = h.call("GET", &format!("{}/resources?{GROUPS}", h.group_id(rg)), None);
    let mut ids: Vec<String> = v["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["id"].as_str().map(str::to_ascii_lowercase))
        .collect();
    ids.sort();
    ids
}

/// Whether group `rg` exists.
pub(crate) fn group_exists(s: &Served, rg: &str) -> bool {
    let h = Hand::new(s);
    h.call("GET", &format!("{}?{GROUPS}", h.group_id(rg)), None).0 == 200
}

/// A second VM made in the portal into an existing subnet (the portal's Networking tab with
/// "Virtual network: existing"): its own Standard static public IP `<vm>-ip` and NIC
/// (`<vm lower-cased><3 digits>`, `ipconfig1`), and its own security group `<vm>-nsg` with the
/// portal's `RDP` rule, or with `nsg` an existing one ("Select existing"); the VM as
/// [`portal_vm`] sends it (`New-AzVM`'s requests in
/// `TestSimpleNewVmWithSystemAssignedIdentity.json`), no `deleteOption`.
pub(crate) fn portal_vm_in_subnet(h: &Hand<'_>, o: &Options, vm: &str, subnet: &str, nsg: Option<&str>) -> VmMade {
    let net = format!("{}/providers/Microsoft.Network", h.group_id(&o.group));
    let loc = o.location.as_str();
    let public_ip = format!("{net}/publicIPAddresses/{vm}-ip");
    let pip = json!({ "location": loc, "sku": { "name": "Standard", "tier": "Regional" },
        "properties": { "publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4" } });
    h.ok("PUT", &format!("{public_ip}?{NETWORK}"), &pip);
    let nsg = match nsg {
        Some(existing) => existing.to_string(),
        None => {
            let id = format!("{net}/networkSecurityGroups/{vm}-nsg");
            h.ok(
                "PUT",
                &format!("{id}?{NETWORK}"),
                &json!({ "location": loc, "properties": { "securityRules": [
                { "name": "RDP", "properties": { "priority": 300, "protocol": "TCP", "access": "Allow",
                  "direction": "Inbound", "sourceAddressPrefix": "*", "sourcePortRange": "*",
                  "destinationAddressPrefix": "*", "destinationPortRange": "3389" } }] } }),
            );
            id
        }
    };
    let nic = format!("{net}/networkInterfaces/{}", nic_name(vm));
    h.ok("PUT", &format!("{nic}?{NETWORK}"), &json!({ "location": loc, "properties": {
        "ipConfigurations": [{ "name": "ipconfig1", "properties": {
            "subnet": { "id": subnet }, "privateIPAllocationMethod": "Dynamic", "publicIPAddress": { "id": public_ip } } }],
        "networkSecurityGroup": { "id": nsg },
    }}));
    let id = format!("{}/providers/Microsoft.Compute/virtualMachines/{vm}", h.group_id(&o.group));
    let body = json!({ "location": loc, "properties": {
        "hardwareProfile": { "vmSize": "Standard_DS1_v2" },
        "storageProfile": { "imageReference": image("Win2019Datacenter"), "osDisk": {
            "createOption": "fromImage", "caching": "ReadWrite", "managedDisk": { "storageAccountType": "Premium_LRS" } } },
        "osProfile": { "computerName": vm, "adminUsername": "azureuser",
            "adminPassword": format!("Hm!{}", uuid::Uuid::new_v4().simple()) },
        "networkProfile": { "networkInterfaces": [{ "id": nic }] },
    }});
    h.ok("PUT", &format!("{id}?{COMPUTE}"), &body);
    let shown = h.get(&id, COMPUTE);
    let vnet = subnet[..subnet.to_ascii_lowercase().rfind("/subnets/").expect("a subnet id")].to_string();
    VmMade {
        id: shown["id"].as_str().unwrap_or(&id).to_string(),
        name: vm.to_string(),
        vnet,
        subnet: subnet.to_string(),
        public_ip,
        nsg,
        ip_config: format!("{nic}/ipConfigurations/ipconfig1"),
        nic,
        os_disk: shown["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"]
            .as_str()
            .expect("the OS disk Azure made")
            .to_string(),
        principal_id: None,
    }
}

/// The portal's security group on a subnet (the subnet's "Network security group" setting,
/// as the portal's basic NSG option or `Set-AzVirtualNetworkSubnetConfig
/// -NetworkSecurityGroup` sends it: the subnet PUT with its prefix and the group's id); the
/// group `<name>` made first with no rules. Answers the group's id.
pub(crate) fn subnet_nsg(h: &Hand<'_>, o: &Options, subnet: &str, name: &str) -> String {
    let nsg = format!("{}/providers/Microsoft.Network/networkSecurityGroups/{name}", h.group_id(&o.group));
    if h.call("GET", &format!("{nsg}?{NETWORK}"), None).0 != 200 {
        h.ok("PUT", &format!("{nsg}?{NETWORK}"), &json!({ "location": o.location, "properties": {} }));
    }
    let have = h.get(subnet, NETWORK);
    let prefix = have["properties"]["addressPrefix"].clone();
    h.ok(
        "PUT",
        &format!("{subnet}?{NETWORK}"),
        &json!({ "properties": {
        "addressPrefix": prefix, "networkSecurityGroup": { "id": nsg } } }),
    );
    nsg
}

/// How a person adds a data disk to a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataDisk {
    /// The portal's "Create and attach a new disk" (`Add-AzVMDataDisk -CreateOption Empty`,
    /// then `Update-AzVM`): the VM's body sent back with a new `Empty` data disk; Azure makes
    /// the disk.
    Empty,
    /// "Attach existing disks": a disk made first (`New-AzDisk`, creationData `Empty`, the
    /// DiskRP spec's `Disk_Create_Empty` example), then attached (`createOption: Attach`).
    Attach,
}

/// Add data disk `name` (4 GiB, lun `lun`) to `vm` as a person does (`how`), without a
/// `deleteOption` (Azure's default, `Detach`). Answers the disk's id.
pub(crate) fn add_data_disk(h: &Hand<'_>, vm: &str, name: &str, lun: u32, how: DataDisk) -> String {
    let mut body = h.get(vm, COMPUTE);
    let rg = vm[..vm.to_ascii_lowercase().find("/providers/").expect("a VM id")].to_string();
    let mut entry = json!({ "lun": lun, "name": name, "diskSizeGB": 4, "caching": "None",
        "managedDisk": { "storageAccountType": "Premium_LRS" } });
    if how == DataDisk::Attach {
        let disk = format!("{rg}/providers/Microsoft.Compute/disks/{name}");
        h.ok("PUT", &format!("{disk}?api-version=2024-03-02"), &json!({ "location": body["location"],
            "sku": { "name": "Premium_LRS" }, "properties": { "creationData": { "createOption": "Empty" }, "diskSizeGB": 4 } }));
        entry = json!({ "lun": lun, "name": name, "createOption": "Attach", "managedDisk": { "id": disk } });
    } else {
        entry["createOption"] = json!("Empty");
    }
    let disks = body.pointer_mut("/properties/storageProfile").expect("storageProfile");
    let list = disks.as_object_mut().expect("object").entry("dataDisks").or_insert(json!([]));
    list.as_array_mut().expect("an array").push(entry);
    let v = h.ok("PUT", &format!("{vm}?{COMPUTE}"), &body);
    let got = v["properties"]["storageProfile"]["dataDisks"].as_array().cloned().unwrap_or_default();
    got.iter()
        .find(|d| d["lun"] == lun)
        .and_then(|d| d["managedDisk"]["id"].as_str())
        .expect("the data disk's id")
        .to_string()
}
