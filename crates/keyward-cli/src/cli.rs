//! The command line, declared once with clap (help text, environment variables, defaults).
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use keyward_core::KeywardConfig;
use keyward_server::{AuditOptions, GuardConfig, HttpLimits, DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_STALE_SCAN_INTERVAL};

/// keyward — a self-hosted secrets and API-key vault.
///
/// Every command except `server` and `gen` talks to a keyward server over HTTP: set
/// KEYWARD_ADDR (default http://127.0.0.1:8200) and KEYWARD_TOKEN.
#[derive(Debug, Parser)]
#[command(name = "keyward", version)]
pub struct Cli {
    /// Server address.
    #[arg(long, global = true, env = "KEYWARD_ADDR", default_value = "http://127.0.0.1:8200")]
    pub addr: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the keyward server.
    Server(Box<ServerArgs>),
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
    /// Create, inspect, list and revoke tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Write, read, list and delete path policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Key lifecycle: status, data-key rotation, rewrap under the active master key, prune.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check master keys, an encrypt/decrypt self-test and the audit chain; with --verify-all,
    /// decrypt every stored secret version (nothing secret is printed). Exits non-zero on any
    /// failure.
    Doctor {
        /// Also decrypt every stored blob and report failures by project, path and version.
        #[arg(long)]
        verify_all: bool,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// Read, search and verify the tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Credential-proxy routes: applications call an API through keyward, which injects the key
    /// they never see.
    #[command(subcommand)]
    Proxy(ProxyCommand),
    /// Generate random secrets and keys locally (no server needed).
    #[command(subcommand)]
    Gen(GenCommand),
    /// Run a command with an environment's secrets in its environment (they never touch disk).
    ///
    /// Variables already set win unless --override. The exit status and signals are the
    /// command's own (keyward execs it). A missing environment, a denied read, or names that are
    /// not valid variable names / values with NUL / non-string values stop before the command
    /// starts (unless --skip-invalid).
    Run(RunArgs),
    /// Log in and store the token for this user (mode 0600 in the config directory); KEYWARD_TOKEN
    /// still wins. `--method token` (the default) stores a token you have; `--method approle`
    /// logs a machine in with its role ID and secret ID and gets a token of the role's policies;
    /// `userpass` a person, `jwt` a CI job or pod with its platform's token.
    Login(LoginArgs),
    /// Open a wrapping token someone handed you (`secrets get --wrap-ttl`), once: reads it from
    /// stdin (never an argument) and prints what it holds — a single value alone, else JSON.
    Unwrap,
    /// Login methods (AppRole, userpass, JWT): enable, list, disable (`sudo` on sys/auth).
    #[command(subcommand)]
    Auth(AuthCommand),
    /// AppRole roles and secret IDs, for machines that log in with `keyward login --method approle`.
    #[command(subcommand)]
    Approle(ApproleCommand),
    /// Userpass users: people who log in with a password and a TOTP code.
    #[command(subcommand)]
    User(UserCommand),
    /// Forget the stored token.
    Logout,
    /// Show the server address and the current token's accessor, policies and expiry.
    Status(FormatArgs),
    /// Move secrets in from other stores (decrypted locally, written through the API; the old
    /// store's keys never reach the server).
    #[command(subcommand)]
    Import(ImportCommand),
    /// Print a shell completion script (bash, zsh, fish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages for every command into a directory.
    Man {
        /// Output directory (created if missing).
        #[arg(long, default_value = "man")]
        dir: PathBuf,
    },
}

/// `keyward run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub env: EnvArgs,
    /// Only these names (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Prefix every variable name (e.g. APP_).
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Secrets replace variables already set in the environment.
    #[arg(long = "override")]
    pub override_existing: bool,
    /// Skip (and report on stderr) names and values that cannot be environment variables.
    #[arg(long)]
    pub skip_invalid: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Where imported rows go, and how.
#[derive(Debug, Args)]
pub struct ImportTarget {
    /// The kv mount to write into.
    #[arg(long)]
    pub mount: String,
    /// The path of each row's secret, with `{id}` for the row id (e.g. `accounts/{id}/credentials`).
    #[arg(long)]
    pub path_template: String,
    /// Decrypt and check everything, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `keyward import …`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Cloak-encrypted columns (Elixir's Cloak / cloak_ecto `AES.GCM`): each row becomes one secret
    /// whose fields are the decrypted columns; the key is chosen by each ciphertext's tag.
    Cloak {
        /// Source database (PostgreSQL); or KEYWARD_IMPORT_DATABASE_URL. A host that is not on
        /// this machine needs sslmode=verify-full (added when no sslmode is given), with
        /// sslrootcert=CA.pem for a private CA.
        #[arg(long, env = "KEYWARD_IMPORT_DATABASE_URL", hide_env_values = true, conflicts_with = "input")]
        database_url: Option<String>,
        /// Reach a source database that is not on this machine without checking its certificate
        /// and name (sslmode below verify-full): a network attacker could read the ciphertexts.
        #[arg(long, requires = "database_url")]
        database_insecure: bool,
        /// Rows exported as JSON lines (`{"id": …, "<column>": "<base64>"}`), instead of a database.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Table to read.
        #[arg(long, required_unless_present = "input")]
        table: Option<String>,
        /// Id column.
        #[arg(long, default_value = "id")]
        id_column: String,
        /// Encrypted columns (comma-separated); each becomes a field of the same name.
        #[arg(long, value_delimiter = ',', required = true)]
        columns: Vec<String>,
        /// A key: TAG=BASE64[:iv=12] or TAG=@file (repeatable); also KEYWARD_IMPORT_KEYS
        /// (comma-separated), so keys need not sit in shell history.
        #[arg(long = "key")]
        keys: Vec<String>,
        #[command(flatten)]
        target: ImportTarget,
    },
    /// Node-style `ivHex:authTagHex:cipherHex` strings (AES-256-GCM, 12- or 16-byte IV) from JSON
    /// lines or CSV: each row becomes a secret holding one field.
    GcmHex {
        /// The 32-byte key, base64 or 64 hex characters, or @file; or KEYWARD_IMPORT_KEY.
        #[arg(long, env = "KEYWARD_IMPORT_KEY", hide_env_values = true)]
        key: String,
        /// Input file: JSON lines, or CSV (by a `.csv` name).
        #[arg(long)]
        input: PathBuf,
        /// Id column.
        #[arg(long, default_value = "id")]
        id_column: String,
        /// Ciphertext column.
        #[arg(long, default_value = "ciphertext")]
        ciphertext_column: String,
        /// The field name each value is stored under.
        #[arg(long, default_value = "value")]
        field: String,
        #[command(flatten)]
        target: ImportTarget,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `keyward server`. Every option here is declared once: its flag, its environment variable
/// (`KEYWARD_` and the flag in upper snake case), its key in a `--config` file (the flag's name),
/// its default (taken from the library that uses it) and its help; docs/configuration.md is
/// generated from this declaration. Two exceptions: `--no-audit` is a flag only, and the master
/// keyring is never an option (a key file or the KEYWARD_MASTER_KEY(S) variables).
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Read options from this TOML file (keys are the flags' names, e.g. `listen =
    /// "0.0.0.0:8200"`); a flag or an environment variable overrides the file.
    #[arg(long, env = "KEYWARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the effective configuration (each option with where its value came from; the
    /// database password redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Development mode: temporary SQLite database, random master key, initialised at once,
    /// with a kv mount `secret`; prints the root token. Everything is lost on exit.
    #[arg(long, env = "KEYWARD_DEV")]
    pub dev: bool,
    /// Address to listen on.
    #[arg(long, env = "KEYWARD_LISTEN", default_value = "127.0.0.1:8200")]
    pub listen: SocketAddr,
    /// Database: a SQLite file path or a postgres:// URL.
    #[arg(long, env = "KEYWARD_DATABASE", default_value = "./keyward-data/keyward.db")]
    pub database: String,
    /// File holding the master keyring (`tag:base64key` entries, first is active; mode 0600).
    /// Otherwise KEYWARD_MASTER_KEYS (`tag:base64key[,tag:base64key…]`) or KEYWARD_MASTER_KEY
    /// (one base64 key, tag v1) is read from the environment. Make a key with `keyward gen key`.
    #[arg(long, env = "KEYWARD_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Log format (default: text with --dev, json otherwise). Logs go to stderr.
    #[arg(long, env = "KEYWARD_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Database connections in the pool.
    #[arg(long, env = "KEYWARD_DB_CONNECTIONS", default_value_t = 8)]
    pub db_connections: u32,
    /// Reach a PostgreSQL host that is not on this machine without verifying its certificate and
    /// name (sslmode below verify-full): a network attacker could then read and change rows.
    /// Without it such a host needs sslmode=verify-full (added when the URL gives no sslmode),
    /// with sslrootcert=CA.pem for a private CA.
    #[arg(long, env = "KEYWARD_DATABASE_INSECURE")]
    pub database_insecure: bool,
    /// Requests per token (GCRA, per server process), e.g. 100/s, 600/m, for tokens without a
    /// limit of their own (`keyward token create --rate-limit`); `off` disables it (as Vault).
    #[arg(long, env = "KEYWARD_RATE_LIMIT", default_value_t = rate_text(GuardConfig::default().token_rate))]
    pub rate_limit: String,
    /// Requests per client IP (per server process) that carry no valid token — none, malformed,
    /// unknown or expired; a valid token is never limited by its address. `off` disables.
    #[arg(long, env = "KEYWARD_IP_RATE_LIMIT", default_value_t = rate_text(GuardConfig::default().ip_rate))]
    pub ip_rate_limit: String,
    /// Malformed or unknown tokens from one IP within a minute before it is locked out (the
    /// lockout starts at 30s and doubles with each repeat, up to an hour). While locked out, the
    /// address is refused unless a request carries a valid token.
    #[arg(long, env = "KEYWARD_LOCKOUT_AFTER", default_value_t = GuardConfig::default().lockout_failures)]
    pub lockout_after: u32,
    /// Proxies (CIDRs, comma-separated) whose X-Forwarded-For header is believed for the client
    /// address.
    #[arg(long, env = "KEYWARD_TRUSTED_PROXIES", value_delimiter = ',', num_args = 1..)]
    pub trusted_proxies: Vec<String>,
    /// TTL of new tokens when none is given (Go-style: 1h, 30m, 32d).
    #[arg(long, env = "KEYWARD_DEFAULT_TOKEN_TTL",
        default_value_t = duration_text(KeywardConfig::default().default_token_ttl_secs))]
    pub default_token_ttl: String,
    /// Longest TTL a token may be given.
    #[arg(long, env = "KEYWARD_MAX_TOKEN_TTL", default_value_t = duration_text(KeywardConfig::default().max_token_ttl_secs))]
    pub max_token_ttl: String,
    /// Requests served at once; beyond it the server answers 503 with Retry-After.
    #[arg(long, env = "KEYWARD_MAX_IN_FLIGHT", default_value_t = HttpLimits::default().max_in_flight)]
    pub max_in_flight: usize,
    /// Longest time one request may take (Go-style duration).
    #[arg(long, env = "KEYWARD_REQUEST_TIMEOUT",
        default_value_t = duration_text(HttpLimits::default().request_timeout.as_secs()))]
    pub request_timeout: String,
    /// On SIGTERM or SIGINT the server stops accepting connections and waits this long for the
    /// requests in flight (each is answered, its audit entry committed); then it exits, non-zero
    /// if some were still running. A second signal exits at once.
    #[arg(long, env = "KEYWARD_SHUTDOWN_TIMEOUT",
        default_value_t = duration_text(DEFAULT_SHUTDOWN_TIMEOUT.as_secs()))]
    pub shutdown_timeout: String,
    /// Also serve Prometheus metrics at `GET /metrics` on this address, without a token and
    /// unaudited (a warning is logged when it is not loopback); `/v1/sys/metrics` needs a token.
    #[arg(long, env = "KEYWARD_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "KEYWARD_TLS_CERT", requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "KEYWARD_TLS_KEY", requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// With --dev: serve HTTPS with a fresh self-signed certificate (its SHA-256 fingerprint and a
    /// KEYWARD_CACERT line are printed).
    #[arg(long, env = "KEYWARD_TLS", requires = "dev", conflicts_with = "tls_cert")]
    pub tls: bool,
    /// Allow plain HTTP on a non-loopback address (a warning is logged at every start).
    #[arg(long, env = "KEYWARD_INSECURE_HTTP")]
    pub insecure_http: bool,
    /// Let credential-proxy routes that opt in (`--allow-insecure`) use `http://` upstreams and
    /// addresses that are not global unicast: loopback, private, link-local (cloud metadata)…
    /// (for internal services and tests). Off by default: only https to global unicast addresses.
    #[arg(long, env = "KEYWARD_PROXY_ALLOW_INSECURE")]
    pub proxy_allow_insecure: bool,
    /// Let JWT login methods whose config sets `allow_private_network` fetch their keys from
    /// addresses that are not global unicast (a Kubernetes in-cluster issuer, tests). Off by
    /// default: JWKS and discovery documents come only from https on global unicast addresses.
    #[arg(long, env = "KEYWARD_AUTH_ALLOW_PRIVATE_NETWORK")]
    pub auth_allow_private_network: bool,
    /// Also append every audit entry to this JSON-lines file (best-effort; the database is the
    /// primary, mandatory sink).
    #[arg(long, env = "KEYWARD_AUDIT_FILE", value_name = "FILE")]
    pub audit_file: Option<PathBuf>,
    /// Also print every audit entry on stdout (best-effort), e.g. for a log shipper.
    #[arg(long, env = "KEYWARD_AUDIT_STDOUT")]
    pub audit_stdout: bool,
    /// Append the audit chain's head (seq and hash) to this append-only file, so truncation of
    /// the log is detectable (`keyward audit verify` checks against it).
    #[arg(long, env = "KEYWARD_AUDIT_ANCHOR_FILE", value_name = "FILE")]
    pub audit_anchor_file: Option<PathBuf>,
    /// How often the head is anchored (log line and anchor file).
    #[arg(long, env = "KEYWARD_AUDIT_ANCHOR_INTERVAL",
        default_value_t = duration_text(AuditOptions::default().anchor_interval.as_secs()))]
    pub audit_anchor_interval: String,
    /// Directory archived audit entries are written to (`keyward audit archive`,
    /// --audit-retention): segments that verify on their own and together. With replicas it must
    /// be one directory they all share. Nothing else deletes audit entries.
    #[arg(long, env = "KEYWARD_AUDIT_ARCHIVE_DIR", value_name = "DIR")]
    pub audit_archive_dir: Option<PathBuf>,
    /// Archive audit entries older than this (e.g. 30d) into --audit-archive-dir, checked hourly
    /// on one replica at a time. Off by default: entries stay in the database.
    #[arg(long, env = "KEYWARD_AUDIT_RETENTION", value_name = "AGE")]
    pub audit_retention: Option<String>,
    /// Age after which an unchanged field is reported stale, unless its environment or project
    /// sets another (Go-style: 90d).
    #[arg(long, env = "KEYWARD_ROTATE_AFTER_DEFAULT",
        default_value_t = duration_text(KeywardConfig::default().default_rotate_after_secs))]
    pub rotate_after_default: String,
    /// How often stale fields are counted for health and warned about in the log (once a day per field).
    #[arg(long, env = "KEYWARD_STALE_SCAN_INTERVAL", default_value_t = duration_text(DEFAULT_STALE_SCAN_INTERVAL.as_secs()))]
    pub stale_scan_interval: String,
    /// Rows re-encrypted per transaction by `keys migrate` jobs.
    #[arg(long, env = "KEYWARD_MIGRATE_BATCH", default_value_t = KeywardConfig::default().migrate_batch)]
    pub migrate_batch: u32,
    /// After each batch, `keys migrate` jobs rest this many times as long as the batch took, so
    /// requests keep their latency (default 3 on SQLite, 10 on PostgreSQL; 0: flat out, e.g. in a
    /// maintenance window; at most 100).
    #[arg(long, env = "KEYWARD_MIGRATE_NICE_RATIO", value_name = "RATIO", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub migrate_nice_ratio: Option<u32>,
    /// Failed password or TOTP logins of one user that lock it (0: no per-user lock). A locked
    /// user is refused right credentials or not — an attacker can lock a known user out for the
    /// lockout's length (a denial of service traded for slowing guesses).
    #[arg(long, env = "KEYWARD_LOGIN_LOCKOUT_ATTEMPTS", default_value_t = KeywardConfig::default().login_lockout_attempts)]
    pub login_lockout_attempts: u32,
    /// The per-user lockout's window and length (Vault's default: 15m).
    #[arg(long, env = "KEYWARD_LOGIN_LOCKOUT_DURATION",
        default_value_t = duration_text(KeywardConfig::default().login_lockout_secs))]
    pub login_lockout_duration: String,
    /// The longest a response may stay wrapped (Vault's X-Vault-Wrap-TTL): a wrapping token
    /// asked for longer is refused.
    #[arg(long, env = "KEYWARD_MAX_WRAP_TTL", default_value_t = duration_text(KeywardConfig::default().max_wrap_ttl_secs))]
    pub max_wrap_ttl: String,
    /// Do not audit requests: nothing is recorded. For benchmarks, and refused without --dev. A
    /// flag only (no environment variable, no config key), so it is never on by accident.
    #[arg(long, hide = true)]
    pub no_audit: bool,
}

/// A rate limit as its option spells it (`off` for none).
fn rate_text(rate: Option<keyward_core::Rate>) -> String {
    rate.map_or_else(|| "off".to_owned(), |r| r.to_string())
}

/// A duration in the largest whole unit (`32d`, `1h`, `30s`), as a person writes it.
fn duration_text(secs: u64) -> String {
    match secs {
        0 => "0s".to_owned(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `keyward operator …`.
#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Initialise the server once; prints the root token (shown only this once).
    Init(FormatArgs),
    /// Take an online, consistent backup through the server (needs `sudo` on `sys/backup`),
    /// encrypted as a whole under a key wrapped by the active master key, written 0600 to FILE.
    /// The server keeps serving meanwhile. Restoring needs the master key it names: retiring a
    /// master key makes the backups taken under it unrestorable.
    Backup {
        /// Where to write it (must not exist).
        file: PathBuf,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// Restore a backup into an empty database (offline: no server may use it), with the master
    /// keyring from --master-key-file or KEYWARD_MASTER_KEY(S). The file, every row MAC, wrapped
    /// key, sealed value and the audit chain are verified before anything is written; then the
    /// rows are written in one transaction and `sys.restore` is appended to the audit log. Also
    /// the way from SQLite to PostgreSQL (and back).
    Restore {
        /// The backup file.
        file: PathBuf,
        /// The database to fill: a SQLite file path or a postgres:// URL. It must be empty.
        #[arg(long, env = "KEYWARD_DATABASE")]
        database: String,
        /// File holding the master keyring (else KEYWARD_MASTER_KEYS or KEYWARD_MASTER_KEY).
        #[arg(long, env = "KEYWARD_MASTER_KEY_FILE", value_name = "FILE")]
        master_key_file: Option<PathBuf>,
        /// Reach a non-local PostgreSQL host without verifying its certificate (see `server
        /// --database-insecure`).
        #[arg(long)]
        database_insecure: bool,
        /// Revoke every token the backup holds and print a new root token (shown once): for
        /// restoring after a compromise.
        #[arg(long)]
        revoke_tokens: bool,
        #[command(flatten)]
        out: FormatArgs,
    },
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

/// `keyward login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// How: `token` (store a token you have), `approle` (a role ID and a secret ID), `userpass`
    /// (a username, then the password and TOTP code are asked for) or `jwt` (a token your CI
    /// platform or Kubernetes signed: --jwt-file, or --github-actions).
    #[arg(long, default_value = "token", value_parser = ["token", "approle", "userpass", "jwt"])]
    pub method: String,
    /// JWT: the role to log in as (default: the method's default_role).
    #[arg(long)]
    pub role: Option<String>,
    /// JWT: a file holding the token (`-` for stdin), e.g. a Kubernetes service-account token at
    /// /var/run/secrets/kubernetes.io/serviceaccount/token; never taken as an argument.
    #[arg(long, value_name = "FILE", conflicts_with = "github_actions")]
    pub jwt_file: Option<PathBuf>,
    /// JWT: fetch this GitHub Actions job's OIDC token (the job needs `permissions: id-token:
    /// write`, which sets ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN).
    #[arg(long)]
    pub github_actions: bool,
    /// JWT with --github-actions: the audience to ask for (the role's bound_audiences).
    #[arg(long, default_value = "keyward")]
    pub audience: String,
    /// Userpass: the username.
    #[arg(long)]
    pub username: Option<String>,
    /// Token method: read the token from stdin (otherwise it is asked for on the terminal, or read
    /// from stdin when that is not a terminal).
    #[arg(long)]
    pub token_stdin: bool,
    /// Where the method is mounted (`auth/<path>`; default: the method's name).
    #[arg(long)]
    pub path: Option<String>,
    /// AppRole: the role ID (not secret).
    #[arg(long, env = "KEYWARD_ROLE_ID")]
    pub role_id: Option<String>,
    /// AppRole: a file holding the secret ID (`-` for stdin); never taken as an argument.
    #[arg(long, value_name = "FILE")]
    pub secret_id_file: Option<PathBuf>,
    /// Print the new token on stdout instead of storing it (for `export KEYWARD_TOKEN=$(…)`).
    #[arg(long)]
    pub print_token: bool,
}

/// `keyward auth …`.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Enable a login method at auth/<path>.
    Enable {
        /// Its type: approle, userpass or jwt.
        kind: String,
        /// Where (default: the type's name).
        #[arg(long)]
        path: Option<String>,
        /// A description.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// The enabled login methods.
    List(FormatArgs),
    /// Disable a login method: its roles and secret IDs are deleted and every token it issued
    /// is revoked.
    Disable {
        /// Its path.
        path: String,
    },
}

/// `keyward user …` (`--path` names the userpass mount, default `userpass`).
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create or update a user; a new user's password is asked for (or read from stdin).
    #[command(alias = "create")]
    Write {
        /// The username.
        name: String,
        /// A policy its tokens get (repeat; you must hold each one).
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// Its tokens' TTL (e.g. 8h).
        #[arg(long)]
        token_ttl: Option<String>,
        /// Log in with the password alone (service accounts, clients without MFA): weaker.
        #[arg(long)]
        no_totp: bool,
        /// Ask for a (new) password.
        #[arg(long)]
        password: bool,
        #[command(flatten)]
        at: UserpassPath,
    },
    /// Set a user's password (asked for, or read from stdin); its tokens are revoked.
    Passwd {
        /// The username.
        name: String,
        #[command(flatten)]
        at: UserpassPath,
    },
    /// List users.
    List {
        #[command(flatten)]
        at: UserpassPath,
    },
    /// Delete a user; its tokens are revoked.
    Delete {
        /// The username.
        name: String,
        #[command(flatten)]
        at: UserpassPath,
    },
    /// TOTP enrolment.
    #[command(subcommand)]
    Totp(TotpCommand),
}

/// `keyward user totp …`.
#[derive(Debug, Subcommand)]
pub enum TotpCommand {
    /// Enrol (again) with the current token — the user's own (an enrolled user is asked for a
    /// current code) or one with `update` on the user's enroll path: prints the otpauth URI for an
    /// authenticator app, then asks for a code from it. A first enrolment also happens at the
    /// user's first `keyward login --method userpass`.
    Enroll {
        /// The username.
        name: String,
        #[command(flatten)]
        at: UserpassPath,
    },
    /// Reset a user's TOTP enrolment (its next login enrols again); its tokens are revoked.
    Reset {
        /// The username.
        name: String,
        #[command(flatten)]
        at: UserpassPath,
    },
}

/// The userpass mount: `--path`.
#[derive(Debug, Args)]
pub struct UserpassPath {
    /// Where the userpass method is mounted (`auth/<path>`).
    #[arg(long, default_value = "userpass")]
    pub path: String,
}

/// `keyward approle …` (`--path` names the auth mount, default `approle`).
#[derive(Debug, Subcommand)]
pub enum ApproleCommand {
    /// Roles.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Secret IDs of a role.
    #[command(subcommand, name = "secret-id")]
    SecretId(SecretIdCommand),
}

/// The AppRole mount: `--path`.
#[derive(Debug, Args)]
pub struct ApprolePath {
    /// Where the AppRole method is mounted (`auth/<path>`).
    #[arg(long, default_value = "approle")]
    pub path: String,
}

/// `keyward approle role …`.
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Create or update a role. Settings not given keep their values (new roles bind a secret ID).
    Write {
        /// The role's name.
        name: String,
        /// A policy its tokens get (repeat; you must hold each one).
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// Its tokens' TTL (e.g. 15m).
        #[arg(long)]
        token_ttl: Option<String>,
        /// Its tokens' longest TTL.
        #[arg(long)]
        token_max_ttl: Option<String>,
        /// Its tokens' period (periodic tokens renew for it indefinitely; 0: not periodic).
        #[arg(long)]
        token_period: Option<String>,
        /// How many requests each of its tokens may make (0: unlimited).
        #[arg(long)]
        token_num_uses: Option<u64>,
        /// Addresses its tokens may be used from (repeat).
        #[arg(long = "token-bound-cidr")]
        token_bound_cidrs: Vec<String>,
        /// How long its new secret IDs live (e.g. 24h; 0: no expiry).
        #[arg(long)]
        secret_id_ttl: Option<String>,
        /// How many logins each new secret ID allows (0: unlimited).
        #[arg(long)]
        secret_id_num_uses: Option<u64>,
        /// Addresses logins may come from (repeat).
        #[arg(long = "secret-id-bound-cidr")]
        secret_id_bound_cidrs: Vec<String>,
        #[command(flatten)]
        at: ApprolePath,
    },
    /// Show a role.
    Read {
        /// The role's name.
        name: String,
        #[command(flatten)]
        at: ApprolePath,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// List roles.
    List {
        #[command(flatten)]
        at: ApprolePath,
    },
    /// Delete a role: its secret IDs go and the tokens it issued are revoked.
    Delete {
        /// The role's name.
        name: String,
        #[command(flatten)]
        at: ApprolePath,
    },
    /// Print a role's role ID (not secret: give it to the machine with a secret ID).
    RoleId {
        /// The role's name.
        name: String,
        #[command(flatten)]
        at: ApprolePath,
    },
}

/// `keyward approle secret-id …`.
#[derive(Debug, Subcommand)]
pub enum SecretIdCommand {
    /// Make a secret ID and print it (once: only its digest is kept).
    Create {
        /// The role.
        role: String,
        /// Metadata copied into its tokens (KEY=VALUE, repeat).
        #[arg(long = "metadata")]
        metadata: Vec<String>,
        /// Addresses a login with it may come from (repeat; within the role's).
        #[arg(long = "cidr")]
        cidrs: Vec<String>,
        /// Its lifetime (default: the role's secret_id_ttl).
        #[arg(long)]
        ttl: Option<String>,
        /// Its logins (default: the role's secret_id_num_uses).
        #[arg(long)]
        num_uses: Option<u64>,
        #[command(flatten)]
        at: ApprolePath,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// List a role's secret IDs by accessor.
    List {
        /// The role.
        role: String,
        #[command(flatten)]
        at: ApprolePath,
    },
    /// Destroy a secret ID by accessor, revoking the tokens it logged in.
    Destroy {
        /// The role.
        role: String,
        /// The secret ID's accessor.
        #[arg(long)]
        accessor: String,
        #[command(flatten)]
        at: ApprolePath,
    },
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
        /// Report this environment's fields as stale when unchanged for longer than this (e.g. 30d).
        #[arg(long)]
        rotate_after: Option<String>,
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
        /// Hand the value over instead of printing it: prints a one-time wrapping token that
        /// `keyward unwrap` opens within this time (e.g. 5m; needs `update` on sys/wrapping/wrap).
        #[arg(long, conflicts_with = "reveal")]
        wrap_ttl: Option<String>,
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
        /// `k8s-secret`: the Secret's name (default: the environment, with `/` as `-`).
        #[arg(long)]
        name: Option<String>,
        /// `k8s-secret`: the Secret's namespace.
        #[arg(long)]
        namespace: Option<String>,
    },
    /// Compare two environments on the server: names missing on either side and names whose
    /// values differ. No value, and no unkeyed hash of one, leaves the server (needs `read` on
    /// both).
    Diff {
        /// Project: the kv mount.
        #[arg(short = 'p', long = "project")]
        project: String,
        /// The two environments (`-e staging -e production`).
        #[arg(short = 'e', long = "env", num_args = 1, required = true)]
        envs: Vec<String>,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// List fields not changed for longer than their limit (the environment's --rotate-after, the
    /// project's, or 90 days), from stored change times: nothing is decrypted.
    Stale {
        /// Only this project.
        #[arg(short = 'p', long = "project")]
        project: Option<String>,
        /// Report fields older than this instead of each one's own limit (e.g. 90d).
        #[arg(long)]
        older_than: Option<String>,
        #[command(flatten)]
        out: FormatArgs,
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
    /// A Kubernetes `Secret` manifest (`stringData`; see --name and --namespace).
    K8sSecret,
    /// Lines to append to `$GITHUB_ENV` (multi-line values use the heredoc form).
    GithubEnv,
    /// A `docker run --env-file` file (`NAME=value`, no quoting; values may not span lines).
    DockerEnv,
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
        /// Default age after which this project's fields are reported stale (e.g. 90d).
        #[arg(long)]
        rotate_after: Option<String>,
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

/// `keyward token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once, with its accessor. A token can only be given policies
    /// its creator holds, a lifetime within its creator's, and addresses within its creator's.
    Create {
        /// Policy names (repeat or separate with commas).
        #[arg(long = "policy", value_delimiter = ',', required = true)]
        policies: Vec<String>,
        /// Lifetime (Go-style: 1h, 30m, 7d); default 32 days.
        #[arg(long)]
        ttl: Option<String>,
        /// A label for listings and audit entries.
        #[arg(long)]
        display_name: Option<String>,
        /// Source addresses the token may be used from (CIDRs; repeat or separate with commas).
        #[arg(long = "allowed-cidr", value_delimiter = ',')]
        allowed_cidrs: Vec<String>,
        /// Do not add the `default` policy (lookup-self, revoke-self).
        #[arg(long)]
        no_default_policy: bool,
        /// Not revoked with its creator (needs sudo on sys/tokens).
        #[arg(long)]
        orphan: bool,
        /// Its own request rate limit (100/s, 600/m, 1000/h), within the creator's; by default
        /// the creator's, else the server's --rate-limit (off by default).
        #[arg(long)]
        rate_limit: Option<String>,
        /// A hard cap on its lifetime, renewals included (e.g. 90d).
        #[arg(long)]
        explicit_max_ttl: Option<String>,
        /// Make it periodic: each renewal extends it by this period, with no maximum but
        /// --explicit-max-ttl (for long-running services that renew).
        #[arg(long)]
        period: Option<String>,
        /// Allow only this many requests; the last one revokes it (0: unlimited).
        #[arg(long, default_value_t = 0)]
        num_uses: u64,
        /// It cannot be renewed.
        #[arg(long)]
        no_renew: bool,
        /// Metadata shown by lookups (KEY=VALUE; repeat).
        #[arg(long = "meta", value_parser = key_value)]
        meta: Vec<(String, String)>,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// Show a token's record: your own (no argument), a token read from stdin (`-`), or by accessor.
    Lookup {
        /// `-` to read the token from stdin (tokens are never taken as arguments).
        token: Option<String>,
        /// Look up by accessor instead.
        #[arg(long, conflicts_with = "token")]
        accessor: Option<String>,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// Revoke a token and every token created under it: by accessor, a token from stdin (`-`), or your own (`--self`).
    Revoke {
        /// `-` to read the token from stdin.
        token: Option<String>,
        /// Revoke by accessor.
        #[arg(long, conflicts_with_all = ["token", "own"])]
        accessor: Option<String>,
        /// Revoke the token in KEYWARD_TOKEN.
        #[arg(long = "self", id = "own", conflicts_with = "token")]
        own: bool,
    },
    /// List tokens: accessors, policies, expiry, last use (never token values).
    List(FormatArgs),
}

/// `keyward policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Create or replace a policy from a file (`-` for stdin).
    ///
    /// TOML: `[[rules]]` tables with `path = "careflex/production"` and `capabilities = ["list",
    /// "read"]`; or JSON `{"rules": [{"path": …, "capabilities": […]}]}`. A rule path is
    /// `<mount>/<secret path>` and applies to whole secrets. Globs are Vault's: a trailing `*`
    /// matches any suffix including `/` (`careflex/*`), a `+` segment matches exactly one
    /// segment (`careflex/+/stripe`). Capabilities: list (names, masks, metadata), read
    /// (plaintext), create, update, patch, delete, destroy, use (credential proxy), sudo
    /// (mounts, policies, tokens, keys: rules on `sys/mounts`, `sys/policies`, `sys/tokens`),
    /// deny (wins over everything). Capabilities of all matching rules add up; nothing is
    /// allowed unless a rule grants it.
    Write {
        /// Policy name.
        name: String,
        /// Policy file, or `-`.
        file: String,
    },
    /// Show a policy's rules.
    Read {
        /// Policy name.
        name: String,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// List policy names.
    List(FormatArgs),
    /// Delete a policy (tokens holding it lose what it granted at once).
    Delete {
        /// Policy name.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

/// `keyward proxy …`.
#[derive(Debug, Subcommand)]
pub enum ProxyCommand {
    /// Create or replace a route (needs `sudo` on `sys/proxy`, and `use` or `read` on the
    /// credential it injects — for a `{account}` path, on every account).
    ///
    /// Calls to `/api/v1/proxy/NAME[/ACCOUNT]/<path>` go to UPSTREAM/<path> with the credential at
    /// MOUNT/PATH injected; the caller needs `use` (not `read`) on that path. Recipes:
    /// `bearer:FIELD` (Authorization: Bearer), `header:NAME=TEMPLATE` (e.g.
    /// `X-MBX-APIKEY={api_key}`), `basic:USERFIELD:PASSFIELD`, `query:NAME=FIELD`,
    /// `hmac-sha256-query:SECRETFIELD` (Binance-style `timestamp` + `signature`).
    Create {
        /// Route name (one segment).
        name: String,
        /// Upstream origin, e.g. https://api.stripe.com (https and global unicast addresses only,
        /// unless --allow-insecure).
        #[arg(long)]
        upstream: String,
        /// The credential: MOUNT/PATH, where the path may hold one `{account}` segment
        /// (`secret/users/{account}/binance`).
        #[arg(long)]
        secret: String,
        /// Injection recipe (repeatable).
        #[arg(long = "inject", required = true)]
        inject: Vec<String>,
        /// Per-route rate limit, e.g. 20/s.
        #[arg(long)]
        rate_limit: Option<String>,
        /// Upstream timeout (default 10s).
        #[arg(long)]
        timeout: Option<String>,
        /// Let this route reach an `http://` upstream or an internal address (loopback, private,
        /// link-local…); the server must run with --proxy-allow-insecure.
        #[arg(long)]
        allow_insecure: bool,
    },
    /// List routes.
    List(FormatArgs),
    /// Show a route.
    Show {
        /// Route name.
        name: String,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// Delete a route.
    Delete {
        /// Route name.
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

/// `keyward keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Per master-key tag and per mount data-key version: how many keys and blobs still use it,
    /// and which old tags can be retired.
    Status(FormatArgs),
    /// Add a data-key version to a project; new writes use it at once (older versions still open
    /// what they sealed).
    Rotate {
        /// Project: the kv mount.
        #[arg(short = 'p', long = "project")]
        project: String,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// Re-wrap every key held under an older master key with the active one (data keys, token
    /// key, audit key). No secret is re-encrypted, so it is quick. Afterwards `keys status` shows
    /// the old tag as retirable.
    Rewrap(FormatArgs),
    /// Re-encrypt every stored version still sealed under an older data key into the newest one,
    /// as a resumable job inside the server (batches commit with their progress; a restart resumes
    /// it). Shows a progress bar (or JSON progress lines with --format json).
    Migrate {
        /// Only this project (kv mount).
        #[arg(short = 'p', long = "project", conflicts_with = "all", required_unless_present = "all")]
        project: Option<String>,
        /// Every project.
        #[arg(long)]
        all: bool,
        /// Start the job and print its id without waiting.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// List key jobs (migrations), newest first.
    Jobs(FormatArgs),
    /// Delete a project's older data-key versions that no stored version uses.
    Prune {
        /// Project: the kv mount.
        #[arg(short = 'p', long = "project")]
        project: String,
        #[command(flatten)]
        out: FormatArgs,
    },
}

/// Filters of `audit tail` and `audit search`.
#[derive(Debug, Args)]
pub struct AuditFilter {
    /// Only entries newer than this (Go-style duration: 30m, 1h, 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Only this token accessor.
    #[arg(long)]
    pub accessor: Option<String>,
    /// Only `<mount>/<path>` matching this glob (`careflex/*`, `+/production`).
    #[arg(long)]
    pub path: Option<String>,
    /// Only failed requests (status 400 and above).
    #[arg(long)]
    pub failed: bool,
    /// Only this operation (e.g. secrets.reveal, auth.failed, tokens.create).
    #[arg(long)]
    pub operation: Option<String>,
    #[command(flatten)]
    pub out: FormatArgs,
}

/// `keyward audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Show the latest entries; `-f` keeps following new ones.
    Tail {
        /// How many entries to show first.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: u32,
        /// Keep polling for new entries.
        #[arg(short = 'f', long)]
        follow: bool,
        #[command(flatten)]
        filter: AuditFilter,
    },
    /// Search the whole log.
    Search {
        #[command(flatten)]
        filter: AuditFilter,
    },
    /// Walk the whole chain and report the first broken entry and why; exits non-zero unless
    /// intact. Checks against the server's anchor file, or the last line of --anchor-file.
    Verify {
        /// An anchor file (JSON lines of {"seq","hash"}) to check the tail against.
        #[arg(long)]
        anchor_file: Option<PathBuf>,
        /// Also check the archive end to end: every segment, and that together they chain from
        /// entry 1 to where the database's log begins. DIR as the server sees it; without it,
        /// the server's --audit-archive-dir.
        #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "")]
        archive: Option<String>,
        #[command(flatten)]
        out: FormatArgs,
    },
    /// Move entries older than --before out of the database into the server's
    /// --audit-archive-dir (written, synced and verified before the rows are deleted).
    Archive {
        /// Archive entries older than this (e.g. 30d, 12h).
        #[arg(long, value_name = "AGE")]
        before: Option<String>,
        /// SQLite: switch the database once to incremental vacuum (one VACUUM: it needs twice the
        /// file's size free and blocks writes while it runs), so archiving gives the space back.
        #[arg(long)]
        vacuum: bool,
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

/// A `KEY=VALUE` argument.
fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
