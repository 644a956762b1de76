//! `keyward login`, `logout` and `status`.
use std::io::{IsTerminal, Read, Write};

use anyhow::{bail, Context, Result};
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::cli::{Format, FormatArgs};
use crate::client::Client;
use crate::config;
use crate::output::{json, table};

/// Reads a line from the terminal with echo off.
pub(crate) fn prompt_hidden(prompt: &str) -> Result<Zeroizing<String>> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = std::io::stdin();
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let saved = tcgetattr(&stdin).context("cannot read the terminal settings")?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).context("cannot turn terminal echo off")?;
    let mut line = Zeroizing::new(String::new());
    let read = stdin.read_line(&mut line);
    tcsetattr(&stdin, OptionalActions::Now, &saved).ok();
    eprintln!();
    read.context("cannot read the token")?;
    Ok(line)
}

/// `keyward login`: checks the token against the server, then stores it (0600).
pub async fn login(addr: &str, token_stdin: bool) -> Result<()> {
    let text = if token_stdin || !std::io::stdin().is_terminal() {
        let mut s = Zeroizing::new(String::new());
        std::io::stdin().read_to_string(&mut s).context("cannot read the token from stdin")?;
        s
    } else {
        prompt_hidden("Token: ")?
    };
    let token = text.trim();
    if keyward_crypto::Token::parse(token).is_none() {
        bail!("that is not a keyward token (kw_ followed by 43 letters and digits)");
    }
    let client = Client::with_token(addr, SecretString::from(token.to_owned()))?;
    let info = client.lookup_self().await.context("the server did not accept this token")?;
    let path = config::store_token(token)?;
    println!(
        "Logged in to {addr} as {} ({}); token stored in {} (mode 0600)",
        info.accessor,
        info.policies.join(", "),
        path.display()
    );
    if std::env::var_os("KEYWARD_TOKEN").is_some_and(|t| !t.is_empty()) {
        eprintln!("note: KEYWARD_TOKEN is set and takes precedence over the stored token");
    }
    Ok(())
}

/// `keyward logout`.
pub fn logout() -> Result<()> {
    if config::forget_token()? {
        println!("Logged out: the stored token was removed (it is still valid until it expires or is revoked)");
    } else {
        println!("No stored token");
    }
    Ok(())
}

/// `keyward status`.
pub async fn status(addr: &str, out: FormatArgs) -> Result<()> {
    let source = if std::env::var_os("KEYWARD_TOKEN").is_some_and(|t| !t.is_empty()) {
        "KEYWARD_TOKEN".to_owned()
    } else {
        config::token_path()?.display().to_string()
    };
    let client = Client::new(addr)?;
    let info = client.lookup_self().await?;
    match out.format {
        Format::Json => json(&serde_json::json!({ "address": addr, "token_source": source, "token": info }))?,
        Format::Table => table(
            &["ADDRESS", "TOKEN FROM", "ACCESSOR", "POLICIES", "EXPIRES"],
            vec![vec![
                addr.to_owned(),
                source,
                info.accessor,
                info.policies.join(", "),
                info.expire_time.unwrap_or_else(|| "never".into()),
            ]],
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn token_file_round_trip_and_mode_checks() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::env::set_var("KEYWARD_CONFIG_DIR", dir.path());
        let path = config::store_token("kw_x").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(config::stored_token().unwrap().unwrap().expose_secret(), "kw_x");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(config::stored_token().unwrap_err().to_string().contains("readable by other users"));
        assert!(config::forget_token().unwrap());
        assert!(config::stored_token().unwrap().is_none());
        std::env::remove_var("KEYWARD_CONFIG_DIR");
    }
}
