//! The credential proxy: applications call `/api/v1/proxy/NAME[/ACCOUNT]/<path>` and keyward
//! forwards the request to the route's fixed upstream with the credential injected, so the
//! caller uses a key it never sees. Routes are managed under `/api/v1/proxy-routes`.
mod call;
pub(crate) mod routes;
mod scrub;
mod ssrf;

use std::collections::HashMap;
use std::sync::Mutex;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, RateLimiter};

pub use call::call;
pub use routes::{delete, list, put, read};

use crate::guard::Rate;

/// Settings of the credential proxy.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProxyConfig {
    /// Allow `http://` upstreams and internal addresses (for internal services and tests).
    pub allow_insecure: bool,
}

/// The proxy's HTTP client and per-route limiters.
#[derive(Debug)]
pub struct ProxyState {
    config: ProxyConfig,
    client: reqwest::Client,
    limiters: Mutex<HashMap<String, (String, DefaultDirectRateLimiter)>>,
}

impl ProxyState {
    /// A client that follows no redirect, uses no environment proxy and checks every resolved
    /// address.
    pub fn new(config: ProxyConfig) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(std::sync::Arc::new(ssrf::GuardedResolver { allow_insecure: config.allow_insecure }))
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("the proxy's HTTP client builds with static settings");
        Self { config, client, limiters: Mutex::new(HashMap::new()) }
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
