//! What a delete takes with it: resources under a scope, their principals, blobs, Data
//! Lake paths, soft-deleted vaults and identity endpoints; and the listeners to stop.

use serde_json::Value;

use crate::arm::id::is_scope_prefix;
use crate::local::shared::{Shared, now_ms};
use crate::local::store::{Op, Resource, State as CloudState};
use crate::local::table;
use crate::local::{imds, keyvault};

/// Every op that deletes a scope and what lives under it (resources, assignments,
/// principals of identities and system identities, identity endpoints).
pub(crate) fn cascade_delete(sh: &Shared, scope: &str) -> Vec<Op> {
    let st = sh.store();
    let mut ops = Vec::new();
    for (key, r) in st.state.resources.iter() {
        let scoped_ra = r.kind.eq_ignore_ascii_case(table::ROLE_ASSIGNMENTS)
            && r.body.pointer("/properties/scope").and_then(Value::as_str).is_some_and(|s| is_scope_prefix(scope, s));
        if is_scope_prefix(scope, &r.id) || scoped_ra {
            ops.push(Op::DeleteResource { key: key.clone() });
            ops.extend(principal_cleanup(&st.state, r));
        }
    }
    ops
}

/// Stop the endpoints of what `ops` deletes: VMs' identity endpoints, vaults' data planes.
pub(crate) fn stop_listeners(sh: &Shared, ops: &[Op]) {
    for op in ops {
        match op {
            Op::DeleteImds { key } => imds::stop(sh, key),
            Op::PutDeletedVault { name, .. } => keyvault::stop(sh, name),
            Op::DeleteDataPaths { .. } => crate::local::datalake::stop_for(sh, op),
            _ => {}
        }
    }
}

/// Ops removing the principals and endpoints a resource owns; a vault is soft-deleted.
pub(crate) fn principal_cleanup(st: &CloudState, r: &Resource) -> Vec<Op> {
    let mut ops = Vec::new();
    if r.kind == table::VAULTS {
        let name = r.id.rsplit('/').next().unwrap_or_default().to_ascii_lowercase();
        ops.push(Op::PutDeletedVault {
            name,
            vault: Box::new(crate::local::providers::keyvault::soft_delete(r, now_ms())),
        });
    }
    // Storage: the blobs of an account or container go with it.
    if r.kind == table::STORAGE_ACCOUNTS || r.kind == table::CONTAINERS {
        let mut parts = r.id.split('/').rev();
        let (prefix, paths) = if r.kind.ends_with("/containers") {
            let c = parts.next().unwrap_or_default().to_ascii_lowercase();
            let _ = parts.nth(2);
            let a = parts.next().unwrap_or_default().to_ascii_lowercase();
            (format!("{a}/{c}/"), crate::local::store::delete_data_paths(&a, Some(&c)))
        } else {
            let a = parts.next().unwrap_or_default().to_ascii_lowercase();
            (format!("{a}/"), crate::local::store::delete_data_paths(&a, None))
        };
        ops.push(Op::DeleteBlobs { prefix });
        // And so do their Data Lake Gen2 paths.
        ops.push(paths);
    }
    // A Data Lake Store's files and folders go with it.
    if r.kind == table::DATA_LAKE_STORES {
        ops.push(crate::local::datalake::delete_paths(r.id.rsplit('/').next().unwrap_or_default()));
    }
    for p in st.principals.values() {
        if p.resource_id.as_deref().is_some_and(|rid| rid.eq_ignore_ascii_case(&r.id)) {
            ops.push(Op::DeletePrincipal { object_id: p.object_id.clone() });
        }
    }
    let key = r.id.to_ascii_lowercase();
    if st.imds.contains_key(&key) {
        ops.push(Op::DeleteImds { key });
    }
    ops
}
