//! The admin API, on the ARM port under `/_idlab/` (a path no Azure API uses). Every call
//! but `GET /_idlab/health` needs the operator's token.
//!
//! | method and path | what it does |
//! |---|---|
//! | `GET /_idlab/health` | `{"status":"ok","pid":…}` without authentication |
//! | `GET /_idlab/requests` | the request log: method, path, status, principal, `write` |
//! | `DELETE /_idlab/requests` | empty the log |
//! | `POST /_idlab/principals` `{"name", "roles":[{"role","scope"}], "federated":[{"issuer","subject"}]}` | create a service principal; answers its `client_id`, `object_id` and (once) `secret` |
//! | `GET /_idlab/vms` | every VM with its identity endpoint and identities |
//! | `GET /_idlab/faults`, `PUT /_idlab/faults` | read or replace the fault configuration |
//! | `GET /_idlab/clock`, `POST /_idlab/clock` `{"advance_ms": N}` | the throttling buckets' virtual clock in ms (`clock_ms`); POST moves it forward by N ms (the only way it moves with `throttling.frozen_clock`) |
//! | `GET /_idlab/quotas`, `PUT /_idlab/quotas` `{"resource_groups", "storage_accounts_per_region", "role_assignments", "regional_vcpus", "family_vcpus"}` | read or replace the subscription limits enforced on create and reported by `usages` (fields left out keep Azure's defaults) |
//! | `GET /_idlab/paging`, `PUT /_idlab/paging` `{"page_size": N}` | the page size of resource and resource-group lists (ARM's 1000 by default; `IDLAB_LOCAL_PAGE_SIZE` sets it at start), shrunk so tests see `nextLink`s |
//! | `POST /_idlab/snapshot` | compact the journal into a snapshot now |
//! | `PUT /_idlab/resources` `{"id", "body"}` | seed recorded state: store `body` verbatim as the resource `id` (see [below](#seeding-recorded-state)); answers `{"id", "type", "etag"}` |
//! | `PUT /_idlab/storageAccounts/{name}/keys` `{"keys":["<base64>","<base64>"]}` | replace a storage account's two keys with known ones (SAS test vectors, tools with a fixed key as Azurite has); answers the key names, never the values; paths are case-insensitive |
//!
//! ## Seeding recorded state
//!
//! `PUT /_idlab/resources` loads a resource's state as a real subscription holds it (a body
//! recorded from Azure, say), so that idlab's reads of it can be checked. The body is stored
//! as given, through the same journal as every other write (it survives a restart), and ARM
//! GETs answer it as stored, but for the local cloud's own `etag` (`"N"`) on the types that
//! have one; a seeded body is never shown in progress. A SQL server's Entra admin
//! (`…/administrators/ActiveDirectory`), which the local cloud keeps in its server's record,
//! is seeded there: its `properties` replace the server's admin. Nothing else is made: no
//! directory principal for an identity, no identity endpoint for a VM, no data plane (a seeded
//! vault or Data Lake account keeps its recorded endpoint across restarts). Refused with 400:
//! an id that does not parse, of another subscription, or of a type the provider table does
//! not store (a view of its parent, such as a subnet or a vault's access policies, is seeded
//! in its parent's body; a built-in role cannot be replaced); a body that is not an object,
//! whose `id` is another resource's, or that carries the local cloud's private `_idlab` field.
//! Refused with 404: a resource whose group, or nearest served ancestor, does not exist.
//!
//! A request is a *write* when it asks to change state, whatever the answer: PUT, PATCH or
//! DELETE, or a POST other than the read-only actions (`listKeys`, `listServiceSas`,
//! `listAccountSas`, `checkNameAvailability`); token requests are not writes.

use std::sync::atomic::Ordering;

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::Caller;
use super::faults::Faults;
use super::http::{ArmError, error_response, json_response};
use super::rbac::role_assignment_body;
use super::shared::{Shared, guid, now_ms, random_secret, sha256_hex};
use super::store::{Op, Principal, Resource};
use super::table;
use crate::arm::id::ResourceId;
use crate::roles;

pub fn handle(
    sh: &Shared,
    method: &Method,
    path: &str,
    _query: &[(String, String)],
    body: &[u8],
    caller: Option<&Caller>,
) -> Response {
    if path.starts_with("/_idlab/health") {
        return json_response(200, &json!({ "status": "ok", "pid": sh.info.pid, "arm_url": sh.info.arm_url }), &[]);
    }
    let is_operator = caller.is_some_and(|c| c.object_id == sh.info.operator_object_id);
    if !is_operator {
        return error_response(&ArmError::new(
            403,
            "AuthorizationFailed",
            "The admin API of the local cloud is for its operator principal only.",
        ));
    }
    let result = match (method.clone(), path.trim_end_matches('/')) {
        (Method::GET, "/_idlab/requests") => {
            Ok(json!({ "value": sh.log.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect::<Vec<_>>() }))
        }
        (Method::DELETE, "/_idlab/requests") => {
            sh.log.lock().unwrap_or_else(|p| p.into_inner()).clear();
            Ok(json!({}))
        }
        (Method::POST, "/_idlab/principals") => create_principal(sh, body),
        (Method::GET, "/_idlab/vms") => Ok(vms(sh)),
        (Method::GET, "/_idlab/faults") => {
            serde_json::to_value(sh.faults()).map_err(|e| ArmError::new(500, "InternalServerError", e.to_string()))
        }
        (Method::PUT, "/_idlab/faults") => {
            let f: Result<Faults, String> =
                serde_json::from_slice(body).map_err(|e| e.to_string()).and_then(|f: Faults| f.check().map(|()| f));
            match f {
                Ok(f) => {
                    use rand::SeedableRng;
                    *sh.rng.lock().unwrap_or_else(|p| p.into_inner()) = rand::rngs::StdRng::seed_from_u64(f.seed);
                    *sh.faults.lock().unwrap_or_else(|p| p.into_inner()) = f.clone();
                    sh.buckets.reset();
                    serde_json::to_value(f).map_err(|e| ArmError::new(500, "InternalServerError", e.to_string()))
                }
                Err(e) => Err(ArmError::new(400, "InvalidFaults", e)),
            }
        }
        (Method::PUT, "/_idlab/resources") => seed_resource(sh, body),
        (Method::PUT, p) if p.starts_with("/_idlab/storageaccounts/") && p.ends_with("/keys") => {
            let name = &p["/_idlab/storageaccounts/".len()..p.len() - "/keys".len()];
            import_keys(sh, name, body)
        }
        (Method::GET, "/_idlab/quotas") => Ok(json!(sh.quotas())),
        (Method::PUT, "/_idlab/quotas") => match serde_json::from_slice::<super::table::quota::Quotas>(body) {
            Ok(q) => {
                *sh.quotas.lock().unwrap_or_else(|p| p.into_inner()) = q;
                Ok(json!(q))
            }
            Err(e) => Err(ArmError::new(400, "InvalidRequestContent", e.to_string())),
        },
        (Method::GET, "/_idlab/paging") => Ok(json!({ "page_size": sh.page_size.load(Ordering::Relaxed) })),
        (Method::PUT, "/_idlab/paging") => {
            match serde_json::from_slice::<Value>(body).ok().and_then(|v| v.get("page_size").and_then(Value::as_u64)) {
                Some(n) if n > 0 => {
                    sh.page_size.store(usize::try_from(n).unwrap_or(usize::MAX), Ordering::Relaxed);
                    Ok(json!({ "page_size": n }))
                }
                _ => Err(ArmError::new(400, "InvalidRequestContent", "`page_size` must be a whole number ≥ 1.")),
            }
        }
        (Method::GET, "/_idlab/clock") => Ok(clock(sh)),
        (Method::POST, "/_idlab/clock") => {
            let advance = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("advance_ms").and_then(Value::as_u64))
                .ok_or_else(|| {
                    ArmError::new(
                        400,
                        "InvalidRequestContent",
                        "`advance_ms` must be a whole number of milliseconds ≥ 0.",
                    )
                });
            advance.map(|ms| {
                sh.buckets.advance(ms.saturating_mul(1000));
                clock(sh)
            })
        }
        (Method::POST, "/_idlab/snapshot") => sh
            .store()
            .snapshot()
            .map(|()| json!({}))
            .map_err(|e| ArmError::new(500, "InternalServerError", e.to_string())),
        _ => Err(ArmError::new(404, "NotFound", format!("No admin operation {method} {path}."))),
    };
    match result {
        Ok(v) => json_response(200, &v, &[]),
        Err(e) => error_response(&e),
    }
}

/// The throttling buckets' virtual clock.
fn clock(sh: &Shared) -> Value {
    let f = sh.faults();
    json!({ "clock_ms": sh.buckets.clock_us(&f.throttling, f.time_scale) / 1000, "frozen": f.throttling.frozen_clock })
}

/// Replace a storage account's keys: exactly two, each non-empty base64 (Azure's are 64 bytes).
fn import_keys(sh: &Shared, name: &str, body: &[u8]) -> Result<Value, ArmError> {
    use base64::Engine;
    let bad = |m: &str| ArmError::new(400, "InvalidRequestContent", m.to_string());
    let req: Value = serde_json::from_slice(body).map_err(|e| bad(&e.to_string()))?;
    let keys: Vec<String> = req
        .get("keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let valid = |k: &String| base64::engine::general_purpose::STANDARD.decode(k).is_ok_and(|d| !d.is_empty());
    if keys.len() != 2 || !keys.iter().all(valid) {
        return Err(bad("`keys` must hold exactly two base64 account keys."));
    }
    let mut st = sh.store();
    let mut account = super::storage::account_named(&st.state, name).cloned().ok_or_else(|| {
        ArmError::new(404, "ResourceNotFound", format!("No storage account named {name} in the local cloud."))
    })?;
    account.body["_idlab"]["keys"] = json!(keys);
    st.append(vec![Op::PutResource { resource: account }])
        .map_err(|e| ArmError::new(500, "InternalServerError", e.to_string()))?;
    Ok(json!({ "account": name, "keys": ["key1", "key2"] }))
}

/// `PUT /_idlab/resources`: store a recorded body verbatim (see the module's table).
fn seed_resource(sh: &Shared, body: &[u8]) -> Result<Value, ArmError> {
    let bad = |m: String| ArmError::new(400, "InvalidRequestContent", m);
    let req: Value = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
    let raw = req.get("id").and_then(Value::as_str).ok_or_else(|| bad("`id` (a resource id) is required.".into()))?;
    let id = ResourceId::parse(raw).map_err(|e| bad(format!("`id`: {e}")))?;
    let body =
        req.get("body").filter(|b| b.is_object()).cloned().ok_or_else(|| bad("`body` must be an object.".into()))?;
    if !id.subscription.eq_ignore_ascii_case(&sh.info.subscription_id) {
        return Err(bad(format!("`{raw}` is not in the local subscription {}.", sh.info.subscription_id)));
    }
    if body.get("_idlab").is_some() {
        return Err(bad("`body` may not carry the local cloud's private `_idlab` field.".into()));
    }
    let kind = seeded_type(sh, &id).map_err(bad)?;
    // A SQL admin's view keeps only its properties (Azure's 2014 answer spells its id another way).
    if let Some(given) = body.get("id").and_then(Value::as_str)
        && kind != table::SQL_ADMINISTRATORS
        && !given.trim_end_matches('/').eq_ignore_ascii_case(id.as_str())
    {
        return Err(bad(format!("`body.id` ({given}) is not `id` ({raw}).")));
    }
    let mut st = sh.store();
    if let Some(rg) = &id.resource_group {
        let group = format!("/subscriptions/{}/resourceGroups/{rg}", sh.info.subscription_id);
        if kind != table::RESOURCE_GROUPS && !st.state.resources.contains_key(&group.to_ascii_lowercase()) {
            return Err(ArmError::new(
                404,
                "ResourceGroupNotFound",
                format!("Resource group '{rg}' could not be found."),
            ));
        }
    }
    // A child needs its nearest stored ancestor (a container's account, a database's server).
    if kind != table::ROLE_ASSIGNMENTS
        && let Some(parent) = std::iter::successors(id.parent(), ResourceId::parent)
            .find(|p| p.resource_type().is_some_and(|t| stored_parent(&t)))
        && !st.state.resources.contains_key(&parent.key())
    {
        return Err(ArmError::new(
            404,
            "ParentResourceNotFound",
            format!("The parent resource '{}' could not be found.", parent.as_str()),
        ));
    }
    if kind == table::SQL_ADMINISTRATORS {
        return seed_sql_admin(&mut st, &id, &body);
    }
    // A vault's mark that keeps its data plane from being started at the next start (and its
    // recorded `vaultUri` from being replaced); a vault's GET never shows `_idlab`. (A Data
    // Lake account without `_idlab.port` is left alone the same way.)
    let mut body = body;
    if kind == table::VAULTS {
        body["_idlab"] = json!({ "seeded": true });
    }
    let now = now_ms();
    let old = st.state.resources.get(&id.key());
    let resource = Resource {
        id: id.as_str().to_string(),
        kind: kind.to_string(),
        body,
        etag: old.map_or(1, |r| r.etag + 1),
        created_ms: old.map_or(now, |r| r.created_ms),
        busy_until_ms: 0,
        effective_ms: (kind == table::ROLE_ASSIGNMENTS).then_some(now),
    };
    let etag = resource.etag;
    st.append(vec![Op::PutResource { resource }])
        .map_err(|e| ArmError::new(500, "InternalServerError", e.to_string()))?;
    Ok(json!({ "id": id.as_str(), "type": kind, "etag": etag }))
}

/// A SQL server's Entra admin lives in its server's record (`properties.administrators`):
/// the seeded body's `properties` go there as given.
fn seed_sql_admin(st: &mut super::store::Store, id: &ResourceId, body: &Value) -> Result<Value, ArmError> {
    if !id.name().is_some_and(|n| n.eq_ignore_ascii_case("ActiveDirectory")) {
        return Err(ArmError::new(
            400,
            "InvalidRequestContent",
            "A SQL server's administrator is named ActiveDirectory.",
        ));
    }
    let props = body
        .get("properties")
        .filter(|p| p.is_object())
        .cloned()
        .ok_or_else(|| ArmError::new(400, "InvalidRequestContent", "`body.properties` must be an object."))?;
    let parent = id.parent().map(|p| p.key()).unwrap_or_default();
    let mut server = st.state.resources.get(&parent).cloned().ok_or_else(|| {
        ArmError::new(
            404,
            "ParentResourceNotFound",
            format!("The parent resource of '{}' could not be found.", id.as_str()),
        )
    })?;
    server.body["properties"]["administrators"] = props;
    server.etag += 1;
    let etag = server.etag;
    st.append(vec![Op::PutResource { resource: server }])
        .map_err(|e| ArmError::new(500, "InternalServerError", e.to_string()))?;
    Ok(json!({ "id": id.as_str(), "type": table::SQL_ADMINISTRATORS, "etag": etag }))
}

/// The stored type of a seeded id: a resource group, a role assignment, a custom role
/// definition (at its subscription), or a type the provider table stores whole.
fn seeded_type(sh: &Shared, id: &ResourceId) -> Result<&'static str, String> {
    let Some(t) = id.resource_type() else {
        return match &id.resource_group {
            Some(_) => Ok(table::RESOURCE_GROUPS),
            None => Err(format!("`{}` is a subscription, not a resource.", id.as_str())),
        };
    };
    if t.eq_ignore_ascii_case(table::ROLE_ASSIGNMENTS) {
        return Ok(table::ROLE_ASSIGNMENTS);
    }
    if t.eq_ignore_ascii_case(table::ROLE_DEFINITIONS) {
        let at_subscription = format!(
            "/subscriptions/{}/providers/{}/{}",
            sh.info.subscription_id,
            table::ROLE_DEFINITIONS,
            id.name().unwrap_or_default()
        );
        if roles::by_guid(id.name().unwrap_or_default()).is_some() {
            return Err(format!("`{}` is a built-in role, which cannot be replaced.", id.as_str()));
        }
        if !at_subscription.eq_ignore_ascii_case(id.as_str()) {
            return Err(format!("a custom role definition is stored at its subscription: `{at_subscription}`."));
        }
        return Ok(table::ROLE_DEFINITIONS);
    }
    match table::provider(&t) {
        Some(p) if p.handler == table::Handler::Generic || p.type_name == table::SQL_ADMINISTRATORS => Ok(p.type_name),
        Some(p) => Err(format!("{} is a view of its parent: seed the parent's body instead.", p.type_name)),
        None => Err(format!("the local cloud does not serve the type {t}.")),
    }
}

fn create_principal(sh: &Shared, body: &[u8]) -> Result<Value, ArmError> {
    let req: Value =
        serde_json::from_slice(body).map_err(|e| ArmError::new(400, "InvalidRequestContent", e.to_string()))?;
    let name = req.get("name").and_then(Value::as_str).unwrap_or("idlab-principal").to_string();
    let secret = random_secret();
    let now = now_ms();
    let federated: Vec<(String, String)> = req
        .get("federated")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| Some((f.get("issuer")?.as_str()?.to_string(), f.get("subject")?.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let p = Principal {
        object_id: guid(),
        client_id: guid(),
        display_name: name,
        kind: "ServicePrincipal".into(),
        secret_sha256: Some(sha256_hex(&secret)),
        federated,
        resource_id: None,
        created_ms: now,
    };
    let mut ops = vec![Op::PutPrincipal { principal: p.clone() }];
    let default_scope = format!("/subscriptions/{}", sh.info.subscription_id);
    for r in req.get("roles").and_then(Value::as_array).cloned().unwrap_or_default() {
        let role_name = r.get("role").and_then(Value::as_str).unwrap_or_default();
        let role = roles::by_name(role_name).or_else(|| roles::by_guid(role_name)).ok_or_else(|| {
            ArmError::new(400, "RoleDefinitionDoesNotExist", format!("No built-in role `{role_name}`."))
        })?;
        let scope = r.get("scope").and_then(Value::as_str).unwrap_or(&default_scope).trim_end_matches('/').to_string();
        let name = guid();
        let id = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
        let def = format!(
            "/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{}",
            sh.info.subscription_id, role.guid
        );
        let body = role_assignment_body(
            &id,
            &name,
            &scope,
            &def,
            &p.object_id,
            "ServicePrincipal",
            Some("created through the idlab admin API"),
            &sh.info.operator_object_id,
            now,
        );
        ops.push(Op::PutResource {
            resource: Resource {
                id,
                kind: table::ROLE_ASSIGNMENTS.into(),
                body,
                etag: 1,
                created_ms: now,
                busy_until_ms: 0,
                effective_ms: Some(now),
            },
        });
    }
    sh.store().append(ops).map_err(|e| ArmError::new(500, "InternalServerError", e.to_string()))?;
    Ok(json!({ "client_id": p.client_id, "object_id": p.object_id, "secret": secret, "tenant_id": sh.info.tenant_id }))
}

/// Every VM with its identity endpoint.
pub fn vms(sh: &Shared) -> Value {
    let st = sh.store();
    let list: Vec<Value> = st
        .state
        .resources
        .values()
        .filter(|r| r.kind == table::VIRTUAL_MACHINES)
        .map(|r| {
            let ep = st.state.imds.get(&r.id.to_ascii_lowercase());
            json!({
                "id": r.id,
                "name": r.body.get("name"),
                "identity": r.body.get("identity"),
                "endpoint": ep.map(|e| format!("http://127.0.0.1:{}", e.port)),
                "identity_endpoint": ep.map(|e| format!("http://127.0.0.1:{}/msi/token", e.port)),
                "identity_header": ep.map(|e| e.header_secret.clone()),
            })
        })
        .collect();
    json!({ "value": list })
}

/// Whether resources of `type_name` are stored (a seeded child needs its stored parent): every
/// served type but an account's blob service, a view of its account.
fn stored_parent(type_name: &str) -> bool {
    table::provider(type_name).is_some_and(|p| p.handler != table::Handler::BlobService)
}
