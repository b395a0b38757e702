//! POSIX-style ACLs as Data Lake Storage keeps them (Gen1 WebHDFS and Gen2 `dfs`,
//! arm-contract §7): parsing of `aclspec` / `x-ms-acl` text, the HDFS rules for changing an
//! ACL (`SETACL`, `MODIFYACLENTRIES`, `REMOVEACLENTRIES`, `REMOVEACL`, `REMOVEDEFAULTACL`),
//! the access check for a caller's object id, and the inheritance of a directory's default
//! ACL by new children.
//!
//! Pure: no I/O, no knowledge of HTTP. An ACL is the full list of entries — the base entries
//! `user::`, `group::`, `other::`, the optional `mask::`, named `user:{oid}:` / `group:{oid}:`
//! entries, and the same set again under `default:` on directories.
//!
//! Group membership is not modelled (the local cloud has no groups), so `group` entries never
//! match a caller; the owning group, named groups and `other` still shape the permission bits.

/// Read, write and execute bits.
pub const R: u8 = 4;
pub const W: u8 = 2;
pub const X: u8 = 1;

/// What an entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tag {
    User,
    Group,
    Mask,
    Other,
}

/// One ACL entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// A default entry (inherited by new children of a directory).
    pub default: bool,
    pub tag: Tag,
    /// The object id of a named entry; empty for the base entries.
    pub id: String,
    /// `R | W | X` bits.
    pub perm: u8,
}

impl Entry {
    fn new(default: bool, tag: Tag, id: &str, perm: u8) -> Entry {
        Entry { default, tag, id: id.to_string(), perm }
    }
    fn same_slot(&self, other: &Entry) -> bool {
        self.default == other.default && self.tag == other.tag && self.id.eq_ignore_ascii_case(&other.id)
    }
    fn named(&self) -> bool {
        !self.id.is_empty()
    }
    /// Entries whose permissions the mask limits (named users, the owning group, named groups).
    fn group_class(&self) -> bool {
        matches!(self.tag, Tag::Group) || (self.tag == Tag::User && self.named())
    }
}

/// `rwx` text of permission bits.
///
/// ```
/// assert_eq!(idlab::local::acl::perm_text(5), "r-x");
/// ```
pub fn perm_text(p: u8) -> String {
    let bit = |b: u8, c: char| if p & b != 0 { c } else { '-' };
    [bit(R, 'r'), bit(W, 'w'), bit(X, 'x')].iter().collect()
}

fn parse_perm(s: &str) -> Option<u8> {
    let b = s.as_bytes();
    if b.len() != 3 {
        return None;
    }
    let one = |c: u8, want: u8, bit: u8| match c {
        _ if c == want => Some(bit),
        b'-' => Some(0),
        _ => None,
    };
    Some(one(b[0], b'r', R)? | one(b[1], b'w', W)? | one(b[2], b'x', X)?)
}

/// The text form of one entry, e.g. `default:user:{oid}:rwx`.
pub fn entry_text(e: &Entry) -> String {
    let tag = match e.tag {
        Tag::User => "user",
        Tag::Group => "group",
        Tag::Mask => "mask",
        Tag::Other => "other",
    };
    format!("{}{tag}:{}:{}", if e.default { "default:" } else { "" }, e.id, perm_text(e.perm))
}

/// Parse an ACL spec (`user::rwx,user:{oid}:r-x,default:mask::rwx`). With `perms: false`
/// (`REMOVEACLENTRIES`) an entry may omit its permissions.
///
/// # Errors
/// A message naming the first malformed entry.
pub fn parse_spec(spec: &str, perms: bool) -> Result<Vec<Entry>, String> {
    let mut out = Vec::new();
    for raw in spec.split(',').map(str::trim) {
        if raw.is_empty() {
            return Err(format!("Invalid ACL spec '{spec}': empty entry"));
        }
        let bad = || format!("Invalid ACL entry '{raw}'");
        let (default, rest) = match raw.strip_prefix("default:") {
            Some(r) => (true, r),
            None => (false, raw),
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let tag = match parts.first().map(|t| t.to_ascii_lowercase()).as_deref() {
            Some("user") => Tag::User,
            Some("group") => Tag::Group,
            Some("mask") => Tag::Mask,
            Some("other") => Tag::Other,
            _ => return Err(bad()),
        };
        let id = parts.get(1).copied().unwrap_or_default();
        let perm = match (parts.get(2), parts.len()) {
            (Some(p), 3) if p.is_empty() && !perms => 0,
            (Some(p), 3) => parse_perm(p).ok_or_else(bad)?,
            (None, 2) | (None, 1) if !perms => 0,
            _ => return Err(bad()),
        };
        if matches!(tag, Tag::Mask | Tag::Other) && !id.is_empty() {
            return Err(format!("Invalid ACL entry '{raw}': {} entries cannot be named", parts[0]));
        }
        if !id.is_empty() && !id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c)) {
            return Err(bad());
        }
        out.push(Entry::new(default, tag, id, perm));
    }
    Ok(out)
}

/// Parse a stored ACL (written by this module, so well formed); bad entries are skipped.
pub fn from_texts(texts: &[String]) -> Vec<Entry> {
    texts.iter().filter_map(|t| parse_spec(t, true).ok()).flatten().collect()
}

/// The stored form, in canonical order: access entries, then default entries; within each,
/// user (owner first), group, mask, other.
pub fn to_texts(entries: &[Entry]) -> Vec<String> {
    let mut v = entries.to_vec();
    sort(&mut v);
    v.iter().map(entry_text).collect()
}

fn sort(v: &mut [Entry]) {
    v.sort_by(|a, b| {
        (a.default, a.tag, a.named(), a.id.to_ascii_lowercase()).cmp(&(
            b.default,
            b.tag,
            b.named(),
            b.id.to_ascii_lowercase(),
        ))
    });
}

/// A minimal ACL from an octal mode such as `0o770`.
pub fn from_mode(mode: u16) -> Vec<Entry> {
    vec![
        Entry::new(false, Tag::User, "", ((mode >> 6) & 7) as u8),
        Entry::new(false, Tag::Group, "", ((mode >> 3) & 7) as u8),
        Entry::new(false, Tag::Other, "", (mode & 7) as u8),
    ]
}

fn base(entries: &[Entry], default: bool, tag: Tag) -> Option<&Entry> {
    entries.iter().find(|e| e.default == default && e.tag == tag && !e.named())
}

/// The permission bits as WebHDFS reports them: owner, group class (the mask when there is
/// one), other.
pub fn mode(entries: &[Entry]) -> u16 {
    let p = |t: Tag| base(entries, false, t).map_or(0, |e| e.perm) as u16;
    let group = base(entries, false, Tag::Mask).map_or_else(|| p(Tag::Group), |m| m.perm as u16);
    (p(Tag::User) << 6) | (group << 3) | p(Tag::Other)
}

/// `770`-style octal text.
pub fn mode_text(entries: &[Entry]) -> String {
    format!("{:o}", mode(entries))
}

/// Whether the ACL has more than the three base entries (WebHDFS `aclBit`).
pub fn extended(entries: &[Entry]) -> bool {
    entries.iter().any(|e| e.default || e.named() || e.tag == Tag::Mask)
}

/// The entries `GETACLSTATUS` lists: the named access entries, the owning group's when the
/// ACL is extended (its `permission` then shows the mask; `TestAdlsFileSystemPermissions.json`
/// lists `group::rwx`), and every default entry (the other base access entries are in
/// `owner`/`permission`).
pub fn status_entries(entries: &[Entry]) -> Vec<String> {
    let ext = extended(entries);
    let owning_group = |e: &Entry| ext && !e.default && e.tag == Tag::Group && !e.named();
    let mut v: Vec<Entry> = entries.iter().filter(|e| e.default || e.named() || owning_group(e)).cloned().collect();
    sort(&mut v);
    v.iter().map(entry_text).collect()
}

/// Recompute the mask of one scope (access or default) when the ACL has group-class entries
/// beyond the owning group, unless `explicit` says the caller set it.
fn fix_mask(entries: &mut Vec<Entry>, default: bool, explicit: bool) {
    let has_any = entries.iter().any(|e| e.default == default);
    let needs = entries.iter().any(|e| e.default == default && e.named());
    if !has_any {
        return;
    }
    if explicit && base(entries, default, Tag::Mask).is_some() {
        return;
    }
    entries.retain(|e| !(e.default == default && e.tag == Tag::Mask));
    if needs {
        let union = entries.iter().filter(|e| e.default == default && e.group_class()).fold(0, |a, e| a | e.perm);
        entries.push(Entry::new(default, Tag::Mask, "", union));
    }
}

/// A default ACL that lacks base entries gets them copied from the access ACL (HDFS rule).
fn fill_default_base(entries: &mut Vec<Entry>) {
    if !entries.iter().any(|e| e.default) {
        return;
    }
    for t in [Tag::User, Tag::Group, Tag::Other] {
        if base(entries, true, t).is_none() {
            let perm = base(entries, false, t).map_or(0, |e| e.perm);
            entries.push(Entry::new(true, t, "", perm));
        }
    }
}

fn check_defaults(entries: &[Entry], dir: bool) -> Result<(), String> {
    if !dir && entries.iter().any(|e| e.default) {
        return Err("Invalid ACL: only directories may have a default ACL.".into());
    }
    Ok(())
}

fn finish(mut entries: Vec<Entry>, explicit_masks: (bool, bool), dir: bool) -> Result<Vec<Entry>, String> {
    check_defaults(&entries, dir)?;
    fill_default_base(&mut entries);
    fix_mask(&mut entries, false, explicit_masks.0);
    fix_mask(&mut entries, true, explicit_masks.1);
    sort(&mut entries);
    Ok(entries)
}

fn explicit(spec: &[Entry]) -> (bool, bool) {
    let m = |d: bool| spec.iter().any(|e| e.default == d && e.tag == Tag::Mask);
    (m(false), m(true))
}

/// Put each entry of `spec` into `out`: the same slot is replaced, a new one added.
fn merge(out: &mut Vec<Entry>, spec: &[Entry]) {
    for e in spec {
        match out.iter_mut().find(|x| x.same_slot(e)) {
            Some(x) => x.perm = e.perm,
            None => out.push(e.clone()),
        }
    }
}

/// `MODIFYACLENTRIES`: merge `spec` into the ACL (same slot → replaced, else added).
///
/// # Errors
/// Default entries on a file.
pub fn modify(current: &[Entry], spec: &[Entry], dir: bool) -> Result<Vec<Entry>, String> {
    let mut out = current.to_vec();
    merge(&mut out, spec);
    finish(out, explicit(spec), dir)
}

/// `SETACL`: replace the access ACL and/or the default ACL, whichever `spec` mentions (a
/// part it does not mention is kept, as HDFS does).
///
/// # Errors
/// Access entries without the `user::`, `group::` and `other::` base entries; default
/// entries on a file.
pub fn set(current: &[Entry], spec: &[Entry], dir: bool) -> Result<Vec<Entry>, String> {
    let has = |d: bool| spec.iter().any(|e| e.default == d);
    if has(false) && [Tag::User, Tag::Group, Tag::Other].iter().any(|t| base(spec, false, *t).is_none()) {
        return Err("Invalid ACL: the user, group and other entries are required.".into());
    }
    let mut out: Vec<Entry> = current.iter().filter(|e| !has(e.default)).cloned().collect();
    merge(&mut out, spec);
    finish(out, explicit(spec), dir)
}

/// `REMOVEACLENTRIES`: drop the named entries of `spec` (base entries cannot be removed).
///
/// # Errors
/// A base entry in the spec.
pub fn remove_entries(current: &[Entry], spec: &[Entry], dir: bool) -> Result<Vec<Entry>, String> {
    if let Some(e) = spec.iter().find(|e| !e.named() && e.tag != Tag::Mask) {
        return Err(format!("Invalid ACL: the base entry '{}' cannot be removed.", entry_text(e)));
    }
    let out: Vec<Entry> = current.iter().filter(|x| !spec.iter().any(|e| x.same_slot(e))).cloned().collect();
    finish(out, (false, false), dir)
}

/// `REMOVEACL`: back to the three base entries (the group class keeps the owning group's
/// bits) with no default ACL.
pub fn remove_all(current: &[Entry]) -> Vec<Entry> {
    let mut out: Vec<Entry> =
        current.iter().filter(|e| !e.default && !e.named() && e.tag != Tag::Mask).cloned().collect();
    sort(&mut out);
    out
}

/// `REMOVEDEFAULTACL`.
pub fn remove_default(current: &[Entry]) -> Vec<Entry> {
    current.iter().filter(|e| !e.default).cloned().collect()
}

/// Whether `caller` may use `want` bits: the owner gets the owner's bits, a named user
/// entry gets its bits limited by the mask, anyone else gets `other`.
pub fn allows(entries: &[Entry], owner: &str, caller: &str, want: u8) -> bool {
    let have = if owner.eq_ignore_ascii_case(caller) {
        base(entries, false, Tag::User).map_or(0, |e| e.perm)
    } else if let Some(named) =
        entries.iter().find(|e| !e.default && e.tag == Tag::User && e.id.eq_ignore_ascii_case(caller))
    {
        named.perm & base(entries, false, Tag::Mask).map_or(7, |m| m.perm)
    } else {
        base(entries, false, Tag::Other).map_or(0, |e| e.perm)
    };
    have & want == want
}

/// The ACL of a new child created with `mode` (e.g. `0o777` for a directory): the parent's
/// default ACL when it has one (a directory also inherits it as its own default ACL), else
/// `mode` less the umask `007`.
pub fn inherit(parent: &[Entry], dir: bool, mode: u16) -> Vec<Entry> {
    let defaults: Vec<Entry> = parent.iter().filter(|e| e.default).cloned().collect();
    if defaults.is_empty() {
        return from_mode(mode & !0o007);
    }
    let m = |shift: u16| ((mode >> shift) & 7) as u8;
    let mut out: Vec<Entry> = defaults
        .iter()
        .map(|e| {
            let perm = match (e.tag, e.named()) {
                (Tag::User, false) => e.perm & m(6),
                (Tag::Other, _) => e.perm & m(0),
                (Tag::Mask, _) => e.perm & m(3),
                _ => e.perm,
            };
            Entry { default: false, perm, ..e.clone() }
        })
        .collect();
    if base(&out, false, Tag::Mask).is_none()
        && let Some(g) = out.iter_mut().find(|e| e.tag == Tag::Group && !e.named())
    {
        g.perm &= m(3);
    }
    if dir {
        out.extend(defaults);
    }
    sort(&mut out);
    out
}

/// `rwxr-x---`, with `+` when the ACL has more than the base entries.
pub fn permissions_text(entries: &[Entry]) -> String {
    let m = mode(entries);
    let bits: String = [6, 3, 0].iter().map(|s| perm_text(((m >> s) & 7) as u8)).collect();
    if extended(entries) { format!("{bits}+") } else { bits }
}

/// Parse `x-ms-permissions`: four octal digits (`0750`, sticky bit ignored) or `rwxr-x---`.
pub fn parse_permissions(p: &str) -> Option<u16> {
    if p.len() == 4 && p.chars().all(|c| ('0'..='7').contains(&c)) {
        return u16::from_str_radix(p, 8).ok().map(|m| m & 0o777);
    }
    if p.len() != 9 {
        return None;
    }
    let mut mode = 0u16;
    for (i, want) in "rwxrwxrwx".chars().enumerate() {
        match p.as_bytes()[i] as char {
            c if c == want => mode |= 1 << (8 - i),
            '-' => {}
            _ => return None,
        }
    }
    Some(mode)
}

/// New permission bits (POSIX `chmod`): owner, group class (the mask when there is one,
/// else the owning group) and other.
pub fn chmod(mut entries: Vec<Entry>, mode: u16) -> Vec<Entry> {
    let bits = |shift: u16| ((mode >> shift) & 7) as u8;
    let has_mask = entries.iter().any(|x| !x.default && x.tag == Tag::Mask);
    for x in entries.iter_mut().filter(|x| !x.default && x.id.is_empty()) {
        match x.tag {
            Tag::User => x.perm = bits(6),
            Tag::Group if !has_mask => x.perm = bits(3),
            Tag::Mask => x.perm = bits(3),
            Tag::Other => x.perm = bits(0),
            Tag::Group => {}
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moved from dfs.rs (its permission texts), assertions unchanged.
    #[test]
    fn permission_texts() {
        assert_eq!(parse_permissions("0750"), Some(0o750));
        assert_eq!(parse_permissions("rwxr-x---"), Some(0o750));
        assert_eq!(parse_permissions("rwxr-x-w-"), Some(0o752));
        assert_eq!(parse_permissions("rwzr-x---"), None);
        assert_eq!(permissions_text(&from_mode(0o750)), "rwxr-x---");
        let named = modify(&from_mode(0o750), &parse_spec("user:a:r-x", true).expect("s"), true).expect("m");
        assert_eq!(permissions_text(&named), "rwxr-x---+");
    }

    fn texts(v: &[Entry]) -> Vec<String> {
        v.iter().map(entry_text).collect()
    }

    #[test]
    fn modify_adds_named_entries_and_a_mask_and_fills_default_base() {
        let root = from_mode(0o770);
        let spec = parse_spec("user:a:rwx,default:user:a:rwx", true).expect("spec");
        let acl = modify(&root, &spec, true).expect("modify");
        assert_eq!(
            texts(&acl),
            [
                "user::rwx",
                "user:a:rwx",
                "group::rwx",
                "mask::rwx",
                "other::---",
                "default:user::rwx",
                "default:user:a:rwx",
                "default:group::rwx",
                "default:mask::rwx",
                "default:other::---"
            ]
        );
        assert_eq!(mode_text(&acl), "770");
        assert!(extended(&acl));
        // Modifying again with the same spec changes nothing.
        assert_eq!(modify(&acl, &spec, true).expect("again"), acl);
    }

    #[test]
    fn the_mask_limits_named_users_but_not_the_owner() {
        let acl = set(&[], &parse_spec("user::rwx,user:a:rwx,group::---,mask::r--,other::---", true).expect("s"), true)
            .expect("set");
        assert!(allows(&acl, "owner", "owner", R | W | X));
        assert!(allows(&acl, "owner", "a", R));
        assert!(!allows(&acl, "owner", "a", W));
        assert!(!allows(&acl, "owner", "b", R));
        assert_eq!(mode_text(&acl), "740");
    }

    #[test]
    fn set_requires_base_entries_and_keeps_the_part_it_does_not_name() {
        let dir = modify(&from_mode(0o750), &parse_spec("default:user:a:r-x", true).expect("s"), true).expect("m");
        assert!(set(&dir, &parse_spec("user:a:rwx", true).expect("s"), true).is_err());
        let replaced = set(&dir, &parse_spec("user::rwx,group::r-x,other::--x", true).expect("s"), true).expect("set");
        assert!(replaced.iter().any(|e| e.default && e.id == "a"), "{:?}", texts(&replaced));
        assert_eq!(mode_text(&replaced), "751");
        assert!(modify(&from_mode(0o640), &parse_spec("default:user:a:r--", true).expect("s"), false).is_err());
    }

    #[test]
    fn removals() {
        let acl =
            modify(&from_mode(0o750), &parse_spec("user:a:rwx,user:b:r--,default:user:a:rwx", true).expect("s"), true)
                .expect("m");
        let less = remove_entries(&acl, &parse_spec("user:a", false).expect("s"), true).expect("r");
        assert!(!less.iter().any(|e| !e.default && e.id == "a"));
        assert_eq!(base(&less, false, Tag::Mask).map(|m| m.perm), Some(R | X));
        assert!(remove_entries(&acl, &parse_spec("user::", false).expect("s"), true).is_err());
        assert_eq!(texts(&remove_all(&acl)), ["user::rwx", "group::r-x", "other::---"]);
        assert!(!remove_default(&acl).iter().any(|e| e.default));
        assert!(parse_spec("user:a:rwz", true).is_err());
        assert!(parse_spec("mask:a:rwx", true).is_err());
        assert!(parse_spec("", true).is_err());
    }

    #[test]
    fn children_inherit_the_default_acl() {
        let parent = modify(&from_mode(0o770), &parse_spec("default:user:a:rwx", true).expect("s"), true).expect("m");
        let dir = inherit(&parent, true, 0o777);
        assert!(allows(&dir, "o", "a", R | W | X));
        assert!(dir.iter().any(|e| e.default && e.id == "a"));
        let file = inherit(&parent, false, 0o666);
        assert!(allows(&file, "o", "a", R | W));
        assert!(!allows(&file, "o", "a", X), "the file mode has no x");
        assert!(!file.iter().any(|e| e.default));
        assert_eq!(texts(&inherit(&from_mode(0o770), true, 0o777)), ["user::rwx", "group::rwx", "other::---"]);
    }
}
