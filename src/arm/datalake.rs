//! Data Lake folders and their ACL entries through WebHDFS (Data Lake Storage Gen1,
//! arm-contract §7); a Gen2 folder id (on a storage account) goes to [`super::dfs`] instead,
//! so the engine has one entry point per operation for both generations. The account's `properties.endpoint` (read through ARM) gives the
//! data-plane host: `https://{endpoint}/webhdfs/v1/{path}?op=…`, with a bearer token for
//! `https://datalake.azure.net/` (the trailing slash matters; the scope is
//! `https://datalake.azure.net//.default`).
//!
//! A folder reads back as a small JSON body so the planner can diff it like any resource:
//! `{"id", "owner", "acl": {"user:{oid}": "r-x", "default:user:{oid}": "rwx", …}}` — every
//! named entry keyed by its slot, so a plan's entries compare by slot and entries the plan
//! does not name are left alone.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{Client, Error};
use crate::model::Sensitive;

/// The management api-version of Gen1 accounts.
const ACCOUNT_API: &str = "2016-11-01";
/// The token scope of the Gen1 data plane.
pub const SCOPE: &str = "https://datalake.azure.net//.default";

/// A folder id: `{account id}/folders{path}` (the root is `{account id}/folders/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderId {
    pub account_id: String,
    /// Absolute path, `/` for the root.
    pub path: String,
}

impl FolderId {
    pub fn parse(id: &str) -> Option<FolderId> {
        const ACCOUNTS: &str = "/providers/microsoft.datalakestore/accounts/";
        let lower = id.to_ascii_lowercase();
        let at = lower.find(ACCOUNTS)? + ACCOUNTS.len();
        // The account's name ends at the next `/` (an account may be named `folders`).
        let name_end = at + id.get(at..)?.find('/')?;
        let rest = id.get(name_end..)?;
        let path = rest.strip_prefix("/folders")?;
        if !path.starts_with('/') {
            return None;
        }
        Some(FolderId { account_id: id[..name_end].to_string(), path: path.to_string() })
    }
}

/// The `id` of the folder at `path` in the account `account_id`.
///
/// ```
/// use idlab::arm::datalake::FolderId;
/// let a = "/subscriptions/s/resourceGroups/g/providers/Microsoft.DataLakeStore/accounts/folders";
/// let f = FolderId::parse(&format!("{a}/folders/folders/x")).expect("a folder id");
/// assert_eq!((f.account_id.as_str(), f.path.as_str()), (a, "/folders/x"));
/// assert_eq!(FolderId::parse(&format!("{a}/folders/")).map(|f| f.path), Some("/".to_string()));
/// assert!(FolderId::parse(a).is_none());
/// ```
///
/// ```
/// assert_eq!(idlab::arm::datalake::folder_id("/a", "/"), "/a/folders/");
/// assert_eq!(idlab::arm::datalake::folder_id("/a", "/TestFolder"), "/a/folders/TestFolder");
/// ```
pub fn folder_id(account_id: &str, path: &str) -> String {
    format!("{account_id}/folders{}", if path.starts_with('/') { path.to_string() } else { format!("/{path}") })
}

/// The folder's WebHDFS URL without a query, and a data-plane token; `None` when the account
/// does not exist.
async fn locate(client: &Client, f: &FolderId) -> Result<Option<(String, Sensitive<String>)>, Error> {
    let Some(account) = client.get(&f.account_id, ACCOUNT_API).await? else {
        return Ok(None);
    };
    let endpoint = account
        .pointer("/properties/endpoint")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::new("InvalidResponse", format!("{} has no endpoint", f.account_id)))?;
    let token = client.credential().token(SCOPE).await?;
    let path = super::percent_encode(&f.path, b"/");
    Ok(Some((format!("https://{endpoint}/webhdfs/v1{path}"), token.value)))
}

/// One WebHDFS request through the client's retry policy (a few retries on throttling,
/// server errors and lost connections).
async fn call(
    client: &Client,
    method: Method,
    url: &str,
    op: &str,
    token: &Sensitive<String>,
) -> Result<(u16, Value), Error> {
    let operation = format!("{method} {url}?op={op}");
    let resp = client
        .request(method, &format!("{url}?{op}"))
        .bearer(token)
        .private_url()
        .attempts(5)
        .send()
        .await
        .map_err(|e| Error::new("ConnectionFailed", format!("{operation}: {}", e.message)))?;
    let status = resp.status;
    let body = resp.json();
    tracing::debug!(operation = %operation, status, "webhdfs");
    if status >= 400 && status != 404 {
        let exception = body.pointer("/RemoteException/exception").and_then(Value::as_str).unwrap_or("WebHdfsError");
        let message = body.pointer("/RemoteException/message").and_then(Value::as_str).unwrap_or_default();
        let mut e = Error::new(exception, format!("{operation} answered {status}: {message}"));
        e.status = Some(status);
        e.request_id = resp.request_id;
        e.operation = operation;
        return Err(e);
    }
    Ok((status, body))
}

/// The slot of an entry text (`default:user:{oid}:rwx` → `default:user:{oid}`).
fn slot_and_perms(entry: &str) -> Option<(String, String)> {
    let (slot, perms) = entry.rsplit_once(':')?;
    Some((slot.to_string(), perms.to_string()))
}

/// The folder as a JSON body, or `None` when it (or its account) does not exist.
///
/// # Errors
/// ARM or data-plane failures other than absence.
pub async fn read(client: &Client, id: &str) -> Result<Option<Value>, Error> {
    if let Some(g) = super::dfs::Gen2Folder::parse(id) {
        return super::dfs::read(client, &g, id).await;
    }
    let f = FolderId::parse(id).ok_or_else(|| Error::new("InvalidId", format!("{id} is not a folder id")))?;
    let Some((url, token)) = locate(client, &f).await? else { return Ok(None) };
    let (status, body) = call(client, Method::GET, &url, "op=GETACLSTATUS", &token).await?;
    if status == 404 {
        return Ok(None);
    }
    let mut acl = Map::new();
    for e in body.pointer("/AclStatus/entries").and_then(Value::as_array).into_iter().flatten() {
        if let Some((slot, perms)) = e.as_str().and_then(slot_and_perms)
            && !slot.ends_with(':')
        {
            acl.insert(slot, json!(perms));
        }
    }
    Ok(Some(json!({
        "id": id,
        "owner": body.pointer("/AclStatus/owner"),
        "permission": body.pointer("/AclStatus/permission"),
        "acl": acl,
    })))
}

/// The `aclspec` of a folder body's `acl` map.
fn spec(acl: &Value, with_perms: bool) -> String {
    acl.as_object()
        .map(|m| {
            m.iter()
                .map(
                    |(slot, p)| {
                        if with_perms { format!("{slot}:{}", p.as_str().unwrap_or("---")) } else { slot.clone() }
                    },
                )
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Create the folder (and missing parents) and merge the entries of `body.acl` into its ACL
/// (`MKDIRS`, then `MODIFYACLENTRIES`); answers the folder as [`read`] shows it.
///
/// On Gen2, a refused write is retried within `wait` (a data role granted a moment ago).
///
/// # Errors
/// ARM or data-plane failures; a missing account.
pub async fn apply(client: &Client, id: &str, body: &Value, wait: Duration) -> Result<Value, Error> {
    if let Some(g) = super::dfs::Gen2Folder::parse(id) {
        return super::dfs::apply(client, &g, id, body, wait).await;
    }
    let f = FolderId::parse(id).ok_or_else(|| Error::new("InvalidId", format!("{id} is not a folder id")))?;
    let Some((url, token)) = locate(client, &f).await? else {
        return Err(Error::new(
            "ParentResourceNotFound",
            format!("the Data Lake Store {} does not exist", f.account_id),
        ));
    };
    if f.path != "/" {
        call(client, Method::PUT, &url, "op=MKDIRS", &token).await?;
    }
    let aclspec = spec(body.get("acl").unwrap_or(&Value::Null), true);
    if !aclspec.is_empty() {
        let q = format!("op=MODIFYACLENTRIES&aclspec={}", super::percent_encode(&aclspec, b":,-"));
        call(client, Method::PUT, &url, &q, &token).await?;
    }
    read(client, id).await?.ok_or_else(|| Error::new("InvalidResponse", format!("{id} is missing after MKDIRS")))
}

/// Remove the entries of `body.acl` from the folder's ACL (`REMOVEACLENTRIES`); the folder
/// itself stays. Answers whether the folder existed.
///
/// # Errors
/// ARM or data-plane failures other than absence.
pub async fn remove_entries(client: &Client, id: &str, body: &Value) -> Result<bool, Error> {
    if let Some(g) = super::dfs::Gen2Folder::parse(id) {
        return super::dfs::remove_entries(client, &g, body).await;
    }
    let f = FolderId::parse(id).ok_or_else(|| Error::new("InvalidId", format!("{id} is not a folder id")))?;
    let Some((url, token)) = locate(client, &f).await? else { return Ok(false) };
    let slots = spec(body.get("acl").unwrap_or(&Value::Null), false);
    if slots.is_empty() {
        return Ok(true);
    }
    let q = format!("op=REMOVEACLENTRIES&aclspec={}", super::percent_encode(&slots, b":,-"));
    let (status, _) = call(client, Method::PUT, &url, &q, &token).await?;
    Ok(status != 404)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_ids_split_into_account_and_path() {
        let a = "/subscriptions/s/resourceGroups/g/providers/Microsoft.DataLakeStore/accounts/adls";
        let f = FolderId::parse(&folder_id(a, "/")).expect("root");
        assert_eq!((f.account_id.as_str(), f.path.as_str()), (a, "/"));
        let f = FolderId::parse(&folder_id(a, "/Test Folder/folders/x")).expect("nested");
        assert_eq!(f.path, "/Test Folder/folders/x");
        assert_eq!(FolderId::parse("/subscriptions/s/resourceGroups/g"), None);
        assert_eq!(spec(&json!({"user:a": "r-x", "default:user:a": "rwx"}), true), "user:a:r-x,default:user:a:rwx");
        assert_eq!(spec(&json!({"user:a": "r-x"}), false), "user:a");
        assert_eq!(slot_and_perms("default:user:a:rwx"), Some(("default:user:a".into(), "rwx".into())));
    }
}
