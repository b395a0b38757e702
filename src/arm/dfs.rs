//! Data Lake folders and their ACL entries on Data Lake Storage Gen2 (a storage account with
//! a hierarchical namespace) through the `dfs` endpoint (arm-contract §5, "Gen2"). The
//! account's `properties.primaryEndpoints.dfs` (read through ARM) gives the base URL; calls
//! carry `x-ms-version` and a bearer token for `https://storage.azure.com/`.
//!
//! A folder reads back in the same shape as a Gen1 folder (`{"id", "owner", "permission",
//! "acl": {"user:{oid}": "r-x", "default:user:{oid}": "rwx", …}}`), so the planner compares
//! only the entries a plan names. Gen2's only "modify entries" call is recursive
//! (`setAccessControlRecursive&mode=modify` would touch every child): apply reads the ACL
//! (`getAccessControl`), merges the plan's entries and writes the whole list back
//! (`setAccessControl`); destroy does the same without them. Masks are left out of what is
//! written, so the service recomputes them from the entries (as `setfacl -m` does).
//!
//! A data role granted a moment ago takes a while to reach the data plane, so a write refused
//! with `AuthorizationPermissionMismatch` is retried within a window the caller gives.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::RetryWhile;
use super::{Client, Error};
use crate::model::Sensitive;

/// The token scope of the storage data planes.
pub const SCOPE: &str = "https://storage.azure.com/.default";
/// The service version idlab speaks to `dfs`.
pub const VERSION: &str = "2023-11-03";
/// The management api-version for reading the account.
const STORAGE_API: &str = "2025-06-01";

/// A Gen2 folder id: `{account id}/blobServices/default/containers/{fs}/folders{path}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gen2Folder {
    pub account_id: String,
    pub filesystem: String,
    /// Absolute path, `/` for the root.
    pub path: String,
}

impl Gen2Folder {
    /// ```
    /// use idlab::arm::dfs::Gen2Folder;
    /// let a = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/acct";
    /// let f = Gen2Folder::parse(&format!("{a}/blobServices/default/containers/lake/folders/TestFolder")).unwrap();
    /// assert_eq!((f.account_id.as_str(), f.filesystem.as_str(), f.path.as_str()), (a, "lake", "/TestFolder"));
    /// assert!(Gen2Folder::parse("/subscriptions/s/providers/Microsoft.DataLakeStore/accounts/a/folders/").is_none());
    /// ```
    pub fn parse(id: &str) -> Option<Gen2Folder> {
        let lower = id.to_ascii_lowercase();
        lower.find("/providers/microsoft.storage/storageaccounts/")?;
        let at = lower.find("/blobservices/default/containers/")?;
        let rest = &id[at + "/blobServices/default/containers/".len()..];
        let (fs, path) = rest.split_once("/folders")?;
        if fs.is_empty() || !path.starts_with('/') {
            return None;
        }
        Some(Gen2Folder { account_id: id[..at].to_string(), filesystem: fs.to_string(), path: path.to_string() })
    }
}

/// Where a folder is and how to reach it.
struct Located {
    /// The folder's URL without a query (the root ends in `/`).
    url: String,
    token: Sensitive<String>,
}

/// `None` when the account does not exist.
async fn locate(client: &Client, f: &Gen2Folder) -> Result<Option<Located>, Error> {
    let Some(account) = client.get(&f.account_id, STORAGE_API).await? else {
        return Ok(None);
    };
    let endpoint = account
        .pointer("/properties/primaryEndpoints/dfs")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::new("InvalidResponse", format!("{} has no dfs endpoint", f.account_id)))?;
    let token = client.credential().token(SCOPE).await?;
    let path = if f.path == "/" { "/".to_string() } else { super::percent_encode(&f.path, b"/") };
    let url = format!("{}/{}{path}", endpoint.trim_end_matches('/'), f.filesystem);
    Ok(Some(Located { url, token: token.value }))
}

/// What a `dfs` call answered.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One `dfs` request: a few retries on throttling, server errors and lost connections (the
/// client's policy), and `AuthorizationPermissionMismatch` retried until `wait` has passed
/// (a [`RetryWhile`] condition: a data role granted a moment ago). 404 is an answer, not an
/// error.
///
/// # Errors
/// Any other status ≥ 400, with the service's `x-ms-error-code`.
#[allow(clippy::too_many_arguments)]
pub async fn call(
    client: &Client,
    method: Method,
    url: &str,
    query: &str,
    headers: &[(&str, &str)],
    token: &Sensitive<String>,
    body: Vec<u8>,
    wait: Duration,
) -> Result<Answer, Error> {
    let action = query.split('&').find(|p| p.starts_with("action=") || p.starts_with("resource="));
    let operation = format!("{method} {url}{}", action.map(|a| format!("?{a}")).unwrap_or_default());
    let mut req = client
        .request(method, &format!("{url}?{query}"))
        .bearer(token)
        .header("x-ms-version", VERSION)
        .body(body)
        .attempts(5)
        .private_url()
        .retry_while(RetryWhile::code(403, "AuthorizationPermissionMismatch").within(wait));
    for (k, v) in headers {
        req = req.header(k, *v);
    }
    let r = req.send().await.map_err(|e| Error::new("ConnectionFailed", format!("{operation}: {}", e.message)))?;
    let answer = Answer { status: r.status, headers: r.headers, body: r.bytes };
    tracing::debug!(operation = %operation, status = answer.status, "dfs");
    if answer.status < 400 || answer.status == 404 {
        return Ok(answer);
    }
    let code = answer.header("x-ms-error-code").unwrap_or("DataLakeStorageError").to_string();
    let message = serde_json::from_slice::<Value>(&answer.body)
        .ok()
        .and_then(|b| b.pointer("/error/message").and_then(Value::as_str).map(str::to_string))
        .map(|m| m.lines().next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let mut e = Error::new(&code, message);
    if code == "AuthorizationPermissionMismatch" {
        e.message.push_str(
            " The deploying principal needs Storage Blob Data Owner on the account to create folders and set their ACLs (`idlab plan` warns with E045 when the plan does not grant it).",
        );
    }
    e.status = Some(answer.status);
    e.request_id = answer.header("x-ms-request-id").map(str::to_string);
    e.operation = operation;
    Err(e)
}

/// The entries of an `x-ms-acl` list, each as `(slot, perms)` (`default:user:{oid}`, `rwx`).
fn entries(acl: &str) -> Vec<(String, String)> {
    acl.split(',')
        .filter_map(|e| e.trim().rsplit_once(':'))
        .map(|(slot, perms)| (slot.to_string(), perms.to_string()))
        .collect()
}

/// The folder's ACL (`getAccessControl`), or `None` when the folder or its account is not
/// there.
/// The ACL of a path (`None` when it does not exist); a refusal is retried within `wait`.
async fn get_acl(client: &Client, at: &Located, wait: Duration) -> Result<Option<Answer>, Error> {
    let a = call(client, Method::HEAD, &at.url, "action=getAccessControl", &[], &at.token, Vec::new(), wait).await?;
    Ok((a.status != 404).then_some(a))
}

fn body_of(id: &str, a: &Answer) -> Value {
    let mut acl = Map::new();
    for (slot, perms) in entries(a.header("x-ms-acl").unwrap_or_default()) {
        // Named entries only: the base entries and the mask are the folder's own.
        if !slot.ends_with(':') {
            acl.insert(slot, json!(perms));
        }
    }
    json!({
        "id": id,
        "owner": a.header("x-ms-owner"),
        "permission": a.header("x-ms-permissions"),
        "acl": acl,
    })
}

/// The folder as a JSON body, or `None` when it (or its account or file system) does not
/// exist.
///
/// # Errors
/// ARM or data-plane failures other than absence.
pub async fn read(client: &Client, f: &Gen2Folder, id: &str) -> Result<Option<Value>, Error> {
    let Some(at) = locate(client, f).await? else { return Ok(None) };
    Ok(get_acl(client, &at, Duration::ZERO).await?.map(|a| body_of(id, &a)))
}

/// The full list to write: `current` with the plan's `acl` entries put in (`add`) or taken
/// out, masks left for the service to recompute, and default base entries copied from the
/// access ones when a default ACL appears.
fn merged(current: &str, acl: &Value, add: bool) -> String {
    let mut out: Vec<(String, String)> = entries(current).into_iter().filter(|(s, _)| !s.ends_with("mask:")).collect();
    for (slot, perms) in acl.as_object().into_iter().flatten() {
        out.retain(|(s, _)| !s.eq_ignore_ascii_case(slot));
        if add {
            out.push((slot.clone(), perms.as_str().unwrap_or("---").to_string()));
        }
    }
    if out.iter().any(|(s, _)| s.starts_with("default:")) {
        for base in ["user:", "group:", "other:"] {
            let default = format!("default:{base}");
            if !out.iter().any(|(s, _)| *s == default)
                && let Some((_, p)) = out.iter().find(|(s, _)| s == base).cloned()
            {
                out.push((default, p));
            }
        }
    }
    out.iter().map(|(s, p)| format!("{s}:{p}")).collect::<Vec<_>>().join(",")
}

async fn set_acl(client: &Client, at: &Located, acl: &str, wait: Duration) -> Result<(), Error> {
    let h = [("x-ms-acl", acl)];
    call(client, Method::PATCH, &at.url, "action=setAccessControl", &h, &at.token, Vec::new(), wait).await?;
    Ok(())
}

/// Create the folder (and missing parents) when absent and merge the entries of
/// `body.acl` into its ACL; answers the folder as [`read`] shows it. A refused write is
/// retried within `wait` (a data role granted a moment ago).
///
/// # Errors
/// ARM or data-plane failures; a missing account.
pub async fn apply(client: &Client, f: &Gen2Folder, id: &str, body: &Value, wait: Duration) -> Result<Value, Error> {
    let Some(at) = locate(client, f).await? else {
        return Err(Error::new(
            "ParentResourceNotFound",
            format!("the storage account {} does not exist", f.account_id),
        ));
    };
    // The first read waits out a data role granted a moment ago, as the writes do.
    let current = match get_acl(client, &at, wait).await? {
        Some(a) => a,
        None if f.path == "/" => {
            return Err(Error::new(
                "FilesystemNotFound",
                format!("the file system {} of {} does not exist", f.filesystem, f.account_id),
            ));
        }
        None => {
            let h = [("if-none-match", "*")];
            match call(client, Method::PUT, &at.url, "resource=directory", &h, &at.token, Vec::new(), wait).await {
                Err(e) if e.code == "PathAlreadyExists" => {}
                r => drop(r?),
            }
            get_acl(client, &at, wait)
                .await?
                .ok_or_else(|| Error::new("InvalidResponse", format!("{id} is missing after its create")))?
        }
    };
    // Never write an ACL built from the plan's entries alone: without the current one, stop.
    let Some(now) = current.header("x-ms-acl") else {
        return Err(Error::new("InvalidResponse", format!("{id}: getAccessControl answered no x-ms-acl")));
    };
    let acl = merged(now, body.get("acl").unwrap_or(&Value::Null), true);
    set_acl(client, &at, &acl, wait).await?;
    let after = get_acl(client, &at, Duration::ZERO)
        .await?
        .ok_or_else(|| Error::new("InvalidResponse", format!("{id} went away")))?;
    Ok(body_of(id, &after))
}

/// Take the entries of `body.acl` out of the folder's ACL; the folder itself stays. Answers
/// whether the folder existed.
///
/// # Errors
/// ARM or data-plane failures other than absence.
pub async fn remove_entries(client: &Client, f: &Gen2Folder, body: &Value) -> Result<bool, Error> {
    let Some(at) = locate(client, f).await? else { return Ok(false) };
    let Some(current) = get_acl(client, &at, Duration::ZERO).await? else { return Ok(false) };
    let Some(now) = current.header("x-ms-acl") else {
        return Err(Error::new("InvalidResponse", "getAccessControl answered no x-ms-acl"));
    };
    let acl = merged(now, body.get("acl").unwrap_or(&Value::Null), false);
    set_acl(client, &at, &acl, Duration::ZERO).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_puts_entries_in_or_takes_them_out_and_drops_masks() {
        let current = "user::rwx,user:a:r--,group::r-x,mask::r-x,other::---";
        let add = merged(current, &json!({"user:a": "rwx", "default:user:a": "rwx"}), true);
        assert_eq!(
            add,
            "user::rwx,group::r-x,other::---,user:a:rwx,default:user:a:rwx,default:user::rwx,default:group::r-x,default:other::---"
        );
        let removed = merged(&add, &json!({"user:a": "rwx", "default:user:a": "rwx"}), false);
        assert_eq!(removed, "user::rwx,group::r-x,other::---,default:user::rwx,default:group::r-x,default:other::---");
        assert_eq!(entries("user::rwx,default:user:a:r-x")[1], ("default:user:a".into(), "r-x".into()));
    }
}
