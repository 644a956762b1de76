//! `keyward operator init`.
use anyhow::Result;

use crate::cli::{Format, OperatorCommand};
use crate::client::Client;

/// Runs an operator command.
pub async fn run(addr: &str, cmd: OperatorCommand) -> Result<()> {
    match cmd {
        OperatorCommand::Init(out) => {
            let resp = Client::new(addr)?.init().await?;
            match out.format {
                Format::Json => {
                    println!("{}", serde_json::json!({ "root_token": resp.root_token }))
                }
                Format::Table => {
                    println!("Root token: {}", resp.root_token);
                    eprintln!("Keep it safe: it is shown only this once. Create narrower tokens for daily use.");
                }
            }
            Ok(())
        }
    }
}
