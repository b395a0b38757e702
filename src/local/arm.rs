//! The ARM router of the local cloud: one catch-all handler that parses the (case-
//! insensitive) path itself, then checks, in order, the api-version, injected faults, the
//! bearer token and RBAC, and dispatches to the resource type (arm-contract §0–§4, §10).
//!
//! Semantics kept from Azure: creates answer 201 and updates 200; long-running operations
//! answer with `Azure-AsyncOperation` (VMs, networking) or `Location` (resource-group
//! delete) plus `Retry-After`; ids keep the casing they were created with; every response
//! carries `x-ms-request-id` and `x-ms-correlation-request-id`. State changes are applied
//! and journaled when the request is acknowledged; an operation given a duration by the
//! fault configuration then reports `InProgress` until it elapses.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::auth::{Caller, Refusal, Trust, bearer_check};
use super::http::{ArmError, empty, error_response, header, json_response, percent_decode, query_get, query_pairs};
use super::rbac::{self, Grant};
use super::shared::{LogEntry, Operation, Shared, guid, now_ms};
use super::store::{ImdsEndpoint, Op, Principal, Resource, State as CloudState};
use super::{admin, imds, keyvault, login, principals, versions};
use crate::arm::id::{ResourceId, is_scope_prefix};
use crate::roles;

/// The router: everything goes through one catch-all handler.
pub fn router(sh: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(entry).with_state(sh)
}

/// ARM audiences accepted for management tokens.
pub const ARM_AUDIENCES: &[&str] = &[
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    "https://management.azure.com/",
    "https://management.azure.com",
];

/// Canonical casing of the types served here.
fn canonical(type_lower: &str) -> Option<&'static str> {
    Some(match type_lower {
        "microsoft.managedidentity/userassignedidentities" => "Microsoft.ManagedIdentity/userAssignedIdentities",
        "microsoft.compute/virtualmachines" => "Microsoft.Compute/virtualMachines",
        "microsoft.network/virtualnetworks" => "Microsoft.Network/virtualNetworks",
        "microsoft.network/virtualnetworks/subnets" => "Microsoft.Network/virtualNetworks/subnets",
        "microsoft.network/networksecuritygroups" => "Microsoft.Network/networkSecurityGroups",
        "microsoft.network/publicipaddresses" => "Microsoft.Network/publicIPAddresses",
        "microsoft.network/networkinterfaces" => "Microsoft.Network/networkInterfaces",
        "microsoft.storage/storageaccounts" => "Microsoft.Storage/storageAccounts",
        "microsoft.storage/storageaccounts/blobservices/containers" => {
            "Microsoft.Storage/storageAccounts/blobServices/containers"
        }
        "microsoft.sql/servers" => "Microsoft.Sql/servers",
        "microsoft.sql/servers/databases" => "Microsoft.Sql/servers/databases",
        "microsoft.sql/servers/administrators" => "Microsoft.Sql/servers/administrators",
        "microsoft.sql/servers/azureadonlyauthentications" => "Microsoft.Sql/servers/azureADOnlyAuthentications",
        "microsoft.datalakestore/accounts" => super::datalake::TYPE,
        "microsoft.keyvault/vaults" => keyvault::VAULT_TYPE,
        "microsoft.keyvault/vaults/accesspolicies" => "Microsoft.KeyVault/vaults/accessPolicies",
        _ => return None,
    })
}

/// Types whose writes are long-running operations polled through `Azure-AsyncOperation`.
fn is_lro(type_lower: &str) -> bool {
    type_lower.starts_with("microsoft.compute/")
        || type_lower.starts_with("microsoft.network/")
        || type_lower == "microsoft.datalakestore/accounts"
}

/// Types that expose an `etag` and honour `If-Match`.
fn has_etag(type_lower: &str) -> bool {
    type_lower.starts_with("microsoft.compute/") || type_lower.starts_with("microsoft.network/")
}

/// Types whose every write answers 202 and is polled to its end (the SQL resource provider).
fn always_accepted(type_lower: &str) -> bool {
    type_lower.starts_with("microsoft.sql/")
}

/// Everything a handler needs about the request.
struct Req<'a> {
    sh: &'a Arc<Shared>,
    method: Method,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
    caller: Option<Caller>,
    api_version: String,
}

/// What a request addresses.
#[derive(Debug, Clone)]
enum Route {
    Subscriptions,
    Subscription,
    ResourceGroups,
    ResourceGroup(String),
    Resources(Option<String>),
    RoleDefinitions(String),
    RoleDefinition(String, String),
    RoleAssignments(String),
    RoleAssignment(String, String),
    SystemIdentity(String),
    Collection(String, String),
    Resource(ResourceId),
}

impl Route {
    /// The lower-cased type used for the api-version check.
    fn type_lower(&self) -> String {
        match self {
            Route::Subscriptions | Route::Subscription => "microsoft.resources/subscriptions".into(),
            Route::ResourceGroups | Route::ResourceGroup(_) => "microsoft.resources/resourcegroups".into(),
            Route::Resources(_) => "microsoft.resources/resources".into(),
            Route::RoleDefinitions(_) | Route::RoleDefinition(..) => "microsoft.authorization/roledefinitions".into(),
            Route::RoleAssignments(_) | Route::RoleAssignment(..) => "microsoft.authorization/roleassignments".into(),
            Route::SystemIdentity(_) => "microsoft.managedidentity/identities".into(),
            Route::Collection(_, t) => t.to_ascii_lowercase(),
            Route::Resource(id) => id.resource_type().unwrap_or_default().to_ascii_lowercase(),
        }
    }
}

/// Parse an ARM path; `Err` is the 404 to answer.
fn parse_route(path: &str, sub: &str) -> Result<Route, ArmError> {
    let raw = path.trim_end_matches('/');
    let segs: Vec<String> = raw.split('/').skip(1).map(|s| percent_decode(s, false)).collect();
    let lower: Vec<String> = segs.iter().map(|s| s.to_ascii_lowercase()).collect();
    let not_found = || ArmError::new(404, "NotFound", format!("The requested path '{path}' does not exist."));
    // Tenant-level role definitions.
    if lower.len() >= 3
        && lower[0] == "providers"
        && lower[1] == "microsoft.authorization"
        && lower[2] == "roledefinitions"
    {
        return match segs.get(3) {
            None => Ok(Route::RoleDefinitions(String::new())),
            Some(g) => Ok(Route::RoleDefinition(String::new(), g.clone())),
        };
    }
    if lower.first().map(String::as_str) != Some("subscriptions") {
        return Err(not_found());
    }
    if segs.len() == 1 {
        return Ok(Route::Subscriptions);
    }
    if !segs[1].eq_ignore_ascii_case(sub) {
        return Err(ArmError::new(
            404,
            "SubscriptionNotFound",
            format!("The subscription '{}' could not be found.", segs[1]),
        ));
    }
    // Extension resources of Microsoft.Authorization / ManagedIdentity at any scope.
    if let Some(p) = (0..lower.len()).rev().find(|&i| lower[i] == "providers" && i + 2 <= lower.len()) {
        let ns = lower.get(p + 1).map(String::as_str).unwrap_or_default();
        let scope = format!("/{}", segs[..p].join("/"));
        let t = lower.get(p + 2).map(String::as_str);
        if ns == "microsoft.authorization" {
            let name = segs.get(p + 3).cloned();
            return match (t, name) {
                (Some("roleassignments"), None) => Ok(Route::RoleAssignments(scope)),
                (Some("roleassignments"), Some(n)) if segs.len() == p + 4 => Ok(Route::RoleAssignment(scope, n)),
                (Some("roledefinitions"), None) => Ok(Route::RoleDefinitions(scope)),
                (Some("roledefinitions"), Some(n)) if segs.len() == p + 4 => Ok(Route::RoleDefinition(scope, n)),
                _ => Err(not_found()),
            };
        }
        if ns == "microsoft.managedidentity"
            && t == Some("identities")
            && lower.get(p + 3).map(String::as_str) == Some("default")
            && p > 2
        {
            return Ok(Route::SystemIdentity(scope));
        }
    }
    match lower.get(2).map(String::as_str) {
        None => return Ok(Route::Subscription),
        Some("resources") if segs.len() == 3 => return Ok(Route::Resources(None)),
        Some("resourcegroups") => match segs.len() {
            3 => return Ok(Route::ResourceGroups),
            4 => return Ok(Route::ResourceGroup(segs[3].clone())),
            5 if lower[4] == "resources" => return Ok(Route::Resources(Some(segs[3].clone()))),
            _ => {}
        },
        _ => {}
    }
    let start = if lower.get(2).map(String::as_str) == Some("resourcegroups") { 4 } else { 2 };
    if lower.get(start).map(String::as_str) != Some("providers") || segs.len() < start + 3 {
        return Err(not_found());
    }
    let rest = segs.len() - (start + 2);
    if rest % 2 == 1 {
        let parent = format!("/{}", segs[..start].join("/"));
        let mut types: Vec<&str> = vec![segs[start + 1].as_str()];
        let mut i = start + 2;
        let mut parent_id = parent;
        while i < segs.len() {
            types.push(segs[i].as_str());
            if i + 1 < segs.len() {
                parent_id = format!("/{}", segs[..i + 2].join("/"));
            }
            i += 2;
        }
        return Ok(Route::Collection(parent_id, types.join("/")));
    }
    ResourceId::parse(raw).map(Route::Resource).map_err(|_| not_found())
}

/// POST actions that only read.
fn is_read_action(lower_path: &str) -> bool {
    let last = lower_path.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
    matches!(last, "listkeys" | "listservicesas" | "listaccountsas" | "checknameavailability" | "getbyids")
}

fn write_method(m: &Method) -> bool {
    matches!(*m, Method::PUT | Method::PATCH | Method::DELETE) || *m == Method::POST
}

/// The single entry point.
async fn entry(State(sh): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = guid();
    let correlation = header(&headers, "x-ms-correlation-request-id").map_or_else(guid, str::to_string);
    // Clients that join a base URL ending in `/` with a path starting with `/` send `//…`.
    let mut path = uri.path().to_string();
    while path.contains("//") {
        path = path.replace("//", "/");
    }
    let query = query_pairs(uri.query());
    let mut principal = None;
    let mut write = false;
    let mut response = route(&sh, method.clone(), &path, query, headers, body, &mut principal, &mut write).await;
    let h = response.headers_mut();
    super::http::add_headers(
        h,
        &[
            ("x-ms-request-id", request_id.clone()),
            ("x-ms-correlation-request-id", correlation),
            ("x-ms-routing-request-id", format!("LOCAL:{}:{request_id}", time_tag())),
        ],
    );
    let kind = match method {
        Method::GET | Method::HEAD => "reads",
        Method::DELETE => "deletes",
        _ => "writes",
    };
    super::http::add_headers(h, &[(&format!("x-ms-ratelimit-remaining-subscription-{kind}"), "11999".to_string())]);
    sh.record(LogEntry {
        time_ms: now_ms(),
        method: method.to_string(),
        path,
        status: response.status().as_u16(),
        principal,
        write,
    });
    response
}

fn time_tag() -> String {
    let f = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::now_utc().format(f).unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
async fn route(
    sh: &Arc<Shared>,
    method: Method,
    path: &str,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
    principal: &mut Option<String>,
    write: &mut bool,
) -> Response {
    let lower = path.to_ascii_lowercase();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    // Discovery and login (no bearer token).
    if lower.starts_with("/metadata/endpoints") && method == Method::GET {
        return login::metadata(sh);
    }
    if segs.len() >= 3 && lower.ends_with("/.well-known/openid-configuration") {
        return login::openid(sh, segs[0], segs.get(1) == Some(&"v2.0"));
    }
    if method == Method::POST
        && (lower.ends_with("/oauth2/v2.0/token") || lower.ends_with("/oauth2/token"))
        && segs.len() >= 3
    {
        return login::token(sh, segs[0], lower.ends_with("/v2.0/token"), &body);
    }
    if lower.starts_with("/common/discovery/instance") {
        return json_response(
            200,
            &json!({"tenant_discovery_endpoint": format!("{}/{}/v2.0/.well-known/openid-configuration", sh.base_url, sh.info.tenant_id), "api-version": "1.1", "metadata": []}),
            &[],
        );
    }
    let caller = match authenticate(sh, &headers) {
        Ok(c) => Some(c),
        Err(e) if lower.starts_with("/_idlab/health") => {
            let _ = e;
            None
        }
        Err(e)
            if lower.starts_with("/subscriptions")
                || lower.starts_with("/providers")
                || lower.starts_with("/_idlab") =>
        {
            // api-version is checked before authentication, as ARM's gateway does.
            if (lower.starts_with("/subscriptions") || lower.starts_with("/providers"))
                && query_get(&query, "api-version").is_none()
            {
                return error_response(&missing_api_version());
            }
            return error_response(&e);
        }
        Err(_) => None,
    };
    *principal = caller.as_ref().map(|c| c.object_id.clone());
    if lower.starts_with("/_idlab") {
        if lower.starts_with("/_idlab/operations/") {
            return operation_status(sh, segs.get(2).copied().unwrap_or_default(), &query);
        }
        *write = matches!(method, Method::PUT | Method::POST | Method::DELETE | Method::PATCH)
            && !lower.starts_with("/_idlab/health");
        return admin::handle(sh, &method, &lower, &query, &body, caller.as_ref());
    }
    if lower.starts_with("/graph/") {
        return json_response(200, &json!({ "value": [] }), &[]);
    }
    // A write asks to change state, whatever the answer: PUT, PATCH, DELETE and POSTs other
    // than read-only actions (listKeys, listServiceSas, checkNameAvailability, …).
    *write = write_method(&method) && !(method == Method::POST && is_read_action(&lower));
    let sub = sh.info.subscription_id.clone();
    let r = match parse_route(path, &sub) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let Some(version) = query_get(&query, "api-version").map(str::to_string) else {
        return error_response(&missing_api_version());
    };
    let type_lower = r.type_lower();
    match versions::accepted(&type_lower) {
        None => {
            let ns = type_lower.split('/').next().unwrap_or_default();
            return error_response(&ArmError::new(
                400,
                "NoRegisteredProviderFound",
                format!(
                    "No registered resource provider found for location 'eastus' and API version '{version}' for type '{}'. The local cloud serves: resource groups, userAssignedIdentities, virtualNetworks, networkSecurityGroups, publicIPAddresses, networkInterfaces, virtualMachines, storageAccounts, blobServices/containers, Key Vault vaults (with deletedVaults and accessPolicies), Microsoft.Sql servers (with databases, administrators and azureADOnlyAuthentications), DataLakeStore accounts, roleAssignments and roleDefinitions (namespace '{ns}').",
                    type_lower.split('/').skip(1).collect::<Vec<_>>().join("/")
                ),
            ));
        }
        Some(ok) if !ok.contains(&version.as_str()) => {
            return error_response(&ArmError::new(
                400,
                "InvalidApiVersionParameter",
                format!(
                    "The api-version '{version}' is invalid for type '{}' in location 'eastus'. The supported versions are '{}'.",
                    display_type(&type_lower),
                    versions::listing(ok)
                ),
            ));
        }
        Some(_) => {}
    }
    // Injected faults.
    let faults = sh.faults();
    let latency = faults.latency(&type_lower);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if sh.chance(faults.drop_rate) {
        return dropped();
    }
    if sh.chance(faults.throttle_rate) {
        let ms = faults.scaled(faults.retry_after_s.max(1) * 1000).as_millis().max(1);
        return error_response(
            &ArmError::new(429, "TooManyRequests", "The request is being throttled as the limit has been reached for operation type - Read_ObservationWindow_00:05:00. For more information, see - https://aka.ms/srpthrottlinglimits")
                .header("retry-after", faults.retry_after_s.max(1).to_string())
                .header("retry-after-ms", ms.to_string()),
        );
    }
    if sh.chance(faults.error_500_rate) {
        return error_response(&ArmError::new(
            500,
            "InternalServerError",
            "Encountered internal server error. Diagnostic information: timestamp '', subscription id '', tracking id '', request correlation id ''.",
        ));
    }
    if sh.chance(faults.error_503_rate) {
        return error_response(
            &ArmError::new(503, "ServiceUnavailable", "The service is temporarily unavailable. Please retry.")
                .header("retry-after", "1"),
        );
    }
    let Some(caller) = caller else {
        return error_response(&auth_missing());
    };
    let mut req = Req { sh, method, query, headers, body, caller: Some(caller), api_version: version };
    let result = dispatch(&mut req, r);
    match result {
        Ok(resp) => resp,
        Err(e) => error_response(&e),
    }
}

fn display_type(type_lower: &str) -> String {
    let other = match type_lower {
        "microsoft.resources/resourcegroups" => Some("Microsoft.Resources/resourceGroups"),
        "microsoft.resources/subscriptions" => Some("Microsoft.Resources/subscriptions"),
        "microsoft.resources/resources" => Some("Microsoft.Resources/resources"),
        "microsoft.authorization/roleassignments" => Some("Microsoft.Authorization/roleAssignments"),
        "microsoft.authorization/roledefinitions" => Some("Microsoft.Authorization/roleDefinitions"),
        "microsoft.managedidentity/identities" => Some("Microsoft.ManagedIdentity/identities"),
        _ => None,
    };
    canonical(type_lower).or(other).map_or_else(|| type_lower.to_string(), str::to_string)
}

fn dropped() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "dropped by fault injection",
        ))
    });
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = axum::http::StatusCode::OK;
    r
}

fn missing_api_version() -> ArmError {
    ArmError::new(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )
}

fn auth_missing() -> ArmError {
    ArmError::new(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
}

fn www_auth(sh: &Shared, description: &str) -> String {
    format!(
        "Bearer authorization_uri=\"{}/{}\", error=\"invalid_token\", error_description=\"{description}\"",
        sh.base_url, sh.info.tenant_id
    )
}

/// Check the bearer token of an ARM request.
fn authenticate(sh: &Shared, headers: &HeaderMap) -> Result<Caller, ArmError> {
    let Some(h) = header(headers, "authorization") else {
        return Err(auth_missing().header(
            "www-authenticate",
            www_auth(sh, "The authentication failed because of missing 'Authorization' header."),
        ));
    };
    let Some(token) = h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")) else {
        return Err(ArmError::new(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        )
        .header(
            "www-authenticate",
            www_auth(sh, "The authentication failed because of invalid 'Authorization' header."),
        ));
    };
    let st = sh.store();
    let trust = Trust { key: &sh.key, tenant: &sh.info.tenant_id, state: &st.state };
    bearer_check(&trust, token, |aud| ARM_AUDIENCES.contains(&aud)).map_err(|refusal| match refusal {
        Refusal::Expired { exp, now } => {
            let fmt = |t: i64| {
                time::OffsetDateTime::from_unix_timestamp(t)
                    .map(|d| d.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
                    .unwrap_or_default()
            };
            ArmError::new(
                401,
                "ExpiredAuthenticationToken",
                format!(
                    "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                    fmt(exp),
                    fmt(now)
                ),
            )
            .header("www-authenticate", www_auth(sh, "The access token has expired."))
        }
        Refusal::NotYetValid { nbf } => ArmError::new(
            401,
            "InvalidAuthenticationToken",
            format!("The access token is not valid yet: it is valid from '{nbf}' (Unix time)."),
        )
        .header("www-authenticate", www_auth(sh, "The access token is not yet valid.")),
        Refusal::Invalid => ArmError::new(401, "InvalidAuthenticationToken", "The access token is invalid.")
            .header("www-authenticate", www_auth(sh, "The access token is invalid.")),
        Refusal::WrongTenant { iss } => ArmError::new(401, "InvalidAuthenticationTokenTenant", format!("The access token is from the wrong issuer '{iss}'. It must match the tenant 'https://sts.windows.net/{}/' associated with this subscription. Please use the authority (URL) '{}/{}' to get the token.", sh.info.tenant_id, sh.base_url, sh.info.tenant_id))
            .header("www-authenticate", www_auth(sh, "The access token is from the wrong issuer.")),
        Refusal::WrongAudience { aud } => ArmError::new(401, "InvalidAuthenticationTokenAudience", format!("The access token has been obtained for wrong audience or resource '{aud}'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'."))
            .header("www-authenticate", www_auth(sh, "The access token has been obtained for wrong audience or resource.")),
        Refusal::UnknownPrincipal => ArmError::new(
            401,
            "InvalidAuthenticationToken",
            "The access token is invalid: its principal no longer exists.",
        )
        .header("www-authenticate", www_auth(sh, "The access token is invalid.")),
    })
}

fn authorization_failed(c: &Caller, action: &str, scope: &str) -> ArmError {
    ArmError::new(
        403,
        "AuthorizationFailed",
        format!(
            "The client '{}' with object id '{}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
            c.client_id, c.object_id
        ),
    )
}

/// Require `action` at `scope` for the caller.
fn authorize(req: &Req<'_>, action: &str, scope: &str) -> Result<(), ArmError> {
    let Some(c) = &req.caller else { return Err(auth_missing()) };
    let g = rbac::grants(&req.sh.store().state, now_ms());
    if rbac::allowed(&g, &c.object_id, scope, action, false) {
        Ok(())
    } else {
        Err(authorization_failed(c, action, scope))
    }
}

fn can_read(g: &[Grant], c: &Caller, action: &str, scope: &str) -> bool {
    rbac::allowed(g, &c.object_id, scope, action, false)
}

fn verb(m: &Method) -> &'static str {
    match *m {
        Method::GET | Method::HEAD => "read",
        Method::DELETE => "delete",
        _ => "write",
    }
}

fn dispatch(req: &mut Req<'_>, r: Route) -> Result<Response, ArmError> {
    let sub_scope = format!("/subscriptions/{}", req.sh.info.subscription_id);
    match r {
        Route::Subscriptions => subscriptions(req),
        Route::Subscription => {
            authorize(req, "Microsoft.Resources/subscriptions/read", &sub_scope)?;
            Ok(json_response(200, &subscription_body(req.sh), &[]))
        }
        Route::ResourceGroups => list_groups(req),
        Route::ResourceGroup(name) => resource_group(req, &name),
        Route::Resources(rg) => list_resources(req, rg.as_deref()),
        Route::RoleDefinitions(scope) => role_definitions(req, &scope),
        Route::RoleDefinition(scope, g) => role_definition(req, &scope, &g),
        Route::RoleAssignments(scope) => list_role_assignments(req, &scope),
        Route::RoleAssignment(scope, name) => role_assignment(req, &scope, &name),
        Route::SystemIdentity(res) => system_identity(req, &res),
        Route::Collection(parent, t) if req.method == Method::POST => action(req, &parent, &t),
        Route::Collection(_, t) if t.eq_ignore_ascii_case("Microsoft.KeyVault/deletedVaults") => deleted_vaults(req),
        Route::Collection(parent, t) => list_collection(req, &parent, &t),
        Route::Resource(id)
            if id
                .resource_type()
                .is_some_and(|t| t.eq_ignore_ascii_case("Microsoft.KeyVault/locations/deletedVaults")) =>
        {
            deleted_vault(req, &id)
        }
        Route::Resource(id) => resource(req, &id),
    }
}

fn subscription_body(sh: &Shared) -> Value {
    json!({
        "id": format!("/subscriptions/{}", sh.info.subscription_id),
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "subscriptionId": sh.info.subscription_id,
        "tenantId": sh.info.tenant_id,
        "displayName": sh.store().state.subscription_name,
        "state": "Enabled",
        "subscriptionPolicies": { "locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off" },
    })
}

fn subscriptions(req: &Req<'_>) -> Result<Response, ArmError> {
    let Some(c) = &req.caller else { return Err(auth_missing()) };
    let sub_scope = format!("/subscriptions/{}", req.sh.info.subscription_id);
    let visible = {
        let st = req.sh.store();
        rbac::grants(&st.state, now_ms()).iter().any(|g| {
            g.principal_id.eq_ignore_ascii_case(&c.object_id)
                && (is_scope_prefix(&sub_scope, &g.scope) || is_scope_prefix(&g.scope, &sub_scope))
        })
    };
    let value: Vec<Value> = if visible { vec![subscription_body(req.sh)] } else { Vec::new() };
    let n = value.len();
    Ok(json_response(200, &json!({ "value": value, "count": { "type": "Total", "value": n } }), &[]))
}

fn rg_id(sh: &Shared, name: &str) -> String {
    format!("/subscriptions/{}/resourceGroups/{name}", sh.info.subscription_id)
}

fn rg_not_found(name: &str) -> ArmError {
    ArmError::new(404, "ResourceGroupNotFound", format!("Resource group '{name}' could not be found."))
}

fn parse_body(req: &Req<'_>) -> Result<Value, ArmError> {
    if req.body.is_empty() {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_slice(&req.body).map_err(|e| {
        ArmError::new(
            400,
            "InvalidRequestContent",
            format!("The request content was invalid and could not be deserialized: '{e}'."),
        )
    })?;
    if !v.is_object() {
        return Err(ArmError::new(
            400,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized: expected a JSON object.",
        ));
    }
    Ok(v)
}

fn resource_group(req: &mut Req<'_>, name: &str) -> Result<Response, ArmError> {
    let id = rg_id(req.sh, name);
    let key = id.to_ascii_lowercase();
    let action = format!("Microsoft.Resources/subscriptions/resourceGroups/{}", verb(&req.method));
    authorize(req, &action, &id)?;
    let existing = req.sh.store().state.resources.get(&key).cloned();
    match req.method {
        Method::GET => existing.map(|r| json_response(200, &r.body, &[])).ok_or_else(|| rg_not_found(name)),
        Method::HEAD => Ok(empty(if existing.is_some() { 204 } else { 404 }, &[])),
        Method::PUT => {
            let body = parse_body(req)?;
            let Some(location) = body.get("location").and_then(Value::as_str).map(str::to_string) else {
                return Err(ArmError::new(
                    400,
                    "LocationRequired",
                    "The location property is required for this definition.",
                ));
            };
            if name.is_empty()
                || name.len() > 90
                || name.ends_with('.')
                || !name.chars().all(|c| c.is_alphanumeric() || "-_.()".contains(c))
            {
                return Err(ArmError::new(
                    400,
                    "InvalidResourceGroupName",
                    format!("The provided resource group name '{name}' has these invalid characters or is too long."),
                ));
            }
            if let Some(old) = &existing {
                let old_loc = old.body.get("location").and_then(Value::as_str).unwrap_or_default();
                if !old_loc.eq_ignore_ascii_case(&location.replace(' ', "")) && !old_loc.eq_ignore_ascii_case(&location)
                {
                    return Err(ArmError::new(
                        409,
                        "InvalidResourceGroupLocation",
                        format!(
                            "Invalid resource group location '{location}'. The Resource group already exists in location '{old_loc}'."
                        ),
                    ));
                }
            }
            let stored_id = existing.as_ref().map_or(id.clone(), |r| r.id.clone());
            let stored_name = existing
                .as_ref()
                .and_then(|r| r.body.get("name").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| name.to_string());
            let mut out = json!({ "id": stored_id, "name": stored_name, "type": "Microsoft.Resources/resourceGroups", "location": normalize_location(&location), "properties": { "provisioningState": "Succeeded" } });
            if let Some(t) = body.get("tags").filter(|t| t.is_object()) {
                out["tags"] = t.clone();
            }
            if let Some(m) = body.get("managedBy").filter(|m| m.is_string()) {
                out["managedBy"] = m.clone();
            }
            let r = Resource {
                id: stored_id,
                kind: "Microsoft.Resources/resourceGroups".into(),
                body: out.clone(),
                etag: existing.as_ref().map_or(1, |r| r.etag + 1),
                created_ms: existing.as_ref().map_or_else(now_ms, |r| r.created_ms),
                busy_until_ms: 0,
                effective_ms: None,
            };
            req.sh.commit(vec![Op::PutResource { resource: r }])?;
            Ok(json_response(if existing.is_some() { 200 } else { 201 }, &out, &[]))
        }
        Method::PATCH => {
            let Some(mut r) = existing else { return Err(rg_not_found(name)) };
            let body = parse_body(req)?;
            if let Some(t) = body.get("tags") {
                r.body["tags"] = t.clone();
            }
            if let Some(m) = body.get("managedBy") {
                r.body["managedBy"] = m.clone();
            }
            r.etag += 1;
            let out = r.body.clone();
            req.sh.commit(vec![Op::PutResource { resource: r }])?;
            Ok(json_response(200, &out, &[]))
        }
        Method::DELETE => {
            let Some(r) = existing else { return Err(rg_not_found(name)) };
            let ops = cascade_delete(req.sh, &r.id);
            stop_listeners(req.sh, &ops);
            req.sh.commit(ops)?;
            let op = start_operation(req.sh, "microsoft.resources/resourcegroups", None);
            Ok(empty(202, &lro_headers(req, &op, true)))
        }
        _ => Err(method_not_allowed()),
    }
}

fn method_not_allowed() -> ArmError {
    ArmError::new(405, "MethodNotAllowed", "The requested method is not supported for this resource.")
}

fn normalize_location(l: &str) -> String {
    l.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

/// Every op that deletes a scope and what lives under it (resources, assignments,
/// principals of identities and system identities, identity endpoints).
fn cascade_delete(sh: &Shared, scope: &str) -> Vec<Op> {
    let st = sh.store();
    let mut ops = Vec::new();
    for (key, r) in st.state.resources.iter() {
        let scoped_ra = r.kind.eq_ignore_ascii_case("Microsoft.Authorization/roleAssignments")
            && r.body.pointer("/properties/scope").and_then(Value::as_str).is_some_and(|s| is_scope_prefix(scope, s));
        if is_scope_prefix(scope, &r.id) || scoped_ra {
            ops.push(Op::DeleteResource { key: key.clone() });
            ops.extend(principal_cleanup(&st.state, r));
        }
    }
    ops
}

/// Stop the endpoints of what `ops` deletes: VMs' identity endpoints, vaults' data planes.
fn stop_listeners(sh: &Shared, ops: &[Op]) {
    for op in ops {
        match op {
            Op::DeleteImds { key } => imds::stop(sh, key),
            Op::PutDeletedVault { name, .. } => keyvault::stop(sh, name),
            Op::DeleteDataPaths { .. } => super::datalake::stop_for(sh, op),
            _ => {}
        }
    }
}

/// Ops removing the principals and endpoints a resource owns; a vault is soft-deleted.
fn principal_cleanup(st: &CloudState, r: &Resource) -> Vec<Op> {
    let mut ops = Vec::new();
    if r.kind == keyvault::VAULT_TYPE {
        let name = r.id.rsplit('/').next().unwrap_or_default().to_ascii_lowercase();
        ops.push(Op::PutDeletedVault { name, vault: Box::new(keyvault::soft_delete(r, now_ms())) });
    }
    // Storage: the blobs of an account or container go with it.
    if r.kind == "Microsoft.Storage/storageAccounts"
        || r.kind == "Microsoft.Storage/storageAccounts/blobServices/containers"
    {
        let mut parts = r.id.split('/').rev();
        let (prefix, paths) = if r.kind.ends_with("/containers") {
            let c = parts.next().unwrap_or_default().to_ascii_lowercase();
            let _ = parts.nth(2);
            let a = parts.next().unwrap_or_default().to_ascii_lowercase();
            (format!("{a}/{c}/"), super::dfs::delete_paths(&a, Some(&c)))
        } else {
            let a = parts.next().unwrap_or_default().to_ascii_lowercase();
            (format!("{a}/"), super::dfs::delete_paths(&a, None))
        };
        ops.push(Op::DeleteBlobs { prefix });
        // And so do their Data Lake Gen2 paths.
        ops.push(paths);
    }
    // A Data Lake Store's files and folders go with it.
    if r.kind == super::datalake::TYPE {
        ops.push(super::datalake::delete_paths(r.id.rsplit('/').next().unwrap_or_default()));
    }
    for p in st.principals.values() {
        if p.resource_id.as_deref().is_some_and(|rid| rid.eq_ignore_ascii_case(&r.id)) {
            ops.push(Op::DeletePrincipal { object_id: p.object_id.clone() });
        }
    }
    let key = r.id.to_ascii_lowercase();
    if st.imds.contains_key(&key) {
        ops.push(Op::DeleteImds { key });
    }
    ops
}

/// Register a long-running operation; returns its id.
fn start_operation(sh: &Shared, type_lower: &str, resource: Option<String>) -> String {
    let id = guid();
    let now = now_ms();
    let dur = sh.faults().lro(type_lower).as_millis() as u64;
    sh.ops
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone(), Operation { done_ms: now + dur, failed: None, resource, started_ms: now });
    id
}

/// `Retry-After` (whole seconds, at least 1, as Azure sends) and `retry-after-ms` (the
/// time the operation really needs, so fast clients need not wait whole seconds).
fn retry_headers(sh: &Shared, remaining_ms: Option<u64>) -> Vec<(&'static str, String)> {
    let f = sh.faults();
    let secs = f.retry_after_s.max(1);
    let scaled = f.scaled(secs * 1000).as_millis() as u64;
    let ms = remaining_ms.map_or(scaled, |r| r.min(scaled)).max(1);
    vec![("retry-after", secs.to_string()), ("retry-after-ms", ms.to_string())]
}

fn remaining(sh: &Shared, op: &str) -> Option<u64> {
    let ops = sh.ops.lock().unwrap_or_else(|p| p.into_inner());
    ops.get(op).map(|o| o.done_ms.saturating_sub(now_ms()))
}

fn lro_headers(req: &Req<'_>, op: &str, location_only: bool) -> Vec<(&'static str, String)> {
    let base = &req.sh.base_url;
    let v = &req.api_version;
    let mut h = retry_headers(req.sh, remaining(req.sh, op));
    h.push(("location", format!("{base}/_idlab/operations/{op}?api-version={v}&monitor=location")));
    if !location_only {
        h.push(("azure-asyncoperation", format!("{base}/_idlab/operations/{op}?api-version={v}")));
    }
    h
}

/// `GET /_idlab/operations/{id}`: the status of a long-running operation.
fn operation_status(sh: &Shared, id: &str, query: &[(String, String)]) -> Response {
    let op = sh.ops.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned();
    let Some(op) = op else {
        return error_response(&ArmError::new(
            404,
            "OperationNotFound",
            format!("The operation '{id}' could not be found."),
        ));
    };
    let now = now_ms();
    let done = now >= op.done_ms;
    let fmt = |ms: u64| {
        time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
            .map(|d| d.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
            .unwrap_or_default()
    };
    if query_get(query, "monitor") == Some("location") {
        if !done {
            return empty(202, &retry_headers(sh, Some(op.done_ms.saturating_sub(now))));
        }
        if let Some(rid) = &op.resource {
            // The final answer is the resource as its GET shows it: never the stored body,
            // which holds internal fields (a storage account's keys).
            let body = sh.store().state.resources.get(&rid.to_ascii_lowercase()).map(|r| present(r, now));
            if let Some(b) = body {
                return json_response(200, &b, &[]);
            }
        }
        return empty(200, &[]);
    }
    let mut body = json!({ "id": format!("{}/_idlab/operations/{id}", sh.base_url), "name": id, "status": if done { "Succeeded" } else { "InProgress" }, "startTime": fmt(op.started_ms) });
    if done {
        body["endTime"] = json!(fmt(op.done_ms));
        if let Some((code, message)) = op.failed {
            body["status"] = json!("Failed");
            body["error"] = json!({ "code": code, "message": message });
        }
        json_response(200, &body, &[])
    } else {
        body["percentComplete"] = json!(50);
        json_response(200, &body, &retry_headers(sh, Some(op.done_ms.saturating_sub(now))))
    }
}

fn list_groups(req: &Req<'_>) -> Result<Response, ArmError> {
    let Some(c) = &req.caller else { return Err(auth_missing()) };
    let filter = tag_filter(query_get(&req.query, "$filter"))?;
    let st = req.sh.store();
    let g = rbac::grants(&st.state, now_ms());
    let value: Vec<Value> = st
        .state
        .resources
        .values()
        .filter(|r| r.kind == "Microsoft.Resources/resourceGroups")
        .filter(|r| can_read(&g, c, "Microsoft.Resources/subscriptions/resourceGroups/read", &r.id))
        .filter(|r| filter.as_ref().is_none_or(|f| f.matches(&r.body)))
        .map(|r| r.body.clone())
        .collect();
    Ok(json_response(200, &json!({ "value": value }), &[]))
}

/// `$filter=tagName eq 'k' and tagValue eq 'v'` / `resourceType eq 'T'`.
#[derive(Debug, Default)]
struct Filter {
    tag_name: Option<String>,
    tag_value: Option<String>,
    resource_type: Option<String>,
}

impl Filter {
    fn matches(&self, body: &Value) -> bool {
        if let Some(t) = &self.resource_type
            && !body.get("type").and_then(Value::as_str).is_some_and(|x| x.eq_ignore_ascii_case(t))
        {
            return false;
        }
        if let Some(n) = &self.tag_name {
            let tags = body.get("tags").and_then(Value::as_object);
            let Some(v) = tags.and_then(|t| t.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v)) else {
                return false;
            };
            if let Some(want) = &self.tag_value {
                return v.as_str() == Some(want.as_str());
            }
        }
        true
    }
}

fn tag_filter(f: Option<&str>) -> Result<Option<Filter>, ArmError> {
    let Some(f) = f else { return Ok(None) };
    let mut out = Filter::default();
    for clause in split_and(f) {
        let (k, v) = clause.split_once(" eq ").ok_or_else(|| bad_filter(f))?;
        let v = v.trim().trim_matches('\'').to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "tagname" => out.tag_name = Some(v),
            "tagvalue" => out.tag_value = Some(v),
            "resourcetype" => out.resource_type = Some(v),
            _ => return Err(bad_filter(f)),
        }
    }
    Ok(Some(out))
}

fn split_and(f: &str) -> Vec<String> {
    let lower = f.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(i) = lower[start..].find(" and ") {
        out.push(f[start..start + i].to_string());
        start += i + 5;
    }
    out.push(f[start..].to_string());
    out
}

fn bad_filter(f: &str) -> ArmError {
    ArmError::new(400, "InvalidFilterInQueryString", format!("Invalid $filter '{f}' specified in the query string."))
}

fn list_resources(req: &Req<'_>, rg: Option<&str>) -> Result<Response, ArmError> {
    let Some(c) = &req.caller else { return Err(auth_missing()) };
    let scope = match rg {
        Some(name) => {
            let id = rg_id(req.sh, name);
            if !req.sh.store().state.resources.contains_key(&id.to_ascii_lowercase()) {
                return Err(rg_not_found(name));
            }
            id
        }
        None => format!("/subscriptions/{}", req.sh.info.subscription_id),
    };
    let filter = tag_filter(query_get(&req.query, "$filter"))?;
    let st = req.sh.store();
    let g = rbac::grants(&st.state, now_ms());
    let value: Vec<Value> = st
        .state
        .resources
        .values()
        .filter(|r| {
            // Tracked resources only: no groups, role assignments or proxy child resources
            // (subnets, blob containers). SQL databases are tracked (location, tags), so ARM
            // lists them.
            r.kind != "Microsoft.Resources/resourceGroups"
                && !r.kind.starts_with("Microsoft.Authorization/")
                && (r.kind.matches('/').count() == 1 || r.kind == "Microsoft.Sql/servers/databases")
        })
        .filter(|r| is_scope_prefix(&scope, &r.id))
        .filter(|r| can_read(&g, c, &format!("{}/read", r.kind), &r.id))
        .filter(|r| filter.as_ref().is_none_or(|f| f.matches(&r.body)))
        .map(|r| {
            let mut o = Map::new();
            for k in ["id", "name", "type", "kind", "location", "tags", "sku", "identity", "managedBy"] {
                if let Some(v) = r.body.get(k) {
                    o.insert(k.into(), v.clone());
                }
            }
            Value::Object(o)
        })
        .collect();
    Ok(json_response(200, &json!({ "value": value }), &[]))
}

fn list_collection(req: &Req<'_>, parent: &str, t: &str) -> Result<Response, ArmError> {
    let Some(c) = &req.caller else { return Err(auth_missing()) };
    let tl = t.to_ascii_lowercase();
    let parent_id = ResourceId::parse(parent).map_err(|_| ArmError::new(404, "NotFound", "Not found."))?;
    if let Some(rg) = &parent_id.resource_group
        && !req.sh.store().state.resources.contains_key(&rg_id(req.sh, rg).to_ascii_lowercase())
    {
        return Err(rg_not_found(rg));
    }
    let st = req.sh.store();
    let g = rbac::grants(&st.state, now_ms());
    if tl == "microsoft.network/virtualnetworks/subnets" {
        let vnet = st.state.resources.get(&parent.to_ascii_lowercase()).ok_or_else(|| parent_not_found(parent))?;
        let value = vnet.body.pointer("/properties/subnets").cloned().unwrap_or(json!([]));
        return Ok(json_response(200, &json!({ "value": value }), &[]));
    }
    let value: Vec<Value> = st
        .state
        .resources
        .values()
        .filter(|r| r.kind.eq_ignore_ascii_case(t))
        .filter(|r| is_scope_prefix(parent, &r.id))
        .filter(|r| can_read(&g, c, &format!("{}/read", r.kind), &r.id))
        .map(|r| present(r, now_ms()))
        .collect();
    Ok(json_response(200, &json!({ "value": value }), &[]))
}

/// POST actions: `checkNameAvailability`, `listKeys`, `ListServiceSas`.
fn action(req: &Req<'_>, parent: &str, t: &str) -> Result<Response, ArmError> {
    let tl = t.to_ascii_lowercase();
    let body = parse_body(req)?;
    if tl == "microsoft.storage/checknameavailability" {
        let st = req.sh.store();
        return Ok(json_response(200, &super::storage::check_name(&st.state, &body), &[]));
    }
    if tl == "microsoft.sql/checknameavailability" {
        authorize(req, "Microsoft.Sql/checkNameAvailability/action", parent)?;
        let st = req.sh.store();
        return Ok(json_response(200, &super::sql::check_name(&st.state, &body)?, &[]));
    }
    if tl == "microsoft.keyvault/checknameavailability" {
        let st = req.sh.store();
        return Ok(json_response(200, &keyvault::check_name(&st.state, &body), &[]));
    }
    if tl == "microsoft.keyvault/locations/deletedvaults/purge" {
        return purge_vault(req, parent);
    }
    let name = tl.rsplit('/').next().unwrap_or_default().to_string();
    if !tl.starts_with("microsoft.storage/storageaccounts/") || !matches!(name.as_str(), "listkeys" | "listservicesas")
    {
        return Err(ArmError::new(404, "NotFound", format!("No action '{t}' on '{parent}'.")));
    }
    let verb = if name == "listkeys" { "listkeys" } else { "ListServiceSas" };
    authorize(req, &format!("Microsoft.Storage/storageAccounts/{verb}/action"), parent)?;
    let account = req.sh.store().state.resources.get(&parent.to_ascii_lowercase()).map(|r| r.body.clone());
    let Some(account) = account else {
        let id = ResourceId::parse(parent).map_err(|_| ArmError::new(404, "NotFound", "Not found."))?;
        return Err(not_found(&id));
    };
    let out = if name == "listkeys" {
        super::storage::list_keys(&account)
    } else {
        super::storage::service_sas(&account, &body)?
    };
    Ok(json_response(200, &out, &[]))
}

fn parent_not_found(parent: &str) -> ArmError {
    let name = parent.rsplit('/').next().unwrap_or(parent);
    ArmError::new(
        404,
        "ParentResourceNotFound",
        format!(
            "Failed to perform 'write' on resource(s) of type '{}', because the parent resource '{parent}' could not be found.",
            name
        ),
    )
}

fn not_found(id: &ResourceId) -> ArmError {
    let t = id.resource_type().unwrap_or_default();
    let rg = id.resource_group.clone().unwrap_or_default();
    ArmError::new(
        404,
        "ResourceNotFound",
        format!(
            "The Resource '{}/{}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
            t,
            id.name().unwrap_or_default()
        ),
    )
}

/// The body as GET shows it now (provisioning state of busy operations).
fn present(r: &Resource, now: u64) -> Value {
    let mut b = r.body.clone();
    if let Some(o) = b.as_object_mut() {
        o.remove("_idlab");
    }
    if r.busy_until_ms > now
        && let Some(p) = b.get_mut("properties").and_then(Value::as_object_mut)
    {
        let state = if r.kind == keyvault::VAULT_TYPE {
            "RegisteringDns"
        } else if r.etag <= 1 {
            "Creating"
        } else {
            "Updating"
        };
        p.insert("provisioningState".into(), json!(state));
    }
    if has_etag(&r.kind.to_ascii_lowercase()) {
        b["etag"] = json!(format!("\"{}\"", r.etag));
    }
    b
}

fn system_identity(req: &Req<'_>, res: &str) -> Result<Response, ArmError> {
    authorize(req, "Microsoft.ManagedIdentity/identities/read", res)?;
    let st = req.sh.store();
    let r = st
        .state
        .resources
        .get(&res.to_ascii_lowercase())
        .ok_or_else(|| ArmError::new(404, "ResourceNotFound", format!("The Resource '{res}' was not found.")))?;
    let pid = r
        .body
        .pointer("/identity/principalId")
        .and_then(Value::as_str)
        .ok_or_else(|| ArmError::new(404, "ResourceNotFound", "The resource has no system-assigned identity."))?;
    let p = st
        .state
        .principals
        .get(pid)
        .ok_or_else(|| ArmError::new(404, "ResourceNotFound", "The system-assigned identity was not found."))?;
    Ok(json_response(
        200,
        &json!({
            "id": format!("{}/providers/Microsoft.ManagedIdentity/identities/default", r.id),
            "name": "default",
            "type": "Microsoft.ManagedIdentity/identities",
            "location": r.body.get("location"),
            "properties": { "tenantId": req.sh.info.tenant_id, "principalId": p.object_id, "clientId": p.client_id, "clientSecretUrl": format!("{}/_idlab/msi/{}", req.sh.base_url, p.object_id) },
        }),
        &[],
    ))
}

/// Deep merge for PATCH: objects merge recursively, `null` removes.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else if k == "tags" {
                    // ARM replaces `tags` as a whole on PATCH.
                    t.insert(k.clone(), v.clone());
                } else if let Some(existing) = t.get_mut(k)
                    && existing.is_object()
                    && v.is_object()
                {
                    merge(existing, v);
                } else {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn resource(req: &mut Req<'_>, id: &ResourceId) -> Result<Response, ArmError> {
    let tl = id.resource_type().unwrap_or_default().to_ascii_lowercase();
    let Some(canon) = canonical(&tl) else {
        return Err(ArmError::new(
            404,
            "InvalidResourceType",
            format!("The resource type '{}' could not be found.", id.resource_type().unwrap_or_default()),
        ));
    };
    let rg_name = id.resource_group.clone().unwrap_or_default();
    let action =
        if req.method == Method::POST { format!("{canon}/action") } else { format!("{canon}/{}", verb(&req.method)) };
    authorize(req, &action, id.as_str())?;
    if !req.sh.store().state.resources.contains_key(&rg_id(req.sh, &rg_name).to_ascii_lowercase()) {
        return Err(rg_not_found(&rg_name));
    }
    if tl == "microsoft.network/virtualnetworks/subnets" {
        return subnet(req, id);
    }
    if tl == "microsoft.sql/servers/administrators" || tl == "microsoft.sql/servers/azureadonlyauthentications" {
        return sql_server_setting(req, id, &tl);
    }
    if tl == "microsoft.keyvault/vaults/accesspolicies" {
        return access_policies(req, id);
    }
    let key = id.key();
    let existing = req.sh.store().state.resources.get(&key).cloned();
    if let Some(m) = header(&req.headers, "if-match") {
        let ok = m.trim() == "*" && existing.is_some()
            || existing.as_ref().is_some_and(|r| m.trim().trim_matches('"') == r.etag.to_string());
        if has_etag(&tl) && !ok {
            return Err(ArmError::new(
                412,
                "PreconditionFailed",
                format!("The condition '{m}' in the If-Match header was not satisfied."),
            ));
        }
    }
    if header(&req.headers, "if-none-match").map(str::trim) == Some("*") && existing.is_some() && has_etag(&tl) {
        return Err(ArmError::new(412, "PreconditionFailed", "The resource already exists (If-None-Match: *)."));
    }
    match req.method {
        Method::GET => {
            let r = existing.ok_or_else(|| not_found(id))?;
            let mut b = present(&r, now_ms());
            let expand_user_data = query_get(&req.query, "$expand").is_some_and(|e| e.eq_ignore_ascii_case("userData"));
            if !expand_user_data && let Some(p) = b.get_mut("properties").and_then(Value::as_object_mut) {
                p.remove("userData");
            }
            if canon.eq_ignore_ascii_case("Microsoft.Storage/storageAccounts")
                && query_get(&req.query, "$expand").is_some_and(|e| e.eq_ignore_ascii_case("geoReplicationStats"))
            {
                let now = time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                super::storage::expand_geo_stats(&mut b, &now);
            }
            Ok(json_response(200, &b, &[]))
        }
        Method::PUT | Method::PATCH => {
            let incoming = parse_body(req)?;
            let body = if req.method == Method::PATCH {
                let Some(r) = &existing else { return Err(not_found(id)) };
                let mut b = r.body.clone();
                let identity_patch = incoming.get("identity").cloned();
                merge(&mut b, &incoming);
                if let (Some(ip), Some(old)) = (identity_patch, r.body.get("identity")) {
                    b["identity"] = patch_identity(old, &ip);
                }
                b
            } else {
                incoming
            };
            put_resource(req, id, &tl, canon, existing, body)
        }
        Method::DELETE => delete_resource(req, id, &tl, existing),
        _ => Err(method_not_allowed()),
    }
}

/// ARM's identity PATCH: `type` states the final set; listed user identities are added,
/// `null` removes one, others are kept.
fn patch_identity(old: &Value, patch: &Value) -> Value {
    let mut out = json!({});
    out["type"] = patch.get("type").cloned().unwrap_or_else(|| old.get("type").cloned().unwrap_or(json!("None")));
    let mut map = old.get("userAssignedIdentities").and_then(Value::as_object).cloned().unwrap_or_default();
    if let Some(p) = patch.get("userAssignedIdentities").and_then(Value::as_object) {
        for (k, v) in p {
            let existing_key = map.keys().find(|x| x.eq_ignore_ascii_case(k)).cloned();
            if v.is_null() {
                if let Some(e) = existing_key {
                    map.remove(&e);
                }
            } else if existing_key.is_none() {
                map.insert(k.clone(), json!({}));
            }
        }
    }
    out["userAssignedIdentities"] = Value::Object(map);
    out
}

fn put_resource(
    req: &mut Req<'_>,
    id: &ResourceId,
    tl: &str,
    canon: &str,
    existing: Option<Resource>,
    mut body: Value,
) -> Result<Response, ArmError> {
    // Proxy resources (containers) have no location.
    let proxy = tl.ends_with("/containers");
    // A database needs its server.
    if tl == "microsoft.sql/servers/databases"
        && let Some(server) = id.parent()
        && !req.sh.store().state.resources.contains_key(&server.key())
    {
        return Err(parent_not_found(server.as_str()));
    }
    let location = match body.get("location").and_then(Value::as_str).map(normalize_location) {
        Some(l) => l,
        None if proxy => String::new(),
        None => {
            return Err(ArmError::new(
                400,
                "LocationRequired",
                "The location property is required for this definition.",
            ));
        }
    };
    if let Some(old) = &existing
        && let Some(ol) = old.body.get("location").and_then(Value::as_str)
        && normalize_location(ol) != location
    {
        return Err(ArmError::new(
            400,
            "InvalidResourceLocation",
            format!(
                "The resource '{}' already exists in location '{ol}' in resource group '{}'. A resource with the same name cannot be created in location '{location}'. Please select a new resource name.",
                id.name().unwrap_or_default(),
                id.resource_group.clone().unwrap_or_default()
            ),
        ));
    }
    let stored_id = existing.as_ref().map_or_else(|| id.as_str().to_string(), |r| r.id.clone());
    let name = stored_id.rsplit('/').next().unwrap_or_default().to_string();
    let obj =
        body.as_object_mut().ok_or_else(|| ArmError::new(400, "InvalidRequestContent", "expected a JSON object"))?;
    obj.insert("id".into(), json!(stored_id));
    obj.insert("name".into(), json!(name));
    obj.insert("type".into(), json!(canon));
    if !proxy {
        obj.insert("location".into(), json!(location));
    }
    obj.remove("etag");
    if !obj.get("properties").is_some_and(Value::is_object) {
        obj.insert("properties".into(), json!({}));
    }
    let mut extra = Vec::new();
    let now = now_ms();
    let mut data_listener = None;
    {
        let st = req.sh.store();
        match tl {
            "microsoft.managedidentity/userassignedidentities" => {
                prepare_identity(req.sh, &st.state, &stored_id, existing.as_ref(), &mut body, &mut extra)
            }
            "microsoft.network/virtualnetworks" => prepare_vnet(&stored_id, existing.as_ref(), &mut body)?,
            "microsoft.network/networksecuritygroups" => prepare_nsg(&stored_id, &mut body),
            "microsoft.network/publicipaddresses" => prepare_pip(&st.state, existing.as_ref(), &mut body),
            "microsoft.network/networkinterfaces" => {
                prepare_nic(&st.state, &stored_id, existing.as_ref(), &mut body)?;
                extra.extend(pip_backrefs(&st.state, &stored_id, existing.as_ref().map(|r| &r.body), Some(&body)));
            }
            "microsoft.storage/storageaccounts" => {
                let created = time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                super::storage::prepare_account(
                    &st.state,
                    &stored_id,
                    existing.as_ref().map(|r| &r.body),
                    &mut body,
                    (&req.sh.blob_base, &req.sh.dfs_base),
                    &created,
                )?
            }
            "microsoft.storage/storageaccounts/blobservices/containers" => {
                super::storage::prepare_container(&st.state, &stored_id, &mut body)?
            }
            "microsoft.sql/servers" => super::sql::prepare_server(
                &st.state,
                &stored_id,
                existing.as_ref().map(|r| &r.body),
                &mut body,
                &req.sh.info.tenant_id,
            )?,
            "microsoft.sql/servers/databases" => {
                let created = time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                super::sql::prepare_database(existing.as_ref().map(|r| &r.body), &mut body, &created)?
            }
            "microsoft.datalakestore/accounts" => {
                let caller = req.caller.as_ref().map(|c| c.object_id.clone()).unwrap_or_default();
                data_listener = super::datalake::prepare_account(
                    &req.sh.info.tenant_id,
                    &st.state,
                    &stored_id,
                    existing.as_ref(),
                    &mut body,
                    &mut extra,
                    &caller,
                    now,
                )?
            }
            "microsoft.keyvault/vaults" => keyvault::prepare_vault(
                &st.state,
                &req.sh.info.tenant_id,
                &stored_id,
                existing.as_ref(),
                &mut body,
                &req.api_version,
                &mut extra,
            )?,
            "microsoft.compute/virtualmachines" => {
                let caller = req.caller.clone();
                prepare_vm(
                    req.sh,
                    &st.state,
                    &stored_id,
                    existing.as_ref(),
                    &mut body,
                    &mut extra,
                    caller.as_ref(),
                    now,
                )?
            }
            _ => {}
        }
    }
    let lro = is_lro(tl);
    // A new vault answers at once and shows `RegisteringDns` for the configured time.
    let busy = if lro || (tl == "microsoft.keyvault/vaults" && existing.is_none()) {
        req.sh.faults().lro(tl).as_millis() as u64
    } else {
        0
    };
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut)
        && !always_accepted(tl)
    {
        p.insert("provisioningState".into(), json!("Succeeded"));
    }
    let resource = Resource {
        id: stored_id.clone(),
        kind: canon.to_string(),
        body,
        etag: existing.as_ref().map_or(1, |r| r.etag + 1),
        created_ms: existing.as_ref().map_or(now, |r| r.created_ms),
        busy_until_ms: if busy > 0 { now + busy } else { 0 },
        effective_ms: None,
    };
    // A VM with an identity gets its own identity endpoint.
    let mut start_listener = None;
    if tl == "microsoft.compute/virtualmachines" {
        let key = stored_id.to_ascii_lowercase();
        let has_identity = resource
            .body
            .pointer("/identity/type")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.eq_ignore_ascii_case("None"));
        let known = req.sh.store().state.imds.get(&key).cloned();
        if has_identity && known.is_none() {
            let listener = super::shared::bind_loopback(0)
                .map_err(|e| ArmError::new(500, "InternalServerError", e.to_string()))?;
            let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
            extra.push(Op::PutImds {
                key: key.clone(),
                endpoint: ImdsEndpoint {
                    vm_id: stored_id.clone(),
                    port,
                    header_secret: super::shared::random_secret(),
                },
            });
            start_listener = Some((key, listener));
        }
    }
    // A vault's data plane gets its own port (kept while it is soft-deleted).
    let mut resource = resource;
    let mut start_vault = None;
    if tl == "microsoft.keyvault/vaults" {
        let vault = name.to_ascii_lowercase();
        let running = req.sh.vaults_running.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&vault);
        if !running {
            let (listener, port) = keyvault::bind(&req.sh.store().state, &vault)?;
            resource.body["properties"]["vaultUri"] = json!(keyvault::vault_uri(port));
            extra.push(Op::SetPort { purpose: keyvault::port_purpose(&vault), port });
            start_vault = Some((vault, listener));
        }
    }
    let shown = present(&resource, now);
    let mut ops = vec![Op::PutResource { resource }];
    ops.extend(extra);
    req.sh.commit(ops)?;
    if let Some((key, listener)) = start_listener {
        imds::serve(req.sh, &key, listener);
    }
    if let Some(listener) = data_listener {
        super::datalake::serve(req.sh, &name, listener);
    }
    if let Some((vault, listener)) = start_vault {
        keyvault::serve(req.sh, &vault, listener);
    }
    let status = if existing.is_some() { 200 } else { 201 };
    if tl == "microsoft.storage/storageaccounts" && existing.is_none() {
        // Storage accounts are created through a Location long-running operation.
        let op = start_operation(req.sh, tl, Some(stored_id));
        return Ok(empty(202, &lro_headers(req, &op, true)));
    }
    if always_accepted(tl) {
        let op = start_operation(req.sh, tl, Some(stored_id));
        return Ok(empty(202, &lro_headers(req, &op, false)));
    }
    if lro {
        let op = start_operation(req.sh, tl, Some(stored_id));
        let mut h = lro_headers(req, &op, false);
        h.retain(|(k, _)| *k != "location" || status == 201);
        return Ok(json_response(status, &shown, &h));
    }
    Ok(json_response(status, &shown, &[]))
}

fn delete_resource(
    req: &mut Req<'_>,
    id: &ResourceId,
    tl: &str,
    existing: Option<Resource>,
) -> Result<Response, ArmError> {
    let Some(r) = existing else { return Ok(empty(204, &[])) };
    let mut ops = vec![Op::DeleteResource { key: id.key() }];
    // Child resources (a storage account's containers) go with their parent.
    {
        let st = req.sh.store();
        let prefix = format!("{}/", id.key());
        for (k, child) in st.state.resources.iter().filter(|(k, _)| k.starts_with(&prefix)) {
            ops.push(Op::DeleteResource { key: k.clone() });
            ops.extend(principal_cleanup(&st.state, child));
        }
    }
    {
        let st = req.sh.store();
        if tl == "microsoft.network/networkinterfaces"
            && let Some(vm) = r.body.pointer("/properties/virtualMachine/id").and_then(Value::as_str)
            && st.state.resources.contains_key(&vm.to_ascii_lowercase())
        {
            return Err(ArmError::new(
                400,
                "NicInUse",
                format!(
                    "Network Interface {} is used by existing resource {vm}. In order to delete the network interface, it must be dissociated from the resource. To learn more, see aka.ms/deletenic.",
                    r.id
                ),
            ));
        }
        if tl == "microsoft.network/virtualnetworks"
            || tl == "microsoft.network/publicipaddresses"
            || tl == "microsoft.network/networksecuritygroups"
        {
            let prefix = r.id.to_ascii_lowercase();
            let used = st.state.resources.values().find(|n| {
                n.kind == "Microsoft.Network/networkInterfaces"
                    && n.body.to_string().to_ascii_lowercase().contains(&format!("\"{prefix}"))
            });
            if let Some(nic) = used {
                let code = match tl {
                    "microsoft.network/virtualnetworks" => "InUseSubnetCannotBeDeleted",
                    "microsoft.network/publicipaddresses" => "PublicIPAddressCannotBeDeleted",
                    _ => "InUseNetworkSecurityGroupCannotBeDeleted",
                };
                return Err(ArmError::new(
                    400,
                    code,
                    format!("{} is in use by {} and cannot be deleted.", r.id, nic.id),
                ));
            }
        }
        ops.extend(principal_cleanup(&st.state, &r));
        if tl == "microsoft.network/networkinterfaces" {
            ops.extend(pip_backrefs(&st.state, &r.id, Some(&r.body), None));
        }
        if tl == "microsoft.compute/virtualmachines" {
            for nic in vm_nics(&r.body) {
                if let Some(mut n) = st.state.resources.get(&nic.to_ascii_lowercase()).cloned() {
                    if let Some(p) = n.body.get_mut("properties").and_then(Value::as_object_mut) {
                        p.remove("virtualMachine");
                    }
                    n.etag += 1;
                    ops.push(Op::PutResource { resource: n });
                }
            }
        }
    }
    stop_listeners(req.sh, &ops);
    req.sh.commit(ops)?;
    if (is_lro(tl) && !req.sh.faults().lro(tl).is_zero()) || always_accepted(tl) {
        let op = start_operation(req.sh, tl, None);
        return Ok(empty(202, &lro_headers(req, &op, false)));
    }
    Ok(empty(200, &[]))
}

/// A SQL server's Entra admin (`administrators/ActiveDirectory`) or its Entra-only switch
/// (`azureADOnlyAuthentications/Default`): views of the server body, written through it.
fn sql_server_setting(req: &mut Req<'_>, id: &ResourceId, tl: &str) -> Result<Response, ArmError> {
    let admin = tl == "microsoft.sql/servers/administrators";
    let expected = if admin { "activedirectory" } else { "default" };
    if !id.name().is_some_and(|n| n.eq_ignore_ascii_case(expected)) {
        return Err(not_found(id));
    }
    let parent = id.parent().ok_or_else(|| not_found(id))?;
    let Some(mut server) = req.sh.store().state.resources.get(&parent.key()).cloned() else {
        return Err(if req.method == Method::GET { not_found(id) } else { parent_not_found(parent.as_str()) });
    };
    let view = |b: &Value| if admin { super::sql::admin_view(b) } else { Some(super::sql::entra_only_view(b)) };
    let tenant = req.sh.info.tenant_id.clone();
    let new_body = match req.method {
        Method::GET => return view(&server.body).map(|v| json_response(200, &v, &[])).ok_or_else(|| not_found(id)),
        Method::PUT => {
            let given = parse_body(req)?;
            if admin {
                super::sql::put_admin(&server.body, &given, &tenant)?
            } else {
                super::sql::set_entra_only(&server.body, Some(&given))?
            }
        }
        Method::DELETE => {
            if view(&server.body).is_none() {
                return Ok(empty(204, &[]));
            }
            if admin {
                super::sql::delete_admin(&server.body)?
            } else {
                super::sql::set_entra_only(&server.body, None)?
            }
        }
        _ => return Err(method_not_allowed()),
    };
    server.body = new_body;
    server.etag += 1;
    req.sh.commit(vec![Op::PutResource { resource: server }])?;
    // The view lives in the server's record, so the operation carries no resource: a client
    // GETs the setting itself once the operation succeeded.
    let op = start_operation(req.sh, tl, None);
    Ok(empty(202, &lro_headers(req, &op, false)))
}

fn prepare_identity(
    sh: &Shared,
    st: &CloudState,
    id: &str,
    existing: Option<&Resource>,
    body: &mut Value,
    extra: &mut Vec<Op>,
) {
    let old = existing.and_then(|r| r.body.get("properties")).cloned().unwrap_or(json!({}));
    let principal_id = old.get("principalId").and_then(Value::as_str).map_or_else(guid, str::to_string);
    let client_id = old.get("clientId").and_then(Value::as_str).map_or_else(guid, str::to_string);
    let iso = body
        .pointer("/properties/isolationScope")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| old.get("isolationScope").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "None".into());
    body["properties"] = json!({ "tenantId": sh.info.tenant_id, "principalId": principal_id, "clientId": client_id, "isolationScope": iso });
    if !st.principals.contains_key(&principal_id) {
        extra.push(Op::PutPrincipal {
            principal: Principal {
                object_id: principal_id,
                client_id,
                display_name: id.rsplit('/').next().unwrap_or_default().to_string(),
                kind: "ManagedIdentity".into(),
                secret_sha256: None,
                federated: Vec::new(),
                resource_id: Some(id.to_string()),
                created_ms: now_ms(),
            },
        });
    }
}

fn prefix_ok(p: &str) -> Option<(u32, u8)> {
    let (a, l) = p.split_once('/')?;
    let mut ip = 0u32;
    let parts: Vec<&str> = a.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    for o in parts {
        ip = (ip << 8) | u32::from(o.parse::<u8>().ok()?);
    }
    let l: u8 = l.parse().ok().filter(|l| *l <= 32)?;
    Some((ip, l))
}

fn prepare_vnet(id: &str, _existing: Option<&Resource>, body: &mut Value) -> Result<(), ArmError> {
    let spaces: Vec<(u32, u8)> = body
        .pointer("/properties/addressSpace/addressPrefixes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|p| p.as_str().and_then(prefix_ok)).collect())
        .unwrap_or_default();
    if let Some(subnets) = body.pointer_mut("/properties/subnets").and_then(Value::as_array_mut) {
        for s in subnets.iter_mut() {
            let name = s.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            if name.is_empty() {
                return Err(ArmError::new(
                    400,
                    "InvalidRequestFormat",
                    "Cannot parse the request: a subnet has no name.",
                ));
            }
            let prefix = s.pointer("/properties/addressPrefix").and_then(Value::as_str).unwrap_or_default().to_string();
            let Some((ip, len)) = prefix_ok(&prefix) else {
                return Err(ArmError::new(
                    400,
                    "InvalidAddressPrefixFormat",
                    format!("Address prefix {prefix} of resource {id}/subnets/{name} is not formatted correctly."),
                ));
            };
            let inside = spaces.iter().any(|(sip, sl)| {
                let mask = if *sl == 0 { 0 } else { u32::MAX << (32 - sl) };
                len >= *sl && ip & mask == *sip & mask
            });
            if !spaces.is_empty() && !inside {
                return Err(ArmError::new(
                    400,
                    "NetcfgSubnetRangeOutsideVnet",
                    format!(
                        "Subnet '{name}' is not valid because its IP address range is outside the IP address range of virtual network '{}'.",
                        id.rsplit('/').next().unwrap_or_default()
                    ),
                ));
            }
            s["id"] = json!(format!("{id}/subnets/{name}"));
            if let Some(p) = s.get_mut("properties").and_then(Value::as_object_mut) {
                p.insert("provisioningState".into(), json!("Succeeded"));
            }
            s["type"] = json!("Microsoft.Network/virtualNetworks/subnets");
        }
    } else if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("subnets".into(), json!([]));
    }
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.entry("virtualNetworkPeerings").or_insert(json!([]));
        p.entry("enableDdosProtection").or_insert(json!(false));
        p.insert("resourceGuid".into(), json!(guid()));
    }
    Ok(())
}

fn prepare_nsg(id: &str, body: &mut Value) {
    if let Some(rules) = body.pointer_mut("/properties/securityRules").and_then(Value::as_array_mut) {
        for r in rules.iter_mut() {
            let name = r.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
            r["id"] = json!(format!("{id}/securityRules/{name}"));
            r["type"] = json!("Microsoft.Network/networkSecurityGroups/securityRules");
            if let Some(p) = r.get_mut("properties").and_then(Value::as_object_mut) {
                p.insert("provisioningState".into(), json!("Succeeded"));
            }
        }
    } else if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("securityRules".into(), json!([]));
    }
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("resourceGuid".into(), json!(guid()));
    }
}

fn prepare_pip(st: &CloudState, existing: Option<&Resource>, body: &mut Value) {
    if body.get("sku").is_none() {
        body["sku"] = json!({ "name": "Standard", "tier": "Regional" });
    }
    let standard =
        body.pointer("/sku/name").and_then(Value::as_str).is_some_and(|s| s.eq_ignore_ascii_case("Standard"));
    let old_ip = existing.and_then(|r| r.body.pointer("/properties/ipAddress").cloned());
    let used_by = existing.and_then(|r| r.body.pointer("/properties/ipConfiguration").cloned());
    let n = st.resources.values().filter(|r| r.kind == "Microsoft.Network/publicIPAddresses").count() as u32 + 1;
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.entry("publicIPAllocationMethod").or_insert(json!(if standard { "Static" } else { "Dynamic" }));
        p.entry("publicIPAddressVersion").or_insert(json!("IPv4"));
        p.entry("idleTimeoutInMinutes").or_insert(json!(4));
        p.insert(
            "ipAddress".into(),
            old_ip.unwrap_or_else(|| json!(format!("20.{}.{}.{}", 1 + (n >> 16) % 250, (n >> 8) % 256, n % 256))),
        );
        p.insert("resourceGuid".into(), json!(guid()));
        if let Some(u) = used_by {
            p.insert("ipConfiguration".into(), u);
        }
    }
}

fn invalid_reference(what: &str, by: &str) -> ArmError {
    ArmError::new(
        400,
        "InvalidResourceReference",
        format!(
            "Resource {what} referenced by resource {by} was not found. Please make sure that the referenced resource exists, and that both resources are in the same region."
        ),
    )
}

fn find_subnet(st: &CloudState, subnet_id: &str) -> Option<Value> {
    let vnet = subnet_id.to_ascii_lowercase();
    let cut = vnet.rfind("/subnets/")?;
    let v = st.resources.get(&vnet[..cut])?;
    v.body
        .pointer("/properties/subnets")?
        .as_array()?
        .iter()
        .find(|s| s.get("id").and_then(Value::as_str).is_some_and(|i| i.eq_ignore_ascii_case(subnet_id)))
        .cloned()
}

fn prepare_nic(st: &CloudState, id: &str, existing: Option<&Resource>, body: &mut Value) -> Result<(), ArmError> {
    let configs = body.pointer_mut("/properties/ipConfigurations").and_then(Value::as_array_mut);
    let Some(configs) = configs.filter(|c| !c.is_empty()) else {
        return Err(ArmError::new(
            400,
            "NetworkInterfaceMustHaveAtLeastOneIpConfiguration",
            format!("Network interface {id} must have at least one IP configuration."),
        ));
    };
    let n = st.resources.values().filter(|r| r.kind == "Microsoft.Network/networkInterfaces").count() as u32;
    let primary_subnet = configs.first().and_then(|c| c.pointer("/properties/subnet/id")).cloned();
    for (i, c) in configs.iter_mut().enumerate() {
        if c.get("properties").is_none() {
            c["properties"] = json!({});
        }
        if c.pointer("/properties/subnet/id").is_none()
            && let Some(sid) = &primary_subnet
        {
            c["properties"]["subnet"] = json!({ "id": sid });
        }
        let name = c.get("name").and_then(Value::as_str).unwrap_or("ipconfig1").to_string();
        c["name"] = json!(name);
        c["id"] = json!(format!("{id}/ipConfigurations/{name}"));
        c["type"] = json!("Microsoft.Network/networkInterfaces/ipConfigurations");
        let Some(p) = c.get_mut("properties").and_then(Value::as_object_mut) else {
            return Err(ArmError::new(400, "InvalidRequestFormat", "an IP configuration has no properties"));
        };
        let subnet_id =
            p.get("subnet").and_then(|s| s.get("id")).and_then(Value::as_str).unwrap_or_default().to_string();
        let Some(subnet) = find_subnet(st, &subnet_id) else {
            return Err(invalid_reference(&subnet_id, id));
        };
        if let Some(pip) = p.get("publicIPAddress").and_then(|s| s.get("id")).and_then(Value::as_str)
            && !st.resources.contains_key(&pip.to_ascii_lowercase())
        {
            return Err(invalid_reference(pip, id));
        }
        let prefix = subnet.pointer("/properties/addressPrefix").and_then(Value::as_str).and_then(prefix_ok);
        let old = existing.and_then(|r| {
            r.body.pointer(&format!("/properties/ipConfigurations/{i}/properties/privateIPAddress")).cloned()
        });
        let ip = old.unwrap_or_else(|| {
            let (base, _) = prefix.unwrap_or((0x0a00_0000, 24));
            let a = base + 4 + n + i as u32;
            json!(format!("{}.{}.{}.{}", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255))
        });
        p.entry("privateIPAllocationMethod").or_insert(json!("Dynamic"));
        p.insert("privateIPAddress".into(), ip);
        p.entry("privateIPAddressVersion").or_insert(json!("IPv4"));
        p.entry("primary").or_insert(json!(i == 0));
        p.insert("provisioningState".into(), json!("Succeeded"));
    }
    if let Some(nsg) = body.pointer("/properties/networkSecurityGroup/id").and_then(Value::as_str)
        && !st.resources.contains_key(&nsg.to_ascii_lowercase())
    {
        return Err(invalid_reference(nsg, id));
    }
    let vm = existing.and_then(|r| r.body.pointer("/properties/virtualMachine").cloned());
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        if let Some(vm) = vm {
            p.insert("virtualMachine".into(), vm);
        }
        p.insert("resourceGuid".into(), json!(guid()));
        p.entry("macAddress").or_insert(json!(format!(
            "00-0D-3A-{:02X}-{:02X}-{:02X}",
            (n >> 16) & 255,
            (n >> 8) & 255,
            n & 255
        )));
        p.entry("enableAcceleratedNetworking").or_insert(json!(false));
        p.entry("enableIPForwarding").or_insert(json!(false));
        p.entry("vnetEncryptionSupported").or_insert(json!(false));
        let dns = p.entry("dnsSettings").or_insert(json!({}));
        if let Some(d) = dns.as_object_mut() {
            let servers = d.entry("dnsServers").or_insert(json!([])).clone();
            d.entry("appliedDnsServers").or_insert(servers);
        }
    }
    Ok(())
}

/// Public IPs record the NIC configuration that uses them (and forget it when it goes).
fn pip_backrefs(st: &CloudState, nic_id: &str, old: Option<&Value>, new: Option<&Value>) -> Vec<Op> {
    let refs = |b: Option<&Value>| -> Vec<(String, String)> {
        b.and_then(|b| b.pointer("/properties/ipConfigurations"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| {
                        let pip = c.pointer("/properties/publicIPAddress/id")?.as_str()?.to_ascii_lowercase();
                        let cfg = c
                            .get("id")
                            .and_then(Value::as_str)
                            .map_or_else(|| format!("{nic_id}/ipConfigurations/ipconfig1"), str::to_string);
                        Some((pip, cfg))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (before, after) = (refs(old), refs(new));
    let mut ops = Vec::new();
    for (pip, cfg) in &after {
        if let Some(mut r) = st.resources.get(pip).cloned() {
            r.body["properties"]["ipConfiguration"] = json!({ "id": cfg });
            r.etag += 1;
            ops.push(Op::PutResource { resource: r });
        }
    }
    for (pip, _) in before.iter().filter(|(p, _)| !after.iter().any(|(a, _)| a == p)) {
        if let Some(mut r) = st.resources.get(pip).cloned() {
            if let Some(p) = r.body.get_mut("properties").and_then(Value::as_object_mut) {
                p.remove("ipConfiguration");
            }
            r.etag += 1;
            ops.push(Op::PutResource { resource: r });
        }
    }
    ops
}

fn vm_nics(body: &Value) -> Vec<String> {
    body.pointer("/properties/networkProfile/networkInterfaces")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|n| n.get("id").and_then(Value::as_str).map(str::to_string)).collect())
        .unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
fn prepare_vm(
    sh: &Shared,
    st: &CloudState,
    id: &str,
    existing: Option<&Resource>,
    body: &mut Value,
    extra: &mut Vec<Op>,
    caller: Option<&Caller>,
    now: u64,
) -> Result<(), ArmError> {
    // Network interfaces must exist and not belong to another VM.
    let nics = vm_nics(body);
    for nic in &nics {
        let Some(n) = st.resources.get(&nic.to_ascii_lowercase()) else {
            return Err(invalid_reference(nic, id));
        };
        if let Some(other) = n.body.pointer("/properties/virtualMachine/id").and_then(Value::as_str)
            && !other.eq_ignore_ascii_case(id)
            && st.resources.contains_key(&other.to_ascii_lowercase())
        {
            return Err(ArmError::new(
                400,
                "NicInUse",
                format!("Network interface {nic} is in use by virtual machine {other}."),
            ));
        }
    }
    // Identities.
    let ident = body.get("identity").cloned().unwrap_or(json!({ "type": "None" }));
    let raw_type = ident.get("type").and_then(Value::as_str).unwrap_or("None");
    let mut system = false;
    let mut user = false;
    for part in raw_type.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.to_ascii_lowercase().as_str() {
            "systemassigned" => system = true,
            "userassigned" => user = true,
            "none" => {}
            _ => {
                return Err(ArmError::new(
                    400,
                    "InvalidIdentityType",
                    format!(
                        "The identity type '{raw_type}' is invalid. Allowed values: 'SystemAssigned', 'UserAssigned', 'SystemAssigned, UserAssigned', 'None'."
                    ),
                ));
            }
        }
    }
    let ua: Vec<String> = ident
        .get("userAssignedIdentities")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    if user && ua.is_empty() {
        return Err(ArmError::new(
            400,
            "InvalidIdentityValues",
            "Invalid value for the identities: 'userAssignedIdentities' is required when the type contains 'UserAssigned'.",
        ));
    }
    if !user && !ua.is_empty() {
        return Err(ArmError::new(
            400,
            "InvalidIdentityValues",
            "Invalid value for the identities: the type must contain 'UserAssigned' when 'userAssignedIdentities' is given.",
        ));
    }
    let old_ua: Vec<String> = existing
        .and_then(|r| r.body.pointer("/identity/userAssignedIdentities"))
        .and_then(Value::as_object)
        .map(|m| m.keys().map(|k| k.to_ascii_lowercase()).collect())
        .unwrap_or_default();
    let g = rbac::grants(st, now);
    let mut ua_out = Map::new();
    for uid in &ua {
        let Some(r) = st
            .resources
            .get(&uid.to_ascii_lowercase())
            .filter(|r| r.kind == "Microsoft.ManagedIdentity/userAssignedIdentities")
        else {
            return Err(ArmError::new(
                400,
                "FailedIdentityOperation",
                format!("Identity (principal) with resource id '{uid}' was not found."),
            ));
        };
        if !old_ua.contains(&uid.to_ascii_lowercase())
            && let Some(c) = caller
        {
            let action = "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action";
            if !rbac::allowed(&g, &c.object_id, &r.id, action, false) {
                return Err(ArmError::new(
                    403,
                    "LinkedAuthorizationFailed",
                    format!(
                        "The client '{}' with object id '{}' has permission to perform action 'Microsoft.Compute/virtualMachines/write' on scope '{id}'; however, it does not have permission to perform action(s) '{action}' on the linked scope(s) '{}' (respectively) or the linked scope(s) are invalid.",
                        c.client_id, c.object_id, r.id
                    ),
                ));
            }
        }
        ua_out.insert(r.id.clone(), json!({ "principalId": r.body.pointer("/properties/principalId"), "clientId": r.body.pointer("/properties/clientId") }));
    }
    let old_sys =
        existing.and_then(|r| r.body.pointer("/identity/principalId")).and_then(Value::as_str).map(str::to_string);
    let mut identity = json!({ "type": match (system, user) { (true, true) => "SystemAssigned, UserAssigned", (true, false) => "SystemAssigned", (false, true) => "UserAssigned", _ => "None" } });
    if system {
        let pid = principals::system_principal(st, old_sys.as_deref(), id, now, extra);
        identity["principalId"] = json!(pid);
        identity["tenantId"] = json!(sh.info.tenant_id);
    } else if let Some(p) = old_sys {
        extra.push(Op::DeletePrincipal { object_id: p });
    }
    if user {
        identity["userAssignedIdentities"] = Value::Object(ua_out);
    }
    body["identity"] = identity;
    // Secrets never come back, and server-filled fields.
    let vm_id = existing.and_then(|r| r.body.pointer("/properties/vmId").cloned()).unwrap_or_else(|| json!(guid()));
    let created = existing.and_then(|r| r.body.pointer("/properties/timeCreated").cloned()).unwrap_or_else(|| {
        json!(
            time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
        )
    });
    let rg_prefix = id.split("/providers/").next().unwrap_or_default().to_string();
    let vm_name = id.rsplit('/').next().unwrap_or_default().to_string();
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        let windows = p
            .get("storageProfile")
            .and_then(|s| s.pointer("/imageReference/publisher"))
            .and_then(Value::as_str)
            .is_some_and(|x| x.to_ascii_lowercase().contains("windows"))
            || p.get("storageProfile")
                .and_then(|s| s.pointer("/osDisk/osType"))
                .and_then(Value::as_str)
                .is_some_and(|x| x.eq_ignore_ascii_case("Windows"));
        if let Some(os) = p.get_mut("osProfile").and_then(Value::as_object_mut) {
            os.remove("adminPassword");
            os.remove("customData");
            os.entry("secrets").or_insert(json!([]));
            let (key, defaults) = if windows {
                ("windowsConfiguration", json!({ "provisionVMAgent": true, "enableAutomaticUpdates": true }))
            } else {
                ("linuxConfiguration", json!({ "disablePasswordAuthentication": false, "provisionVMAgent": true }))
            };
            let cfg = os.entry(key).or_insert(json!({}));
            if let (Some(c), Some(d)) = (cfg.as_object_mut(), defaults.as_object()) {
                for (k, v) in d {
                    c.entry(k.clone()).or_insert(v.clone());
                }
            }
        }
        if let Some(sp) = p.get_mut("storageProfile").and_then(Value::as_object_mut) {
            let disk_id = |name: &str| json!(format!("{rg_prefix}/providers/Microsoft.Compute/disks/{name}"));
            if let Some(os) = sp.get_mut("osDisk").and_then(Value::as_object_mut) {
                os.entry("osType").or_insert(json!(if windows { "Windows" } else { "Linux" }));
                let name = os
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("{vm_name}_OsDisk_1"), str::to_string);
                os.entry("name").or_insert(json!(name.clone()));
                os.entry("diskSizeGB").or_insert(json!(if windows { 127 } else { 30 }));
                if let Some(md) = os.entry("managedDisk").or_insert(json!({})).as_object_mut() {
                    md.entry("id").or_insert(disk_id(&name));
                }
            }
            if let Some(list) = sp.entry("dataDisks").or_insert(json!([])).as_array_mut() {
                for (i, d) in list.iter_mut().enumerate() {
                    let name = d
                        .get("name")
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("{vm_name}_DataDisk_{i}"), str::to_string);
                    if let Some(o) = d.as_object_mut() {
                        o.entry("name").or_insert(json!(name.clone()));
                        o.entry("diskSizeGB").or_insert(json!(32));
                        if let Some(md) = o.entry("managedDisk").or_insert(json!({})).as_object_mut() {
                            md.entry("id").or_insert(disk_id(&name));
                        }
                    }
                }
            }
        }
        p.insert("vmId".into(), vm_id);
        p.insert("timeCreated".into(), created);
    }
    // NICs point back at their VM.
    for nic in nics {
        if let Some(mut n) = st.resources.get(&nic.to_ascii_lowercase()).cloned() {
            n.body["properties"]["virtualMachine"] = json!({ "id": id });
            n.etag += 1;
            extra.push(Op::PutResource { resource: n });
        }
    }
    Ok(())
}

fn subnet(req: &mut Req<'_>, id: &ResourceId) -> Result<Response, ArmError> {
    let parent = id.parent().ok_or_else(|| not_found(id))?;
    let Some(mut vnet) = req.sh.store().state.resources.get(&parent.key()).cloned() else {
        return Err(parent_not_found(parent.as_str()));
    };
    let name = id.name().unwrap_or_default().to_string();
    let subnets = vnet.body.pointer("/properties/subnets").and_then(Value::as_array).cloned().unwrap_or_default();
    let pos = subnets
        .iter()
        .position(|s| s.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(&name)));
    match req.method {
        Method::GET => pos.map(|i| json_response(200, &subnets[i], &[])).ok_or_else(|| not_found(id)),
        Method::PUT => {
            let mut b = parse_body(req)?;
            b["name"] = json!(name);
            let mut list = subnets.clone();
            match pos {
                Some(i) => list[i] = b,
                None => list.push(b),
            }
            vnet.body["properties"]["subnets"] = Value::Array(list);
            prepare_vnet(&vnet.id, None, &mut vnet.body)?;
            vnet.etag += 1;
            let shown = vnet
                .body
                .pointer("/properties/subnets")
                .and_then(Value::as_array)
                .and_then(|a| a.iter().find(|s| s.get("name").and_then(Value::as_str) == Some(name.as_str())).cloned())
                .unwrap_or(json!({}));
            req.sh.commit(vec![Op::PutResource { resource: vnet }])?;
            let op = start_operation(req.sh, "microsoft.network/virtualnetworks/subnets", None);
            Ok(json_response(if pos.is_some() { 200 } else { 201 }, &shown, &lro_headers(req, &op, false)))
        }
        Method::DELETE => {
            let Some(i) = pos else { return Ok(empty(204, &[])) };
            let mut list = subnets;
            list.remove(i);
            vnet.body["properties"]["subnets"] = Value::Array(list);
            vnet.etag += 1;
            req.sh.commit(vec![Op::PutResource { resource: vnet }])?;
            Ok(empty(200, &[]))
        }
        _ => Err(method_not_allowed()),
    }
}

/// `GET /subscriptions/{s}/providers/Microsoft.KeyVault/deletedVaults`.
fn deleted_vaults(req: &Req<'_>) -> Result<Response, ArmError> {
    let sub = req.sh.info.subscription_id.clone();
    authorize(req, "Microsoft.KeyVault/deletedVaults/read", &format!("/subscriptions/{sub}"))?;
    let st = req.sh.store();
    let value: Vec<Value> = st.state.deleted_vaults.values().map(|d| keyvault::deleted_body(&sub, d)).collect();
    Ok(json_response(200, &json!({ "value": value }), &[]))
}

fn deleted_vault_not_found(name: &str) -> ArmError {
    ArmError::new(404, "ResourceNotFound", format!("The deleted vault '{name}' was not found in this location."))
}

/// `GET …/locations/{loc}/deletedVaults/{name}`.
fn deleted_vault(req: &Req<'_>, id: &ResourceId) -> Result<Response, ArmError> {
    if req.method != Method::GET {
        return Err(method_not_allowed());
    }
    authorize(req, "Microsoft.KeyVault/locations/deletedVaults/read", id.as_str())?;
    let (location, name) = location_and_name(id.as_str());
    let st = req.sh.store();
    let d = keyvault::deleted_in(&st.state, &location, &name).ok_or_else(|| deleted_vault_not_found(&name))?;
    Ok(json_response(200, &keyvault::deleted_body(&req.sh.info.subscription_id, d), &[]))
}

/// `(location, name)` of `…/locations/{loc}/deletedVaults/{name}`.
fn location_and_name(path: &str) -> (String, String) {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let at = segs.iter().position(|s| s.eq_ignore_ascii_case("locations")).unwrap_or(0);
    let get = |i: usize| segs.get(i).map(|s| percent_decode(s, false)).unwrap_or_default();
    (get(at + 1), get(at + 3))
}

/// `POST …/locations/{loc}/deletedVaults/{name}/purge`: a long-running operation.
fn purge_vault(req: &Req<'_>, parent: &str) -> Result<Response, ArmError> {
    authorize(req, "Microsoft.KeyVault/locations/deletedVaults/purge/action", parent)?;
    let (location, name) = location_and_name(parent);
    let ops = {
        let st = req.sh.store();
        let d = keyvault::deleted_in(&st.state, &location, &name).ok_or_else(|| deleted_vault_not_found(&name))?;
        keyvault::purge_ops(d)?
    };
    req.sh.commit(ops)?;
    let op = start_operation(req.sh, "microsoft.keyvault/locations/deletedvaults/purge", None);
    Ok(empty(202, &lro_headers(req, &op, true)))
}

/// `PUT …/vaults/{v}/accessPolicies/{add|remove|replace}`.
fn access_policies(req: &Req<'_>, id: &ResourceId) -> Result<Response, ArmError> {
    if req.method != Method::PUT {
        return Err(method_not_allowed());
    }
    let body = parse_body(req)?;
    let op = id.name().unwrap_or_default().to_string();
    let vault_id = id.as_str().rsplitn(3, '/').nth(2).unwrap_or_default().to_string();
    let mut vault =
        req.sh.store().state.resources.get(&vault_id.to_ascii_lowercase()).cloned().ok_or_else(|| {
            ResourceId::parse(&vault_id).map_or_else(|_| parent_not_found(&vault_id), |v| not_found(&v))
        })?;
    let out = keyvault::update_policies(&mut vault.body, &vault.id, &op, &body)?;
    vault.etag += 1;
    req.sh.commit(vec![Op::PutResource { resource: vault }])?;
    Ok(json_response(200, &out, &[]))
}

/// Whether a scope exists (subscription, group or resource).
fn scope_exists(sh: &Shared, scope: &str) -> Result<(), ArmError> {
    let id = ResourceId::parse(scope)
        .map_err(|_| ArmError::new(400, "InvalidScope", format!("The scope '{scope}' is not valid.")))?;
    let st = sh.store();
    if let Some(rg) = &id.resource_group
        && !st.state.resources.contains_key(&rg_id(sh, rg).to_ascii_lowercase())
    {
        return Err(rg_not_found(rg));
    }
    if !id.providers.is_empty() && !st.state.resources.contains_key(&id.key()) {
        return Err(not_found(&id));
    }
    Ok(())
}

fn role_assignment(req: &mut Req<'_>, scope: &str, name: &str) -> Result<Response, ArmError> {
    let id = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
    let key = id.to_ascii_lowercase();
    let action = format!("Microsoft.Authorization/roleAssignments/{}", verb(&req.method));
    authorize(req, &action, scope)?;
    let existing = req.sh.store().state.resources.get(&key).cloned();
    match req.method {
        Method::GET => existing.map(|r| json_response(200, &r.body, &[])).ok_or_else(|| {
            ArmError::new(404, "RoleAssignmentNotFound", format!("The role assignment '{name}' is not found."))
        }),
        Method::DELETE => match existing {
            None => Ok(empty(204, &[])),
            Some(r) => {
                req.sh.commit(vec![Op::DeleteResource { key }])?;
                Ok(json_response(200, &r.body, &[]))
            }
        },
        Method::PUT => {
            if uuid::Uuid::parse_str(name).is_err() {
                return Err(ArmError::new(
                    400,
                    "InvalidRoleAssignmentId",
                    format!("The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID."),
                ));
            }
            scope_exists(req.sh, scope)?;
            let body = parse_body(req)?;
            let p = body.get("properties").cloned().unwrap_or(json!({}));
            let Some(def) = p.get("roleDefinitionId").and_then(Value::as_str).map(str::to_string) else {
                return Err(ArmError::new(
                    400,
                    "InvalidRequestContent",
                    "The request content was invalid: 'roleDefinitionId' is required.",
                ));
            };
            let Some(principal) = p.get("principalId").and_then(Value::as_str).map(str::to_string) else {
                return Err(ArmError::new(
                    400,
                    "InvalidRequestContent",
                    "The request content was invalid: 'principalId' is required.",
                ));
            };
            let guid_part = rbac::role_guid(&def).to_string();
            if roles::by_guid(&guid_part).is_none() {
                return Err(ArmError::new(
                    400,
                    "RoleDefinitionDoesNotExist",
                    format!("The specified role definition with ID '{guid_part}' does not exist."),
                ));
            }
            let principal_type = p.get("principalType").and_then(Value::as_str).map(str::to_string);
            let now = now_ms();
            let faults = req.sh.faults();
            if principal_type.is_none() {
                let st = req.sh.store();
                let replicated =
                    st.state.principals.get(&principal).is_some_and(|pr| {
                        pr.created_ms + faults.scaled(faults.replication_ms).as_millis() as u64 <= now
                    });
                if !replicated {
                    return Err(ArmError::new(
                        400,
                        "PrincipalNotFound",
                        format!(
                            "Principal {} does not exist in the directory {}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
                            principal.replace('-', ""),
                            req.sh.info.tenant_id
                        ),
                    ));
                }
            }
            let canonical_def = format!(
                "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{guid_part}",
                req.sh.info.subscription_id
            );
            {
                let st = req.sh.store();
                if let Some(r) = &existing {
                    let rp = r.body.get("properties").cloned().unwrap_or(json!({}));
                    let same = rp
                        .get("principalId")
                        .and_then(Value::as_str)
                        .is_some_and(|x| x.eq_ignore_ascii_case(&principal))
                        && rp
                            .get("roleDefinitionId")
                            .and_then(Value::as_str)
                            .is_some_and(|x| rbac::role_guid(x).eq_ignore_ascii_case(&guid_part));
                    if !same {
                        return Err(ArmError::new(
                            400,
                            "RoleAssignmentUpdateNotPermitted",
                            "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                        ));
                    }
                    return Ok(json_response(200, &r.body, &[]));
                }
                let dup = st.state.resources.values().any(|r| {
                    r.kind == "Microsoft.Authorization/roleAssignments"
                        && r.body
                            .pointer("/properties/principalId")
                            .and_then(Value::as_str)
                            .is_some_and(|x| x.eq_ignore_ascii_case(&principal))
                        && r.body
                            .pointer("/properties/scope")
                            .and_then(Value::as_str)
                            .is_some_and(|x| x.eq_ignore_ascii_case(scope))
                        && r.body
                            .pointer("/properties/roleDefinitionId")
                            .and_then(Value::as_str)
                            .is_some_and(|x| rbac::role_guid(x).eq_ignore_ascii_case(&guid_part))
                });
                if dup {
                    return Err(ArmError::new(409, "RoleAssignmentExists", "The role assignment already exists."));
                }
            }
            let ptype = principal_type.unwrap_or_else(|| {
                let st = req.sh.store();
                match st.state.principals.get(&principal).map(|p| p.kind.as_str()) {
                    Some(_) => "ServicePrincipal".to_string(),
                    None => "User".to_string(),
                }
            });
            let created_by = req.caller.as_ref().map(|c| c.object_id.clone()).unwrap_or_default();
            let description = p.get("description").and_then(Value::as_str);
            let out = rbac::role_assignment_body(
                &id,
                name,
                scope,
                &canonical_def,
                &principal,
                &ptype,
                description,
                &created_by,
                now,
            );
            let r = Resource {
                id: id.clone(),
                kind: "Microsoft.Authorization/roleAssignments".into(),
                body: out.clone(),
                etag: 1,
                created_ms: now,
                busy_until_ms: 0,
                effective_ms: Some(now + faults.scaled(faults.propagation_ms).as_millis() as u64),
            };
            req.sh.commit(vec![Op::PutResource { resource: r }])?;
            Ok(json_response(201, &out, &[]))
        }
        _ => Err(method_not_allowed()),
    }
}

fn list_role_assignments(req: &Req<'_>, scope: &str) -> Result<Response, ArmError> {
    authorize(req, "Microsoft.Authorization/roleAssignments/read", scope)?;
    let filter = query_get(&req.query, "$filter").map(str::to_string);
    let principal = filter.as_deref().and_then(|f| {
        let l = f.to_ascii_lowercase();
        let i = l.find("principalid eq ")?;
        Some(f[i + 15..].trim().trim_matches('\'').to_string())
    });
    let at_scope = filter.as_deref().is_some_and(|f| f.to_ascii_lowercase().contains("atscope()"));
    if let Some(f) = &filter
        && principal.is_none()
        && !at_scope
        && !f.to_ascii_lowercase().starts_with("assignedto(")
    {
        return Err(bad_filter(f));
    }
    let assigned_to = filter.as_deref().and_then(|f| {
        f.to_ascii_lowercase()
            .starts_with("assignedto(")
            .then(|| f[11..].trim_end_matches(')').trim_matches('\'').to_string())
    });
    let st = req.sh.store();
    let value: Vec<Value> = st
        .state
        .resources
        .values()
        .filter(|r| r.kind == "Microsoft.Authorization/roleAssignments")
        .filter(|r| {
            let s = r.body.pointer("/properties/scope").and_then(Value::as_str).unwrap_or_default();
            let p = r.body.pointer("/properties/principalId").and_then(Value::as_str).unwrap_or_default();
            let above = is_scope_prefix(s, scope);
            let below = is_scope_prefix(scope, s);
            if at_scope {
                above
            } else if let Some(want) = principal.as_ref().or(assigned_to.as_ref()) {
                p.eq_ignore_ascii_case(want) && (above || below)
            } else {
                above || below
            }
        })
        .map(|r| r.body.clone())
        .collect();
    Ok(json_response(200, &json!({ "value": value }), &[]))
}

fn role_definition_body(scope: &str, r: &roles::Role) -> Value {
    json!({
        "properties": {
            "roleName": r.name,
            "type": "BuiltInRole",
            "description": r.description,
            "assignableScopes": ["/"],
            "permissions": [{ "actions": r.actions, "notActions": r.not_actions, "dataActions": r.data_actions, "notDataActions": r.not_data_actions }],
            "createdOn": "2015-02-02T21:55:09.8806423Z",
            "updatedOn": "2024-01-01T00:00:00.0000000Z",
            "createdBy": null,
            "updatedBy": null,
        },
        "id": format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{}", r.guid),
        "type": "Microsoft.Authorization/roleDefinitions",
        "name": r.guid,
    })
}

fn role_definition(req: &Req<'_>, scope: &str, g: &str) -> Result<Response, ArmError> {
    let r = roles::by_guid(g).ok_or_else(|| {
        ArmError::new(404, "RoleDefinitionDoesNotExist", format!("The role definition '{g}' could not be found."))
    })?;
    Ok(json_response(200, &role_definition_body(&definition_scope(req, scope), r), &[]))
}

/// Built-in definitions are listed with a subscription-scoped id at or below a subscription,
/// so `roleDefinitionId` in assignments is byte-identical to the definition's `id`.
fn definition_scope(req: &Req<'_>, scope: &str) -> String {
    if scope.is_empty() { String::new() } else { format!("/subscriptions/{}", req.sh.info.subscription_id) }
}

fn role_definitions(req: &Req<'_>, scope: &str) -> Result<Response, ArmError> {
    let filter = query_get(&req.query, "$filter").map(str::to_string);
    let name = filter.as_deref().and_then(|f| {
        let l = f.to_ascii_lowercase();
        let i = l.find("rolename eq ")?;
        Some(f[i + 12..].trim().trim_matches('\'').to_string())
    });
    if let Some(f) = &filter
        && name.is_none()
        && !f.to_ascii_lowercase().contains("type eq 'builtinrole'")
    {
        return Err(bad_filter(f));
    }
    let ds = definition_scope(req, scope);
    let value: Vec<Value> = roles::BUILT_IN
        .iter()
        .filter(|r| name.as_ref().is_none_or(|n| r.name.eq_ignore_ascii_case(n)))
        .map(|r| role_definition_body(&ds, r))
        .collect();
    Ok(json_response(200, &json!({ "value": value }), &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let s = "sub";
        assert!(matches!(parse_route("/subscriptions", s), Ok(Route::Subscriptions)));
        assert!(
            matches!(parse_route("/subscriptions/SUB/resourcegroups/rg", s), Ok(Route::ResourceGroup(n)) if n == "rg")
        );
        assert!(matches!(parse_route("/subscriptions/other", s), Err(e) if e.code == "SubscriptionNotFound"));
        assert!(matches!(
            parse_route("/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines", s),
            Ok(Route::Collection(p, t)) if p == "/subscriptions/sub/resourceGroups/rg" && t == "Microsoft.Compute/virtualMachines"
        ));
        assert!(matches!(
            parse_route("/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets", s),
            Ok(Route::Collection(p, t)) if p.ends_with("/virtualNetworks/v") && t == "Microsoft.Network/virtualNetworks/subnets"
        ));
        assert!(matches!(
            parse_route("/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Authorization/roleAssignments/g", s),
            Ok(Route::RoleAssignment(sc, n)) if sc == "/subscriptions/sub/resourceGroups/rg" && n == "g"
        ));
        assert!(
            matches!(parse_route("/providers/Microsoft.Authorization/roleDefinitions/x", s), Ok(Route::RoleDefinition(sc, _)) if sc.is_empty())
        );
    }

    #[test]
    fn identity_patch_keeps_others_and_removes_nulls() {
        let old = json!({"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {"/a": {"principalId": "1"}, "/b": {}}});
        let p = patch_identity(&old, &json!({"userAssignedIdentities": {"/A": null, "/c": {}}}));
        let keys: Vec<&String> =
            p["userAssignedIdentities"].as_object().map(|m| m.keys().collect()).unwrap_or_default();
        assert_eq!(keys, vec!["/b", "/c"]);
        assert_eq!(p["type"], "SystemAssigned, UserAssigned");
    }
}
