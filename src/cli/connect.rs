//! Choosing and connecting to a cloud for one command: the built-in local cloud (`--local`,
//! `--cloud-endpoint`: attach to the one serving `--state`, else start it in-process), else
//! Azure through [`crate::arm::connect`]. Then the engine [`Context`] with the flags every
//! command shares, and the first observation.
//!
//! Imports: arm, engine, local (only here: `arm` never imports it), resolve, and `common`.

use crate::arm::auth::{self, AuthMethod, LocalSecret};
use crate::arm::connect::{self, AzureTarget, Connected, LocalTarget};
use crate::arm::pace::{PaceConfig, Pacer};
use crate::engine::{self, Context};
use crate::local::{Local, attach};
use crate::model::Sensitive;
use crate::resolve::Validated;
use crate::ui;

use std::path::Path;

use super::common::{CloudArgs, Exit, VarArgs, fail, load_as, runtime};

/// A connection to a cloud for one command.
pub(crate) struct Conn {
    pub cx: Context,
    /// Keeps an in-process local cloud alive for the command (shared by its instances).
    pub local: Option<std::sync::Arc<Local>>,
}

/// Connect to the cloud `c` names.
///
/// # Errors
/// A message for the user: no such local cloud, no credential, no subscription.
pub(crate) async fn connect(c: &CloudArgs, plan: Option<&Validated>) -> Result<Conn, String> {
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
        let mut cx = context(c, conn);
        local_pacing(&mut cx.client).await;
        pacing_override(&mut cx);
        return Ok(Conn { cx, local: Some(std::sync::Arc::new(local)) });
    }
    // Azure retired Data Lake Storage Gen1: refuse before any request, pointing at Gen2.
    if let Some(why) = plan.and_then(|p| crate::kinds::data_lake::gen1_refused(&p.decls)) {
        return Err(why);
    }
    let conn = connect::azure(AzureTarget {
        auth: c.auth.map(Into::into),
        subscription: c.subscription.clone(),
        plan_subscription: plan.and_then(|p| p.subscription.as_ref()).map(|s| s.value.as_str()),
    })
    .await?;
    let mut cx = context(c, conn);
    pacing_override(&mut cx);
    Ok(Conn { cx, local: None })
}

/// Against the local cloud, pacing runs on the cloud's clock: its buckets refill
/// `1 / time_scale` times faster than Azure's (its fault configuration, read as the operator;
/// another principal, who may not read it, paces as against Azure).
async fn local_pacing(client: &mut crate::arm::Client) {
    let Ok(r) = client.send(reqwest::Method::GET, "/_idlab/faults", None, None, &[]).await else { return };
    let Some(scale) = r.body.get("time_scale").and_then(serde_json::Value::as_f64).filter(|_| r.status == 200) else {
        return;
    };
    if (scale - 1.0).abs() > f64::EPSILON && scale >= 0.0 {
        let cfg = PaceConfig { speedup: 1.0 / scale.max(1e-9), ..PaceConfig::default() };
        client.pace = std::sync::Arc::new(Pacer::new(cfg));
    }
}

/// `IDLAB_PACING=off` (for benches that compare): no buckets and no adaptive concurrency, at
/// most `--parallelism` requests in flight for the whole command.
fn pacing_override(cx: &mut Context) {
    if std::env::var("IDLAB_PACING").is_ok_and(|v| v.eq_ignore_ascii_case("off")) {
        cx.client.pace = std::sync::Arc::new(Pacer::fixed(cx.parallelism.max(1)));
    }
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
        destroy: false,
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
///
/// With instances (`--instance`, `--instances`) the plan is loaded once per instance, and
/// every instance is observed and run concurrently on the one connection: a failure in one
/// never stops the others. The exit code is the most severe of the instances'
/// ([`fleet_exit`]), after a summary line per instance.
pub(crate) fn observe_then(
    path: &Path,
    vars: &VarArgs,
    cloud: &CloudArgs,
    expires_after: Option<u64>,
    preflight: bool,
    set: impl Fn(&Validated, &mut Context) -> Result<(), String>,
    body: impl AsyncFn(Validated, Conn, engine::Observed) -> Exit,
) -> Exit {
    let names = match cloud.instance_names() {
        Ok(n) => n,
        Err(e) => return fail(e),
    };
    let mut plans = Vec::new();
    if names.is_empty() {
        match load_as(path, vars, None) {
            Ok(p) => plans.push(p),
            Err(e) => return e,
        }
    } else {
        // Every instance's diagnostics, then refuse if any failed to load.
        let loaded: Vec<_> = names.iter().map(|n| load_as(path, vars, Some(n))).collect();
        for l in loaded {
            match l {
                Ok(p) => plans.push(p),
                Err(e) => return e,
            }
        }
    }
    let Some(rt) = runtime() else { return Exit::Error };
    rt.block_on(async {
        let Some(first) = plans.first() else { return Exit::Error };
        let mut base = match connect(cloud, Some(first)).await {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        if names.is_empty() {
            let p = plans.remove(0);
            if let Err(e) = set(&p, &mut base.cx) {
                return fail(e);
            }
            let mut obs = match engine::observe(&base.cx, &p).await {
                Ok(o) => o,
                Err(e) => return read_failed(&base.cx, cloud, e),
            };
            crate::plan::stamp(&p.decls, &mut obs, &lifecycle(&base.cx, &p, expires_after));
            return body(p, base, obs).await;
        }
        // Every instance observed first, so the pre-flight check sees the whole fleet.
        let observations = plans.into_iter().map(|p| {
            let mut cx = instance_context(&base.cx);
            let set = &set;
            async move {
                set(&p, &mut cx).map_err(fail)?;
                let mut obs = engine::observe(&cx, &p).await.map_err(|e| {
                    read_failed(&cx, cloud, format!("instance {}: {e}", p.instance.as_deref().unwrap_or_default()))
                })?;
                crate::plan::stamp(&p.decls, &mut obs, &lifecycle(&cx, &p, expires_after));
                Ok::<_, Exit>((p, cx, obs))
            }
        });
        let observed = futures::future::join_all(observations).await;
        if preflight && let Err(e) = quota_check(&base.cx, &observed).await {
            return e;
        }
        let runs = observed.into_iter().map(|o| {
            let local = base.local.clone();
            let body = &body;
            async move {
                match o {
                    Ok((p, cx, obs)) => body(p, Conn { cx, local }, obs).await,
                    Err(e) => e,
                }
            }
        });
        let exits = futures::future::join_all(runs).await;
        drop(base);
        crate::ui::err(&crate::ui::plan::fleet_summary(
            &names.iter().zip(&exits).map(|(n, e)| (n.clone(), e.code())).collect::<Vec<_>>(),
        ));
        fleet_exit(&exits)
    })
}

/// Reading Azure failed: Ctrl-C while reading changed nothing and exits as interrupted
/// (`--timeout` stops new work only, so it never ends a read); else the error.
fn read_failed(cx: &Context, cloud: &CloudArgs, e: impl std::fmt::Display) -> Exit {
    if cx.cancel.is_cancelled() && cloud.timeout.is_none() {
        ui::err("Interrupted while reading Azure: nothing was changed.\n");
        return Exit::Interrupted;
    }
    fail(e)
}

/// The lifecycle tags of this run: now (`IDLAB_NOW`, test-only, else the clock), the caller,
/// and the expiry from `--expires-after` (which resets it) or the plan's `expires_after`.
fn lifecycle(cx: &Context, p: &Validated, flag: Option<u64>) -> crate::plan::Stamp {
    let now = now();
    let expires = flag.or(p.expires_after).map(|secs| rfc3339(now + time::Duration::seconds(secs as i64)));
    crate::plan::Stamp {
        now: rfc3339(now),
        caller: cx.caller_object_id.clone(),
        expires,
        reset_expiry: flag.is_some(),
        instance: p.instance.clone(),
    }
}

/// The current time: `IDLAB_NOW` (RFC 3339; for tests only, documented as such) or the clock.
pub(crate) fn now() -> time::OffsetDateTime {
    std::env::var("IDLAB_NOW")
        .ok()
        .and_then(|t| time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(time::OffsetDateTime::now_utc)
}

/// UTC, whole seconds, RFC 3339 (`2026-12-07T08:00:00Z`).
pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC).replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Before any write of a fleet: whether the subscription can hold what its instances create.
/// A refusal prints the table of what does not fit.
async fn quota_check(
    cx: &Context,
    observed: &[Result<(Validated, Context, engine::Observed), Exit>],
) -> Result<(), Exit> {
    let mut demands = Vec::new();
    for (p, _, obs) in observed.iter().flatten() {
        for (i, d) in p.decls.iter().enumerate() {
            if let (Some(w), None) = (&obs.desired[i], &obs.bodies[i])
                && let Some(x) = crate::kinds::demand(d, &w.body)
            {
                demands.push(x);
            }
        }
    }
    if demands.is_empty() {
        return Ok(());
    }
    let limits = engine::quota::Limits::default();
    let short = engine::quota::check(&cx.client, &cx.subscription, &demands, &limits).await.map_err(fail)?;
    if short.is_empty() {
        return Ok(());
    }
    crate::ui::err(&crate::ui::plan::quota_table(
        &short.iter().map(|s| (s.limit.clone(), s.scope.clone(), s.used, s.wanted, s.max)).collect::<Vec<_>>(),
    ));
    Err(fail("the subscription cannot hold this fleet: nothing was written"))
}

/// A context for one instance: the connection's, with the command's options still unset.
fn instance_context(cx: &Context) -> Context {
    Context {
        client: cx.client.clone(),
        subscription: cx.subscription.clone(),
        tenant_id: cx.tenant_id.clone(),
        caller_object_id: cx.caller_object_id.clone(),
        parallelism: cx.parallelism,
        adopt: cx.adopt,
        force: cx.force,
        destroy: cx.destroy,
        only: cx.only.clone(),
        fifo: cx.fifo,
        principal_wait: cx.principal_wait,
        check_names: cx.check_names,
        purge: cx.purge,
        cancel: cx.cancel.clone(),
    }
}

/// The exit code of a fleet: interrupted, else an error (apply: any instance failed), else a
/// failed check (verify), else changes (`plan --detailed-exitcode`), else success.
pub(crate) fn fleet_exit(exits: &[Exit]) -> Exit {
    let rank = |e: &Exit| match e {
        Exit::Interrupted => 5,
        Exit::Error | Exit::Code(_) => 4,
        Exit::VerifyFailed => 3,
        Exit::Changes => 2,
        Exit::Ok => 1,
    };
    exits.iter().copied().max_by_key(rank).unwrap_or(Exit::Ok)
}
