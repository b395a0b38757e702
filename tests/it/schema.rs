//! The committed JSON Schema: it accepts every tutorial plan and rejects every structurally
//! broken fixture, checked by a real JSON Schema validator.

use idlab::model::yaml;

use crate::common::{bad_fixtures, plan_files, root};

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(root().join("schemas/plan.schema.json")).expect("schema file");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn as_json(path: &str) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(root().join(path)).expect("read");
    yaml::parse(&text).ok().map(|n| n.to_json())
}

#[test]
fn schema_accepts_every_plan() {
    let v = validator();
    for p in plan_files() {
        let doc = as_json(&p).expect("plans parse");
        let errors: Vec<String> = v.iter_errors(&doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{p}: {errors:?}");
    }
}

#[test]
fn schema_rejects_every_structurally_broken_fixture() {
    // Shape errors: unknown and missing fields, wrong types, values outside an enum, unknown kinds.
    const STRUCTURAL: &[&str] = &["E003", "E004", "E005", "E006", "E007", "multi"];
    let v = validator();
    let mut checked = 0;
    for f in bad_fixtures() {
        let name = f.trim_start_matches("tests/fixtures/bad/");
        if !STRUCTURAL.iter().any(|c| name.starts_with(c)) {
            continue;
        }
        let doc = as_json(&f).expect("structural fixtures are valid YAML");
        assert!(!v.is_valid(&doc), "the schema accepts {f}");
        checked += 1;
    }
    assert!(checked >= 8, "{checked}");
}
