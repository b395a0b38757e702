//! Helpers: run the real `idlab` binary in a clean environment and render its outcome; the
//! end-to-end harness (`Served`: `idlab local serve` and the binary against it) and the
//! acceptance cycle every tutorial plan goes through.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (tests run the binary from here, so paths in output are relative).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The outcome of one run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout, stderr and the exit code as one text, for snapshots.
    pub fn render(&self) -> String {
        format!("exit: {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Run `idlab ARGS` from the repository root with a cleared environment plus `env`.
pub fn idlab_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let home = std::env::temp_dir();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_idlab"));
    cmd.args(args).current_dir(root()).env_clear().env("HOME", &home).env("COLUMNS", "100").env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the idlab binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn idlab(args: &[&str]) -> Run {
    idlab_env(args, &[])
}

/// Every `plans/*.yaml`, sorted, as paths relative to the root.
pub fn plan_files() -> Vec<String> {
    yaml_files(&root().join("plans"), "plans")
}

/// Every `tests/fixtures/bad/*.yaml`, sorted, relative to the root.
pub fn bad_fixtures() -> Vec<String> {
    yaml_files(&root().join("tests/fixtures/bad"), "tests/fixtures/bad")
}

fn yaml_files(dir: &Path, rel: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("directory exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .map(|n| format!("{rel}/{n}"))
        .collect();
    v.sort();
    v
}

/// Parse `validate --format json` output for one file: (code, line, column) of each diagnostic.
pub fn json_codes(run: &Run) -> Vec<(String, u64, u64)> {
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("validate --format json prints JSON");
    v["files"][0]["diagnostics"]
        .as_array()
        .expect("diagnostics array")
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_string(),
                d["start"]["line"].as_u64().unwrap_or(0),
                d["start"]["column"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

mod cycle;
pub(crate) mod handmade;
pub(crate) mod oidc;
mod served;

pub(crate) use cycle::{
    acceptance_cycle, assert_name_taken, assert_not_leaked, everything_seen, folder_drift_then_destroy_and_again,
    secret_runs,
};
pub(crate) use served::{Served, changed_fields, owned_by_plan, seed_key};
