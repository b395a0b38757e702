//! The local cloud's Microsoft Graph (src/local/graph.rs), over HTTPS as tools call it:
//! `/v1.0/me` with an app token, service principals by id, by appId and by
//! `servicePrincipalNames`, and `directoryObjects/getByIds` with each object's type.

use serde_json::{Value, json};

use crate::lab::Lab;

const GRAPH: &str = "https://graph.microsoft.com/.default";

/// A principal made through the admin API: (client id, object id).
fn admin_principal(lab: &Lab) -> (String, String) {
    let r = lab.op("POST", "/_idlab/principals", Some(&json!({ "name": "graph-reader", "roles": [] })));
    assert_eq!(r.status, 200, "{}", r.body);
    (r.body["client_id"].as_str().unwrap_or_default().into(), r.body["object_id"].as_str().unwrap_or_default().into())
}

/// A user-assigned identity made through ARM: (client id, principal id, resource id).
fn identity(lab: &Lab) -> (String, String, String) {
    let rg = lab.rg_path("graph-rg");
    let r = lab.op("PUT", &format!("{rg}?api-version=2024-11-01"), Some(&json!({ "location": "eastus" })));
    assert!(r.status == 200 || r.status == 201, "{}", r.body);
    let id = format!("{rg}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/graph-id");
    let r = lab.op("PUT", &format!("{id}?api-version=2024-11-30"), Some(&json!({ "location": "eastus" })));
    assert!(r.status == 200 || r.status == 201, "{}", r.body);
    let p = &r.body["properties"];
    (p["clientId"].as_str().unwrap_or_default().into(), p["principalId"].as_str().unwrap_or_default().into(), id)
}

#[test]
fn me_with_an_app_token_is_graphs_bad_request_and_tokens_for_other_audiences_are_refused() {
    let lab = Lab::start();
    let graph = lab.operator_token_for(GRAPH);
    let r = lab.send(Some(&graph), "GET", "/v1.0/me", None);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.code(), "BadRequest");
    assert_eq!(r.body["error"]["message"], "/me request is only valid with delegated authentication flow.");
    assert!(r.body["error"]["innerError"]["request-id"].is_string(), "{}", r.body);
    // No token, and an ARM token: Graph's 401.
    let none = lab.send(None, "GET", "/v1.0/servicePrincipals", None);
    assert_eq!((none.status, none.code()), (401, "InvalidAuthenticationToken"), "{}", none.body);
    let arm = lab.send(Some(&lab.operator.clone()), "GET", "/v1.0/servicePrincipals", None);
    assert_eq!((arm.status, arm.code()), (401, "InvalidAuthenticationToken"), "{}", arm.body);
    // And a Graph token is no ARM token.
    let sub = lab.send(Some(&graph), "GET", &format!("/subscriptions/{}?api-version=2022-12-01", lab.sub()), None);
    assert_eq!((sub.status, sub.code()), (401, "InvalidAuthenticationTokenAudience"), "{}", sub.body);
}

#[test]
fn service_principals_by_id_app_id_and_service_principal_names() {
    let lab = Lab::start();
    let graph = lab.operator_token_for(GRAPH);
    let (client, oid) = admin_principal(&lab);
    let (mi_client, mi_oid, mi_id) = identity(&lab);
    let get = |path: &str| lab.send(Some(&graph), "GET", path, None);

    let by_filter = get(&format!("/v1.0/servicePrincipals?$filter=appId%20eq%20'{client}'"));
    assert_eq!(by_filter.status, 200, "{}", by_filter.body);
    let v = by_filter.body["value"].as_array().cloned().unwrap_or_default();
    assert_eq!(v.len(), 1, "{}", by_filter.body);
    assert_eq!(v[0]["id"], oid.as_str());
    assert_eq!(v[0]["servicePrincipalType"], "Application");
    assert!(by_filter.body["@odata.context"].as_str().unwrap_or_default().ends_with("#servicePrincipals"));

    let by_key = get(&format!("/v1.0/servicePrincipals(appId='{client}')"));
    assert_eq!((by_key.status, by_key.body["id"].as_str()), (200, Some(oid.as_str())), "{}", by_key.body);
    let by_id = get(&format!("/v1.0/servicePrincipals/{oid}"));
    assert_eq!((by_id.status, by_id.body["appId"].as_str()), (200, Some(client.as_str())), "{}", by_id.body);
    // The same through the `/graph` prefix of `/metadata/endpoints`.
    let prefixed = lab.send(Some(&graph), "GET", &format!("/graph/v1.0/servicePrincipals/{oid}"), None);
    assert_eq!(prefixed.body["appId"], client.as_str());

    // A managed identity, by the filter `az role assignment --assignee` and
    // `az keyvault set-policy --spn` send.
    let spn = get(&format!("/v1.0/servicePrincipals?$filter=servicePrincipalNames/any(c:c%20eq%20'{mi_client}')"));
    let v = spn.body["value"].as_array().cloned().unwrap_or_default();
    assert_eq!(v.len(), 1, "{}", spn.body);
    assert_eq!(v[0]["id"], mi_oid.as_str());
    assert_eq!(v[0]["servicePrincipalType"], "ManagedIdentity");
    assert!(v[0]["alternativeNames"].as_array().is_some_and(|a| a.contains(&json!(mi_id))), "{}", spn.body);
    assert!(v[0]["alternativeNames"].as_array().is_some_and(|a| a.contains(&json!("isExplicit=True"))));
    let nobody = get("/v1.0/servicePrincipals?$filter=servicePrincipalNames/any(c:c%20eq%20'nobody')");
    assert_eq!(nobody.body["value"], json!([]), "{}", nobody.body);

    let missing = get("/v1.0/servicePrincipals/00000000-0000-0000-0000-00000000abcd");
    assert_eq!((missing.status, missing.code()), (404, "Request_ResourceNotFound"), "{}", missing.body);
    let missing_app = get("/v1.0/servicePrincipals(appId='00000000-0000-0000-0000-00000000abcd')");
    assert_eq!(missing_app.status, 404, "{}", missing_app.body);
    let unsupported = get("/v1.0/servicePrincipals?$filter=homepage%20eq%20'x'");
    assert_eq!((unsupported.status, unsupported.code()), (400, "Request_UnsupportedQuery"), "{}", unsupported.body);
}

#[test]
fn get_by_ids_returns_the_known_principals_with_their_types() {
    let lab = Lab::start();
    let graph = lab.operator_token_for(GRAPH);
    let (_, oid) = admin_principal(&lab);
    let (_, mi_oid, _) = identity(&lab);
    let operator = lab.cloud.info.operator_object_id.clone();
    let unknown = "00000000-0000-0000-0000-00000000abcd";
    let ids = json!({ "ids": [mi_oid, oid, operator, unknown], "types": ["user", "group", "servicePrincipal", "directoryObjectPartnerReference"] });
    let r = lab.send(Some(&graph), "POST", "/v1.0/directoryObjects/getByIds", Some(&ids));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.body["value"].as_array().cloned().unwrap_or_default();
    let got: Vec<(&str, &str, &str)> = v
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap_or_default(),
                o["@odata.type"].as_str().unwrap_or_default(),
                o["servicePrincipalType"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (mi_oid.as_str(), "#microsoft.graph.servicePrincipal", "ManagedIdentity"),
            (oid.as_str(), "#microsoft.graph.servicePrincipal", "Application"),
            (operator.as_str(), "#microsoft.graph.servicePrincipal", "Application"),
        ]
    );
    // Only users asked for: none of them is one.
    let users = lab.send(
        Some(&graph),
        "POST",
        "/v1.0/directoryObjects/getByIds",
        Some(&json!({ "ids": [oid], "types": ["user"] })),
    );
    assert_eq!(users.body["value"], json!([]), "{}", users.body);
    // One object by id, with its type.
    let one = lab.send(Some(&graph), "GET", &format!("/v1.0/directoryObjects/{mi_oid}"), None);
    assert_eq!(one.body["@odata.type"], "#microsoft.graph.servicePrincipal", "{}", one.body);
    let bad: Value = lab.send(Some(&graph), "POST", "/v1.0/directoryObjects/getByIds", Some(&json!({}))).body;
    assert_eq!(bad["error"]["code"], "Request_BadRequest", "{bad}");
}
