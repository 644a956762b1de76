//! `keyward server`.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use keyward_core::{parse_duration, KeywardConfig};
use keyward_crypto::MasterKeyring;
use keyward_server::{start, AuditOptions, AuditSinks, GuardConfig, HttpLimits, Rate, ServerOptions, TlsMaterial};
use keyward_store::DatabaseUrl;
use tracing_subscriber::EnvFilter;
use zeroize::Zeroizing;

use crate::cli::{LogFormat, ServerArgs};

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn keyring_from_file(path: &Path) -> Result<MasterKeyring> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read master key file {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        bail!("master key file {} is readable by group or others: run `chmod 600 {}`", path.display(), path.display());
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read master key file {}", path.display()))?,
    );
    MasterKeyring::parse(&text).map_err(|e| anyhow!("{e} (in {})", path.display()))
}

/// The master keyring: key file, else KEYWARD_MASTER_KEYS, else KEYWARD_MASTER_KEY.
pub(crate) fn load_keyring(master_key_file: Option<&Path>) -> Result<MasterKeyring> {
    if let Some(path) = master_key_file {
        return keyring_from_file(path);
    }
    if let Ok(spec) = std::env::var("KEYWARD_MASTER_KEYS") {
        let spec = Zeroizing::new(spec);
        return MasterKeyring::parse(&spec).map_err(|e| anyhow!("{e} (in KEYWARD_MASTER_KEYS)"));
    }
    if let Ok(key) = std::env::var("KEYWARD_MASTER_KEY") {
        let key = Zeroizing::new(key);
        return MasterKeyring::parse_single(&key).map_err(|e| anyhow!("{e} (in KEYWARD_MASTER_KEY)"));
    }
    bail!(
        "no master key: set KEYWARD_MASTER_KEYS=tag:base64key or KEYWARD_MASTER_KEY=base64key, or pass \
         --master-key-file PATH (make a key with `keyward gen key`)"
    )
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = ctrl_c => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}

fn parse_rate(s: &str) -> Result<Option<Rate>> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|e: keyward_core::CoreError| anyhow!("{e}"))
}

/// How long key jobs rest after each batch unless told, as a multiple of the batch's time. On
/// SQLite the job reads its batches at the lowest CPU priority; on PostgreSQL the reading and
/// the row updates run in the database's own processes at normal priority, so the job rests
/// longer for reads beside it to keep their latency (the trade-off is measured in BENCHMARKS.md,
/// migration).
fn default_nice_ratio(database: &DatabaseUrl) -> u32 {
    match database {
        DatabaseUrl::Sqlite(_) => KeywardConfig::default().migrate_nice_ratio,
        DatabaseUrl::Postgres(_) => 10,
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(args: ServerArgs) -> Result<()> {
    if args.no_audit && !args.dev {
        bail!("--no-audit records nothing and is for benchmarks: it is refused without --dev");
    }
    init_logging(args.log_format.unwrap_or(if args.dev { LogFormat::Text } else { LogFormat::Json }));
    let mut dev_dir = None;
    let (keyring, database) = if args.dev {
        let dir =
            tempfile::Builder::new().prefix("keyward-dev-").tempdir().context("cannot create a temporary directory")?;
        let db = DatabaseUrl::Sqlite(dir.path().join("keyward.db"));
        dev_dir = Some(dir);
        (MasterKeyring::generate(), db)
    } else {
        (load_keyring(args.master_key_file.as_deref())?, DatabaseUrl::parse(&args.database))
    };
    // The binary chooses the engine; the server is given the store, opened and migrated.
    let opened = keyward_store::open_for_server(&database, args.db_connections, args.database_insecure).await?;
    tracing::info!(database = %database.redacted(), "database opened");
    let mut options = ServerOptions::new(args.listen, Arc::new(opened.store), keyring);
    options.store_lock = opened.lock;
    options.dev = args.dev;
    options.config = KeywardConfig {
        default_token_ttl_secs: parse_duration(&args.default_token_ttl)?,
        max_token_ttl_secs: parse_duration(&args.max_token_ttl)?,
        migrate_batch: args.migrate_batch.max(1),
        migrate_nice_ratio: args.migrate_nice_ratio.unwrap_or_else(|| default_nice_ratio(&database)),
        default_rotate_after_secs: parse_duration(&args.rotate_after_default)?,
        login_lockout_attempts: args.login_lockout_attempts,
        login_lockout_secs: parse_duration(&args.login_lockout_duration)?,
        max_wrap_ttl_secs: parse_duration(&args.max_wrap_ttl)?.max(1),
    };
    options.stale_scan_interval = std::time::Duration::from_secs(parse_duration(&args.stale_scan_interval)?.max(1));
    options.guard = GuardConfig {
        token_rate: parse_rate(&args.rate_limit)?,
        ip_rate: parse_rate(&args.ip_rate_limit)?,
        lockout_failures: args.lockout_after.max(1),
        trusted_proxies: args
            .trusted_proxies
            .iter()
            .map(|c| c.parse().map_err(|_| anyhow!("invalid --trusted-proxies CIDR {c:?}")))
            .collect::<Result<_>>()?,
        ..GuardConfig::default()
    };
    options.limits = HttpLimits {
        max_in_flight: args.max_in_flight.max(1),
        request_timeout: std::time::Duration::from_secs(parse_duration(&args.request_timeout)?.max(1)),
    };
    options.insecure_http = args.insecure_http;
    options.metrics_listen = args.metrics_listen;
    options.proxy = keyward_server::ProxyConfig { allow_insecure: args.proxy_allow_insecure };
    options.auth = keyward_server::AuthConfig { allow_private_network: args.auth_allow_private_network };
    options.audit = AuditOptions {
        enabled: !args.no_audit,
        sinks: AuditSinks { file: args.audit_file.clone(), stdout: args.audit_stdout },
        anchor_file: args.audit_anchor_file.clone(),
        anchor_interval: std::time::Duration::from_secs(parse_duration(&args.audit_anchor_interval)?.max(1)),
        archive_dir: args.audit_archive_dir.clone(),
        retention: match &args.audit_retention {
            Some(age) if args.audit_archive_dir.is_none() => {
                bail!("--audit-retention {age} needs --audit-archive-dir: archived entries are moved there, never just deleted")
            }
            Some(age) => match parse_duration(age)? {
                0 => bail!("--audit-retention must be longer than 0s"),
                secs => Some(std::time::Duration::from_secs(secs)),
            },
            None => None,
        },
    };
    let mut ca_line = None;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        options.tls = Some(TlsMaterial::from_files(cert, key).map_err(|e| anyhow!(e))?);
    } else if args.tls {
        let tls = TlsMaterial::self_signed().map_err(|e| anyhow!(e))?;
        let dir = dev_dir.as_ref().context("--tls needs --dev")?;
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &tls.cert_pem).with_context(|| format!("cannot write {}", ca.display()))?;
        ca_line = Some((ca, tls.fingerprint.clone()));
        options.tls = Some(tls);
    }
    let shutdown_timeout = std::time::Duration::from_secs(parse_duration(&args.shutdown_timeout)?);
    let scheme = if options.tls.is_some() { "https" } else { "http" };
    let server = start(options).await.map_err(|e| anyhow!("{e}"))?;
    let url = format!("{scheme}://{}", server.addr);
    // Printed with println!, never through logging: the root token must not reach log sinks.
    match &server.root_token {
        Some(token) => {
            println!("keyward dev server listening on {url}");
            println!(
                "Database: {} (temporary, deleted on exit); master key: random, in memory only",
                database.redacted()
            );
            println!("Root token: {}", token.expose());
            if let Some((_, fp)) = &ca_line {
                println!("TLS certificate (self-signed) SHA-256 fingerprint: {fp}");
            }
            println!();
            println!("    export KEYWARD_ADDR='{url}'");
            println!("    export KEYWARD_TOKEN='{}'", token.expose());
            if let Some((ca, _)) = &ca_line {
                println!("    export KEYWARD_CACERT='{}'", ca.display());
            }
            println!();
        }
        None => println!("keyward listening on {url}"),
    }
    shutdown_signal().await;
    tracing::info!(timeout_secs = shutdown_timeout.as_secs(), "shutting down: draining requests in flight");
    // Drained: every request answered, the audit writer flushed, the database closed.
    let drained = tokio::select! {
        done = tokio::time::timeout(shutdown_timeout, server.shutdown()) => done,
        () = shutdown_signal() => {
            tracing::warn!("a second signal: exiting at once");
            std::process::exit(1);
        }
    };
    drop(dev_dir);
    match drained {
        Ok(served) => served.context("server error"),
        Err(_) => bail!(
            "requests were still in flight after --shutdown-timeout {}: exiting without them",
            args.shutdown_timeout
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_jobs_rest_longer_on_postgresql_unless_told() {
        assert_eq!(default_nice_ratio(&DatabaseUrl::parse("./keyward.db")), 3);
        assert_eq!(default_nice_ratio(&DatabaseUrl::parse("postgres://kw@db/kw")), 10);
    }
}
