//! Finding and talking to a local cloud that is already serving a state directory: the
//! connection file `server.json`, the exclusive `server.lock`, a health check, and the
//! operator calls the CLI makes (`local env`, `local exec`).

use std::fs::File;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::shared::ConnectionInfo;

/// The connection file of a running server.
pub fn server_file(dir: &Path) -> PathBuf {
    dir.join("server.json")
}

/// Hold the state directory for the life of a server. `Err` names who holds it.
///
/// # Errors
/// A message when another process serves the directory or the lock cannot be taken.
pub fn lock(dir: &Path) -> Result<File, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("server.lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(_) => {
            let who = read_info(dir).map(|i| format!(" (pid {}, {})", i.pid, i.arm_url)).unwrap_or_default();
            Err(format!("another local cloud is already serving {}{who}", dir.display()))
        }
    }
}

/// Write the connection file atomically.
///
/// # Errors
/// I/O errors.
pub fn write_info(info: &ConnectionInfo) -> std::io::Result<()> {
    let tmp = tempfile::NamedTempFile::new_in(&info.state_dir)?;
    serde_json::to_writer_pretty(tmp.as_file(), info).map_err(std::io::Error::other)?;
    tmp.as_file().sync_all()?;
    tmp.persist(server_file(&info.state_dir)).map_err(|e| e.error)?;
    Ok(())
}

/// Read the connection file, if any.
pub fn read_info(dir: &Path) -> Option<ConnectionInfo> {
    let text = std::fs::read_to_string(server_file(dir)).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    Some(ConnectionInfo {
        arm_url: v.get("arm_url")?.as_str()?.into(),
        authority_url: v.get("authority_url")?.as_str()?.into(),
        token_url: v.get("token_url")?.as_str()?.into(),
        metadata_url: v.get("metadata_url")?.as_str()?.into(),
        tenant_id: v.get("tenant_id")?.as_str()?.into(),
        subscription_id: v.get("subscription_id")?.as_str()?.into(),
        operator_client_id: v.get("operator_client_id")?.as_str()?.into(),
        operator_object_id: v.get("operator_object_id")?.as_str()?.into(),
        operator_secret_file: v.get("operator_secret_file")?.as_str()?.into(),
        ca_file: v.get("ca_file")?.as_str()?.into(),
        proxy_url: v.get("proxy_url").and_then(Value::as_str).unwrap_or_default().into(),
        state_dir: v.get("state_dir")?.as_str()?.into(),
        pid: u32::try_from(v.get("pid")?.as_u64()?).ok()?,
    })
}

/// An HTTPS client that trusts the local cloud's CA only.
///
/// # Errors
/// When the CA file cannot be read or used.
pub fn client(info: &ConnectionInfo) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pem = std::fs::read(&info.ca_file).map_err(|e| format!("{}: {e}", info.ca_file.display()))?;
    let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", info.ca_file.display()))?;
    reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([cert])
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// The running server for `dir`, if its health check answers.
pub async fn running(dir: &Path) -> Option<ConnectionInfo> {
    let info = read_info(dir)?;
    let c = client(&info).ok()?;
    let r = c.get(format!("{}/_idlab/health", info.arm_url)).send().await.ok()?;
    r.status().is_success().then_some(info)
}

/// A management token for the operator.
///
/// # Errors
/// When the secret file is unreadable or the issuer refuses.
pub async fn operator_token(info: &ConnectionInfo, c: &reqwest::Client) -> Result<String, String> {
    let secret = std::fs::read_to_string(&info.operator_secret_file)
        .map_err(|e| format!("{}: {e}", info.operator_secret_file.display()))?;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", info.operator_client_id.as_str()),
        ("client_secret", secret.trim()),
        ("scope", "https://management.azure.com/.default"),
    ];
    let r = c.post(&info.token_url).form(&form).send().await.map_err(|e| format!("token request: {e}"))?;
    let status = r.status();
    let v: Value = r.json().await.map_err(|e| format!("token response: {e}"))?;
    v.get("access_token")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("the issuer refused the operator ({status})"))
}

/// `GET /_idlab/vms` as the operator.
///
/// # Errors
/// Network or authentication failures.
pub async fn vms(info: &ConnectionInfo) -> Result<Vec<Value>, String> {
    let c = client(info)?;
    let t = operator_token(info, &c).await?;
    let r = c.get(format!("{}/_idlab/vms", info.arm_url)).bearer_auth(t).send().await.map_err(|e| e.to_string())?;
    let v: Value = r.json().await.map_err(|e| e.to_string())?;
    Ok(v.get("value").and_then(Value::as_array).cloned().unwrap_or_default())
}

/// The environment a program "on the VM" needs: the identity endpoints for the Azure SDKs
/// (IMDS override and App Service protocol), the CA bundle, and what idlab's verify reads.
///
/// # Errors
/// No such VM, or the VM has no identity endpoint.
pub async fn vm_env(info: &ConnectionInfo, vm: &str) -> Result<Vec<(String, String)>, String> {
    let all = vms(info).await?;
    let found = all.iter().find(|v| {
        v.get("id").and_then(Value::as_str).is_some_and(|i| i.eq_ignore_ascii_case(vm))
            || v.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(vm))
    });
    let Some(v) = found else {
        let names: Vec<&str> = all.iter().filter_map(|v| v.get("name").and_then(Value::as_str)).collect();
        return Err(format!(
            "no VM `{vm}` in the local cloud (VMs: {})",
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        ));
    };
    let Some(ep) = v.get("endpoint").and_then(Value::as_str) else {
        return Err(format!("VM `{vm}` has no managed identity, so no identity endpoint"));
    };
    let ca = info.ca_file.display().to_string();
    Ok(vec![
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST".into(), ep.to_string()),
        ("IDENTITY_ENDPOINT".into(), format!("{ep}/msi/token")),
        ("IDENTITY_HEADER".into(), v.get("identity_header").and_then(Value::as_str).unwrap_or_default().to_string()),
        ("IDLAB_IMDS_ENDPOINT".into(), ep.to_string()),
        ("IDLAB_ARM_URL".into(), info.arm_url.clone()),
        ("IDLAB_VM_ID".into(), v.get("id").and_then(Value::as_str).unwrap_or_default().to_string()),
        ("REQUESTS_CA_BUNDLE".into(), ca.clone()),
        ("SSL_CERT_FILE".into(), ca.clone()),
        ("CURL_CA_BUNDLE".into(), ca),
        ("AZURE_SUBSCRIPTION_ID".into(), info.subscription_id.clone()),
        ("AZURE_TENANT_ID".into(), info.tenant_id.clone()),
    ])
}
