//! `keyward server`'s options from the command line, the environment and a `--config` TOML file
//! — a flag wins over the environment, the environment over the file, the file over the default
//! — plus `--print-config` and the configuration reference (docs/configuration.md). All of it is
//! read from the one clap declaration of the options (`cli.rs`): a config key is its flag's name.
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::Cli;

/// Server options a config file cannot set: the file itself, an action, and `--no-audit`
/// (a flag only, so it is never on by accident).
const NOT_IN_FILES: &[&str] = &["config", "print-config", "no-audit", "help"];

/// Why the command line could not be read.
#[derive(Debug)]
pub enum SettingsError {
    /// Clap's own error (usage, `--help`, `--version`), printed by clap.
    Clap(clap::Error),
    /// A config file that cannot be read or holds a key or value that is not an option's.
    Config(String),
}

impl From<clap::Error> for SettingsError {
    fn from(e: clap::Error) -> Self {
        Self::Clap(e)
    }
}

/// The parsed command line, and the effective configuration to print when `server
/// --print-config` asked for it.
pub struct Parsed {
    /// The command line.
    pub cli: Cli,
    /// `server --print-config`'s output.
    pub print: Option<String>,
}

fn server_command() -> clap::Command {
    Cli::command().find_subcommand("server").cloned().unwrap_or_else(|| clap::Command::new("server"))
}

/// The options a config file may set.
fn file_options(cmd: &clap::Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments().filter(|a| a.get_long().is_some_and(|l| !NOT_IN_FILES.contains(&l)))
}

/// Parses `argv`, merging in the `--config` file of `keyward server`.
pub fn parse_from(mut argv: Vec<OsString>) -> Result<Parsed, SettingsError> {
    let matches = Cli::command().try_get_matches_from(&argv)?;
    let (from_file, file) = match matches.subcommand() {
        Some(("server", sub)) => match sub.get_one::<PathBuf>("config") {
            Some(path) => {
                let (extra, keys) = file_args(&server_command(), sub, path)?;
                argv.extend(extra);
                (keys, Some(path.clone()))
            }
            None => (BTreeSet::new(), None),
        },
        _ => (BTreeSet::new(), None),
    };
    let matches = Cli::command().try_get_matches_from(&argv)?;
    let cli = Cli::from_arg_matches(&matches)?;
    let print = match matches.subcommand() {
        Some(("server", sub)) if sub.get_flag("print_config") => {
            Some(effective(&server_command(), sub, &from_file, file.as_deref()))
        }
        _ => None,
    };
    Ok(Parsed { cli, print })
}

/// The flags a config file stands for, for the options neither a flag nor the environment set,
/// and the keys it set.
fn file_args(
    cmd: &clap::Command,
    given: &ArgMatches,
    path: &Path,
) -> Result<(Vec<OsString>, BTreeSet<String>), SettingsError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| SettingsError::Config(format!("cannot read config file {shown}: {e}")))?;
    // The parser's message only: the file may hold a database password, never echoed.
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map_or(0, |s| text[..s.start.min(text.len())].lines().count().max(1));
        let what = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
        SettingsError::Config(format!("config file {shown}, line {line}: {what}"))
    })?;
    let mut argv = Vec::new();
    let mut keys = BTreeSet::new();
    for (key, value) in &table {
        let Some(arg) = file_options(cmd).find(|a| a.get_long() == Some(key.as_str())) else {
            return Err(SettingsError::Config(unknown_key(cmd, key, &shown.to_string())));
        };
        let overridden = matches!(
            given.value_source(arg.get_id().as_str()),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        );
        if overridden {
            continue;
        }
        let flag = format!("--{key}");
        let wrong = |what: &str| SettingsError::Config(format!("config file {shown}: `{key}` takes {what}"));
        match arg.get_action() {
            ArgAction::SetTrue => match value {
                toml::Value::Boolean(true) => argv.push(flag.into()),
                toml::Value::Boolean(false) => {}
                _ => return Err(wrong("true or false")),
            },
            ArgAction::Append => {
                let items = match value {
                    toml::Value::Array(items) => items.clone(),
                    one => vec![one.clone()],
                };
                for item in &items {
                    argv.push(format!("{flag}={}", scalar(item).ok_or_else(|| wrong("a list of strings"))?).into());
                }
            }
            _ => argv.push(format!("{flag}={}", scalar(value).ok_or_else(|| wrong("a string or a number"))?).into()),
        }
        keys.insert(key.clone());
    }
    Ok((argv, keys))
}

fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An unknown key's error, naming the nearest valid key.
fn unknown_key(cmd: &clap::Command, key: &str, file: &str) -> String {
    if NOT_IN_FILES.contains(&key) {
        return format!("config file {file}: `{key}` cannot be set in a file (a flag only)");
    }
    let nearest = file_options(cmd)
        .filter_map(Arg::get_long)
        .map(|k| (strsim::levenshtein(key, k), k))
        .min()
        .filter(|(d, k)| *d <= 3.max(k.len() / 3));
    match nearest {
        Some((_, k)) => format!("config file {file}: unknown key `{key}`; did you mean `{k}`?"),
        None => format!("config file {file}: unknown key `{key}` (the keys are `keyward server`'s flags without `--`)"),
    }
}

/// `--print-config`: every option as a TOML line, with where its value came from.
fn effective(cmd: &clap::Command, given: &ArgMatches, from_file: &BTreeSet<String>, file: Option<&Path>) -> String {
    let mut out = String::from("# keyward server: the effective configuration (flag > environment > file > default)\n");
    for arg in file_options(cmd) {
        let (Some(key), id) = (arg.get_long(), arg.get_id().as_str()) else { continue };
        let source = if from_file.contains(key) {
            format!("file {}", file.map(|p| p.display().to_string()).unwrap_or_default())
        } else {
            match given.value_source(id) {
                Some(ValueSource::CommandLine) => "flag".to_owned(),
                Some(ValueSource::EnvVariable) => {
                    format!(
                        "environment ({})",
                        arg.get_env().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default()
                    )
                }
                Some(ValueSource::DefaultValue) => "default".to_owned(),
                _ => "not set".to_owned(),
            }
        };
        let value = if arg.get_action().takes_values() {
            let values: Vec<String> =
                given.get_raw(id).map(|vs| vs.map(|v| redact(key, &v.to_string_lossy())).collect()).unwrap_or_default();
            match (arg.get_action(), values.as_slice()) {
                (_, []) => None,
                (ArgAction::Append, vs) => {
                    Some(format!("[{}]", vs.iter().map(|v| quote(v)).collect::<Vec<_>>().join(", ")))
                }
                (_, [v, ..]) => Some(quote(v)),
            }
        } else {
            Some(given.get_flag(id).to_string())
        };
        match value {
            Some(v) => out.push_str(&format!("{key} = {v}  # {source}\n")),
            None => out.push_str(&format!("# {key} is not set\n")),
        }
    }
    if given.get_flag("no_audit") {
        out.push_str("# --no-audit: requests are not audited\n");
    }
    out
}

/// A value as `--print-config` shows it: the database URL without its password.
fn redact(key: &str, value: &str) -> String {
    match key {
        "database" => keyward_store::DatabaseUrl::parse(value).redacted(),
        _ => value.to_owned(),
    }
}

/// A TOML value: a number or boolean bare, anything else a string.
fn quote(v: &str) -> String {
    if v.parse::<i64>().is_ok() || v == "true" || v == "false" {
        v.to_owned()
    } else {
        toml::Value::String(v.to_owned()).to_string()
    }
}

/// docs/configuration.md: every server option, generated from the declaration (by its test).
#[cfg(test)]
fn reference() -> String {
    let cmd = server_command();
    let mut out = String::from(
        "# Configuration\n\n\
         <!-- Generated from `keyward server`'s option declaration (crates/keyward-cli/src/cli.rs) by \
         `KEYWARD_WRITE_DOCS=1 cargo test -p keyward-cli configuration_reference`; a test fails when it is out \
         of date. -->\n\n\
         Every option of `keyward server` can be given three ways: as a flag, as an environment variable, or as \
         a key in a TOML file named by `--config FILE` (or `KEYWARD_CONFIG`). A flag wins over the environment, \
         the environment over the file, and the file over the default. A key in the file is the flag's name \
         without `--`; an unknown key is an error that names the nearest valid one. `keyward server \
         --print-config` prints the effective configuration, with where each value came from (the database \
         password redacted), and exits.\n\n\
         ```toml\n# keyward.toml\nlisten = \"0.0.0.0:8200\"\ndatabase = \"postgres://keyward@db.internal/keyward?sslmode=verify-full\"\n\
         master-key-file = \"/etc/keyward/master.keys\"\ntls-cert = \"/etc/keyward/tls.crt\"\ntls-key = \"/etc/keyward/tls.key\"\n\
         trusted-proxies = [\"10.0.0.0/8\"]\nrate-limit = \"100/s\"\naudit-anchor-file = \"/var/lib/keyward/anchors\"\n```\n\n\
         Durations are Go-style (`90s`, `30m`, `1h30m`, `32d`); rates are `N/s`, `N/m` or `N/h`, or `off`.\n\n\
         ## Not options\n\n\
         - **The master keyring** is never a flag (a flag is visible in `ps`): it comes from the file named by \
         `master-key-file`, else from `KEYWARD_MASTER_KEYS` (`tag:base64key[,tag:base64key…]`, the first active) or \
         `KEYWARD_MASTER_KEY` (one base64 key, tag `v1`). Make a key with `keyward gen key`.\n\
         - **`--no-audit`** is a flag only (no variable, no key) and is refused without `--dev`: it is for \
         benchmarks.\n\
         - **`--config FILE`** (`KEYWARD_CONFIG`) and **`--print-config`** are about the configuration itself.\n\n\
         ## Options\n\n| Key | Flag | Environment | Default |\n|---|---|---|---|\n",
    );
    let options: Vec<&Arg> = file_options(&cmd).collect();
    let cell = |arg: &Arg| -> (String, String, String) {
        let key = arg.get_long().unwrap_or_default().to_owned();
        let env = arg.get_env().map(|e| format!("`{}`", e.to_string_lossy())).unwrap_or_else(|| "—".into());
        let default = match arg.get_default_values() {
            [] if arg.get_action().takes_values() => "—".to_owned(),
            [] => "`false`".to_owned(),
            vs => vs.iter().map(|v| format!("`{}`", v.to_string_lossy())).collect::<Vec<_>>().join(", "),
        };
        (key, env, default)
    };
    for arg in &options {
        let (key, env, default) = cell(arg);
        out.push_str(&format!("| [`{key}`](#{key}) | `--{key}` | {env} | {default} |\n"));
    }
    for arg in &options {
        let (key, env, default) = cell(arg);
        let help = arg.get_long_help().or(arg.get_help()).map(|h| h.to_string()).unwrap_or_default();
        out.push_str(&format!("\n### {key}\n\n`--{key}` · {env} · default {default}\n\n{}\n", help.trim()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;

    fn server(args: &[&str]) -> Result<(crate::cli::ServerArgs, Option<String>), SettingsError> {
        let argv = ["keyward", "server"].iter().chain(args).map(OsString::from).collect();
        let parsed = parse_from(argv)?;
        match parsed.cli.command {
            Command::Server(a) => Ok((*a, parsed.print)),
            _ => panic!("not the server command"),
        }
    }

    fn config(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    fn message(r: Result<(crate::cli::ServerArgs, Option<String>), SettingsError>) -> String {
        match r {
            Err(SettingsError::Config(m)) => m,
            Err(SettingsError::Clap(e)) => e.to_string(),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
        // Only this test sets KEYWARD_STALE_SCAN_INTERVAL (the environment is the process's).
        let f = config("stale-scan-interval = \"5m\"\nrequest-timeout = \"7s\"\nlockout-after = 3\n");
        let path = f.path().to_str().unwrap();
        let (a, _) = server(&["--config", path]).unwrap();
        assert_eq!((a.stale_scan_interval.as_str(), a.request_timeout.as_str(), a.lockout_after), ("5m", "7s", 3));
        assert_eq!(a.max_in_flight, keyward_server::HttpLimits::default().max_in_flight, "the default");
        std::env::set_var("KEYWARD_STALE_SCAN_INTERVAL", "2m");
        let (a, _) = server(&["--config", path]).unwrap();
        assert_eq!(a.stale_scan_interval, "2m", "the environment beats the file");
        let (a, _) = server(&["--config", path, "--stale-scan-interval", "1m", "--lockout-after", "4"]).unwrap();
        std::env::remove_var("KEYWARD_STALE_SCAN_INTERVAL");
        assert_eq!((a.stale_scan_interval.as_str(), a.lockout_after, a.request_timeout.as_str()), ("1m", 4, "7s"));
    }

    #[test]
    fn files_set_flags_lists_and_options() {
        let f = config(
            "audit-stdout = true\ninsecure-http = false\ntrusted-proxies = [\"10.0.0.0/8\", \"192.168.0.0/16\"]\n\
             migrate-nice-ratio = 0\nlog-format = \"text\"\n",
        );
        let (a, _) = server(&["--config", f.path().to_str().unwrap()]).unwrap();
        assert!(a.audit_stdout && !a.insecure_http);
        assert_eq!(a.trusted_proxies, ["10.0.0.0/8", "192.168.0.0/16"]);
        assert_eq!(a.migrate_nice_ratio, Some(0));
    }

    #[test]
    fn an_unknown_key_names_the_nearest_valid_one() {
        let f = config("listn = \"0.0.0.0:8200\"\n");
        let m = message(server(&["--config", f.path().to_str().unwrap()]));
        assert!(m.contains("unknown key `listn`") && m.contains("did you mean `listen`?"), "{m}");
        let f = config("no-audit = true\n");
        let m = message(server(&["--config", f.path().to_str().unwrap()]));
        assert!(m.contains("`no-audit` cannot be set in a file"), "{m}");
        let f = config("zzzzzzzzzzzzzzzz = 1\n");
        let m = message(server(&["--config", f.path().to_str().unwrap()]));
        assert!(m.contains("unknown key") && !m.contains("did you mean"), "{m}");
    }

    #[test]
    fn bad_files_are_one_readable_line_that_never_echoes_the_file() {
        let f = config("database = \"postgres://kw:hunter2@db/kw\"\nlisten = [\n");
        let m = message(server(&["--config", f.path().to_str().unwrap()]));
        assert!(m.contains("line") && !m.contains("hunter2") && !m.contains('\n'), "{m}");
        let f = config("audit-stdout = \"yes\"\n");
        let m = message(server(&["--config", f.path().to_str().unwrap()]));
        assert!(m.contains("`audit-stdout` takes true or false"), "{m}");
        let m = message(server(&["--config", "/nonexistent/keyward.toml"]));
        assert!(m.contains("cannot read config file /nonexistent/keyward.toml"), "{m}");
    }

    #[test]
    fn print_config_shows_sources_and_redacts_the_database_password() {
        let f = config("database = \"postgres://kw:hunter2@db.internal/kw\"\nmigrate-batch = 50\n");
        let (_, print) =
            server(&["--config", f.path().to_str().unwrap(), "--print-config", "--listen", "0.0.0.0:9000"]).unwrap();
        let text = print.unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("listen = \"0.0.0.0:9000\"  # flag"), "{text}");
        assert!(text.contains("migrate-batch = 50  # file"), "{text}");
        assert!(text.contains("max-in-flight = 512  # default"), "{text}");
        assert!(text.contains("# migrate-nice-ratio is not set"), "{text}");
    }

    #[test]
    fn every_server_option_has_a_variable_and_a_key_but_the_flag_only_ones() {
        for arg in server_command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if ["help", "print-config", "no-audit"].contains(&long) {
                assert!(arg.get_env().is_none(), "--{long} has no environment variable");
                continue;
            }
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            assert_eq!(env.as_deref(), Some(format!("KEYWARD_{}", long.replace('-', "_").to_uppercase()).as_str()));
        }
    }

    #[test]
    fn the_configuration_reference_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
        let text = reference();
        if std::env::var("KEYWARD_WRITE_DOCS").as_deref() == Ok("1") {
            std::fs::write(&path, &text).unwrap();
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(current == text, "docs/configuration.md is out of date: run KEYWARD_WRITE_DOCS=1 cargo test -p keyward-cli configuration_reference");
    }
}
