//! The lifecycle tags (`idlab-created`, `idlab-applied-by`, `idlab-expires`, and
//! `idlab-instance` for a fleet): put into the desired bodies of the owned resource groups and
//! of the owned resources outside them, kept from what ARM holds so they never drift. Pure.

use serde_json::Value;

use super::Observed;
use crate::kinds::Decl;
use crate::kinds::env::{APPLIED_BY_TAG, CREATED_TAG, Desired, EXPIRES_TAG, INSTANCE_TAG, LIFECYCLE_TAGS, Owner};

/// The lifecycle tags one run gives (`idlab-created`, `idlab-applied-by`, `idlab-expires`).
#[derive(Debug, Clone, Default)]
pub struct Stamp {
    /// Now, UTC RFC 3339: `idlab-created` of what is created.
    pub now: String,
    /// The caller's object id: `idlab-applied-by` of what is created.
    pub caller: Option<String>,
    /// `idlab-expires` for what is created, or what has none yet.
    pub expires: Option<String>,
    /// `--expires-after` was given: `idlab-expires` is set on everything stamped, replacing
    /// what is there.
    pub reset_expiry: bool,
    /// The instance (`idlab-instance`), for a fleet.
    pub instance: Option<String>,
}

/// Put the lifecycle tags into the desired bodies of the owned resource groups and of the
/// owned, tagged resources outside them: what ARM holds is kept (so they never drift, and a
/// PUT does not drop them); what is created gets `stamp`'s; `--expires-after` replaces the
/// expiry. Pure.
pub fn stamp(decls: &[Decl], obs: &mut Observed, stamp: &Stamp) {
    let groups: Vec<String> = decls
        .iter()
        .zip(&obs.desired)
        .filter(|(d, _)| d.spec.contains_resources())
        .filter_map(|(_, w)| w.as_ref().map(|w| format!("{}/", w.id.to_ascii_lowercase())))
        .collect();
    for (i, d) in decls.iter().enumerate() {
        let Some(w) = obs.desired[i].as_mut() else { continue };
        let id = w.id.to_ascii_lowercase();
        let outside = d.spec.contains_resources() || !groups.iter().any(|g| id.starts_with(g.as_str()));
        if !outside || w.owner != Owner::Tag {
            continue;
        }
        let Some(tags) = w.body.get_mut("tags").and_then(Value::as_object_mut) else { continue };
        match obs.bodies[i].as_ref() {
            Some(have) => {
                let h = have.get("tags").and_then(Value::as_object);
                for k in LIFECYCLE_TAGS {
                    if let Some(v) = h.and_then(|h| h.get(k)) {
                        tags.insert(k.to_string(), v.clone());
                    }
                }
            }
            None => {
                tags.insert(CREATED_TAG.into(), Value::String(stamp.now.clone()));
                if let Some(c) = &stamp.caller {
                    tags.insert(APPLIED_BY_TAG.into(), Value::String(c.clone()));
                }
            }
        }
        if let Some(i) = &stamp.instance {
            tags.insert(INSTANCE_TAG.into(), Value::String(i.clone()));
        }
        if let Some(e) = &stamp.expires
            && (stamp.reset_expiry || !tags.contains_key(EXPIRES_TAG))
        {
            tags.insert(EXPIRES_TAG.into(), Value::String(e.clone()));
        }
    }
}

/// Copy the lifecycle and instance tags [`stamp`] put in `planned` into `want`, the same
/// resource's body rebuilt at apply time.
pub fn carry_stamp(planned: &Desired, want: &mut Desired) {
    let Some(from) = planned.body.get("tags").and_then(Value::as_object) else { return };
    let Some(to) = want.body.get_mut("tags").and_then(Value::as_object_mut) else { return };
    for k in LIFECYCLE_TAGS.iter().chain([&INSTANCE_TAG]) {
        if let Some(v) = from.get(*k) {
            to.insert((*k).to_string(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn planned(tags: Value) -> Desired {
        Desired::new(
            "/subscriptions/s/resourceGroups/rg".into(),
            "2024-11-01",
            json!({"location": "eastus", "tags": tags}),
        )
    }

    #[test]
    fn carry_copies_only_the_lifecycle_and_instance_tags() {
        let from = planned(
            json!({"idlab-plan": "p", "idlab-created": "t0", "idlab-expires": "t1", "idlab-instance": "03", "env": "x"}),
        );
        let mut want = planned(json!({"idlab-plan": "p"}));
        carry_stamp(&from, &mut want);
        assert_eq!(
            want.body["tags"],
            json!({"idlab-plan": "p", "idlab-created": "t0", "idlab-expires": "t1", "idlab-instance": "03"})
        );
    }
}
