//! Principals the local cloud makes for resources: the system-assigned identity of a VM or a
//! Data Lake Store. (The lookup of a principal by object id is `store::State::principal`.)

use super::shared::guid;
use super::store::{Op, Principal, State};

/// The object id of a resource's system-assigned identity: the one it has (`old`, when
/// that principal still exists) or a new principal owned by the resource (pushed to `extra`),
/// which goes when the resource goes.
pub fn system_principal(st: &State, old: Option<&str>, id: &str, now: u64, extra: &mut Vec<Op>) -> String {
    if let Some(p) = old.filter(|p| st.principal(p).is_some()) {
        return p.to_string();
    }
    let p = Principal {
        object_id: guid(),
        client_id: guid(),
        display_name: id.rsplit('/').next().unwrap_or_default().into(),
        kind: "ManagedIdentity".into(),
        secret_sha256: None,
        federated: Vec::new(),
        resource_id: Some(id.to_string()),
        created_ms: now,
    };
    let oid = p.object_id.clone();
    extra.push(Op::PutPrincipal { principal: p });
    oid
}
