//! Every idlab environment in a subscription, from tags alone (`idlab list`), and taking the
//! expired ones down without their plan files (`idlab sweep`).
//!
//! Discovery is two paged listings by tag (`$filter=tagName eq 'idlab-plan'`): resource groups
//! and resources; no per-resource reads. Sweeping one environment follows destroy's safety
//! rules: only what carries its mark is deleted — role assignments and custom roles found by
//! their description marker (`idlab plan NAME`), the resource groups tagged with it, and its
//! tagged resources outside those groups. Soft-deleted vaults stay soft-deleted unless
//! `purge`.
//!
//! Imports: arm, kinds (the tag names, api-versions). No printing.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::arm::{Client, Error};
use crate::kinds::env::{APPLIED_BY_TAG, CREATED_TAG, EXPIRES_TAG, INSTANCE_TAG, OWNER_TAG};

const GROUPS_API: &str = "2024-11-01";
const RESOURCES_API: &str = "2024-11-01";
const AUTHORIZATION_API: &str = "2022-04-01";
const GROUP_TYPE: &str = "Microsoft.Resources/resourceGroups";
const VAULT_TYPE: &str = "Microsoft.KeyVault/vaults";
const VAULT_API: &str = "2024-11-01";

/// One idlab environment: everything carrying one `idlab-plan` value.
#[derive(Debug, Clone, Serialize)]
pub struct Environment {
    /// The `idlab-plan` tag (`<plan>-<instance>` for an instance).
    pub plan: String,
    pub instance: Option<String>,
    /// The earliest `idlab-created`.
    pub created: Option<String>,
    /// The earliest `idlab-expires`.
    pub expires: Option<String>,
    pub applied_by: Option<String>,
    /// Every resource and group carrying the tag.
    pub resources: usize,
    /// The resource groups it owns (ids).
    #[serde(skip)]
    pub groups: Vec<String>,
    /// Its tagged resources outside those groups: (id, type, location).
    #[serde(skip)]
    pub outside: Vec<(String, String, String)>,
    /// Its vaults (name, location), to purge after the delete with `--purge`.
    #[serde(skip)]
    pub vaults: Vec<(String, String)>,
}

fn tag(v: &Value, name: &str) -> Option<String> {
    v.get("tags")?.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))?.1.as_str().map(str::to_string)
}

fn earliest(a: &mut Option<String>, b: Option<String>) {
    if let Some(b) = b
        && a.as_ref().is_none_or(|x| b < *x)
    {
        *a = Some(b);
    }
}

/// Every environment in the subscription, by plan tag, from two paged listings.
///
/// # Errors
/// A listing failed.
pub async fn list(client: &Client, sub: &str) -> Result<Vec<Environment>, Error> {
    let filter = format!("$filter=tagName%20eq%20'{OWNER_TAG}'");
    let groups = client.list(&format!("/subscriptions/{sub}/resourcegroups?{filter}"), GROUPS_API).await?;
    let resources = client.list(&format!("/subscriptions/{sub}/resources?{filter}"), RESOURCES_API).await?;
    let mut envs: BTreeMap<String, Environment> = BTreeMap::new();
    let entry = |envs: &mut BTreeMap<String, Environment>, plan: &str| {
        envs.entry(plan.to_string())
            .or_insert_with(|| Environment {
                plan: plan.to_string(),
                instance: None,
                created: None,
                expires: None,
                applied_by: None,
                resources: 0,
                groups: Vec::new(),
                outside: Vec::new(),
                vaults: Vec::new(),
            })
            .plan
            .clone()
    };
    let mut group_ids: Vec<(String, String)> = Vec::new();
    for (v, is_group) in groups.iter().map(|g| (g, true)).chain(resources.iter().map(|r| (r, false))) {
        let (Some(plan), Some(id)) = (tag(v, OWNER_TAG), v.get("id").and_then(Value::as_str)) else { continue };
        let key = entry(&mut envs, &plan);
        let Some(e) = envs.get_mut(&key) else { continue };
        e.resources += 1;
        earliest(&mut e.created, tag(v, CREATED_TAG));
        earliest(&mut e.expires, tag(v, EXPIRES_TAG));
        if e.applied_by.is_none() {
            e.applied_by = tag(v, APPLIED_BY_TAG);
        }
        if e.instance.is_none() {
            e.instance = tag(v, INSTANCE_TAG);
        }
        let t = v.get("type").and_then(Value::as_str).unwrap_or_default();
        let location = v.get("location").and_then(Value::as_str).unwrap_or_default().to_string();
        if is_group || t.eq_ignore_ascii_case(GROUP_TYPE) {
            e.groups.push(id.to_string());
            group_ids.push((plan.clone(), format!("{}/", id.to_ascii_lowercase())));
        } else {
            if t.eq_ignore_ascii_case(VAULT_TYPE) {
                e.vaults
                    .push((v.get("name").and_then(Value::as_str).unwrap_or_default().to_string(), location.clone()));
            }
            e.outside.push((id.to_string(), t.to_string(), location));
        }
    }
    // Resources inside a group the environment owns go with the group.
    for e in envs.values_mut() {
        let mine: Vec<&String> = group_ids.iter().filter(|(p, _)| *p == e.plan).map(|(_, g)| g).collect();
        e.outside.retain(|(id, _, _)| !mine.iter().any(|g| id.to_ascii_lowercase().starts_with(g.as_str())));
    }
    Ok(envs.into_values().collect())
}

/// What sweeping one environment deletes, in order: (id, api-version).
#[derive(Debug, Clone, Default)]
pub struct Teardown {
    pub assignments: Vec<String>,
    pub groups: Vec<String>,
    pub resources: Vec<(String, &'static str)>,
    pub custom_roles: Vec<String>,
    /// Groups left in place, with why: they hold resources without the environment's mark.
    pub kept: Vec<(String, String)>,
}

/// The role assignments and custom roles of the environment `plan`, by their description
/// marker (one listing each for the subscription).
///
/// # Errors
/// A listing failed.
pub async fn marked(client: &Client, sub: &str, plan: &str) -> Result<(Vec<String>, Vec<String>), Error> {
    let prefix = format!("idlab plan {plan}");
    let is_mine = |v: &Value| {
        let d = v.pointer("/properties/description").and_then(Value::as_str).unwrap_or_default();
        d == prefix || d.starts_with(&format!("{prefix}:"))
    };
    let id = |v: &Value| v.get("id").and_then(Value::as_str).map(str::to_string);
    let assignments = client
        .list(&format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments"), AUTHORIZATION_API)
        .await?;
    let roles = client
        .list(
            &format!(
                "/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions?$filter=type%20eq%20'CustomRole'"
            ),
            AUTHORIZATION_API,
        )
        .await?;
    Ok((
        assignments.iter().filter(|a| is_mine(a)).filter_map(id).collect(),
        roles.iter().filter(|r| is_mine(r)).filter_map(id).collect(),
    ))
}

/// The teardown of `e`: its marked assignments, groups, resources outside them, custom roles.
///
/// # Errors
/// A listing failed.
pub async fn teardown(client: &Client, sub: &str, e: &Environment) -> Result<Teardown, Error> {
    let (assignments, custom_roles) = marked(client, sub, &e.plan).await?;
    // Destroy's rule: a group holding what the environment does not own is kept.
    let mut groups = Vec::new();
    let mut kept = Vec::new();
    for g in &e.groups {
        let inside = client.list(&format!("{g}/resources"), RESOURCES_API).await?;
        let own = |r: &Value| tag(r, OWNER_TAG).as_deref() == Some(e.plan.as_str());
        // What Azure made with the environment's own resources (a VM's OS disk) is the
        // environment's too: read from their bodies.
        let mut made = Vec::new();
        for r in inside.iter().filter(|r| own(r)) {
            let (Some(id), Some(t)) = (r.get("id").and_then(Value::as_str), r.get("type").and_then(Value::as_str))
            else {
                continue;
            };
            if let Some((api, children)) = crate::kinds::implicit_of_listed(t)
                && let Some(body) = client.get(id, api).await?
            {
                made.extend(children(&body).into_iter().map(|c| c.id.to_ascii_lowercase()));
            }
        }
        let made_for_own =
            |r: &Value| r.get("id").and_then(Value::as_str).is_some_and(|i| made.contains(&i.to_ascii_lowercase()));
        let foreign: Vec<&str> = inside
            .iter()
            .filter(|r| !own(r) && !made_for_own(r))
            .filter_map(|r| r.get("name").and_then(Value::as_str))
            .collect();
        if foreign.is_empty() {
            groups.push(g.clone());
        } else {
            kept.push((g.clone(), format!("it holds resources the environment does not own: {}", foreign.join(", "))));
        }
    }
    Ok(Teardown {
        assignments,
        kept,
        groups,
        resources: e.outside.iter().map(|(id, t, _)| (id.clone(), crate::kinds::api_version_of_arm_type(t))).collect(),
        custom_roles,
    })
}

/// Delete what `t` lists, in order; every failure is collected, the rest still goes. Then,
/// with `purge`, purge the environment's soft-deleted vaults.
pub async fn sweep(client: &Client, sub: &str, e: &Environment, t: &Teardown, purge: bool) -> Vec<String> {
    let mut failures = Vec::new();
    let del = async |id: &str, api: &str, failures: &mut Vec<String>| {
        if let Err(err) = client.delete(id, api).await {
            failures.push(format!("{id}: {err}"));
        }
    };
    for a in &t.assignments {
        del(a, AUTHORIZATION_API, &mut failures).await;
    }
    for g in &t.groups {
        del(g, GROUPS_API, &mut failures).await;
    }
    for (r, api) in &t.resources {
        del(r, api, &mut failures).await;
    }
    for r in &t.custom_roles {
        del(r, AUTHORIZATION_API, &mut failures).await;
    }
    if purge {
        for (name, location) in &e.vaults {
            let path = format!(
                "/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{name}/purge"
            );
            if let Err(err) = client.post_wait(&path, VAULT_API).await {
                failures.push(format!("purging vault {name}: {err}"));
            }
        }
    }
    failures
}
