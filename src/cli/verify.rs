//! `idlab verify`: run the plan's access checks as the VMs' managed identities.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::local::attach;
use crate::ui;

use super::common::{CloudArgs, Exit, OutFormat, VarArgs, fail, instance_prefix};
use super::connect::observe_then;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// The managed-identity endpoint to ask for tokens (default: the VM's own with --local,
    /// else http://169.254.169.254 — idlab running on the VM).
    #[arg(long, value_name = "URL")]
    pub imds_endpoint: Option<String>,
    /// How long an allowed check waits for a new role assignment to take effect.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    pub wait: u64,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
    /// How the checks reach the VM's identity: from here through its identity endpoint, or on
    /// the VM itself through the VM Run Command API (needs
    /// Microsoft.Compute/virtualMachines/runCommand/action on the VM).
    #[arg(long, value_enum, default_value_t = Via::IdentityEndpoint)]
    pub via: Via,
    /// With --local and no `idlab local serve` running: the local cloud started for this
    /// command serves Run Command (its scripts run on this host as you; see
    /// `idlab local serve --allow-run-command`).
    #[arg(long, requires = "local")]
    pub allow_run_command: bool,
}

/// The in-process local cloud `--allow-run-command` starts: published in the state
/// directory for the command's connection to attach to, and stopped (and unpublished) when
/// the command ends.
struct Opened {
    cloud: Option<crate::local::Cloud>,
    _lock: std::fs::File,
}

impl Drop for Opened {
    fn drop(&mut self) {
        if let Some(c) = self.cloud.take() {
            let _ = std::fs::remove_file(attach::server_file(&c.info.state_dir));
            c.stop();
        }
    }
}

/// Start the local cloud of `--state` with Run Command allowed, unless one already serves
/// it (then its own flag decides, and a notice says so).
fn open_with_run_command(a: &VerifyArgs) -> Result<Option<Opened>, String> {
    let rt = super::common::runtime().ok_or("no runtime")?;
    if rt.block_on(attach::running(&a.cloud.state)).is_some() {
        ui::err(&format!(
            "note: a local cloud already serves {}: Run Command follows its own `--allow-run-command`\n",
            a.cloud.state.display()
        ));
        return Ok(None);
    }
    let lock = attach::lock(&a.cloud.state)?;
    let mut config = crate::local::Config::new(&a.cloud.state);
    config.limits.run_command = true;
    let cloud = crate::local::Cloud::start(config).map_err(|e| format!("the local cloud did not start: {e}"))?;
    let opened = Opened { cloud: Some(cloud), _lock: lock };
    if let Some(c) = &opened.cloud {
        c.notices.iter().for_each(|n| ui::err(&format!("{n}\n")));
        attach::write_info(&c.info).map_err(|e| format!("cannot publish the local cloud: {e}"))?;
    }
    Ok(Some(opened))
}

/// `verify --via`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// idlab asks the VM's identity endpoint for the tokens and makes the calls.
    IdentityEndpoint,
    /// A script per check runs on the VM (Run Command) and prints its result.
    RunCommand,
}

pub(crate) fn cmd_verify(a: &VerifyArgs) -> Exit {
    let _opened = if a.allow_run_command {
        match open_with_run_command(a) {
            Ok(o) => o,
            Err(e) => return fail(e),
        }
    } else {
        None
    };
    observe_then(
        &a.plan,
        &a.vars,
        &a.cloud,
        None,
        false,
        |_, _| Ok(()),
        async |p, conn, obs| {
            let mut endpoints: HashMap<String, String> = HashMap::new();
            if let Some(l) = &conn.local
                && a.imds_endpoint.is_none()
                && a.via == Via::IdentityEndpoint
            {
                match attach::vms(l.info()).await {
                    Ok(vms) => {
                        for v in vms {
                            if let (Some(id), Some(ep)) =
                                (v.get("id").and_then(|x| x.as_str()), v.get("endpoint").and_then(|x| x.as_str()))
                            {
                                endpoints.insert(id.to_ascii_lowercase(), ep.to_string());
                            }
                        }
                    }
                    Err(e) => return fail(format!("cannot list the local cloud's VMs: {e}")),
                }
            }
            let default =
                a.imds_endpoint.clone().or_else(|| conn.local.is_none().then(|| "http://169.254.169.254".to_string()));
            let venv = crate::verify::VerifyEnv {
                client: &conn.cx.client,
                values: &obs.values,
                endpoints: &endpoints,
                default_endpoint: default.as_deref(),
                propagation: std::time::Duration::from_secs(a.wait),
            };
            let mut results = Vec::new();
            for (name, check) in &p.checks {
                let r = match a.via {
                    Via::IdentityEndpoint => crate::verify::run_check(&name.value, check, &venv).await,
                    Via::RunCommand => match crate::verify::run_command::run_check(&name.value, check, &venv).await {
                        Ok(r) => r,
                        Err(e) => {
                            drop(conn.local);
                            return fail(format!("check `{}`: {}", name.value, e.0));
                        }
                    },
                };
                results.push(r);
            }
            match a.format {
                OutFormat::Json => {
                    let mut v = serde_json::json!({"format_version": 1, "checks": results});
                    if let Some(i) = &p.instance {
                        v["instance"] = serde_json::Value::String(i.clone());
                    }
                    ui::out(&format!("{v}\n"));
                }
                OutFormat::Text | OutFormat::Markdown => {
                    let mut text = String::new();
                    for r in &results {
                        text.push_str(&format!("{} {}: {}\n", r.status.to_uppercase(), r.name, r.detail));
                    }
                    let pass = results.iter().filter(|r| r.status == "pass").count();
                    let failed = results.iter().filter(|r| r.status == "fail").count();
                    let skip = results.iter().filter(|r| r.status == "skip").count();
                    let broken = results.iter().filter(|r| r.status == "error").count();
                    let broken = if broken > 0 { format!(" {broken} could not run,") } else { String::new() };
                    text.push_str(&format!("Verify: {pass} passed, {failed} failed,{broken} {skip} skipped.\n"));
                    ui::out(&instance_prefix(&p, text));
                }
            }
            drop(conn.local);
            // A check that ran and failed is a finding (3); one that could not run leaves the
            // answer open (1).
            if results.iter().any(|r| r.status == "fail") {
                Exit::VerifyFailed
            } else if results.iter().any(|r| r.status == "error") {
                Exit::Error
            } else {
                Exit::Ok
            }
        },
    )
}
