//! `keyward keys …`.
use anyhow::Result;

use crate::cli::{Format, KeysCommand};
use crate::client::Client;
use crate::output::{json, table};

fn yes(b: bool) -> String {
    if b { "yes" } else { "" }.to_owned()
}

/// Runs a keys command.
pub async fn run(addr: &str, cmd: KeysCommand) -> Result<()> {
    let client = Client::new(addr)?;
    match cmd {
        KeysCommand::Status(out) => {
            let s = client.key_status().await?;
            match out.format {
                Format::Json => json(&s)?,
                Format::Table => {
                    table(
                        &["MASTER KEY", "ACTIVE", "CONFIGURED", "WRAPPED KEYS", "RETIRABLE"],
                        s.keks
                            .iter()
                            .map(|k| {
                                vec![
                                    k.tag.clone(),
                                    yes(k.active),
                                    yes(k.configured),
                                    k.wrapped_keys.to_string(),
                                    yes(k.retirable),
                                ]
                            })
                            .collect(),
                    );
                    table(
                        &["PROJECT", "DATA KEY", "WRAPPED BY", "BLOBS"],
                        s.deks
                            .iter()
                            .map(|d| {
                                vec![d.mount.clone(), format!("v{}", d.version), d.kek_tag.clone(), d.blobs.to_string()]
                            })
                            .collect(),
                    );
                }
            }
        }
        KeysCommand::Rotate { project, out } => {
            let r = client.rotate_dek(&project).await?;
            match out.format {
                Format::Json => json(&r)?,
                Format::Table => println!("{}: new writes now use data key v{}", r.mount, r.version),
            }
        }
        KeysCommand::Rewrap(out) => {
            let r = client.rewrap().await?;
            match out.format {
                Format::Json => json(&r)?,
                Format::Table => println!("Rewrapped {} key(s) under the active master key", r.rewrapped),
            }
        }
        KeysCommand::Prune { project, out } => {
            let r = client.prune_deks(&project).await?;
            match out.format {
                Format::Json => json(&r)?,
                Format::Table => {
                    let list = |v: &[u32]| v.iter().map(|n| format!("v{n}")).collect::<Vec<_>>().join(", ");
                    println!(
                        "{}: deleted [{}]; kept (still sealing secrets) [{}]",
                        r.mount,
                        list(&r.deleted),
                        list(&r.kept)
                    );
                }
            }
        }
    }
    Ok(())
}
