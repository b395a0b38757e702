//! Azure SQL kinds (arm-contract §8): `sql_server`, `sql_database` and `sql_entra_admin`
//! (`servers/{s}/administrators/ActiveDirectory`). Granting the identity a contained user is
//! T-SQL, not ARM: [`contained_user_sql`] writes it for the "next step" apply prints; the
//! verify check `sql_login` is token-only.
//!
//! Ownership: servers and databases carry the `idlab-plan` tag. The Entra admin has no tags;
//! it is the plan's when its server is ([`Owner::Parent`]), and it goes with the server on
//! destroy (Azure refuses to remove the admin of an Entra-only server on its own).
//!
//! An Entra-only server cannot be created without an Entra admin, so its create carries the
//! deploying principal as the first admin ([`Spec::create_only`]); a `sql_entra_admin` then
//! sets the one the plan names. `entra_only` itself is a create-time setting.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, Value as J, json};

use super::env::{Desired, Env, NameCheck, Owner, UNKNOWN};
use super::header::{ArmHeader, arm_spec};
use super::import::{
    Children, Field, Imported, Read, Source, Y, env_name, imported, last, placeholder, same, text, with_header,
};
use super::{Cx, Spec, child_key, kind};
use crate::model::names;
use crate::model::{Code, Diag, Secret, Sp};

arm_spec! {
    /// An Azure SQL logical server.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct SqlServer {
        /// Server name: 1–63 lowercase letters, digits and hyphens, unique across Azure.
        name;
        /// Extra tags (idlab adds `idlab-plan`).
        tags;
        /// Only Microsoft Entra authentication (no SQL logins); default true.
        #[serde(default)]
        pub entra_only: Option<Sp<bool>>,
        /// SQL administrator login, only when `entra_only: false`.
        #[serde(default)]
        pub admin_login: Option<Sp<String>>,
        /// SQL administrator password, only when `entra_only: false`.
        #[serde(default)]
        pub admin_password: Option<Secret>,
    }
}

/// The api-version idlab sends for every SQL type.
const API: &str = "2023-08-01";

/// The login of the first Entra admin of an Entra-only server (the deploying principal).
pub const DEPLOYER_LOGIN: &str = "idlab-deployer";

impl SqlServer {
    fn entra_only(&self) -> bool {
        self.entra_only.as_ref().is_none_or(|e| e.value)
    }
}

impl Spec for SqlServer {
    fn header(&self) -> Option<ArmHeader<'_>> {
        Some(self.arm_header())
    }
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let (id, _) = self.arm_header().id(env, "Microsoft.Sql/servers");
        let mut properties = json!({ "version": "12.0", "minimalTlsVersion": "1.2", "publicNetworkAccess": "Enabled" });
        let mut secrets = Vec::new();
        if !self.entra_only()
            && let (Some(login), Some(password)) = (&self.admin_login, &self.admin_password)
        {
            properties["administratorLogin"] = json!(env.resolve(login).or_unknown());
            secrets.push(("/properties/administratorLoginPassword".to_string(), password.clone()));
        }
        Some(Desired {
            secrets,
            immutable: vec![
                ("location", "a SQL server's location cannot change"),
                ("properties/administratorLogin", "a SQL server's administrator login cannot change"),
            ],
            ..Desired::new(
                id,
                API,
                json!({ "location": env.location(&self.location), "tags": env.tags(&self.tags), "properties": properties }),
            )
        })
    }
    fn create_only(&self, env: &Env<'_>) -> Vec<(String, Value)> {
        if !self.entra_only() {
            return Vec::new();
        }
        let mut admin = json!({
            "administratorType": "ActiveDirectory",
            "login": DEPLOYER_LOGIN,
            "sid": env.caller_object_id.unwrap_or(UNKNOWN),
            "azureADOnlyAuthentication": true,
        });
        if let Some(t) = env.tenant_id {
            admin["tenantId"] = json!(t);
        }
        vec![("/properties/administrators".to_string(), admin)]
    }
    fn name_check(&self, env: &Env<'_>) -> Option<NameCheck> {
        let name = env.resolve(&self.name).known()?.to_string();
        Some(NameCheck {
            path: format!("/subscriptions/{}/providers/Microsoft.Sql/checkNameAvailability", env.subscription),
            api_version: API,
            body: json!({ "name": name, "type": "Microsoft.Sql/servers" }),
            name,
        })
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        self.arm_header().validate(cx, Code::SqlServerName, names::sql_server, 512);
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
    weight: 60,
    naming: crate::kinds::instance::InstanceName { field: "name", suffix: crate::kinds::instance::Suffix::DashLower, max: 63, scope: "Azure" },
    import: import_sql_server,
    children: import_sql_server_children);

/// `sql_server`: Entra-only by default; a server that takes SQL logins is `entra_only:
/// false` with its login and an `{ env: NAME }` placeholder for the password (never read).
/// Its `master` database is Azure's: implicit, not declared.
pub fn import_sql_server(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let entra_only = have.pointer("/properties/administrators/azureADOnlyAuthentication").and_then(J::as_bool);
    let login = text(have, "/properties/administratorLogin");
    let mut own = Vec::new();
    let mut placeholders = Vec::new();
    if entra_only != Some(true)
        && let Some(login) = login
    {
        own.push(Field::new("entra_only", Y::Bool(false)));
        own.push(Field::str("admin_login", login));
        let key = src.key(id).unwrap_or(last(id)).to_string();
        let (value, p) = placeholder(
            env_name(&key, "admin_password"),
            format!("the SQL administrator password of server {} (Azure never returns it)", last(id)),
        );
        let mut f = Field::new("admin_password", value);
        f.comment = Some(format!("set {}: {}", p.name, p.what));
        own.push(f);
        placeholders.push(p);
    }
    let mut i = imported(id, have, "sql", 5, with_header(id, have, src, own));
    i.placeholders = placeholders;
    i.covers = vec![(format!("{id}/databases/master").to_ascii_lowercase(), "system database".to_string())];
    if entra_only != Some(true) && login.is_none() {
        i.unexpressed.push("Entra-only authentication off with no SQL administrator (plans turn it on)".into());
    }
    Some(i)
}

/// A server's Entra admin, read by its one name (`administrators/ActiveDirectory`); its
/// databases are in the group's listing.
pub fn import_sql_server_children(id: &str, _have: &J) -> Children {
    Children {
        found: Vec::new(),
        reads: vec![Read::Get {
            id: format!("{id}/administrators/ActiveDirectory"),
            kind: super::Kind::type_name(&SqlEntraAdminKind),
        }],
    }
}

/// The plan's `sku` for a database's: the inverse of [`database_sku`] (`Basic`, the default,
/// is left out).
fn sku_name(sku: &J) -> Option<String> {
    let name = text(sku, "/name")?;
    let capacity = sku.get("capacity").and_then(J::as_u64);
    let written = match (name, capacity) {
        (n, _) if same(n, "Basic") => return None,
        (n @ ("Standard" | "Premium"), Some(c)) => {
            let letter = &n[..1];
            (0..=15)
                .map(|k| format!("{letter}{k}"))
                .find(|objective| database_sku(objective) == json!({ "name": n, "capacity": c }))
                .unwrap_or_else(|| n.to_string())
        }
        (n, Some(c)) if ["GP_", "BC_", "HS_"].iter().any(|p| n.starts_with(p)) => format!("{n}_{c}"),
        (n, _) => n.to_string(),
    };
    Some(written)
}

/// `sql_database`: its server as a reference and its SKU.
pub fn import_sql_database(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let (server, name) = id.rsplit_once("/databases/")?;
    if same(name, "master") {
        return None;
    }
    let mut f = vec![
        Field::str("name", name),
        Field::str("server", src.reference(server).unwrap_or_else(|| server.to_string())),
    ];
    if let Some(s) = have.get("sku").and_then(sku_name) {
        f.push(Field::str("sku", s));
    }
    Some(Imported { key_hint: name.to_string(), key_alt: "db".into(), rank: 6, fields: f, ..Imported::default() })
}

/// `sql_entra_admin`: its principal as `${caller}` (the deploying principal) or the
/// declaration that has it, else its object id.
pub fn import_sql_entra_admin(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let server = id.rsplit_once("/administrators/").map_or(id, |(s, _)| s);
    let sid = text(have, "/properties/sid")?;
    let principal = src.principal(sid);
    let mut p = Field::str("principal", principal.clone());
    if !principal.starts_with("${") {
        p.comment = Some("object id of a principal outside the plan".into());
    }
    let f = vec![
        Field::str("server", src.reference(server).unwrap_or_else(|| server.to_string())),
        Field::str("login", text(have, "/properties/login").unwrap_or_default()),
        p,
    ];
    let key = src.key(server).unwrap_or(last(server)).to_string();
    Some(Imported {
        key_hint: format!("{key}-admin"),
        key_alt: "admin".into(),
        rank: 6,
        late_key: true,
        fields: f,
        ..Imported::default()
    })
}

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

/// The `sku` a database is created with, in the form the service reports it back (so a
/// re-plan compares equal): DTU objectives become their edition and DTUs (`S0` is
/// `{name: Standard, capacity: 10}`), vCore names their family and cores (`GP_S_Gen5_1` is
/// `{name: GP_S_Gen5, capacity: 1}`). Other names go as written.
///
/// ```
/// use idlab::kinds::sql::database_sku;
/// use serde_json::json;
/// assert_eq!(database_sku("Basic"), json!({"name": "Basic"}));
/// assert_eq!(database_sku("S3"), json!({"name": "Standard", "capacity": 100}));
/// assert_eq!(database_sku("GP_S_Gen5_2"), json!({"name": "GP_S_Gen5", "capacity": 2}));
/// ```
pub fn database_sku(name: &str) -> Value {
    let dtus = |edition: &str, n: &str| -> Option<u64> {
        Some(match (edition, n.parse::<u32>().ok()?) {
            ("Standard", 0) => 10,
            ("Standard", 1) => 20,
            ("Standard", 2) => 50,
            ("Standard", 3) => 100,
            ("Standard", 4) => 200,
            ("Standard", 6) => 400,
            ("Standard", 7) => 800,
            ("Standard", 9) => 1600,
            ("Standard", 12) => 3000,
            ("Premium", 1) => 125,
            ("Premium", 2) => 250,
            ("Premium", 4) => 500,
            ("Premium", 6) => 1000,
            ("Premium", 11) => 1750,
            ("Premium", 15) => 4000,
            _ => return None,
        })
    };
    let dtu = name
        .strip_prefix('S')
        .map(|n| ("Standard", n))
        .or_else(|| name.strip_prefix('P').map(|n| ("Premium", n)))
        .and_then(|(e, n)| Some((e, dtus(e, n)?)));
    if let Some((edition, capacity)) = dtu {
        return json!({ "name": edition, "capacity": capacity });
    }
    let vcore = ["GP_", "BC_", "HS_"].iter().any(|p| name.starts_with(p));
    if vcore
        && let Some((family, cores)) = name.rsplit_once('_')
        && let Ok(c) = cores.parse::<u64>()
    {
        return json!({ "name": family, "capacity": c });
    }
    json!({ "name": name })
}

impl Spec for SqlDatabase {
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let server = env.resolve(&self.server).or_unknown();
        let name = env.resolve(&self.name).or_unknown();
        // A database lives in its server's region.
        let root = self.server.value.trim_start_matches("${").trim_end_matches('}').trim_end_matches(".id");
        let location = env.resolve_str(&format!("${{{root}.location}}")).or_unknown();
        let sku = self.sku.as_ref().map_or_else(|| "Basic".to_string(), |s| env.resolve(s).or_unknown());
        Some(Desired {
            immutable: vec![("location", "a database's location is its server's")],
            ..Desired::new(
                format!("{server}/databases/{name}"),
                API,
                json!({ "location": location, "tags": env.tags(&None), "sku": database_sku(&sku) }),
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
    weight: 45,
    import: import_sql_database);

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
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let server = env.resolve(&self.server).or_unknown();
        let mut properties = json!({
            "administratorType": "ActiveDirectory",
            "login": env.resolve(&self.login).or_unknown(),
            "sid": env.principal(&self.principal).or_unknown(),
        });
        if let Some(t) = env.tenant_id {
            properties["tenantId"] = json!(t);
        }
        Some(Desired {
            owner: Owner::Parent,
            ..Desired::new(format!("{server}/administrators/ActiveDirectory"), API, json!({ "properties": properties }))
        })
    }
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
    weight: 10,
    import: import_sql_entra_admin);

/// The T-SQL that makes `user` (an identity's display name: a VM's name for its
/// system-assigned identity, the identity's name otherwise) a reader of the database it is
/// run in. Names are bracket-quoted (`]` doubled), as T-SQL quotes identifiers.
///
/// ```
/// use idlab::kinds::sql::contained_user_sql;
/// assert_eq!(
///     contained_user_sql("myVM"),
///     "CREATE USER [myVM] FROM EXTERNAL PROVIDER; ALTER ROLE db_datareader ADD MEMBER [myVM];"
/// );
/// ```
pub fn contained_user_sql(user: &str) -> String {
    let q = user.replace(']', "]]");
    format!("CREATE USER [{q}] FROM EXTERNAL PROVIDER; ALTER ROLE db_datareader ADD MEMBER [{q}];")
}

/// The contained database user a `sql_login` check needs before the identity can sign in:
/// T-SQL run by the server's Entra admin, since ARM cannot create database users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainedUser {
    /// The server's host name, `{server}.database.windows.net`.
    pub server: String,
    pub database: String,
    /// The user: the identity's display name.
    pub user: String,
    /// Who runs it: the login of the server's Entra admin, as the plan names it.
    pub admin: String,
    /// The statements, names filled in.
    pub sql: String,
}

fn root_of(s: &str) -> &str {
    let inner = s.trim().trim_start_matches("${").trim_end_matches('}');
    inner.split('.').next().unwrap_or(inner)
}

/// For a `sql_login` check on database `db` (a logical name) from VM `vm`, with the
/// user-assigned identity `identity` (a logical name) or the VM's system identity: the
/// contained user it needs, or `None` when that identity is the server's Entra admin (it
/// signs in as admin) or the plan does not say enough.
pub fn contained_user(
    decls: &[super::Decl],
    env: &Env<'_>,
    vm: &str,
    identity: Option<&str>,
    db: &str,
) -> Option<ContainedUser> {
    let find = |logical: &str| decls.iter().find(|d| d.logical.value == logical);
    let database = find(db)?.spec.as_any().downcast_ref::<SqlDatabase>()?;
    let server_logical = root_of(&database.server.value).to_string();
    let server = find(&server_logical)?.spec.as_any().downcast_ref::<SqlServer>()?;
    let admin = decls
        .iter()
        .filter_map(|d| d.spec.as_any().downcast_ref::<SqlEntraAdmin>())
        .find(|a| root_of(&a.server.value) == server_logical);
    // The principal reference that would make this identity the admin.
    let me_as_admin = |a: &SqlEntraAdmin| {
        let p = a.principal.value.trim().trim_start_matches("${").trim_end_matches('}');
        match identity {
            Some(id) => p == id || p == format!("{id}.principal_id") || p == format!("{id}.id"),
            None => p == format!("{vm}.identity") || p == format!("{vm}.identity.principal_id"),
        }
    };
    if admin.is_some_and(me_as_admin) {
        return None;
    }
    let user_decl = find(identity.unwrap_or(vm))?;
    let user = env.resolve(user_decl.spec.name()?).known()?.to_string();
    let server_name = env.resolve(&server.name).known()?.to_string();
    let host = env
        .values
        .get(&(server_logical, "fqdn".to_string()))
        .cloned()
        .unwrap_or_else(|| format!("{server_name}.database.windows.net"));
    let admin = match admin {
        Some(a) => env.resolve(&a.login).known()?.to_string(),
        None if server.entra_only() => DEPLOYER_LOGIN.to_string(),
        None => return None,
    };
    Some(ContainedUser {
        server: host,
        database: env.resolve(&database.name).known()?.to_string(),
        sql: contained_user_sql(&user),
        user,
        admin,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env<'a>(values: &'a HashMap<(String, String), String>) -> Env<'a> {
        Env {
            subscription: "s",
            plan: "p",
            location: "eastus",
            logical: "x",
            values,
            caller_object_id: Some("00000000-0000-0000-0000-0000000000c0"),
            tenant_id: Some("00000000-0000-0000-0000-0000000000t0"),
            base_dir: std::path::Path::new("."),
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(yaml: &str) -> T {
        let node = crate::model::yaml::parse(yaml).expect("yaml");
        crate::model::de::from_node::<T>(&node).expect("spec")
    }

    #[test]
    fn an_entra_only_server_is_created_with_the_deployer_as_admin_and_no_password() {
        let values = HashMap::new();
        let s: SqlServer = parse("type: sql_server\nname: srv\nresource_group: rg\n");
        let d = s.desired(&env(&values)).expect("desired");
        assert_eq!(d.id, "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/srv");
        assert!(d.secrets.is_empty() && d.body["properties"].get("administrators").is_none());
        let extra = s.create_only(&env(&values));
        assert_eq!(extra[0].0, "/properties/administrators");
        assert_eq!(extra[0].1["sid"], "00000000-0000-0000-0000-0000000000c0");
        assert_eq!(extra[0].1["azureADOnlyAuthentication"], true);
        let c = s.name_check(&env(&values)).expect("check");
        assert_eq!(c.body["type"], "Microsoft.Sql/servers");
    }

    #[test]
    fn a_password_server_sends_its_password_only_through_secrets() {
        let values = HashMap::new();
        let s: SqlServer = parse(
            "type: sql_server\nname: srv\nresource_group: rg\nentra_only: false\nadmin_login: dba\nadmin_password: { env: PW }\n",
        );
        let d = s.desired(&env(&values)).expect("desired");
        assert_eq!(d.body["properties"]["administratorLogin"], "dba");
        assert_eq!(d.secrets[0].0, "/properties/administratorLoginPassword");
        assert!(s.create_only(&env(&values)).is_empty());
    }

    #[test]
    fn database_and_admin_hang_under_their_server() {
        let mut values = HashMap::new();
        let server = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/srv".to_string();
        values.insert(("sql".to_string(), "id".to_string()), server.clone());
        values.insert(("sql".to_string(), "location".to_string()), "westeurope".to_string());
        values.insert(
            ("vm".to_string(), "identity.principal_id".to_string()),
            "00000000-0000-0000-0000-0000000000aa".to_string(),
        );
        let db: SqlDatabase = parse("type: sql_database\nname: testdb\nserver: ${sql}\nsku: S0\n");
        let d = db.desired(&env(&values)).expect("desired");
        assert_eq!(d.id, format!("{server}/databases/testdb"));
        assert_eq!(d.body["location"], "westeurope");
        assert_eq!(d.body["sku"], json!({"name": "Standard", "capacity": 10}));
        let a: SqlEntraAdmin =
            parse("type: sql_entra_admin\nserver: ${sql}\nlogin: vm-admin\nprincipal: ${vm.identity}\n");
        let d = a.desired(&env(&values)).expect("desired");
        assert_eq!(d.id, format!("{server}/administrators/ActiveDirectory"));
        assert_eq!(d.body["properties"]["sid"], "00000000-0000-0000-0000-0000000000aa");
        assert_eq!(d.owner, Owner::Parent);
        assert!(d.body.get("tags").is_none());
    }

    fn import_source<'a>(
        keys: &'a std::collections::BTreeMap<String, String>,
        principals: &'a std::collections::BTreeMap<String, String>,
        bodies: &'a std::collections::BTreeMap<String, J>,
    ) -> Source<'a> {
        Source::for_test(bodies, keys, principals)
    }

    const SRV: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Sql/servers/srv";

    #[test]
    fn database_skus_import_as_the_names_a_plan_writes() {
        for name in ["S0", "S3", "P11", "GP_S_Gen5_2", "BC_Gen5_4", "Hyperscale"] {
            assert_eq!(sku_name(&database_sku(name)).as_deref(), Some(name));
        }
        assert_eq!(sku_name(&json!({"name": "Basic", "tier": "Basic", "capacity": 5})), None);
    }

    #[test]
    fn a_server_imports_entra_only_or_with_a_password_placeholder_and_covers_master() {
        let (keys, principals, bodies) = Default::default();
        let mut keys: std::collections::BTreeMap<String, String> = keys;
        keys.insert(SRV.to_ascii_lowercase(), "sql".into());
        let src = import_source(&keys, &principals, &bodies);
        let entra = json!({"name": "srv", "location": "eastus", "properties": {"administratorLogin": "dba",
            "administrators": {"sid": "cc", "azureADOnlyAuthentication": true}}});
        let i = import_sql_server(SRV, &entra, &src).expect("imported");
        assert!(i.fields.iter().all(|f| !f.key.starts_with("admin") && f.key != "entra_only"), "{:?}", i.fields);
        assert!(i.placeholders.is_empty());
        assert_eq!(i.covers, [(format!("{}/databases/master", SRV.to_ascii_lowercase()), "system database".into())]);
        let sql_auth = json!({"name": "srv", "properties": {"administratorLogin": "dba"}});
        let i = import_sql_server(SRV, &sql_auth, &src).expect("imported");
        let keys: Vec<&str> = i.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["name", "resource_group", "entra_only", "admin_login", "admin_password"]);
        assert_eq!(i.fields[4].value, Y::FlowMap(vec![("env".into(), Y::Str("SQL_ADMIN_PASSWORD".into()))]));
        assert_eq!(i.placeholders[0].name, "SQL_ADMIN_PASSWORD");
        assert!(i.fields[4].comment.as_deref().is_some_and(|c| c.starts_with("set SQL_ADMIN_PASSWORD")));
        assert!(import_sql_database(&format!("{SRV}/databases/master"), &json!({}), &src).is_none());
    }

    #[test]
    fn an_admin_names_its_principal_by_reference() {
        let mut keys = std::collections::BTreeMap::new();
        keys.insert(SRV.to_ascii_lowercase(), "sql".to_string());
        let mut principals = std::collections::BTreeMap::new();
        principals.insert("aa".to_string(), "${vm.identity}".to_string());
        let bodies = std::collections::BTreeMap::new();
        let src = import_source(&keys, &principals, &bodies);
        let id = format!("{SRV}/administrators/ActiveDirectory");
        let field = |sid: &str| {
            let i = import_sql_entra_admin(&id, &json!({"properties": {"login": "adm", "sid": sid}}), &src).expect("i");
            assert_eq!(i.fields[0].value, Y::Str("${sql}".into()));
            i.fields[2].clone()
        };
        assert_eq!(field("AA").value, Y::Str("${vm.identity}".into()));
        assert_eq!(field("cc").value, Y::Str("${caller}".into()));
        let outside = field("bb");
        assert_eq!(outside.value, Y::Str("bb".into()));
        assert!(outside.comment.is_some());
        let db = import_sql_database(
            &format!("{SRV}/databases/db1"),
            &json!({"sku": {"name": "Standard", "capacity": 10}}),
            &src,
        )
        .expect("db");
        assert_eq!(db.fields[1].value, Y::Str("${sql}".into()));
        assert_eq!(db.fields[2], Field::str("sku", "S0"));
    }

    #[test]
    fn identifiers_are_bracket_quoted() {
        assert_eq!(
            contained_user_sql("a]b"),
            "CREATE USER [a]]b] FROM EXTERNAL PROVIDER; ALTER ROLE db_datareader ADD MEMBER [a]]b];"
        );
    }
}
