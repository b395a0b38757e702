//! Provider `Microsoft.Sql`: the Entra admin and Entra-only settings of a server.

use axum::http::Method;
use axum::response::Response;
use serde_json::Value;

use crate::arm::id::ResourceId;
use crate::local::http::{ArmError, empty, json_response};
use crate::local::lro::*;
use crate::local::request::*;
use crate::local::store::Op;

/// A SQL server's Entra admin (`administrators/ActiveDirectory`) or its Entra-only switch
/// (`azureADOnlyAuthentications/Default`): views of the server body, written through it.
pub(crate) fn sql_server_setting(req: &mut Req<'_>, id: &ResourceId, tl: &str) -> Result<Response, ArmError> {
    let admin = tl == "microsoft.sql/servers/administrators";
    let expected = if admin { "activedirectory" } else { "default" };
    if !id.name().is_some_and(|n| n.eq_ignore_ascii_case(expected)) {
        return Err(not_found(id));
    }
    let parent = id.parent().ok_or_else(|| not_found(id))?;
    let Some(mut server) = req.sh.store().state.resources.get(&parent.key()).cloned() else {
        return Err(if req.method == Method::GET { not_found(id) } else { parent_not_found(parent.as_str()) });
    };
    let api = req.api_version.clone();
    let view = |b: &Value| {
        if admin { crate::local::sql::admin_at(b, &api) } else { Some(crate::local::sql::entra_only_view(b)) }
    };
    let tenant = req.sh.info.tenant_id.clone();
    let create = view(&server.body).is_none();
    let new_body = match req.method {
        Method::GET => {
            return match view(&server.body) {
                Some(v) => Ok(json_response(200, &v, &[])),
                // At 2014-04-01 the SQL RP answered a missing admin with its own envelope
                // (`TestServerActiveDirectoryAdministratorCRUD.json`).
                None if admin && api.starts_with("2014-") => {
                    Ok(json_response(404, &crate::local::sql::admin_missing_2014(), &[]))
                }
                None => Err(not_found(id)),
            };
        }
        Method::PUT => {
            let given = parse_body(req)?;
            if admin {
                crate::local::sql::put_admin(&server.body, &given, &tenant)?
            } else {
                crate::local::sql::set_entra_only(&server.body, Some(&given))?
            }
        }
        Method::DELETE => {
            if view(&server.body).is_none() {
                return Ok(empty(204, &[]));
            }
            if admin {
                crate::local::sql::delete_admin(&server.body)?
            } else {
                crate::local::sql::set_entra_only(&server.body, None)?
            }
        }
        _ => return Err(method_not_allowed()),
    };
    server.body = new_body;
    server.etag += 1;
    let shown = if req.method == Method::DELETE { None } else { view(&server.body) };
    req.sh.commit(vec![Op::PutResource { resource: server }])?;
    // The view lives in the server's record, so the operation carries no resource: its
    // `Location` poll ends with the setting as it was written.
    let op = start_operation(req.sh, tl, None);
    if let Some(v) = shown
        && let Some(o) = req.sh.ops.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&op)
    {
        o.result = Some(v);
    }
    let name = crate::local::sql::operation_name(tl, req.method == Method::DELETE, create);
    let body = crate::local::sql::accepted_body(name, admin.then_some(op.as_str()));
    Ok(json_response(202, &body, &lro_headers(req, &op, false)))
}
