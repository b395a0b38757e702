//! A serde `Deserializer` over the spanned [`Node`] tree, so typed plan structs receive
//! `Sp<T>` values that point at their exact text.
//!
//! The structural pass (`model::structure`) has already reported every shape problem, so an
//! error here is rare; when it happens it still carries the span of the offending node.
//!
//! Imports: serde, model::yaml, model::span. No I/O.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, VariantAccess, Visitor,
};

use super::span::{SPAN_MARKER, Span};
use super::yaml::{Node, Value};

/// A deserialization error at a span.
#[derive(Debug, Clone)]
pub struct DeError {
    pub message: String,
    pub span: Option<Span>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError { message: msg.to_string(), span: None }
    }
}

impl DeError {
    fn at(self, span: Span) -> DeError {
        DeError { span: self.span.or(Some(span)), ..self }
    }
}

/// Deserialize a typed value from a node.
///
/// # Errors
/// A [`DeError`] naming the span of the node that did not fit.
pub fn from_node<'de, T: de::Deserialize<'de>>(node: &'de Node) -> Result<T, DeError> {
    T::deserialize(node).map_err(|e| e.at(node.span))
}

impl<'de> Deserializer<'de> for &'de Node {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::Str(s) => visitor.visit_borrowed_str(s),
            Value::Seq(items) => visitor.visit_seq(Seq { iter: items.iter() }),
            Value::Map(entries) => visitor.visit_map(Map { iter: entries.iter(), value: None }),
        };
        r.map_err(|e| e.at(self.span))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        if name == SPAN_MARKER {
            return visitor.visit_seq(SpanSeq { node: self, step: 0 });
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.value {
            Value::Str(_) => visitor.visit_enum(Enum { tag: self, body: None }),
            Value::Map(entries) if entries.len() == 1 => {
                visitor.visit_enum(Enum { tag: &entries[0].0, body: Some(&entries[0].1) })
            }
            other => Err(DeError {
                message: format!("expected a string or a mapping with one key, found {}", other.type_name()),
                span: Some(self.span),
            }),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

struct Seq<'de> {
    iter: std::slice::Iter<'de, Node>,
}

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        match self.iter.next() {
            Some(n) => seed.deserialize(n).map(Some).map_err(|e| e.at(n.span)),
            None => Ok(None),
        }
    }
}

struct Map<'de> {
    iter: std::slice::Iter<'de, (Node, Node)>,
    value: Option<&'de Node>,
}

impl<'de> MapAccess<'de> for Map<'de> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(k).map(Some).map_err(|e| e.at(k.span))
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let v =
            self.value.take().ok_or_else(|| DeError { message: "value requested before key".into(), span: None })?;
        seed.deserialize(v).map_err(|e| e.at(v.span))
    }
}

/// Hands `(offset, len, value)` to `Sp<T>`'s visitor.
struct SpanSeq<'de> {
    node: &'de Node,
    step: u8,
}

impl<'de> SeqAccess<'de> for SpanSeq<'de> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let step = self.step;
        self.step += 1;
        match step {
            0 => seed.deserialize(self.node.span.offset.into_deserializer()).map(Some),
            1 => seed.deserialize(self.node.span.len.into_deserializer()).map(Some),
            2 => seed.deserialize(self.node).map(Some),
            _ => Ok(None),
        }
    }
}

struct Enum<'de> {
    tag: &'de Node,
    body: Option<&'de Node>,
}

impl<'de> EnumAccess<'de> for Enum<'de> {
    type Error = DeError;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let v = seed.deserialize(self.tag).map_err(|e| e.at(self.tag.span))?;
        Ok((v, self))
    }
}

impl<'de> VariantAccess<'de> for Enum<'de> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        match self.body {
            None => Ok(()),
            Some(n) if n.value == Value::Null => Ok(()),
            Some(n) => Err(DeError { message: "this variant takes no value".into(), span: Some(n.span) }),
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        match self.body {
            Some(n) => seed.deserialize(n),
            None => Err(DeError { message: "this variant needs a value".into(), span: Some(self.tag.span) }),
        }
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        match self.body {
            Some(n) => n.deserialize_any(visitor),
            None => Err(DeError { message: "this variant needs a list".into(), span: Some(self.tag.span) }),
        }
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.body {
            Some(n) => n.deserialize_any(visitor),
            None => Err(DeError { message: "this variant needs a mapping".into(), span: Some(self.tag.span) }),
        }
    }
}
