"""Unmodified Azure SDKs for Python against `idlab local serve`.

Usage: python smoke.py STATE_DIR [--proxy]
Reads STATE_DIR/server.json (written by `idlab local serve`), then, with nothing but the
printed values and REQUESTS_CA_BUNDLE (with --proxy: through the local cloud's HTTPS proxy,
HTTPS_PROXY, by Azure's own host names, with no endpoint, authority or scope overridden): creates a resource group and a user-assigned identity,
a VM that carries it (through the generic resources API), assigns Reader on the group, gets
a token through ManagedIdentityCredential with AZURE_POD_IDENTITY_AUTHORITY_HOST pointing at
the VM's identity endpoint, reads the group with it and sees a write refused with 403.
Then Storage: an account and a container through azure-mgmt-storage, a blob uploaded with a
SAS azure-storage-blob signs from listKeys, a larger one uploaded in blocks, a listing paged one
blob at a time, and a read as the VM identity (azure-storage-blob).
Then Key Vault: a vault through azure-mgmt-keyvault, a secret set and read through
azure-keyvault-secrets (its challenge authentication first), read as the VM identity once an
access policy allows it, soft-deleted and recovered, and the vault deleted, found among the
deleted vaults and purged.
"""

import json
import os
import sys
import uuid

state = sys.argv[1]
info = json.load(open(os.path.join(state, "server.json")))
os.environ["REQUESTS_CA_BUNDLE"] = info["ca_file"]

from azure.core.exceptions import HttpResponseError  # noqa: E402
from azure.identity import ClientSecretCredential, ManagedIdentityCredential  # noqa: E402
from azure.mgmt.authorization import AuthorizationManagementClient  # noqa: E402
from azure.mgmt.msi import ManagedServiceIdentityClient  # noqa: E402
from azure.mgmt.resource.resources import ResourceManagementClient  # noqa: E402

SCOPES = ["https://management.azure.com/.default"]
if "--proxy" in sys.argv:
    # Azure's defaults: management.azure.com, login.microsoftonline.com (instance discovery
    # included), the data planes' real host names; the proxy serves them all.
    os.environ["HTTPS_PROXY"] = info["proxy_url"]
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"
    ARM = "https://management.azure.com"
    arm_kw = {}
    cred_kw = {}
else:
    ARM = info["arm_url"]
    arm_kw = {"base_url": ARM, "credential_scopes": SCOPES}
    cred_kw = {"authority": info["authority_url"], "disable_instance_discovery": True}
SUB = info["subscription_id"]
secret = open(info["operator_secret_file"]).read().strip()

operator = ClientSecretCredential(info["tenant_id"], info["operator_client_id"], secret, **cred_kw)
rm = ResourceManagementClient(operator, SUB, **arm_kw)
msi = ManagedServiceIdentityClient(operator, SUB, **arm_kw)
auth = AuthorizationManagementClient(operator, SUB, **arm_kw)

rg = rm.resource_groups.create_or_update("sdk-rg", {"location": "eastus"})
print("resource group:", rg.name, rg.properties.provisioning_state)
ident = msi.user_assigned_identities.create_or_update("sdk-rg", "sdk-id", {"location": "eastus"})
print("identity:", ident.name, "client id", ident.client_id)

net = f"/subscriptions/{SUB}/resourceGroups/sdk-rg/providers/Microsoft.Network"
rm.resources.begin_create_or_update_by_id(
    f"{net}/virtualNetworks/sdk-vnet",
    api_version="2024-07-01",
    parameters={"location": "eastus", "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
     "subnets": [{"name": "default", "properties": {"addressPrefix": "10.0.0.0/24"}}]}},
).result()
rm.resources.begin_create_or_update_by_id(
    f"{net}/networkInterfaces/sdk-nic",
    api_version="2024-07-01",
    parameters={"location": "eastus", "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {
        "subnet": {"id": f"{net}/virtualNetworks/sdk-vnet/subnets/default"}}}]}},
).result()
vm_id = f"/subscriptions/{SUB}/resourceGroups/sdk-rg/providers/Microsoft.Compute/virtualMachines/sdk-vm"
vm = rm.resources.begin_create_or_update_by_id(
    vm_id,
    api_version="2025-04-01",
    parameters={"location": "eastus",
     "identity": {"type": "UserAssigned", "userAssignedIdentities": {ident.id: {}}},
     "properties": {"hardwareProfile": {"vmSize": "Standard_B1s"},
                    "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                                          "sku": "server", "version": "latest"}},
                    "osProfile": {"computerName": "sdkvm", "adminUsername": "azureuser",
                                  "adminPassword": "Sdk-Smoke-Password-1"},
                    "networkProfile": {"networkInterfaces": [{"id": f"{net}/networkInterfaces/sdk-nic"}]}}},
).result()
print("vm:", vm.name)

reader = list(auth.role_definitions.list(rg.id, filter="roleName eq 'Reader'"))
assert len(reader) == 1, reader
ra = auth.role_assignments.create(rg.id, str(uuid.uuid4()), {
    "role_definition_id": reader[0].id, "principal_id": ident.principal_id, "principal_type": "ServicePrincipal"})
print("role assignment:", ra.name, "Reader on", rg.id)

# The VM's identity endpoint, as `idlab local env --vm sdk-vm` prints it.
import urllib.request  # noqa: E402
import ssl  # noqa: E402
token = operator.get_token(*SCOPES).token
req = urllib.request.Request(f"{ARM}/_idlab/vms", headers={"Authorization": f"Bearer {token}"})
vms = json.load(urllib.request.urlopen(req, context=ssl.create_default_context(cafile=info["ca_file"])))["value"]
endpoint = next(v["endpoint"] for v in vms if v["name"] == "sdk-vm")
os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = endpoint

mi = ManagedIdentityCredential(client_id=ident.client_id)
as_vm = ResourceManagementClient(mi, SUB, **arm_kw)
got = as_vm.resource_groups.get("sdk-rg")
print("read as the VM identity:", got.name)
try:
    as_vm.resource_groups.create_or_update("sdk-rg", {"location": "eastus", "tags": {"x": "y"}})
except HttpResponseError as e:
    assert e.status_code == 403, e.status_code
    assert e.error.code == "AuthorizationFailed", e.error.code
    print("write refused:", e.status_code, e.error.code)
else:
    raise SystemExit("a Reader was allowed to write")
# Storage: the management SDK creates an account (a Location long-running operation) and a
# container; azure-storage-blob uploads with a SAS it signs itself from listKeys, then reads as
# the VM identity once it holds Storage Blob Data Reader on the container.
from datetime import datetime, timedelta, timezone  # noqa: E402
from azure.mgmt.storage import StorageManagementClient  # noqa: E402
from azure.storage.blob import BlobClient, ContainerSasPermissions, generate_container_sas  # noqa: E402

st = StorageManagementClient(operator, SUB, **arm_kw)
avail = st.storage_accounts.check_name_availability({"name": "sdksmoke1", "type": "Microsoft.Storage/storageAccounts"})
assert avail.name_available, avail
acct = st.storage_accounts.begin_create(
    "sdk-rg", "sdksmoke1", {"location": "eastus", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}
).result()
print("storage account:", acct.name, acct.provisioning_state)
container = st.blob_containers.create("sdk-rg", "sdksmoke1", "docs", {})
key = st.storage_accounts.list_keys("sdk-rg", "sdksmoke1")["keys"][0]["value"]  # models are mappings
sas = generate_container_sas(
    "sdksmoke1", "docs", account_key=key,
    permission=ContainerSasPermissions(read=True, create=True, write=True),
    expiry=datetime.now(timezone.utc) + timedelta(hours=1),
)
endpoint_blob = acct.primary_endpoints.blob
with_sas = BlobClient(endpoint_blob, "docs", "hello.txt", credential=sas)
with_sas.upload_blob(b"Hello world from the SDK!", overwrite=True)
print("uploaded with a client-signed SAS")
try:
    with_sas.delete_blob()
except HttpResponseError as e:
    assert e.status_code == 403, e.status_code
    print("delete refused:", e.status_code, e.error_code)
else:
    raise SystemExit("a SAS without d deleted a blob")
# Above max_single_put_size the SDK stages blocks (Put Block) and commits them (Put Block
# List); a list with max_results pages with NextMarker.
big = bytes(range(256)) * (5 * 4096 + 7)
chunked = BlobClient(endpoint_blob, "docs", "big.bin", credential=sas, max_single_put_size=1 << 20,
                     max_block_size=1 << 20)
chunked.upload_blob(big, overwrite=True)
assert chunked.download_blob().readall() == big
print("uploaded in blocks:", len(big), "bytes")
from azure.storage.blob import ContainerClient  # noqa: E402
lister = ContainerClient(endpoint_blob, "docs", credential=generate_container_sas(
    "sdksmoke1", "docs", account_key=key, permission=ContainerSasPermissions(list=True),
    expiry=datetime.now(timezone.utc) + timedelta(hours=1)))
pages = list(lister.list_blobs(results_per_page=1).by_page())
names = [b.name for page in pages for b in page]
assert names == ["big.bin", "hello.txt"] and len(pages) == 2, (names, len(pages))
print("listed in pages of one:", names)

as_identity = BlobClient(endpoint_blob, "docs", "hello.txt", credential=mi)
try:
    as_identity.download_blob().readall()
except HttpResponseError as e:
    assert e.status_code == 403, e.status_code
    print("read refused without a data role:", e.status_code, e.error_code)
else:
    raise SystemExit("an identity without a data role read a blob")
blob_reader = list(auth.role_definitions.list(container.id, filter="roleName eq 'Storage Blob Data Reader'"))
auth.role_assignments.create(container.id, str(uuid.uuid4()), {
    "role_definition_id": blob_reader[0].id, "principal_id": ident.principal_id, "principal_type": "ServicePrincipal"})
data = as_identity.download_blob().readall()
assert data == b"Hello world from the SDK!", data
print("read as the VM identity with Storage Blob Data Reader:", len(data), "bytes")

# Key Vault: the vault's own data-plane port (its vaultUri); the SDK's challenge check of the
# host name is turned off on loopback (arm-contract §11).
from azure.keyvault.secrets import SecretClient  # noqa: E402
from azure.mgmt.keyvault import KeyVaultManagementClient  # noqa: E402

kvm = KeyVaultManagementClient(operator, SUB, **arm_kw)
free = kvm.vaults.check_name_availability({"name": "sdk-smoke-kv", "type": "Microsoft.KeyVault/vaults"})
assert free.name_available, free
everything = ["get", "set", "list", "delete", "recover", "purge"]
vault = kvm.vaults.begin_create_or_update("sdk-rg", "sdk-smoke-kv", {
    "location": "eastus",
    # This SDK generation sends dicts as they are: the wire's camelCase names.
    "properties": {
        "tenantId": info["tenant_id"],
        "sku": {"family": "A", "name": "standard"},
        "accessPolicies": [{"tenantId": info["tenant_id"], "objectId": info["operator_object_id"],
                            "permissions": {"secrets": everything}}],
        "enableRbacAuthorization": False,
    },
}).result()
uri = vault.properties.vault_uri
print("vault:", vault.name, uri)
secrets = SecretClient(uri, operator, verify_challenge_resource=False)
made = secrets.set_secret("sdk-secret", "from-the-sdk")
assert made.value == "from-the-sdk" and made.properties.version, made
assert secrets.get_secret("sdk-secret").value == "from-the-sdk"
print("secret set and read by the operator, version", made.properties.version)
vm_secrets = SecretClient(uri, mi, verify_challenge_resource=False)
try:
    vm_secrets.get_secret("sdk-secret")
except HttpResponseError as e:
    assert e.status_code == 403, e.status_code
    print("read refused without an access policy:", e.status_code, e.error.code)
else:
    raise SystemExit("an identity without an access policy read a secret")
kvm.vaults.update_access_policy("sdk-rg", "sdk-smoke-kv", "add", {"properties": {"accessPolicies": [
    {"tenantId": info["tenant_id"], "objectId": ident.principal_id, "permissions": {"secrets": ["get"]}}]}})
assert vm_secrets.get_secret("sdk-secret").value == "from-the-sdk"
print("read as the VM identity with an access policy")
secrets.begin_delete_secret("sdk-secret").wait()
assert secrets.get_deleted_secret("sdk-secret").recovery_id
secrets.begin_recover_deleted_secret("sdk-secret").wait()
assert secrets.get_secret("sdk-secret").value == "from-the-sdk"
print("secret soft-deleted and recovered")
kvm.vaults.delete("sdk-rg", "sdk-smoke-kv")
gone = kvm.vaults.get_deleted("sdk-smoke-kv", "eastus")
assert gone.properties.vault_id.lower().endswith("/vaults/sdk-smoke-kv"), gone
kvm.vaults.begin_purge_deleted("sdk-smoke-kv", "eastus").result()
assert not list(kvm.vaults.list_deleted())
print("vault soft-deleted and purged")
print("SDK smoke test passed")
