//! Destroy's actions and ownership rules: whether the plan owns what ARM holds (its mark, or
//! its parent's), what destroy does with it (delete, purge, keep, or with `--adopt` adopt and
//! delete what matches without a mark), and another plan's mark, never taken. Pure.

use serde_json::Value;

use super::{ActionKind, Options, is_soft_deleted};
use crate::kinds::env::{Desired, OWNER_METADATA, OWNER_TAG, Owner};

/// Whether a destroy action deletes the resource.
pub fn deletes(a: ActionKind) -> bool {
    matches!(a, ActionKind::Delete | ActionKind::Purge | ActionKind::AdoptDelete)
}

/// The id of what ARM holds for a declaration (a role assignment matched under another
/// name has its own), else the plan's.
pub(super) fn id_of(w: &Desired, have: &Value) -> String {
    have.get("id").and_then(Value::as_str).map_or_else(|| w.id.clone(), str::to_string)
}

/// The mark a kind's ownership uses, for people.
pub(super) fn mark_of(w: &Desired) -> String {
    match w.owner {
        Owner::Tag => format!("the {OWNER_TAG} tag"),
        Owner::Metadata => format!("the {OWNER_METADATA} metadata"),
        Owner::Description => "an idlab plan description".into(),
        Owner::Parent => "its parent's tag".into(),
    }
}

/// Whether what ARM holds carries another plan's mark: never adopted, even with `--adopt`.
pub fn foreign_mark(plan_name: &str, w: &Desired, have: &Value) -> bool {
    if let Some(mark) = w.owner.pointer() {
        return have.pointer(&mark).and_then(Value::as_str).is_some_and(|o| o != plan_name);
    }
    let d = have.pointer("/properties/description").and_then(Value::as_str).unwrap_or_default();
    w.owner == Owner::Description && d.starts_with("idlab plan ") && !owned_by(have, plan_name, Owner::Description)
}

/// What destroy does with one observed resource, and why when it is not a plain delete.
/// `owned`: it carries this plan's mark. Not owned, it is kept, unless `--force` (deleted) or
/// `--adopt` (adopted and deleted: it matches a declaration by type, scope and name, or a
/// role assignment by its scope, principal and role).
pub fn destroy_action(opts: &Options<'_>, w: &Desired, have: &Value, owned: bool) -> (ActionKind, Option<String>) {
    if !owned && !opts.force && (!opts.adopt || foreign_mark(opts.plan_name, w, have)) {
        return (ActionKind::NoOp, Some(not_owned_reason(w.owner)));
    }
    let adopting = !owned && !opts.force;
    match (is_soft_deleted(have), w.soft_delete && opts.purge) {
        (true, true) => (ActionKind::Purge, Some("already soft-deleted: --purge purges it".into())),
        (true, false) => (ActionKind::NoOp, Some("already soft-deleted (--purge purges it)".into())),
        (false, true) => (ActionKind::Purge, Some("deleted, then purged: it cannot be recovered".into())),
        (false, false) if adopting && w.soft_delete => (
            ActionKind::AdoptDelete,
            Some(format!(
                "it matches the declaration without {}: adopted and deleted (soft-deleted: recoverable until its retention ends; --purge purges it now)",
                mark_of(w)
            )),
        ),
        (false, false) if adopting => (
            ActionKind::AdoptDelete,
            Some(format!("it matches the declaration without {}: adopted and deleted", mark_of(w))),
        ),
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
