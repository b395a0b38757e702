//! The local cloud as the end-to-end tests use it: `idlab local serve` in a process of its
//! own, the real binary run against it, and what its request log and ARM say.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use idlab::local::attach;
use serde_json::Value;

use super::{Run, root};

/// (resource, changed field paths) of every action in a plan JSON that is not a no-op.
pub(crate) fn changed_fields(plan: &Value) -> Vec<(String, Vec<String>)> {
    plan["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["action"] != "no_op")
        .map(|a| {
            (
                a["name"].as_str().unwrap_or_default().to_string(),
                a["changes"]
                    .as_array()
                    .map(|c| c.iter().filter_map(|x| x["path"].as_str().map(str::to_string)).collect())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// The fixed test key (tests/fixtures/keys), copied into a state directory before its first
/// start so the local cloud reads it instead of generating one: tests do not pay for RSA key
/// generation. (The local cloud makes the directory 0700 and the key 0600 when it starts.)
pub(crate) fn seed_key(state: &std::path::Path) {
    std::fs::create_dir_all(state).expect("state directory");
    let key = state.join(idlab::local::token::KEY_FILE);
    std::fs::write(&key, include_bytes!("../../fixtures/keys/token-signing.key.der")).expect("test key");
}

pub(crate) struct Served {
    /// The `idlab local serve` process.
    child: Child,
    pub(crate) state: std::path::PathBuf,
    /// The server's own log (stderr, at debug level).
    pub(crate) log: std::path::PathBuf,
    _tmp: tempfile::TempDir,
    pub(crate) rt: tokio::runtime::Runtime,
    /// The further `local serve` flags, kept for a restart.
    flags: Vec<String>,
    /// Where every idlab run appends what it sent and got (`IDLAB_CAPTURE`, see
    /// [`Served::captured`]).
    pub(crate) capture: std::path::PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    pub(crate) fn start() -> Served {
        Served::with_faults(None)
    }

    pub(crate) fn with_faults(faults: Option<&str>) -> Served {
        Served::with(faults, &[])
    }

    /// `idlab local serve` with these further flags (`--allow-run-command`).
    pub(crate) fn with_flags(flags: &[&str]) -> Served {
        Served::with(None, flags)
    }

    fn with(faults: Option<&str>, flags: &[&str]) -> Served {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tmp = tempfile::tempdir().expect("tmp");
        let state = tmp.path().join("state");
        seed_key(&state);
        let log = tmp.path().join("serve.log");
        let flags: Vec<String> = flags.iter().map(|f| (*f).to_string()).collect();
        let child = serve(&state, tmp.path(), faults, true, &flags);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        let capture = tmp.path().join("capture.ndjson");
        Served { child, state, log, _tmp: tmp, rt, flags, capture }
    }

    /// Stop the server at once (SIGKILL, as a crash would: what it keeps in memory, such as
    /// long-running operations, is lost) and start it again on the same state directory and
    /// port, with `faults`.
    pub(crate) fn restart(&mut self, faults: Option<&str>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = serve(&self.state, self._tmp.path(), faults, false, &self.flags);
    }

    /// `idlab ARGS --local --state DIR`, as [`Served::idlab_env`] runs it, not started yet.
    pub(crate) fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_idlab"));
        cmd.args(args)
            .args(["--local", "--state"])
            .arg(&self.state)
            .current_dir(root())
            .env_clear()
            .env("HOME", std::env::temp_dir())
            .env("NO_COLOR", "1")
            .env(idlab::arm::capture::ENV, &self.capture)
            .envs(env.iter().copied());
        cmd
    }

    /// Every exchange the idlab runs of this test captured (`IDLAB_CAPTURE`), in order.
    pub(crate) fn captured(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.capture).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).expect("a captured exchange is JSON")).collect()
    }

    pub(crate) fn idlab(&self, args: &[&str]) -> Run {
        self.idlab_env(args, &[])
    }

    pub(crate) fn idlab_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let out = self.command(args, env).output().expect("idlab runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Call the local cloud as its operator.
    pub(crate) fn op(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let info = attach::read_info(&self.state).expect("server.json");
        self.rt.block_on(async {
            let c = attach::client(&info).expect("client");
            let t = attach::operator_token(&info, &c).await.expect("token");
            let mut r = c
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
                    format!("{}{path}", info.arm_url),
                )
                .bearer_auth(t);
            if let Some(b) = body {
                r = r.json(&b);
            }
            r.send().await.expect("sent").json().await.unwrap_or(Value::Null)
        })
    }

    pub(crate) fn subscription(&self) -> String {
        attach::read_info(&self.state).expect("info").subscription_id
    }

    /// Clear the request log, then `plan --detailed-exitcode`: it must exit 0 with "No changes.".
    /// The log then holds what the plan read.
    pub(crate) fn replans_clean(&self, plan: &str) {
        self.op("DELETE", "/_idlab/requests", None);
        let r = self.idlab(&["plan", plan, "--detailed-exitcode"]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("No changes."), "{}", r.stdout);
    }

    /// The principal id of the system-assigned identity of VM `vm` in group `rg`.
    pub(crate) fn vm_principal(&self, rg: &str, vm: &str) -> String {
        let path = format!(
            "/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{vm}?api-version=2025-04-01",
            self.subscription()
        );
        self.op("GET", &path, None)["identity"]["principalId"].as_str().expect("system identity").to_string()
    }

    /// Apply `plan` again (it must succeed) and assert that the request log holds no write.
    pub(crate) fn assert_second_apply_writes_nothing(&self, plan: &str) {
        self.op("DELETE", "/_idlab/requests", None);
        let again = self.idlab(&["apply", plan, "--auto-approve"]);
        assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
        let writes = self.writes();
        assert!(writes.is_empty(), "{writes:?}");
    }

    /// Every state-changing request in the log since the last clear, ARM and data planes.
    pub(crate) fn writes(&self) -> Vec<Value> {
        let log = self.op("GET", "/_idlab/requests", None);
        log["value"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["write"] == true && e["path"] != "/_idlab/requests")
            .collect()
    }

    /// ARM requests in the log since the last clear: (method, path).
    pub(crate) fn arm_log(&self) -> Vec<(String, String, bool)> {
        let v = self.op("GET", "/_idlab/requests", None);
        v["value"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|e| e["path"].as_str().is_some_and(|p| p.starts_with("/subscriptions")))
            .map(|e| {
                (
                    e["method"].as_str().unwrap_or_default().to_string(),
                    e["path"].as_str().unwrap_or_default().to_string(),
                    e["write"].as_bool().unwrap_or(true),
                )
            })
            .collect()
    }
}

/// `idlab local serve` on `state` (a fresh port when `new_port`, else the one the state
/// records), its log in `dir/serve.log`; returns once it has printed its JSON line.
fn serve(
    state: &std::path::Path,
    dir: &std::path::Path,
    faults: Option<&str>,
    new_port: bool,
    flags: &[String],
) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_idlab"));
    cmd.args(["local", "serve", "--state"]).arg(state);
    cmd.args(flags);
    if new_port {
        cmd.args(["--port", "0"]);
    }
    if let Some(f) = faults {
        let path = dir.join("faults.yaml");
        std::fs::write(&path, f).expect("faults");
        cmd.arg("--faults").arg(path);
    }
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("serve.log")).expect("log file");
    let mut child =
        cmd.env("IDLAB_LOG", "debug").stdout(Stdio::piped()).stderr(Stdio::from(log)).spawn().expect("serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("line");
    child
}

/// What carries plan `name`'s tag in the subscription: groups and resources.
pub(crate) fn owned_by_plan(s: &Served, name: &str) -> Vec<String> {
    let sub = s.subscription();
    let filter = format!("$filter=tagName%20eq%20'idlab-plan'%20and%20tagValue%20eq%20'{name}'");
    let mut out = Vec::new();
    for path in [
        format!("/subscriptions/{sub}/resourcegroups?{filter}&api-version=2024-11-01"),
        format!("/subscriptions/{sub}/resources?{filter}&api-version=2021-04-01"),
    ] {
        let v = s.op("GET", &path, None);
        out.extend(v["value"].as_array().into_iter().flatten().filter_map(|r| r["id"].as_str().map(str::to_string)));
    }
    out
}
