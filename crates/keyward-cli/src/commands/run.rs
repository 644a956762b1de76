//! `keyward run`: exec a command with an environment's secrets added to its environment.
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;

use anyhow::{bail, Result};
use keyward_api::wire::ReadQuery;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::cli::RunArgs;
use crate::client::Client;
use keyward_cli::dotenv::valid_shell_name;

/// What to put into the command's environment, and what was left out (and why).
#[derive(Debug, Default)]
struct Plan {
    set: BTreeMap<String, Zeroizing<String>>,
    invalid: Vec<String>,
    kept: Vec<String>,
}

fn plan(fields: Vec<(String, Value)>, args: &RunArgs, existing: impl Fn(&str) -> bool) -> Result<Plan> {
    let mut p = Plan::default();
    let wanted = |n: &str| args.only.is_empty() || args.only.iter().any(|o| o == n);
    for o in &args.only {
        if !fields.iter().any(|(n, _)| n == o) {
            bail!("--only names {o:?}, which the environment does not hold");
        }
    }
    for (name, value) in fields.into_iter().filter(|(n, _)| wanted(n)) {
        let var = format!("{}{name}", args.prefix);
        let Value::String(v) = value else {
            p.invalid.push(format!("{var} (not a string)"));
            continue;
        };
        let v = Zeroizing::new(v);
        if !valid_shell_name(&var) {
            p.invalid.push(format!("{var} (not a valid variable name)"));
        } else if v.contains('\0') {
            p.invalid.push(format!("{var} (value contains NUL)"));
        } else if existing(&var) && !args.override_existing {
            p.kept.push(var);
        } else {
            p.set.insert(var, v);
        }
    }
    Ok(p)
}

/// Runs a command; returns only when it could not be started.
pub async fn run(addr: &str, args: RunArgs) -> Result<()> {
    let client = Client::new(addr)?;
    let query = ReadQuery { reveal: Some(true), export: Some(true), ..ReadQuery::default() };
    let view = client.read(&args.env.project, &args.env.env, &query).await?;
    let fields = view.fields.into_iter().map(|f| (f.name, f.value)).collect();
    let p = plan(fields, &args, |n| std::env::var_os(n).is_some())?;
    if !p.invalid.is_empty() {
        if !args.skip_invalid {
            bail!(
                "cannot pass these as environment variables: {} (--skip-invalid leaves them out)",
                p.invalid.join(", ")
            );
        }
        for i in &p.invalid {
            eprintln!("keyward run: skipped {i}");
        }
    }
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    // The program gets the environment's secrets, never keyward's own credentials: the token
    // this command used (or where it is stored) and any keys or database URLs for keyward.
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(keyward_credential) {
            cmd.env_remove(&name);
        }
    }
    for (k, v) in &p.set {
        cmd.env(k, v.as_str());
    }
    // exec: the process becomes the command, so its exit status and signals are its own.
    let err = cmd.exec();
    bail!("cannot run {program:?}: {err}")
}

/// Whether an environment variable is one of keyward's own settings that could hold or lead to a
/// credential: everything `KEYWARD_*` except the server's address and CA certificate.
fn keyward_credential(name: &str) -> bool {
    name.starts_with("KEYWARD_") && !matches!(name, "KEYWARD_ADDR" | "KEYWARD_CACERT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywards_credentials_are_not_handed_on() {
        for gone in
            ["KEYWARD_TOKEN", "KEYWARD_CONFIG_DIR", "KEYWARD_MASTER_KEY", "KEYWARD_MASTER_KEYS", "KEYWARD_IMPORT_KEY"]
        {
            assert!(keyward_credential(gone), "{gone}");
        }
        for kept in ["KEYWARD_ADDR", "KEYWARD_CACERT", "PATH", "HOME", "MY_KEYWARD_TOKEN"] {
            assert!(!keyward_credential(kept), "{kept}");
        }
    }
    use serde_json::json;

    fn args(only: &[&str], prefix: &str, over: bool) -> RunArgs {
        RunArgs {
            env: crate::cli::EnvArgs { project: "p".into(), env: "e".into() },
            only: only.iter().map(|s| (*s).into()).collect(),
            prefix: prefix.into(),
            override_existing: over,
            skip_invalid: false,
            command: vec!["true".into()],
        }
    }

    fn fields() -> Vec<(String, Value)> {
        vec![
            ("DB_URL".into(), json!("postgres://x")),
            ("PORT".into(), json!(5432)),
            ("bad-name".into(), json!("v")),
            ("NUL".into(), json!("a\u{0}b")),
            ("HOME".into(), json!("/nope")),
        ]
    }

    #[test]
    fn existing_variables_win_and_invalid_ones_are_named() {
        let p = plan(fields(), &args(&[], "", false), |n| n == "HOME").unwrap();
        assert_eq!(p.set.keys().collect::<Vec<_>>(), vec!["DB_URL"]);
        assert_eq!(p.kept, vec!["HOME"]);
        assert_eq!(
            p.invalid,
            vec!["PORT (not a string)", "bad-name (not a valid variable name)", "NUL (value contains NUL)"]
        );
        let p = plan(fields(), &args(&["DB_URL", "HOME"], "APP_", false), |n| n == "HOME").unwrap();
        assert_eq!(p.set.keys().collect::<Vec<_>>(), vec!["APP_DB_URL", "APP_HOME"]);
        let p = plan(fields(), &args(&["HOME"], "", true), |_| true).unwrap();
        assert_eq!(p.set.keys().collect::<Vec<_>>(), vec!["HOME"]);
        assert!(plan(fields(), &args(&["MISSING"], "", false), |_| false).is_err());
    }
}
