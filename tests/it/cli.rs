//! The command line end to end: exit codes, formats, variables, strict mode.

use crate::common::{idlab, idlab_env, json_codes, plan_files};

#[test]
fn every_tutorial_plan_validates() {
    let plans = plan_files();
    assert!(plans.len() >= 8, "{plans:?}");
    let mut args = vec!["validate"];
    args.extend(plans.iter().map(String::as_str));
    let run = idlab(&args);
    assert_eq!(run.code, 0, "{}", run.render());
    for p in &plans {
        assert!(run.stdout.contains(&format!("{p}: ok")), "{}", run.render());
    }
    assert_eq!(run.stderr, "");
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    assert_eq!(idlab(&["validate"]).code, 1);
    assert_eq!(idlab(&["frobnicate"]).code, 1);
    assert_eq!(idlab(&["validate", "--format", "xml", "plans/sql.yaml"]).code, 1);
    let help = idlab(&["--help"]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("validate"), "{}", help.render());
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let run = idlab(&["validate", "plans/nope.yaml"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("cannot read `plans/nope.yaml`"), "{}", run.render());
}

#[test]
fn json_diagnostics_carry_code_line_and_column() {
    let run = idlab(&["validate", "--format", "json", "tests/fixtures/bad/E003-unknown-field.yaml"]);
    assert_eq!(run.code, 1);
    assert_eq!(json_codes(&run), vec![("E003".to_string(), 16, 5)]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["ok"], false);
    assert_eq!(v["files"][0]["diagnostics"][0]["help"], "did you mean `identity`?");
}

#[test]
fn unset_environment_secret_warns_in_validate_and_fails_when_strict() {
    let f = "tests/fixtures/bad/E019-secret-unavailable.yaml";
    let lax = idlab(&["validate", f]);
    assert_eq!(lax.code, 0, "{}", lax.render());
    assert!(lax.stderr.contains("⚠"), "{}", lax.render());
    let strict = idlab(&["validate", "--strict", f]);
    assert_eq!(strict.code, 1, "{}", strict.render());
    let set = idlab_env(&["validate", "--strict", f], &[("IDLAB_FIXTURE_UNSET_PASSWORD", "x")]);
    assert_eq!(set.code, 0, "{}", set.render());
    assert!(!set.stderr.contains("IDLAB_FIXTURE_UNSET_PASSWORD"), "{}", set.render());
}

#[test]
fn variables_are_overridden_by_var_and_var_file() {
    let bad = idlab(&["validate", "--format", "json", "plans/storage-blob.yaml", "--var", "storage_account=Not_Valid"]);
    assert_eq!(bad.code, 1);
    assert_eq!(json_codes(&bad).first().map(|c| c.0.as_str()), Some("E023"));

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("vars.yaml");
    std::fs::write(&file, "storage_account: idlabfromfile\nresource_group: rg-from-file\n").expect("write");
    let path = file.to_string_lossy().into_owned();
    let ok = idlab(&["validate", "plans/storage-blob.yaml", "--var-file", &path]);
    assert_eq!(ok.code, 0, "{}", ok.render());
    // --var wins over --var-file.
    let over = idlab(&[
        "validate",
        "--format",
        "json",
        "plans/storage-blob.yaml",
        "--var-file",
        &path,
        "--var",
        "storage_account=UPPER",
    ]);
    assert_eq!(json_codes(&over).first().map(|c| c.0.as_str()), Some("E023"));

    let unknown = idlab(&["validate", "plans/storage-blob.yaml", "--var", "storage_acount=x"]);
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.contains("did you mean `storage_account`?"), "{}", unknown.render());
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let run = idlab(&["schema"]);
    assert_eq!(run.code, 0);
    let committed =
        std::fs::read_to_string(crate::common::root().join("schemas/plan.schema.json")).expect("schema file");
    assert!(
        run.stdout == committed,
        "schemas/plan.schema.json is stale: run `cargo run -- schema > schemas/plan.schema.json`"
    );
}

#[test]
fn storage_settings_that_azure_or_idlab_would_refuse_are_plan_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.txt"), "x").expect("file");
    let plan = dir.path().join("p.yaml");
    std::fs::write(
        &plan,
        "name: p\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: rg\n  sa:\n    type: storage_account\n    name: idlabnoshared\n    resource_group: ${rg}\n    allow_shared_key_access: false\n  bb:\n    type: storage_account\n    name: idlabblockblob\n    resource_group: ${rg}\n    account_kind: BlockBlobStorage\n  c:\n    type: blob_container\n    name: docs\n    account: ${sa}\n    public_access: blob\n  b:\n    type: blob\n    name: a.txt\n    container: ${c}\n    source: a.txt\n",
    )
    .expect("plan");
    let run = idlab(&["validate", "--format", "json", &plan.to_string_lossy()]);
    assert_eq!(run.code, 1, "{}", run.render());
    // BlockBlobStorage without Premium (line 14), public access (line 19), blob in an account
    // without Shared Key (line 24): each at the offending resource's name.
    assert_eq!(json_codes(&run), vec![("E034".into(), 14, 11), ("E034".into(), 19, 11), ("E034".into(), 24, 11)]);
}
