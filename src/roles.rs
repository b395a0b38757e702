//! The catalogue of Azure built-in roles: name, GUID, description and permissions (actions,
//! notActions, dataActions, notDataActions), for every built-in role Azure lists.
//!
//! A leaf shared by the client side (plan validation, role-definition ids) and the local
//! cloud (serving and evaluating role definitions), so each keeps the other honest. GUIDs are
//! global in Azure. The data is `src/roles/builtin.json`, embedded in the binary and parsed
//! once on first use; its `source` names where it came from (a recorded answer of Azure to
//! `az role definition list`) and when. `scripts/roles.py` regenerates it.
//!
//! Imports: nothing of idlab. No I/O.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

/// The embedded catalogue (`src/roles/builtin.json`).
const DATA: &str = include_str!("roles/builtin.json");

/// One block of a role's permissions. A role grants an action when one of its blocks matches
/// it in `actions` and does not exclude it in `not_actions` (likewise for data actions).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    pub actions: Vec<&'static str>,
    #[serde(default)]
    pub not_actions: Vec<&'static str>,
    #[serde(default)]
    pub data_actions: Vec<&'static str>,
    #[serde(default)]
    pub not_data_actions: Vec<&'static str>,
    /// An ABAC condition on the block, as Azure lists it (idlab does not evaluate conditions:
    /// a block that has one grants nothing in the local cloud).
    #[serde(default)]
    pub condition: Option<&'static str>,
}

/// One built-in role definition.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Role {
    pub name: &'static str,
    /// The definition GUID (its ARM `name`).
    #[serde(rename = "id")]
    pub guid: &'static str,
    pub description: &'static str,
    /// Usually one block; a few roles have several.
    pub permissions: Vec<Permission>,
}

impl Role {
    /// Every action pattern of every block, in order.
    pub fn actions(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.permissions.iter().flat_map(|p| p.actions.iter().copied())
    }
    /// Every data action pattern of every block, in order.
    pub fn data_actions(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.permissions.iter().flat_map(|p| p.data_actions.iter().copied())
    }
}

/// Where the catalogue came from, as its data file records it.
#[derive(Debug, Clone, Deserialize)]
pub struct Source {
    pub repository: &'static str,
    pub path: &'static str,
    pub commit: &'static str,
    /// When the source recorded Azure's answer (RFC 3339).
    pub date: &'static str,
    /// How many role files the source held.
    pub count: usize,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "'de: 'static"))]
struct File {
    source: Source,
    roles: Vec<Role>,
}

struct Catalogue {
    source: Source,
    roles: Vec<Role>,
    by_name: HashMap<String, usize>,
    by_guid: HashMap<String, usize>,
}

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
    // The data file is part of the build and checked by the tests: it always parses. Its
    // strings hold no escapes (scripts/roles.py checks), so they borrow from the binary.
    let file: File = serde_json::from_str(DATA).unwrap_or_else(|e| panic!("src/roles/builtin.json: {e}"));
    let index = |key: fn(&Role) -> &'static str| {
        file.roles.iter().enumerate().map(|(i, r)| (key(r).to_lowercase(), i)).collect::<HashMap<_, _>>()
    };
    let by_name = index(|r| r.name);
    let by_guid = index(|r| r.guid);
    Catalogue { source: file.source, roles: file.roles, by_name, by_guid }
});

/// Every built-in role, sorted by name (case-insensitively).
pub fn built_in() -> &'static [Role] {
    &CATALOGUE.roles
}

/// Where the catalogue came from.
pub fn source() -> &'static Source {
    &CATALOGUE.source
}

/// A built-in role by name, compared case-insensitively as Azure does.
///
/// ```
/// assert_eq!(idlab::roles::by_name("reader").map(|r| r.guid),
///            Some("acdd72a7-3385-48ef-bd42-f606fba81ae7"));
/// assert!(idlab::roles::by_name("key vault administrator").is_some());
/// ```
pub fn by_name(name: &str) -> Option<&'static Role> {
    let c = &*CATALOGUE;
    c.by_name.get(&name.to_lowercase()).map(|&i| &c.roles[i])
}

/// A built-in role by definition GUID.
pub fn by_guid(guid: &str) -> Option<&'static Role> {
    let c = &*CATALOGUE;
    c.by_guid.get(&guid.to_lowercase()).map(|&i| &c.roles[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_sorted_unique_and_well_formed() {
        let all = built_in();
        assert_eq!(all.len(), source().count);
        assert!(all.windows(2).all(|w| w[0].name.to_lowercase() < w[1].name.to_lowercase()));
        assert_eq!(CATALOGUE.by_guid.len(), all.len());
        assert_eq!(CATALOGUE.by_name.len(), all.len());
        assert!(all.iter().all(|r| crate::model::names::is_guid(r.guid) && !r.permissions.is_empty()));
    }
}
