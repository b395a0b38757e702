//! Dispatch: which plane driver builds and sends a node's request.

use serde_json::Value;

use super::work::{Done, PlaneCx, SoftDeleted, Work};
use super::{arm, blob, datalake, policy, secret};
use crate::arm::{Client, Error};
use crate::engine::context::Outcome;
use crate::kinds::env::{Desired, Plane};

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
