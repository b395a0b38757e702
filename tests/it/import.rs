//! `idlab import` through the real binary against the local cloud (issue 17, item 2): the
//! plan it writes validates and plans clean against the groups it was written from; `--out`
//! never overwrites without `--force` and never leaves half a file; a missing group is named;
//! the same groups give the same bytes; kinds idlab does not manage are listed.

use serde_json::json;

use crate::common::{Served, idlab};

const ARM_PLAN: &str = "plans/arm-user-assigned.yaml";
const ARM_GROUP: &str = "myResourceGroupVM";

/// `idlab import -g GROUP... ARGS`.
fn import(s: &Served, groups: &[&str], args: &[&str]) -> crate::common::Run {
    let mut a = vec!["import"];
    for g in groups {
        a.extend(["--resource-group", g]);
    }
    a.extend(args);
    s.idlab(&a)
}

fn applied(s: &Served, plan: &str, args: &[&str]) {
    let mut a = vec!["apply", plan, "--auto-approve", "--no-progress"];
    a.extend(args);
    let r = s.idlab(&a);
    assert_eq!(r.code, 0, "{}", r.render());
}

#[test]
fn a_tutorial_idlab_made_imports_to_a_plan_that_validates_and_plans_clean() {
    let s = Served::start();
    applied(&s, ARM_PLAN, &[]);
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("imported.yaml");
    let f = file.to_str().expect("utf-8");
    // The tutorial's plan name, so that idlab's own tags count as this plan's.
    let r = import(&s, &[ARM_GROUP], &["--name", "arm-user-assigned", "--out", f]);
    assert_eq!(r.code, 0, "{}", r.render());
    assert!(r.stdout.is_empty(), "--out writes the file, not stdout: {}", r.stdout);
    let text = std::fs::read_to_string(&file).expect("written");
    // The tutorial's shape: the group and identity as references, the network as the VM's
    // named block (no interface of its own), the Reader assignment by role name.
    for want in [
        "name: arm-user-assigned\n",
        "  rg:\n    type: resource_group\n    name: myResourceGroupVM\n",
        "  id1:\n    type: user_assigned_identity\n    name: ID1\n    resource_group: ${rg}\n",
        "    image: Win2019Datacenter\n",
        "    network:\n      vnet: myVnet\n      subnet: mySubnet\n      nsg: myNetworkSecurityGroup\n      public_ip: myPublicIpAddress\n",
        "    identity:\n      user_assigned:\n        - ${id1}\n",
        "  id1-reader:\n    type: role_assignment\n    scope: ${rg}\n    principal: ${id1}\n    role: Reader\n",
        "      password: { env: MYVM_ADMIN_PASSWORD }\n",
    ] {
        assert!(text.contains(want), "missing\n{want}\nin\n{text}");
    }
    assert!(!text.contains("type: network_interface"), "{text}");
    // The OS disk and the network `network:` makes are implicit, listed, not declared.
    assert!(text.contains("#   Microsoft.Compute/disks  myVM_OsDisk_1_"), "{text}");
    assert!(text.contains("#   Microsoft.Network/networkInterfaces  myVM  (network interface of myvm)"), "{text}");
    let v = idlab(&["validate", f]);
    assert_eq!(v.code, 0, "{}", v.render());
    let p = s.idlab_env(&["plan", f, "--detailed-exitcode"], &[("MYVM_ADMIN_PASSWORD", "unused-Pa55word")]);
    assert_eq!(p.code, 0, "{}\n{text}", p.render());
    assert!(p.stdout.contains("No changes."), "{}", p.stdout);
    // Same groups, same bytes (to stdout this time).
    let again = import(&s, &[ARM_GROUP], &["--name", "arm-user-assigned"]);
    assert_eq!(again.code, 0, "{}", again.render());
    assert_eq!(again.stdout, text);
}

#[test]
fn out_never_replaces_a_file_without_force_and_never_leaves_half_a_file() {
    let s = Served::start();
    applied(&s, ARM_PLAN, &[]);
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("plan.yaml");
    std::fs::write(&file, "keep me\n").expect("write");
    let f = file.to_str().expect("utf-8");
    let r = import(&s, &[ARM_GROUP], &["--out", f]);
    assert_eq!(r.code, 1, "{}", r.render());
    assert!(r.stderr.contains(&format!("{f} exists: pass --force to overwrite it")), "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "keep me\n");
    let r = import(&s, &[ARM_GROUP], &["--out", f, "--force"]);
    assert_eq!(r.code, 0, "{}", r.render());
    let text = std::fs::read_to_string(&file).expect("read");
    assert!(text.starts_with("# Written by `idlab import`"), "{text}");
    // Only the plan is left in the directory: the file it was written through is gone.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    assert_eq!(names, ["plan.yaml"]);
}

#[test]
fn a_group_that_does_not_exist_is_named_and_nothing_is_written() {
    let s = Served::start();
    applied(&s, ARM_PLAN, &[]);
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("plan.yaml");
    let r = import(&s, &[ARM_GROUP, "noSuchGroup"], &["--out", file.to_str().expect("utf-8")]);
    assert_eq!(r.code, 1, "{}", r.render());
    assert!(r.stderr.contains("resource group `noSuchGroup` does not exist in subscription"), "{}", r.stderr);
    assert!(!file.exists());
}

#[test]
fn kinds_idlab_does_not_manage_are_listed_at_the_end() {
    let s = Served::start();
    applied(&s, ARM_PLAN, &[]);
    // A disk of its own (no VM made it): idlab has no kind for it.
    let disk = format!(
        "/subscriptions/{}/resourceGroups/{ARM_GROUP}/providers/Microsoft.Compute/disks/spare-disk?api-version=2024-03-02",
        s.subscription()
    );
    let made = s.op(
        "PUT",
        &disk,
        Some(json!({ "location": "eastus", "sku": { "name": "Standard_LRS" },
            "properties": { "creationData": { "createOption": "Empty" }, "diskSizeGB": 4 } })),
    );
    assert!(made.get("id").is_some(), "{made}");
    let r = import(&s, &[ARM_GROUP], &[]);
    assert_eq!(r.code, 0, "{}", r.render());
    let tail = r.stdout.split("# Not declared: kinds idlab does not manage or import").nth(1).expect("a block");
    assert!(tail.contains("#   Microsoft.Compute/disks  spare-disk\n"), "{}", r.stdout);
    assert!(!r.stdout.contains("name: spare-disk"), "{}", r.stdout);
    assert!(r.stderr.contains("1 of kinds idlab does not manage are listed at the end"), "{}", r.stderr);
}

#[test]
fn scratch_handmade() {
    use crate::common::handmade;
    let s = Served::start();
    let made = handmade::keyvault(&s, &handmade::Options::keyvault());
    let r = import(&s, &[&made.group], &["--name", "keyvault"]);
    println!("{}", r.render());
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("p.yaml");
    std::fs::write(&file, &r.stdout).unwrap();
    let p = s.idlab_env(
        &["plan", file.to_str().unwrap(), "--adopt"],
        &[
            ("MYVM_ADMIN_PASSWORD", "Pa55word!Pa55word"),
            ("IDLAB_TUTORIAL_KV_TUTORIAL_SECRET", &made.vault.as_ref().unwrap().secret_value),
        ],
    );
    println!("{}", p.render());
    let p = s.idlab_env(
        &["apply", file.to_str().unwrap(), "--adopt", "--auto-approve", "--no-progress"],
        &[
            ("MYVM_ADMIN_PASSWORD", "Pa55word!Pa55word"),
            ("IDLAB_TUTORIAL_KV_TUTORIAL_SECRET", &made.vault.as_ref().unwrap().secret_value),
        ],
    );
    println!("{}", p.render());
    let p = s.idlab_env(
        &["plan", file.to_str().unwrap(), "--detailed-exitcode"],
        &[
            ("MYVM_ADMIN_PASSWORD", "Pa55word!Pa55word"),
            ("IDLAB_TUTORIAL_KV_TUTORIAL_SECRET", &made.vault.as_ref().unwrap().secret_value),
        ],
    );
    println!("{}", p.render());
    panic!();
}
