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

/// The resource group `name` is being deleted: ARM's 409 `ResourceGroupBeingDeleted` for a write
/// into it (Azure's answer quoted in Azure/azure-cli#28679 and #21121).
pub(crate) fn group_being_deleted(name: &str) -> ArmError {
    ArmError::new(
        409,
        "ResourceGroupBeingDeleted",
        format!("The resource group '{name}' is in deprovisioning state and cannot perform this operation."),
    )
}

pub(crate) fn resource_group(req: &mut Req<'_>, name: &str) -> Result<Response, ArmError> {
    let id = rg_id(req.sh, name);
    let key = id.to_ascii_lowercase();
    let existing = req.sh.store().state.resources.get(&key).cloned();
    match req.method {
        Method::GET => {
            existing.map(|r| json_response(200, &present(&r, now_ms()), &[])).ok_or_else(|| rg_not_found(name))
        }
        Method::HEAD => Ok(empty(if existing.is_some() { 204 } else { 404 }, &[])),
        Method::PUT | Method::PATCH if existing.as_ref().is_some_and(|r| delete_due(r).is_some()) => {
            Err(group_being_deleted(name))
        }
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
            // The group reads Deleting and keeps its resources until the operation ends
            // (cascade::finish_group_deletes); a repeated DELETE answers an operation ending
            // with the first.
            let Some(r) = existing else { return Err(rg_not_found(name)) };
            let due = match delete_due(&r) {
                Some(due) => due,
                None => {
                    let due = ends_at(req.sh, "microsoft.resources/resourcegroups");
                    req.sh.commit(vec![begin_group_delete(&r, due)])?;
                    due
                }
            };
            let op = start_operation_until(req.sh, due);
            Ok(empty(202, &lro_headers(req, &op, true)))
        }
        _ => Err(method_not_allowed()),
    }
}

pub(crate) fn list_groups(req: &Req<'_>) -> Result<Response, ArmError> {
    let Some(c) = &req.caller else { return Err(auth_missing()) };
    let filter = group_filter(query_get(&req.query, "$filter"))?;
    let st = req.sh.store();
    let groups = |r: &Resource| r.kind == "Microsoft.Resources/resourceGroups";
    let value: Vec<Value> =
        readable(&st.state, c, groups, |_| "Microsoft.Resources/subscriptions/resourceGroups/read".into())
            .into_iter()
            .filter(|r| filter.as_ref().is_none_or(|f| f.matches(&r.body, "")))
            .map(|r| present(r, now_ms()))
            .collect();
    let path = format!("/subscriptions/{}/resourcegroups", req.sh.info.subscription_id);
    page(req, &path, value)
}

/// One page of `value` from the request's `$skiptoken` on, with a `nextLink` (the same path
/// and query, the next `$skiptoken`) when more follow.
fn page(req: &Req<'_>, path: &str, value: Vec<Value>) -> Result<Response, ArmError> {
    let size = req.sh.page_size.load(std::sync::atomic::Ordering::Relaxed).max(1);
    let start = match query_get(&req.query, "$skiptoken") {
        None => 0,
        Some(t) => t.parse::<usize>().map_err(|_| {
            ArmError::new(400, "InvalidSkipToken", format!("The $skiptoken '{t}' is not valid for this list."))
        })?,
    };
    let total = value.len();
    let items: Vec<Value> = value.into_iter().skip(start).take(size).collect();
    let mut out = json!({ "value": items });
    if start.saturating_add(size) < total {
        let mut q: Vec<String> = req
            .query
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("$skiptoken"))
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        q.push(format!("%24skiptoken={}", start + size));
        out["nextLink"] = json!(format!("{}{path}?{}", req.sh.base_url, q.join("&")));
    }
    Ok(json_response(200, &out, &[]))
}

/// Percent-encodes a query key or value (unreserved characters stay).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One comparison of a `/resources` `$filter`.
#[derive(Debug, Clone, PartialEq)]
enum Clause {
    /// `{field} eq '{value}'` (`ne` when `negate`): `name`, `resourceGroup`, `resourceType`,
    /// `location`.
    Field {
        field: Field,
        value: String,
        negate: bool,
    },
    /// `substringof('{value}', {field})`: `name`, `resourceGroup`.
    Substring {
        field: Field,
        value: String,
    },
    TagName(String),
    TagValue(String),
    /// `startswith(tagName, '{prefix}')`.
    TagPrefix(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Name,
    ResourceGroup,
    ResourceType,
    Location,
}

/// A parsed `$filter` of `/resources` (docs/local-cloud.md, "Filtering lists"): its clauses,
/// all of which must hold, or (`any`) one of which must (`or` between `substringof`s).
#[derive(Debug, Default)]
pub(crate) struct Filter {
    clauses: Vec<Clause>,
    any: bool,
}

impl Filter {
    /// Whether a resource's body (or a group's) matches; `group` is the resource's group name.
    fn matches(&self, body: &Value, group: &str) -> bool {
        let one = |c: &Clause| match c {
            Clause::Field { field, value, negate } => {
                field_value(*field, body, group).eq_ignore_ascii_case(value) != *negate
            }
            Clause::Substring { field, value } => {
                field_value(*field, body, group).to_ascii_lowercase().contains(&value.to_ascii_lowercase())
            }
            Clause::TagName(n) => tag(body, |k| k.eq_ignore_ascii_case(n)).is_some(),
            Clause::TagPrefix(p) => {
                tag(body, |k| k.to_ascii_lowercase().starts_with(&p.to_ascii_lowercase())).is_some()
            }
            Clause::TagValue(v) => {
                let name = self.clauses.iter().find_map(|c| match c {
                    Clause::TagName(n) => Some(n.as_str()),
                    _ => None,
                });
                name.and_then(|n| tag(body, |k| k.eq_ignore_ascii_case(n)))
                    .is_some_and(|t| t.as_str() == Some(v.as_str()))
            }
        };
        if self.any { self.clauses.iter().any(one) } else { self.clauses.iter().all(one) }
    }

    /// A filter by tag name and value: ARM leaves the tags out of the listed resources.
    fn by_tag_value(&self) -> bool {
        self.clauses.iter().any(|c| matches!(c, Clause::TagValue(_)))
    }
}

fn field_value<'a>(f: Field, body: &'a Value, group: &'a str) -> &'a str {
    let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
    match f {
        Field::Name => s("name"),
        Field::ResourceType => s("type"),
        Field::Location => s("location"),
        Field::ResourceGroup => group,
    }
}

fn tag(body: &Value, key: impl Fn(&str) -> bool) -> Option<&Value> {
    body.get("tags").and_then(Value::as_object)?.iter().find(|(k, _)| key(k)).map(|(_, v)| v)
}

/// The resource-group list's `$filter`: `tagName eq '…'` with an optional `and tagValue eq
/// '…'` (the group list's documented filter), else ARM's `InvalidFilterInQueryString`.
pub(crate) fn group_filter(f: Option<&str>) -> Result<Option<Filter>, ArmError> {
    let Some(parsed) = resource_filter(f)? else { return Ok(None) };
    if parsed.clauses.iter().all(|c| matches!(c, Clause::TagName(_) | Clause::TagValue(_))) {
        Ok(Some(parsed))
    } else {
        Err(bad_filter(f.unwrap_or_default()))
    }
}

/// Parses `/resources`' `$filter` as ARM takes it (the `$filter` parameter of Resources - List,
/// Microsoft.Resources 2024-11-01): `eq`/`ne` on `name`, `resourceGroup`, `resourceType`,
/// `location`, joined by `and`; `substringof('v', name|resourceGroup)`, joined by `and` or
/// `or`, alone or with `resourceType`; `tagName eq` (with `and tagValue eq`) or
/// `startswith(tagName, '…')`, alone. Anything else is ARM's 400 `InvalidFilterInQueryString`.
pub(crate) fn resource_filter(f: Option<&str>) -> Result<Option<Filter>, ArmError> {
    let Some(f) = f.filter(|f| !f.trim().is_empty()) else { return Ok(None) };
    let bad = || bad_filter(f);
    let (parts, joins) = split_clauses(f).ok_or_else(bad)?;
    let mut out = Filter::default();
    for p in &parts {
        out.clauses.push(clause(p).ok_or_else(bad)?);
    }
    let is_sub = |c: &Clause| matches!(c, Clause::Substring { .. });
    let is_tag = |c: &Clause| matches!(c, Clause::TagName(_) | Clause::TagValue(_) | Clause::TagPrefix(_));
    let ors = joins.iter().filter(|j| **j).count();
    if ors > 0 {
        // `or` only between substringofs, and not mixed with `and`.
        if ors != joins.len() || !out.clauses.iter().all(is_sub) {
            return Err(bad());
        }
        out.any = true;
    }
    let tags: Vec<&Clause> = out.clauses.iter().filter(|c| is_tag(c)).collect();
    if !tags.is_empty() {
        let ok = tags.len() == out.clauses.len()
            && matches!(
                tags.as_slice(),
                [Clause::TagName(_)]
                    | [Clause::TagPrefix(_)]
                    | [Clause::TagName(_), Clause::TagValue(_)]
                    | [Clause::TagValue(_), Clause::TagName(_)]
            );
        if !ok {
            return Err(bad());
        }
    }
    // substringof combines with resourceType only.
    if out.clauses.iter().any(is_sub)
        && !out.clauses.iter().all(|c| is_sub(c) || matches!(c, Clause::Field { field: Field::ResourceType, .. }))
    {
        return Err(bad());
    }
    Ok(Some(out))
}

/// Splits a filter at its top-level ` and ` / ` or ` (outside quotes and parentheses): the
/// clauses and, per join, whether it was `or`. `None` on unbalanced quotes or parentheses.
fn split_clauses(f: &str) -> Option<(Vec<String>, Vec<bool>)> {
    let bytes = f.as_bytes();
    let (mut parts, mut joins) = (Vec::new(), Vec::new());
    let (mut depth, mut quoted, mut start, mut i) = (0i32, false, 0usize, 0usize);
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\'' {
            quoted = !quoted;
        } else if !quoted && b == b'(' {
            depth += 1;
        } else if !quoted && b == b')' {
            depth -= 1;
            if depth < 0 {
                return None;
            }
        } else if !quoted && depth == 0 && b == b' ' {
            let rest = f[i..].to_ascii_lowercase();
            let join = [(" and ", false), (" or ", true)].into_iter().find(|(w, _)| rest.starts_with(w));
            if let Some((word, or)) = join {
                parts.push(f[start..i].trim().to_string());
                joins.push(or);
                i += word.len();
                start = i;
                continue;
            }
        }
        i += 1;
    }
    if quoted || depth != 0 {
        return None;
    }
    parts.push(f[start..].trim().to_string());
    parts.iter().all(|p| !p.is_empty()).then_some((parts, joins))
}

/// A quoted literal: `'it''s'` → `it's`.
fn literal(s: &str) -> Option<String> {
    let s = s.trim();
    let inner = s.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

fn field(s: &str) -> Option<Field> {
    match s.trim().to_ascii_lowercase().as_str() {
        "name" => Some(Field::Name),
        "resourcegroup" => Some(Field::ResourceGroup),
        "resourcetype" => Some(Field::ResourceType),
        "location" => Some(Field::Location),
        _ => None,
    }
}

/// One clause: `x eq 'v'`, `x ne 'v'`, `substringof('v', x)`, `startswith(tagName, 'p')`.
fn clause(p: &str) -> Option<Clause> {
    let lower = p.to_ascii_lowercase();
    for (fname, sub) in [("substringof(", true), ("startswith(", false)] {
        if lower.starts_with(fname) {
            let inner = p[fname.len()..].strip_suffix(')')?;
            let (a, b) = split_comma(inner)?;
            return if sub {
                let f = field(&b).filter(|f| matches!(f, Field::Name | Field::ResourceGroup))?;
                Some(Clause::Substring { field: f, value: literal(&a)? })
            } else if a.trim().eq_ignore_ascii_case("tagname") {
                Some(Clause::TagPrefix(literal(&b)?))
            } else {
                None
            };
        }
    }
    let (key, op, value) = {
        let mut it = p.splitn(3, ' ');
        (it.next()?, it.next()?.to_ascii_lowercase(), literal(it.next()?)?)
    };
    let negate = match op.as_str() {
        "eq" => false,
        "ne" => true,
        _ => return None,
    };
    match key.to_ascii_lowercase().as_str() {
        "tagname" if !negate => Some(Clause::TagName(value)),
        "tagvalue" if !negate => Some(Clause::TagValue(value)),
        _ => Some(Clause::Field { field: field(key)?, value, negate }),
    }
}

/// `'a,b', c` → (`'a,b'`, `c`): the first comma outside quotes.
fn split_comma(s: &str) -> Option<(String, String)> {
    let mut quoted = false;
    for (i, ch) in s.char_indices() {
        match ch {
            '\'' => quoted = !quoted,
            ',' if !quoted => return Some((s[..i].to_string(), s[i + 1..].to_string())),
            _ => {}
        }
    }
    None
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
    let filter = resource_filter(query_get(&req.query, "$filter"))?;
    let hide_tags = filter.as_ref().is_some_and(Filter::by_tag_value);
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
        .filter(|r| filter.as_ref().is_none_or(|f| f.matches(&r.body, group_of(&r.id))))
        .map(|r| {
            let mut o = Map::new();
            for k in ["id", "name", "type", "kind", "location", "tags", "sku", "identity", "managedBy"] {
                if let Some(v) = r.body.get(k).filter(|_| !(hide_tags && k == "tags")) {
                    o.insert(k.into(), v.clone());
                }
            }
            Value::Object(o)
        })
        .collect();
    drop(st);
    page(req, &format!("{scope}/resources"), value)
}

/// The resource group a resource id names (`/subscriptions/s/resourceGroups/{g}/…`).
fn group_of(id: &str) -> &str {
    let mut segs = id.split('/');
    while let Some(s) = segs.next() {
        if s.eq_ignore_ascii_case("resourcegroups") {
            return segs.next().unwrap_or_default();
        }
    }
    ""
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
