//! The secret plane: Key Vault secrets, written with their value read at request time,
//! recovered or purged when a soft-deleted copy is in the way.

use std::time::Duration;

use serde_json::{Value, json};

use super::work::{Done, PlaneCx, SecretWrite, SoftDeleted, Work, written};
use crate::arm::client::RetryWhile;
use crate::arm::{Client, Error, keyvault};
use crate::engine::context::Outcome;
use crate::engine::secrets;
use crate::kinds::env::Desired;

/// A create, update, replace, recovery or purge of a secret: the ARM decision, with the
/// value to write.
///
/// # Errors
/// The secret's value cannot be read.
pub fn for_change(cx: &PlaneCx<'_>, want: &Desired, have: Option<&Value>, work: Work) -> Result<Work, Error> {
    let (id, update) = match work {
        Work::Put { id, update, .. } => (id, update),
        Work::Replace { id, .. } => (id, true),
        Work::Recover(s) => {
            let secret = Some(write_of(cx, want, &s.id)?);
            return Ok(Work::Recover(SoftDeleted { secret, ..s }));
        }
        Work::PurgeCreate(s) => {
            let secret = Some(write_of(cx, want, &s.id)?);
            return Ok(Work::PurgeCreate(SoftDeleted { secret, ..s }));
        }
        other => return Ok(other),
    };
    // The value is the wanted one (or generated and present): keep the version.
    let keep = have
        .filter(|h| h.get("value").and_then(Value::as_str) == Some(crate::kinds::key_vault::SENSITIVE))
        .and_then(|h| h.get("version").and_then(Value::as_str))
        .map(str::to_string);
    Ok(Work::PutSecret { secret: write_of(cx, want, &id)?, keep, update })
}

/// The secret to write for a desired secret: its value from the plan's source (generated
/// now for `{ generate }`).
fn write_of(cx: &PlaneCx<'_>, want: &Desired, id: &str) -> Result<SecretWrite, Error> {
    let (_, source) = want.secrets.first().ok_or_else(|| Error::new("SecretUnavailable", format!("{id}: no value")))?;
    let value = secrets::resolve(source, cx.base_dir).map_err(|e| Error::new("SecretUnavailable", e.0))?;
    Ok(SecretWrite {
        id: id.to_string(),
        value,
        generated: matches!(source, crate::model::Secret::Generate(_)),
        content_type: want.body.get("contentType").and_then(Value::as_str).map(str::to_string),
        tags: want.body.get("tags").cloned().unwrap_or(json!({})),
        purge: cx.purge,
    })
}

/// Write a secret. A create that meets a soft-deleted secret of the same name (its vault
/// was recovered after the plan was made) recovers it, or purges it with `--purge`.
pub async fn put(client: &Client, w: SecretWrite, keep: Option<String>, update: bool) -> Done {
    if let Some(version) = keep {
        let v = keyvault::update_secret(client, &w.id, &version, w.content_type.as_deref(), &w.tags).await?;
        return Ok((Outcome::Updated(w.id), Some(v)));
    }
    match keyvault::set_secret(client, &w.id, &w.value, w.content_type.as_deref(), &w.tags).await {
        Ok(v) => Ok((written(w.id, update), Some(v))),
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

/// Delete a secret (Key Vault keeps it soft-deleted).
pub async fn delete(client: &Client, id: String) -> Done {
    keyvault::delete_secret(client, &id).await?;
    Ok((Outcome::Deleted(id), None))
}

/// Bring back a soft-deleted secret.
pub async fn recover(client: &Client, s: SoftDeleted) -> Done {
    let w = s.secret.ok_or_else(|| Error::new("NotRecoverable", format!("{}: nothing to recover", s.id)))?;
    keyvault::recover_secret(client, &w.id).await?;
    let body = converge_recovered(client, &w).await?;
    Ok((Outcome::Recovered(w.id), body))
}

/// Purge a soft-deleted secret, then create it anew.
pub async fn purge_create(client: &Client, s: SoftDeleted) -> Done {
    let w = s.secret.ok_or_else(|| Error::new("NotRecoverable", format!("{}: nothing to create", s.id)))?;
    keyvault::purge_secret(client, &w.id).await?;
    let v = keyvault::set_secret(client, &w.id, &w.value, w.content_type.as_deref(), &w.tags).await?;
    Ok((Outcome::Created(w.id), Some(v)))
}

/// Destroy with `--purge`: delete the secret (unless already soft-deleted), then purge it.
pub async fn delete_purge(client: &Client, s: SoftDeleted, already_deleted: bool) -> Done {
    if !already_deleted {
        keyvault::delete_secret(client, &s.id).await?;
    }
    keyvault::purge_secret(client, &s.id).await?;
    Ok((Outcome::Purged(s.id), None))
}

/// After a secret is recovered: a generated secret keeps the value it had; a value from the
/// environment or a file wins when it differs.
async fn converge_recovered(client: &Client, w: &SecretWrite) -> Result<Option<Value>, Error> {
    if w.generated {
        return Ok(None);
    }
    let url = keyvault::secret_url_of(client, &w.id)
        .await?
        .ok_or_else(|| Error::new("VaultNotFound", format!("the vault of {} does not exist", w.id)))?;
    let value = wait_until_recovered(client, &url, &w.id).await?;
    if secrets::same(&value, &w.value) {
        return Ok(None);
    }
    let v = keyvault::set_secret(client, &w.id, &w.value, w.content_type.as_deref(), &w.tags).await?;
    Ok(Some(v))
}

/// How long a recovered secret may take to come back (Azure finishes recovery in the
/// background: about 12 reads, backing off from 200 ms to 5 s).
const RECOVERY_WINDOW: Duration = Duration::from_secs(41);

/// Read a recovered secret until it is back: a retry condition of the client (404 until
/// [`RECOVERY_WINDOW`]), never a loop here.
async fn wait_until_recovered(client: &Client, url: &str, id: &str) -> Result<crate::model::Sensitive<String>, Error> {
    let wait = RetryWhile::status(404).within(RECOVERY_WINDOW).max_delay(Duration::from_secs(5));
    if let Some(keyvault::SecretState::Live { value, .. }) = keyvault::get_secret_at_while(client, url, wait).await? {
        return Ok(value);
    }
    Err(Error::new("RecoveryTimedOut", format!("{id}: the recovered secret did not come back")))
}
