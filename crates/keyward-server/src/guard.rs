//! Abuse resistance, per server process: the client address (with `--trusted-proxies`), rate
//! limits per client IP and per token (GCRA), and the brute-force lockout of IPs that keep
//! presenting bad tokens.
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use crate::app::AppState;
use crate::error::ApiError;

/// A rate such as `100/s`, `20/m` or `1000/h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed per period (also the burst).
    pub count: NonZeroU32,
    /// The period.
    pub per: Duration,
}

impl std::str::FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid rate {s:?} (examples: 100/s, 20/m, 1000/h)");
        let (n, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let count = n.trim().parse::<u32>().ok().and_then(NonZeroU32::new).ok_or_else(bad)?;
        let per = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(bad()),
        };
        Ok(Self { count, per })
    }
}

impl Rate {
    pub(crate) fn quota(self) -> Quota {
        let interval = self.per / self.count.get();
        Quota::with_period(interval.max(Duration::from_nanos(1)))
            .map_or_else(|| Quota::per_second(self.count), |q| q.allow_burst(self.count))
    }
}

/// Abuse-resistance settings.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// Requests per client IP (`None` = unlimited).
    pub ip_rate: Option<Rate>,
    /// Requests per token (`None` = unlimited).
    pub token_rate: Option<Rate>,
    /// Failed token checks from one IP, within `lockout_window`, that lock it out.
    pub lockout_failures: u32,
    /// The window in which failures are counted.
    pub lockout_window: Duration,
    /// First lockout; each further lockout of the same IP doubles it, up to an hour.
    pub lockout_base: Duration,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            ip_rate: Some(Rate { count: NonZeroU32::new(200).expect("nonzero"), per: Duration::from_secs(1) }),
            token_rate: Some(Rate { count: NonZeroU32::new(100).expect("nonzero"), per: Duration::from_secs(1) }),
            lockout_failures: 10,
            lockout_window: Duration::from_secs(60),
            lockout_base: Duration::from_secs(30),
            trusted_proxies: vec![],
        }
    }
}

const MAX_LOCKOUT: Duration = Duration::from_secs(3600);
const MAX_TRACKED_IPS: usize = 100_000;

#[derive(Debug)]
struct Strikes {
    window_start: Instant,
    failures: u32,
    locked_until: Option<Instant>,
    lockouts: u32,
}

/// Counts failed token checks per IP and locks out repeat offenders with exponential backoff.
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

    /// Records a failed token check; returns the lockout it triggered, if any.
    pub fn record_failure(&self, ip: IpAddr, cfg: &GuardConfig) -> Option<Duration> {
        let now = Instant::now();
        let mut map = self.strikes.lock().ok()?;
        if map.len() >= MAX_TRACKED_IPS {
            map.retain(|_, s| {
                s.locked_until.is_some_and(|t| t > now) || now.duration_since(s.window_start) < cfg.lockout_window
            });
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
}

/// Rate limiters and the lockout of one server process.
#[derive(Debug)]
pub struct Guards {
    /// Settings.
    pub config: GuardConfig,
    ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    token: Option<DefaultKeyedRateLimiter<String>>,
    /// Brute-force lockout.
    pub lockout: Lockout,
}

impl Guards {
    /// Builds the limiters.
    pub fn new(config: GuardConfig) -> Self {
        Self {
            ip: config.ip_rate.map(|r| RateLimiter::keyed(r.quota())),
            token: config.token_rate.map(|r| RateLimiter::keyed(r.quota())),
            lockout: Lockout::default(),
            config,
        }
    }

    /// Checks the per-token limit; `Err` carries the wait.
    pub fn check_token(&self, accessor: &str) -> Result<(), Duration> {
        match &self.token {
            Some(l) => l.check_key(&accessor.to_owned()).map_err(|n| n.wait_time_from(DefaultClock::default().now())),
            None => Ok(()),
        }
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        match &self.ip {
            Some(l) => l.check_key(&ip).map_err(|n| n.wait_time_from(DefaultClock::default().now())),
            None => Ok(()),
        }
    }
}

/// The client's address, as decided by [`client_ip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The address a request comes from: the peer, or — only when the peer is a trusted proxy — the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn resolve_client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(xff) = forwarded_for else { return peer };
    let mut hops: Vec<IpAddr> = Vec::new();
    for part in xff.split(',') {
        match part.trim().parse::<IpAddr>() {
            Ok(ip) => hops.push(ip),
            Err(_) => return peer,
        }
    }
    hops.into_iter().rev().find(|ip| !is_trusted(ip)).unwrap_or(peer)
}

/// Refuses a request from a locked-out IP or over the per-IP limit (`ip` as resolved by
/// [`resolve_client_ip`]); `None` lets it through.
pub fn refuse(st: &AppState, ip: IpAddr, path: &str) -> Option<Response> {
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

    #[test]
    fn rates_parse() {
        assert_eq!("100/s".parse::<Rate>().unwrap().count.get(), 100);
        assert_eq!("20/m".parse::<Rate>().unwrap().per, Duration::from_secs(60));
        for bad in ["", "0/s", "10", "10/d", "x/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let outsider: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(resolve_client_ip(outsider, Some("1.2.3.4"), &trusted), outsider);
        assert_eq!(resolve_client_ip(proxy, Some("1.2.3.4"), &trusted), "1.2.3.4".parse::<IpAddr>().unwrap());
        assert_eq!(resolve_client_ip(proxy, Some("1.2.3.4, 10.9.9.9"), &trusted), "1.2.3.4".parse::<IpAddr>().unwrap());
        assert_eq!(resolve_client_ip(proxy, Some("garbage"), &trusted), proxy);
        assert_eq!(resolve_client_ip(proxy, None, &trusted), proxy);
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
}
