"""Service SAS test vectors made by Azure's official Python SDKs, for tests/fixtures/sas_vectors.json.

Usage: python sas_vectors.py --legacy-python PYTHON > tests/fixtures/sas_vectors.json

Run it with the interpreter of a venv holding tests/sdk/requirements.txt (azure-storage-blob, which
signs with its own newest service version), and pass the interpreter of a second venv holding
tests/sdk/requirements-sas-2015.txt (the retired azure-storage 0.30.0, which signs with
sv=2015-04-05: the version and string-to-sign layout the Storage resource provider's ListServiceSas
uses). The legacy package cannot share a venv with azure-storage-blob (both own `azure.storage`),
so this script runs itself under PYTHON with --legacy-only for those vectors.

Everything is fixed (account, key, names, times), so the output is the same on every run; .ci/run
regenerates it and fails when it differs from the committed file. Per vector: the SDK call and its
inputs, the SAS query string it returned, the string it signed (modern SDK only: its `sts_hook`),
for legacy vectors the ListServiceSas request body with the same inputs, and `expect`: what the
Blob service answers a request signed with it (arm-contract section 5; written here, not by the SDK).
"""

import base64
import hashlib
import json
import subprocess
import sys
from datetime import datetime, timezone

ACCOUNT = "idlabsasvectors"
# A fixed 64-byte key (the size Azure's account keys have), derived from a label so that it
# is obviously not a real account's key.
KEY = base64.b64encode(hashlib.sha512(b"idlab sas vectors: not a real account key").digest()).decode()
CONTAINER = "vectors"
BLOB = "docs/hello vectors.txt"

START = datetime(2024, 1, 1, 0, 0, 0, tzinfo=timezone.utc)
EXPIRY = datetime(2099, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
EXPIRED = datetime(2020, 6, 1, 12, 0, 0, tzinfo=timezone.utc)

# name, resource (c or b), inputs, expect. Inputs use the SDK's keyword names.
CASES = [
    ("container_read_list", "c", {"permission": "rl", "start": START, "expiry": EXPIRY, "protocol": "https"}, "allowed"),
    ("container_all_loopback_ip", "c",
     {"permission": "rcwdl", "expiry": EXPIRY, "ip": "127.0.0.1", "protocol": "https"}, "allowed"),
    ("container_create_write_ip_range", "c",
     {"permission": "cw", "start": START, "expiry": EXPIRY, "ip": "127.0.0.0-127.0.0.255"}, "allowed"),
    ("blob_read_response_headers", "b",
     {"permission": "r", "expiry": EXPIRY, "protocol": "https", "cache_control": "no-cache",
      "content_disposition": "attachment; filename=vectors.txt", "content_encoding": "identity",
      "content_language": "en-GB", "content_type": "text/csv"}, "allowed"),
    ("blob_write_delete", "b", {"permission": "wd", "start": START, "expiry": EXPIRY}, "allowed"),
    ("container_other_ip", "c", {"permission": "rl", "expiry": EXPIRY, "ip": "10.20.30.40"},
     {"status": 403, "code": "AuthorizationSourceIPMismatch"}),
    ("container_expired", "c", {"permission": "rl", "start": START, "expiry": EXPIRED},
     {"status": 403, "code": "AuthenticationFailed"}),
    # A stored access policy holds the permissions and times; the local cloud serves none, so
    # it refuses the SAS (as Azure does for an identifier the container does not hold).
    ("container_stored_policy", "c", {"policy_id": "read-only-policy"},
     {"status": 403, "code": "AuthenticationFailed"}),
]

# The RP's ListServiceSas body field for each SDK keyword.
RP_FIELDS = {
    "permission": "signedPermission", "start": "signedStart", "expiry": "signedExpiry", "ip": "signedIp",
    "protocol": "signedProtocol", "policy_id": "signedIdentifier", "cache_control": "rscc",
    "content_disposition": "rscd", "content_encoding": "rsce", "content_language": "rscl", "content_type": "rsct",
}


def iso(v):
    return v.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(v, datetime) else v


def shown(inputs):
    return {k: iso(v) for k, v in inputs.items()}


def modern():
    import importlib.metadata
    from azure.storage.blob import generate_blob_sas, generate_container_sas
    from azure.storage.blob._shared.constants import X_MS_VERSION

    out = []
    for name, sr, inputs, expect in CASES:
        signed = []
        if sr == "c":
            token = generate_container_sas(ACCOUNT, CONTAINER, account_key=KEY, sts_hook=signed.append, **inputs)
            call = "generate_container_sas"
        else:
            token = generate_blob_sas(ACCOUNT, CONTAINER, BLOB, account_key=KEY, sts_hook=signed.append, **inputs)
            call = "generate_blob_sas"
        out.append({"name": name, "sdk": "azure-storage-blob " + importlib.metadata.version("azure-storage-blob"),
                    "call": call, "inputs": shown(inputs), "sas": token, "string_to_sign": signed[0],
                    "expect": expect})
    return X_MS_VERSION, out


def legacy():
    import importlib.metadata
    from azure.storage.sharedaccesssignature import SharedAccessSignature

    sas = SharedAccessSignature(ACCOUNT, KEY)
    out = []
    for name, sr, inputs, expect in CASES:
        args = {("id" if k == "policy_id" else k): v for k, v in inputs.items()}
        if sr == "c":
            token = sas.generate_container(CONTAINER, **args)
            call, resource = "SharedAccessSignature.generate_container", f"/blob/{ACCOUNT}/{CONTAINER}"
        else:
            token = sas.generate_blob(CONTAINER, BLOB, **args)
            call, resource = "SharedAccessSignature.generate_blob", f"/blob/{ACCOUNT}/{CONTAINER}/{BLOB}"
        rp = {"canonicalizedResource": resource, "signedResource": sr}
        rp.update({RP_FIELDS[k]: iso(v) for k, v in inputs.items()})
        # The RP drops fractional seconds; sending some checks that it does.
        if "signedExpiry" in rp:
            rp["signedExpiry"] = rp["signedExpiry"].replace("Z", ".1234567Z")
        out.append({"name": name + "_2015", "sdk": "azure-storage " + importlib.metadata.version("azure-storage"),
                    "call": call, "inputs": shown(inputs), "sas": token, "list_service_sas": rp,
                    "expect": expect})
    return out


def main():
    if sys.argv[1:] == ["--legacy-only"]:
        json.dump(legacy(), sys.stdout)
        return
    if len(sys.argv) != 3 or sys.argv[1] != "--legacy-python":
        sys.exit("usage: python sas_vectors.py --legacy-python PYTHON")
    version, vectors = modern()
    old = json.loads(subprocess.run([sys.argv[2], __file__, "--legacy-only"], check=True, capture_output=True,
                                    text=True).stdout)
    sdks = sorted({v["sdk"] for v in vectors + old})
    doc = {
        "_generated_by": f"tests/sdk/sas_vectors.py with {' and '.join(sdks)} (newest sv {version}); "
                         "do not edit: .ci/run regenerates this file and fails when it differs",
        "account": ACCOUNT,
        "key": KEY,
        "container": CONTAINER,
        "blob": BLOB,
        "vectors": vectors + old,
    }
    json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


main()
