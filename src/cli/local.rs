//! `idlab local …`: serve the built-in local cloud, print a VM's environment, run a command
//! "on" a VM, and (hidden, inside `local exec`) get a managed-identity token as a program on
//! the VM would.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::ui;

use super::common::{Exit, runtime};

/// `idlab local …`
#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Serve the local cloud until interrupted; prints one JSON line of connection details.
    Serve(ServeArgs),
    /// Print the variables a tool needs to reach the local cloud by Azure's host names
    /// through its proxy (or, with --vm, those a program "on a VM" needs to reach its
    /// identity endpoint), as shell exports or JSON.
    Env(EnvArgs),
    /// Run a command with a VM's environment (as if on that VM).
    Exec(ExecArgs),
    /// On a VM (inside `local exec`): get a managed-identity token through the Azure SDK's
    /// ManagedIdentityCredential and print its claims (never the token).
    #[command(hide = true)]
    MiToken(MiTokenArgs),
    /// A test OIDC issuer shaped like GitHub Actions' and Azure Pipelines' token endpoints
    /// (for CI sign-in tests and examples); prints one JSON line, then serves until killed.
    #[command(hide = true)]
    OidcServer(OidcServerArgs),
}

#[derive(Debug, Args)]
pub struct OidcServerArgs {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The published signing key (PKCS#8 DER; default: a new key).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The unpublished key for wrongly signed assertions (PKCS#8 DER; default: a new key).
    #[arg(long, value_name = "FILE")]
    pub other_key: Option<PathBuf>,
    /// The bearer token its token endpoints require (default: a random one, printed).
    #[arg(long)]
    pub request_token: Option<String>,
}

#[derive(Debug, Args)]
pub struct MiTokenArgs {
    /// The scope to ask for, e.g. `https://management.azure.com/.default`.
    #[arg(long)]
    pub scope: String,
    /// A user-assigned identity's client id.
    #[arg(long)]
    pub client_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// State directory.
    #[arg(long, default_value = ".idlab/local", value_name = "DIR")]
    pub state: PathBuf,
    /// ARM/token port (0 = any free port; default: the one recorded in the state).
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Fault configuration (YAML or JSON; see docs/local-cloud.md).
    #[arg(long, value_name = "FILE")]
    pub faults: Option<PathBuf>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Serve VM Run Command for Linux-image VMs: each script runs with `sh` ON THIS HOST, as
    /// the user running the local cloud, with the VM's identity endpoint (as `local exec`).
    /// Off by default: without it Run Command answers 409 OperationNotAllowed.
    #[arg(long)]
    pub allow_run_command: bool,
}

/// Connection timeouts, the connection cap and upload limits (docs/local-cloud.md, "Limits").
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Seconds a client has to finish its TLS handshake.
    #[arg(long, default_value_t = 10.0, value_name = "SECS", value_parser = seconds)]
    pub handshake_timeout: f64,
    /// Seconds a client has to send a complete request head.
    #[arg(long, default_value_t = 30.0, value_name = "SECS", value_parser = seconds)]
    pub header_timeout: f64,
    /// Seconds a kept-alive connection may stay idle.
    #[arg(long, default_value_t = 120.0, value_name = "SECS", value_parser = seconds)]
    pub idle_timeout: f64,
    /// Connections open at once over every port; further clients wait to be accepted.
    #[arg(long, default_value_t = 4096, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Largest upload in one request to blob, dfs and WebHDFS, in MiB.
    #[arg(long, default_value_t = 256, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=5000))]
    pub max_upload_mib: u64,
}

fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && (0.01..=86_400.0).contains(&s) => Ok(s),
        _ => Err(format!("`{text}` is not a number of seconds between 0.01 and 86400")),
    }
}

impl LimitArgs {
    fn limits(&self) -> crate::local::Limits {
        let mib = self.max_upload_mib * crate::local::shared::MIB;
        crate::local::Limits {
            handshake_timeout: std::time::Duration::from_secs_f64(self.handshake_timeout),
            header_timeout: std::time::Duration::from_secs_f64(self.header_timeout),
            idle_timeout: std::time::Duration::from_secs_f64(self.idle_timeout),
            max_connections: self.max_connections as usize,
            blob_body: mib,
            dfs_body: mib,
            webhdfs_body: mib,
            ..crate::local::Limits::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct VmArgs {
    /// State directory of the running local cloud.
    #[arg(long, default_value = ".idlab/local", value_name = "DIR")]
    pub state: PathBuf,
    /// The VM, by name or resource id.
    #[arg(long, value_name = "NAME|ID")]
    pub vm: String,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// State directory of the running local cloud.
    #[arg(long, default_value = ".idlab/local", value_name = "DIR")]
    pub state: PathBuf,
    /// A VM, by name or resource id: the environment of a program on it. Without it: the
    /// environment of a tool on this machine (proxy, CA, service principal, Azure CLI).
    #[arg(long, value_name = "NAME|ID")]
    pub vm: Option<String>,
    /// `shell`: `export` lines; `json`: one object.
    #[arg(long, value_enum, default_value_t = EnvFormat::Shell)]
    pub format: EnvFormat,
}

/// How `local env` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EnvFormat {
    Shell,
    Json,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub vm: VmArgs,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

pub(crate) fn cmd_serve(a: &ServeArgs) -> Exit {
    use crate::local::{Cloud, Config, attach, faults::Faults};
    let faults = match &a.faults {
        Some(path) => match std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|t| Faults::parse(&t)) {
            Ok(f) => f,
            Err(e) => {
                ui::err(&format!("error: faults file {}: {e}\n", path.display()));
                return Exit::Error;
            }
        },
        None => Faults::default(),
    };
    let _lock = match attach::lock(&a.state) {
        Ok(l) => l,
        Err(e) => {
            ui::err(&format!("error: {e}\n"));
            return Exit::Error;
        }
    };
    let mut limits = a.limits.limits();
    limits.run_command = a.allow_run_command;
    let config = Config { state_dir: a.state.clone(), port: a.port, faults, allow_crash: true, limits };
    let cloud = match Cloud::start(config) {
        Ok(c) => c,
        Err(e) => {
            ui::err(&format!("error: the local cloud did not start: {e}\n"));
            return Exit::Error;
        }
    };
    if let Err(e) = attach::write_info(&cloud.info) {
        ui::err(&format!("error: cannot write {}: {e}\n", attach::server_file(&cloud.info.state_dir).display()));
        return Exit::Error;
    }
    let i = &cloud.info;
    ui::out(&format!("{}\n", serde_json::to_string(i).unwrap_or_default()));
    for notice in &cloud.notices {
        ui::err(&format!("{notice}\n"));
    }
    ui::out(&format!(
        "idlab local cloud serving {} (pid {})\n  ARM:          {}\n  token:        {}\n  tenant:       {}\n  subscription: {}\n  operator:     client id {} (secret in {})\n  trust:        REQUESTS_CA_BUNDLE={}\n  proxy:        HTTPS_PROXY={} (Azure's host names; `idlab local env` prints every variable)\n  VMs and their identity endpoints: `idlab local env --vm NAME` (GET {}/_idlab/vms)\nPress Ctrl-C to stop.\n",
        i.state_dir.display(),
        i.pid,
        i.arm_url,
        i.token_url,
        i.tenant_id,
        i.subscription_id,
        i.operator_client_id,
        i.operator_secret_file.display(),
        i.ca_file.display(),
        i.proxy_url,
        i.arm_url
    ));
    let Some(rt) = runtime() else { return Exit::Error };
    rt.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    });
    let _ = std::fs::remove_file(attach::server_file(&cloud.info.state_dir));
    cloud.stop();
    Exit::Ok
}

/// The running local cloud of `state`.
async fn running(state: &std::path::Path) -> Result<crate::local::ConnectionInfo, String> {
    crate::local::attach::running(state).await.ok_or_else(|| {
        format!(
            "no local cloud is serving {}: start one with `idlab local serve --state {}`",
            state.display(),
            state.display()
        )
    })
}

fn vm_env(state: &std::path::Path, vm: &str) -> Result<Vec<(String, String)>, String> {
    let rt = runtime().ok_or("no runtime")?;
    rt.block_on(async { crate::local::attach::vm_env(&running(state).await?, vm).await })
}

/// The Azure CLI's switches that keep it from calling out on its own: telemetry and the survey
/// prompt (`core.*` settings as `AZURE_CORE_*` variables). Its new-version check has no
/// setting (azure-cli 2.91 reads none); docs/local-cloud.md says how to stop it.
pub const AZ_CLI_OFFLINE: &[(&str, &str)] =
    [("AZURE_CORE_COLLECT_TELEMETRY", "no"), ("AZURE_CORE_SURVEY_MESSAGE", "no")].as_slice();

/// Variables, name and value.
type Vars = Vec<(String, String)>;

/// The environment of a tool reaching the local cloud by Azure's host names (docs/local-cloud.md,
/// "Azure's host names"): the variables, and those read from a file (the operator's secret,
/// which is never printed).
fn tool_env(info: &crate::local::ConnectionInfo) -> Result<(Vars, Vars), String> {
    if info.proxy_url.is_empty() {
        return Err(format!(
            "the local cloud serving {} (pid {}) has no proxy: it was started by an earlier idlab; restart it",
            info.state_dir.display(),
            info.pid
        ));
    }
    let ca = info.ca_file.display().to_string();
    let mut vars: Vec<(String, String)> = [
        ("HTTPS_PROXY", info.proxy_url.clone()),
        ("NO_PROXY", "127.0.0.1,localhost".to_string()),
        ("NODE_USE_ENV_PROXY", "1".to_string()),
        ("REQUESTS_CA_BUNDLE", ca.clone()),
        ("CURL_CA_BUNDLE", ca.clone()),
        ("SSL_CERT_FILE", ca.clone()),
        ("NODE_EXTRA_CA_CERTS", ca.clone()),
        (crate::arm::connect::CA_BUNDLE_VAR, ca),
        ("AZURE_TENANT_ID", info.tenant_id.clone()),
        ("AZURE_SUBSCRIPTION_ID", info.subscription_id.clone()),
        ("AZURE_CLIENT_ID", info.operator_client_id.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    vars.extend(AZ_CLI_OFFLINE.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())));
    let files = vec![("AZURE_CLIENT_SECRET".to_string(), info.operator_secret_file.display().to_string())];
    Ok((vars, files))
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/:._-=@,+".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub(crate) fn cmd_env(a: &EnvArgs) -> Exit {
    let found = match &a.vm {
        Some(vm) => vm_env(&a.state, vm).map(|v| (v, Vec::new())),
        None => runtime()
            .ok_or_else(|| "no runtime".to_string())
            .and_then(|rt| rt.block_on(running(&a.state)))
            .and_then(|info| tool_env(&info)),
    };
    match found {
        Ok((vars, files)) => {
            let text = match a.format {
                EnvFormat::Shell => {
                    let mut text: String =
                        vars.iter().map(|(k, v)| format!("export {k}={}\n", shell_quote(v))).collect();
                    for (k, path) in &files {
                        text.push_str(&format!("export {k}=\"$(cat {})\"\n", shell_quote(path)));
                    }
                    text
                }
                EnvFormat::Json => {
                    let map = |v: &[(String, String)]| {
                        v.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect()
                    };
                    let v = serde_json::json!({
                        "variables": serde_json::Value::Object(map(&vars)),
                        "from_files": serde_json::Value::Object(map(&files)),
                    });
                    format!("{v}\n")
                }
            };
            ui::out(&text);
            Exit::Ok
        }
        Err(e) => {
            ui::err(&format!("error: {e}\n"));
            Exit::Error
        }
    }
}

pub(crate) fn cmd_exec(a: &ExecArgs) -> Exit {
    let vars = match vm_env(&a.vm.state, &a.vm.vm) {
        Ok(v) => v,
        Err(e) => {
            ui::err(&format!("error: {e}\n"));
            return Exit::Error;
        }
    };
    let Some((program, args)) = a.cmd.split_first() else { return Exit::Error };
    match std::process::Command::new(program).args(args).envs(vars).status() {
        Ok(status) => match status.code() {
            Some(0) => Exit::Ok,
            Some(c) => Exit::Code(c.clamp(1, 255) as u8),
            None => Exit::Error,
        },
        Err(e) => {
            ui::err(&format!("error: cannot run `{program}`: {e}\n"));
            Exit::Error
        }
    }
}

pub(crate) fn cmd_mi_token(a: &MiTokenArgs) -> Exit {
    use azure_core::credentials::TokenCredential;
    use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
    let Some(rt) = runtime() else { return Exit::Error };
    let result = rt.block_on(async {
        let options = ManagedIdentityCredentialOptions {
            user_assigned_id: a.client_id.clone().map(UserAssignedId::ClientId),
            ..Default::default()
        };
        let cred = ManagedIdentityCredential::new(Some(options)).map_err(|e| e.to_string())?;
        cred.get_token(&[a.scope.as_str()], None).await.map_err(|e| e.to_string())
    });
    match result {
        Ok(t) => {
            let claims = crate::arm::jwt::claims(t.token.secret()).unwrap_or_default();
            let shown = serde_json::json!({
                "aud": claims.get("aud"),
                "oid": claims.get("oid"),
                "appid": claims.get("appid"),
                "tid": claims.get("tid"),
                "xms_mirid": claims.get("xms_mirid"),
                "expires_on": t.expires_on.unix_timestamp(),
            });
            ui::out(&format!("{shown}\n"));
            Exit::Ok
        }
        Err(e) => {
            ui::err(&format!("error: no managed-identity token: {e}\n"));
            Exit::Error
        }
    }
}

pub(crate) fn cmd_oidc_server(a: &OidcServerArgs) -> Exit {
    let key = |f: &Option<PathBuf>| match f {
        Some(p) => std::fs::read(p).map_err(|e| format!("{}: {e}", p.display())),
        None => crate::local::token::SigningKey::generate(),
    };
    let (k, o) = match (key(&a.key), key(&a.other_key)) {
        (Ok(k), Ok(o)) => (k, o),
        (Err(e), _) | (_, Err(e)) => {
            ui::err(&format!("error: {e}\n"));
            return Exit::Error;
        }
    };
    let listener = match crate::local::shared::bind_loopback(a.port) {
        Ok(l) => l,
        Err(e) => {
            ui::err(&format!("error: {e}\n"));
            return Exit::Error;
        }
    };
    let token = a.request_token.clone().unwrap_or_else(crate::local::shared::random_secret);
    let Some(rt) = runtime() else { return Exit::Error };
    rt.block_on(async {
        match crate::local::oidc::start(listener, &k, &o, &token) {
            Ok(s) => {
                let line = serde_json::json!({
                    "issuer": s.base,
                    "github_url": s.github_url(),
                    "pipelines_url": s.pipelines_url(),
                    "request_token": s.request_token,
                });
                ui::out(&format!("{line}\n"));
                std::future::pending::<()>().await;
                Exit::Ok
            }
            Err(e) => {
                ui::err(&format!("error: {e}\n"));
                Exit::Error
            }
        }
    })
}
