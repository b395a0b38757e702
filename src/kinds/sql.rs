//! Azure SQL kinds (arm-contract §8): `sql_server`, `sql_database` and `sql_entra_admin`
//! (`servers/{s}/administrators/ActiveDirectory`). Granting the identity a contained user is
//! T-SQL, not ARM; the verify check signs in with the identity's token.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Cx, Spec, child_key, kind};
use crate::model::names;
use crate::model::{Code, Diag, Secret, Sp, SpMap};

/// An Azure SQL logical server.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlServer {
    #[serde(rename = "type")]
    #[schemars(skip)]
    pub kind: Sp<String>,
    /// Server name: 1–63 lowercase letters, digits and hyphens, unique across Azure.
    pub name: Sp<String>,
    /// The resource group: `${rg}` or the name of an existing group.
    pub resource_group: Sp<String>,
    /// Region; defaults to the plan's `location`.
    #[serde(default)]
    pub location: Option<Sp<String>>,
    /// Only Microsoft Entra authentication (no SQL logins); default true.
    #[serde(default)]
    pub entra_only: Option<Sp<bool>>,
    /// SQL administrator login, only when `entra_only: false`.
    #[serde(default)]
    pub admin_login: Option<Sp<String>>,
    /// SQL administrator password, only when `entra_only: false`.
    #[serde(default)]
    pub admin_password: Option<Secret>,
    /// Extra tags (idlab adds `idlab-plan`).
    #[serde(default)]
    pub tags: Option<SpMap<Sp<String>>>,
    /// Logical names this resource must wait for, beyond its references.
    #[serde(default)]
    pub depends_on: Vec<Sp<String>>,
}

impl Spec for SqlServer {
    fn name(&self) -> Option<&Sp<String>> {
        Some(&self.name)
    }
    fn depends_on(&self) -> &[Sp<String>] {
        &self.depends_on
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        cx.name_rule(&self.name, Code::SqlServerName, names::sql_server);
        cx.resource_group(&self.resource_group);
        cx.location(&self.location);
        cx.tags(&self.tags, 512);
        let entra_only = self.entra_only.as_ref().is_none_or(|e| e.value);
        match (entra_only, &self.admin_login, &self.admin_password) {
            (true, Some(l), _) => cx.push(
                Diag::error(Code::Conflict, l.span, "`admin_login` needs `entra_only: false`")
                    .label("SQL login on an Entra-only server"),
            ),
            (true, None, Some(_)) => cx.push(
                Diag::error(Code::Conflict, self.name.span, "`admin_password` needs `entra_only: false`")
                    .label("SQL password on an Entra-only server"),
            ),
            (false, None, _) | (false, _, None) => cx.push(
                Diag::error(
                    Code::Conflict,
                    self.name.span,
                    "with `entra_only: false` the server needs `admin_login` and `admin_password`",
                )
                .label("missing SQL administrator"),
            ),
            (false, Some(_), Some(p)) => cx.secret(p),
            (true, None, None) => {}
        }
    }
    fn identity_key(&self) -> Option<String> {
        Some(format!("sqlServers|{}", self.name.value.to_ascii_lowercase()))
    }
}

kind!(SqlServerKind, SqlServer,
    type_name: "sql_server",
    arm_type: Some("Microsoft.Sql/servers"),
    api_version: "2023-08-01",
    attributes: &["id", "name", "fqdn"],
    weight: 60);

/// A database on a server.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlDatabase {
    #[serde(rename = "type")]
    #[schemars(skip)]
    pub kind: Sp<String>,
    /// Database name.
    pub name: Sp<String>,
    /// The server: `${sql}`.
    pub server: Sp<String>,
    /// SKU name, e.g. `Basic`, `S0`, `GP_S_Gen5_1`; default `Basic`.
    #[serde(default)]
    pub sku: Option<Sp<String>>,
    /// Logical names this resource must wait for, beyond its references.
    #[serde(default)]
    pub depends_on: Vec<Sp<String>>,
}

impl Spec for SqlDatabase {
    fn name(&self) -> Option<&Sp<String>> {
        Some(&self.name)
    }
    fn depends_on(&self) -> &[Sp<String>] {
        &self.depends_on
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        cx.name_rule(&self.name, Code::ChildName, names::sql_database);
        cx.reference("server", &self.server, &["sql_server"]);
        if self.name.value.eq_ignore_ascii_case("master") {
            cx.push(
                Diag::error(Code::ChildName, self.name.span, "`master` is the server's system database")
                    .label("reserved"),
            );
        }
    }
    fn identity_key(&self) -> Option<String> {
        Some(child_key("databases", &self.server, &self.name))
    }
}

kind!(SqlDatabaseKind, SqlDatabase,
    type_name: "sql_database",
    arm_type: Some("Microsoft.Sql/servers/databases"),
    api_version: "2023-08-01",
    attributes: &["id", "name"],
    weight: 45);

/// Principal type of an Entra admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum EntraPrincipalType {
    User,
    Group,
    Application,
}

/// The server's Microsoft Entra administrator.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlEntraAdmin {
    #[serde(rename = "type")]
    #[schemars(skip)]
    pub kind: Sp<String>,
    /// The server: `${sql}`.
    pub server: Sp<String>,
    /// The admin's display name (login) as SQL sees it.
    pub login: Sp<String>,
    /// Who: `${caller}`, `${identity}`, `${vm.identity}` or an object id.
    pub principal: Sp<String>,
    /// `User`, `Group` or `Application` (managed identities); default `Application` for
    /// identities, `User` otherwise.
    #[serde(default)]
    pub principal_type: Option<EntraPrincipalType>,
    /// Logical names this resource must wait for, beyond its references.
    #[serde(default)]
    pub depends_on: Vec<Sp<String>>,
}

impl Spec for SqlEntraAdmin {
    fn depends_on(&self) -> &[Sp<String>] {
        &self.depends_on
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        cx.reference("server", &self.server, &["sql_server"]);
        cx.principal("principal", &self.principal);
        if self.login.value.trim().is_empty() || self.login.value.chars().count() > 128 {
            cx.push(
                Diag::error(Code::InvalidValue, self.login.span, "`login` must be 1 to 128 characters")
                    .label("bad login"),
            );
        }
    }
    fn identity_key(&self) -> Option<String> {
        Some(child_key("administrators", &self.server, "activedirectory"))
    }
}

kind!(SqlEntraAdminKind, SqlEntraAdmin,
    type_name: "sql_entra_admin",
    arm_type: Some("Microsoft.Sql/servers/administrators"),
    api_version: "2023-08-01",
    attributes: &["id"],
    weight: 10);
