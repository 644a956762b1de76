//! Fetching the verification keys of JWT login methods: a JWKS URL, or an OIDC discovery document
//! and the JWKS it names. HTTPS only, with the configured CA, a 5 s timeout, a 256 KiB limit and
//! no redirects; non-global addresses only when the config and the server both allow private
//! networks. The last good key set of each method is kept for an hour: a token naming an unknown
//! key ID refetches at most once per method per 30 s, and a failed fetch keeps the keys it had.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use keyward_core::{CoreError, FetchedKeys, JwtConfig, JwtKeySource, KeySourceKind};
use keyward_crypto::VerifyingKey;
use uuid::Uuid;

use crate::proxy::ssrf::{is_global_unicast, GuardedResolver};

/// The longest a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest document accepted.
const MAX_DOCUMENT: usize = 256 * 1024;
/// The least time between two fetches for one method when a token names an unknown key.
const REFETCH_EVERY: Duration = Duration::from_secs(30);
/// How long a key set is used before it is fetched again (so a key the issuer withdrew stops
/// working); a failed fetch keeps the last good set.
const MAX_AGE: Duration = Duration::from_secs(3600);

/// Settings of login methods.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuthConfig {
    /// Honour `allow_private_network` on JWT configs (an in-cluster Kubernetes issuer, tests):
    /// their keys may then come from loopback, private and link-local addresses. Off by default.
    pub allow_private_network: bool,
}

#[derive(Debug)]
struct Cached {
    /// The config's key source as it was fetched for: a changed config fetches afresh.
    source: String,
    keys: FetchedKeys,
    /// The last fetch (or failed attempt).
    fetched: Instant,
    /// The last fetch an unknown key ID asked for.
    refreshed: Option<Instant>,
}

/// The key fetcher and its cache, shared by every request of the process.
#[derive(Debug, Default)]
pub struct JwksFetcher {
    config: AuthConfig,
    cache: Mutex<HashMap<Uuid, Cached>>,
    /// One fetch at a time: a flood of unknown key IDs waits for one fetch, then finds it recent.
    fetching: tokio::sync::Mutex<()>,
}

fn upstream(what: &str) -> CoreError {
    CoreError::Upstream(format!("the JWT method's keys could not be fetched: {what}"))
}

impl JwksFetcher {
    /// A fetcher with `config`.
    pub fn new(config: AuthConfig) -> Self {
        Self { config, ..Self::default() }
    }

    /// The cached keys of a mount's current source, if they may still be used: younger than
    /// [`MAX_AGE`], and when `refresh` asks for a new fetch, only if one was made for an
    /// unknown key within [`REFETCH_EVERY`].
    fn usable(&self, mount: Uuid, source: &str, refresh: bool) -> Option<FetchedKeys> {
        let cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let c = cache.get(&mount).filter(|c| c.source == source)?;
        let fresh = match refresh {
            true => c.refreshed.is_some_and(|r| r.elapsed() < REFETCH_EVERY),
            false => c.fetched.elapsed() < MAX_AGE,
        };
        fresh.then(|| c.keys.clone())
    }

    /// Records a fetch (or, with `keys` none, a failed one that keeps the last good set, which it
    /// returns).
    fn record(&self, mount: Uuid, source: String, keys: Option<FetchedKeys>, refresh: bool) -> Option<FetchedKeys> {
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let previous = cache.remove(&mount).filter(|c| c.source == source);
        let refreshed = if refresh { Some(now) } else { previous.as_ref().and_then(|p| p.refreshed) };
        let keys = keys.or_else(|| previous.map(|p| p.keys))?;
        cache.insert(mount, Cached { source, keys: keys.clone(), fetched: now, refreshed });
        Some(keys)
    }

    fn client(&self, config: &JwtConfig, ca_pem: &str) -> Result<reqwest::Client, CoreError> {
        let private = config.allow_private_network && self.config.allow_private_network;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(FETCH_TIMEOUT)
            .dns_resolver(Arc::new(GuardedResolver { allow_insecure: private }));
        if !ca_pem.trim().is_empty() {
            let ca =
                reqwest::Certificate::from_pem(ca_pem.as_bytes()).map_err(|_| upstream("the CA PEM is invalid"))?;
            builder = builder.tls_built_in_root_certs(false).add_root_certificate(ca);
        }
        builder.build().map_err(|_| upstream("cannot build an HTTPS client"))
    }

    /// A document at `url`: HTTPS, an allowed address, at most [`MAX_DOCUMENT`] bytes.
    async fn get(&self, client: &reqwest::Client, config: &JwtConfig, url: &str) -> Result<Vec<u8>, CoreError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| upstream("not a URL"))?;
        if parsed.scheme() != "https" {
            return Err(upstream("only https:// URLs are fetched"));
        }
        let private = config.allow_private_network && self.config.allow_private_network;
        let literal = parsed.host_str().and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse().ok());
        if literal.is_some_and(|ip| !is_global_unicast(ip)) && !private {
            return Err(upstream(
                "the address is not global unicast (allow_private_network on the config and \
                 --auth-allow-private-network on the server allow it)",
            ));
        }
        let mut resp = client.get(parsed).send().await.map_err(|e| {
            if e.is_timeout() {
                upstream("timed out")
            } else if e.is_connect() {
                upstream("cannot connect (or the address is not allowed)")
            } else {
                upstream("the request failed")
            }
        })?;
        if !resp.status().is_success() {
            return Err(upstream(&format!("the server answered {}", resp.status().as_u16())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|_| upstream("the response was cut short"))? {
            if body.len() + chunk.len() > MAX_DOCUMENT {
                return Err(upstream("the document is larger than 256 KiB"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn fetch(&self, config: &JwtConfig) -> Result<FetchedKeys, CoreError> {
        match config.source() {
            KeySourceKind::Jwks { url, ca_pem } => {
                let body = self.get(&self.client(config, ca_pem)?, config, url).await?;
                let keys = VerifyingKey::from_jwks(&body).map_err(|e| upstream(&e.to_string()))?;
                Ok(FetchedKeys { keys: Arc::new(keys), issuer: None })
            }
            KeySourceKind::Discovery { url, ca_pem } => {
                let client = self.client(config, ca_pem)?;
                let at = format!("{}/.well-known/openid-configuration", url.trim_end_matches('/'));
                let doc: serde_json::Value = serde_json::from_slice(&self.get(&client, config, &at).await?)
                    .map_err(|_| upstream("the discovery document is not JSON"))?;
                let issuer = doc.get("issuer").and_then(|v| v.as_str()).unwrap_or_default();
                if issuer.trim_end_matches('/') != url.trim_end_matches('/') {
                    return Err(upstream("the discovery document's issuer is not oidc_discovery_url"));
                }
                let jwks_uri = doc
                    .get("jwks_uri")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| upstream("the discovery document names no jwks_uri"))?;
                let body = self.get(&client, config, jwks_uri).await?;
                let keys = VerifyingKey::from_jwks(&body).map_err(|e| upstream(&e.to_string()))?;
                Ok(FetchedKeys { keys: Arc::new(keys), issuer: Some(issuer.to_owned()) })
            }
            KeySourceKind::Pem(_) => Err(upstream("the config holds its keys itself")),
        }
    }
}

#[async_trait]
impl JwtKeySource for JwksFetcher {
    async fn keys(&self, mount: Uuid, config: &JwtConfig, refresh: bool) -> Result<FetchedKeys, CoreError> {
        let source = format!("{:?}/{}", config.source(), config.allow_private_network);
        if let Some(keys) = self.usable(mount, &source, refresh) {
            return Ok(keys);
        }
        let _one = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(keys) = self.usable(mount, &source, refresh) {
            return Ok(keys);
        }
        match self.fetch(config).await {
            Ok(keys) => {
                self.record(mount, source, Some(keys.clone()), refresh);
                Ok(keys)
            }
            Err(e) => match self.record(mount, source, None, refresh) {
                Some(kept) => {
                    tracing::warn!(error = %e, auth_mount = %mount, "JWT keys not refreshed: keeping the last good set");
                    Ok(kept)
                }
                None => Err(e),
            },
        }
    }
}
