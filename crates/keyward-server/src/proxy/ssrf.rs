//! Where a proxied request may go: upstream addresses are checked after DNS resolution, on every
//! new connection, so a name that resolves to an internal address (or is re-pointed there later)
//! is refused.
use std::net::{IpAddr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// An upstream resolved to an address keyward will not send credentials to.
#[derive(Debug, thiserror::Error)]
#[error("the upstream resolves to an address that is not global unicast ({0})")]
pub struct ForbiddenAddress(pub IpAddr);

/// Whether `ip` is a global unicast address, the only kind a credential may be sent to unless
/// both the server (`--proxy-allow-insecure`) and the route opt in. An allowlist, not a denylist:
/// IPv4 outside every special-purpose block of the IANA registry (RFC 6890 and successors), and
/// IPv6 inside 2000::/3 outside its special-purpose blocks (Teredo and the other IETF protocol
/// assignments 2001::/23, documentation 2001:db8::/32 and 3fff::/20, 6to4 2002::/16, which embeds
/// any IPv4 address). Everything else — loopback, private, shared, link-local (cloud metadata),
/// benchmarking, documentation, multicast, reserved, IPv4-mapped, -compatible and -translated
/// forms, NAT64, site-local and unique-local IPv6 — is refused.
pub fn is_global_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            let special = o[0] == 0 // "this network"
                || o[0] == 10 // private
                || (o[0] == 100 && (64..128).contains(&o[1])) // shared (carrier-grade NAT)
                || o[0] == 127 // loopback
                || (o[0] == 169 && o[1] == 254) // link-local (cloud metadata)
                || (o[0] == 172 && (16..32).contains(&o[1])) // private
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
                || (o[0] == 192 && o[1] == 0 && o[2] == 2) // documentation
                || (o[0] == 192 && o[1] == 88 && o[2] == 99) // 6to4 relay anycast
                || (o[0] == 192 && o[1] == 168) // private
                || (o[0] == 198 && (18..20).contains(&o[1])) // benchmarking
                || (o[0] == 198 && o[1] == 51 && o[2] == 100) // documentation
                || (o[0] == 203 && o[1] == 0 && o[2] == 113) // documentation
                || o[0] >= 224; // multicast, reserved, broadcast
            !special
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let in_2000_3 = (s[0] & 0xe000) == 0x2000;
            // 2001::/23 (Teredo, benchmarking, ORCHID…) and 2001:db8::/32 (documentation).
            let special = (s[0] == 0x2001 && (s[1] < 0x0200 || s[1] == 0x0db8))
                || s[0] == 0x2002 // 6to4
                || (s[0] == 0x3fff && s[1] < 0x1000); // 3fff::/20: documentation
            in_2000_3 && !special
        }
    }
}

/// A resolver that refuses addresses that are not global unicast (unless `allow_insecure`:
/// the server and the route both opted in).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// Any address is allowed.
    pub allow_insecure: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_insecure;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if !allow {
                if let Some(bad) = addrs.iter().find(|a| !is_global_unicast(a.ip())) {
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
    fn only_global_unicast_is_allowed() {
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
            "198.18.0.1",
            "198.19.255.254",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fec0::1",
            "fd00:ec2::254",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:8.8.8.8",
            "::127.0.0.1",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",
            "2001:db8::1",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::",
            "3fff::1",
            "ff02::1",
            "100::1",
        ] {
            assert!(!is_global_unicast(bad.parse().unwrap()), "{bad}");
        }
        for ok in [
            "93.184.216.34",
            "1.1.1.1",
            "8.8.8.8",
            "198.20.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "2001:4860::8888",
        ] {
            assert!(is_global_unicast(ok.parse().unwrap()), "{ok}");
        }
    }
}
