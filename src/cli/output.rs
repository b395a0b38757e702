//! `idlab output`: print the plan's outputs from what ARM holds.

use std::path::PathBuf;

use clap::Args;

use crate::ui;

use super::common::{CloudArgs, Exit, OutFormat, VarArgs, fail, instance_prefix};
use super::connect::observe_then;

#[derive(Debug, Args)]
pub struct OutputArgs {
    #[arg(value_name = "PLAN")]
    pub plan: PathBuf,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub cloud: CloudArgs,
    #[arg(long, value_enum, default_value_t = OutFormat::Text)]
    pub format: OutFormat,
}

pub(crate) fn cmd_output(a: &OutputArgs) -> Exit {
    observe_then(
        &a.plan,
        &a.vars,
        &a.cloud,
        None,
        false,
        |_, _| Ok(()),
        async |p, conn, obs| {
            let mut values = serde_json::Map::new();
            let mut missing = Vec::new();
            for (name, value) in &p.outputs {
                let env = conn.cx.env(&p, &name.value, &obs.values);
                match env.resolve(value) {
                    crate::kinds::env::Val::Known(v) => {
                        values.insert(name.value.clone(), serde_json::Value::String(v));
                    }
                    crate::kinds::env::Val::Unknown => missing.push(name.value.clone()),
                }
            }
            match a.format {
                OutFormat::Json => {
                    let v = match &p.instance {
                        // One object per instance: {"instance": "03", "outputs": {...}}.
                        Some(i) => serde_json::json!({"instance": i, "outputs": values}).to_string(),
                        None => serde_json::to_string_pretty(&values).unwrap_or_default(),
                    };
                    ui::out(&format!("{v}\n"));
                }
                OutFormat::Text | OutFormat::Markdown => {
                    let text: String =
                        values.iter().map(|(k, v)| format!("{k} = {}\n", v.as_str().unwrap_or_default())).collect();
                    ui::out(&instance_prefix(&p, text));
                }
            }
            drop(conn.local);
            if missing.is_empty() {
                Exit::Ok
            } else {
                fail(format!("not known until the plan is applied: {}", missing.join(", ")))
            }
        },
    )
}
