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

pub(crate) fn role_definition_body(scope: &str, r: &roles::Role) -> Value {
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

pub(crate) fn role_definition(req: &Req<'_>, scope: &str, g: &str) -> Result<Response, ArmError> {
    let r = roles::by_guid(g).ok_or_else(|| {
        ArmError::new(404, "RoleDefinitionDoesNotExist", format!("The role definition '{g}' could not be found."))
    })?;
    Ok(json_response(200, &role_definition_body(&definition_scope(req, scope), r), &[]))
}

/// Built-in definitions are listed with a subscription-scoped id at or below a subscription,
/// so `roleDefinitionId` in assignments is byte-identical to the definition's `id`.
pub(crate) fn definition_scope(req: &Req<'_>, scope: &str) -> String {
    if scope.is_empty() { String::new() } else { format!("/subscriptions/{}", req.sh.info.subscription_id) }
}

pub(crate) fn role_definitions(req: &Req<'_>, scope: &str) -> Result<Response, ArmError> {
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
