//! 405 for the integration endpoints, which are routed one method each
//! (`#[get("/me")]`): a resource guarded by its method lets every other
//! method fall through to "not found", so each path gets a fallback after
//! its handler that answers 405 with the methods it has. The management
//! API needs none: its paths are resources with a route per method.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

/// Register the fallbacks (after the handlers, before the management
/// routes, whose `/keys/{id}` would otherwise take `/keys/verify`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, allow) in [
        ("/me", "GET"),
        ("/keys/verify", "POST"),
        ("/openapi.json", "GET"),
    ] {
        cfg.service(
            web::resource(path).default_service(web::to(move || async move {
                // Bare, like actix's own 405: the error scopes render it.
                HttpResponse::MethodNotAllowed()
                    .insert_header((header::ALLOW, allow))
                    .finish()
            })),
        );
    }
}
