//! Key Vault from the client side: soft-deleted vaults (read, purge), access-policy entries
//! (read one principal's entry, `accessPolicies/add|remove`), and secrets through the
//! vault's data plane with a token for `https://vault.azure.net`.
//!
//! Secrets are addressed by a pseudo id, `{vault id}/secrets/{name}`; the data-plane URL
//! comes from the vault's `vaultUri`. Secret values travel in [`Sensitive`] and appear in no
//! error or log: requests are logged by method, redacted URL and status only.

use reqwest::Method;
use serde_json::{Value, json};

use super::client::RetryWhile;
use super::{Client, Error};
use crate::model::Sensitive;

/// The vault api-version idlab sends.
pub const VAULT_API: &str = "2024-11-01";
/// The secrets api-version idlab sends.
pub const DATA_API: &str = "7.4";
/// The token scope of the data plane.
pub const VAULT_SCOPE: &str = "https://vault.azure.net/.default";

/// `{vault id}/secrets/{name}` or `{vault id}/accessPolicies/{object id}`, split.
fn split(id: &str, child: &str) -> Option<(String, String)> {
    let (vault, name) = id.rsplit_once(&format!("/{child}/"))?;
    let is_vault = vault.rsplit('/').nth(1).is_some_and(|t| t.eq_ignore_ascii_case("vaults"))
        && vault.to_ascii_lowercase().contains("/providers/microsoft.keyvault/vaults/");
    (is_vault && !name.is_empty() && !name.contains('/')).then(|| (vault.to_string(), name.to_string()))
}

fn bad_id(id: &str) -> Error {
    Error::new("InvalidId", format!("`{id}` is not a Key Vault object id"))
}

/// The id of a vault's deleted record: `/subscriptions/{s}/providers/Microsoft.KeyVault/
/// locations/{location}/deletedVaults/{name}`.
pub fn deleted_vault_path(vault_id: &str, location: &str) -> String {
    let sub = vault_id.split('/').nth(2).unwrap_or_default();
    let name = vault_id.rsplit('/').next().unwrap_or_default();
    format!("/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{name}")
}

/// The soft-deleted vault with this id's name in `location`, if any.
///
/// # Errors
/// A read failed for another reason than absence.
pub async fn get_deleted_vault(client: &Client, vault_id: &str, location: &str) -> Result<Option<Value>, Error> {
    client.get(&deleted_vault_path(vault_id, location), VAULT_API).await
}

/// Purge a soft-deleted vault (a long-running operation) and wait.
///
/// # Errors
/// The service refused (purge protection) or the operation failed.
pub async fn purge_vault(client: &Client, vault_id: &str, location: &str) -> Result<(), Error> {
    client.post_wait(&format!("{}/purge", deleted_vault_path(vault_id, location)), VAULT_API).await
}

/// One principal's access-policy entry, as `{"properties": {"permissions": {kind: [sorted,
/// lower-case]}}}` for the planner; `None` when the vault or the entry does not exist.
///
/// # Errors
/// A read failed for another reason than absence.
pub async fn get_policy(client: &Client, id: &str, tenant: &str) -> Result<Option<Value>, Error> {
    let (vault_id, oid) = split(id, "accessPolicies").ok_or_else(|| bad_id(id))?;
    let Some(vault) = client.get(&vault_id, VAULT_API).await? else { return Ok(None) };
    Ok(policy_entry(&vault, &oid, tenant))
}

/// The access-policy entry of object `oid` (in `tenant`, with no application) in a vault's
/// body, as the planner compares it: `{properties: {tenantId, permissions, storedPermissions}}`
/// with the permissions normalised ([`normalized_permissions`]) and as stored.
pub fn policy_entry(vault: &Value, oid: &str, tenant: &str) -> Option<Value> {
    let entry = vault.pointer("/properties/accessPolicies").and_then(Value::as_array).and_then(|list| {
        list.iter().find(|p| {
            p.get("objectId").and_then(Value::as_str).is_some_and(|o| o.eq_ignore_ascii_case(oid))
                && p.get("tenantId").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case(tenant))
                && p.get("applicationId").and_then(Value::as_str).is_none_or(str::is_empty)
        })
    });
    entry.map(|p| {
        json!({ "properties": {
            "tenantId": p.get("tenantId"),
            "permissions": normalized_permissions(p.get("permissions")),
            // As stored: `accessPolicies/remove` matches permissions by their exact casing.
            "storedPermissions": p.get("permissions"),
        } })
    })
}

/// Permission lists lower-cased and sorted, empty lists left out.
pub fn normalized_permissions(p: Option<&Value>) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in p.and_then(Value::as_object).into_iter().flatten() {
        let mut list: Vec<String> =
            v.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_ascii_lowercase).collect();
        list.sort();
        list.dedup();
        if !list.is_empty() {
            out.insert(k.clone(), json!(list));
        }
    }
    Value::Object(out)
}

/// `PUT {vault}/accessPolicies/{op}` for one entry (`op`: `add` or `remove`).
///
/// # Errors
/// The service refused.
pub async fn update_policy(
    client: &Client,
    id: &str,
    tenant: &str,
    op: &str,
    permissions: &Value,
) -> Result<(), Error> {
    let (vault_id, oid) = split(id, "accessPolicies").ok_or_else(|| bad_id(id))?;
    let body = json!({ "properties": { "accessPolicies": [
        { "tenantId": tenant, "objectId": oid, "permissions": permissions }
    ] } });
    client.write(Method::PUT, &format!("{vault_id}/accessPolicies/{op}"), VAULT_API, &body, &[]).await.map(|_| ())
}

/// A secret as the data plane holds it.
pub enum SecretState {
    /// The current version: its bundle with the value moved out.
    Live { value: Sensitive<String>, bundle: Value },
    /// Soft-deleted: the deleted bundle (no value).
    Deleted(Value),
}

/// The data-plane URL of `path` under the vault of a secret id; `None` when the vault does
/// not exist (or is soft-deleted).
async fn secret_url(client: &Client, id: &str, path: &str) -> Result<Option<String>, Error> {
    let (vault_id, name) = split(id, "secrets").ok_or_else(|| bad_id(id))?;
    let Some(vault) = client.get(&vault_id, VAULT_API).await? else { return Ok(None) };
    let uri = vault
        .pointer("/properties/vaultUri")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::new("InvalidResponse", format!("{vault_id} has no vaultUri")))?;
    let name = super::percent_encode(&name, b"");
    Ok(Some(format!("{}/{}", uri.trim_end_matches('/'), path.replace("{name}", &name))))
}

/// The data-plane URL of a secret (without a version or query); `None` when its vault does
/// not exist.
///
/// # Errors
/// Reading the vault failed.
pub async fn secret_url_of(client: &Client, id: &str) -> Result<Option<String>, Error> {
    secret_url(client, id, "secrets/{name}").await
}

async fn data(
    client: &Client,
    method: Method,
    url: &str,
    body: Option<&Value>,
) -> Result<super::client::Response, Error> {
    client.send_scoped(VAULT_SCOPE, method, url, Some(DATA_API), body, &[]).await
}

/// Read a secret: its current value, or its soft-deleted record; `None` when neither exists.
///
/// # Errors
/// A read failed for another reason than absence (403 included).
pub async fn get_secret(client: &Client, id: &str) -> Result<Option<SecretState>, Error> {
    match secret_url(client, id, "secrets/{name}").await? {
        Some(url) => get_secret_at(client, &url).await,
        None => Ok(None),
    }
}

/// [`get_secret`] at a data-plane URL already known ([`secret_url_of`]).
///
/// # Errors
/// A read failed for another reason than absence (403 included).
pub async fn get_secret_at(client: &Client, url: &str) -> Result<Option<SecretState>, Error> {
    let r = data(client, Method::GET, url, None).await?;
    secret_state(client, url, r).await
}

/// [`get_secret_at`], the first read retried while `wait` holds: a recovered secret comes
/// back in the background, so `RetryWhile::status(404).within(window)` reads until it is
/// live or the window has passed (then it answers what is there: the deleted record, or
/// nothing).
///
/// # Errors
/// As [`get_secret_at`].
pub async fn get_secret_at_while(client: &Client, url: &str, wait: RetryWhile) -> Result<Option<SecretState>, Error> {
    let r = client.request(Method::GET, url).scope(VAULT_SCOPE).api_version(DATA_API).retry_while(wait).send().await?;
    secret_state(client, url, r.into_response()).await
}

async fn secret_state(client: &Client, url: &str, r: super::client::Response) -> Result<Option<SecretState>, Error> {
    match r.status {
        200 => {
            let mut bundle = r.body;
            let value = bundle.as_object_mut().and_then(|o| o.remove("value"));
            let value = value.and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            Ok(Some(SecretState::Live { value: Sensitive::new(value), bundle }))
        }
        404 => {
            let deleted = url.replace("/secrets/", "/deletedsecrets/");
            let d = data(client, Method::GET, &deleted, None).await?;
            match d.status {
                200 => Ok(Some(SecretState::Deleted(d.body))),
                404 => Ok(None),
                _ => Err(Client::error(&Method::GET, &deleted, &d)),
            }
        }
        _ => Err(Client::error(&Method::GET, url, &r)),
    }
}

/// Set a new version of a secret; answers the bundle without its value.
///
/// # Errors
/// The service refused (`Conflict` for a soft-deleted name).
pub async fn set_secret(
    client: &Client,
    id: &str,
    value: &Sensitive<String>,
    content_type: Option<&str>,
    tags: &Value,
) -> Result<Value, Error> {
    let url = secret_url(client, id, "secrets/{name}").await?.ok_or_else(|| vault_missing(id))?;
    let mut body = json!({ "value": value.expose(), "tags": tags });
    if let Some(ct) = content_type {
        body["contentType"] = json!(ct);
    }
    let r = data(client, Method::PUT, &url, Some(&body)).await?;
    drop(body);
    if r.status != 200 {
        return Err(Client::error(&Method::PUT, &url, &r));
    }
    Ok(without_value(r.body))
}

/// Change a secret's tags and content type, keeping its value (`PATCH` of its version).
///
/// # Errors
/// The service refused.
pub async fn update_secret(
    client: &Client,
    id: &str,
    version: &str,
    content_type: Option<&str>,
    tags: &Value,
) -> Result<Value, Error> {
    let path = format!("secrets/{{name}}/{version}");
    let url = secret_url(client, id, &path).await?.ok_or_else(|| vault_missing(id))?;
    let mut body = json!({ "tags": tags });
    if let Some(ct) = content_type {
        body["contentType"] = json!(ct);
    }
    let r = data(client, Method::PATCH, &url, Some(&body)).await?;
    if r.status != 200 {
        return Err(Client::error(&Method::PATCH, &url, &r));
    }
    Ok(without_value(r.body))
}

fn without_value(mut b: Value) -> Value {
    if let Some(o) = b.as_object_mut() {
        o.remove("value");
    }
    b
}

fn vault_missing(id: &str) -> Error {
    Error::new("VaultNotFound", format!("the vault of {id} does not exist"))
}

/// Soft-delete a secret; `Ok(false)` when there was nothing to delete.
///
/// # Errors
/// The service refused.
pub async fn delete_secret(client: &Client, id: &str) -> Result<bool, Error> {
    let Some(url) = secret_url(client, id, "secrets/{name}").await? else { return Ok(false) };
    let r = data(client, Method::DELETE, &url, None).await?;
    match r.status {
        200 | 204 => Ok(true),
        404 => Ok(false),
        _ => Err(Client::error(&Method::DELETE, &url, &r)),
    }
}

/// Recover a soft-deleted secret.
///
/// # Errors
/// The service refused.
pub async fn recover_secret(client: &Client, id: &str) -> Result<(), Error> {
    let url = secret_url(client, id, "deletedsecrets/{name}/recover").await?.ok_or_else(|| vault_missing(id))?;
    let r = data(client, Method::POST, &url, None).await?;
    if r.status != 200 {
        return Err(Client::error(&Method::POST, &url, &r));
    }
    Ok(())
}

/// Purge a soft-deleted secret. Azure finishes a deletion in the background, so a purge that
/// finds the secret still being deleted (409) is retried for a while.
///
/// # Errors
/// The service refused (purge protection), or the deletion never finished.
pub async fn purge_secret(client: &Client, id: &str) -> Result<(), Error> {
    let url = secret_url(client, id, "deletedsecrets/{name}").await?.ok_or_else(|| vault_missing(id))?;
    let r = client
        .request(Method::DELETE, &url)
        .scope(VAULT_SCOPE)
        .api_version(DATA_API)
        .retry_while(
            RetryWhile::status(409)
                .within(std::time::Duration::from_secs(36))
                .max_delay(std::time::Duration::from_secs(5)),
        )
        .send()
        .await?
        .into_response();
    match r.status {
        200 | 204 | 404 => Ok(()),
        409 => Err(Error::new("PurgeTimedOut", format!("{id}: the secret was still being deleted"))),
        _ => Err(Client::error(&Method::DELETE, &url, &r)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_split_and_deleted_paths_name_the_location() {
        let v = "/subscriptions/s/resourceGroups/secrets/providers/Microsoft.KeyVault/vaults/kv";
        assert_eq!(split(&format!("{v}/secrets/app"), "secrets"), Some((v.to_string(), "app".to_string())));
        assert_eq!(split(v, "secrets"), None);
        assert_eq!(
            deleted_vault_path(v, "eastus"),
            "/subscriptions/s/providers/Microsoft.KeyVault/locations/eastus/deletedVaults/kv"
        );
        let p = normalized_permissions(Some(&json!({"secrets": ["List", "get", "get"], "keys": []})));
        assert_eq!(p, json!({"secrets": ["get", "list"]}));
    }
}
