//! `idlab import`, the reads: each resource group, the resources its listing holds (a GET of
//! each one of a kind idlab has, at that kind's api-version), what those kinds find inside
//! them (a vault's secrets through its data plane: names, never values), and the role
//! assignments at the groups and below. The plan is written from this by the pure
//! [`crate::import::write`].
//!
//! Imports: arm, kinds, import (its input type). No printing.

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

/// Read the groups named in `groups` (in subscription `sub`) for the plan `plan_name`.
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
) -> Result<Input, Error> {
    let mut input = Input {
        plan_name: plan_name.to_string(),
        subscription: sub.to_string(),
        groups: Vec::new(),
        caller: caller.map(str::to_string),
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
    input.found.extend(more);
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
