//! `keyward mounts …`.
use anyhow::Result;

use crate::cli::{Format, MountsCommand};
use crate::client::Client;
use crate::output::{confirm, json, table};

/// Runs a mounts command.
pub async fn run(addr: &str, cmd: MountsCommand) -> Result<()> {
    let client = Client::new(addr)?;
    match cmd {
        MountsCommand::Create { name, kind, rotate_after, out } => {
            let m = client.create_mount(&name, &kind, rotate_after).await?;
            match out.format {
                Format::Json => json(&m)?,
                Format::Table => println!("Created {} mount {:?}", m.kind, m.path),
            }
        }
        MountsCommand::List(out) => {
            let list = client.mounts().await?;
            match out.format {
                Format::Json => json(&list)?,
                Format::Table => table(
                    &["PATH", "KIND", "CREATED"],
                    list.mounts.into_iter().map(|m| vec![m.path, m.kind, m.created_time]).collect(),
                ),
            }
        }
        MountsCommand::Delete { name, yes, out } => {
            confirm(
                &format!("delete mount {name:?} and destroy its data keys (its secrets become unrecoverable)"),
                yes,
            )?;
            let d = client.delete_mount(&name).await?;
            match out.format {
                Format::Json => json(&d)?,
                Format::Table => println!("Deleted mount {:?}: {} data key(s) destroyed", d.path, d.keys_shredded),
            }
        }
    }
    Ok(())
}
