//! Request logging, CSRF checking and error rendering.

use crate::error::{AppError, ErrorInfo};
use crate::http::csrf::expected_csrf;
use crate::metrics::HttpCounters;
use actix_session::SessionExt;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, web};
use std::rc::Rc;
use std::time::Instant;
use tracing::Instrument;

/// Name of the hidden form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";
/// Header that carries the CSRF token on htmx requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Largest form body read while looking for the token.
const MAX_FORM: usize = 256 * 1024;

/// The header carrying a request's id, in and out.
pub const REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// Whether an incoming request id can be used as it is: short, and only
/// letters, digits, `.`, `_` and `-` (safe in logs and headers).
pub fn valid_request_id(id: &[u8]) -> bool {
    (1..=64).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The request's id: a valid incoming `X-Request-Id`, else a new random one.
fn request_id(req: &ServiceRequest) -> header::HeaderValue {
    if let Some(id) = req.headers().get(&REQUEST_ID)
        && valid_request_id(id.as_bytes())
    {
        return id.clone();
    }
    let mut hex = [0u8; 32];
    let random: [u8; 16] = rand::random();
    // Cannot fail: the buffer is exactly twice the input.
    let _ = hex::encode_to_slice(random, &mut hex);
    header::HeaderValue::from_bytes(&hex).unwrap_or(header::HeaderValue::from_static("-"))
}

/// Give every request an id, log one line per request and count it.
///
/// The id comes from a valid incoming `X-Request-Id` or is generated; it is
/// returned in the response's `X-Request-Id` (errors included) and carried
/// by a `request` span, so every log line written while the request is
/// handled names it.
///
/// The line names the method, route pattern, status and duration: the
/// route pattern (`/invite/{token}`), never the path, because paths can
/// carry secrets (invitation tokens; a key pasted where an id goes); and
/// never the query string or headers. A request that matched no route is
/// logged as `(no route)` for the same reason. Metrics use the same
/// pattern.
pub async fn log_requests<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
    http: Rc<HttpCounters>,
) -> Result<ServiceResponse<B>, Error> {
    let started = Instant::now();
    let id = request_id(&req);
    let span = tracing::info_span!("request", request_id = %id.to_str().unwrap_or_default());
    let method = req.method().clone();
    let mut res = match next.call(req).instrument(span.clone()).await {
        Ok(res) => res,
        Err(e) => {
            // Answered later by the server, without the request: log and
            // count it here, and give its answer the id too.
            let mut answer = e.error_response();
            answer.headers_mut().insert(REQUEST_ID, id);
            let status = answer.status().as_u16();
            http.inc("(error)", status);
            span.in_scope(|| tracing::warn!(%method, status, "request failed"));
            return Err(actix_web::error::InternalError::from_response(e, answer).into());
        }
    };
    res.headers_mut().insert(REQUEST_ID, id);
    let route = res.request().match_pattern();
    let route = route.as_deref().unwrap_or("(no route)");
    let status = res.status().as_u16();
    http.inc(route, status);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(%method, %route, status, ms, "request");
        } else {
            tracing::info!(%method, %route, status, ms, "request");
        }
    });
    Ok(res)
}

/// On the metrics listener, answer `GET /metrics` and nothing else; the
/// application is not served there. On the main listener, `/metrics` does
/// not exist.
pub async fn serve_metrics<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
    metrics_addr: Option<std::net::SocketAddr>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let on_metrics_listener =
        metrics_addr.is_some_and(|addr| req.app_config().local_addr() == addr);
    if !on_metrics_listener {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let res = if req.path() != "/metrics" {
        HttpResponse::NotFound()
            .content_type("text/plain")
            .body("Only /metrics is served here.")
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "GET, HEAD"))
            .finish()
    } else {
        match req.app_data::<web::Data<crate::state::AppState>>() {
            Some(state) => {
                let state = state.clone();
                let body = web::block(move || {
                    state
                        .metrics
                        .render(&state.pool, &state.verifier, &state.pool_events)
                })
                .await?;
                HttpResponse::Ok()
                    .content_type("text/plain; version=0.0.4; charset=utf-8")
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .body(body)
            }
            None => HttpResponse::ServiceUnavailable().finish(),
        }
    };
    Ok(req.into_response(res).map_into_right_body())
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

use crate::domain::input::same;

fn bytes_to_payload(buf: web::Bytes) -> Payload {
    let (_, mut payload) = actix_http::h1::Payload::create(true);
    payload.unread_data(buf);
    Payload::from(payload)
}

fn is_form(req: &ServiceRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}

/// Read a form body into memory (it is small: at most [`MAX_FORM`]) and put
/// it back so the handler can still read it. `Ok(None)` when the body is
/// too large.
async fn buffer_form(req: &mut ServiceRequest) -> Result<Option<web::Bytes>, Error> {
    let mut body = web::BytesMut::new();
    let mut payload = req.take_payload();
    while let Some(chunk) = futures_util::StreamExt::next(&mut payload).await {
        let chunk = chunk?;
        if body.len() + chunk.len() > MAX_FORM {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    req.set_payload(bytes_to_payload(body.clone()));
    Ok(Some(body))
}

fn too_large() -> AppError {
    AppError::BadRequest("The form is too large; nothing was changed.".into())
}

/// Control characters (a NUL byte above all, which PostgreSQL refuses in
/// text) are turned away at the edge of the web application, in one place,
/// with the answer a person expects: 404 for an address that cannot exist,
/// 400 for a search, filter or form. Tabs and line breaks stay allowed in
/// form fields (descriptions are multi-line). The JSON API checks its own
/// input and stores none of it, so it is left to its handlers.
pub async fn reject_control_characters(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if req.path().starts_with("/api/") {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let path = req.uri().path();
    let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
    if decoded.chars().any(char::is_control) {
        return Ok(req.error_response(AppError::NotFound));
    }
    let refused = || {
        AppError::BadRequest(
            "The request contains a control character (such as a NUL byte), which keyward does not accept. Remove it and try again; nothing was changed."
                .into(),
        )
    };
    let query = req.query_string();
    if !query.is_empty() {
        match serde_urlencoded::from_str::<Vec<(String, String)>>(query) {
            Ok(pairs)
                if pairs
                    .iter()
                    .any(|(k, v)| has_control(k, false) || has_control(v, false)) =>
            {
                return Ok(req.error_response(refused()));
            }
            _ => {}
        }
    }
    if is_state_changing(req.method()) && is_form(&req) {
        let Some(body) = buffer_form(&mut req).await? else {
            return Ok(req.error_response(too_large()));
        };
        if let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
            && pairs
                .iter()
                .any(|(k, v)| has_control(k, false) || has_control(v, true))
        {
            return Ok(req.error_response(refused()));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Whether `s` holds a control character; tabs and line breaks count only
/// when `multi_line` is false.
fn has_control(s: &str, multi_line: bool) -> bool {
    s.chars()
        .any(|c| c.is_control() && !(multi_line && matches!(c, '\t' | '\n' | '\r')))
}

/// Every state-changing request to the web application must carry the
/// session's CSRF token, in the `X-CSRF-Token` header (htmx) or the
/// `csrf_token` form field (plain forms). The JSON API is authenticated by
/// bearer keys, not cookies, and is exempt.
pub async fn csrf_guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if !is_state_changing(req.method()) || req.path().starts_with("/api/") {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let expected = expected_csrf(&req.get_session());
    let mut provided = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if provided.is_none() && is_form(&req) {
        let Some(body) = buffer_form(&mut req).await? else {
            return Ok(req.error_response(too_large()));
        };
        provided = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == CSRF_FIELD))
            .map(|(_, v)| v);
    }
    match (expected, provided) {
        (Some(expected), Some(provided)) if same(&expected, &provided) => {
            Ok(next.call(req).await?.map_into_boxed_body())
        }
        (_, provided) => {
            // No path here: it can hold a token; the request line logged
            // by `log_requests` names the route.
            tracing::info!(method = %req.method(), "rejected request without a valid CSRF token");
            // A form of another workspace than the session works in now
            // (switched in another tab) is told apart from a stale one.
            let now_in = crate::http::csrf::bound_workspace(&req.get_session());
            let form_of = provided
                .as_deref()
                .and_then(crate::http::csrf::token_workspace);
            match (form_of, now_in) {
                (Some(form), Some(now)) if form != now => {
                    Ok(req.error_response(AppError::OtherWorkspace))
                }
                _ => Ok(req.error_response(AppError::Csrf)),
            }
        }
    }
}

/// What an error renderer gets: the request, the status, what the user is
/// told, and what the handler's own answer carried (such as a signed-in
/// person's navigation).
pub struct Failed<'a> {
    pub req: &'a actix_web::HttpRequest,
    pub status: StatusCode,
    pub info: &'a ErrorInfo,
    pub extensions: &'a actix_web::dev::Extensions,
}

/// Renders the errors of one scope of routes.
pub type Render = fn(&Failed<'_>) -> HttpResponse;

/// Which renderer answers the errors of which scope: each surface declares
/// the scopes its routes live under and how their errors look (a page, an
/// htmx fragment, JSON, a problem); `lib.rs` puts them together. The scope
/// of a path is the longest declared one it lies in (whole segments), so
/// an error raised before any handler ran (an unknown route or method, a
/// guard) is answered as its scope answers.
#[derive(Clone, Default)]
pub struct ErrorScopes(Rc<Vec<(&'static str, Render)>>);

impl ErrorScopes {
    pub fn new(scopes: Vec<(&'static str, Render)>) -> Self {
        ErrorScopes(Rc::new(scopes))
    }

    fn pick(&self, path: &str) -> Option<Render> {
        self.0
            .iter()
            .filter(|(scope, _)| in_scope(path, scope))
            .max_by_key(|(scope, _)| scope.len())
            .map(|(_, render)| *render)
    }
}

/// Whether `path` lies in `scope`, segment by segment (`/api/v1/keys`
/// holds `/api/v1/keys/key_1` but not `/api/v1/keysets`).
fn in_scope(path: &str, scope: &str) -> bool {
    match path.strip_prefix(scope) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || scope.ends_with('/'),
        None => false,
    }
}

/// Render every error for its audience, by the scope its route belongs to
/// (see [`ErrorScopes`]); the handler's headers (Retry-After, cookies) stay.
pub async fn render_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    scopes: ErrorScopes,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let res = next.call(req).await?;
    let info = res
        .response()
        .extensions()
        .get::<ErrorInfo>()
        .cloned()
        .or_else(|| method_not_allowed(&res));
    let Some(info) = info else {
        return Ok(res.map_into_boxed_body());
    };
    let Some(render) = scopes.pick(res.request().path()) else {
        return Ok(res.map_into_boxed_body());
    };
    let status = res.status();
    let (req, mut old) = res.into_parts();
    let mut out = {
        let extensions = old.extensions();
        render(&Failed {
            req: &req,
            status,
            info: &info,
            extensions: &extensions,
        })
    };
    for (name, value) in old.headers_mut().drain() {
        if let Some(name) = name
            && name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
        {
            out.headers_mut().append(name, value);
        }
    }
    Ok(ServiceResponse::new(req, out))
}

/// The 405 that actix answers itself when a resource has no route for the
/// method: it sets `Allow` but has no body and no [`ErrorInfo`], so it
/// would leave the scope's renderer out. Only that bare answer is taken
/// (a handler's own 405 carries its own body).
fn method_not_allowed<B: MessageBody>(res: &ServiceResponse<B>) -> Option<ErrorInfo> {
    let bare = matches!(
        res.response().body().size(),
        actix_web::body::BodySize::None | actix_web::body::BodySize::Sized(0)
    );
    if res.status() != StatusCode::METHOD_NOT_ALLOWED || !bare {
        return None;
    }
    let allow = res
        .headers()
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Some(ErrorInfo {
        code: "METHOD_NOT_ALLOWED",
        title: "Method not allowed",
        message: format!(
            "This address does not answer {}; it answers {allow}.",
            res.request().method()
        ),
    })
}

/// Percent-encode a path for use in a query string.
pub fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}
