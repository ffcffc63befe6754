//! `/docs`: the API reference (the OpenAPI document rendered by the
//! vendored Swagger UI) and "use your key" snippets, also shown on each
//! key's page with that key's masked excerpt.

use super::layout::Layout;
use super::{AppState, CurrentUser, render};
use crate::error::AppError;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use askama::Template;

/// One "use your key" example.
pub struct Snippet {
    pub id: &'static str,
    pub label: &'static str,
    pub code: String,
}

/// How to call `/api/v1/me` with a key, in curl, Python and JavaScript.
/// `key` is what the reader is shown in place of the key: a masked
/// excerpt or a placeholder, never a secret.
pub fn use_your_key(base: &str, key: &str) -> Vec<Snippet> {
    let url = format!("{base}/api/v1/me");
    vec![
        Snippet {
            id: "curl",
            label: "curl",
            code: format!(
                "export KEYWARD_KEY='{key}'  # the full key you saved\ncurl -H \"Authorization: Bearer $KEYWARD_KEY\" {url}"
            ),
        },
        Snippet {
            id: "python",
            label: "Python (requests)",
            code: format!(
                "import os\nimport requests\n\nkey = os.environ[\"KEYWARD_KEY\"]  # {key}\nres = requests.get(\"{url}\", headers={{\"Authorization\": f\"Bearer {{key}}\"}}, timeout=10)\nres.raise_for_status()\nprint(res.json())"
            ),
        },
        Snippet {
            id: "js",
            label: "JavaScript (Node 18+)",
            code: format!(
                "const key = process.env.KEYWARD_KEY; // {key}\nconst res = await fetch(\"{url}\", {{ headers: {{ Authorization: `Bearer ${{key}}` }} }});\nconsole.log(res.status, await res.json());"
            ),
        },
    ]
}

/// The address integrations reach this server at: the configured public
/// URL, or else the scheme and host this request came in on.
pub fn public_base(req: &HttpRequest, state: &AppState) -> String {
    if state.config.public_url.is_some() {
        return state.base_url.clone();
    }
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

#[derive(Template)]
#[template(path = "docs/page.html")]
struct DocsPage {
    layout: Layout,
    snippets: Vec<Snippet>,
    /// The start of live keys with the installation's prefix, e.g. `sk_live_`.
    key_start: String,
}

/// The API reference; open to anyone, like the document it renders.
#[get("/docs")]
pub async fn docs(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: Option<CurrentUser>,
) -> Result<HttpResponse, AppError> {
    let layout = match &user {
        Some(user) => Layout::new(&session, user, "API reference", "docs")?,
        None => Layout::anonymous(&session, "API reference")?,
    };
    let key_start = crate::domain::keys::Environment::Live.start(&state.config.leaks.key_prefix);
    let page = DocsPage {
        layout,
        snippets: use_your_key(&public_base(&req, &state), &format!("{key_start}…")),
        key_start,
    };
    render(&page, StatusCode::OK)
}
