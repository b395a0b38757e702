//! The engine: reads what ARM holds (`observe`), asks `plan` for the diff, and converges
//! (`apply`) or tears down (`destroy`) by walking the graph with bounded parallelism —
//! ready resources start longest-remaining-critical-path first, a failure skips its
//! dependents while independent branches finish. Only the engine, `arm` and `verify` do I/O.
//!
//! Imports: graph, plan, kinds, arm, resolve. Reports through [`Reporter`]; never prints.

pub mod secrets;
pub mod walk;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::arm::{Client, Error};
use crate::kinds::env::{Desired, Env, OWNER_TAG, Owner, Plane};
use crate::plan::{self, Action, ActionKind, Plan};
use crate::resolve::Validated;

/// What the engine tells the user about, as it happens.
pub trait Reporter: Send + Sync {
    fn event(&self, e: Event);
}

/// One progress event.
#[derive(Debug, Clone)]
pub enum Event {
    Started { name: String, kind: String, action: ActionKind },
    Finished { name: String, outcome: Outcome },
    Note(String),
}

/// How one resource ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Created(String),
    Updated(String),
    Replaced(String),
    Deleted(String),
    Adopted(String),
    /// A soft-deleted object brought back.
    Recovered(String),
    /// Deleted and purged (destroy with `--purge`): it cannot be recovered.
    Purged(String),
    Unchanged,
    /// Left in place on purpose (destroy), with why.
    Kept(String),
    Failed(Error),
    Skipped(String),
}

/// Where an apply or destroy runs, and as whom.
pub struct Context {
    pub client: Client,
    pub subscription: String,
    pub tenant_id: Option<String>,
    pub caller_object_id: Option<String>,
    pub parallelism: usize,
    /// Take over resources that exist without the plan's tag.
    pub adopt: bool,
    /// Destroy: delete what the plan does not own too.
    pub force: bool,
    /// `--target`: only these declarations (with what they need, or for destroy what needs
    /// them); `None` for all.
    pub only: Option<HashSet<usize>>,
    /// Start ready nodes in declaration order instead of longest-remaining-path first
    /// (benches compare the two).
    pub fifo: bool,
    /// How long `PrincipalNotFound` for an identity this plan just created is retried.
    pub principal_wait: std::time::Duration,
    /// Plan and apply (not destroy): check that globally named resources that do not exist
    /// yet have a free name.
    pub check_names: bool,
    /// `--purge`: soft-deleted copies (key vaults, secrets) are purged instead of recovered,
    /// and destroy purges what it deletes.
    pub purge: bool,
}

/// Set on Ctrl-C (or `--timeout`): walkers start nothing new, let in-flight calls finish.
pub static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the run was interrupted.
pub fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

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

/// What was read from ARM for a plan.
pub struct Observed {
    /// Per declaration: its desired state (`None` for kinds served in later versions).
    pub desired: Vec<Option<Desired>>,
    /// Per declaration: what ARM holds.
    pub bodies: Vec<Option<Value>>,
    /// (logical, attribute) → value.
    pub values: HashMap<(String, String), String>,
    /// Ids ARM holds with this plan's ownership mark that the plan no longer declares.
    pub orphans: Vec<(String, String)>,
    /// Role assignments added out of band on scopes the plan owns: (id, what).
    pub foreign_access: Vec<(String, String)>,
}

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
                "SecretUnreadable",
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
    record(values, &d.logical.value, id, body);
    let derived = d.spec.derived(&cx.env(plan, &d.logical.value, values));
    for (attr, v) in derived {
        values.insert((d.logical.value.clone(), attr.to_string()), v);
    }
}

impl Context {
    pub fn env<'a>(
        &'a self,
        plan: &'a Validated,
        logical: &'a str,
        values: &'a HashMap<(String, String), String>,
    ) -> Env<'a> {
        Env {
            subscription: &self.subscription,
            plan: &plan.name,
            location: &plan.location,
            logical,
            values,
            caller_object_id: self.caller_object_id.as_deref(),
            tenant_id: self.tenant_id.as_deref(),
            base_dir: &plan.base_dir,
        }
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
            bodies[i] = r?;
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
    let (orphans, foreign_access) =
        if cx.only.is_some() { (Vec::new(), Vec::new()) } else { find_orphans(cx, plan, &desired, &bodies).await? };
    Ok(Observed { desired, bodies, values, orphans, foreign_access })
}

/// Resources and assignments carrying this plan's mark that it does not declare.
#[allow(clippy::type_complexity)]
async fn find_orphans(
    cx: &Context,
    plan: &Validated,
    desired: &[Option<Desired>],
    bodies: &[Option<Value>],
) -> Result<(Vec<(String, String)>, Vec<(String, String)>), Error> {
    let declared: HashSet<String> = desired.iter().flatten().map(|d| d.id.to_ascii_lowercase()).collect();
    let sub = &cx.subscription;
    let filter = format!("$filter=tagName%20eq%20'{OWNER_TAG}'%20and%20tagValue%20eq%20'{}'", url_encode(&plan.name));
    let mut found: Vec<(String, String)> = Vec::new();
    for g in cx.client.list(&format!("/subscriptions/{sub}/resourcegroups?{filter}"), "2024-11-01").await? {
        if let Some(id) = g.get("id").and_then(Value::as_str) {
            found.push((id.to_string(), "Microsoft.Resources/resourceGroups".into()));
        }
    }
    for r in cx.client.list(&format!("/subscriptions/{sub}/resources?{filter}"), "2021-04-01").await? {
        if let (Some(id), Some(t)) = (r.get("id").and_then(Value::as_str), r.get("type").and_then(Value::as_str)) {
            found.push((id.to_string(), t.to_string()));
        }
    }
    let prefix = format!("idlab plan {}", plan.name);
    // Scopes the plan owns (they carry its tag).
    let owned_scopes: Vec<String> = desired
        .iter()
        .zip(bodies)
        .filter_map(|(d, b)| Some((d.as_ref()?, b.as_ref()?)))
        .filter(|(d, b)| d.owner.pointer().is_some() && owned_by(b, &plan.name, d.owner))
        .map(|(d, _)| d.id.clone())
        .collect();
    let mut foreign = Vec::new();
    for a in cx
        .client
        .list(&format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments"), "2022-04-01")
        .await?
    {
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

/// The kind name shown for an ARM type.
pub fn kind_of_type(t: &str) -> String {
    crate::kinds::KINDS
        .iter()
        .find(|k| k.arm_type().is_some_and(|a| a.eq_ignore_ascii_case(t)))
        .map_or_else(|| t.to_string(), |k| k.type_name().to_string())
}

/// The plan for what was observed.
pub fn make_plan(cx: &Context, plan: &Validated, obs: &Observed, destroy: bool) -> Plan {
    let mut actions = Vec::new();
    let order: Vec<usize> = plan
        .dag
        .topo_order()
        .unwrap_or_else(|| (0..plan.decls.len()).collect())
        .into_iter()
        .filter(|i| cx.only.as_ref().is_none_or(|o| o.contains(i)))
        .collect();
    if destroy {
        for &i in order.iter().rev() {
            let d = &plan.decls[i];
            let (Some(w), Some(have)) = (&obs.desired[i], &obs.bodies[i]) else { continue };
            let owned = owned(&plan.name, &obs.desired, &obs.bodies, i);
            let (action, reason) = destroy_action(cx, w, have, owned);
            actions.push(Action {
                name: d.logical.value.clone(),
                kind: d.kind.type_name().into(),
                id: w.id.clone(),
                action,
                changes: Vec::new(),
                reason,
            });
        }
    } else {
        for &i in &order {
            let d = &plan.decls[i];
            let Some(w) = &obs.desired[i] else { continue };
            let mut a = plan::decide(&d.logical.value, d.kind.type_name(), &plan.name, w, obs.bodies[i].as_ref());
            if cx.purge {
                plan::purge_instead(&mut a);
            }
            actions.push(a);
        }
    }
    if cx.only.is_none() {
        for (id, t) in &obs.orphans {
            actions.push(plan::orphan(id, &kind_of_type(t)));
        }
    }
    let mut p = Plan::new(&plan.name, &cx.subscription, destroy, actions);
    p.drift =
        obs.foreign_access.iter().map(|(id, what)| plan::Drift { id: id.clone(), detail: what.clone() }).collect();
    p.not_applied = plan
        .decls
        .iter()
        .zip(&obs.desired)
        .filter(|(_, d)| d.is_none())
        .map(|(d, _)| format!("{} ({})", d.logical.value, d.kind.type_name()))
        .collect();
    p
}

/// What destroy does with one observed resource, and why when it is not a plain delete.
pub fn destroy_action(cx: &Context, w: &Desired, have: &Value, owned: bool) -> (ActionKind, Option<String>) {
    if !owned && !cx.force {
        return (ActionKind::NoOp, Some(not_owned_reason(w.owner)));
    }
    match (plan::is_soft_deleted(have), w.soft_delete && cx.purge) {
        (true, true) => (ActionKind::Purge, Some("already soft-deleted: --purge purges it".into())),
        (true, false) => (ActionKind::NoOp, Some("already soft-deleted (--purge purges it)".into())),
        (false, true) => (ActionKind::Purge, Some("deleted, then purged: it cannot be recovered".into())),
        (false, false) if w.soft_delete => (
            ActionKind::Delete,
            Some("soft-deleted: recoverable until its retention ends (--purge purges it now)".into()),
        ),
        (false, false) => (ActionKind::Delete, None),
    }
}

/// Why destroy keeps a resource the plan does not own.
pub fn not_owned_reason(owner: Owner) -> String {
    let mark = match owner {
        Owner::Parent => "its parent has no idlab-plan tag",
        Owner::Metadata => "no idlab_plan metadata",
        Owner::Description => "no idlab plan description",
        Owner::Tag => "no idlab-plan tag",
    };
    format!("not owned by this plan ({mark}); use --force to delete it anyway")
}

/// Whether ARM's body says this plan owns the resource. [`Owner::Parent`] has no mark in
/// the body: see [`owned`].
pub fn owned_by(have: &Value, plan_name: &str, owner: Owner) -> bool {
    if let Some(mark) = owner.pointer() {
        have.pointer(&mark).and_then(Value::as_str) == Some(plan_name)
    } else if owner == Owner::Parent {
        false
    } else {
        let d = have.pointer("/properties/description").and_then(Value::as_str).unwrap_or_default();
        d == format!("idlab plan {plan_name}") || d.starts_with(&format!("idlab plan {plan_name}:"))
    }
}

/// The declaration whose resource is the nearest parent of declaration `i`'s (its id extends
/// the parent's by `/type/name` pairs).
pub fn parent_of(desired: &[Option<Desired>], i: usize) -> Option<usize> {
    let me = desired.get(i)?.as_ref()?.id.to_ascii_lowercase();
    desired
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .filter_map(|(j, d)| Some((j, d.as_ref()?.id.to_ascii_lowercase())))
        .filter(|(_, p)| me.len() > p.len() && me.starts_with(p.as_str()) && me.as_bytes()[p.len()] == b'/')
        .max_by_key(|(_, p)| p.len())
        .map(|(j, _)| j)
}

/// Whether what ARM holds for declaration `i` is the plan's: its own mark, or for
/// [`Owner::Parent`] its parent's.
pub fn owned(plan_name: &str, desired: &[Option<Desired>], bodies: &[Option<Value>], i: usize) -> bool {
    let (Some(Some(w)), Some(Some(have))) = (desired.get(i), bodies.get(i)) else { return false };
    if w.owner != Owner::Parent {
        return owned_by(have, plan_name, w.owner);
    }
    parent_of(desired, i).is_some_and(|p| owned(plan_name, desired, bodies, p))
}

/// The body a VM update PATCHes: the fields that can change in place.
pub fn vm_patch(body: &Value, observed: Option<&Value>) -> Value {
    let mut p = json!({ "tags": body.get("tags"), "identity": body.get("identity"), "properties": { "hardwareProfile": body.pointer("/properties/hardwareProfile") } });
    // Identities that are no longer wanted are removed one by one (`{id: null}`).
    if let (Some(want), Some(have)) = (
        body.pointer("/identity/userAssignedIdentities").and_then(Value::as_object),
        observed.and_then(|o| o.pointer("/identity/userAssignedIdentities")).and_then(Value::as_object),
    ) {
        let mut m = want.clone();
        for k in have.keys() {
            if !want.keys().any(|w| w.eq_ignore_ascii_case(k)) {
                m.insert(k.clone(), Value::Null);
            }
        }
        p["identity"]["userAssignedIdentities"] = Value::Object(m);
    }
    p
}

/// Shared by the walkers: the engine's view while applying.
pub struct Shared<'a> {
    pub cx: &'a Context,
    pub plan: &'a Validated,
    pub reporter: Arc<dyn Reporter>,
}

/// The part of an observed body the plan manages: the observed values at the desired
/// body's paths (so ETags, timestamps and provisioning states never count).
pub fn managed_projection(want: &Value, have: Option<&Value>) -> Value {
    match (want, have) {
        (_, None) => Value::Null,
        (Value::Object(w), Some(h)) => {
            if w.contains_key("userAssignedIdentities") || w.is_empty() {
                return h.clone();
            }
            Value::Object(
                w.iter()
                    .map(|(k, v)| {
                        // Tags compare as a whole, so tags added out of band count.
                        let p = if k == "tags" {
                            h.get(k).cloned().unwrap_or(Value::Null)
                        } else {
                            managed_projection(v, h.get(k))
                        };
                        (k.clone(), p)
                    })
                    .collect(),
            )
        }
        (Value::Array(w), Some(Value::Array(h))) => Value::Array(
            w.iter()
                .zip(h.iter().map(Some).chain(std::iter::repeat(None)))
                .map(|(v, x)| managed_projection(v, x))
                .collect(),
        ),
        (_, Some(h)) => h.clone(),
    }
}

/// A fingerprint of every observed resource's managed fields, and of the orphan set.
pub fn fingerprints(obs: &Observed) -> std::collections::BTreeMap<String, String> {
    use sha2::{Digest, Sha256};
    let mut out = std::collections::BTreeMap::new();
    for (d, b) in obs.desired.iter().zip(obs.bodies.iter()) {
        let Some(d) = d else { continue };
        let projected = managed_projection(&d.body, b.as_ref());
        let hash: String =
            Sha256::digest(projected.to_string().as_bytes()).iter().map(|x| format!("{x:02x}")).collect();
        out.insert(d.id.to_ascii_lowercase(), hash);
    }
    for (id, _) in &obs.orphans {
        out.insert(id.to_ascii_lowercase(), "orphan".into());
    }
    out
}
