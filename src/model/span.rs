//! Byte spans and the `Sp<T>` wrapper that carries one next to a typed value.
//!
//! Imports: serde, schemars. No I/O.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::{Serialize, Serializer};

/// A byte range in a plan file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
}

impl Span {
    pub const fn new(offset: usize, len: usize) -> Span {
        Span { offset, len }
    }

    pub fn end(&self) -> usize {
        self.offset + self.len
    }

    /// A sub-span `[start, start+len)` relative to this one, clamped to it.
    pub fn sub(&self, start: usize, len: usize) -> Span {
        let start = start.min(self.len);
        Span::new(self.offset + start, len.min(self.len - start))
    }
}

/// The newtype name our own `Node` deserializer recognises to hand over a span.
pub(crate) const SPAN_MARKER: &str = "$idlab::Sp";

/// A value together with the span of its text in the plan file.
///
/// Serializes as the bare value; deserializes with its span only through the model's own
/// deserializer (any other deserializer yields an empty span).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Sp<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Sp<T> {
    pub fn new(value: T, span: Span) -> Sp<T> {
        Sp { value, span }
    }
}

impl<T> std::ops::Deref for Sp<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Sp<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<T: Serialize> Serialize for Sp<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SpVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for SpVisitor<T> {
            type Value = Sp<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Sp<T>, A::Error> {
                let offset: usize = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let len: usize = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let value: T = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(2, &self))?;
                Ok(Sp::new(value, Span::new(offset, len)))
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Sp<T>, D::Error> {
                T::deserialize(d).map(|v| Sp::new(v, Span::default()))
            }
        }
        d.deserialize_newtype_struct(SPAN_MARKER, SpVisitor(std::marker::PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        T::json_schema(generator)
    }
}
