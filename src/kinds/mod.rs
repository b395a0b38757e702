//! Resource kinds: one module per Azure resource family, each kind behind the object-safe
//! [`Kind`] trait and listed once in [`KINDS`]. The YAML `type` resolves through the registry;
//! nothing outside this module matches on kind names.
//!
//! A kind owns its typed spec (parsed from the spanned YAML), its validation, the attributes
//! other resources may reference, its weight for the critical path, and (in later layers)
//! its ARM body and diff. Kinds are pure: no I/O besides reading the files a plan names
//! (that they exist; a blob source's MD5, to compare contents without downloading them).
//!
//! Imports: model, roles. No network I/O. Deterministic.

use std::any::Any;
use std::fmt::Debug;
use std::path::Path;

use schemars::{Schema, SchemaGenerator};
use serde_json::{Value as J, json};

use crate::model::de::DeError;
use crate::model::names::{self, Rule};
use crate::model::refs::{self, Expr, OffsetMap};
use crate::model::yaml::Node;
use crate::model::{Code, Diag, Secret, Sp, SpMap, Span};

pub mod data_lake;
pub mod disk;
pub mod env;
pub mod federated_credential;
pub mod header;
pub mod identity;
pub mod import;
pub mod instance;
pub mod key_vault;
pub mod network;
pub mod resource_group;
pub mod role_assignment;
pub mod role_definition;
pub mod sql;
pub mod storage;
pub mod vm;

/// One Azure resource kind.
pub trait Kind: Send + Sync {
    /// The YAML `type`, e.g. `virtual_machine`.
    fn type_name(&self) -> &'static str;
    /// The ARM resource type, or `None` for data-plane objects (blobs, secrets, folders).
    fn arm_type(&self) -> Option<&'static str>;
    /// The ARM (or data-plane) api-version idlab sends for this kind.
    fn api_version(&self) -> &'static str;
    /// Attributes other resources may reference as `${name.attr}` (`id` is always there).
    fn attributes(&self) -> &'static [&'static str];
    /// Rough seconds a create takes, for the critical path.
    fn weight(&self) -> u32;
    /// Whether a reference to this kind names a principal (a user-assigned identity).
    fn is_identity(&self) -> bool {
        false
    }
    /// Instances: how this kind's name takes the instance suffix, for names whose uniqueness
    /// scope is not inside a resource the instance owns (`None`: unique inside its parent).
    fn instance_name(&self) -> Option<instance::InstanceName> {
        None
    }
    /// The JSON Schema of this kind's YAML, tagged by `type`.
    fn schema(&self, g: &mut SchemaGenerator) -> Schema;
    // Teardown (issue 17).
    /// How Azure's references in a body of this kind name what was made with it and what
    /// uses it ([`References`]), for resources met without a declaration (a portal VM's
    /// interface, that interface's public IP, security group and virtual network).
    fn references(&self) -> Option<References> {
        None
    }
    /// Read the typed spec from a structurally valid node.
    ///
    /// # Errors
    /// A [`DeError`] with the span of the node that did not fit.
    fn parse(&self, node: &Node) -> Result<Box<dyn Spec>, DeError>;

    // `idlab import` (`kinds::import`).

    /// The declaration a plan writes for `have`, a resource of this kind found at `id`
    /// (`None`: the kind does not import, or leaves this one out).
    fn import(&self, _id: &str, _have: &J, _src: &import::Source<'_>) -> Option<import::Imported> {
        None
    }
    /// The objects inside `have` that are imported with it, and the reads that find more.
    fn import_children(&self, _id: &str, _have: &J) -> import::Children {
        import::Children::default()
    }
}

/// A typed resource spec, as declared in the plan.
pub trait Spec: Debug + Send + Sync + Any {
    /// The ARM header (name, group, location, tags, `depends_on`), for kinds that have one
    /// (`header::arm_spec!`).
    fn header(&self) -> Option<header::ArmHeader<'_>> {
        None
    }
    /// The Azure resource name, if this kind has one.
    fn name(&self) -> Option<&Sp<String>> {
        self.header().map(|h| h.name)
    }
    /// Explicit `depends_on` entries.
    fn depends_on(&self) -> &[Sp<String>] {
        self.header().map_or(&[], |h| h.depends_on)
    }
    /// Kind-specific semantic checks (names, ranges, references to particular kinds).
    fn validate(&self, cx: &mut Cx<'_>);
    /// Resources this one expands into (a VM's `network: auto`): they become graph nodes.
    fn expand(&self, _logical: &str) -> Vec<Expanded> {
        Vec::new()
    }
    /// For a VM: whether it has a system identity and which user identities it carries.
    fn vm_identity(&self) -> Option<VmIdentity<'_>> {
        None
    }
    /// The ARM resource this spec wants, for kinds the engine converges (`None` for kinds
    /// served in later versions).
    fn desired(&self, _env: &env::Env<'_>) -> Option<env::Desired> {
        None
    }
    /// Fields sent only when the resource is created, not compared or sent afterwards:
    /// `(JSON pointer, value)`. For what Azure needs to create a resource but manages through
    /// other resources later (an Entra-only SQL server's first Entra admin).
    fn create_only(&self, _env: &env::Env<'_>) -> Vec<(String, serde_json::Value)> {
        Vec::new()
    }
    /// For globally named resources: the availability check to run when the resource does
    /// not exist yet, so a name taken elsewhere is a plan error rather than a failed apply.
    fn name_check(&self, _env: &env::Env<'_>) -> Option<env::NameCheck> {
        None
    }
    /// What makes two declarations the same Azure object (for duplicate detection).
    fn identity_key(&self) -> Option<String> {
        None
    }
    /// Attributes computed from other resources' values rather than read from this one's
    /// body (a container's `url` from its account's blob endpoint): `(attribute, value)` for
    /// those known so far.
    fn derived(&self, _env: &env::Env<'_>) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// Declarations (logical names) this one must wait for without referencing them: a
    /// data-plane object waits for the plan's role assignment that lets idlab write it.
    fn waits_for(&self, _decls: &[Decl]) -> Vec<String> {
        Vec::new()
    }
    /// How an in-place update is sent. `None` (ARM's default): a PUT of the whole desired
    /// body. `Some`: a PATCH — for kinds where a PUT would replace what others manage (a
    /// vault's access policies) or where only some fields can change in place (a VM).
    /// `want` is the desired body, `have` what ARM holds.
    fn update_patch(&self, _want: &J, _have: Option<&J>) -> Option<Patch> {
        None
    }
    /// Destroy: what Azure made on its own with this resource, read from `have` (what ARM
    /// holds for it): a VM's OS disk, a NIC's IP configurations, an NSG's default rules.
    fn implicit(&self, _have: &J) -> Vec<Implicit> {
        Vec::new()
    }
    /// Destroy: whether the resource contains others (a resource group), so it is kept while
    /// it holds resources the plan does not own (unless `--force`).
    fn contains_resources(&self) -> bool {
        false
    }
    /// A data-plane upload (a blob): the file to send, resolved against the plan's directory,
    /// and its content type.
    fn upload(&self, _env: &env::Env<'_>) -> Option<(std::path::PathBuf, String)> {
        None
    }
    // Teardown and adoption (issue 17).
    /// Whether Azure may hold this resource under another name than the plan's, the same
    /// object by what it holds: a role assignment made in the portal or with the Azure CLI
    /// has a random GUID name, and is the same assignment when its (scope, principal, role)
    /// is. The engine then looks it up by content (`engine::plane::arm::find_same_assignment`).
    fn matched_by_content(&self) -> bool {
        false
    }
}

/// Something Azure makes on its own with a resource ([`Spec::implicit`]), found in the
/// resource's own body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Implicit {
    pub id: String,
    /// What it is, for people: `OS disk`, `IP configuration`, `default security rule`.
    pub what: &'static str,
    pub fate: ImplicitFate,
}

/// What deleting its parent does to an [`Implicit`] child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImplicitFate {
    /// It goes with its parent; why (`deleteOption: Delete`, a child resource).
    WithParent(&'static str),
    /// Its parent's delete leaves it (a disk's `deleteOption: Detach`): destroy deletes it
    /// after the parent, at this api-version.
    After { api_version: &'static str },
    /// The parent's delete makes or leaves it and destroy leaves it too; why.
    Remains(&'static str),
}

/// The ids of the array at `pointer` in `have` (a NIC's `ipConfigurations`), as implicit
/// children that go with their parent.
pub fn child_ids(have: &J, pointer: &str, what: &'static str, why: &'static str) -> Vec<Implicit> {
    have.pointer(pointer)
        .and_then(J::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("id").and_then(J::as_str))
        .map(|id| Implicit { id: id.to_string(), what, fate: ImplicitFate::WithParent(why) })
        .collect()
}

/// Reads a resource's [`Implicit`] children from its body.
pub type ImplicitReader = fn(&J) -> Vec<Implicit>;

/// What Azure made on its own with a resource found in a listing, by its ARM type `t` and
/// its body `have` (a VM's OS disk): for resources destroy or sweep meets without their
/// declaration (orphans, expired environments). `None` when `t` makes none worth a read.
pub fn implicit_of_listed(t: &str) -> Option<(&'static str, ImplicitReader)> {
    let (api, refs) = references_of(t)?;
    refs.makes.then_some((api, refs.children))
}

/// Teardown: what Azure's own references in a resource's body say about the resources
/// around it ([`Kind::references`]). Read from the body only, never from names.
#[derive(Clone, Copy)]
pub struct References {
    /// Whether it makes children worth a read (`children` finds some; `by_hand` is read
    /// whenever it is given).
    pub makes: bool,
    /// What was made with it, by the ids its body holds (a VM's `storageProfile` and
    /// `networkProfile`; an interface's public IPs, security group and virtual network).
    pub children: ImplicitReader,
    /// What it was made with when a person made it, read instead of `children` for a
    /// teardown of what was made by hand (`--adopt`): a VM's data disks attached with
    /// `Attach`, a virtual network's subnet security groups. Never for what idlab owns.
    pub by_hand: Option<ImplicitReader>,
    /// The ids of what uses it (a virtual network's subnets' IP configurations, a public IP's
    /// IP configuration, a security group's interfaces and subnets, an interface's VM): it
    /// goes only when each of them goes before it.
    pub users: fn(&J) -> Vec<String>,
}

impl References {
    /// Whether a body of this kind is worth a read for what was made with it (`by_hand`: made
    /// by hand).
    pub fn reads(&self, by_hand: bool) -> bool {
        self.makes || (by_hand && self.by_hand.is_some())
    }

    /// What was made with a resource whose body is `have`: [`References::by_hand`] when it
    /// was made by hand and the kind says more for that, else [`References::children`].
    pub fn made_with(&self, have: &J, by_hand: bool) -> Vec<Implicit> {
        match self.by_hand.filter(|_| by_hand) {
            Some(read) => read(have),
            None => (self.children)(have),
        }
    }
}

/// No children, no users.
fn none(_: &J) -> Vec<Implicit> {
    Vec::new()
}

/// The [`References`] of the kind whose ARM type is `t`, with its api-version.
pub fn references_of(t: &str) -> Option<(&'static str, References)> {
    let k = KINDS.iter().find(|k| k.arm_type().is_some_and(|a| a.eq_ignore_ascii_case(t)))?;
    k.references().map(|r| (k.api_version(), r))
}

/// The ids at `pointer` (an array of `{id}` objects, or one object) in `have`, and in each
/// element's `inner` array when `inner` is given (a virtual network's subnets' IP
/// configurations).
pub fn ids_at(have: &J, pointer: &str, inner: Option<&str>) -> Vec<String> {
    let Some(v) = have.pointer(pointer) else { return Vec::new() };
    let items: Vec<&J> = v.as_array().map_or_else(|| vec![v], |a| a.iter().collect());
    match inner {
        None => items.iter().filter_map(|x| x.get("id").and_then(J::as_str)).map(str::to_string).collect(),
        Some(p) => items.iter().flat_map(|x| ids_at(x, p, None)).collect(),
    }
}

/// An in-place update sent as a PATCH ([`Spec::update_patch`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    pub body: J,
    /// Guard the PATCH with the ETag the resource was read with (read-modify-write).
    pub if_match: bool,
}

impl dyn Spec {
    /// The spec as `Any`, to downcast to a kind's own type.
    pub fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A VM's identities, as declared.
pub struct VmIdentity<'a> {
    pub system_assigned: bool,
    pub user_assigned: &'a [Sp<String>],
}

/// A node created by expanding another (e.g. `vm:nic` from a VM's `network: auto`).
#[derive(Debug)]
pub struct Expanded {
    /// `vm:nic`: a `:` keeps generated names apart from any name a user can write.
    pub logical: String,
    pub kind: &'static dyn Kind,
    pub spec: Box<dyn Spec>,
    /// Other nodes this one depends on (logical names).
    pub depends_on: Vec<String>,
}

impl Debug for dyn Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.type_name())
    }
}

/// Every kind idlab knows, sorted by type name.
pub static KINDS: &[&dyn Kind] = &[
    &storage::BlobKind,
    &storage::BlobContainerKind,
    &data_lake::DataLakeFolderKind,
    &data_lake::DataLakeStoreKind,
    &federated_credential::FederatedIdentityCredentialKind,
    &key_vault::KeyVaultKind,
    &key_vault::AccessPolicyKind,
    &key_vault::SecretKind,
    &network::NetworkInterfaceKind,
    &network::NsgKind,
    &network::PublicIpKind,
    &resource_group::ResourceGroupKind,
    &role_assignment::RoleAssignmentKind,
    &role_definition::RoleDefinitionKind,
    &sql::SqlDatabaseKind,
    &sql::SqlEntraAdminKind,
    &sql::SqlServerKind,
    &storage::StorageAccountKind,
    &identity::UserAssignedIdentityKind,
    &vm::VirtualMachineKind,
    &network::VirtualNetworkKind,
];

/// The quota `d` takes when its request `body` creates it, if any.
pub fn demand(d: &Decl, body: &serde_json::Value) -> Option<instance::Demand> {
    let t = d.kind.type_name();
    let text = |p: &str| body.pointer(p).and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
    if t == resource_group::ResourceGroupKind.type_name() {
        Some(instance::Demand::ResourceGroup)
    } else if t == storage::StorageAccountKind.type_name() {
        Some(instance::Demand::StorageAccount { location: text("/location") })
    } else if t == role_assignment::RoleAssignmentKind.type_name() {
        Some(instance::Demand::RoleAssignment)
    } else if t == vm::VirtualMachineKind.type_name() {
        Some(instance::Demand::Vm { location: text("/location"), size: text("/properties/hardwareProfile/vmSize") })
    } else {
        None
    }
}

/// The kind name shown for an ARM type (the ARM type itself when no kind has it).
pub fn kind_of_arm_type(t: &str) -> String {
    KINDS
        .iter()
        .find(|k| k.arm_type().is_some_and(|a| a.eq_ignore_ascii_case(t)))
        .map_or_else(|| t.to_string(), |k| k.type_name().to_string())
}

/// The kind of an ARM type, if idlab has one.
pub fn by_arm_type(t: &str) -> Option<&'static dyn Kind> {
    KINDS.iter().copied().find(|k| k.arm_type().is_some_and(|a| a.eq_ignore_ascii_case(t)))
}

/// The api-version idlab uses for an ARM type (ARM's generic one when no kind has it).
pub fn api_version_of_arm_type(t: &str) -> &'static str {
    KINDS
        .iter()
        .find(|k| k.arm_type().is_some_and(|a| a.eq_ignore_ascii_case(t)))
        .map_or("2021-04-01", |k| k.api_version())
}

/// A kind by its YAML `type`.
pub fn by_type(name: &str) -> Option<&'static dyn Kind> {
    KINDS.iter().copied().find(|k| k.type_name() == name)
}

/// The schema of one kind's spec type, with `type` added as its `const` discriminator.
pub fn tagged_schema<T: schemars::JsonSchema>(g: &mut SchemaGenerator, type_name: &str) -> Schema {
    let mut s = T::json_schema(g);
    if let Some(obj) = s.as_object_mut() {
        let props = obj.entry("properties").or_insert_with(|| json!({})).as_object_mut().map(|p| {
            let mut with_type = serde_json::Map::new();
            with_type.insert("type".into(), json!({ "const": type_name, "description": "The resource kind." }));
            with_type.extend(std::mem::take(p));
            with_type
        });
        if let Some(p) = props {
            obj.insert("properties".into(), J::Object(p));
        }
        let req = obj.entry("required").or_insert_with(|| json!([]));
        if let Some(a) = req.as_array_mut() {
            a.insert(0, json!("type"));
        }
    }
    s
}

/// Implements [`Kind`] for a unit struct over a spec type.
macro_rules! kind {
    ($kind:ident, $spec:ty, type_name: $tn:literal, arm_type: $arm:expr, api_version: $api:literal,
     attributes: $attrs:expr, weight: $w:literal $(, identity: $ident:literal)? $(, naming: $naming:expr)?
     $(, references: $refs:expr)?
     $(, import: $import:path $(, children: $children:path)?)?) => {
        /// The registry entry for this kind.
        pub struct $kind;
        impl $crate::kinds::Kind for $kind {
            fn type_name(&self) -> &'static str {
                $tn
            }
            fn arm_type(&self) -> Option<&'static str> {
                $arm
            }
            fn api_version(&self) -> &'static str {
                $api
            }
            fn attributes(&self) -> &'static [&'static str] {
                $attrs
            }
            fn weight(&self) -> u32 {
                $w
            }
            $(fn is_identity(&self) -> bool {
                $ident
            })?
            $(fn instance_name(&self) -> Option<$crate::kinds::instance::InstanceName> {
                Some($naming)
            })?
            $(fn references(&self) -> Option<$crate::kinds::References> {
                Some($refs)
            })?
            fn schema(&self, g: &mut schemars::SchemaGenerator) -> schemars::Schema {
                $crate::kinds::tagged_schema::<$spec>(g, $tn)
            }
            $(fn import(
                &self,
                id: &str,
                have: &serde_json::Value,
                src: &$crate::kinds::import::Source<'_>,
            ) -> Option<$crate::kinds::import::Imported> {
                $import(id, have, src)
            }
            $(fn import_children(&self, id: &str, have: &serde_json::Value) -> $crate::kinds::import::Children {
                $children(id, have)
            })?)?
            fn parse(
                &self,
                node: &$crate::model::yaml::Node,
            ) -> Result<Box<dyn $crate::kinds::Spec>, $crate::model::de::DeError> {
                $crate::model::de::from_node::<$spec>(node)
                    .map(|s| Box::new(s) as Box<dyn $crate::kinds::Spec>)
            }
        }
    };
}
pub(crate) use kind;

/// One declared (or expanded) resource.
#[derive(Debug)]
pub struct Decl {
    pub logical: Sp<String>,
    pub kind: &'static dyn Kind,
    pub spec: Box<dyn Spec>,
    /// The logical name of the resource this one was expanded from.
    pub expanded_from: Option<String>,
}

/// What a kind's validation can see: every declaration, and where to report.
pub struct Cx<'a> {
    pub decls: &'a [Decl],
    /// Logical name → position in `decls`.
    pub index: &'a std::collections::HashMap<String, usize>,
    pub diags: &'a mut Vec<Diag>,
    /// Directory of the plan file; relative file paths resolve against it.
    pub base_dir: &'a Path,
    /// Directories outside `base_dir` that file paths may lead into (`--allow-files-outside`).
    pub allow_outside: &'a [std::path::PathBuf],
    /// `true` for plan/apply: an unavailable secret source is an error, not a warning.
    pub strict: bool,
    /// The logical name of the resource being validated.
    pub me: &'a str,
}

impl Cx<'_> {
    pub fn push(&mut self, d: Diag) {
        self.diags.push(d);
    }

    pub fn decl(&self, logical: &str) -> Option<&Decl> {
        self.index.get(logical).and_then(|&i| self.decls.get(i))
    }

    /// Check a literal name against a rule; names built from `${...}` are checked at apply.
    pub fn name_rule(&mut self, name: &Sp<String>, code: Code, rule: impl Fn(&str) -> Rule) {
        if refs::has_expr(name) {
            return;
        }
        if let Err(why) = rule(name) {
            self.push(Diag::error(code, name.span, format!("invalid name `{}`: {why}", name.value)).label("this name"));
        }
    }

    /// Check a location against the known regions.
    pub fn location(&mut self, loc: &Option<Sp<String>>) {
        if let Some(l) = loc {
            check_location(l, self.diags);
        }
    }

    /// Refuse a file path that leads outside the plan's directory (and the allowed ones);
    /// `true` when it was refused. `what` names the field, e.g. `blob source`.
    pub fn file_outside(&mut self, path: &Sp<String>, what: &str) -> bool {
        use crate::model::files::{Confined, confine, template_escapes};
        if refs::has_expr(path) && template_escapes(&path.value) {
            self.push(
                Diag::error(
                    Code::FileOutsidePlan,
                    path.span,
                    format!("{what} `{}` holds a reference, and is absolute or climbs with `..`", path.value),
                )
                .label("may lead outside the plan's directory")
                .help("a path built with ${...} must stay below the plan's directory: no leading `/`, no `..`"),
            );
            return true;
        }
        let outside = if refs::has_expr(path) {
            None
        } else {
            match confine(self.base_dir, self.allow_outside, &path.value) {
                Confined::Inside => None,
                Confined::Outside(to) => Some(to),
            }
        };
        let Some(to) = outside else { return false };
        // Shown relative to the working directory when it is below it, as paths are in output.
        let cwd = std::env::current_dir().and_then(|d| d.canonicalize()).unwrap_or_default();
        let to = to.strip_prefix(&cwd).map_or(to.clone(), std::path::Path::to_path_buf);
        self.push(
            Diag::error(
                Code::FileOutsidePlan,
                path.span,
                format!("{what} `{}` leads outside the plan's directory, to `{}`", path.value, to.display()),
            )
            .label("outside the plan's directory")
            .help("keep the files a plan uses next to it, or pass --allow-files-outside DIR for a directory you trust"),
        );
        true
    }

    /// Check a secret's source is available.
    pub fn secret(&mut self, s: &Secret) {
        if let Secret::File(path) = s
            && self.file_outside(path, "secret file")
        {
            return;
        }
        let diag = match s {
            Secret::Env(name) => (std::env::var_os(&name.value).is_none()).then(|| {
                (
                    name.span,
                    format!("environment variable `{}` is not set", name.value),
                    "set it before `plan` or `apply`, or use { generate: LENGTH }",
                )
            }),
            Secret::File(path) => (!self.base_dir.join(&path.value).is_file()).then(|| {
                (
                    path.span,
                    format!("secret file `{}` does not exist", path.value),
                    "paths are relative to the plan file",
                )
            }),
            Secret::Generate(_) => None,
        };
        if let Some((span, msg, help)) = diag {
            let d = if self.strict {
                Diag::error(Code::SecretUnavailable, span, msg)
            } else {
                Diag::warning(Code::SecretUnavailable, span, msg)
            };
            self.push(d.label("unavailable").help(help));
        }
    }

    /// Check tags against Azure's limits.
    pub fn tags(&mut self, tags: &Option<SpMap<Sp<String>>>, max_name: usize) {
        let Some(tags) = tags else { return };
        if tags.len() > 49 {
            let span = tags.0.first().map_or(Span::default(), |(k, _)| k.span);
            self.push(
                Diag::error(
                    Code::Tags,
                    span,
                    format!("{} tags: Azure allows 50 per resource, and idlab uses one", tags.len()),
                )
                .label("too many tags"),
            );
        }
        for (k, v) in tags.iter() {
            let bad = k.value.chars().find(|c| "<>%&\\?/".contains(*c));
            let problem = if k.value.eq_ignore_ascii_case("idlab-plan") {
                Some("`idlab-plan` is set by idlab itself".to_string())
            } else if let Some(c) = bad {
                Some(format!("a tag name may not hold {c:?}"))
            } else if k.value.is_empty() || k.value.chars().count() > max_name {
                Some(format!("a tag name must be 1 to {max_name} characters long"))
            } else {
                None
            };
            if let Some(p) = problem {
                self.push(Diag::error(Code::Tags, k.span, format!("invalid tag `{}`: {p}", k.value)).label("this tag"));
            }
            if v.value.chars().count() > 256 {
                self.push(
                    Diag::error(Code::Tags, v.span, format!("the value of tag `{}` is over 256 characters", k.value))
                        .label("too long"),
                );
            }
        }
    }

    /// Resolve a field that must be exactly one reference to a resource of one of `kinds`.
    /// Returns the referenced declaration when it is valid.
    pub fn reference(&mut self, field: &str, value: &Sp<String>, kinds: &[&str]) -> Option<&Decl> {
        let expr = self.whole_ref(field, value, kinds)?;
        let decl = self.index.get(expr.root()).and_then(|&i| self.decls.get(i))?;
        if !kinds.contains(&decl.kind.type_name()) {
            self.diags.push(
                Diag::error(
                    Code::WrongReferenceKind,
                    expr.span,
                    format!(
                        "`{field}` must reference a {}, but `{}` is a {}",
                        kinds.join(" or a "),
                        expr.root(),
                        decl.kind.type_name()
                    ),
                )
                .label(format!("a {}", decl.kind.type_name())),
            );
            return None;
        }
        Some(decl)
    }

    /// Parse a field that must be exactly `${name}` or `${name.id}`.
    fn whole_ref(&mut self, field: &str, value: &Sp<String>, kinds: &[&str]) -> Option<Expr> {
        let pieces = refs::parse_template(value, OffsetMap::new(value.span, value.value.len())).ok()?;
        match refs::whole_expr(&pieces) {
            Some(e) if e.path.len() == 1 || e.attr() == "id" => Some(e.clone()),
            Some(e) if matches!(e.root(), "caller" | "var" | "env") => None,
            Some(e) => {
                self.diags.push(
                    Diag::error(
                        Code::BadReference,
                        e.span,
                        format!("`{field}` takes a whole resource, like `${{{}}}`", e.root()),
                    )
                    .label("an attribute, not a resource"),
                );
                None
            }
            None => {
                self.diags.push(
                    Diag::error(
                        Code::BadReference,
                        value.span,
                        format!("`{field}` must be a reference to a {}, like `${{name}}`", kinds.join(" or ")),
                    )
                    .label("not a reference"),
                );
                None
            }
        }
    }

    /// Check a principal field: a user-assigned identity, a VM's system identity
    /// (`${vm.identity}`), the deploying principal (`${caller}`), or a literal object id.
    pub fn principal(&mut self, field: &str, value: &Sp<String>) {
        let Ok(pieces) = refs::parse_template(value, OffsetMap::new(value.span, value.value.len())) else {
            return;
        };
        let Some(e) = refs::whole_expr(&pieces) else {
            if !refs::has_expr(value) && !names::is_guid(value) {
                self.push(
                    Diag::error(
                        Code::PrincipalNotIdentity,
                        value.span,
                        format!("`{field}` must be an identity or an object id (GUID)"),
                    )
                    .label("not a principal")
                    .help("use ${identity}, ${vm.identity} or ${caller}, or an object id"),
                );
            }
            return;
        };
        let attr = e.attr();
        if e.root() == "caller" {
            if !matches!(attr.as_str(), "" | "object_id") {
                self.push(
                    Diag::error(Code::PrincipalNotIdentity, e.span, format!("`{}` is not a principal", e.text()))
                        .label("not a principal")
                        .help("use ${caller} or ${caller.object_id}"),
                );
            }
            return;
        }
        let Some(decl) = self.decl(e.root()) else { return };
        let kind = decl.kind;
        let problem = if kind.is_identity() {
            (!matches!(attr.as_str(), "" | "id" | "principal_id"))
                .then(|| format!("`{}` is not a principal: the identity's principal is `${{{}}}`", e.text(), e.root()))
        } else if let Some(vmi) = decl.spec.vm_identity() {
            if !matches!(attr.as_str(), "identity" | "identity.principal_id") {
                Some(format!(
                    "`{}` is a virtual machine, not an identity: its system identity is `${{{}.identity}}`",
                    e.text(),
                    e.root()
                ))
            } else if !vmi.system_assigned {
                Some(format!("virtual machine `{}` has no system-assigned identity", e.root()))
            } else {
                None
            }
        } else {
            Some(format!("`{}` is a {}, not an identity", e.root(), kind.type_name()))
        };
        if let Some(msg) = problem {
            self.push(
                Diag::error(Code::PrincipalNotIdentity, e.span, msg)
                    .label("not a principal")
                    .help("a principal is a user_assigned_identity, ${vm.identity} (with system_assigned: true), ${caller} or an object id"),
            );
        }
    }
}

/// Check one location value, with a suggestion for near misses.
pub fn check_location(l: &Sp<String>, diags: &mut Vec<Diag>) {
    if refs::has_expr(l) {
        return;
    }
    let norm = names::normalize_location(l);
    if names::LOCATIONS.binary_search(&norm.as_str()).is_err() {
        let mut d =
            Diag::error(Code::Location, l.span, format!("unknown Azure region `{}`", l.value)).label("not a region");
        if let Some(s) = crate::model::diag::suggest(&norm, names::LOCATIONS.iter().copied()) {
            d = d.help(format!("did you mean `{s}`?"));
        }
        diags.push(d);
    }
}

/// The identity key for an ARM resource under a resource group: (type, group, name).
pub fn arm_key(arm_type: &str, rg: &Sp<String>, name: &Sp<String>) -> String {
    format!("{arm_type}|{}|{}", rg.value.to_ascii_lowercase(), name.value.to_ascii_lowercase())
}

/// The identity key for a child object: (type, parent, name).
pub fn child_key(type_name: &str, parent: &Sp<String>, name: &str) -> String {
    format!("{type_name}|{}|{}", parent.value.to_ascii_lowercase(), name.to_ascii_lowercase())
}

impl Cx<'_> {
    /// Check a `resource_group` field: `${rg}` (a declared resource group) or a literal
    /// name of a group the plan does not manage.
    pub fn resource_group(&mut self, rg: &Sp<String>) {
        if refs::has_expr(rg) {
            self.reference("resource_group", rg, &["resource_group"]);
        } else {
            self.name_rule(rg, Code::ResourceGroupName, names::resource_group);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_sorted_and_unique() {
        let names: Vec<&str> = KINDS.iter().map(|k| k.type_name()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
    }

    #[test]
    fn every_kind_exports_id() {
        for k in KINDS {
            assert!(k.attributes().contains(&"id"), "{}", k.type_name());
            assert!(k.weight() > 0);
        }
    }
}
