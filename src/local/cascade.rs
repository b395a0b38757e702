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

/// Where a resource group being deleted keeps, in its stored body (never shown: `present`
/// drops `_idlab`), the time its delete ends: durable, so a restarted cloud ends it too.
const DELETE_DUE: &str = "/_idlab/deleteDueMs";

/// When the delete of group `r` ends, if one runs.
pub(crate) fn delete_due(r: &Resource) -> Option<u64> {
    r.body.pointer(DELETE_DUE).and_then(Value::as_u64)
}

/// Whether the resource group `group_key` (its lower-cased id) is being deleted.
pub(crate) fn group_deleting(st: &CloudState, group_key: &str) -> bool {
    st.resources.get(group_key).is_some_and(|r| delete_due(r).is_some())
}

/// The op that starts the delete of group `r`, ending at `due_ms`: the group reads
/// `provisioningState: Deleting` and keeps its resources, which Azure still serves while the
/// delete runs (network/TestVirtualNetworkSubnetCRUD.json: the network's GET answered 200
/// after the group's delete was accepted), until [`finish_group_deletes`] removes them.
pub(crate) fn begin_group_delete(r: &Resource, due_ms: u64) -> Op {
    let mut g = r.clone();
    g.body["properties"]["provisioningState"] = Value::from("Deleting");
    g.body["_idlab"]["deleteDueMs"] = Value::from(due_ms);
    Op::PutResource { resource: g }
}

/// End every group delete whose time has come: the group and everything under it go (the
/// cascade of [`cascade_delete`]). Called before the ARM front door answers anything, so
/// the delete's operation never reads as ended while its resources remain; returns the
/// earliest end still to come.
pub(crate) fn finish_group_deletes(sh: &Shared) -> Option<u64> {
    // One sweep at a time, so two requests never run the same cascade.
    static SWEEP: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = SWEEP.lock().unwrap_or_else(|p| p.into_inner());
    let now = now_ms();
    let (due, later): (Vec<String>, Option<u64>) = {
        let st = sh.store();
        let deleting = || {
            st.state
                .resources
                .values()
                .filter(|r| r.kind == table::RESOURCE_GROUPS)
                .filter_map(|r| delete_due(r).map(|d| (r, d)))
        };
        (
            deleting().filter(|(_, d)| *d <= now).map(|(r, _)| r.id.clone()).collect(),
            deleting().map(|(_, d)| d).filter(|d| *d > now).min(),
        )
    };
    for id in due {
        let ops = cascade_delete(sh, &id);
        stop_listeners(sh, &ops);
        // A failed journal write leaves the group Deleting: the next request tries again.
        let _ = sh.commit(ops);
    }
    later
}
