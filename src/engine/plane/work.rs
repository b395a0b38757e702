//! The request one node's worker performs ([`Work`]) and what building it needs
//! ([`PlaneCx`]): shared by the plane drivers, which import it; it imports none of them.

use std::time::Duration;

use serde_json::Value;

use crate::arm::Error;
use crate::engine::context::Outcome;
use crate::kinds::env::Plane;
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

/// `Created` or `Updated`.
pub fn written(id: String, update: bool) -> Outcome {
    if update { Outcome::Updated(id) } else { Outcome::Created(id) }
}
