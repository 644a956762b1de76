//! Starting and stopping a server.
use std::net::SocketAddr;
use std::sync::Arc;

use keyward_core::{format_rfc3339, now_nanos, AuditEntry, CoreError, Keyward, KeywardConfig, MountKind, Store};

use crate::app::HttpLimits;
use crate::audit::{spawn_anchoring, spawn_sinks, AuditOptions, AuditState};
use crate::guard::GuardConfig;
use crate::tls::TlsMaterial;
use keyward_crypto::{MasterKeyring, Token};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How to run a server.
#[derive(Debug)]
pub struct ServerOptions {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The database, opened (and migrated) by the binary, which chooses the engine.
    pub store: Arc<dyn Store>,
    /// What must be held while serving (a SQLite database's lock file), released at shutdown.
    pub store_lock: Option<std::fs::File>,
    /// The master keyring.
    pub keyring: MasterKeyring,
    /// Dev mode: initialise at once (returning the root token) and create the `secret` mount.
    pub dev: bool,
    /// Token TTLs.
    pub config: KeywardConfig,
    /// Rate limits, lockout and trusted proxies.
    pub guard: GuardConfig,
    /// Concurrency and timeout limits.
    pub limits: HttpLimits,
    /// Serve HTTPS with this certificate.
    pub tls: Option<TlsMaterial>,
    /// Allow plain HTTP on a non-loopback address (outside dev mode).
    pub insecure_http: bool,
    /// Auditing, extra sinks and anchoring.
    pub audit: AuditOptions,
    /// How often stale fields are counted (health) and warned about (once a day per field).
    pub stale_scan_interval: std::time::Duration,
    /// Credential-proxy settings.
    pub proxy: crate::proxy::ProxyConfig,
    /// Also serve `GET /metrics` here, without a token and unaudited.
    pub metrics_listen: Option<SocketAddr>,
    /// Login-method settings.
    pub auth: crate::jwks::AuthConfig,
}

impl ServerOptions {
    /// Options with default limits.
    pub fn new(listen: SocketAddr, store: Arc<dyn Store>, keyring: MasterKeyring) -> Self {
        Self {
            listen,
            store,
            store_lock: None,
            keyring,
            dev: false,
            config: KeywardConfig::default(),
            guard: GuardConfig::default(),
            limits: HttpLimits::default(),
            tls: None,
            insecure_http: false,
            audit: AuditOptions::default(),
            stale_scan_interval: DEFAULT_STALE_SCAN_INTERVAL,
            proxy: crate::proxy::ProxyConfig::default(),
            metrics_listen: None,
            auth: crate::jwks::AuthConfig::default(),
        }
    }
}

/// How long a stopping server waits for in-flight requests, unless told.
pub const DEFAULT_SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How often stale fields are counted, unless told.
pub const DEFAULT_STALE_SCAN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Why a server could not start: one clear line each.
#[derive(Debug, Error)]
pub enum StartError {
    /// The master keyring does not fit the database, or dev setup failed.
    #[error("{0}")]
    Keys(CoreError),
    /// Plain HTTP on a non-loopback address without `--insecure-http`.
    #[error("refusing to serve plain HTTP on {0}: give --tls-cert and --tls-key, listen on 127.0.0.1, or pass --insecure-http")]
    Insecure(SocketAddr),
    /// The listen address could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(SocketAddr, std::io::Error),
    /// The audit archive directory cannot be made or written.
    #[error("the audit archive directory {0} is not usable: {1}")]
    ArchiveDir(std::path::PathBuf, std::io::Error),
}

/// Makes the archive directory (private) if it is missing, and checks this server can write there.
fn prepare_archive_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let probe = dir.join(format!(".keyward-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(probe)
}

/// A server running on the current runtime.
#[derive(Debug)]
pub struct RunningServer {
    /// The bound address.
    pub addr: SocketAddr,
    /// The root token, in dev mode (shown once by the caller, never logged).
    pub root_token: Option<Token>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    store: Arc<dyn Store>,
    kw: Keyward,
    audit: Arc<AuditState>,
    /// Held while serving: no other server may open the same SQLite database.
    _db_lock: Option<std::fs::File>,
    /// The background work, stopped (its lock released) when the server goes.
    background: crate::background::BackgroundTask,
}

impl RunningServer {
    /// Stops accepting connections, finishes in-flight requests and returns.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(());
        let served = self.task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.audit.late_entries_committed().await;
        // The clock's high-water mark, so a clock set back before the next start revives nothing.
        if let Err(e) = self.kw.store_clock_mark().await {
            tracing::warn!(error = %e, "cannot store the clock's high-water mark");
        }
        self.background.stop().await;
        self.store.close().await;
        served
    }
}

/// Checks the keyring against the database, (in dev mode) initialises, binds and serves.
pub async fn start(opts: ServerOptions) -> Result<RunningServer, StartError> {
    if opts.tls.is_none() && !opts.listen.ip().is_loopback() {
        if !opts.insecure_http && !opts.dev {
            return Err(StartError::Insecure(opts.listen));
        }
        tracing::warn!(listen = %opts.listen, "serving plain HTTP on a non-loopback address: tokens and secrets cross the network unencrypted");
    }
    let (store, db_lock) = (opts.store, opts.store_lock);
    let kw_storage = store.name();
    if let Some(dir) = &opts.audit.archive_dir {
        prepare_archive_dir(dir).map_err(|e| StartError::ArchiveDir(dir.clone(), e))?;
    }
    let mut audit = AuditState::new(opts.audit.enabled, opts.audit.anchor_file.clone());
    audit.archive_dir.clone_from(&opts.audit.archive_dir);
    let audit = Arc::new(audit);
    let sink = spawn_sinks(opts.audit.sinks.clone(), audit.clone());
    let kw = Keyward::open(store.clone(), opts.keyring, opts.config, sink).await.map_err(StartError::Keys)?;
    let mut root_token = None;
    if opts.dev {
        // Done by the server itself, on record like any change: no request, no accessor.
        let entry = |operation: &str, mount: &str| AuditEntry {
            operation: operation.to_owned(),
            mount: mount.to_owned(),
            status: 200,
            time: format_rfc3339(now_nanos()),
            details: [("dev".to_owned(), serde_json::Value::Bool(true))].into_iter().collect(),
            ..AuditEntry::default()
        };
        if !kw.is_initialized().await.map_err(StartError::Keys)? {
            root_token = Some(kw.initialize(entry("sys.init", "")).await.map_err(StartError::Keys)?);
        }
        // Vault's dev defaults: a kv mount `secret` and a transit mount `transit`.
        for (name, kind) in [("secret", MountKind::Kv), ("transit", MountKind::Transit)] {
            match kw.create_mount(name, kind, None, entry("mounts.create", name)).await {
                Ok(_) | Err(CoreError::Conflict(_)) => {}
                Err(e) => return Err(StartError::Keys(e)),
            }
        }
    }
    let listener = TcpListener::bind(opts.listen).await.map_err(|e| StartError::Bind(opts.listen, e))?;
    let addr = listener.local_addr().map_err(|e| StartError::Bind(opts.listen, e))?;
    if opts.audit.enabled {
        spawn_anchoring(kw.clone(), opts.audit.anchor_file.clone(), opts.audit.anchor_interval);
    } else {
        tracing::warn!("auditing is OFF: requests are not recorded (benchmarks only)");
    }
    crate::metrics::install();
    // Background work (key jobs, scans, retention) runs on one server at a time; taken here
    // when free, so a lone server runs a job it is asked to start at once.
    let first = kw.try_lead().await.map_err(StartError::Keys)?;
    let work = crate::background::BackgroundWork {
        stale_scan_interval: opts.stale_scan_interval,
        retention: opts.audit.retention.zip(opts.audit.archive_dir.clone()),
    };
    let background = crate::background::spawn(kw.clone(), audit.clone(), work, first);
    if let Some(at) = opts.metrics_listen {
        let listener = TcpListener::bind(at).await.map_err(|e| StartError::Bind(at, e))?;
        if !at.ip().is_loopback() {
            tracing::warn!(listen = %at, "metrics are served without a token on a non-loopback address");
        }
        tokio::spawn(crate::metrics::serve_unauthenticated(listener, audit.clone(), store.clone()));
    }
    let app = crate::router(kw.clone(), opts.guard, opts.limits, audit.clone(), opts.proxy, opts.auth);
    let (shutdown, rx) = oneshot::channel::<()>();
    let task = match opts.tls {
        Some(tls) => tokio::spawn(crate::tls::serve_tls(listener, app, tls, rx)),
        None => {
            // Small request/response exchanges must not wait on Nagle + delayed ACKs (~40 ms each).
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                if let Err(e) = tcp.set_nodelay(true) {
                    tracing::warn!(error = %e, "cannot set TCP_NODELAY");
                }
            });
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.await;
                    })
                    .await
            })
        }
    };
    tracing::info!(%addr, storage = kw_storage, "keyward listening");
    Ok(RunningServer { addr, root_token, shutdown, task, store, kw, audit, _db_lock: db_lock, background })
}
