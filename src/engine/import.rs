//! `idlab import`, the reads: each resource group, the resources its listing holds (a GET of
//! each one of a kind idlab has, at that kind's api-version), what those kinds find inside
//! them (a vault's secrets through its data plane: names, never values), and the role
//! assignments at the groups and below. The plan is written from this by the pure
//! [`crate::import::write`].
//!
//! Imports: arm, kinds, import (its input type). No printing.

use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::Value;

use crate::arm::keyvault::{DATA_API, VAULT_SCOPE};
use crate::arm::{Client, Error};
use crate::import::{Found, Input};
use crate::kinds::{self, import::Read};

const GROUPS_API: &str = "2024-11-01";
const RESOURCES_API: &str = "2024-11-01";
const AUTHORIZATION_API: &str = "2022-04-01";
const GROUP_TYPE: &str = "Microsoft.Resources/resourceGroups";
const DEFINITION_TYPE: &str = "Microsoft.Authorization/roleDefinitions";
const STORAGE_API: &str = "2025-06-01";
const GEN1_API: &str = "2016-11-01";

/// Read the groups named in `groups` (in subscription `sub`) for the plan `plan_name`; with
/// `files`, the content of the blobs too (the plan is written with files next to it).
///
/// # Errors
/// A group that does not exist (named), or a read that failed.
pub async fn read(
    client: &Client,
    sub: &str,
    caller: Option<&str>,
    groups: &[String],
    plan_name: &str,
    parallelism: usize,
    files: bool,
) -> Result<Input, Error> {
    let mut input = Input {
        plan_name: plan_name.to_string(),
        subscription: sub.to_string(),
        groups: Vec::new(),
        caller: caller.map(str::to_string),
        files,
        ..Input::default()
    };
    let mut group_ids = Vec::new();
    for name in groups {
        if input.groups.iter().any(|g: &String| g.eq_ignore_ascii_case(name)) {
            continue;
        }
        let path = format!("/subscriptions/{sub}/resourceGroups/{}", crate::arm::percent_encode(name, b""));
        let Some(body) = client.get(&path, GROUPS_API).await? else {
            return Err(Error::new(
                "ResourceGroupNotFound",
                format!("resource group `{name}` does not exist in subscription {sub}"),
            ));
        };
        let id = body.get("id").and_then(Value::as_str).unwrap_or(&path).to_string();
        input.groups.push(body.get("name").and_then(Value::as_str).unwrap_or(name).to_string());
        group_ids.push(id.clone());
        input.found.push(Found { id, arm_type: GROUP_TYPE.into(), body, kind: kinds::by_arm_type(GROUP_TYPE) });
    }
    // What each group holds: the listing, then a GET of each resource of a kind idlab has.
    let mut listed: Vec<(String, String, Value)> = Vec::new();
    for g in &group_ids {
        for r in client.list(&format!("{g}/resources"), RESOURCES_API).await? {
            let (Some(id), Some(t)) = (r.get("id").and_then(Value::as_str), r.get("type").and_then(Value::as_str))
            else {
                continue;
            };
            listed.push((id.to_string(), t.to_string(), r.clone()));
        }
    }
    let reads = listed.into_iter().map(|(id, t, entry)| async move {
        let kind = kinds::by_arm_type(&t);
        let body = match kind {
            Some(k) => client.get(&id, k.api_version()).await?,
            None => Some(entry),
        };
        Ok::<_, Error>(body.map(|body| Found { id, arm_type: t, body, kind }))
    });
    let got: Vec<Result<Option<Found>, Error>> =
        futures::stream::iter(reads).buffered(parallelism.max(1)).collect().await;
    for f in got {
        // Gone between the listing and the read: nothing to import.
        if let Some(f) = f? {
            input.found.push(f);
        }
    }
    // What the kinds find inside what was read.
    let mut more = Vec::new();
    let mut folder_reads = Vec::new();
    let mut blob_reads = Vec::new();
    for f in &input.found {
        let Some(k) = f.kind else { continue };
        for r in k.import_children(&f.id, &f.body).reads {
            match r {
                Read::Secrets { vault, uri, kind } => match secrets(client, &uri).await {
                    Ok(items) => more.extend(items.into_iter().filter_map(|s| {
                        let name = s.get("id").and_then(Value::as_str)?.rsplit('/').next()?.to_string();
                        Some(Found { id: format!("{vault}/secrets/{name}"), arm_type: "secret".into(), body: s, kind: kinds::by_type(kind) })
                    })),
                    Err(e) if matches!(e.status, Some(401 | 403)) => input.notes.push(format!(
                        "the secrets of vault {}: listing them was refused ({}); the caller needs secret list permission",
                        vault.rsplit('/').next().unwrap_or_default(),
                        e.code
                    )),
                    Err(e) => return Err(e),
                },
                Read::Get { id, kind } => {
                    let read = |x: &Found| x.id.eq_ignore_ascii_case(&id);
                    if input.found.iter().any(read) || more.iter().any(read) {
                        continue;
                    }
                    let Some(k) = kinds::by_type(kind) else { continue };
                    match client.get(&id, k.api_version()).await {
                        Ok(Some(body)) => {
                            let t = k.arm_type().unwrap_or_default().to_string();
                            more.push(Found { id, arm_type: t, body, kind: Some(k) });
                        }
                        Ok(None) => {}
                        Err(e) if e.status == Some(403) => input.notes.push(format!("{id}: reading it was refused ({})", e.code)),
                        Err(e) => return Err(e),
                    }
                }
                Read::Folders { store, gen2, kind } => folder_reads.push((store, gen2, kind)),
                Read::Blobs { container, kind } => blob_reads.push((container, kind)),
                Read::Arm { path, api, kind } => {
                    let api = kinds::by_type(kind).map_or(api, |k| k.api_version());
                    for item in client.list(&path, api).await? {
                        let Some(id) = item.get("id").and_then(Value::as_str) else { continue };
                        let Some(body) = client.get(id, api).await? else { continue };
                        let t = body.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
                        more.push(Found { id: id.to_string(), arm_type: t, body, kind: kinds::by_type(kind) });
                    }
                }
            }
        }
    }
    let before = input.found.len();
    input.found.extend(more);
    // The blobs of the containers found inside accounts.
    for f in &input.found[before..] {
        let Some(k) = f.kind else { continue };
        for r in k.import_children(&f.id, &f.body).reads {
            if let Read::Blobs { container, kind } = r {
                blob_reads.push((container, kind));
            }
        }
    }
    for (container, kind) in blob_reads {
        blobs(client, &mut input, &container, kind).await?;
    }
    // Data Lake folders with their ACLs: a Gen2 account's through each of its file systems
    // (the containers read above).
    for (store, gen2, kind) in folder_reads {
        let roots: Vec<String> = if gen2 {
            let prefix = format!("{}/blobservices/default/containers/", store.to_ascii_lowercase());
            input
                .found
                .iter()
                .filter(|f| f.id.to_ascii_lowercase().starts_with(&prefix))
                .map(|f| f.id.clone())
                .collect()
        } else {
            vec![store.clone()]
        };
        for root in roots {
            let paths = match if gen2 {
                gen2_folders(client, &store, &root).await
            } else {
                gen1_folders(client, &root).await
            } {
                Ok(p) => p,
                Err(e) if matches!(e.status, Some(401 | 403)) => {
                    input.notes.push(format!(
                        "the folders of {}: listing them was refused ({}); their ACLs were not read",
                        root.rsplit('/').next().unwrap_or_default(),
                        e.code
                    ));
                    continue;
                }
                Err(e) => return Err(e),
            };
            for path in paths {
                let id = crate::arm::datalake::folder_id(&root, &path);
                let Some(body) = crate::arm::datalake::read(client, &id).await? else { continue };
                if body.get("acl").and_then(Value::as_object).is_some_and(|m| !m.is_empty()) {
                    input.found.push(Found { id, arm_type: "folder".into(), body, kind: kinds::by_type(kind) });
                }
            }
        }
    }
    // Role assignments at the groups and at what they hold.
    let all = format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments");
    match client.list(&all, AUTHORIZATION_API).await {
        Ok(list) => {
            input.assignments = list
                .into_iter()
                .filter(|a| {
                    let scope = a.pointer("/properties/scope").and_then(Value::as_str).unwrap_or_default();
                    group_ids.iter().any(|g| crate::arm::id::is_scope_prefix(g, scope))
                })
                .collect();
        }
        Err(e) if e.status == Some(403) => input.notes.push(format!(
            "role assignments: listing them at subscription scope was refused ({}); Reader on the subscription lets idlab find them",
            e.code
        )),
        Err(e) => return Err(e),
    }
    // The custom roles they name.
    let mut custom: Vec<String> = input
        .assignments
        .iter()
        .filter_map(|a| a.pointer("/properties/roleDefinitionId").and_then(Value::as_str))
        .filter(|d| crate::roles::by_guid(d.rsplit('/').next().unwrap_or_default()).is_none())
        .map(str::to_string)
        .collect();
    custom.sort_by_key(|d| d.to_ascii_lowercase());
    custom.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    for d in custom {
        let kind = kinds::by_arm_type(DEFINITION_TYPE);
        if let Some(body) = client.get(&d, AUTHORIZATION_API).await? {
            let id = body.get("id").and_then(Value::as_str).unwrap_or(&d).to_string();
            input.found.push(Found { id, arm_type: DEFINITION_TYPE.into(), body, kind });
        }
    }
    Ok(input)
}

/// How many blobs of a container import reads at most.
const MAX_BLOBS: usize = 1000;

/// The blobs of `container` (an id) as objects of the kind `kind`, with their content when
/// the import writes files. A Data Lake file system's files are not blobs to a plan: noted,
/// not read. A refused listing is noted.
async fn blobs(client: &Client, input: &mut Input, container: &str, kind: &'static str) -> Result<(), Error> {
    let shown = container.rsplit('/').next().unwrap_or_default().to_string();
    let account = container.split_once("/blobServices/").map_or(container, |(a, _)| a);
    let hns = input.found.iter().any(|f| {
        f.id.eq_ignore_ascii_case(account)
            && f.body.pointer("/properties/isHnsEnabled").and_then(Value::as_bool) == Some(true)
    });
    if hns {
        input
            .notes
            .push(format!("the files of Data Lake file system {shown}: a plan declares its folders, not its files"));
        return Ok(());
    }
    let read = async {
        let Some(plane) = crate::arm::blob::Container::open(client, container).await? else { return Ok(None) };
        Ok::<_, Error>(plane.list(client, MAX_BLOBS + 1).await?.map(|l| (plane, l)))
    };
    let (plane, listed) = match read.await {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(()),
        Err(e) if matches!(e.status, Some(401 | 403)) => {
            input.notes.push(format!("the blobs of container {shown}: listing them was refused ({})", e.code));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if listed.len() > MAX_BLOBS {
        input.notes.push(format!("the blobs of container {shown} after the first {MAX_BLOBS}"));
    }
    for b in listed.into_iter().take(MAX_BLOBS) {
        let id = format!("{container}/blobs/{}", b.name);
        if input.files && b.size <= crate::kinds::import::MAX_BLOB_BYTES {
            let Some(content) = plane.download(client, &b.name).await? else { continue };
            input.contents.insert(id.to_ascii_lowercase(), content);
        }
        let body = serde_json::json!({
            "name": b.name,
            "properties": { "contentType": b.content_type, "contentMd5": b.content_md5, "contentLength": b.size },
        });
        input.found.push(Found { id, arm_type: kind.into(), body, kind: kinds::by_type(kind) });
    }
    Ok(())
}

/// Every secret of a vault (names, content types, tags), every page.
async fn secrets(client: &Client, uri: &str) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    let mut url = format!("{}/secrets", uri.trim_end_matches('/'));
    let mut api = Some(DATA_API);
    for _ in 0..1000 {
        let r = client.send_scoped(VAULT_SCOPE, Method::GET, &url, api, None, &[]).await?;
        if r.status != 200 {
            return Err(Client::error(&Method::GET, &url, &r));
        }
        out.extend(r.body.get("value").and_then(Value::as_array).into_iter().flatten().cloned());
        match r.body.get("nextLink").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => {
                url = n.to_string();
                api = None;
            }
            _ => break,
        }
    }
    Ok(out)
}

/// How many folders of a store import reads at most.
const MAX_FOLDERS: usize = 1000;

/// The directories of a Gen2 file system (`container`, a container id of `account`): `/`,
/// then every directory of its recursive listing (`GET {dfs}/{fs}?resource=filesystem`).
async fn gen2_folders(client: &Client, account: &str, container: &str) -> Result<Vec<String>, Error> {
    let mut out = vec!["/".to_string()];
    let Some(body) = client.get(account, STORAGE_API).await? else { return Ok(out) };
    let Some(endpoint) = body.pointer("/properties/primaryEndpoints/dfs").and_then(Value::as_str) else {
        return Ok(out);
    };
    let fs = container.rsplit('/').next().unwrap_or_default();
    let url = format!("{}/{}", endpoint.trim_end_matches('/'), crate::arm::percent_encode(fs, b""));
    let token = client.credential().token(crate::arm::dfs::SCOPE).await?.value;
    let mut query = "resource=filesystem&recursive=true".to_string();
    loop {
        let a =
            crate::arm::dfs::call(client, Method::GET, &url, &query, &[], &token, Vec::new(), Duration::ZERO).await?;
        if a.status == 404 {
            break;
        }
        let listed: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
        for p in listed.get("paths").and_then(Value::as_array).into_iter().flatten() {
            let dir = p.get("isDirectory").is_some_and(|d| d.as_str() == Some("true") || d.as_bool() == Some(true));
            if dir && let Some(name) = p.get("name").and_then(Value::as_str) {
                out.push(format!("/{}", name.trim_start_matches('/')));
            }
        }
        match a.header("x-ms-continuation").filter(|c| !c.is_empty()) {
            Some(c) if out.len() < MAX_FOLDERS => {
                query =
                    format!("resource=filesystem&recursive=true&continuation={}", crate::arm::percent_encode(c, b""));
            }
            _ => break,
        }
    }
    out.truncate(MAX_FOLDERS);
    Ok(out)
}

/// The directories of a Gen1 store (`account`, its id): `/`, then each directory
/// `LISTSTATUS` finds, breadth first.
async fn gen1_folders(client: &Client, account: &str) -> Result<Vec<String>, Error> {
    let mut out = vec!["/".to_string()];
    let Some(body) = client.get(account, GEN1_API).await? else { return Ok(out) };
    let Some(endpoint) = body.pointer("/properties/endpoint").and_then(Value::as_str) else { return Ok(out) };
    let token = client.credential().token(crate::arm::datalake::SCOPE).await?.value;
    let mut next = 0;
    while next < out.len() && out.len() < MAX_FOLDERS {
        let dir = out[next].clone();
        next += 1;
        let url = format!("https://{endpoint}/webhdfs/v1{}?op=LISTSTATUS", crate::arm::percent_encode(&dir, b"/"));
        let r = client
            .request(Method::GET, &url)
            .bearer(&token)
            .private_url()
            .attempts(5)
            .send()
            .await
            .map_err(|e| Error::new("ConnectionFailed", format!("GET {url}: {}", e.message)))?;
        if r.status == 404 {
            continue;
        }
        let listed = r.json();
        if r.status >= 400 {
            let mut e = Error::new(
                listed.pointer("/RemoteException/exception").and_then(Value::as_str).unwrap_or("WebHdfsError"),
                format!("LISTSTATUS {dir} answered {}", r.status),
            );
            e.status = Some(r.status);
            return Err(e);
        }
        for st in listed.pointer("/FileStatuses/FileStatus").and_then(Value::as_array).into_iter().flatten() {
            if st.get("type").and_then(Value::as_str) == Some("DIRECTORY")
                && let Some(name) = st.get("pathSuffix").and_then(Value::as_str)
            {
                out.push(if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") });
            }
        }
    }
    out.truncate(MAX_FOLDERS);
    Ok(out)
}
