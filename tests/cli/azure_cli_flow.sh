#!/usr/bin/env bash
# The unmodified Azure CLI through the tutorial flow against a running `idlab local serve`, by
# Azure's own host names through the local cloud's HTTPS proxy: no `az cloud register`, no
# endpoint flag. Every Python process runs under tests/cli/guard/sitecustomize.py, which
# refuses and logs every non-loopback name lookup and connection; the flow ends by asserting
# that log is empty.
#
# Usage: tests/cli/azure_cli_flow.sh AZ STATE_DIR IDLAB
#   AZ: the `az` of a venv with the pinned azure-cli; STATE_DIR: the serving state directory;
#   IDLAB: the idlab binary (for `idlab local env --vm`).
set -euo pipefail

az_bin="$1"
state="$2"
idlab_bin="$3"
here="$(cd "$(dirname "$0")" && pwd)"
py="$(dirname "$az_bin")/python"

field() { "$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$state/server.json" "$1"; }
proxy="$(field proxy_url)"
ca="$(field ca_file)"
tenant="$(field tenant_id)"
sub="$(field subscription_id)"
client="$(field operator_client_id)"
secret="$(cat "$(field operator_secret_file)")"

work="$(mktemp -d)"
guard_log="$work/guard.log"
: > "$guard_log"

# The environment the docs give (docs/local-cloud.md, "The Azure CLI through the proxy").
export HTTPS_PROXY="$proxy"
export NO_PROXY="127.0.0.1,localhost"
unset HTTP_PROXY http_proxy https_proxy no_proxy ALL_PROXY all_proxy
export REQUESTS_CA_BUNDLE="$ca"
export AZURE_CONFIG_DIR="$work/azure"
export AZURE_CORE_COLLECT_TELEMETRY=false
export AZURE_CORE_SURVEY_MESSAGE=false
export AZURE_CORE_NO_COLOR=true
export AZURE_CORE_ONLY_SHOW_ERRORS=true
export AZURE_CORE_LOGIN_EXPERIENCE_V2=off
export PYTHONPATH="$here/guard"
export IDLAB_NET_GUARD_LOG="$guard_log"

# No version check: the CLI checks for a newer version (a HEAD and two GETs on
# azcliprod.blob.core.windows.net) whenever its config directory has no versionCheck.json; one
# that names the installed versions as the latest, written now, stops it.
seed_versions() {
  mkdir -p "$1"
  "$py" - "$1/versionCheck.json" <<'PY'
import datetime, importlib.metadata as m, json, sys
v = {k: m.version(p) for k, p in [("azure-cli", "azure-cli"), ("core", "azure-cli-core"), ("telemetry", "azure-cli-telemetry")]}
json.dump({"versions": {k: {"local": x, "pypi": x} for k, x in v.items()},
           "update_time": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")}, open(sys.argv[1], "w"))
PY
}
seed_versions "$AZURE_CONFIG_DIR"
seed_versions "$work/azure-vm"

passed=0
failed=0
step() {
  local name="$1"
  shift
  local t0=$SECONDS
  if out="$("$@" 2>&1)"; then
    passed=$((passed + 1))
    echo "  ok   $name ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1))
    echo "  FAIL $name ($((SECONDS - t0)) s)"
    echo "$out" | sed 's/^/       /' | tail -n 25
  fi
}
# A value from a command's JSON output (`--query X -o tsv`).
value() { "$az_bin" "$@" -o tsv 2>/dev/null; }

az() { "$az_bin" "$@" --only-show-errors; }
sp_login() { az login --service-principal -u "$client" -p "$secret" --tenant "$tenant" -o none; }

rg=cli-rg
rg_id="/subscriptions/$sub/resourceGroups/$rg"
suffix="$(printf '%04x' $((RANDOM % 65536)))"
account="idlabcli$suffix"
vault="idlabcli$suffix"

echo "== the Azure CLI $("$py" -c 'import importlib.metadata as m; print(m.version("azure-cli"))') through the proxy at $proxy"
step "config: no telemetry, no upgrade check" az config set core.collect_telemetry=false auto-upgrade.enable=no -o none
step "login as a service principal" sp_login
step "account show names the local subscription" bash -c "[ \"\$('$az_bin' account show --query id -o tsv)\" = '$sub' ]"
step "group create" az group create -n "$rg" -l eastus -o none
step "identity create" az identity create -g "$rg" -n cli-id -o none
id_client="$(value identity show -g "$rg" -n cli-id --query clientId)"
id_principal="$(value identity show -g "$rg" -n cli-id --query principalId)"
step "vnet create" az network vnet create -g "$rg" -n cli-vnet --address-prefix 10.0.0.0/16 \
  --subnet-name default --subnet-prefixes 10.0.0.0/24 -o none
step "nic create" az network nic create -g "$rg" -n cli-nic --vnet-name cli-vnet --subnet default -o none
nic_id="$(value network nic show -g "$rg" -n cli-nic --query id)"
vm_body="$(cat <<JSON
{"location": "eastus",
 "properties": {
  "hardwareProfile": {"vmSize": "Standard_B1s"},
  "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server", "version": "latest"},
                     "osDisk": {"createOption": "FromImage", "managedDisk": {"storageAccountType": "Standard_LRS"}}},
  "osProfile": {"computerName": "cli-vm", "adminUsername": "azureuser", "adminPassword": "Idlab-$suffix-Passw0rd!"},
  "networkProfile": {"networkInterfaces": [{"id": "$nic_id"}]}}}
JSON
)"
step "vm through az resource create" az resource create -g "$rg" -n cli-vm \
  --resource-type Microsoft.Compute/virtualMachines --api-version 2025-04-01 --is-full-object \
  --properties "$vm_body" -o none
step "vm identity assign (system and user-assigned)" az vm identity assign -g "$rg" -n cli-vm \
  --identities "[system]" cli-id -o none
vm_principal="$(value vm show -g "$rg" -n cli-vm --query identity.principalId)"
step "role assignment by object id (the VM: Reader on the group)" az role assignment create \
  --assignee-object-id "$vm_principal" --assignee-principal-type ServicePrincipal --role Reader --scope "$rg_id" -o none
step "role assignment by --assignee (the identity's client id)" az role assignment create \
  --assignee "$id_client" --role "Storage Blob Data Reader" --scope "$rg_id" -o none
step "role assignment list by --assignee finds it" bash -c \
  "'$az_bin' role assignment list --assignee '$id_client' --all --query \"[?principalId=='$id_principal'].roleDefinitionName\" -o tsv | grep -qx 'Storage Blob Data Reader'"
step "storage account create" az storage account create -g "$rg" -n "$account" -l eastus --sku Standard_LRS -o none
account_id="$(value storage account show -g "$rg" -n "$account" --query id)"
step "data role for the signed-in principal (by --assignee)" az role assignment create \
  --assignee "$client" --role "Storage Blob Data Contributor" --scope "$account_id" -o none
step "container create --auth-mode login" az storage container create -n docs --account-name "$account" --auth-mode login -o none
echo "Hello world from the CLI!" > "$work/hello.txt"
step "blob upload by --account-name" az storage blob upload --account-name "$account" -c docs -n hello.txt \
  -f "$work/hello.txt" --auth-mode login -o none
step "blob download by --account-name" az storage blob download --account-name "$account" -c docs -n hello.txt \
  -f "$work/back.txt" --auth-mode login -o none
step "downloaded blob equals the upload" cmp "$work/hello.txt" "$work/back.txt"
step "keyvault create (access policies, default self-permissions)" az keyvault create -g "$rg" -n "$vault" -l eastus \
  --enable-rbac-authorization false -o none
step "keyvault has the signed-in principal's policy" bash -c \
  "'$az_bin' keyvault show -n '$vault' --query 'properties.accessPolicies[].objectId' -o tsv | grep -qix '$(field operator_object_id)'"
step "keyvault set-policy without -g (--spn)" az keyvault set-policy -n "$vault" --spn "$id_client" \
  --secret-permissions get list -o none
step "secret set by --vault-name" az keyvault secret set --vault-name "$vault" -n greeting --value "hello-$suffix" -o none
step "secret show by --vault-name" bash -c \
  "[ \"\$('$az_bin' keyvault secret show --vault-name '$vault' -n greeting --query value -o tsv)\" = 'hello-$suffix' ]"

# As the VM: its identity endpoint, as `idlab local env --vm` prints it.
vm_env="$("$idlab_bin" local env --vm cli-vm --state "$state")"
as_vm() {
  (
    eval "$vm_env"
    export REQUESTS_CA_BUNDLE="$ca" AZURE_CONFIG_DIR="$work/azure-vm"
    "$az_bin" login --identity -o none --only-show-errors &&
      [ "$("$az_bin" group show -n "$rg" --query name -o tsv --only-show-errors)" = "$rg" ]
  )
}
step "az login --identity as the VM, reading the group" as_vm
step "group delete (as the service principal)" bash -c "'$az_bin' group delete -n '$rg' --yes --only-show-errors"
step "the group is gone" bash -c "[ \"\$('$az_bin' group exists -n '$rg')\" = false ]"

# Fully offline: the proxy was asked for the flow's own hosts only (no version check, no
# telemetry, nothing else), as its request log shows.
hosts() {
  "$py" - "$state" <<'PY'
import json, ssl, sys, urllib.parse, urllib.request
info = json.load(open(sys.argv[1] + "/server.json"))
ctx = ssl.create_default_context(cafile=info["ca_file"])
direct = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))
form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": info["operator_client_id"],
                               "client_secret": open(info["operator_secret_file"]).read().strip(),
                               "scope": "https://management.azure.com/.default"}).encode()
token = json.load(direct.open(urllib.request.Request(info["token_url"], data=form)))["access_token"]
log = json.load(direct.open(urllib.request.Request(info["arm_url"] + "/_idlab/requests",
                                                   headers={"Authorization": "Bearer " + token})))["value"]
print("\n".join(sorted({e["path"] for e in log if e["method"] == "CONNECT"})))
PY
}
expected="$(printf '%s\n' "$account.blob.core.windows.net:443" graph.microsoft.com:443 login.microsoftonline.com:443 \
  management.azure.com:443 "$vault.vault.azure.net:443" | sort)"
step "the proxy was asked for the flow's hosts only" bash -c "[ \"\$(cat)\" = '$expected' ]" <<< "$(hosts)"

echo "== network guard: lookups and connections other than loopback"
if [ -s "$guard_log" ]; then
  failed=$((failed + 1))
  echo "  FAIL the guard refused:"
  sed 's/^/       /' "$guard_log"
else
  passed=$((passed + 1))
  echo "  ok   none"
fi
echo "$passed passed, $failed failed"
rm -rf "$work"
[ "$failed" -eq 0 ]
