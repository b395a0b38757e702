//! RBAC evaluation (arm-contract §4): the union over the principal's effective role
//! assignments whose scope is the target or one of its ancestors; an action is allowed when
//! some permission block of the assigned role matches it in `actions` and that same block does
//! not exclude it in `notActions` (data actions only through `dataActions` /
//! `notDataActions`; `*` in `actions` never grants data actions). Patterns are
//! case-insensitive and `*` spans `/`. The role is a built-in one (the whole catalogue of
//! `crate::roles`) or a custom definition stored in the state (`Microsoft.Authorization/
//! roleDefinitions` PUT); a block with an ABAC condition grants nothing (conditions are not
//! evaluated).

use std::sync::Arc;

use serde_json::{Value, json};

use super::store::State;
use super::table::{ROLE_ASSIGNMENTS, ROLE_DEFINITIONS};
use crate::arm::id::is_scope_prefix;
use crate::roles::{self, Role};

/// Case-insensitive glob where `*` matches any run of characters (including `/`).
///
/// ```
/// use idlab::local::rbac::pattern_matches;
/// assert!(pattern_matches("*/read", "Microsoft.Compute/virtualMachines/read"));
/// assert!(pattern_matches("Microsoft.Storage/storageAccounts/*", "microsoft.storage/storageaccounts/listkeys/action"));
/// assert!(!pattern_matches("*/read", "Microsoft.Compute/virtualMachines/write"));
/// ```
pub fn pattern_matches(pattern: &str, action: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let a: Vec<char> = action.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ai) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ai < a.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == a[ai] {
            pi += 1;
            ai += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ai;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ai = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether one permission block grants `action`: an allow pattern matches and no deny
/// pattern of the same block does.
fn block_allows<S: AsRef<str>>(allow: &[S], deny: &[S], action: &str) -> bool {
    allow.iter().any(|p| pattern_matches(p.as_ref(), action))
        && !deny.iter().any(|p| pattern_matches(p.as_ref(), action))
}

/// Whether the built-in `role` grants `action` (a data action when `data`).
pub fn role_allows(role: &Role, action: &str, data: bool) -> bool {
    role.permissions.iter().filter(|p| p.condition.is_none()).any(|p| {
        if data {
            block_allows(&p.data_actions, &p.not_data_actions, action)
        } else {
            block_allows(&p.actions, &p.not_actions, action)
        }
    })
}

/// One permission block of a custom role definition, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Block {
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    pub data_actions: Vec<String>,
    pub not_data_actions: Vec<String>,
    pub conditional: bool,
}

impl Block {
    fn allows(&self, action: &str, data: bool) -> bool {
        !self.conditional
            && if data {
                block_allows(&self.data_actions, &self.not_data_actions, action)
            } else {
                block_allows(&self.actions, &self.not_actions, action)
            }
    }
}

/// The permission blocks of a role definition body (`properties.permissions`).
pub fn blocks(body: &Value) -> Vec<Block> {
    let list = |p: &Value, k: &str| -> Vec<String> {
        p.get(k).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
    };
    body.pointer("/properties/permissions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| Block {
            actions: list(p, "actions"),
            not_actions: list(p, "notActions"),
            data_actions: list(p, "dataActions"),
            not_data_actions: list(p, "notDataActions"),
            conditional: p.get("condition").is_some_and(|c| !c.is_null()),
        })
        .collect()
}

/// The role an assignment names: a built-in role, a custom definition, or one that no longer
/// exists (grants nothing).
#[derive(Debug, Clone)]
pub enum Definition {
    BuiltIn(&'static Role),
    Custom(Arc<[Block]>),
    Missing,
}

impl Definition {
    /// Whether this role grants `action` (a data action when `data`).
    pub fn allows(&self, action: &str, data: bool) -> bool {
        match self {
            Definition::BuiltIn(r) => role_allows(r, action, data),
            Definition::Custom(b) => b.iter().any(|b| b.allows(action, data)),
            Definition::Missing => false,
        }
    }
}

/// One assignment as RBAC sees it.
#[derive(Debug, Clone)]
pub struct Grant {
    pub scope: String,
    pub principal_id: String,
    pub role_guid: String,
    pub definition: Definition,
}

/// Whether any grant for `principal` at or above `scope` allows `action`.
pub fn allowed(grants: &[Grant], principal: &str, scope: &str, action: &str, data: bool) -> bool {
    grants.iter().any(|g| {
        g.principal_id.eq_ignore_ascii_case(principal)
            && is_scope_prefix(&g.scope, scope)
            && g.definition.allows(action, data)
    })
}

/// The custom role definitions in the state, by lower-case GUID.
pub fn custom_definitions(st: &State) -> impl Iterator<Item = (String, &Value)> {
    st.resources
        .values()
        .filter(|r| r.kind.eq_ignore_ascii_case(ROLE_DEFINITIONS))
        .map(|r| (role_guid(&r.id).to_ascii_lowercase(), &r.body))
}

/// The GUID at the end of a role definition id (or the GUID itself).
pub fn role_guid(definition_id: &str) -> &str {
    definition_id.rsplit('/').next().unwrap_or(definition_id)
}

/// The role assignments that count now (propagation delay elapsed).
pub fn grants(st: &State, now: u64) -> Vec<Grant> {
    let custom: std::collections::HashMap<String, Arc<[Block]>> =
        custom_definitions(st).map(|(g, b)| (g, blocks(b).into())).collect();
    st.resources
        .values()
        .filter(|r| r.kind.eq_ignore_ascii_case(ROLE_ASSIGNMENTS))
        .filter(|r| r.effective_ms.unwrap_or(0) <= now)
        .filter_map(|r| {
            let p = r.body.get("properties")?;
            let guid = role_guid(p.get("roleDefinitionId")?.as_str()?).to_string();
            let definition = match roles::by_guid(&guid) {
                Some(r) => Definition::BuiltIn(r),
                None => custom
                    .get(&guid.to_ascii_lowercase())
                    .map_or(Definition::Missing, |b| Definition::Custom(b.clone())),
            };
            Some(Grant {
                scope: p.get("scope")?.as_str()?.to_string(),
                principal_id: p.get("principalId")?.as_str()?.to_string(),
                role_guid: guid,
                definition,
            })
        })
        .collect()
}

/// The stored body of a role assignment.
#[allow(clippy::too_many_arguments)]
pub fn role_assignment_body(
    id: &str,
    name: &str,
    scope: &str,
    role_definition_id: &str,
    principal: &str,
    principal_type: &str,
    description: Option<&str>,
    created_by: &str,
    now_ms: u64,
) -> Value {
    let ts = time::OffsetDateTime::from_unix_timestamp((now_ms / 1000) as i64)
        .map(|d| d.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
        .unwrap_or_default();
    json!({
        "properties": {
            "roleDefinitionId": role_definition_id,
            "principalId": principal,
            "principalType": principal_type,
            "scope": scope,
            "condition": null,
            "conditionVersion": null,
            "createdOn": ts,
            "updatedOn": ts,
            "createdBy": created_by,
            "updatedBy": created_by,
            "delegatedManagedIdentityResourceId": null,
            "description": description,
        },
        "id": id,
        "type": ROLE_ASSIGNMENTS,
        "name": name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(scope: &str, role: &str) -> Grant {
        let r = roles::by_name(role).expect("a built-in role");
        Grant {
            scope: scope.into(),
            principal_id: "p".into(),
            role_guid: r.guid.to_string(),
            definition: Definition::BuiltIn(r),
        }
    }

    #[test]
    fn contributor_cannot_write_role_assignments() {
        let g = [grant("/subscriptions/s", "Contributor")];
        assert!(allowed(
            &g,
            "p",
            "/subscriptions/s/resourceGroups/rg",
            "Microsoft.Compute/virtualMachines/write",
            false
        ));
        assert!(!allowed(
            &g,
            "p",
            "/subscriptions/s/resourceGroups/rg",
            "Microsoft.Authorization/roleAssignments/write",
            false
        ));
    }

    #[test]
    fn reader_inherits_down_but_not_sideways_and_gets_no_data() {
        let g = [grant("/subscriptions/s/resourceGroups/rg", "Reader")];
        assert!(allowed(
            &g,
            "p",
            "/subscriptions/s/resourceGroups/RG/providers/Microsoft.X/y/z",
            "Microsoft.X/y/read",
            false
        ));
        assert!(!allowed(&g, "p", "/subscriptions/s/resourceGroups/rg2", "Microsoft.X/y/read", false));
        assert!(!allowed(&g, "p", "/subscriptions/s/resourceGroups/rg", "Microsoft.X/y/write", false));
        let owner = [grant("/subscriptions/s", "Owner")];
        assert!(!allowed(
            &owner,
            "p",
            "/subscriptions/s",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            true
        ));
        let blob = [grant("/subscriptions/s", "Storage Blob Data Reader")];
        assert!(allowed(
            &blob,
            "p",
            "/subscriptions/s/x",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            true
        ));
    }
}
