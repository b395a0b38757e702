//! What a kind needs to build its ARM request: the values of other resources' attributes
//! known so far (ids are known from the plan; principal ids only once the identity exists),
//! and the plan's context. Pure: no I/O.

use std::collections::HashMap;

use serde_json::Value;

use crate::model::refs::{self, OffsetMap, Piece};
use crate::model::{Secret, Sp};

/// Shown wherever a value exists only after apply.
pub const UNKNOWN: &str = "(known after apply)";

/// The context of one resource's request.
pub struct Env<'a> {
    pub subscription: &'a str,
    pub plan: &'a str,
    /// The plan's default location.
    pub location: &'a str,
    /// The logical name of the resource being built.
    pub logical: &'a str,
    /// (logical name, attribute) → value, for every value known so far.
    pub values: &'a HashMap<(String, String), String>,
    /// The deploying principal.
    pub caller_object_id: Option<&'a str>,
    pub tenant_id: Option<&'a str>,
    /// The plan file's directory: files a resource reads (blob sources) resolve against it.
    pub base_dir: &'a std::path::Path,
}

/// A value that may not be known yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Known(String),
    Unknown,
}

impl Val {
    pub fn or_unknown(&self) -> String {
        match self {
            Val::Known(s) => s.clone(),
            Val::Unknown => UNKNOWN.to_string(),
        }
    }
    pub fn known(&self) -> Option<&str> {
        match self {
            Val::Known(s) => Some(s),
            Val::Unknown => None,
        }
    }
}

impl Env<'_> {
    /// Resolve a plan string: literal text and `${...}` references.
    pub fn resolve(&self, s: &Sp<String>) -> Val {
        self.resolve_str(&s.value)
    }

    pub fn resolve_str(&self, s: &str) -> Val {
        let Ok(pieces) = refs::parse_template(s, OffsetMap::new(crate::model::Span::new(0, s.len()), s.len())) else {
            return Val::Known(s.to_string());
        };
        let mut out = String::new();
        for p in pieces {
            match p {
                Piece::Lit(l) => out.push_str(&l),
                Piece::Expr(e) => {
                    let v = match e.root() {
                        "caller" => match e.attr().as_str() {
                            "" | "object_id" => self.caller_object_id.map(str::to_string),
                            "tenant_id" => self.tenant_id.map(str::to_string),
                            _ => None,
                        },
                        root => {
                            let attr = e.attr();
                            let attr = if attr.is_empty() { "id".to_string() } else { attr };
                            self.values.get(&(root.to_string(), attr)).cloned()
                        }
                    };
                    match v {
                        Some(v) => out.push_str(&v),
                        None => return Val::Unknown,
                    }
                }
            }
        }
        Val::Known(out)
    }

    /// A principal field: the object id of an identity, a VM's system identity, the caller,
    /// or a literal object id.
    pub fn principal(&self, s: &Sp<String>) -> Val {
        let v = &s.value;
        let pieces =
            refs::parse_template(v, OffsetMap::new(crate::model::Span::new(0, v.len()), v.len())).unwrap_or_default();
        if let Some(e) = refs::whole_expr(&pieces) {
            let attr = e.attr();
            let key = match attr.as_str() {
                "" | "id" | "principal_id" => "principal_id",
                "identity" | "identity.principal_id" => "identity.principal_id",
                other => other,
            };
            if e.root() == "caller" {
                return self.caller_object_id.map_or(Val::Unknown, |c| Val::Known(c.to_string()));
            }
            return self
                .values
                .get(&(e.root().to_string(), key.to_string()))
                .map_or(Val::Unknown, |x| Val::Known(x.clone()));
        }
        self.resolve(s)
    }

    /// The resource group id for a `resource_group` field (a reference or a literal name).
    pub fn group_id(&self, rg: &Sp<String>) -> Val {
        if refs::has_expr(rg) {
            self.resolve(rg)
        } else {
            Val::Known(format!("/subscriptions/{}/resourceGroups/{}", self.subscription, rg.value))
        }
    }

    /// `location`, else the plan's default.
    pub fn location(&self, l: &Option<Sp<String>>) -> String {
        let raw = l.as_ref().map_or_else(|| self.location.to_string(), |l| self.resolve(l).or_unknown());
        crate::model::names::normalize_location(&raw)
    }

    /// The tags a resource carries: the user's, plus `idlab-plan`.
    pub fn tags(&self, user: &Option<crate::model::SpMap<Sp<String>>>) -> Value {
        let mut m = serde_json::Map::new();
        if let Some(t) = user {
            for (k, v) in t.iter() {
                m.insert(k.value.clone(), Value::String(self.resolve(v).or_unknown()));
            }
        }
        m.insert(OWNER_TAG.to_string(), Value::String(self.plan.to_string()));
        Value::Object(m)
    }
}

/// The tag every resource a plan owns carries.
pub const OWNER_TAG: &str = "idlab-plan";

/// When the environment may be swept (UTC, RFC 3339): `apply --expires-after` or the plan's
/// `expires_after`. Set on owned resource groups and owned resources outside them.
pub const EXPIRES_TAG: &str = "idlab-expires";
/// When the resource was created by idlab (UTC, RFC 3339).
pub const CREATED_TAG: &str = "idlab-created";
/// The object id of the principal that created it.
pub const APPLIED_BY_TAG: &str = "idlab-applied-by";
/// The instance of a fleet a resource belongs to (`idlab list` shows it).
pub const INSTANCE_TAG: &str = "idlab-instance";
/// The lifecycle tags: set on create, kept on later applies, never drift.
pub const LIFECYCLE_TAGS: [&str; 3] = [EXPIRES_TAG, CREATED_TAG, APPLIED_BY_TAG];

/// A duration as written in `expires_after` and `--expires-after`: a whole number and a unit,
/// `s`, `m`, `h`, `d` or `w`, or several (`1d12h`). Answers seconds.
///
/// ```
/// use idlab::kinds::env::parse_duration;
/// assert_eq!(parse_duration("90m"), Ok(5400));
/// assert_eq!(parse_duration("1d12h"), Ok(129600));
/// assert!(parse_duration("soon").is_err());
/// assert!(parse_duration("").is_err());
/// ```
///
/// # Errors
/// What is wrong with it.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || {
        format!("`{}` is not a duration: write a number and a unit (s, m, h, d, w), e.g. 8h or 1d12h", s.escape_debug())
    };
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n.checked_mul(unit).and_then(|x| total.checked_add(x)).ok_or_else(bad)?;
    }
    if !digits.is_empty() || total == 0 {
        return Err(bad());
    }
    // Beyond ten years is a mistake, and keeps the timestamp arithmetic far from overflow.
    if total > 10 * 366 * 86_400 {
        return Err(format!("`{}` is longer than ten years", s.escape_debug()));
    }
    Ok(total)
}

/// The metadata key that marks a blob container as the plan's (metadata names must be
/// identifiers, so not the tag's name).
pub const OWNER_METADATA: &str = "idlab_plan";

/// How a resource is marked as the plan's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The `idlab-plan` tag.
    Tag,
    /// The `idlab_plan` metadata entry (resources without tags: blob containers).
    Metadata,
    /// The description `idlab plan NAME` (role assignments).
    Description,
    /// No mark of its own: the resource belongs to the plan when its parent (the declared
    /// resource whose id its own id extends) does. For child resources without tags or
    /// metadata, such as a SQL server's Entra admin or a vault's access-policy entry; they go
    /// with their parent on destroy.
    Parent,
}

impl Owner {
    /// A JSON pointer to the mark holding the plan name, for marks that hold only that.
    pub fn pointer(self) -> Option<String> {
        match self {
            Owner::Tag => Some(format!("/tags/{OWNER_TAG}")),
            Owner::Metadata => Some(format!("/properties/metadata/{OWNER_METADATA}")),
            Owner::Description | Owner::Parent => None,
        }
    }
}

/// A `checkNameAvailability` request: `POST {path}?api-version={api}` with `body`. Most
/// providers answer `{nameAvailable, reason, message}`; the SQL provider answers
/// `{name, available, reason, message}`. [`NameCheck::refusal`] reads both.
#[derive(Debug, Clone)]
pub struct NameCheck {
    pub path: String,
    pub api_version: &'static str,
    pub body: Value,
    /// The name, for messages.
    pub name: String,
}

impl NameCheck {
    /// Why the name cannot be used, `(reason, message)`, or `None` when the answer says it is
    /// free (or says nothing about it).
    ///
    /// ```
    /// use idlab::kinds::env::NameCheck;
    /// use serde_json::json;
    /// let arm = json!({"nameAvailable": false, "reason": "AlreadyExists", "message": "taken"});
    /// let sql = json!({"name": "s", "available": false, "reason": "Invalid", "message": "bad"});
    /// assert_eq!(NameCheck::refusal(&arm), Some(("AlreadyExists".into(), "taken".into())));
    /// assert_eq!(NameCheck::refusal(&sql), Some(("Invalid".into(), "bad".into())));
    /// assert_eq!(NameCheck::refusal(&json!({"name": "s", "available": true})), None);
    /// ```
    pub fn refusal(answer: &Value) -> Option<(String, String)> {
        let available = answer.get("nameAvailable").or_else(|| answer.get("available")).and_then(Value::as_bool);
        if available != Some(false) {
            return None;
        }
        let text = |k: &str| answer.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let reason = text("reason");
        Some((if reason.is_empty() { "unavailable".into() } else { reason }, text("message")))
    }
}

/// What a kind wants ARM to hold.
#[derive(Debug, Clone)]
pub struct Desired {
    /// The resource id (may hold [`UNKNOWN`] when it depends on values known after apply).
    pub id: String,
    pub api_version: &'static str,
    /// The full request body of a create (secrets left out; see `secrets`).
    pub body: Value,
    /// JSON pointers into the body where a secret goes, filled by the engine at create.
    pub secrets: Vec<(String, Secret)>,
    /// Top-level fields whose change forces a replace, with the reason.
    pub immutable: Vec<(&'static str, &'static str)>,
    /// Where the plan's ownership mark lives.
    pub owner: Owner,
    /// Role assignments to a principal this plan creates: `PrincipalNotFound` is replication
    /// lag, retried within the principal window. Any other principal fails fast.
    pub principal_from_plan: bool,
    /// Which service reads and writes it.
    pub plane: Plane,
    /// Deleting it soft-deletes it (key vaults, secrets): a deleted copy blocks the name until
    /// it is recovered or purged.
    pub soft_delete: bool,
    /// Fields that compare beyond equality, as real Azure answers them: `(path, rule)`, the
    /// path `/`-separated as in a plan's changes (`properties/sku/name`).
    pub lenient: Vec<(&'static str, Lenient)>,
    /// Fields the plan wants absent (`/`-separated paths the desired body leaves out): a value
    /// Azure holds there is a change, which the update clears by leaving the field out.
    pub cleared: Vec<&'static str>,
}

/// How a field of a desired body may differ in what Azure answers and still be the same.
#[derive(Debug, Clone, PartialEq)]
pub enum Lenient {
    /// Azure leaves the field out of its answers while it holds this value (its default):
    /// absent counts as this value.
    Absent(Value),
    /// Azure answers the value in a case of its own (`Premium` for `premium`).
    AnyCase,
}

impl Lenient {
    /// Whether `have` (what Azure answered at the path, `None` when absent) is `want`.
    pub fn same(&self, want: &Value, have: Option<&Value>) -> bool {
        match (self, have) {
            (Lenient::Absent(d), None | Some(Value::Null)) => d == want,
            (Lenient::AnyCase, Some(Value::String(h))) => want.as_str().is_some_and(|w| w.eq_ignore_ascii_case(h)),
            _ => false,
        }
    }
}

/// Where a resource lives: ARM, or a data plane reached through the resource it sits in.
/// The engine dispatches reads, writes and deletes on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// An ARM resource: `GET`/`PUT`/`DELETE` on its id.
    Arm,
    /// A block blob (`{container id}/blobs/{name}`), through the Blob service.
    Blob,
    /// A Data Lake folder's ACL entries (`{store id}/folders{path}`), through WebHDFS.
    DataLake,
    /// A Key Vault secret (`{vault id}/secrets/{name}`), through the vault's data plane.
    Secret,
    /// One principal's access-policy entry on a vault (`{vault id}/accessPolicies/{object
    /// id}`), read from the vault and changed through `accessPolicies/add|remove`.
    AccessPolicy,
}

impl Desired {
    /// An ARM resource with the defaults: no secrets, nothing immutable, owned through the
    /// `idlab-plan` tag, no principal window, no soft delete. A kind states only what
    /// differs (`Desired { owner: Owner::Metadata, ..Desired::new(id, api, body) }`).
    pub fn new(id: String, api_version: &'static str, body: Value) -> Desired {
        Desired {
            id,
            api_version,
            body,
            secrets: Vec::new(),
            immutable: Vec::new(),
            owner: Owner::Tag,
            principal_from_plan: false,
            plane: Plane::Arm,
            soft_delete: false,
            lenient: Vec::new(),
            cleared: Vec::new(),
        }
    }

    /// Whether everything needed to send the request is known.
    pub fn is_known(&self) -> bool {
        !self.id.contains(UNKNOWN) && !self.body.to_string().contains(UNKNOWN)
    }
}
