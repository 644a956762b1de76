//! The command line, declared once with clap (help text, environment variables, defaults).
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// keyward — a self-hosted secrets and API-key vault.
///
/// Every command except `server` and `gen` talks to a keyward server over HTTP: set
/// KEYWARD_ADDR (default http://127.0.0.1:8200) and KEYWARD_TOKEN.
#[derive(Debug, Parser)]
#[command(name = "keyward", version)]
pub struct Cli {
    /// Server address.
    #[arg(
        long,
        global = true,
        env = "KEYWARD_ADDR",
        default_value = "http://127.0.0.1:8200"
    )]
    pub addr: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the keyward server.
    Server(ServerArgs),
    /// Initialise a fresh server (once) and print the root token.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Read and write secrets of an environment (a path in a project mount).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// List and delete environments of a project.
    #[command(subcommand)]
    Envs(EnvsCommand),
    /// Create, list and delete mounts (projects).
    #[command(subcommand)]
    Mounts(MountsCommand),
    /// Generate random secrets and keys locally (no server needed).
    #[command(subcommand)]
    Gen(GenCommand),
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `keyward server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Development mode: temporary SQLite database, random master key, initialised at once,
    /// with a kv mount `secret`; prints the root token. Everything is lost on exit.
    #[arg(long)]
    pub dev: bool,
    /// Address to listen on.
    #[arg(long, env = "KEYWARD_LISTEN", default_value = "127.0.0.1:8200")]
    pub listen: SocketAddr,
    /// Database: a SQLite file path or a postgres:// URL.
    #[arg(
        long,
        env = "KEYWARD_DATABASE",
        default_value = "./keyward-data/keyward.db"
    )]
    pub database: String,
    /// File holding the master keyring (`tag:base64key` entries, first is active; mode 0600).
    /// Otherwise KEYWARD_MASTER_KEYS (`tag:base64key[,tag:base64key…]`) or KEYWARD_MASTER_KEY
    /// (one base64 key, tag v1) is read from the environment. Make a key with `keyward gen key`.
    #[arg(long, env = "KEYWARD_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Log format (default: text with --dev, json otherwise). Logs go to stderr.
    #[arg(long)]
    pub log_format: Option<LogFormat>,
    /// Database connections in the pool.
    #[arg(long, default_value_t = 8)]
    pub db_connections: u32,
}

/// `keyward operator …`.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Initialise the server once; prints the root token (shown only this once).
    Init(FormatArgs),
}

/// Table for people, JSON for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// A table (or plain lines).
    #[default]
    Table,
    /// JSON.
    Json,
}

/// `--format table|json`.
#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Which environment: `-p PROJECT -e ENV`.
#[derive(Debug, Args)]
pub struct EnvArgs {
    /// Project: the kv mount.
    #[arg(short = 'p', long = "project")]
    pub project: String,
    /// Environment: a path inside the project (may have several segments, e.g. accounts/42).
    #[arg(short = 'e', long = "env")]
    pub env: String,
}

/// `keyward secrets …`.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Set one or more secrets as one new version: NAME=VALUE, NAME=- (value from stdin) or
    /// NAME=@path (value from a file; `@@` at the start stands for a literal `@`).
    ///
    /// Values given as arguments are visible in `ps` and shell history: prefer NAME=- or
    /// NAME=@path for real credentials.
    Set {
        #[command(flatten)]
        env: EnvArgs,
        /// NAME=VALUE pairs.
        #[arg(required = true, value_name = "NAME=VALUE")]
        pairs: Vec<String>,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// Print one secret: its mask, or with --reveal the plaintext and a newline.
    Get {
        #[command(flatten)]
        env: EnvArgs,
        /// The secret's name.
        name: String,
        /// Print the plaintext value (needs the `read` capability; audited).
        #[arg(long)]
        reveal: bool,
        /// Read this version instead of the current one.
        #[arg(long)]
        version: Option<u64>,
    },
    /// List an environment's secrets with masked values.
    List {
        #[command(flatten)]
        env: EnvArgs,
        /// Read this version instead of the current one.
        #[arg(long)]
        version: Option<u64>,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// Remove secrets (one new version without them).
    Unset {
        #[command(flatten)]
        env: EnvArgs,
        /// Names to remove.
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// Import a .env file (or a flat JSON object) as one new version; `-` reads stdin.
    ///
    /// .env syntax: `NAME=value`, `export NAME=value`, `# comments`, blank lines, 'single
    /// quotes' (literal) and "double quotes" (with \n \t \" \\ \$ escapes; may span lines).
    /// A syntax error names its line and nothing is imported.
    Import {
        #[command(flatten)]
        env: EnvArgs,
        /// File to read, or `-` for stdin.
        file: String,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// Write an environment's plaintext values (needs `read`) in a re-importable format.
    Export {
        #[command(flatten)]
        env: EnvArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Dotenv)]
        format: ExportFormat,
        /// Write to this file (created with mode 0600) instead of stdout.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Show the stored versions of an environment.
    History {
        #[command(flatten)]
        env: EnvArgs,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// Write a new version equal to an older one.
    Rollback {
        #[command(flatten)]
        env: EnvArgs,
        /// The version to restore.
        #[arg(long)]
        version: u64,
        #[command(flatten)]
        out: FormatArgs,
    },
}

/// Formats of `secrets export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// `NAME="value"` lines.
    Dotenv,
    /// A flat JSON object.
    Json,
    /// `export NAME="value"` lines for POSIX shells.
    Shell,
}

/// `keyward envs …`.
#[derive(Debug, Subcommand)]
pub enum EnvsCommand {
    /// List a project's environments with field counts and last change.
    List {
        /// Project: the kv mount.
        #[arg(short = 'p', long = "project")]
        project: String,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// Delete an environment with all its versions.
    Delete {
        #[command(flatten)]
        env: EnvArgs,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

/// `keyward mounts …`.
#[derive(Debug, Subcommand)]
pub enum MountsCommand {
    /// Create a mount (a kv project by default) with its own data key.
    Create {
        /// Mount name: A-Z a-z 0-9 . _ -
        name: String,
        /// Engine.
        #[arg(long, default_value = "kv", value_parser = ["kv", "transit"])]
        kind: String,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// List mounts.
    List(FormatArgs),
    /// Delete a mount and crypto-shred it: its data keys are destroyed, so its secrets can never
    /// be decrypted again.
    Delete {
        /// Mount name.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        out: FormatArgs,
    },
}

/// `keyward gen …`.
#[derive(Debug, Subcommand)]
pub enum GenCommand {
    /// 64 random bytes, base64 (e.g. for SECRET_KEY_BASE).
    Secret,
    /// 32 random bytes, base64 (a master key, or any AES-256 key).
    Key,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
