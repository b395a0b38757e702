//! The ARM router of the local cloud: one catch-all handler that parses the (case-
//! insensitive) path itself, then checks, in order, the api-version, injected faults, the
//! bearer token and RBAC on the action the endpoint declares, and dispatches to the resource
//! type (arm-contract §0–§4, §10).
//!
//! Semantics kept from Azure: creates answer 201 and updates 200; long-running operations
//! answer with `Azure-AsyncOperation` (VMs, networking) or `Location` (resource-group
//! delete) plus `Retry-After`; ids keep the casing they were created with; every response
//! carries `x-ms-request-id` and `x-ms-correlation-request-id`. State changes are applied
//! and journaled when the request is acknowledged; an operation given a duration by the
//! fault configuration then reports `InProgress` until it elapses.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::json;

use super::auth::{Caller, Refusal};
use super::http::{
    ArmError, add_headers, error_response, json_response, percent_decode, query_get, query_pairs, reshape,
};
use super::lro::operation_status;
use super::pipeline::{self, Bearer, Errors, FaultScope, Ids, Note, Plane};
use super::providers::{authorization::*, generic::*, identity::*, keyvault::*, network, resources::*};
use super::rbac;
use super::request::*;
use super::shared::{Shared, now_ms};
use super::table::*;
use super::{admin, graph, login, table};
use crate::arm::id::ResourceId;

/// The router: everything goes through one catch-all handler.
pub fn router(sh: Arc<Shared>) -> axum::Router {
    pipeline::layer(&sh, plane(), axum::Router::new().fallback(entry).with_state(sh.clone()))
}

/// ARM audiences accepted for management tokens.
pub const ARM_AUDIENCES: &[&str] = &[
    "https://management.core.windows.net/",
    "https://management.core.windows.net",
    "https://management.azure.com/",
    "https://management.azure.com",
];

/// What a request addresses.
#[derive(Debug, Clone)]
enum Route {
    Tenants,
    /// `/subscriptions/{s}/providers` (`None`) or one namespace.
    Providers(Option<String>),
    /// `POST /subscriptions/{s}/providers/{namespace}/register`.
    Register(String),
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
            Route::Tenants => table::TENANTS.to_ascii_lowercase(),
            Route::Providers(_) | Route::Register(_) => table::PROVIDERS.to_ascii_lowercase(),
            Route::Subscriptions | Route::Subscription => table::SUBSCRIPTIONS.to_ascii_lowercase(),
            Route::ResourceGroups | Route::ResourceGroup(_) => table::RESOURCE_GROUPS.to_ascii_lowercase(),
            Route::Resources(_) => table::RESOURCES.to_ascii_lowercase(),
            Route::RoleDefinitions(_) | Route::RoleDefinition(..) => table::ROLE_DEFINITIONS.to_ascii_lowercase(),
            Route::RoleAssignments(_) | Route::RoleAssignment(..) => table::ROLE_ASSIGNMENTS.to_ascii_lowercase(),
            Route::SystemIdentity(_) => table::IDENTITIES.to_ascii_lowercase(),
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
    if lower.len() == 1 && lower[0] == "tenants" {
        return Ok(Route::Tenants);
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
    // Resource providers and their registration.
    if lower.get(2).map(String::as_str) == Some("providers") {
        match segs.len() {
            3 => return Ok(Route::Providers(None)),
            4 => return Ok(Route::Providers(Some(segs[3].clone()))),
            5 if lower[4] == "register" => return Ok(Route::Register(segs[3].clone())),
            _ => {}
        }
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
                // Served by the limits (providers::quota).
                (Some("roleassignmentsusagemetrics"), None) if p == 2 => {
                    Ok(Route::Collection(scope, table::quota::ROLE_ASSIGNMENT_METRICS.into()))
                }
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

/// The ARM port's plane: ARM, the token issuer and discovery, the admin API.
pub fn plane() -> Plane {
    Plane {
        name: "arm",
        errors: Errors::ArmJson,
        ids: Ids::Arm,
        any_case_scheme: true,
        // Graph's paths take Graph's tokens (and only those), the rest ARM's.
        audiences: |parts, aud| {
            if graph::is_graph_path(&parts.uri.path().to_ascii_lowercase()) {
                graph::accepts(aud)
            } else {
                ARM_AUDIENCES.contains(&aud)
            }
        },
        admit,
        authorize: authorize_arm,
        log_path: pipeline::request_path,
        body_limit: |l| l.arm_body,
        too_large: |limit| {
            error_response(&ArmError::new(
                413,
                "RequestEntityTooLarge",
                format!("The request content size exceeds the maximum allowed size of {limit} bytes."),
            ))
        },
    }
}

/// An ARM request that passed the head checks: what it addresses and its api-version; and
/// the refusal of a POST action's declared action, answered after its body is parsed
/// (`Required::after_body`).
#[derive(Debug, Clone)]
struct Target {
    route: Route,
    version: String,
    refused: Option<ArmError>,
}

/// The paths served without a bearer token: discovery and the token issuer.
fn anonymous(method: &Method, lower: &str, segs: &[&str]) -> bool {
    (lower.starts_with("/metadata/endpoints") && *method == Method::GET)
        || (segs.len() >= 3 && lower.ends_with("/.well-known/openid-configuration"))
        || (*method == Method::POST
            && (lower.ends_with("/oauth2/v2.0/token") || lower.ends_with("/oauth2/token"))
            && segs.len() >= 3)
        || lower.starts_with("/common/discovery/instance")
        || (*method == Method::GET && login::is_keys_path(segs))
}

/// The head checks, in ARM's order: discovery and the token issuer need no token; a refused
/// token is answered first (after a missing api-version on ARM paths, as ARM's gateway does);
/// then the path, the api-version and the type's versions.
fn admit(sh: &Arc<Shared>, parts: &mut Parts, bearer: &Bearer, note: &mut Note) -> Result<(), Box<Response>> {
    // Clients that join a base URL ending in `/` with a path starting with `/` send `//…`.
    let mut path = parts.uri.path().to_string();
    if path.contains("//") {
        while path.contains("//") {
            path = path.replace("//", "/");
        }
        let pq = match parts.uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        if let Ok(uri) = pq.parse::<Uri>() {
            parts.uri = uri;
        }
    }
    let lower = path.to_ascii_lowercase();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = parts.method.clone();
    if anonymous(&method, &lower, &segs) {
        return Ok(());
    }
    let query = query_pairs(parts.uri.query());
    let caller = match authenticate(sh, bearer) {
        Ok(c) => Some(c),
        Err(_) if lower.starts_with("/_idlab/health") => None,
        Err(e)
            if lower.starts_with("/subscriptions")
                || lower.starts_with("/providers")
                || lower == "/tenants"
                || lower.starts_with("/_idlab") =>
        {
            // api-version is checked before authentication, as ARM's gateway does.
            if (lower.starts_with("/subscriptions") || lower.starts_with("/providers") || lower == "/tenants")
                && query_get(&query, "api-version").is_none()
            {
                return Err(Box::new(error_response(&missing_api_version())));
            }
            return Err(Box::new(error_response(&e)));
        }
        Err(_) => None,
    };
    note.principal = caller.map(|c| c.object_id.clone());
    if lower.starts_with("/_idlab") {
        note.write = matches!(method, Method::PUT | Method::POST | Method::DELETE | Method::PATCH)
            && !lower.starts_with("/_idlab/health")
            && !lower.starts_with("/_idlab/operations/");
        return Ok(());
    }
    if graph::is_graph_path(&lower) {
        note.write = false;
        return Ok(());
    }
    // A write asks to change state, whatever the answer: PUT, PATCH, DELETE and POSTs other
    // than read-only actions (listKeys, listServiceSas, checkNameAvailability, …).
    note.write = write_method(&method) && !(method == Method::POST && is_read_action(&lower));
    let route = parse_route(&path, &sh.info.subscription_id).map_err(|e| Box::new(error_response(&e)))?;
    let Some(version) = query_get(&query, "api-version").map(str::to_string) else {
        return Err(Box::new(error_response(&missing_api_version())));
    };
    let type_lower = route.type_lower();
    match table::accepted(&type_lower) {
        None => {
            let ns = type_lower.split('/').next().unwrap_or_default();
            return Err(Box::new(error_response(&ArmError::new(
                400,
                "NoRegisteredProviderFound",
                format!(
                    "No registered resource provider found for location 'eastus' and API version '{version}' for type '{}'. The local cloud serves: resource groups, userAssignedIdentities, virtualNetworks, networkSecurityGroups, publicIPAddresses, networkInterfaces, virtualMachines, storageAccounts, blobServices/containers, Key Vault vaults (with deletedVaults and accessPolicies), Microsoft.Sql servers (with databases, administrators and azureADOnlyAuthentications), DataLakeStore accounts, roleAssignments and roleDefinitions (namespace '{ns}').",
                    type_lower.split('/').skip(1).collect::<Vec<_>>().join("/")
                ),
            ))));
        }
        Some(ok) if !ok.contains(&version.as_str()) => {
            return Err(Box::new(error_response(&ArmError::new(
                400,
                "InvalidApiVersionParameter",
                format!(
                    "The api-version '{version}' is invalid for type '{}' in location 'eastus'. The supported versions are '{}'.",
                    display_type(&type_lower),
                    table::listing(ok)
                ),
            ))));
        }
        Some(_) => {}
    }
    parts.extensions.insert(FaultScope(type_lower));
    parts.extensions.insert(Target { route, version, refused: None });
    Ok(())
}

/// What an ARM endpoint requires of its caller: an action at a scope (docs/architecture.md,
/// "A request, plane by plane", step 4).
#[derive(Debug, Clone, PartialEq)]
struct Required {
    action: String,
    scope: String,
    /// The endpoint answers a bad body (400) before the refusal (POST actions): the pipeline's
    /// verdict waits in the request for the front door to answer after parsing the body.
    after_body: bool,
}

/// The action and scope each ARM endpoint declares, from what `admit` parsed and the method
/// alone. `None`: the endpoint requires no action of its own (lists filtered item by item,
/// the subscription list, role definitions, name checks), or answers before any action is
/// checked (an unknown resource type: 404; a deleted vault not read with GET: 405).
fn required(route: &Route, method: &Method, sub: &str) -> Option<Required> {
    let need = |action: String, scope: &str| Some(Required { action, scope: scope.to_string(), after_body: false });
    let sub_scope = format!("/subscriptions/{sub}");
    match route {
        Route::Tenants
        | Route::Providers(_)
        | Route::Subscriptions
        | Route::ResourceGroups
        | Route::Resources(_)
        | Route::RoleDefinitions(_) => None,
        // Registering a provider needs its `register/action` at the subscription.
        Route::Register(ns) => need(format!("{ns}/register/action"), &sub_scope),
        // Custom roles: writing or deleting one needs the action at the scope it is sent to.
        Route::RoleDefinition(scope, _) if *method == Method::PUT || *method == Method::DELETE => need(
            format!("{}/{}", table::ROLE_DEFINITIONS, verb(method)),
            if scope.is_empty() { &sub_scope } else { scope },
        ),
        Route::RoleDefinition(..) => None,
        Route::Subscription => need(format!("{}/read", table::SUBSCRIPTIONS), &sub_scope),
        Route::ResourceGroup(name) => {
            need(format!("{RESOURCE_GROUP_ACTIONS}/{}", verb(method)), &format!("{sub_scope}/resourceGroups/{name}"))
        }
        Route::RoleAssignments(scope) => need(format!("{ROLE_ASSIGNMENTS}/read"), scope),
        Route::RoleAssignment(scope, _) => need(format!("{ROLE_ASSIGNMENTS}/{}", verb(method)), scope),
        Route::SystemIdentity(res) => need(format!("{IDENTITIES}/read"), res),
        Route::Collection(parent, t) if *method == Method::POST => {
            let action = post_action(&t.to_ascii_lowercase())?;
            Some(Required { action: action.to_string(), scope: parent.clone(), after_body: true })
        }
        Route::Collection(_, t) if t.eq_ignore_ascii_case(DELETED_VAULTS) => {
            need(format!("{DELETED_VAULTS}/read"), &sub_scope)
        }
        Route::Collection(..) => None,
        Route::Resource(id)
            if id.resource_type().is_some_and(|t| t.eq_ignore_ascii_case(table::LOCATION_DELETED_VAULTS)) =>
        {
            if *method == Method::GET { need(format!("{LOCATION_DELETED_VAULTS}/read"), id.as_str()) } else { None }
        }
        Route::Resource(id) => {
            let canon = provider(&id.resource_type().unwrap_or_default().to_ascii_lowercase())?.type_name;
            let action =
                if *method == Method::POST { format!("{canon}/action") } else { format!("{canon}/{}", verb(method)) };
            need(action, id.as_str())
        }
    }
}

/// After the faults: an ARM request needs a caller (401), then the action its endpoint
/// declares ([`required`]) at its scope, evaluated by the one RBAC function (403).
fn authorize_arm(sh: &Arc<Shared>, parts: &mut Parts, bearer: &Bearer, _: &mut Note) -> Result<(), Box<Response>> {
    let Some(Target { route, .. }) = parts.extensions.get::<Target>() else { return Ok(()) };
    let Some(caller) = bearer.caller() else {
        return Err(Box::new(error_response(&auth_missing())));
    };
    let Some(need) = required(route, &parts.method, &sh.info.subscription_id) else { return Ok(()) };
    match authorize(sh, caller, &need.action, &need.scope) {
        Ok(()) => Ok(()),
        Err(refused) if need.after_body => {
            if let Some(target) = parts.extensions.get_mut::<Target>() {
                target.refused = Some(refused);
            }
            Ok(())
        }
        Err(refused) => Err(Box::new(error_response(&refused))),
    }
}

/// The one RBAC evaluation of an ARM action: `action` at `scope` for `caller`, else ARM's 403.
fn authorize(sh: &Shared, caller: &Caller, action: &str, scope: &str) -> Result<(), ArmError> {
    let grants = rbac::grants(&sh.store().state, now_ms());
    if rbac::allowed(&grants, &caller.object_id, scope, action, false) {
        Ok(())
    } else {
        Err(authorization_failed(caller, action, scope))
    }
}

/// The handler, behind the pipeline.
async fn entry(
    State(sh): State<Arc<Shared>>,
    Extension(bearer): Extension<Bearer>,
    target: Option<Extension<Target>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let lower = path.to_ascii_lowercase();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let query = query_pairs(uri.query());
    // A resource group's delete that has ended takes its resources now, before anything is
    // answered (its operation, a GET of what it held).
    crate::local::cascade::finish_group_deletes(&sh);
    if let Some(Extension(Target { route, version, refused })) = target {
        let group_delete = method == Method::DELETE && matches!(route, Route::ResourceGroup(_));
        let caller = bearer.caller().cloned();
        let shape = version_shape(&route, &version, &sh.base_url);
        let created_location = (method == Method::PUT).then(|| created_location(&route)).flatten();
        let mut req = Req { sh: &sh, method, query, headers, body, caller, api_version: version };
        let mut resp = dispatch(&mut req, route, refused).unwrap_or_else(|e| error_response(&e));
        if let Some(l) = created_location
            && resp.status().as_u16() == 201
        {
            add_headers(resp.headers_mut(), &[("location", l)]);
        }
        if group_delete && resp.status().as_u16() == 202 {
            end_group_deletes_later(&sh);
        }
        return match shape {
            Some(f) => reshape(resp, f).await,
            None => resp,
        };
    }
    // Discovery and login (no bearer token).
    if lower.starts_with("/metadata/endpoints") && method == Method::GET {
        return login::metadata(&sh);
    }
    if segs.len() >= 3 && lower.ends_with("/.well-known/openid-configuration") {
        return login::openid(&sh, segs[0], segs.get(1) == Some(&"v2.0"));
    }
    if method == Method::POST
        && (lower.ends_with("/oauth2/v2.0/token") || lower.ends_with("/oauth2/token"))
        && segs.len() >= 3
    {
        return login::token(&sh, segs[0], lower.ends_with("/v2.0/token"), &body).await;
    }
    if method == Method::GET && login::is_keys_path(&segs) {
        return login::keys(&sh, segs[0]);
    }
    if lower.starts_with("/common/discovery/instance") {
        return json_response(
            200,
            &json!({"tenant_discovery_endpoint": format!("{}/{}/v2.0/.well-known/openid-configuration", sh.base_url, sh.info.tenant_id), "api-version": "1.1", "metadata": []}),
            &[],
        );
    }
    if lower.starts_with("/_idlab/operations/") {
        return operation_status(&sh, segs.get(2).copied().unwrap_or_default(), &query);
    }
    if lower.starts_with("/_idlab") {
        return admin::handle(&sh, &method, &lower, &query, &body, bearer.caller());
    }
    if graph::is_graph_path(&lower) {
        return graph::handle(&sh, &method, path, &query, &headers, &body, &bearer);
    }
    json_response(200, &json!({ "value": [] }), &[])
}

/// End the group deletes under way when their time comes, for the planes that do not go
/// through this front door (blob, Key Vault, …): a timer per pending end.
fn end_group_deletes_later(sh: &Arc<Shared>) {
    let Some(due) = crate::local::cascade::finish_group_deletes(sh) else { return };
    let sh = sh.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(due.saturating_sub(now_ms()))).await;
        crate::local::cascade::finish_group_deletes(&sh);
    });
}

/// A rewrite of an answer's body.
type Shape = Box<dyn Fn(&mut serde_json::Value) + Send>;

/// How an answer differs at an older api-version: role assignments carry `canDelegate` at
/// the preview versions that had it; user-assigned identities carry `clientSecretUrl` at
/// 2015-08-31-preview; NICs carry `isInUseWithService`, and `virtualNetworkTapProvisioningState`
/// at 2018-04-01 (all as the recordings show).
fn version_shape(route: &Route, version: &str, base: &str) -> Option<Shape> {
    match route {
        Route::RoleAssignment(..) | Route::RoleAssignments(_) if CAN_DELEGATE.contains(&version) => {
            Some(Box::new(with_can_delegate))
        }
        Route::Resource(_) | Route::Collection(..)
            if version == SECRET_URL_VERSION && route.type_lower() == UAMI_LOWER =>
        {
            let base = base.to_string();
            Some(Box::new(move |v| with_secret_url(v, &base)))
        }
        Route::Resource(_) | Route::Collection(..) if route.type_lower() == network::NICS_LOWER => {
            let version = version.to_string();
            Some(Box::new(move |v| network::nic_at(v, &version)))
        }
        _ => None,
    }
}

/// The `Location` a create of a user-assigned identity or a federated credential answers
/// with (201): the new resource, `resourcegroups` in lower case, no host (the 2023-01-31
/// and 2015-08-31-preview recordings).
fn created_location(route: &Route) -> Option<String> {
    let Route::Resource(id) = route else { return None };
    let t = route.type_lower();
    (t == UAMI_LOWER || t == FIC_LOWER).then(|| lower_resource_groups(id.as_str()))
}

fn missing_api_version() -> ArmError {
    ArmError::new(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )
}

fn www_auth(sh: &Shared, description: &str) -> String {
    format!(
        "Bearer authorization_uri=\"{}/{}\", error=\"invalid_token\", error_description=\"{description}\"",
        sh.base_url, sh.info.tenant_id
    )
}

/// The pipeline's bearer outcome for an ARM request, refusals in ARM's words.
fn authenticate<'b>(sh: &Shared, bearer: &'b Bearer) -> Result<&'b Caller, ArmError> {
    let refusal = match bearer {
        Bearer::Checked(Ok(c)) => return Ok(c),
        Bearer::Checked(Err(r)) => r.clone(),
        Bearer::Absent => {
            return Err(auth_missing().header(
                "www-authenticate",
                www_auth(sh, "The authentication failed because of missing 'Authorization' header."),
            ));
        }
        Bearer::OtherScheme => {
            return Err(ArmError::new(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is provided in an invalid format.",
            )
            .header(
                "www-authenticate",
                www_auth(sh, "The authentication failed because of invalid 'Authorization' header."),
            ));
        }
    };
    Err(match refusal {
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

/// The handler of each route; the pipeline has authorized the action the route declares
/// (`refused`: its verdict on a POST action, answered after the body as it always was).
fn dispatch(req: &mut Req<'_>, r: Route, refused: Option<ArmError>) -> Result<Response, ArmError> {
    match r {
        Route::Tenants => Ok(json_response(200, &tenants_body(req.sh), &[])),
        Route::Providers(ns) => providers(req, ns.as_deref()),
        Route::Register(ns) => register(req, &ns),
        Route::Subscriptions => subscriptions(req),
        Route::Subscription => Ok(json_response(200, &subscription_body(req.sh), &[])),
        Route::ResourceGroups => list_groups(req),
        Route::ResourceGroup(name) => resource_group(req, &name),
        Route::Resources(rg) => list_resources(req, rg.as_deref()),
        Route::RoleDefinitions(scope) => role_definitions(req, &scope),
        Route::RoleDefinition(scope, g) => role_definition(req, &scope, &g),
        Route::RoleAssignments(scope) => list_role_assignments(req, &scope),
        Route::RoleAssignment(scope, name) => role_assignment(req, &scope, &name),
        Route::SystemIdentity(res) => system_identity(req, &res),
        Route::Collection(parent, t) if req.method == Method::POST => {
            let body = parse_body(req)?;
            if let Some(refused) = refused {
                return Err(refused);
            }
            action(req, &parent, &t, body)
        }
        Route::Collection(_, t) if t.eq_ignore_ascii_case(table::DELETED_VAULTS) => deleted_vaults(req),
        Route::Collection(parent, t) => {
            let q = req.sh.quotas();
            // The store's lock ends with this statement: the other listings take it again.
            let listing = {
                let st = req.sh.store();
                let sub = &req.sh.info.subscription_id;
                crate::local::providers::quota::listing(&st.state, &q, sub, &parent, &t.to_ascii_lowercase())
            };
            match listing {
                Some(v) => Ok(json_response(200, &v, &[])),
                None => list_collection(req, &parent, &t),
            }
        }
        Route::Resource(id)
            if id.resource_type().is_some_and(|t| t.eq_ignore_ascii_case(table::LOCATION_DELETED_VAULTS)) =>
        {
            deleted_vault(req, &id)
        }
        Route::Resource(id) => resource(req, &id),
    }
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
    fn endpoints_declare_their_action() {
        let s = "sub";
        let need = |path: &str, m: Method| {
            parse_route(path, s).ok().and_then(|r| required(&r, &m, s)).map(|r| (r.action, r.scope, r.after_body))
        };
        let vm = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm";
        assert_eq!(need(vm, Method::PUT), Some(("Microsoft.Compute/virtualMachines/write".into(), vm.into(), false)));
        assert_eq!(need(vm, Method::POST).map(|n| n.0), Some("Microsoft.Compute/virtualMachines/action".into()));
        let rg = "/subscriptions/sub/resourceGroups/rg";
        assert_eq!(
            need(rg, Method::DELETE),
            Some(("Microsoft.Resources/subscriptions/resourceGroups/delete".into(), rg.into(), false))
        );
        let keys = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a/listKeys";
        assert_eq!(
            need(keys, Method::POST),
            Some((
                "Microsoft.Storage/storageAccounts/listkeys/action".into(),
                keys.trim_end_matches("/listKeys").into(),
                true
            ))
        );
        // Lists filter per item; an unknown type answers 404 before any action is checked.
        assert_eq!(need(&format!("{rg}/resources"), Method::GET), None);
        assert_eq!(need(&format!("{rg}/providers/Microsoft.Nope/things/x"), Method::GET), None);
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
