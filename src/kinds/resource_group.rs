//! `resource_group`: `Microsoft.Resources/resourceGroups` (arm-contract §1).

use schemars::JsonSchema;
use serde::Deserialize;

use serde_json::json;

use super::env::{Desired, Env};
use super::import::{Field, Imported, Source, imported, last, location, tags_field, text};
use super::{Cx, Spec, kind};
use crate::model::names;
use crate::model::{Code, Sp, SpMap};
use serde_json::Value as J;

/// A resource group.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceGroup {
    #[serde(rename = "type")]
    #[schemars(skip)]
    pub kind: Sp<String>,
    /// Resource group name: 1–90 letters, digits, `-`, `_`, `.`, `(`, `)`; not ending in `.`.
    pub name: Sp<String>,
    /// Region; defaults to the plan's `location`.
    #[serde(default)]
    pub location: Option<Sp<String>>,
    /// Extra tags (idlab adds `idlab-plan`).
    #[serde(default)]
    pub tags: Option<SpMap<Sp<String>>>,
    /// Logical names this resource must wait for, beyond its references.
    #[serde(default)]
    pub depends_on: Vec<Sp<String>>,
}

impl Spec for ResourceGroup {
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let name = env.resolve(&self.name).or_unknown();
        Some(Desired {
            immutable: vec![("location", "a resource group's location cannot change")],
            ..Desired::new(
                format!("/subscriptions/{}/resourceGroups/{name}", env.subscription),
                "2024-11-01",
                json!({ "location": env.location(&self.location), "tags": env.tags(&self.tags) }),
            )
        })
    }
    fn name(&self) -> Option<&Sp<String>> {
        Some(&self.name)
    }
    fn depends_on(&self) -> &[Sp<String>] {
        &self.depends_on
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        cx.name_rule(&self.name, Code::ResourceGroupName, names::resource_group);
        cx.location(&self.location);
        cx.tags(&self.tags, 512);
    }
    fn identity_key(&self) -> Option<String> {
        Some(format!("resourceGroups|{}", self.name.value.to_ascii_lowercase()))
    }
    fn contains_resources(&self) -> bool {
        true
    }
}

/// `resource_group`.
pub fn import_resource_group(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let mut f = vec![Field::str("name", text(have, "/name").unwrap_or(last(id)))];
    if let Some(l) = location(have, src) {
        f.push(Field::str("location", l));
    }
    f.extend(tags_field(have));
    let mut i = imported(id, have, "rg", 0, f);
    // `rg`; another group is `rg-<its name>`.
    i.key_hint = "rg".into();
    i.key_alt = text(have, "/name").unwrap_or(last(id)).to_string();
    Some(i)
}

kind!(ResourceGroupKind, ResourceGroup,
    type_name: "resource_group",
    arm_type: Some("Microsoft.Resources/resourceGroups"),
    api_version: "2024-11-01",
    attributes: &["id", "name", "location"],
    weight: 2,
    naming: crate::kinds::instance::InstanceName { field: "name", suffix: crate::kinds::instance::Suffix::Dash, max: 90, scope: "the subscription" },
    import: import_resource_group);
