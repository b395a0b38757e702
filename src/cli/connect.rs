//! Choosing and connecting to a cloud for one command: the built-in local cloud (`--local`,
//! `--cloud-endpoint`: attach to the one serving `--state`, else start it in-process), else
//! Azure through [`crate::arm::connect`]. Then the engine [`Context`] with the flags every
//! command shares, and the first observation.
//!
//! Imports: arm, engine, local (only here: `arm` never imports it), resolve, and `common`.

use crate::arm::auth::{self, AuthMethod, LocalSecret};
use crate::arm::connect::{self, AzureTarget, Connected, LocalTarget};
use crate::engine::{self, Context};
use crate::local::{Local, attach};
use crate::model::Sensitive;
use crate::resolve::Validated;
use crate::ui;

use std::path::Path;

use super::common::{CloudArgs, Exit, VarArgs, fail, load, runtime};

/// A connection to a cloud for one command.
pub(crate) struct Conn {
    pub cx: Context,
    /// Keeps an in-process local cloud alive for the command.
    pub local: Option<Local>,
}

/// Connect to the cloud `c` names.
///
/// # Errors
/// A message for the user: no such local cloud, no credential, no subscription.
pub(crate) async fn connect(c: &CloudArgs, plan: &Validated) -> Result<Conn, String> {
    if let Some(url) = &c.cloud_endpoint {
        let want = url.trim_end_matches('/');
        match attach::running(&c.state).await {
            Some(info) if info.arm_url.trim_end_matches('/').eq_ignore_ascii_case(want) => {}
            Some(info) => {
                return Err(format!(
                    "{} serves {}, not {want}: pass the --state of the `idlab local serve` at {want}",
                    c.state.display(),
                    info.arm_url
                ));
            }
            None => {
                return Err(format!(
                    "no `idlab local serve` answers for {}: start it, or pass its --state",
                    c.state.display()
                ));
            }
        }
    }
    if c.local || c.cloud_endpoint.is_some() {
        let local =
            Local::attach_or_start(&c.state).await.map_err(|e| format!("the local cloud did not start: {e}"))?;
        if let Local::Started { cloud, .. } = &local {
            cloud.notices.iter().for_each(|n| crate::ui::err(&format!("{n}\n")));
        }
        let info = local.info().clone();
        let http = attach::client(&info)?;
        // A forced or detected CI sign-in (`--auth github|azure-pipelines`) signs in with
        // the CI system's assertions, exchanged by the local issuer; else the operator by
        // default, or another principal of the local cloud with AZURE_CLIENT_ID and
        // AZURE_CLIENT_SECRET (e.g. a Reader-only one made through the admin API).
        let ci = match c.auth.map(AuthMethod::from) {
            Some(m @ (AuthMethod::Github | AuthMethod::AzurePipelines)) => Some(m),
            Some(_) => None,
            None => auth::ci_detected(),
        };
        let (client_id, secret) = if let Some(m) = ci {
            let a = auth::CiAssertion::from_env(m).map_err(|e| e.to_string())?;
            (a.client_id.clone(), LocalSecret::Assertion(std::sync::Arc::new(a)))
        } else {
            match (std::env::var("AZURE_CLIENT_ID"), std::env::var("AZURE_CLIENT_SECRET")) {
                (Ok(id), Ok(secret)) if !id.is_empty() && !secret.is_empty() => {
                    (id, LocalSecret::Secret(Sensitive::new(secret.trim().to_string())))
                }
                _ => {
                    let secret = std::fs::read_to_string(&info.operator_secret_file)
                        .map_err(|e| format!("{}: {e}", info.operator_secret_file.display()))?;
                    (info.operator_client_id.clone(), LocalSecret::Secret(Sensitive::new(secret.trim().to_string())))
                }
            }
        };
        let conn = connect::local(LocalTarget {
            http,
            arm_url: info.arm_url.clone(),
            token_url: info.token_url.clone(),
            tenant_id: info.tenant_id.clone(),
            client_id,
            secret,
            subscription: c.subscription.clone().unwrap_or_else(|| info.subscription_id.clone()),
        })
        .await?;
        return Ok(Conn { cx: context(c, conn), local: Some(local) });
    }
    // Azure retired Data Lake Storage Gen1: refuse before any request, pointing at Gen2.
    if let Some(why) = crate::kinds::data_lake::gen1_refused(&plan.decls) {
        return Err(why);
    }
    let conn = connect::azure(AzureTarget {
        auth: c.auth.map(Into::into),
        subscription: c.subscription.clone(),
        plan_subscription: plan.subscription.as_ref().map(|s| s.value.as_str()),
    })
    .await?;
    Ok(Conn { cx: context(c, conn), local: None })
}

/// The engine context with the flags every command shares; commands set the rest.
fn context(c: &CloudArgs, conn: Connected) -> Context {
    Context {
        client: conn.client,
        subscription: conn.subscription,
        tenant_id: conn.tenant_id,
        caller_object_id: conn.caller_object_id,
        parallelism: c.parallelism,
        adopt: false,
        force: false,
        only: None,
        fifo: false,
        principal_wait: std::time::Duration::from_secs(c.principal_wait),
        check_names: false,
        purge: false,
        cancel: engine::Cancel::new(),
    }
}

/// Load the plan (printing its diagnostics), connect, let the command set its options on the
/// context, read what Azure holds, then run the command's `body` on one runtime.
pub(crate) fn observe_then(
    path: &Path,
    vars: &VarArgs,
    cloud: &CloudArgs,
    set: impl FnOnce(&Validated, &mut Context) -> Result<(), String>,
    body: impl AsyncFnOnce(Validated, Conn, engine::Observed) -> Exit,
) -> Exit {
    let p = match load(path, vars) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let Some(rt) = runtime() else { return Exit::Error };
    rt.block_on(async {
        let (conn, obs) = match observed(cloud, &p, |cx| set(&p, cx)).await {
            Ok(c) => c,
            Err(e) => return e,
        };
        body(p, conn, obs).await
    })
}

/// Connect, let the command set its options on the context, then read what Azure holds.
async fn observed(
    cloud: &CloudArgs,
    p: &Validated,
    set: impl FnOnce(&mut Context) -> Result<(), String>,
) -> Result<(Conn, engine::Observed), Exit> {
    let mut conn = connect(cloud, p).await.map_err(fail)?;
    set(&mut conn.cx).map_err(fail)?;
    let obs = match engine::observe(&conn.cx, p).await {
        Ok(obs) => obs,
        // Ctrl-C while reading Azure: nothing was changed, and the exit says it was interrupted
        // (`--timeout` stops new work only, so it never ends a read).
        Err(_) if conn.cx.cancel.is_cancelled() && cloud.timeout.is_none() => {
            ui::err("Interrupted while reading Azure: nothing was changed.\n");
            return Err(Exit::Interrupted);
        }
        Err(e) => return Err(fail(e)),
    };
    Ok((conn, obs))
}
