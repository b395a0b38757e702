//! Provider `Microsoft.Authorization`: role assignments and role definitions.

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use crate::arm::id::{ResourceId, is_scope_prefix};
use crate::local::http::{ArmError, empty, json_response, query_get};
use crate::local::rbac::{self};
use crate::local::request::*;
use crate::local::shared::{Shared, now_ms};
use crate::local::store::{Op, Resource};
use crate::local::table::{ROLE_ASSIGNMENTS, ROLE_DEFINITIONS};
use crate::roles;

/// Whether a scope exists (subscription, group or resource).
pub(crate) fn scope_exists(sh: &Shared, scope: &str) -> Result<(), ArmError> {
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

pub(crate) fn role_assignment(req: &mut Req<'_>, scope: &str, name: &str) -> Result<Response, ArmError> {
    let id = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
    let key = id.to_ascii_lowercase();
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
            let (condition, condition_version) = condition_of(&p)?;
            let guid_part = rbac::role_guid(&def).to_string();
            // A custom role outside its assignable scopes does not exist at that scope.
            if assignable_at(req.sh, &guid_part, scope) != Some(true) {
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
                    // An update in place: the description and the condition (Azure takes both
                    // on a PUT of the same assignment).
                    let mut updated = r.clone();
                    let by = req.caller.as_ref().map(|c| c.object_id.clone()).unwrap_or_default();
                    let up = &mut updated.body["properties"];
                    up["description"] = p.get("description").cloned().unwrap_or(Value::Null);
                    up["condition"] = condition.clone();
                    up["conditionVersion"] = condition_version.clone();
                    up["updatedOn"] = json!(rfc3339(now));
                    up["updatedBy"] = json!(by);
                    updated.etag += 1;
                    drop(st);
                    let out = updated.body.clone();
                    req.sh.commit(vec![Op::PutResource { resource: updated }])?;
                    return Ok(json_response(200, &out, &[]));
                }
                let dup = st.state.resources.values().any(|r| {
                    r.kind == ROLE_ASSIGNMENTS
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
            let mut out = rbac::role_assignment_body(
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
            out["properties"]["condition"] = condition;
            out["properties"]["conditionVersion"] = condition_version;
            super::quota::check_role_assignment(&req.sh.store().state, &req.sh.quotas(), &req.sh.info.subscription_id)?;
            let r = Resource {
                id: id.clone(),
                kind: ROLE_ASSIGNMENTS.into(),
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

/// The condition of a role assignment request and its version (`2.0` when a condition comes
/// without one, null without a condition); any other version is refused.
fn condition_of(p: &Value) -> Result<(Value, Value), ArmError> {
    let Some(c) = p.get("condition").and_then(Value::as_str).filter(|c| !c.trim().is_empty()) else {
        return Ok((Value::Null, Value::Null));
    };
    match p.get("conditionVersion").and_then(Value::as_str) {
        None | Some("2.0") => Ok((json!(c), json!("2.0"))),
        Some(v) => Err(ArmError::new(
            400,
            "InvalidConditionVersion",
            format!("The condition version '{v}' is not supported. The only supported version is '2.0'."),
        )),
    }
}

pub(crate) fn list_role_assignments(req: &Req<'_>, scope: &str) -> Result<Response, ArmError> {
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
        .filter(|r| r.kind == ROLE_ASSIGNMENTS)
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

/// A built-in role's body, with its id at `scope` (Azure answers at and below a subscription
/// with the subscription's id, whatever the scope asked).
pub(crate) fn role_definition_body(scope: &str, r: &roles::Role) -> Value {
    let permissions: Vec<Value> = r
        .permissions
        .iter()
        .map(|p| {
            let mut b = json!({ "actions": p.actions, "notActions": p.not_actions, "dataActions": p.data_actions, "notDataActions": p.not_data_actions });
            if let Some(c) = p.condition {
                b["condition"] = json!(c);
                b["conditionVersion"] = json!("2.0");
            }
            b
        })
        .collect();
    json!({
        "properties": {
            "roleName": r.name,
            "type": "BuiltInRole",
            "description": r.description,
            "assignableScopes": ["/"],
            "permissions": permissions,
            "createdOn": "2015-02-02T21:55:09.8806423Z",
            "updatedOn": "2024-01-01T00:00:00.0000000Z",
            "createdBy": null,
            "updatedBy": null,
        },
        "id": format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{}", r.guid),
        "type": ROLE_DEFINITIONS,
        "name": r.guid,
    })
}

fn definition_not_found(g: &str) -> ArmError {
    ArmError::new(404, "RoleDefinitionDoesNotExist", format!("The role definition '{g}' could not be found."))
}

/// The assignable scopes of a custom definition's body.
fn assignable_scopes(body: &Value) -> Vec<String> {
    body.pointer("/properties/assignableScopes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|s| s.trim_end_matches('/').to_string())
        .collect()
}

/// Whether a custom definition is visible at `scope` (the tenant, or a scope at, above or
/// below one of its assignable scopes).
fn custom_visible_at(body: &Value, scope: &str) -> bool {
    scope.is_empty() || assignable_scopes(body).iter().any(|a| is_scope_prefix(a, scope) || is_scope_prefix(scope, a))
}

/// Whether a role definition may be assigned at `scope`: built-in roles everywhere, a custom
/// one at or below one of its assignable scopes. `None`: no such definition.
pub(crate) fn assignable_at(sh: &Shared, guid: &str, scope: &str) -> Option<bool> {
    if roles::by_guid(guid).is_some() {
        return Some(true);
    }
    let st = sh.store();
    let (_, body) = rbac::custom_definitions(&st.state).find(|(g, _)| g.eq_ignore_ascii_case(guid))?;
    Some(assignable_scopes(body).iter().any(|a| is_scope_prefix(a, scope)))
}

fn custom_definition_id(sh: &Shared, g: &str) -> String {
    format!("/subscriptions/{}/providers/{ROLE_DEFINITIONS}/{g}", sh.info.subscription_id)
}

/// `{scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}`: a built-in role (GET)
/// or a custom one (GET, PUT, DELETE).
pub(crate) fn role_definition(req: &mut Req<'_>, scope: &str, g: &str) -> Result<Response, ArmError> {
    if let Some(r) = roles::by_guid(g) {
        return match req.method {
            Method::GET => Ok(json_response(200, &role_definition_body(&definition_scope(req, scope), r), &[])),
            Method::PUT | Method::DELETE => Err(ArmError::new(
                403,
                "CannotModifyBuiltInRole",
                format!("The role definition '{g}' is a built-in role and cannot be modified or deleted."),
            )),
            _ => Err(method_not_allowed()),
        };
    }
    let id = custom_definition_id(req.sh, g);
    let key = id.to_ascii_lowercase();
    let existing = req.sh.store().state.resources.get(&key).map(|r| r.body.clone());
    match req.method {
        Method::GET => existing
            .filter(|b| custom_visible_at(b, scope))
            .map(|b| json_response(200, &b, &[]))
            .ok_or_else(|| definition_not_found(g)),
        Method::DELETE => {
            let Some(body) = existing else { return Ok(empty(204, &[])) };
            let used =
                rbac::grants(&req.sh.store().state, u64::MAX).iter().any(|a| a.role_guid.eq_ignore_ascii_case(g));
            if used {
                return Err(ArmError::new(
                    409,
                    "RoleDefinitionHasAssignments",
                    "There are existing role assignments referencing role (code: RoleDefinitionHasAssignments).",
                ));
            }
            req.sh.commit(vec![Op::DeleteResource { key }])?;
            Ok(json_response(200, &body, &[]))
        }
        Method::PUT => put_custom_definition(req, scope, g, &id, existing),
        _ => Err(method_not_allowed()),
    }
}

fn bad_definition(msg: impl Into<String>) -> ArmError {
    ArmError::new(400, "InvalidRoleDefinition", msg)
}

/// Create or update a custom role: a GUID name, a unique `roleName`, assignable scopes that
/// exist in this subscription (never `/`), the permissions' four lists.
fn put_custom_definition(
    req: &mut Req<'_>,
    scope: &str,
    g: &str,
    id: &str,
    existing: Option<Value>,
) -> Result<Response, ArmError> {
    if uuid::Uuid::parse_str(g).is_err() {
        return Err(ArmError::new(
            400,
            "InvalidRoleDefinitionId",
            format!("The role definition ID '{g}' is not valid. The role definition ID must be a GUID."),
        ));
    }
    let body = parse_body(req)?;
    let p = body.get("properties").cloned().unwrap_or(json!({}));
    let role_name = p.get("roleName").and_then(Value::as_str).map(str::trim).unwrap_or_default().to_string();
    if role_name.is_empty() {
        return Err(bad_definition("The role definition must have a roleName."));
    }
    let scopes = assignable_scopes(&body);
    if scopes.is_empty() {
        return Err(bad_definition("The role definition must have at least one assignable scope."));
    }
    let sub = format!("/subscriptions/{}", req.sh.info.subscription_id);
    for a in &scopes {
        if a.is_empty() || !is_scope_prefix(&sub, a) {
            return Err(ArmError::new(
                400,
                "InvalidAssignableScope",
                format!(
                    "The assignable scope '{a}' is not valid: a custom role's assignable scopes are subscriptions, resource groups or resources of this subscription."
                ),
            ));
        }
        scope_exists(req.sh, a)?;
    }
    if !scope.is_empty() && !scopes.iter().any(|a| is_scope_prefix(a, scope) || is_scope_prefix(scope, a)) {
        return Err(bad_definition(format!(
            "The scope '{scope}' is not among the role definition's assignable scopes."
        )));
    }
    let Some(perms) = p.get("permissions").and_then(Value::as_array).filter(|a| !a.is_empty()) else {
        return Err(bad_definition("The role definition must have permissions."));
    };
    let mut permissions = Vec::new();
    for block in perms {
        let mut out = serde_json::Map::new();
        for k in ["actions", "notActions", "dataActions", "notDataActions"] {
            let v = block.get(k).cloned().unwrap_or(json!([]));
            if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) {
                return Err(bad_definition(format!("'{k}' must be a list of strings.")));
            }
            out.insert(k.to_string(), v);
        }
        permissions.push(Value::Object(out));
    }
    {
        let st = req.sh.store();
        let clash = roles::by_name(&role_name).is_some()
            || rbac::custom_definitions(&st.state).any(|(other, b)| {
                !other.eq_ignore_ascii_case(g)
                    && b.pointer("/properties/roleName")
                        .and_then(Value::as_str)
                        .is_some_and(|n| n.eq_ignore_ascii_case(&role_name))
            });
        if clash {
            return Err(ArmError::new(
                409,
                "RoleDefinitionWithSameNameExists",
                "A role definition cannot be updated with a name that already exists.",
            ));
        }
    }
    if existing.is_some() {
        // Narrowing the assignable scopes may not orphan an assignment.
        let st = req.sh.store();
        let orphan = rbac::grants(&st.state, u64::MAX)
            .into_iter()
            .filter(|a| a.role_guid.eq_ignore_ascii_case(g))
            .find(|a| !scopes.iter().any(|s| is_scope_prefix(s, &a.scope)));
        if let Some(a) = orphan {
            return Err(ArmError::new(
                400,
                "RoleScopeBeingRemovedContainsAssignments",
                format!(
                    "Role assignments found under scope '{}' which is being removed. Removing this scope from the role will orphan these assignments. Delete these assignments before removing the scope.",
                    a.scope
                ),
            ));
        }
    }
    let now = now_ms();
    let ts = rfc3339(now);
    let caller = req.caller.as_ref().map(|c| c.object_id.clone()).unwrap_or_default();
    let created_on = existing.as_ref().and_then(|b| b.pointer("/properties/createdOn").cloned()).unwrap_or(json!(ts));
    let created_by =
        existing.as_ref().and_then(|b| b.pointer("/properties/createdBy").cloned()).unwrap_or(json!(caller));
    let out = json!({
        "properties": {
            "roleName": role_name,
            "type": "CustomRole",
            "description": p.get("description").and_then(Value::as_str).unwrap_or_default(),
            "assignableScopes": scopes,
            "permissions": permissions,
            "createdOn": created_on,
            "updatedOn": ts,
            "createdBy": created_by,
            "updatedBy": caller,
        },
        "id": id,
        "type": ROLE_DEFINITIONS,
        "name": g.to_ascii_lowercase(),
    });
    let r = Resource {
        id: id.to_string(),
        kind: ROLE_DEFINITIONS.into(),
        body: out.clone(),
        etag: 1,
        created_ms: now,
        busy_until_ms: 0,
        effective_ms: None,
    };
    req.sh.commit(vec![Op::PutResource { resource: r }])?;
    Ok(json_response(if existing.is_some() { 200 } else { 201 }, &out, &[]))
}

fn rfc3339(now_ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp((now_ms / 1000) as i64)
        .map(|d| d.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
        .unwrap_or_default()
}

/// Built-in definitions are listed with a subscription-scoped id at or below a subscription,
/// so `roleDefinitionId` in assignments is byte-identical to the definition's `id`.
pub(crate) fn definition_scope(req: &Req<'_>, scope: &str) -> String {
    if scope.is_empty() { String::new() } else { format!("/subscriptions/{}", req.sh.info.subscription_id) }
}

/// The `$filter`s of a role-definition list: `roleName eq '…'`, `type eq 'BuiltInRole'` or
/// `type eq 'CustomRole'`, alone or joined with `and`.
struct DefinitionFilter {
    name: Option<String>,
    kind: Option<&'static str>,
}

fn definition_filter(f: Option<&str>) -> Result<DefinitionFilter, ArmError> {
    let mut out = DefinitionFilter { name: None, kind: None };
    let Some(f) = f else { return Ok(out) };
    for clause in split_and(f) {
        let c = clause.trim();
        let l = c.to_ascii_lowercase();
        if let Some(v) = l.strip_prefix("rolename eq ").map(|_| c[12..].trim().trim_matches('\'').to_string()) {
            out.name = Some(v);
        } else if l == "type eq 'builtinrole'" {
            out.kind = Some("BuiltInRole");
        } else if l == "type eq 'customrole'" {
            out.kind = Some("CustomRole");
        } else {
            return Err(bad_filter(f));
        }
    }
    Ok(out)
}

/// Split a filter on ` and ` outside quotes.
fn split_and(f: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted) = (Vec::new(), 0, false);
    let b = f.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\'' {
            quoted = !quoted;
        } else if !quoted && f[i..].len() >= 5 && f[i..i + 5].eq_ignore_ascii_case(" and ") {
            out.push(&f[start..i]);
            start = i + 5;
            i += 5;
            continue;
        }
        i += 1;
    }
    out.push(&f[start..]);
    out
}

pub(crate) fn role_definitions(req: &Req<'_>, scope: &str) -> Result<Response, ArmError> {
    let filter = definition_filter(query_get(&req.query, "$filter"))?;
    let named = |n: &str| filter.name.as_ref().is_none_or(|want| n.eq_ignore_ascii_case(want));
    let ds = definition_scope(req, scope);
    let mut value: Vec<Value> = Vec::new();
    if filter.kind != Some("CustomRole") {
        value.extend(roles::built_in().iter().filter(|r| named(r.name)).map(|r| role_definition_body(&ds, r)));
    }
    if filter.kind != Some("BuiltInRole") {
        let st = req.sh.store();
        value.extend(
            rbac::custom_definitions(&st.state)
                .map(|(_, b)| b)
                .filter(|b| named(b.pointer("/properties/roleName").and_then(Value::as_str).unwrap_or_default()))
                .filter(|b| custom_visible_at(b, scope))
                .cloned(),
        );
    }
    Ok(json_response(200, &json!({ "value": value }), &[]))
}
