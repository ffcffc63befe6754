//! How the pages answer errors: a full page (keeping a signed-in person's
//! navigation), a fragment that htmx swaps into the message area or the
//! open dialog, or a redirect to sign-in.

use super::layout::Layout;
use crate::error::ErrorInfo;
use crate::http::middleware::{Failed, urlencode};
use actix_session::SessionExt;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};
use askama::Template;

/// A full error page.
#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    status: u16,
    info: &'a ErrorInfo,
}

/// The fragment htmx puts into the page's message area, or into the open
/// dialog when the request came from one (the message area is behind it).
#[derive(Template)]
#[template(path = "error_partial.html")]
struct ErrorPartial<'a> {
    info: &'a ErrorInfo,
    in_dialog: bool,
}

/// For a signed-in person's 403 or 404 page, the layout with their
/// navigation, so the error page keeps it and they are not stranded.
///
/// Runs inside the session middleware (which empties the session once the
/// response leaves it), and attaches the [`Layout`] to the response for
/// [`render`]. Only full pages: JSON and htmx fragments have no
/// navigation. Costs a session lookup only when a page errs.
pub async fn error_layout(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let wants_page = !req.path().starts_with("/api/") && !req.headers().contains_key("hx-request");
    let res = next.call(req).await?;
    let page_error = wants_page
        && matches!(res.status(), StatusCode::FORBIDDEN | StatusCode::NOT_FOUND)
        && res.response().extensions().get::<ErrorInfo>().is_some();
    if !page_error {
        return Ok(res);
    }
    let (req, mut response) = res.into_parts();
    if let Ok(user) = <super::session::CurrentUser as actix_web::FromRequest>::extract(&req).await
        && let Ok(layout) = Layout::new(&req.get_session(), &user, "", "")
    {
        response.extensions_mut().insert(layout);
    }
    Ok(ServiceResponse::new(req, response))
}

/// The pages' error answer (see [`crate::http::middleware::ErrorScopes`]).
pub fn render(failed: &Failed<'_>) -> HttpResponse {
    let Failed {
        req,
        status,
        info,
        extensions,
    } = *failed;
    let is_htmx = req.headers().contains_key("hx-request");
    let from_dialog = req
        .headers()
        .get("hx-target")
        .is_some_and(|t| t.as_bytes() == b"dialog-body");
    let path = req.path();
    if status == StatusCode::UNAUTHORIZED {
        let target = if path == "/" || path == "/logout" {
            "/login".to_owned()
        } else {
            format!("/login?next={}", urlencode(path))
        };
        if is_htmx {
            HttpResponse::Unauthorized()
                .insert_header(("HX-Redirect", target))
                .finish()
        } else {
            HttpResponse::SeeOther()
                .insert_header((header::LOCATION, target))
                .finish()
        }
    } else if is_htmx {
        let body = ErrorPartial {
            info,
            in_dialog: from_dialog,
        }
        .render()
        .unwrap_or_default();
        HttpResponse::build(status)
            .insert_header((
                "HX-Retarget",
                if from_dialog {
                    "#dialog-body"
                } else {
                    "#flash"
                },
            ))
            .insert_header(("HX-Reswap", "innerHTML"))
            .content_type("text/html; charset=utf-8")
            .body(body)
    } else {
        let layout = match extensions.get::<Layout>() {
            Some(signed_in) => Layout {
                title: info.title.to_owned(),
                ..signed_in.clone()
            },
            None => Layout::bare(info.title),
        };
        let body = ErrorPage {
            layout,
            status: status.as_u16(),
            info,
        }
        .render()
        .unwrap_or_else(|_| info.message.clone());
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body)
    }
}
