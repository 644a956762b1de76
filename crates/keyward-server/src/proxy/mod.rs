//! The credential proxy: applications call `/api/v1/proxy/NAME[/ACCOUNT]/<path>` and keyward
//! forwards the request to the route's fixed upstream with the credential injected, so the
//! caller uses a key it never sees. Routes are managed under `/api/v1/proxy-routes`.
mod call;
pub(crate) mod routes;
mod scrub;
pub(crate) mod ssrf;

use std::collections::HashMap;
use std::sync::Mutex;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, RateLimiter};

pub use call::call;

use crate::guard::Rate;

/// Settings of the credential proxy.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProxyConfig {
    /// Let routes that opt in (`allow_insecure`) use `http://` upstreams and addresses that are
    /// not global unicast (internal services, tests). Off by default.
    pub allow_insecure: bool,
}

/// The proxy's HTTP clients and per-route limiters.
#[derive(Debug)]
pub struct ProxyState {
    config: ProxyConfig,
    /// Resolves only to global unicast addresses.
    client: reqwest::Client,
    /// Resolves to any address: for routes that opted in, on a server that allows it.
    insecure_client: Option<reqwest::Client>,
    limiters: Mutex<HashMap<String, (String, DefaultDirectRateLimiter)>>,
}

/// A client that follows no redirect, uses no environment proxy and checks every resolved address
/// (unless `allow_insecure`).
fn client(allow_insecure: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(std::sync::Arc::new(ssrf::GuardedResolver { allow_insecure }))
        .pool_idle_timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("the proxy's HTTP client builds with static settings")
}

impl ProxyState {
    /// The proxy's clients for `config`.
    pub fn new(config: ProxyConfig) -> Self {
        Self {
            config,
            client: client(false),
            insecure_client: config.allow_insecure.then(|| client(true)),
            limiters: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a route may reach `http://` and non-global addresses: it opted in and the server
    /// allows it.
    fn insecure(&self, route: &keyward_core::ProxyRoute) -> bool {
        route.allow_insecure && self.config.allow_insecure
    }

    /// The client a route's calls go through.
    fn client_for(&self, route: &keyward_core::ProxyRoute) -> &reqwest::Client {
        match (&self.insecure_client, self.insecure(route)) {
            (Some(c), true) => c,
            _ => &self.client,
        }
    }

    /// Takes one request from a route's budget; `Err(wait)` when over it.
    fn check_rate(&self, route: &str, rate: &str) -> Result<(), std::time::Duration> {
        let Ok(parsed) = rate.parse::<Rate>() else { return Ok(()) };
        let Ok(mut map) = self.limiters.lock() else { return Ok(()) };
        let fresh = || (rate.to_owned(), RateLimiter::direct(crate::guard::quota(parsed)));
        let entry = map.entry(route.to_owned()).or_insert_with(fresh);
        if entry.0 != rate {
            *entry = fresh();
        }
        entry.1.check().map_err(|n| n.wait_time_from(DefaultClock::default().now()))
    }
}
