//! The local cloud's state and its persistence.
//!
//! Everything lives in memory behind one mutex and is made durable *before* a write is
//! acknowledged: each write appends one JSON line (a batch of operations, so a cascade is
//! atomic) to `journal.jsonl` and fsyncs it. Every [`COMPACT_EVERY`] batches the whole state
//! is written to `state.json.tmp`, fsynced and renamed over `state.json`, then the journal is
//! truncated. Loading reads the snapshot and replays the journal; operations are idempotent
//! (put / delete), so a crash between the rename and the truncation is harmless, and a torn
//! last line (a write that was never acknowledged) is ignored.
//!
//! Imports: serde, serde_json. File I/O only in the state directory.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Batches between snapshots.
pub const COMPACT_EVERY: u64 = 2048;

/// One stored ARM resource.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Resource {
    /// The id with its original casing.
    pub id: String,
    /// The full type, e.g. `Microsoft.Compute/virtualMachines`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The body as GET returns it (server-filled fields included, secrets removed).
    pub body: Value,
    /// Incremented on every write; rendered as the `etag` `"N"` where a type has one.
    pub etag: u64,
    /// Unix milliseconds of creation.
    pub created_ms: u64,
    /// Until when (Unix ms) a long-running create/update reports itself in progress.
    #[serde(default)]
    pub busy_until_ms: u64,
    /// Role assignments: when the assignment starts to count (propagation delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_ms: Option<u64>,
}

/// A directory object that can get tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Principal {
    pub object_id: String,
    pub client_id: String,
    pub display_name: String,
    /// `ServicePrincipal` (an app with a secret) or `ManagedIdentity`.
    pub kind: String,
    /// SHA-256 (hex) of the client secret, for service principals. The secret itself is
    /// never stored (the operator's is in its own 0600 file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_sha256: Option<String>,
    /// Federated credentials `(issuer, subject)` accepted as client assertions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federated: Vec<(String, String)>,
    /// For managed identities: the id of the identity resource or the VM (system-assigned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// Unix ms of creation (principal replication is measured from it).
    pub created_ms: u64,
}

/// A VM's managed-identity endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImdsEndpoint {
    pub vm_id: String,
    pub port: u16,
    /// The `X-IDENTITY-HEADER` value of the App Service protocol.
    pub header_secret: String,
}

/// A blob's content and properties (the data plane of the local cloud's storage).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredBlob {
    /// Base64 of the content.
    pub data: String,
    pub content_type: String,
    pub etag: String,
    pub last_modified_ms: u64,
    /// `x-ms-meta-*` name → value.
    #[serde(default)]
    pub metadata: std::collections::BTreeMap<String, String>,
    /// Content headers set at upload, by response header name (`cache-control`,
    /// `content-disposition`, `content-encoding`, `content-language`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
    /// The `Content-MD5` property when it is not the MD5 of `data`: a Put Block List sets it
    /// from `x-ms-blob-content-md5`, or to `""` (the blob has none). `None`: the MD5 of `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_md5: Option<String>,
    /// The committed blocks `(block id, length)` of a blob made by Put Block List, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<(String, u64)>,
}

/// A file or directory of a Data Lake Storage account (Gen1 WebHDFS, or a Gen2 file system
/// through `dfs`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataPath {
    pub dir: bool,
    /// Object id of the owner.
    pub owner: String,
    /// Object id of the owning group.
    pub group: String,
    /// The full ACL as entry texts (`user::rwx`, `user:{oid}:r-x`, `default:…`).
    pub acl: Vec<String>,
    /// Base64 of a file's content.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub data: String,
    /// Gen2 (`dfs`): base64 of data appended but not flushed yet.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pending: String,
    pub modified_ms: u64,
    pub accessed_ms: u64,
}

/// A soft-deleted key vault: its last body, kept for `createMode: recover` until purged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeletedVault {
    pub resource: Resource,
    /// Unix ms of the deletion and of the scheduled purge.
    pub deleted_ms: u64,
    pub purge_ms: u64,
}

/// One version of a Key Vault secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SecretVersion {
    /// 32 lower-case hex digits.
    pub version: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Value>,
    pub enabled: bool,
    /// Not before and expiry (`attributes.nbf`, `exp`), Unix seconds, as set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Unix seconds.
    pub created: u64,
    pub updated: u64,
}

/// A Key Vault secret: its versions (oldest first) and, when soft-deleted, when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredSecret {
    /// The name as first set.
    pub name: String,
    pub versions: Vec<SecretVersion>,
    /// `(deleted, scheduled purge)` in Unix seconds while soft-deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<(u64, u64)>,
}

/// The whole persisted state.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct State {
    pub tenant_id: String,
    pub subscription_id: String,
    pub subscription_name: String,
    /// The HMAC key (base64) that state directories made before RS256 signed tokens with.
    /// Never used now: its presence only tells `serve` to say that old tokens are refused.
    /// Tokens are signed with the RSA key in `token-signing.key.der` beside the state.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signing_key: String,
    pub operator_object_id: String,
    /// Lower-cased id → resource.
    pub resources: BTreeMap<String, Resource>,
    /// Object id → principal.
    pub principals: BTreeMap<String, Principal>,
    /// Purpose (`arm`, …) → port, rebound on the next start.
    pub ports: BTreeMap<String, u16>,
    /// Lower-cased VM id → its identity endpoint.
    pub imds: BTreeMap<String, ImdsEndpoint>,
    /// `account/container/blob` (account and container lower-cased) → blob.
    #[serde(default)]
    pub blobs: BTreeMap<String, StoredBlob>,
    /// `account:/path` (account lower-cased, path absolute) → Data Lake file or directory.
    #[serde(default)]
    pub data_paths: BTreeMap<String, DataPath>,
    /// Lower-cased vault name → the soft-deleted vault.
    #[serde(default)]
    pub deleted_vaults: BTreeMap<String, DeletedVault>,
    /// `vault/secret` (both lower-cased) → secret. A vault's secrets outlive its soft
    /// deletion and go when it is purged.
    #[serde(default)]
    pub secrets: BTreeMap<String, StoredSecret>,
}

/// One change to the state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    PutResource {
        resource: Resource,
    },
    DeleteResource {
        key: String,
    },
    PutPrincipal {
        principal: Principal,
    },
    DeletePrincipal {
        object_id: String,
    },
    SetPort {
        purpose: String,
        port: u16,
    },
    PutImds {
        key: String,
        endpoint: ImdsEndpoint,
    },
    DeleteImds {
        key: String,
    },
    PutBlob {
        key: String,
        blob: StoredBlob,
    },
    DeleteBlobs {
        prefix: String,
    },
    /// One blob, by its exact key.
    DeleteBlob {
        key: String,
    },
    PutDataPath {
        key: String,
        path: DataPath,
    },
    /// One Data Lake path, by its exact key.
    DeleteDataPath {
        key: String,
    },
    /// Every Data Lake path whose key starts with `prefix`.
    DeleteDataPaths {
        prefix: String,
    },
    DeletePort {
        purpose: String,
    },
    PutDeletedVault {
        name: String,
        vault: Box<DeletedVault>,
    },
    DeleteDeletedVault {
        name: String,
    },
    PutSecret {
        key: String,
        secret: StoredSecret,
    },
    DeleteSecret {
        key: String,
    },
    /// Every secret whose key starts with `prefix` (a purged vault's).
    DeleteSecrets {
        prefix: String,
    },
    Init {
        state: Box<State>,
    },
}

impl State {
    /// The principal with this object id, if it exists (the one principal lookup).
    pub fn principal(&self, object_id: &str) -> Option<&Principal> {
        self.principals.get(object_id)
    }

    /// Apply one operation in memory.
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::PutResource { resource } => {
                self.resources.insert(resource.id.to_ascii_lowercase(), resource.clone());
            }
            Op::DeleteResource { key } => {
                self.resources.remove(key);
            }
            Op::PutPrincipal { principal } => {
                self.principals.insert(principal.object_id.clone(), principal.clone());
            }
            Op::DeletePrincipal { object_id } => {
                self.principals.remove(object_id);
            }
            Op::SetPort { purpose, port } => {
                self.ports.insert(purpose.clone(), *port);
            }
            Op::PutImds { key, endpoint } => {
                self.imds.insert(key.clone(), endpoint.clone());
            }
            Op::DeleteImds { key } => {
                self.imds.remove(key);
            }
            Op::PutBlob { key, blob } => {
                self.blobs.insert(key.clone(), blob.clone());
            }
            Op::DeleteBlobs { prefix } => {
                self.blobs.retain(|k, _| !k.starts_with(prefix.as_str()));
            }
            Op::DeleteBlob { key } => {
                self.blobs.remove(key);
            }
            Op::PutDataPath { key, path } => {
                self.data_paths.insert(key.clone(), path.clone());
            }
            Op::DeleteDataPath { key } => {
                self.data_paths.remove(key);
            }
            Op::DeleteDataPaths { prefix } => {
                self.data_paths.retain(|k, _| !k.starts_with(prefix.as_str()));
            }
            Op::DeletePort { purpose } => {
                self.ports.remove(purpose);
            }
            Op::PutDeletedVault { name, vault } => {
                self.deleted_vaults.insert(name.clone(), (**vault).clone());
            }
            Op::DeleteDeletedVault { name } => {
                self.deleted_vaults.remove(name);
            }
            Op::PutSecret { key, secret } => {
                self.secrets.insert(key.clone(), secret.clone());
            }
            Op::DeleteSecret { key } => {
                self.secrets.remove(key);
            }
            Op::DeleteSecrets { prefix } => {
                self.secrets.retain(|k, _| !k.starts_with(prefix.as_str()));
            }
            Op::Init { state } => *self = (**state).clone(),
        }
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use state directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {path} is corrupt: {message}")]
    Corrupt { path: PathBuf, message: String },
}

/// Create `dir` (and its parents) if needed and make it owner-only (0700), tightening a
/// directory an older version left readable. The state directory holds secrets.
///
/// # Errors
/// The directory cannot be created or its mode set.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    fs::create_dir_all(dir)
}

/// Make an existing file owner-only (0600).
///
/// # Errors
/// The mode cannot be set.
pub fn private_file(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// The state plus its journal.
#[derive(Debug)]
pub struct Store {
    pub state: State,
    dir: PathBuf,
    journal: File,
    batches_since_snapshot: u64,
    /// Acknowledged write batches since start (for "crash after the Nth write").
    pub writes: u64,
}

impl Store {
    /// Open (or create) the state in `dir`; `init` builds a fresh state when there is none.
    ///
    /// # Errors
    /// I/O errors, or a snapshot that does not parse.
    pub fn open(dir: &Path, init: impl FnOnce() -> State) -> Result<Store, StoreError> {
        private_dir(dir).map_err(io(dir))?;
        let snap_path = dir.join("state.json");
        let journal_path = dir.join("journal.jsonl");
        let mut state = match fs::read(&snap_path) {
            Ok(bytes) => serde_json::from_slice::<State>(&bytes)
                .map_err(|e| StoreError::Corrupt { path: snap_path.clone(), message: e.to_string() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(StoreError::Io { path: snap_path, source: e }),
        };
        let mut replayed = 0;
        let mut valid_len: u64 = 0;
        if let Ok(f) = File::open(&journal_path) {
            let mut reader = BufReader::new(f);
            let mut line = String::new();
            loop {
                line.clear();
                let n = reader.read_line(&mut line).map_err(io(&journal_path))?;
                if n == 0 || !line.ends_with('\n') {
                    break; // end, or a torn (never acknowledged) last line
                }
                match serde_json::from_str::<Vec<Op>>(line.trim_end()) {
                    Ok(ops) => {
                        ops.iter().for_each(|op| state.apply(op));
                        replayed += 1;
                        valid_len += n as u64;
                    }
                    Err(_) => break,
                }
            }
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true).read(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let journal = options.open(&journal_path).map_err(io(&journal_path))?;
        // The journal and the snapshot hold the signing key, account keys and identity
        // secrets: owner-only, also when an older version made them readable.
        private_file(&journal_path).map_err(io(&journal_path))?;
        if snap_path.exists() {
            private_file(&snap_path).map_err(io(&snap_path))?;
        }
        // Drop a torn tail so later appends start on a line boundary.
        if journal.metadata().map_err(io(&journal_path))?.len() != valid_len {
            journal.set_len(valid_len).map_err(io(&journal_path))?;
        }
        let mut store = Store { state, dir: dir.to_path_buf(), journal, batches_since_snapshot: replayed, writes: 0 };
        if store.state.tenant_id.is_empty() {
            let fresh = init();
            store.append(vec![Op::Init { state: Box::new(fresh) }])?;
        }
        Ok(store)
    }

    /// Apply a batch and make it durable. Call before acknowledging the write.
    ///
    /// # Errors
    /// I/O errors writing or syncing the journal; the in-memory state is then unchanged.
    pub fn append(&mut self, ops: Vec<Op>) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let path = self.dir.join("journal.jsonl");
        let mut line =
            serde_json::to_vec(&ops).map_err(|e| StoreError::Corrupt { path: path.clone(), message: e.to_string() })?;
        line.push(b'\n');
        self.journal.write_all(&line).map_err(io(&path))?;
        self.journal.sync_data().map_err(io(&path))?;
        ops.iter().for_each(|op| self.state.apply(op));
        self.batches_since_snapshot += 1;
        self.writes += 1;
        if self.batches_since_snapshot >= COMPACT_EVERY {
            self.snapshot()?;
        }
        Ok(())
    }

    /// Write the whole state atomically and empty the journal.
    ///
    /// # Errors
    /// I/O errors; the journal is kept when the snapshot could not be written.
    pub fn snapshot(&mut self) -> Result<(), StoreError> {
        let path = self.dir.join("state.json");
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io(&self.dir))?;
        serde_json::to_writer(&mut tmp, &self.state)
            .map_err(|e| StoreError::Corrupt { path: path.clone(), message: e.to_string() })?;
        tmp.as_file().sync_all().map_err(io(&path))?;
        tmp.persist(&path).map_err(|e| StoreError::Io { path: path.clone(), source: e.error })?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        self.journal.set_len(0).map_err(io(&path))?;
        self.journal.sync_all().map_err(io(&path))?;
        self.batches_since_snapshot = 0;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The op removing every dfs path of a file system (`Some(fs)`) or of an account.
pub fn delete_data_paths(account: &str, fs: Option<&str>) -> Op {
    let account = account.to_ascii_lowercase();
    Op::DeleteDataPaths {
        prefix: match fs {
            Some(f) => format!("{account}/{}:", f.to_ascii_lowercase()),
            None => format!("{account}/"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> State {
        State { tenant_id: "t".into(), subscription_id: "s".into(), ..State::default() }
    }

    fn res(id: &str) -> Resource {
        Resource {
            id: id.into(),
            kind: "k".into(),
            body: serde_json::json!({"id": id}),
            etag: 1,
            created_ms: 0,
            busy_until_ms: 0,
            effective_ms: None,
        }
    }

    #[test]
    fn survives_reopen_and_torn_tail() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let mut s = Store::open(dir.path(), fresh).expect("open");
            s.append(vec![Op::PutResource { resource: res("/A") }]).expect("commit");
            s.append(vec![Op::PutResource { resource: res("/B") }, Op::DeleteResource { key: "/a".into() }])
                .expect("commit");
        }
        // A torn, never-acknowledged write at the end.
        let mut j = OpenOptions::new().append(true).open(dir.path().join("journal.jsonl")).expect("journal");
        j.write_all(b"[{\"op\":\"put_res").expect("write");
        drop(j);
        let mut s = Store::open(dir.path(), fresh).expect("reopen");
        assert_eq!(s.state.resources.keys().collect::<Vec<_>>(), vec!["/b"]);
        s.append(vec![Op::PutResource { resource: res("/C") }]).expect("commit after torn tail");
        s.snapshot().expect("snapshot");
        let s2 = Store::open(dir.path(), fresh).expect("reopen after snapshot");
        assert_eq!(s2.state, s.state);
        assert_eq!(s2.state.tenant_id, "t");
    }
}
