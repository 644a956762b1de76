//! Abuse resistance, per server process: the client address (with `--trusted-proxies`), rate
//! limits per client IP and per token (GCRA), and the brute-force lockout of IPs that keep
//! presenting malformed or unknown tokens.
//!
//! A valid token is never refused because of what others sent from its address: the per-IP limit
//! counts only requests without a valid token, and the lockout refuses only requests whose token
//! is missing, malformed or unknown (bearer tokens carry 256 bits; guessing one is hopeless, and
//! the lockout exists to make scanning expensive, not to punish a shared NAT). The per-token
//! limit is off unless set globally or on the token.
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
pub use keyward_core::Rate;

use crate::app::AppState;
use crate::error::ApiError;

/// A GCRA quota: `rate.count` per `rate.per`, with a burst of `rate.count`.
pub(crate) fn quota(rate: Rate) -> Quota {
    let interval = rate.per / rate.count.get();
    Quota::with_period(interval.max(Duration::from_nanos(1)))
        .map_or_else(|| Quota::per_second(rate.count), |q| q.allow_burst(rate.count))
}

/// Abuse-resistance settings.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// Requests per client IP that carry no valid token (`None` = unlimited).
    pub ip_rate: Option<Rate>,
    /// Requests per token, for tokens without a limit of their own (`None` = unlimited).
    pub token_rate: Option<Rate>,
    /// Malformed or unknown tokens from one IP, within `lockout_window`, that lock it out.
    pub lockout_failures: u32,
    /// The window in which failures are counted.
    pub lockout_window: Duration,
    /// First lockout; each further lockout of the same IP doubles it, up to an hour.
    pub lockout_base: Duration,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

/// 200 requests a second per address without a valid token.
pub const DEFAULT_IP_RATE: Rate = Rate { count: NonZeroU32::MIN.saturating_add(199), per: Duration::from_secs(1) };

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            ip_rate: Some(DEFAULT_IP_RATE),
            token_rate: None,
            lockout_failures: 10,
            lockout_window: Duration::from_secs(60),
            lockout_base: Duration::from_secs(30),
            trusted_proxies: vec![],
        }
    }
}

const MAX_LOCKOUT: Duration = Duration::from_secs(3600);
/// Addresses tracked before a prune is forced between the periodic ones.
const MAX_TRACKED: usize = 100_000;
/// How often idle limiter and lockout state is dropped.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug)]
struct Strikes {
    window_start: Instant,
    failures: u32,
    locked_until: Option<Instant>,
    lockouts: u32,
}

impl Strikes {
    /// Whether this address still matters: locked, counting failures, or recently locked (its
    /// backoff doubles on a repeat within an hour of its last lockout).
    fn current(&self, now: Instant, window: Duration) -> bool {
        self.locked_until.is_some_and(|t| t + MAX_LOCKOUT > now) || now.duration_since(self.window_start) < window
    }
}

/// Counts malformed or unknown tokens per IP and locks out repeat offenders with exponential
/// backoff.
#[derive(Debug, Default)]
pub struct Lockout {
    strikes: Mutex<HashMap<IpAddr, Strikes>>,
}

impl Lockout {
    /// The remaining lockout of `ip`, if it is locked out.
    pub fn locked(&self, ip: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let map = self.strikes.lock().ok()?;
        map.get(&ip)?.locked_until.and_then(|t| t.checked_duration_since(now)).filter(|d| !d.is_zero())
    }

    /// Records a malformed or unknown token; returns the lockout it triggered, if any.
    pub fn record_failure(&self, ip: IpAddr, cfg: &GuardConfig) -> Option<Duration> {
        let now = Instant::now();
        let mut map = self.strikes.lock().ok()?;
        if map.len() >= MAX_TRACKED {
            map.retain(|_, s| s.current(now, cfg.lockout_window));
        }
        let s = map.entry(ip).or_insert(Strikes { window_start: now, failures: 0, locked_until: None, lockouts: 0 });
        if now.duration_since(s.window_start) >= cfg.lockout_window {
            s.window_start = now;
            s.failures = 0;
        }
        s.failures += 1;
        if s.failures < cfg.lockout_failures {
            return None;
        }
        let factor = 2u32.saturating_pow(s.lockouts.min(16));
        let duration = cfg.lockout_base.saturating_mul(factor).min(MAX_LOCKOUT);
        s.lockouts += 1;
        s.failures = 0;
        s.window_start = now;
        s.locked_until = Some(now + duration);
        Some(duration)
    }

    /// Drops addresses that are neither locked, counting, nor recently locked.
    fn prune(&self, window: Duration) {
        let now = Instant::now();
        if let Ok(mut map) = self.strikes.lock() {
            map.retain(|_, s| s.current(now, window));
            map.shrink_to_fit();
        }
    }

    /// Addresses tracked.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.strikes.lock().map_or(0, |m| m.len())
    }
}

/// A limiter with a rate of its own (a token's `rate_limit`), and when it was last used.
#[derive(Debug)]
struct OwnLimit {
    rate: Rate,
    limiter: DefaultDirectRateLimiter,
    used: Instant,
}

/// Rate limiters and the lockout of one server process.
#[derive(Debug)]
pub struct Guards {
    /// Settings.
    pub config: GuardConfig,
    ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    token: Option<DefaultKeyedRateLimiter<String>>,
    /// Tokens with a limit of their own, by accessor.
    own: Mutex<HashMap<String, OwnLimit>>,
    /// Brute-force lockout.
    pub lockout: Lockout,
}

fn wait_of(n: governor::NotUntil<governor::clock::QuantaInstant>) -> Duration {
    n.wait_time_from(DefaultClock::default().now())
}

impl Guards {
    /// Builds the limiters.
    pub fn new(config: GuardConfig) -> Self {
        Self {
            ip: config.ip_rate.map(|r| RateLimiter::keyed(quota(r))),
            token: config.token_rate.map(|r| RateLimiter::keyed(quota(r))),
            own: Mutex::new(HashMap::new()),
            lockout: Lockout::default(),
            config,
        }
    }

    /// Checks a token's limit: its own `rate` if it has one, else the server's per-token limit;
    /// `Err` carries the wait.
    pub fn check_token(&self, accessor: &str, rate: Option<Rate>) -> Result<(), Duration> {
        let Some(rate) = rate else {
            return match &self.token {
                Some(l) => l.check_key(&accessor.to_owned()).map_err(wait_of),
                None => Ok(()),
            };
        };
        let Ok(mut own) = self.own.lock() else { return Ok(()) };
        let fresh = || OwnLimit { rate, limiter: RateLimiter::direct(quota(rate)), used: Instant::now() };
        let entry = own.entry(accessor.to_owned()).or_insert_with(fresh);
        if entry.rate != rate {
            *entry = fresh();
        }
        entry.used = Instant::now();
        entry.limiter.check().map_err(wait_of)
    }

    /// Checks the per-IP limit (for requests without a valid token); `Err` carries the wait.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        match &self.ip {
            Some(l) => l.check_key(&ip).map_err(wait_of),
            None => Ok(()),
        }
    }

    /// Drops the state of addresses and tokens whose limiters are full again and lockouts that no
    /// longer matter, so memory stays bounded by recent traffic (many addresses are easy to have
    /// with IPv6).
    pub fn prune(&self) {
        if let Some(l) = &self.ip {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.token {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Ok(mut own) = self.own.lock() {
            // A GCRA limiter idle for its whole period is full: the same as a new one.
            own.retain(|_, o| o.used.elapsed() < o.rate.per);
            own.shrink_to_fit();
        }
        self.lockout.prune(self.config.lockout_window);
    }

    /// Entries held: (per-IP limiter, per-token limiters, lockout).
    #[cfg(test)]
    fn tracked(&self) -> (usize, usize, usize) {
        let own = self.own.lock().map_or(0, |o| o.len());
        (self.ip.as_ref().map_or(0, |l| l.len()), self.token.as_ref().map_or(0, |l| l.len()) + own, self.lockout.len())
    }
}

/// Prunes the guards every [`PRUNE_EVERY`] for the life of the server.
pub fn spawn_pruning(st: std::sync::Weak<crate::app::AppContext>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(PRUNE_EVERY).await;
            let Some(st) = st.upgrade() else { return };
            st.guards.prune();
        }
    });
}

/// The client's address, as decided by [`resolve_client_ip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// An `X-Forwarded-For` from a trusted proxy that is not a list of addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedForwardedFor;

/// One `X-Forwarded-For` hop: an address, optionally with a port (`1.2.3.4:80`, `[2001:db8::1]:80`,
/// `[2001:db8::1]`), as proxies write them.
fn hop(text: &str) -> Option<IpAddr> {
    let t = text.trim();
    t.parse::<IpAddr>()
        .ok()
        .or_else(|| t.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| t.strip_prefix('[')?.strip_suffix(']')?.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6))
}

/// The address a request comes from. From an untrusted peer, the peer: its headers are ignored.
/// From a trusted proxy, every `X-Forwarded-For` line is merged in order and walked right to left
/// over trusted hops; the first hop that is not a trusted proxy is the client (the left-most hop
/// when all are trusted, the peer when there is no header). Any entry that is not an address makes
/// the whole header malformed — it is never resolved to the proxy's own address, which would let
/// a client pick the address it is limited and audited under.
pub fn resolve_client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl IntoIterator<Item = &'a HeaderValue>,
    trusted: &[IpNet],
) -> Result<IpAddr, MalformedForwardedFor> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Ok(peer);
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for line in forwarded_for {
        let line = line.to_str().map_err(|_| MalformedForwardedFor)?;
        for part in line.split(',') {
            hops.push(hop(part).ok_or(MalformedForwardedFor)?);
        }
    }
    let Some(&first) = hops.first() else { return Ok(peer) };
    Ok(hops.into_iter().rev().find(|ip| !is_trusted(ip)).unwrap_or(first))
}

/// Refuses a request without a valid token from a locked-out IP or over the per-IP limit (`ip`
/// as resolved by [`resolve_client_ip`]); `None` lets it through.
pub fn refuse_without_token(st: &AppState, ip: IpAddr, path: &str) -> Option<Response> {
    if let Some(wait) = st.guards.lockout.locked(ip) {
        let msg = "too many failed authentication attempts from this address; try again later";
        return Some(ApiError::too_many(msg, wait).for_path(path).into_response());
    }
    if let Err(wait) = st.guards.check_ip(ip) {
        tracing::warn!(target: "security", client_ip = %ip, "rate limit hit (client IP)");
        return Some(ApiError::too_many("rate limit exceeded for this address", wait).for_path(path).into_response());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(peer: &str, lines: &[&str], trusted: &[IpNet]) -> Result<IpAddr, MalformedForwardedFor> {
        let values: Vec<HeaderValue> = lines.iter().map(|l| HeaderValue::from_str(l).unwrap()).collect();
        resolve_client_ip(peer.parse().unwrap(), &values, trusted)
    }

    fn ip(s: &str) -> Result<IpAddr, MalformedForwardedFor> {
        Ok(s.parse().unwrap())
    }

    #[test]
    fn the_default_ip_rate_is_200_a_second() {
        assert_eq!(DEFAULT_IP_RATE.to_string(), "200/s");
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(xff("203.0.113.9", &["1.2.3.4"], &trusted), ip("203.0.113.9"), "untrusted peer: header ignored");
        assert_eq!(xff("203.0.113.9", &["garbage"], &trusted), ip("203.0.113.9"), "untrusted peer: not even parsed");
        assert_eq!(xff("10.1.2.3", &["1.2.3.4"], &trusted), ip("1.2.3.4"));
        assert_eq!(xff("10.1.2.3", &["1.2.3.4, 10.9.9.9"], &trusted), ip("1.2.3.4"));
        assert_eq!(xff("10.1.2.3", &[], &trusted), ip("10.1.2.3"));
        assert_eq!(xff("10.1.2.3", &["10.2.2.2, 10.3.3.3"], &trusted), ip("10.2.2.2"), "all trusted: left-most");
        assert_eq!(xff("10.1.2.3", &["1.2.3.4:5678"], &trusted), ip("1.2.3.4"));
        assert_eq!(xff("10.1.2.3", &["[2001:db8::7]:443"], &trusted), ip("2001:db8::7"));
    }

    #[test]
    fn forwarded_for_lines_are_merged_and_walked_from_the_right() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // A client that sends its own header line first cannot pick its address: the proxy's
        // line (appended last) holds what the proxy saw.
        assert_eq!(xff("10.1.2.3", &["6.6.6.6", "198.51.100.7"], &trusted), ip("198.51.100.7"));
        assert_eq!(xff("10.1.2.3", &["6.6.6.6, 7.7.7.7", "198.51.100.7, 10.0.0.9"], &trusted), ip("198.51.100.7"));
    }

    #[test]
    fn a_malformed_forwarded_for_from_a_trusted_proxy_is_refused() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        for bad in [&["garbage"][..], &["1.2.3.4, unknown"], &["1.2.3.4,,5.6.7.8"], &["1.2.3.4", ""], &["1.2.3.4/8"]] {
            assert_eq!(xff("10.1.2.3", bad, &trusted), Err(MalformedForwardedFor), "{bad:?}");
        }
    }

    #[test]
    fn lockout_after_n_failures_with_backoff() {
        let cfg = GuardConfig { lockout_failures: 3, lockout_base: Duration::from_secs(10), ..GuardConfig::default() };
        let l = Lockout::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(l.record_failure(ip, &cfg).is_none());
        assert!(l.record_failure(ip, &cfg).is_none());
        assert_eq!(l.record_failure(ip, &cfg), Some(Duration::from_secs(10)));
        assert!(l.locked(ip).is_some());
        assert!(l.locked("192.0.2.2".parse().unwrap()).is_none());
        l.record_failure(ip, &cfg);
        l.record_failure(ip, &cfg);
        assert_eq!(l.record_failure(ip, &cfg), Some(Duration::from_secs(20)));
    }

    #[test]
    fn defaults_limit_no_token_and_per_ip_only_without_a_valid_token() {
        let d = GuardConfig::default();
        assert!(d.token_rate.is_none(), "the per-token limit is off by default");
        assert_eq!(d.ip_rate, Some(DEFAULT_IP_RATE));
    }

    #[test]
    fn a_token_with_its_own_rate_is_limited_at_it() {
        let g = Guards::new(GuardConfig { token_rate: None, ..GuardConfig::default() });
        let rate: Rate = "3/m".parse().unwrap();
        for _ in 0..3 {
            assert!(g.check_token("acc_a", Some(rate)).is_ok());
        }
        assert!(g.check_token("acc_a", Some(rate)).is_err());
        assert!(g.check_token("acc_b", Some(rate)).is_ok(), "each token has its own budget");
        assert!((0..100).all(|_| g.check_token("acc_c", None).is_ok()), "no global limit by default");
    }

    #[test]
    fn idle_limiter_and_lockout_state_is_pruned() {
        // One request a second: a limiter used once stays "in use" for a whole second, and so
        // does a failure, so filling the state below never outlasts them, even on a loaded machine.
        let cfg = GuardConfig {
            ip_rate: Some("1/s".parse().unwrap()),
            token_rate: Some("1/s".parse().unwrap()),
            lockout_window: Duration::from_millis(1000),
            ..GuardConfig::default()
        };
        let g = Guards::new(cfg.clone());
        let own: Rate = "1/s".parse().unwrap();
        for i in 0..1000u32 {
            let addr = IpAddr::from(std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i)));
            assert!(g.check_ip(addr).is_ok());
            assert!(g.check_token(&format!("acc_{i}"), None).is_ok());
            assert!(g.check_token(&format!("own_{i}"), Some(own)).is_ok());
            g.lockout.record_failure(addr, &cfg);
        }
        assert_eq!(g.tracked(), (1000, 2000, 1000));
        g.prune();
        assert_eq!(g.tracked(), (1000, 2000, 1000), "state still in use is kept");
        // Every limiter is full again after its period, and the failures' window has passed.
        std::thread::sleep(Duration::from_millis(2100));
        g.prune();
        assert_eq!(g.tracked(), (0, 0, 0));
    }
}
