//! The plan: what apply would do, as plain data. Pure — it diffs what it is given (desired
//! bodies from the kinds, observed bodies from `engine::observe`); rendering lives in `ui`.
//!
//! Only the fields a plan manages are compared (server-filled fields never show as
//! changes); ids and locations compare case-insensitively as ARM does; `tags` and a VM's
//! set of user-assigned identities compare as whole values, so out-of-band additions show.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kinds::env::{Desired, OWNER_METADATA, OWNER_TAG, Owner, UNKNOWN};

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

/// Decide the action for one resource.
pub fn decide(name: &str, kind: &str, plan_name: &str, desired: &Desired, observed: Option<&Value>) -> Action {
    let mut changes = Vec::new();
    diff("", &desired.body, observed, &mut changes);
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

/// A plan saved with `plan --out FILE`, applied later with `apply FILE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    pub format_version: u32,
    /// Always `idlab-saved-plan`.
    pub kind: String,
    /// The plan file, as given.
    pub source: String,
    /// SHA-256 of the plan file's text.
    pub source_sha256: String,
    /// SHA-256 of the resolved variables.
    pub variables_sha256: String,
    /// Resource id (lower-cased) → SHA-256 of its observed managed fields (`orphan` for
    /// orphans). No ETags, timestamps or provisioning states.
    pub fingerprints: std::collections::BTreeMap<String, String>,
    pub plan: Plan,
}

/// The SHA-256 of a text, hex.
pub fn sha256(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes()).iter().map(|x| format!("{x:02x}")).collect()
}
