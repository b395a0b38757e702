//! The WebHDFS operations of the local Data Lake Gen1 plane beyond files and ACL entries:
//! listing (`LISTSTATUS`), the ACL changes (`SETACL`, `MODIFYACLENTRIES`,
//! `REMOVEACLENTRIES`, `REMOVEACL`, `REMOVEDEFAULTACL`), `RENAME`, `MSCONCAT`,
//! `SETPERMISSION` and `SETEXPIRY`, as `TestAdlsFileSystem.json` and
//! `TestAdlsFileSystemPermissions.json` record Azure answering them.

use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{Cx, Fail, R, W, X, ancestors, boolean, done, fail, flag, key, number, permission};
use crate::local::acl::{self, Entry};
use crate::local::http::{json_response, query_get};
use crate::local::paths;
use crate::local::store::{DataPath, Op};

pub(super) fn list(cx: &Cx<'_>, path: &str, q: &[(String, String)], rid: &str) -> Result<Response, Fail> {
    let e = cx.existing(path)?;
    let statuses: Vec<Value> = if e.dir {
        cx.check(&e, path, R | X)?;
        let size = number(q, "listSize")?.map(|n| n as usize);
        let after = query_get(q, "listAfter").filter(|s| !s.is_empty());
        let before = query_get(q, "listBefore").filter(|s| !s.is_empty());
        cx.children(path)
            .into_iter()
            .filter(|(n, _)| after.is_none_or(|a| n.as_str() > a) && before.is_none_or(|b| n.as_str() < b))
            .take(size.unwrap_or(usize::MAX))
            .map(|(n, c)| {
                let child = if path == "/" { format!("/{n}") } else { format!("{path}/{n}") };
                cx.status(&child, &c, &n)
            })
            .collect()
    } else {
        vec![cx.status(path, &e, "")]
    };
    Ok(json_response(
        200,
        &json!({ "FileStatuses": { "FileStatus": statuses } }),
        &[("x-ms-request-id", rid.to_string())],
    ))
}

/// The entry at `path`, when the caller owns it or is a super-user: only they may change its
/// `what` (ACL or permission); anyone else gets WebHDFS's 403 for `op`.
fn owned_by_caller(cx: &Cx<'_>, path: &str, op: &str, what: &str) -> Result<DataPath, Fail> {
    let e = cx.existing(path)?;
    if !cx.superuser && !e.owner.eq_ignore_ascii_case(&cx.caller) {
        return Err(fail(
            403,
            "AccessControlException",
            format!(
                "{op} failed with error: Forbidden. Only the owner of '{path}' or a super-user can change its {what}."
            ),
        ));
    }
    Ok(e)
}

/// `SETACL`, `MODIFYACLENTRIES`, `REMOVEACLENTRIES`, `REMOVEACL`, `REMOVEDEFAULTACL`: for
/// the owner (or a super-user) only.
pub(super) fn change_acl(
    cx: &Cx<'_>,
    path: &str,
    op: &str,
    q: &[(String, String)],
    rid: &str,
) -> Result<Response, Fail> {
    let mut e = owned_by_caller(cx, path, op, "ACL")?;
    let spec = |perms: bool| -> Result<Vec<Entry>, Fail> {
        let text = query_get(q, "aclspec").filter(|s| !s.is_empty()).ok_or_else(|| {
            fail(400, "IllegalArgumentException", format!("{op} needs the webhdfs parameter \"aclspec\"."))
        })?;
        acl::parse_spec(text, perms).map_err(|m| fail(400, "IllegalArgumentException", m))
    };
    let current = acl::from_texts(&e.acl);
    let bad = |m: String| fail(400, "IllegalArgumentException", m);
    let next = match op {
        "SETACL" => acl::set(&current, &spec(true)?, e.dir).map_err(bad)?,
        "MODIFYACLENTRIES" => acl::modify(&current, &spec(true)?, e.dir).map_err(bad)?,
        "REMOVEACLENTRIES" => acl::remove_entries(&current, &spec(false)?, e.dir).map_err(bad)?,
        "REMOVEACL" => acl::remove_all(&current),
        _ => acl::remove_default(&current),
    };
    e.acl = acl::to_texts(&next);
    cx.write(vec![Op::PutDataPath { key: key(cx.account, path), path: e }])?;
    Ok(done(200, rid, &[]))
}

/// A path parameter (`destination`, a `sources` item): relative to the root or absolute.
fn param_path(raw: &str) -> Result<String, Fail> {
    let raw = if raw.starts_with('/') { raw.to_string() } else { format!("/{raw}") };
    paths::normalise(&raw, true)
        .map_err(|seg| fail(400, "IllegalArgumentException", format!("Invalid path segment '{seg}'.")))
}

/// Write and execute on the directory holding `path`.
fn parent_writable(cx: &Cx<'_>, path: &str) -> Result<(), Fail> {
    let parent_path = ancestors(path).pop().unwrap_or_else(|| "/".into());
    let parent = cx.get(&parent_path).ok_or_else(|| cx.not_found(path))?;
    cx.check(&parent, &parent_path, W | X)
}

/// `RENAME` (PUT, `destination`): moves a file or a folder with everything under it;
/// `{"boolean": false}` when the destination exists or its folder does not.
pub(super) fn rename(cx: &Cx<'_>, path: &str, q: &[(String, String)], rid: &str) -> Result<Response, Fail> {
    let dest = query_get(q, "destination")
        .filter(|d| !d.is_empty())
        .ok_or_else(|| fail(400, "IllegalArgumentException", "RENAME needs the webhdfs parameter \"destination\"."))
        .and_then(param_path)?;
    if path == "/" || dest == "/" {
        return Err(fail(403, "IOException", "RENAME failed: the root directory cannot be renamed."));
    }
    let e = cx.existing(path)?;
    parent_writable(cx, path)?;
    let dest_parent = ancestors(&dest).pop().unwrap_or_else(|| "/".into());
    if cx.get(&dest).is_some() || cx.get(&dest_parent).is_none_or(|p| !p.dir) || dest.starts_with(&format!("{path}/")) {
        return Ok(boolean(false, rid));
    }
    cx.traverse(&dest)?;
    parent_writable(cx, &dest)?;
    let mut ops = vec![
        Op::DeleteDataPaths { prefix: key(cx.account, &format!("{path}/")) },
        Op::DeleteDataPath { key: key(cx.account, path) },
        Op::PutDataPath { key: key(cx.account, &dest), path: e },
    ];
    let from = key(cx.account, &format!("{path}/"));
    let children: Vec<(String, _)> = {
        let st = cx.sh.store();
        st.state
            .data_paths
            .range(from.clone()..)
            .take_while(|(k, _)| k.starts_with(&from))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    for (k, v) in children {
        ops.push(Op::PutDataPath { key: key(cx.account, &format!("{dest}/{}", &k[from.len()..])), path: v });
    }
    cx.write(ops)?;
    Ok(boolean(true, rid))
}

/// `MSCONCAT` (POST, body `sources=a,b,…`): a new file at the path made of the sources'
/// bytes in order; the sources go (and their folder with `deleteSourceDirectory=true`).
pub(super) fn concat(
    cx: &Cx<'_>,
    path: &str,
    q: &[(String, String)],
    body: &[u8],
    rid: &str,
) -> Result<Response, Fail> {
    let text = String::from_utf8_lossy(body);
    let list = text.trim().strip_prefix("sources=").unwrap_or(text.trim()).to_string();
    let sources: Vec<String> =
        list.split(',').filter(|s| !s.trim().is_empty()).map(|s| param_path(s.trim())).collect::<Result<_, _>>()?;
    if sources.is_empty() {
        return Err(fail(
            400,
            "IllegalArgumentException",
            "MSCONCAT needs the sources in the body: sources=path1,path2.",
        ));
    }
    if cx.get(path).is_some() && !sources.iter().any(|s| s == path) {
        return Err(fail(403, "FileAlreadyExistsException", format!("MSCONCAT failed: {path} already exists.")));
    }
    let mut data = Vec::new();
    let mut ops = Vec::new();
    for s in &sources {
        let e = cx.existing(s)?;
        if e.dir {
            return Err(fail(400, "IllegalArgumentException", format!("MSCONCAT failed: {s} is a directory.")));
        }
        cx.check(&e, s, R)?;
        parent_writable(cx, s)?;
        data.extend(STANDARD.decode(&e.data).unwrap_or_default());
        ops.push(Op::DeleteDataPath { key: key(cx.account, s) });
    }
    if flag(q, "deleteSourceDirectory") {
        for dir in sources.iter().filter_map(|s| ancestors(s).pop()).filter(|d| d != "/") {
            ops.push(Op::DeleteDataPaths { prefix: key(cx.account, &format!("{dir}/")) });
            ops.push(Op::DeleteDataPath { key: key(cx.account, &dir) });
        }
    }
    let parent = cx.parent(path, 0o777, &mut ops)?;
    let file = cx.child(&parent, false, 0o666, STANDARD.encode(&data));
    ops.push(Op::PutDataPath { key: key(cx.account, path), path: file });
    cx.write(ops)?;
    Ok(done(200, rid, &[]))
}

/// `SETPERMISSION` (PUT, `permission`): the owner's, the group class's (the mask when
/// there is one) and others' bits; for the owner or a super-user.
pub(super) fn set_permission(cx: &Cx<'_>, path: &str, q: &[(String, String)], rid: &str) -> Result<Response, Fail> {
    let mut e = owned_by_caller(cx, path, "SETPERMISSION", "permission")?;
    let mode = permission(q, if e.dir { 0o770 } else { 0o660 })?;
    let mut entries: Vec<Entry> = acl::from_texts(&e.acl);
    let has_mask = entries.iter().any(|x| !x.default && x.tag == acl::Tag::Mask);
    for x in entries.iter_mut().filter(|x| !x.default && x.id.is_empty()) {
        match x.tag {
            acl::Tag::User => x.perm = ((mode >> 6) & 7) as u8,
            acl::Tag::Mask => x.perm = ((mode >> 3) & 7) as u8,
            acl::Tag::Group if !has_mask => x.perm = ((mode >> 3) & 7) as u8,
            acl::Tag::Other => x.perm = (mode & 7) as u8,
            _ => {}
        }
    }
    e.acl = acl::to_texts(&entries);
    cx.write(vec![Op::PutDataPath { key: key(cx.account, path), path: e }])?;
    Ok(done(200, rid, &[]))
}

/// `SETEXPIRY` (PUT on `/WebHdfsExt/{path}`, `expiryOption`, `expireTime`): accepted for a
/// file the caller may write. The local cloud does not expire files (`msExpirationTime`
/// stays 0).
pub(super) fn set_expiry(cx: &Cx<'_>, path: &str, q: &[(String, String)], rid: &str) -> Result<Response, Fail> {
    let option = query_get(q, "expiryOption").unwrap_or_default();
    if !["NeverExpire", "RelativeToNow", "RelativeToCreationDate", "Absolute"]
        .iter()
        .any(|o| o.eq_ignore_ascii_case(option))
    {
        return Err(fail(
            400,
            "IllegalArgumentException",
            format!("Invalid value for webhdfs parameter \"expiryOption\": {option}"),
        ));
    }
    if !option.eq_ignore_ascii_case("NeverExpire") && number(q, "expireTime")?.is_none() {
        return Err(fail(400, "IllegalArgumentException", "SETEXPIRY needs the webhdfs parameter \"expireTime\"."));
    }
    let e = cx.existing(path)?;
    if e.dir {
        return Err(fail(400, "IllegalArgumentException", format!("SETEXPIRY failed: {path} is a directory.")));
    }
    cx.check(&e, path, W)?;
    Ok(done(200, rid, &[]))
}
