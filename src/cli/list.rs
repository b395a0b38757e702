//! `idlab list`: every idlab environment in the subscription (plan, instance, created,
//! expires, resource count, applied by), from tags alone: two paged listings, no state file.

use clap::Args;

use crate::engine::envs;
use crate::ui;

use super::common::{CloudArgs, Exit, OutFormat, fail, runtime};
use super::connect::connect;

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub cloud: CloudArgs,
    /// `text` (a table) or `json`.
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

pub(crate) fn cmd_list(a: &ListArgs) -> Exit {
    let Some(rt) = runtime() else { return Exit::Error };
    rt.block_on(async {
        let conn = match connect(&a.cloud, None).await {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        let found = match envs::list(&conn.cx.client, &conn.cx.subscription).await {
            Ok(f) => f,
            Err(e) => return fail(e),
        };
        match a.format {
            OutFormat::Json => {
                let v = serde_json::json!({"format_version": 1, "environments": found});
                ui::out(&format!("{v}\n"));
            }
            OutFormat::Text | OutFormat::Markdown => {
                ui::out(&table(&found));
            }
        }
        Exit::Ok
    })
}

fn table(found: &[envs::Environment]) -> String {
    if found.is_empty() {
        return "No idlab environments in this subscription.\n".into();
    }
    let dash = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    let rows: Vec<[String; 6]> = found
        .iter()
        .map(|e| {
            [
                e.plan.clone(),
                dash(&e.instance),
                dash(&e.created),
                dash(&e.expires),
                e.resources.to_string(),
                dash(&e.applied_by),
            ]
        })
        .collect();
    let head = ["PLAN", "INSTANCE", "CREATED", "EXPIRES", "RESOURCES", "APPLIED BY"];
    let widths: Vec<usize> =
        (0..6).map(|i| rows.iter().map(|r| r[i].chars().count()).chain([head[i].len()]).max().unwrap_or(0)).collect();
    let line = |cells: Vec<&str>| {
        let mut l: String = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}  ")).collect();
        l.truncate(l.trim_end().len());
        l.push('\n');
        l
    };
    let mut out = line(head.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}
