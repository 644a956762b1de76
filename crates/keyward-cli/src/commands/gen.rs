//! `keyward gen secret|key`: local randomness, no server.
use anyhow::Result;
use keyward_crypto::random_base64_secret;

use crate::cli::GenCommand;

/// Prints a fresh random value.
pub fn run(cmd: GenCommand) -> Result<()> {
    let n = match cmd {
        GenCommand::Secret => 64,
        GenCommand::Key => 32,
    };
    println!("{}", &*random_base64_secret(n));
    Ok(())
}
