//! Every broken plan under `tests/fixtures/bad/` against a snapshot of the full rendered
//! diagnostic (message, file:line:col, caret, help), and the code table against the fixtures
//! and the docs.

use std::collections::BTreeSet;

use idlab::model::Code;

use crate::common::{bad_fixtures, idlab, json_codes, root};

#[test]
fn there_are_at_least_forty_fixtures() {
    assert!(bad_fixtures().len() >= 40, "{}", bad_fixtures().len());
}

#[test]
fn every_fixture_matches_its_snapshot() {
    for f in bad_fixtures() {
        let run = idlab(&["validate", &f]);
        let name = f.trim_start_matches("tests/fixtures/bad/").trim_end_matches(".yaml").to_string();
        insta::with_settings!({ snapshot_path => "snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(name, run.render());
        });
    }
}

#[test]
fn every_code_has_a_fixture_that_reports_it() {
    let fixtures = bad_fixtures();
    for code in Code::ALL {
        let c = code.as_str();
        let mine: Vec<&String> =
            fixtures.iter().filter(|f| f.trim_start_matches("tests/fixtures/bad/").starts_with(c)).collect();
        assert!(!mine.is_empty(), "diagnostic code {c} has no fixture in tests/fixtures/bad/");
        for f in mine {
            let run = idlab(&["validate", "--format", "json", f]);
            let codes = json_codes(&run);
            assert!(codes.iter().any(|(x, _, _)| x == c), "{f} does not report {c}: {codes:?}");
            assert!(
                codes.iter().all(|(_, line, col)| *line >= 1 && *col >= 1) || c == "E036" || c == "E046",
                "{f}: {codes:?}"
            );
        }
    }
}

#[test]
fn a_fixture_with_five_errors_reports_all_five_in_one_run() {
    let run = idlab(&["validate", "--format", "json", "tests/fixtures/bad/multi-five-errors.yaml"]);
    assert_eq!(run.code, 1);
    let codes: BTreeSet<String> = json_codes(&run).into_iter().map(|c| c.0).collect();
    let want: BTreeSet<String> = ["E003", "E007", "E011", "E018", "E024"].iter().map(|s| s.to_string()).collect();
    assert_eq!(codes, want);
}

#[test]
fn every_code_is_documented() {
    let doc = std::fs::read_to_string(root().join("docs/diagnostics.md")).expect("docs/diagnostics.md");
    for code in Code::ALL {
        let heading = format!("## {} {}", code.as_str(), code.slug());
        assert!(doc.contains(&heading), "docs/diagnostics.md lacks `{heading}`");
    }
}
