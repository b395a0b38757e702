//! Parse + validate + build the graph of a generated 10,000-resource plan.
//!
//! Run: `cargo bench --bench parse`. Targets (release): median under 200 ms, peak RSS under
//! 100 MB. The peak resident set of the whole bench process is printed at the end.
#![allow(clippy::print_stdout)]

use std::fmt::Write;
use std::path::Path;

use idlab::resolve::{Options, load_str};

fn main() {
    divan::main();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM"))
    {
        println!("peak RSS of the bench process: {}", line.trim_start_matches("VmHWM:").trim());
    }
}

/// A plan of about `n` resources mixing every common kind; every reference resolves.
fn big_plan(n: usize) -> String {
    let mut s = String::from("name: bench\nlocation: eastus\nresources:\n");
    let mut count = 0;
    let mut i = 0;
    while count < n {
        if i % 12 == 0 {
            let g = i / 12;
            let _ = write!(s, "  rg{g}:\n    type: resource_group\n    name: rg-{g}\n");
            count += 1;
        }
        let g = i / 12;
        let _ = write!(
            s,
            "  id{i}:\n    type: user_assigned_identity\n    name: id-{i}\n    resource_group: ${{rg{g}}}\n\
             \x20 ra{i}:\n    type: role_assignment\n    scope: ${{rg{g}}}\n    principal: ${{id{i}}}\n    role: Reader\n\
             \x20 st{i}:\n    type: storage_account\n    name: st{i:08}\n    resource_group: ${{rg{g}}}\n    sku: Standard_LRS\n\
             \x20 c{i}:\n    type: blob_container\n    name: data-{i}\n    account: ${{st{i}}}\n\
             \x20 kv{i}:\n    type: key_vault\n    name: kv-{i}\n    resource_group: ${{rg{g}}}\n\
             \x20 sec{i}:\n    type: key_vault_secret\n    name: secret-{i}\n    vault: ${{kv{i}}}\n    value: {{ generate: 32 }}\n\
             \x20 pol{i}:\n    type: key_vault_access_policy\n    vault: ${{kv{i}}}\n    principal: ${{id{i}}}\n    secrets: [get, list]\n"
        );
        count += 7;
        if i % 25 == 0 {
            let _ = write!(
                s,
                "  vm{i}:\n    type: virtual_machine\n    name: vm-{i}\n    resource_group: ${{rg{g}}}\n    image: Ubuntu2404\n    admin:\n      username: azureuser\n      password: {{ generate: 24 }}\n    identity:\n      system_assigned: true\n      user_assigned:\n        - ${{id{i}}}\n"
            );
            count += 5;
        }
        i += 1;
    }
    s
}

#[divan::bench(sample_count = 20, sample_size = 1)]
fn parse_validate_graph_10k(bencher: divan::Bencher) {
    let text = big_plan(10_000);
    bencher.with_inputs(|| text.clone()).bench_values(|t| {
        let loaded = load_str("bench.yaml", t, Path::new("."), &Options::default());
        assert!(!loaded.has_errors(), "{:?}", loaded.diags.first());
        let plan = loaded.plan.expect("valid");
        assert!(plan.decls.len() >= 10_000);
        divan::black_box(plan.dag.critical_path());
    });
}
