//! `idlab import` through the real binary against the local cloud (issue 17, item 2): the
//! plan it writes validates and plans clean against the groups it was written from; `--out`
//! never overwrites without `--force` and never leaves half a file; a missing group is named;
//! the same groups give the same bytes; kinds idlab does not manage are listed.

use serde_json::{Value, json};

use crate::common::handmade;
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

/// The tutorial applied, then a resource added to its group by hand (`PUT {provider path}`).
fn tutorial_and(s: &Served, path: &str, body: Value) {
    applied(s, ARM_PLAN, &[]);
    let id = format!("/subscriptions/{}/resourceGroups/{ARM_GROUP}/providers/{path}", s.subscription());
    let made = s.op("PUT", &id, Some(body));
    assert!(made.get("id").is_some(), "{made}");
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
    // A disk of its own (no VM made it): idlab has no kind for it.
    tutorial_and(
        &s,
        "Microsoft.Compute/disks/spare-disk?api-version=2024-03-02",
        json!({ "location": "eastus", "sku": { "name": "Standard_LRS" },
            "properties": { "creationData": { "createOption": "Empty" }, "diskSizeGB": 4 } }),
    );
    let r = import(&s, &[ARM_GROUP], &[]);
    assert_eq!(r.code, 0, "{}", r.render());
    let tail = r.stdout.split("# Not declared: kinds idlab does not manage or import").nth(1).expect("a block");
    assert!(tail.contains("#   Microsoft.Compute/disks  spare-disk\n"), "{}", r.stdout);
    assert!(!r.stdout.contains("name: spare-disk"), "{}", r.stdout);
    assert!(r.stderr.contains("1 of kinds idlab does not manage are listed at the end"), "{}", r.stderr);
}

/// What every hand-made round trip checks, from `import` to `destroy`: the plan validates;
/// `plan --adopt` shows only adoptions whose only change is the plan's tag; `apply --adopt`
/// takes everything over, after which the plan has no changes and a second import writes the
/// same bytes; `destroy` removes the group. Answers the written plan.
fn round_trip(s: &Served, group: &str, plan: &str, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join(format!("{plan}.yaml"));
    let f = file.to_str().expect("utf-8");
    let r = import(s, &[group], &["--name", plan, "--out", f]);
    assert_eq!(r.code, 0, "{}", r.render());
    // Its own check, offline, finds nothing a plan would change.
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
    let text = std::fs::read_to_string(&file).expect("written");
    // Every file the plan names was written next to it.
    for l in text.lines().filter_map(|l| l.trim_start().strip_prefix("source: ")) {
        assert!(dir.path().join(l).is_file(), "{l} not written\n{text}");
    }
    // References, not ids: no field holds an ARM id.
    let ids: Vec<&str> =
        text.lines().filter(|l| !l.trim_start().starts_with('#') && l.contains("/subscriptions/")).collect();
    assert!(ids.is_empty(), "{ids:?}\n{text}");
    let v = idlab(&["validate", f]);
    assert_eq!(v.code, 0, "{}", v.render());
    let p = s.idlab_env(&["plan", f, "--adopt", "--format", "json"], env);
    assert_eq!(p.code, 0, "{}\n{text}", p.render());
    let json: Value = serde_json::from_str(&p.stdout).expect("plan JSON");
    let actions = json["actions"].as_array().expect("actions");
    assert!(actions.iter().any(|a| a["action"] == "adopt"), "{}", p.stdout);
    for a in actions {
        // The plan's mark is the one change: its tag, a container's metadata, a role
        // assignment's description.
        let mark = |c: &Value| {
            c["path"] == "tags"
                || c["path"] == "properties/metadata/idlab_plan"
                || c["path"] == "properties/description"
                    && c["new"].as_str().is_some_and(|d| d.starts_with("idlab plan "))
        };
        let changed: Vec<&str> = a["changes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| !mark(c))
            .filter_map(|c| c["path"].as_str())
            .collect();
        assert!(
            matches!(a["action"].as_str(), Some("adopt" | "no_op")) && changed.is_empty(),
            "{} would be {} changing {changed:?}\n{text}",
            a["name"],
            a["action"]
        );
    }
    let adopted = actions.iter().filter(|a| a["action"] == "adopt").count();
    let a = s.idlab_env(&["apply", f, "--adopt", "--auto-approve", "--no-progress"], env);
    assert_eq!(a.code, 0, "{}", a.render());
    assert!(
        a.stderr.contains(&format!("0 created, 0 updated, 0 replaced, 0 deleted, {adopted} adopted")),
        "{}",
        a.stderr
    );
    let again = s.idlab_env(&["plan", f, "--detailed-exitcode"], env);
    assert_eq!(again.code, 0, "{}\n{text}", again.render());
    // idlab's own marks are not the person's: the groups import the same after the takeover.
    let dir2 = tempfile::tempdir().expect("tmp");
    let file2 = dir2.path().join(format!("{plan}.yaml"));
    let second = import(s, &[group], &["--name", plan, "--out", file2.to_str().expect("utf-8")]);
    assert_eq!(second.code, 0, "{}", second.render());
    assert_eq!(std::fs::read_to_string(&file2).expect("written"), text);
    let d = s.idlab_env(&["destroy", f, "--auto-approve", "--no-progress"], env);
    assert_eq!(d.code, 0, "{}", d.render());
    assert!(!handmade::group_exists(s, group), "{}", d.render());
    assert!(handmade::resources_in(s, group).is_empty());
    for run in [&r, &p, &a, &again, &second, &d] {
        assert!(!run.render().contains("Hm!"), "an admin password shows: {}", run.render());
    }
    text
}

#[test]
fn the_arm_tutorial_made_by_hand_round_trips() {
    let s = Served::start();
    let made = handmade::arm_user_assigned(&s, &handmade::Options::arm());
    let nic = made.vm.nic.rsplit('/').next().expect("nic name").to_string();
    let text = round_trip(&s, &made.group, "arm-user-assigned", &[("MYVM_ADMIN_PASSWORD", "unused-Pa55word")]);
    // The portal's network, declared one by one under its own names, the VM using its
    // interface; the identity and its Reader assignment (a random GUID name) as references.
    for want in [
        "  id1:\n    type: user_assigned_identity\n    name: ID1\n    resource_group: ${rg}\n".to_string(),
        format!(
            "  {nic}:\n    type: network_interface\n    name: {nic}\n    resource_group: ${{rg}}\n    virtual_network: ${{myresourcegroupvm-vnet}}\n    subnet: default\n    public_ip: ${{myvm-ip}}\n    nsg: ${{myvm-nsg}}\n"
        ),
        format!("    network:\n      nic: ${{{nic}}}\n"),
        "    identity:\n      user_assigned:\n        - ${id1}\n".into(),
        "    os_disk:\n      type: Premium_LRS\n      delete_with_vm: false\n".into(),
        "  id1-reader:\n    type: role_assignment\n    scope: ${rg}\n    principal: ${id1}\n    role: Reader\n".into(),
        "      - name: RDP\n        priority: 300\n        destination_ports: \"3389\"\n".into(),
        "#   Microsoft.Compute/disks  myVM_OsDisk_1_".into(),
    ] {
        assert!(text.contains(&want), "missing\n{want}\nin\n{text}");
    }
}

#[test]
fn the_keyvault_tutorial_made_by_hand_round_trips_and_no_secret_shows() {
    let s = Served::start();
    let made = handmade::keyvault(&s, &handmade::Options::keyvault());
    let vault = made.vault.clone().expect("a vault");
    let value = vault.secret_value.clone();
    let env = [("MYVM_ADMIN_PASSWORD", "unused-Pa55word"), ("IDLAB_TUTORIAL_KV_TUTORIAL_SECRET", value.as_str())];
    // Without the placeholder set, it validates with a warning naming it.
    let text = round_trip(&s, &made.group, "keyvault", &env);
    for want in [
        "    identity:\n      system_assigned: true\n",
        "  myvm-policy:\n    type: key_vault_access_policy\n    vault: ${idlab-tutorial-kv}\n    principal: ${myvm.identity}\n    secrets: [get, list]\n",
        "    # set IDLAB_TUTORIAL_KV_TUTORIAL_SECRET: the value of secret tutorial-secret in vault idlab-tutorial-kv (import never reads secret values)\n    value: { env: IDLAB_TUTORIAL_KV_TUTORIAL_SECRET }\n",
        "    # set MYVM_ADMIN_PASSWORD: ",
        // The portal gives the vault's creator more than a plan does: said, so it stays.
        "    creator_secrets: [backup, delete, get, list, purge, recover, restore, set]\n",
    ] {
        assert!(text.contains(want), "missing\n{want}\nin\n{text}");
    }
    assert!(!text.contains(&value), "the secret's value is in the plan");
    // The creator's own entry is the vault's `:creator`, not a declaration of its own.
    assert_eq!(text.matches("type: key_vault_access_policy").count(), 1, "{text}");
    // The server's log never saw the value either.
    let log = std::fs::read_to_string(&s.log).unwrap_or_default();
    assert!(!log.contains(&value));
    // The takeover found the same value: it tagged the version the person made (a PATCH of
    // it), and wrote no new one (the one PUT is the person's).
    let reqs = s.op("GET", "/_idlab/requests", None);
    let writes: Vec<String> = reqs["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["path"].as_str().is_some_and(|p| p.contains("/secrets/tutorial-secret")))
        .filter(|e| matches!(e["method"].as_str(), Some("PUT" | "PATCH")))
        .map(|e| e["method"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(writes, ["PUT", "PATCH"], "{reqs}");
}

#[test]
fn the_storage_tutorial_made_by_hand_round_trips() {
    let s = Served::start();
    let made = handmade::storage_blob(&s, &handmade::Options::storage());
    let text = round_trip(&s, &made.group, "storage-blob", &[("MYVM_ADMIN_PASSWORD", "unused-Pa55word")]);
    for want in [
        "  idlabtutorialblob:\n    type: storage_account\n    name: idlabtutorialblob\n    resource_group: ${rg}\n",
        "  mycontainer:\n    type: blob_container\n    name: mycontainer\n    account: ${idlabtutorialblob}\n",
        "  myvm-storage-blob-data-reader:\n    type: role_assignment\n    scope: ${mycontainer}\n    principal: ${myvm.identity}\n    role: Storage Blob Data Reader\n",
        "  hello_world-txt:\n    type: blob\n    name: hello_world.txt\n    container: ${mycontainer}\n    source: files/mycontainer/hello_world.txt\n",
    ] {
        assert!(text.contains(want), "missing\n{want}\nin\n{text}");
    }
}

#[test]
fn blobs_are_written_next_to_the_plan_only_with_out_and_never_over_other_content() {
    let s = Served::start();
    let made = handmade::storage_blob(&s, &handmade::Options::storage());
    let want = std::fs::read(crate::common::root().join("plans/files/hello_world.txt")).expect("hello_world.txt");
    // On standard output: no files, so the blob is named with why, not declared.
    let r = import(&s, &[&made.group], &[]);
    assert_eq!(r.code, 0, "{}", r.render());
    assert!(!r.stdout.contains("type: blob\n"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("#   blob mycontainer/hello_world.txt: its content is written next to the plan only with --out"),
        "{}",
        r.stdout
    );
    // A file of another content where the blob goes: refused, and nothing written.
    let dir = tempfile::tempdir().expect("tmp");
    let plan = dir.path().join("storage.yaml");
    let blob = dir.path().join("files/mycontainer/hello_world.txt");
    std::fs::create_dir_all(blob.parent().expect("parent")).expect("mkdir");
    std::fs::write(&blob, b"mine").expect("write");
    let out = plan.to_str().expect("utf-8");
    let r = import(&s, &[&made.group], &["--out", out]);
    assert_eq!(r.code, 1, "{}", r.render());
    assert!(r.stderr.contains(&format!("{} exists with other content: pass --force", blob.display())), "{}", r.stderr);
    assert!(!plan.exists());
    assert_eq!(std::fs::read(&blob).expect("kept"), b"mine");
    // With --force: the blob's content replaces it, and the summary says what was written.
    let r = import(&s, &[&made.group], &["--out", out, "--force"]);
    assert_eq!(r.code, 0, "{}", r.render());
    assert_eq!(std::fs::read(&blob).expect("written"), want);
    assert!(r.stderr.contains(&format!("Wrote 1 blob file(s) the plan names, {} byte(s)", want.len())), "{}", r.stderr);
    // The same content already there is no conflict.
    std::fs::remove_file(&plan).expect("rm");
    let r = import(&s, &[&made.group], &["--out", out]);
    assert_eq!(r.code, 0, "{}", r.render());
    let v = idlab(&["validate", out]);
    assert_eq!(v.code, 0, "{}", v.render());
}

/// A plan with what the tutorials' groups rarely hold: a custom role (assignable at the
/// account), an identity's federated credential, a storage account and its container.
const CUSTOM: &str = r#"name: custom-bits
location: eastus
resources:
  rg:
    type: resource_group
    name: customBits
  ci:
    type: user_assigned_identity
    name: ci-identity
    resource_group: ${rg}
  github:
    type: federated_identity_credential
    name: github-main
    identity: ${ci}
    issuer: https://token.actions.githubusercontent.com
    subject: repo:org/repo:ref:refs/heads/main
  store:
    type: storage_account
    name: idlabimportbits
    resource_group: ${rg}
  box:
    type: blob_container
    name: box
    account: ${store}
  sas-only:
    type: role_definition
    role_name: SAS issuer (import test)
    description: a service SAS and nothing else
    actions: [Microsoft.Storage/storageAccounts/listServiceSas/action]
    assignable_scopes: ["${store}"]
  ci-sas:
    type: role_assignment
    scope: ${store}
    principal: ${ci}
    role: ${sas-only}
    description: the pipeline's SAS
"#;

#[test]
fn custom_roles_federated_credentials_and_containers_import_as_declarations() {
    let s = Served::start();
    let dir = tempfile::tempdir().expect("tmp");
    let plan = dir.path().join("custom.yaml");
    std::fs::write(&plan, CUSTOM).expect("plan");
    applied(&s, plan.to_str().expect("utf-8"), &[]);
    let file = dir.path().join("imported.yaml");
    let f = file.to_str().expect("utf-8");
    let r = import(&s, &["customBits"], &["--name", "custom-bits", "--out", f]);
    assert_eq!(r.code, 0, "{}", r.render());
    let text = std::fs::read_to_string(&file).expect("written");
    for want in [
        "  ci-identity:\n    type: user_assigned_identity\n",
        "  github-main:\n    type: federated_identity_credential\n    name: github-main\n    identity: ${ci-identity}\n    issuer: https://token.actions.githubusercontent.com\n    subject: repo:org/repo:ref:refs/heads/main\n",
        "  sas-issuer-import-test:\n    type: role_definition\n    role_name: SAS issuer (import test)\n    description: a service SAS and nothing else\n    actions:\n      - Microsoft.Storage/storageAccounts/listServiceSas/action\n    assignable_scopes:\n      - ${idlabimportbits}\n",
        "  box:\n    type: blob_container\n    name: box\n    account: ${idlabimportbits}\n",
        "  ci-identity-sas-issuer-import-test:\n    type: role_assignment\n    scope: ${idlabimportbits}\n    principal: ${ci-identity}\n    role: ${sas-issuer-import-test}\n    description: the pipeline's SAS\n",
    ] {
        assert!(text.contains(want), "missing\n{want}\nin\n{text}");
    }
    let v = idlab(&["validate", f]);
    assert_eq!(v.code, 0, "{}", v.render());
    let p = s.idlab(&["plan", f, "--detailed-exitcode"]);
    assert_eq!(p.code, 0, "{}\n{text}", p.render());
}

#[test]
fn the_arm_tutorial_made_with_the_azure_cli_round_trips() {
    let s = Served::start();
    // `az vm create`'s names (`myVMVNET`, `myVMVMNic` with `ipconfigmyVM`, `myVMNSG` …), and
    // everything deleted with the VM as the portal's "Delete with VM" does.
    let o = handmade::Options {
        naming: handmade::Naming::AzCli,
        delete_option: Some("Delete"),
        ..handmade::Options::arm()
    };
    let made = handmade::arm_user_assigned(&s, &o);
    let text = round_trip(&s, &made.group, "arm-user-assigned", &[("MYVM_ADMIN_PASSWORD", "unused-Pa55word")]);
    for want in [
        "    type: network_interface\n    name: myVMVMNic\n",
        "    ip_configuration: ipconfigmyVM\n",
        "    network:\n      nic: ${myvmvmnic}\n",
        "    os_disk:\n      type: Premium_LRS\n",
    ] {
        assert!(text.contains(want), "missing\n{want}\nin\n{text}");
    }
    assert!(!text.contains("delete_with_vm"), "{text}");
}

#[test]
fn what_a_plan_cannot_write_is_a_warning_naming_the_fields() {
    let s = Served::start();
    // A security group someone added, with a rule a plan cannot write (a source port range).
    tutorial_and(
        &s,
        "Microsoft.Network/networkSecurityGroups/odd-nsg?api-version=2024-07-01",
        json!({ "location": "eastus", "properties": { "securityRules": [{ "name": "odd", "properties": {
            "priority": 200, "protocol": "Tcp", "access": "Allow", "direction": "Inbound",
            "sourceAddressPrefix": "*", "sourcePortRange": "1000-2000",
            "destinationAddressPrefix": "*", "destinationPortRange": "443" } }] } }),
    );
    let r = import(&s, &[ARM_GROUP], &["--name", "arm-user-assigned"]);
    assert_eq!(r.code, 0, "{}", r.render());
    assert!(
        r.stderr.contains("warning: odd-nsg: rule odd: a source port range or destination prefix other than *"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("warning: `plan --adopt` would change odd-nsg (properties/securityRules)"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("  # Azure holds what a plan cannot write, so `plan` shows it as a change:\n  #   rule odd:"),
        "{}",
        r.stdout
    );
    // The tutorial's own resources are not warned about.
    assert_eq!(r.stderr.matches("warning:").count(), 2, "{}", r.stderr);
}

/// Applies `plan` with idlab, imports `group` under the plan's name, and checks the written
/// plan validates and plans with no change. Answers the written plan.
fn applied_then_imported(s: &Served, plan: &str, name: &str, group: &str, env: &[(&str, &str)]) -> String {
    applied(s, plan, &[]);
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("imported.yaml");
    let f = file.to_str().expect("utf-8");
    let r = import(s, &[group], &["--name", name, "--out", f]);
    assert_eq!(r.code, 0, "{}", r.render());
    let text = std::fs::read_to_string(&file).expect("written");
    let v = idlab(&["validate", f]);
    assert_eq!(v.code, 0, "{}\n{text}", v.render());
    let p = s.idlab_env(&["plan", f, "--detailed-exitcode"], env);
    assert_eq!(p.code, 0, "{}\n{text}", p.render());
    assert!(p.stdout.contains("No changes."), "{}", p.stdout);
    text
}

#[test]
fn the_sql_tutorial_imports_its_server_admin_and_database() {
    let s = Served::start();
    let text = applied_then_imported(
        &s,
        "plans/sql.yaml",
        "sql",
        "myResourceGroup",
        &[("MYVM_ADMIN_PASSWORD", "unused-Pa55word")],
    );
    // An Entra-only server (the default: no `entra_only`, no password), its Entra admin as
    // the deploying principal by reference, and the database at the default SKU.
    for want in [
        "  idlab-tutorial-sql:\n    type: sql_server\n    name: idlab-tutorial-sql\n    resource_group: ${rg}\n\n",
        "    type: sql_entra_admin\n    server: ${idlab-tutorial-sql}\n    login: idlab-admin\n    principal: ${caller}\n",
        "  testdb:\n    type: sql_database\n    name: testdb\n    server: ${idlab-tutorial-sql}\n\n",
    ] {
        assert!(text.contains(want), "missing\n{want}\nin\n{text}");
    }
    assert!(!text.contains("Microsoft.Sql"), "every SQL resource is declared\n{text}");
    assert!(!text.contains("admin_password") && !text.contains("name: master"), "{text}");
}

/// `New-AzSqlServer` / the portal, not idlab: a server that takes SQL logins too, its Entra
/// admin set afterwards (`Set-AzSqlServerActiveDirectoryAdministrator`) and a Basic database
/// (the local cloud serves no firewall rules); then the whole round trip.
#[test]
fn a_sql_server_made_by_hand_round_trips() {
    let s = Served::start();
    let h = handmade::Hand::new(&s);
    let rg = handmade::group(&h, "sqlByHand", "eastus");
    let api = "api-version=2023-08-01";
    let server = format!("{rg}/providers/Microsoft.Sql/servers/idlab-hand-sql");
    let put = |path: &str, body: Value| {
        let (st, v) = h.call("PUT", &format!("{path}?{api}"), Some(&body));
        assert!(st < 300, "PUT {path}: {st} {v}");
    };
    put(
        &server,
        json!({ "location": "eastus", "properties": {
            "administratorLogin": "sqladmin", "administratorLoginPassword": "Hm!ByHand-0123456789",
            "version": "12.0", "minimalTlsVersion": "1.2", "publicNetworkAccess": "Enabled",
        }}),
    );
    put(
        &format!("{server}/administrators/ActiveDirectory"),
        json!({ "properties": { "administratorType": "ActiveDirectory", "login": "idlab-admin", "sid": h.me(), "tenantId": h.tenant() } }),
    );
    put(
        &format!("{server}/databases/testdb"),
        json!({ "location": "eastus", "sku": { "name": "Basic", "tier": "Basic" } }),
    );
    let text = round_trip(&s, "sqlByHand", "sql-by-hand", &[("IDLAB_HAND_SQL_ADMIN_PASSWORD", "Hm!ByHand-0123456789")]);
    for want in [
        "  idlab-hand-sql:\n    type: sql_server\n    name: idlab-hand-sql\n    resource_group: ${rg}\n    entra_only: false\n    admin_login: sqladmin\n    # set IDLAB_HAND_SQL_ADMIN_PASSWORD: the SQL administrator password of server idlab-hand-sql (Azure never returns it)\n    admin_password: { env: IDLAB_HAND_SQL_ADMIN_PASSWORD }\n",
        "    type: sql_entra_admin\n    server: ${idlab-hand-sql}\n    login: idlab-admin\n    principal: ${caller}\n",
        // Basic is the plan language's default SKU.
        "  testdb:\n    type: sql_database\n    name: testdb\n    server: ${idlab-hand-sql}\n",
    ] {
        assert!(text.contains(want), "missing\n{want}\nin\n{text}");
    }
    assert!(!text.contains("Hm!ByHand"), "{text}");
}

/// A Gen1 store made by hand (`New-AzDataLakeStoreAccount`), a folder made and its ACL
/// entries added through WebHDFS (`New-AzDataLakeStoreItem -Folder`,
/// `Set-AzDataLakeStoreItemAclEntry`) for a user-assigned identity: the whole round trip.
#[test]
fn a_gen1_data_lake_store_made_by_hand_round_trips() {
    let s = Served::start();
    let h = handmade::Hand::new(&s);
    let rg = handmade::group(&h, "adlsByHand", "eastus");
    let id1 = handmade::identity(&h, "adlsByHand", "ID1", "eastus");
    let store = format!("{rg}/providers/Microsoft.DataLakeStore/accounts/idlabhandadls");
    let body =
        json!({ "location": "eastus", "properties": { "newTier": "Consumption", "encryptionState": "Enabled" } });
    let (st, v) = h.call("PUT", &format!("{store}?api-version=2016-11-01"), Some(&body));
    assert!(st < 300, "{v}");
    let endpoint =
        h.get(&store, "api-version=2016-11-01")["properties"]["endpoint"].as_str().expect("endpoint").to_string();
    let base = format!("https://{endpoint}/webhdfs/v1");
    let scope = "https://datalake.azure.net//.default";
    let oid = &id1.principal_id;
    for (method, path) in [
        ("PUT", "/TestFolder?op=MKDIRS".to_string()),
        ("PUT", format!("/?op=MODIFYACLENTRIES&aclspec=user:{oid}:r-x")),
        ("PUT", format!("/TestFolder?op=MODIFYACLENTRIES&aclspec=user:{oid}:rwx,default:user:{oid}:rwx")),
    ] {
        let (st, v) = h.data(scope, method, &format!("{base}{path}"), &[]);
        assert_eq!(st, 200, "{method} {path}: {v}");
    }
    let text = round_trip(&s, "adlsByHand", "adls-by-hand", &[]);
    for want in [
        "  idlabhandadls:\n    type: data_lake_store\n    name: idlabhandadls\n    resource_group: ${rg}\n",
        "    type: data_lake_folder\n    store: ${idlabhandadls}\n    path: /\n    acl:\n      - principal: ${id1}\n        permissions: r-x\n",
        "    type: data_lake_folder\n    store: ${idlabhandadls}\n    path: /TestFolder\n    acl:\n      - principal: ${id1}\n        permissions: rwx\n        scope: both\n",
    ] {
        assert!(text.contains(want), "missing\n{want}\nin\n{text}");
    }
}

/// A Gen2 account made by hand (`New-AzStorageAccount -EnableHierarchicalNamespace`), its file
/// system, a directory and its ACL set through `dfs` (`New-AzDataLakeGen2Item -Directory`,
/// `Update-AzDataLakeGen2Item -Acl`) for a user-assigned identity, the person's own Storage
/// Blob Data Owner on the account: the whole round trip.
#[test]
fn a_gen2_file_system_made_by_hand_round_trips() {
    let s = Served::start();
    let h = handmade::Hand::new(&s);
    let rg = handmade::group(&h, "gen2ByHand", "eastus");
    let id1 = handmade::identity(&h, "gen2ByHand", "ID1", "eastus");
    let account = format!("{rg}/providers/Microsoft.Storage/storageAccounts/idlabhandgen2");
    let api = "api-version=2025-06-01";
    let body = json!({ "location": "eastus", "sku": { "name": "Standard_LRS" }, "kind": "StorageV2", "properties": { "isHnsEnabled": true } });
    let (st, v) = h.call("PUT", &format!("{account}?{api}"), Some(&body));
    assert!(st < 300, "{v}");
    let (st, v) = h.call("PUT", &format!("{account}/blobServices/default/containers/lake?{api}"), Some(&json!({})));
    assert!(st < 300, "{v}");
    handmade::role_assignment(&h, &account, h.me(), "Storage Blob Data Owner");
    let dfs = h.get(&account, api)["properties"]["primaryEndpoints"]["dfs"].as_str().expect("dfs endpoint").to_string();
    let fs = format!("{}/lake", dfs.trim_end_matches('/'));
    let scope = "https://storage.azure.com/.default";
    let version = ("x-ms-version", "2023-11-03");
    let oid = &id1.principal_id;
    let (st, v) = h.data(scope, "PUT", &format!("{fs}/TestFolder?resource=directory"), &[version]);
    assert_eq!(st, 201, "mkdir: {v}");
    let root_acl = format!("user::rwx,group::r-x,other::---,user:{oid}:r-x");
    let dir_acl = format!("user::rwx,group::r-x,other::---,user:{oid}:rwx,default:user:{oid}:rwx");
    for (path, acl) in [("/", &root_acl), ("/TestFolder", &dir_acl)] {
        let url = format!("{fs}{path}?action=setAccessControl");
        let (st, v) = h.data(scope, "PATCH", &url, &[version, ("x-ms-acl", acl.as_str())]);
        assert_eq!(st, 200, "setAccessControl {path}: {v}");
    }
    let text = round_trip(&s, "gen2ByHand", "gen2-by-hand", &[]);
    for want in [
        "  idlabhandgen2:\n    type: storage_account\n    name: idlabhandgen2\n    resource_group: ${rg}\n    hierarchical_namespace: true\n",
        "    type: data_lake_folder\n    store: ${idlabhandgen2}\n    filesystem: ${lake}\n    path: /\n    acl:\n      - principal: ${id1}\n        permissions: r-x\n",
        "    type: data_lake_folder\n    store: ${idlabhandgen2}\n    filesystem: ${lake}\n    path: /TestFolder\n    acl:\n      - principal: ${id1}\n        permissions: rwx\n        scope: both\n",
        "    scope: ${idlabhandgen2}\n    principal: ${caller}\n    role: Storage Blob Data Owner\n",
    ] {
        assert!(text.contains(want), "missing\n{want}\nin\n{text}");
    }
}

#[test]
fn the_gen2_data_lake_tutorial_imports_its_file_system_and_folder_acls() {
    let s = Served::start();
    let text = applied_then_imported(
        &s,
        "plans/datalake-gen2.yaml",
        "datalake-gen2",
        "myResourceGroup",
        &[("MYVM_ADMIN_PASSWORD", "unused-Pa55word")],
    );
    // The account with its hierarchical namespace, the file system, the folders with the VM
    // identity's entries (`scope: both` for an access and a default entry alike), and the
    // deploying principal's data role as `${caller}`.
    for want in [
        "  idlabtutorialgen2:\n    type: storage_account\n    name: idlabtutorialgen2\n    resource_group: ${rg}\n    hierarchical_namespace: true\n",
        "  tutorial:\n    type: blob_container\n    name: tutorial\n    account: ${idlabtutorialgen2}\n",
        "  root:\n    type: data_lake_folder\n    store: ${idlabtutorialgen2}\n    filesystem: ${tutorial}\n    path: /\n    acl:\n      - principal: ${myvm.identity}\n        permissions: r-x\n\n",
        "  testfolder:\n    type: data_lake_folder\n    store: ${idlabtutorialgen2}\n    filesystem: ${tutorial}\n    path: /TestFolder\n    acl:\n      - principal: ${myvm.identity}\n        permissions: rwx\n        scope: both\n",
        "    scope: ${idlabtutorialgen2}\n    principal: ${caller}\n    role: Storage Blob Data Owner\n",
    ] {
        assert!(text.contains(want), "missing\n{want}\nin\n{text}");
    }
    assert!(!text.contains("kinds idlab does not manage"), "every resource is declared\n{text}");
}

#[test]
fn the_gen1_data_lake_tutorial_imports_its_store_and_folder_acls() {
    let s = Served::start();
    let text = applied_then_imported(
        &s,
        "plans/datalake.yaml",
        "datalake",
        "myResourceGroup",
        &[("MYVM_ADMIN_PASSWORD", "unused-Pa55word")],
    );
    // The Gen1 store and its folders with the VM identity's entries, read through WebHDFS.
    for want in [
        "  idlabtutorialadls:\n    type: data_lake_store\n    name: idlabtutorialadls\n    resource_group: ${rg}\n\n",
        "  root:\n    type: data_lake_folder\n    store: ${idlabtutorialadls}\n    path: /\n    acl:\n      - principal: ${myvm.identity}\n        permissions: r-x\n\n",
        "  testfolder:\n    type: data_lake_folder\n    store: ${idlabtutorialadls}\n    path: /TestFolder\n    acl:\n      - principal: ${myvm.identity}\n        permissions: rwx\n        scope: both\n",
    ] {
        assert!(text.contains(want), "missing\n{want}\nin\n{text}");
    }
    assert!(!text.contains("kinds idlab does not manage"), "every resource is declared\n{text}");
}
