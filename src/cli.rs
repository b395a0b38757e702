//! The command line: clap definitions and one function per command. `main` only calls
//! [`run`] and turns its [`Exit`] into the process exit code (table in `docs/cli.md`).
//!
//! Imports: every layer; the only place (with `ui`) that knows about terminals.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::resolve::{self, Loaded, Options};
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

/// idlab: Azure managed-identity environments, declared in YAML and converged through ARM.
#[derive(Debug, Parser)]
#[command(name = "idlab", version, about, max_term_width = 100)]
pub struct Cli {
    /// Never colour output (also: NO_COLOR).
    #[arg(long, global = true)]
    pub no_color: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check plan files: syntax, fields, names, references, roles, cycles.
    Validate(ValidateArgs),
    /// Print a plan's dependency graph.
    Graph(GraphArgs),
    /// Print the JSON Schema of plan files.
    Schema,
    /// Show what apply would change (diff against what ARM holds).
    Plan(PlanArgs),
    /// Converge Azure (or the local cloud) to the plan.
    Apply(ApplyArgs),
    /// Delete what the plan owns, dependents first.
    Destroy(DestroyArgs),
    /// Run the plan's access checks as the VMs' managed identities.
    Verify(VerifyArgs),
    /// Print the plan's outputs from what ARM holds.
    Output(OutputArgs),
    /// The built-in local cloud: ARM, token issuer and VM identity endpoints on 127.0.0.1.
    #[command(subcommand)]
    Local(LocalCommand),
}

/// `idlab local …`
#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Serve the local cloud until interrupted; prints one JSON line of connection details.
    Serve(ServeArgs),
    /// Print the shell exports a program "on a VM" needs to reach its identity endpoint.
    Env(VmArgs),
    /// Run a command with a VM's environment (as if on that VM).
    Exec(ExecArgs),
    /// On a VM (inside `local exec`): get a managed-identity token through the Azure SDK's
    /// ManagedIdentityCredential and print its claims (never the token).
    #[command(hide = true)]
    MiToken(MiTokenArgs),
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
pub struct ExecArgs {
    #[command(flatten)]
    pub vm: VmArgs,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

/// Where the commands that talk to a cloud run.
#[derive(Debug, Args, Clone)]
pub struct CloudArgs {
    /// Use the built-in local cloud: attach to the one serving --state, else start it here.
    #[arg(long)]
    pub local: bool,
    /// State directory of the local cloud.
    #[arg(long, default_value = ".idlab/local", value_name = "DIR")]
    pub state: PathBuf,
    /// Target a separately running `idlab local serve` by its ARM URL (its connection details
    /// are read from `--state`).
    #[arg(long, value_name = "URL")]
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthArg {
    Workload,
    Secret,
    Msi,
    Cli,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutFormat {
    Text,
    Json,
    /// `plan` only: a Markdown table for pull-request comments.
    Markdown,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub cloud: CloudArgs,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
    /// Exit 2 when there are changes, 0 when none.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Plan a destroy.
    #[arg(long)]
    pub destroy: bool,
    /// Purge soft-deleted key vaults and secrets instead of recovering them (with
    /// --destroy: purge what is deleted).
    #[arg(long)]
    pub purge: bool,
    /// Save the plan (JSON) for `idlab apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan file, or a plan saved with `plan --out`.
    #[arg(value_name = "PLAN|FILE")]
    pub plan: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// Do not ask for confirmation (required without a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Take over resources that exist without this plan's tag.
    #[arg(long)]
    pub adopt: bool,
    /// Purge soft-deleted key vaults and secrets in the way instead of recovering them.
    #[arg(long)]
    pub purge: bool,
    /// Progress as NDJSON events on stdout.
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub cloud: CloudArgs,
    #[arg(long)]
    pub auto_approve: bool,
    /// Delete resources the plan does not own too.
    #[arg(long)]
    pub force: bool,
    /// Purge key vaults and secrets after deleting them: they cannot be recovered.
    #[arg(long)]
    pub purge: bool,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub cloud: CloudArgs,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

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

/// Arguments of commands that later versions implement.
#[derive(Debug, Args)]
pub struct Reserved {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub rest: Vec<String>,
}

/// Variable overrides, shared by every command that loads a plan.
#[derive(Debug, Args, Clone, Default)]
pub struct VarArgs {
    /// Set a variable: NAME=VALUE (repeatable; wins over --var-file).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from a YAML file of NAME: VALUE (repeatable).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Plan files.
    #[arg(required = true, value_name = "PLAN")]
    pub plans: Vec<PathBuf>,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = DiagFormat::Text)]
    pub format: DiagFormat,
    /// Treat unavailable secrets and environment values as errors, as plan and apply do.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
    Json,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Plan file.
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
}

/// Parse arguments and run. clap's usage errors exit 1 (2 means "changes present").
pub fn run<I, T>(args: I) -> Exit
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { Exit::Error } else { Exit::Ok };
            let text = e.render().to_string();
            if e.use_stderr() {
                ui::err(&text);
            } else {
                ui::out(&text);
            }
            return code;
        }
    };
    let color = !cli.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    match cli.command {
        Command::Validate(a) => validate(&a, color),
        Command::Graph(a) => graph(&a, color),
        Command::Schema => {
            ui::out(&schema_text());
            Exit::Ok
        }
        Command::Plan(a) => crate::cli_engine::plan(&a),
        Command::Apply(a) => crate::cli_engine::apply(&a),
        Command::Destroy(a) => crate::cli_engine::destroy(&a),
        Command::Verify(a) => crate::cli_engine::verify(&a),
        Command::Output(a) => crate::cli_engine::output(&a),
        Command::Local(LocalCommand::Serve(a)) => serve(&a),
        Command::Local(LocalCommand::Env(a)) => local_env(&a),
        Command::Local(LocalCommand::Exec(a)) => local_exec(&a),
        Command::Local(LocalCommand::MiToken(a)) => mi_token(&a),
    }
}

pub(crate) fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => Some(r),
        Err(e) => {
            ui::err(&format!("error: cannot start the async runtime: {e}\n"));
            None
        }
    }
}

fn serve(a: &ServeArgs) -> Exit {
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
    let config = Config { state_dir: a.state.clone(), port: a.port, faults, allow_crash: true };
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
    ui::out(&format!(
        "idlab local cloud serving {} (pid {})\n  ARM:          {}\n  token:        {}\n  tenant:       {}\n  subscription: {}\n  operator:     client id {} (secret in {})\n  trust:        REQUESTS_CA_BUNDLE={}\n  VMs and their identity endpoints: `idlab local env --vm NAME` (GET {}/_idlab/vms)\nPress Ctrl-C to stop.\n",
        i.state_dir.display(),
        i.pid,
        i.arm_url,
        i.token_url,
        i.tenant_id,
        i.subscription_id,
        i.operator_client_id,
        i.operator_secret_file.display(),
        i.ca_file.display(),
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

fn vm_env(a: &VmArgs) -> Result<Vec<(String, String)>, String> {
    use crate::local::attach;
    let rt = runtime().ok_or("no runtime")?;
    rt.block_on(async {
        let info = attach::running(&a.state).await.ok_or_else(|| {
            format!(
                "no local cloud is serving {}: start one with `idlab local serve --state {}`",
                a.state.display(),
                a.state.display()
            )
        })?;
        attach::vm_env(&info, &a.vm).await
    })
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/:._-=@,+".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn local_env(a: &VmArgs) -> Exit {
    match vm_env(a) {
        Ok(vars) => {
            let text: String = vars.iter().map(|(k, v)| format!("export {k}={}\n", shell_quote(v))).collect();
            ui::out(&text);
            Exit::Ok
        }
        Err(e) => {
            ui::err(&format!("error: {e}\n"));
            Exit::Error
        }
    }
}

fn local_exec(a: &ExecArgs) -> Exit {
    let vars = match vm_env(&a.vm) {
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

fn mi_token(a: &MiTokenArgs) -> Exit {
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
            let claims = crate::local::token::peek(t.token.secret()).unwrap_or_default();
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

/// The schema file's exact text (`schemas/plan.schema.json`).
pub fn schema_text() -> String {
    let mut s = serde_json::to_string_pretty(resolve::schema()).unwrap_or_default();
    s.push('\n');
    s
}

pub(crate) fn options(v: &VarArgs, strict: bool) -> Options {
    Options { vars: v.vars.clone(), var_files: v.var_files.clone(), strict }
}

pub(crate) fn width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(100)
}

fn validate(a: &ValidateArgs, color: bool) -> Exit {
    let opts = options(&a.vars, a.strict);
    let files: Vec<Loaded> = a.plans.iter().map(|p| resolve::load(p, &opts)).collect();
    let failed = files.iter().filter(|f| f.has_errors()).count();
    match a.format {
        DiagFormat::Json => {
            let text = serde_json::to_string_pretty(&ui::diagnostics::files_json(&files)).unwrap_or_default();
            ui::out(&format!("{text}\n"));
        }
        DiagFormat::Text => {
            for f in &files {
                ui::err(&ui::diagnostics::render_text(f, color, width()));
                let errors = f.diags.iter().filter(|d| d.is_error()).count();
                let warnings = f.diags.len() - errors;
                let line = match (&f.plan, errors) {
                    (Some(p), 0) => format!(
                        "{}: ok — plan `{}`, {} resources{}\n",
                        f.path,
                        p.name,
                        p.decls.len(),
                        if warnings > 0 { format!(", {warnings} warning(s)") } else { String::new() }
                    ),
                    _ => format!("{}: {errors} error(s), {warnings} warning(s)\n", f.path),
                };
                ui::out(&line);
            }
        }
    }
    if failed > 0 { Exit::Error } else { Exit::Ok }
}

fn graph(a: &GraphArgs, color: bool) -> Exit {
    let f = resolve::load(&a.plan, &options(&a.vars, false));
    ui::err(&ui::diagnostics::render_text(&f, color, width()));
    let Some(p) = &f.plan else {
        return Exit::Error;
    };
    let text = match a.format {
        GraphFormat::Dot => p.dag.to_dot(),
        GraphFormat::Mermaid => p.dag.to_mermaid(),
        GraphFormat::Json => format!("{}\n", serde_json::to_string_pretty(&p.dag.to_json()).unwrap_or_default()),
    };
    ui::out(&text);
    Exit::Ok
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
    fn usage_errors_exit_1_not_2() {
        assert_eq!(run(["idlab", "validate"]), Exit::Error);
        assert_eq!(run(["idlab", "--bogus"]), Exit::Error);
        assert_eq!(run(["idlab", "--version"]), Exit::Ok);
    }
}
