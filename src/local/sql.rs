//! Azure SQL on the ARM side of the local cloud (arm-contract §8): logical servers, their
//! Microsoft Entra administrator (`servers/{s}/administrators/ActiveDirectory`), the
//! Entra-only switch (`servers/{s}/azureADOnlyAuthentications/Default`), databases and
//! `checkNameAvailability`. Every write is a long-running operation (202 + polling), as the
//! SQL resource provider answers.
//!
//! The server body is the one record of its Entra admin: `properties.administrators`. The
//! two child resources are views of it, built on each request, so they can never disagree
//! with the server and go with it when it is deleted.
//!
//! The SQL administrator password is taken out of the request and dropped: it is never
//! stored, returned or logged (nothing here needs to check it; TDS is not served).
//!
//! Imports: the store and the HTTP error type of the local cloud only.

use serde_json::{Map, Value, json};

use super::http::ArmError;
use super::store::State as CloudState;

/// The DNS suffix of Azure SQL servers in the public cloud.
pub const DNS_SUFFIX: &str = "database.windows.net";

use super::table::{SQL_ADMINISTRATORS, SQL_ENTRA_ONLY, SQL_SERVERS as SERVERS};

/// Why a server name cannot be used, in the words of `checkNameAvailability`.
fn name_invalid(name: &str) -> Option<String> {
    let ok = (1..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    (!ok).then(|| {
        "Specified server name contains unsupported characters or is too long. Server name must be no longer than 63 characters long, contain only lower-case characters or digits, cannot contain '.' or '_' characters and can't start or end with '-' character.".to_string()
    })
}

/// The server of this name, in any group (server names are global: they are DNS names).
fn server_named<'a>(st: &'a CloudState, name: &str) -> Option<&'a super::store::Resource> {
    st.resources
        .values()
        .find(|r| r.kind == SERVERS && r.id.rsplit('/').next().is_some_and(|n| n.eq_ignore_ascii_case(name)))
}

/// `POST /subscriptions/{s}/providers/Microsoft.Sql/checkNameAvailability`: SQL's own
/// answer shape, `{name, available, reason?, message?}` (not ARM's usual `nameAvailable`).
pub fn check_name(st: &CloudState, req: &Value) -> Result<Value, ArmError> {
    let Some(name) = req.get("name").and_then(Value::as_str) else {
        return Err(ArmError::new(
            400,
            "InvalidRequestContent",
            "The request content was invalid: 'name' is required.",
        ));
    };
    let t = req.get("type").and_then(Value::as_str).unwrap_or(SERVERS);
    if !t.eq_ignore_ascii_case(SERVERS) {
        return Err(ArmError::new(
            400,
            "InvalidParameterValue",
            format!("Invalid value given for parameter type: '{t}'. Specify 'Microsoft.Sql/servers'."),
        ));
    }
    Ok(if let Some(message) = name_invalid(name) {
        json!({ "name": name, "available": false, "reason": "Invalid", "message": message })
    } else if server_named(st, name).is_some() {
        json!({ "name": name, "available": false, "reason": "AlreadyExists", "message": "Specified server name is already used" })
    } else {
        json!({ "name": name, "available": true })
    })
}

fn bad_value(what: &str) -> ArmError {
    ArmError::new(
        400,
        "InvalidParameterValue",
        format!("Invalid value given for parameter {what}. Specify a valid parameter value."),
    )
}

fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// Check and complete an Entra administrator as the server keeps it.
fn admin_record(given: &Value, tenant: &str, old: Option<&Value>) -> Result<Value, ArmError> {
    let s = |k: &str| given.get(k).and_then(Value::as_str).map(str::to_string);
    let t = s("administratorType").unwrap_or_else(|| "ActiveDirectory".into());
    if !t.eq_ignore_ascii_case("ActiveDirectory") {
        return Err(ArmError::new(
            400,
            "InvalidServerAdministratorTypePropertyName",
            "Server active directory administrator type should be ActiveDirectory",
        ));
    }
    let login = s("login").filter(|l| !l.trim().is_empty()).ok_or_else(|| bad_value("login"))?;
    let sid = s("sid").filter(|x| is_guid(x)).ok_or_else(|| bad_value("sid"))?;
    let tenant_id = s("tenantId").unwrap_or_else(|| tenant.to_string());
    if !is_guid(&tenant_id) {
        return Err(bad_value("tenantId"));
    }
    let mut out = json!({ "administratorType": "ActiveDirectory", "login": login, "sid": sid, "tenantId": tenant_id });
    let principal =
        s("principalType").or_else(|| old.and_then(|o| o.get("principalType")?.as_str().map(str::to_string)));
    if let Some(p) = principal {
        if !matches!(p.as_str(), "User" | "Group" | "Application") {
            return Err(bad_value("principalType"));
        }
        out["principalType"] = json!(p);
    }
    let only = old.and_then(|o| o.get("azureADOnlyAuthentication")).and_then(Value::as_bool).unwrap_or(false);
    out["azureADOnlyAuthentication"] = json!(only);
    Ok(out)
}

/// Fill a server's fields. Refuses invalid or taken names, a create with neither a SQL
/// administrator nor an Entra-only administrator, and removes the password from the body.
pub fn prepare_server(
    st: &CloudState,
    id: &str,
    existing: Option<&Value>,
    body: &mut Value,
    tenant: &str,
) -> Result<(), ArmError> {
    let name = id.rsplit('/').next().unwrap_or_default().to_string();
    if let Some(why) = name_invalid(&name) {
        return Err(ArmError::new(400, "InvalidResourceName", format!("'{name}': {why}")));
    }
    if existing.is_none() && server_named(st, &name).is_some() {
        return Err(ArmError::new(
            409,
            "NameAlreadyExists",
            format!("The name '{name}.{DNS_SUFFIX}' already exists. Choose a different name."),
        ));
    }
    let props = body
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| ArmError::new(400, "InvalidRequestContent", "'properties' must be an object."))?;
    // Never kept: not in the state, not in any answer.
    let password = props.remove("administratorLoginPassword");
    let old = existing.and_then(|e| e.get("properties"));
    let old_admin = old.and_then(|o| o.get("administrators")).filter(|a| a.is_object());
    let admin = match props.remove("administrators").filter(|a| a.is_object()) {
        Some(given) => {
            let mut a = admin_record(&given, tenant, old_admin)?;
            // The Entra-only flag is set here only at creation; later through
            // azureADOnlyAuthentications (arm-contract §8).
            if existing.is_none() {
                a["azureADOnlyAuthentication"] =
                    json!(given.get("azureADOnlyAuthentication").and_then(Value::as_bool).unwrap_or(false));
            }
            Some(a)
        }
        None => old_admin.cloned(),
    };
    let entra_only =
        admin.as_ref().and_then(|a| a.get("azureADOnlyAuthentication")).and_then(Value::as_bool).unwrap_or(false);
    let login = match old.and_then(|o| o.get("administratorLogin")).and_then(Value::as_str) {
        // The SQL administrator login cannot change once the server exists.
        Some(l) => Some(l.to_string()),
        None => props.get("administratorLogin").and_then(Value::as_str).map(str::to_string),
    };
    if existing.is_none() && !entra_only {
        match (&login, password.as_ref().and_then(Value::as_str)) {
            (None, _) => return Err(bad_value("Login")),
            (Some(_), None) | (Some(_), Some("")) => return Err(bad_value("Password")),
            (Some(l), _)
                if l.is_empty()
                    || matches!(
                        l.to_ascii_lowercase().as_str(),
                        "sa" | "admin" | "administrator" | "root" | "guest" | "public"
                    ) =>
            {
                return Err(bad_value("Login"));
            }
            _ => {}
        }
    }
    match &login {
        Some(l) => props.insert("administratorLogin".into(), json!(l)),
        None => props.remove("administratorLogin"),
    };
    match admin {
        Some(a) => props.insert("administrators".into(), a),
        None => props.remove("administrators"),
    };
    let keep = |k: &str, default: Value| old.and_then(|o| o.get(k)).cloned().unwrap_or(default);
    let set_default = |props: &mut Map<String, Value>, k: &str, default: Value| {
        if props.get(k).is_none_or(Value::is_null) {
            props.insert(k.to_string(), keep(k, default));
        }
    };
    set_default(props, "version", json!("12.0"));
    set_default(props, "minimalTlsVersion", json!("1.2"));
    set_default(props, "publicNetworkAccess", json!("Enabled"));
    set_default(props, "restrictOutboundNetworkAccess", json!("Disabled"));
    props.insert("fullyQualifiedDomainName".into(), json!(format!("{name}.{DNS_SUFFIX}")));
    props.insert("state".into(), json!("Ready"));
    props.insert("privateEndpointConnections".into(), json!([]));
    props.remove("provisioningState");
    body["kind"] = json!("v12.0");
    Ok(())
}

/// The body of the SQL resource provider's 202 (`TestDatabaseCreate.json`,
/// `TestServerRemove.json`): the operation's name (`UpsertLogicalServer`,
/// `DropLogicalServer`, `CreateLogicalDatabase`, …) and when it started; an administrator's
/// operation also gives its id and `percentComplete`
/// (`TestServerActiveDirectoryAdministratorCRUD.json`).
pub fn accepted_body(operation: &str, op_id: Option<&str>) -> Value {
    let now =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
    let mut b = json!({ "operation": operation, "startTime": now });
    if let Some(id) = op_id {
        b["operationId"] = json!(id);
        b["percentComplete"] = json!(0);
    }
    b
}

/// The name the SQL resource provider gives a write of type `tl` (lower case).
pub fn operation_name(tl: &str, delete: bool, create: bool) -> &'static str {
    match (tl.rsplit('/').next().unwrap_or_default(), delete, create) {
        ("servers", true, _) => "DropLogicalServer",
        ("servers", false, _) => "UpsertLogicalServer",
        ("databases", true, _) => "DropLogicalDatabase",
        ("databases", false, true) => "CreateLogicalDatabase",
        ("databases", false, false) => "UpdateLogicalDatabase",
        ("administrators", true, _) => "DropActiveDirectoryAdministrator",
        ("administrators", false, true) => "CreateActiveDirectoryAdministrator",
        ("administrators", false, false) => "UpdateActiveDirectoryAdministrator",
        (_, true, _) => "DropAzureADOnlyAuthentication",
        _ => "UpsertAzureADOnlyAuthentication",
    }
}

/// The `administrators/ActiveDirectory` view at `api_version`: api-version 2014-04-01 also
/// shows the server's `location` and `kind: null` (`TestServerActiveDirectoryAdministratorCRUD.json`).
pub fn admin_at(server: &Value, api_version: &str) -> Option<Value> {
    let mut v = admin_view(server)?;
    if api_version.starts_with("2014-") {
        v["location"] = server.get("location").cloned().unwrap_or(Value::Null);
        v["kind"] = Value::Null;
    }
    Some(v)
}

/// The 404 of a missing Entra admin at api-version 2014-04-01: the SQL RP's own envelope,
/// not ARM's `{"error": …}`.
pub fn admin_missing_2014() -> Value {
    json!({
        "code": "NotFound",
        "message": "Server administrator with name 'ActiveDirectory' does not exist. To continue, specify a valid server administrator name.",
        "target": null,
        "details": [],
        "innererror": [],
    })
}

/// Whether a server write at `api_version` completes at once (201 or 200 with the body):
/// api-version 2014-04-01 did (`TestServerActiveDirectoryAdministratorCRUD.json`); later
/// ones answer 202.
pub fn synchronous(type_lower: &str, api_version: &str) -> bool {
    SERVERS.eq_ignore_ascii_case(type_lower) && api_version.starts_with("2014-")
}

/// The `administrators/ActiveDirectory` view of a server, if it has an Entra admin.
pub fn admin_view(server: &Value) -> Option<Value> {
    let a = server.pointer("/properties/administrators").filter(|a| a.is_object())?;
    let id = format!("{}/administrators/ActiveDirectory", server.get("id")?.as_str()?);
    let mut p = Map::new();
    for k in ["administratorType", "login", "sid", "tenantId", "azureADOnlyAuthentication"] {
        if let Some(v) = a.get(k) {
            p.insert(k.into(), v.clone());
        }
    }
    Some(json!({ "id": id, "name": "ActiveDirectory", "type": SQL_ADMINISTRATORS, "properties": p }))
}

/// `PUT administrators/ActiveDirectory`: the server body with this admin.
pub fn put_admin(server: &Value, given: &Value, tenant: &str) -> Result<Value, ArmError> {
    let props = given.get("properties").filter(|p| p.is_object()).ok_or_else(|| {
        ArmError::new(
            400,
            "InvalidResourceRequestBody",
            "The resource or resource properties in the request body is empty or invalid.",
        )
    })?;
    if props.get("azureADOnlyAuthentication").and_then(Value::as_bool) == Some(false) {
        return Err(ArmError::new(
            400,
            "InvalidServerAzureADOnlyAuthenticationParameter",
            "User tried to set AzureADOnlyAuthentication parameter to false which is not allowed, please use azureADOnlyAuthentications API instead.",
        ));
    }
    let old = server.pointer("/properties/administrators").filter(|a| a.is_object());
    let record = admin_record(props, tenant, old)?;
    let mut out = server.clone();
    out["properties"]["administrators"] = record;
    Ok(out)
}

/// `DELETE administrators/ActiveDirectory`: the server body without an admin; refused while
/// the server accepts Entra authentication only.
pub fn delete_admin(server: &Value) -> Result<Value, ArmError> {
    let only = server.pointer("/properties/administrators/azureADOnlyAuthentication").and_then(Value::as_bool);
    if only == Some(true) {
        return Err(ArmError::new(
            400,
            "InvalidServerAzureADAdminDeleteOperation",
            "User tried to delete server Azure Active Azure admin when AzureADOnlyAuthentication is set, please use azureADOnlyAuthentications API first.",
        ));
    }
    let mut out = server.clone();
    if let Some(p) = out.get_mut("properties").and_then(Value::as_object_mut) {
        p.remove("administrators");
    }
    Ok(out)
}

/// The `azureADOnlyAuthentications/Default` view of a server.
pub fn entra_only_view(server: &Value) -> Value {
    let id =
        format!("{}/azureADOnlyAuthentications/Default", server.get("id").and_then(Value::as_str).unwrap_or_default());
    let on = server.pointer("/properties/administrators/azureADOnlyAuthentication").and_then(Value::as_bool);
    json!({ "id": id, "name": "Default", "type": SQL_ENTRA_ONLY, "properties": { "azureADOnlyAuthentication": on.unwrap_or(false) } })
}

/// `PUT` (or, with `None`, `DELETE`) `azureADOnlyAuthentications/Default`: the server body
/// with the switch set. Needs an Entra admin either way.
pub fn set_entra_only(server: &Value, given: Option<&Value>) -> Result<Value, ArmError> {
    let on = match given {
        Some(b) => b
            .pointer("/properties/azureADOnlyAuthentication")
            .and_then(Value::as_bool)
            .ok_or_else(|| bad_value("azureADOnlyAuthentication"))?,
        None => false,
    };
    let mut out = server.clone();
    match out.pointer_mut("/properties/administrators").and_then(Value::as_object_mut) {
        Some(a) => {
            a.insert("azureADOnlyAuthentication".into(), json!(on));
        }
        None if given.is_none() => {}
        None => {
            return Err(ArmError::new(
                400,
                "InvalidServerAADOnlyAuthNoAADAdminPropertyName",
                "AAD Admin is not configured, AAD Admin must be set before enabling/disabling AAD Only Authentication.",
            ));
        }
    }
    Ok(out)
}

/// The full SKU for a requested one: a service objective name (`Basic`, `S0`…`S12`,
/// `P1`…`P15`), an edition name with a capacity (`{name: Standard, capacity: 10}`), or a
/// vCore name (`GP_S_Gen5_1`, `GP_Gen5_2`, `BC_Gen5_4`, `HS_Gen5_2`).
fn full_sku(req: Option<&Value>) -> Result<(Value, String), ArmError> {
    let name = req.and_then(|s| s.get("name")).and_then(Value::as_str).unwrap_or("S0");
    let capacity = req.and_then(|s| s.get("capacity")).and_then(Value::as_u64);
    let dtu = |tier: &str, cap: u64, objective: String| {
        Ok((json!({ "name": tier, "tier": tier, "capacity": cap }), objective))
    };
    const STANDARD: &[(u64, u64)] =
        &[(0, 10), (1, 20), (2, 50), (3, 100), (4, 200), (6, 400), (7, 800), (9, 1600), (12, 3000)];
    const PREMIUM: &[(u64, u64)] = &[(1, 125), (2, 250), (4, 500), (6, 1000), (11, 1750), (15, 4000)];
    fn numbered(name: &str, prefix: char, table: &'static [(u64, u64)]) -> Option<&'static (u64, u64)> {
        let n = name.strip_prefix(prefix)?.parse::<u64>().ok()?;
        table.iter().find(|t| t.0 == n)
    }
    if name.eq_ignore_ascii_case("Basic") {
        return dtu("Basic", 5, "Basic".into());
    }
    // Gen1 data warehouses: `DW{n}`, reported as 7.5 DTUs per unit
    // (`TestDatabaseCreate.json`: DW100 answers capacity 750).
    if let Some(n) = name.strip_prefix("DW").and_then(|n| n.parse::<u64>().ok()).filter(|n| *n >= 100 && n % 100 == 0) {
        return Ok((
            json!({ "name": "DataWarehouse", "tier": "DataWarehouse", "capacity": n * 15 / 2 }),
            format!("DW{n}"),
        ));
    }
    if let Some(&(n, cap)) = numbered(name, 'S', STANDARD) {
        return dtu("Standard", cap, format!("S{n}"));
    }
    if let Some(&(n, cap)) = numbered(name, 'P', PREMIUM) {
        return dtu("Premium", cap, format!("P{n}"));
    }
    for (edition, table, letter) in [("Standard", STANDARD, 'S'), ("Premium", PREMIUM, 'P')] {
        if name.eq_ignore_ascii_case(edition) {
            let cap = capacity.unwrap_or(table[0].1);
            let Some(&(n, _)) = table.iter().find(|t| t.1 == cap) else { return Err(bad_value("sku.capacity")) };
            return dtu(edition, cap, format!("{letter}{n}"));
        }
    }
    // vCore: {tier}_{S_}?{family}_{cores}, or the name without cores plus a capacity.
    let parts: Vec<&str> = name.split('_').collect();
    let tier = match parts.first().copied() {
        Some("GP") => "GeneralPurpose",
        Some("BC") => "BusinessCritical",
        Some("HS") => "Hyperscale",
        _ => return Err(bad_value("sku.name")),
    };
    let serverless = parts.get(1) == Some(&"S");
    let rest = &parts[if serverless { 2 } else { 1 }..];
    let (family, cores) = match rest {
        [family, cores] => (*family, cores.parse::<u64>().ok()),
        [family] => (*family, capacity),
        _ => return Err(bad_value("sku.name")),
    };
    let Some(cores) = cores.filter(|c| *c > 0) else { return Err(bad_value("sku.capacity")) };
    let base = if serverless { format!("{}_S_{family}", parts[0]) } else { format!("{}_{family}", parts[0]) };
    Ok((json!({ "name": base, "tier": tier, "family": family, "capacity": cores }), format!("{base}_{cores}")))
}

/// Fill a database's fields (the server must exist: the caller checks).
pub fn prepare_database(existing: Option<&Value>, body: &mut Value, now: &str) -> Result<(), ArmError> {
    let (sku, objective) = match body.get("sku") {
        Some(s) if s.is_object() => full_sku(Some(s))?,
        _ => match existing.and_then(|e| e.get("sku")) {
            Some(s) => full_sku(Some(s))?,
            None => full_sku(None)?,
        },
    };
    let old = existing.and_then(|e| e.get("properties")).cloned().unwrap_or(json!({}));
    let keep = |k: &str, default: Value| old.get(k).cloned().unwrap_or(default);
    let tier = sku.get("tier").and_then(Value::as_str).unwrap_or_default().to_string();
    let max = match tier.as_str() {
        "Basic" => 2_147_483_648u64,
        "Standard" | "Premium" => 268_435_456_000,
        _ => 34_359_738_368,
    };
    let p = body
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| ArmError::new(400, "InvalidRequestContent", "'properties' must be an object."))?;
    let mut set = |k: &str, v: Value| {
        if p.get(k).is_none_or(Value::is_null) {
            p.insert(k.to_string(), v);
        }
    };
    set("collation", keep("collation", json!("SQL_Latin1_General_CP1_CI_AS")));
    set("catalogCollation", keep("catalogCollation", json!("SQL_Latin1_General_CP1_CI_AS")));
    set("maxSizeBytes", keep("maxSizeBytes", json!(max)));
    set("readScale", keep("readScale", json!("Disabled")));
    set("zoneRedundant", keep("zoneRedundant", json!(false)));
    set("isLedgerOn", keep("isLedgerOn", json!(false)));
    set("requestedBackupStorageRedundancy", keep("requestedBackupStorageRedundancy", json!("Geo")));
    p.insert("status".into(), json!("Online"));
    p.insert("databaseId".into(), keep("databaseId", json!(uuid::Uuid::new_v4().to_string())));
    p.insert("creationDate".into(), keep("creationDate", json!(now)));
    p.insert("earliestRestoreDate".into(), keep("earliestRestoreDate", json!(now)));
    p.insert("currentSku".into(), sku.clone());
    p.insert("currentServiceObjectiveName".into(), json!(objective));
    p.insert("requestedServiceObjectiveName".into(), json!(objective));
    p.insert("currentBackupStorageRedundancy".into(), json!("Geo"));
    p.insert("defaultSecondaryLocation".into(), json!("westus"));
    p.insert("isInfraEncryptionEnabled".into(), json!(false));
    p.remove("provisioningState");
    let warehouse = tier == "DataWarehouse";
    body["sku"] = sku;
    body["kind"] = json!(if warehouse { "v12.0,user,datawarehouse" } else { "v12.0,user" });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_dns_rule() {
        assert!(name_invalid("idlab-tutorial-sql").is_none());
        for bad in ["", "-a", "a-", "Upper", "a_b", "a.b", &"a".repeat(64)] {
            assert!(name_invalid(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn skus_expand_as_the_service_reports_them() {
        let (s, o) = full_sku(Some(&json!({"name": "Basic"}))).expect("basic");
        assert_eq!((s["tier"].as_str(), s["capacity"].as_u64(), o.as_str()), (Some("Basic"), Some(5), "Basic"));
        let (s, o) = full_sku(None).expect("default");
        assert_eq!((s["name"].as_str(), s["capacity"].as_u64(), o.as_str()), (Some("Standard"), Some(10), "S0"));
        let (s, o) = full_sku(Some(&json!({"name": "Standard", "capacity": 50}))).expect("s2");
        assert_eq!((s["name"].as_str(), o.as_str()), (Some("Standard"), "S2"));
        let (s, o) = full_sku(Some(&json!({"name": "GP_S_Gen5_1"}))).expect("serverless");
        assert_eq!(
            (s["name"].as_str(), s["family"].as_str(), o.as_str()),
            (Some("GP_S_Gen5"), Some("Gen5"), "GP_S_Gen5_1")
        );
        assert!(full_sku(Some(&json!({"name": "S5"}))).is_err());
        assert!(full_sku(Some(&json!({"name": "Huge"}))).is_err());
    }

    #[test]
    fn the_password_is_dropped_and_a_create_needs_an_administrator() {
        let st = CloudState::default();
        let id = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Sql/servers/srv";
        let mut b = json!({"location": "eastus", "properties": {"administratorLogin": "dba", "administratorLoginPassword": "Pw-1234567!"}});
        prepare_server(&st, id, None, &mut b, "t").expect("valid");
        assert!(!b.to_string().contains("Pw-1234567!"));
        assert_eq!(b["properties"]["fullyQualifiedDomainName"], "srv.database.windows.net");
        let mut none = json!({"location": "eastus", "properties": {}});
        assert_eq!(
            prepare_server(&st, id, None, &mut none, "t").map_err(|e| e.code),
            Err("InvalidParameterValue".into())
        );
        let sid = "00000000-0000-0000-0000-000000000001";
        let mut entra = json!({"location": "eastus", "properties": {"administrators": {"login": "a", "sid": sid, "azureADOnlyAuthentication": true}}});
        prepare_server(&st, id, None, &mut entra, "00000000-0000-0000-0000-000000000002").expect("entra-only");
        assert_eq!(entra["properties"]["administrators"]["tenantId"], "00000000-0000-0000-0000-000000000002");
    }
}
