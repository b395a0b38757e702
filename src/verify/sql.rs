//! `sql_login`, token-only, and the T-SQL steps apply prints for it.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::Value;

use super::{Ask, CheckKind, CheckResult, root};
use crate::model::Expect;

pub(crate) struct SqlLogin;

#[async_trait]
impl CheckKind for SqlLogin {
    fn name(&self) -> &'static str {
        "sql_login"
    }
    fn resource(&self, _: &str) -> &'static str {
        SQL_RESOURCE
    }
    async fn run(&self, ask: Ask<'_, '_>) -> CheckResult {
        // The principal the T-SQL step names: the VM's system identity or the chosen one.
        let values = ask.env.values;
        let principal = match &ask.check.identity {
            Some(i) if i.value != "system" => values.get(&(root(i), "principal_id".into())),
            _ => values.get(&(ask.vm.to_string(), "identity.principal_id".into())),
        };
        sql_login(ask, principal.map(String::as_str)).await
    }
}

/// The token audience of Azure SQL (arm-contract §9).
pub const SQL_RESOURCE: &str = "https://database.windows.net/";

/// `sql_login`, token-only: TDS is not spoken here, so the check stops where ARM's knowledge
/// ends. The VM's identity gets a token for Azure SQL; its `aud` must be that resource and its
/// `oid` the principal SQL will see: the server's Entra admin (its `sid`, read back through
/// ARM) when the identity is the admin, otherwise the identity the contained-user T-SQL step
/// names (apply prints that step).
async fn sql_login(ask: Ask<'_, '_>, principal: Option<&str>) -> CheckResult {
    let Ask { name, target: db_id, token, who, expect, env, .. } = ask;
    let result = |status: &'static str, d: String| CheckResult {
        name: name.to_string(),
        status,
        detail: format!("token-only: {d}"),
    };
    if expect == Expect::Denied {
        return result("fail", "`expect: denied` cannot be checked without signing in; sql_login is token-only".into());
    }
    let Some(c) = crate::arm::jwt::claims(token.expose()) else {
        return result("fail", format!("the token issued to {who} is not a JWT"));
    };
    let claim = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let (aud, oid) = (claim("aud"), claim("oid"));
    if aud.trim_end_matches('/') != SQL_RESOURCE.trim_end_matches('/') {
        return result("fail", format!("the token issued to {who} is for `{aud}`, not {SQL_RESOURCE}"));
    }
    let Some((server_id, _)) = db_id.rsplit_once("/databases/") else {
        return result("fail", format!("{db_id} is not a SQL database"));
    };
    let admin_id = format!("{server_id}/administrators/ActiveDirectory");
    let admin = match env.client.get(&admin_id, "2023-08-01").await {
        Ok(a) => a,
        Err(e) => return result("fail", format!("reading {admin_id}: {e}")),
    };
    let sid = admin.as_ref().and_then(|a| a.pointer("/properties/sid")).and_then(Value::as_str);
    let login = admin.as_ref().and_then(|a| a.pointer("/properties/login")).and_then(Value::as_str);
    let head = format!("a token for {SQL_RESOURCE} issued to {who} (aud {aud}, oid {oid})");
    let Some(sid) = sid else {
        // Without an Entra admin nobody can create the contained user: no sign-in is possible.
        return result(
            "fail",
            format!(
                "{head}: the server has no Microsoft Entra admin, so no contained user can be created for the identity; declare a sql_entra_admin"
            ),
        );
    };
    if sid.eq_ignore_ascii_case(&oid) {
        return result("pass", format!("{head}: the oid is the server's Entra admin `{}`", login.unwrap_or_default()));
    }
    match principal {
        Some(p) if p.eq_ignore_ascii_case(&oid) => result(
            "pass",
            format!(
                "{head}: the oid is the identity the contained-user T-SQL names (the Entra admin is `{}`); signing in needs that user",
                login.unwrap_or_default()
            ),
        ),
        Some(p) => result("fail", format!("{head}: expected oid {p}, the identity the T-SQL step names")),
        None => result("fail", format!("{head}: the identity's principal id is unknown: apply the plan first")),
    }
}

/// The T-SQL steps after apply: one per `sql_login` check whose identity is not the server's
/// Entra admin (names filled in, deduplicated).
pub fn next_steps(
    cx: &crate::engine::Context,
    plan: &crate::resolve::Validated,
    values: &HashMap<(String, String), String>,
) -> Vec<crate::kinds::sql::ContainedUser> {
    let mut out: Vec<crate::kinds::sql::ContainedUser> = Vec::new();
    for (name, c) in &plan.checks {
        let Some(db) = &c.sql_login else { continue };
        let env = cx.env(plan, &name.value, values);
        let identity = c.identity.as_ref().filter(|i| i.value != "system").map(root);
        if let Some(step) =
            crate::kinds::sql::contained_user(&plan.decls, &env, &root(&c.vm), identity.as_deref(), &root(db))
            && !out.contains(&step)
        {
            out.push(step);
        }
    }
    out
}
