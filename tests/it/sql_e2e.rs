//! Azure SQL end to end: `plans/sql.yaml` through the real binary against `idlab local
//! serve` (apply, verify token-only, a clean re-plan without writes, destroy, apply again),
//! the printed T-SQL next step, a server name taken elsewhere, and the SQL administrator
//! password of a password-auth server appearing nowhere. Also the local cloud's SQL rules
//! that the engine relies on (Entra-only admin, RBAC, global names).

use serde_json::{Value, json};

use crate::common::{Served, assert_name_taken, assert_not_leaked, everything_seen, owned_by_plan, root, secret_runs};
use crate::lab::Lab;

const T_SQL: &str = "CREATE USER [myVM] FROM EXTERNAL PROVIDER; ALTER ROLE db_datareader ADD MEMBER [myVM];";

fn plan_path() -> String {
    root().join("plans/sql.yaml").display().to_string()
}

/// `plans/sql.yaml` with `from` replaced by `to`, written next to a copy of nothing else.
fn variant(dir: &tempfile::TempDir, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(root().join("plans/sql.yaml")).expect("plan");
    assert!(text.contains(from), "plans/sql.yaml no longer holds {from:?}");
    let path = dir.path().join("sql-variant.yaml");
    std::fs::write(&path, text.replace(from, to)).expect("write");
    path.display().to_string()
}

fn server_path(s: &Served, rg: &str) -> String {
    format!(
        "/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.Sql/servers/idlab-tutorial-sql?api-version=2023-08-01",
        s.subscription()
    )
}

#[test]
fn the_sql_tutorial_applies_verifies_token_only_replans_clean_and_destroys() {
    let s = Served::start();
    let p = plan_path();
    let r = s.idlab(&["plan", &p, "--detailed-exitcode"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Plan: 9 to create, 0 to update"), "{}", r.stdout);
    // apply: everything created through the SQL long-running operations; the contained user
    // is printed as the next step, names filled in.
    let r = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Apply complete: 9 created"), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("Next step (T-SQL; ARM cannot do it): connect to database `testdb` on idlab-tutorial-sql.database.windows.net as the server's Microsoft Entra admin `idlab-admin`, and run:\n    {T_SQL}")), "{}", r.stderr);
    // What ARM holds: the admin the plan names (the deploying principal), as the server
    // reports it and as its own resource.
    let server = s.op("GET", &server_path(&s, "myResourceGroup"), None);
    let info = idlab::local::attach::read_info(&s.state).expect("info");
    assert_eq!(server["properties"]["fullyQualifiedDomainName"], "idlab-tutorial-sql.database.windows.net");
    assert_eq!(server["properties"]["state"], "Ready");
    assert_eq!(server["properties"]["administrators"]["login"], "idlab-admin");
    assert_eq!(server["properties"]["administrators"]["sid"].as_str(), Some(info.operator_object_id.as_str()));
    assert_eq!(server["properties"]["administrators"]["azureADOnlyAuthentication"], true);
    let db = s.op("GET", &server_path(&s, "myResourceGroup").replace("?", "/databases/testdb?"), None);
    assert_eq!((db["properties"]["status"].as_str(), db["sku"]["name"].as_str()), (Some("Online"), Some("Basic")));
    // verify: a token for Azure SQL, for the principal the T-SQL names.
    let r = s.idlab(&["verify", &p]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("PASS sign-in: token-only: a token for https://database.windows.net/ issued to the system-assigned identity (aud https://database.windows.net/"), "{}", r.stdout);
    assert!(r.stdout.contains("the oid is the identity the contained-user T-SQL names"), "{}", r.stdout);
    assert!(r.stdout.contains("Verify: 1 passed, 0 failed, 0 skipped."), "{}", r.stdout);
    // Re-plan: no changes, no write; a second apply writes nothing and still says the step,
    // as an NDJSON event for machines.
    s.replans_clean(&p);
    let r = s.idlab(&["apply", &p, "--auto-approve", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let log = s.arm_log();
    assert!(!log.is_empty() && log.iter().all(|(_, _, w)| !w), "writes without changes: {log:?}");
    let step: Value = r
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "next_step")
        .unwrap_or_else(|| panic!("no next_step event: {}", r.stdout));
    assert_eq!(
        step,
        json!({"event": "next_step", "kind": "t-sql", "server": "idlab-tutorial-sql.database.windows.net", "database": "testdb", "run_as": "idlab-admin", "user": "myVM", "sql": T_SQL})
    );
    // destroy: nothing owned is left (the admin went with its server), and the server is gone.
    let r = s.idlab(&["destroy", &p, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Destroy complete: 0 created, 0 updated, 0 replaced, 9 deleted"), "{}", r.stderr);
    assert_eq!(owned_by_plan(&s, "sql"), Vec::<String>::new());
    assert_eq!(s.op("GET", &server_path(&s, "myResourceGroup"), None)["error"]["code"], "ResourceGroupNotFound");
    // Apply again from empty.
    let r = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("Apply complete: 9 created"), "{}", r.stderr);
    assert_eq!(s.idlab(&["verify", &p]).code, 0);
}

#[test]
fn when_the_vm_identity_is_the_entra_admin_verify_matches_the_admin_sid_and_no_step_is_printed() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let p = variant(&tmp, "principal: ${caller}", "principal: ${vm.identity}");
    let r = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("Next step"), "{}", r.stderr);
    let r = s.idlab(&["verify", &p]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("the oid is the server's Entra admin `idlab-admin`"), "{}", r.stdout);
    // The admin's sid is the VM's principal, read back through ARM.
    let server = s.op("GET", &server_path(&s, "myResourceGroup"), None);
    let vm = s.op(
        "GET",
        &format!(
            "/subscriptions/{}/resourceGroups/myResourceGroup/providers/Microsoft.Compute/virtualMachines/myVM?api-version=2025-04-01",
            s.subscription()
        ),
        None,
    );
    assert_eq!(server["properties"]["administrators"]["sid"], vm["identity"]["principalId"]);
}

#[test]
fn a_sql_server_name_taken_elsewhere_is_a_plan_error_and_nothing_is_written() {
    let s = Served::start();
    let other = format!("/subscriptions/{}/resourceGroups/someone-else", s.subscription());
    s.op("PUT", &format!("{other}?api-version=2024-11-01"), Some(json!({"location": "eastus"})));
    let taken = s.op(
        "PUT",
        &server_path(&s, "someone-else"),
        Some(json!({"location": "eastus", "properties": {"administratorLogin": "them", "administratorLoginPassword": "Their-Secret-1!"}})),
    );
    // The 202 names the operation, as Azure's does (`TestDatabaseCreate.json`).
    assert_eq!(taken["operation"], "UpsertLogicalServer", "{taken}");
    assert_name_taken(
        &s,
        "plans/sql.yaml",
        "sql (sql_server): the name `idlab-tutorial-sql` cannot be used (AlreadyExists): Specified server name is already used",
        "server=idlab-mine-sql",
    );
}

#[test]
fn the_sql_admin_password_appears_nowhere() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let p = variant(
        &tmp,
        "    name: ${var.server}\n    resource_group: ${rg}\n",
        "    name: ${var.server}\n    resource_group: ${rg}\n    entra_only: false\n    admin_login: dba\n    admin_password: { env: IDLAB_SQL_CANARY }\n",
    );
    let canary = "Sql-Canary-7vQ!x/+=";
    let env = [("IDLAB_SQL_CANARY", canary), ("IDLAB_LOG", "debug")];
    let mut seen = secret_runs(&s, &p, &tmp.path().join("saved.json"), &env);
    // The password reached the server (a SQL-auth create is refused without one) and did
    // not come back.
    let server = s.op("GET", &server_path(&s, "myResourceGroup"), None);
    assert_eq!(server["properties"]["administratorLogin"], "dba", "{server}");
    seen.push_str(&server.to_string());
    seen.push_str(&everything_seen(&s, &["destroy", &p, "--auto-approve", "--format", "json"], &env));
    assert_not_leaked(&seen, canary);
    assert!(seen.contains("\"event\":\"next_step\""), "the NDJSON stream was not produced");
    assert!(seen.contains("DEBUG"), "debug logging was not on");
}

#[test]
fn the_local_cloud_keeps_the_sql_rules_the_engine_relies_on() {
    let lab = Lab::start();
    let rg = lab.rg_path("sqlrules");
    assert!(lab.op("PUT", &format!("{rg}?api-version=2024-11-01"), Some(&json!({"location": "eastus"}))).status < 300);
    let server = format!("{rg}/providers/Microsoft.Sql/servers/rules-sql");
    let v = "?api-version=2023-08-01";
    // Neither a SQL administrator nor an Entra-only admin: refused.
    let r = lab.op("PUT", &format!("{server}{v}"), Some(&json!({"location": "eastus", "properties": {}})));
    assert_eq!((r.status, r.code()), (400, "InvalidParameterValue"), "{}", r.body);
    let sid = lab.cloud.info.operator_object_id.clone();
    let entra = json!({"location": "eastus", "properties": {"administrators": {"login": "ops", "sid": sid, "azureADOnlyAuthentication": true}}});
    assert_eq!(lab.op("PUT", &format!("{server}{v}"), Some(&entra)).status, 202);
    // The admin of an Entra-only server cannot be removed alone; after switching Entra-only
    // off it can, and the server shows no admin any more.
    let admin = format!("{server}/administrators/ActiveDirectory{v}");
    let r = lab.op("DELETE", &admin, None);
    assert_eq!((r.status, r.code()), (400, "InvalidServerAzureADAdminDeleteOperation"), "{}", r.body);
    let only = format!("{server}/azureADOnlyAuthentications/Default{v}");
    let r = lab.op("PUT", &only, Some(&json!({"properties": {"azureADOnlyAuthentication": false}})));
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(lab.op("GET", &only, None).body["properties"]["azureADOnlyAuthentication"], false);
    assert_eq!(lab.op("DELETE", &admin, None).status, 202);
    assert_eq!(lab.op("GET", &admin, None).status, 404);
    assert!(lab.op("GET", &format!("{server}{v}"), None).body["properties"].get("administrators").is_none());
    assert_eq!(lab.op("DELETE", &admin, None).status, 204, "nothing left to delete");
    // Entra-only cannot be switched on without an admin.
    let r = lab.op("PUT", &only, Some(&json!({"properties": {"azureADOnlyAuthentication": true}})));
    assert_eq!((r.status, r.code()), (400, "InvalidServerAADOnlyAuthNoAADAdminPropertyName"), "{}", r.body);
    // Names are global: the same name in another group is taken.
    let rg2 = lab.rg_path("sqlrules2");
    assert!(lab.op("PUT", &format!("{rg2}?api-version=2024-11-01"), Some(&json!({"location": "eastus"}))).status < 300);
    let r = lab.op("PUT", &format!("{rg2}/providers/Microsoft.Sql/servers/rules-sql{v}"), Some(&entra));
    assert_eq!((r.status, r.code()), (409, "NameAlreadyExists"), "{}", r.body);
    // A database needs its server; a server's databases are listed with the group's resources.
    let r = lab.op(
        "PUT",
        &format!("{rg}/providers/Microsoft.Sql/servers/nope/databases/db{v}"),
        Some(&json!({"location": "eastus"})),
    );
    assert_eq!((r.status, r.code()), (404, "ParentResourceNotFound"), "{}", r.body);
    assert_eq!(
        lab.op(
            "PUT",
            &format!("{server}/databases/db{v}"),
            Some(&json!({"location": "eastus", "sku": {"name": "S0"}}))
        )
        .status,
        202
    );
    let listed = lab.op("GET", &format!("{rg}/resources?api-version=2021-04-01"), None);
    let types: Vec<&str> =
        listed.body["value"].as_array().into_iter().flatten().filter_map(|r| r["type"].as_str()).collect();
    assert!(types.contains(&"Microsoft.Sql/servers/databases"), "{types:?}");
    // RBAC: a Reader reads but cannot write, with ARM's error.
    let (reader, _) = lab.principal(&[("Reader", &rg)]);
    assert_eq!(lab.send(Some(&reader), "GET", &format!("{server}{v}"), None).status, 200);
    let r = lab.send(Some(&reader), "PUT", &format!("{server}/databases/db2{v}"), Some(&json!({"location": "eastus"})));
    assert_eq!((r.status, r.code()), (403, "AuthorizationFailed"), "{}", r.body);
    assert!(r.body["error"]["message"].as_str().unwrap_or_default().contains("Microsoft.Sql/servers/databases/write"));
}

#[test]
fn without_an_entra_admin_the_token_only_check_fails_instead_of_passing() {
    let s = Served::start();
    let tmp = tempfile::tempdir().expect("tmp");
    // A SQL-authentication server and no sql_entra_admin: nobody can create the contained user.
    let text = std::fs::read_to_string(root().join("plans/sql.yaml"))
        .expect("plan")
        .replace(
            "    name: ${var.server}\n    resource_group: ${rg}\n",
            "    name: ${var.server}\n    resource_group: ${rg}\n    entra_only: false\n    admin_login: dba\n    admin_password: { env: IDLAB_SQL_PW }\n",
        )
        .replace("  sql-admin:\n    type: sql_entra_admin\n    server: ${sql}\n    login: idlab-admin\n    principal: ${caller}\n", "");
    let p = tmp.path().join("no-admin.yaml");
    std::fs::write(&p, text).expect("write");
    let p = p.display().to_string();
    let env = [("IDLAB_SQL_PW", "Pw-For-The-Test-1!")];
    let a = s.idlab_env(&["apply", &p, "--auto-approve"], &env);
    assert_eq!(a.code, 0, "{}{}", a.stdout, a.stderr);
    assert!(!a.stderr.contains("Next step"), "no T-SQL can be run without an Entra admin: {}", a.stderr);
    let v = s.idlab_env(&["verify", &p], &env);
    assert_eq!(v.code, 3, "{}{}", v.stdout, v.stderr);
    assert!(
        v.stdout.contains("FAIL sign-in: token-only:") && v.stdout.contains("has no Microsoft Entra admin"),
        "{}",
        v.stdout
    );
}
