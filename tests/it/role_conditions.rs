//! Role assignments with ABAC conditions (issue 18, item 4), end to end: the plan's
//! `condition:` is sent, stored and returned; the local cloud enforces the documented subset
//! (a Storage Blob Data Reader limited to one container reads it and is refused on another);
//! an unsupported condition grants nothing; and a changed condition is an in-place update.

use serde_json::{Value, json};

use crate::common::Served;

const ONLY_ALLOWED: &str = "((!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'})) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'allowed'))";
const ONLY_OTHER: &str = "((!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'})) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'other'))";
/// Blob index tags: outside the subset the local cloud evaluates.
const UNSUPPORTED: &str = "((!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read'})) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags:project<$key_case_sensitive$>] StringEquals 'x'))";

/// A plan: a VM, an account with containers `allowed` and `other` (a blob in each), and
/// Storage Blob Data Reader on the account for the VM, under `condition`.
fn plan(dir: &std::path::Path, condition: &str) -> String {
    std::fs::write(dir.join("a.txt"), "hello\n").expect("blob source");
    let condition = if condition.is_empty() { String::new() } else { format!("    condition: \"{condition}\"\n") };
    let text = format!(
        r#"name: abac
location: eastus
resources:
  rg:
    type: resource_group
    name: abacRG
  vm:
    type: virtual_machine
    name: abacVM
    resource_group: ${{rg}}
    image: Ubuntu2204
    admin:
      username: azureuser
      password: {{ generate: 24 }}
    identity:
      system_assigned: true
  storage:
    type: storage_account
    name: idlababac
    resource_group: ${{rg}}
  allowed:
    type: blob_container
    name: allowed
    account: ${{storage}}
  other:
    type: blob_container
    name: other
    account: ${{storage}}
  a:
    type: blob
    name: a.txt
    container: ${{allowed}}
    source: a.txt
  b:
    type: blob
    name: b.txt
    container: ${{other}}
    source: a.txt
  reader:
    type: role_assignment
    scope: ${{storage}}
    principal: ${{vm.identity}}
    role: Storage Blob Data Reader
    description: one container only
{condition}verify:
  read-allowed:
    vm: ${{vm}}
    read_blob: ${{a}}
  read-other:
    vm: ${{vm}}
    read_blob: ${{b}}
    expect: denied
"#
    );
    let p = dir.join("abac.yaml");
    std::fs::write(&p, text).expect("plan");
    p.display().to_string()
}

/// The plan's one role assignment as ARM holds it.
fn assignment(s: &Served) -> Value {
    let scope = format!(
        "/subscriptions/{}/resourceGroups/abacRG/providers/Microsoft.Storage/storageAccounts/idlababac",
        s.subscription()
    );
    let list =
        s.op("GET", &format!("{scope}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01"), None);
    let all = list["value"].as_array().cloned().unwrap_or_default();
    let mine: Vec<&Value> = all
        .iter()
        .filter(|a| a["properties"]["description"].as_str().is_some_and(|d| d.contains("one container")))
        .collect();
    assert_eq!(mine.len(), 1, "{list}");
    mine[0].clone()
}

#[test]
fn a_condition_limits_a_blob_reader_to_one_container_and_changes_in_place() {
    let s = Served::start();
    let dir = tempfile::tempdir().expect("tmp");
    let p = plan(dir.path(), ONLY_ALLOWED);
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}", a.render());
    let ra = assignment(&s);
    assert_eq!(ra["properties"]["condition"], ONLY_ALLOWED);
    assert_eq!(ra["properties"]["conditionVersion"], "2.0");
    let v = s.idlab(&["verify", &p]);
    assert_eq!(v.code, 0, "{}", v.render());
    assert!(v.stdout.contains("Verify: 2 passed, 0 failed, 0 skipped."), "{}", v.stdout);
    s.replans_clean(&p);

    // The other container: `plan` shows an update of the condition, not a replace.
    let p = plan(dir.path(), ONLY_OTHER);
    let r = s.idlab(&["plan", &p, "--format", "json"]);
    let json: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|_| panic!("{}", r.render()));
    let reader = json["actions"].as_array().expect("actions").iter().find(|a| a["name"] == "reader").cloned();
    let reader = reader.expect("reader");
    assert_eq!(reader["action"], "update", "{reader}");
    let paths: Vec<&str> =
        reader["changes"].as_array().expect("changes").iter().filter_map(|c| c["path"].as_str()).collect();
    assert_eq!(paths, ["properties/condition"], "{reader}");
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}", a.render());
    let after = assignment(&s);
    assert_eq!(after["name"], ra["name"], "updated in place, not replaced");
    // What idlab sent and the local cloud answered, the condition's create and update included,
    // follows the Authorization spec.
    let sent: Vec<Value> = s
        .captured()
        .into_iter()
        .filter(|e| e["method"] == "PUT" && e["url"].as_str().is_some_and(|u| u.contains("/roleAssignments/")))
        .filter_map(|e| e["request"]["properties"]["condition"].as_str().map(|c| json!([c, e["status"]])))
        .collect();
    assert_eq!(sent, [json!([ONLY_ALLOWED, 201]), json!([ONLY_OTHER, 200])]);
    let v = crate::specs::violations_of(&s);
    assert!(v.is_empty(), "{v:#?}");
    assert_eq!(after["properties"]["condition"], ONLY_OTHER);
    assert_eq!(after["properties"]["createdOn"], ra["properties"]["createdOn"]);
    // Now `allowed` is refused and `other` readable: both checks of the plan fail (an allowed
    // check that gets 403 waits for propagation: 1 s here).
    let v = s.idlab(&["verify", &p, "--wait", "1"]);
    assert!(v.stdout.contains("Verify: 0 passed, 2 failed"), "{}", v.render());
    s.replans_clean(&p);

    // No condition any more: the one on the assignment is a change, cleared in place.
    let p = plan(dir.path(), "");
    let r = s.idlab(&["plan", &p, "--format", "json"]);
    let json: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|_| panic!("{}", r.render()));
    let changed = crate::common::changed_fields(&json);
    assert_eq!(
        changed,
        [("reader".to_string(), vec!["properties/condition".to_string(), "properties/conditionVersion".to_string()])]
    );
    assert_eq!(s.idlab(&["apply", &p, "--auto-approve"]).code, 0);
    let cleared = assignment(&s);
    assert_eq!(cleared["name"], ra["name"]);
    assert!(cleared["properties"]["condition"].is_null(), "{cleared}");
    s.replans_clean(&p);

    // A new description: an update in place too (Azure takes it on a PUT of the assignment).
    let text = std::fs::read_to_string(&p).expect("plan").replace("one container only", "one container, then all");
    std::fs::write(&p, text).expect("plan");
    let r = s.idlab(&["plan", &p, "--format", "json"]);
    let json: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|_| panic!("{}", r.render()));
    assert_eq!(
        crate::common::changed_fields(&json),
        [("reader".to_string(), vec!["properties/description".to_string()])]
    );
    assert_eq!(
        json["actions"].as_array().and_then(|a| a.iter().find(|a| a["name"] == "reader")).map(|a| a["action"].clone()),
        Some(json!("update"))
    );
    assert_eq!(s.idlab(&["apply", &p, "--auto-approve"]).code, 0);
    let described = assignment(&s);
    assert_eq!(described["name"], ra["name"]);
    assert_eq!(described["properties"]["description"], "idlab plan abac: one container, then all");
    s.replans_clean(&p);
}

#[test]
fn an_unsupported_condition_grants_nothing_and_a_bad_version_is_refused() {
    let s = Served::start();
    let dir = tempfile::tempdir().expect("tmp");
    let p = plan(dir.path(), UNSUPPORTED);
    let a = s.idlab(&["apply", &p, "--auto-approve"]);
    assert_eq!(a.code, 0, "{}", a.render());
    assert_eq!(assignment(&s)["properties"]["condition"], UNSUPPORTED);
    // Azure would evaluate the tag; the local cloud cannot, so it grants nothing: the read of
    // `allowed` fails, and the denied check passes.
    let v = s.idlab(&["verify", &p, "--wait", "1"]);
    assert!(v.stdout.contains("Verify: 1 passed, 1 failed"), "{}", v.render());
    assert!(v.stdout.contains("FAIL read-allowed"), "{}", v.stdout);

    // ARM itself: a condition version other than 2.0 is refused.
    let ra = assignment(&s);
    let mut body = serde_json::json!({ "properties": {
        "roleDefinitionId": ra["properties"]["roleDefinitionId"],
        "principalId": ra["properties"]["principalId"],
        "condition": ONLY_ALLOWED,
        "conditionVersion": "1.0",
    }});
    let id = ra["id"].as_str().expect("id");
    let r = s.op("PUT", &format!("{id}?api-version=2022-04-01"), Some(body.clone()));
    assert_eq!(r["error"]["code"], "InvalidConditionVersion", "{r}");
    // Without a version, 2.0 is stored.
    body["properties"].as_object_mut().expect("object").remove("conditionVersion");
    let r = s.op("PUT", &format!("{id}?api-version=2022-04-01"), Some(body));
    assert_eq!(r["properties"]["conditionVersion"], "2.0", "{r}");
    assert_eq!(r["properties"]["condition"], ONLY_ALLOWED, "{r}");
}

#[test]
fn condition_version_errors_name_the_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = "name: v\nlocation: eastus\nresources:\n  rg:\n    type: resource_group\n    name: vRG\n  ra:\n    type: role_assignment\n    scope: ${rg}\n    principal: ${caller}\n    role: Reader\n";
    for (extra, line) in [
        ("    condition: \"@Resource[x] StringEquals 'y'\"\n    condition_version: \"1.0\"\n", 13),
        ("    condition_version: \"2.0\"\n", 12),
        ("    condition: \" \"\n", 12),
    ] {
        let p = dir.path().join("v.yaml");
        std::fs::write(&p, format!("{base}{extra}")).expect("plan");
        let r = crate::common::idlab(&["validate", &p.display().to_string(), "--format", "json"]);
        assert_eq!(r.code, 1, "{}", r.render());
        let codes = crate::common::json_codes(&r);
        assert_eq!(codes.iter().map(|(c, l, _)| (c.as_str(), *l)).collect::<Vec<_>>(), [("E006", line)], "{extra}");
    }
}
