//! `idlab verify`: run the plan's access checks as the VMs' managed identities.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Args;

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
}

pub(crate) fn cmd_verify(a: &VerifyArgs) -> Exit {
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
                results.push(crate::verify::run_check(&name.value, check, &venv).await);
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
                    text.push_str(&format!("Verify: {pass} passed, {failed} failed, {skip} skipped.\n"));
                    ui::out(&instance_prefix(&p, text));
                }
            }
            drop(conn.local);
            if results.iter().any(|r| r.status == "fail") { Exit::VerifyFailed } else { Exit::Ok }
        },
    )
}
