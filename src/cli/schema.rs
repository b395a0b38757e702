//! `idlab schema`: print the JSON Schema of plan files.

use crate::resolve;
use crate::ui;

use super::common::Exit;

pub(crate) fn cmd_schema() -> Exit {
    ui::out(&schema_text());
    Exit::Ok
}

/// The schema file's exact text (`schemas/plan.schema.json`).
pub fn schema_text() -> String {
    let mut s = serde_json::to_string_pretty(resolve::schema()).unwrap_or_default();
    s.push('\n');
    s
}
