//! Property tests: no input makes validation panic, every span lies inside its file, and
//! the graph algorithms agree with the edges they were given. Case counts are bounded so
//! CI stays fast.

use std::path::Path;

use idlab::graph::{Dag, GraphNode};
use idlab::resolve::{self, Options};
use proptest::prelude::*;

use crate::common::{plan_files, root};

fn plans() -> Vec<String> {
    plan_files().iter().map(|p| std::fs::read_to_string(root().join(p)).expect("read")).collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    Truncate(usize),
    Inject(usize, String),
    Retype(usize, &'static str),
    RenameKey(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let text = proptest::collection::vec(
        prop_oneof![
            Just("${".to_string()),
            Just("}".to_string()),
            Just(":".to_string()),
            Just("- ".to_string()),
            Just("[".to_string()),
            Just("{".to_string()),
            Just("\"".to_string()),
            Just("\t".to_string()),
            Just("\n".to_string()),
            Just("&a *a".to_string()),
            Just("é".to_string()),
            Just("\u{0}".to_string()),
            "[a-z.$]{1,6}",
        ],
        1..4,
    )
    .prop_map(|v| v.concat());
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), text).prop_map(|(i, s)| Mutation::Inject(i, s)),
        (any::<usize>(), prop::sample::select(vec!["[1, 2]", "{a: b}", "123", "true", "\"\"", "null", "${x}", "-1"]))
            .prop_map(|(i, s)| Mutation::Retype(i, s)),
        (any::<usize>(), "[a-z_]{1,10}").prop_map(|(i, s)| Mutation::RenameKey(i, s)),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let pick = |i: usize| i % lines.len().max(1);
    match m {
        Mutation::DeleteLine(i) => {
            let mut l = lines.clone();
            if !l.is_empty() {
                l.remove(pick(*i));
            }
            l.join("\n")
        }
        Mutation::DuplicateLine(i) => {
            let mut l = lines.clone();
            if !l.is_empty() {
                let x = l[pick(*i)];
                l.insert(pick(*i), x);
            }
            l.join("\n")
        }
        Mutation::Truncate(i) => {
            let mut cut = i % (text.len() + 1);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text[..cut].to_string()
        }
        Mutation::Inject(i, s) => {
            let mut at = i % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            format!("{}{s}{}", &text[..at], &text[at..])
        }
        Mutation::Retype(i, v) => {
            let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            let with_value: Vec<usize> = (0..l.len()).filter(|&k| l[k].contains(": ")).collect();
            if let Some(&k) = with_value.get(i % with_value.len().max(1)) {
                let key = l[k].split(": ").next().unwrap_or_default().to_string();
                l[k] = format!("{key}: {v}");
            }
            l.join("\n")
        }
        Mutation::RenameKey(i, new) => {
            let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
            let keyed: Vec<usize> = (0..l.len()).filter(|&k| l[k].trim_start().split(':').count() > 1).collect();
            if let Some(&k) = keyed.get(i % keyed.len().max(1)) {
                let indent = l[k].len() - l[k].trim_start().len();
                let rest = l[k].split_once(':').map(|x| x.1.to_string()).unwrap_or_default();
                l[k] = format!("{}{new}:{rest}", " ".repeat(indent));
            }
            l.join("\n")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_plans_never_panic_and_spans_stay_inside(idx in any::<usize>(), muts in proptest::collection::vec(mutation(), 1..4)) {
        let all = plans();
        let mut text = all[idx % all.len()].clone();
        for m in &muts {
            text = apply(&text, m);
        }
        let loaded = resolve::load_str("mutated.yaml", text.clone(), &root().join("plans"), &Options::default());
        for d in &loaded.diags {
            if let Some(s) = d.span {
                prop_assert!(s.offset + s.len <= text.len(), "{:?} outside {} bytes", d, text.len());
            }
            for (s, _) in &d.related {
                prop_assert!(s.offset + s.len <= text.len(), "{:?} outside {} bytes", d, text.len());
            }
        }
        let _ = idlab::ui::diagnostics::render_text(&loaded, false, 100);
        let _ = idlab::ui::diagnostics::files_json(std::slice::from_ref(&loaded));
    }

    #[test]
    fn topological_order_respects_every_edge(n in 1usize..40, raw in proptest::collection::vec((any::<usize>(), any::<usize>()), 0..120)) {
        let edges: Vec<(usize, usize)> = raw.into_iter().map(|(a, b)| (a % n, b % n)).filter(|(a, b)| a < b).collect();
        let dag = Dag::new(nodes(n), edges.clone());
        let order = dag.topo_order();
        prop_assert!(order.is_some());
        let order = order.unwrap_or_default();
        prop_assert_eq!(order.len(), n);
        let pos: Vec<usize> = { let mut p = vec![0; n]; for (i, &x) in order.iter().enumerate() { p[x] = i; } p };
        for (a, b) in edges {
            prop_assert!(pos[a] < pos[b]);
        }
        prop_assert!(dag.cycles().is_empty());
        let (_, path) = dag.critical_path();
        for w in path.windows(2) {
            prop_assert!(dag.edges().contains(&(w[0], w[1])));
        }
    }

    #[test]
    fn every_reported_cycle_is_a_real_cycle(n in 1usize..25, raw in proptest::collection::vec((any::<usize>(), any::<usize>()), 0..80)) {
        let edges: Vec<(usize, usize)> = raw.into_iter().map(|(a, b)| (a % n, b % n)).collect();
        let dag = Dag::new(nodes(n), edges.clone());
        let cycles = dag.cycles();
        prop_assert_eq!(cycles.is_empty(), dag.topo_order().is_some());
        for c in cycles {
            prop_assert!(!c.is_empty());
            for k in 0..c.len() {
                let (a, b) = (c[k], c[(k + 1) % c.len()]);
                prop_assert!(edges.contains(&(a, b)), "{:?} is not an edge of {:?}", (a, b), edges);
            }
        }
    }
}

fn nodes(n: usize) -> Vec<GraphNode> {
    (0..n).map(|i| GraphNode { name: format!("n{i}"), kind: "k", weight: (i % 7) as u32 + 1 }).collect()
}

#[test]
fn plans_load_in_process_too() {
    for p in plan_files() {
        let loaded = resolve::load(Path::new(&root().join(&p)), &Options::default());
        assert!(!loaded.has_errors(), "{p}: {:?}", loaded.diags);
    }
}
