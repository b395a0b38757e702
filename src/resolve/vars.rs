//! Plan variables: declared defaults, `--var-file` and `--var` overrides (typed like the
//! default), and `${var.NAME}` substituted in place, keeping spans.

use std::collections::BTreeMap;

use super::read::{DEFAULT_MAX_PLAN_SIZE, read_capped, read_diag};
use super::{Options, line_col};
use crate::model::diag::suggest;
use crate::model::refs::{self, OffsetMap, Piece};
use crate::model::yaml::{self, Node, Value};
use crate::model::{Code, Diag, Span};

/// A variable's resolved value.
#[derive(Debug, Clone)]
pub(super) enum VarValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl VarValue {
    pub(super) fn display(&self) -> String {
        match self {
            VarValue::Str(s) => s.clone(),
            VarValue::Int(i) => i.to_string(),
            VarValue::Float(f) => f.to_string(),
            VarValue::Bool(b) => b.to_string(),
        }
    }
    fn from_node(v: &Value) -> Option<VarValue> {
        match v {
            Value::Str(s) => Some(VarValue::Str(s.clone())),
            Value::Int(i) => Some(VarValue::Int(*i)),
            Value::Float(f) => Some(VarValue::Float(*f)),
            Value::Bool(b) => Some(VarValue::Bool(*b)),
            _ => None,
        }
    }
    /// Parse override text with the type of the default, when there is one.
    fn parse_like(text: &str, like: Option<&VarValue>) -> Result<VarValue, String> {
        match like {
            Some(VarValue::Int(_)) => {
                text.trim().parse().map(VarValue::Int).map_err(|_| format!("`{text}` is not an integer"))
            }
            Some(VarValue::Float(_)) => {
                text.trim().parse().map(VarValue::Float).map_err(|_| format!("`{text}` is not a number"))
            }
            Some(VarValue::Bool(_)) => match text.trim() {
                "true" => Ok(VarValue::Bool(true)),
                "false" => Ok(VarValue::Bool(false)),
                _ => Err(format!("`{text}` is not true or false")),
            },
            _ => Ok(VarValue::Str(text.to_string())),
        }
    }
}

/// Resolved variables, and the declared ones left without a value (already reported).
pub(super) fn read_variables(
    root: &Node,
    opts: &Options,
    diags: &mut Vec<Diag>,
) -> (BTreeMap<String, VarValue>, Vec<String>) {
    let mut declared: Vec<(String, Span, Option<VarValue>)> = Vec::new();
    if let Some(vars) = root.get("variables").and_then(Node::as_map) {
        for (k, v) in vars {
            let Some(name) = k.as_str() else { continue };
            let default = match &v.value {
                Value::Map(_) => v.get("default").and_then(|d| VarValue::from_node(&d.value)),
                other => VarValue::from_node(other),
            };
            declared.push((name.to_string(), k.span, default));
        }
    }
    let mut values: BTreeMap<String, VarValue> =
        declared.iter().filter_map(|(n, _, d)| d.clone().map(|d| (n.clone(), d))).collect();
    let set = |name: &str, text: &str, from: &str, values: &mut BTreeMap<String, VarValue>, diags: &mut Vec<Diag>| {
        let Some((_, _, default)) = declared.iter().find(|(n, _, _)| n == name) else {
            let known: Vec<&str> = declared.iter().map(|(n, _, _)| n.as_str()).collect();
            let hint =
                suggest(name, known.iter().copied()).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
            diags.push(Diag::detached(
                Code::VariableOverride,
                format!("{from}: the plan declares no variable `{name}`{hint}"),
            ));
            return;
        };
        match VarValue::parse_like(text, default.as_ref()) {
            Ok(v) => {
                values.insert(name.to_string(), v);
            }
            Err(e) => diags.push(Diag::detached(Code::VariableOverride, format!("{from}: variable `{name}`: {e}"))),
        }
    };
    for file in &opts.var_files {
        let shown = file.display().to_string();
        let cap = opts.max_size.unwrap_or(DEFAULT_MAX_PLAN_SIZE);
        let text = match read_capped(file, cap).map(String::from_utf8) {
            Ok(Ok(t)) => t,
            Ok(Err(_)) => {
                diags.push(Diag::detached(Code::VariableOverride, format!("--var-file {shown}: not valid UTF-8")));
                continue;
            }
            Err(e) => {
                diags.push(read_diag(&format!("--var-file {shown}"), &e, cap));
                continue;
            }
        };
        let node = match yaml::parse(&text) {
            Ok(n) => n,
            Err(e) => {
                let (l, c) = line_col(&text, e.span.offset);
                let code = if e.code == Code::YamlSyntax { Code::VariableOverride } else { e.code };
                diags.push(Diag::detached(code, format!("--var-file {shown}:{l}:{c}: {}", e.message)));
                continue;
            }
        };
        let Some(entries) = node.as_map() else {
            diags.push(Diag::detached(
                Code::VariableOverride,
                format!("--var-file {shown}: expected a mapping of variable names to values"),
            ));
            continue;
        };
        for (k, v) in entries {
            let (l, c) = line_col(&text, k.span.offset);
            let from = format!("--var-file {shown}:{l}:{c}");
            match VarValue::from_node(&v.value) {
                Some(val) => set(&k.key_text(), &val.display(), &from, &mut values, diags),
                None => diags.push(Diag::detached(
                    Code::VariableOverride,
                    format!("{from}: variable `{}` must be a string, number or boolean", k.key_text()),
                )),
            }
        }
    }
    for arg in &opts.vars {
        match arg.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => set(k.trim(), v, "--var", &mut values, diags),
            _ => diags.push(Diag::detached(Code::VariableOverride, format!("--var `{arg}`: expected NAME=VALUE"))),
        }
    }
    let mut unset = Vec::new();
    for (name, span, _) in &declared {
        if !values.contains_key(name) {
            unset.push(name.clone());
            diags.push(
                Diag::error(Code::VariableOverride, *span, format!("variable `{name}` has no default and no value"))
                    .label("needs a value")
                    .help(format!("pass --var {name}=VALUE or a --var-file, or give it a default")),
            );
        }
    }
    (values, unset)
}

/// Replace `${var.NAME}` everywhere outside `variables:` (spans are kept).
pub(super) fn substitute_variables(
    root: &mut Node,
    vars: &BTreeMap<String, VarValue>,
    unset: &[String],
    diags: &mut Vec<Diag>,
) {
    let Value::Map(entries) = &mut root.value else { return };
    for (k, v) in entries.iter_mut() {
        if k.as_str() != Some("variables") {
            substitute(v, vars, unset, diags);
        }
    }
}

fn substitute(node: &mut Node, vars: &BTreeMap<String, VarValue>, unset: &[String], diags: &mut Vec<Diag>) {
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| substitute(n, vars, unset, diags)),
        Value::Map(entries) => entries.iter_mut().for_each(|(_, v)| substitute(v, vars, unset, diags)),
        Value::Str(s) if s.contains("${") => {
            let Ok(pieces) = refs::parse_template(s, OffsetMap::new(node.span, s.len())) else { return };
            if !pieces.iter().any(|p| matches!(p, Piece::Expr(e) if e.root() == "var")) {
                return;
            }
            let mut out = String::new();
            let mut whole: Option<Value> = None;
            let single = pieces.len() == 1;
            for p in &pieces {
                match p {
                    Piece::Lit(l) => out.push_str(&l.replace("${", "$${")),
                    Piece::Expr(e) if e.root() == "var" => {
                        let name = e.attr();
                        match vars.get(&name) {
                            Some(v) => {
                                if single && e.path.len() == 2 {
                                    whole = Some(match v {
                                        VarValue::Str(s) => Value::Str(s.replace("${", "$${")),
                                        VarValue::Int(i) => Value::Int(*i),
                                        VarValue::Float(f) => Value::Float(*f),
                                        VarValue::Bool(b) => Value::Bool(*b),
                                    });
                                }
                                out.push_str(&v.display().replace("${", "$${"));
                            }
                            None if unset.contains(&name) => out.push_str(&e.text()),
                            None => {
                                let mut d = Diag::error(
                                    Code::UndeclaredVariable,
                                    e.span,
                                    format!("undeclared variable `{name}`"),
                                )
                                .label("no such variable");
                                if let Some(s) = suggest(&name, vars.keys().map(String::as_str)) {
                                    d = d.help(format!("did you mean `${{var.{s}}}`?"));
                                } else {
                                    d = d.help("declare it under `variables:`");
                                }
                                diags.push(d);
                                out.push_str(&e.text());
                            }
                        }
                    }
                    Piece::Expr(e) => out.push_str(&e.text()),
                }
            }
            node.value = whole.unwrap_or(Value::Str(out));
        }
        _ => {}
    }
}
