#!/usr/bin/env python3
"""Run the GitOps examples' steps unchanged against `idlab local serve`.

docs/examples/github-actions.yml and docs/examples/azure-pipelines.yml are read as YAML; each
`run:` (GitHub) and `script:` (Azure Pipelines) step runs in bash exactly as written, in a
workspace that holds the repository's plans (a git repository whose last commit is a merge of a
pull request), with `idlab` on PATH and the environment a runner gives:

- the workflow's, job's and step's `env:` (GitHub `${{ ... }}` expressions and Azure `$(...)`
  macros filled from the runner context below), `$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY` (a
  file per step, as GitHub does), Azure's predefined variables and `##vso[task.setvariable]`;
- IDLAB_CLOUD_ENDPOINT and IDLAB_STATE, which point every `idlab` command at the local cloud
  (`--cloud-endpoint` and `--state` read them);
- AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_SUBSCRIPTION_ID of the local cloud.

Events, in order: a pull request (planned twice on Azure Pipelines, so the comment is made, then
updated in place), the merge (apply the PR's saved plan, then verify), the nightly drift check
(exit 0), a change made outside the plan and the drift check again (exit 2: the job fails);
then a new pull request, a change in Azure after its review, and the merge, whose apply must be
refused because Azure changed.

`uses:`/`task:` steps are not run; the few the examples need are emulated: checkout (the
workspace), upload/download-artifact and publish/DownloadPipelineArtifact (a local artifact
store). actions/github-script (JavaScript) is not run and is reported. The Azure DevOps pull
request threads API is served on loopback for the comment step.

Sign-in (--oidc): `off` drops the `--auth github|azure-pipelines` flags from the commands and
signs every step in as the local cloud's operator. `on` needs the CI sign-ins (an idlab whose
`--auth` knows them): the runner starts a test OIDC issuer
(`idlab local oidc-server`, for ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN and SYSTEM_OIDCREQUESTURI)
and applies, as the operator, a plan giving the pipeline's identity federated credentials for
the subjects its jobs get (set on the issuer before each job) and Owner; the steps then sign in
as that identity. `auto` (the default) is `on` when this idlab knows `--auth github`, else
`off`. Likewise `--via run-command` is dropped while `verify`
does not know it, and IDLAB_PLAN falls back to plans/arm-user-assigned.yaml while the Linux
plan it names does not exist. Every such change is printed as `adjusted:`.

Usage: workflow_steps.py --idlab BIN --state DIR [--oidc auto|off|on] WORKFLOW.yml...
"""

import argparse
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import urllib.request

import yaml

# The bearer token both the OIDC request endpoints and the threads API take
# (ACTIONS_ID_TOKEN_REQUEST_TOKEN, SYSTEM_ACCESSTOKEN).
REQUEST_TOKEN = "ci-request-token"
ADO_ACCESS_TOKEN = REQUEST_TOKEN
SERVICE_CONNECTION_ID = "7d7d1f3e-5b1a-4b55-9f0e-0c0ffee00001"
# Azure Pipelines' subject for a service connection (the test issuer's organization and project).
ADO_SUBJECT = f"sc://idlab/idlab/{SERVICE_CONNECTION_ID}"
# The subjects GitHub gives a job of repository contoso/lab (environment: ...NAME).
GH_SUBJECTS = {"pull_request": "repo:contoso/lab:pull_request", "main": "repo:contoso/lab:ref:refs/heads/main",
               "environment": "repo:contoso/lab:environment:"}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FALLBACK_PLAN = "plans/arm-user-assigned.yaml"


def say(msg):
    print(msg, flush=True)


class Failed(Exception):
    pass


# --- the Azure DevOps pull-request threads API, on loopback --------------------------------

class Threads:
    def __init__(self, token):
        self.token = token
        self.threads = []
        self.lock = threading.Lock()

    def serve(self):
        threads = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def authed(self):
                if self.headers.get("Authorization") != "Bearer " + threads.token:
                    self.reply(401, {"message": "bad token"})
                    return False
                return True

            def body(self):
                n = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(n) or b"{}")

            def do_GET(self):
                if self.authed():
                    with threads.lock:
                        self.reply(200, {"value": threads.threads, "count": len(threads.threads)})

            def do_POST(self):
                if self.authed():
                    b = self.body()
                    with threads.lock:
                        t = {"id": len(threads.threads) + 1, "status": b.get("status"),
                             "comments": [{"id": 1, "content": c.get("content", "")} for c in b.get("comments", [])]}
                        threads.threads.append(t)
                    self.reply(200, t)

            def do_PATCH(self):
                if self.authed():
                    m = re.search(r"/threads/(\d+)/comments/(\d+)", self.path)
                    b = self.body()
                    with threads.lock:
                        for t in threads.threads:
                            for c in t["comments"]:
                                if m and t["id"] == int(m.group(1)) and c["id"] == int(m.group(2)):
                                    c["content"] = b.get("content", "")
                                    return self.reply(200, c)
                    self.reply(404, {"message": "no such comment"})

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        return srv


# --- the runner ---------------------------------------------------------------------------

class Runner:
    def __init__(self, idlab, state, oidc):
        self.idlab = os.path.abspath(idlab)
        self.state = os.path.abspath(state)
        with open(os.path.join(self.state, "server.json")) as f:
            self.server = json.load(f)
        self.bin = tempfile.mkdtemp(prefix="idlab-ci-bin-")
        os.symlink(self.idlab, os.path.join(self.bin, "idlab"))
        knows = lambda args, word: word in subprocess.run([self.idlab, *args, "--help"], capture_output=True, text=True).stdout
        self.knows_ci_auth = knows(["plan"], "azure-pipelines")
        self.knows_via = knows(["verify"], "--via")
        self.oidc = ("on" if self.knows_ci_auth else "off") if oidc == "auto" else oidc
        say(f"== sign-in: --oidc {self.oidc}" + (" (auto)" if oidc == "auto" else ""))
        self.issuer = None
        self.issuer_proc = None
        self.client_id = self.server["operator_client_id"]
        if self.oidc == "on":
            if not self.knows_ci_auth:
                raise Failed("--oidc on: this idlab has no --auth github|azure-pipelines")
            self.bootstrap()

    def bootstrap(self):
        """--oidc on: the test OIDC issuer (`idlab local oidc-server`), and the pipeline's
        identity with federated credentials for the subjects its jobs get and Owner on the
        subscription, applied as the operator."""
        self.issuer_proc = subprocess.Popen([self.idlab, "local", "oidc-server", "--port", "0", "--request-token",
                                             REQUEST_TOKEN], stdout=subprocess.PIPE, text=True)
        info = json.loads(self.issuer_proc.stdout.readline())
        self.issuer = info["issuer"]
        self.github_url, self.pipelines_url = info["github_url"], info["pipelines_url"]
        creds = [("github-pr", GH_SUBJECTS["pull_request"]), ("github-main", GH_SUBJECTS["main"]),
                 ("github-production", GH_SUBJECTS["environment"] + "production"), ("ado-connection", ADO_SUBJECT)]
        y = ("name: ci-pipeline-identity\nlocation: eastus\nresources:\n"
             "  rg:\n    type: resource_group\n    name: lab-pipeline\n"
             "  deployer:\n    type: user_assigned_identity\n    name: lab-deployer\n    resource_group: ${rg}\n"
             "  deployer-owner:\n    type: role_assignment\n    scope: subscription\n    principal: ${deployer}\n    role: Owner\n")
        for name, sub in creds:
            y += (f"  {name}:\n    type: federated_identity_credential\n    name: {name}\n    identity: ${{deployer}}\n"
                  f"    issuer: {self.issuer}\n    subject: {sub}\n")
        y += "outputs:\n  client_id: ${deployer.client_id}\n"
        d = tempfile.mkdtemp(prefix="idlab-ci-boot-")
        path = os.path.join(d, "boot.yaml")
        with open(path, "w") as f:
            f.write(y)
        env = self.base_env(d)
        for args in (["apply", path, "--auto-approve", "--no-progress"], ["output", path, "--format", "json"]):
            p = subprocess.run(["idlab", *args], env=env, cwd=d, capture_output=True, text=True)
            if p.returncode != 0:
                raise Failed(f"bootstrap `idlab {args[0]}` failed:\n{p.stdout}{p.stderr}")
        self.client_id = json.loads(p.stdout)["client_id"]
        say(f"== --oidc on: test issuer {self.issuer}; the pipeline signs in as lab-deployer ({self.client_id})")

    def subject(self, sub):
        """The subject the issuer's next assertions carry (the job's, as the CI system sets it)."""
        req = urllib.request.Request(self.issuer + "/_control", json.dumps({"subject": sub}).encode(),
                                     {"Content-Type": "application/json"}, method="PUT")
        urllib.request.urlopen(req).read()

    def requests(self):
        return json.load(urllib.request.urlopen(self.issuer + "/_control")).get("requests", 0)

    def close(self):
        if self.issuer_proc:
            self.issuer_proc.kill()
            self.issuer_proc.wait()

    def base_env(self, ws):
        env = {k: v for k, v in os.environ.items() if k in ("HOME", "USER", "LANG", "TMPDIR", "CARGO_HOME", "RUSTUP_HOME")}
        env.update({
            "PATH": self.bin + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
            "IDLAB_CLOUD_ENDPOINT": self.server["arm_url"],
            "IDLAB_STATE": self.state,
            "NO_COLOR": "1",
            "CI": "true",
        })
        return env

    def context_ids(self):
        return {
            "AZURE_CLIENT_ID": self.client_id,
            "AZURE_TENANT_ID": self.server["tenant_id"],
            "AZURE_SUBSCRIPTION_ID": self.server["subscription_id"],
            "AZURE_SERVICE_CONNECTION_ID": SERVICE_CONNECTION_ID,
            "IDLAB_GIT": "https://example.invalid/idlab.git",
        }

    def adjust(self, script, env):
        """The pre-merge adjustments (module doc), each printed."""
        out = script
        if self.oidc == "off":
            for m in ("github", "azure-pipelines"):
                if f"--auth {m}" in out:
                    out = out.replace(f" --auth {m}", "")
                    say(f"   adjusted: --auth {m} dropped (--oidc off: the local cloud's operator signs in)")
        if not self.knows_via and "--via run-command" in out:
            out = out.replace(" --via run-command", "")
            say("   adjusted: --via run-command dropped (this idlab's verify does not know it; the checks run through the VM's identity endpoint)")
        plan = env.get("IDLAB_PLAN")
        if plan and not os.path.exists(os.path.join(ROOT, plan)):
            env["IDLAB_PLAN"] = FALLBACK_PLAN
            say(f"   adjusted: IDLAB_PLAN={FALLBACK_PLAN} ({plan} does not exist yet)")
        return out

    def workspace(self):
        ws = tempfile.mkdtemp(prefix="idlab-ci-ws-")
        shutil.copytree(os.path.join(ROOT, "plans"), os.path.join(ws, "plans"))
        git = lambda *a: subprocess.run(["git", "-C", ws, *a], check=True, capture_output=True)
        git("init", "-q", "-b", "main")
        git("add", "-A")
        git("-c", "user.name=ci", "-c", "user.email=ci@example.invalid", "commit", "-qm", "Merged PR 7: plans for the lab")
        return ws

    def bash(self, script, env, cwd):
        with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
            f.write(script)
        try:
            p = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", f.name], env=env, cwd=cwd,
                               capture_output=True, text=True)
        finally:
            os.unlink(f.name)
        for line in (p.stdout + p.stderr).splitlines():
            print("   | " + line)
        self.last_output = p.stdout + p.stderr
        return p

    def destroy(self, ws, plan):
        env = self.base_env(ws)
        p = subprocess.run(["idlab", "destroy", plan, "--auto-approve", "--no-progress"], env=env, cwd=ws,
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise Failed("destroy after the workflow failed:\n" + p.stdout + p.stderr)

    def refused_after_change(self, run_pr, run_merge, plan):
        """A reviewed plan whose resources changed in Azure before the merge is refused."""
        run_pr()
        self.drift(plan, "after-the-review")
        run_merge()
        if "Azure changed since the plan was saved" not in self.last_output:
            raise Failed("the merge's apply failed, but not because Azure changed")
        say("   checked: the reviewed plan was refused because Azure changed after it")

    def drift(self, plan_path, value="someone-in-the-portal"):
        """A change outside the plan: a tag on the plan's first resource group, through ARM as the operator."""
        ctx = ssl.create_default_context(cafile=self.server["ca_file"])
        with open(self.server["operator_secret_file"]) as f:
            secret = f.read().strip()
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": self.server["operator_client_id"],
                                       "client_secret": secret, "scope": "https://management.azure.com/.default"}).encode()
        tok = json.load(urllib.request.urlopen(self.server["token_url"], form, context=ctx))["access_token"]
        with open(os.path.join(ROOT, plan_path)) as f:
            doc = yaml.safe_load(f)
        rg = next(r for r in doc["resources"].values() if r.get("type") == "resource_group")
        name = rg["name"]
        for k, v in (doc.get("variables") or {}).items():
            name = name.replace("${var.%s}" % k, str(v))
        url = f"{self.server['arm_url']}/subscriptions/{self.server['subscription_id']}/resourceGroups/{name}?api-version=2021-04-01"
        h = {"Authorization": "Bearer " + tok, "Content-Type": "application/json"}
        cur = json.load(urllib.request.urlopen(urllib.request.Request(url, headers=h), context=ctx))
        cur.setdefault("tags", {})["changed-by"] = value
        body = json.dumps({"location": cur["location"], "tags": cur["tags"]}).encode()
        urllib.request.urlopen(urllib.request.Request(url, body, h, method="PUT"), context=ctx)
        say(f"== outside the plan: tag changed-by={value} on resource group {name}")


# --- GitHub Actions -----------------------------------------------------------------------

GH_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def gh_eval_if(cond, event):
    py = re.sub(r"github\.event_name\s*==\s*'(\w+)'", lambda m: str(m.group(1) == event), cond)
    py = py.replace("||", " or ").replace("&&", " and ")
    if not re.fullmatch(r"[\sTrueFalsendo()]*", py):
        raise Failed(f"cannot evaluate `if: {cond}`")
    return eval(py)  # noqa: S307 (True/False/and/or only, checked above)


def run_github(r, path):
    with open(path) as f:
        wf = yaml.safe_load(f)
    ws = r.workspace()
    store = tempfile.mkdtemp(prefix="idlab-ci-artifacts-")
    ids = r.context_ids()
    summaries = []

    def expr(text, steps):
        def one(m):
            e = m.group(1)
            if e.startswith("vars.") or e.startswith("secrets."):
                return ids.get(e.split(".", 1)[1], "")
            if e in ("github.token", "secrets.GITHUB_TOKEN"):
                return "ghs_fake"
            so = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", e)
            if so:
                return steps.get(so.group(1), {}).get(so.group(2), "")
            return ""
        return GH_EXPR.sub(one, str(text))

    def job(name, j, event, expect_fail=False):
        say(f"== GitHub Actions: event {event}, job {name}")
        steps = {}
        failed = False
        for i, s in enumerate(j.get("steps", [])):
            label = s.get("name") or s.get("uses") or f"step {i}"
            if "uses" in s:
                uses, w = s["uses"], s.get("with", {})
                if uses.startswith("actions/checkout@"):
                    say(f"-- {label}: the workspace")
                elif uses.startswith("actions/upload-artifact@"):
                    dst = os.path.join(store, w["name"])
                    shutil.rmtree(dst, ignore_errors=True)
                    shutil.copytree(os.path.join(ws, w["path"]), dst)
                    say(f"-- {label}: stored artifact {w['name']}")
                elif uses.startswith("actions/download-artifact@"):
                    shutil.copytree(os.path.join(store, w["name"]), os.path.join(ws, w["path"]), dirs_exist_ok=True)
                    say(f"-- {label}: fetched artifact {w['name']}")
                else:
                    say(f"-- {label}: not run ({uses} is JavaScript)")
                continue
            env = r.base_env(ws)
            for scope in (wf.get("env", {}), j.get("env", {}), s.get("env", {})):
                env.update({k: expr(v, steps) for k, v in scope.items()})
            out_file = os.path.join(store, f"output-{name}-{i}")
            sum_file = os.path.join(store, f"summary-{event}-{name}-{i}.md")
            open(out_file, "w").close()
            open(sum_file, "w").close()
            if r.issuer:
                if j.get("environment"):
                    sub = GH_SUBJECTS["environment"] + str(j["environment"])
                else:
                    sub = GH_SUBJECTS["pull_request" if event == "pull_request" else "main"]
                r.subject(sub)
                env["ACTIONS_ID_TOKEN_REQUEST_URL"] = r.github_url
                env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = REQUEST_TOKEN
            env.update({"GITHUB_OUTPUT": out_file, "GITHUB_STEP_SUMMARY": sum_file, "GITHUB_EVENT_NAME": event,
                        "GITHUB_WORKSPACE": ws, "RUNNER_TEMP": store, "GITHUB_ACTIONS": "true"})
            say(f"-- {label}")
            script = r.adjust(s["run"], env)
            p = r.bash(script, env, ws)
            with open(out_file) as f:
                steps[s.get("id", str(i))] = dict(l.split("=", 1) for l in f.read().splitlines() if "=" in l)
            with open(sum_file) as f:
                summaries.append(f.read())
            if p.returncode != 0:
                failed = True
                say(f"   exit {p.returncode}")
                break
        if failed != expect_fail:
            raise Failed(f"job {name} on {event}: {'failed' if failed else 'passed'}, expected the opposite")
        return steps

    def event(ev, expect_fail=False):
        ran = 0
        for name, j in wf["jobs"].items():
            if gh_eval_if(j.get("if", "true"), ev):
                job(name, j, ev, expect_fail)
                ran += 1
        if ran == 0:
            raise Failed(f"no job runs on {ev}")

    event("pull_request")
    md = os.path.join(ws, "out", "plan.md")
    with open(md) as f:
        body = f.read()
    if not body.startswith("<!-- idlab-plan: "):
        raise Failed("out/plan.md (the comment) does not start with the marker")
    if not any(s.startswith("<!-- idlab-plan: ") for s in summaries):
        raise Failed("no job summary holds the plan")
    say("   checked: the comment body and the job summary hold the plan's Markdown")
    event("push")
    event("schedule")
    plan = r.plan_used
    r.drift(plan)
    event("schedule", expect_fail=True)
    r.refused_after_change(lambda: event("pull_request"), lambda: event("push", expect_fail=True), plan)
    r.destroy(ws, plan)


# --- Azure Pipelines ----------------------------------------------------------------------

def az_eval(cond, reason):
    if cond is None:
        return True
    py = cond.replace("variables['Build.Reason']", repr(reason))
    py = re.sub(r"\b(eq|in|and|or|not|succeeded)\(", r"_\1(", py)
    funcs = {"_eq": lambda a, b: a == b, "_in": lambda a, *b: a in b, "_and": lambda *a: all(a),
             "_or": lambda *a: any(a), "_not": lambda a: not a, "_succeeded": lambda: True}
    return eval(py, {"__builtins__": {}}, funcs)  # noqa: S307 (our own example's conditions)


def run_azure(r, path):
    if shutil.which("jq") is None:
        raise Failed("the Azure Pipelines comment step needs jq (ubuntu-latest agents have it); install jq")
    with open(path) as f:
        wf = yaml.safe_load(f)
    ws = r.workspace()
    store = tempfile.mkdtemp(prefix="idlab-ci-artifacts-")
    token = ADO_ACCESS_TOKEN
    threads = Threads(token)
    srv = threads.serve()
    ids = r.context_ids()
    variables = dict(wf.get("variables") or {})
    variables.update(ids)

    def run_reason(reason, expect_fail=False):
        staging = tempfile.mkdtemp(prefix="idlab-ci-staging-")
        pworkspace = tempfile.mkdtemp(prefix="idlab-ci-pipeline-")
        macros = dict(variables)
        macros.update({"System.AccessToken": token, "Build.ArtifactStagingDirectory": staging,
                       "Pipeline.Workspace": pworkspace, "System.TeamProjectId": "p", "System.DefinitionId": "1",
                       "Build.Reason": reason})
        predefined = {"BUILD_ARTIFACTSTAGINGDIRECTORY": staging, "PIPELINE_WORKSPACE": pworkspace,
                      "BUILD_REASON": reason, "SYSTEM_COLLECTIONURI": f"http://127.0.0.1:{srv.server_port}/org/",
                      "SYSTEM_TEAMPROJECT": "lab", "BUILD_REPOSITORY_ID": "repo-1", "TF_BUILD": "True",
                      "SYSTEM_PULLREQUEST_PULLREQUESTID": "7" if reason == "PullRequest" else ""}
        if r.issuer:
            r.subject(ADO_SUBJECT)
            predefined["SYSTEM_OIDCREQUESTURI"] = r.pipelines_url
        ran = 0
        for j in wf["jobs"]:
            if not az_eval(j.get("condition"), reason):
                continue
            ran += 1
            say(f"== Azure Pipelines: reason {reason}, job {j['job']}")
            failed = False
            for i, s in enumerate(j.get("steps", [])):
                fill = lambda v: re.sub(r"\$\(([\w.]+)\)", lambda m: str(macros.get(m.group(1), m.group(0))), str(v))
                if "checkout" in s:
                    say("-- checkout: the workspace")
                    continue
                if "publish" in s:
                    src = fill(s["publish"])
                    shutil.copytree(src, os.path.join(store, s["artifact"]), dirs_exist_ok=True)
                    say(f"-- publish: stored artifact {s['artifact']}")
                    continue
                if s.get("task", "").startswith("DownloadPipelineArtifact@"):
                    inp = s.get("inputs", {})
                    if fill(inp.get("runBranch", "")) != "refs/pull/7/merge":
                        raise Failed(f"DownloadPipelineArtifact: runBranch {fill(inp.get('runBranch', ''))}, expected the merged PR's")
                    shutil.copytree(os.path.join(store, inp["artifact"]), fill(inp["path"]), dirs_exist_ok=True)
                    say(f"-- DownloadPipelineArtifact: fetched artifact {inp['artifact']} of {fill(inp['runBranch'])}")
                    continue
                if "task" in s:
                    say(f"-- not run: task {s['task']}")
                    continue
                env = r.base_env(ws)
                # Non-secret variables are environment variables (Name.Part -> NAME_PART).
                env.update({k.upper().replace(".", "_"): str(v) for k, v in variables.items()})
                env.update(predefined)
                env.update({k: fill(v) for k, v in (s.get("env") or {}).items()})
                say(f"-- {s.get('displayName', 'script')}")
                script = r.adjust(s["script"], env)
                p = r.bash(script, env, ws)
                for m in re.finditer(r"##vso\[task\.setvariable variable=([\w.]+)[^\]]*\](.*)", p.stdout):
                    variables[m.group(1)] = macros[m.group(1)] = m.group(2).strip()
                if p.returncode != 0:
                    failed = True
                    say(f"   exit {p.returncode}")
                    break
            if failed != expect_fail:
                raise Failed(f"job {j['job']} on {reason}: {'failed' if failed else 'passed'}, expected the opposite")
        if ran == 0:
            raise Failed(f"no job runs on {reason}")

    run_reason("PullRequest")
    run_reason("PullRequest")
    with threads.lock:
        marked = [t for t in threads.threads if t["comments"][0]["content"].startswith("<!-- idlab-plan: ")]
    if len(threads.threads) != 1 or len(marked) != 1:
        raise Failed(f"two PR runs must leave one plan thread, updated in place; there are {len(threads.threads)}")
    say("   checked: two pull-request runs left one comment thread, updated in place")
    run_reason("IndividualCI")
    run_reason("Schedule")
    plan = r.plan_used
    r.drift(plan)
    run_reason("Schedule", expect_fail=True)
    r.refused_after_change(lambda: run_reason("PullRequest"), lambda: run_reason("IndividualCI", expect_fail=True), plan)
    with threads.lock:
        if len(threads.threads) != 1:
            raise Failed(f"three PR runs must leave one plan thread; there are {len(threads.threads)}")
    r.destroy(ws, plan)
    srv.shutdown()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--idlab", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--oidc", choices=["auto", "off", "on"], default="auto")
    ap.add_argument("workflows", nargs="+")
    a = ap.parse_args()
    r = None
    seen = 0
    try:
        r = Runner(a.idlab, a.state, a.oidc)
        for w in a.workflows:
            with open(w) as f:
                doc = yaml.safe_load(f)
            plan = str((doc.get("env") or doc.get("variables") or {}).get("IDLAB_PLAN", ""))
            r.plan_used = plan if os.path.exists(os.path.join(ROOT, plan)) else FALLBACK_PLAN
            if "jobs" in doc and isinstance(doc["jobs"], dict):
                run_github(r, w)
            else:
                run_azure(r, w)
            if r.issuer:
                n = r.requests()
                say(f"   assertions the test issuer gave so far: {n}")
                if n <= seen:
                    raise Failed("--oidc on, yet no step of this workflow asked the test issuer for a token")
                seen = n
            say(f"== {w}: every step ran as expected")
    except Failed as e:
        print(f"workflow steps: {e}", file=sys.stderr)
        return 1
    finally:
        if r:
            r.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
