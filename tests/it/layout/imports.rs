//! The import checker: reads every `crate::`, `super::` and `self::` path of every module file
//! under a `src/` directory (in `use` items, grouped ones included, and inline anywhere in the
//! code; comments, literals and `#[cfg(test)]` modules left out) and checks the edges against
//! the rules of an `import-rules` block (in `docs/architecture.md`).
//!
//! Rule lines (`#` starts a comment):
//! - `MODULE_GLOB: ALLOWED_GLOB, ALLOWED_GLOB, ...` — a module matching `MODULE_GLOB` may import
//!   only modules matching one of the allowed globs, and its own submodules. Every rule whose
//!   left side matches a module applies to it. The list may be empty.
//! - `cycles: GLOB` — no cycle among the module files matching `GLOB`; `cycles: GLOB, GLOB, ...`
//!   checks the modules matching any of them as one set.
//!
//! Modules are named crate-relative with `::` (`local::blob`; `src/local/arm/mod.rs` is
//! `local::arm`); `src/lib.rs` is `crate`. In globs `*` matches one segment (or, inside a
//! segment, any characters of it) and `**` any number of segments, none included, so
//! `local::**` matches `local` and everything under it.
//!
//! An edge goes from a file to the module file a path resolves to: the longest prefix of the
//! path that is an existing module file. `mod x;` declarations are not edges, nor are
//! `pub(in crate::x)` visibilities; edges to the file itself are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::source::{Source, line_of, matching_brace};

/// One import: from a module, at a line, the path as written, to a module.
#[derive(Debug, Clone)]
pub struct Edge {
    pub from: String,
    pub file: String,
    pub line: usize,
    pub text: String,
    pub to: String,
}

/// The module files of a source tree and their imports.
pub struct Tree {
    /// Module name → file path, relative to the directory above `src/` (e.g. `src/local/blob.rs`).
    pub modules: BTreeMap<String, String>,
    pub edges: Vec<Edge>,
}

/// The module name of a file under `src/` (`None` for `main.rs`, a separate crate root).
fn module_name(rel: &Path) -> Option<String> {
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let (last, dirs) = parts.split_last()?;
    let stem = last.strip_suffix(".rs")?;
    let mut segs: Vec<String> = dirs.to_vec();
    match (dirs.is_empty(), stem) {
        (true, "lib") => return Some("crate".into()),
        (true, "main") => return None,
        (_, "mod") => {}
        _ => segs.push(stem.to_string()),
    }
    Some(segs.join("::"))
}

fn segments(module: &str) -> Vec<String> {
    if module == "crate" { Vec::new() } else { module.split("::").map(str::to_string).collect() }
}

fn join(segs: &[String]) -> String {
    if segs.is_empty() { "crate".into() } else { segs.join("::") }
}

/// Every `.rs` file under `dir`, sorted, relative to `dir`.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p.strip_prefix(base).unwrap_or(&p).to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

impl Tree {
    /// Read the tree under `root/src`.
    pub fn read(root: &Path) -> Tree {
        let src = root.join("src");
        let mut files = Vec::new();
        for rel in rust_files(&src) {
            let Some(name) = module_name(&rel) else { continue };
            let text = std::fs::read_to_string(src.join(&rel)).unwrap_or_default();
            files.push((name, format!("src/{}", rel.display()), Source::new(&text)));
        }
        // Files declared `#[cfg(test)] mod x;` are test code, with everything under them.
        let test_only: BTreeSet<String> = files
            .iter()
            .flat_map(|(name, _, s)| {
                s.test_files.iter().map(move |m| join(&[segments(name), vec![m.clone()]].concat()))
            })
            .collect();
        let is_test = |name: &str| test_only.iter().any(|t| name == t || name.starts_with(&format!("{t}::")));
        files.retain(|(name, _, _)| !is_test(name));
        let modules: BTreeMap<String, String> = files.iter().map(|(n, f, _)| (n.clone(), f.clone())).collect();
        let mut edges = Vec::new();
        for (name, file, source) in &files {
            let code = source.code_without_tests();
            for (offset, text, path) in paths(&code) {
                let Some(to) = resolve(&modules, name, &inline_modules(&code, offset), &path) else { continue };
                let line = line_of(&code, offset);
                let seen = edges.iter().any(|e: &Edge| e.file == *file && e.line == line && e.to == to);
                if &to != name && !seen {
                    edges.push(Edge { from: name.clone(), file: file.clone(), line, text, to });
                }
            }
        }
        Tree { modules, edges }
    }
}

/// The names of the inline (non-test) `mod x { … }` blocks enclosing `offset`, outermost first.
fn inline_modules(code: &str, offset: usize) -> Vec<String> {
    let mut out = Vec::new();
    let b = code.as_bytes();
    let mut from = 0;
    while let Some(p) = code[from..].find("mod ") {
        let at = from + p;
        from = at + 4;
        if at > 0 && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_') || at >= offset {
            continue;
        }
        let rest = &code[at + 4..];
        let name: String = rest.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let after = rest.trim_start()[name.len()..].trim_start();
        if !name.is_empty() && after.starts_with('{') {
            let open = code.len() - after.len();
            if offset > open && offset < matching_brace(code, open) {
                out.push(name);
            }
        }
    }
    out
}

/// Resolve a path (`crate`/`super`/`self` first) written in module `from` (inside the inline
/// modules `inline`) to the module file it names: the longest prefix that exists.
fn resolve(modules: &BTreeMap<String, String>, from: &str, inline: &[String], path: &[String]) -> Option<String> {
    let mut cur: Vec<String> = [segments(from), inline.to_vec()].concat();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            cur.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {}
        _ => return None,
    }
    while rest.first().is_some_and(|s| s == "super") {
        cur.pop()?;
        rest = &rest[1..];
    }
    while rest.first().is_some_and(|s| s == "self") {
        rest = &rest[1..];
    }
    let full: Vec<String> = cur.into_iter().chain(rest.iter().cloned()).collect();
    (0..=full.len()).rev().map(|n| join(&full[..n])).find(|m| modules.contains_key(m))
}

/// Every `crate::`/`super::`/`self::` path in cleaned code: (offset, text as written, segments),
/// grouped `use` trees expanded into one path per leaf.
fn paths(code: &str) -> Vec<(usize, String, Vec<String>)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts = ["crate", "super", "self"].into_iter().find(|k| code[i..].starts_with(k));
        let boundary = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b':');
        let Some(k) = starts.filter(|_| boundary) else {
            i += 1;
            continue;
        };
        let after = i + k.len();
        if b.get(after).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_') {
            i = after;
            continue;
        }
        if !code[after..].trim_start().starts_with("::") || in_visibility(code, i) {
            i = after;
            continue;
        }
        let mut leaves = Vec::new();
        let end = tree(code, after, vec![k.to_string()], &mut leaves);
        let text: String = code[i..end].split_whitespace().collect::<Vec<_>>().join(" ");
        for leaf in leaves {
            out.push((i, text.clone(), leaf));
        }
        i = end.max(after);
    }
    out
}

/// `pub(in crate::x)`: the path follows `in` inside `pub(`.
fn in_visibility(code: &str, at: usize) -> bool {
    let before = code[..at].trim_end();
    before.strip_suffix("in").is_some_and(|b| b.trim_end().ends_with('('))
}

/// Parse the rest of a path after `prefix`, starting at `i` (just after the last segment);
/// push one segment list per leaf; return the offset after the path.
fn tree(code: &str, mut i: usize, prefix: Vec<String>, leaves: &mut Vec<Vec<String>>) -> usize {
    let mut segs = prefix;
    loop {
        let rest = &code[i..];
        let ws = rest.len() - rest.trim_start().len();
        if !rest[ws..].starts_with("::") {
            break;
        }
        let j = i + ws + 2;
        let rest = &code[j..];
        let ws = rest.len() - rest.trim_start().len();
        let k = j + ws;
        let rest = &code[k..];
        if rest.starts_with('{') {
            // A group: items separated by commas, each a path relative to `segs`.
            let mut p = k + 1;
            loop {
                let r = &code[p..];
                let ws = r.len() - r.trim_start().len();
                p += ws;
                match code[p..].chars().next() {
                    None => return p,
                    Some('}') => return p + 1,
                    Some(',') => p += 1,
                    Some(_) => {
                        let ident: String =
                            code[p..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '*').collect();
                        if ident.is_empty() {
                            p += 1;
                            continue;
                        }
                        let mut item = segs.clone();
                        if ident != "self" && ident != "*" {
                            item.push(ident.clone());
                        }
                        let before = leaves.len();
                        p = tree(code, p + ident.len(), item.clone(), leaves);
                        if leaves.len() == before {
                            leaves.push(item);
                        }
                        // Skip `as alias`.
                        let r = &code[p..];
                        if let Some(a) = r.trim_start().strip_prefix("as ") {
                            let a = a.trim_start();
                            let alias = a.chars().take_while(|c| c.is_alphanumeric() || *c == '_').count();
                            p = code.len() - a.len() + alias;
                        }
                    }
                }
            }
        }
        let ident: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if ident.is_empty() {
            // `::*`, `::<T>`: the path ends here.
            i = k + rest.starts_with('*') as usize;
            break;
        }
        segs.push(ident.clone());
        i = k + ident.len();
    }
    leaves.push(segs);
    i
}

/// Whether module `name` matches `glob`.
pub fn matches(glob: &str, name: &str) -> bool {
    fn seg(p: &str, s: &str) -> bool {
        match p.split_once('*') {
            None => p == s,
            Some((a, b)) => {
                s.len() >= a.len() && s.starts_with(a) && (0..=s.len() - a.len()).any(|n| seg(b, &s[a.len() + n..]))
            }
        }
    }
    fn go(p: &[&str], s: &[&str]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((&"**", rest)) => (0..=s.len()).any(|n| go(rest, &s[n..])),
            Some((first, rest)) => s.split_first().is_some_and(|(h, t)| seg(first, h) && go(rest, t)),
        }
    }
    let p: Vec<&str> = glob.split("::").map(str::trim).collect();
    let s: Vec<&str> = if name == "crate" { vec!["crate"] } else { name.split("::").collect() };
    go(&p, &s)
}

/// A parsed `import-rules` block.
#[derive(Debug, Default)]
pub struct Rules {
    /// (line in the block, module glob, allowed globs).
    pub allow: Vec<(usize, String, Vec<String>)>,
    /// (line, globs): the modules matching any of the globs.
    pub cycles: Vec<(usize, Vec<String>)>,
}

/// The first fenced block with info string `import-rules` in a Markdown text.
pub fn rules_block(markdown: &str) -> Option<String> {
    let mut lines = markdown.lines();
    lines.find(|l| {
        l.trim_start().starts_with("```") && l.trim_start().trim_start_matches('`').trim() == "import-rules"
    })?;
    Some(lines.take_while(|l| !l.trim_start().starts_with("```")).collect::<Vec<_>>().join("\n"))
}

impl Rules {
    pub fn parse(block: &str) -> Result<Rules, Vec<String>> {
        let (mut rules, mut errors) = (Rules::default(), Vec::new());
        for (n, raw) in block.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let ok_glob = |g: &str| !g.is_empty() && g.chars().all(|c| c.is_alphanumeric() || "_:*".contains(c));
            match split_rule(line) {
                Some((left, right)) if left.trim() == "cycles" => {
                    let globs: Vec<String> = right.split(',').map(|g| g.trim().to_string()).collect();
                    match globs.iter().find(|g| !ok_glob(g)) {
                        Some(bad) => errors.push(format!("rule line {}: bad glob {bad:?}: {raw}", n + 1)),
                        None => rules.cycles.push((n + 1, globs)),
                    }
                }
                Some((left, right)) if ok_glob(left.trim()) => {
                    let allowed: Vec<String> =
                        right.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
                    match allowed.iter().find(|g| !ok_glob(g)) {
                        Some(bad) => errors.push(format!("rule line {}: bad glob {bad:?}: {raw}", n + 1)),
                        None => rules.allow.push((n + 1, left.trim().to_string(), allowed)),
                    }
                }
                _ => errors.push(format!("rule line {}: not `GLOB: GLOB, ...` nor `cycles: GLOB`: {raw}", n + 1)),
            }
        }
        if errors.is_empty() { Ok(rules) } else { Err(errors) }
    }
}

/// Split a rule line at its first single `:` (not part of a `::`).
fn split_rule(line: &str) -> Option<(&str, &str)> {
    let b = line.as_bytes();
    let at = (0..b.len()).find(|&i| b[i] == b':' && b.get(i + 1) != Some(&b':') && (i == 0 || b[i - 1] != b':'))?;
    Some((&line[..at], &line[at + 1..]))
}

/// Every violation of `rules` in `tree`, as `file:line: …` messages.
pub fn check(tree: &Tree, rules: &Rules) -> Vec<String> {
    let mut out = Vec::new();
    for (n, left, _) in &rules.allow {
        if !tree.modules.keys().any(|m| matches(left, m)) {
            out.push(format!("import-rules line {n}: `{left}` matches no module"));
        }
    }
    for (n, globs) in &rules.cycles {
        for glob in globs.iter().filter(|g| !tree.modules.keys().any(|m| matches(g, m))) {
            out.push(format!("import-rules line {n}: `{glob}` in `cycles:` matches no module"));
        }
    }
    for e in &tree.edges {
        let own_sub = e.to.starts_with(&format!("{}::", e.from)) || e.from == "crate";
        if own_sub {
            continue;
        }
        for (n, left, allowed) in &rules.allow {
            if matches(left, &e.from) && !allowed.iter().any(|g| matches(g, &e.to)) {
                out.push(format!(
                    "{}:{}: `{}` imports {} ({}), which rule line {n} (`{left}: {}`) does not allow",
                    e.file,
                    e.line,
                    e.text,
                    e.to,
                    tree.modules.get(&e.to).map_or("?", String::as_str),
                    allowed.join(", ")
                ));
            }
        }
    }
    for (n, globs) in &rules.cycles {
        let scope = |m: &str| globs.iter().any(|g| matches(g, m));
        let line = globs.join(", ");
        out.extend(cycles(tree, &scope).into_iter().map(|c| format!("import-rules line {n} (`cycles: {line}`): {c}")));
    }
    out
}

/// Cycles among the modules matching `glob`: one message per strongly connected component
/// of more than one module in `scope`, naming a cycle and the imports that make it.
fn cycles(tree: &Tree, scope: &dyn Fn(&str) -> bool) -> Vec<String> {
    let nodes: Vec<&String> = tree.modules.keys().filter(|m| scope(m)).collect();
    let mut adj: BTreeMap<&str, BTreeMap<&str, &Edge>> = BTreeMap::new();
    for e in &tree.edges {
        if scope(&e.from) && scope(&e.to) {
            adj.entry(e.from.as_str()).or_default().entry(e.to.as_str()).or_insert(e);
        }
    }
    let mut out = Vec::new();
    let mut reported: BTreeSet<&str> = BTreeSet::new();
    for start in nodes {
        if reported.contains(start.as_str()) {
            continue;
        }
        // Breadth-first from `start` back to itself: the shortest cycle through it.
        let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start.as_str()]);
        let mut found = false;
        while let Some(n) = queue.pop_front() {
            for &m in adj.get(n).map(|a| a.keys().collect::<Vec<_>>()).unwrap_or_default() {
                if m == start {
                    prev.insert(start, n);
                    found = true;
                    break;
                }
                if !prev.contains_key(m) {
                    prev.insert(m, n);
                    queue.push_back(m);
                }
            }
            if found {
                break;
            }
        }
        if !found {
            continue;
        }
        let mut path = vec![start.as_str()];
        let mut cur = prev[start.as_str()];
        while cur != start {
            path.push(cur);
            cur = prev[cur];
        }
        path.push(start);
        path.reverse();
        let steps: Vec<String> = path
            .windows(2)
            .map(|w| {
                let e = adj[w[0]][w[1]];
                format!("{} → {} ({}:{}: `{}`)", w[0], w[1], e.file, e.line, e.text)
            })
            .collect();
        out.push(format!("cycle {}; {}", path.join(" → "), steps.join("; ")));
        reported.extend(path);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake crate: `files` are (path under src/, content).
    fn tree(files: &[(&str, &str)]) -> Tree {
        let dir = tempfile::tempdir().expect("tmp");
        for (p, text) in files {
            let path = dir.path().join("src").join(p);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
            std::fs::write(path, text).expect("write");
        }
        Tree::read(dir.path())
    }

    fn run(files: &[(&str, &str)], rules: &str) -> Vec<String> {
        check(&tree(files), &Rules::parse(rules).expect("rules"))
    }

    const LOCAL: &[(&str, &str)] = &[
        ("lib.rs", "pub mod local;\npub mod roles;\n"),
        ("roles.rs", "pub fn role() {}\n"),
        ("local/mod.rs", "mod router;\nmod store;\nmod blob;\n"),
        ("local/router.rs", "use super::blob::serve;\nuse crate::local::store::Store;\n"),
        ("local/store.rs", "pub struct Store;\n"),
        ("local/blob.rs", "use super::store::Store;\nuse crate::roles;\npub fn serve() {}\n"),
    ];

    const RULES: &str = "# handlers name only the store\nlocal::blob: local::store, roles\nlocal::router: local::*\ncycles: local::**\n";

    #[test]
    fn a_compliant_tree_passes() {
        assert_eq!(run(LOCAL, RULES), Vec::<String>::new());
        let t = tree(LOCAL);
        let edges: Vec<(&str, &str)> = t.edges.iter().map(|e| (e.from.as_str(), e.to.as_str())).collect();
        assert_eq!(
            edges,
            [
                ("local::blob", "local::store"),
                ("local::blob", "roles"),
                ("local::router", "local::blob"),
                ("local::router", "local::store")
            ]
        );
    }

    fn with(path: &str, text: &str) -> Vec<(&'static str, String)> {
        LOCAL.iter().map(|(p, t)| (*p, if *p == path { text.to_string() } else { t.to_string() })).collect()
    }

    fn run_owned(files: &[(&'static str, String)], rules: &str) -> Vec<String> {
        let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
        run(&files, rules)
    }

    #[test]
    fn a_handler_naming_its_router_is_rejected_with_a_cycle() {
        let v = run_owned(&with("local/blob.rs", "use super::store::Store;\nuse super::router::route;\n"), RULES);
        assert!(
            v.iter().any(|m| m.starts_with("src/local/blob.rs:2: `super::router::route` imports local::router")),
            "{v:?}"
        );
        assert!(v.iter().any(|m| m.contains("cycle local::blob → local::router → local::blob")), "{v:?}");
    }

    #[test]
    fn an_inline_super_path_counts() {
        let v = run_owned(&with("local/blob.rs", "pub fn serve() {\n    let _ = super::router::f();\n}\n"), RULES);
        assert!(v.iter().any(|m| m.starts_with("src/local/blob.rs:2: `super::router::f`")), "{v:?}");
    }

    #[test]
    fn a_grouped_multi_line_use_counts() {
        let text = "use crate::{\n    roles,\n    local::{\n        store::Store,\n        router::{route, Other as O},\n    },\n};\n";
        let v = run_owned(&with("local/blob.rs", text), RULES);
        assert!(
            v.iter().any(|m| m.starts_with("src/local/blob.rs:1: ") && m.contains("imports local::router")),
            "{v:?}"
        );
        // One message per module named on the line: `route` and `Other` both go to local::router;
        // `roles` and `store::Store`, deeper in the group, are allowed.
        assert_eq!(v.iter().filter(|m| m.contains("does not allow")).count(), 1, "{v:?}");
        let t = tree(&with("local/blob.rs", text).iter().map(|(p, t)| (*p, t.as_str())).collect::<Vec<_>>());
        let to: BTreeSet<&str> = t.edges.iter().filter(|e| e.from == "local::blob").map(|e| e.to.as_str()).collect();
        assert_eq!(to, BTreeSet::from(["roles", "local::store", "local::router"]));
    }

    #[test]
    fn comments_strings_test_modules_and_visibilities_are_not_imports() {
        let text = "// use super::router;\nconst S: &str = \"super::router::x\";\npub(in crate::local) fn f() {}\n#[cfg(test)]\nmod tests {\n    use super::super::router::route;\n}\n";
        assert_eq!(run_owned(&with("local/blob.rs", text), RULES), Vec::<String>::new());
    }

    #[test]
    fn a_cycle_is_rejected_and_mod_declarations_are_not_edges() {
        let files = [
            ("lib.rs", "mod a;\nmod b;\n"),
            ("a/mod.rs", "mod inner;\nuse crate::b::g;\n"),
            ("a/inner.rs", "pub fn f() { crate::a::f2() }\n"),
            ("b.rs", "pub fn g() { self::h(); crate::a::inner::f(); }\n"),
        ];
        let v = run(&files, "cycles: **\n");
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("cycle a → b → a::inner → a") || v[0].contains("→ a::inner →"), "{v:?}");
        // Scoped to `b` alone, or to `b` and `a::inner`, there is no cycle; `a` closes it.
        assert_eq!(run(&files, "cycles: b\n"), Vec::<String>::new());
        assert_eq!(run(&files, "cycles: b, a::inner\n"), Vec::<String>::new());
        assert_eq!(run(&files, "cycles: b, a::*, a\n").len(), 1);
    }

    #[test]
    fn own_submodules_are_always_allowed_and_longest_existing_prefix_wins() {
        let files = [
            ("lib.rs", "mod a;\nmod c;\n"),
            ("a/mod.rs", "mod sub;\nuse self::sub::X;\nuse crate::c::Thing::method;\n"),
            ("a/sub.rs", "pub struct X;\n"),
            ("c.rs", "pub struct Thing;\n"),
        ];
        assert_eq!(run(&files, "a: c\n"), Vec::<String>::new());
        let v = run(&files, "a:\n");
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("imports c (src/c.rs)"), "{v:?}");
    }

    #[test]
    fn globs_and_bad_rules() {
        assert!(matches("local::**", "local"));
        assert!(matches("local::**", "local::providers::storage"));
        assert!(matches("local::*", "local::blob"));
        assert!(!matches("local::*", "local::providers::storage"));
        assert!(!matches("local::*", "local"));
        assert!(matches("cli*", "cli_engine"));
        assert!(matches("**", "crate"));
        assert!(Rules::parse("this is not a rule\n").is_err());
        assert!(Rules::parse("a: b c\n").is_err());
        let r = Rules::parse("# comment\n\nmodel::**: model::**  # leaf\ncycles: model::**\n").expect("rules");
        assert_eq!((r.allow.len(), r.cycles.len()), (1, 1));
        let v = check(&tree(LOCAL), &Rules::parse("nothing::here: roles\n").expect("rules"));
        assert!(v[0].contains("matches no module"), "{v:?}");
    }
}
