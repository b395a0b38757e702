//! The typed plan document: the top-level sections and the value types every kind shares
//! (secrets, maps with spans, verify checks). Resource kinds live in `kinds/`.
//!
//! These types derive both `Deserialize` (read from the spanned tree by `model::de`) and
//! `JsonSchema` (the published `schemas/plan.schema.json`), so the two cannot drift.
//!
//! Imports: model::span, serde, schemars. No I/O.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Serialize, Serializer};

use super::span::Sp;

/// The whole plan file. `R` is the resource schema, supplied by the layer that knows the
/// kind registry (the model is a leaf and does not).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "idlab plan",
    description = "A declarative Azure managed-identity environment (see docs/plan-language.md)."
)]
pub struct PlanDoc<R> {
    /// The plan's name. Every resource the plan creates is tagged `idlab-plan: <name>`.
    pub name: Sp<String>,
    /// Subscription id (a GUID) or `${env.NAME}`. When absent: `--subscription`, then
    /// `AZURE_SUBSCRIPTION_ID`, then (with `--local`) the local cloud's own.
    #[serde(default)]
    pub subscription: Option<Sp<String>>,
    /// Default Azure region for resources that do not set `location`.
    pub location: Sp<String>,
    /// How long an environment lives after it is created, e.g. `8h`, `3d`: `apply` sets the
    /// `idlab-expires` tag (UTC) on the groups and top-level resources it creates, and
    /// `idlab sweep` destroys it once that time has passed. `apply --expires-after` overrides
    /// it and resets the time.
    #[serde(default)]
    pub expires_after: Option<Sp<String>>,
    /// Variables, used as `${var.NAME}`; overridable with `--var k=v` and `--var-file`.
    #[serde(default)]
    pub variables: SpMap<VariableDecl>,
    /// Values `idlab output` prints after apply, e.g. `${id1.client_id}`.
    #[serde(default)]
    pub outputs: SpMap<Sp<OrStr<OutputFull>>>,
    /// Logical resource name → resource. Names are letters, digits, `_` and `-`.
    pub resources: SpMap<R>,
    /// The tutorials' "access data" checks, run by `idlab verify` as a VM's identity.
    #[serde(default)]
    pub verify: SpMap<Check>,
}

/// A mapping whose keys keep their spans, in document order.
#[derive(Debug, Clone)]
pub struct SpMap<V>(pub Vec<(Sp<String>, V)>);

impl<V> Default for SpMap<V> {
    fn default() -> Self {
        SpMap(Vec::new())
    }
}

impl<V> SpMap<V> {
    pub fn iter(&self) -> impl Iterator<Item = &(Sp<String>, V)> {
        self.0.iter()
    }
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k.value == key).map(|(_, v)| v)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for SpMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = SpMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_unit<E: de::Error>(self) -> Result<SpMap<V>, E> {
                Ok(SpMap::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<SpMap<V>, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = m.next_key::<Sp<String>>()? {
                    out.push((k, m.next_value()?));
                }
                Ok(SpMap(out))
            }
        }
        d.deserialize_map(V2(PhantomData))
    }
}

impl<V: Serialize> Serialize for SpMap<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(&k.value, v)?;
        }
        m.end()
    }
}

impl<V: JsonSchema> JsonSchema for SpMap<V> {
    fn schema_name() -> Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let v = g.subschema_for::<V>();
        json_schema!({ "type": "object", "additionalProperties": v })
    }
}

/// Either a plain string (the short form) or a mapping `T` (the long form).
#[derive(Debug, Clone)]
pub enum OrStr<T> {
    Str(String),
    Full(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OrStr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V2<T> {
            type Value = OrStr<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a mapping")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OrStr<T>, E> {
                Ok(OrStr::Str(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<OrStr<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(m)).map(OrStr::Full)
            }
        }
        d.deserialize_any(V2(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for OrStr<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("String_or_{}", T::schema_name()).into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let t = g.subschema_for::<T>();
        json_schema!({ "anyOf": [ { "type": "string" }, t ] })
    }
}

/// The long form of an output.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputFull {
    /// The value, usually a reference such as `${kv.uri}`.
    pub value: Sp<String>,
    /// What the value is for.
    #[serde(default)]
    pub description: Option<String>,
}

/// A variable: a scalar default (short form) or `{ default, description }`.
///
/// Variables are resolved on the YAML tree before typing, so this type exists for the schema.
#[derive(Debug, Clone)]
pub struct VariableDecl;

impl<'de> Deserialize<'de> for VariableDecl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::IgnoredAny::deserialize(d).map(|_| VariableDecl)
    }
}

impl JsonSchema for VariableDecl {
    fn schema_name() -> Cow<'static, str> {
        "Variable".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A variable: its default value, or a mapping with `default` and `description`. A variable without a default must be set with --var or --var-file.",
            "anyOf": [
                { "type": ["string", "integer", "number", "boolean"] },
                {
                    "type": "object",
                    "properties": {
                        "default": { "type": ["string", "integer", "number", "boolean"] },
                        "description": { "type": "string" }
                    },
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// A secret value. Never written inline: it comes from the environment, a file, or is
/// generated once at create time (and never shown).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[schemars(extend("x-idlab-help" = "secrets are never written inline: use { env: NAME }, { file: PATH } or { generate: LENGTH }"))]
pub enum Secret {
    /// Read from this environment variable when the plan is applied.
    Env(Sp<String>),
    /// Read from this file (relative to the plan file) when the plan is applied.
    File(Sp<String>),
    /// A strong random value of this many characters, created once and never shown.
    Generate(#[schemars(range(min = 12, max = 256))] Sp<u32>),
}

/// What a verify check expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// The access succeeds (default).
    Allowed,
    /// The access is refused (403): a negative check.
    Denied,
}

/// One "access data" check, performed from a VM with one of its managed identities.
///
/// Exactly one action field (`read_resource`, `write_resource`, `read_blob`, `blob_sas`,
/// `list_keys`, `read_secret`, `data_lake`, `sql_login`) is set.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// The VM whose managed-identity endpoint issues the token, e.g. `${vm}`.
    pub vm: Sp<String>,
    /// `system` (the default) for the VM's system-assigned identity, or a reference to one of
    /// its user-assigned identities (the token is requested with that identity's client id).
    #[serde(default)]
    pub identity: Option<Sp<String>>,
    /// `allowed` (default) or `denied` for a negative check.
    #[serde(default)]
    pub expect: Option<Sp<Expect>>,
    /// Read this ARM resource with a Resource Manager token (tutorials: "access Resource Manager").
    #[serde(default)]
    pub read_resource: Option<Sp<String>>,
    /// Try to write (PATCH tags of) this ARM resource with a Resource Manager token.
    #[serde(default)]
    pub write_resource: Option<Sp<String>>,
    /// Read this blob with a storage token (tutorial "Storage").
    #[serde(default)]
    pub read_blob: Option<Sp<String>>,
    /// Get a SAS for this container through listServiceSas, then upload and download a blob
    /// with it (tutorial "Storage via SAS").
    #[serde(default)]
    pub blob_sas: Option<Sp<String>>,
    /// Ask for this storage account's keys (`listKeys`) with a Resource Manager token; the
    /// keys are never shown. Usually with `expect: denied`, for a least-privilege role.
    #[serde(default)]
    pub list_keys: Option<Sp<String>>,
    /// Read this Key Vault secret with a vault token; the value is compared, never printed.
    #[serde(default)]
    pub read_secret: Option<Sp<String>>,
    /// List this Data Lake folder and upload a file into it.
    #[serde(default)]
    pub data_lake: Option<Sp<String>>,
    /// Get an Azure SQL token for signing in to this database (token-only: TDS is not spoken).
    #[serde(default)]
    pub sql_login: Option<Sp<String>>,
}

impl Check {
    /// The action fields that are set: (field name, target reference).
    pub fn actions(&self) -> Vec<(&'static str, &Sp<String>)> {
        [
            ("read_resource", &self.read_resource),
            ("write_resource", &self.write_resource),
            ("read_blob", &self.read_blob),
            ("blob_sas", &self.blob_sas),
            ("list_keys", &self.list_keys),
            ("read_secret", &self.read_secret),
            ("data_lake", &self.data_lake),
            ("sql_login", &self.sql_login),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.as_ref().map(|v| (n, v)))
        .collect()
    }
}
