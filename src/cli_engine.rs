//! The commands that talk to a cloud: `plan`, `apply`, `destroy`, `verify`. Each loads and
//! validates the plan (secrets must be available), connects (the local cloud with
//! `--local`, else Azure with the documented credential order), observes, and hands the
//! rest to the engine; the UI layer renders.

use std::collections::HashMap;
use std::sync::Arc;

use crate::arm::Client;
use crate::arm::auth::{AuthMethod, Cached, LocalCredential, TokenSource, azure_credential};
use crate::cli::{
    ApplyArgs, AuthArg, CloudArgs, DestroyArgs, Exit, OutFormat, OutputArgs, PlanArgs, VarArgs, VerifyArgs, options,
    runtime, width,
};
use crate::engine::{self, Context, Outcome, Shared};
use crate::local::{Local, attach};
use crate::model::Sensitive;
use crate::resolve::{self, Validated};
use crate::ui;

/// A connection to a cloud for one command.
struct Conn {
    cx: Context,
    /// Keeps an in-process local cloud alive for the command.
    local: Option<Local>,
    http: reqwest::Client,
}

fn load(path: &std::path::Path, vars: &VarArgs) -> Result<Validated, Exit> {
    let loaded = resolve::load(path, &options(vars, true));
    let color = std::env::var_os("NO_COLOR").is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    if !loaded.diags.is_empty() {
        ui::err(&ui::diagnostics::render_text(&loaded, color, width()));
    }
    loaded.plan.ok_or(Exit::Error)
}

async fn connect(c: &CloudArgs, plan: &Validated) -> Result<Conn, String> {
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
        let info = local.info().clone();
        let http = attach::client(&info)?;
        // The operator by default; another principal of the local cloud with AZURE_CLIENT_ID
        // and AZURE_CLIENT_SECRET (e.g. a Reader-only one made through the admin API).
        let (client_id, secret) = match (std::env::var("AZURE_CLIENT_ID"), std::env::var("AZURE_CLIENT_SECRET")) {
            (Ok(id), Ok(secret)) if !id.is_empty() && !secret.is_empty() => (id, secret),
            _ => {
                let secret = std::fs::read_to_string(&info.operator_secret_file)
                    .map_err(|e| format!("{}: {e}", info.operator_secret_file.display()))?;
                (info.operator_client_id.clone(), secret)
            }
        };
        let mut cred = LocalCredential {
            http: http.clone(),
            token_url: info.token_url.clone(),
            client_id,
            object_id: String::new(),
            secret: Sensitive::new(secret.trim().to_string()),
        };
        let first = cred.token(crate::arm::client::ARM_SCOPE).await.map_err(|e| e.to_string())?;
        cred.object_id = crate::local::token::peek(first.value.expose())
            .and_then(|c| c.get("oid").and_then(|o| o.as_str()).map(str::to_string))
            .unwrap_or_default();
        let caller = cred.object_id.clone();
        let mut client = Client::new(http.clone(), info.arm_url.clone(), Arc::new(Cached::new(Arc::new(cred))));
        if let Some(ms) = std::env::var("IDLAB_RETRY_BASE_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
            client.retry.base = std::time::Duration::from_millis(ms);
        }
        let subscription = c.subscription.clone().unwrap_or_else(|| info.subscription_id.clone());
        let cx = context(c, client, subscription, Some(info.tenant_id.clone()), Some(caller));
        return Ok(Conn { cx, local: Some(local), http });
    }
    // Azure retired Data Lake Storage Gen1: refuse before any request, pointing at Gen2.
    if let Some(why) = crate::kinds::data_lake::gen1_refused(&plan.decls) {
        return Err(why);
    }
    let forced = c.auth.map(|a| match a {
        AuthArg::Workload => AuthMethod::Workload,
        AuthArg::Secret => AuthMethod::Secret,
        AuthArg::Msi => AuthMethod::Msi,
        AuthArg::Cli => AuthMethod::Cli,
    });
    let cred = azure_credential(forced).map_err(|e| e.to_string())?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    // No service idlab talks to redirects except WebHDFS, whose 307 verify follows by hand.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(120))
        .build()
        .map_err(|e| e.to_string())?;
    let plan_sub =
        plan.subscription.as_ref().map(|s| match s.value.strip_prefix("${env.").and_then(|v| v.strip_suffix('}')) {
            Some(var) => std::env::var(var).unwrap_or_default(),
            None => s.value.clone(),
        });
    let subscription = c
        .subscription
        .clone()
        .or(plan_sub)
        .or_else(|| std::env::var("AZURE_SUBSCRIPTION_ID").ok())
        .filter(|s| !s.is_empty())
        .ok_or("no subscription: set `subscription:` in the plan, pass --subscription, set AZURE_SUBSCRIPTION_ID, or use --local")?;
    let cred: Arc<dyn TokenSource> = Arc::new(Cached::new(cred));
    // The deploying principal and its tenant (`${caller}`, a vault's tenantId): from the
    // environment, else from the claims of the first ARM token (cached for the requests).
    let claims = match (std::env::var("AZURE_TENANT_ID").ok(), std::env::var("IDLAB_CALLER_OBJECT_ID").ok()) {
        (Some(_), Some(_)) => None,
        _ => cred
            .token(crate::arm::client::ARM_SCOPE)
            .await
            .ok()
            .and_then(|t| crate::local::token::peek(t.value.expose())),
    };
    let claim = |k: &str| claims.as_ref().and_then(|c| c.get(k)).and_then(|v| v.as_str()).map(str::to_string);
    let tenant = std::env::var("AZURE_TENANT_ID").ok().or_else(|| claim("tid"));
    let caller = std::env::var("IDLAB_CALLER_OBJECT_ID").ok().or_else(|| claim("oid"));
    let client = Client::new(http.clone(), "https://management.azure.com", cred);
    let cx = context(c, client, subscription, tenant, caller);
    Ok(Conn { cx, local: None, http })
}

/// The engine context with the flags every command shares; commands set the rest.
fn context(
    c: &CloudArgs,
    client: Client,
    subscription: String,
    tenant_id: Option<String>,
    caller_object_id: Option<String>,
) -> Context {
    Context {
        client,
        subscription,
        tenant_id,
        caller_object_id,
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

/// Connect, let the command set its options on the context, then read what Azure holds.
async fn observed(
    cloud: &CloudArgs,
    p: &Validated,
    set: impl FnOnce(&mut Context) -> Result<(), String>,
) -> Result<(Conn, engine::Observed), Exit> {
    let mut conn = connect(cloud, p).await.map_err(fail)?;
    set(&mut conn.cx).map_err(fail)?;
    let obs = engine::observe(&conn.cx, p).await.map_err(fail)?;
    Ok((conn, obs))
}

fn fail(msg: impl std::fmt::Display) -> Exit {
    ui::err(&format!("error: {msg}\n"));
    Exit::Error
}

pub fn plan(a: &PlanArgs) -> Exit {
    let p = match load(&a.plan, &a.vars) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let Some(rt) = runtime() else { return Exit::Error };
    rt.block_on(async {
        let (conn, obs) = match observed(&a.cloud, &p, |cx| {
            cx.check_names = !a.destroy;
            cx.purge = a.purge;
            cx.only = engine::targets(&p, &a.cloud.targets, a.destroy)?;
            Ok(())
        })
        .await
        {
            Ok(c) => c,
            Err(e) => return e,
        };
        let plan = crate::plan::make(&conn.cx.plan_options(&p), &p.decls, &p.dag, &obs, a.destroy);
        if let Some(out) = &a.out {
            let saved = crate::plan::Saved::new(
                &a.plan.display().to_string(),
                &std::fs::read_to_string(&a.plan).unwrap_or_default(),
                &p.variables,
                crate::plan::fingerprints(&obs),
                plan.clone(),
            );
            let text = serde_json::to_string_pretty(&saved).unwrap_or_default();
            if let Err(e) = write_atomic(out, &text) {
                return fail(format!("cannot write {}: {e}", out.display()));
            }
        }
        match a.format {
            OutFormat::Json => {
                ui::out(&format!("{}\n", serde_json::to_string_pretty(&plan).unwrap_or_default()));
            }
            OutFormat::Text => {
                ui::out(&ui::plan::text(&plan));
            }
            OutFormat::Markdown => {
                ui::out(&ui::plan::markdown(&plan));
            }
        }
        drop(conn.local);
        if a.detailed_exitcode && plan.has_changes() { Exit::Changes } else { Exit::Ok }
    })
}

fn confirm_or_refuse(auto: bool, what: &str) -> Result<(), Exit> {
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

pub fn apply(a: &ApplyArgs) -> Exit {
    let saved = read_saved(&a.plan);
    let source = saved.as_ref().map_or_else(|| a.plan.clone(), |s| std::path::PathBuf::from(&s.source));
    if let Some(s) = &saved
        && let Err(e) = s.check_source(&source, &std::fs::read_to_string(&source).unwrap_or_default())
    {
        return fail(e);
    }
    let p = match load(&source, &a.vars) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let Some(rt) = runtime() else { return Exit::Error };
    rt.block_on(async {
        let destroying_saved = saved.as_ref().is_some_and(|s| s.plan.destroy);
        let (conn, obs) = match observed(&a.cloud, &p, |cx| {
            cx.adopt = a.adopt;
            cx.check_names = !destroying_saved;
            // A saved plan that purges was made with --purge.
            cx.purge = a.purge || saved.as_ref().is_some_and(crate::plan::Saved::purges);
            cx.only = engine::targets(&p, &a.cloud.targets, destroying_saved)?;
            watch_interrupts(&cx.cancel, a.cloud.timeout);
            Ok(())
        })
        .await
        {
            Ok(c) => c,
            Err(e) => return e,
        };
        let cx = &conn.cx;
        let destroying = saved.as_ref().is_some_and(|s| s.plan.destroy);
        if let Some(s) = &saved
            && let Err(e) = s.check_observed(&p.variables, &crate::plan::fingerprints(&obs))
        {
            return fail(e);
        }
        let plan = crate::plan::make(&cx.plan_options(&p), &p.decls, &p.dag, &obs, destroying);
        // Same plan file, variables and Azure: the actions can still differ when a file the
        // plan reads (a blob source) changed. Apply only what was reviewed.
        if let Some(s) = &saved
            && let Err(e) = s.check_actions(&plan)
        {
            return fail(e);
        }
        if a.format != OutFormat::Json {
            ui::err(&ui::plan::text(&plan));
        }
        let steps = if destroying { Vec::new() } else { crate::verify::next_steps(cx, &p, &obs.values) };
        if !plan.has_changes() {
            ui::plan::next_steps(&steps, a.format == OutFormat::Json);
            return Exit::Ok;
        }
        if saved.is_none()
            && let Err(e) = confirm_or_refuse(a.auto_approve, "apply these actions")
        {
            return e;
        }
        let total = plan.actions.iter().filter(|x| x.action != crate::plan::ActionKind::NoOp).count() as u64;
        let reporter = ui::plan::reporter(a.format == OutFormat::Json, a.cloud.no_progress, total);
        let sh = Shared { cx, plan: &p, reporter };
        let results =
            if destroying { engine::walk::destroy(&sh, obs).await } else { engine::walk::apply(&sh, obs).await };
        if a.format != OutFormat::Json {
            ui::err(&ui::plan::summary(&results, "Apply"));
        }
        drop(conn.local);
        if cx.cancel.is_cancelled() {
            return interrupted_exit(a.cloud.timeout);
        }
        if results.iter().any(|r| matches!(r.2, Outcome::Failed(_) | Outcome::Skipped(_))) {
            Exit::Error
        } else {
            ui::plan::next_steps(&steps, a.format == OutFormat::Json);
            Exit::Ok
        }
    })
}

pub fn destroy(a: &DestroyArgs) -> Exit {
    let p = match load(&a.plan, &a.vars) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let Some(rt) = runtime() else { return Exit::Error };
    rt.block_on(async {
        let (conn, obs) = match observed(&a.cloud, &p, |cx| {
            cx.force = a.force;
            cx.purge = a.purge;
            cx.only = engine::targets(&p, &a.cloud.targets, true)?;
            watch_interrupts(&cx.cancel, a.cloud.timeout);
            Ok(())
        })
        .await
        {
            Ok(c) => c,
            Err(e) => return e,
        };
        let cx = &conn.cx;
        let plan = crate::plan::make(&cx.plan_options(&p), &p.decls, &p.dag, &obs, true);
        if a.format != OutFormat::Json {
            ui::err(&ui::plan::text(&plan));
        }
        if !plan.has_changes() {
            return Exit::Ok;
        }
        if let Err(e) = confirm_or_refuse(a.auto_approve, "destroy these resources") {
            return e;
        }
        let reporter = ui::plan::reporter(
            a.format == OutFormat::Json,
            a.cloud.no_progress,
            plan.actions.iter().filter(|x| x.action != crate::plan::ActionKind::NoOp).count() as u64,
        );
        let sh = Shared { cx, plan: &p, reporter };
        let results = engine::walk::destroy(&sh, obs).await;
        if a.format != OutFormat::Json {
            ui::err(&ui::plan::summary(&results, "Destroy"));
        }
        drop(conn.local);
        if cx.cancel.is_cancelled() {
            return interrupted_exit(a.cloud.timeout);
        }
        if results.iter().any(|r| matches!(r.2, Outcome::Failed(_))) { Exit::Error } else { Exit::Ok }
    })
}

pub fn verify(a: &VerifyArgs) -> Exit {
    let p = match load(&a.plan, &a.vars) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let Some(rt) = runtime() else { return Exit::Error };
    rt.block_on(async {
        let (conn, obs) = match observed(&a.cloud, &p, |_| Ok(())).await {
            Ok(c) => c,
            Err(e) => return e,
        };
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
            http: &conn.http,
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
                ui::out(&format!("{}\n", serde_json::json!({"format_version": 1, "checks": results})));
            }
            OutFormat::Text | OutFormat::Markdown => {
                for r in &results {
                    ui::out(&format!("{} {}: {}\n", r.status.to_uppercase(), r.name, r.detail));
                }
                let pass = results.iter().filter(|r| r.status == "pass").count();
                let failed = results.iter().filter(|r| r.status == "fail").count();
                let skip = results.iter().filter(|r| r.status == "skip").count();
                ui::out(&format!("Verify: {pass} passed, {failed} failed, {skip} skipped.\n"));
            }
        }
        drop(conn.local);
        if results.iter().any(|r| r.status == "fail") { Exit::VerifyFailed } else { Exit::Ok }
    })
}

fn write_atomic(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(tmp.path(), text)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// A saved plan, when `path` holds one.
fn read_saved(path: &std::path::Path) -> Option<crate::plan::Saved> {
    let text = std::fs::read_to_string(path).ok()?;
    if !text.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str::<crate::plan::Saved>(&text).ok().filter(|s| s.kind == "idlab-saved-plan")
}

pub fn output(a: &OutputArgs) -> Exit {
    let p = match load(&a.plan, &a.vars) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let Some(rt) = runtime() else { return Exit::Error };
    rt.block_on(async {
        let (conn, obs) = match observed(&a.cloud, &p, |_| Ok(())).await {
            Ok(c) => c,
            Err(e) => return e,
        };
        let mut values = serde_json::Map::new();
        let mut missing = Vec::new();
        for (name, value) in &p.outputs {
            let env = conn.cx.env(&p, &name.value, &obs.values);
            match env.resolve(value) {
                crate::kinds::env::Val::Known(v) => {
                    values.insert(name.value.clone(), serde_json::Value::String(v));
                }
                crate::kinds::env::Val::Unknown => missing.push(name.value.clone()),
            }
        }
        match a.format {
            OutFormat::Json => {
                ui::out(&format!("{}\n", serde_json::to_string_pretty(&values).unwrap_or_default()));
            }
            OutFormat::Text | OutFormat::Markdown => {
                let text: String =
                    values.iter().map(|(k, v)| format!("{k} = {}\n", v.as_str().unwrap_or_default())).collect();
                ui::out(&text);
            }
        }
        drop(conn.local);
        if missing.is_empty() {
            Exit::Ok
        } else {
            fail(format!("not known until the plan is applied: {}", missing.join(", ")))
        }
    })
}

/// The first Ctrl-C (or the `--timeout`) stops new work; in-flight calls finish and the
/// summary says what ran. A second Ctrl-C exits at once.
fn watch_interrupts(cancel: &engine::Cancel, timeout: Option<u64>) {
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
            ui::err("Interrupted: starting nothing new, waiting for calls in flight (Ctrl-C again to quit now).\n");
            if tokio::signal::ctrl_c().await.is_ok() {
                // The user insists: stop now, as a second Ctrl-C does everywhere.
                #[allow(clippy::exit)]
                std::process::exit(130);
            }
        }
    });
    if let Some(secs) = timeout {
        let on_timeout = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
            on_timeout.cancel();
            ui::err(&format!("Timed out after {secs} s: starting nothing new, waiting for calls in flight.\n"));
        });
    }
}

fn interrupted_exit(timeout: Option<u64>) -> Exit {
    if timeout.is_some() { Exit::Error } else { Exit::Interrupted }
}
