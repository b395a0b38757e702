//! RBAC evaluation (arm-contract §4): the union over the principal's effective role
//! assignments whose scope is the target or one of its ancestors; an action is allowed when
//! some permission block of the assigned role matches it in `actions` and that same block does
//! not exclude it in `notActions` (data actions only through `dataActions` /
//! `notDataActions`; `*` in `actions` never grants data actions). Patterns are
//! case-insensitive and `*` spans `/`. The role is a built-in one (the whole catalogue of
//! `crate::roles`) or a custom definition stored in the state (`Microsoft.Authorization/
//! roleDefinitions` PUT); a block of a role definition with an ABAC condition grants nothing.
//!
//! A role assignment's ABAC condition (`condition`, version 2.0) is evaluated for a documented
//! subset (see [`Condition`]): `ActionMatches{'…'}`, and the blob's container name and path
//! (`@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name]`,
//! `@Resource[…/containers/blobs:path]`) with `StringEquals` / `StringStartsWith`, combined with
//! `!`/`NOT`, `AND`/`&&`, `OR`/`||` and parentheses. An assignment whose condition uses
//! anything else grants nothing: never unconditionally what Azure grants conditionally.

use std::sync::Arc;

use serde_json::{Value, json};

use super::store::State;
use super::table::{CONTAINERS, ROLE_ASSIGNMENTS, ROLE_DEFINITIONS};
use crate::arm::id::is_scope_prefix;
use crate::roles::{self, Role};

/// Case-insensitive glob where `*` matches any run of characters (including `/`).
///
/// ```
/// use idlab::local::rbac::pattern_matches;
/// assert!(pattern_matches("*/read", "Microsoft.Compute/virtualMachines/read"));
/// assert!(pattern_matches("Microsoft.Storage/storageAccounts/*", "microsoft.storage/storageaccounts/listkeys/action"));
/// assert!(!pattern_matches("*/read", "Microsoft.Compute/virtualMachines/write"));
/// ```
pub fn pattern_matches(pattern: &str, action: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let a: Vec<char> = action.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ai) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ai < a.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == a[ai] {
            pi += 1;
            ai += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ai;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ai = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Whether one permission block grants `action`: an allow pattern matches and no deny
/// pattern of the same block does.
fn block_allows<S: AsRef<str>>(allow: &[S], deny: &[S], action: &str) -> bool {
    allow.iter().any(|p| pattern_matches(p.as_ref(), action))
        && !deny.iter().any(|p| pattern_matches(p.as_ref(), action))
}

/// Whether the built-in `role` grants `action` (a data action when `data`).
pub fn role_allows(role: &Role, action: &str, data: bool) -> bool {
    role.permissions.iter().filter(|p| p.condition.is_none()).any(|p| {
        if data {
            block_allows(&p.data_actions, &p.not_data_actions, action)
        } else {
            block_allows(&p.actions, &p.not_actions, action)
        }
    })
}

/// One permission block of a custom role definition, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Block {
    pub actions: Vec<String>,
    pub not_actions: Vec<String>,
    pub data_actions: Vec<String>,
    pub not_data_actions: Vec<String>,
    pub conditional: bool,
}

impl Block {
    fn allows(&self, action: &str, data: bool) -> bool {
        !self.conditional
            && if data {
                block_allows(&self.data_actions, &self.not_data_actions, action)
            } else {
                block_allows(&self.actions, &self.not_actions, action)
            }
    }
}

/// The permission blocks of a role definition body (`properties.permissions`).
pub fn blocks(body: &Value) -> Vec<Block> {
    let list = |p: &Value, k: &str| -> Vec<String> {
        p.get(k).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
    };
    body.pointer("/properties/permissions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| Block {
            actions: list(p, "actions"),
            not_actions: list(p, "notActions"),
            data_actions: list(p, "dataActions"),
            not_data_actions: list(p, "notDataActions"),
            conditional: p.get("condition").is_some_and(|c| !c.is_null()),
        })
        .collect()
}

/// The role an assignment names: a built-in role, a custom definition, or one that no longer
/// exists (grants nothing).
#[derive(Debug, Clone)]
pub enum Definition {
    BuiltIn(&'static Role),
    Custom(Arc<[Block]>),
    Missing,
}

impl Definition {
    /// Whether this role grants `action` (a data action when `data`).
    pub fn allows(&self, action: &str, data: bool) -> bool {
        match self {
            Definition::BuiltIn(r) => role_allows(r, action, data),
            Definition::Custom(b) => b.iter().any(|b| b.allows(action, data)),
            Definition::Missing => false,
        }
    }
}

/// One assignment as RBAC sees it.
#[derive(Debug, Clone)]
pub struct Grant {
    pub scope: String,
    pub principal_id: String,
    pub role_guid: String,
    pub definition: Definition,
    /// The assignment's ABAC condition.
    pub condition: Condition,
}

/// Whether any grant for `principal` at or above `scope` allows `action`. A blob's scope is
/// `{container id}/blobs/{path}`: conditions read the container name and blob path from it.
pub fn allowed(grants: &[Grant], principal: &str, scope: &str, action: &str, data: bool) -> bool {
    grants.iter().any(|g| {
        g.principal_id.eq_ignore_ascii_case(principal)
            && is_scope_prefix(&g.scope, scope)
            && g.definition.allows(action, data)
            && g.condition.allows(action, scope)
    })
}

/// A role assignment's ABAC condition, as the local cloud evaluates it.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// No condition: the role applies as defined.
    None,
    /// A condition within the supported subset.
    Expr(Arc<Expr>),
    /// Outside the subset (another attribute, operator, function, or version): grants nothing.
    Unsupported,
}

impl Condition {
    /// The condition stored on an assignment (`condition`, `conditionVersion`).
    ///
    /// ```
    /// use idlab::local::rbac::Condition;
    /// let c = "((!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'})) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'logs'))";
    /// assert!(matches!(Condition::of(Some(c), Some("2.0")), Condition::Expr(_)));
    /// assert_eq!(Condition::of(Some(c), Some("1.0")), Condition::Unsupported);
    /// assert_eq!(Condition::of(Some("@Request[x] StringEquals 'y'"), None), Condition::Unsupported);
    /// assert_eq!(Condition::of(None, None), Condition::None);
    /// ```
    pub fn of(text: Option<&str>, version: Option<&str>) -> Condition {
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else { return Condition::None };
        if version.is_some_and(|v| v != "2.0") {
            return Condition::Unsupported;
        }
        parse_condition(text).map_or(Condition::Unsupported, |e| Condition::Expr(Arc::new(e)))
    }

    /// Whether the condition lets `action` through on `scope`.
    pub fn allows(&self, action: &str, scope: &str) -> bool {
        match self {
            Condition::None => true,
            Condition::Unsupported => false,
            Condition::Expr(e) => e.eval(action, &Target::of(scope)),
        }
    }
}

/// The supported condition language (see [`Condition`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// `ActionMatches{'pattern'}`.
    Action(String),
    /// `@Resource[attribute] operator 'value'`.
    Compare {
        path: bool,
        starts_with: bool,
        value: String,
    },
}

/// What a request touches: the container name and the blob path, from its scope.
struct Target<'a> {
    container: Option<&'a str>,
    path: Option<&'a str>,
}

impl<'a> Target<'a> {
    fn of(scope: &'a str) -> Target<'a> {
        let lower = scope.to_ascii_lowercase();
        let Some(at) = lower.find("/blobservices/default/containers/") else {
            return Target { container: None, path: None };
        };
        let rest = &scope[at + "/blobservices/default/containers/".len()..];
        let (container, path) = match rest.split_once('/') {
            Some((c, p)) => (c, p.get("blobs/".len()..).filter(|_| p.to_ascii_lowercase().starts_with("blobs/"))),
            None => (rest, None),
        };
        Target { container: Some(container), path }
    }
}

impl Expr {
    fn eval(&self, action: &str, t: &Target<'_>) -> bool {
        match self {
            Expr::Or(a, b) => a.eval(action, t) || b.eval(action, t),
            Expr::And(a, b) => a.eval(action, t) && b.eval(action, t),
            Expr::Not(a) => !a.eval(action, t),
            Expr::Action(p) => pattern_matches(p, action),
            Expr::Compare { path, starts_with, value } => {
                // An attribute the request does not have fails the comparison.
                let Some(have) = (if *path { t.path } else { t.container }) else { return false };
                if *starts_with { have.starts_with(value.as_str()) } else { have == value }
            }
        }
    }
}

/// Whether `attr` (an `@Resource[…]` name) is one of the subset's: `Some(true)` for the blob
/// path, `Some(false)` for the container name.
fn attribute(attr: &str) -> Option<bool> {
    let attr = attr.trim();
    if attr.eq_ignore_ascii_case(&format!("{CONTAINERS}:name")) {
        Some(false)
    } else if attr.eq_ignore_ascii_case(&format!("{CONTAINERS}/blobs:path")) {
        Some(true)
    } else {
        None
    }
}

/// Parse a condition of the supported subset; `None` for anything else.
pub fn parse_condition(text: &str) -> Option<Expr> {
    let mut p = Parser { s: text.as_bytes(), i: 0 };
    let e = p.or()?;
    p.ws();
    (p.i == p.s.len()).then_some(e)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    /// Consume `word` (case-insensitive) when it comes next.
    fn eat(&mut self, word: &str) -> bool {
        self.ws();
        let end = self.i + word.len();
        let hit = self.s.get(self.i..end).is_some_and(|w| w.eq_ignore_ascii_case(word.as_bytes()));
        // A keyword must not run into an identifier (`ORx`).
        let alpha = word.bytes().all(|b| b.is_ascii_alphabetic());
        let bounded = !alpha || self.s.get(end).is_none_or(|b| !b.is_ascii_alphanumeric());
        if hit && bounded {
            self.i = end;
        }
        hit && bounded
    }

    fn or(&mut self) -> Option<Expr> {
        let mut e = self.and()?;
        while self.eat("OR") || self.eat("||") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Some(e)
    }

    fn and(&mut self) -> Option<Expr> {
        let mut e = self.factor()?;
        while self.eat("AND") || self.eat("&&") {
            e = Expr::And(Box::new(e), Box::new(self.factor()?));
        }
        Some(e)
    }

    fn factor(&mut self) -> Option<Expr> {
        if self.eat("!") || self.eat("NOT") {
            return Some(Expr::Not(Box::new(self.factor()?)));
        }
        if self.eat("(") {
            let e = self.or()?;
            return self.eat(")").then_some(e);
        }
        if self.eat("ActionMatches") {
            if !self.eat("{") {
                return None;
            }
            let a = self.quoted()?;
            return self.eat("}").then_some(Expr::Action(a));
        }
        if self.eat("@Resource[") {
            let end = self.s[self.i..].iter().position(|b| *b == b']')? + self.i;
            let attr = std::str::from_utf8(&self.s[self.i..end]).ok()?;
            self.i = end + 1;
            let path = attribute(attr)?;
            let starts_with = if self.eat("StringStartsWith") {
                true
            } else if self.eat("StringEquals") {
                false
            } else {
                return None;
            };
            return Some(Expr::Compare { path, starts_with, value: self.quoted()? });
        }
        None
    }

    /// A single-quoted string (no escapes).
    fn quoted(&mut self) -> Option<String> {
        if !self.eat("'") {
            return None;
        }
        let end = self.s[self.i..].iter().position(|b| *b == b'\'')? + self.i;
        let v = std::str::from_utf8(&self.s[self.i..end]).ok()?.to_string();
        self.i = end + 1;
        Some(v)
    }
}

/// The custom role definitions in the state, by lower-case GUID.
pub fn custom_definitions(st: &State) -> impl Iterator<Item = (String, &Value)> {
    st.resources
        .values()
        .filter(|r| r.kind.eq_ignore_ascii_case(ROLE_DEFINITIONS))
        .map(|r| (role_guid(&r.id).to_ascii_lowercase(), &r.body))
}

/// The GUID at the end of a role definition id (or the GUID itself).
pub fn role_guid(definition_id: &str) -> &str {
    definition_id.rsplit('/').next().unwrap_or(definition_id)
}

/// The role assignments that count now (propagation delay elapsed).
pub fn grants(st: &State, now: u64) -> Vec<Grant> {
    let custom: std::collections::HashMap<String, Arc<[Block]>> =
        custom_definitions(st).map(|(g, b)| (g, blocks(b).into())).collect();
    st.resources
        .values()
        .filter(|r| r.kind.eq_ignore_ascii_case(ROLE_ASSIGNMENTS))
        .filter(|r| r.effective_ms.unwrap_or(0) <= now)
        .filter_map(|r| {
            let p = r.body.get("properties")?;
            let guid = role_guid(p.get("roleDefinitionId")?.as_str()?).to_string();
            let definition = match roles::by_guid(&guid) {
                Some(r) => Definition::BuiltIn(r),
                None => custom
                    .get(&guid.to_ascii_lowercase())
                    .map_or(Definition::Missing, |b| Definition::Custom(b.clone())),
            };
            Some(Grant {
                scope: p.get("scope")?.as_str()?.to_string(),
                principal_id: p.get("principalId")?.as_str()?.to_string(),
                role_guid: guid,
                definition,
                condition: Condition::of(
                    p.get("condition").and_then(Value::as_str),
                    p.get("conditionVersion").and_then(Value::as_str),
                ),
            })
        })
        .collect()
}

/// The stored body of a role assignment.
#[allow(clippy::too_many_arguments)]
pub fn role_assignment_body(
    id: &str,
    name: &str,
    scope: &str,
    role_definition_id: &str,
    principal: &str,
    principal_type: &str,
    description: Option<&str>,
    created_by: &str,
    now_ms: u64,
) -> Value {
    let ts = time::OffsetDateTime::from_unix_timestamp((now_ms / 1000) as i64)
        .map(|d| d.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
        .unwrap_or_default();
    json!({
        "properties": {
            "roleDefinitionId": role_definition_id,
            "principalId": principal,
            "principalType": principal_type,
            "scope": scope,
            "condition": null,
            "conditionVersion": null,
            "createdOn": ts,
            "updatedOn": ts,
            "createdBy": created_by,
            "updatedBy": created_by,
            "delegatedManagedIdentityResourceId": null,
            "description": description,
        },
        "id": id,
        "type": ROLE_ASSIGNMENTS,
        "name": name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(scope: &str, role: &str) -> Grant {
        let r = roles::by_name(role).expect("a built-in role");
        Grant {
            scope: scope.into(),
            principal_id: "p".into(),
            role_guid: r.guid.to_string(),
            definition: Definition::BuiltIn(r),
            condition: Condition::None,
        }
    }

    const READ: &str = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read";
    const C: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a/blobServices/default/containers";

    fn conditional(text: &str) -> [Grant; 1] {
        let mut g = grant("/subscriptions/s", "Storage Blob Data Reader");
        g.condition = Condition::of(Some(text), Some("2.0"));
        [g]
    }

    #[test]
    fn a_container_condition_limits_reads_to_that_container() {
        let g = conditional(
            "(\n (\n  !(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'})\n )\n OR\n (\n  @Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'logs'\n )\n)",
        );
        assert!(allowed(&g, "p", &format!("{C}/logs/blobs/a.txt"), READ, true));
        assert!(allowed(&g, "p", &format!("{C}/logs"), READ, true));
        assert!(!allowed(&g, "p", &format!("{C}/other/blobs/a.txt"), READ, true));
        assert!(!allowed(&g, "p", &format!("{C}/logsx/blobs/a.txt"), READ, true));
        // Outside the storage account: no container, so the comparison fails.
        assert!(!allowed(&g, "p", "/subscriptions/s", READ, true));
    }

    #[test]
    fn a_path_prefix_condition_and_unsupported_conditions() {
        let g = conditional(
            "((!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'})) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringStartsWith 'reports/' && @Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'c'))",
        );
        assert!(allowed(&g, "p", &format!("{C}/c/blobs/reports/q1.csv"), READ, true));
        assert!(!allowed(&g, "p", &format!("{C}/c/blobs/other/q1.csv"), READ, true));
        assert!(!allowed(&g, "p", &format!("{C}/d/blobs/reports/q1.csv"), READ, true));
        for text in [
            "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags:project<$key_case_sensitive$>] StringEquals 'x'",
            "((!(ActionMatches{'x'})) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEqualsIgnoreCase 'logs'))",
            "((!(ActionMatches{'x'} AND NOT SubOperationMatches{'Blob.List'})) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'logs'))",
            "(@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'logs'",
        ] {
            let g = conditional(text);
            assert_eq!(g[0].condition, Condition::Unsupported, "{text}");
            assert!(!allowed(&g, "p", &format!("{C}/logs/blobs/a"), READ, true), "{text}");
            assert!(!allowed(
                &g,
                "p",
                &format!("{C}/logs"),
                "Microsoft.Storage/storageAccounts/blobServices/containers/read",
                false
            ));
        }
    }

    #[test]
    fn contributor_cannot_write_role_assignments() {
        let g = [grant("/subscriptions/s", "Contributor")];
        assert!(allowed(
            &g,
            "p",
            "/subscriptions/s/resourceGroups/rg",
            "Microsoft.Compute/virtualMachines/write",
            false
        ));
        assert!(!allowed(
            &g,
            "p",
            "/subscriptions/s/resourceGroups/rg",
            "Microsoft.Authorization/roleAssignments/write",
            false
        ));
    }

    #[test]
    fn reader_inherits_down_but_not_sideways_and_gets_no_data() {
        let g = [grant("/subscriptions/s/resourceGroups/rg", "Reader")];
        assert!(allowed(
            &g,
            "p",
            "/subscriptions/s/resourceGroups/RG/providers/Microsoft.X/y/z",
            "Microsoft.X/y/read",
            false
        ));
        assert!(!allowed(&g, "p", "/subscriptions/s/resourceGroups/rg2", "Microsoft.X/y/read", false));
        assert!(!allowed(&g, "p", "/subscriptions/s/resourceGroups/rg", "Microsoft.X/y/write", false));
        let owner = [grant("/subscriptions/s", "Owner")];
        assert!(!allowed(
            &owner,
            "p",
            "/subscriptions/s",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            true
        ));
        let blob = [grant("/subscriptions/s", "Storage Blob Data Reader")];
        assert!(allowed(
            &blob,
            "p",
            "/subscriptions/s/x",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            true
        ));
    }
}
