//! The local cloud's Data Lake Store Gen1: accounts through ARM (a long-running PUT with
//! `Azure-AsyncOperation`, one WebHDFS endpoint per account) and the WebHDFS data plane
//! over HTTPS, with POSIX ACLs decided for the caller's object id: an ACL matrix (entry ×
//! operation → status and `RemoteException`), redirects, default-ACL inheritance, audience
//! and persistence.

use serde_json::{Value, json};

use crate::lab::Lab;

pub struct Hdfs {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub bytes: Vec<u8>,
}

impl Hdfs {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
    pub fn exception(&self) -> String {
        self.json().pointer("/RemoteException/exception").and_then(Value::as_str).unwrap_or_default().to_string()
    }
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }
}

/// A client that trusts the local CA and does not follow redirects (the 307s are the point).
pub fn client(lab: &Lab) -> reqwest::Client {
    let pem = std::fs::read(&lab.cloud.info.ca_file).expect("CA file");
    let cert = reqwest::Certificate::from_pem(&pem).expect("CA");
    reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([cert])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

pub fn hdfs(lab: &Lab, c: &reqwest::Client, token: &str, method: &str, url: &str, body: &[u8]) -> Hdfs {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    lab.rt.block_on(async {
        let resp = c.request(m, url).bearer_auth(token).body(body.to_vec()).send().await.expect("webhdfs answers");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.unwrap_or_default().to_vec();
        Hdfs { status, headers, bytes }
    })
}

/// A new principal with `roles`: (client id, secret, object id).
pub fn new_principal(lab: &Lab, roles: &[(&str, &str)]) -> (String, String, String) {
    let roles: Vec<Value> = roles.iter().map(|(r, s)| json!({ "role": r, "scope": s })).collect();
    let r = lab.op("POST", "/_idlab/principals", Some(&json!({ "name": "adls", "roles": roles })));
    assert_eq!(r.status, 200, "{}", r.body);
    let s = |k: &str| r.body[k].as_str().unwrap_or_default().to_string();
    (s("client_id"), s("secret"), s("object_id"))
}

/// A client-credentials token for `scope`.
pub fn token(lab: &Lab, client: &str, secret: &str, scope: &str) -> String {
    let tok = lab.token_request(
        &lab.cloud.info.tenant_id.clone(),
        &[("grant_type", "client_credentials"), ("client_id", client), ("client_secret", secret), ("scope", scope)],
    );
    assert_eq!(tok.status, 200, "{}", tok.body);
    tok.body["access_token"].as_str().expect("token").to_string()
}

pub const DATALAKE_SCOPE: &str = "https://datalake.azure.net//.default";
const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// Create a group (as the operator) and a Gen1 account as `arm_token`; answers the account
/// id and its WebHDFS base URL (`https://127.0.0.1:PORT/webhdfs/v1`).
pub fn store(lab: &Lab, arm_token: &str, rg: &str, name: &str) -> (String, String) {
    let rgp = lab.rg_path(rg);
    assert!(lab.op("PUT", &format!("{rgp}?api-version=2024-11-01"), Some(&json!({"location": "eastus"}))).status < 300);
    let id = format!("{rgp}/providers/Microsoft.DataLakeStore/accounts/{name}");
    let r = lab.send(
        Some(arm_token),
        "PUT",
        &format!("{id}?api-version=2016-11-01"),
        Some(&json!({"location": "eastus", "properties": {"newTier": "Consumption", "encryptionState": "Enabled", "firewallState": "Disabled"}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.header("azure-asyncoperation").is_some(), "PUT is a long-running operation");
    // The create's answer has no endpoint yet (as Azure's, `TestAdlsAccount.json`): a GET has it.
    assert!(r.body["properties"]["endpoint"].is_null(), "{}", r.body);
    let got = lab.send(Some(arm_token), "GET", &format!("{id}?api-version=2016-11-01"), None);
    let endpoint = got.body["properties"]["endpoint"].as_str().expect("endpoint").to_string();
    assert!(endpoint.starts_with("127.0.0.1:"), "{endpoint}");
    (id, format!("https://{endpoint}/webhdfs/v1"))
}

/// A Contributor on group `adls` creates account `name`: answers its Data Lake token, its
/// object id and the WebHDFS base URL.
fn creator_store(lab: &Lab, name: &str) -> (String, String, String) {
    let (client, secret, oid) = new_principal(lab, &[("Contributor", &lab.rg_path("adls"))]);
    let arm = token(lab, &client, &secret, ARM_SCOPE);
    let (_, base) = store(lab, &arm, "adls", name);
    (token(lab, &client, &secret, DATALAKE_SCOPE), oid, base)
}

fn ok(r: &Hdfs, what: &str) {
    assert!(r.status < 300, "{what}: {} {}", r.status, String::from_utf8_lossy(&r.bytes));
}

#[test]
fn acl_matrix_decides_each_operation_for_the_callers_object_id() {
    let lab = Lab::start();
    let c = client(&lab);
    // The creator is a Contributor on the group: it owns `/` but is no super-user.
    let (owner, owner_oid, base) = creator_store(&lab, "matrixstore");
    let root = hdfs(&lab, &c, &owner, "GET", &format!("{base}/?op=GETACLSTATUS"), b"").json();
    assert_eq!(root["AclStatus"]["owner"], owner_oid.as_str(), "the creator owns /");
    assert_eq!(root["AclStatus"]["permission"], "770");
    let setup = |method: &str, url: String, body: &[u8]| ok(&hdfs(&lab, &c, &owner, method, &url, body), &url);
    setup("PUT", format!("{base}/dir?op=MKDIRS"), b"");
    setup("PUT", format!("{base}/dir/f.txt?op=CREATE&write=true&overwrite=true"), b"hello");
    setup("PUT", format!("{base}/dir/gone1?op=CREATE&write=true"), b"x");
    setup("PUT", format!("{base}/dir/gone2?op=CREATE&write=true"), b"x");

    // (case, entry on /, on /dir, on /dir/f.txt, method, target, status, exception)
    const ACE: &str = "AccessControlException";
    const FAE: &str = "FileAlreadyExistsException";
    const FNF: &str = "FileNotFoundException";
    const BOE: &str = "BadOffsetException";
    type Case = (&'static str, &'static str, &'static str, &'static str, &'static str, &'static str, u16, &'static str);
    let cases: &[Case] = &[
        ("list root with r-x", "r-x", "", "", "GET", "/?op=LISTSTATUS", 200, ""),
        ("list root with --x", "--x", "", "", "GET", "/?op=LISTSTATUS", 403, ACE),
        ("list root with no entry", "", "", "", "GET", "/?op=LISTSTATUS", 403, ACE),
        ("list dir with x on root, r-x on dir", "--x", "r-x", "", "GET", "/dir?op=LISTSTATUS", 200, ""),
        ("list dir without x on root", "", "r-x", "", "GET", "/dir?op=LISTSTATUS", 403, ACE),
        ("list dir with --x on dir", "--x", "--x", "", "GET", "/dir?op=LISTSTATUS", 403, ACE),
        ("status of a file with x on the way", "--x", "--x", "", "GET", "/dir/f.txt?op=GETFILESTATUS", 200, ""),
        ("status of a file without x on dir", "--x", "r--", "", "GET", "/dir/f.txt?op=GETFILESTATUS", 403, ACE),
        ("acl status with x on root", "--x", "", "", "GET", "/dir?op=GETACLSTATUS", 200, ""),
        ("acl status without x on root", "", "", "", "GET", "/dir?op=GETACLSTATUS", 403, ACE),
        ("mkdir with -wx on dir", "--x", "-wx", "", "PUT", "/dir/sub?op=MKDIRS", 200, ""),
        ("mkdir with r-x on dir", "--x", "r-x", "", "PUT", "/dir/sub2?op=MKDIRS", 403, ACE),
        ("create with -wx on dir", "--x", "-wx", "", "PUT", "/dir/new.txt?op=CREATE&write=true", 201, ""),
        ("create with r-x on dir", "--x", "r-x", "", "PUT", "/dir/new2.txt?op=CREATE&write=true", 403, ACE),
        ("create in root with r-x on root", "r-x", "", "", "PUT", "/Test1.txt?op=CREATE&write=true", 403, ACE),
        ("create over a file, no overwrite", "--x", "-wx", "", "PUT", "/dir/f.txt?op=CREATE&write=true", 403, FAE),
        ("open with r-- on file", "--x", "--x", "r--", "GET", "/dir/f.txt?op=OPEN&read=true", 200, ""),
        ("open with no entry on file", "--x", "--x", "", "GET", "/dir/f.txt?op=OPEN&read=true", 403, ACE),
        ("open a missing file", "--x", "--x", "", "GET", "/dir/missing?op=OPEN&read=true", 404, FNF),
        ("append with -w- on file", "--x", "--x", "-w-", "POST", "/dir/f.txt?op=APPEND&append=true", 200, ""),
        ("append with r-- on file", "--x", "--x", "r--", "POST", "/dir/f.txt?op=APPEND&append=true", 403, ACE),
        (
            "append at a wrong offset",
            "--x",
            "--x",
            "-w-",
            "POST",
            "/dir/f.txt?op=APPEND&append=true&offset=1",
            400,
            BOE,
        ),
        ("delete with -wx on dir", "--x", "-wx", "", "DELETE", "/dir/gone1?op=DELETE", 200, ""),
        ("delete with r-x on dir", "--x", "r-x", "", "DELETE", "/dir/gone2?op=DELETE", 403, ACE),
        (
            "change an ACL one does not own",
            "--x",
            "rwx",
            "",
            "PUT",
            "/dir?op=MODIFYACLENTRIES&aclspec=other::rwx",
            403,
            ACE,
        ),
    ];
    let mut wrong = Vec::new();
    for (name, root_e, dir_e, file_e, method, target, status, exception) in cases {
        let (client, secret, oid) = new_principal(&lab, &[]);
        let tok = token(&lab, &client, &secret, DATALAKE_SCOPE);
        for (path, perms) in [("/", root_e), ("/dir", dir_e), ("/dir/f.txt", file_e)] {
            if !perms.is_empty() {
                setup("PUT", format!("{base}{path}?op=MODIFYACLENTRIES&aclspec=user:{oid}:{perms}"), b"");
            }
        }
        let r = hdfs(&lab, &c, &tok, method, &format!("{base}{target}"), b"more");
        if r.status != *status || r.exception() != *exception {
            wrong.push(format!(
                "{name}: got {} {:?}, want {status} {exception:?}: {}",
                r.status,
                r.exception(),
                String::from_utf8_lossy(&r.bytes)
            ));
        }
        if r.status >= 400 && r.json()["RemoteException"]["javaClassName"].as_str().is_none() {
            wrong.push(format!("{name}: no javaClassName in {}", String::from_utf8_lossy(&r.bytes)));
        }
    }
    assert!(wrong.is_empty(), "ACL matrix:\n{}", wrong.join("\n"));

    // What another principal created is theirs: the owner of `/` cannot change its ACL, and
    // the content written through APPEND is there.
    let r = hdfs(&lab, &c, &owner, "PUT", &format!("{base}/dir/new.txt?op=MODIFYACLENTRIES&aclspec=other::r--"), b"");
    assert_eq!((r.status, r.exception().as_str()), (403, "AccessControlException"));
    let r = hdfs(&lab, &c, &owner, "GET", &format!("{base}/dir/f.txt?op=OPEN&read=true"), b"");
    assert_eq!(String::from_utf8_lossy(&r.bytes), "hellomore");
    // The operator (Owner of the subscription through RBAC) is a super-user.
    let su = hdfs(
        &lab,
        &c,
        &lab_token(&lab),
        "PUT",
        &format!("{base}/dir/new.txt?op=MODIFYACLENTRIES&aclspec=other::r--"),
        b"",
    );
    assert_eq!(su.status, 200, "{}", String::from_utf8_lossy(&su.bytes));
}
#[test]
fn redirects_inheritance_audience_and_account_lifecycle() {
    let lab = Lab::start();
    let c = client(&lab);
    let (owner, _, base) = creator_store(&lab, "flowstore");
    let (vm_client, vm_secret, vm) = new_principal(&lab, &[]);
    let vm_tok = token(&lab, &vm_client, &vm_secret, DATALAKE_SCOPE);
    // The tutorial's grants: r-x on `/`, rwx access + default on the folder.
    ok(&hdfs(&lab, &c, &owner, "PUT", &format!("{base}/TestFolder?op=MKDIRS"), b""), "mkdirs");
    ok(&hdfs(&lab, &c, &owner, "PUT", &format!("{base}/?op=MODIFYACLENTRIES&aclspec=user:{vm}:r-x"), b""), "root acl");
    let spec = format!("user:{vm}:rwx,default:user:{vm}:rwx");
    ok(&hdfs(&lab, &c, &owner, "PUT", &format!("{base}/TestFolder?op=MODIFYACLENTRIES&aclspec={spec}"), b""), "acl");
    let acl = hdfs(&lab, &c, &owner, "GET", &format!("{base}/TestFolder?op=GETACLSTATUS"), b"").json();
    let entries: Vec<&str> = acl["AclStatus"]["entries"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(entries.contains(&format!("user:{vm}:rwx").as_str()), "{acl}");
    assert!(entries.contains(&format!("default:user:{vm}:rwx").as_str()), "{acl}");

    // The VM lists the root and sees the folder.
    let list = hdfs(&lab, &c, &vm_tok, "GET", &format!("{base}/?op=LISTSTATUS"), b"");
    assert_eq!(list.status, 200, "{}", String::from_utf8_lossy(&list.bytes));
    assert_eq!(list.json()["FileStatuses"]["FileStatus"][0]["pathSuffix"], "TestFolder");
    assert_eq!(list.json()["FileStatuses"]["FileStatus"][0]["type"], "DIRECTORY");

    // CREATE without write=true answers 307 to the same URL plus write=true; no data yet.
    let url = format!("{base}/TestFolder/Test1.txt?op=CREATE");
    let first = hdfs(&lab, &c, &vm_tok, "PUT", &url, b"");
    assert_eq!(first.status, 307);
    let location = first.header("location");
    assert_eq!(location, format!("{url}&write=true"));
    let missing = hdfs(&lab, &c, &vm_tok, "GET", &format!("{base}/TestFolder/Test1.txt?op=GETFILESTATUS"), b"");
    assert_eq!((missing.status, missing.exception().as_str()), (404, "FileNotFoundException"));
    let second = hdfs(&lab, &c, &vm_tok, "PUT", &location, b"Test file.");
    assert_eq!(second.status, 201, "{}", String::from_utf8_lossy(&second.bytes));
    // OPEN: 307 to read=true, then the bytes.
    let open = hdfs(&lab, &c, &vm_tok, "GET", &format!("{base}/TestFolder/Test1.txt?op=OPEN"), b"");
    assert_eq!(open.status, 307);
    let read = hdfs(&lab, &c, &vm_tok, "GET", &open.header("location"), b"");
    assert_eq!((read.status, read.bytes.as_slice()), (200, b"Test file.".as_slice()));
    let part = hdfs(
        &lab,
        &c,
        &vm_tok,
        "GET",
        &format!("{base}/TestFolder/Test1.txt?op=OPEN&read=true&offset=5&length=4"),
        b"",
    );
    assert_eq!(part.bytes, b"file");

    // The new file inherited the folder's default ACL; the owner (not the VM) can read it.
    let child = hdfs(&lab, &c, &owner, "GET", &format!("{base}/TestFolder/Test1.txt?op=GETACLSTATUS"), b"").json();
    assert_eq!(child["AclStatus"]["owner"], vm.as_str(), "the creator of a file owns it");
    assert!(child["AclStatus"]["entries"].to_string().contains(&format!("user:{vm}:rw")), "{child}");
    // The VM cannot write the root (only r-x there).
    let root_write = hdfs(&lab, &c, &vm_tok, "PUT", &format!("{base}/Test1.txt?op=CREATE&write=true"), b"no");
    assert_eq!((root_write.status, root_write.exception().as_str()), (403, "AccessControlException"));

    // Tokens: exactly https://datalake.azure.net/ (no trailing slash → refused), and none at all.
    let no_slash = token(&lab, &vm_client, &vm_secret, "https://datalake.azure.net/.default");
    let r = hdfs(&lab, &c, &no_slash, "GET", &format!("{base}/?op=LISTSTATUS"), b"");
    assert_eq!((r.status, r.exception().as_str()), (401, "SecurityException"));
    let storage = token(&lab, &vm_client, &vm_secret, "https://storage.azure.com/.default");
    assert_eq!(hdfs(&lab, &c, &storage, "GET", &format!("{base}/?op=LISTSTATUS"), b"").status, 401);
    // Bad requests: unknown op, wrong method, bad ACL spec, default ACL on a file, root delete.
    let bad = [
        (&owner, "GET", format!("{base}/?op=FROBNICATE"), 400, "IllegalArgumentException"),
        (&owner, "GET", format!("{base}/?op=MKDIRS"), 400, "IllegalArgumentException"),
        (&owner, "PUT", format!("{base}/TestFolder?op=SETACL&aclspec=user:x:rwz"), 400, "IllegalArgumentException"),
        (
            &vm_tok,
            "PUT",
            format!("{base}/TestFolder/Test1.txt?op=MODIFYACLENTRIES&aclspec=default:user:x:r--"),
            400,
            "IllegalArgumentException",
        ),
        (&owner, "DELETE", format!("{base}/?op=DELETE&recursive=true"), 403, "IOException"),
        (&owner, "DELETE", format!("{base}/TestFolder?op=DELETE"), 403, "IOException"),
    ];
    for (tok, m, u, status, exception) in bad {
        let r = hdfs(&lab, &c, tok, m, &u, b"");
        assert_eq!(
            (r.status, r.exception().as_str()),
            (status, exception),
            "{m} {u}: {}",
            String::from_utf8_lossy(&r.bytes)
        );
    }
    let gone = hdfs(&lab, &c, &owner, "DELETE", &format!("{base}/TestFolder?op=DELETE&recursive=true"), b"");
    assert_eq!(gone.json(), json!({"boolean": true}));
    let again = hdfs(&lab, &c, &owner, "DELETE", &format!("{base}/TestFolder?op=DELETE&recursive=true"), b"");
    assert_eq!(again.json(), json!({"boolean": false}));

    // The request log names the caller and never holds the query (aclspec, offsets).
    let log = lab.op("GET", "/_idlab/requests", None);
    let text = log.body.to_string();
    assert!(text.contains("/webhdfs/v1/TestFolder/Test1.txt") && !text.contains("aclspec"), "{text}");

    // Deleting the account stops its endpoint and removes its files.
    let id =
        format!("{}/providers/Microsoft.DataLakeStore/accounts/flowstore?api-version=2016-11-01", lab.rg_path("adls"));
    assert_eq!(lab.op("GET", &id, None).body["properties"]["state"], "Active");
    assert_eq!(lab.op("DELETE", &id, None).status, 200);
    assert_eq!(lab.op("DELETE", &id, None).status, 204);
    // A connection still open answers that the account is gone; a new one is refused.
    let late = hdfs(&lab, &c, &owner, "GET", &format!("{base}/?op=LISTSTATUS"), b"");
    assert_eq!((late.status, late.exception().as_str()), (404, "FileNotFoundException"));
    let refused = lab.rt.block_on(client(&lab).get(format!("{base}/?op=LISTSTATUS")).bearer_auth(&owner).send());
    assert!(refused.is_err(), "the endpoint of a deleted account does not answer");
    assert!(
        lab.cloud.shared().store().state.data_paths.keys().all(|k| !k.starts_with("flowstore:")),
        "the files went with the account"
    );
}

#[test]
fn files_acls_and_the_endpoint_survive_a_restart() {
    let lab = Lab::start();
    let (owner, _, base) = creator_store(&lab, "durablestore");
    let c = client(&lab);
    ok(&hdfs(&lab, &c, &owner, "PUT", &format!("{base}/kept/a.txt?op=CREATE&write=true"), b"kept"), "create");
    ok(
        &hdfs(&lab, &c, &owner, "PUT", &format!("{base}/kept?op=MODIFYACLENTRIES&aclspec=user:someone:r-x"), b""),
        "acl",
    );
    drop(c);
    let lab = lab.restart();
    let c = client(&lab);
    let id = format!(
        "{}/providers/Microsoft.DataLakeStore/accounts/durablestore?api-version=2016-11-01",
        lab.rg_path("adls")
    );
    let endpoint = lab.op("GET", &id, None).body["properties"]["endpoint"].as_str().unwrap_or_default().to_string();
    assert_eq!(format!("https://{endpoint}/webhdfs/v1"), base, "the recorded port is rebound");
    let read = hdfs(&lab, &c, &owner, "GET", &format!("{base}/kept/a.txt?op=OPEN&read=true"), b"");
    assert_eq!((read.status, read.bytes.as_slice()), (200, b"kept".as_slice()));
    let acl = hdfs(&lab, &c, &owner, "GET", &format!("{base}/kept?op=GETACLSTATUS"), b"").json();
    // An extended ACL lists the owning group's entry too, as Azure's does.
    assert_eq!(acl["AclStatus"]["entries"], json!(["user:someone:r-x", "group::rwx"]));
}

/// The operator's token for the Data Lake audience.
fn lab_token(lab: &Lab) -> String {
    lab.operator_token_for(DATALAKE_SCOPE)
}

#[test]
fn sub_resource_items_that_are_not_objects_are_a_400_not_a_dropped_connection() {
    let lab = Lab::start();
    let rg = lab.rg_path("adlsbad");
    assert!(lab.op("PUT", &format!("{rg}?api-version=2024-11-01"), Some(&json!({"location": "eastus"}))).status < 300);
    for field in ["firewallRules", "trustedIdProviders", "virtualNetworkRules"] {
        let body = json!({"location": "eastus", "properties": { field: [1] }});
        let r = lab.op(
            "PUT",
            &format!("{rg}/providers/Microsoft.DataLakeStore/accounts/adlsbad1?api-version=2016-11-01"),
            Some(&body),
        );
        assert_eq!((r.status, r.code()), (400, "InvalidRequestContent"), "{field}: {}", r.body);
    }
}
