//! The web console (SPEC §5), served by the gateway on the admin listener at `/` and
//! `/ui/…`: server-rendered pages (askama templates, escaped by default) with htmx for
//! the parts that update in place, every asset embedded in the binary and served from the
//! gateway itself. A page is a thin layer over the admin API: its reads and writes call
//! the same handlers with the signed-in user as the caller, so the same permission checks
//! apply and every write is the same `admin_change`.

mod access;
mod catalog;
mod people;
mod portal;
mod requests;
mod sessions;
mod signin;

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::admin::{ApiError, ApiState};
pub use signin::Signins;
use signin::Viewer;

/// Where the embedded assets are served (the version in the path: cached for good).
pub const STATIC: &str = concat!("/ui/static/", env!("CARGO_PKG_VERSION"));

/// What every page's frame shows: who is signed in, what they may see, the form token.
pub struct Nav {
    pub user: String,
    pub role: &'static str,
    pub admin: bool,
    pub reader: bool,
    pub csrf: String,
    pub section: &'static str,
    pub notice: Option<String>,
    pub error: Option<String>,
}

/// The console's routes, with the security headers on every answer.
pub fn router(api: ApiState) -> Router {
    let state = ConsoleState {
        api,
        signins: Arc::new(Signins::default()),
        verify: Arc::default(),
    };
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(home))
        .route(&format!("{STATIC}/{{file}}"), get(asset))
        .merge(signin::routes())
        .merge(people::routes())
        .merge(catalog::routes())
        .merge(access::routes())
        .merge(sessions::routes())
        .merge(portal::routes())
        .merge(requests::routes())
        .layer(axum::middleware::from_fn(headers))
        .with_state(state)
}

#[derive(Clone)]
pub struct ConsoleState {
    pub api: ApiState,
    pub signins: Arc<Signins>,
    /// The last verification run from the console: when, whether the chain held, what
    /// it found.
    pub verify: Arc<std::sync::Mutex<Option<(String, bool, String)>>>,
}

impl ConsoleState {
    pub fn verified(&self) -> Option<(String, bool, String)> {
        self.verify.lock().ok().and_then(|v| v.clone())
    }
}

/// A strict Content-Security-Policy (scripts and styles only from the gateway, no inline
/// script, no framing), and no referrer leaving the console.
async fn headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
               connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, csp),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// The embedded assets: htmx (vendored from its npm package, with its licence), the
/// stylesheet, the small script for keyboard shortcuts and confirmations.
async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind): (&'static [u8], &str) = match file.as_str() {
        "htmx.min.js" => (include_bytes!("../assets/htmx.min.js"), "text/javascript"),
        "htmx.LICENSE" => (include_bytes!("../assets/htmx.LICENSE"), "text/plain"),
        "console.css" => (include_bytes!("../assets/console.css"), "text/css"),
        "console.js" => (include_bytes!("../assets/console.js"), "text/javascript"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response()
}

/// The signed-in user's first page: admins their users, auditors the sessions, everyone
/// else the developer portal.
async fn home(viewer: Viewer) -> Redirect {
    if viewer.caller.is_admin() {
        Redirect::to("/ui/users")
    } else if viewer.caller.is_reader() {
        Redirect::to("/ui/sessions")
    } else {
        Redirect::to("/ui/portal")
    }
}

/// A page, or a plain error page if the template fails.
pub fn page<T: Template>(t: &T) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a console page did not render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// After a write: back to `to`, with a one-line notice (or the API's error) shown there.
pub fn back(to: &str, outcome: Result<String, ApiError>) -> Response {
    let (key, text) = match outcome {
        Ok(notice) => ("notice", notice),
        Err(e) => ("error", e.message),
    };
    let sep = if to.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{to}{sep}{key}={}", encode(&text))).into_response()
}

/// A form that deletes the object `name` through the API's `handler` (the same checks;
/// its `force` box for one in use), then goes back to `to` saying so.
pub async fn delete_via<F, Fut, T>(
    s: &ConsoleState,
    viewer: &signin::Viewer,
    fields: &Fields,
    (what, name, to): (&str, String, &str),
    handler: F,
) -> Response
where
    F: FnOnce(
        axum::extract::State<ApiState>,
        crate::admin::Caller,
        axum::extract::Path<String>,
        axum::extract::Query<crate::api::Force>,
    ) -> Fut,
    Fut: std::future::Future<Output = Result<T, ApiError>>,
{
    if let Some(r) = viewer.refused(fields) {
        return r;
    }
    let api = axum::extract::State(s.api.clone());
    let force = axum::extract::Query(crate::api::Force {
        force: fields.checked("force"),
    });
    let path = axum::extract::Path(name.clone());
    let done = handler(api, viewer.caller.clone(), path, force)
        .await
        .map(|_| format!("{what} {name} deleted"));
    back(to, done)
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A form's fields as sent (`application/x-www-form-urlencoded`), repeated names kept.
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn get(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    }

    /// Present and not empty.
    pub fn some(&self, name: &str) -> Option<String> {
        Some(self.get(name)).filter(|v| !v.is_empty())
    }

    pub fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// `a, b` → `["a", "b"]`.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        serde_urlencoded::from_bytes(&body)
            .map(Fields)
            .map_err(|_| (StatusCode::BAD_REQUEST, "the form could not be read").into_response())
    }
}

/// A page's query string, with the notice or error a redirect carried.
#[derive(Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Query(pub HashMap<String, String>);

impl Query {
    pub fn get(&self, k: &str) -> Option<String> {
        self.0.get(k).filter(|v| !v.is_empty()).cloned()
    }
}
