//! What the request log records of a call (issue 27): the integration
//! endpoints describe the request a key came with, only when the verifier
//! asks (a busy key's unrecorded checks build nothing). Never the key, an
//! `Authorization` header or a query string.

use crate::verify::{CallInfo, CallerAddr, DescribeCall};

/// The client's address for an IP allowlist, as `/me` and forward-auth see
/// it: the TCP peer, or `X-Forwarded-For` from a trusted proxy (a gateway
/// in `KEYWARD_TRUSTED_PROXIES`), the header once.
fn allowlist_address(req: &HttpRequest) -> CallerAddr {
    match crate::http::allowlist_addr(req) {
        Ok(Some(ip)) => CallerAddr::Known(ip),
        Ok(None) => CallerAddr::Unknown,
        Err(header) => CallerAddr::Repeated(header),
    }
}
use actix_web::HttpRequest;

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
}

fn user_agent(req: &HttpRequest) -> Option<String> {
    header(req, "user-agent").and_then(CallInfo::clean_agent)
}

/// A call made to keyward itself (`/api/v1/me`, the management API): its
/// own method and path.
pub struct Direct<'a>(pub &'a HttpRequest);

impl DescribeCall for Direct<'_> {
    fn describe(&self) -> CallInfo {
        let req = self.0;
        CallInfo {
            ip: crate::http::client_addr(req),
            method: CallInfo::clean_method(req.method().as_str()),
            path: CallInfo::clean_path(req.path()),
            user_agent: user_agent(req),
        }
    }

    fn address(&self) -> CallerAddr {
        allowlist_address(self.0)
    }
}

/// A call a gateway asks about (`/api/v1/forward-auth`): the original
/// method and path from `X-Forwarded-Method` / `X-Forwarded-Uri` (Traefik,
/// Caddy), `X-Original-Method` / `X-Original-URI` (the usual nginx
/// configuration) or, for Envoy's `ext_authz`, `X-Envoy-Original-Path`, the
/// path appended to the forward-auth address and the request's own method.
/// The client's address is the gateway's `X-Forwarded-For` when the gateway
/// is a trusted proxy (`KEYWARD_TRUSTED_PROXIES`).
pub struct Gateway<'a>(pub &'a HttpRequest);

impl DescribeCall for Gateway<'_> {
    fn describe(&self) -> CallInfo {
        let req = self.0;
        let tail = req.match_info().get("tail").filter(|t| !t.is_empty());
        let method = header(req, "x-forwarded-method")
            .or_else(|| header(req, "x-original-method"))
            .and_then(CallInfo::clean_method)
            .or_else(|| tail.and_then(|_| CallInfo::clean_method(req.method().as_str())));
        let path = header(req, "x-forwarded-uri")
            .or_else(|| header(req, "x-original-uri"))
            .or_else(|| header(req, "x-envoy-original-path"))
            .and_then(CallInfo::clean_path)
            .or_else(|| tail.and_then(|t| CallInfo::clean_path(&format!("/{t}"))));
        CallInfo {
            ip: crate::http::client_addr(req),
            method,
            path,
            user_agent: user_agent(req),
        }
    }

    fn address(&self) -> CallerAddr {
        allowlist_address(self.0)
    }
}
