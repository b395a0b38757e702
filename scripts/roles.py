#!/usr/bin/env python3
"""Regenerate idlab's catalogue of Azure built-in roles (src/roles/builtin.json) and the
test fixtures that let `tests/it/roles.rs` recount it (tests/fixtures/roles/).

Source: the repository easimon/azure-builtin-roles (MIT), which records Azure's own answer to
`az role definition list` (built-in roles only, one JSON file per role under azure-roles/),
refreshed daily by a scheduled job against a live subscription.

Usage:
    scripts/roles.py GIT_DIR [COMMIT]

GIT_DIR is a clone (or bare git directory) of https://github.com/easimon/azure-builtin-roles;
COMMIT defaults to the last commit that touched azure-roles/. Python 3 standard library only.
"""
import io
import json
import os
import subprocess
import sys
import tarfile

REPO = "https://github.com/easimon/azure-builtin-roles"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "src", "roles", "builtin.json")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "roles")
# Roles whose source files are copied whole into the fixtures (the test compares them).
COPIED = ["AcrPush", "Key Vault Administrator", "Virtual Machine Contributor"]


def git(git_dir, *args):
    return subprocess.run(["git", "--git-dir", git_dir, *args], check=True, capture_output=True).stdout


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    git_dir = sys.argv[1]
    if os.path.isdir(os.path.join(git_dir, ".git")):
        git_dir = os.path.join(git_dir, ".git")
    commit = sys.argv[2] if len(sys.argv) > 2 else git(git_dir, "log", "-1", "--format=%H", "HEAD", "--", "azure-roles").decode().strip()
    date = git(git_dir, "show", "-s", "--format=%cI", commit).decode().strip()
    tar = tarfile.open(fileobj=io.BytesIO(git(git_dir, "archive", commit, "azure-roles")))
    files = {}
    for m in tar.getmembers():
        if m.isfile() and m.name.endswith(".json"):
            files[m.name] = tar.extractfile(m).read()
    roles = []
    index = []
    for path in sorted(files):
        src = json.loads(files[path])
        if src.get("roleType") != "BuiltInRole":
            sys.exit(f"{path}: not a built-in role")
        perms = [
            {
                "actions": p.get("actions") or [],
                "notActions": p.get("notActions") or [],
                "dataActions": p.get("dataActions") or [],
                "notDataActions": p.get("notDataActions") or [],
                **({"condition": p["condition"]} if p.get("condition") else {}),
            }
            for p in src["permissions"]
        ]
        roles.append({"name": src["roleName"], "id": src["name"], "description": src.get("description") or "", "permissions": perms})
        index.append((path, src["roleName"], src["name"]))
        if src["roleName"] in COPIED:
            with open(os.path.join(FIXTURES, os.path.basename(path)), "wb") as f:
                f.write(files[path])
    roles.sort(key=lambda r: r["name"].lower())
    # idlab borrows the strings straight from the embedded file, so none may need an escape.
    for r in roles:
        for s in [r["name"], r["id"], r["description"]] + [a for p in r["permissions"] for v in p.values() for a in ([v] if isinstance(v, str) else v)]:
            if json.dumps(s, ensure_ascii=False)[1:-1] != s:
                sys.exit(f"{r['name']}: a string needs a JSON escape, which src/roles.rs cannot borrow: {s!r}")
    doc = {
        "source": {
            "repository": REPO,
            "path": "azure-roles/",
            "commit": commit,
            "date": date,
            "what": "Azure's answer to `az role definition list` (built-in roles), recorded by the source's daily job",
            "licence": "MIT (Copyright (c) 2022 Markus Dobel)",
            "count": len(files),
            "regenerate": "scripts/roles.py GIT_DIR [COMMIT]",
        },
        "roles": roles,
    }
    with open(DATA, "w", encoding="utf-8") as f:
        f.write("{\n\"source\": " + json.dumps(doc["source"], ensure_ascii=False) + ",\n\"roles\": [\n")
        f.write(",\n".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in roles))
        f.write("\n]\n}\n")
    with open(os.path.join(FIXTURES, "source-index.tsv"), "w", encoding="utf-8") as f:
        f.write(f"# {REPO} commit {commit} ({date}): one line per file of azure-roles/: path, roleName, GUID\n")
        for row in index:
            f.write("\t".join(row) + "\n")
    print(f"{len(roles)} roles from {REPO} at {commit} ({date})")


if __name__ == "__main__":
    main()
