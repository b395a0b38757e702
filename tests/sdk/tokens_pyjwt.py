"""Local tokens validated the way a service validates Entra's, with PyJWT (not idlab's code).

Usage: python tokens_pyjwt.py STATE_DIR
Reads STATE_DIR/server.json (written by `idlab local serve`). For each OpenID configuration
(v1 `/{tenant}/.well-known/openid-configuration`, v2 `/{tenant}/v2.0/...`) it follows
`jwks_uri` to the key set, then validates with `jwt.decode(..., algorithms=["RS256"],
audience=..., issuer=...)`:
  1. a token from the token issuer (client credentials, the operator) for ARM: v1 issuer;
  2. a token from a VM's identity endpoint (IMDS protocol) for Storage: v1 issuer, xms_mirid;
  3. a token from the token issuer for an application's own audience: v2 issuer.
Then the ARM token re-signed with HS256 (keyed with the published modulus, the classic
algorithm-confusion forgery) must be refused by the local cloud with 401
InvalidAuthenticationToken, and by PyJWT when RS256 is pinned.
Exits non-zero on the first failure.
"""

import base64
import json
import os
import sys
import uuid

import jwt
import requests

state = sys.argv[1]
info = json.load(open(os.path.join(state, "server.json")))
CA = info["ca_file"]
BASE = info["authority_url"]
ARM = info["arm_url"]
TENANT = info["tenant_id"]
SUB = info["subscription_id"]
secret = open(info["operator_secret_file"]).read().strip()


def get(url, **kw):
    r = requests.get(url, verify=CA, timeout=30, **kw)
    r.raise_for_status()
    return r.json()


def discovery(path):
    cfg = get(f"{BASE}/{TENANT}{path}/.well-known/openid-configuration")
    keys = jwt.PyJWKSet.from_dict(get(cfg["jwks_uri"]))
    return cfg["issuer"], cfg["jwks_uri"], keys


def validate(token, keys, issuer, audience):
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=issuer,
                        options={"require": ["exp", "iat", "nbf", "iss", "aud", "tid", "oid"]})
    assert claims["tid"] == TENANT, claims
    return claims


def issue(scope):
    r = requests.post(info["token_url"], verify=CA, timeout=30, data={
        "grant_type": "client_credentials", "client_id": info["operator_client_id"],
        "client_secret": secret, "scope": scope})
    r.raise_for_status()
    return r.json()["access_token"]


iss_v1, jwks_v1, keys_v1 = discovery("")
iss_v2, jwks_v2, keys_v2 = discovery("/v2.0")
assert iss_v1 == f"https://sts.windows.net/{TENANT}/", iss_v1
assert iss_v2 == f"https://login.microsoftonline.com/{TENANT}/v2.0", iss_v2
print("jwks_uri:", jwks_v1, "and", jwks_v2, "-", len(keys_v1.keys), "key(s)")

# 1. The token issuer, for ARM (v1).
arm = issue("https://management.azure.com/.default")
c = validate(arm, keys_v1, iss_v1, "https://management.azure.com")
assert c["ver"] == "1.0" and c["appid"] == info["operator_client_id"], c
print("token issuer (ARM): valid, iss", c["iss"], "aud", c["aud"])

# 2. A VM's identity endpoint, for Storage (v1, xms_mirid names the VM).
auth = {"Authorization": f"Bearer {arm}"}


def put(path, body):
    r = requests.put(f"{ARM}{path}", json=body, headers=auth, verify=CA, timeout=30)
    assert r.status_code in (200, 201), (path, r.status_code, r.text)
    return r.json()


rg = f"/subscriptions/{SUB}/resourceGroups/pyjwt-rg"
put(f"{rg}?api-version=2024-11-01", {"location": "eastus"})
net = f"{rg}/providers/Microsoft.Network"
put(f"{net}/virtualNetworks/pyjwt-vnet?api-version=2024-07-01", {"location": "eastus", "properties": {
    "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
    "subnets": [{"name": "default", "properties": {"addressPrefix": "10.0.0.0/24"}}]}})
put(f"{net}/networkInterfaces/pyjwt-nic?api-version=2024-07-01", {"location": "eastus", "properties": {
    "ipConfigurations": [{"name": "ipconfig1", "properties": {
        "subnet": {"id": f"{net}/virtualNetworks/pyjwt-vnet/subnets/default"}}}]}})
vm_id = f"{rg}/providers/Microsoft.Compute/virtualMachines/pyjwt-vm"
vm = put(f"{vm_id}?api-version=2025-04-01", {
    "location": "eastus", "identity": {"type": "SystemAssigned"},
    "properties": {"hardwareProfile": {"vmSize": "Standard_B1s"},
                   "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                                                         "sku": "server", "version": "latest"}},
                   "osProfile": {"computerName": "pyjwtvm", "adminUsername": "azureuser",
                                 "adminPassword": "PyJwt-Check-Password-1"},
                   "networkProfile": {"networkInterfaces": [{"id": f"{net}/networkInterfaces/pyjwt-nic"}]}}})
vms = get(f"{ARM}/_idlab/vms", headers=auth)["value"]
endpoint = next(v["endpoint"] for v in vms if v["id"].lower() == vm_id.lower())
r = requests.get(f"{endpoint}/metadata/identity/oauth2/token",
                 params={"api-version": "2018-02-01", "resource": "https://storage.azure.com/"},
                 headers={"Metadata": "true"}, timeout=30)
r.raise_for_status()
mi = r.json()["access_token"]
c = validate(mi, keys_v1, iss_v1, "https://storage.azure.com/")
assert c["oid"] == vm["identity"]["principalId"], c
assert c["xms_mirid"].lower() == vm_id.lower(), c
print("VM identity endpoint (Storage): valid, iss", c["iss"], "aud", c["aud"], "xms_mirid", c["xms_mirid"])

# 3. The token issuer, for an application's own audience (v2).
aud = f"api://pyjwt-{uuid.uuid4()}"
c = validate(issue(f"{aud}/.default"), keys_v2, iss_v2, aud)
assert c["ver"] == "2.0" and c["azp"] == info["operator_client_id"] and "appid" not in c, c
print("token issuer (own API): valid, iss", c["iss"], "aud", c["aud"])

# The ARM token re-signed with HS256.
claims = jwt.decode(arm, options={"verify_signature": False})
kid = jwt.get_unverified_header(arm)["kid"]
modulus = base64.urlsafe_b64decode(next(k for k in get(jwks_v2)["keys"] if k["kid"] == kid)["n"] + "==")
forged = jwt.encode(claims, modulus, algorithm="HS256", headers={"kid": kid})
assert jwt.get_unverified_header(forged)["alg"] == "HS256"
r = requests.get(f"{ARM}/subscriptions/{SUB}/resourcegroups", params={"api-version": "2024-11-01"},
                 headers={"Authorization": f"Bearer {forged}"}, verify=CA, timeout=30)
assert r.status_code == 401, (r.status_code, r.text)
assert r.json()["error"]["code"] == "InvalidAuthenticationToken", r.text
try:
    validate(forged, keys_v1, iss_v1, "https://management.azure.com")
except jwt.exceptions.InvalidAlgorithmError:
    pass
else:
    raise SystemExit("PyJWT accepted an HS256 token with RS256 pinned")
r = requests.get(f"{ARM}/subscriptions/{SUB}/resourcegroups", params={"api-version": "2024-11-01"},
                 headers=auth, verify=CA, timeout=30)
assert r.status_code == 200, (r.status_code, r.text)
print("HS256 re-signed token: refused by the local cloud (401 InvalidAuthenticationToken) and by PyJWT")
print("tokens: OK")
