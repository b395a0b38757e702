//! Blobs, the one data-plane object a plan declares. idlab reaches them with a short-lived
//! service SAS from `ListServiceSas` (an ARM action the deploying principal has as Owner or
//! Storage Account Contributor), so it needs no data role of its own. The SAS lives only in
//! memory: errors and logs name the blob path, never the query.
//!
//! A blob reads back as a small JSON body so the planner can diff it like any resource:
//! `{"id", "properties": {"contentMd5", "contentType", "metadata"}}`.

use reqwest::Method;
use serde_json::{Value, json};

use super::client::Reply;
use super::{Client, Error};
use crate::model::Sensitive;

/// The Blob service version idlab speaks.
pub const VERSION: &str = "2023-11-03";
/// Files larger than this go up in blocks (Put Block, then Put Block List) instead of one
/// Put Blob.
pub const BLOCK_THRESHOLD: usize = 4 << 20;
/// The size of each block of a block upload (the last one may be shorter).
pub const BLOCK_SIZE: usize = 4 << 20;
/// The management api-version for the account actions.
const STORAGE_API: &str = "2025-06-01";

/// A blob id: `{container id}/blobs/{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobId {
    pub account_id: String,
    pub account: String,
    pub container: String,
    pub name: String,
}

impl BlobId {
    pub fn parse(id: &str) -> Option<BlobId> {
        let (account_id, rest) = id.split_once("/blobServices/default/containers/")?;
        let (container, name) = rest.split_once("/blobs/")?;
        let account = account_id.rsplit('/').next()?.to_string();
        if name.is_empty() || container.is_empty() || account.is_empty() {
            return None;
        }
        Some(BlobId { account_id: account_id.into(), account, container: container.into(), name: name.into() })
    }
}

fn encode_path(s: &str) -> String {
    super::percent_encode(s, b"/")
}

/// The blob's URL without a query, and a SAS with `perms` for its container; `None` when the
/// account does not exist.
async fn locate(client: &Client, b: &BlobId, perms: &str) -> Result<Option<(String, Sensitive<String>)>, Error> {
    let found = container_url(client, &b.account_id, &b.account, &b.container, perms).await?;
    Ok(found.map(|(url, sas)| (format!("{url}/{}", encode_path(&b.name)), sas)))
}

/// A container's URL without a query, and a SAS with `perms` for it; `None` when the account
/// does not exist.
async fn container_url(
    client: &Client,
    account_id: &str,
    account: &str,
    container: &str,
    perms: &str,
) -> Result<Option<(String, Sensitive<String>)>, Error> {
    let Some(body) = client.get(account_id, STORAGE_API).await? else {
        return Ok(None);
    };
    let endpoint = body
        .pointer("/properties/primaryEndpoints/blob")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::new("InvalidResponse", format!("{account_id} has no blob endpoint")))?;
    let expiry = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let expiry = expiry
        .replace_nanosecond(0)
        .unwrap_or(expiry)
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| Error::new("InvalidRequest", e.to_string()))?;
    let req = json!({
        "canonicalizedResource": format!("/blob/{account}/{container}"),
        "signedResource": "c",
        "signedPermission": perms,
        "signedProtocol": "https",
        "signedExpiry": expiry,
    });
    let sas = client.post(&format!("{account_id}/ListServiceSas"), STORAGE_API, &req).await?;
    let token = sas
        .get("serviceSasToken")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::new("InvalidResponse", "ListServiceSas answered no serviceSasToken"))?;
    let url = format!("{}/{container}", endpoint.trim_end_matches('/'));
    Ok(Some((url, Sensitive::new(token.to_string()))))
}

/// One data-plane request through the client's retry policy (a few retries on throttling,
/// server errors and lost connections). The SAS never reaches an error or a log.
async fn call(
    client: &Client,
    method: Method,
    url: &str,
    sas: &Sensitive<String>,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> Result<Reply, Error> {
    let operation = format!("{method} {url}");
    // `url` may carry its own query (`comp=block`); the SAS follows it.
    let sep = if url.contains('?') { '&' } else { '?' };
    let mut r = client
        .request(method, &format!("{url}{sep}{}", sas.expose()))
        .no_auth()
        .private_url()
        .attempts(5)
        .header("x-ms-version", VERSION);
    for (k, v) in headers {
        r = r.header(k, v.as_str());
    }
    if let Some(b) = body {
        r = r.body(b);
    }
    match r.send().await {
        Ok(resp) => {
            tracing::debug!(operation = %operation, status = resp.status, "blob request");
            Ok(resp)
        }
        // The client's message for a private URL is only the kind of failure.
        Err(e) => {
            let mut err = Error::new("ConnectionFailed", format!("{operation}: {}", e.message));
            err.operation = operation;
            Err(err)
        }
    }
}

fn failure(operation: &str, resp: &Reply) -> Error {
    let status = resp.status;
    let code = resp.header("x-ms-error-code").unwrap_or("BlobRequestFailed");
    let mut e = Error::new(code, format!("{operation} answered {status} {code}"));
    e.status = Some(status);
    e.request_id = resp.request_id.clone();
    e.operation = operation.to_string();
    e
}

/// The blob as a JSON body, or `None` when it (or its account or container) does not exist.
///
/// # Errors
/// ARM or data-plane failures other than absence.
pub async fn head(client: &Client, id: &str) -> Result<Option<Value>, Error> {
    let b = BlobId::parse(id).ok_or_else(|| Error::new("InvalidId", format!("{id} is not a blob id")))?;
    let Some((url, sas)) = locate(client, &b, "r").await? else {
        return Ok(None);
    };
    let resp = call(client, Method::HEAD, &url, &sas, &[], None).await?;
    let status = resp.status;
    if status == 404 {
        return Ok(None);
    }
    if !(200..300).contains(&status) {
        return Err(failure(&format!("HEAD {url}"), &resp));
    }
    let h = &resp.headers;
    let text = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
    let metadata: serde_json::Map<String, Value> = h
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().strip_prefix("x-ms-meta-")?.to_string(), json!(v.to_str().ok()?))))
        .collect();
    Ok(Some(json!({
        "id": id,
        "properties": { "contentMd5": text("content-md5"), "contentType": text("content-type"), "metadata": metadata }
    })))
}

/// Upload `data` as a block blob with `metadata`; answers the blob as [`head`] shows it.
///
/// # Errors
/// ARM or data-plane failures; a missing account.
pub async fn put(
    client: &Client,
    id: &str,
    data: Vec<u8>,
    content_type: &str,
    metadata: &[(&str, &str)],
) -> Result<Value, Error> {
    let b = BlobId::parse(id).ok_or_else(|| Error::new("InvalidId", format!("{id} is not a blob id")))?;
    let Some((url, sas)) = locate(client, &b, "rcw").await? else {
        return Err(Error::new(
            "ParentResourceNotFound",
            format!("the storage account {} does not exist", b.account_id),
        ));
    };
    let keys: Vec<String> = metadata.iter().map(|(k, _)| format!("x-ms-meta-{k}")).collect();
    let meta = keys.iter().zip(metadata).map(|(k, (_, v))| (k.as_str(), (*v).to_string()));
    if data.len() > BLOCK_THRESHOLD {
        put_blocks(client, &url, &sas, data, content_type, meta.collect()).await?;
    } else {
        let mut headers: Vec<(&str, String)> =
            vec![("x-ms-blob-type", "BlockBlob".into()), ("content-type", content_type.into())];
        headers.extend(meta);
        let resp = call(client, Method::PUT, &url, &sas, &headers, Some(data)).await?;
        if !(200..300).contains(&resp.status) {
            return Err(failure(&format!("PUT {url}"), &resp));
        }
    }
    head(client, id).await?.ok_or_else(|| Error::new("InvalidResponse", format!("{id} is missing after its upload")))
}

/// A block upload: each [`BLOCK_SIZE`] slice with Put Block, then Put Block List naming them
/// in order. `x-ms-blob-content-md5` carries the whole content's MD5, which the service keeps
/// as the blob's `Content-MD5` (it computes none for a block list), so a later plan compares
/// contents the same way as after a single Put Blob.
async fn put_blocks(
    client: &Client,
    url: &str,
    sas: &Sensitive<String>,
    data: Vec<u8>,
    content_type: &str,
    meta: Vec<(&str, String)>,
) -> Result<(), Error> {
    use base64::Engine;
    use md5::{Digest, Md5};
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let md5 = b64(&Md5::digest(&data));
    let mut list = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    for (i, chunk) in data.chunks(BLOCK_SIZE).enumerate() {
        // Block ids: base64 of a fixed-width counter (all ids of a blob have one length).
        let block_id = b64(format!("{i:08}").as_bytes());
        let block_url = format!("{url}?comp=block&blockid={}", super::percent_encode(&block_id, b""));
        let resp = call(client, Method::PUT, &block_url, sas, &[], Some(chunk.to_vec())).await?;
        if !(200..300).contains(&resp.status) {
            return Err(failure(&format!("PUT {block_url}"), &resp));
        }
        list.push_str(&format!("<Latest>{block_id}</Latest>"));
    }
    list.push_str("</BlockList>");
    let mut headers: Vec<(&str, String)> = vec![
        ("content-type", "application/xml".into()),
        ("x-ms-blob-content-type", content_type.into()),
        ("x-ms-blob-content-md5", md5),
    ];
    headers.extend(meta);
    let list_url = format!("{url}?comp=blocklist");
    let resp = call(client, Method::PUT, &list_url, sas, &headers, Some(list.into_bytes())).await?;
    if !(200..300).contains(&resp.status) {
        return Err(failure(&format!("PUT {list_url}"), &resp));
    }
    Ok(())
}

/// A blob as a container listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub size: u64,
    pub content_type: Option<String>,
    pub content_md5: Option<String>,
}

/// A container reached with one service SAS (one ARM read of its account and one
/// `ListServiceSas`), for reading many of its blobs.
pub struct Container {
    url: String,
    sas: Sensitive<String>,
}

impl Container {
    /// Reach a container (its id) to list and read it; `None` when its account does not exist.
    ///
    /// # Errors
    /// ARM failures.
    pub async fn open(client: &Client, container_id: &str) -> Result<Option<Container>, Error> {
        let (account_id, container) = container_id
            .split_once("/blobServices/default/containers/")
            .ok_or_else(|| Error::new("InvalidId", format!("{container_id} is not a container id")))?;
        let account = account_id.rsplit('/').next().unwrap_or_default();
        let found = container_url(client, account_id, account, container, "rl").await?;
        Ok(found.map(|(url, sas)| Container { url, sas }))
    }

    /// Its blobs in name order, at most `max`; `None` when it does not exist. Pages follow
    /// `NextMarker`.
    ///
    /// # Errors
    /// Data-plane failures other than absence (a refused listing keeps its status).
    pub async fn list(&self, client: &Client, max: usize) -> Result<Option<Vec<Listed>>, Error> {
        let mut out = Vec::new();
        let mut marker = String::new();
        while out.len() < max {
            let query = if marker.is_empty() {
                "restype=container&comp=list".to_string()
            } else {
                format!("restype=container&comp=list&marker={}", super::percent_encode(&marker, b""))
            };
            let page_url = format!("{}?{query}", self.url);
            let resp = call(client, Method::GET, &page_url, &self.sas, &[], None).await?;
            match resp.status {
                404 => return Ok(None),
                200 => {}
                _ => return Err(failure(&format!("GET {page_url}"), &resp)),
            }
            let xml = String::from_utf8_lossy(&resp.bytes).into_owned();
            for blob in elements(&xml, "Blob") {
                let Some(name) = element(blob, "Name") else { continue };
                let props = elements(blob, "Properties").next().unwrap_or_default();
                out.push(Listed {
                    name,
                    size: element(props, "Content-Length").and_then(|n| n.parse().ok()).unwrap_or(0),
                    content_type: element(props, "Content-Type").filter(|t| !t.is_empty()),
                    content_md5: element(props, "Content-MD5").filter(|t| !t.is_empty()),
                });
            }
            match element(&xml, "NextMarker").filter(|m| !m.is_empty()) {
                Some(m) => marker = m,
                None => break,
            }
        }
        out.truncate(max);
        Ok(Some(out))
    }

    /// The content of its blob `name`, or `None` when it does not exist.
    ///
    /// # Errors
    /// Data-plane failures other than absence.
    pub async fn download(&self, client: &Client, name: &str) -> Result<Option<Vec<u8>>, Error> {
        let url = format!("{}/{}", self.url, encode_path(name));
        let resp = call(client, Method::GET, &url, &self.sas, &[], None).await?;
        match resp.status {
            404 => Ok(None),
            s if (200..300).contains(&s) => Ok(Some(resp.bytes)),
            _ => Err(failure(&format!("GET {url}"), &resp)),
        }
    }
}

/// The inner text of each `<tag>…</tag>` in `xml` (a listing's elements hold no attributes).
fn elements<'a>(xml: &'a str, tag: &str) -> impl Iterator<Item = &'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut rest = xml;
    std::iter::from_fn(move || {
        let at = rest.find(&open)? + open.len();
        let end = rest[at..].find(&close)? + at;
        let inner = &rest[at..end];
        rest = &rest[end + close.len()..];
        Some(inner)
    })
}

/// The unescaped text of the first `<tag>` in `xml`.
fn element(xml: &str, tag: &str) -> Option<String> {
    elements(xml, tag).next().map(unescape)
}

/// XML text with its five entities and numeric references resolved.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e => e
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| e.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Delete the blob; answers whether it existed.
///
/// # Errors
/// ARM or data-plane failures other than absence.
pub async fn delete(client: &Client, id: &str) -> Result<bool, Error> {
    let b = BlobId::parse(id).ok_or_else(|| Error::new("InvalidId", format!("{id} is not a blob id")))?;
    let Some((url, sas)) = locate(client, &b, "d").await? else {
        return Ok(false);
    };
    let resp = call(client, Method::DELETE, &url, &sas, &[], None).await?;
    match resp.status {
        404 => Ok(false),
        s if (200..300).contains(&s) => Ok(true),
        _ => Err(failure(&format!("DELETE {url}"), &resp)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_ids_split_into_account_container_and_name() {
        let id = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/acct/blobServices/default/containers/c/blobs/dir/hello world.txt";
        let b = BlobId::parse(id).expect("parses");
        assert_eq!((b.account.as_str(), b.container.as_str(), b.name.as_str()), ("acct", "c", "dir/hello world.txt"));
        assert!(b.account_id.ends_with("/storageAccounts/acct"));
        assert_eq!(encode_path(&b.name), "dir/hello%20world.txt");
        assert_eq!(BlobId::parse("/subscriptions/s/resourceGroups/g"), None);
        // A group named `blobs` and a blob path holding `/blobs/` parse too.
        let odd = "/subscriptions/s/resourceGroups/blobs/providers/Microsoft.Storage/storageAccounts/a/blobServices/default/containers/c/blobs/x/blobs/y";
        let b = BlobId::parse(odd).expect("parses");
        assert_eq!((b.account.as_str(), b.container.as_str(), b.name.as_str()), ("a", "c", "x/blobs/y"));
    }

    #[test]
    fn a_listing_reads_names_and_properties_unescaped() {
        let xml = "<?xml version=\"1.0\"?><EnumerationResults><Blobs><Blob><Name>a &amp; b&#x2F;c.txt</Name><Properties><Content-Length>5</Content-Length><Content-Type>text/plain</Content-Type><Content-MD5>XUFAKrxLKna5cZ2REBfFkg==</Content-MD5></Properties></Blob><Blob><Name>z</Name><Properties><Content-Length>0</Content-Length><Content-MD5 /></Properties></Blob></Blobs><NextMarker>bQ==</NextMarker></EnumerationResults>";
        let blobs: Vec<&str> = elements(xml, "Blob").collect();
        assert_eq!(blobs.len(), 2);
        assert_eq!(element(blobs[0], "Name").as_deref(), Some("a & b/c.txt"));
        assert_eq!(element(blobs[0], "Content-MD5").as_deref(), Some("XUFAKrxLKna5cZ2REBfFkg=="));
        assert_eq!(element(blobs[1], "Content-MD5"), None);
        assert_eq!(element(xml, "NextMarker").as_deref(), Some("bQ=="));
        assert_eq!(unescape("&lt;&#60;&bogus; &"), "<<&bogus; &");
    }
}
