//! The plan: what apply would do, as plain data. Pure — it diffs what it is given (desired
//! bodies from the kinds, observed bodies from `engine::observe`); rendering lives in `ui`.
//! It owns all pure planning: the per-resource decision, the whole plan ([`make`], from a
//! plain [`Options`], never a client), destroy's actions and ownership rules, fingerprints
//! and the saved-plan staleness checks.
//!
//! Imports: kinds, graph, model. No I/O.
//!
//! Only the fields a plan manages are compared (server-filled fields never show as
//! changes); ids and locations compare case-insensitively as ARM does; `tags` and a VM's
//! set of user-assigned identities compare as whole values, so out-of-band additions show.
//! Arrays are sets: scalars match in any order, objects with a `name` by name. A kind names
//! the fields Azure answers its own way (`Desired::lenient`: a default left out, an enum in
//! its own case) and the fields it wants absent (`Desired::cleared`). Recorded Azure bodies
//! judge all of this (`tests/it/real_bodies.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::graph::Dag;
use crate::kinds::Decl;

mod destroy;
mod implicit;
mod lifecycle;
mod saved;
use crate::kinds::env::{Desired, LIFECYCLE_TAGS, OWNER_METADATA, OWNER_TAG, Owner, UNKNOWN};
pub use destroy::{deletes, destroy_action, foreign_mark, not_owned_reason, owned, owned_by, parent_of};
use destroy::{id_of, mark_of};
use implicit::teardown_child;
pub use implicit::{Gone, ImplicitChild, Teardown, arm_type_of, implicit_of, kept_by, kept_reason, teardown};
pub use lifecycle::{Stamp, carry_stamp, stamp};
pub use saved::{Saved, sha256};

/// Version of the plan JSON (`plan --format json`, `--out`).
pub const FORMAT_VERSION: u32 = 1;

/// What happens to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Create,
    Update,
    Replace,
    Delete,
    /// Exists without this plan's tag: taken over only with `--adopt`.
    Adopt,
    /// Owned by another plan: refused.
    Conflict,
    NoOp,
    /// A soft-deleted copy exists (key vaults, secrets): apply recovers it.
    Recover,
    /// Apply with `--purge`: purge the soft-deleted copy, then create. Destroy with
    /// `--purge`: delete, then purge.
    Purge,
    /// Destroy with `--adopt`: it matches a declaration but carries no mark of this plan (made
    /// by hand): taken over and deleted, nothing written to it first (`<=-`).
    AdoptDelete,
}

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// `/`-separated path inside the body, e.g. `tags/env`.
    pub path: String,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

/// The action for one logical resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub action: ActionKind,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Counts for the summary line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub adopt: usize,
    pub conflict: usize,
    pub no_op: usize,
    #[serde(default)]
    pub recover: usize,
    #[serde(default)]
    pub purge: usize,
    #[serde(default)]
    pub adopt_delete: usize,
}

/// A whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub plan: String,
    pub subscription: String,
    pub destroy: bool,
    pub actions: Vec<Action>,
    pub summary: Summary,
    /// Changes made outside the plan that apply leaves alone but users should see
    /// (role assignments added on scopes the plan owns).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Drift>,
    /// Declared resources this version of idlab does not apply yet (`name (type)`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_applied: Vec<String>,
    /// What this plan could not look for, and why (a listing the caller may not read, such as
    /// role assignments at subscription scope for an identity scoped to one group).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_looked_for: Vec<String>,
    /// Destroy: what Azure made on its own with the resources destroy deletes (a VM's OS
    /// disk, a NIC's IP configurations), and what becomes of each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub implicit: Vec<ImplicitChild>,
    /// Made with `--adopt`: adoptions are what the run does, not what it refuses.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    /// Destroy without `--adopt`: resources that match a declaration but carry no mark of
    /// this plan (`name (type) id`), which `destroy --adopt` deletes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untagged: Vec<String>,
    /// Destroy with `--force`: what else the declared resource groups hold (`type name`),
    /// neither matched nor made with what destroy deletes, which goes with its group. (Without
    /// `--force` such a group is kept, its action's reason naming them.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elsewhere: Vec<String>,
}

/// A change made outside the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub id: String,
    pub detail: String,
}

impl Plan {
    pub fn new(plan: &str, subscription: &str, destroy: bool, actions: Vec<Action>) -> Plan {
        let mut s = Summary::default();
        for a in &actions {
            match a.action {
                ActionKind::Create => s.create += 1,
                ActionKind::Update => s.update += 1,
                ActionKind::Replace => s.replace += 1,
                ActionKind::Delete => s.delete += 1,
                ActionKind::Adopt => s.adopt += 1,
                ActionKind::Conflict => s.conflict += 1,
                ActionKind::NoOp => s.no_op += 1,
                ActionKind::Recover => s.recover += 1,
                ActionKind::Purge => s.purge += 1,
                ActionKind::AdoptDelete => s.adopt_delete += 1,
            }
        }
        Plan {
            format_version: FORMAT_VERSION,
            plan: plan.into(),
            subscription: subscription.into(),
            destroy,
            actions,
            summary: s,
            drift: Vec::new(),
            not_applied: Vec::new(),
            not_looked_for: Vec::new(),
            implicit: Vec::new(),
            adopt: false,
            untagged: Vec::new(),
            elsewhere: Vec::new(),
        }
    }

    /// Whether applying would change anything.
    pub fn has_changes(&self) -> bool {
        self.actions.iter().any(|a| a.action != ActionKind::NoOp)
    }
}

fn looks_like_id_or_location(path: &str, s: &str) -> bool {
    s.starts_with("/subscriptions/") || path == "location" || path.ends_with("/location")
}

fn norm_location(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect()
}

fn same_scalar(path: &str, want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::String(w), Value::String(h)) => {
            w == h
                || (looks_like_id_or_location(path, w)
                    && (w.eq_ignore_ascii_case(h) || norm_location(w) == norm_location(h)))
        }
        (Value::Number(w), Value::Number(h)) => w.as_f64() == h.as_f64(),
        (Value::Number(w), Value::String(h)) | (Value::String(h), Value::Number(w)) => {
            h.parse::<f64>().ok() == w.as_f64()
        }
        _ => want == have,
    }
}

fn key_set(v: Option<&Value>) -> Vec<String> {
    let mut k: Vec<String> =
        v.and_then(Value::as_object).map(|m| m.keys().map(|x| x.to_ascii_lowercase()).collect()).unwrap_or_default();
    k.sort();
    k
}

/// The `name` of an array element, for elements matched by name.
fn name_of(v: &Value) -> Option<&str> {
    v.get("name").and_then(Value::as_str).filter(|n| *n != UNKNOWN)
}

/// Field-level differences between what the plan wants and what ARM holds, over the
/// wanted fields only.
pub fn diff(path: &str, want: &Value, have: Option<&Value>, out: &mut Vec<FieldChange>) {
    let change = |out: &mut Vec<FieldChange>| {
        out.push(FieldChange {
            path: path.trim_start_matches('/').to_string(),
            old: have.cloned(),
            new: Some(want.clone()),
        })
    };
    match want {
        Value::Object(w) => {
            let whole = path.ends_with("userAssignedIdentities") || path == "/tags";
            if whole {
                let same = if path == "/tags" {
                    have.and_then(Value::as_object)
                        .is_some_and(|h| h.len() == w.len() && w.iter().all(|(k, v)| h.get(k) == Some(v)))
                } else {
                    key_set(Some(want)) == key_set(have)
                };
                if !same {
                    change(out);
                }
                return;
            }
            for (k, v) in w {
                diff(&format!("{path}/{k}"), v, have.and_then(|h| h.get(k)), out);
            }
        }
        Value::Array(w) => match have.and_then(Value::as_array) {
            // Sets: Azure may answer them in another order. Scalars (address prefixes,
            // actions, audiences) match as a multiset; named objects (rules, subnets) by name.
            Some(h) if h.len() == w.len() && w.iter().all(|v| !v.is_object() && !v.is_array()) => {
                let mut free: Vec<&Value> = h.iter().collect();
                let all = w.iter().all(|v| match free.iter().position(|x| same_scalar(path, v, x)) {
                    Some(i) => {
                        free.swap_remove(i);
                        true
                    }
                    None => false,
                });
                // Another set: shown element by element, as wanted.
                if !all {
                    for (i, v) in w.iter().enumerate() {
                        diff(&format!("{path}/{i}"), v, h.get(i), out);
                    }
                }
            }
            Some(h) if h.len() == w.len() && w.iter().all(|v| name_of(v).is_some()) => {
                for (i, v) in w.iter().enumerate() {
                    let same =
                        h.iter().find(|x| name_of(x).zip(name_of(v)).is_some_and(|(a, b)| a.eq_ignore_ascii_case(b)));
                    diff(&format!("{path}/{i}"), v, same.or_else(|| h.get(i)), out);
                }
            }
            Some(h) if h.len() == w.len() => {
                for (i, v) in w.iter().enumerate() {
                    diff(&format!("{path}/{i}"), v, h.get(i), out);
                }
            }
            _ => change(out),
        },
        Value::String(s) if s == UNKNOWN => {
            if have.is_none() {
                change(out);
            }
        }
        _ => match have {
            Some(h) if same_scalar(path.trim_start_matches('/'), want, h) => {}
            _ => change(out),
        },
    }
}

/// The key of the body the engine observes for a soft-deleted object (with its `tags`).
pub const SOFT_DELETED: &str = "_idlab_soft_deleted";

/// Whether an observed body stands for a soft-deleted object.
pub fn is_soft_deleted(have: &Value) -> bool {
    have.get(SOFT_DELETED).and_then(Value::as_bool) == Some(true)
}

/// How the reason of a soft-deleted vault of another group begins.
const SOFT_DELETED_ELSEWHERE: &str = "a soft-deleted vault with this name belongs to";

/// Whether a refusal is for a soft-deleted vault of another group (which `--purge` clears).
pub fn is_soft_deleted_elsewhere(a: &Action) -> bool {
    a.action == ActionKind::Conflict && a.reason.as_deref().is_some_and(|r| r.starts_with(SOFT_DELETED_ELSEWHERE))
}

/// `--purge` on apply: a soft-deleted copy (here or in another group) is purged and the
/// object created anew.
pub fn purge_instead(a: &mut Action) {
    if a.action == ActionKind::Recover || is_soft_deleted_elsewhere(a) {
        a.action = ActionKind::Purge;
        a.reason = Some(format!(
            "a soft-deleted {} with this name exists: --purge purges it (it cannot be recovered after), then creates a new one",
            a.kind
        ));
    }
}

/// The reason of an adoption apply makes without `--adopt`: an object matched by what it
/// holds under another name (a role assignment of the same scope, principal and role) is the
/// plan's by construction; apply puts the plan's mark on it (design: `RoleAssignmentExists`
/// is adopted, not an error).
const SAME_CONTENT: &str = "the same (scope, principal, role) exists under another name without an idlab plan description: apply adopts it and puts the plan's description on it";

/// Whether an adoption needs no `--adopt`: what was found by content under another name.
pub fn adopts_without_flag(a: &Action) -> bool {
    a.action == ActionKind::Adopt && a.reason.as_deref() == Some(SAME_CONTENT)
}

/// Decide the action for one resource.
pub fn decide(name: &str, kind: &str, plan_name: &str, desired: &Desired, observed: Option<&Value>) -> Action {
    let mut changes = Vec::new();
    diff("", &desired.body, observed, &mut changes);
    if let Some(have) = observed {
        for p in &desired.cleared {
            let held = have.pointer(&format!("/{p}")).filter(|v| !v.is_null());
            if let Some(v) = held {
                changes.push(FieldChange { path: (*p).to_string(), old: Some(v.clone()), new: None });
            }
        }
    }
    if observed.is_some() {
        // What Azure answers in its own way (defaults left out, enums in its case).
        changes.retain(|c| {
            !desired
                .lenient
                .iter()
                .any(|(p, rule)| *p == c.path && c.new.as_ref().is_some_and(|w| rule.same(w, c.old.as_ref())))
        });
    }
    let mut a = Action {
        name: name.into(),
        kind: kind.into(),
        id: desired.id.clone(),
        action: ActionKind::NoOp,
        changes,
        reason: None,
    };
    let Some(have) = observed else {
        a.action = ActionKind::Create;
        return a;
    };
    if is_soft_deleted(have) {
        a.changes.clear();
        let elsewhere = have.get("vaultId").and_then(Value::as_str).filter(|v| !v.eq_ignore_ascii_case(&desired.id));
        if let Some(other) = elsewhere {
            // It can be recovered only where it was: refused, unless --purge.
            a.action = ActionKind::Conflict;
            a.reason = Some(format!(
                "{SOFT_DELETED_ELSEWHERE} {other}: it can be recovered only there; --purge purges it and creates this one, or choose another name"
            ));
            return a;
        }
        a.action = ActionKind::Recover;
        a.reason = Some(format!(
            "a soft-deleted {kind} with this name exists: apply recovers it (with --purge: purges it and creates a new one)"
        ));
        return a;
    }
    if let Some(id) = have.get("id").and_then(Value::as_str) {
        a.id = id.to_string();
    }
    if let Some(mark) = desired.owner.pointer() {
        match have.pointer(&mark).and_then(Value::as_str) {
            None => {
                a.action = ActionKind::Adopt;
                let what = if desired.owner == Owner::Tag {
                    format!("the {OWNER_TAG} tag")
                } else {
                    format!("the {OWNER_METADATA} metadata")
                };
                a.reason = Some(format!("it exists without {what}; apply takes it over only with --adopt"));
                return a;
            }
            Some(owner) if owner != plan_name => {
                a.action = ActionKind::Conflict;
                a.reason = Some(format!("it belongs to plan `{owner}`"));
                return a;
            }
            Some(_) => {}
        }
    } else if desired.owner == Owner::Description && !owned_by(have, plan_name, Owner::Description) {
        // A role assignment or custom role made outside the plan (by hand, or found under
        // another name): taken over only with --adopt, unless another plan's.
        let d = have.pointer("/properties/description").and_then(Value::as_str).unwrap_or_default();
        if let Some(other) = d.strip_prefix("idlab plan ") {
            a.action = ActionKind::Conflict;
            a.reason = Some(format!("it belongs to plan `{}`", other.split(':').next().unwrap_or(other)));
        } else {
            a.action = ActionKind::Adopt;
            // Under another name: found by what it holds. A role assignment's triple is the
            // whole grant, so taking it over changes nothing but its description; a custom
            // role found by its role name may allow other things: only with --adopt.
            let elsewhere =
                have.get("id").and_then(Value::as_str).is_some_and(|id| !id.eq_ignore_ascii_case(&desired.id));
            let whole_grant = desired.body.pointer("/properties/principalId").is_some();
            a.reason = Some(match (elsewhere, whole_grant) {
                (true, true) => SAME_CONTENT.into(),
                (true, false) => "the same role name exists under another id without an idlab plan description; apply takes it over only with --adopt".into(),
                _ => "it exists without an idlab plan description; apply takes it over only with --adopt".into(),
            });
        }
        return a;
    }
    if a.changes.is_empty() {
        return a;
    }
    let immutable = a.changes.iter().find_map(|c| {
        desired
            .immutable
            .iter()
            .find(|(p, _)| c.path == *p || c.path.starts_with(&format!("{p}/")))
            .map(|(_, why)| *why)
    });
    match immutable {
        Some(why) => {
            a.action = ActionKind::Replace;
            a.reason = Some(why.to_string());
        }
        None => a.action = ActionKind::Update,
    }
    a
}

/// A resource ARM holds with this plan's tag that the plan no longer declares.
pub fn orphan(id: &str, kind: &str) -> Action {
    let name = id.rsplit('/').next().unwrap_or(id).to_string();
    Action {
        name,
        kind: kind.into(),
        id: id.into(),
        action: ActionKind::Delete,
        changes: Vec::new(),
        reason: Some("carries this plan's tag but is no longer declared".into()),
    }
}

/// What pure planning needs to know about the run: never the client.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    pub plan_name: &'a str,
    pub subscription: &'a str,
    pub tenant_id: Option<&'a str>,
    pub caller_object_id: Option<&'a str>,
    /// `--adopt`.
    pub adopt: bool,
    /// `--purge`.
    pub purge: bool,
    /// Destroy with `--force`.
    pub force: bool,
    /// `--target`: only these declarations; `None` for all.
    pub only: Option<&'a HashSet<usize>>,
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
    /// Declarations that could not be read yet because something they depend on is not
    /// there (a secret before its vault's `:creator` access policy): observed as absent;
    /// apply reads them again when it reaches them.
    pub unread: Vec<usize>,
    /// Ownership listings the caller may not read (403): what was not looked for, and why.
    pub not_looked_for: Vec<String>,
    /// Destroy: the bodies of what the observed resources refer to (a VM's interfaces, an
    /// interface's public IPs, security group and virtual network; an orphan VM), by
    /// lower-case id, to find what Azure made with them.
    pub referenced: HashMap<String, Value>,
    /// Destroy: what each declared container (a resource group, by declaration) holds:
    /// `(id, ARM type)`.
    pub contents: HashMap<usize, Vec<(String, String)>>,
}

/// The plan for what was observed: per declaration (in dependency order, reversed for
/// destroy) the action, then orphans, drift and the kinds not applied yet.
pub fn make(opts: &Options<'_>, decls: &[Decl], dag: &Dag, obs: &Observed, destroy: bool) -> Plan {
    let mut actions = Vec::new();
    let mut implicit = Vec::new();
    let order: Vec<usize> = dag
        .topo_order()
        .unwrap_or_else(|| (0..decls.len()).collect())
        .into_iter()
        .filter(|i| opts.only.is_none_or(|o| o.contains(i)))
        .collect();
    let mut untagged = Vec::new();
    let mut elsewhere = Vec::new();
    if destroy {
        let mut decided: Vec<(usize, ActionKind, Option<String>)> = Vec::new();
        for &i in order.iter().rev() {
            let (Some(w), Some(have)) = (&obs.desired[i], &obs.bodies[i]) else { continue };
            let owned = owned(opts.plan_name, &obs.desired, &obs.bodies, i);
            let (action, reason) = destroy_action(opts, w, have, owned);
            let matched = !owned && !is_soft_deleted(have) && !foreign_mark(opts.plan_name, w, have);
            if matched && !opts.adopt && !opts.force {
                untagged.push(format!("{} ({}) {}", decls[i].logical.value, decls[i].kind.type_name(), id_of(w, have)));
            }
            decided.push((i, action, reason));
        }
        let deleting: Vec<usize> = decided.iter().filter(|d| deletes(d.1)).map(|d| d.0).collect();
        // Made by hand: deleted without this plan's mark (adopted, or forced).
        let adopted: Vec<usize> =
            deleting.iter().copied().filter(|&i| !owned(opts.plan_name, &obs.desired, &obs.bodies, i)).collect();
        let children = teardown(decls, &obs.desired, &obs.bodies, &obs.referenced, &deleting, &adopted);
        for (i, action, reason) in &mut decided {
            let Some(held) = obs.contents.get(i) else { continue };
            let foreign = kept_by(obs, &children, held);
            if !deletes(*action) || foreign.is_empty() {
                continue;
            }
            if opts.force {
                elsewhere.extend(foreign);
            } else {
                *action = ActionKind::NoOp;
                *reason = Some(kept_reason(&foreign));
            }
        }
        for (i, action, reason) in decided {
            let d = &decls[i];
            let (Some(w), Some(have)) = (&obs.desired[i], &obs.bodies[i]) else { continue };
            if deletes(action) {
                implicit.extend(
                    children
                        .iter()
                        .filter(|t| t.parent == i)
                        .map(|t| teardown_child(decls, &d.logical.value, t, action)),
                );
            }
            actions.push(Action {
                name: d.logical.value.clone(),
                kind: d.kind.type_name().into(),
                id: id_of(w, have),
                action,
                changes: Vec::new(),
                reason,
            });
        }
    } else {
        for &i in &order {
            let d = &decls[i];
            let Some(w) = &obs.desired[i] else { continue };
            let mut a = decide(&d.logical.value, d.kind.type_name(), opts.plan_name, w, obs.bodies[i].as_ref());
            if opts.purge {
                purge_instead(&mut a);
            }
            if opts.adopt && a.action == ActionKind::Adopt && !adopts_without_flag(&a) {
                a.reason = Some(format!("it exists without this plan's mark ({}): --adopt takes it over", mark_of(w)));
            }
            actions.push(a);
        }
    }
    if opts.only.is_none() {
        for (id, t) in &obs.orphans {
            actions.push(orphan(id, &crate::kinds::kind_of_arm_type(t)));
        }
    }
    let mut p = Plan::new(opts.plan_name, opts.subscription, destroy, actions);
    p.drift = obs.foreign_access.iter().map(|(id, what)| Drift { id: id.clone(), detail: what.clone() }).collect();
    p.not_looked_for = obs.not_looked_for.clone();
    p.implicit = implicit;
    p.adopt = opts.adopt;
    p.untagged = untagged;
    elsewhere.sort();
    elsewhere.dedup();
    p.elsewhere = elsewhere;
    p.not_applied = decls
        .iter()
        .zip(&obs.desired)
        .filter(|(_, d)| d.is_none())
        .map(|(d, _)| format!("{} ({})", d.logical.value, d.kind.type_name()))
        .collect();
    p
}

/// An action as reviewed: its JSON without the lifecycle tags' values (`idlab-created` and
/// `idlab-expires` are times of the run that writes them).
fn reviewed(a: &Action) -> Option<Value> {
    let mut v = serde_json::to_value(a).ok()?;
    for c in v.get_mut("changes").and_then(Value::as_array_mut).into_iter().flatten() {
        if c.get("path").and_then(Value::as_str) != Some("tags") {
            continue;
        }
        for side in ["old", "new"] {
            if let Some(t) = c.get_mut(side).and_then(Value::as_object_mut) {
                LIFECYCLE_TAGS.iter().for_each(|k| {
                    t.remove(*k);
                });
            }
        }
    }
    Some(v)
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
pub fn fingerprints(obs: &Observed) -> BTreeMap<String, String> {
    use sha2::{Digest, Sha256};
    let mut out = BTreeMap::new();
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn desired(body: Value) -> Desired {
        Desired {
            id: "/subscriptions/s/resourceGroups/rg".into(),
            api_version: "x",
            body,
            secrets: Vec::new(),
            immutable: vec![("location", "no")],
            owner: Owner::Tag,
            principal_from_plan: false,
            plane: crate::kinds::env::Plane::Arm,
            soft_delete: false,
            lenient: Vec::new(),
            cleared: Vec::new(),
        }
    }

    #[test]
    fn server_fields_are_ignored_and_case_rules_hold() {
        let d = desired(json!({"location": "eastus", "tags": {"idlab-plan": "p"}}));
        let have = json!({"id": "/SUBSCRIPTIONS/s/resourcegroups/rg", "location": "East US", "tags": {"idlab-plan": "p"}, "properties": {"provisioningState": "Succeeded"}});
        assert_eq!(decide("rg", "resource_group", "p", &d, Some(&have)).action, ActionKind::NoOp);
    }

    #[test]
    fn tags_changes_updates_location_replaces_foreign_adopts() {
        let d = desired(json!({"location": "eastus", "tags": {"idlab-plan": "p", "env": "dev"}}));
        let a = decide(
            "rg",
            "resource_group",
            "p",
            &d,
            Some(&json!({"location": "eastus", "tags": {"idlab-plan": "p", "env": "prod"}})),
        );
        assert_eq!(a.action, ActionKind::Update);
        assert_eq!(a.changes[0].path, "tags");
        let r = decide(
            "rg",
            "resource_group",
            "p",
            &d,
            Some(&json!({"location": "westus", "tags": {"idlab-plan": "p", "env": "dev"}})),
        );
        assert_eq!(r.action, ActionKind::Replace);
        assert_eq!(
            decide("rg", "resource_group", "p", &d, Some(&json!({"location": "eastus"}))).action,
            ActionKind::Adopt
        );
        assert_eq!(
            decide("rg", "resource_group", "p", &d, Some(&json!({"location": "eastus", "tags": {"idlab-plan": "q"}})))
                .action,
            ActionKind::Conflict
        );
        assert_eq!(decide("rg", "resource_group", "p", &d, None).action, ActionKind::Create);
    }

    fn saved(actions: Vec<Action>) -> Saved {
        let vars = BTreeMap::from([("x".to_string(), "1".to_string())]);
        let prints = BTreeMap::from([("/a".to_string(), "h1".to_string())]);
        Saved::new("p.yaml", "text", &vars, prints, Plan::new("p", "s", false, actions))
    }

    #[test]
    fn a_saved_plan_is_stale_when_its_file_variables_azure_or_actions_changed() {
        let s = saved(vec![orphan("/a", "resource_group")]);
        let path = std::path::Path::new("p.yaml");
        assert!(s.check_source(path, "text").is_ok());
        assert!(s.check_source(path, "other").unwrap_err().starts_with("p.yaml changed"));
        let vars = BTreeMap::from([("x".to_string(), "1".to_string())]);
        let same = BTreeMap::from([("/a".to_string(), "h1".to_string())]);
        assert!(s.check_observed(&vars, &same).is_ok());
        let other_vars = BTreeMap::from([("x".to_string(), "2".to_string())]);
        assert!(s.check_observed(&other_vars, &same).unwrap_err().starts_with("the variables differ"));
        let changed = BTreeMap::from([("/a".to_string(), "h2".to_string()), ("/b".to_string(), "h".to_string())]);
        assert!(s.check_observed(&vars, &changed).unwrap_err().ends_with("Changed: /a, /b"));
        assert!(s.check_actions(&s.plan.clone()).is_ok());
        let more = Plan::new("p", "s", false, vec![orphan("/a", "resource_group"), orphan("/b", "resource_group")]);
        assert!(s.check_actions(&more).unwrap_err().contains("Differs: b;"));
        assert!(!s.purges());
    }

    #[test]
    fn destroy_keeps_what_the_plan_does_not_own_and_purges_only_with_purge() {
        let mut opts = Options {
            plan_name: "p",
            subscription: "s",
            tenant_id: None,
            caller_object_id: None,
            adopt: false,
            purge: false,
            force: false,
            only: None,
        };
        let mut d = desired(json!({}));
        let live = json!({"tags": {"idlab-plan": "p"}});
        assert!(owned_by(&live, "p", Owner::Tag));
        assert!(!owned_by(&live, "q", Owner::Tag));
        assert_eq!(destroy_action(&opts, &d, &live, true), (ActionKind::Delete, None));
        assert_eq!(destroy_action(&opts, &d, &live, false).0, ActionKind::NoOp);
        d.soft_delete = true;
        assert_eq!(destroy_action(&opts, &d, &live, true).0, ActionKind::Delete);
        opts.purge = true;
        assert_eq!(destroy_action(&opts, &d, &live, true).0, ActionKind::Purge);
        let gone = json!({ SOFT_DELETED: true });
        assert_eq!(destroy_action(&opts, &d, &gone, true).0, ActionKind::Purge);
        opts.force = true;
        opts.purge = false;
        assert_eq!(destroy_action(&opts, &d, &gone, false).0, ActionKind::NoOp);
    }

    #[test]
    fn identity_sets_compare_by_keys() {
        let mut out = Vec::new();
        diff(
            "",
            &json!({"identity": {"userAssignedIdentities": {"/A": {}}}}),
            Some(&json!({"identity": {"userAssignedIdentities": {"/a": {"principalId": "x"}}}})),
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
        diff(
            "",
            &json!({"identity": {"userAssignedIdentities": {"/A": {}}}}),
            Some(&json!({"identity": {"userAssignedIdentities": {"/a": {}, "/b": {}}}})),
            &mut out,
        );
        assert_eq!(out.len(), 1);
    }
}
