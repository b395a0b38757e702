//! Load a plan file into a validated plan: parse → duplicate keys → variables →
//! structural check against the generated schema → typed kinds → references and
//! semantic checks → graph and cycles. Every problem is collected; nothing stops at the
//! first one.
//!
//! This layer sits above `model` (a leaf) and `kinds` because it needs the kind registry to
//! compose the schema and to dispatch each resource by its `type`.
//!
//! Imports: model, kinds, graph. No network I/O; reads only the files the plan names.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::Value as J;

mod instance;
mod read;
mod vars;

pub use read::{DEFAULT_MAX_PLAN_SIZE, parse_size};
use read::{read_capped, read_diag};
use vars::{read_variables, substitute_variables};

use crate::graph::{Dag, GraphNode};
use crate::kinds::resource_group::ResourceGroupKind;
use crate::kinds::{self, Cx, Decl, KINDS, Kind, data_lake, key_vault, sql, storage};
use crate::model::de::from_node;
use crate::model::diag::suggest;
use crate::model::doc::OutputFull;
use crate::model::names;
use crate::model::refs::{self, OffsetMap, Piece};
use crate::model::sensitive;
use crate::model::structure::{Checker, Place, strip_duplicates};
use crate::model::yaml::{self, Node, Value};
use crate::model::{Check, Code, Diag, OrStr, PlanDoc, Sp, Span};

/// The resource schema: one alternative per kind, discriminated by `type`.
pub struct AnyResource;

impl<'de> serde::Deserialize<'de> for AnyResource {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| AnyResource)
    }
}

impl JsonSchema for AnyResource {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Resource".into()
    }
    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let alts: Vec<J> = KINDS.iter().map(|k| k.schema(g).to_value()).collect();
        schemars::json_schema!({
            "description": "A resource; `type` selects the kind.",
            "oneOf": alts
        })
    }
}

/// The plan's JSON Schema (draft 2020-12), as `idlab schema` prints it.
pub fn schema() -> &'static J {
    static SCHEMA: OnceLock<J> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let g = schemars::generate::SchemaSettings::draft2020_12().into_generator();
        let mut s = g.into_root_schema_for::<PlanDoc<AnyResource>>().to_value();
        if let Some(o) = s.as_object_mut() {
            o.insert("$id".into(), J::from("https://idlab.dev/schemas/plan.schema.json"));
        }
        s
    })
}

/// The schema with `resources` reduced to "a mapping": resources are checked one by one.
fn header_schema() -> &'static J {
    static HEADER: OnceLock<J> = OnceLock::new();
    HEADER.get_or_init(|| {
        let mut s = schema().clone();
        if let Some(p) = s.pointer_mut("/properties/resources") {
            *p = serde_json::json!({ "type": "object" });
        }
        s
    })
}

fn resource_schema() -> &'static J {
    static RES: OnceLock<J> = OnceLock::new();
    RES.get_or_init(|| schema().pointer("/$defs/Resource").cloned().unwrap_or(J::Null))
}

/// How to load a plan.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--var NAME=VALUE`, in order (later wins).
    pub vars: Vec<String>,
    /// `--var-file FILE`, in order; `--var` overrides them.
    pub var_files: Vec<PathBuf>,
    /// Unavailable secrets and environment values are errors (plan/apply), not warnings.
    pub strict: bool,
    /// The cap on plan and variable files, in bytes (`None`: [`DEFAULT_MAX_PLAN_SIZE`]).
    pub max_size: Option<u64>,
    /// Directories outside the plan's own that its file paths may lead into.
    pub allow_outside: Vec<PathBuf>,
    /// The instance being loaded (`--instance`, `--instances`): `${idlab.instance}`, the
    /// names that take its suffix, and the plan name `<plan>-<instance>`.
    pub instance: Option<String>,
}

/// A dependency edge: `from` must exist before `to`; `span` is where `to` refers to `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    pub span: Span,
}

/// A plan that passed validation (possibly with warnings).
#[derive(Debug)]
pub struct Validated {
    /// The plan name, the ownership mark: `<plan>-<instance>` for an instance.
    pub name: String,
    /// The instance this plan was loaded as, if any.
    pub instance: Option<String>,
    /// `expires_after:` in seconds.
    pub expires_after: Option<u64>,
    pub subscription: Option<Sp<String>>,
    pub location: String,
    pub variables: BTreeMap<String, String>,
    pub decls: Vec<Decl>,
    pub edges: Vec<Edge>,
    pub outputs: Vec<(Sp<String>, Sp<String>)>,
    pub checks: Vec<(Sp<String>, Check)>,
    pub dag: Dag,
    /// The plan file's directory: relative file paths resolve against it.
    pub base_dir: PathBuf,
}

/// The outcome of loading one file: its text (for rendering) and everything found.
#[derive(Debug)]
pub struct Loaded {
    pub path: String,
    /// The file's text with inline secrets masked. Diagnostic spans are positions in the
    /// file; `redaction` moves them into this text.
    pub text: String,
    /// Where the file's positions land in `text`.
    pub redaction: sensitive::Redacted,
    pub diags: Vec<Diag>,
    pub plan: Option<Validated>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(Diag::is_error)
    }
}

/// Read and validate a plan file.
pub fn load(path: &Path, opts: &Options) -> Loaded {
    let shown = path.display().to_string();
    let cap = opts.max_size.unwrap_or(DEFAULT_MAX_PLAN_SIZE);
    match read_capped(path, cap) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => {
                let base = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
                load_str(&shown, text, &base, opts)
            }
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let d =
                    Diag::error(Code::YamlSyntax, Span::new(valid.min(text.len()), 0), "the file is not valid UTF-8")
                        .label("invalid byte here")
                        .help("save the plan as UTF-8");
                let mut secrets = Vec::new();
                sensitive::by_text(&text, &mut secrets);
                masked(shown, &text, vec![d], secrets, None)
            }
        },
        Err(e) => Loaded {
            diags: vec![read_diag(&format!("`{shown}`"), &e, cap)],
            path: shown,
            text: String::new(),
            redaction: sensitive::Redacted::default(),
            plan: None,
        },
    }
}

/// Validate plan text. `base_dir` resolves relative file paths.
pub fn load_str(path: &str, text: String, base_dir: &Path, opts: &Options) -> Loaded {
    let mut diags = Vec::new();
    let mut secrets = Vec::new();
    let plan = run(&text, base_dir, opts, &mut diags, &mut secrets);
    diags.sort_by_key(|d| (d.span.map_or(usize::MAX, |s| s.offset), d.code));
    let plan = if diags.iter().any(Diag::is_error) { None } else { plan };
    masked(path.to_string(), &text, diags, secrets, plan)
}

/// The outcome with inline secrets masked in the text (diagnostic spans stay the file's).
fn masked(path: String, text: &str, diags: Vec<Diag>, mut secrets: Vec<Span>, plan: Option<Validated>) -> Loaded {
    // A `${var.NAME}` where a secret belongs shows no value: leave it readable.
    secrets.retain(|s| {
        let t = text.get(s.offset..s.end()).unwrap_or_default().trim_matches(['"', '\'']);
        !(t.starts_with("${") && t.ends_with('}') && t.matches("${").count() == 1)
    });
    let mut red = sensitive::Redacted::new(text, secrets);
    let text = std::mem::take(&mut red.text);
    Loaded { path, text, redaction: red, diags, plan }
}

fn run(
    text: &str,
    base_dir: &Path,
    opts: &Options,
    diags: &mut Vec<Diag>,
    secrets: &mut Vec<Span>,
) -> Option<Validated> {
    let mut root = match yaml::parse(text) {
        Ok(n) => {
            sensitive::by_key_name(&n, secrets);
            n
        }
        Err(e) => {
            sensitive::by_text(text, secrets);
            let label = if e.code == Code::MultipleDocuments { "a second document starts here" } else { "here" };
            let mut d = Diag::error(e.code, e.span, e.message).label(label);
            if e.code == Code::MultipleDocuments {
                d = d.help("remove the `---` line (or everything after it): one file holds one plan");
            }
            if text.get(e.span.offset..).is_some_and(|rest| rest.starts_with("${"))
                || text.get(..e.span.offset).is_some_and(|before| before.ends_with('$'))
            {
                d = d.help("inside [ ] and { }, quote references: [\"${name}\"] (or use a block list)");
            }
            diags.push(d);
            return None;
        }
    };
    if root.as_map().is_none() {
        diags.push(
            Diag::error(
                Code::WrongType,
                root.span,
                format!("a plan must be a mapping, found {}", root.value.type_name()),
            )
            .label("expected a mapping with name, location and resources"),
        );
        return None;
    }
    strip_duplicates(&mut root, diags);

    // Variables: defaults, then --var-file, then --var.
    let (variables, unset) = read_variables(&root, opts, diags);
    substitute_variables(&mut root, &variables, &unset, diags);
    instance::apply(&mut root, opts.instance.as_deref(), diags);

    // Shape: the header, then each resource against its own kind.
    let mut checker = Checker::new(header_schema());
    checker.check(&root, header_schema(), Place { path: "", owner: None });
    diags.append(&mut checker.diags);
    secrets.append(&mut checker.secrets);
    let header_ok = !diags.iter().any(Diag::is_error);

    let mut decls: Vec<Decl> = Vec::new();
    let mut resource_nodes: Vec<&Node> = Vec::new();
    if let Some(res) = root.get("resources").and_then(Node::as_map) {
        let schema = resource_schema();
        for (key, node) in res {
            let Some(logical) = key.as_str() else { continue };
            if let Err(why) = names::logical(logical) {
                diags.push(
                    Diag::error(Code::InvalidValue, key.span, format!("invalid resource name `{logical}`: {why}"))
                        .label("logical name"),
                );
                continue;
            }
            let path = format!("resources.{logical}");
            let mut checker = Checker::new(self::schema());
            checker.check(node, schema, Place { path: &path, owner: Some(key.span) });
            secrets.append(&mut checker.secrets);
            if !checker.diags.is_empty() {
                diags.append(&mut checker.diags);
                continue;
            }
            let Some(kind) = node.get("type").and_then(Node::as_str).and_then(kinds::by_type) else { continue };
            match kind.parse(node) {
                Ok(spec) => {
                    decls.push(Decl {
                        logical: Sp::new(logical.to_string(), key.span),
                        kind,
                        spec,
                        expanded_from: None,
                    });
                    resource_nodes.push(node);
                }
                Err(e) => {
                    diags.push(Diag::error(Code::WrongType, e.span.unwrap_or(node.span), e.message).label("here"))
                }
            }
        }
    }
    if !header_ok {
        return None;
    }
    let doc: PlanDoc<crate::resolve::AnyResource> = match from_node(&root) {
        Ok(d) => d,
        Err(e) => {
            diags.push(Diag::error(Code::WrongType, e.span.unwrap_or(root.span), e.message).label("here"));
            return None;
        }
    };

    // Expanded nodes (a VM's network: auto) become declarations of their own.
    let declared = decls.len();
    let mut expansion_edges: Vec<(String, String)> = Vec::new();
    for i in 0..declared {
        let logical = decls[i].logical.value.clone();
        let expanded = decls[i].spec.expand(&logical);
        let inner: Vec<String> = expanded.iter().flat_map(|x| x.depends_on.clone()).collect();
        for x in expanded {
            for dep in &x.depends_on {
                expansion_edges.push((dep.clone(), x.logical.clone()));
            }
            // An expansion the parent needs comes first (a VM's network); one that needs the
            // parent comes after it (a vault's access for the deploying principal).
            if !inner.contains(&x.logical) && !x.depends_on.contains(&logical) {
                expansion_edges.push((x.logical.clone(), logical.clone()));
            }
            decls.push(Decl {
                logical: Sp::new(x.logical, decls[i].logical.span),
                kind: x.kind,
                spec: x.spec,
                expanded_from: Some(logical.clone()),
            });
        }
    }
    let index: HashMap<String, usize> = decls.iter().enumerate().map(|(i, d)| (d.logical.value.clone(), i)).collect();

    // References: every `${...}` in every resource is an edge and must resolve.
    let mut edges: Vec<Edge> = Vec::new();
    let mut edge_set: std::collections::HashSet<(usize, usize)> = std::collections::HashSet::new();
    let mut add_edge = |edges: &mut Vec<Edge>, from: usize, to: usize, span: Span| {
        if edge_set.insert((from, to)) {
            edges.push(Edge { from, to, span });
        }
    };
    for (i, node) in resource_nodes.iter().enumerate() {
        let mut found = Vec::new();
        collect_refs(node, &mut found, diags);
        for e in found {
            if let Some(from) = check_ref(&e, &decls, &index, RefPlace::Resource, diags) {
                add_edge(&mut edges, from, i, e.span);
            }
        }
        for dep in decls[i].spec.depends_on() {
            let name = dep.value.trim_start_matches("${").trim_end_matches('}');
            match index.get(name) {
                Some(&from) if from == i => diags.push(
                    Diag::error(Code::DependencyCycle, dep.span, format!("`{name}` depends on itself"))
                        .label("self-dependency"),
                ),
                Some(&from) => add_edge(&mut edges, from, i, dep.span),
                None => diags.push(undeclared(name, dep.span, &decls)),
            }
        }
    }
    // Waits a kind adds on its own (a Gen2 folder waits for the caller's data role).
    for i in 0..decls.len() {
        for name in decls[i].spec.waits_for(&decls) {
            if let Some(&from) = index.get(&name)
                && from != i
            {
                let span = decls[i].logical.span;
                add_edge(&mut edges, from, i, span);
            }
        }
    }
    for (from, to) in &expansion_edges {
        if let (Some(&f), Some(&t)) = (index.get(from), index.get(to)) {
            let span = decls[t].logical.span;
            add_edge(&mut edges, f, t, span);
        }
    }
    // What references a parent also waits for the expansions that follow the parent (a
    // secret waits for the deploying principal's access to its vault).
    for t in declared..decls.len() {
        let Some(parent) = decls[t].expanded_from.as_ref().and_then(|p| index.get(p)).copied() else { continue };
        if !edges.iter().any(|e| e.from == parent && e.to == t) {
            continue;
        }
        let followers: Vec<Edge> = edges
            .iter()
            .filter(|e| {
                e.from == parent
                    && e.to != t
                    && decls[e.to].expanded_from.as_deref() != Some(&decls[parent].logical.value)
            })
            .copied()
            .collect();
        for e in followers {
            add_edge(&mut edges, t, e.to, e.span);
        }
    }
    // Expanded nodes inherit their parent's references to the resource group.
    for t in declared..decls.len() {
        let Some(parent) = decls[t].expanded_from.as_ref().and_then(|p| index.get(p)).copied() else { continue };
        let inherited: Vec<Edge> =
            edges.iter().filter(|e| e.to == parent && references_group(&decls[e.from])).copied().collect();
        for e in inherited {
            add_edge(&mut edges, e.from, t, e.span);
        }
    }

    // Kind-specific checks.
    let strict = opts.strict;
    let mut kind_diags = Vec::new();
    for d in decls.iter().filter(|d| d.expanded_from.is_none()) {
        let mut cx = Cx {
            decls: &decls,
            index: &index,
            diags: &mut kind_diags,
            base_dir,
            allow_outside: &opts.allow_outside,
            strict,
            me: &d.logical.value,
        };
        d.spec.validate(&mut cx);
    }
    diags.append(&mut kind_diags);

    check_header(&doc, strict, diags);
    let expires_after = doc.expires_after.as_ref().and_then(|e| match kinds::env::parse_duration(&e.value) {
        Ok(secs) => Some(secs),
        Err(why) => {
            diags.push(Diag::error(Code::InvalidValue, e.span, why).label("expires_after"));
            None
        }
    });
    check_identities_on_vms(&decls, diags);
    check_duplicates(&decls, diags);

    // Outputs and verify checks.
    let mut outputs = Vec::new();
    if let Some(out) = root.get("outputs").and_then(Node::as_map) {
        for ((key, node), (_, decl)) in out.iter().zip(doc.outputs.iter()) {
            let mut found = Vec::new();
            collect_refs(node, &mut found, diags);
            for e in &found {
                check_ref(e, &decls, &index, RefPlace::Output, diags);
            }
            let value = match &decl.value {
                OrStr::Str(s) => Sp::new(s.clone(), decl.span),
                OrStr::Full(OutputFull { value, .. }) => value.clone(),
            };
            let name = Sp::new(key.key_text(), key.span);
            outputs.push((name, value));
        }
    }
    let checks: Vec<(Sp<String>, Check)> = doc.verify.0;
    check_verify(&checks, &decls, &index, diags);

    // Graph and cycles.
    let nodes: Vec<GraphNode> = decls
        .iter()
        .map(|d| GraphNode { name: d.logical.value.clone(), kind: d.kind.type_name(), weight: d.kind.weight() })
        .collect();
    let dag = Dag::new(nodes, edges.iter().map(|e| (e.from, e.to)).collect());
    for cycle in dag.cycles() {
        let names: Vec<&str> = cycle.iter().map(|&i| decls[i].logical.value.as_str()).collect();
        let first = cycle[0];
        let second = cycle.get(1).copied().unwrap_or(first);
        let span =
            edges.iter().find(|e| e.from == first && e.to == second).map_or(decls[first].logical.span, |e| e.span);
        let mut path = names.clone();
        path.push(names[0]);
        let mut d = Diag::error(Code::DependencyCycle, span, format!("dependency cycle: {}", path.join(" → ")))
            .label(format!("`{}` refers to `{}` here", names.get(1).unwrap_or(&names[0]), names[0]))
            .help("break the cycle: a resource cannot depend, directly or through others, on itself");
        for w in cycle.windows(2).skip(1).chain(std::iter::once(&[cycle[cycle.len() - 1], cycle[0]][..])) {
            if let Some(e) = edges.iter().find(|e| e.from == w[0] && e.to == w[1]) {
                d = d.related(
                    e.span,
                    format!("`{}` refers to `{}`", decls[w[1]].logical.value, decls[w[0]].logical.value),
                );
            }
        }
        diags.push(d);
    }

    Some(Validated {
        name: match &opts.instance {
            Some(i) => format!("{}-{i}", doc.name.value),
            None => doc.name.value.clone(),
        },
        instance: opts.instance.clone(),
        expires_after,
        subscription: doc.subscription.clone(),
        location: names::normalize_location(&doc.location),
        variables: variables.into_iter().map(|(k, v)| (k, v.display())).collect(),
        decls,
        edges,
        outputs,
        checks,
        dag,
        base_dir: base_dir.to_path_buf(),
    })
}

fn references_group(d: &Decl) -> bool {
    d.kind.type_name() == ResourceGroupKind.type_name()
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut cut = offset;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let before = &text[..cut];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Every `${...}` in a subtree; template syntax errors are reported here.
fn collect_refs(node: &Node, out: &mut Vec<refs::Expr>, diags: &mut Vec<Diag>) {
    match &node.value {
        Value::Seq(items) => items.iter().for_each(|n| collect_refs(n, out, diags)),
        Value::Map(entries) => entries.iter().for_each(|(_, v)| collect_refs(v, out, diags)),
        Value::Str(s) if s.contains("${") => match refs::parse_template(s, OffsetMap::new(node.span, s.len())) {
            Ok(pieces) => out.extend(pieces.into_iter().filter_map(|p| match p {
                Piece::Expr(e) => Some(e),
                Piece::Lit(_) => None,
            })),
            Err(e) => diags.push(Diag::error(Code::BadReference, e.span, e.message).label("bad reference")),
        },
        _ => {}
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RefPlace {
    Resource,
    Output,
}

fn undeclared(name: &str, span: Span, decls: &[Decl]) -> Diag {
    let mut d = Diag::error(Code::UndeclaredResource, span, format!("undeclared resource `{name}`"))
        .label("not declared under `resources:`");
    if let Some(s) = suggest(name, decls.iter().map(|d| d.logical.value.as_str())) {
        d = d.help(format!("did you mean `{s}`?"));
    }
    d
}

/// Check one reference; returns the index of the resource it points at.
fn check_ref(
    e: &refs::Expr,
    decls: &[Decl],
    index: &HashMap<String, usize>,
    place: RefPlace,
    diags: &mut Vec<Diag>,
) -> Option<usize> {
    let attr = e.attr();
    match e.root() {
        "env" => {
            diags.push(
                Diag::error(Code::BadReference, e.span, "`${env.…}` is only allowed in `subscription`")
                    .label("environment reference")
                    .help("declare a variable and pass it with --var, or use { env: NAME } for a secret"),
            );
            None
        }
        "var" => None, // reported during substitution
        "caller" => {
            if !matches!(attr.as_str(), "" | "object_id" | "tenant_id" | "client_id") {
                diags.push(
                    Diag::error(Code::UnknownAttribute, e.span, format!("`caller` has no attribute `{attr}`"))
                        .label("unknown attribute")
                        .help("caller exports: object_id, tenant_id, client_id"),
                );
            }
            None
        }
        root => {
            let Some(&i) = index.get(root) else {
                diags.push(undeclared(root, e.span, decls));
                return None;
            };
            let kind = decls[i].kind;
            if !attr.is_empty() && !kind.attributes().contains(&attr.as_str()) {
                let mut d = Diag::error(
                    Code::UnknownAttribute,
                    e.span,
                    format!("a {} has no attribute `{attr}`", kind.type_name()),
                )
                .label("unknown attribute");
                d = match suggest(&attr, kind.attributes().iter().copied()) {
                    Some(s) => d.help(format!("did you mean `${{{root}.{s}}}`?")),
                    None => d.help(format!("{} exports: {}", kind.type_name(), kind.attributes().join(", "))),
                };
                diags.push(d);
                return None;
            }
            (place == RefPlace::Resource).then_some(i)
        }
    }
}

fn check_header(doc: &PlanDoc<AnyResource>, strict: bool, diags: &mut Vec<Diag>) {
    let n = &doc.name;
    let bad = n.value.chars().find(|c| "<>%&\\?/".contains(*c) || c.is_control());
    if n.value.trim().is_empty() || n.value.chars().count() > 256 || bad.is_some() {
        diags.push(
            Diag::error(Code::PlanName, n.span, format!("invalid plan name `{}`", n.value))
                .label("cannot be a tag value")
                .help("a plan name is 1–256 characters without < > % & \\ ? / (it becomes the idlab-plan tag)"),
        );
    }
    kinds::check_location(&doc.location, diags);
    if let Some(sub) = &doc.subscription {
        let env = sub.value.strip_prefix("${env.").and_then(|s| s.strip_suffix('}'));
        match env {
            Some(var) => match std::env::var(var) {
                Ok(v) if names::is_guid(v.trim()) => {}
                Ok(v) => diags.push(
                    Diag::error(
                        Code::SubscriptionId,
                        sub.span,
                        format!("environment variable `{var}` holds `{v}`, which is not a subscription id (GUID)"),
                    )
                    .label("not a GUID"),
                ),
                Err(_) => {
                    let msg = format!("environment variable `{var}` is not set");
                    let d = if strict {
                        Diag::error(Code::SecretUnavailable, sub.span, msg)
                    } else {
                        Diag::warning(Code::SecretUnavailable, sub.span, msg)
                    };
                    diags.push(d.label("unset").help("set it, or pass --subscription"));
                }
            },
            None if !names::is_guid(&sub.value) => diags.push(
                Diag::error(Code::SubscriptionId, sub.span, format!("`{}` is not a subscription id", sub.value))
                    .label("not a GUID")
                    .help("use a GUID such as 00000000-0000-0000-0000-000000000000, or ${env.AZURE_SUBSCRIPTION_ID}"),
            ),
            None => {}
        }
    }
}

/// The tutorials' rule: an identity assigned to a VM has a name of at most 24 characters.
fn check_identities_on_vms(decls: &[Decl], diags: &mut Vec<Diag>) {
    for vm in decls {
        let Some(vmi) = vm.spec.vm_identity() else { continue };
        for r in vmi.user_assigned {
            let root = r.value.trim_start_matches("${").trim_end_matches('}').trim_end_matches(".id");
            let Some(id) = decls.iter().find(|d| d.logical.value == root && d.kind.is_identity()) else { continue };
            let Some(name) = id.spec.name() else { continue };
            let len = name.value.chars().count();
            if !refs::has_expr(name) && len > names::IDENTITY_ON_VM_MAX {
                diags.push(
                    Diag::error(
                        Code::IdentityNameTooLongForVm,
                        name.span,
                        format!(
                            "identity name `{}` has {len} characters; an identity assigned to a VM may have at most 24",
                            name.value
                        ),
                    )
                    .label("over 24 characters")
                    .related(r.span, format!("assigned to virtual machine `{}` here", vm.logical.value))
                    .help("shorten the name: longer names break the assignment to a VM"),
                );
            }
        }
    }
}

fn check_duplicates(decls: &[Decl], diags: &mut Vec<Diag>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, d) in decls.iter().enumerate() {
        let Some(key) = d.spec.identity_key() else { continue };
        if let Some(&first) = seen.get(&key) {
            let span = d.spec.name().map_or(d.logical.span, |n| n.span);
            let first_span = decls[first].spec.name().map_or(decls[first].logical.span, |n| n.span);
            let mut diag = Diag::error(
                Code::DuplicateArmResource,
                span,
                format!(
                    "`{}` and `{}` name the same Azure {}",
                    decls[first].logical.value,
                    d.logical.value,
                    d.kind.type_name()
                ),
            )
            .label("same resource again");
            if first_span != span {
                diag = diag.related(first_span, "first declared here");
            }
            diags.push(diag.help("each Azure resource may be declared once"));
        } else {
            seen.insert(key, i);
        }
    }
}

/// What each verify action may target.
const ACTION_TARGETS: &[(&str, &[&dyn Kind])] = &[
    ("read_blob", &[&storage::BlobKind]),
    ("blob_sas", &[&storage::BlobContainerKind]),
    ("list_keys", &[&storage::StorageAccountKind]),
    ("read_secret", &[&key_vault::SecretKind]),
    ("data_lake", &[&data_lake::DataLakeFolderKind]),
    ("sql_login", &[&sql::SqlDatabaseKind]),
];

fn check_verify(checks: &[(Sp<String>, Check)], decls: &[Decl], index: &HashMap<String, usize>, diags: &mut Vec<Diag>) {
    for (name, c) in checks {
        let whole = |v: &Sp<String>, diags: &mut Vec<Diag>| -> Option<usize> {
            let pieces = match refs::parse_template(v, OffsetMap::new(v.span, v.value.len())) {
                Ok(p) => p,
                Err(e) => {
                    diags.push(Diag::error(Code::BadReference, e.span, e.message).label("bad reference"));
                    return None;
                }
            };
            match refs::whole_expr(&pieces) {
                Some(e) if e.path.len() == 1 || e.attr() == "id" => {
                    check_ref(e, decls, index, RefPlace::Resource, diags)
                }
                _ => {
                    diags.push(
                        Diag::error(Code::BadReference, v.span, "expected a resource reference like ${name}")
                            .label("not a reference"),
                    );
                    None
                }
            }
        };
        let vm = whole(&c.vm, diags);
        let vmi = vm.and_then(|i| {
            let v = decls[i].spec.vm_identity();
            if v.is_none() {
                diags.push(
                    Diag::error(
                        Code::WrongReferenceKind,
                        c.vm.span,
                        format!(
                            "`vm` must reference a virtual_machine, but `{}` is a {}",
                            decls[i].logical.value,
                            decls[i].kind.type_name()
                        ),
                    )
                    .label("not a VM"),
                );
            }
            v.map(|v| (i, v))
        });
        if let Some((vi, vmi)) = vmi {
            let vm_name = &decls[vi].logical.value;
            match c.identity.as_ref() {
                None => {
                    if !vmi.system_assigned {
                        let (span, msg) = (
                            c.vm.span,
                            format!(
                                "check `{}` uses the system-assigned identity, which VM `{vm_name}` does not have",
                                name.value
                            ),
                        );
                        diags
                            .push(Diag::error(Code::VerifyIdentityNotOnVm, span, msg).label("no system identity").help(
                            "set `identity:` to one of the VM's user-assigned identities, or enable system_assigned",
                        ));
                    }
                }
                Some(id) if id.value == "system" => {
                    if !vmi.system_assigned {
                        diags.push(
                            Diag::error(
                                Code::VerifyIdentityNotOnVm,
                                id.span,
                                format!("VM `{vm_name}` has no system-assigned identity"),
                            )
                            .label("not on the VM"),
                        );
                    }
                }
                Some(id) => {
                    if let Some(ii) = whole(id, diags) {
                        if !decls[ii].kind.is_identity() {
                            diags.push(
                                Diag::error(
                                    Code::WrongReferenceKind,
                                    id.span,
                                    format!(
                                        "`identity` must be `system` or a user_assigned_identity, not a {}",
                                        decls[ii].kind.type_name()
                                    ),
                                )
                                .label("not an identity"),
                            );
                        } else {
                            let target = &decls[ii].logical.value;
                            let carried = vmi.user_assigned.iter().any(|u| {
                                u.value.trim_start_matches("${").trim_end_matches('}').trim_end_matches(".id") == target
                            });
                            if !carried {
                                diags.push(
                                    Diag::error(
                                        Code::VerifyIdentityNotOnVm,
                                        id.span,
                                        format!("VM `{vm_name}` does not carry identity `{target}`"),
                                    )
                                    .label("not assigned to the VM")
                                    .help(format!("add ${{{target}}} to the VM's identity.user_assigned")),
                                );
                            }
                        }
                    }
                }
            }
        }
        let actions = c.actions();
        match actions.as_slice() {
            [] => diags.push(
                Diag::error(Code::VerifyAction, name.span, format!("check `{}` has no action", name.value))
                    .label("nothing to check")
                    .help("add one of read_resource, write_resource, read_blob, blob_sas, list_keys, read_secret, data_lake, sql_login"),
            ),
            [(field, target)] => {
                if let Some(ti) = whole(target, diags) {
                    let kind = decls[ti].kind;
                    let allowed = ACTION_TARGETS.iter().find(|(f, _)| f == field).map(|(_, k)| *k);
                    let ok = match allowed {
                        Some(kinds) => kinds.iter().any(|k| k.type_name() == kind.type_name()),
                        None => kind.arm_type().is_some(),
                    };
                    if !ok {
                        let want = allowed.map_or("an Azure resource".to_string(), |k| format!("a {}", k.iter().map(|k| k.type_name()).collect::<Vec<_>>().join(" or a ")));
                        diags.push(
                            Diag::error(Code::WrongReferenceKind, target.span, format!("`{field}` needs {want}, but `{}` is a {}", decls[ti].logical.value, kind.type_name()))
                                .label("wrong kind of resource"),
                        );
                    }
                }
            }
            [_, (second, t), ..] => diags.push(
                Diag::error(Code::VerifyAction, t.span, format!("check `{}` has several actions; `{second}` is the second", name.value))
                    .label("second action")
                    .help("split it into one check per action"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_has_every_kind() {
        let s = schema();
        let alts = s.pointer("/$defs/Resource/oneOf").and_then(J::as_array).expect("oneOf");
        assert_eq!(alts.len(), KINDS.len());
    }

    #[test]
    fn line_col_counts_chars() {
        assert_eq!(line_col("ab\ncé\nx", 6), (2, 3));
        assert_eq!(line_col("", 5), (1, 1));
    }
}
