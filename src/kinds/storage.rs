//! Storage kinds (arm-contract §5): `storage_account` (`Microsoft.Storage/storageAccounts`),
//! `blob_container` (`…/blobServices/default/containers`) and `blob` (a data-plane object
//! whose content comes from a file next to the plan).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use serde_json::json;

use super::env::{Desired, Env, Lenient, NameCheck, OWNER_METADATA, Owner, Plane};
use super::header::{ArmHeader, arm_spec};
use super::import::{Children, Field, Imported, Read, Source, Y, imported, last, same, text, with_header};
use super::{Cx, Spec, child_key, kind};
use crate::model::names;
use crate::model::{Code, Diag, Sp};
use serde_json::Value as J;

/// Replication SKU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum StorageSku {
    #[serde(rename = "Standard_LRS")]
    StandardLrs,
    #[serde(rename = "Standard_GRS")]
    StandardGrs,
    #[serde(rename = "Standard_RAGRS")]
    StandardRagrs,
    #[serde(rename = "Standard_ZRS")]
    StandardZrs,
    #[serde(rename = "Standard_GZRS")]
    StandardGzrs,
    #[serde(rename = "Standard_RAGZRS")]
    StandardRagzrs,
    #[serde(rename = "Premium_LRS")]
    PremiumLrs,
    #[serde(rename = "Premium_ZRS")]
    PremiumZrs,
}

/// Account kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum StorageKind {
    StorageV2,
    BlockBlobStorage,
}

arm_spec! {
    /// A storage account.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct StorageAccount {
        /// Account name: 3–24 lowercase letters and digits, unique across Azure.
        name;
        /// Extra tags (idlab adds `idlab-plan`); names up to 128 characters.
        tags;
        /// Replication SKU; default `Standard_LRS`.
        #[serde(default)]
        pub sku: Option<StorageSku>,
        /// Account kind; default `StorageV2`.
        #[serde(default)]
        pub account_kind: Option<StorageKind>,
        /// Hierarchical namespace (Data Lake Storage Gen2); default false.
        #[serde(default)]
        pub hierarchical_namespace: bool,
        /// Allow Shared Key (and so SAS) access; default true. SAS tutorials need it.
        #[serde(default)]
        pub allow_shared_key_access: Option<bool>,
    }
}

impl StorageAccount {
    fn sku_name(&self) -> &'static str {
        match self.sku.unwrap_or(StorageSku::StandardLrs) {
            StorageSku::StandardLrs => "Standard_LRS",
            StorageSku::StandardGrs => "Standard_GRS",
            StorageSku::StandardRagrs => "Standard_RAGRS",
            StorageSku::StandardZrs => "Standard_ZRS",
            StorageSku::StandardGzrs => "Standard_GZRS",
            StorageSku::StandardRagzrs => "Standard_RAGZRS",
            StorageSku::PremiumLrs => "Premium_LRS",
            StorageSku::PremiumZrs => "Premium_ZRS",
        }
    }
}

impl Spec for StorageAccount {
    fn header(&self) -> Option<ArmHeader<'_>> {
        Some(self.arm_header())
    }
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let (id, _) = self.arm_header().id(env, "Microsoft.Storage/storageAccounts");
        let kind = match self.account_kind.unwrap_or(StorageKind::StorageV2) {
            StorageKind::StorageV2 => "StorageV2",
            StorageKind::BlockBlobStorage => "BlockBlobStorage",
        };
        Some(Desired {
            immutable: vec![
                ("location", "a storage account's location cannot change"),
                ("kind", "a storage account's kind cannot change here"),
                ("properties/isHnsEnabled", "the hierarchical namespace is set when an account is created"),
            ],
            // A recorded answer (StorageAccountTests/TestNewSetAzureStorageAccountTLSveresionBlobPublicAccess,
            // 2023-01-01) leaves both out when unset; the spec: null means shared keys allowed.
            lenient: vec![
                ("properties/isHnsEnabled", Lenient::Absent(json!(false))),
                ("properties/allowSharedKeyAccess", Lenient::Absent(json!(true))),
            ],
            ..Desired::new(
                id,
                "2025-06-01",
                json!({
                    "location": env.location(&self.location),
                    "tags": env.tags(&self.tags),
                    "sku": { "name": self.sku_name() },
                    "kind": kind,
                    "properties": {
                        "isHnsEnabled": self.hierarchical_namespace,
                        "allowSharedKeyAccess": self.allow_shared_key_access.unwrap_or(true),
                        "allowBlobPublicAccess": false,
                        "minimumTlsVersion": "TLS1_2",
                        "supportsHttpsTrafficOnly": true,
                    }
                }),
            )
        })
    }
    fn name_check(&self, env: &Env<'_>) -> Option<NameCheck> {
        let name = env.resolve(&self.name).known()?.to_string();
        Some(NameCheck {
            path: format!("/subscriptions/{}/providers/Microsoft.Storage/checkNameAvailability", env.subscription),
            api_version: "2025-06-01",
            body: json!({ "name": name, "type": "Microsoft.Storage/storageAccounts" }),
            name,
        })
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        self.arm_header().validate(cx, Code::StorageAccountName, names::storage_account, 128);
        let premium = matches!(self.sku, Some(StorageSku::PremiumLrs | StorageSku::PremiumZrs));
        if self.account_kind == Some(StorageKind::BlockBlobStorage) && !premium {
            cx.push(
                Diag::error(Code::Conflict, self.name.span, "a BlockBlobStorage account needs a Premium SKU")
                    .label("account_kind: BlockBlobStorage")
                    .help("set `sku: Premium_LRS` or `Premium_ZRS`, or use `account_kind: StorageV2`"),
            );
        }
    }
    fn identity_key(&self) -> Option<String> {
        // Storage account names are global: the group does not matter.
        Some(format!("storageAccounts|{}", self.name.value.to_ascii_lowercase()))
    }
}

/// `storage_account`: SKU, kind, hierarchical namespace, shared-key access; what a plan
/// always sets (no public blob access, TLS 1.2, HTTPS only) is said when Azure holds otherwise.
pub fn import_storage_account(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let mut own = Vec::new();
    let mut unexpressed = Vec::new();
    if let Some(s) = text(have, "/sku/name").filter(|s| !same(s, "Standard_LRS")) {
        own.push(Field::str("sku", s));
    }
    if let Some(k) = text(have, "/kind").filter(|k| !same(k, "StorageV2")) {
        own.push(Field::str("account_kind", k));
    }
    let flag = |p: &str| have.pointer(&format!("/properties/{p}")).and_then(J::as_bool);
    if flag("isHnsEnabled") == Some(true) {
        own.push(Field::new("hierarchical_namespace", Y::Bool(true)));
    }
    if flag("allowSharedKeyAccess") == Some(false) {
        own.push(Field::new("allow_shared_key_access", Y::Bool(false)));
    }
    if flag("allowBlobPublicAccess") == Some(true) {
        unexpressed.push("public blob access allowed (plans turn it off)".to_string());
    }
    if flag("supportsHttpsTrafficOnly") == Some(false) {
        unexpressed.push("HTTP allowed (plans allow HTTPS only)".to_string());
    }
    if let Some(t) = text(have, "/properties/minimumTlsVersion").filter(|t| *t != "TLS1_2") {
        unexpressed.push(format!("minimum TLS version {t} (plans ask for TLS1_2)"));
    }
    let mut i = imported(id, have, "storage", 5, with_header(id, have, src, own));
    i.unexpressed = unexpressed;
    Some(i)
}

/// An account's blob containers, read through ARM; with a hierarchical namespace, the
/// folders of its file systems with their ACLs.
pub fn import_storage_children(id: &str, have: &J) -> Children {
    let kind = super::Kind::type_name(&BlobContainerKind);
    let mut reads = vec![Read::Arm { path: format!("{id}/blobServices/default/containers"), api: CONTAINER_API, kind }];
    if have.pointer("/properties/isHnsEnabled").and_then(J::as_bool) == Some(true) {
        // `data_lake_folder` (named, not imported: `data_lake` imports this module).
        reads.push(Read::Folders { store: id.to_string(), gen2: true, kind: "data_lake_folder" });
    }
    Children { found: Vec::new(), reads }
}

/// The api-version of blob containers.
const CONTAINER_API: &str = "2025-06-01";

/// `blob_container`: its account as a reference, its public access (its blobs are read as
/// children: [`import_container_children`]).
pub fn import_blob_container(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let account = id.to_ascii_lowercase().find("/blobservices/").map(|at| &id[..at])?;
    let name = text(have, "/name").unwrap_or(last(id));
    let mut f = vec![
        Field::str("name", name),
        Field::str("account", src.reference(account).unwrap_or_else(|| account.to_string())),
    ];
    match text(have, "/properties/publicAccess").unwrap_or("None").to_ascii_lowercase().as_str() {
        "none" => {}
        other => f.push(Field::str("public_access", other)),
    }
    Some(Imported {
        key_hint: name.to_string(),
        key_alt: "container".into(),
        rank: 6,
        fields: f,
        ..Imported::default()
    })
}

kind!(StorageAccountKind, StorageAccount,
    type_name: "storage_account",
    arm_type: Some("Microsoft.Storage/storageAccounts"),
    api_version: "2025-06-01",
    attributes: &["id", "name", "blob_endpoint", "dfs_endpoint"],
    weight: 25,
    naming: crate::kinds::instance::InstanceName { field: "name", suffix: crate::kinds::instance::Suffix::Alnum, max: 24, scope: "Azure" },
    import: import_storage_account,
    children: import_storage_children);

/// Public access level of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PublicAccess {
    None,
    Blob,
    Container,
}

/// A blob container.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlobContainer {
    #[serde(rename = "type")]
    #[schemars(skip)]
    pub kind: Sp<String>,
    /// Container name: 3–63 lowercase letters, digits and hyphens.
    pub name: Sp<String>,
    /// The storage account: `${storage}`.
    pub account: Sp<String>,
    /// `none` (default), `blob` or `container`.
    #[serde(default)]
    pub public_access: Option<PublicAccess>,
    /// Logical names this resource must wait for, beyond its references.
    #[serde(default)]
    pub depends_on: Vec<Sp<String>>,
}

impl Spec for BlobContainer {
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let account = env.resolve(&self.account).or_unknown();
        let name = env.resolve(&self.name).or_unknown();
        let access = match self.public_access.unwrap_or(PublicAccess::None) {
            PublicAccess::None => "None",
            PublicAccess::Blob => "Blob",
            PublicAccess::Container => "Container",
        };
        Some(Desired {
            owner: Owner::Metadata,
            ..Desired::new(
                format!("{account}/blobServices/default/containers/{name}"),
                "2025-06-01",
                json!({ "properties": { "publicAccess": access, "metadata": { OWNER_METADATA: env.plan } } }),
            )
        })
    }
    fn name(&self) -> Option<&Sp<String>> {
        Some(&self.name)
    }
    fn depends_on(&self) -> &[Sp<String>] {
        &self.depends_on
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        cx.name_rule(&self.name, Code::ContainerName, names::blob_container);
        cx.reference("account", &self.account, &["storage_account"]);
        if matches!(self.public_access, Some(PublicAccess::Blob | PublicAccess::Container)) {
            cx.push(
                Diag::error(
                    Code::Conflict,
                    self.name.span,
                    "public access is not allowed: idlab creates storage accounts with `allowBlobPublicAccess: false`",
                )
                .label("public_access")
                .help("remove `public_access` (or set it to `none`)"),
            );
        }
    }
    fn identity_key(&self) -> Option<String> {
        Some(child_key("containers", &self.account, &self.name))
    }
    fn derived(&self, env: &Env<'_>) -> Vec<(&'static str, String)> {
        let endpoint = env.values.get(&(root_of(&self.account.value), "blob_endpoint".to_string()));
        match (endpoint, env.resolve(&self.name).known()) {
            (Some(e), Some(name)) => vec![("url", format!("{}/{name}", e.trim_end_matches('/')))],
            _ => Vec::new(),
        }
    }
}

kind!(BlobContainerKind, BlobContainer,
    type_name: "blob_container",
    arm_type: Some("Microsoft.Storage/storageAccounts/blobServices/containers"),
    api_version: "2025-06-01",
    attributes: &["id", "name", "url"],
    weight: 2,
    import: import_blob_container,
    children: import_container_children);

/// A container's blobs, read through its data plane.
pub fn import_container_children(id: &str, _have: &J) -> Children {
    let kind = super::Kind::type_name(&BlobKind);
    Children { found: Vec::new(), reads: vec![Read::Blobs { container: id.to_string(), kind }] }
}

/// `blob`: its container as a reference, its content as a file next to the plan
/// (`files/{container}/{name}`), its content type when not the one its name implies. Not
/// declared when the import writes no files (standard output), when it is larger than
/// [`super::import::MAX_BLOB_BYTES`], or when its name cannot be a path below `files/`.
pub fn import_blob(id: &str, have: &J, src: &Source<'_>) -> Option<Imported> {
    let (container_id, name) = id.split_once("/blobs/")?;
    let container = last(container_id);
    let shown = format!("blob {container}/{name}");
    let skip = |why: &str| Some(Imported { skipped: Some(format!("{shown}: {why}")), ..Imported::default() });
    if name.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") || name.contains(['\\', '\0']) {
        return skip("its name cannot be a file path below files/; declare it by hand");
    }
    if !src.files {
        return skip("its content is written next to the plan only with --out");
    }
    let size = have.pointer("/properties/contentLength").and_then(J::as_u64).unwrap_or(0);
    if size > super::import::MAX_BLOB_BYTES {
        return skip(&format!(
            "{size} bytes, larger than the {} MiB an import downloads; declare it by hand",
            super::import::MAX_BLOB_BYTES >> 20
        ));
    }
    let source = format!("files/{container}/{name}");
    let mut fields = vec![
        Field::str("name", name),
        Field::str("container", src.reference(container_id).unwrap_or_else(|| container_id.to_string())),
        Field::str("source", source.clone()),
    ];
    let implied = implied_content_type(&source);
    let held = text(have, "/properties/contentType").unwrap_or("application/octet-stream");
    if held != implied {
        fields.push(Field::str("content_type", held));
    }
    let mut unexpressed = Vec::new();
    if text(have, "/properties/contentMd5").is_none() {
        unexpressed.push(
            "its Content-MD5 is not set (uploaded in blocks without one): apply uploads it again, which sets it"
                .to_string(),
        );
    }
    Some(Imported {
        key_hint: last(name).to_string(),
        key_alt: "blob".into(),
        rank: 6,
        fields,
        unexpressed,
        file: Some(source),
        ..Imported::default()
    })
}

/// A block blob whose content is a file next to the plan.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Blob {
    #[serde(rename = "type")]
    #[schemars(skip)]
    pub kind: Sp<String>,
    /// Blob name, e.g. `hello_world.txt`.
    pub name: Sp<String>,
    /// The container: `${container}`.
    pub container: Sp<String>,
    /// The file to upload, relative to the plan file.
    pub source: Sp<String>,
    /// Content type; default `application/octet-stream`, or `text/plain` for `.txt`.
    #[serde(default)]
    pub content_type: Option<Sp<String>>,
    /// Logical names this resource must wait for, beyond its references.
    #[serde(default)]
    pub depends_on: Vec<Sp<String>>,
}

impl Blob {
    /// The content type: the declared one, else one from the file's extension.
    pub fn content_type(&self) -> String {
        match &self.content_type {
            Some(t) => t.value.clone(),
            None => implied_content_type(&self.source.value).to_string(),
        }
    }
}

/// The content type a blob gets from its file's extension.
fn implied_content_type(path: &str) -> &'static str {
    let ext = std::path::Path::new(path).extension().and_then(|e| e.to_str()).unwrap_or_default();
    match ext.to_ascii_lowercase().as_str() {
        "txt" | "md" => "text/plain",
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "csv" => "text/csv",
        "xml" => "application/xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        _ => "application/octet-stream",
    }
}

/// The logical name in `${name}` / `${name.attr}`.
fn root_of(reference: &str) -> String {
    reference.trim_start_matches("${").trim_end_matches('}').split('.').next().unwrap_or_default().to_string()
}

/// Base64 MD5 of a file: what the Blob service reports as `Content-MD5` after a single-shot
/// upload, so a second apply compares contents without downloading them.
pub fn file_md5(path: &std::path::Path) -> Option<String> {
    use base64::Engine;
    use md5::{Digest, Md5};
    let data = std::fs::read(path).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(Md5::digest(&data)))
}

impl Spec for Blob {
    fn upload(&self, env: &Env<'_>) -> Option<(std::path::PathBuf, String)> {
        Some((env.base_dir.join(env.resolve(&self.source).or_unknown()), self.content_type()))
    }
    fn desired(&self, env: &Env<'_>) -> Option<Desired> {
        let container = env.resolve(&self.container).or_unknown();
        let name = env.resolve(&self.name).or_unknown();
        let source = env.resolve(&self.source).or_unknown();
        let md5 = file_md5(&env.base_dir.join(&source)).unwrap_or_else(|| format!("(unreadable: {source})"));
        Some(Desired {
            owner: Owner::Metadata,
            plane: Plane::Blob,
            ..Desired::new(
                format!("{container}/blobs/{name}"),
                "2023-11-03",
                json!({ "properties": { "contentMd5": md5, "contentType": self.content_type(), "metadata": { OWNER_METADATA: env.plan } } }),
            )
        })
    }
    fn name(&self) -> Option<&Sp<String>> {
        Some(&self.name)
    }
    fn depends_on(&self) -> &[Sp<String>] {
        &self.depends_on
    }
    fn validate(&self, cx: &mut Cx<'_>) {
        cx.name_rule(&self.name, Code::ChildName, names::blob);
        // idlab uploads blobs with a service SAS, which Shared Key access must allow.
        let no_shared_key = cx
            .reference("container", &self.container, &["blob_container"])
            .and_then(|c| c.spec.as_any().downcast_ref::<BlobContainer>())
            .map(|c| root_of(&c.account.value))
            .and_then(|account| cx.decl(&account))
            .and_then(|a| a.spec.as_any().downcast_ref::<StorageAccount>())
            .is_some_and(|a| a.allow_shared_key_access == Some(false));
        if no_shared_key {
            cx.push(
                Diag::error(
                    Code::Conflict,
                    self.name.span,
                    "this blob's account has `allow_shared_key_access: false`, and idlab uploads blobs with a service SAS",
                )
                .label("blob in an account without Shared Key access")
                .help("set `allow_shared_key_access: true` on the account, or upload the blob another way"),
            );
        }
        if let Some((at, seg)) = names::dot_segment(&self.name.value) {
            cx.push(dot_segment_diag(&self.name, at, seg, "a blob name"));
        }
        if cx.file_outside(&self.source, "blob source") {
            return;
        }
        if !crate::model::refs::has_expr(&self.source) && !cx.base_dir.join(&self.source.value).is_file() {
            cx.push(
                Diag::error(
                    Code::FileNotFound,
                    self.source.span,
                    format!("blob source `{}` does not exist", self.source.value),
                )
                .label("no such file")
                .help("paths are relative to the plan file"),
            );
        }
    }
    fn identity_key(&self) -> Option<String> {
        Some(child_key("blobs", &self.container, &self.name))
    }
    fn derived(&self, env: &Env<'_>) -> Vec<(&'static str, String)> {
        let container = env.values.get(&(root_of(&self.container.value), "url".to_string()));
        match (container, env.resolve(&self.name).known()) {
            (Some(c), Some(name)) => vec![("url", format!("{c}/{}", url_path(name)))],
            _ => Vec::new(),
        }
    }
}

/// The diagnostic for a `.` or `..` segment at byte `at` of `value` (`what`: "a blob name").
pub(crate) fn dot_segment_diag(value: &Sp<String>, at: usize, seg: &str, what: &str) -> Diag {
    // A plain scalar's span is its text; a quoted one's is not, so point at all of it.
    let span = if value.span.len == value.value.len() { value.span.sub(at, seg.len()) } else { value.span };
    Diag::error(Code::DotSegment, span, format!("{what} may not hold a `{seg}` segment: `{}`", value.value))
        .label("dot segment")
        .help("Azure refuses `.` and `..` path segments; name the path without them")
}

/// A blob name as a URL path: each byte but unreserved characters and `/` percent-encoded.
///
/// ```
/// assert_eq!(idlab::kinds::storage::url_path("dir/hello world.txt"), "dir/hello%20world.txt");
/// ```
pub fn url_path(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

kind!(BlobKind, Blob,
    type_name: "blob",
    arm_type: None,
    api_version: "2023-11-03",
    attributes: &["id", "name", "url"],
    weight: 2,
    import: import_blob);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    const C: &str = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/a/blobServices/default/containers/box";

    fn blob(name: &str, files: bool, props: J) -> Imported {
        let bodies = BTreeMap::new();
        let keys = BTreeMap::from([(C.to_ascii_lowercase(), "box".to_string())]);
        let principals = BTreeMap::new();
        let src = Source { files, ..Source::for_test(&bodies, &keys, &principals) };
        import_blob(&format!("{C}/blobs/{name}"), &json!({ "properties": props }), &src).expect("imported")
    }

    #[test]
    fn a_blob_is_declared_with_its_file_and_only_a_content_type_its_name_does_not_imply() {
        let i = blob("dir/a.txt", true, json!({ "contentType": "text/plain", "contentMd5": "x", "contentLength": 3 }));
        assert_eq!(i.skipped, None);
        assert_eq!(i.file.as_deref(), Some("files/box/dir/a.txt"));
        let keys: Vec<&str> = i.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["name", "container", "source"]);
        assert_eq!(i.fields[1].value, Y::Str("${box}".into()));
        assert!(i.unexpressed.is_empty());
        let i = blob("a.txt", true, json!({ "contentType": "text/csv", "contentLength": 3 }));
        assert_eq!(
            i.fields.last().map(|f| (f.key.as_str(), &f.value)),
            Some(("content_type", &Y::Str("text/csv".into())))
        );
        assert_eq!(i.unexpressed.len(), 1, "no Content-MD5: {:?}", i.unexpressed);
    }

    #[test]
    fn a_blob_is_named_not_declared_without_files_when_too_large_or_not_a_path() {
        let small = json!({ "contentLength": 3, "contentMd5": "x" });
        for (name, files, props, why) in [
            ("a.txt", false, small.clone(), "only with --out"),
            ("a/../b", true, small.clone(), "cannot be a file path"),
            ("a//b", true, small.clone(), "cannot be a file path"),
            (
                "big.bin",
                true,
                json!({ "contentLength": super::super::import::MAX_BLOB_BYTES + 1 }),
                "larger than the 16 MiB",
            ),
        ] {
            let i = blob(name, files, props);
            let skipped = i.skipped.unwrap_or_default();
            assert!(skipped.starts_with(&format!("blob box/{name}: ")) && skipped.contains(why), "{name}: {skipped}");
            assert_eq!(i.file, None);
        }
    }
}
