//! Provider `Microsoft.KeyVault` (ARM side): vault bodies and names, access policies,
//! soft delete, deleted vaults and purge. The secrets data plane is `keyvault`.

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use crate::arm::id::ResourceId;
use crate::local::http::{ArmError, empty, json_response, percent_decode};
use crate::local::keyvault::{port_purpose, vault_named};
use crate::local::lro::*;
use crate::local::request::*;
use crate::local::shared::now_ms;
use crate::local::store::Op;
use crate::local::store::{DeletedVault, Resource, State as CloudState};

/// `GET /subscriptions/{s}/providers/Microsoft.KeyVault/deletedVaults`.
pub(crate) fn deleted_vaults(req: &Req<'_>) -> Result<Response, ArmError> {
    let sub = req.sh.info.subscription_id.clone();
    let st = req.sh.store();
    let value: Vec<Value> = st.state.deleted_vaults.values().map(|d| deleted_body(&sub, d)).collect();
    Ok(json_response(200, &json!({ "value": value }), &[]))
}

pub(crate) fn deleted_vault_not_found(name: &str) -> ArmError {
    ArmError::new(404, "ResourceNotFound", format!("The deleted vault '{name}' was not found in this location."))
}

/// `GET …/locations/{loc}/deletedVaults/{name}`.
pub(crate) fn deleted_vault(req: &Req<'_>, id: &ResourceId) -> Result<Response, ArmError> {
    if req.method != Method::GET {
        return Err(method_not_allowed());
    }
    let (location, name) = location_and_name(id.as_str());
    let st = req.sh.store();
    let d = deleted_in(&st.state, &location, &name).ok_or_else(|| deleted_vault_not_found(&name))?;
    Ok(json_response(200, &deleted_body(&req.sh.info.subscription_id, d), &[]))
}

/// `(location, name)` of `…/locations/{loc}/deletedVaults/{name}`.
pub(crate) fn location_and_name(path: &str) -> (String, String) {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let at = segs.iter().position(|s| s.eq_ignore_ascii_case("locations")).unwrap_or(0);
    let get = |i: usize| segs.get(i).map(|s| percent_decode(s, false)).unwrap_or_default();
    (get(at + 1), get(at + 3))
}

/// `POST …/locations/{loc}/deletedVaults/{name}/purge`: a long-running operation.
pub(crate) fn purge_vault(req: &Req<'_>, parent: &str) -> Result<Response, ArmError> {
    let (location, name) = location_and_name(parent);
    let ops = {
        let st = req.sh.store();
        let d = deleted_in(&st.state, &location, &name).ok_or_else(|| deleted_vault_not_found(&name))?;
        purge_ops(d)?
    };
    req.sh.commit(ops)?;
    let op = start_operation(req.sh, "microsoft.keyvault/locations/deletedvaults/purge", None);
    // Its `Location` poll ends with Key Vault's operation record (KeyVaultManagementListDeletedVaults.json:
    // 202 `NotStarted`, then 200 `{createdDateTime, lastActionDateTime, status: Succeeded}`).
    if let Some(o) = req.sh.ops.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&op) {
        o.result = Some(json!({
            "createdDateTime": operation_time(o.started_ms),
            "lastActionDateTime": operation_time(o.done_ms),
            "status": "Succeeded",
        }));
    }
    Ok(empty(202, &lro_headers(req, &op, true)))
}

/// `PUT …/vaults/{v}/accessPolicies/{add|remove|replace}`.
pub(crate) fn access_policies(req: &Req<'_>, id: &ResourceId) -> Result<Response, ArmError> {
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
    let out = update_policies(&mut vault.body, &vault.id, &op, &body)?;
    vault.etag += 1;
    req.sh.commit(vec![Op::PutResource { resource: vault }])?;
    Ok(json_response(200, &out, &[]))
}

/// Vault names: 3–24 letters, digits and hyphens, starting with a letter, ending with a
/// letter or digit, without `--`.
pub(crate) fn name_ok(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=24).contains(&b.len())
        && b[0].is_ascii_alphabetic()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && !name.contains("--")
}

pub(crate) fn in_use_message(name: &str) -> String {
    format!(
        "The vault name '{name}' is already in use. Vault names are globally unique so it is possible that the name is already taken. If you are sure that the vault name was not taken then it is possible that a vault with the same name was recently deleted but not purged after being placed in a recoverable state. If the vault is in a recoverable state then the vault will need to be purged before reusing the name."
    )
}

/// `POST …/Microsoft.KeyVault/checkNameAvailability`.
pub(crate) fn check_name(st: &CloudState, req: &Value) -> Value {
    let name = req.get("name").and_then(Value::as_str).unwrap_or_default();
    if !name_ok(name) {
        return json!({"nameAvailable": false, "reason": "AccountNameInvalid", "message": "Vault name must be between 3-24 alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens."});
    }
    if vault_named(st, name).is_some() || st.deleted_vaults.contains_key(&name.to_ascii_lowercase()) {
        json!({"nameAvailable": false, "reason": "AlreadyExists", "message": in_use_message(name)})
    } else {
        json!({"nameAvailable": true})
    }
}

pub(crate) fn bad_request(message: impl Into<String>) -> ArmError {
    ArmError::new(400, "BadRequest", message)
}

/// Check and complete a vault's PUT body. A create over a soft-deleted vault of the same name
/// is refused unless `createMode` is `recover`, which restores the deleted vault (its
/// policies, settings and secrets) and drops the deleted record through `extra`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare_vault(
    st: &CloudState,
    tenant: &str,
    id: &str,
    existing: Option<&Resource>,
    body: &mut Value,
    api_version: &str,
    extra: &mut Vec<Op>,
) -> Result<(), ArmError> {
    let name = id.rsplit('/').next().unwrap_or_default().to_string();
    let lower = name.to_ascii_lowercase();
    if !name_ok(&name) {
        return Err(ArmError::new(
            400,
            "VaultNameNotValid",
            format!(
                "The vault name '{name}' is invalid. A vault's name must be between 3-24 alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens."
            ),
        ));
    }
    let recover = body
        .pointer("/properties/createMode")
        .and_then(Value::as_str)
        .is_some_and(|m| m.eq_ignore_ascii_case("recover"));
    if existing.is_none() {
        if let Some(deleted) = st.deleted_vaults.get(&lower) {
            if !recover {
                return Err(ArmError::new(
                    409,
                    "ConflictError",
                    "A vault with the same name already exists in deleted state. You need to either recover or purge existing key vault. Follow this link https://go.microsoft.com/fwlink/?linkid=2149745 for more information on soft delete.",
                ));
            }
            if !deleted.resource.id.eq_ignore_ascii_case(id) {
                return Err(bad_request(format!(
                    "The deleted vault '{name}' belonged to '{}' and can only be recovered there.",
                    deleted.resource.id
                )));
            }
            let mut restored = deleted.resource.body.clone();
            if let Some(tags) = body.get("tags") {
                restored["tags"] = tags.clone();
            }
            *body = restored;
            extra.push(Op::DeleteDeletedVault { name: lower });
            return Ok(());
        }
        if recover {
            return Err(bad_request(format!(
                "There is no deleted vault named '{name}' to recover in this subscription."
            )));
        }
        if vault_named(st, &name).is_some() {
            return Err(ArmError::new(409, "VaultAlreadyExists", in_use_message(&name)));
        }
    }
    let old = existing.map(|r| &r.body);
    let old_prop = |k: &str| old.and_then(|b| b.pointer(&format!("/properties/{k}"))).cloned();
    let props = body
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| bad_request("The 'properties' object is required."))?;
    props.remove("createMode");
    match props.get("tenantId").and_then(Value::as_str) {
        None => return Err(bad_request("The property 'tenantId' is required.")),
        Some(t) if !t.eq_ignore_ascii_case(tenant) => {
            return Err(bad_request(format!("The tenant '{t}' is not the tenant of this subscription ('{tenant}').")));
        }
        Some(_) => {}
    }
    let sku_ok = props.get("sku").is_some_and(|s| {
        s.get("family").and_then(Value::as_str).is_some_and(|f| f.eq_ignore_ascii_case("A"))
            && s.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case("standard") || n.eq_ignore_ascii_case("premium"))
    });
    if !sku_ok {
        return Err(bad_request(
            "The property 'sku' is required: {\"family\": \"A\", \"name\": \"standard\" or \"premium\"}.",
        ));
    }
    if props.get("enableSoftDelete") == Some(&Value::Bool(false)) {
        return Err(bad_request(
            "The property \"enableSoftDelete\" cannot be set to false. Soft delete is always on for key vaults.",
        ));
    }
    props.insert("enableSoftDelete".into(), json!(true));
    let retention = match props.get("softDeleteRetentionInDays") {
        None | Some(Value::Null) => old_prop("softDeleteRetentionInDays").unwrap_or(json!(90)),
        Some(v) => match v.as_u64() {
            Some(d) if (7..=90).contains(&d) => v.clone(),
            _ => return Err(bad_request("The property 'softDeleteRetentionInDays' must be between 7 and 90.")),
        },
    };
    if let Some(was) = old_prop("softDeleteRetentionInDays")
        && was != retention
    {
        return Err(bad_request("The property 'softDeleteRetentionInDays' can only be set when the vault is created."));
    }
    props.insert("softDeleteRetentionInDays".into(), retention);
    let had_protection = old_prop("enablePurgeProtection") == Some(Value::Bool(true));
    match props.get("enablePurgeProtection") {
        Some(Value::Bool(false)) if had_protection => {
            return Err(bad_request(
                "The property \"enablePurgeProtection\" cannot be set to false. Once enabled, purge protection cannot be turned off.",
            ));
        }
        None | Some(Value::Null) if had_protection => {
            props.insert("enablePurgeProtection".into(), json!(true));
        }
        _ => {}
    }
    if !props.get("enableRbacAuthorization").is_some_and(Value::is_boolean) {
        // From 2026-02-01 a new vault defaults to RBAC; an update keeps what the vault had.
        let default = old_prop("enableRbacAuthorization").unwrap_or(json!(api_version >= "2026-02-01"));
        props.insert("enableRbacAuthorization".into(), default);
    }
    let policies = match props.get("accessPolicies") {
        None | Some(Value::Null) if existing.is_none() => {
            return Err(bad_request("The parameter accessPolicies is not specified."));
        }
        None | Some(Value::Null) => old_prop("accessPolicies").unwrap_or(json!([])),
        Some(p) => p.clone(),
    };
    check_policies(&policies)?;
    props.insert("accessPolicies".into(), policies);
    for flag in ["enabledForDeployment", "enabledForDiskEncryption", "enabledForTemplateDeployment"] {
        if !props.get(flag).is_some_and(Value::is_boolean) {
            props.insert(flag.into(), old_prop(flag).unwrap_or(json!(false)));
        }
    }
    if !props.get("publicNetworkAccess").is_some_and(Value::is_string) {
        props.insert("publicNetworkAccess".into(), old_prop("publicNetworkAccess").unwrap_or(json!("Enabled")));
    }
    // Network rules come back with both rule lists, empty where none were sent (Azure adds
    // `virtualNetworkRules: []` to a set with only IP rules, KeyVaultManagementListDeletedVaults.json).
    if let Some(acls) = props.get_mut("networkAcls").and_then(Value::as_object_mut) {
        for list in ["ipRules", "virtualNetworkRules"] {
            if !acls.get(list).is_some_and(Value::is_array) {
                acls.insert(list.into(), json!([]));
            }
        }
    }
    if let Some(uri) = old_prop("vaultUri") {
        props.insert("vaultUri".into(), uri);
    }
    if body.get("tags").is_none() {
        body["tags"] = json!({});
    }
    Ok(())
}

pub(crate) fn check_policies(policies: &Value) -> Result<(), ArmError> {
    let list = policies.as_array().ok_or_else(|| bad_request("The property 'accessPolicies' must be an array."))?;
    if list.len() > 1024 {
        return Err(bad_request("A vault holds at most 1024 access policies."));
    }
    for p in list {
        let ok = p.get("tenantId").is_some_and(Value::is_string)
            && p.get("objectId").is_some_and(Value::is_string)
            && p.get("permissions").is_some_and(Value::is_object);
        if !ok {
            return Err(bad_request("Every access policy needs 'tenantId', 'objectId' and a 'permissions' object."));
        }
    }
    Ok(())
}

pub(crate) fn same_principal(a: &Value, b: &Value) -> bool {
    let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_ascii_lowercase();
    f(a, "tenantId") == f(b, "tenantId")
        && f(a, "objectId") == f(b, "objectId")
        && f(a, "applicationId") == f(b, "applicationId")
}

pub(crate) const PERMISSION_KINDS: &[&str] = &["keys", "secrets", "certificates", "storage"];

/// `PUT …/vaults/{v}/accessPolicies/{add|remove|replace}` on a vault body; answers the body
/// to return (the policies sent).
pub(crate) fn update_policies(vault: &mut Value, vault_id: &str, op: &str, req: &Value) -> Result<Value, ArmError> {
    let sent = req.pointer("/properties/accessPolicies").cloned().unwrap_or(Value::Null);
    check_policies(&sent)?;
    let sent_list = sent.as_array().cloned().unwrap_or_default();
    let mut list = vault.pointer("/properties/accessPolicies").and_then(Value::as_array).cloned().unwrap_or_default();
    match op.to_ascii_lowercase().as_str() {
        "add" => {
            for p in &sent_list {
                match list.iter_mut().find(|e| same_principal(e, p)) {
                    Some(e) => {
                        for k in PERMISSION_KINDS {
                            let mut merged: Vec<Value> = e
                                .pointer(&format!("/permissions/{k}"))
                                .and_then(Value::as_array)
                                .cloned()
                                .unwrap_or_default();
                            for x in
                                p.pointer(&format!("/permissions/{k}")).and_then(Value::as_array).into_iter().flatten()
                            {
                                if !merged.iter().any(|m| same_permission(m, x)) {
                                    merged.push(x.clone());
                                }
                            }
                            if !merged.is_empty() {
                                e["permissions"][*k] = Value::Array(merged);
                            }
                        }
                    }
                    None => list.push(p.clone()),
                }
            }
        }
        "remove" => {
            for p in &sent_list {
                if let Some(e) = list.iter_mut().find(|e| same_principal(e, p)) {
                    for k in PERMISSION_KINDS {
                        let gone: Vec<Value> = p
                            .pointer(&format!("/permissions/{k}"))
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default();
                        // Azure matches the permissions to remove by their exact casing.
                        if let Some(have) = e.pointer_mut(&format!("/permissions/{k}")).and_then(Value::as_array_mut) {
                            have.retain(|x| !gone.contains(x));
                        }
                    }
                }
            }
            list.retain(|e| {
                PERMISSION_KINDS.iter().any(|k| {
                    e.pointer(&format!("/permissions/{k}")).and_then(Value::as_array).is_some_and(|a| !a.is_empty())
                })
            });
        }
        "replace" => list = sent_list.clone(),
        other => {
            return Err(bad_request(format!(
                "'{other}' is not an access policy operation: use add, remove or replace."
            )));
        }
    }
    if let Some(p) = vault.get_mut("properties").and_then(Value::as_object_mut) {
        p.insert("accessPolicies".into(), Value::Array(list));
    }
    Ok(json!({
        "id": format!("{vault_id}/accessPolicies/{}", op.to_ascii_lowercase()),
        "type": "Microsoft.KeyVault/vaults/accessPolicies",
        "properties": { "accessPolicies": sent },
    }))
}

pub(crate) fn same_permission(a: &Value, b: &Value) -> bool {
    matches!((a.as_str(), b.as_str()), (Some(x), Some(y)) if x.eq_ignore_ascii_case(y))
}

/// Key Vault's operation times: `2019-12-02 02:11:12Z`.
fn operation_time(ms: u64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .ok()
        .and_then(|d| d.format(&format).ok())
        .unwrap_or_default()
}

pub(crate) fn rfc3339(ms: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .map(|d| d.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
        .unwrap_or_default()
}

/// The soft-deleted record of a vault deleted now.
pub(crate) fn soft_delete(r: &Resource, now: u64) -> DeletedVault {
    let days = r.body.pointer("/properties/softDeleteRetentionInDays").and_then(Value::as_u64).unwrap_or(90);
    DeletedVault { resource: r.clone(), deleted_ms: now, purge_ms: now + days * 86_400_000 }
}

/// A deleted vault as `deletedVaults` shows it.
pub(crate) fn deleted_body(subscription: &str, d: &DeletedVault) -> Value {
    let b = &d.resource.body;
    let name = d.resource.id.rsplit('/').next().unwrap_or_default();
    let location = b.get("location").and_then(Value::as_str).unwrap_or_default();
    // The id names the location by its short name (`northcentralus` for a vault in "North
    // Central US"), the properties as the vault had it (KeyVaultManagementListDeletedVaults.json).
    let short = normalize_location(location);
    json!({
        "id": format!("/subscriptions/{subscription}/providers/Microsoft.KeyVault/locations/{short}/deletedVaults/{name}"),
        "name": name,
        "type": "Microsoft.KeyVault/deletedVaults",
        "properties": {
            "vaultId": d.resource.id,
            "location": location,
            "tags": b.get("tags").cloned().unwrap_or(json!({})),
            "deletionDate": rfc3339(d.deleted_ms),
            "scheduledPurgeDate": rfc3339(d.purge_ms),
            "purgeProtectionEnabled": b.pointer("/properties/enablePurgeProtection").and_then(Value::as_bool).unwrap_or(false),
        }
    })
}

/// The deleted vault `name` in `location` (its display or its short name, as Azure takes
/// both: `locations/North%20Central%20US/deletedVaults/…` in KeyVaultManagementListDeletedVaults.json),
/// if any.
pub(crate) fn deleted_in<'a>(st: &'a CloudState, location: &str, name: &str) -> Option<&'a DeletedVault> {
    st.deleted_vaults.get(&name.to_ascii_lowercase()).filter(|d| {
        d.resource
            .body
            .get("location")
            .and_then(Value::as_str)
            .is_some_and(|l| normalize_location(l) == normalize_location(location))
    })
}

/// What purging a deleted vault changes: the record, its secrets and its port.
pub(crate) fn purge_ops(d: &DeletedVault) -> Result<Vec<Op>, ArmError> {
    let name = d.resource.id.rsplit('/').next().unwrap_or_default().to_ascii_lowercase();
    if d.resource.body.pointer("/properties/enablePurgeProtection").and_then(Value::as_bool) == Some(true)
        && now_ms() < d.purge_ms
    {
        return Err(ArmError::new(
            409,
            "Conflict",
            format!(
                "Operation 'PurgeDeletedVault' is not allowed because purge protection is enabled for vault '{name}'. The vault is purged automatically after its retention period."
            ),
        ));
    }
    Ok(vec![
        Op::DeleteDeletedVault { name: name.clone() },
        Op::DeleteSecrets { prefix: format!("{name}/") },
        Op::DeletePort { purpose: port_purpose(&name) },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_names_follow_azure_rules() {
        for ok in ["abc", "my-vault-1", "A23456789012345678901234"] {
            assert!(name_ok(ok), "{ok}");
        }
        for bad in ["ab", "1abc", "abc-", "a--b", "a_b", "A234567890123456789012345"] {
            assert!(!name_ok(bad), "{bad}");
        }
    }

    #[test]
    fn policy_add_merges_and_remove_drops_only_the_listed_permissions() {
        let mut v = json!({"properties": {"accessPolicies": [
            {"tenantId": "t", "objectId": "a", "permissions": {"secrets": ["get"]}},
            {"tenantId": "t", "objectId": "b", "permissions": {"keys": ["get"]}}
        ]}});
        let add = json!({"properties": {"accessPolicies": [{"tenantId": "t", "objectId": "A", "permissions": {"secrets": ["Get", "list"]}}]}});
        update_policies(&mut v, "/v", "add", &add).expect("add");
        assert_eq!(v.pointer("/properties/accessPolicies/0/permissions/secrets"), Some(&json!(["get", "list"])));
        let remove = json!({"properties": {"accessPolicies": [{"tenantId": "t", "objectId": "a", "permissions": {"secrets": ["get", "list"]}}]}});
        update_policies(&mut v, "/v", "remove", &remove).expect("remove");
        let left = v.pointer("/properties/accessPolicies").and_then(Value::as_array).cloned().unwrap_or_default();
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0]["objectId"], "b");
        assert!(update_policies(&mut v, "/v", "merge", &add).is_err());
        // `remove` matches the stored casing exactly, as Azure does.
        let mut v = json!({"properties": {"accessPolicies": [{"tenantId": "t", "objectId": "a", "permissions": {"secrets": ["Get", "list"]}}]}});
        let wrong_case = json!({"properties": {"accessPolicies": [{"tenantId": "t", "objectId": "a", "permissions": {"secrets": ["get"]}}]}});
        update_policies(&mut v, "/v", "remove", &wrong_case).expect("remove");
        assert_eq!(v.pointer("/properties/accessPolicies/0/permissions/secrets"), Some(&json!(["Get", "list"])));
    }
}
