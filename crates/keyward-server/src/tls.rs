//! HTTPS: rustls (ring provider) with a certificate from files, or a self-signed one for dev.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// A server certificate, ready to serve.
#[derive(Clone)]
pub struct TlsMaterial {
    config: Arc<ServerConfig>,
    /// The leaf certificate in PEM (written out for clients of a dev server).
    pub cert_pem: String,
    /// SHA-256 fingerprint of the leaf certificate, `AB:CD:…`.
    pub fingerprint: String,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial").field("fingerprint", &self.fingerprint).finish_non_exhaustive()
    }
}

fn build(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_pem: String,
) -> Result<TlsMaterial, String> {
    let leaf = certs.first().ok_or("the certificate file holds no certificate")?;
    let fp = keyward_crypto::sha256_fingerprint(leaf);
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not fit: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial { config: Arc::new(config), cert_pem, fingerprint: fp })
}

impl TlsMaterial {
    /// Loads a PEM certificate chain and private key.
    pub fn from_files(cert: &std::path::Path, key: &std::path::Path) -> Result<Self, String> {
        let cert_pem = std::fs::read_to_string(cert)
            .map_err(|e| format!("cannot read TLS certificate {}: {e}", cert.display()))?;
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("invalid TLS certificate {}: {e}", cert.display()))?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("invalid TLS key {}: {e}", key.display()))?;
        build(certs, key, cert_pem)
    }

    /// A fresh self-signed certificate for `localhost`, `127.0.0.1` and `::1` (dev only).
    pub fn self_signed() -> Result<Self, String> {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
        let ck = rcgen::generate_simple_self_signed(names).map_err(|e| e.to_string())?;
        let cert_pem = ck.cert.pem();
        let key = PrivateKeyDer::try_from(ck.key_pair.serialize_der()).map_err(|e| e.to_string())?;
        build(vec![ck.cert.der().clone()], key, cert_pem)
    }
}

/// Serves `app` over TLS until `shutdown` fires, then lets open connections finish.
pub(crate) async fn serve_tls(
    listener: TcpListener,
    app: Router,
    tls: TlsMaterial,
    mut shutdown: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let acceptor = TlsAcceptor::from(tls.config);
    let graceful = GracefulShutdown::new();
    loop {
        let (tcp, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let svc = app.map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(30)) => tracing::warn!("timed out waiting for connections to close"),
    }
    Ok(())
}
