//! `keyward policy …`.
use std::io::Read;

use anyhow::{Context, Result};

use crate::cli::{Format, PolicyCommand};
use crate::client::Client;
use crate::output::{confirm, json, table};

/// Runs a policy command.
pub async fn run(addr: &str, cmd: PolicyCommand) -> Result<()> {
    let client = Client::new(addr)?;
    match cmd {
        PolicyCommand::Write { name, file } => {
            let mut doc = String::new();
            if file == "-" {
                std::io::stdin().read_to_string(&mut doc).context("cannot read stdin")?;
            } else {
                doc = std::fs::read_to_string(&file).with_context(|| format!("cannot read {file}"))?;
            }
            let p = client.write_policy(&name, doc).await?;
            println!("Wrote policy {:?} ({} rule(s))", p.name, p.rules.len());
        }
        PolicyCommand::Read { name, out } => {
            let p = client.read_policy(&name).await?;
            match out.format {
                Format::Json => json(&p)?,
                Format::Table => table(
                    &["PATH", "CAPABILITIES"],
                    p.rules
                        .iter()
                        .map(|r| {
                            vec![
                                r.path.clone(),
                                r.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", "),
                            ]
                        })
                        .collect(),
                ),
            }
        }
        PolicyCommand::List(out) => {
            let l = client.list_policies().await?;
            match out.format {
                Format::Json => json(&l)?,
                Format::Table => l.policies.iter().for_each(|p| println!("{p}")),
            }
        }
        PolicyCommand::Delete { name, yes } => {
            confirm(&format!("delete policy {name:?}"), yes)?;
            client.delete_policy(&name).await?;
            println!("Deleted policy {name:?}");
        }
    }
    Ok(())
}
