//! Per-plane request drivers: what one node's request is and how it is sent. The walkers
//! decide *whether* and *when* (with the scheduler); a plane decides *how*: ARM
//! ([`arm`]), blobs ([`blob`]), Key Vault secrets ([`secret`]), access-policy entries
//! ([`policy`]) and Data Lake folders ([`datalake`]).
//!
//! [`Work`] is the request a worker performs, built by [`for_change`] and [`for_delete`]
//! from the desired state, and sent by [`run`].
//!
//! Imports: kinds, plan, arm, engine's shared types. No scheduling.

pub mod arm;
pub mod blob;
pub mod datalake;
pub mod policy;
pub mod secret;

use std::time::Duration;

use serde_json::Value;

use super::context::Outcome;
use crate::arm::{Client, Error};
use crate::kinds::env::{Desired, Plane};
use crate::model::Sensitive;

/// How one request went: the outcome and what the resource now holds.
pub type Done = Result<(Outcome, Option<Value>), Error>;

/// One request a worker performs.
pub enum Work {
    Put {
        id: String,
        api: &'static str,
        body: Value,
        /// Role assignments: the replication window for `PrincipalNotFound`.
        role: Option<Duration>,
        update: bool,
    },
    /// An in-place update by PATCH (a kind's [`crate::kinds::Spec::update_patch`]).
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
pub struct SoftDeleted {
    pub plane: Plane,
    pub id: String,
    pub api: &'static str,
    /// The desired body (vaults).
    pub body: Value,
    /// Where a deleted vault is kept.
    pub location: String,
    /// Secrets: what to write.
    pub secret: Option<SecretWrite>,
}

/// A secret's value and properties, ready to send.
pub struct SecretWrite {
    pub id: String,
    pub value: Sensitive<String>,
    /// The value was generated now: an existing (recovered) secret keeps its own.
    pub generated: bool,
    pub content_type: Option<String>,
    pub tags: Value,
    /// `--purge`: a soft-deleted secret in the way is purged rather than recovered.
    pub purge: bool,
}

/// What a data-plane change needs besides the desired state, read by the walker.
pub struct PlaneCx<'a> {
    /// The plan's directory (secret files).
    pub base_dir: &'a std::path::Path,
    /// The plan's name (a blob's ownership metadata).
    pub plan: &'a str,
    /// `--principal-wait`.
    pub principal_wait: Duration,
    /// `--purge`.
    pub purge: bool,
    /// A blob's upload, when the node is a blob: `(source file, content type)`.
    pub blob: Option<(std::path::PathBuf, String)>,
}

/// The request for a change the ARM decision (`work`) describes, on the desired state's
/// plane: the same decision as for ARM, a different request.
///
/// # Errors
/// What the request carries (a secret's value) cannot be read.
pub fn for_change(cx: PlaneCx<'_>, want: &Desired, have: Option<&Value>, work: Work) -> Result<Work, Error> {
    if let Work::Delete { id, .. } = work {
        return Ok(for_delete(want, id, have));
    }
    match want.plane {
        Plane::Arm => Ok(work),
        Plane::Blob => blob::for_change(cx, work),
        Plane::DataLake => Ok(datalake::for_change(cx.principal_wait, want, work)),
        Plane::Secret => secret::for_change(&cx, want, have, work),
        Plane::AccessPolicy => Ok(policy::for_change(want, have, work)),
    }
}

/// The request that deletes a resource.
pub fn for_delete(want: &Desired, id: String, have: Option<&Value>) -> Work {
    match want.plane {
        Plane::Arm => Work::Delete { id, api: want.api_version },
        Plane::Blob => Work::DeleteBlob { id },
        Plane::Secret => Work::DeleteSecret { id },
        Plane::DataLake => Work::RemoveFolderEntries { id, body: want.body.clone() },
        Plane::AccessPolicy => policy::for_delete(want, id, have),
    }
}

/// The soft-deleted object a desired resource may have left.
pub fn soft(want: &Desired, id: &str, have: Option<&Value>) -> SoftDeleted {
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

/// `Created` or `Updated`.
fn written(id: String, update: bool) -> Outcome {
    if update { Outcome::Updated(id) } else { Outcome::Created(id) }
}

/// Send one request.
pub async fn run(client: Client, work: Work) -> Done {
    match work {
        Work::Put { id, api, body, role, update } => arm::put(&client, id, api, &body, role, update).await,
        Work::Patch { id, api, body, etag } => arm::patch(&client, id, api, &body, etag).await,
        Work::Replace { id, api, body, purge_at } => arm::replace(&client, id, api, &body, purge_at).await,
        Work::Delete { id, api } => {
            client.delete(&id, api).await?;
            Ok((Outcome::Deleted(id), None))
        }
        Work::PutBlob { id, data, content_type, plan, update } => {
            blob::put(&client, id, data, &content_type, &plan, update).await
        }
        Work::DeleteBlob { id } => blob::delete(&client, id).await,
        Work::PutFolder { id, body, update, wait } => datalake::put(&client, id, &body, update, wait).await,
        Work::RemoveFolderEntries { id, body } => datalake::remove(&client, id, &body).await,
        Work::Recover(s) if s.plane == Plane::Arm => arm::recover_vault(&client, s).await,
        Work::Recover(s) => secret::recover(&client, s).await,
        Work::PurgeCreate(s) if s.plane == Plane::Arm => arm::purge_create_vault(&client, s).await,
        Work::PurgeCreate(s) => secret::purge_create(&client, s).await,
        Work::DeletePurge(s, already_deleted) if s.plane == Plane::Arm => {
            arm::delete_purge_vault(&client, s, already_deleted).await
        }
        Work::DeletePurge(s, already_deleted) => secret::delete_purge(&client, s, already_deleted).await,
        Work::PutSecret { secret, keep, update } => secret::put(&client, secret, keep, update).await,
        Work::DeleteSecret { id } => secret::delete(&client, id).await,
        Work::Policy { id, tenant, add, remove, update } => {
            policy::put(&client, id, tenant, add, remove.as_ref(), update).await
        }
        Work::RemovePolicy { id, tenant, permissions } => policy::remove(&client, id, &tenant, &permissions).await,
    }
}
