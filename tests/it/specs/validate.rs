//! A Swagger 2.0 schema check of one JSON body: `$ref` (across files), `allOf`, `required`,
//! `type` and the `format`s ARM bodies use (`uuid`, `date-time`), `enum` (closed unless
//! `x-ms-enum.modelAsString` is true), `additionalProperties` (a property neither declared nor
//! allowed by it is a violation), `x-nullable`, `discriminator` / `x-ms-discriminator-value`,
//! and in requests no `readOnly` property. `x-ms-client-flatten` is an SDK hint and does not
//! change the wire shape, so it is ignored. While checking a request it can also collect the
//! places a negative case can break ([`Sites`]).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::swagger::{At, Specs};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Request,
    Response,
}

/// Places in a valid request body where a negative case can break it.
#[derive(Default)]
pub struct Sites {
    /// Required properties present in the body (pointers).
    pub required: Vec<String>,
    /// Scalars and their declared type.
    pub typed: Vec<(String, String)>,
    /// Values under a closed enum.
    pub closed_enum: Vec<String>,
    /// Read-only properties the body does not carry: (object pointer, name, a value of the
    /// declared type).
    pub read_only: Vec<(String, String, Value)>,
}

pub struct Walker<'s> {
    specs: &'s Specs,
    mode: Mode,
    pub errors: Vec<String>,
    pub sites: Option<Sites>,
}

/// What a schema says once its `allOf` members are merged in.
struct Effective<'a> {
    ty: Option<&'a str>,
    props: BTreeMap<&'a str, At<'a>>,
    required: Vec<&'a str>,
    additional: Option<At<'a>>,
    discriminator: Option<&'a str>,
}

fn escape(k: &str) -> String {
    k.replace('~', "~0").replace('/', "~1")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// RFC 3339 in the shape ARM sends: `YYYY-MM-DDTHH:MM:SS`, optional fraction, optional zone.
fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    b.len() >= 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && matches!(b[10], b'T' | b't' | b' ')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
}

/// A placeholder of the declared type (for a read-only property a negative case sends).
fn placeholder(schema: &Value) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some("integer" | "number") => json!(1),
        Some("boolean") => json!(true),
        Some("array") => json!([]),
        Some("string") => {
            let e = schema.get("enum").and_then(Value::as_array).and_then(|e| e.first()).cloned();
            e.unwrap_or_else(|| json!("read-only"))
        }
        _ => json!({}),
    }
}

impl<'s> Walker<'s> {
    pub fn new(specs: &'s Specs, mode: Mode) -> Walker<'s> {
        Walker { specs, mode, errors: Vec::new(), sites: None }
    }

    fn err(&mut self, ptr: &str, msg: impl std::fmt::Display) {
        self.errors.push(format!("{}: {msg}", if ptr.is_empty() { "/" } else { ptr }));
    }

    fn effective(&mut self, at: At<'s>, ptr: &str, out: &mut Effective<'s>, depth: usize) {
        if depth > 32 {
            self.err(ptr, "allOf nesting too deep");
            return;
        }
        let s = at.value;
        if out.ty.is_none() {
            out.ty = s.get("type").and_then(Value::as_str);
        }
        if out.discriminator.is_none() {
            out.discriminator = s.get("discriminator").and_then(Value::as_str);
        }
        if let Some(p) = s.get("properties").and_then(Value::as_object) {
            for (k, v) in p {
                out.props.entry(k.as_str()).or_insert(At { file: at.file, value: v });
            }
        }
        for r in s.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !out.required.contains(&r) {
                out.required.push(r);
            }
        }
        if out.additional.is_none()
            && let Some(a) = s.get("additionalProperties")
        {
            out.additional = Some(At { file: at.file, value: a });
        }
        for member in s.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            match self.specs.deref(At { file: at.file, value: member }) {
                Ok(m) => self.effective(m, ptr, out, depth + 1),
                Err(e) => self.err(ptr, e),
            }
        }
    }

    /// Whether a property schema is read-only: `readOnly` beside its `$ref` or on the
    /// target, or `x-ms-mutability: [read]`.
    fn read_only(&self, p: At<'s>) -> bool {
        let flag = |v: &Value| {
            v.get("readOnly").and_then(Value::as_bool) == Some(true)
                || v.get("x-ms-mutability").and_then(Value::as_array).is_some_and(|m| m == &[json!("read")])
        };
        flag(p.value) || self.specs.deref(p).is_ok_and(|t| flag(t.value))
    }

    /// The subtype of `base` (in `base.file`) that discriminator value `name` selects.
    fn subtype(&self, base: At<'s>, name: &str) -> Option<At<'s>> {
        let defs = self.specs.docs.get(base.file)?.get("definitions")?.as_object()?;
        defs.iter().find_map(|(def_name, d)| {
            let value = d.get("x-ms-discriminator-value").and_then(Value::as_str).unwrap_or(def_name);
            let derives = d.get("allOf").and_then(Value::as_array).into_iter().flatten().any(|m| {
                self.specs.deref(At { file: base.file, value: m }).is_ok_and(|t| std::ptr::eq(t.value, base.value))
            });
            (derives && value == name).then_some(At { file: base.file, value: d })
        })
    }

    /// Check `inst` (at JSON pointer `ptr`) against schema `at`.
    pub fn check(&mut self, at: At<'s>, inst: &Value, ptr: &str) {
        let at = match self.specs.deref(at) {
            Ok(a) => a,
            Err(e) => return self.err(ptr, e),
        };
        let s = at.value;
        if inst.is_null() {
            if s.get("x-nullable").and_then(Value::as_bool) != Some(true) {
                self.err(ptr, "null where the spec allows no null (no x-nullable)");
            }
            return;
        }
        let mut eff =
            Effective { ty: None, props: BTreeMap::new(), required: Vec::new(), additional: None, discriminator: None };
        self.effective(at, ptr, &mut eff, 0);
        if let Some(d) = eff.discriminator
            && let Some(v) = inst.get(d).and_then(Value::as_str)
            && let Some(sub) = self.subtype(at, v)
        {
            return self.check(sub, inst, ptr);
        }
        let ty = eff.ty.or_else(|| (!eff.props.is_empty() || eff.additional.is_some()).then_some("object"));
        let got = type_name(inst);
        if let Some(ty) = ty {
            let ok = match ty {
                "number" => matches!(got, "number" | "integer"),
                "file" => true,
                _ => got == ty,
            };
            if !ok {
                return self.err(ptr, format_args!("wrong type: the spec says {ty}, the body has {got}"));
            }
            if let Some(sites) = &mut self.sites
                && matches!(ty, "string" | "boolean" | "integer" | "number")
            {
                sites.typed.push((ptr.to_string(), ty.to_string()));
            }
        }
        if let Some(text) = inst.as_str() {
            match s.get("format").and_then(Value::as_str) {
                Some("uuid") if !is_uuid(text) => self.err(ptr, format_args!("`{text}` is not a uuid")),
                Some("date-time") if !is_date_time(text) => self.err(ptr, format_args!("`{text}` is not a date-time")),
                _ => {}
            }
        }
        if let Some(values) = s.get("enum").and_then(Value::as_array) {
            let open = s.pointer("/x-ms-enum/modelAsString").and_then(Value::as_bool) == Some(true);
            if !open {
                if let Some(sites) = &mut self.sites {
                    sites.closed_enum.push(ptr.to_string());
                }
                if !values.contains(inst) {
                    self.err(ptr, format_args!("{inst} is not in the closed enum {}", Value::Array(values.clone())));
                }
            }
        }
        match inst {
            Value::Array(items) => {
                if let Some(item) = s.get("items") {
                    for (i, x) in items.iter().enumerate() {
                        self.check(At { file: at.file, value: item }, x, &format!("{ptr}/{i}"));
                    }
                }
            }
            Value::Object(m) => self.check_object(&eff, m, ptr),
            _ => {}
        }
    }

    fn check_object(&mut self, eff: &Effective<'s>, m: &serde_json::Map<String, Value>, ptr: &str) {
        for (k, v) in m {
            let here = format!("{ptr}/{}", escape(k));
            if let Some(p) = eff.props.get(k.as_str()).copied() {
                if self.mode == Mode::Request && self.read_only(p) {
                    self.err(&here, "a read-only property is sent");
                }
                self.check(p, v, &here);
            } else {
                match eff.additional {
                    Some(At { value: Value::Bool(true), .. }) => {}
                    Some(a @ At { value: Value::Object(_), .. }) => self.check(a, v, &here),
                    _ => self.err(&here, "a property the spec does not declare"),
                }
            }
        }
        for r in &eff.required {
            let ro = eff.props.get(r).is_some_and(|p| self.read_only(*p));
            if m.contains_key(*r) {
                if let Some(sites) = &mut self.sites
                    && !ro
                {
                    sites.required.push(format!("{ptr}/{}", escape(r)));
                }
            } else if !(self.mode == Mode::Request && ro) {
                self.err(&format!("{ptr}/{}", escape(r)), "a required property is missing");
            }
        }
        if self.sites.is_some() {
            let absent: Vec<(String, Value)> = eff
                .props
                .iter()
                .filter(|(k, p)| !m.contains_key(**k) && self.read_only(**p))
                .map(|(k, p)| (k.to_string(), self.specs.deref(*p).map_or(json!("x"), |t| placeholder(t.value))))
                .collect();
            if let Some(sites) = &mut self.sites {
                sites.read_only.extend(absent.into_iter().map(|(k, v)| (ptr.to_string(), k, v)));
            }
        }
    }
}

/// Check `inst` against `schema` in `mode`: the violations.
pub fn violations(specs: &Specs, schema: At<'_>, inst: &Value, mode: Mode) -> Vec<String> {
    let mut w = Walker::new(specs, mode);
    w.check(schema, inst, "");
    w.errors
}
