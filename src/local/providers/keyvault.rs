//! Provider `Microsoft.KeyVault` (ARM side): deleted vaults, purge and access policies.

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use crate::arm::id::ResourceId;
use crate::local::http::{ArmError, empty, json_response, percent_decode};
use crate::local::keyvault;
use crate::local::lro::*;
use crate::local::request::*;
use crate::local::store::Op;

/// `GET /subscriptions/{s}/providers/Microsoft.KeyVault/deletedVaults`.
pub(crate) fn deleted_vaults(req: &Req<'_>) -> Result<Response, ArmError> {
    let sub = req.sh.info.subscription_id.clone();
    authorize(req, "Microsoft.KeyVault/deletedVaults/read", &format!("/subscriptions/{sub}"))?;
    let st = req.sh.store();
    let value: Vec<Value> = st.state.deleted_vaults.values().map(|d| keyvault::deleted_body(&sub, d)).collect();
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
    authorize(req, "Microsoft.KeyVault/locations/deletedVaults/read", id.as_str())?;
    let (location, name) = location_and_name(id.as_str());
    let st = req.sh.store();
    let d = keyvault::deleted_in(&st.state, &location, &name).ok_or_else(|| deleted_vault_not_found(&name))?;
    Ok(json_response(200, &keyvault::deleted_body(&req.sh.info.subscription_id, d), &[]))
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
    let out = keyvault::update_policies(&mut vault.body, &vault.id, &op, &body)?;
    vault.etag += 1;
    req.sh.commit(vec![Op::PutResource { resource: vault }])?;
    Ok(json_response(200, &out, &[]))
}
