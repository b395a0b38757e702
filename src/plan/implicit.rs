//! Destroy's implicit children: what Azure made on its own with a declared resource (a VM's
//! OS disk, a NIC's IP configurations, an NSG's default rules, a vault's soft-deleted copy),
//! found in the resource's own body by its kind, and what destroy does with each. Pure.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ActionKind, is_soft_deleted};
use crate::kinds::env::Desired;
use crate::kinds::{Decl, Implicit, ImplicitFate};

/// Something Azure made with a declared resource, not declared itself, as destroy sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImplicitChild {
    /// The declaration it was made with (logical name).
    pub parent: String,
    pub id: String,
    /// `OS disk`, `IP configuration`, ….
    pub what: String,
    /// `delete` (with its parent or after it) or `no_op` (it remains).
    pub action: ActionKind,
    pub reason: String,
}

/// What Azure made on its own with declaration `i`, read from what ARM holds for it: its
/// kind's [`crate::kinds::Spec::implicit`], less what the plan declares itself (the
/// interface `network: auto` makes) and nothing for a soft-deleted copy.
pub fn implicit_of(decls: &[Decl], desired: &[Option<Desired>], bodies: &[Option<Value>], i: usize) -> Vec<Implicit> {
    let Some(Some(have)) = bodies.get(i) else { return Vec::new() };
    if is_soft_deleted(have) {
        return Vec::new();
    }
    let declared: HashSet<String> = desired.iter().flatten().map(|d| d.id.to_ascii_lowercase()).collect();
    decls[i].spec.implicit(have).into_iter().filter(|c| !declared.contains(&c.id.to_ascii_lowercase())).collect()
}

/// How destroy shows an implicit child of `parent`, which it deletes (`action`).
pub(super) fn implicit_child(parent: &str, c: Implicit, action: ActionKind) -> ImplicitChild {
    let (action, reason) = match c.fate {
        ImplicitFate::WithParent(why) => (ActionKind::Delete, format!("deleted with `{parent}` ({why})")),
        ImplicitFate::After { .. } => (
            ActionKind::Delete,
            format!("deleting `{parent}` would leave it (its deleteOption is not Delete): deleted after `{parent}`"),
        ),
        ImplicitFate::Remains(_) if action == ActionKind::Purge => {
            (ActionKind::Delete, format!("purged with `{parent}`"))
        }
        ImplicitFate::Remains(why) => (ActionKind::NoOp, why.to_string()),
    };
    ImplicitChild { parent: parent.to_string(), id: c.id, what: c.what.to_string(), action, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(fate: ImplicitFate) -> Implicit {
        Implicit { id: "/s/disks/d".into(), what: "OS disk", fate }
    }

    #[test]
    fn a_child_goes_with_its_parent_after_it_or_remains() {
        let with =
            implicit_child("vm", child(ImplicitFate::WithParent("its deleteOption is Delete")), ActionKind::Delete);
        assert_eq!(
            (with.action, with.reason.as_str()),
            (ActionKind::Delete, "deleted with `vm` (its deleteOption is Delete)")
        );
        let after = implicit_child("vm", child(ImplicitFate::After { api_version: "2024-03-02" }), ActionKind::Delete);
        assert_eq!(after.action, ActionKind::Delete);
        assert!(after.reason.contains("deleted after `vm`"), "{}", after.reason);
        let stays = implicit_child("kv", child(ImplicitFate::Remains("soft-deleted")), ActionKind::Delete);
        assert_eq!((stays.action, stays.reason.as_str()), (ActionKind::NoOp, "soft-deleted"));
        let purged = implicit_child("kv", child(ImplicitFate::Remains("soft-deleted")), ActionKind::Purge);
        assert_eq!(purged.action, ActionKind::Delete);
    }
}
