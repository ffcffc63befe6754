//! Outbound requests must not become a way into the operator's network:
//! webhook addresses are resolved, and loopback, private, link-local
//! (cloud metadata), shared, multicast and unspecified addresses are
//! refused unless the operator allows them
//! (`KEYWARD_WEBHOOK_ALLOW_PRIVATE=true`). The check runs inside the HTTP
//! client's resolver, so the connection goes to an address that was
//! checked, not to a second answer of the DNS.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether `ip` is an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) reaches the IPv4 address it embeds.
            if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
                let o = v6.octets();
                return is_public_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local (incl. fd00:ec2::254)
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0..6] == [0, 0, 0, 0, 0, 0])) // IPv4-compatible
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_unspecified()
        || o[0] == 0 // "this network"
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16: cloud metadata lives here
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || ip.is_multicast()
        || o[0] >= 240 // reserved, broadcast
        || ip.is_documentation())
}

/// How long resolving a webhook's host may take.
pub const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why an address was refused, in words for the delivery log and forms.
pub fn refusal(ip: IpAddr) -> String {
    format!(
        "{ip} is a loopback, private, link-local or otherwise non-public address; keyward does not send to those unless KEYWARD_WEBHOOK_ALLOW_PRIVATE=true"
    )
}

/// The refusal of a resolved name.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Resolve `host` and keep the addresses that may be reached.
pub async fn resolve(host: &str, allow_private: bool) -> Result<Vec<SocketAddr>, Refused> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return if allow_private || is_public(ip) {
            Ok(vec![SocketAddr::new(ip, 0)])
        } else {
            Err(Refused(refusal(ip)))
        };
    }
    // A slow resolver delays only this request (adding an endpoint) or one
    // delivery, and not for long.
    let found: Vec<SocketAddr> =
        tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, 0)))
            .await
            .map_err(|_| Refused(format!("{host} could not be resolved in time")))?
            .map_err(|e| Refused(format!("{host} could not be resolved: {e}")))?
            .collect();
    let first = found.first().map(SocketAddr::ip);
    let allowed: Vec<SocketAddr> = found
        .into_iter()
        .filter(|a| allow_private || is_public(a.ip()))
        .collect();
    match (allowed.is_empty(), first) {
        (false, _) => Ok(allowed),
        (true, Some(ip)) => Err(Refused(format!("{host} resolves to {}", refusal(ip)))),
        (true, None) => Err(Refused(format!("{host} has no address"))),
    }
}

/// The HTTP client's resolver: only checked addresses are connected to.
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolve(&host, allow).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Check the host of `url` (a literal address never reaches the resolver).
pub async fn check_url(url: &str, allow_private: bool) -> Result<(), Refused> {
    let parsed = reqwest::Url::parse(url).map_err(|e| Refused(format!("not an address: {e}")))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| Refused("the address has no host".into()))?;
    resolve(host, allow_private).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_metadata_addresses_are_not_public() {
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public(bad.parse().unwrap()), "{bad}");
        }
        for good in ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111"] {
            assert!(is_public(good.parse().unwrap()), "{good}");
        }
    }

    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        assert!(resolve("localhost", false).await.is_err());
        assert!(resolve("localhost", true).await.is_ok());
        assert!(check_url("http://[::1]:8080/x", false).await.is_err());
        assert!(check_url("http://127.0.0.1:8080/x", true).await.is_ok());
    }
}
