//! Long-running operations: registering one, its `Location` / `Azure-AsyncOperation`
//! headers and `GET /_idlab/operations/{id}`, whose final answer goes through the same
//! output filter as a GET.

use axum::response::Response;
use serde_json::json;

use crate::local::http::{ArmError, empty, error_response, json_response, query_get};
use crate::local::request::*;
use crate::local::shared::{Operation, Shared, guid, now_ms};

/// Register a long-running operation; returns its id.
pub(crate) fn start_operation(sh: &Shared, type_lower: &str, resource: Option<String>) -> String {
    register(sh, type_lower, resource, None)
}

/// Register the long-running delete of a resource of `type_lower`; returns its id. Its last
/// `Location` answer is Azure's for the provider: Network ends with 204
/// (TestVirtualNetworkCRUD.json: `operationResults` GET 204); Resources (a group's delete) and
/// SQL (`serverOperationResults`) end with 200.
pub(crate) fn start_delete(sh: &Shared, type_lower: &str) -> String {
    register(sh, type_lower, None, crate::local::table::delete_ends_with_no_content(type_lower).then_some(204))
}

fn register(sh: &Shared, type_lower: &str, resource: Option<String>, final_status: Option<u16>) -> String {
    let dur = sh.faults().lro(type_lower).as_millis() as u64;
    register_until(sh, now_ms() + dur, resource, final_status)
}

fn register_until(sh: &Shared, done_ms: u64, resource: Option<String>, final_status: Option<u16>) -> String {
    let id = guid();
    sh.ops.lock().unwrap_or_else(|p| p.into_inner()).insert(
        id.clone(),
        Operation { done_ms, failed: None, resource, started_ms: now_ms(), result: None, final_status },
    );
    id
}

/// When an operation of `type_lower` started now would end (its `lro_ms` fault).
pub(crate) fn ends_at(sh: &Shared, type_lower: &str) -> u64 {
    now_ms() + sh.faults().lro(type_lower).as_millis() as u64
}

/// Register an operation that ends at `done_ms` (a resource group's delete, whose end the
/// group keeps: a repeated DELETE answers an operation ending with the first); returns its id.
pub(crate) fn start_operation_until(sh: &Shared, done_ms: u64) -> String {
    register_until(sh, done_ms, None, None)
}

/// `Retry-After` (whole seconds, at least 1, as Azure sends) and `retry-after-ms` (the
/// time the operation really needs, so fast clients need not wait whole seconds).
pub(crate) fn retry_headers(sh: &Shared, remaining_ms: Option<u64>) -> Vec<(&'static str, String)> {
    let f = sh.faults();
    let secs = f.retry_after_s.max(1);
    let scaled = f.scaled(secs * 1000).as_millis() as u64;
    let ms = remaining_ms.map_or(scaled, |r| r.min(scaled)).max(1);
    vec![("retry-after", secs.to_string()), ("retry-after-ms", ms.to_string())]
}

pub(crate) fn remaining(sh: &Shared, op: &str) -> Option<u64> {
    let ops = sh.ops.lock().unwrap_or_else(|p| p.into_inner());
    ops.get(op).map(|o| o.done_ms.saturating_sub(now_ms()))
}

pub(crate) fn lro_headers(req: &Req<'_>, op: &str, location_only: bool) -> Vec<(&'static str, String)> {
    let base = &req.sh.base_url;
    let v = &req.api_version;
    let mut h = retry_headers(req.sh, remaining(req.sh, op));
    h.push(("location", format!("{base}/_idlab/operations/{op}?api-version={v}&monitor=location")));
    if !location_only {
        h.push(("azure-asyncoperation", format!("{base}/_idlab/operations/{op}?api-version={v}")));
    }
    h
}

/// `GET /_idlab/operations/{id}`: the status of a long-running operation.
pub(crate) fn operation_status(sh: &Shared, id: &str, query: &[(String, String)]) -> Response {
    let op = sh.ops.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned();
    let Some(op) = op else {
        return error_response(&ArmError::new(
            404,
            "OperationNotFound",
            format!("The operation '{id}' could not be found."),
        ));
    };
    let now = now_ms();
    let done = now >= op.done_ms;
    let fmt = |ms: u64| {
        time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
            .map(|d| d.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
            .unwrap_or_default()
    };
    if query_get(query, "monitor") == Some("location") {
        if !done {
            return empty(202, &retry_headers(sh, Some(op.done_ms.saturating_sub(now))));
        }
        let status = op.final_status.unwrap_or(200);
        if let Some(result) = &op.result {
            return json_response(status, result, &[]);
        }
        if let Some(rid) = &op.resource {
            // The final answer is the resource as its GET shows it: never the stored body,
            // which holds internal fields (a storage account's keys).
            let body = sh.store().state.resources.get(&rid.to_ascii_lowercase()).map(|r| present(r, now));
            if let Some(mut b) = body {
                let version = query_get(query, "api-version").unwrap_or_default();
                if b.get("type").and_then(serde_json::Value::as_str) == Some(crate::local::table::STORAGE_ACCOUNTS) {
                    crate::local::storage::account_at(&mut b, version, &sh.info.tenant_id);
                }
                return json_response(status, &b, &[]);
            }
        }
        return empty(status, &[]);
    }
    let mut body = json!({ "id": format!("{}/_idlab/operations/{id}", sh.base_url), "name": id, "status": if done { "Succeeded" } else { "InProgress" }, "startTime": fmt(op.started_ms) });
    if done {
        body["endTime"] = json!(fmt(op.done_ms));
        if let Some((code, message)) = op.failed {
            body["status"] = json!("Failed");
            body["error"] = json!({ "code": code, "message": message });
        }
        json_response(200, &body, &[])
    } else {
        body["percentComplete"] = json!(50);
        json_response(200, &body, &retry_headers(sh, Some(op.done_ms.saturating_sub(now))))
    }
}
