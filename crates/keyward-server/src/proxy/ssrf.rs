//! Where a proxied request may go: upstream addresses are checked after DNS resolution, on every
//! new connection, so a name that resolves to an internal address (or is re-pointed there later)
//! is refused.
use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// An upstream resolved to an address keyward will not send credentials to.
#[derive(Debug, thiserror::Error)]
#[error("the upstream resolves to a loopback, private, link-local or metadata address ({0})")]
pub struct ForbiddenAddress(pub IpAddr);

/// Loopback, private, link-local (cloud metadata lives there), unspecified, multicast and other
/// special-purpose ranges.
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // carrier-grade NAT
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local (incl. fd00:ec2::254)
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || v6.to_ipv4_mapped().is_some_and(|v4| forbidden(IpAddr::V4(v4)))
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 onto anything
        }
    }
}

/// A resolver that refuses forbidden addresses (unless `allow_insecure`).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// `--proxy-allow-insecure`: internal addresses are allowed.
    pub allow_insecure: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_insecure;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if !allow {
                if let Some(bad) = addrs.iter().find(|a| forbidden(a.ip())) {
                    return Err(Box::new(ForbiddenAddress(bad.ip())) as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges_are_forbidden() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::",
        ] {
            assert!(forbidden(bad.parse().unwrap()), "{bad}");
        }
        for ok in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "8.8.8.8"] {
            assert!(!forbidden(ok.parse().unwrap()), "{ok}");
        }
    }
}
