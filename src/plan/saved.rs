//! Saved plans (`plan --out FILE`, then `apply FILE`): what a plan was computed from, a
//! fleet's every instance, and the staleness checks run before applying one. Pure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ActionKind, FORMAT_VERSION, Plan, reviewed};

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
    /// For a fleet, no actions here: its name, subscription and whether it destroys.
    pub plan: Plan,
    /// The instance this is the saved plan of (an entry of a fleet's `instances`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// A fleet's saved plan (`plan --instances … --out`): every instance's, in order, each
    /// checked for staleness on its own when applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<Saved>,
}

/// The SHA-256 of a text, hex.
pub fn sha256(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes()).iter().map(|x| format!("{x:02x}")).collect()
}

impl Saved {
    /// The saved plan of `plan` (observed as `fingerprints`), made from the plan file
    /// `source` whose text is `text`, with `variables` resolved.
    pub fn new(
        source: &str,
        text: &str,
        variables: &BTreeMap<String, String>,
        fingerprints: BTreeMap<String, String>,
        plan: Plan,
    ) -> Saved {
        Saved {
            format_version: FORMAT_VERSION,
            kind: "idlab-saved-plan".into(),
            source: source.to_string(),
            source_sha256: sha256(text),
            variables_sha256: sha256(&serde_json::to_string(variables).unwrap_or_default()),
            fingerprints,
            plan,
            instance: None,
            instances: Vec::new(),
        }
    }

    /// The saved plan of a fleet: `instances` (each with its `instance`), under the header of
    /// the first (its source and variables; a plan without actions, named `plan`).
    pub fn fleet(plan: &str, instances: Vec<Saved>) -> Option<Saved> {
        let mut header = instances.first()?.clone();
        header.plan = Plan::new(plan, &header.plan.subscription, header.plan.destroy, Vec::new());
        header.fingerprints = BTreeMap::new();
        header.instance = None;
        header.instances = instances;
        Some(header)
    }

    /// The saved plan to check and apply for `instance` (`None`: the plan run as itself).
    ///
    /// # Errors
    /// The file holds no plan for it (a fleet's file applied without that instance, or the
    /// other way round).
    pub fn for_instance(&self, instance: Option<&str>) -> Result<&Saved, String> {
        match instance {
            None if self.instances.is_empty() => Ok(self),
            Some(i) => self
                .instances
                .iter()
                .find(|s| s.instance.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(i)))
                .ok_or_else(|| format!("the saved plan holds no plan for instance `{i}`")),
            None => Err("the saved plan is a fleet's: it is applied per instance".into()),
        }
    }

    /// The instances a fleet's saved plan holds, in order (empty for one plan).
    pub fn instance_names(&self) -> Vec<String> {
        self.instances.iter().filter_map(|s| s.instance.clone()).collect()
    }

    /// Staleness, first check: the plan file (`source`, whose text is now `text`) is the one
    /// the plan was saved from.
    ///
    /// # Errors
    /// What changed, for the user.
    pub fn check_source(&self, source: &std::path::Path, text: &str) -> Result<(), String> {
        if sha256(text) != self.source_sha256 {
            return Err(format!("{} changed since this plan was saved; run `idlab plan` again", source.display()));
        }
        Ok(())
    }

    /// Staleness, second check: the same variables, and Azure holds what it held then
    /// (`now`: the fingerprints observed now).
    ///
    /// # Errors
    /// What changed, for the user.
    pub fn check_observed(
        &self,
        variables: &BTreeMap<String, String>,
        now: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        if sha256(&serde_json::to_string(variables).unwrap_or_default()) != self.variables_sha256 {
            return Err("the variables differ from the saved plan's; run `idlab plan` again".into());
        }
        let mut ids: Vec<&String> =
            now.keys().chain(self.fingerprints.keys()).filter(|k| now.get(*k) != self.fingerprints.get(*k)).collect();
        if !ids.is_empty() {
            ids.sort();
            ids.dedup();
            return Err(format!(
                "Azure changed since the plan was saved, so it was not applied; nothing was written. Changed: {}",
                ids.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ));
        }
        Ok(())
    }

    /// Staleness, last check: same plan file, variables and Azure, yet the actions can still
    /// differ when a file the plan reads (a blob source) changed. Apply only what was reviewed.
    ///
    /// # Errors
    /// Which actions differ, for the user.
    pub fn check_actions(&self, plan: &Plan) -> Result<(), String> {
        let differs: Vec<&str> = plan
            .actions
            .iter()
            .filter(|now| {
                self.plan
                    .actions
                    .iter()
                    .find(|was| was.name == now.name && was.id == now.id)
                    .is_none_or(|was| reviewed(was) != reviewed(now))
            })
            .map(|x| x.name.as_str())
            .collect();
        if !differs.is_empty() || plan.actions.len() != self.plan.actions.len() {
            return Err(format!(
                "the plan's actions differ from the saved plan's (a file it reads changed?), so it was not applied; nothing was written. Differs: {}; run `idlab plan` again",
                differs.join(", ")
            ));
        }
        Ok(())
    }

    /// Whether the saved plan purges (it was made with `--purge`).
    ///
    /// (The comparison of [`Saved::check_actions`] leaves out the lifecycle tags: their
    /// timestamps are the apply's own.)
    pub fn purges(&self) -> bool {
        self.plan.actions.iter().any(|x| x.action == ActionKind::Purge) || self.instances.iter().any(Saved::purges)
    }
}
