//! `idlab import`, what every kind shares: the declaration a kind writes for a resource it
//! finds in Azure ([`super::Kind::import`], written in each kind's file), the objects inside a
//! resource that are imported too ([`super::Kind::import_children`]: a vault's access-policy
//! entries, read from its body, and its secrets, listed through its data plane by the
//! engine), and the helpers they write with. The writer (`crate::import`) runs the kinds over
//! everything the engine read, gives each declaration a key and renders the YAML.
//!
//! What a kind writes is what its own `desired` body turns back into what Azure holds: fields
//! left at the plan language's defaults are left out, references replace ids of resources the
//! plan declares, and secret values are `{ env: NAME }` placeholders (never read). Fields the
//! plan language cannot write as Azure holds them are said in [`Imported::unexpressed`].
//!
//! Imports: nothing of idlab (a leaf of `kinds`). Pure.

use std::collections::BTreeMap;

use serde_json::Value as J;

/// A YAML value as the writer renders it.
#[derive(Debug, Clone, PartialEq)]
pub enum Y {
    Str(String),
    Int(i64),
    Bool(bool),
    /// A block sequence (`- item` lines).
    List(Vec<Y>),
    /// A flow sequence (`[a, b]`), for short scalar lists.
    Flow(Vec<Y>),
    /// A block mapping.
    Map(Vec<Field>),
    /// A flow mapping (`{ env: NAME }`).
    FlowMap(Vec<(String, Y)>),
}

/// One `key: value` of a mapping, with an optional comment line above it.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub key: String,
    pub value: Y,
    pub comment: Option<String>,
}

impl Field {
    pub fn new(key: &str, value: Y) -> Field {
        Field { key: key.to_string(), value, comment: None }
    }
    pub fn str(key: &str, value: impl Into<String>) -> Field {
        Field::new(key, Y::Str(value.into()))
    }
}

/// What a kind sees of the whole import.
pub struct Source<'a> {
    /// Every resource read, by lower-case id.
    pub bodies: &'a BTreeMap<String, J>,
    /// Lower-case id → the key of its declaration (empty on the first pass).
    pub keys: &'a BTreeMap<String, String>,
    /// Lower-case object id → the reference naming that principal (`${id1}`,
    /// `${vm.identity}`) (empty on the first pass).
    pub principals: &'a BTreeMap<String, String>,
    /// The deploying principal (its access-policy entry is the vault's `:creator`).
    pub caller: Option<&'a str>,
    /// The plan's `location`.
    pub location: &'a str,
    /// The import writes files next to the plan (`--out`): blobs can be declared.
    pub files: bool,
}

impl<'a> Source<'a> {
    /// A source for a kind's unit tests: the deploying principal `cc`, files not written.
    #[cfg(test)]
    pub fn for_test(
        bodies: &'a BTreeMap<String, J>,
        keys: &'a BTreeMap<String, String>,
        principals: &'a BTreeMap<String, String>,
    ) -> Source<'a> {
        Source { bodies, keys, principals, caller: Some("cc"), location: "eastus", files: false }
    }

    /// The body read for `id`.
    pub fn body(&self, id: &str) -> Option<&J> {
        self.bodies.get(&id.to_ascii_lowercase())
    }
    /// The key of the declaration of `id`.
    pub fn key(&self, id: &str) -> Option<&str> {
        self.keys.get(&id.to_ascii_lowercase()).map(String::as_str)
    }
    /// `${key}` for a declared resource.
    pub fn reference(&self, id: &str) -> Option<String> {
        self.key(id).map(|k| format!("${{{k}}}"))
    }
    /// The resource group field of a resource: `${rg}` when the group is declared, else its
    /// name.
    pub fn group(&self, id: &str) -> Y {
        let gid = group_id(id);
        Y::Str(self.reference(&gid).unwrap_or_else(|| segment_after(id, "resourcegroups").unwrap_or_default()))
    }
    /// The principal field for an object id: `${caller}` for the deploying principal, the
    /// declaration that has it, else the id.
    pub fn principal(&self, oid: &str) -> String {
        if self.caller.is_some_and(|c| same(c, oid)) {
            return "${caller}".to_string();
        }
        self.principals.get(&oid.to_ascii_lowercase()).cloned().unwrap_or_else(|| oid.to_string())
    }
}

/// Resources a declaration stands for besides itself: (lower-case id, what it is).
pub type Covers = Vec<(String, String)>;

/// An environment-variable placeholder for a secret the import never reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Placeholder {
    pub name: String,
    /// What to set it to.
    pub what: String,
}

/// One declaration, as a kind writes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Imported {
    /// What the key is made from (a name): the writer makes it unique.
    pub key_hint: String,
    /// Appended to the hint when another declaration has it (`myvm-nic`).
    pub key_alt: String,
    /// Where it goes among the declarations: lower first (groups, identities, network, VMs,
    /// vaults, their objects, role assignments).
    pub rank: u8,
    /// Its key depends on the principals' references (known on the second pass).
    pub late_key: bool,
    /// The fields after `type`.
    pub fields: Vec<Field>,
    /// Resources it stands for besides itself: lower-case ids (a VM's OS disk; the network
    /// `network: auto` makes), with what each is.
    pub covers: Covers,
    /// Principals it brings: (object id, the attribute naming it: `` or `.identity`).
    pub principals: Vec<(String, &'static str)>,
    pub placeholders: Vec<Placeholder>,
    /// What Azure holds that the plan language cannot write: the plan will show it.
    pub unexpressed: Vec<String>,
    /// A comment above the declaration.
    pub note: Option<String>,
    /// Not declared, with why (an access-policy entry of a principal outside the plan).
    pub skipped: Option<String>,
    /// A file the plan names (a blob's `source`), relative to the plan, which the import
    /// writes next to it with the content it read for this resource.
    pub file: Option<String>,
}

/// What a kind finds inside a resource: objects to import as well, and reads that find more.
#[derive(Default)]
pub struct Children {
    /// (id, body, YAML type) of objects already in the resource's body.
    pub found: Vec<(String, J, &'static str)>,
    pub reads: Vec<Read>,
}

/// A read the engine makes to find a resource's objects.
pub enum Read {
    /// The secrets of a vault, through its data plane (`{uri}secrets`): names, content types
    /// and tags; never values.
    Secrets { vault: String, uri: String, kind: &'static str },
    /// An ARM list of a resource's children (`path`, at `api`), each then read whole: objects
    /// of the kind `kind` (a YAML type).
    Arm { path: String, api: &'static str, kind: &'static str },
    /// A resource it uses (a VM's user-assigned identity), read whole when no group holds it.
    Get { id: String, kind: &'static str },
    /// The folders of a Data Lake store (`store`: a Gen1 account's id; or a Gen2 account's,
    /// whose file systems are the containers read with it), each read with its ACL: objects of
    /// the kind `kind`. Only folders with named ACL entries are kept.
    Folders { store: String, gen2: bool, kind: &'static str },
    /// The blobs of a container (`container`, its id), through its data plane: objects of the
    /// kind `kind`, with their content when the import writes files and they are no larger
    /// than [`MAX_BLOB_BYTES`].
    Blobs { container: String, kind: &'static str },
}

/// The largest blob whose content an import downloads (and so declares).
pub const MAX_BLOB_BYTES: u64 = 16 << 20;

/// `/subscriptions/{s}/resourceGroups/{g}` of an id inside a group.
pub fn group_id(id: &str) -> String {
    let parts: Vec<&str> = id.split('/').collect();
    parts
        .iter()
        .position(|p| p.eq_ignore_ascii_case("resourcegroups"))
        .map_or_else(String::new, |i| parts[..(i + 2).min(parts.len())].join("/"))
}

/// The segment after `name` in an id (case-insensitive).
pub fn segment_after(id: &str, name: &str) -> Option<String> {
    let parts: Vec<&str> = id.split('/').collect();
    let i = parts.iter().position(|p| p.eq_ignore_ascii_case(name))?;
    parts.get(i + 1).map(|s| (*s).to_string())
}

/// The last segment of an id.
pub fn last(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

pub fn text<'a>(v: &'a J, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(J::as_str)
}

pub fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The location to write: `None` when it is the plan's.
pub fn location(have: &J, src: &Source<'_>) -> Option<String> {
    let l = text(have, "/location")?;
    let norm = |s: &str| s.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect::<String>();
    (norm(l) != norm(src.location)).then(|| l.to_string())
}

/// The user's tags (idlab's own are left out: they are the plan's to set).
pub fn user_tags(have: &J) -> Vec<(String, String)> {
    let mut t: Vec<(String, String)> = have
        .get("tags")
        .and_then(J::as_object)
        .into_iter()
        .flatten()
        .filter(|(k, _)| !k.to_ascii_lowercase().starts_with("idlab-"))
        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect();
    t.sort();
    t
}

pub fn tags_field(have: &J) -> Option<Field> {
    let t = user_tags(have);
    (!t.is_empty()).then(|| Field::new("tags", Y::Map(t.into_iter().map(|(k, v)| Field::str(&k, v)).collect())))
}

/// `name`, `resource_group`, `location` of an ARM resource in a group, then `own`, then its
/// tags: the order of `arm_spec!`.
pub fn with_header(id: &str, have: &J, src: &Source<'_>, own: Vec<Field>) -> Vec<Field> {
    let mut f =
        vec![Field::str("name", text(have, "/name").unwrap_or(last(id))), Field::new("resource_group", src.group(id))];
    if let Some(l) = location(have, src) {
        f.push(Field::str("location", l));
    }
    f.extend(own);
    f.extend(tags_field(have));
    f
}

pub fn imported(id: &str, have: &J, alt: &'static str, rank: u8, fields: Vec<Field>) -> Imported {
    Imported {
        key_hint: text(have, "/name").unwrap_or(last(id)).to_string(),
        key_alt: alt.to_string(),
        rank,
        fields,
        ..Imported::default()
    }
}

/// A description as its author wrote it: idlab's mark (`idlab plan NAME`, `idlab plan NAME:
/// text`) taken off; `None` when nothing is left.
pub fn own_description(d: &str) -> Option<&str> {
    let d = match d.strip_prefix("idlab plan ") {
        Some(rest) => rest.split_once(": ").map_or("", |(_, text)| text),
        None => d,
    };
    (!d.is_empty()).then_some(d)
}

/// An environment-variable name made from a key and a purpose: `MYVM_ADMIN_PASSWORD`.
pub fn env_name(key: &str, what: &str) -> String {
    let raw = format!("{key}_{what}");
    let mut s: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    while s.contains("__") {
        s = s.replace("__", "_");
    }
    let s = s.trim_matches('_').to_string();
    if s.starts_with(|c: char| c.is_ascii_digit()) { format!("_{s}") } else { s }
}

pub fn placeholder(name: String, what: String) -> (Y, Placeholder) {
    (Y::FlowMap(vec![("env".into(), Y::Str(name.clone()))]), Placeholder { name, what })
}

/// A plan key made from a name: lower case, letters, digits, `-` and `_`, starting with a
/// letter, at most 64 characters.
pub fn key_of(hint: &str) -> String {
    let mut s: String = hint
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let mut s = s.trim_matches('-').to_string();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        s = format!("r-{s}");
    }
    if matches!(s.as_str(), "var" | "env" | "caller" | "self") {
        s.push_str("-1");
    }
    s.chars().take(56).collect::<String>().trim_end_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_readable_plan_keys() {
        assert_eq!(key_of("myVM"), "myvm");
        assert_eq!(key_of("ID1-Reader"), "id1-reader");
        assert_eq!(key_of("my VM.01"), "my-vm-01");
        assert_eq!(key_of("123abc"), "r-123abc");
        assert_eq!(key_of("caller"), "caller-1");
        assert!(crate::model::names::logical(&key_of(&"x".repeat(200))).is_ok());
    }

    #[test]
    fn idlab_s_mark_is_taken_off_descriptions() {
        assert_eq!(own_description("idlab plan p: read the group"), Some("read the group"));
        assert_eq!(own_description("idlab plan p"), None);
        assert_eq!(own_description("made by hand"), Some("made by hand"));
        assert_eq!(own_description(""), None);
    }

    #[test]
    fn env_names() {
        assert_eq!(env_name("myvm", "admin_password"), "MYVM_ADMIN_PASSWORD");
        assert_eq!(env_name("kv_tutorial-secret", ""), "KV_TUTORIAL_SECRET");
        assert_eq!(env_name("1x", "y"), "_1X_Y");
    }

    #[test]
    fn group_ids() {
        let id = "/subscriptions/s/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/vm";
        assert_eq!(group_id(id), "/subscriptions/s/resourceGroups/RG");
        assert_eq!(segment_after(id, "resourcegroups").as_deref(), Some("RG"));
    }
}
