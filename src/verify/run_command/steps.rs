//! Checks of several calls on the VM (`blob_sas`, `data_lake`): after the check's first call
//! (the gate, whose status decides `expect: denied`), further [`Step`]s, each with the
//! status it must answer. The scripts append `LABEL STATUS [CODE]` per step to the result
//! line's `steps` field and hash a step's answer where asked; a SAS from `listServiceSas`
//! stays in a shell or PowerShell variable and reaches `curl` through a config file, never
//! its arguments or the output.

use super::{ps_quote, sh_quote};

/// How a step authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// The identity's token, as the gate.
    Token,
    /// The `serviceSasToken` of the gate's answer (`listServiceSas`), appended as the query.
    Sas,
}

/// One call after the gate.
pub(crate) struct Step {
    /// For the report (`upload`, `write / refused`); plain characters only.
    pub label: String,
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: Option<&'static str>,
    pub body: Option<String>,
    /// The status the step must answer.
    pub want: u16,
    pub auth: Auth,
    /// Follow one 307 by hand (WebHDFS `CREATE`): the step fails without it.
    pub follow: bool,
    /// Hash the answer's body (the `sha256` of the result line).
    pub hash: bool,
    /// The answer holds a new `serviceSasToken` (another `listServiceSas`): the SAS steps
    /// after this one use it.
    pub new_sas: bool,
}

/// A label as the scripts may print it inside JSON.
fn label(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || " /-_.,()".contains(c) { c } else { '_' }).collect()
}

/// The `sh` lines of the steps; they run while `$outcome` is `allowed` and set it to
/// `error` on the first step that answers otherwise.
pub(crate) fn sh_lines(steps: &[Step]) -> Vec<String> {
    let mut s = vec![
        "ecode() { c=$(sed -n 's/^[xX]-[mM][sS]-[eE][rR][rR][oO][rR]-[cC][oO][dD][eE]: *\\([A-Za-z0-9.]*\\).*/\\1/p' \"$tmp/head\" 2>/dev/null | head -n 1); [ -n \"$c\" ] || c=$(sed -n 's/.*\"\\(code\\|exception\\)\" *: *\"\\([A-Za-z0-9.]*\\)\".*/\\2/p' \"$tmp/body\" 2>/dev/null | head -n 1); printf '%s' \"$c\"; }".to_string(),
        "steps=''".into(),
    ];
    if steps.iter().any(|st| st.auth == Auth::Sas) {
        s.push("sas=''; if [ \"$outcome\" = allowed ]; then sas=$(sed -n 's/.*\"serviceSasToken\" *: *\"\\([^\"]*\\)\".*/\\1/p' \"$tmp/body\" | head -n 1); [ -n \"$sas\" ] || { outcome=error; code=NoSasToken; }; fi".into());
    }
    for st in steps {
        let mut curl = format!("curl -sS -o \"$tmp/body\" -D \"$tmp/head\" -w '%{{http_code}}' -X {}", st.method);
        if st.auth == Auth::Token {
            curl.push_str(" -H @\"$tmp/auth\"");
        }
        for (k, v) in &st.headers {
            curl.push_str(&format!(" -H {}", sh_quote(&format!("{k}: {v}"))));
        }
        if let Some(t) = st.content_type {
            curl.push_str(&format!(" -H {}", sh_quote(&format!("Content-Type: {t}"))));
        }
        if let Some(b) = &st.body {
            curl.push_str(&format!(" --data-binary {}", sh_quote(b)));
        }
        curl.push_str(" -K \"$tmp/url\" 2>\"$tmp/err\"");
        let url = match st.auth {
            Auth::Token => format!("printf 'url = \"%s\"\\n' {} >\"$tmp/url\"", sh_quote(&st.url)),
            Auth::Sas => format!("printf 'url = \"%s?%s\"\\n' {} \"$sas\" >\"$tmp/url\"", sh_quote(&st.url)),
        };
        let mut body = vec![url, format!("s=$({curl}) || s=0"), "red=''".into()];
        if st.follow {
            body.push(format!(
                "if [ \"$s\" = 307 ]; then loc=$(sed -n 's/^[lL][oO][cC][aA][tT][iI][oO][nN]: *//p' \"$tmp/head\" | tr -d '\\r' | head -n 1); printf 'url = \"%s\"\\n' \"$loc\" >\"$tmp/url\"; s=$({curl}) || s=0; red=' through the 307 redirect'; else red=' (not redirected)'; outcome=error; fi"
            ));
        }
        body.push("c=$(ecode); [ \"$s\" != 0 ] || c=ConnectionFailed".into());
        body.push(format!("steps=\"$steps, {}$red: $s${{c:+ $c}}\"", label(&st.label)));
        body.push(format!("[ \"$s\" = {} ] || outcome=error", st.want));
        if st.new_sas {
            body.push(format!(
                "if [ \"$s\" = {} ]; then sas=$(sed -n 's/.*\"serviceSasToken\" *: *\"\\([^\"]*\\)\".*/\\1/p' \"$tmp/body\" | head -n 1); [ -n \"$sas\" ] || {{ outcome=error; code=NoSasToken; }}; fi",
                st.want
            ));
        }
        if st.hash {
            body.push(format!(
                "if [ \"$s\" = {} ]; then sha=$(sha256sum <\"$tmp/body\" | cut -d ' ' -f 1); fi",
                st.want
            ));
        }
        s.push(format!("if [ \"$outcome\" = allowed ]; then\n  {}\nfi", body.join("\n  ")));
    }
    s.push("sas=''; rm -f \"$tmp/url\" \"$tmp/body\"".into());
    s
}

/// The PowerShell lines of the steps, as [`sh_lines`].
pub(crate) fn ps_lines(steps: &[Step]) -> Vec<String> {
    let mut s = vec![
        "function Invoke-Step($method, $uri, $headers, $body, $type, $noRedirect) {".to_string(),
        "  $r = @{ status = 0; code = ''; content = ''; location = '' }; $ev = $null".into(),
        "  $p = @{ UseBasicParsing = $true; Method = $method; Uri = $uri; Headers = $headers }".into(),
        "  if ($null -ne $body) { $p.Body = $body }; if ($type) { $p.ContentType = $type }".into(),
        "  if ($noRedirect) { $p.MaximumRedirection = 0; $p.ErrorAction = 'SilentlyContinue'; $p.ErrorVariable = 'ev' }".into(),
        "  try { $resp = Invoke-WebRequest @p; if ($resp) { $r.status = [int]$resp.StatusCode; $r.content = [string]$resp.Content; $r.location = [string]$resp.Headers['Location'] } elseif ($ev -and $ev[0].Exception.Response) { throw $ev[0] } }".into(),
        "  catch { $e = $_.Exception; if ($e.Response) { $r.status = [int]$e.Response.StatusCode; try { $r.code = [string]$e.Response.Headers['x-ms-error-code'] } catch { }; try { $r.location = [string]$e.Response.Headers.Location } catch { }; $r.content = [string]$_.ErrorDetails.Message } else { $r.code = 'ConnectionFailed' } }".into(),
        "  if (-not $r.code) { $m = [regex]::Match($r.content, '\"(?:code|exception)\"\\s*:\\s*\"([A-Za-z0-9.]*)\"'); if ($m.Success) { $r.code = $m.Groups[1].Value } }".into(),
        "  $r.code = $r.code -replace '[^A-Za-z0-9.]', ''".into(),
        "  $r".into(),
        "}".into(),
        "$steps = ''".into(),
    ];
    if steps.iter().any(|st| st.auth == Auth::Sas) {
        s.push("$sas = ''; if ($outcome -eq 'allowed') { $sas = [regex]::Match($content, '\"serviceSasToken\"\\s*:\\s*\"([^\"]*)\"').Groups[1].Value; if (-not $sas) { $outcome = 'error'; $code = 'NoSasToken' } }".into());
    }
    for st in steps {
        let mut headers = match st.auth {
            Auth::Token => String::from("@{ Authorization = ('Bearer ' + $tok)"),
            Auth::Sas => String::from("@{ "),
        };
        for (i, (k, v)) in st.headers.iter().enumerate() {
            let sep = if i == 0 && st.auth == Auth::Sas { "" } else { "; " };
            headers.push_str(&format!("{sep}{} = {}", ps_quote(k), ps_quote(v)));
        }
        headers.push_str(" }");
        let uri = match st.auth {
            Auth::Token => ps_quote(&st.url),
            Auth::Sas => format!("({} + '?' + $sas)", ps_quote(&st.url)),
        };
        let body = st.body.as_deref().map_or("$null".to_string(), ps_quote);
        let ty = st.content_type.map_or("$null".to_string(), ps_quote);
        let call = |uri: &str, follow: bool| {
            format!("Invoke-Step '{}' {uri} $hs {body} {ty} ${}", st.method, if follow { "true" } else { "false" })
        };
        let mut lines = vec![format!("$hs = {headers}"), format!("$r = {}", call(&uri, st.follow)), "$red = ''".into()];
        if st.follow {
            lines.push(format!(
                "if ($r.status -eq 307 -and $r.location) {{ $r = {}; $red = ' through the 307 redirect' }} else {{ $red = ' (not redirected)'; $outcome = 'error' }}",
                call("$r.location", false)
            ));
        }
        lines.push(format!(
            "$steps += (', {}' + $red + ': ' + $r.status + $(if ($r.code) {{ ' ' + $r.code }} else {{ '' }}))",
            label(&st.label)
        ));
        lines.push(format!("if ($r.status -ne {}) {{ $outcome = 'error' }}", st.want));
        if st.new_sas {
            lines.push(format!("if ($r.status -eq {}) {{ $sas = [regex]::Match($r.content, '\"serviceSasToken\"\\s*:\\s*\"([^\"]*)\"').Groups[1].Value; if (-not $sas) {{ $outcome = 'error'; $code = 'NoSasToken' }} }}", st.want));
        }
        if st.hash {
            lines.push(format!("if ($r.status -eq {}) {{ $sha = -join ([System.Security.Cryptography.SHA256]::Create().ComputeHash([System.Text.Encoding]::UTF8.GetBytes($r.content)) | ForEach-Object {{ $_.ToString('x2') }}) }}", st.want));
        }
        s.push(format!("if ($outcome -eq 'allowed') {{\n  {}\n}}", lines.join("\n  ")));
    }
    s.push("$sas = $null; $hs = $null; $r = $null".into());
    s
}

/// Token-only (`sql_login`): the `sh` lines that read the token's `aud` and `oid` (base64url
/// JSON, decoded with `base64`), check the `aud`, and print the result line with the `oid`.
pub(crate) fn sh_claims(resource: &str) -> Vec<String> {
    vec![
        "rm -f \"$tmp/auth\"".to_string(),
        "p=$(printf '%s' \"$tok\" | cut -d . -f 2 | tr '_-' '/+'); tok=''".into(),
        "case $((${#p} % 4)) in 2) p=\"$p==\" ;; 3) p=\"$p=\" ;; esac".into(),
        "claims=$(printf '%s' \"$p\" | base64 -d 2>/dev/null | tr -d '\\n')".into(),
        "aud=$(printf '%s' \"$claims\" | sed -n 's/.*\"aud\" *: *\"\\([^\"]*\\)\".*/\\1/p')".into(),
        "oid=$(printf '%s' \"$claims\" | sed -n 's/.*\"oid\" *: *\"\\([A-Za-z0-9-]*\\)\".*/\\1/p')".into(),
        format!(
            "if [ \"${{aud%/}}\" = {} ]; then out 200 allowed '' '' '' \"$oid\"; else out 200 error WrongAudience '' '' \"$oid\"; fi",
            sh_quote(resource.trim_end_matches('/'))
        ),
    ]
}

/// Token-only, in PowerShell, as [`sh_claims`].
pub(crate) fn ps_claims(resource: &str) -> Vec<String> {
    vec![
        "$p = $tok.Split('.')[1].Replace('-', '+').Replace('_', '/'); $tok = $null".to_string(),
        "switch ($p.Length % 4) { 2 { $p += '==' } 3 { $p += '=' } }".into(),
        "try { $c = [System.Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($p)) | ConvertFrom-Json } catch { Out-Result 200 'error' 'NotAJwt' '' '' ''; exit 0 }".into(),
        "$oid = ([string]$c.oid) -replace '[^A-Za-z0-9-]', ''".into(),
        format!(
            "if (([string]$c.aud).TrimEnd('/') -eq {}) {{ Out-Result 200 'allowed' '' '' '' $oid }} else {{ Out-Result 200 'error' 'WrongAudience' '' '' $oid }}",
            ps_quote(resource.trim_end_matches('/'))
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::{Remote, ps_script, sh_script};
    use super::*;

    fn sas_remote() -> Remote {
        let step = |label: &str, method, want, auth, follow, hash| Step {
            label: label.into(),
            method,
            url: "https://acct.blob.core.windows.net/c/idlab-verify.txt".into(),
            headers: vec![("x-ms-version", "2023-11-03".into())],
            content_type: None,
            body: Some("idlab verify 1".into()),
            want,
            auth,
            follow,
            hash,
            new_sas: false,
        };
        Remote {
            method: "POST",
            url: "https://management.azure.com/subscriptions/s/x/listServiceSas?api-version=2025-06-01".into(),
            headers: Vec::new(),
            body: Some("{\"signedPermission\":\"rcw\"}".into()),
            what: "listServiceSas on acct".into(),
            expect_sha256: Some(vec!["00".into()]),
            steps: vec![
                step("upload", "PUT", 201, Auth::Sas, false, false),
                step("download", "GET", 200, Auth::Sas, false, true),
                step("upload \"x\"", "PUT", 201, Auth::Token, true, false),
            ],
            expect_oid: None,
        }
    }

    #[test]
    fn the_windows_steps_ask_the_identity_endpoint_and_keep_the_sas_in_a_variable() {
        let text = ps_script("sas", "https://management.azure.com/", None, &sas_remote()).join("\n");
        assert!(
            text.contains(
                "'/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/'"
            ),
            "{text}"
        );
        assert!(text.contains("-Headers @{ Metadata = 'true' }"), "{text}");
        assert!(text.contains("('https://acct.blob.core.windows.net/c/idlab-verify.txt' + '?' + $sas)"), "{text}");
        // The SAS steps carry no bearer token; the token step does.
        assert!(text.contains("$hs = @{ 'x-ms-version' = '2023-11-03' }"), "{text}");
        assert!(
            text.contains("$hs = @{ Authorization = ('Bearer ' + $tok); 'x-ms-version' = '2023-11-03' }"),
            "{text}"
        );
        // The redirect is followed by hand, once; the label is made JSON-safe.
        assert!(text.contains("Invoke-Step 'PUT' $r.location $hs 'idlab verify 1' $null $false"), "{text}");
        assert!(text.contains("', upload _x_'"), "{text}");
        assert!(text.contains("$r.status -eq 200) { $sha = "), "{text}");
        assert!(!text.contains("sig=") && !text.contains("Write-Host"), "{text}");
        // $sas only ever goes into a URI, never into Out-Result.
        for l in text.lines().filter(|l| l.contains("$sas")) {
            assert!(l.contains("$sas = ") || l.contains("+ '?' + $sas)"), "{l}");
        }
        assert!(text.ends_with("Out-Result $status $outcome $code $sha $steps"), "{text}");
    }

    #[test]
    fn the_linux_steps_hand_the_sas_to_curl_through_a_file() {
        let text = sh_script("sas", "https://management.azure.com/", None, &sas_remote()).join("\n");
        assert!(text.contains("-H 'Metadata: true'"), "{text}");
        for l in text.lines().filter(|l| l.contains("$sas")) {
            assert!(l.contains(">\"$tmp/url\"") || l.contains("sas=$(sed") || l.starts_with("sas=''"), "{l}");
        }
        assert!(text.contains("s=$(curl -sS -o \"$tmp/body\" -D \"$tmp/head\" -w '%{http_code}' -X PUT -H 'x-ms-version: 2023-11-03' --data-binary 'idlab verify 1' -K \"$tmp/url\""), "{text}");
        assert!(text.contains("sha=$(sha256sum <\"$tmp/body\""), "{text}");
        assert!(text.ends_with("out \"$status\" \"$outcome\" \"$code\" \"$sha\" \"$steps\""), "{text}");
        // Where no identity endpoint answers, the script still prints its one result line.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&text)
            .env("IDLAB_IMDS_ENDPOINT", "http://127.0.0.1:9")
            .output()
            .expect("sh");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let said = serde_json::json!({ "value": [{ "message": format!("[stdout]\n{stdout}\n[stderr]\n") }] });
        let v = super::super::result_line(&said, "sas").expect("parsed");
        assert_eq!(v["code"], "IdentityEndpointUnreachable");
        assert_eq!(v["steps"], "");
    }

    #[test]
    fn the_token_only_scripts_print_the_oid_never_the_token() {
        let r = Remote { expect_oid: Some(vec!["o".into()]), steps: Vec::new(), expect_sha256: None, ..sas_remote() };
        let ps = ps_script("sign-in", "https://database.windows.net/", Some("cid"), &r).join("\n");
        assert!(ps.contains("resource=https://database.windows.net/&client_id=cid'"), "{ps}");
        assert!(ps.contains("-Headers @{ Metadata = 'true' }"), "{ps}");
        assert!(ps.contains("TrimEnd('/') -eq 'https://database.windows.net')"), "{ps}");
        assert!(!ps.contains("Invoke-WebRequest"), "no call is made: {ps}");
        for l in ps.lines().filter(|l| l.contains("Out-Result ") && !l.contains("Invoke-RestMethod")) {
            let args = l.split("Out-Result ").nth(1).unwrap_or_default();
            assert!(!args.contains("$tok") && !args.contains("$p "), "{l}");
        }
        let sh = sh_script("sign-in", "https://database.windows.net/", None, &r).join("\n");
        assert!(sh.contains("-H 'Metadata: true'") && sh.contains("base64 -d"), "{sh}");
        assert!(sh.contains("= 'https://database.windows.net' ]; then out 200 allowed '' '' '' \"$oid\""), "{sh}");
        assert!(!sh.contains("listServiceSas"), "{sh}");
    }
}
