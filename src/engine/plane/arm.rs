//! The ARM plane: PUT as upsert, PATCH for kinds that update in place, replace (delete then
//! create, purging a soft-deleted vault in between), role assignments (replication lag,
//! adoption of an existing assignment for the same triple) and soft-deleted vaults.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::work::{Done, SoftDeleted, written};
use crate::arm::client::RetryWhile;
use crate::arm::{Client, Error, keyvault};
use crate::engine::context::Outcome;
use crate::plan;

/// Create or update by PUT; role assignments (`role`: their replication window) go through
/// `put_role_assignment`.
pub async fn put(client: &Client, id: String, api: &str, body: &Value, role: Option<Duration>, update: bool) -> Done {
    if let Some(window) = role {
        return put_role_assignment(client, &id, api, body, window).await;
    }
    let v = client.write(Method::PUT, &id, api, body, &[]).await?;
    Ok((written(id, update), Some(v)))
}

/// Update in place by PATCH, guarded by the ETag the resource was read with (if any).
pub async fn patch(client: &Client, id: String, api: &str, body: &Value, etag: Option<String>) -> Done {
    let headers: Vec<(&str, String)> = etag.into_iter().map(|e| ("If-Match", e)).collect();
    let v = client.write(Method::PATCH, &id, api, body, &headers).await?;
    Ok((Outcome::Updated(id), Some(v)))
}

/// Delete, purge the soft-deleted copy (`purge_at`: its location) so the name is free, create.
pub async fn replace(client: &Client, id: String, api: &str, body: &Value, purge_at: Option<String>) -> Done {
    client.delete(&id, api).await?;
    if let Some(location) = purge_at {
        keyvault::purge_vault(client, &id, &location).await?;
    }
    let v = client.write(Method::PUT, &id, api, body, &[]).await?;
    Ok((Outcome::Replaced(id), Some(v)))
}

/// Bring back a soft-deleted vault (`createMode: recover`, then a PATCH if the recovered
/// vault differs from the plan).
pub async fn recover_vault(client: &Client, s: SoftDeleted) -> Done {
    let mut body = s.body.clone();
    body["properties"]["createMode"] = json!("recover");
    let got = client.write(Method::PUT, &s.id, s.api, &body, &[]).await?;
    let mut changes = Vec::new();
    plan::diff("", &s.body, Some(&got), &mut changes);
    let got = if changes.is_empty() { got } else { client.write(Method::PATCH, &s.id, s.api, &s.body, &[]).await? };
    Ok((Outcome::Recovered(s.id), Some(got)))
}

/// Purge a soft-deleted vault, then create it anew.
pub async fn purge_create_vault(client: &Client, s: SoftDeleted) -> Done {
    keyvault::purge_vault(client, &s.id, &s.location).await?;
    let v = client.write(Method::PUT, &s.id, s.api, &s.body, &[]).await?;
    Ok((Outcome::Created(s.id), Some(v)))
}

/// Destroy with `--purge`: delete the vault (unless already soft-deleted), then purge it.
pub async fn delete_purge_vault(client: &Client, s: SoftDeleted, already_deleted: bool) -> Done {
    if !already_deleted {
        client.delete(&s.id, s.api).await?;
    }
    keyvault::purge_vault(client, &s.id, &s.location).await?;
    Ok((Outcome::Purged(s.id), None))
}

/// Role assignments: `PrincipalNotFound` for an identity the plan just created is retried
/// within `window` (replication lag, [`put_until_principal_replicates`]); for any other
/// principal the window is zero and the error is final; `RoleAssignmentExists` for the same
/// triple under another name is adopted.
async fn put_role_assignment(client: &Client, id: &str, api: &str, body: &Value, window: Duration) -> Done {
    let e = match put_until_principal_replicates(client, id, api, body, window).await? {
        Ok(v) => return Ok((Outcome::Created(id.to_string()), Some(v))),
        Err(e) => e,
    };
    if e.code != "RoleAssignmentExists" {
        return Err(e);
    }
    match find_same_assignment(client, id, api, body).await? {
        Some(a) => Ok((Outcome::Adopted(a.get("id").and_then(Value::as_str).unwrap_or(id).to_string()), Some(a))),
        None => Err(e),
    }
}

/// What ARM holds under another name than the desired `id` that is the same object by what
/// it holds: a role assignment by (scope, principal, role) ([`find_same_assignment`]), a custom
/// role by its role name ([`find_same_definition`]).
///
/// # Errors
/// The listing failed.
pub async fn find_same(client: &Client, id: &str, api: &str, body: &Value) -> Result<Option<Value>, Error> {
    let lower = id.to_ascii_lowercase();
    if lower.contains("/providers/microsoft.authorization/roledefinitions/") {
        find_same_definition(client, id, api, body).await
    } else {
        find_same_assignment(client, id, api, body).await
    }
}

/// The custom role ARM holds with the desired one's role name (unique in a tenant), whatever
/// its GUID: a role made in the portal or with `az role definition create` has a random one.
/// One listing filtered by role name at the first of its assignable scopes (where a role
/// assignable there is listed whatever ARM's rule for roles assignable only lower down), else
/// at the definition's own scope.
///
/// # Errors
/// The listing failed.
pub async fn find_same_definition(client: &Client, id: &str, api: &str, body: &Value) -> Result<Option<Value>, Error> {
    let scope = body
        .pointer("/properties/assignableScopes/0")
        .and_then(Value::as_str)
        .filter(|s| s.starts_with("/subscriptions/"))
        .unwrap_or_else(|| id.split("/providers/Microsoft.Authorization/").next().unwrap_or_default());
    let name = body.pointer("/properties/roleName").and_then(Value::as_str).unwrap_or_default();
    // OData doubles a quote inside a string literal.
    let filter = crate::arm::percent_encode(&format!("roleName eq '{}'", name.replace('\'', "''")), b"");
    let list = client
        .list(&format!("{scope}/providers/Microsoft.Authorization/roleDefinitions?$filter={filter}"), api)
        .await?;
    Ok(list.into_iter().find(|d| {
        d.pointer("/properties/roleName").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(name))
            && d.pointer("/properties/type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.eq_ignore_ascii_case("CustomRole"))
    }))
}

/// The role assignment ARM holds for the same (scope, principal, role) as the desired one
/// (`id`, `body`), whatever its name: one listing at the scope filtered by principal, matched
/// by scope and role GUID (ARM's `RoleAssignmentExists` names no id). Apply adopts it after
/// that refusal; observe reads it for a destroy or an `--adopt` plan (an assignment made in
/// the portal or with the Azure CLI has a random GUID name).
///
/// # Errors
/// The listing failed.
pub async fn find_same_assignment(client: &Client, id: &str, api: &str, body: &Value) -> Result<Option<Value>, Error> {
    let scope = id.split("/providers/Microsoft.Authorization/").next().unwrap_or_default();
    let p = body.pointer("/properties/principalId").and_then(Value::as_str).unwrap_or_default();
    let def = body.pointer("/properties/roleDefinitionId").and_then(Value::as_str).unwrap_or_default();
    let list = client
        .list(
            &format!("{scope}/providers/Microsoft.Authorization/roleAssignments?$filter=principalId%20eq%20'{p}'"),
            api,
        )
        .await?;
    Ok(list.into_iter().find(|a| {
        a.pointer("/properties/scope").and_then(Value::as_str).is_some_and(|s| s.eq_ignore_ascii_case(scope))
            && a.pointer("/properties/roleDefinitionId").and_then(Value::as_str).is_some_and(|d| {
                d.rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .eq_ignore_ascii_case(def.rsplit('/').next().unwrap_or_default())
            })
    }))
}

/// PUT a role assignment, waiting out `PrincipalNotFound` for up to `window` (a principal
/// created moments ago is not yet known to RBAC). The inner result is the ARM refusal that
/// ended the wait (any other code, or `PrincipalNotFound` past the window); the outer one a
/// transport failure.
async fn put_until_principal_replicates(
    client: &Client,
    id: &str,
    api: &str,
    body: &Value,
    window: Duration,
) -> Result<Result<Value, Error>, Error> {
    let r = client
        .request(Method::PUT, id)
        .api_version(api)
        .json(body)
        .retry_while(RetryWhile::code(400, "PrincipalNotFound").within(window))
        .send()
        .await?
        .into_response();
    if (200..300).contains(&r.status) {
        return Ok(Ok(r.body));
    }
    Ok(Err(Client::error(&Method::PUT, id, &r)))
}
