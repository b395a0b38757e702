//! What several commands share: the exit-code table, the flags of every command that loads a
//! plan or talks to a cloud, and small helpers (the runtime, loading a plan with its
//! diagnostics, failing with a message, confirmation, Ctrl-C and `--timeout`).
//!
//! Imports: resolve, engine (the interrupt flag), arm (the credential choice), ui. Never the
//! command modules: they import this one.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::arm::auth::AuthMethod;
use crate::engine;
use crate::resolve::{self, Options, Validated};
use crate::ui;

/// Process exit codes (design.md): one table, each row tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Success; for `plan --detailed-exitcode`, no changes.
    Ok,
    /// Invalid plan, usage error, API or network failure, partial failure.
    Error,
    /// `plan --detailed-exitcode`: changes present.
    Changes,
    /// `verify`: it ran and at least one check failed.
    VerifyFailed,
    /// Interrupted.
    Interrupted,
    /// `local exec`: the command's own exit code.
    Code(u8),
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Error => 1,
            Exit::Changes => 2,
            Exit::VerifyFailed => 3,
            Exit::Interrupted => 130,
            Exit::Code(c) => c,
        }
    }
}

/// Where the commands that talk to a cloud run.
#[derive(Debug, Args, Clone)]
pub struct CloudArgs {
    /// Use the built-in local cloud: attach to the one serving --state, else start it here.
    #[arg(long)]
    pub local: bool,
    /// State directory of the local cloud.
    #[arg(long, env = "IDLAB_STATE", default_value = ".idlab/local", value_name = "DIR")]
    pub state: PathBuf,
    /// Target a separately running `idlab local serve` by its ARM URL (its connection details
    /// are read from `--state`).
    #[arg(long, env = "IDLAB_CLOUD_ENDPOINT", value_name = "URL")]
    pub cloud_endpoint: Option<String>,
    /// Subscription id (else the plan's, then AZURE_SUBSCRIPTION_ID; with --local, its own).
    #[arg(long, value_name = "ID")]
    pub subscription: Option<String>,
    /// Force a credential for Azure: workload, secret, msi or cli.
    #[arg(long, value_enum)]
    pub auth: Option<AuthArg>,
    /// How many resources are worked on at once.
    #[arg(long, env = "IDLAB_PARALLELISM", default_value_t = 10)]
    pub parallelism: usize,
    /// Only these resources (repeatable), with what they depend on (destroy: what depends
    /// on them).
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// Stop starting new work after this many seconds (in-flight calls finish).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Plain log lines instead of progress bars, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// How long a role assignment waits for a principal this plan just created to replicate,
    /// and a Data Lake Gen2 folder for a data role the plan just granted to take effect.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub principal_wait: u64,
    /// Run the plan as this instance (repeatable): its own plan name `<plan>-<instance>`, and
    /// the instance appended to names outside what it owns (docs/cli.md, Instances).
    #[arg(long = "instance", value_name = "NAME")]
    pub instance: Vec<String>,
    /// Run the plan as N instances, named 01 to N (zero-padded to N's width).
    #[arg(long, value_name = "N", conflicts_with = "instance", value_parser = clap::value_parser!(u16).range(1..=999))]
    pub instances: Option<u16>,
    /// Run the plan as the instances named in FILE, one per line (blank lines and `#`
    /// comments skipped).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["instance", "instances"])]
    pub instances_file: Option<PathBuf>,
    /// `apply`, `destroy`: how long one long-running operation may take (e.g. `90s`, `20m`,
    /// `1h`; a bare number is seconds). Default: ten times the kind's rough create time, at
    /// least 5 minutes.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub operation_timeout: Option<std::time::Duration>,
}

impl CloudArgs {
    /// The instances to run, in order: empty for a plan run once as itself.
    ///
    /// # Errors
    /// An instance name Azure names cannot carry, or one given twice.
    pub(crate) fn instance_names(&self) -> Result<Vec<String>, String> {
        let names = match (self.instances, &self.instances_file) {
            (Some(n), _) => crate::kinds::instance::numbered(usize::from(n)),
            (None, Some(f)) => {
                let meta = std::fs::metadata(f).map_err(|e| format!("{}: {e}", f.display()))?;
                if meta.len() > 1 << 20 {
                    return Err(format!("{}: an instances file is at most 1 MiB", f.display()));
                }
                let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
                let names: Vec<String> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_string)
                    .collect();
                if names.is_empty() {
                    return Err(format!("{}: names no instance", f.display()));
                }
                names
            }
            (None, None) => self.instance.clone(),
        };
        let mut seen = std::collections::HashSet::new();
        for n in &names {
            crate::kinds::instance::check_instance(n)?;
            if !seen.insert(n.to_ascii_lowercase()) {
                return Err(format!("instance `{n}` is given twice"));
            }
        }
        Ok(names)
    }
}

/// A duration: a number with an optional unit `ms`, `s`, `m` or `h` (seconds without one).
///
/// # Errors
/// Not a number with one of those units, or zero.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration (e.g. 90s, 20m, 1h)"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => return Err(format!("`{other}` is not a unit of time: use ms, s, m or h")),
    };
    if !(secs > 0.0 && secs.is_finite() && secs < 1e9) {
        return Err(format!("`{s}`: a duration must be above zero"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// `--auth`: the flag's values, one per [`AuthMethod`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthArg {
    Github,
    AzurePipelines,
    Workload,
    Secret,
    Msi,
    Cli,
}

impl From<AuthArg> for AuthMethod {
    fn from(a: AuthArg) -> AuthMethod {
        match a {
            AuthArg::Github => AuthMethod::Github,
            AuthArg::AzurePipelines => AuthMethod::AzurePipelines,
            AuthArg::Workload => AuthMethod::Workload,
            AuthArg::Secret => AuthMethod::Secret,
            AuthArg::Msi => AuthMethod::Msi,
            AuthArg::Cli => AuthMethod::Cli,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutFormat {
    Text,
    Json,
    /// `plan` only: a Markdown table for pull-request comments.
    Markdown,
}

/// Variable overrides, shared by every command that loads a plan.
#[derive(Debug, Args, Clone)]
pub struct VarArgs {
    /// Set a variable: NAME=VALUE (repeatable; wins over --var-file).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from a YAML file of NAME: VALUE (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// Refuse plan and variable files larger than this: bytes, or KiB, MiB, GiB.
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = resolve::parse_size)]
    pub max_plan_size: u64,
    /// Let blob sources and `{ file: }` paths lead into this directory, outside the plan's
    /// own (repeatable).
    #[arg(long = "allow-files-outside", value_name = "DIR")]
    pub allow_outside: Vec<PathBuf>,
}

/// A current-thread runtime, or `None` (the error printed) when it cannot start.
pub(crate) fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => Some(r),
        Err(e) => {
            ui::err(&format!("error: cannot start the async runtime: {e}\n"));
            None
        }
    }
}

pub(crate) fn options(v: &VarArgs, strict: bool) -> Options {
    Options {
        vars: v.vars.clone(),
        var_files: v.var_files.clone(),
        strict,
        max_size: Some(v.max_plan_size),
        allow_outside: v.allow_outside.clone(),
        instance: None,
    }
}

pub(crate) fn width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(100)
}

/// Load a plan strictly (secrets must be available), printing its diagnostics.
///
/// As one instance of the plan with `instance` (`None`: the plan itself).
pub(crate) fn load_as(path: &std::path::Path, vars: &VarArgs, instance: Option<&str>) -> Result<Validated, Exit> {
    let loaded = resolve::load(path, &Options { instance: instance.map(str::to_string), ..options(vars, true) });
    let color = std::env::var_os("NO_COLOR").is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    if !loaded.diags.is_empty() {
        ui::err(&ui::diagnostics::render_text(&loaded, color, width()));
    }
    loaded.plan.ok_or(Exit::Error)
}

/// Text of one instance of a fleet: every line prefixed with `[instance] ` (unchanged for a
/// plan run as itself).
pub(crate) fn instance_prefix(p: &Validated, text: String) -> String {
    match &p.instance {
        Some(i) => text.lines().map(|l| format!("[{i}] {l}\n")).collect(),
        None => text,
    }
}

/// Print `error: {msg}` and answer [`Exit::Error`].
pub(crate) fn fail(msg: impl std::fmt::Display) -> Exit {
    ui::err(&format!("error: {msg}\n"));
    Exit::Error
}

/// Ask before changing anything, unless `--auto-approve`; without a terminal, refuse.
pub(crate) fn confirm_or_refuse(auto: bool, what: &str) -> Result<(), Exit> {
    if auto {
        return Ok(());
    }
    if !ui::plan::interactive() {
        return Err(fail(format!("{what} needs confirmation, and there is no terminal to ask: pass --auto-approve")));
    }
    if ui::plan::confirm(&format!("Do you want to {what}? Only 'yes' will be accepted: ")) {
        Ok(())
    } else {
        Err(fail("cancelled"))
    }
}

/// Before `apply` or `destroy` walks: every long-running operation gets its deadline
/// (`--operation-timeout`, else per kind), and Ctrl-C and `--timeout` are watched.
pub(crate) fn prepare_walk(cx: &mut engine::Context, cloud: &CloudArgs) {
    cx.set_operation_timeout(cloud.operation_timeout);
    watch_interrupts(cx, cloud.timeout);
}

/// The first Ctrl-C stops new work and ends every wait at once (polls of long-running
/// operations, retry backoffs): the calls on the wire finish and the summary says what ran.
/// A second Ctrl-C exits 130 at once. `--timeout` stops new work only.
fn watch_interrupts(cx: &engine::Context, timeout: Option<u64>) {
    let on_signal = cx.cancel.clone();
    let stop = cx.client.stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
            stop.stop();
            ui::err("Interrupted: starting nothing new, ending waits (Ctrl-C again to quit now).\n");
            if tokio::signal::ctrl_c().await.is_ok() {
                // The user insists: stop now, as a second Ctrl-C does everywhere.
                #[allow(clippy::exit)]
                std::process::exit(130);
            }
        }
    });
    if let Some(secs) = timeout {
        let on_timeout = cx.cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
            on_timeout.cancel();
            ui::err(&format!("Timed out after {secs} s: starting nothing new, waiting for calls in flight.\n"));
        });
    }
}

/// An interrupted walk exits 130, one stopped by `--timeout` exits 1.
pub(crate) fn interrupted_exit(timeout: Option<u64>) -> Exit {
    if timeout.is_some() { Exit::Error } else { Exit::Interrupted }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_table() {
        assert_eq!(Exit::Ok.code(), 0);
        assert_eq!(Exit::Error.code(), 1);
        assert_eq!(Exit::Changes.code(), 2);
        assert_eq!(Exit::VerifyFailed.code(), 3);
        assert_eq!(Exit::Interrupted.code(), 130);
        assert_eq!(Exit::Code(7).code(), 7);
    }

    #[test]
    fn durations_take_a_unit_or_seconds() {
        use std::time::Duration;
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("20m"), Ok(Duration::from_secs(1200)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "0", "-1s", "5 days", "s", "1e99h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
