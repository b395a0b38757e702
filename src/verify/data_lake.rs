//! `data_lake` (tutorial "Access Data Lake Store"): list the folder's store, upload a file
//! into the folder, and check that writing the root is refused — on Data Lake Storage Gen1
//! through WebHDFS, on Gen2 through the `dfs` endpoint.

use async_trait::async_trait;
use serde_json::Value;

use super::run_command::{Auth, Remote, Step};
use super::{Ask, CheckKind, CheckResult, VerifyEnv};
use crate::arm::dfs::Gen2Folder;
use crate::model::{Expect, Sensitive};

pub(crate) struct DataLake;

#[async_trait]
impl CheckKind for DataLake {
    fn name(&self) -> &'static str {
        "data_lake"
    }
    fn resource(&self, target_id: &str) -> &'static str {
        if Gen2Folder::parse(target_id).is_some() {
            "https://storage.azure.com/"
        } else {
            "https://datalake.azure.net/"
        }
    }
    async fn run(&self, ask: Ask<'_, '_>) -> CheckResult {
        data_lake(ask).await
    }
    /// On the VM, the same calls as [`DataLake::run`]: list the root (the gate), upload
    /// `Test1.txt` into the folder, and check that writing the root is refused.
    async fn remote(&self, ask: Ask<'_, '_>) -> Result<Option<Remote>, String> {
        let step =
            |label: String, method, url: String, body: Option<&str>, want, headers: &[(&'static str, &str)]| Step {
                label,
                method,
                url,
                headers: headers.iter().map(|(k, v)| (*k, v.to_string())).collect(),
                content_type: None,
                body: body.map(str::to_string),
                want,
                auth: Auth::Token,
                follow: false,
                hash: false,
                new_sas: false,
            };
        let content = "Test file.";
        if let Some(f) = Gen2Folder::parse(ask.target) {
            let base = format!(
                "{}/{}",
                account_endpoint(ask.env, &f.account_id, "2025-06-01", "/properties/primaryEndpoints/dfs").await?,
                f.filesystem
            );
            let file = format!("{}/Test1.txt", f.path.trim_end_matches('/'));
            let url = format!("{base}{}", crate::arm::percent_encode(&file, b"/"));
            let v = [("x-ms-version", crate::arm::dfs::VERSION)];
            return Ok(Some(Remote {
                method: "GET",
                url: format!("{base}?resource=filesystem&recursive=false"),
                headers: vec![("x-ms-version", crate::arm::dfs::VERSION.to_string())],
                body: None,
                what: "list /".into(),
                expect_sha256: None,
                steps: vec![
                    step(format!("create {file}"), "PUT", format!("{url}?resource=file"), Some(""), 201, &v),
                    step("append".into(), "PATCH", format!("{url}?action=append&position=0"), Some(content), 202, &v),
                    step(
                        "flush".into(),
                        "PATCH",
                        format!("{url}?action=flush&position={}", content.len()),
                        Some(""),
                        200,
                        &v,
                    ),
                    step("write / refused".into(), "PUT", format!("{base}/Test1.txt?resource=file"), Some(""), 403, &v),
                ],
                expect_oid: None,
            }));
        }
        let Some(f) = crate::arm::datalake::FolderId::parse(ask.target) else {
            return Err(format!("{} is not a Data Lake folder", ask.target));
        };
        let base = format!(
            "https://{}/webhdfs/v1",
            account_endpoint(ask.env, &f.account_id, "2016-11-01", "/properties/endpoint").await?
        );
        let file = format!("{}/Test1.txt", f.path.trim_end_matches('/'));
        let url = format!("{base}{}?op=CREATE&overwrite=true", crate::arm::percent_encode(&file, b"/"));
        let upload = Step { follow: true, ..step(format!("upload {file}"), "PUT", url, Some(content), 201, &[]) };
        let root = format!("{base}/Test1.txt?op=CREATE&write=true&overwrite=true");
        Ok(Some(Remote {
            method: "GET",
            url: format!("{base}/?op=LISTSTATUS"),
            headers: Vec::new(),
            body: None,
            what: "list /".into(),
            expect_sha256: None,
            steps: vec![upload, step("write / refused".into(), "PUT", root, Some("no"), 403, &[])],
            expect_oid: None,
        }))
    }
}

/// An account's endpoint property (at `pointer`, no trailing `/`), read as the operator.
async fn account_endpoint(env: &VerifyEnv<'_>, account_id: &str, api: &str, pointer: &str) -> Result<String, String> {
    match env.client.get(account_id, api).await {
        Ok(Some(a)) => a
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(|e| e.trim_end_matches('/').to_string())
            .ok_or_else(|| format!("{account_id} has no endpoint")),
        Ok(None) => Err(format!("{account_id} does not exist: apply the plan first")),
        Err(e) => Err(format!("reading {account_id}: {e}")),
    }
}

/// One WebHDFS request as the identity: (status, `RemoteException` name, final URL, body).
async fn webhdfs(
    env: &VerifyEnv<'_>,
    token: &Sensitive<String>,
    method: reqwest::Method,
    url: &str,
    body: Option<Vec<u8>>,
) -> Result<(u16, String, String, Value), String> {
    // HTTP clients here do not follow redirects: a 307 (CREATE, OPEN) is followed once, by
    // hand, as the tutorial's second call does, so the check sees that it happened.
    let mut target = url.to_string();
    for _ in 0..2 {
        let mut r = env.client.request(method.clone(), &target).bearer(token).private_url();
        if let Some(b) = &body {
            r = r.body(b.clone());
        }
        let r = r
            .send()
            .await
            .map_err(|e| format!("{method} {}: {}", target.split('?').next().unwrap_or(&target), e.message))?;
        if r.status == 307
            && target == url
            && let Some(next) = r.header("location")
        {
            target = next.to_string();
            continue;
        }
        let status = r.status;
        let body = r.json();
        let exception =
            body.pointer("/RemoteException/exception").and_then(Value::as_str).unwrap_or_default().to_string();
        return Ok((status, exception, target, body));
    }
    Err(format!("{method} {}: redirected more than once", url.split('?').next().unwrap_or(url)))
}

/// `data_lake` (tutorial "Access Data Lake Store"): with the identity's token for
/// `https://datalake.azure.net/`, list the store's root, upload `Test1.txt` into the folder
/// through `CREATE`'s 307 redirect (followed by hand to `write=true`), and check that
/// writing the root is refused (403). The uploaded file stays, as in the tutorial.
async fn data_lake(ask: Ask<'_, '_>) -> CheckResult {
    if let Some(g) = Gen2Folder::parse(ask.target) {
        return data_lake_gen2(ask, g).await;
    }
    let Ask { name, target: folder_id, token, who, expect, env, .. } = ask;
    let fail = |d: String| CheckResult { name: name.to_string(), status: "fail", detail: d };
    let Some(f) = crate::arm::datalake::FolderId::parse(folder_id) else {
        return fail(format!("{folder_id} is not a Data Lake Gen1 folder"));
    };
    let endpoint = match account_endpoint(env, &f.account_id, "2016-11-01", "/properties/endpoint").await {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let base = format!("https://{endpoint}/webhdfs/v1");
    let list = match webhdfs(env, token, reqwest::Method::GET, &format!("{base}/?op=LISTSTATUS"), None).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let entries = list.3.pointer("/FileStatuses/FileStatus").and_then(Value::as_array).map_or(0, Vec::len);
    let mut steps = vec![format!(
        "list / as {who}: {}{}",
        list.0,
        if list.1.is_empty() { String::new() } else { format!(" {}", list.1) }
    )];
    if expect == Expect::Denied {
        let pass = list.0 == 403;
        return CheckResult { name: name.into(), status: if pass { "pass" } else { "fail" }, detail: steps.join(", ") };
    }
    if list.0 != 200 {
        return fail(steps.join(", "));
    }
    steps[0].push_str(&format!(" ({entries} entries)"));
    let folder = f.path.trim_end_matches('/');
    let file = format!("{folder}/Test1.txt");
    let content = b"Test file.".to_vec();
    let url = format!("{base}{}?op=CREATE&overwrite=true", crate::arm::percent_encode(&file, b"/"));
    let put = match webhdfs(env, token, reqwest::Method::PUT, &url, Some(content)).await {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    // The upload was redirected: the URL that answered is the 307's `write=true` one.
    let redirected = put.2 != url && put.2.contains("write=true");
    steps.push(format!(
        "upload {file} {}{}{}",
        if redirected { "through the 307 redirect: " } else { "" },
        put.0,
        if put.1.is_empty() { String::new() } else { format!(" {}", put.1) }
    ));
    if put.0 != 201 || !redirected {
        return fail(steps.join(", "));
    }
    let root = match webhdfs(
        env,
        token,
        reqwest::Method::PUT,
        &format!("{base}/Test1.txt?op=CREATE&write=true&overwrite=true"),
        Some(b"no".to_vec()),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    steps.push(format!("write / refused: {} {}", root.0, root.1));
    if root.0 != 403 {
        return fail(format!("{}; the identity could write the root", steps.join(", ")));
    }
    CheckResult { name: name.into(), status: "pass", detail: steps.join(", ") }
}

/// One `dfs` request as the identity: (status, `x-ms-error-code`, JSON body).
async fn dfs(
    env: &VerifyEnv<'_>,
    token: &Sensitive<String>,
    method: reqwest::Method,
    url: &str,
    body: Vec<u8>,
) -> Result<(u16, String, Value), String> {
    let r = env
        .client
        .request(method.clone(), url)
        .bearer(token)
        .private_url()
        .header("x-ms-version", crate::arm::dfs::VERSION)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{method} {}: {}", url.split('?').next().unwrap_or(url), e.message))?;
    let code = r.header("x-ms-error-code").unwrap_or_default().to_string();
    Ok((r.status, code, r.json()))
}

/// `data_lake` on Data Lake Storage Gen2: with the identity's token for
/// `https://storage.azure.com/`, list the file system's root, upload `Test1.txt` into the
/// folder (create, append, flush), and check that writing the root is refused (403). The
/// uploaded file stays, as in the tutorial.
async fn data_lake_gen2(ask: Ask<'_, '_>, f: Gen2Folder) -> CheckResult {
    let Ask { name, token, who, expect, env, .. } = ask;
    let fail = |d: String| CheckResult { name: name.to_string(), status: "fail", detail: d };
    let endpoint = match account_endpoint(env, &f.account_id, "2025-06-01", "/properties/primaryEndpoints/dfs").await {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let base = format!("{endpoint}/{}", f.filesystem);
    let said = |(status, code, _): &(u16, String, Value)| {
        if code.is_empty() { status.to_string() } else { format!("{status} {code}") }
    };
    let list =
        match dfs(env, token, reqwest::Method::GET, &format!("{base}?resource=filesystem&recursive=false"), Vec::new())
            .await
        {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
    let mut steps = vec![format!("list / as {who}: {}", said(&list))];
    if expect == Expect::Denied {
        let pass = list.0 == 403;
        return CheckResult { name: name.into(), status: if pass { "pass" } else { "fail" }, detail: steps.join(", ") };
    }
    if list.0 != 200 {
        return fail(steps.join(", "));
    }
    let paths = list.2.get("paths").and_then(Value::as_array).map_or(0, Vec::len);
    steps[0].push_str(&format!(" ({paths} paths)"));
    let file = format!("{}/Test1.txt", f.path.trim_end_matches('/'));
    let url = format!("{base}{}", crate::arm::percent_encode(&file, b"/"));
    let content = b"Test file.".to_vec();
    let len = content.len();
    let calls = [
        (reqwest::Method::PUT, format!("{url}?resource=file"), Vec::new(), 201),
        (reqwest::Method::PATCH, format!("{url}?action=append&position=0"), content, 202),
        (reqwest::Method::PATCH, format!("{url}?action=flush&position={len}"), Vec::new(), 200),
    ];
    let mut upload = Vec::new();
    for (method, u, body, want) in calls {
        let r = match dfs(env, token, method, &u, body).await {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        upload.push(said(&r));
        if r.0 != want {
            steps.push(format!("upload {file}: {}", upload.join(", ")));
            return fail(steps.join(", "));
        }
    }
    steps.push(format!("upload {file} (create, append, flush): {}", upload.join(", ")));
    let root = match dfs(env, token, reqwest::Method::PUT, &format!("{base}/Test1.txt?resource=file"), Vec::new()).await
    {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    steps.push(format!("write / refused: {}", said(&root)));
    if root.0 != 403 {
        return fail(format!("{}; the identity could write the root", steps.join(", ")));
    }
    CheckResult { name: name.into(), status: "pass", detail: steps.join(", ") }
}
