//! `role_definition`: a custom role, `Microsoft.Authorization/roleDefinitions`. Its ARM name
//! is derived (UUID v5 of the subscription and the role name), so re-applying finds the same
//! definition; the plan marks it as its own in the description, as for role assignments. A
//! `role_assignment` names it as `role: ${my_role}`, which also orders destroy: assignments
//! first, then the definition.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use super::env::{Desired, Env, Owner};
use super::import::{Field, Imported, Source, Y, last, own_description, text};
use super::role_assignment::check_scope;
use super::{Cx, Spec, kind};
use crate::model::{Code, Diag, Sp};
use crate::roles;
use serde_json::Value as J;

/// A custom role: what it allows (`actions`, `data_actions`), what it takes away from that
/// (`not_actions`, `not_data_actions`), and where it may be assigned.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleDefinition {
    #[serde(rename = "type")]
    #[schemars(skip)]
    pub kind: Sp<String>,
    /// The role's name, unique in the tenant (built-in role names are taken).
    pub role_name: Sp<String>,
    /// Description stored on the definition (idlab prefixes the plan name).
    #[serde(default)]
    pub description: Option<Sp<String>>,
    /// Control-plane operations the role allows, e.g.
    /// `Microsoft.Storage/storageAccounts/listServiceSas/action`; `*` wildcards allowed.
    #[serde(default)]
    pub actions: Vec<Sp<String>>,
    /// Operations taken away from `actions`.
    #[serde(default)]
    pub not_actions: Vec<Sp<String>>,
    /// Data-plane operations the role allows, e.g.
    /// `Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read`.
    #[serde(default)]
    pub data_actions: Vec<Sp<String>>,
    /// Data operations taken away from `data_actions`.
    #[serde(default)]
    pub not_data_actions: Vec<Sp<String>>,
    /// Where the role may be assigned: declared resources (`${rg}`, `${storage}`, …),
    /// `subscription`, or ARM ids. Default: the subscription.
    #[serde(default)]
    pub assignable_scopes: Vec<Sp<String>>,
    /// Logical names this resource must wait for, beyond its references.
    #[serde(default)]
    pub depends_on: Vec<Sp<String>>,
}

/// The namespace of custom role names (UUID v5 over subscription and role name).
const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x3c5e_0b7d_91a4_4f0e_8d62_5a1f_c0de_7e11);

/// The definition's ARM name: UUID v5 of (subscription, role name), both lower-cased, so the
/// same role in the same subscription always gets the same name.
///
/// ```
/// use idlab::kinds::role_definition::definition_name;
/// let a = definition_name("S", "SAS only");
/// assert_eq!(a, definition_name("s", "sas ONLY"));
/// assert_ne!(a, definition_name("s", "SAS only 2"));
/// assert_eq!(a.len(), 36);
/// ```
pub fn definition_name(subscription: &str, role_name: &str) -> String {
    let key = format!("{}|{}", subscription.to_ascii_lowercase(), role_name.trim().to_lowercase());
    uuid::Uuid::new_v5(&NAMESPACE, key.as_bytes()).to_string()
}

/// The longest role name and description Azure accepts.
const MAX_NAME: usize = 512;
const MAX_DESCRIPTION: usize = 2048;

/// An operation pattern: `*`, or `Namespace.Provider/…` without blanks.
fn is_operation(s: &str) -> bool {
    s == "*" || (s.contains('/') && !s.chars().any(char::is_whitespace) && !s.starts_with('/'))
}

impl Spec for RoleDefinition {
    /// A custom role made by hand has a random GUID: the same role by its role name.
    fn matched_by_content(&self) -> bool {
        true
    }
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let role_name = env.resolve(&self.role_name).or_unknown();
        let name = definition_name(env.subscription, &role_name);
        let desc = self.description.as_ref().map_or_else(
            || format!("idlab plan {}", env.plan),
            |d| format!("idlab plan {}: {}", env.plan, env.resolve(d).or_unknown()),
        );
        let list = |v: &[Sp<String>]| -> Vec<String> { v.iter().map(|s| env.resolve(s).or_unknown()).collect() };
        let scopes: Vec<String> = if self.assignable_scopes.is_empty() {
            vec![format!("/subscriptions/{}", env.subscription)]
        } else {
            self.assignable_scopes
                .iter()
                .map(|s| match s.value.as_str() {
                    "subscription" => format!("/subscriptions/{}", env.subscription),
                    _ => env.resolve(s).or_unknown(),
                })
                .collect()
        };
        Some(Desired {
            owner: Owner::Description,
            ..Desired::new(
                format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{name}", env.subscription),
                "2022-04-01",
                json!({ "properties": {
                    "roleName": role_name,
                    "description": desc,
                    "type": "CustomRole",
                    "permissions": [{
                        "actions": list(&self.actions),
                        "notActions": list(&self.not_actions),
                        "dataActions": list(&self.data_actions),
                        "notDataActions": list(&self.not_data_actions),
                    }],
                    "assignableScopes": scopes,
                }}),
            )
        })
    }
    fn depends_on(&self) -> &[Sp<String>] {
        &self.depends_on
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        let n = &self.role_name;
        let trimmed = n.value.trim();
        if trimmed.is_empty() || trimmed.chars().count() > MAX_NAME {
            cx.push(
                Diag::error(Code::InvalidValue, n.span, format!("a role name has 1 to {MAX_NAME} characters"))
                    .label("bad role name"),
            );
        } else if let Some(r) = roles::by_name(trimmed) {
            cx.push(
                Diag::error(Code::InvalidValue, n.span, format!("`{trimmed}` is the name of a built-in role"))
                    .label("name taken")
                    .help(format!("assign the built-in role `{}` directly, or pick another name", r.name)),
            );
        }
        if self.actions.is_empty() && self.data_actions.is_empty() {
            cx.push(
                Diag::error(
                    Code::InvalidValue,
                    n.span,
                    "a custom role allows something: give `actions` or `data_actions`",
                )
                .label("allows nothing"),
            );
        }
        for s in self.actions.iter().chain(&self.not_actions).chain(&self.data_actions).chain(&self.not_data_actions) {
            if !crate::model::refs::has_expr(s) && !is_operation(&s.value) {
                cx.push(
                    Diag::error(Code::InvalidValue, s.span, format!("`{}` is not an operation", s.value))
                        .label("not an operation")
                        .help("operations look like Microsoft.Storage/storageAccounts/listServiceSas/action, or `*`"),
                );
            }
        }
        for s in &self.assignable_scopes {
            check_scope(cx, s);
        }
        if let Some(d) = &self.description
            && d.value.chars().count() > MAX_DESCRIPTION
        {
            cx.push(
                Diag::error(
                    Code::InvalidValue,
                    d.span,
                    format!("a role description is limited to {MAX_DESCRIPTION} characters"),
                )
                .label("too long"),
            );
        }
    }
    fn identity_key(&self) -> Option<String> {
        Some(format!("roleDefinitions|{}", self.role_name.value.trim().to_lowercase()))
    }
}

/// `role_definition`: a custom role an assignment in the imported groups names, with its
/// permissions and assignable scopes (references where the plan declares them).
pub fn import_role_definition(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let name = text(have, "/properties/roleName")?;
    let mut f = vec![Field::str("role_name", name)];
    if let Some(d) = text(have, "/properties/description").and_then(own_description) {
        f.push(Field::str("description", d));
    }
    let perms = have.pointer("/properties/permissions/0").cloned().unwrap_or(J::Null);
    for (key, field) in [
        ("actions", "actions"),
        ("notActions", "not_actions"),
        ("dataActions", "data_actions"),
        ("notDataActions", "not_data_actions"),
    ] {
        let list: Vec<Y> = perms
            .get(key)
            .and_then(J::as_array)
            .into_iter()
            .flatten()
            .filter_map(J::as_str)
            .map(|a| Y::Str(a.into()))
            .collect();
        if !list.is_empty() {
            f.push(Field::new(field, Y::List(list)));
        }
    }
    let sub = id.to_ascii_lowercase().find("/providers/").map_or("", |at| &id[..at]).to_string();
    let scopes: Vec<Y> = have
        .pointer("/properties/assignableScopes")
        .and_then(J::as_array)
        .into_iter()
        .flatten()
        .filter_map(J::as_str)
        .map(|s| {
            Y::Str(if s.eq_ignore_ascii_case(&sub) {
                "subscription".to_string()
            } else {
                src.reference(s).unwrap_or_else(|| s.to_string())
            })
        })
        .collect();
    let default = scopes.len() == 1 && scopes[0] == Y::Str("subscription".into());
    if !scopes.is_empty() && !default {
        f.push(Field::new("assignable_scopes", Y::List(scopes)));
    }
    let mut i =
        Imported { key_hint: name.to_string(), key_alt: "role".into(), rank: 1, fields: f, ..Imported::default() };
    if have.pointer("/properties/permissions").and_then(J::as_array).is_some_and(|p| p.len() > 1) {
        i.unexpressed.push(format!("several permission blocks in role {} (plans give one)", last(id)));
    }
    Some(i)
}

kind!(RoleDefinitionKind, RoleDefinition,
    type_name: "role_definition",
    arm_type: Some("Microsoft.Authorization/roleDefinitions"),
    api_version: "2022-04-01",
    attributes: &["id", "name"],
    weight: 3,
    naming: crate::kinds::instance::InstanceName { field: "role_name", suffix: crate::kinds::instance::Suffix::Dash, max: MAX_NAME, scope: "the tenant" },
    import: import_role_definition);
