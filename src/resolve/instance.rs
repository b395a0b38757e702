//! Instances (`--instance`, `--instances`): `${idlab.instance}` substituted in place, and the
//! instance appended to every name whose uniqueness scope the instance does not own, by the
//! kind's own rule ([`crate::kinds::Kind::instance_name`]). Runs on the spanned tree after
//! variables, so later passes (and their diagnostics) see the final names at the spans the
//! plan wrote them.

use crate::kinds::instance::{GROUP_FIELD, IN_FOREIGN_GROUP, InstanceName};
use crate::kinds::resource_group::ResourceGroupKind;
use crate::kinds::{self, Kind};
use crate::model::refs::{self, OffsetMap, Piece};
use crate::model::yaml::{Node, Value};
use crate::model::{Code, Diag};

/// The expression that names the instance.
const INSTANCE_EXPR: &str = "${idlab.instance}";

/// Append `instance` to the names that need it (when there is one), then replace
/// `${idlab.instance}` everywhere outside `variables:` (with nothing when there is none).
pub(super) fn apply(root: &mut Node, instance: Option<&str>, diags: &mut Vec<Diag>) {
    if let Some(inst) = instance {
        suffix_names(root, inst, diags);
    }
    let Value::Map(entries) = &mut root.value else { return };
    for (k, v) in entries.iter_mut() {
        if k.as_str() != Some("variables") {
            substitute(v, instance.unwrap_or_default());
        }
    }
}

fn field_mut<'a>(node: &'a mut Node, key: &str) -> Option<&'a mut Node> {
    match &mut node.value {
        Value::Map(entries) => entries.iter_mut().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
        _ => None,
    }
}

fn suffix_names(root: &mut Node, inst: &str, diags: &mut Vec<Diag>) {
    let Some(resources) = field_mut(root, "resources") else { return };
    let Value::Map(entries) = &mut resources.value else { return };
    let kind_of = |n: &Node| n.get("type").and_then(Node::as_str).and_then(kinds::by_type);
    // Resource groups the plan declares by a literal name: (as written, as suffixed).
    let mut groups: Vec<(String, String)> = Vec::new();
    for (_, node) in entries.iter_mut() {
        let Some(kind) = kind_of(node) else { continue };
        let Some(naming) = kind.instance_name() else { continue };
        let is_group = kind.type_name() == ResourceGroupKind.type_name();
        let Some(name) = field_mut(node, naming.field) else { continue };
        let Value::Str(before) = &name.value else { continue };
        let before = before.clone();
        if let Some(after) = fit(name, &before, inst, &naming, diags)
            && is_group
        {
            groups.push((before, after));
        }
    }
    for (_, node) in entries.iter_mut() {
        let Some(kind) = kind_of(node) else { continue };
        if kind.instance_name().is_some() {
            continue;
        }
        let Some(group) = field_mut(node, GROUP_FIELD) else { continue };
        let Value::Str(g) = &group.value else { continue };
        if g.contains("${") {
            continue; // a reference: a group the plan declares, or a value read from one
        }
        if let Some((_, after)) = groups.iter().find(|(b, _)| b == g) {
            group.value = Value::Str(after.clone());
            continue;
        }
        let Some(name) = field_mut(node, "name") else { continue };
        let Value::Str(before) = &name.value else { continue };
        let before = before.clone();
        fit(name, &before, inst, &IN_FOREIGN_GROUP, diags);
    }
}

/// Suffix one name node in place; the new name, or `None` when it was left alone.
fn fit(node: &mut Node, before: &str, inst: &str, naming: &InstanceName, diags: &mut Vec<Diag>) -> Option<String> {
    if before.contains(INSTANCE_EXPR) {
        return None; // the plan places the instance itself
    }
    match naming.fit(before, inst) {
        Ok(after) => {
            node.value = Value::Str(after.clone());
            Some(after)
        }
        // A name made from references is checked once they are known.
        Err(_) if before.contains("${") => {
            let after = InstanceName { max: usize::MAX, ..*naming }.fit(before, inst).ok()?;
            node.value = Value::Str(after.clone());
            Some(after)
        }
        Err(why) => {
            diags.push(
                Diag::error(Code::InvalidValue, node.span, format!("instance `{inst}`: {why}"))
                    .label("too long with the instance suffix")
                    .help("shorten the name, use shorter instance names, or place ${idlab.instance} in it yourself"),
            );
            None
        }
    }
}

fn substitute(node: &mut Node, inst: &str) {
    match &mut node.value {
        Value::Seq(items) => items.iter_mut().for_each(|n| substitute(n, inst)),
        Value::Map(entries) => entries.iter_mut().for_each(|(_, v)| substitute(v, inst)),
        Value::Str(s) if s.contains(INSTANCE_EXPR) => {
            let Ok(pieces) = refs::parse_template(s, OffsetMap::new(node.span, s.len())) else { return };
            let mut out = String::new();
            for p in &pieces {
                match p {
                    Piece::Lit(l) => out.push_str(&l.replace("${", "$${")),
                    Piece::Expr(e) if e.text() == INSTANCE_EXPR => out.push_str(inst),
                    Piece::Expr(e) => out.push_str(&e.text()),
                }
            }
            node.value = Value::Str(out);
        }
        _ => {}
    }
}
