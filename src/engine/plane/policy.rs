//! The access-policy plane: one principal's entry in a vault's access policies, changed
//! with `accessPolicies/add` and `accessPolicies/remove` (never a PUT of the whole vault),
//! so what others granted the same principal stays.

use serde_json::{Value, json};

use super::work::{Done, Work, written};
use crate::arm::{Client, keyvault};
use crate::engine::context::Outcome;
use crate::kinds::env::Desired;

fn tenant_of(want: &Desired) -> String {
    want.body.pointer("/properties/tenantId").and_then(Value::as_str).unwrap_or_default().to_string()
}

/// A create or update: add the declared permissions, remove those beyond them.
pub fn for_change(want: &Desired, have: Option<&Value>, work: Work) -> Work {
    let (id, update) = match work {
        Work::Put { id, update, .. } => (id, update),
        other => return other,
    };
    let add = want.body.pointer("/properties/permissions").cloned().unwrap_or(json!({}));
    let extra = have.map(|h| select_permissions(h.pointer("/properties/storedPermissions"), &add, false));
    let remove = extra.filter(|e| e.as_object().is_some_and(|o| !o.is_empty()));
    Work::Policy { id, tenant: tenant_of(want), add, remove, update }
}

/// A delete: take away the declared permissions, in the casing the entry stores them with.
pub fn for_delete(want: &Desired, id: String, have: Option<&Value>) -> Work {
    let declared = want.body.pointer("/properties/permissions").cloned().unwrap_or(json!({}));
    let permissions = match have.and_then(|h| h.pointer("/properties/storedPermissions")) {
        Some(stored) => select_permissions(Some(stored), &declared, true),
        None => declared,
    };
    Work::RemovePolicy { id, tenant: tenant_of(want), permissions }
}

/// The stored permissions (exact casing, which `accessPolicies/remove` matches exactly) that
/// are (`wanted`) or are not in `want`, compared without regard to case.
fn select_permissions(have: Option<&Value>, want: &Value, wanted: bool) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in have.and_then(Value::as_object).into_iter().flatten() {
        let wanted_here: Vec<String> = want
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect();
        let picked: Vec<Value> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter(|x| x.as_str().is_some_and(|x| wanted_here.contains(&x.to_ascii_lowercase()) == wanted))
            .cloned()
            .collect();
        if !picked.is_empty() {
            out.insert(k.clone(), Value::Array(picked));
        }
    }
    Value::Object(out)
}

/// Grant `add`, then take away `remove`.
pub async fn put(
    client: &Client,
    id: String,
    tenant: String,
    add: Value,
    remove: Option<&Value>,
    update: bool,
) -> Done {
    keyvault::update_policy(client, &id, &tenant, "add", &add).await?;
    if let Some(r) = remove {
        keyvault::update_policy(client, &id, &tenant, "remove", r).await?;
    }
    let body = json!({ "properties": { "tenantId": tenant, "permissions": add } });
    Ok((written(id, update), Some(body)))
}

/// Take away `permissions`; a vault that is gone (deleted with the plan) took the entry along.
pub async fn remove(client: &Client, id: String, tenant: &str, permissions: &Value) -> Done {
    match keyvault::update_policy(client, &id, tenant, "remove", permissions).await {
        Err(e) if e.status == Some(404) => {}
        r => r?,
    }
    Ok((Outcome::Deleted(id), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_are_selected_case_insensitively_in_stored_casing() {
        let stored = json!({"secrets": ["Get", "List", "Set"], "keys": ["Get"]});
        let want = json!({"secrets": ["get", "list"]});
        assert_eq!(select_permissions(Some(&stored), &want, false), json!({"secrets": ["Set"], "keys": ["Get"]}));
        assert_eq!(select_permissions(Some(&stored), &want, true), json!({"secrets": ["Get", "List"]}));
        assert_eq!(select_permissions(None, &want, true), json!({}));
    }
}
