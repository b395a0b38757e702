//! The apply and destroy walkers: one coordinator owns the scheduling state; workers run in
//! a `JoinSet`, at most `parallelism` at once. Ready nodes start longest-remaining-critical-
//! path first. A failed node's transitive dependents are skipped; independent branches
//! carry on; the loop never exits early and every node gets an outcome.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::{Event, Observed, Outcome, Shared, record_decl, secrets, vm_patch};
use crate::arm::{Client, Error, keyvault};
use crate::kinds::env::{Desired, Owner, Plane};
use crate::model::Sensitive;
use crate::plan::{self, ActionKind};

/// How long a freshly created principal may be unknown to RBAC before we give up (the
/// default of `--principal-wait`).
pub const PRINCIPAL_WINDOW: Duration = Duration::from_secs(120);

/// The replication window for a role assignment: the configured one for principals the plan
/// creates, none (fail fast) for any other.
fn role_window(sh: &Shared<'_>, d: &Desired) -> Option<Duration> {
    if d.owner != Owner::Description {
        None
    } else if d.principal_from_plan {
        Some(sh.cx.principal_wait)
    } else {
        Some(Duration::ZERO)
    }
}

/// What a worker returns: the node and how its request went.
type Done = (usize, Result<(Outcome, Option<Value>), Error>);

/// One request a worker performs.
enum Work {
    Put {
        id: String,
        api: &'static str,
        body: Value,
        /// Role assignments: the replication window for `PrincipalNotFound`.
        role: Option<Duration>,
        update: bool,
    },
    /// An in-place update by PATCH (VMs: read-modify-write guarded by the ETag they were
    /// read with; key vaults: a PUT would replace their access policies).
    Patch {
        id: String,
        api: &'static str,
        body: Value,
        etag: Option<String>,
    },
    Replace {
        id: String,
        api: &'static str,
        body: Value,
        /// Soft-deleted kinds (key vaults): the location whose deleted copy is purged between
        /// the delete and the create, so the name is free again.
        purge_at: Option<String>,
    },
    Delete {
        id: String,
        api: &'static str,
    },
    /// A blob upload through the data plane.
    PutBlob {
        id: String,
        data: Vec<u8>,
        content_type: String,
        plan: String,
        update: bool,
    },
    DeleteBlob {
        id: String,
    },
    /// A Data Lake folder: `MKDIRS`, then the plan's ACL entries merged in.
    PutFolder {
        id: String,
        body: Value,
        update: bool,
        /// Gen2: how long a refused write is retried (role propagation).
        wait: Duration,
    },
    /// The plan's ACL entries removed from a folder (the folder stays).
    RemoveFolderEntries {
        id: String,
        body: Value,
    },
    /// Recover a soft-deleted object, then bring it to the desired state.
    Recover(SoftDeleted),
    /// Purge a soft-deleted object, then create it.
    PurgeCreate(SoftDeleted),
    /// Destroy with `--purge`: delete (unless already soft-deleted), then purge.
    DeletePurge(SoftDeleted, bool),
    /// Set a secret: a new version with the value, or (`keep`: the current version, whose
    /// value is the wanted one) only its tags and content type.
    PutSecret {
        secret: SecretWrite,
        keep: Option<String>,
        update: bool,
    },
    DeleteSecret {
        id: String,
    },
    /// Grant (`add`) and take away (`remove`: permissions beyond the declared ones) on one
    /// principal's access-policy entry.
    Policy {
        id: String,
        tenant: String,
        add: Value,
        remove: Option<Value>,
        update: bool,
    },
    /// Take away the declared permissions only: what others granted the principal stays.
    RemovePolicy {
        id: String,
        tenant: String,
        permissions: Value,
    },
}

/// A soft-deletable object and what bringing it back or anew needs.
struct SoftDeleted {
    plane: Plane,
    id: String,
    api: &'static str,
    /// The desired body (vaults).
    body: Value,
    /// Where a deleted vault is kept.
    location: String,
    /// Secrets: what to write.
    secret: Option<SecretWrite>,
}

/// A secret's value and properties, ready to send.
struct SecretWrite {
    id: String,
    value: Sensitive<String>,
    /// The value was generated now: an existing (recovered) secret keeps its own.
    generated: bool,
    content_type: Option<String>,
    tags: Value,
    /// `--purge`: a soft-deleted secret in the way is purged rather than recovered.
    purge: bool,
}

/// Give every node without an outcome whose `edges` lead to a blocking outcome the outcome
/// `mark` makes from the blocker; answers whether any node changed.
fn settle_blocked(
    outcome: &mut [Option<Outcome>],
    edges: &[Vec<usize>],
    blocks: impl Fn(&Outcome) -> bool,
    mark: impl Fn(usize) -> Outcome,
) -> bool {
    let mut changed = false;
    for i in 0..outcome.len() {
        if outcome[i].is_none()
            && let Some(&b) = edges[i].iter().find(|&&d| outcome[d].as_ref().is_some_and(&blocks))
        {
            outcome[i] = Some(mark(b));
            changed = true;
        }
    }
    changed
}

/// Data-plane resources and soft-deletable ones: the same decision as for ARM, a different
/// request. What the request carries (a blob's file, a secret's value) is read now.
fn data_work(
    sh: &Shared<'_>,
    d: &crate::kinds::Decl,
    want: &Desired,
    have: Option<&Value>,
    values: &HashMap<(String, String), String>,
    work: Work,
) -> Result<Work, Error> {
    if let Work::Delete { id, .. } = work {
        return Ok(delete_work(want, id, have));
    }
    match want.plane {
        Plane::Arm => Ok(work),
        Plane::Blob => {
            let Some(spec) = d.spec.as_any().downcast_ref::<crate::kinds::storage::Blob>() else {
                return Ok(work);
            };
            let (id, update) = match work {
                Work::Put { id, update, .. } => (id, update),
                Work::Replace { id, .. } => (id, true),
                other => return Ok(other),
            };
            let env = sh.cx.env(sh.plan, &d.logical.value, values);
            let path = sh.plan.base_dir.join(env.resolve(&spec.source).or_unknown());
            let data = std::fs::read(&path)
                .map_err(|e| Error::new("FileUnreadable", format!("blob source {}: {e}", path.display())))?;
            Ok(Work::PutBlob { id, data, content_type: spec.content_type(), plan: sh.plan.name.clone(), update })
        }
        // A Gen2 folder's writes wait out the propagation of a data role the plan just granted.
        Plane::DataLake => Ok(match work {
            Work::Put { id, update, .. } => {
                Work::PutFolder { id, body: want.body.clone(), update, wait: sh.cx.principal_wait }
            }
            Work::Replace { id, .. } => {
                Work::PutFolder { id, body: want.body.clone(), update: true, wait: sh.cx.principal_wait }
            }
            other => other,
        }),
        Plane::Secret => {
            let (id, update) = match work {
                Work::Put { id, update, .. } => (id, update),
                Work::Replace { id, .. } => (id, true),
                Work::Recover(s) => {
                    let secret = Some(secret_write(sh, want, &s.id)?);
                    return Ok(Work::Recover(SoftDeleted { secret, ..s }));
                }
                Work::PurgeCreate(s) => {
                    let secret = Some(secret_write(sh, want, &s.id)?);
                    return Ok(Work::PurgeCreate(SoftDeleted { secret, ..s }));
                }
                other => return Ok(other),
            };
            // The value is the wanted one (or generated and present): keep the version.
            let keep = have
                .filter(|h| h.get("value").and_then(Value::as_str) == Some(crate::kinds::key_vault::SENSITIVE))
                .and_then(|h| h.get("version").and_then(Value::as_str))
                .map(str::to_string);
            Ok(Work::PutSecret { secret: secret_write(sh, want, &id)?, keep, update })
        }
        Plane::AccessPolicy => {
            let (id, update) = match work {
                Work::Put { id, update, .. } => (id, update),
                other => return Ok(other),
            };
            let tenant = want.body.pointer("/properties/tenantId").and_then(Value::as_str).unwrap_or_default();
            let add = want.body.pointer("/properties/permissions").cloned().unwrap_or(json!({}));
            let extra = have.map(|h| permissions_beyond(h.pointer("/properties/storedPermissions"), &add));
            let remove = extra.filter(|e| e.as_object().is_some_and(|o| !o.is_empty()));
            Ok(Work::Policy { id, tenant: tenant.to_string(), add, remove, update })
        }
    }
}

/// Permissions `have` grants beyond `want`, per kind, in the casing they are stored with
/// (`accessPolicies/remove` matches it exactly).
fn permissions_beyond(have: Option<&Value>, want: &Value) -> Value {
    select_permissions(have, want, false)
}

/// The stored permissions (exact casing) that are (`wanted`) or are not in `want`, compared
/// without regard to case.
fn select_permissions(have: Option<&Value>, want: &Value, wanted: bool) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in have.and_then(Value::as_object).into_iter().flatten() {
        let wanted_here: Vec<String> = want
            .get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_ascii_lowercase)
            .collect();
        let picked: Vec<Value> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter(|x| x.as_str().is_some_and(|x| wanted_here.contains(&x.to_ascii_lowercase()) == wanted))
            .cloned()
            .collect();
        if !picked.is_empty() {
            out.insert(k.clone(), Value::Array(picked));
        }
    }
    Value::Object(out)
}

/// The secret to write for a desired secret: its value from the plan's source (generated
/// now for `{ generate }`).
fn secret_write(sh: &Shared<'_>, want: &Desired, id: &str) -> Result<SecretWrite, Error> {
    let (_, source) = want.secrets.first().ok_or_else(|| Error::new("SecretUnavailable", format!("{id}: no value")))?;
    let value = secrets::resolve(source, &sh.plan.base_dir).map_err(|e| Error::new("SecretUnavailable", e.0))?;
    Ok(SecretWrite {
        id: id.to_string(),
        value,
        generated: matches!(source, crate::model::Secret::Generate(_)),
        content_type: want.body.get("contentType").and_then(Value::as_str).map(str::to_string),
        tags: want.body.get("tags").cloned().unwrap_or(json!({})),
        purge: sh.cx.purge,
    })
}

/// The request that deletes a resource.
fn delete_work(want: &Desired, id: String, have: Option<&Value>) -> Work {
    match want.plane {
        Plane::Arm => Work::Delete { id, api: want.api_version },
        Plane::Blob => Work::DeleteBlob { id },
        Plane::Secret => Work::DeleteSecret { id },
        Plane::DataLake => Work::RemoveFolderEntries { id, body: want.body.clone() },
        Plane::AccessPolicy => {
            // The declared permissions, in the casing the entry stores them with.
            let declared = want.body.pointer("/properties/permissions").cloned().unwrap_or(json!({}));
            let permissions = match have.and_then(|h| h.pointer("/properties/storedPermissions")) {
                Some(stored) => select_permissions(Some(stored), &declared, true),
                None => declared,
            };
            Work::RemovePolicy {
                id,
                tenant: want
                    .body
                    .pointer("/properties/tenantId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                permissions,
            }
        }
    }
}

/// The soft-deleted object a desired resource may have left.
fn soft(want: &Desired, id: &str, have: Option<&Value>) -> SoftDeleted {
    let location = have
        .and_then(|h| h.get("location"))
        .or_else(|| want.body.get("location"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    SoftDeleted {
        plane: want.plane,
        id: id.to_string(),
        api: want.api_version,
        body: want.body.clone(),
        location,
        secret: None,
    }
}

async fn run(client: Client, work: Work) -> Result<(Outcome, Option<Value>), Error> {
    match work {
        Work::Put { id, api, body, role, update } => {
            if let Some(window) = role {
                return put_role_assignment(&client, &id, api, &body, window).await;
            }
            let v = client.write(Method::PUT, &id, api, &body, &[]).await?;
            Ok((if update { Outcome::Updated(id) } else { Outcome::Created(id) }, Some(v)))
        }
        Work::Patch { id, api, body, etag } => {
            let headers: Vec<(&str, String)> = etag.into_iter().map(|e| ("If-Match", e)).collect();
            let v = client.write(Method::PATCH, &id, api, &body, &headers).await?;
            Ok((Outcome::Updated(id), Some(v)))
        }
        Work::Replace { id, api, body, purge_at } => {
            client.delete(&id, api).await?;
            if let Some(location) = purge_at {
                keyvault::purge_vault(&client, &id, &location).await?;
            }
            let v = client.write(Method::PUT, &id, api, &body, &[]).await?;
            Ok((Outcome::Replaced(id), Some(v)))
        }
        Work::Delete { id, api } => {
            client.delete(&id, api).await?;
            Ok((Outcome::Deleted(id), None))
        }
        Work::PutBlob { id, data, content_type, plan, update } => {
            let v = crate::arm::blob::put(&client, &id, data, &content_type, &[("idlab_plan", &plan)]).await?;
            Ok((if update { Outcome::Updated(id) } else { Outcome::Created(id) }, Some(v)))
        }
        Work::DeleteBlob { id } => {
            crate::arm::blob::delete(&client, &id).await?;
            Ok((Outcome::Deleted(id), None))
        }
        Work::PutFolder { id, body, update, wait } => {
            let v = crate::arm::datalake::apply(&client, &id, &body, wait).await?;
            Ok((if update { Outcome::Updated(id) } else { Outcome::Created(id) }, Some(v)))
        }
        Work::RemoveFolderEntries { id, body } => {
            crate::arm::datalake::remove_entries(&client, &id, &body).await?;
            Ok((Outcome::Deleted(id), None))
        }
        Work::Recover(s) => recover(&client, s).await,
        Work::PurgeCreate(s) => purge_create(&client, s).await,
        Work::DeletePurge(s, already_deleted) => {
            match (s.plane, already_deleted) {
                (Plane::Arm, false) => drop(client.delete(&s.id, s.api).await?),
                (Plane::Secret, false) => drop(keyvault::delete_secret(&client, &s.id).await?),
                _ => {}
            }
            match s.plane {
                Plane::Arm => keyvault::purge_vault(&client, &s.id, &s.location).await?,
                _ => keyvault::purge_secret(&client, &s.id).await?,
            }
            Ok((Outcome::Purged(s.id), None))
        }
        Work::PutSecret { secret, keep, update } => put_secret(&client, secret, keep, update).await,
        Work::DeleteSecret { id } => {
            keyvault::delete_secret(&client, &id).await?;
            Ok((Outcome::Deleted(id), None))
        }
        Work::Policy { id, tenant, add, remove, update } => {
            keyvault::update_policy(&client, &id, &tenant, "add", &add).await?;
            if let Some(r) = &remove {
                keyvault::update_policy(&client, &id, &tenant, "remove", r).await?;
            }
            let body = json!({ "properties": { "tenantId": tenant, "permissions": add } });
            Ok((if update { Outcome::Updated(id) } else { Outcome::Created(id) }, Some(body)))
        }
        Work::RemovePolicy { id, tenant, permissions } => {
            match keyvault::update_policy(&client, &id, &tenant, "remove", &permissions).await {
                // The vault is gone (deleted with the plan): so is the entry.
                Err(e) if e.status == Some(404) => {}
                r => r?,
            }
            Ok((Outcome::Deleted(id), None))
        }
    }
}

/// Bring back a soft-deleted vault (`createMode: recover`, then a PATCH if the recovered
/// vault differs from the plan) or secret.
async fn recover(client: &Client, s: SoftDeleted) -> Result<(Outcome, Option<Value>), Error> {
    if s.plane == Plane::Arm {
        let mut body = s.body.clone();
        body["properties"]["createMode"] = json!("recover");
        let got = client.write(Method::PUT, &s.id, s.api, &body, &[]).await?;
        let mut changes = Vec::new();
        plan::diff("", &s.body, Some(&got), &mut changes);
        let got =
            if changes.is_empty() { got } else { client.write(Method::PATCH, &s.id, s.api, &s.body, &[]).await? };
        return Ok((Outcome::Recovered(s.id), Some(got)));
    }
    let w = s.secret.ok_or_else(|| Error::new("NotRecoverable", format!("{}: nothing to recover", s.id)))?;
    keyvault::recover_secret(client, &w.id).await?;
    let body = converge_recovered(client, &w).await?;
    Ok((Outcome::Recovered(w.id), body))
}

/// After a secret is recovered: a generated secret keeps the value it had; a value from the
/// environment or a file wins when it differs. Recovery finishes in the background in Azure,
/// so the secret is read until it is back.
async fn converge_recovered(client: &Client, w: &SecretWrite) -> Result<Option<Value>, Error> {
    if w.generated {
        return Ok(None);
    }
    let url = keyvault::secret_url_of(client, &w.id)
        .await?
        .ok_or_else(|| Error::new("VaultNotFound", format!("the vault of {} does not exist", w.id)))?;
    let mut wait = Duration::from_millis(200);
    for _ in 0..12 {
        match keyvault::get_secret_at(client, &url).await? {
            Some(keyvault::SecretState::Live { value, .. }) => {
                if secrets::same(&value, &w.value) {
                    return Ok(None);
                }
                let v = keyvault::set_secret(client, &w.id, &w.value, w.content_type.as_deref(), &w.tags).await?;
                return Ok(Some(v));
            }
            _ => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
    }
    Err(Error::new("RecoveryTimedOut", format!("{}: the recovered secret did not come back", w.id)))
}

/// Purge a soft-deleted vault or secret, then create it anew.
async fn purge_create(client: &Client, s: SoftDeleted) -> Result<(Outcome, Option<Value>), Error> {
    if s.plane == Plane::Arm {
        keyvault::purge_vault(client, &s.id, &s.location).await?;
        let v = client.write(Method::PUT, &s.id, s.api, &s.body, &[]).await?;
        return Ok((Outcome::Created(s.id), Some(v)));
    }
    let w = s.secret.ok_or_else(|| Error::new("NotRecoverable", format!("{}: nothing to create", s.id)))?;
    keyvault::purge_secret(client, &w.id).await?;
    let v = keyvault::set_secret(client, &w.id, &w.value, w.content_type.as_deref(), &w.tags).await?;
    Ok((Outcome::Created(w.id), Some(v)))
}

/// Write a secret. A create that meets a soft-deleted secret of the same name (its vault
/// was recovered after the plan was made) recovers it, or purges it with `--purge`.
async fn put_secret(
    client: &Client,
    w: SecretWrite,
    keep: Option<String>,
    update: bool,
) -> Result<(Outcome, Option<Value>), Error> {
    if let Some(version) = keep {
        let v = keyvault::update_secret(client, &w.id, &version, w.content_type.as_deref(), &w.tags).await?;
        return Ok((Outcome::Updated(w.id), Some(v)));
    }
    match keyvault::set_secret(client, &w.id, &w.value, w.content_type.as_deref(), &w.tags).await {
        Ok(v) => Ok((if update { Outcome::Updated(w.id) } else { Outcome::Created(w.id) }, Some(v))),
        Err(e) if e.status == Some(409) && !update && w.purge => {
            keyvault::purge_secret(client, &w.id).await?;
            let v = keyvault::set_secret(client, &w.id, &w.value, w.content_type.as_deref(), &w.tags).await?;
            Ok((Outcome::Created(w.id), Some(v)))
        }
        Err(e) if e.status == Some(409) && !update => {
            keyvault::recover_secret(client, &w.id).await?;
            let body = converge_recovered(client, &w).await?;
            Ok((Outcome::Recovered(w.id), body))
        }
        Err(e) => Err(e),
    }
}

/// Role assignments: `PrincipalNotFound` for an identity the plan just created is retried
/// within `window` (replication lag); for any other principal the window is zero and the
/// error is final; `RoleAssignmentExists` for the same triple under another name is adopted.
async fn put_role_assignment(
    client: &Client,
    id: &str,
    api: &str,
    body: &Value,
    window: Duration,
) -> Result<(Outcome, Option<Value>), Error> {
    let start = Instant::now();
    let mut wait = Duration::from_millis(500);
    loop {
        let r = client.send(Method::PUT, id, Some(api), Some(body), &[]).await?;
        if (200..300).contains(&r.status) {
            return Ok((Outcome::Created(id.to_string()), Some(r.body)));
        }
        let e = Client::error(&Method::PUT, id, &r);
        match e.code.as_str() {
            "PrincipalNotFound" if start.elapsed() < window => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            "RoleAssignmentExists" => {
                let scope = id.split("/providers/Microsoft.Authorization/").next().unwrap_or_default();
                let p = body.pointer("/properties/principalId").and_then(Value::as_str).unwrap_or_default();
                let def = body.pointer("/properties/roleDefinitionId").and_then(Value::as_str).unwrap_or_default();
                let list = client
                    .list(
                        &format!(
                            "{scope}/providers/Microsoft.Authorization/roleAssignments?$filter=principalId%20eq%20'{p}'"
                        ),
                        api,
                    )
                    .await?;
                let found = list.into_iter().find(|a| {
                    a.pointer("/properties/scope")
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.eq_ignore_ascii_case(scope))
                        && a.pointer("/properties/roleDefinitionId").and_then(Value::as_str).is_some_and(|d| {
                            d.rsplit('/')
                                .next()
                                .unwrap_or_default()
                                .eq_ignore_ascii_case(def.rsplit('/').next().unwrap_or_default())
                        })
                });
                return match found {
                    Some(a) => {
                        Ok((Outcome::Adopted(a.get("id").and_then(Value::as_str).unwrap_or(id).to_string()), Some(a)))
                    }
                    None => Err(e),
                };
            }
            _ => return Err(e),
        }
    }
}

/// The body of a create: the desired body, the fields a kind sends only at creation
/// ([`crate::kinds::Spec::create_only`]), and the secrets.
fn create_body(sh: &Shared<'_>, d: &Desired, create_only: &[(String, Value)]) -> Result<Value, Error> {
    let mut body = d.body.clone();
    for (ptr, v) in create_only {
        if v.to_string().contains(crate::kinds::env::UNKNOWN) {
            return Err(Error::new("Unresolved", format!("{} still depends on values that are not known", d.id)));
        }
        let (parent, key) = ptr.rsplit_once('/').unwrap_or(("", ptr));
        if let Some(obj) = body.pointer_mut(parent).and_then(Value::as_object_mut) {
            obj.insert(key.to_string(), v.clone());
        }
    }
    for (ptr, s) in &d.secrets {
        let v = secrets::resolve(s, &sh.plan.base_dir).map_err(|e| Error::new("SecretUnavailable", e.0))?;
        let (parent, key) = ptr.rsplit_once('/').unwrap_or(("", ptr));
        if let Some(obj) = body.pointer_mut(parent).and_then(Value::as_object_mut) {
            obj.insert(key.to_string(), Value::String(v.expose().clone()));
        }
    }
    Ok(body)
}

fn dependents_closure(sh: &Shared<'_>, i: usize, reverse: bool) -> Vec<usize> {
    let n = sh.plan.decls.len();
    let edges = sh.plan.dag.edges();
    let mut out = Vec::new();
    let mut stack = vec![i];
    let mut seen = vec![false; n];
    while let Some(x) = stack.pop() {
        for &(a, b) in &edges {
            let (from, to) = if reverse { (b, a) } else { (a, b) };
            if from == x && !seen[to] {
                seen[to] = true;
                out.push(to);
                stack.push(to);
            }
        }
    }
    out
}

/// Converge: create, update, replace or adopt every declared resource, then delete orphans.
#[allow(clippy::needless_range_loop)]
pub async fn apply(sh: &Shared<'_>, mut obs: Observed) -> Vec<(String, String, Outcome)> {
    let n = sh.plan.decls.len();
    let cost = sh.plan.dag.remaining_cost();
    let deps: Vec<Vec<usize>> = (0..n).map(|i| sh.plan.dag.dependencies(i)).collect();
    let mut outcome: Vec<Option<Outcome>> = vec![None; n];
    let excluded: Vec<usize> = (0..n).filter(|i| sh.cx.only.as_ref().is_some_and(|o| !o.contains(i))).collect();
    for &i in &excluded {
        outcome[i] = Some(Outcome::Unchanged);
    }
    let mut running: HashSet<usize> = HashSet::new();
    let mut set: JoinSet<Done> = JoinSet::new();
    loop {
        if super::interrupted() && set.is_empty() {
            for o in outcome.iter_mut().filter(|o| o.is_none()) {
                *o = Some(Outcome::Skipped("interrupted before it started".into()));
            }
            break;
        }
        // Dispatch ready nodes, highest remaining cost first.
        let mut ready: Vec<usize> = (0..n)
            .filter(|&i| outcome[i].is_none() && !running.contains(&i))
            .filter(|&i| {
                deps[i].iter().all(|&d| {
                    outcome[d].as_ref().is_some_and(|o| !matches!(o, Outcome::Failed(_) | Outcome::Skipped(_)))
                })
            })
            .collect();
        if sh.cx.fifo {
            ready.sort_unstable();
        } else {
            ready.sort_by_key(|&i| (std::cmp::Reverse(cost[i]), i));
        }
        for i in ready {
            if running.len() >= sh.cx.parallelism.max(1) || super::interrupted() {
                break;
            }
            let d = &sh.plan.decls[i];
            let name = d.logical.value.clone();
            let want = d.spec.desired(&sh.cx.env(sh.plan, &name, &obs.values));
            let Some(want) = want else {
                outcome[i] =
                    Some(Outcome::Skipped(format!("{} is applied by a later version of idlab", d.kind.type_name())));
                continue;
            };
            let have = obs.bodies[i].clone();
            // A resource whose name depended on values known only now may already exist. Role
            // assignments need no look: their name is derived from (scope, principal, role), so
            // the PUT itself is idempotent. Anything else is read first (rare: only names built
            // from values known after apply).
            let have = if have.is_none()
                && want.owner != Owner::Description
                && obs.desired[i].as_ref().is_none_or(|o| !o.is_known())
                && want.is_known()
            {
                match super::read(&sh.cx.client, &want, &sh.plan.base_dir).await {
                    Ok(h) => h,
                    // Unknown state: do not write over something that may be someone else's.
                    Err(e) => {
                        outcome[i] = Some(Outcome::Failed(e));
                        continue;
                    }
                }
            } else {
                have
            };
            let mut action = plan::decide(&name, d.kind.type_name(), &sh.plan.name, &want, have.as_ref());
            if sh.cx.purge {
                plan::purge_instead(&mut action);
            }
            let create_only = d.spec.create_only(&sh.cx.env(sh.plan, &name, &obs.values));
            let work = match action.action {
                ActionKind::NoOp => {
                    record_decl(sh.cx, sh.plan, i, &mut obs.values, &want.id, have.as_ref());
                    outcome[i] = Some(Outcome::Unchanged);
                    continue;
                }
                ActionKind::Conflict if plan::is_soft_deleted_elsewhere(&action) => {
                    outcome[i] = Some(Outcome::Failed(Error::new(
                        "SoftDeletedElsewhere",
                        format!("{} {}", want.id, action.reason.unwrap_or_default()),
                    )));
                    continue;
                }
                ActionKind::Conflict => {
                    outcome[i] = Some(Outcome::Failed(Error::new(
                        "OwnedByAnotherPlan",
                        format!("{} {}", want.id, action.reason.unwrap_or_default()),
                    )));
                    continue;
                }
                ActionKind::Adopt if !sh.cx.adopt => {
                    outcome[i] = Some(Outcome::Failed(Error::new(
                        "NotOwned",
                        format!(
                            "{} exists without this plan's idlab-plan tag; rerun with --adopt to take it over",
                            want.id
                        ),
                    )));
                    continue;
                }
                _ if !want.is_known() => {
                    outcome[i] = Some(Outcome::Failed(Error::new(
                        "Unresolved",
                        format!("{} still depends on values that are not known", want.id),
                    )));
                    continue;
                }
                ActionKind::Create => match create_body(sh, &want, &create_only) {
                    Ok(body) => Work::Put {
                        id: want.id.clone(),
                        api: want.api_version,
                        body,
                        role: role_window(sh, &want),
                        update: false,
                    },
                    Err(e) => {
                        outcome[i] = Some(Outcome::Failed(e));
                        continue;
                    }
                },
                ActionKind::Update | ActionKind::Adopt if d.kind.type_name() == "virtual_machine" => Work::Patch {
                    id: want.id.clone(),
                    api: want.api_version,
                    body: vm_patch(&want.body, have.as_ref()),
                    etag: have.as_ref().and_then(|h| h.get("etag")).and_then(Value::as_str).map(str::to_string),
                },
                ActionKind::Update | ActionKind::Adopt if d.kind.type_name() == "key_vault" => {
                    Work::Patch { id: want.id.clone(), api: want.api_version, body: want.body.clone(), etag: None }
                }
                ActionKind::Recover => Work::Recover(soft(&want, &want.id, have.as_ref())),
                ActionKind::Purge => match create_body(sh, &want, &create_only) {
                    Ok(body) => Work::PurgeCreate(SoftDeleted { body, ..soft(&want, &want.id, have.as_ref()) }),
                    Err(e) => {
                        outcome[i] = Some(Outcome::Failed(e));
                        continue;
                    }
                },
                ActionKind::Replace if want.soft_delete && !sh.cx.purge => {
                    outcome[i] = Some(Outcome::Failed(Error::new(
                        "PurgeNeeded",
                        format!(
                            "{}: replacing it deletes it, and its soft-deleted copy keeps the name until purged; rerun with --purge to purge it in between",
                            want.id
                        ),
                    )));
                    continue;
                }
                ActionKind::Update | ActionKind::Adopt => Work::Put {
                    id: want.id.clone(),
                    api: want.api_version,
                    body: want.body.clone(),
                    role: role_window(sh, &want),
                    update: true,
                },
                ActionKind::Replace => match create_body(sh, &want, &create_only) {
                    Ok(body) => Work::Replace {
                        id: want.id.clone(),
                        api: want.api_version,
                        body,
                        purge_at: want.soft_delete.then(|| soft(&want, &want.id, have.as_ref()).location),
                    },
                    Err(e) => {
                        outcome[i] = Some(Outcome::Failed(e));
                        continue;
                    }
                },
                ActionKind::Delete => Work::Delete { id: want.id.clone(), api: want.api_version },
            };
            let work = match data_work(sh, d, &want, have.as_ref(), &obs.values, work) {
                Ok(w) => w,
                Err(e) => {
                    outcome[i] = Some(Outcome::Failed(e));
                    continue;
                }
            };
            sh.reporter.event(Event::Started {
                name: name.clone(),
                kind: d.kind.type_name().into(),
                action: action.action,
            });
            obs.desired[i] = Some(want);
            running.insert(i);
            let client = sh.cx.client.clone();
            set.spawn(async move { (i, run(client, work).await) });
        }
        if set.is_empty() {
            // Nodes finished without a request (no-ops) may have made others ready.
            let more = (0..n).any(|i| {
                outcome[i].is_none()
                    && deps[i].iter().all(|&d| {
                        outcome[d].as_ref().is_some_and(|o| !matches!(o, Outcome::Failed(_) | Outcome::Skipped(_)))
                    })
            });
            if more {
                continue;
            }
            // Nothing running and nothing ready: mark what can never run.
            let blocked = settle_blocked(
                &mut outcome,
                &deps,
                |o| matches!(o, Outcome::Failed(_) | Outcome::Skipped(_)),
                |c| Outcome::Skipped(format!("depends on `{}`, which did not apply", sh.plan.decls[c].logical.value)),
            );
            if !blocked {
                break;
            }
            continue;
        }
        let Some(joined) = set.join_next().await else { continue };
        let Ok((i, result)) = joined else { continue };
        running.remove(&i);
        let name = sh.plan.decls[i].logical.value.clone();
        let o = match result {
            Ok((o, body)) => {
                let id = obs.desired[i].as_ref().map(|d| d.id.clone()).unwrap_or_default();
                record_decl(sh.cx, sh.plan, i, &mut obs.values, &id, body.as_ref());
                obs.bodies[i] = body;
                o
            }
            Err(e) => Outcome::Failed(e),
        };
        sh.reporter.event(Event::Finished { name, outcome: o.clone() });
        outcome[i] = Some(o);
    }
    let mut results: Vec<(String, String, Outcome)> = Vec::new();
    let order = sh.plan.dag.topo_order().unwrap_or_else(|| (0..n).collect());
    for i in order.into_iter().filter(|i| !excluded.contains(i)) {
        let d = &sh.plan.decls[i];
        results.push((
            d.logical.value.clone(),
            d.kind.type_name().to_string(),
            outcome[i].clone().unwrap_or(Outcome::Skipped("not reached".into())),
        ));
    }
    // Orphans: role assignments first, then the rest, groups last (not with --target).
    let mut orphans = if sh.cx.only.is_some() || super::interrupted() { Vec::new() } else { obs.orphans.clone() };
    orphans.sort_by_key(|(id, t)| (orphan_rank(t), std::cmp::Reverse(id.len())));
    for (id, t) in orphans {
        let kind = super::kind_of_type(&t);
        let api = api_for_type(&t);
        sh.reporter.event(Event::Started { name: id.clone(), kind: kind.clone(), action: ActionKind::Delete });
        let o = match sh.cx.client.delete(&id, api).await {
            Ok(_) => Outcome::Deleted(id.clone()),
            Err(e) => Outcome::Failed(e),
        };
        sh.reporter.event(Event::Finished { name: id.clone(), outcome: o.clone() });
        results.push((id.rsplit('/').next().unwrap_or_default().to_string(), kind, o));
    }
    results
}

fn orphan_rank(t: &str) -> u8 {
    match t.to_ascii_lowercase().as_str() {
        "microsoft.authorization/roleassignments" => 0,
        "microsoft.compute/virtualmachines" => 1,
        "microsoft.network/networkinterfaces" => 2,
        "microsoft.resources/resourcegroups" => 9,
        _ => 5,
    }
}

/// The api-version idlab uses for an ARM type.
pub fn api_for_type(t: &str) -> &'static str {
    crate::kinds::KINDS
        .iter()
        .find(|k| k.arm_type().is_some_and(|a| a.eq_ignore_ascii_case(t)))
        .map_or("2021-04-01", |k| k.api_version())
}

/// Destroy: whether everything depending on a node is out of the way (deleted, purged,
/// absent or skipped), so the node may go.
fn dependents_gone(outcome: &[Option<Outcome>], dependents: &[usize]) -> bool {
    dependents.iter().all(|&d| {
        outcome[d].as_ref().is_some_and(|o| {
            matches!(o, Outcome::Deleted(_) | Outcome::Purged(_) | Outcome::Unchanged | Outcome::Skipped(_))
        })
    })
}

/// Tear down what the plan owns, dependents before what they depend on.
#[allow(clippy::needless_range_loop)]
pub async fn destroy(sh: &Shared<'_>, obs: Observed) -> Vec<(String, String, Outcome)> {
    let n = sh.plan.decls.len();
    let mut outcome: Vec<Option<Outcome>> = vec![None; n];
    let excluded: Vec<usize> = (0..n).filter(|i| sh.cx.only.as_ref().is_some_and(|o| !o.contains(i))).collect();
    for &i in &excluded {
        outcome[i] = Some(Outcome::Unchanged);
    }
    // Role assignments and other non-ARM-served kinds have no desired state here: skip.
    for i in 0..n {
        if outcome[i].is_some() {
            continue;
        }
        let d = &sh.plan.decls[i];
        match (&obs.desired[i], &obs.bodies[i]) {
            (None, _) => {
                outcome[i] =
                    Some(Outcome::Skipped(format!("{} is handled by a later version of idlab", d.kind.type_name())))
            }
            (Some(_), None) => outcome[i] = Some(Outcome::Unchanged),
            (Some(w), Some(_)) if !super::owned(&sh.plan.name, &obs.desired, &obs.bodies, i) && !sh.cx.force => {
                outcome[i] = Some(Outcome::Kept(super::not_owned_reason(w.owner)));
            }
            (Some(w), Some(have)) if plan::is_soft_deleted(have) && !(w.soft_delete && sh.cx.purge) => {
                outcome[i] = Some(Outcome::Unchanged);
            }
            _ => {}
        }
    }
    // Groups that hold resources the plan does not own stay (unless --force).
    let declared: HashSet<String> = obs.desired.iter().flatten().map(|d| d.id.to_ascii_lowercase()).collect();
    for i in 0..n {
        if outcome[i].is_some() || sh.plan.decls[i].kind.type_name() != "resource_group" {
            continue;
        }
        let Some(w) = &obs.desired[i] else { continue };
        if sh.cx.force {
            continue;
        }
        match sh.cx.client.list(&format!("{}/resources", w.id), "2021-04-01").await {
            Ok(list) => {
                let foreign: Vec<String> = list
                    .iter()
                    .filter_map(|r| r.get("id").and_then(Value::as_str))
                    .filter(|id| !declared.contains(&id.to_ascii_lowercase()))
                    .filter(|id| !obs.orphans.iter().any(|(o, _)| o.eq_ignore_ascii_case(id)))
                    .map(str::to_string)
                    .collect();
                if !foreign.is_empty() {
                    let names: Vec<&str> = foreign.iter().map(|f| f.rsplit('/').next().unwrap_or(f)).collect();
                    outcome[i] = Some(Outcome::Kept(format!(
                        "it holds resources this plan does not own: {} (use --force to delete them too)",
                        names.join(", ")
                    )));
                }
            }
            Err(e) => outcome[i] = Some(Outcome::Failed(e)),
        }
    }
    let cost = sh.plan.dag.remaining_cost();
    let mut running: HashSet<usize> = HashSet::new();
    let mut set: JoinSet<Done> = JoinSet::new();
    let dependents: Vec<Vec<usize>> = (0..n).map(|i| dependents_closure(sh, i, false)).collect();
    let mut ids: HashMap<usize, String> = HashMap::new();
    let mut with_parent: Vec<(usize, usize)> = Vec::new();
    // Orphans go first (they may sit inside declared groups).
    let mut orphans = if sh.cx.only.is_some() { Vec::new() } else { obs.orphans.clone() };
    orphans.sort_by_key(|(id, t)| (orphan_rank(t), std::cmp::Reverse(id.len())));
    let mut results: Vec<(String, String, Outcome)> = Vec::new();
    for (id, t) in orphans {
        let kind = super::kind_of_type(&t);
        let o = match sh.cx.client.delete(&id, api_for_type(&t)).await {
            Ok(_) => Outcome::Deleted(id.clone()),
            Err(e) => Outcome::Failed(e),
        };
        sh.reporter.event(Event::Finished { name: id.clone(), outcome: o.clone() });
        results.push((id.rsplit('/').next().unwrap_or_default().to_string(), kind, o));
    }
    loop {
        if super::interrupted() && set.is_empty() {
            for o in outcome.iter_mut().filter(|o| o.is_none()) {
                *o = Some(Outcome::Skipped("interrupted before it started".into()));
            }
            break;
        }
        let mut ready: Vec<usize> = (0..n)
            .filter(|&i| outcome[i].is_none() && !running.contains(&i))
            .filter(|&i| dependents_gone(&outcome, &dependents[i]))
            .collect();
        ready.sort_by_key(|&i| (cost[i], i));
        for i in ready {
            if running.len() >= sh.cx.parallelism.max(1) || super::interrupted() {
                break;
            }
            let Some(w) = obs.desired[i].clone() else { continue };
            let d = &sh.plan.decls[i];
            let purge = w.soft_delete && sh.cx.purge;
            sh.reporter.event(Event::Started {
                name: d.logical.value.clone(),
                kind: d.kind.type_name().into(),
                action: if purge { ActionKind::Purge } else { ActionKind::Delete },
            });
            // A child without a mark of its own (a SQL server's Entra admin) goes with its
            // parent when that is deleted too: Azure may refuse to delete it alone (an
            // Entra-only server must keep its admin), and the parent's delete removes it. Not
            // when the parent is only soft-deleted (a vault): recovering it would bring the
            // child back, so the child is removed for real.
            if w.owner == Owner::Parent
                && let Some(p) = super::parent_of(&obs.desired, i)
                && outcome[p].is_none()
                && obs.desired[p].as_ref().is_some_and(|x| !x.soft_delete)
            {
                // Provisional: settled (and reported) once the parent has its own outcome.
                outcome[i] = Some(Outcome::Deleted(format!(
                    "{} (with {})",
                    w.id,
                    obs.desired[p].as_ref().map_or("its parent", |x| x.id.as_str())
                )));
                with_parent.push((i, p));
                continue;
            }
            let id = obs.bodies[i]
                .as_ref()
                .and_then(|b| b.get("id"))
                .and_then(Value::as_str)
                .map_or(w.id.clone(), str::to_string);
            ids.insert(i, id.clone());
            running.insert(i);
            let client = sh.cx.client.clone();
            let have = obs.bodies[i].as_ref();
            let work = if purge {
                Work::DeletePurge(soft(&w, &id, have), have.is_some_and(plan::is_soft_deleted))
            } else {
                delete_work(&w, id, have)
            };
            set.spawn(async move { (i, run(client, work).await) });
        }
        if set.is_empty() {
            let more = (0..n).any(|i| outcome[i].is_none() && dependents_gone(&outcome, &dependents[i]));
            if more {
                continue;
            }
            // Nothing running and nothing ready: keep what something undeleted still needs.
            let blocked = settle_blocked(
                &mut outcome,
                &dependents,
                |o| matches!(o, Outcome::Failed(_) | Outcome::Kept(_)),
                |b| Outcome::Kept(format!("`{}` depends on it and was not deleted", sh.plan.decls[b].logical.value)),
            );
            if !blocked {
                break;
            }
            continue;
        }
        let Some(Ok((i, result))) = set.join_next().await else { continue };
        running.remove(&i);
        let o = match result {
            Ok((o, _)) => o,
            Err(e) => Outcome::Failed(e),
        };
        sh.reporter.event(Event::Finished { name: sh.plan.decls[i].logical.value.clone(), outcome: o.clone() });
        outcome[i] = Some(o);
    }
    // Children that go with their parent: deleted only if the parent was.
    for (i, p) in with_parent {
        if !matches!(outcome[p], Some(Outcome::Deleted(_) | Outcome::Purged(_))) {
            outcome[i] = Some(Outcome::Kept(format!(
                "it goes with `{}`, which was not deleted",
                sh.plan.decls[p].logical.value
            )));
        }
        if let Some(o) = outcome[i].clone() {
            sh.reporter.event(Event::Finished { name: sh.plan.decls[i].logical.value.clone(), outcome: o });
        }
    }
    let order = sh.plan.dag.topo_order().unwrap_or_else(|| (0..n).collect());
    for i in order.into_iter().rev().filter(|i| !excluded.contains(i)) {
        let d = &sh.plan.decls[i];
        results.push((
            d.logical.value.clone(),
            d.kind.type_name().to_string(),
            outcome[i].clone().unwrap_or(Outcome::Skipped("not reached".into())),
        ));
    }
    results
}
