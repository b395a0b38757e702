//! `verify --via run-command`: each check runs on the VM itself through the VM Run Command
//! API (`POST {vm}/runCommand`, a long-running operation whose result arrives at its
//! `Location`). idlab writes one script per check — POSIX `sh` with `curl` and `sha256sum`
//! for Linux images (`RunShellScript`), PowerShell for Windows images
//! (`RunPowerShellScript`) — that gets a token from the VM's identity endpoint, makes the
//! check's call and prints one JSON result line:
//!
//! `{"idlab_check":NAME,"status":HTTP,"outcome":"allowed|denied|error","code":CODE,"sha256":HEX,"steps":TEXT,"oid":OID}`
//!
//! which is parsed here into the usual [`CheckResult`]. A secret's value never leaves the VM:
//! the script prints the SHA-256 of the value as the vault's JSON spells it, compared here
//! with the hash of the stored value. The scripts hold no token and no secret: the token is
//! asked for on the VM, and handed to `curl` through a file, never its arguments.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Ask, CheckResult, VerifyEnv, said};
use crate::model::{Expect, Sensitive};

mod steps;
pub(crate) use steps::{Auth, Step};

/// The call a check makes on the VM.
pub(crate) struct Remote {
    pub method: &'static str,
    /// The full URL, with its api-version.
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    /// A JSON body, as text.
    pub body: Option<String>,
    /// What the call does, for the report (`read /subscriptions/…`).
    pub what: String,
    /// For a secret read: the SHA-256s (hex) of the stored value as a vault's JSON may spell
    /// it ([`json_sha256`]); the check passes only if the VM's hash is one of them.
    pub expect_sha256: Option<Vec<String>>,
    /// Calls after this one (the gate), made only when it is allowed; the check passes only
    /// if each answers its status (`blob_sas`, `data_lake`).
    pub steps: Vec<Step>,
    /// Token-only (`sql_login`): no call; the script prints the token's `oid` (and checks its
    /// `aud` is the resource), never the token. The check passes only if the `oid` is one of
    /// these.
    pub expect_oid: Option<Vec<String>>,
}

/// The image family of a VM, which picks the script language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    Windows,
}

impl Os {
    /// The Run Command `commandId`.
    pub fn command_id(self) -> &'static str {
        match self {
            Os::Linux => "RunShellScript",
            Os::Windows => "RunPowerShellScript",
        }
    }
}

/// The SHA-256 (hex) of a secret value as a vault's JSON may spell it (without the quotes):
/// what the scripts hash, since they read the value out of the answer untouched. Serializers
/// differ on what they escape, so the value is hashed as each common one writes it: minimal
/// escaping (serde, Newtonsoft), and escaped non-ASCII and HTML-sensitive characters as
/// `\uXXXX` (System.Text.Json's default), in upper and lower case hex.
pub(crate) fn json_sha256(value: &Sensitive<String>) -> Vec<String> {
    let text = serde_json::to_string(value.expose()).unwrap_or_default();
    let minimal = text.get(1..text.len().saturating_sub(1)).unwrap_or_default().to_string();
    let mut hashes: Vec<String> = Vec::new();
    for spelled in [minimal.clone(), escape_all(&minimal, true), escape_all(&minimal, false)] {
        let h = hex(&Sha256::digest(spelled.as_bytes()));
        if !hashes.contains(&h) {
            hashes.push(h);
        }
    }
    hashes
}

/// A minimally escaped JSON string body with non-ASCII and HTML-sensitive characters (and
/// the quote) escaped as `\uXXXX`.
fn escape_all(minimal: &str, upper: bool) -> String {
    let mut out = String::new();
    let mut chars = minimal.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            // An escape of the minimal form: `\"` becomes `\u0022`, the others stay.
            match chars.next() {
                Some('"') => out.push_str("\\u0022"),
                Some(n) => {
                    out.push(c);
                    out.push(n);
                }
                None => out.push(c),
            }
        } else if c.is_ascii() && !"<>&'+`".contains(c) {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&if upper { format!("\\u{u:04X}") } else { format!("\\u{u:04x}") });
            }
        }
    }
    out
}

/// The SHA-256 (hex) of bytes, as `sha256sum` prints it.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The identity endpoint's token query for a resource (and a user-assigned identity).
fn token_query(resource: &str, client_id: Option<&str>) -> String {
    let mut q = format!("/metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}");
    if let Some(c) = client_id {
        q.push_str(&format!("&client_id={c}"));
    }
    q
}

/// `'text'` for `sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// `'text'` for PowerShell.
fn ps_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A check name as it may appear in the result line (plan names are plain; anything else
/// becomes `_`).
fn plain(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

/// The `RunShellScript` lines of a check: POSIX `sh`, `curl`, `sed`, `sha256sum`.
pub(crate) fn sh_script(name: &str, resource: &str, client_id: Option<&str>, r: &Remote) -> Vec<String> {
    let mut s = vec![
        "#!/bin/sh".to_string(),
        "# idlab verify --via run-command: one check as the VM's managed identity.".into(),
        "set -u".into(),
        format!("name={}", sh_quote(&plain(name))),
        "ep=\"${IDLAB_IMDS_ENDPOINT:-${IMDS_ENDPOINT:-http://169.254.169.254}}\"".into(),
        "out() { printf '{\"idlab_check\":\"%s\",\"status\":%s,\"outcome\":\"%s\",\"code\":\"%s\",\"sha256\":\"%s\",\"steps\":\"%s\",\"oid\":\"%s\"}\\n' \"$name\" \"$1\" \"$2\" \"$3\" \"$4\" \"${5:-}\" \"${6:-}\"; }".into(),
        "tmp=$(mktemp -d) || { out 0 error NoTempDirectory ''; exit 0; }".into(),
        "trap 'rm -rf \"$tmp\"' EXIT".into(),
        format!(
            "curl -sS -H 'Metadata: true' -o \"$tmp/token\" \"$ep\"{} 2>\"$tmp/err\" || {{ out 0 error IdentityEndpointUnreachable ''; exit 0; }}",
            sh_quote(&token_query(resource, client_id))
        ),
        "tok=$(sed -n 's/.*\"access_token\" *: *\"\\([^\"]*\\)\".*/\\1/p' \"$tmp/token\")".into(),
        "rm -f \"$tmp/token\"".into(),
        "[ -n \"$tok\" ] || { out 0 error NoToken ''; exit 0; }".into(),
        "umask 077".into(),
        "printf 'Authorization: Bearer %s\\n' \"$tok\" >\"$tmp/auth\"".into(),
    ];
    if r.expect_oid.is_some() {
        s.extend(steps::sh_claims(resource));
        return s;
    }
    let mut call = format!(
        "status=$(curl -sS -o \"$tmp/body\" -D \"$tmp/head\" -w '%{{http_code}}' -X {} -H @\"$tmp/auth\"",
        r.method
    );
    for (k, v) in &r.headers {
        call.push_str(&format!(" -H {}", sh_quote(&format!("{k}: {v}"))));
    }
    if let Some(b) = &r.body {
        call.push_str(&format!(" -H 'Content-Type: application/json' --data-binary {}", sh_quote(b)));
    }
    call.push_str(&format!(" {} 2>\"$tmp/err\") || status=0", sh_quote(&r.url)));
    s.push(call);
    if r.steps.is_empty() {
        s.push("rm -f \"$tmp/auth\"".to_string());
    }
    s.extend([
        "case \"$status\" in 2??) outcome=allowed ;; 401|403) outcome=denied ;; *) outcome=error ;; esac".into(),
        "code=$(sed -n 's/^[xX]-[mM][sS]-[eE][rR][rR][oO][rR]-[cC][oO][dD][eE]: *\\([A-Za-z0-9.]*\\).*/\\1/p' \"$tmp/head\" 2>/dev/null | head -n 1)".into(),
        "[ -n \"$code\" ] || code=$(sed -n 's/.*\"code\" *: *\"\\([A-Za-z0-9.]*\\)\".*/\\1/p' \"$tmp/body\" 2>/dev/null | head -n 1)".into(),
        "[ \"$status\" != 0 ] || code=ConnectionFailed".into(),
        "sha=''".into(),
    ]);
    if !r.steps.is_empty() {
        s.extend(steps::sh_lines(&r.steps));
        s.push("rm -f \"$tmp/auth\"".into());
    } else if r.expect_sha256.is_some() {
        s.push(
            "if [ \"$outcome\" = allowed ]; then v=$(sed -n 's/.*\"value\" *: *\"\\(\\([^\"\\\\]*\\(\\\\.\\)*\\)*\\)\".*/\\1/p' \"$tmp/body\" | head -n 1); sha=$(printf '%s' \"$v\" | sha256sum | cut -d ' ' -f 1); v=''; fi"
                .into(),
        );
    }
    s.push(
        if r.steps.is_empty() {
            "out \"$status\" \"$outcome\" \"$code\" \"$sha\""
        } else {
            "out \"$status\" \"$outcome\" \"$code\" \"$sha\" \"$steps\""
        }
        .into(),
    );
    s
}

/// The `RunPowerShellScript` lines of a check: `Invoke-RestMethod` for the token,
/// `Invoke-WebRequest` for the call; the same result line as [`sh_script`].
pub(crate) fn ps_script(name: &str, resource: &str, client_id: Option<&str>, r: &Remote) -> Vec<String> {
    let mut s = vec![
        "# idlab verify --via run-command: one check as the VM's managed identity.".to_string(),
        "$ErrorActionPreference = 'Stop'".into(),
        "$ProgressPreference = 'SilentlyContinue'".into(),
        format!("$name = {}", ps_quote(&plain(name))),
        "$ep = if ($env:IDLAB_IMDS_ENDPOINT) { $env:IDLAB_IMDS_ENDPOINT } elseif ($env:IMDS_ENDPOINT) { $env:IMDS_ENDPOINT } else { 'http://169.254.169.254' }".into(),
        "function Out-Result($status, $outcome, $code, $sha, $steps, $oid) { [Console]::Out.WriteLine(('{\"idlab_check\":\"' + $name + '\",\"status\":' + $status + ',\"outcome\":\"' + $outcome + '\",\"code\":\"' + $code + '\",\"sha256\":\"' + $sha + '\",\"steps\":\"' + $steps + '\",\"oid\":\"' + $oid + '\"}')) }".into(),
        format!(
            "try {{ $tok = (Invoke-RestMethod -UseBasicParsing -Headers @{{ Metadata = 'true' }} -Uri ($ep + {})).access_token }} catch {{ Out-Result 0 'error' 'IdentityEndpointUnreachable' ''; exit 0 }}",
            ps_quote(&token_query(resource, client_id))
        ),
        "if (-not $tok) { Out-Result 0 'error' 'NoToken' ''; exit 0 }".into(),
    ];
    if r.expect_oid.is_some() {
        s.extend(steps::ps_claims(resource));
        return s;
    }
    let mut headers = String::from("$h = @{ Authorization = ('Bearer ' + $tok)");
    for (k, v) in &r.headers {
        headers.push_str(&format!("; {} = {}", ps_quote(k), ps_quote(v)));
    }
    headers.push_str(" }");
    s.push(headers);
    let body = match &r.body {
        Some(b) => format!(" -ContentType 'application/json' -Body {}", ps_quote(b)),
        None => String::new(),
    };
    s.extend([
        "$status = 0; $content = ''; $code = ''".to_string(),
        format!(
            "try {{ $resp = Invoke-WebRequest -UseBasicParsing -Method {} -Headers $h -Uri {}{body}; $status = [int]$resp.StatusCode; $content = [string]$resp.Content }}",
            r.method,
            ps_quote(&r.url)
        ),
        "catch { if ($_.Exception.Response) { $status = [int]$_.Exception.Response.StatusCode; try { $code = [string]$_.Exception.Response.Headers['x-ms-error-code'] } catch { } ; $content = [string]$_.ErrorDetails.Message } else { $code = 'ConnectionFailed' } }".into(),
        "$outcome = if ($status -ge 200 -and $status -lt 300) { 'allowed' } elseif ($status -eq 401 -or $status -eq 403) { 'denied' } else { 'error' }".into(),
        "if (-not $code) { $m = [regex]::Matches($content, '\"code\"\\s*:\\s*\"([A-Za-z0-9.]*)\"'); if ($m.Count -gt 0) { $code = $m[$m.Count - 1].Groups[1].Value } }".into(),
        "$code = $code -replace '[^A-Za-z0-9.]', ''".into(),
        "$sha = ''".into(),
    ]);
    if !r.steps.is_empty() {
        s.extend(steps::ps_lines(&r.steps));
    } else if r.expect_sha256.is_some() {
        s.push("if ($outcome -eq 'allowed') { $v = [regex]::Match($content, '\"value\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"').Groups[1].Value; $sha = -join ([System.Security.Cryptography.SHA256]::Create().ComputeHash([System.Text.Encoding]::UTF8.GetBytes($v)) | ForEach-Object { $_.ToString('x2') }); $v = $null }".into());
    }
    s.push("$tok = $null; $h = $null; $content = $null".into());
    s.push("Out-Result $status $outcome $code $sha $steps".into());
    s
}

/// The result line a script printed, out of Run Command's output (`[stdout]` section of the
/// message of the first status).
pub(crate) fn result_line(result: &Value, name: &str) -> Result<Value, String> {
    let statuses = result.get("value").and_then(Value::as_array).cloned().unwrap_or_default();
    let messages: Vec<&str> = statuses.iter().filter_map(|s| s.get("message").and_then(Value::as_str)).collect();
    let want = plain(name);
    for m in &messages {
        for line in m.lines() {
            let line = line.trim();
            if !line.starts_with("{\"idlab_check\"") {
                continue;
            }
            if let Ok(v) = serde_json::from_str::<Value>(line)
                && v.get("idlab_check").and_then(Value::as_str) == Some(want.as_str())
            {
                return Ok(v);
            }
        }
    }
    let said: String = messages.join(" | ").chars().take(400).collect();
    Err(if said.is_empty() {
        "Run Command answered no output".to_string()
    } else {
        format!("the script printed no result line; Run Command said: {said}")
    })
}

/// The verdict on a result line.
pub(crate) fn judge(ask: &Ask<'_, '_>, r: &Remote, line: &Value) -> CheckResult {
    let status = line.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
    let outcome = line.get("outcome").and_then(Value::as_str).unwrap_or("error");
    let code = line.get("code").and_then(Value::as_str).unwrap_or_default();
    let sha = line.get("sha256").and_then(Value::as_str).unwrap_or_default();
    let oid = line.get("oid").and_then(Value::as_str).unwrap_or_default();
    let same = r.expect_sha256.as_ref().is_none_or(|want| want.iter().any(|w| w == sha))
        && r.expect_oid.as_ref().is_none_or(|want| want.iter().any(|w| w.eq_ignore_ascii_case(oid)));
    let pass = match ask.expect {
        Expect::Allowed => outcome == "allowed" && same,
        Expect::Denied => status == 403,
    };
    let steps = line.get("steps").and_then(Value::as_str).unwrap_or_default();
    let note = match (&r.expect_oid, outcome == "allowed") {
        (Some(_), true) if same => format!(" (oid {oid}: as expected)"),
        (Some(_), true) => format!(" (oid {oid}: NOT the expected principal)"),
        _ => String::new(),
    };
    let note = note
        + match (&r.expect_sha256, outcome == "allowed") {
            (Some(_), true) if same && !r.steps.is_empty() => " (the download matches the upload)",
            (Some(_), true) if !r.steps.is_empty() => " (the download DIFFERS from the upload)",
            (Some(_), true) if same => " (the value matches the stored one)",
            (Some(_), true) => " (the value DIFFERS from the stored one)",
            _ => "",
        };
    let detail = format!(
        "{} as {}, on VM {} through Run Command: {}{steps}{note}",
        r.what,
        ask.who,
        ask.vm,
        if status == 0 { format!("no answer ({code})") } else { said(status, code) }
    );
    CheckResult { name: ask.name.to_string(), status: if pass { "pass" } else { "fail" }, detail }
}

/// Why Run Command itself failed (exit 1), as opposed to a check that ran and failed.
#[derive(Debug)]
pub struct RunCommandFailed(pub String);

/// Run one check on its VM through Run Command. `Ok` with the check's result (also `fail`
/// and `skip`); `Err` when Run Command itself failed.
///
/// # Errors
/// Run Command was refused, failed or answered no result line.
pub async fn run_check(
    name: &str,
    c: &crate::model::Check,
    env: &VerifyEnv<'_>,
) -> Result<CheckResult, RunCommandFailed> {
    let p = match super::locate(name, c, env) {
        Ok(p) => p,
        Err(r) => return Ok(r),
    };
    let vm_api = crate::engine::walk::api_for_type("Microsoft.Compute/virtualMachines");
    let vm = match env.client.get(&p.vm_id, vm_api).await {
        Ok(Some(v)) => v,
        Ok(None) => return Ok(fail(name, format!("VM `{}` does not exist: apply the plan first", p.vm))),
        Err(e) => return Err(RunCommandFailed(format!("reading VM `{}`: {e}", p.vm))),
    };
    let os = os_of(&vm);
    let token = Sensitive::new(String::new());
    let ask = Ask {
        name,
        check: c,
        vm: &p.vm,
        target_name: &p.target_name,
        target: &p.target_id,
        token: &token,
        who: &p.who,
        expect: p.expect,
        env,
    };
    let remote = match p.kind.remote(ask).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Ok(CheckResult {
                name: name.into(),
                status: "skip",
                detail: format!("`{}` does not run through Run Command yet", p.kind.name()),
            });
        }
        Err(e) => return Ok(fail(name, e)),
    };
    let resource = p.kind.resource(&p.target_id);
    let script = match os {
        Os::Linux => sh_script(name, resource, p.client_id.as_deref(), &remote),
        Os::Windows => ps_script(name, resource, p.client_id.as_deref(), &remote),
    };
    let body = json!({ "commandId": os.command_id(), "script": script });
    let result = env
        .client
        .post_result(&format!("{}/runCommand", p.vm_id), vm_api, &body)
        .await
        .map_err(|e| RunCommandFailed(format!("Run Command on VM `{}`: {e}", p.vm)))?;
    let line =
        result_line(&result, name).map_err(|e| RunCommandFailed(format!("Run Command on VM `{}`: {e}", p.vm)))?;
    Ok(judge(&ask, &remote, &line))
}

fn fail(name: &str, detail: String) -> CheckResult {
    CheckResult { name: name.to_string(), status: "fail", detail }
}

/// The image family of a VM as ARM shows it: the OS disk's type, else the image publisher.
pub(crate) fn os_of(vm: &Value) -> Os {
    let disk = vm.pointer("/properties/storageProfile/osDisk/osType").and_then(Value::as_str);
    let publisher = vm.pointer("/properties/storageProfile/imageReference/publisher").and_then(Value::as_str);
    match (disk, publisher) {
        (Some(d), _) if d.eq_ignore_ascii_case("windows") => Os::Windows,
        (Some(_), _) => Os::Linux,
        (None, Some(p)) if p.to_ascii_lowercase().contains("windows") => Os::Windows,
        _ => Os::Linux,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "canary-41c9-secret-value";

    fn secret_remote() -> Remote {
        Remote {
            method: "GET",
            url: "https://kv.vault.azure.net/secrets/s?api-version=7.4".into(),
            headers: vec![("x-ms-version", "2021-08-06".into())],
            body: None,
            what: "read secret s".into(),
            expect_sha256: Some(json_sha256(&Sensitive::new(CANARY.to_string()))),
            steps: Vec::new(),
            expect_oid: None,
        }
    }

    #[test]
    fn the_hash_is_of_the_value_as_json_spells_it() {
        // sha256("abc")
        let abc = json_sha256(&Sensitive::new("abc".into()));
        assert_eq!(abc, vec!["ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string()]);
        // A quote and non-ASCII: the minimal spelling first, then the \uXXXX ones.
        let q = json_sha256(&Sensitive::new("a\"é".into()));
        assert_eq!(q.len(), 3);
        assert_eq!(q[0], hex(&Sha256::digest(b"a\\\"\xc3\xa9")));
        assert_eq!(q[1], hex(&Sha256::digest(b"a\\u0022\\u00E9")));
        assert_eq!(q[2], hex(&Sha256::digest(b"a\\u0022\\u00e9")));
    }

    #[test]
    fn the_windows_script_asks_the_identity_endpoint_and_holds_no_secret() {
        let text = ps_script("read-secret", "https://vault.azure.net", Some("cid-1"), &secret_remote()).join("\n");
        assert!(text.contains("'http://169.254.169.254'"), "{text}");
        assert!(text.contains("$env:IDLAB_IMDS_ENDPOINT"), "{text}");
        assert!(
            text.contains(
                "'/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net&client_id=cid-1'"
            ),
            "{text}"
        );
        assert!(text.contains("-Headers @{ Metadata = 'true' }"), "{text}");
        assert!(text.contains("Invoke-WebRequest -UseBasicParsing -Method GET -Headers $h -Uri 'https://kv.vault.azure.net/secrets/s?api-version=7.4'"), "{text}");
        assert!(text.contains("'x-ms-version' = '2021-08-06'"), "{text}");
        assert!(text.contains("SHA256"), "{text}");
        assert!(!text.contains(CANARY), "{text}");
        for h in secret_remote().expect_sha256.unwrap_or_default() {
            assert!(!text.contains(&h), "the script holds the expected hash");
        }
    }

    #[test]
    fn the_windows_result_line_is_the_one_the_parser_reads() {
        let text = ps_script("read-secret", "https://vault.azure.net", None, &secret_remote()).join("\n");
        let f = text.lines().find(|l| l.starts_with("function Out-Result")).expect("Out-Result");
        let start = f.find("(('").expect("start") + 3;
        let end = f.rfind("'))").expect("end");
        // PowerShell's concatenation, done by hand with the values a run would print.
        let line = f[start..end]
            .replace("' + $name + '", "read-secret")
            .replace("' + $status + '", "403")
            .replace("' + $outcome + '", "denied")
            .replace("' + $code + '", "Forbidden")
            .replace("' + $sha + '", "")
            .replace("' + $steps + '", "")
            .replace("' + $oid + '", "");
        let said = json!({ "value": [{ "code": "ProvisioningState/succeeded", "message": format!("Enable succeeded: \n[stdout]\n{line}\n\n[stderr]\n") }] });
        let v = result_line(&said, "read-secret").expect("parsed");
        assert_eq!(
            v,
            json!({"idlab_check": "read-secret", "status": 403, "outcome": "denied", "code": "Forbidden", "sha256": "", "steps": "", "oid": ""})
        );
        assert!(text.ends_with("Out-Result $status $outcome $code $sha $steps"), "{text}");
    }

    #[test]
    fn the_linux_script_holds_no_secret_and_prints_the_result_line() {
        let lines = sh_script("read-secret", "https://vault.azure.net", None, &secret_remote());
        let text = lines.join("\n");
        assert!(text.contains("${IDLAB_IMDS_ENDPOINT:-${IMDS_ENDPOINT:-http://169.254.169.254}}"), "{text}");
        assert!(text.contains("-H 'Metadata: true'"), "{text}");
        assert!(text.contains("sha256sum"), "{text}");
        assert!(!text.contains(CANARY) && !text.contains("jq") && !text.contains("python"), "{text}");
        // Run it where no identity endpoint answers: it still prints its one result line.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&text)
            .env("IDLAB_IMDS_ENDPOINT", "http://127.0.0.1:9")
            .output()
            .expect("sh");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let said = json!({ "value": [{ "message": format!("Enable succeeded: \n[stdout]\n{stdout}\n[stderr]\n") }] });
        let v = result_line(&said, "read-secret").expect("parsed");
        assert_eq!(v["outcome"], "error");
        assert_eq!(v["status"], 0);
        assert_eq!(v["code"], "IdentityEndpointUnreachable");
        assert!(result_line(&said, "other").is_err());
        let none =
            json!({ "value": [{ "message": "Enable failed: boom\n[stdout]\n\n[stderr]\nsh: 1: curl: not found\n" }] });
        assert!(result_line(&none, "read-secret").unwrap_err().contains("curl: not found"));
    }

    #[test]
    fn quoting_keeps_values_inert() {
        assert_eq!(sh_quote("a'b"), "'a'\\''b'");
        assert_eq!(ps_quote("a'b"), "'a''b'");
        assert_eq!(plain("a b\"c"), "a_b_c");
    }

    #[test]
    fn the_os_comes_from_the_disk_then_the_publisher() {
        assert_eq!(os_of(&json!({"properties": {"storageProfile": {"osDisk": {"osType": "Windows"}}}})), Os::Windows);
        assert_eq!(os_of(&json!({"properties": {"storageProfile": {"osDisk": {"osType": "Linux"}}}})), Os::Linux);
        let img =
            json!({"properties": {"storageProfile": {"imageReference": {"publisher": "MicrosoftWindowsServer"}}}});
        assert_eq!(os_of(&img), Os::Windows);
        assert_eq!(Os::Windows.command_id(), "RunPowerShellScript");
        assert_eq!(Os::Linux.command_id(), "RunShellScript");
    }
}
