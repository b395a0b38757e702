//! The DAG of the tutorial plans, through the real binary.

use crate::common::idlab;

fn edges_of(plan: &str) -> Vec<(String, String)> {
    let run = idlab(&["graph", plan, "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.render());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    v["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| (e[0].as_str().unwrap_or_default().to_string(), e[1].as_str().unwrap_or_default().to_string()))
        .collect()
}

#[test]
fn tutorials_plan_has_exactly_these_edges() {
    let mut got = edges_of("plans/tutorials.yaml");
    got.sort();
    let mut want: Vec<(String, String)> = [
        ("rg", "id1"),
        ("rg", "vm"),
        ("rg", "vm-reader"),
        ("rg", "id1-reader"),
        ("rg", "storage"),
        ("rg", "kv"),
        ("rg", "adls"),
        ("rg", "sql"),
        ("rg", "vm:vnet"),
        ("rg", "vm:nsg"),
        ("rg", "vm:pip"),
        ("rg", "vm:nic"),
        ("id1", "vm"),
        ("id1", "id1-reader"),
        ("vm", "vm-reader"),
        ("vm", "vm-blob-reader"),
        ("vm", "vm-account-contributor"),
        ("vm", "vm-policy"),
        ("vm", "root"),
        ("vm", "testfolder"),
        ("storage", "container"),
        ("storage", "vm-account-contributor"),
        ("container", "hello"),
        ("container", "vm-blob-reader"),
        ("kv", "secret"),
        ("kv", "vm-policy"),
        // The deploying principal's access policy on the vault comes after the vault, and
        // what uses the vault's secrets comes after it.
        ("rg", "kv:creator"),
        ("kv", "kv:creator"),
        ("kv:creator", "secret"),
        ("kv:creator", "vm-policy"),
        ("adls", "root"),
        ("adls", "testfolder"),
        ("root", "testfolder"),
        ("sql", "sql-admin"),
        ("sql", "db"),
        ("vm:vnet", "vm:nic"),
        ("vm:nsg", "vm:nic"),
        ("vm:pip", "vm:nic"),
        ("vm:nic", "vm"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn json_order_is_topological_and_critical_path_runs_through_the_vm() {
    let run = idlab(&["graph", "plans/tutorials.yaml", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let order: Vec<&str> = v["order"].as_array().expect("order").iter().filter_map(|x| x.as_str()).collect();
    let pos = |n: &str| order.iter().position(|x| *x == n).expect("node in order");
    for (a, b) in edges_of("plans/tutorials.yaml") {
        assert!(pos(&a) < pos(&b), "{a} before {b}");
    }
    let path: Vec<&str> =
        v["critical_path"]["nodes"].as_array().expect("path").iter().filter_map(|x| x.as_str()).collect();
    assert_eq!(path.first(), Some(&"rg"));
    assert!(path.contains(&"vm"), "{path:?}");
}

#[test]
fn mermaid_and_dot_render_every_node_and_edge() {
    let m = idlab(&["graph", "plans/tutorials.yaml", "--format", "mermaid"]);
    assert_eq!(m.code, 0);
    assert!(m.stdout.starts_with("flowchart LR\n"));
    assert_eq!(m.stdout.matches(" --> ").count(), 39);
    assert!(m.stdout.contains("vm:nic<br/><small>network_interface</small>"));
    let d = idlab(&["graph", "plans/tutorials.yaml", "--format", "dot"]);
    assert!(d.stdout.starts_with("digraph idlab {"));
    assert_eq!(d.stdout.matches(" -> ").count(), 39);
}

#[test]
fn graph_of_an_invalid_plan_fails_with_its_diagnostics() {
    let run = idlab(&["graph", "tests/fixtures/bad/E015-dependency-cycle.yaml"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("dependency cycle: a → b → a"), "{}", run.render());
    assert_eq!(run.stdout, "");
}
