//! The generic create, read, update and delete of a tracked ARM resource, shared by every
//! provider family, plus typed collections and POST actions. Type-specific preparation is
//! delegated to the family's file.

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use crate::arm::id::{ResourceId, is_scope_prefix};
use crate::local::cascade::*;
use crate::local::http::{ArmError, empty, header, json_response, query_get};
use crate::local::lro::*;
use crate::local::providers::{compute::*, identity::*, keyvault::*, network::*, sql::*};
use crate::local::request::*;
use crate::local::shared::now_ms;
use crate::local::store::{ImdsEndpoint, Op, Resource};
use crate::local::table::*;
use crate::local::{imds, keyvault};

/// Types whose answers carry no `properties.provisioningState` on Azure: user-assigned
/// identities (recorded: Az PowerShell's identity `TestCrud`; the 2024-11-30 spec declares
/// none), their federated credentials, and blob containers (storage 2025-06-01
/// `ContainerProperties` declares none).
const NO_PROVISIONING_STATE: &[&str] =
    &[FIC_LOWER, "microsoft.managedidentity/userassignedidentities", CONTAINERS_LOWER];

pub(crate) fn list_collection(req: &Req<'_>, parent: &str, t: &str) -> Result<Response, ArmError> {
    let Some(c) = &req.caller else { return Err(auth_missing()) };
    let tl = t.to_ascii_lowercase();
    let parent_id = ResourceId::parse(parent).map_err(|_| ArmError::new(404, "NotFound", "Not found."))?;
    if let Some(rg) = &parent_id.resource_group
        && !req.sh.store().state.resources.contains_key(&rg_id(req.sh, rg).to_ascii_lowercase())
    {
        return Err(rg_not_found(rg));
    }
    if tl.eq_ignore_ascii_case(crate::local::table::BLOB_SERVICES) {
        return super::blob_service::list(req, parent);
    }
    let st = req.sh.store();
    if tl == "microsoft.network/virtualnetworks/checkipaddressavailability" {
        let ip = query_get(&req.query, "ipAddress").unwrap_or_default();
        // The caller must be able to read the network.
        if readable(&st.state, c, |r| r.id.eq_ignore_ascii_case(parent), |r| format!("{}/read", r.kind)).is_empty() {
            return Err(parent_not_found(parent));
        }
        return Ok(json_response(200, &check_ip_availability(&st.state, parent, ip)?, &[]));
    }
    if tl == "microsoft.sql/servers/administrators" {
        let server = st.state.resources.get(&parent.to_ascii_lowercase()).ok_or_else(|| parent_not_found(parent))?;
        if readable(&st.state, c, |r| r.id.eq_ignore_ascii_case(parent), |r| format!("{}/read", r.kind)).is_empty() {
            return Err(parent_not_found(parent));
        }
        let value: Vec<Value> = crate::local::sql::admin_at(&server.body, &req.api_version).into_iter().collect();
        return Ok(json_response(200, &json!({ "value": value }), &[]));
    }
    if tl == "microsoft.network/virtualnetworks/subnets" {
        let vnet = st.state.resources.get(&parent.to_ascii_lowercase()).ok_or_else(|| parent_not_found(parent))?;
        let value = vnet.body.pointer("/properties/subnets").cloned().unwrap_or(json!([]));
        return Ok(json_response(200, &json!({ "value": value }), &[]));
    }
    let keep = |r: &Resource| r.kind.eq_ignore_ascii_case(t) && is_scope_prefix(parent, &r.id);
    let value: Vec<Value> = readable(&st.state, c, keep, |r| format!("{}/read", r.kind))
        .into_iter()
        .map(|r| match tl.as_str() {
            CONTAINERS_LOWER => crate::local::storage::container_view(
                present(r, now_ms()),
                crate::local::storage::ContainerView::Listed,
            ),
            _ => account_view(req, listed(present(r, now_ms()))),
        })
        .collect();
    Ok(json_response(200, &json!({ "value": value }), &[]))
}

const CONTAINERS_LOWER: &str = "microsoft.storage/storageaccounts/blobservices/containers";

/// A storage account as the request's api-version shows it (other bodies as they are).
fn account_view(req: &Req<'_>, mut body: Value) -> Value {
    if body.get("type").and_then(Value::as_str) == Some(STORAGE_ACCOUNTS) {
        crate::local::storage::account_at(&mut body, &req.api_version, &req.sh.info.tenant_id);
    }
    body
}

/// POST actions: `checkNameAvailability`, `listKeys`, `ListServiceSas`, given the parsed
/// body; the front door has parsed it and the pipeline authorized the declared action.
pub(crate) fn action(req: &Req<'_>, parent: &str, t: &str, body: Value) -> Result<Response, ArmError> {
    let tl = t.to_ascii_lowercase();
    if tl == "microsoft.storage/checknameavailability" {
        let st = req.sh.store();
        return Ok(json_response(200, &crate::local::storage::check_name(&st.state, &body), &[]));
    }
    if tl == "microsoft.sql/checknameavailability" {
        let st = req.sh.store();
        return Ok(json_response(200, &crate::local::sql::check_name(&st.state, &body)?, &[]));
    }
    if tl == "microsoft.keyvault/checknameavailability" {
        let st = req.sh.store();
        return Ok(json_response(200, &check_name(&st.state, &body), &[]));
    }
    if tl == "microsoft.keyvault/locations/deletedvaults/purge" {
        return purge_vault(req, parent);
    }
    if tl == "microsoft.datalakestore/accounts/enablekeyvault" {
        let st = req.sh.store();
        let account = st.state.resources.get(&parent.to_ascii_lowercase()).ok_or_else(|| parent_not_found(parent))?;
        crate::local::datalake::enable_key_vault(&account.body)?;
        return Ok(empty(200, &[]));
    }
    if tl == "microsoft.compute/virtualmachines/runcommand" {
        return crate::local::providers::compute::run_command(req, parent, &body);
    }
    let name = tl.rsplit('/').next().unwrap_or_default().to_string();
    if !tl.starts_with("microsoft.storage/storageaccounts/") || !matches!(name.as_str(), "listkeys" | "listservicesas")
    {
        return Err(ArmError::new(404, "NotFound", format!("No action '{t}' on '{parent}'.")));
    }
    let account = req.sh.store().state.resources.get(&parent.to_ascii_lowercase()).map(|r| r.body.clone());
    let Some(account) = account else {
        let id = ResourceId::parse(parent).map_err(|_| ArmError::new(404, "NotFound", "Not found."))?;
        return Err(not_found(&id));
    };
    let out = if name == "listkeys" {
        crate::local::storage::list_keys(&account)
    } else {
        crate::local::storage::service_sas(&account, &body)?
    };
    Ok(json_response(200, &out, &[]))
}

pub(crate) fn resource(req: &mut Req<'_>, id: &ResourceId) -> Result<Response, ArmError> {
    let tl = id.resource_type().unwrap_or_default().to_ascii_lowercase();
    let Some(entry) = provider(&tl) else {
        return Err(ArmError::new(
            404,
            "InvalidResourceType",
            format!("The resource type '{}' could not be found.", id.resource_type().unwrap_or_default()),
        ));
    };
    let canon = entry.type_name;
    let rg_name = id.resource_group.clone().unwrap_or_default();
    let rg_key = rg_id(req.sh, &rg_name).to_ascii_lowercase();
    let (rg_exists, rg_deleting) = {
        let st = req.sh.store();
        (st.state.resources.contains_key(&rg_key), group_deleting(&st.state, &rg_key))
    };
    if !rg_exists {
        return Err(rg_not_found(&rg_name));
    }
    if rg_deleting && (req.method == Method::PUT || req.method == Method::PATCH) {
        return Err(super::resources::group_being_deleted(&rg_name));
    }
    match entry.handler {
        Handler::Subnet => return subnet(req, id),
        Handler::SqlSetting => return sql_server_setting(req, id, &tl),
        Handler::AccessPolicies => return access_policies(req, id),
        Handler::BlobService => return super::blob_service::blob_service(req, id),
        Handler::Generic => {}
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
                crate::local::storage::expand_geo_stats(&mut b, &now);
            }
            if tl == CONTAINERS_LOWER {
                let etag = crate::local::storage::container_etag_header(&b);
                let view = crate::local::storage::ContainerView::Get;
                return Ok(json_response(200, &crate::local::storage::container_view(b, view), &etag));
            }
            Ok(json_response(200, &account_view(req, b), &[]))
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

pub(crate) fn put_resource(
    req: &mut Req<'_>,
    id: &ResourceId,
    tl: &str,
    canon: &str,
    existing: Option<Resource>,
    mut body: Value,
) -> Result<Response, ArmError> {
    if existing.is_none() {
        check_resource_name(tl, canon, id.name().unwrap_or_default())?;
    }
    // A container's write answers its properties only when the request set some.
    let with_properties = body.get("properties").and_then(Value::as_object).is_some_and(|p| !p.is_empty());
    // Proxy resources (containers) have no location.
    let proxy = tl.ends_with("/containers") || tl == FIC_LOWER;
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
        super::quota::check_create(
            &st.state,
            &req.sh.quotas(),
            &req.sh.info.subscription_id,
            tl,
            &stored_id,
            existing.is_none(),
            &body,
        )?;
        match tl {
            "microsoft.managedidentity/userassignedidentities" => {
                prepare_identity(req.sh, &st.state, &stored_id, existing.as_ref(), &mut body, &mut extra)
            }
            FIC_LOWER => prepare_federated_credential(&st.state, &stored_id, existing.as_ref(), &mut body)?,
            "microsoft.network/virtualnetworks" => prepare_vnet(&st.state, &stored_id, existing.as_ref(), &mut body)?,
            "microsoft.network/networksecuritygroups" => prepare_nsg(&stored_id, existing.as_ref(), &mut body),
            "microsoft.network/publicipaddresses" => prepare_pip(&st.state, existing.as_ref(), &mut body),
            "microsoft.network/networkinterfaces" => prepare_nic(&st.state, &stored_id, existing.as_ref(), &mut body)?,
            "microsoft.storage/storageaccounts" => {
                let created = time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                crate::local::storage::prepare_account(
                    &st.state,
                    &stored_id,
                    existing.as_ref().map(|r| &r.body),
                    &mut body,
                    (&req.sh.blob_base, &req.sh.dfs_base),
                    &created,
                )?;
                let old = existing.as_ref().map(|r| &r.body);
                let tenant = &req.sh.info.tenant_id;
                crate::local::storage::account_identity(&st.state, &stored_id, old, &mut body, tenant, now, &mut extra)?
            }
            CONTAINERS_LOWER => crate::local::storage::prepare_container(&st.state, &stored_id, &mut body, now)?,
            "microsoft.sql/servers" => crate::local::sql::prepare_server(
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
                crate::local::sql::prepare_database(existing.as_ref().map(|r| &r.body), &mut body, &created)?
            }
            "microsoft.datalakestore/accounts" => {
                let caller = req.caller.as_ref().map(|c| c.object_id.clone()).unwrap_or_default();
                data_listener = crate::local::datalake::prepare_account(
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
            "microsoft.keyvault/vaults" => prepare_vault(
                &st.state,
                &req.sh.info.tenant_id,
                &stored_id,
                existing.as_ref(),
                &mut body,
                &req.api_version,
                &mut extra,
            )?,
            "microsoft.compute/disks" => super::disk::prepare_disk(existing.as_ref(), &mut body)?,
            "microsoft.compute/virtualmachines/extensions" => {
                prepare_extension(&st.state, &stored_id, &mut body, &mut extra)?
            }
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
        if tl.starts_with("microsoft.network/") {
            extra.extend(network_backrefs(&st.state, canon, &stored_id, Some(&mut body)));
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
        && !NO_PROVISIONING_STATE.contains(&tl)
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
            let listener = crate::local::shared::bind_loopback(0)
                .map_err(|e| ArmError::new(500, "InternalServerError", e.to_string()))?;
            let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
            extra.push(Op::PutImds {
                key: key.clone(),
                endpoint: ImdsEndpoint {
                    vm_id: stored_id.clone(),
                    port,
                    header_secret: crate::local::shared::random_secret(),
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
    let mut shown = present(&resource, now);
    if tl == "microsoft.datalakestore/accounts" && existing.is_none() {
        crate::local::datalake::creating(&mut shown);
    }
    let mut ops = vec![Op::PutResource { resource }];
    ops.extend(extra);
    req.sh.commit(ops)?;
    if let Some((key, listener)) = start_listener {
        imds::serve(req.sh, &key, listener);
    }
    if let Some(listener) = data_listener {
        crate::local::datalake::serve(req.sh, &name, listener);
    }
    if let Some((vault, listener)) = start_vault {
        keyvault::serve(req.sh, &vault, listener);
    }
    // Key Vault answers a create 200, as an update (`TestDeleteVault.json`).
    let status = if existing.is_some() || tl == "microsoft.keyvault/vaults" { 200 } else { 201 };
    if tl == "microsoft.storage/storageaccounts" && existing.is_none() {
        // Storage accounts are created through a Location long-running operation.
        let op = start_operation(req.sh, tl, Some(stored_id));
        return Ok(empty(202, &lro_headers(req, &op, true)));
    }
    if always_accepted(tl) && !crate::local::sql::synchronous(tl, &req.api_version) {
        let op = start_operation(req.sh, tl, Some(stored_id));
        let body =
            crate::local::sql::accepted_body(crate::local::sql::operation_name(tl, false, existing.is_none()), None);
        return Ok(json_response(202, &body, &lro_headers(req, &op, false)));
    }
    if lro {
        let op = start_operation(req.sh, tl, Some(stored_id));
        let mut h = lro_headers(req, &op, false);
        h.retain(|(k, _)| *k != "location" || status == 201);
        return Ok(json_response(status, &shown, &h));
    }
    if tl == CONTAINERS_LOWER {
        let etag = crate::local::storage::container_etag_header(&shown);
        let view = crate::local::storage::ContainerView::Written { with_properties };
        return Ok(json_response(status, &crate::local::storage::container_view(shown, view), &etag));
    }
    Ok(json_response(status, &account_view(req, shown), &[]))
}

pub(crate) fn delete_resource(
    req: &mut Req<'_>,
    id: &ResourceId,
    tl: &str,
    existing: Option<Resource>,
) -> Result<Response, ArmError> {
    // Key Vault answers the delete of a missing vault 200 too (`TestDeleteVault.json`).
    let Some(r) = existing else { return Ok(empty(if tl == "microsoft.keyvault/vaults" { 200 } else { 204 }, &[])) };
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
        if tl == "microsoft.compute/disks" {
            super::disk::check_disk_delete(&st.state, &r)?;
        }
        // Azure Network refuses to delete what is still in use.
        if tl.starts_with("microsoft.network/") {
            check_network_delete(&st.state, &r)?;
        }
        ops.extend(principal_cleanup(&st.state, &r));
        if tl.starts_with("microsoft.network/") {
            ops.extend(network_backrefs(&st.state, &r.kind, &r.id, None));
        }
        // A VM's disks and NICs: deleted or detached by their `deleteOption`.
        if tl == "microsoft.compute/virtualmachines" {
            ops.extend(super::disk::vm_delete_ops(&st.state, &r));
        }
        if tl == "microsoft.compute/virtualmachines/extensions" {
            ops.extend(extension_deleted(&st.state, &r.id));
        }
    }
    stop_listeners(req.sh, &ops);
    req.sh.commit(ops)?;
    if always_accepted(tl) {
        let op = start_delete(req.sh, tl);
        let body = crate::local::sql::accepted_body(crate::local::sql::operation_name(tl, true, false), None);
        return Ok(json_response(202, &body, &lro_headers(req, &op, false)));
    }
    if is_lro(tl) && (crate::local::table::delete_always_accepted(tl) || !req.sh.faults().lro(tl).is_zero()) {
        let op = start_delete(req.sh, tl);
        return Ok(empty(202, &lro_headers(req, &op, false)));
    }
    Ok(empty(200, &[]))
}
