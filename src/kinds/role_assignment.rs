//! `role_assignment`: `Microsoft.Authorization/roleAssignments` (arm-contract §4). Its ARM
//! name is derived (UUID v5 of scope, principal and role), so the plan gives no name.

use schemars::JsonSchema;
use serde::Deserialize;

use serde_json::json;

use super::env::{Desired, Env, Owner, UNKNOWN, Val};
use super::import::{Field, Imported, Source, last, own_description, text};
use super::{Cx, Spec, kind};
use crate::model::names::is_guid;
use crate::model::refs;
use crate::model::{Code, Diag, Sp};
use crate::roles;
use serde_json::Value as J;

/// A role assignment: `principal` gets `role` at `scope`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleAssignment {
    #[serde(rename = "type")]
    #[schemars(skip)]
    pub kind: Sp<String>,
    /// Where the role applies: a declared resource (`${rg}`, `${storage}`, …), `subscription`,
    /// or a literal ARM resource id.
    pub scope: Sp<String>,
    /// Who gets the role: `${identity}`, `${vm.identity}` (a VM's system identity),
    /// `${caller}`, or an object id.
    pub principal: Sp<String>,
    /// A built-in role name (`Reader`, `Storage Blob Data Reader`, …), a custom role of the
    /// plan (`${my_role}`, a `role_definition`), a role definition GUID, or a role definition
    /// resource id.
    pub role: Sp<String>,
    /// Description stored on the assignment (idlab prefixes the plan name).
    #[serde(default)]
    pub description: Option<Sp<String>>,
    /// An ABAC condition limiting the assignment (Azure's condition language, e.g. a Storage
    /// Blob Data role limited to one container). Changing it updates the assignment in place.
    #[serde(default)]
    pub condition: Option<Sp<String>>,
    /// The condition language's version; only `2.0` exists. Default `2.0`, sent only with a
    /// `condition`.
    #[serde(default)]
    pub condition_version: Option<Sp<String>>,
    /// Logical names this resource must wait for, beyond its references.
    #[serde(default)]
    pub depends_on: Vec<Sp<String>>,
}

/// The namespace of role-assignment names (UUID v5 over scope, principal and role).
const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6f1d_1a7b_4c2e_4e55_9f3a_1d0b_2c8e_7a41);

/// The assignment's name: UUID v5 of (scope, principal id, role definition id), lower-cased,
/// so the same triple always gets the same name.
///
/// ```
/// use idlab::kinds::role_assignment::assignment_name;
/// let a = assignment_name("/subscriptions/s/resourceGroups/RG", "p", "/x/roleDefinitions/g");
/// assert_eq!(a, assignment_name("/subscriptions/s/resourcegroups/rg", "P", "/x/roleDefinitions/G"));
/// assert_eq!(a.len(), 36);
/// ```
pub fn assignment_name(scope: &str, principal: &str, definition: &str) -> String {
    let key = format!(
        "{}|{}|{}",
        scope.to_ascii_lowercase(),
        principal.to_ascii_lowercase(),
        definition.rsplit('/').next().unwrap_or(definition).to_ascii_lowercase()
    );
    uuid::Uuid::new_v5(&NAMESPACE, key.as_bytes()).to_string()
}

/// The definition GUID of a role given by built-in name, GUID or definition id.
pub fn role_guid(role: &str) -> String {
    if let Some(r) = roles::by_name(role) {
        return r.guid.to_string();
    }
    role.rsplit('/').next().unwrap_or(role).to_ascii_lowercase()
}

/// Check a role: a built-in name, a reference to a `role_definition`, a GUID, or
/// `/…/providers/Microsoft.Authorization/roleDefinitions/{guid}`.
fn check_role(cx: &mut Cx<'_>, role: &Sp<String>) {
    if refs::has_expr(role) {
        let Ok(pieces) = refs::parse_template(role, refs::OffsetMap::new(role.span, role.value.len())) else {
            return;
        };
        match refs::whole_expr(&pieces) {
            Some(e) if e.path.len() == 1 || e.attr() == "id" => {
                // `role_definition` by name: that module imports this one (for `check_scope`).
                if let Some(d) = cx.decl(e.root())
                    && d.kind.type_name() != "role_definition"
                {
                    let msg = format!("`{}` is a {}, not a role_definition", e.root(), d.kind.type_name());
                    cx.push(Diag::error(Code::WrongReferenceKind, e.span, msg).label("not a role definition"));
                }
            }
            _ => cx.push(
                Diag::error(
                    Code::BadReference,
                    role.span,
                    "`role` must be a built-in role name or a whole reference to a role_definition like ${my_role}",
                )
                .label("not a role definition"),
            ),
        }
        return;
    }
    let r = role.value.as_str();
    if r.starts_with('/') {
        let guid = r
            .to_ascii_lowercase()
            .split_once("/providers/microsoft.authorization/roledefinitions/")
            .map(|(_, g)| g.to_string());
        if !guid.as_deref().is_some_and(is_guid) {
            cx.push(
                Diag::error(Code::RoleDefinitionId, role.span, format!("`{r}` is not a role definition id"))
                    .label("malformed id")
                    .help("a definition id ends in /providers/Microsoft.Authorization/roleDefinitions/<GUID>"),
            );
        }
        return;
    }
    if is_guid(r) || roles::by_name(r).is_some() {
        return;
    }
    let looks_like_guid = r.len() == 36 || r.chars().filter(|c| *c == '-').count() == 4;
    if looks_like_guid {
        cx.push(Diag::error(Code::RoleDefinitionId, role.span, format!("`{r}` is not a GUID")).label("malformed GUID"));
        return;
    }
    let mut d =
        Diag::error(Code::UnknownRole, role.span, format!("unknown built-in role `{r}`")).label("not a built-in role");
    d = match crate::model::diag::suggest(r, roles::built_in().iter().map(|x| x.name)) {
        Some(s) => d.help(format!("did you mean `{s}`?")),
        None => d.help("use a built-in role name, or a role definition GUID for a custom role"),
    };
    cx.push(d);
}

impl Spec for RoleAssignment {
    fn matched_by_content(&self) -> bool {
        true
    }
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let scope = if self.scope.value == "subscription" {
            Val::Known(format!("/subscriptions/{}", env.subscription))
        } else {
            env.resolve(&self.scope)
        };
        let principal = env.principal(&self.principal);
        // A custom role of the plan: its id (derived, so known before apply).
        let role =
            if refs::has_expr(&self.role) { env.resolve(&self.role) } else { Val::Known(self.role.value.clone()) };
        let guid = role.known().map_or_else(|| UNKNOWN.to_string(), role_guid);
        let definition =
            format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{guid}", env.subscription);
        let name = match (scope.known(), principal.known(), role.known()) {
            (Some(s), Some(p), Some(_)) => assignment_name(s, p, &definition),
            _ => UNKNOWN.to_string(),
        };
        let scope_s = scope.or_unknown();
        let desc = self.description.as_ref().map_or_else(
            || format!("idlab plan {}", env.plan),
            |d| format!("idlab plan {}: {}", env.plan, env.resolve(d).or_unknown()),
        );
        // principalType is sent for principals this plan creates (a fresh identity is not yet
        // known to RBAC) and for the caller; a literal object id is left for ARM to check, so
        // a typo fails at once instead of creating an assignment to nobody.
        let literal = crate::model::names::is_guid(&self.principal.value);
        let from_plan = !literal && !self.principal.value.starts_with("${caller");
        Some(Desired {
            immutable: vec![
                ("properties/roleDefinitionId", "a role assignment cannot change its role"),
                ("properties/principalId", "a role assignment cannot change its principal"),
            ],
            owner: Owner::Description,
            principal_from_plan: from_plan,
            // Without `condition:` the assignment must have none: one left on it shows as a
            // change, and the PUT (which leaves the field out) clears it.
            cleared: if self.condition.is_none() {
                vec!["properties/condition", "properties/conditionVersion"]
            } else {
                Vec::new()
            },
            ..Desired::new(
                format!("{scope_s}/providers/Microsoft.Authorization/roleAssignments/{name}"),
                "2022-04-01",
                {
                    let mut p = json!({ "roleDefinitionId": definition, "principalId": principal.or_unknown(), "description": desc });
                    if !literal {
                        p["principalType"] = json!("ServicePrincipal");
                    }
                    if let Some(c) = &self.condition {
                        p["condition"] = json!(env.resolve(c).or_unknown());
                        p["conditionVersion"] = json!(
                            self.condition_version
                                .as_ref()
                                .map_or_else(|| "2.0".to_string(), |v| env.resolve(v).or_unknown())
                        );
                    }
                    json!({ "properties": p })
                },
            )
        })
    }
    fn depends_on(&self) -> &[Sp<String>] {
        &self.depends_on
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        check_role(cx, &self.role);
        cx.principal("principal", &self.principal);
        check_scope(cx, &self.scope);
        if let Some(v) = &self.condition_version {
            if self.condition.is_none() {
                cx.push(
                    Diag::error(Code::InvalidValue, v.span, "`condition_version` without a `condition`")
                        .label("no condition to version")
                        .help("add a `condition:`, or remove `condition_version:`"),
                );
            } else if !refs::has_expr(v) && v.value != "2.0" {
                cx.push(
                    Diag::error(
                        Code::InvalidValue,
                        v.span,
                        format!("condition version `{}` is not supported", v.value),
                    )
                    .label("not 2.0")
                    .help("Azure accepts only condition version 2.0"),
                );
            }
        }
        if let Some(c) = &self.condition
            && c.value.trim().is_empty()
        {
            cx.push(Diag::error(Code::InvalidValue, c.span, "an empty `condition`").label("empty"));
        }
        if let Some(d) = &self.description
            && d.value.chars().count() > 1024
        {
            cx.push(
                Diag::error(Code::InvalidValue, d.span, "a role assignment description is limited to 1024 characters")
                    .label("too long"),
            );
        }
    }
    fn identity_key(&self) -> Option<String> {
        let role = roles::by_name(&self.role).map_or(self.role.value.to_ascii_lowercase(), |r| r.guid.to_string());
        Some(format!("roleAssignments|{}|{}|{role}", self.scope.value.to_ascii_lowercase(), self.principal.value))
    }
}

/// Check a scope: a whole reference to a declared ARM resource, `subscription`, or an ARM id.
pub(crate) fn check_scope(cx: &mut Cx<'_>, s: &Sp<String>) {
    if refs::has_expr(s) {
        let Ok(pieces) = refs::parse_template(s, refs::OffsetMap::new(s.span, s.value.len())) else {
            return;
        };
        match refs::whole_expr(&pieces) {
            Some(e) if e.path.len() == 1 || e.attr() == "id" => {
                if let Some(d) = cx.decl(e.root())
                    && d.kind.arm_type().is_none()
                {
                    let msg = format!(
                        "`{}` is a {}, which is not an Azure resource a role can be scoped to",
                        e.root(),
                        d.kind.type_name()
                    );
                    cx.push(Diag::error(Code::WrongReferenceKind, e.span, msg).label("not an ARM resource"));
                }
            }
            _ => cx.push(
                Diag::error(Code::BadReference, s.span, "`scope` must be a whole resource reference like ${rg}")
                    .label("not a resource reference"),
            ),
        }
    } else if s.value != "subscription" && !s.value.to_ascii_lowercase().starts_with("/subscriptions/") {
        cx.push(
            Diag::error(Code::BadReference, s.span, format!("`{}` is not a scope", s.value))
                .label("not a scope")
                .help("use a reference such as ${rg}, `subscription`, or an ARM id starting with /subscriptions/"),
        );
    }
}

/// `role_assignment`: the scope and principal as references where the plan declares them,
/// the role by its built-in name.
pub fn import_role_assignment(_id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let scope = text(have, "/properties/scope")?;
    let oid = text(have, "/properties/principalId")?;
    let def = text(have, "/properties/roleDefinitionId")?;
    let guid = last(def);
    let role = crate::roles::by_guid(guid)
        .map_or_else(|| src.reference(def).unwrap_or_else(|| guid.to_string()), |r| r.name.to_string());
    let principal = src.principal(oid);
    let scope_ref = src.reference(scope).unwrap_or_else(|| scope.to_string());
    let mut f = vec![
        Field::str("scope", scope_ref),
        Field::str("principal", principal.clone()),
        Field::str("role", role.clone()),
    ];
    if !principal.starts_with("${") {
        f[1].comment = Some(format!(
            "object id of a principal outside the plan ({})",
            text(have, "/properties/principalType").unwrap_or("unknown type")
        ));
    }
    if let Some(d) = text(have, "/properties/description").and_then(own_description) {
        f.push(Field::str("description", d));
    }
    if let Some(c) = text(have, "/properties/condition").filter(|c| !c.is_empty()) {
        f.push(Field::str("condition", c));
        if let Some(v) = text(have, "/properties/conditionVersion").filter(|v| *v != "2.0") {
            f.push(Field::str("condition_version", v));
        }
    }
    let who = if principal.starts_with("${") {
        principal.trim_start_matches("${").split(['.', '}']).next().unwrap_or_default().to_string()
    } else {
        "principal".to_string()
    };
    Some(Imported {
        key_hint: format!("{who}-{role}"),
        key_alt: "role".into(),
        rank: 7,
        late_key: true,
        fields: f,
        ..Imported::default()
    })
}

kind!(RoleAssignmentKind, RoleAssignment,
    type_name: "role_assignment",
    arm_type: Some("Microsoft.Authorization/roleAssignments"),
    api_version: "2022-04-01",
    attributes: &["id", "name"],
    weight: 3,
    import: import_role_assignment);
