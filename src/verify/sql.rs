//! `sql_login`, token-only, and the T-SQL steps apply prints for it.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::Value;

use super::run_command::Remote;
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
        let principal = principal(&ask).cloned();
        sql_login(ask, principal.as_deref()).await
    }
    /// On the VM, token-only as [`SqlLogin::run`]: the script gets the token for Azure SQL
    /// and prints its `oid` (its `aud` checked on the VM); the `oid` must be the server's
    /// Entra admin or the identity the contained-user T-SQL step names.
    async fn remote(&self, ask: Ask<'_, '_>) -> Result<Option<Remote>, String> {
        if ask.expect == Expect::Denied {
            return Err(
                "token-only: `expect: denied` cannot be checked without signing in; sql_login is token-only".into()
            );
        }
        let (sid, login) = entra_admin(&ask).await?;
        let Some(sid) = sid else {
            return Err(format!(
                "token-only: the server of {} has no Microsoft Entra admin, so no contained user can be created for the identity; declare a sql_entra_admin",
                ask.target
            ));
        };
        let mut oids = vec![sid];
        oids.extend(principal(&ask).cloned());
        Ok(Some(Remote {
            method: "GET",
            url: String::new(),
            headers: Vec::new(),
            body: None,
            what: format!(
                "token-only: a token for {SQL_RESOURCE}, whose oid must be the Entra admin `{}` or the identity the contained-user T-SQL names,",
                login.unwrap_or_default()
            ),
            expect_sha256: None,
            steps: Vec::new(),
            expect_oid: Some(oids),
        }))
    }
}

/// The principal the T-SQL step names: the VM's system identity or the chosen one.
fn principal<'a>(ask: &Ask<'_, 'a>) -> Option<&'a String> {
    let values = ask.env.values;
    match &ask.check.identity {
        Some(i) if i.value != "system" => values.get(&(root(i), "principal_id".into())),
        _ => values.get(&(ask.vm.to_string(), "identity.principal_id".into())),
    }
}

/// The server's Entra admin (`sid`, `login`), read back through ARM.
async fn entra_admin(ask: &Ask<'_, '_>) -> Result<(Option<String>, Option<String>), String> {
    let Some((server_id, _)) = ask.target.rsplit_once("/databases/") else {
        return Err(format!("{} is not a SQL database", ask.target));
    };
    let admin_id = format!("{server_id}/administrators/ActiveDirectory");
    let admin = ask.env.client.get(&admin_id, "2023-08-01").await.map_err(|e| format!("reading {admin_id}: {e}"))?;
    let prop = |k: &str| admin.as_ref().and_then(|a| a.pointer(k)).and_then(Value::as_str).map(str::to_string);
    Ok((prop("/properties/sid"), prop("/properties/login")))
}

/// The token audience of Azure SQL (arm-contract §9).
pub const SQL_RESOURCE: &str = "https://database.windows.net/";

/// `sql_login`, token-only: TDS is not spoken here, so the check stops where ARM's knowledge
/// ends. The VM's identity gets a token for Azure SQL; its `aud` must be that resource and its
/// `oid` the principal SQL will see: the server's Entra admin (its `sid`, read back through
/// ARM) when the identity is the admin, otherwise the identity the contained-user T-SQL step
/// names (apply prints that step).
async fn sql_login(ask: Ask<'_, '_>, principal: Option<&str>) -> CheckResult {
    let Ask { name, token, who, expect, .. } = ask;
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
    let (sid, login) = match entra_admin(&ask).await {
        Ok(a) => a,
        Err(e) => return result("fail", e),
    };
    let (sid, login) = (sid.as_deref(), login.as_deref());
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
