//! The shape of the local cloud (issue 10): one definition each of the helpers every plane
//! shares, and the provider table reached through the real HTTP front door.

use idlab::local::table::TABLE;
use serde_json::json;

use crate::lab::Lab;

/// Every `.rs` file under `src/local/`, with its text, named relative to `src/local/`.
fn local_sources() -> Vec<(String, String)> {
    crate::layout::src_files()
        .into_iter()
        .filter_map(|(f, text)| f.strip_prefix("src/local/").map(|rel| (rel.to_string(), text)))
        .collect()
}

/// Where `fn {name}` is defined (`fn name(` or `fn name<`), as `file:line`.
fn definitions(files: &[(String, String)], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (file, text) in files {
        for (i, line) in text.lines().enumerate() {
            let l = line.trim_start();
            for head in [format!("fn {name}("), format!("fn {name}<")] {
                if l.contains(&head) && !l.starts_with("//") {
                    out.push(format!("{file}:{}", i + 1));
                }
            }
        }
    }
    out
}

#[test]
fn shared_helpers_are_defined_once() {
    let files = local_sources();
    for (what, name, home) in [
        ("the bearer check", "bearer_check", "auth.rs"),
        ("the durable commit", "commit", "shared.rs"),
        ("the effective role assignments", "grants", "rbac.rs"),
        ("the principal lookup", "principal", "store.rs"),
        ("JWT decoding and verification", "verify", "token.rs"),
        ("ARM error rendering", "error_response", "http.rs"),
    ] {
        let defs = definitions(&files, name);
        assert_eq!(defs.len(), 1, "{what}: exactly one `fn {name}` in src/local, found {defs:?}");
        assert!(defs[0].starts_with(home), "{what} lives in {home}: {defs:?}");
    }
    // Tokens are decoded only by the bearer check; handlers never parse them.
    for (file, text) in &files {
        if file != "auth.rs" && file != "token.rs" {
            assert!(!text.contains("verify("), "{file} decodes a token itself");
        }
    }
}

/// The ARM path of a resource of `type_name` (`Namespace/t1/t2`) under group `rg`.
fn path_of(sub: &str, type_name: &str) -> String {
    let mut segs = type_name.split('/');
    let ns = segs.next().unwrap_or_default();
    let mut p = format!("/subscriptions/{sub}/resourceGroups/table/providers/{ns}");
    for (i, t) in segs.enumerate() {
        let name = match (t, i) {
            ("accessPolicies", _) => "add".to_string(),
            ("administrators", _) => "ActiveDirectory".to_string(),
            ("azureADOnlyAuthentications", _) => "Default".to_string(),
            ("blobServices", _) => "default".to_string(),
            _ => format!("t{i}"),
        };
        p.push_str(&format!("/{t}/{name}"));
    }
    p
}

#[test]
fn every_table_entry_is_reached_through_the_http_front_door() {
    let lab = Lab::start();
    let sub = lab.sub();
    let rg = lab.rg_path("table");
    assert!(lab.op("PUT", &format!("{rg}?api-version=2024-11-01"), Some(&json!({"location": "eastus"}))).status < 300);
    // Codes the front door answers before a handler runs.
    let front_door = ["NoRegisteredProviderFound", "InvalidApiVersionParameter", "InvalidResourceType", "NotFound"];
    for p in TABLE {
        let versions =
            idlab::local::table::accepted(&p.type_name.to_ascii_lowercase()).expect("a served type has versions");
        let version = versions.last().expect("a version");
        let url = format!("{}?api-version={version}", path_of(&sub, p.type_name));
        for method in p.methods {
            let body = json!({"location": "eastus", "properties": {}});
            let r = lab.op(method, &url, Some(&body));
            assert_ne!(r.status, 405, "{} {method}: {}", p.type_name, r.body);
            assert!(
                !front_door.contains(&r.code()),
                "{} {method} stopped at the front door: {} {}",
                p.type_name,
                r.status,
                r.body
            );
        }
    }
    // A type that is not in the table: 404 InvalidResourceType (its namespace is served),
    // or 400 NoRegisteredProviderFound (it is not).
    let unknown = format!("{rg}/providers/Microsoft.Compute/snapshots/d?api-version=2024-03-01");
    let r = lab.op("GET", &unknown, None);
    assert_eq!((r.status, r.code()), (400, "NoRegisteredProviderFound"), "{}", r.body);
    let unknown = format!("{rg}/providers/Microsoft.Web/sites/s?api-version=2024-04-01");
    let r = lab.op("GET", &unknown, None);
    assert_eq!((r.status, r.code()), (400, "NoRegisteredProviderFound"), "{}", r.body);
}

#[test]
fn type_names_are_spelled_only_in_the_table_and_the_provider_files() {
    let mut found = Vec::new();
    for (file, text) in local_sources() {
        if file.starts_with("table") || file.starts_with("providers") {
            continue;
        }
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
        for (i, line) in code.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for start in ["\"Microsoft.", "\"microsoft."] {
                for (at, _) in line.match_indices(start) {
                    let lit = line[at + 1..].split('"').next().unwrap_or_default();
                    if lit.contains('/') {
                        found.push(format!("src/local/{file}:{}: {lit}", i + 1));
                    }
                }
            }
        }
    }
    assert!(found.is_empty(), "type names outside the provider table and files:\n{}", found.join("\n"));
}

/// The bearer check is called from one place, the request pipeline: no plane's handler names
/// it, and only the bearer check verifies JWTs (the token issuer only peeks at the client
/// assertions a token request carries in its body).
#[test]
fn only_the_pipeline_calls_the_bearer_check() {
    let files = local_sources();
    let mut calls = Vec::new();
    for (file, text) in &files {
        for (i, line) in text.lines().enumerate() {
            let l = line.trim_start();
            if l.contains("bearer_check(") && !l.starts_with("//") && !l.contains("fn bearer_check(") {
                calls.push(format!("{file}:{}", i + 1));
            }
        }
        if file != "auth.rs" && file != "pipeline.rs" {
            assert!(!text.contains("bearer_check"), "src/local/{file} names the bearer check");
        }
        let jwt_lines = text.lines().filter(|l| l.contains("token::") && !l.trim_start().starts_with("//"));
        for l in jwt_lines {
            if file != "auth.rs" {
                assert!(!l.contains("verify"), "src/local/{file} verifies JWTs itself: {l}");
            }
            if file != "login.rs" {
                assert!(!l.contains("peek"), "src/local/{file} decodes JWTs: {l}");
            }
        }
    }
    assert_eq!(calls.len(), 1, "the bearer check is called from exactly one place: {calls:?}");
    assert!(calls[0].starts_with("pipeline.rs:"), "the one call is the pipeline's: {calls:?}");
}

#[test]
fn provider_handlers_do_not_authorize_their_own_action() {
    // The action an ARM endpoint requires is declared once, in the front door (`required` in
    // arm.rs), and evaluated by the pipeline's ARM `authorize` step before the handler runs.
    // A provider handler that checks an action again, or renders ARM's 403 itself, is a
    // second place deciding the same thing.
    let files = local_sources();
    let declared = definitions(&files, "required");
    assert!(declared.len() == 1 && declared[0].starts_with("arm.rs:"), "{declared:?}");
    let mut found = Vec::new();
    for (file, text) in files.iter().filter(|(f, _)| f.starts_with("providers")) {
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for call in ["authorize(", "authorization_failed(", "rbac::allowed("] {
                let called = code
                    .match_indices(call)
                    .any(|(at, _)| !code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_'));
                // The one check a provider makes itself: a VM's new user-assigned identity
                // needs `…/assign/action` on that identity, a linked scope its body names.
                let linked = text.lines().skip(i).take(4).any(|l| l.contains("\"LinkedAuthorizationFailed\""));
                if called && !(call == "rbac::allowed(" && file == "providers/compute.rs" && linked) {
                    found.push(format!("{file}:{}: {}", i + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "provider handlers authorizing their own action: {found:#?}");
}
