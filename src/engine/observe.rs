//! Observe: read what Azure holds for every declaration (one GET each, a level of the graph
//! at a time, in parallel), record what each exports, and find what the plan owns but no
//! longer declares. Also `--target` selection.
//!
//! Imports: kinds, plan, arm, resolve, the engine's shared types.

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use serde_json::{Value, json};

use super::context::Context;
use super::secrets;
use crate::arm::{Client, Error};
use crate::kinds::env::{Desired, OWNER_TAG, Plane};
use crate::plan::{self, Observed, owned_by};
use crate::resolve::Validated;

/// The declarations `--target` selects: the named ones plus what they depend on, or (for
/// destroy) plus what depends on them.
///
/// # Errors
/// A name the plan does not declare, with the closest one.
pub fn targets(plan: &Validated, names: &[String], destroy: bool) -> Result<Option<HashSet<usize>>, String> {
    if names.is_empty() {
        return Ok(None);
    }
    let edges = plan.dag.edges();
    let mut set = HashSet::new();
    let mut stack = Vec::new();
    for n in names {
        let Some(i) = plan.decls.iter().position(|d| d.logical.value == *n) else {
            let hint = crate::model::diag::suggest(n, plan.decls.iter().map(|d| d.logical.value.as_str()))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(format!("--target `{n}`: the plan declares no such resource{hint}"));
        };
        stack.push(i);
    }
    while let Some(i) = stack.pop() {
        if set.insert(i) {
            for &(a, b) in &edges {
                if destroy && a == i {
                    stack.push(b);
                }
                if !destroy && b == i {
                    stack.push(a);
                }
            }
        }
    }
    Ok(Some(set))
}

/// The error of a secret that exists but cannot be read to compare it.
const SECRET_UNREADABLE: &str = "SecretUnreadable";

/// Attribute name → JSON pointer, for every ARM kind.
const EXPORTS: &[(&str, &str)] = &[
    ("name", "/name"),
    ("location", "/location"),
    ("principal_id", "/properties/principalId"),
    ("client_id", "/properties/clientId"),
    ("tenant_id", "/properties/tenantId"),
    ("identity", "/identity/principalId"),
    ("identity.principal_id", "/identity/principalId"),
    ("identity.tenant_id", "/identity/tenantId"),
    ("ip_address", "/properties/ipAddress"),
    ("computer_name", "/properties/osProfile/computerName"),
    ("blob_endpoint", "/properties/primaryEndpoints/blob"),
    ("uri", "/properties/vaultUri"),
    ("uri", "/properties/secretUri"),
    ("dfs_endpoint", "/properties/primaryEndpoints/dfs"),
    ("fqdn", "/properties/fullyQualifiedDomainName"),
    ("endpoint", "/properties/endpoint"),
];

/// What Azure holds for a desired resource: through ARM, or through the data plane of its
/// [`Plane`]. `base_dir` is the plan's directory (data-plane reads may compare against files
/// or secrets next to the plan).
///
/// # Errors
/// A read failed for another reason than absence.
pub async fn read(client: &Client, want: &Desired, base_dir: &std::path::Path) -> Result<Option<Value>, Error> {
    use crate::arm::keyvault;
    match want.plane {
        Plane::Arm => {
            let got = client.get(&want.id, want.api_version).await?;
            if got.is_some() || !want.soft_delete {
                return Ok(got);
            }
            let location = want.body.get("location").and_then(Value::as_str).unwrap_or_default();
            let deleted = keyvault::get_deleted_vault(client, &want.id, location).await?;
            Ok(deleted.map(|d| {
                let mut m = soft_deleted(d.pointer("/properties/tags"));
                // Where it was: it can be recovered only there.
                m["vaultId"] = d.pointer("/properties/vaultId").cloned().unwrap_or(Value::Null);
                m
            }))
        }
        Plane::Blob => crate::arm::blob::head(client, &want.id).await,
        Plane::DataLake => crate::arm::datalake::read(client, &want.id).await,
        Plane::Secret => read_secret(client, want, base_dir).await,
        Plane::AccessPolicy => {
            let tenant = want.body.pointer("/properties/tenantId").and_then(Value::as_str).unwrap_or_default();
            keyvault::get_policy(client, &want.id, tenant).await
        }
    }
}

/// The observed body of a soft-deleted object.
fn soft_deleted(tags: Option<&Value>) -> Value {
    json!({ plan::SOFT_DELETED: true, "tags": tags.cloned().unwrap_or(Value::Null) })
}

/// A secret as the planner sees it: its value only as [`SENSITIVE`] (it is the wanted one)
/// or [`DIFFERENT`], compared in memory with the plan's source. A generated secret that
/// exists is the wanted one: it is never replaced.
async fn read_secret(client: &Client, want: &Desired, base_dir: &std::path::Path) -> Result<Option<Value>, Error> {
    use crate::arm::keyvault::{self, SecretState};
    use crate::kinds::key_vault::{DIFFERENT, SENSITIVE};
    let state = match keyvault::get_secret(client, &want.id).await {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(None),
        // Not being able to compare is not "absent": a create would overwrite the value.
        Err(e) if e.status == Some(403) => {
            return Err(Error::new(
                SECRET_UNREADABLE,
                format!(
                    "{} cannot be read to compare it ({}): the deploying principal needs secret get and list on its vault. A vault the plan creates grants them through its `:creator` access policy: apply that first (`--target <vault>:creator`), or grant them yourself.",
                    want.id, e.message
                ),
            ));
        }
        Err(e) => return Err(e),
    };
    let (value, bundle) = match state {
        SecretState::Deleted(b) => return Ok(Some(soft_deleted(b.get("tags")))),
        SecretState::Live { value, bundle } => (value, bundle),
    };
    let same = match want.secrets.first() {
        None | Some((_, crate::model::Secret::Generate(_))) => true,
        Some((_, source)) => {
            let wanted = secrets::resolve(source, base_dir).map_err(|e| Error::new("SecretUnavailable", e.0))?;
            secrets::same(&wanted, &value)
        }
    };
    let id = bundle.get("id").and_then(Value::as_str).unwrap_or_default();
    let (uri, version) = id.rsplit_once('/').unwrap_or((id, ""));
    let mut b = json!({
        "value": if same { SENSITIVE } else { DIFFERENT },
        "tags": bundle.get("tags").cloned().unwrap_or(json!({})),
        "version": version,
        "properties": { "secretUri": uri },
    });
    if let Some(ct) = bundle.get("contentType") {
        b["contentType"] = ct.clone();
    }
    Ok(Some(b))
}

/// Record what a resource exports.
pub fn record(values: &mut HashMap<(String, String), String>, logical: &str, id: &str, body: Option<&Value>) {
    values.insert((logical.to_string(), "id".to_string()), id.to_string());
    if let Some(b) = body {
        if let Some(t) = b.get("tags") {
            values.insert((logical.to_string(), "tags".to_string()), t.to_string());
        }
        for (attr, ptr) in EXPORTS {
            if let Some(v) = b.pointer(ptr).and_then(Value::as_str) {
                values.insert((logical.to_string(), (*attr).to_string()), v.to_string());
            }
        }
    }
}

/// Record what declaration `i` exports: the attributes of its body ([`record`]), then those
/// its kind derives from values recorded before (a blob container's `url`).
pub fn record_decl(
    cx: &Context,
    plan: &Validated,
    i: usize,
    values: &mut HashMap<(String, String), String>,
    id: &str,
    body: Option<&Value>,
) {
    let d = &plan.decls[i];
    // Found by what it holds under another name (a custom role made by hand): what refers to
    // it refers to the one Azure holds.
    let held = body.and_then(|b| b.get("id")).and_then(Value::as_str).filter(|_| d.spec.matched_by_content());
    record(values, &d.logical.value, held.unwrap_or(id), body);
    let derived = d.spec.derived(&cx.env(plan, &d.logical.value, values));
    for (attr, v) in derived {
        values.insert((d.logical.value.clone(), attr.to_string()), v);
    }
}

/// Read every declared resource (one GET each, a level of the graph at a time, in
/// parallel) and list what the plan owns but no longer declares.
///
/// # Errors
/// A read failed for another reason than absence.
pub async fn observe(cx: &Context, plan: &Validated) -> Result<Observed, Error> {
    let n = plan.decls.len();
    let order = plan.dag.topo_order().unwrap_or_else(|| (0..n).collect());
    let mut level = vec![0usize; n];
    for &i in &order {
        level[i] = plan.dag.dependencies(i).iter().map(|&d| level[d] + 1).max().unwrap_or(0);
    }
    let max_level = level.iter().copied().max().unwrap_or(0);
    let needed: Option<HashSet<usize>> = cx.only.as_ref().map(|only| {
        let mut set = only.clone();
        let mut stack: Vec<usize> = only.iter().copied().collect();
        while let Some(i) = stack.pop() {
            for d in plan.dag.dependencies(i) {
                if set.insert(d) {
                    stack.push(d);
                }
            }
        }
        set
    });
    let mut values: HashMap<(String, String), String> = HashMap::new();
    let mut desired: Vec<Option<Desired>> = vec![None; n];
    let mut bodies: Vec<Option<Value>> = vec![None; n];
    let mut unread: Vec<usize> = Vec::new();
    // ARM resources read and absent: nothing inside them can exist (a fresh fleet's groups),
    // so what they would hold is not read.
    let mut absent: Vec<String> = Vec::new();
    for l in 0..=max_level {
        let members: Vec<usize> = order.iter().copied().filter(|&i| level[i] == l).collect();
        let mut reads = Vec::new();
        for &i in &members {
            let d = &plan.decls[i];
            let want = d.spec.desired(&cx.env(plan, &d.logical.value, &values));
            // With `--target`, only the selection and what it depends on (for ids and values)
            // are read.
            let selected = needed.as_ref().is_none_or(|o| o.contains(&i));
            if let Some(w) = &want
                && w.is_known()
                && selected
                && !inside(&absent, w)
            {
                reads.push((i, w.clone()));
            }
            desired[i] = want;
        }
        let client = &cx.client;
        let got: Vec<(usize, Result<Option<Value>, Error>)> = futures::stream::iter(reads)
            .map(|(i, w)| async move { (i, read(client, &w, &plan.base_dir).await) })
            .buffer_unordered(cx.parallelism.max(1))
            .collect()
            .await;
        for (i, r) in got {
            if let (Ok(None), Some(w)) = (&r, &desired[i])
                && w.plane == Plane::Arm
            {
                absent.push(w.id.clone());
            }
            bodies[i] = match r {
                Ok(b) => b,
                Err(e) if refused_for_now(plan, &desired, &bodies, &unread, i, &e) => {
                    unread.push(i);
                    None
                }
                Err(e) => return Err(e),
            };
        }
        // An object Azure holds under another name than the plan's (a role assignment made by
        // hand, or adopted from one) is found by what it holds.
        {
            for &i in &members {
                let d = &plan.decls[i];
                let Some(w) = desired[i].as_ref().filter(|w| w.is_known() && w.plane == Plane::Arm) else { continue };
                let selected = needed.as_ref().is_none_or(|o| o.contains(&i));
                // Inside something absent (its own id is in `absent` now: read and not there).
                let in_absent =
                    absent.iter().any(|a| !a.eq_ignore_ascii_case(&w.id) && crate::arm::id::is_scope_prefix(a, &w.id));
                if bodies[i].is_none() && selected && d.spec.matched_by_content() && !in_absent {
                    bodies[i] = super::plane::arm::find_same(&cx.client, &w.id, w.api_version, &w.body).await?;
                }
            }
        }
        // Globally named resources that do not exist here yet: is the name free in Azure?
        for &i in &members {
            let unread = needed.as_ref().is_some_and(|o| !o.contains(&i));
            if !cx.check_names || unread || bodies[i].is_some() || desired[i].as_ref().is_none_or(|w| !w.is_known()) {
                continue;
            }
            let d = &plan.decls[i];
            if let Some(check) = d.spec.name_check(&cx.env(plan, &d.logical.value, &values)) {
                let answer = cx.client.post(&check.path, check.api_version, &check.body).await?;
                if let Some((reason, message)) = crate::kinds::env::NameCheck::refusal(&answer) {
                    return Err(Error::new(
                        "NameNotAvailable",
                        format!(
                            "{} ({}): the name `{}` cannot be used ({reason}): {message} The name is global across Azure: choose another.",
                            d.logical.value,
                            d.kind.type_name(),
                            check.name
                        ),
                    ));
                }
            }
        }
        for &i in &members {
            if let Some(w) = &desired[i] {
                record_decl(cx, plan, i, &mut values, &w.id, bodies[i].as_ref());
            }
        }
    }
    // Orphans and drift are about the whole plan: not looked for with `--target`.
    let mut not_looked_for = Vec::new();
    let (orphans, foreign_access) = if cx.only.is_some() {
        (Vec::new(), Vec::new())
    } else {
        find_orphans(cx, plan, &desired, &bodies, &mut not_looked_for).await?
    };
    let mut obs = Observed {
        desired,
        bodies,
        values,
        orphans,
        foreign_access,
        unread,
        not_looked_for,
        referenced: HashMap::new(),
        contents: HashMap::new(),
    };
    if cx.destroy {
        teardown_reads(cx, plan, &mut obs).await?;
    }
    Ok(obs)
}

/// Destroy: what a teardown needs besides the declarations' own bodies, read here so that
/// planning stays pure ([`plan::teardown`], [`plan::kept_by`]): the bodies of what the
/// observed resources and the orphans refer to (a VM's interfaces; an interface's public IPs,
/// security group and virtual network), level by level, and what each declared container
/// (a resource group) holds.
async fn teardown_reads(cx: &Context, plan: &Validated, obs: &mut Observed) -> Result<(), Error> {
    let declared: HashSet<String> = obs.desired.iter().flatten().map(|d| d.id.to_ascii_lowercase()).collect();
    let mut next: Vec<String> = Vec::new();
    for (i, d) in plan.decls.iter().enumerate() {
        let Some(have) = obs.bodies[i].as_ref().filter(|b| !plan::is_soft_deleted(b)) else { continue };
        next.extend(d.spec.implicit(have).into_iter().map(|c| c.id));
        // What it was made with if made by hand: a superset, read in case it is adopted.
        if let Some(r) = d.kind.references().filter(|r| r.reads(true)) {
            next.extend(r.made_with(have, true).into_iter().map(|c| c.id));
        }
        if d.spec.contains_resources() {
            let id = have.get("id").and_then(Value::as_str).unwrap_or_default();
            let list = cx.client.list(&format!("{id}/resources"), "2024-11-01").await?;
            let held = list
                .iter()
                .filter_map(|r| Some((r.get("id")?.as_str()?.to_string(), r.get("type")?.as_str()?.to_string())))
                .collect();
            obs.contents.insert(i, held);
        }
    }
    next.extend(obs.orphans.iter().filter(|(_, t)| crate::kinds::implicit_of_listed(t).is_some()).map(|o| o.0.clone()));
    // A VM, its interfaces, what they name: three levels at most.
    for _ in 0..3 {
        let mut found = Vec::new();
        for id in std::mem::take(&mut next) {
            let key = id.to_ascii_lowercase();
            if declared.contains(&key) || obs.referenced.contains_key(&key) {
                continue;
            }
            let Some((api, refs)) = plan::arm_type_of(&id).and_then(|t| crate::kinds::references_of(&t)) else {
                continue;
            };
            let Some(body) = cx.client.get(&id, api).await? else { continue };
            if refs.reads(true) {
                found.extend(refs.made_with(&body, true).into_iter().map(|c| c.id));
            }
            obs.referenced.insert(key, body);
        }
        next = found;
    }
    Ok(())
}

/// Whether `w` is an ARM resource inside one read as absent (a soft-deleted object can
/// outlive its container: those are always read).
fn inside(absent: &[String], w: &Desired) -> bool {
    w.plane == Plane::Arm && !w.soft_delete && absent.iter().any(|a| crate::arm::id::is_scope_prefix(a, &w.id))
}

/// Whether a data-plane read refused (403) only because a declaration it depends on is
/// not in place yet (absent, or not as declared): the access that declaration grants (a
/// vault's `:creator` access policy, a data role for the deploying principal) is what an
/// interrupted apply may have left out, or someone took away. Such a read is not an error:
/// the object counts as absent for the plan, and apply reads it again once what it depends
/// on is in place (so a secret that exists is compared, never overwritten blindly).
fn refused_for_now(
    plan: &Validated,
    desired: &[Option<Desired>],
    bodies: &[Option<Value>],
    unread: &[usize],
    i: usize,
    e: &Error,
) -> bool {
    let refused = e.status == Some(403) || e.code == SECRET_UNREADABLE;
    let data_plane = desired[i].as_ref().is_some_and(|d| d.plane != Plane::Arm);
    refused
        && data_plane
        && plan.dag.dependencies(i).into_iter().any(|d| {
            let Some(w) = &desired[d] else { return false };
            let decl = &plan.decls[d];
            unread.contains(&d)
                || plan::decide(&decl.logical.value, decl.kind.type_name(), &plan.name, w, bodies[d].as_ref()).action
                    != plan::ActionKind::NoOp
        })
}

/// A subscription-wide listing the caller may not read (403: an identity granted one resource
/// group, as a pipeline's often is) leaves `what` not looked for, said in the plan; any other
/// error stands.
fn listed(r: Result<Vec<Value>, Error>, what: &str, not_looked_for: &mut Vec<String>) -> Result<Vec<Value>, Error> {
    match r {
        Err(e) if e.status == Some(403) => {
            not_looked_for.push(format!(
                "{what}: listing them at subscription scope was refused ({}); Reader on the subscription lets idlab find them",
                e.code
            ));
            Ok(Vec::new())
        }
        r => r,
    }
}

/// Resources and assignments carrying this plan's mark that it does not declare.
#[allow(clippy::type_complexity)]
async fn find_orphans(
    cx: &Context,
    plan: &Validated,
    desired: &[Option<Desired>],
    bodies: &[Option<Value>],
    not_looked_for: &mut Vec<String>,
) -> Result<(Vec<(String, String)>, Vec<(String, String)>), Error> {
    let mut declared: HashSet<String> = desired.iter().flatten().map(|d| d.id.to_ascii_lowercase()).collect();
    // What a declaration matched under another name (a role assignment adopted from one made
    // by hand) is declared too.
    declared.extend(bodies.iter().flatten().filter_map(|b| b.get("id")?.as_str()).map(str::to_ascii_lowercase));
    let sub = &cx.subscription;
    let filter = format!("$filter=tagName%20eq%20'{OWNER_TAG}'%20and%20tagValue%20eq%20'{}'", url_encode(&plan.name));
    let mut found: Vec<(String, String)> = Vec::new();
    for g in cx.client.list(&format!("/subscriptions/{sub}/resourcegroups?{filter}"), "2024-11-01").await? {
        if let Some(id) = g.get("id").and_then(Value::as_str) {
            found.push((id.to_string(), "Microsoft.Resources/resourceGroups".into()));
        }
    }
    for r in cx.client.list(&format!("/subscriptions/{sub}/resources?{filter}"), "2024-11-01").await? {
        if let (Some(id), Some(t)) = (r.get("id").and_then(Value::as_str), r.get("type").and_then(Value::as_str)) {
            found.push((id.to_string(), t.to_string()));
        }
    }
    let prefix = format!("idlab plan {}", plan.name);
    // Custom roles the plan made (its mark in their description) and no longer declares: a
    // renamed role, or the last one taken out of the plan. Role definitions carry no tags, so
    // this is one listing of the subscription's custom roles whatever the plan declares.
    let custom = format!(
        "/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions?$filter=type%20eq%20'CustomRole'"
    );
    let what = "custom roles this plan made and no longer declares";
    for d in listed(cx.client.list(&custom, "2022-04-01").await, what, not_looked_for)? {
        let desc = d.pointer("/properties/description").and_then(Value::as_str).unwrap_or_default();
        if let Some(id) = d.get("id").and_then(Value::as_str)
            && (desc == prefix || desc.starts_with(&format!("{prefix}:")))
        {
            found.push((id.to_string(), "Microsoft.Authorization/roleDefinitions".into()));
        }
    }
    // Scopes the plan owns (they carry its tag).
    let owned_scopes: Vec<String> = desired
        .iter()
        .zip(bodies)
        .filter_map(|(d, b)| Some((d.as_ref()?, b.as_ref()?)))
        .filter(|(d, b)| d.owner.pointer().is_some() && owned_by(b, &plan.name, d.owner))
        .map(|(d, _)| d.id.clone())
        .collect();
    let mut foreign = Vec::new();
    let all = format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments");
    let assignments = cx.client.list(&all, "2022-04-01");
    let what = "role assignments this plan made and no longer declares, and access added outside it";
    for a in listed(assignments.await, what, not_looked_for)? {
        let desc = a.pointer("/properties/description").and_then(Value::as_str).unwrap_or_default();
        let Some(id) = a.get("id").and_then(Value::as_str) else { continue };
        if desc == prefix || desc.starts_with(&format!("{prefix}:")) {
            found.push((id.to_string(), "Microsoft.Authorization/roleAssignments".into()));
            continue;
        }
        let scope = a.pointer("/properties/scope").and_then(Value::as_str).unwrap_or_default();
        if !declared.contains(&id.to_ascii_lowercase())
            && owned_scopes.iter().any(|o| crate::arm::id::is_scope_prefix(o, scope))
        {
            let guid = a
                .pointer("/properties/roleDefinitionId")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            let role = crate::roles::by_guid(&guid).map_or(guid, |r| r.name.to_string());
            let who = a.pointer("/properties/principalId").and_then(Value::as_str).unwrap_or_default();
            foreign.push((id.to_string(), format!("{role} for principal {who} at {scope}, added outside this plan")));
        }
    }
    found.retain(|(id, _)| !declared.contains(&id.to_ascii_lowercase()));
    found.sort();
    found.dedup();
    Ok((found, foreign))
}

fn url_encode(s: &str) -> String {
    crate::arm::percent_encode(s, b"")
}
