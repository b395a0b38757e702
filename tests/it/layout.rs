//! Guard rails on the source tree, by reading files (no build, no network): the import rules
//! of `docs/architecture.md`, file sizes, kind names spelled as literals, sleeping retry loops,
//! and the architecture document against the tree.

// Public to the test crate: other guard tests (e.g. a local-cloud layout test) run the same
// import checker with rules of their own.
pub(crate) mod imports;
pub(crate) mod source;

use crate::common::root;

use imports::{Rules, Tree, check, rules_block};

#[test]
fn imports_follow_the_rules_in_the_architecture_document() {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).expect("docs/architecture.md");
    let block = rules_block(&doc).expect("docs/architecture.md has a fenced `import-rules` block");
    let rules = Rules::parse(&block).unwrap_or_else(|e| panic!("import-rules:\n{}", e.join("\n")));
    let violations = check(&Tree::read(&root()), &rules);
    assert!(violations.is_empty(), "import rules broken:\n{}", violations.join("\n"));
}

/// Files under `src/`: (path relative to the root, e.g. `src/engine/walk.rs`, text), without
/// the files of `#[cfg(test)] mod x;` declarations.
pub(crate) fn src_files() -> Vec<(String, String)> {
    let modules = Tree::read(&root()).modules;
    imports::rust_files(&root().join("src"))
        .into_iter()
        .filter(|rel| rel.as_os_str() == "main.rs" || modules.values().any(|f| *f == format!("src/{}", rel.display())))
        .map(|rel| {
            let text = std::fs::read_to_string(root().join("src").join(&rel)).expect("source file");
            (format!("src/{}", rel.display()), text)
        })
        .collect()
}

/// An allowlist that can only shrink: every listed file must still offend, and every offender
/// must be listed.
fn shrink_only(what: &str, offenders: &[(String, String)], allowed: &[&str]) {
    let unlisted: Vec<String> = offenders
        .iter()
        .filter(|(f, _)| !allowed.contains(&f.as_str()))
        .map(|(f, why)| format!("{f}: {why}"))
        .collect();
    let stale: Vec<&&str> = allowed.iter().filter(|a| !offenders.iter().any(|(f, _)| f == **a)).collect();
    assert!(unlisted.is_empty(), "{what}:\n{}", unlisted.join("\n"));
    assert!(stale.is_empty(), "{what}: these files no longer offend; take them off the allowlist: {stale:?}");
}

/// The most lines a source file may have.
const MAX_LINES: usize = 900;

/// Files over `MAX_LINES` today, until they are split (the list only shrinks).
const OVER_MAX_LINES: &[&str] = &[];

#[test]
fn no_source_file_is_over_900_lines() {
    let over: Vec<(String, String)> = src_files()
        .into_iter()
        .filter_map(|(f, text)| {
            let n = text.lines().count();
            (n > MAX_LINES).then(|| (f, format!("{n} lines, over {MAX_LINES}")))
        })
        .collect();
    shrink_only("source files over the size limit", &over, OVER_MAX_LINES);
}

/// Files outside `src/kinds/` that spell a kind's YAML type name as a string literal today
/// (the list only shrinks; use the kind's `type_name()` or a constant of `kinds` instead).
const KIND_NAME_LITERALS: &[&str] = &[];

#[test]
fn kind_type_names_are_spelled_only_in_the_kinds_modules() {
    let names: Vec<&str> = idlab::kinds::KINDS.iter().map(|k| k.type_name()).collect();
    assert!(names.len() > 10, "{names:?}");
    let mut found = Vec::new();
    for (f, text) in src_files() {
        // The local cloud knows nothing of idlab's kinds (its import rules forbid `kinds`): a
        // `"blob"` there is Azure's storage service name (`primaryEndpoints.blob`, the blob
        // port), never a plan kind.
        if f.starts_with("src/kinds/") || f.starts_with("src/local/") {
            continue;
        }
        let s = source::Source::new(&text);
        for (at, lit) in &s.strings {
            if names.contains(&lit.as_str()) && !s.in_test(*at) {
                found.push((f.clone(), format!("line {}: \"{lit}\"", source::line_of(&text, *at))));
            }
        }
    }
    shrink_only("kind type names as string literals outside src/kinds/", &found, KIND_NAME_LITERALS);
}

/// Files of `src/engine/` and `src/verify/` that still sleep in a retry loop today (the list
/// only shrinks).
const SLEEPING: &[&str] = &[];

#[test]
fn engine_and_verify_do_not_sleep_in_retry_loops() {
    let mut found = Vec::new();
    for (f, text) in src_files() {
        if !(f.starts_with("src/engine/") || f.starts_with("src/verify/")) {
            continue;
        }
        let code = source::Source::new(&text).code_without_tests();
        let mut from = 0;
        while let Some(p) = code[from..].find("sleep") {
            let at = from + p;
            from = at + 5;
            let before_ok =
                at == 0 || !code.as_bytes()[at - 1].is_ascii_alphanumeric() && code.as_bytes()[at - 1] != b'_';
            if before_ok && code[at + 5..].trim_start().starts_with('(') {
                found.push((f.clone(), format!("line {}: sleep(", source::line_of(&code, at))));
            }
        }
    }
    shrink_only("sleep( calls in src/engine/ or src/verify/", &found, SLEEPING);
}

/// Inline code spans (`…`) outside fenced blocks, with their line.
fn inline_code(markdown: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (n, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let parts: Vec<&str> = line.split('`').collect();
        out.extend(parts.iter().skip(1).step_by(2).filter(|_| parts.len() > 2).map(|p| (n + 1, p.to_string())));
    }
    out
}

/// The cells of the module table (the one whose header starts `| module |`), row by row.
fn module_table(markdown: &str) -> Vec<Vec<String>> {
    markdown
        .lines()
        .skip_while(|l| !l.starts_with("| module |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect())
        .collect()
}

/// The backticked words of a Markdown fragment.
fn ticked(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// Whether a module file (relative to `src/`, e.g. `local/blob.rs`) appears in the table: as a
/// row of its own (`roles.rs`, `kinds/env.rs`, `model/` for `model/mod.rs`), or by name in the
/// row of a directory above it (`yaml` or `yaml.rs` in the `model/` row; `b::c` or `b/c` for
/// `a/b/c.rs` in the `a/` row).
fn in_table(rows: &[Vec<String>], file: &str) -> bool {
    rows.iter().any(|row| {
        let heads = ticked(row.first().map_or("", String::as_str));
        let words = ticked(&row.join(" | "));
        heads.iter().any(|h| {
            if h == file || file.strip_suffix("mod.rs") == Some(h.as_str()) {
                return true;
            }
            let Some(rest) = h.ends_with('/').then(|| file.strip_prefix(h.as_str())).flatten() else { return false };
            let stem = rest.strip_suffix("/mod.rs").or(rest.strip_suffix(".rs")).unwrap_or(rest);
            let forms = [stem.to_string(), format!("{stem}.rs"), format!("{stem}/"), stem.replace('/', "::")];
            rest == "mod.rs" || words.iter().any(|w| forms.contains(w))
        })
    })
}

#[test]
fn the_architecture_document_names_every_module_and_only_files_that_exist() {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md")).expect("docs/architecture.md");
    let mut problems = Vec::new();
    // Every path it names exists: `src/…` and other repository paths from the root, the
    // module table's `dir/` and `file.rs` from `src/`.
    for (line, code) in inline_code(&doc) {
        let pathlike = !code.contains(' ')
            && (code.contains('/') || code.ends_with(".rs"))
            && code.chars().all(|c| c.is_alphanumeric() || "_./-".contains(c))
            && !code.starts_with('/');
        if pathlike && !root().join(&code).exists() && !root().join("src").join(&code).exists() {
            problems.push(format!("docs/architecture.md:{line}: `{code}` does not exist"));
        }
    }
    // Every module path it names (`arm::id`, `local::blob`) is a module file.
    let modules = Tree::read(&root()).modules;
    for (line, code) in inline_code(&doc) {
        let segs: Vec<&str> = code.split("::").collect();
        let modlike = segs.len() > 1
            && segs
                .iter()
                .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        if modlike && modules.keys().any(|m| m == segs[0]) && !modules.contains_key(&code) {
            problems.push(format!("docs/architecture.md:{line}: module `{code}` does not exist"));
        }
    }
    // Every module file appears in the module table.
    let rows = module_table(&doc);
    assert!(!rows.is_empty(), "docs/architecture.md has no table headed `| module |`");
    for rel in imports::rust_files(&root().join("src")) {
        let file = rel.display().to_string();
        if !in_table(&rows, &file) {
            problems.push(format!("src/{file} is not in the module table of docs/architecture.md"));
        }
    }
    // One line per resource family naming its plan kind, client, local provider and verify check.
    let families: Vec<&str> = doc
        .lines()
        .skip_while(|l| l.trim() != "## Resource families")
        .skip(1)
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("- "))
        .collect();
    assert!(families.len() >= 8, "docs/architecture.md: `## Resource families` lists {} families", families.len());
    for f in families {
        let named = ticked(f);
        for (what, dirs) in [
            ("plan kind", &["src/kinds/"][..]),
            ("client", &["src/arm/", "src/engine/"][..]),
            ("local", &["src/local/"][..]),
            ("verify", &["src/verify/"][..]),
        ] {
            if !f.contains(what) || !named.iter().any(|n| dirs.iter().any(|d| n.starts_with(d))) {
                problems.push(format!("resource family line names no {what} file: {f}"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_module_table_check_sees_a_missing_module() {
    let rows = module_table(
        "| module | owns | may import |\n|---|---|---|\n| `model/` | the tree (`yaml`), spans (`span.rs`) | — |\n| `kinds/env.rs` | x | y |\n| `a/` | `b::c` | z |\n",
    );
    assert!(in_table(&rows, "model/mod.rs"));
    assert!(in_table(&rows, "model/yaml.rs"));
    assert!(in_table(&rows, "model/span.rs"));
    assert!(in_table(&rows, "kinds/env.rs"));
    assert!(in_table(&rows, "a/b/c.rs"));
    assert!(!in_table(&rows, "model/de.rs"));
    assert!(!in_table(&rows, "kinds/vm.rs"));
    assert!(!in_table(&rows, "roles.rs"));
}
