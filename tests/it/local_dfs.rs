//! The local cloud's `dfs` data plane (Data Lake Storage Gen2 on a hierarchical-namespace
//! storage account): an RBAC × ACL × operation matrix with Azure's status and error codes,
//! the upload flow (create, append, flush), ACL reads and writes (whole, recursive), the
//! blob view of paths, the protocol's refusals, and durability.

use serde_json::{Value, json};

use crate::lab::Lab;
use crate::local_datalake::{Hdfs, client, new_principal, token};

const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";
const VERSION: &str = "2023-11-03";

/// One dfs request with `x-ms-version` and the given extra headers.
pub(crate) fn dfs(
    lab: &Lab,
    c: &reqwest::Client,
    token: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Hdfs {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    lab.rt.block_on(async {
        let mut r = c.request(m, url).bearer_auth(token).body(body.to_vec());
        if !headers.iter().any(|(k, _)| *k == "x-ms-version") {
            r = r.header("x-ms-version", VERSION);
        }
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let resp = r.send().await.expect("dfs answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap_or_default().to_vec();
        Hdfs { status, headers, bytes }
    })
}

fn ok(r: &Hdfs, what: &str) {
    assert!(r.status < 300, "{what}: {} {}", r.status, String::from_utf8_lossy(&r.bytes));
}

/// A group, a storage account (`hns` or not) through its long-running create, and a
/// container `fs`; answers the account id and its `dfs` endpoint.
pub fn hns_account(lab: &Lab, name: &str, hns: bool) -> (String, String) {
    let (id, done) = crate::local_blob::storage_account(lab, "gen2", name, json!({"isHnsEnabled": hns}));
    let endpoints = &done["properties"]["primaryEndpoints"];
    let dfs = endpoints["dfs"].as_str().expect("dfs endpoint").to_string();
    assert!(dfs.starts_with("https://127.0.0.1:") && dfs.ends_with(&format!("/{name}/")), "{dfs}");
    assert_ne!(endpoints["blob"], endpoints["dfs"], "dfs has its own listener");
    let c =
        lab.op("PUT", &format!("{id}/blobServices/default/containers/lake?api-version=2025-06-01"), Some(&json!({})));
    assert!(c.status < 300, "{}", c.body);
    (id, dfs)
}

/// Create a file with `content` through create, append and flush.
fn upload(lab: &Lab, c: &reqwest::Client, tok: &str, url: &str, content: &[u8]) {
    ok(&dfs(lab, c, tok, "PUT", &format!("{url}?resource=file"), &[], b""), url);
    let append = dfs(lab, c, tok, "PATCH", &format!("{url}?action=append&position=0"), &[], content);
    assert_eq!(append.status, 202, "{url}: {}", String::from_utf8_lossy(&append.bytes));
    let flush = dfs(lab, c, tok, "PATCH", &format!("{url}?action=flush&position={}", content.len()), &[], b"");
    assert_eq!(flush.status, 200, "{url}: {}", String::from_utf8_lossy(&flush.bytes));
}

fn code(r: &Hdfs) -> String {
    r.header("x-ms-error-code")
}

#[test]
fn rbac_then_acls_decide_each_operation() {
    let lab = Lab::start();
    let c = client(&lab);
    let (account_id, base) = hns_account(&lab, "gen2matrix", true);
    let container = format!("{account_id}/blobServices/default/containers/lake");
    let other_container = format!("{account_id}/blobServices/default/containers/other");
    assert!(lab.op("PUT", &format!("{other_container}?api-version=2025-06-01"), Some(&json!({}))).status < 300);
    let fs = format!("{base}lake");
    // The admin (Storage Blob Data Owner on the file system) builds /dir and one file per case.
    let (ac, asec, _) = new_principal(&lab, &[("Storage Blob Data Owner", &container)]);
    let admin = token(&lab, &ac, &asec, STORAGE_SCOPE);
    ok(&dfs(&lab, &c, &admin, "PUT", &format!("{fs}/dir?resource=directory"), &[], b""), "mkdir");

    const APM: &str = "AuthorizationPermissionMismatch";
    const OWNER: &str = "Storage Blob Data Owner";
    const CONTRIB: &str = "Storage Blob Data Contributor";
    const READER: &str = "Storage Blob Data Reader";
    // (case, role, role scope: c = the file system, a = the account, o = another file system,
    //  ACL entry on /, on /dir, on /dir/f{i}.txt, method, target, extra header, status, code)
    type Case = (
        &'static str,
        &'static str,
        char,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        (&'static str, &'static str),
        u16,
        &'static str,
    );
    const NO: (&str, &str) = ("", "");
    let cases: &[Case] = &[
        ("no role, no entry: list /", "", 'c', "", "", "", "GET", "?resource=filesystem&recursive=false", NO, 403, APM),
        (
            "no role, r-x on /: list /",
            "",
            'c',
            "r-x",
            "",
            "",
            "GET",
            "?resource=filesystem&recursive=false",
            NO,
            200,
            "",
        ),
        (
            "no role, --x on /: list /",
            "",
            'c',
            "--x",
            "",
            "",
            "GET",
            "?resource=filesystem&recursive=false",
            NO,
            403,
            APM,
        ),
        (
            "no role, x on /, r-x on dir: list dir",
            "",
            'c',
            "--x",
            "r-x",
            "",
            "GET",
            "?resource=filesystem&recursive=false&directory=dir",
            NO,
            200,
            "",
        ),
        (
            "no role, no x on /: list dir",
            "",
            'c',
            "",
            "r-x",
            "",
            "GET",
            "?resource=filesystem&recursive=false&directory=dir",
            NO,
            403,
            APM,
        ),
        ("no role, r-- on the file: read", "", 'c', "--x", "--x", "r--", "GET", "/dir/f{i}.txt", NO, 200, ""),
        ("no role, no entry on the file: read", "", 'c', "--x", "--x", "", "GET", "/dir/f{i}.txt", NO, 403, APM),
        ("no role, no x on dir: read", "", 'c', "--x", "r--", "r--", "GET", "/dir/f{i}.txt", NO, 403, APM),
        (
            "no role, -wx on dir: create a file",
            "",
            'c',
            "--x",
            "-wx",
            "",
            "PUT",
            "/dir/new{i}.txt?resource=file",
            NO,
            201,
            "",
        ),
        (
            "no role, r-x on dir: create a file",
            "",
            'c',
            "--x",
            "r-x",
            "",
            "PUT",
            "/dir/new{i}.txt?resource=file",
            NO,
            403,
            APM,
        ),
        ("no role, -wx on dir: mkdir", "", 'c', "--x", "-wx", "", "PUT", "/dir/sub{i}?resource=directory", NO, 201, ""),
        (
            "no role, r-x on /: write the root",
            "",
            'c',
            "r-x",
            "",
            "",
            "PUT",
            "/Test{i}.txt?resource=file",
            NO,
            403,
            APM,
        ),
        ("no role, rwx on /: write the root", "", 'c', "rwx", "", "", "PUT", "/Test{i}.txt?resource=file", NO, 201, ""),
        (
            "no role, -w- on the file: append",
            "",
            'c',
            "--x",
            "--x",
            "-w-",
            "PATCH",
            "/dir/f{i}.txt?action=append&position=5",
            NO,
            202,
            "",
        ),
        (
            "no role, r-- on the file: append",
            "",
            'c',
            "--x",
            "--x",
            "r--",
            "PATCH",
            "/dir/f{i}.txt?action=append&position=5",
            NO,
            403,
            APM,
        ),
        (
            "no role, -w- on the file: flush",
            "",
            'c',
            "--x",
            "--x",
            "-w-",
            "PATCH",
            "/dir/f{i}.txt?action=flush&position=5",
            NO,
            200,
            "",
        ),
        ("no role, -wx on dir: delete a file", "", 'c', "--x", "-wx", "", "DELETE", "/dir/f{i}.txt", NO, 200, ""),
        ("no role, r-x on dir: delete a file", "", 'c', "--x", "r-x", "rwx", "DELETE", "/dir/f{i}.txt", NO, 403, APM),
        (
            "no role, x on /: get the ACL of dir",
            "",
            'c',
            "--x",
            "",
            "",
            "HEAD",
            "/dir?action=getAccessControl",
            NO,
            200,
            "",
        ),
        (
            "no role, no x on /: get the ACL of dir",
            "",
            'c',
            "",
            "",
            "",
            "HEAD",
            "/dir?action=getAccessControl",
            NO,
            403,
            APM,
        ),
        (
            "no role, rwx on dir: set the ACL of dir",
            "",
            'c',
            "--x",
            "rwx",
            "",
            "PATCH",
            "/dir?action=setAccessControl",
            ("x-ms-acl", "user::rwx,group::r-x,other::rwx"),
            403,
            APM,
        ),
        ("Reader: list /", READER, 'c', "", "", "", "GET", "?resource=filesystem&recursive=true", NO, 200, ""),
        ("Reader: read", READER, 'c', "", "", "", "GET", "/dir/f{i}.txt", NO, 200, ""),
        ("Reader: create a file", READER, 'c', "", "", "", "PUT", "/dir/new{i}.txt?resource=file", NO, 403, APM),
        (
            "Reader with -wx on dir: create a file",
            READER,
            'c',
            "--x",
            "-wx",
            "",
            "PUT",
            "/dir/new{i}.txt?resource=file",
            NO,
            201,
            "",
        ),
        ("Reader: read a missing file", READER, 'c', "", "", "", "GET", "/dir/missing{i}", NO, 404, "PathNotFound"),
        (
            "Reader of another file system: list /",
            READER,
            'o',
            "",
            "",
            "",
            "GET",
            "?resource=filesystem&recursive=false",
            NO,
            403,
            APM,
        ),
        ("Contributor: write the root", CONTRIB, 'c', "", "", "", "PUT", "/Test{i}.txt?resource=file", NO, 201, ""),
        ("Contributor: read", CONTRIB, 'c', "", "", "", "GET", "/dir/f{i}.txt", NO, 200, ""),
        ("Contributor: delete a file", CONTRIB, 'c', "", "", "", "DELETE", "/dir/f{i}.txt", NO, 200, ""),
        (
            "Contributor: set the ACL of dir",
            CONTRIB,
            'c',
            "",
            "",
            "",
            "PATCH",
            "/dir?action=setAccessControl",
            ("x-ms-acl", "user::rwx,group::r-x,other::rwx"),
            403,
            APM,
        ),
        (
            "Contributor: append at a wrong position",
            CONTRIB,
            'c',
            "",
            "",
            "",
            "PATCH",
            "/dir/f{i}.txt?action=append&position=9",
            NO,
            400,
            "InvalidFlushPosition",
        ),
        (
            "Contributor: flush at a wrong position",
            CONTRIB,
            'c',
            "",
            "",
            "",
            "PATCH",
            "/dir/f{i}.txt?action=flush&position=2",
            NO,
            400,
            "InvalidFlushPosition",
        ),
        (
            "Contributor: delete a non-empty directory",
            CONTRIB,
            'c',
            "",
            "",
            "",
            "DELETE",
            "/dir?recursive=false",
            NO,
            409,
            "DirectoryNotEmpty",
        ),
        (
            "Contributor: a directory over a file",
            CONTRIB,
            'c',
            "",
            "",
            "",
            "PUT",
            "/dir/f{i}.txt?resource=directory",
            NO,
            409,
            "PathConflict",
        ),
        (
            "Contributor: create with If-None-Match *",
            CONTRIB,
            'c',
            "",
            "",
            "",
            "PUT",
            "/dir/f{i}.txt?resource=file",
            ("if-none-match", "*"),
            409,
            "PathAlreadyExists",
        ),
        (
            "Owner: set the ACL of dir",
            OWNER,
            'c',
            "",
            "",
            "",
            "PATCH",
            "/dir?action=setAccessControl",
            ("x-ms-acl", "user::rwx,group::r-x,other::---"),
            200,
            "",
        ),
        (
            "Owner: change the owner of a file",
            OWNER,
            'c',
            "",
            "",
            "",
            "PATCH",
            "/dir/f{i}.txt?action=setAccessControl",
            ("x-ms-owner", "someone-else"),
            200,
            "",
        ),
        (
            "Contributor: change the owner of a file",
            CONTRIB,
            'c',
            "",
            "",
            "",
            "PATCH",
            "/dir/f{i}.txt?action=setAccessControl",
            ("x-ms-owner", "someone-else"),
            403,
            APM,
        ),
        (
            "Owner of the account: get the ACL of /",
            OWNER,
            'a',
            "",
            "",
            "",
            "HEAD",
            "/?action=getAccessControl",
            NO,
            200,
            "",
        ),
    ];
    let mut wrong = Vec::new();
    for (i, (name, role, scope, root_e, dir_e, file_e, method, target, extra, status, want)) in cases.iter().enumerate()
    {
        upload(&lab, &c, &admin, &format!("{fs}/dir/f{i}.txt"), b"hello");
        let scope = match scope {
            'a' => account_id.clone(),
            'o' => other_container.clone(),
            _ => container.clone(),
        };
        let roles: Vec<(&str, &str)> = if role.is_empty() { Vec::new() } else { vec![(*role, scope.as_str())] };
        let (client_id, secret, oid) = new_principal(&lab, &roles);
        let tok = token(&lab, &client_id, &secret, STORAGE_SCOPE);
        for (path, perms) in [("", root_e), ("/dir", dir_e), (&format!("/dir/f{i}.txt"), file_e)] {
            if !perms.is_empty() {
                grant(&lab, &c, &admin, &format!("{fs}{path}/"), &format!("user:{oid}:{perms}"));
            }
        }
        let target = target.replace("{i}", &i.to_string());
        let headers: Vec<(&str, &str)> = if extra.0.is_empty() { Vec::new() } else { vec![*extra] };
        let r = dfs(&lab, &c, &tok, method, &format!("{fs}{target}"), &headers, b"more");
        if r.status != *status || code(&r) != *want {
            wrong.push(format!(
                "{name}: got {} {:?}, want {status} {want:?}: {}",
                r.status,
                code(&r),
                String::from_utf8_lossy(&r.bytes)
            ));
        }
        // Errors carry the code twice: the header and the JSON body (no body on HEAD).
        if r.status >= 400 && *method != "HEAD" && r.json()["error"]["code"] != json!(want) {
            wrong.push(format!("{name}: body {}", String::from_utf8_lossy(&r.bytes)));
        }
    }
    assert!(wrong.is_empty(), "RBAC × ACL matrix:\n{}", wrong.join("\n"));
}

/// Merge one entry into a path's ACL the way idlab's client does: read it, add the entry,
/// set the whole list back (masks left for the service to recompute).
fn grant(lab: &Lab, c: &reqwest::Client, admin: &str, url: &str, entry: &str) {
    let url = url.trim_end_matches('/');
    let url = if url.ends_with("/lake") { format!("{url}/") } else { url.to_string() };
    let got = dfs(lab, c, admin, "HEAD", &format!("{url}?action=getAccessControl"), &[], b"");
    assert_eq!(got.status, 200, "{url}");
    let mut acl: Vec<String> =
        got.header("x-ms-acl").split(',').filter(|e| !e.contains("mask:")).map(str::to_string).collect();
    acl.push(entry.to_string());
    let set =
        dfs(lab, c, admin, "PATCH", &format!("{url}?action=setAccessControl"), &[("x-ms-acl", &acl.join(","))], b"");
    assert_eq!(set.status, 200, "{url}: {}", String::from_utf8_lossy(&set.bytes));
}

#[test]
fn uploads_acls_blob_view_refusals_and_restart() {
    let lab = Lab::start();
    let c = client(&lab);
    let (account_id, base) = hns_account(&lab, "gen2flow", true);
    let container = format!("{account_id}/blobServices/default/containers/lake");
    let fs = format!("{base}lake");
    let (ac, asec, admin_oid) = new_principal(&lab, &[("Storage Blob Data Owner", &account_id)]);
    let admin = token(&lab, &ac, &asec, STORAGE_SCOPE);
    let (vc, vsec, vm) = new_principal(&lab, &[]);
    let vm_tok = token(&lab, &vc, &vsec, STORAGE_SCOPE);

    // The root starts as the service makes it: $superuser, rwxr-x---.
    let root = dfs(&lab, &c, &admin, "HEAD", &format!("{fs}/?action=getAccessControl"), &[], b"");
    assert_eq!(root.status, 200);
    assert_eq!((root.header("x-ms-owner"), root.header("x-ms-permissions")), ("$superuser".into(), "rwxr-x---".into()));
    assert_eq!(root.header("x-ms-acl"), "user::rwx,group::r-x,other::---");
    // The tutorial's grants: r-x on /, rwx access + default on TestFolder.
    ok(&dfs(&lab, &c, &admin, "PUT", &format!("{fs}/TestFolder?resource=directory"), &[], b""), "mkdir");
    grant(&lab, &c, &admin, &format!("{fs}/"), &format!("user:{vm}:r-x"));
    grant(&lab, &c, &admin, &format!("{fs}/TestFolder"), &format!("user:{vm}:rwx,default:user:{vm}:rwx"));
    let folder = dfs(&lab, &c, &admin, "HEAD", &format!("{fs}/TestFolder?action=getAccessControl"), &[], b"");
    let acl = folder.header("x-ms-acl");
    assert!(acl.contains(&format!("user:{vm}:rwx")) && acl.contains(&format!("default:user:{vm}:rwx")), "{acl}");
    assert!(acl.contains("mask::rwx") && folder.header("x-ms-permissions").ends_with('+'), "{acl}");
    assert_eq!(folder.header("x-ms-owner"), admin_oid, "the creator owns what it creates");

    // The VM lists the root, uploads into TestFolder, and cannot write the root.
    let list = dfs(&lab, &c, &vm_tok, "GET", &format!("{fs}?resource=filesystem&recursive=false"), &[], b"");
    assert_eq!(list.status, 200, "{}", String::from_utf8_lossy(&list.bytes));
    assert_eq!(list.json()["paths"][0]["name"], "TestFolder");
    assert_eq!(list.json()["paths"][0]["isDirectory"], "true");
    upload(&lab, &c, &vm_tok, &format!("{fs}/TestFolder/Test1.txt"), b"Test file.");
    let read = dfs(&lab, &c, &vm_tok, "GET", &format!("{fs}/TestFolder/Test1.txt"), &[], b"");
    assert_eq!((read.status, read.bytes.as_slice()), (200, b"Test file.".as_slice()));
    let part =
        dfs(&lab, &c, &vm_tok, "GET", &format!("{fs}/TestFolder/Test1.txt"), &[("x-ms-range", "bytes=5-8")], b"");
    assert_eq!(
        (part.status, part.bytes.as_slice(), part.header("content-range")),
        (206, b"file".as_slice(), "bytes 5-8/10".into())
    );
    let root_write = dfs(&lab, &c, &vm_tok, "PUT", &format!("{fs}/Test1.txt?resource=file"), &[], b"");
    assert_eq!((root_write.status, code(&root_write).as_str()), (403, "AuthorizationPermissionMismatch"));
    // The new file inherited the folder's default ACL and is the VM's.
    let child = dfs(&lab, &c, &admin, "HEAD", &format!("{fs}/TestFolder/Test1.txt?action=getAccessControl"), &[], b"");
    assert_eq!(child.header("x-ms-owner"), vm);
    assert!(child.header("x-ms-acl").contains(&format!("user:{vm}:rw")), "{}", child.header("x-ms-acl"));
    // Appended bytes count only once flushed; properties tell a file from a directory.
    let url = format!("{fs}/TestFolder/Test1.txt");
    assert_eq!(dfs(&lab, &c, &vm_tok, "PATCH", &format!("{url}?action=append&position=10"), &[], b"!!").status, 202);
    let props = dfs(&lab, &c, &vm_tok, "HEAD", &url, &[], b"");
    assert_eq!((props.header("x-ms-resource-type"), props.header("content-length")), ("file".into(), "10".into()));

    // Every path is a blob too: the Reader reads the file through the blob endpoint, and a
    // directory is an empty blob marked hdi_isfolder.
    let (blob_tok, _) = lab.principal_for(&[("Storage Blob Data Reader", &container)], STORAGE_SCOPE);
    let blob_base = lab.op("GET", &format!("{account_id}?api-version=2025-06-01"), None).body["properties"]["primaryEndpoints"]["blob"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let as_blob = dfs(&lab, &c, &blob_tok, "GET", &format!("{blob_base}lake/TestFolder/Test1.txt"), &[], b"");
    assert_eq!((as_blob.status, as_blob.bytes.as_slice()), (200, b"Test file.".as_slice()));
    let marker = dfs(&lab, &c, &blob_tok, "GET", &format!("{blob_base}lake/TestFolder"), &[], b"");
    assert_eq!((marker.status, marker.header("x-ms-meta-hdi_isfolder")), (200, "true".into()));

    // Recursive ACL changes count what they changed; remove takes entries out again.
    let rec = dfs(
        &lab,
        &c,
        &admin,
        "PATCH",
        &format!("{fs}/TestFolder?action=setAccessControlRecursive&mode=modify"),
        &[("x-ms-acl", "user:reader:r-x,default:user:reader:r-x")],
        b"",
    );
    assert_eq!(rec.status, 200, "{}", String::from_utf8_lossy(&rec.bytes));
    assert_eq!(
        rec.json(),
        json!({"directoriesSuccessful": 1, "filesSuccessful": 1, "failureCount": 0, "failedEntries": []})
    );
    let file_acl =
        dfs(&lab, &c, &admin, "HEAD", &format!("{url}?action=getAccessControl"), &[], b"").header("x-ms-acl");
    assert!(file_acl.contains("user:reader:r-x") && !file_acl.contains("default:"), "{file_acl}");
    // The VM owns the file but not the folder: its recursive change fails on the folder.
    let partial = dfs(
        &lab,
        &c,
        &vm_tok,
        "PATCH",
        &format!("{fs}/TestFolder?action=setAccessControlRecursive&mode=remove"),
        &[("x-ms-acl", "user:reader")],
        b"",
    );
    assert_eq!(partial.status, 200);
    assert_eq!(
        (partial.json()["filesSuccessful"].clone(), partial.json()["failureCount"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(partial.json()["failedEntries"][0]["name"], "TestFolder");

    // Refusals: no token, no version, an old version, a Gen1 token, a missing file system,
    // a flat-namespace account, a bad ACL.
    let plain = lab
        .rt
        .block_on(c.get(format!("{fs}?resource=filesystem&recursive=false")).header("x-ms-version", VERSION).send())
        .expect("answer");
    assert_eq!(plain.status().as_u16(), 401);
    assert!(plain.headers().get("www-authenticate").is_some());
    let unversioned = lab
        .rt
        .block_on(c.get(format!("{fs}?resource=filesystem&recursive=false")).bearer_auth(&admin).send())
        .expect("answer");
    assert_eq!(unversioned.status().as_u16(), 403);
    let old = dfs(
        &lab,
        &c,
        &admin,
        "GET",
        &format!("{fs}?resource=filesystem&recursive=false"),
        &[("x-ms-version", "2017-11-09")],
        b"",
    );
    assert_eq!((old.status, code(&old).as_str()), (400, "InvalidHeaderValue"));
    let (gc, gsec, _) = new_principal(&lab, &[("Storage Blob Data Owner", &account_id)]);
    let gen1 = token(&lab, &gc, &gsec, "https://datalake.azure.net//.default");
    let wrong_aud = dfs(&lab, &c, &gen1, "GET", &format!("{fs}?resource=filesystem&recursive=false"), &[], b"");
    assert_eq!((wrong_aud.status, code(&wrong_aud).as_str()), (401, "InvalidAuthenticationInfo"));
    let missing = dfs(&lab, &c, &admin, "GET", &format!("{base}nolake?resource=filesystem&recursive=false"), &[], b"");
    assert_eq!((missing.status, code(&missing).as_str()), (404, "FilesystemNotFound"));
    let (_, flat) = hns_account(&lab, "gen2flat", false);
    let flat_r = dfs(&lab, &c, &admin, "HEAD", &format!("{flat}lake/?action=getAccessControl"), &[], b"");
    assert_eq!((flat_r.status, code(&flat_r).as_str()), (409, "HierarchicalNamespaceNotEnabled"));
    assert!(flat_r.bytes.is_empty(), "no body on HEAD");
    let bad = dfs(
        &lab,
        &c,
        &admin,
        "PATCH",
        &format!("{fs}/TestFolder?action=setAccessControl"),
        &[("x-ms-acl", "user:a:rwx")],
        b"",
    );
    assert_eq!((bad.status, code(&bad).as_str()), (400, "InvalidHeaderValue"));
    let default_on_file = dfs(
        &lab,
        &c,
        &admin,
        "PATCH",
        &format!("{url}?action=setAccessControl"),
        &[("x-ms-acl", "user::rw-,group::r--,other::---,default:user:a:r--")],
        b"",
    );
    assert_eq!((default_on_file.status, code(&default_on_file).as_str()), (400, "InvalidHeaderValue"));
    // The log names the path and never the query (ACL specs, positions).
    let log = lab.op("GET", "/_idlab/requests", None).body.to_string();
    assert!(log.contains("/gen2flow/lake/TestFolder/Test1.txt") && !log.contains("setAccessControl"), "{log}");

    // Durable: after a restart the same endpoint answers with the same files and ACLs.
    drop(c);
    let lab = lab.restart();
    let c = client(&lab);
    let again = lab.op("GET", &format!("{account_id}?api-version=2025-06-01"), None);
    assert_eq!(again.body["properties"]["primaryEndpoints"]["dfs"], json!(base), "the dfs port is rebound");
    let read = dfs(&lab, &c, &vm_tok, "GET", &url, &[], b"");
    assert_eq!((read.status, read.bytes.as_slice()), (200, b"Test file.".as_slice()));
    // A recursive delete, then the file system's delete through ARM takes every path along.
    let gone = dfs(&lab, &c, &admin, "DELETE", &format!("{fs}/TestFolder?recursive=true"), &[], b"");
    assert_eq!(gone.status, 200);
    assert_eq!(dfs(&lab, &c, &admin, "GET", &url, &[], b"").status, 404);
    ok(&dfs(&lab, &c, &admin, "PUT", &format!("{fs}/again/x?resource=file"), &[], b""), "create with parents");
    assert_eq!(lab.op("DELETE", &format!("{container}?api-version=2025-06-01"), None).status, 200);
    let state = lab.cloud.shared().store().state.clone();
    assert!(state.data_paths.keys().all(|k| !k.starts_with("gen2flow/")), "{:?}", state.data_paths.keys());
    assert!(state.blobs.keys().all(|k| !k.starts_with("gen2flow/lake/")));
    let _: Value = json!(null);
}
