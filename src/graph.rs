//! The dependency DAG: resources are nodes, references are edges (`from` must exist before
//! `to`). Topological order, cycle detection (every cycle reported as a real path
//! `a → b → a`), the critical path with per-kind weights, and DOT / Mermaid / JSON output.
//!
//! Imports: petgraph, serde_json. No I/O. Deterministic: ties break by declaration order.

use std::collections::{BTreeSet, VecDeque};

use petgraph::Direction::{Incoming, Outgoing};
use petgraph::algo::tarjan_scc;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};

/// A node's label data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphNode {
    pub name: String,
    pub kind: &'static str,
    /// Estimated seconds to create (the kind's weight).
    pub weight: u32,
}

/// The resource graph.
#[derive(Debug, Clone)]
pub struct Dag {
    g: StableDiGraph<usize, ()>,
    nodes: Vec<GraphNode>,
    idx: Vec<NodeIndex>,
}

impl Dag {
    /// Build from nodes and `(from, to)` edges over node positions. Out-of-range edges are
    /// ignored; duplicates are kept once.
    pub fn new(nodes: Vec<GraphNode>, edges: Vec<(usize, usize)>) -> Dag {
        let mut g = StableDiGraph::with_capacity(nodes.len(), edges.len());
        let idx: Vec<NodeIndex> = (0..nodes.len()).map(|i| g.add_node(i)).collect();
        let mut seen = BTreeSet::new();
        for (a, b) in edges {
            if a < idx.len() && b < idx.len() && seen.insert((a, b)) {
                g.add_edge(idx[a], idx[b], ());
            }
        }
        Dag { g, nodes, idx }
    }

    pub fn nodes(&self) -> &[GraphNode] {
        &self.nodes
    }

    /// Every edge as `(from, to)`, sorted.
    pub fn edges(&self) -> Vec<(usize, usize)> {
        let mut e: Vec<(usize, usize)> = self
            .g
            .edge_indices()
            .filter_map(|e| self.g.edge_endpoints(e))
            .map(|(a, b)| (self.g[a], self.g[b]))
            .collect();
        e.sort_unstable();
        e
    }

    fn succ(&self, i: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self.g.neighbors_directed(self.idx[i], Outgoing).map(|n| self.g[n]).collect();
        v.sort_unstable();
        v
    }

    /// Direct dependencies of node `i`.
    pub fn dependencies(&self, i: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self.g.neighbors_directed(self.idx[i], Incoming).map(|n| self.g[n]).collect();
        v.sort_unstable();
        v
    }

    /// A topological order (Kahn's algorithm, lowest declaration index first among the
    /// ready nodes), or `None` when there is a cycle.
    pub fn topo_order(&self) -> Option<Vec<usize>> {
        let n = self.nodes.len();
        let mut indeg: Vec<usize> = (0..n).map(|i| self.dependencies(i).len()).collect();
        let mut ready: BTreeSet<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(i) = ready.pop_first() {
            order.push(i);
            for s in self.succ(i) {
                indeg[s] -= 1;
                if indeg[s] == 0 {
                    ready.insert(s);
                }
            }
        }
        (order.len() == n).then_some(order)
    }

    /// Every cycle, one per strongly connected component, as a node path `[a, b, c]` meaning
    /// `a → b → c → a`. Empty when the graph is a DAG.
    pub fn cycles(&self) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        for scc in tarjan_scc(&self.g) {
            let members: BTreeSet<usize> = scc.iter().map(|n| self.g[*n]).collect();
            let self_loop = scc.len() == 1 && self.g.contains_edge(scc[0], scc[0]);
            if members.len() < 2 && !self_loop {
                continue;
            }
            let Some(&start) = members.first() else { continue };
            if self_loop {
                out.push(vec![start]);
                continue;
            }
            // Shortest path start → … → start inside the component (BFS).
            let mut parent: Vec<Option<usize>> = vec![None; self.nodes.len()];
            let mut queue = VecDeque::from([start]);
            let mut found = None;
            while let Some(u) = queue.pop_front() {
                for v in self.succ(u) {
                    if !members.contains(&v) {
                        continue;
                    }
                    if v == start {
                        found = Some(u);
                        break;
                    }
                    if parent[v].is_none() {
                        parent[v] = Some(u);
                        queue.push_back(v);
                    }
                }
                if found.is_some() {
                    break;
                }
            }
            let Some(mut cur) = found else { continue };
            let mut path = vec![cur];
            while cur != start {
                let Some(p) = parent[cur] else { break };
                cur = p;
                path.push(cur);
            }
            path.reverse();
            out.push(path);
        }
        out.sort();
        out
    }

    /// For each node: its weight plus the heaviest chain of nodes that depend on it — the
    /// scheduling priority (cargo's "longest remaining path").
    pub fn remaining_cost(&self) -> Vec<u64> {
        let order = self.topo_order().unwrap_or_else(|| (0..self.nodes.len()).collect());
        let mut cost = vec![0u64; self.nodes.len()];
        for &i in order.iter().rev() {
            let tail = self.succ(i).iter().map(|&s| cost[s]).max().unwrap_or(0);
            cost[i] = u64::from(self.nodes[i].weight) + tail;
        }
        cost
    }

    /// The critical path: the chain of dependent nodes with the largest total weight.
    /// Returns `(total weight, path from first to last)`.
    pub fn critical_path(&self) -> (u64, Vec<usize>) {
        let Some(order) = self.topo_order() else {
            return (0, Vec::new());
        };
        let mut best = vec![0u64; self.nodes.len()];
        let mut prev: Vec<Option<usize>> = vec![None; self.nodes.len()];
        for &i in &order {
            let from = self.dependencies(i).into_iter().max_by_key(|&d| (best[d], std::cmp::Reverse(d)));
            best[i] = u64::from(self.nodes[i].weight) + from.map_or(0, |d| best[d]);
            prev[i] = from;
        }
        let Some(end) = (0..self.nodes.len()).max_by_key(|&i| (best[i], std::cmp::Reverse(i))) else {
            return (0, Vec::new());
        };
        let mut path = vec![end];
        let mut cur = end;
        while let Some(p) = prev[cur] {
            path.push(p);
            cur = p;
        }
        path.reverse();
        (best[end], path)
    }

    /// Graphviz DOT.
    pub fn to_dot(&self) -> String {
        let mut s = String::from("digraph idlab {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
        for (i, n) in self.nodes.iter().enumerate() {
            s.push_str(&format!("  n{i} [label=\"{}\\n({})\"];\n", escape_dot(&n.name), n.kind));
        }
        for (a, b) in self.edges() {
            s.push_str(&format!("  n{a} -> n{b};\n"));
        }
        s.push_str("}\n");
        s
    }

    /// Mermaid flowchart.
    pub fn to_mermaid(&self) -> String {
        let mut s = String::from("flowchart LR\n");
        for (i, n) in self.nodes.iter().enumerate() {
            s.push_str(&format!("  n{i}[\"{}<br/><small>{}</small>\"]\n", n.name.replace('"', "#quot;"), n.kind));
        }
        for (a, b) in self.edges() {
            s.push_str(&format!("  n{a} --> n{b}\n"));
        }
        s
    }

    /// JSON: nodes, edges (by name), topological order and critical path.
    pub fn to_json(&self) -> serde_json::Value {
        let name = |i: usize| self.nodes[i].name.clone();
        let (total, path) = self.critical_path();
        serde_json::json!({
            "nodes": self.nodes.iter().map(|n| serde_json::json!({"name": n.name, "type": n.kind, "weight": n.weight})).collect::<Vec<_>>(),
            "edges": self.edges().into_iter().map(|(a, b)| [name(a), name(b)]).collect::<Vec<_>>(),
            "order": self.topo_order().unwrap_or_default().into_iter().map(name).collect::<Vec<_>>(),
            "critical_path": { "weight": total, "nodes": path.into_iter().map(name).collect::<Vec<_>>() },
        })
    }
}

fn escape_dot(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dag(n: usize, edges: &[(usize, usize)], weights: &[u32]) -> Dag {
        let nodes = (0..n)
            .map(|i| GraphNode { name: format!("n{i}"), kind: "k", weight: weights.get(i).copied().unwrap_or(1) })
            .collect();
        Dag::new(nodes, edges.to_vec())
    }

    #[test]
    fn topo_and_critical_path() {
        let d = dag(4, &[(0, 1), (0, 2), (1, 3), (2, 3)], &[1, 10, 2, 1]);
        assert_eq!(d.topo_order(), Some(vec![0, 1, 2, 3]));
        assert_eq!(d.critical_path(), (12, vec![0, 1, 3]));
        assert_eq!(d.remaining_cost(), vec![12, 11, 3, 1]);
        assert!(d.cycles().is_empty());
    }

    #[test]
    fn cycle_is_a_path() {
        let d = dag(4, &[(0, 1), (1, 2), (2, 0), (2, 3)], &[]);
        assert_eq!(d.topo_order(), None);
        assert_eq!(d.cycles(), vec![vec![0, 1, 2]]);
    }
}
