//! The Data Lake plane: a folder is created (`MKDIRS`) and the plan's ACL entries merged in;
//! deleting it removes those entries only (the folder stays).

use std::time::Duration;

use serde_json::Value;

use super::work::{Done, Work, written};
use crate::arm::Client;
use crate::engine::context::Outcome;
use crate::kinds::env::Desired;

/// A create or replace of a folder. A Gen2 folder's writes wait out the propagation of a
/// data role the plan just granted (`wait`, the principal window).
pub fn for_change(wait: Duration, want: &Desired, work: Work) -> Work {
    match work {
        Work::Put { id, update, .. } => Work::PutFolder { id, body: want.body.clone(), update, wait },
        Work::Replace { id, .. } => Work::PutFolder { id, body: want.body.clone(), update: true, wait },
        other => other,
    }
}

/// Create the folder and merge the plan's ACL entries in.
// TODO(retry-condition): the Gen2 data-role 403 wait lives in `arm::datalake::apply`
// (`wait`); swap it for the ARM client's retry condition there.
pub async fn put(client: &Client, id: String, body: &Value, update: bool, wait: Duration) -> Done {
    let v = crate::arm::datalake::apply(client, &id, body, wait).await?;
    Ok((written(id, update), Some(v)))
}

/// Remove the plan's ACL entries from the folder.
pub async fn remove(client: &Client, id: String, body: &Value) -> Done {
    crate::arm::datalake::remove_entries(client, &id, body).await?;
    Ok((Outcome::Deleted(id), None))
}
