//! The per-VM managed-identity endpoint: IMDS and App Service protocols, identity
//! selection, Azure's errors, and an unmodified Azure SDK credential getting a token.

use serde_json::{Value, json};

use crate::common::root;
use crate::lab::Lab;

struct Vm {
    id: String,
    endpoint: String,
    system_principal: String,
    ua_client: String,
    ua_principal: String,
    ua_id: String,
}

fn vm_with_both_identities(lab: &Lab) -> Vm {
    let nic = lab.network("imds", "nic");
    let rg = lab.rg_path("imds");
    let ua = lab.op(
        "PUT",
        &format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ID1?api-version=2024-11-30"),
        Some(&json!({"location": "eastus"})),
    );
    assert_eq!(ua.status, 201);
    let ua_id = ua.body["id"].as_str().expect("id").to_string();
    let id = format!("{rg}/providers/Microsoft.Compute/virtualMachines/myVM");
    let identity = json!({"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {ua_id.clone(): {}}});
    let r = lab.op("PUT", &format!("{id}?api-version=2025-04-01"), Some(&lab.vm_body(&nic, identity)));
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(!r.body.to_string().contains("Not-A-Real-Secret-42"), "the admin password came back");
    Vm {
        endpoint: lab.vm_endpoint(&id),
        id,
        system_principal: r.body["identity"]["principalId"].as_str().expect("principal").to_string(),
        ua_client: ua.body["properties"]["clientId"].as_str().expect("client").to_string(),
        ua_principal: ua.body["properties"]["principalId"].as_str().expect("principal").to_string(),
        ua_id,
    }
}

fn token_url(vm: &Vm, resource: &str, extra: &str) -> String {
    format!("{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}{extra}", vm.endpoint)
}

fn claims(body: &Value) -> Value {
    idlab::local::token::peek(body["access_token"].as_str().unwrap_or_default()).unwrap_or(Value::Null)
}

#[test]
fn imds_selects_identities_like_azure() {
    let lab = Lab::start();
    let vm = vm_with_both_identities(&lab);
    let md = [("Metadata", "true")];
    // System identity by default; the requested resource is echoed in aud, verbatim.
    let r = lab.imds(&token_url(&vm, "https://management.azure.com/", ""), &md);
    assert_eq!(r.status, 200, "{}", r.body);
    for k in ["expires_in", "expires_on", "not_before", "ext_expires_in"] {
        assert!(r.body[k].is_string(), "{k} must be a string: {}", r.body);
    }
    assert_eq!(r.body["resource"], "https://management.azure.com/");
    let c = claims(&r.body);
    assert_eq!(c["oid"], vm.system_principal);
    assert_eq!(c["aud"], "https://management.azure.com/");
    assert_eq!(c["xms_mirid"], vm.id);
    let no_slash = lab.imds(&token_url(&vm, "https://management.azure.com", ""), &md);
    assert_eq!(claims(&no_slash.body)["aud"], "https://management.azure.com");
    // A user-assigned identity by client_id, object_id and msi_res_id.
    for extra in [
        format!("&client_id={}", vm.ua_client),
        format!("&object_id={}", vm.ua_principal),
        format!("&msi_res_id={}", vm.ua_id),
    ] {
        let r = lab.imds(&token_url(&vm, "https://storage.azure.com/", &extra), &md);
        assert_eq!(r.status, 200, "{extra}: {}", r.body);
        assert_eq!(claims(&r.body)["oid"], vm.ua_principal, "{extra}");
        assert_eq!(claims(&r.body)["appid"], vm.ua_client, "{extra}");
    }
    // Errors.
    let r = lab.imds(&token_url(&vm, "https://management.azure.com/", ""), &[]);
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_request")));
    assert_eq!(r.body["error_description"], "Required metadata header not specified");
    let r = lab
        .imds(&token_url(&vm, "https://management.azure.com/", "&client_id=00000000-0000-0000-0000-000000000000"), &md);
    assert_eq!((r.status, r.body["error_description"].as_str()), (400, Some("Identity not found")));
    let r = lab.imds(&token_url(&vm, "https://unknown.example.com/", ""), &md);
    assert_eq!((r.status, r.body["error"].as_str()), (400, Some("invalid_resource")));
    // The token works against ARM (and RBAC decides: no role yet).
    let r = lab.imds(&token_url(&vm, "https://management.azure.com/", ""), &md);
    let t = r.body["access_token"].as_str().unwrap_or_default().to_string();
    let read = lab.send(Some(&t), "GET", &format!("{}?api-version=2024-11-01", lab.rg_path("imds")), None);
    assert_eq!(read.status, 403);
}

#[test]
fn removing_an_identity_or_the_vm_stops_its_tokens() {
    let lab = Lab::start();
    let vm = vm_with_both_identities(&lab);
    let md = [("Metadata", "true")];
    // Remove the user-assigned identity with ARM's `{id: null}` PATCH; keep the system one.
    let patch = json!({"identity": {"type": "SystemAssigned", "userAssignedIdentities": {vm.ua_id.clone(): null}}});
    let r = lab.op("PATCH", &format!("{}?api-version=2025-04-01", vm.id), Some(&patch));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["identity"]["type"], "SystemAssigned");
    let r = lab.imds(&token_url(&vm, "https://management.azure.com/", &format!("&client_id={}", vm.ua_client)), &md);
    assert_eq!((r.status, r.body["error_description"].as_str()), (400, Some("Identity not found")));
    assert_eq!(lab.imds(&token_url(&vm, "https://management.azure.com/", ""), &md).status, 200);
    // Turn the system identity off: its principal goes away.
    let r = lab.op("PATCH", &format!("{}?api-version=2025-04-01", vm.id), Some(&json!({"identity": {"type": "None"}})));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(lab.imds(&token_url(&vm, "https://management.azure.com/", ""), &md).status, 400);
    // Delete the VM: the endpoint closes.
    assert_eq!(lab.op("DELETE", &format!("{}?api-version=2025-04-01", vm.id), None).status, 202);
    let gone = lab.rt.block_on(async {
        lab.http.get(token_url(&vm, "https://management.azure.com/", "")).header("Metadata", "true").send().await
    });
    match gone {
        Err(_) => {}
        Ok(resp) => assert_eq!(resp.status().as_u16(), 400),
    }
}

#[test]
fn app_service_protocol_and_an_unmodified_azure_sdk_credential() {
    let lab = Lab::start();
    let vm = vm_with_both_identities(&lab);
    idlab::local::attach::write_info(&lab.cloud.info).expect("connection file");
    let state = lab.cloud.info.state_dir.display().to_string();
    let bin = env!("CARGO_BIN_EXE_idlab");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(args)
            .current_dir(root())
            .env_clear()
            .env("HOME", std::env::temp_dir())
            .output()
            .expect("idlab runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // `local env` prints the exports; the App Service header is required.
    let (code, env, err) = run(&["local", "env", "--state", &state, "--vm", "myVM"]);
    assert_eq!(code, 0, "{err}");
    assert!(env.contains(&format!("export AZURE_POD_IDENTITY_AUTHORITY_HOST={}", vm.endpoint)), "{env}");
    assert!(env.contains("export IDENTITY_HEADER="), "{env}");
    let r = lab.imds(
        &format!("{}/msi/token?api-version=2019-08-01&resource=https://vault.azure.net", vm.endpoint),
        &[("X-IDENTITY-HEADER", "wrong")],
    );
    assert_eq!(r.status, 401);
    // The Rust azure_identity ManagedIdentityCredential, run "on the VM" through `local exec`.
    let (code, out, err) = run(&[
        "local",
        "exec",
        "--state",
        &state,
        "--vm",
        "myVM",
        "--",
        bin,
        "local",
        "mi-token",
        "--scope",
        "https://management.azure.com/.default",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).expect("claims JSON");
    assert_eq!(v["oid"], vm.system_principal);
    assert_eq!(v["aud"], "https://management.azure.com");
    assert!(!out.contains("eyJ"), "a token was printed");
    let (code, out, err) = run(&[
        "local",
        "exec",
        "--state",
        &state,
        "--vm",
        "myVM",
        "--",
        bin,
        "local",
        "mi-token",
        "--scope",
        "https://storage.azure.com/.default",
        "--client-id",
        &vm.ua_client,
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).expect("claims JSON");
    assert_eq!(v["oid"], vm.ua_principal);
    // An unknown VM is a clear error.
    let (code, _, err) = run(&["local", "env", "--state", &state, "--vm", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no VM `nope`"), "{err}");
}
