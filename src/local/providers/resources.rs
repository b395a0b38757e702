//! Provider `Microsoft.Resources`: the subscription, resource groups and resource lists.

use axum::http::Method;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::arm::id::is_scope_prefix;
use crate::local::cascade::*;
use crate::local::http::{ArmError, empty, json_response, query_get};
use crate::local::lro::*;
use crate::local::rbac::{self};
use crate::local::request::*;
use crate::local::shared::{Shared, now_ms};
use crate::local::store::{Op, Resource};

pub(crate) fn subscription_body(sh: &Shared) -> Value {
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

pub(crate) fn subscriptions(req: &Req<'_>) -> Result<Response, ArmError> {
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

pub(crate) fn resource_group(req: &mut Req<'_>, name: &str) -> Result<Response, ArmError> {
    let id = rg_id(req.sh, name);
    let key = id.to_ascii_lowercase();
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
            if existing.is_none() {
                super::quota::check_group(&req.sh.store().state, &req.sh.quotas(), &req.sh.info.subscription_id)?;
            }
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

pub(crate) fn list_groups(req: &Req<'_>) -> Result<Response, ArmError> {
    let Some(c) = &req.caller else { return Err(auth_missing()) };
    let filter = tag_filter(query_get(&req.query, "$filter"))?;
    let st = req.sh.store();
    let groups = |r: &Resource| r.kind == "Microsoft.Resources/resourceGroups";
    let value: Vec<Value> =
        readable(&st.state, c, groups, |_| "Microsoft.Resources/subscriptions/resourceGroups/read".into())
            .into_iter()
            .filter(|r| filter.as_ref().is_none_or(|f| f.matches(&r.body)))
            .map(|r| r.body.clone())
            .collect();
    Ok(json_response(200, &json!({ "value": value }), &[]))
}

/// `$filter=tagName eq 'k' and tagValue eq 'v'` / `resourceType eq 'T'`.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    pub(crate) tag_name: Option<String>,
    pub(crate) tag_value: Option<String>,
    pub(crate) resource_type: Option<String>,
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

pub(crate) fn tag_filter(f: Option<&str>) -> Result<Option<Filter>, ArmError> {
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

pub(crate) fn split_and(f: &str) -> Vec<String> {
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

pub(crate) fn list_resources(req: &Req<'_>, rg: Option<&str>) -> Result<Response, ArmError> {
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
    // Tracked resources only: no groups, role assignments or proxy child resources (subnets,
    // blob containers). SQL databases are tracked (location, tags), so ARM lists them.
    let tracked = |r: &Resource| {
        r.kind != "Microsoft.Resources/resourceGroups"
            && !r.kind.starts_with("Microsoft.Authorization/")
            && (r.kind.matches('/').count() == 1 || r.kind == "Microsoft.Sql/servers/databases")
            && is_scope_prefix(&scope, &r.id)
    };
    let value: Vec<Value> = readable(&st.state, c, tracked, |r| format!("{}/read", r.kind))
        .into_iter()
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

/// `GET /tenants`: the one tenant (the 2016-06-01 recording's shape: `id`, `tenantId`).
pub(crate) fn tenants_body(sh: &Shared) -> Value {
    let t = &sh.info.tenant_id;
    json!({ "value": [{ "id": format!("/tenants/{t}"), "tenantId": t, "tenantCategory": "Home", "displayName": "idlab local cloud" }] })
}

/// Regions a provider lists for its types (display names, as Azure lists them).
const PROVIDER_LOCATIONS: &[&str] = &[
    "East US",
    "East US 2",
    "West US",
    "West US 2",
    "Central US",
    "North Central US",
    "South Central US",
    "West Central US",
    "North Europe",
    "West Europe",
    "UK South",
    "Southeast Asia",
    "East Asia",
    "Japan East",
    "Australia East",
];

/// The api-version of each namespace in Azure Stack's 2017-03-09-profile, which Azure lists
/// in a type's `apiProfiles` (the 2017-05-10 provider list of the resource-group recording).
const API_PROFILE: &[(&str, &str)] =
    &[("Microsoft.Compute", "2016-03-30"), ("Microsoft.Network", "2015-06-15"), ("Microsoft.Storage", "2016-01-01")];

/// Types the front door serves itself, per namespace (the table lists the others).
const FRONT_DOOR_TYPES: &[(&str, &str)] = &[
    ("Microsoft.Resources", "subscriptions"),
    ("Microsoft.Resources", "tenants"),
    ("Microsoft.Resources", "resourceGroups"),
    ("Microsoft.Resources", "resources"),
    ("Microsoft.Resources", "providers"),
    ("Microsoft.Authorization", "roleAssignments"),
    ("Microsoft.Authorization", "roleDefinitions"),
];

/// A resource provider as `GET /subscriptions/{s}/providers/{namespace}` shows it: the types
/// the local cloud serves in it, each with the api-versions it accepts (newest first).
fn provider_body(sh: &Shared, namespace: &str) -> Option<Value> {
    let mut types: Vec<(String, Vec<&str>)> = Vec::new();
    let mut canonical_ns = None;
    for p in crate::local::table::TABLE {
        if let Some((ns, t)) = p.type_name.split_once('/')
            && ns.eq_ignore_ascii_case(namespace)
        {
            canonical_ns = Some(ns);
            types.push((t.to_string(), (p.versions)().to_vec()));
        }
    }
    for (ns, t) in FRONT_DOOR_TYPES {
        if ns.eq_ignore_ascii_case(namespace) {
            canonical_ns = Some(ns);
            let versions = crate::local::table::accepted(&format!("{ns}/{t}").to_ascii_lowercase()).unwrap_or_default();
            types.push((t.to_string(), versions.to_vec()));
        }
    }
    let ns = canonical_ns?;
    let profile = API_PROFILE.iter().find(|(n, _)| n.eq_ignore_ascii_case(ns)).map(|(_, v)| *v);
    let resource_types: Vec<Value> = types
        .into_iter()
        .map(|(t, mut v)| {
            v.sort_unstable_by(|a, b| b.cmp(a));
            let mut entry = json!({
                "resourceType": t,
                "locations": PROVIDER_LOCATIONS,
                "apiVersions": v,
                "capabilities": "CrossResourceGroupResourceMove, CrossSubscriptionResourceMove",
            });
            if let Some(pv) = profile.filter(|pv| v.contains(pv)) {
                entry["apiProfiles"] = json!([{ "profileVersion": "2017-03-09-profile", "apiVersion": pv }]);
            }
            entry
        })
        .collect();
    // A stable first-party application per namespace (Azure names the provider's own).
    let app = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, format!("idlab:{ns}").as_bytes());
    // Azure answers `authorization` (older) or `authorizations` (newer), some providers both.
    let auth =
        json!({ "applicationId": app.to_string(), "roleDefinitionId": uuid::Uuid::new_v5(&app, b"role").to_string() });
    Some(json!({
        "id": format!("/subscriptions/{}/providers/{ns}", sh.info.subscription_id),
        "namespace": ns,
        "authorization": auth,
        "authorizations": [auth],
        "resourceTypes": resource_types,
        "registrationState": "Registered",
        "registrationPolicy": "RegistrationRequired",
    }))
}

fn namespaces() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = crate::local::table::TABLE
        .iter()
        .filter_map(|p| p.type_name.split_once('/').map(|(ns, _)| ns))
        .chain(FRONT_DOOR_TYPES.iter().map(|(ns, _)| *ns))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn provider_not_found(namespace: &str) -> ArmError {
    ArmError::new(404, "InvalidResourceNamespace", format!("The resource namespace '{namespace}' is invalid."))
}

/// `GET /subscriptions/{s}/providers[/{namespace}]`: every namespace the local cloud
/// serves (all registered), or one.
pub(crate) fn providers(req: &Req<'_>, namespace: Option<&str>) -> Result<Response, ArmError> {
    if req.method != Method::GET {
        return Err(method_not_allowed());
    }
    match namespace {
        Some(ns) => {
            provider_body(req.sh, ns).map(|b| json_response(200, &b, &[])).ok_or_else(|| provider_not_found(ns))
        }
        None => {
            let value: Vec<Value> = namespaces().into_iter().filter_map(|ns| provider_body(req.sh, ns)).collect();
            Ok(json_response(200, &json!({ "value": value }), &[]))
        }
    }
}

/// `POST /subscriptions/{s}/providers/{namespace}/register`: every served namespace is
/// registered already; the answer is the provider.
pub(crate) fn register(req: &Req<'_>, namespace: &str) -> Result<Response, ArmError> {
    if req.method != Method::POST {
        return Err(method_not_allowed());
    }
    provider_body(req.sh, namespace).map(|b| json_response(200, &b, &[])).ok_or_else(|| provider_not_found(namespace))
}
