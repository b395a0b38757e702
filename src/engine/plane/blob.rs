//! The blob plane: uploads carry the plan's ownership in their metadata.

use super::work::{Done, PlaneCx, Work, written};
use crate::arm::{Client, Error};
use crate::engine::context::Outcome;

/// A create or replace of a blob is an upload of its source file, read now.
///
/// # Errors
/// The source file cannot be read.
pub fn for_change(cx: PlaneCx<'_>, work: Work) -> Result<Work, Error> {
    let Some((path, content_type)) = cx.blob else { return Ok(work) };
    let (id, update) = match work {
        Work::Put { id, update, .. } => (id, update),
        Work::Replace { id, .. } => (id, true),
        other => return Ok(other),
    };
    let data = std::fs::read(&path)
        .map_err(|e| Error::new("FileUnreadable", format!("blob source {}: {e}", path.display())))?;
    Ok(Work::PutBlob { id, data, content_type, plan: cx.plan.to_string(), update })
}

/// Upload a blob.
pub async fn put(client: &Client, id: String, data: Vec<u8>, content_type: &str, plan: &str, update: bool) -> Done {
    let v = crate::arm::blob::put(client, &id, data, content_type, &[("idlab_plan", plan)]).await?;
    Ok((written(id, update), Some(v)))
}

/// Delete a blob.
pub async fn delete(client: &Client, id: String) -> Done {
    crate::arm::blob::delete(client, &id).await?;
    Ok((Outcome::Deleted(id), None))
}
