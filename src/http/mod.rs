//! HTTP plumbing both surfaces share and neither owns: the client's address
//! through trusted proxies, the user agent, request ids and logging, the
//! CSRF and control-character guards, and error rendering chosen by the
//! scope a route belongs to.

pub mod csrf;
pub mod middleware;

use crate::state::AppState;
use actix_web::{HttpRequest, web};

/// Whether the request was made by htmx (and wants a partial back).
pub fn is_htmx(req: &HttpRequest) -> bool {
    req.headers().contains_key("hx-request")
}

/// The client's address, for sign-in throttling and the audit trail: the
/// TCP peer, unless the peer is one of `KEYWARD_TRUSTED_PROXIES`; only then
/// is `X-Forwarded-For` believed (a client could forge it to dodge
/// throttling otherwise).
pub fn client_ip(req: &HttpRequest) -> Option<String> {
    client_addr(req).map(|ip| ip.to_string())
}

/// [`client_ip`] as an address (the request log formats it later, off the
/// hot path). Without trusted proxies the peer is the client, and nothing
/// else is read.
pub fn client_addr(req: &HttpRequest) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip();
    let trusted = trusted_proxies(req);
    if trusted.is_empty() {
        return Some(peer);
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    Some(forwarded_client(peer, &forwarded.join(","), trusted))
}

fn trusted_proxies(req: &HttpRequest) -> &[ipnet::IpNet] {
    req.app_data::<web::Data<AppState>>()
        .map_or(&[], |s| &s.config.trusted_proxies)
}

/// [`client_addr`] for a key's IP allowlist, where a doubt must refuse:
/// `Err` when a trusted proxy's request carries `X-Forwarded-For` more
/// than once (which copy is the proxy's own is a guess; send one header,
/// as nginx's `$proxy_add_x_forwarded_for` and Caddy do). From an
/// untrusted peer the header is not read at all: the peer is the client.
pub fn allowlist_addr(req: &HttpRequest) -> Result<Option<std::net::IpAddr>, &'static str> {
    let Some(peer) = req.peer_addr().map(|p| p.ip()) else {
        return Ok(None);
    };
    let trusted = trusted_proxies(req);
    if !trusted.iter().any(|n| n.contains(&peer)) {
        return Ok(Some(peer));
    }
    let mut values = req.headers().get_all("x-forwarded-for");
    let first = values.next();
    if values.next().is_some() {
        return Err("X-Forwarded-For");
    }
    let forwarded = first.and_then(|v| v.to_str().ok()).unwrap_or_default();
    Ok(Some(forwarded_client(peer, forwarded, trusted)))
}

/// Walk `X-Forwarded-For` from the right (the hop nearest to us) past
/// trusted proxies; the first untrusted address is the client. Anything
/// left of it was written by the client and is ignored. An unreadable hop
/// stops the walk at the last address known to be good.
pub fn forwarded_client(
    peer: std::net::IpAddr,
    forwarded_for: &str,
    trusted: &[ipnet::IpNet],
) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded_for
        .rsplit(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
    {
        let Ok(ip) = hop.parse::<std::net::IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// The User-Agent header, truncated, for the audit trail.
pub fn user_agent(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::forwarded_client;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let nets: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        // A client talking to us directly cannot claim another address.
        assert_eq!(
            forwarded_client(ip("203.0.113.9"), "1.2.3.4", &nets),
            ip("203.0.113.9")
        );
        // Behind two proxies: the first untrusted hop from the right.
        assert_eq!(
            forwarded_client(ip("10.0.0.2"), "6.6.6.6, 198.51.100.7, 10.0.0.1", &nets),
            ip("198.51.100.7")
        );
        // Junk stops the walk at the last good address.
        assert_eq!(
            forwarded_client(ip("10.0.0.2"), "nonsense", &nets),
            ip("10.0.0.2")
        );
        assert_eq!(forwarded_client(ip("10.0.0.2"), "", &nets), ip("10.0.0.2"));
        assert_eq!(
            forwarded_client(ip("10.0.0.2"), "10.0.0.5", &nets),
            ip("10.0.0.5")
        );
    }
}
