//! Tokens and RBAC against the local cloud, with Azure's exact status and error codes.

use idlab::local::faults::Faults;
use serde_json::json;

use crate::lab::Lab;

#[test]
fn token_matrix_gets_azure_401s() {
    let lab = Lab::start();
    let path = format!("/subscriptions/{}/resourcegroups?api-version=2024-11-01", lab.sub());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing", None, "AuthenticationFailed"),
        ("garbled", Some("not.a.jwt".into()), "InvalidAuthenticationToken"),
        (
            "expired",
            Some(lab.forge(None, |c| {
                c.exp = now - 3600;
                c.nbf = now - 7200;
            })),
            "ExpiredAuthenticationToken",
        ),
        (
            "not yet valid",
            Some(lab.forge(None, |c| {
                c.nbf = now + 3600;
                c.exp = now + 7200;
            })),
            "InvalidAuthenticationToken",
        ),
        (
            "wrong audience",
            Some(lab.forge(None, |c| c.aud = "https://vault.azure.net".into())),
            "InvalidAuthenticationTokenAudience",
        ),
        ("forged signature", Some(lab.forge(Some(&crate::tokens::other_key()), |_| {})), "InvalidAuthenticationToken"),
        (
            "other tenant",
            Some(lab.forge(None, |c| c.tid = "11111111-1111-1111-1111-111111111111".into())),
            "InvalidAuthenticationTokenTenant",
        ),
    ];
    for (name, token, code) in cases {
        let r = lab.send(token.as_deref(), "GET", &path, None);
        assert_eq!(r.status, 401, "{name}: {}", r.body);
        assert_eq!(r.code(), code, "{name}: {}", r.body);
        let www = r.header("www-authenticate").unwrap_or_default();
        assert!(www.starts_with("Bearer authorization_uri="), "{name}: {www}");
        assert!(r.header("x-ms-request-id").is_some(), "{name}");
    }
    // Every audience ARM accepts.
    for aud in
        ["https://management.azure.com", "https://management.core.windows.net/", "https://management.core.windows.net"]
    {
        let t = lab.forge(None, |c| c.aud = aud.into());
        assert_eq!(lab.send(Some(&t), "GET", &path, None).status, 200, "{aud}");
    }
}

#[test]
fn token_endpoint_refuses_like_entra() {
    let lab = Lab::start();
    let tenant = lab.cloud.info.tenant_id.clone();
    let client = lab.cloud.info.operator_client_id.clone();
    let unknown_tenant = lab.token_request(
        "22222222-2222-2222-2222-222222222222",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client),
            ("client_secret", "x"),
            ("scope", "https://management.azure.com/.default"),
        ],
    );
    assert_eq!(unknown_tenant.status, 400);
    assert!(
        unknown_tenant.body["error_description"].as_str().unwrap_or_default().starts_with("AADSTS90002"),
        "{}",
        unknown_tenant.body
    );
    let bad_secret = lab.token_request(
        &tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client),
            ("client_secret", "wrong"),
            ("scope", "https://management.azure.com/.default"),
        ],
    );
    assert_eq!(bad_secret.status, 401);
    assert_eq!(bad_secret.body["error"], "invalid_client");
    assert_eq!(bad_secret.body["error_codes"][0], 7000215);
    let unknown_client = lab.token_request(
        &tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "33333333-3333-3333-3333-333333333333"),
            ("client_secret", "x"),
            ("scope", "https://management.azure.com/.default"),
        ],
    );
    assert_eq!(unknown_client.status, 400);
    assert_eq!(unknown_client.body["error_codes"][0], 700016);
    let secret = lab.cloud.operator_secret().expect("secret");
    let ok = lab.token_request(
        &tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &client),
            ("client_secret", &secret),
            ("scope", "https://management.core.windows.net//.default"),
        ],
    );
    assert_eq!(ok.status, 200);
    let claims = idlab::local::token::peek(ok.body["access_token"].as_str().unwrap_or_default()).expect("a JWT");
    assert_eq!(claims["aud"], "https://management.core.windows.net/");
    assert_eq!(claims["tid"], tenant);
    assert_eq!(claims["oid"], lab.cloud.info.operator_object_id);
    // ARM takes v1 tokens: `appid`, not v2's `azp`.
    for k in ["iss", "iat", "nbf", "exp", "appid", "appidacr", "idtyp", "ver"] {
        assert!(claims.get(k).is_some(), "{k}");
    }
    assert!(claims.get("azp").is_none(), "{claims}");
}

#[test]
fn a_federated_assertion_is_refused_unless_its_issuer_keys_verify_it() {
    // Exchanged assertions are covered end to end in `ci_signin` (signed by a test issuer on
    // loopback). Here: an unsigned assertion naming GitHub's issuer is refused without the
    // local cloud calling out (it fetches keys from loopback issuers only), and one from an
    // issuer no credential names is refused before any key is looked for.
    let lab = Lab::start();
    let r = lab.op("POST", "/_idlab/principals", Some(&json!({ "name": "ci", "roles": [{ "role": "Reader" }], "federated": [{ "issuer": "https://token.actions.githubusercontent.com", "subject": "repo:idlab/idlab:ref:refs/heads/main" }] })));
    let client = r.body["client_id"].as_str().expect("client").to_string();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let assertion = |iss: &str, sub: &str| {
        use base64::Engine;
        let e = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.sig",
            e(json!({"alg": "RS256"})),
            e(json!({"iss": iss, "sub": sub, "aud": "api://AzureADTokenExchange", "exp": now + 600}))
        )
    };
    let tenant = lab.cloud.info.tenant_id.clone();
    let form = |a: &str| {
        vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", client.clone()),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_string()),
            ("client_assertion", a.to_string()),
            ("scope", "https://management.azure.com/.default".to_string()),
        ]
    };
    let github =
        form(&assertion("https://token.actions.githubusercontent.com", "repo:idlab/idlab:ref:refs/heads/main"));
    let github: Vec<(&str, &str)> = github.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = lab.token_request(&tenant, &github);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["error_codes"][0], 50013, "{}", r.body);
    assert!(r.body["error_description"].as_str().unwrap_or_default().contains("loopback"), "{}", r.body);
    let other = form(&assertion("https://issuer.example", "repo:idlab/idlab:ref:refs/heads/main"));
    let other: Vec<(&str, &str)> = other.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = lab.token_request(&tenant, &other);
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error_codes"][0], 700211, "{}", r.body);
}

#[test]
fn rbac_matrix_owner_contributor_reader() {
    let lab = Lab::start();
    let sub = format!("/subscriptions/{}", lab.sub());
    let rg = lab.rg_path("rbac");
    let v = "?api-version=2024-11-30";
    assert_eq!(
        lab.op("PUT", &format!("{rg}?api-version=2024-11-01"), Some(&json!({"location": "eastus"}))).status,
        201
    );
    let ident = |n: &str| format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{n}{v}");
    assert_eq!(lab.op("PUT", &ident("existing"), Some(&json!({"location": "eastus"}))).status, 201);
    // (role, scope) → expected status for GET, PUT, DELETE.
    let matrix: Vec<(&str, String, [u16; 3])> = vec![
        ("Owner", sub.clone(), [200, 201, 200]),
        ("Contributor", sub.clone(), [200, 201, 200]),
        ("Reader", sub.clone(), [200, 403, 403]),
        ("Reader", rg.clone(), [200, 403, 403]),
        ("Contributor", rg.clone(), [200, 201, 200]),
        ("Contributor", lab.rg_path("elsewhere"), [403, 403, 403]),
    ];
    for (i, (role, scope, want)) in matrix.into_iter().enumerate() {
        let (token, oid) = lab.principal(&[(role, &scope)]);
        let get = lab.send(Some(&token), "GET", &ident("existing"), None);
        let put = lab.send(Some(&token), "PUT", &ident(&format!("new{i}")), Some(&json!({"location": "eastus"})));
        let del = lab.send(Some(&token), "DELETE", &ident("existing"), None);
        assert_eq!([get.status, put.status, del.status], want, "{role} at {scope}");
        for r in [&get, &put, &del] {
            if r.status == 403 {
                assert_eq!(r.code(), "AuthorizationFailed");
                let m = r.body["error"]["message"].as_str().unwrap_or_default();
                assert!(m.contains(&format!("with object id '{oid}'")) && m.contains("does not have authorization to perform action 'Microsoft.ManagedIdentity/userAssignedIdentities/"), "{m}");
            }
        }
        if del.status == 200 {
            assert_eq!(lab.op("PUT", &ident("existing"), Some(&json!({"location": "eastus"}))).status, 201);
        }
    }
    // Contributor cannot grant roles; Owner can.
    let (contrib, _) = lab.principal(&[("Contributor", &sub)]);
    let ra = format!(
        "{rg}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01",
        uuid::Uuid::new_v4()
    );
    let body = json!({"properties": {"roleDefinitionId": format!("{sub}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"), "principalId": lab.cloud.info.operator_object_id, "principalType": "ServicePrincipal"}});
    let r = lab.send(Some(&contrib), "PUT", &ra, Some(&body));
    assert_eq!(r.status, 403);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Microsoft.Authorization/roleAssignments/write")
    );
}

#[test]
fn new_assignments_take_effect_after_propagation() {
    let faults = Faults { propagation_ms: 400, ..Faults::default() };
    let lab = Lab::with(faults);
    let rg = lab.rg_path("prop");
    assert_eq!(
        lab.op("PUT", &format!("{rg}?api-version=2024-11-01"), Some(&json!({"location": "eastus"}))).status,
        201
    );
    let (token, oid) = lab.principal(&[]);
    let read = format!("{rg}?api-version=2024-11-01");
    assert_eq!(lab.send(Some(&token), "GET", &read, None).status, 403);
    let ra = format!(
        "{rg}/providers/Microsoft.Authorization/roleAssignments/{}?api-version=2022-04-01",
        uuid::Uuid::new_v4()
    );
    let body = json!({"properties": {"roleDefinitionId": format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7", lab.sub()), "principalId": oid, "principalType": "ServicePrincipal"}});
    assert_eq!(lab.op("PUT", &ra, Some(&body)).status, 201);
    // Right after the write the assignment has not propagated yet.
    assert_eq!(lab.send(Some(&token), "GET", &read, None).status, 403);
    let mut allowed = false;
    for _ in 0..100 {
        if lab.send(Some(&token), "GET", &read, None).status == 200 {
            allowed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(allowed, "the assignment never took effect");
}

#[test]
fn role_assignments_behave_like_azure() {
    let faults = Faults { replication_ms: 60_000, ..Faults::default() };
    let lab = Lab::with(faults);
    let sub = format!("/subscriptions/{}", lab.sub());
    let rg = lab.rg_path("ra");
    assert_eq!(
        lab.op("PUT", &format!("{rg}?api-version=2024-11-01"), Some(&json!({"location": "eastus"}))).status,
        201
    );
    let id = lab.op(
        "PUT",
        &format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/fresh?api-version=2024-11-30"),
        Some(&json!({"location": "eastus"})),
    );
    let principal = id.body["properties"]["principalId"].as_str().expect("principal").to_string();
    let reader =
        format!("{sub}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7");
    let name = uuid::Uuid::new_v4().to_string();
    let ra = |n: &str| format!("{rg}/providers/Microsoft.Authorization/roleAssignments/{n}?api-version=2022-04-01");
    // A brand-new principal has not replicated: without principalType, PrincipalNotFound.
    let r =
        lab.op("PUT", &ra(&name), Some(&json!({"properties": {"roleDefinitionId": reader, "principalId": principal}})));
    assert_eq!((r.status, r.code()), (400, "PrincipalNotFound"), "{}", r.body);
    let body = json!({"properties": {"roleDefinitionId": reader, "principalId": principal, "principalType": "ServicePrincipal", "description": "idlab plan t: reader"}});
    assert_eq!(lab.op("PUT", &ra(&name), Some(&body)).status, 201);
    assert_eq!(lab.op("PUT", &ra(&name), Some(&body)).status, 200);
    let other = lab.op("PUT", &ra(&uuid::Uuid::new_v4().to_string()), Some(&body));
    assert_eq!((other.status, other.code()), (409, "RoleAssignmentExists"));
    let bad = lab.op("PUT", &ra("not-a-guid"), Some(&body));
    assert_eq!((bad.status, bad.code()), (400, "InvalidRoleAssignmentId"));
    let listed = lab.op("GET", &format!("{rg}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=principalId%20eq%20'{principal}'"), None);
    assert_eq!(listed.body["value"].as_array().map(Vec::len), Some(1));
    let at_scope = lab.op(
        "GET",
        &format!("{rg}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01&$filter=atScope()"),
        None,
    );
    // The operator's Owner assignment (above) and ours (at the scope).
    assert_eq!(at_scope.body["value"].as_array().map(Vec::len), Some(2));
    // Definitions: exactly one match by name, and ids byte-identical to assignments'.
    let defs = lab.op("GET", &format!("{sub}/providers/Microsoft.Authorization/roleDefinitions?api-version=2022-04-01&$filter=roleName%20eq%20'Reader'"), None);
    let v = defs.body["value"].as_array().cloned().unwrap_or_default();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["id"], reader);
    assert_eq!(lab.op("GET", &ra(&name), None).body["properties"]["roleDefinitionId"], reader);
    assert_eq!(lab.op("DELETE", &ra(&name), None).status, 200);
    assert_eq!(lab.op("DELETE", &ra(&name), None).status, 204);
}

#[test]
fn arm_wide_behaviour() {
    let lab = Lab::start();
    let rg = lab.rg_path("MixedCase");
    let r = lab.op("PUT", &rg, Some(&json!({"location": "eastus"})));
    assert_eq!((r.status, r.code()), (400, "MissingApiVersionParameter"));
    let r = lab.op("PUT", &format!("{rg}?api-version=2099-01-01"), Some(&json!({"location": "eastus"})));
    assert_eq!((r.status, r.code()), (400, "InvalidApiVersionParameter"));
    assert!(r.body["error"]["message"].as_str().unwrap_or_default().contains("2025-04-01"));
    // Recent SDK versions are accepted.
    assert_eq!(
        lab.op("PUT", &format!("{rg}?api-version=2025-04-01"), Some(&json!({"location": "eastus"}))).status,
        201
    );
    // Case-insensitive, stored with the original case.
    let lower = format!("/subscriptions/{}/resourcegroups/mixedcase?api-version=2024-11-01", lab.sub());
    let r = lab.op("GET", &lower, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body["name"], "MixedCase");
    assert_eq!(lab.op("HEAD", &lower, None).status, 204);
    let r = lab.op("PUT", &lower, Some(&json!({"location": "westus"})));
    assert_eq!((r.status, r.code()), (409, "InvalidResourceGroupLocation"));
    let r = lab.op(
        "GET",
        &format!(
            "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nope?api-version=2024-11-30",
            lab.rg_path("absent")
        ),
        None,
    );
    assert_eq!((r.status, r.code()), (404, "ResourceGroupNotFound"));
    let r = lab.op(
        "GET",
        &format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nope?api-version=2024-11-30"),
        None,
    );
    assert_eq!((r.status, r.code()), (404, "ResourceNotFound"));
    let r = lab.op(
        "GET",
        &format!("{rg}/providers/Microsoft.Network/virtualNetworks/nope/subnets/x?api-version=2024-07-01"),
        None,
    );
    assert_eq!((r.status, r.code()), (404, "ParentResourceNotFound"));
    assert!(r.header("x-ms-correlation-request-id").is_some());
    // Tags: list by tag.
    let id = format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/tagged?api-version=2024-11-30");
    assert_eq!(lab.op("PUT", &id, Some(&json!({"location": "eastus", "tags": {"idlab-plan": "p1"}}))).status, 201);
    let listed = lab.op("GET", &format!("/subscriptions/{}/resources?api-version=2021-04-01&$filter=tagName%20eq%20'idlab-plan'%20and%20tagValue%20eq%20'p1'", lab.sub()), None);
    let names: Vec<&str> = listed.body["value"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["tagged"]);
}

#[test]
fn long_running_operations_report_progress_then_succeed() {
    let faults = Faults { lro_ms: 300, ..Faults::default() };
    let lab = Lab::with(faults);
    let nic = lab.network("lro", "nic1");
    let vm = format!("{}/providers/Microsoft.Compute/virtualMachines/vm1", lab.rg_path("lro"));
    let r = lab.op(
        "PUT",
        &format!("{vm}?api-version=2025-04-01"),
        Some(&lab.vm_body(&nic, json!({"type": "SystemAssigned"}))),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["properties"]["provisioningState"], "Creating");
    assert!(r.header("retry-after").is_some_and(|v| v.parse::<u64>().unwrap_or(0) >= 1));
    assert!(r.header("retry-after-ms").is_some());
    let status_url = r.header("azure-asyncoperation").expect("Azure-AsyncOperation");
    let first = lab.op("GET", &status_url, None);
    assert_eq!((first.status, first.body["status"].as_str()), (200, Some("InProgress")));
    let mut done = false;
    for _ in 0..200 {
        let s = lab.op("GET", &status_url, None);
        assert_eq!(s.status, 200);
        if s.body["status"] == "Succeeded" {
            done = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(done);
    assert_eq!(
        lab.op("GET", &format!("{vm}?api-version=2025-04-01"), None).body["properties"]["provisioningState"],
        "Succeeded"
    );
    // ETags: a stale If-Match is refused.
    let etag = lab.op("GET", &format!("{vm}?api-version=2025-04-01"), None).body["etag"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let stale = lab.send(
        Some(&lab.operator.clone()),
        "PATCH",
        &format!("{vm}?api-version=2025-04-01"),
        Some(&json!({"tags": {"a": "b"}})),
    );
    assert_eq!(stale.status, 200);
    let r = lab.rt.block_on(async {
        lab.http
            .patch(format!("{}{vm}?api-version=2025-04-01", lab.cloud.info.arm_url))
            .bearer_auth(&lab.operator)
            .header("If-Match", etag)
            .json(&json!({"tags": {"c": "d"}}))
            .send()
            .await
            .expect("sent")
            .status()
            .as_u16()
    });
    assert_eq!(r, 412);
    // Resource-group delete is a Location LRO.
    let r = lab.op("DELETE", &format!("{}?api-version=2024-11-01", lab.rg_path("lro")), None);
    assert_eq!(r.status, 202);
    let loc = r.header("location").expect("Location");
    let mut codes = vec![];
    for _ in 0..200 {
        let s = lab.op("GET", &loc, None);
        codes.push(s.status);
        if s.status == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(codes.first(), Some(&202));
    assert_eq!(codes.last(), Some(&200));
    assert_eq!(lab.op("GET", &format!("{vm}?api-version=2025-04-01"), None).status, 404);
}
