//! `keyward envs …`.
use anyhow::Result;

use crate::cli::{EnvsCommand, Format};
use crate::client::Client;
use crate::output::{confirm, json, table};

/// Runs an envs command.
pub async fn run(addr: &str, cmd: EnvsCommand) -> Result<()> {
    let client = Client::new(addr)?;
    match cmd {
        EnvsCommand::List { project, out } => {
            let mut items = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = client.list(&project, after.as_deref()).await?;
                items.extend(page.items);
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            match out.format {
                Format::Json => json(&items)?,
                Format::Table => table(
                    &["ENVIRONMENT", "FIELDS", "VERSION", "UPDATED"],
                    items
                        .into_iter()
                        .map(|i| vec![i.path, i.fields.to_string(), i.version.to_string(), i.updated_time])
                        .collect(),
                ),
            }
        }
        EnvsCommand::Delete { env, yes } => {
            confirm(&format!("delete environment {}/{} with all its versions", env.project, env.env), yes)?;
            client.delete_secret(&env.project, &env.env).await?;
            println!("Deleted {}/{}", env.project, env.env);
        }
    }
    Ok(())
}
