//! The admin HTTP API (SPEC §5): axum on hyper, JSON in and out, bearer tokens.
//! `admin` writes; `auditor` reads everything and changes nothing; `standard` sees its own
//! profile, its tokens and the resource roles it can use. Each resource has its own file.

pub(crate) mod access;
pub(crate) mod catalog;
pub(crate) mod definitions;
mod error;
pub(crate) mod guardrails;
pub(crate) mod lockouts;
pub(crate) mod login;
pub(crate) mod masking;
pub(crate) mod oneoffs;
pub(crate) mod ops;
pub(crate) mod requests;
pub(crate) mod resource_roles;
mod serve;
pub(crate) mod sessions;
pub(crate) mod tokens;
pub(crate) mod users;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::{ApiError, Failures};
pub use serve::serve;

use crate::access::api::{self, Action};
use crate::audit::{Channel, Common, Kind, Mode};
use crate::auth::Identity;
use crate::model::Status;
use crate::session::Gateway;
use crate::snapshot::UserEntry;

/// What every handler can reach: the gateway (control plane, monitoring log, live
/// sessions, lockouts, the upstream side).
#[derive(Clone)]
pub struct ApiState(pub Arc<Gateway>);

impl std::ops::Deref for ApiState {
    type Target = Gateway;
    fn deref(&self) -> &Gateway {
        &self.0
    }
}

/// The API contract's frame; the paths and schemas come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis admin API",
        description = "Users, groups, resources, resource roles, access control, sessions and \
                       the monitoring log (SPEC §5). Every call but /healthz, /readyz, /metrics \
                       and /openapi.json needs `Authorization: Bearer TOKEN`. Errors are \
                       `{\"error\": \"...\"}`."
    ),
    modifiers(&BearerAuth),
    components(schemas(error::ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
        doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// Every route, each registered with its OpenAPI description (`utoipa_axum::routes!`):
/// a handler cannot be routed without being documented.
fn documented() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(users::routes())
        .merge(catalog::routes())
        .merge(resource_roles::routes())
        .merge(sessions::routes())
        .merge(lockouts::routes())
        .merge(access::routes())
        .merge(tokens::routes())
        .merge(login::routes())
        .merge(oneoffs::routes())
        .merge(requests::routes())
        .merge(guardrails::routes())
        .merge(masking::routes())
        .merge(ops::routes())
}

/// The OpenAPI document generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented().into_openapi()
}

pub fn router(state: ApiState) -> Router {
    documented()
        .split_for_parts()
        .0
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}

/// What a path nothing serves gets from the admin listener: JSON, or for the console's
/// paths a page.
pub async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if uri.path().starts_with("/ui") {
        let page = "<!doctype html><title>Not found</title><p>No such page. <a href=\"/ui/\">Back to the console</a></p>";
        (
            axum::http::StatusCode::NOT_FOUND,
            axum::response::Html(page),
        )
            .into_response()
    } else {
        ApiError::not_found("no such endpoint: see /openapi.json").into_response()
    }
}

/// Every error answer is `{"error": …}`: the framework's own (a query string that does
/// not parse, a wrong method, …) are rewritten, their text made readable.
async fn json_errors(resp: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let body = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    let text = if text.trim().is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        error::humane(text.trim())
    };
    ApiError {
        status,
        message: text,
    }
    .into_response()
}

/// The authenticated caller, from `Authorization: Bearer TOKEN`.
#[derive(Clone, Debug)]
pub struct Caller(pub Arc<UserEntry>, pub Identity);

impl Caller {
    pub fn name(&self) -> &str {
        &self.0.name
    }

    fn allows(&self, action: Action<'_>) -> bool {
        api::allows(self.0.role, &self.0.name, action)
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.allows(Action::Change) {
            Ok(())
        } else {
            Err(ApiError::forbidden("this requires the admin role"))
        }
    }

    pub fn is_admin(&self) -> bool {
        self.allows(Action::Change)
    }

    /// Admins and auditors read everything.
    pub fn is_reader(&self) -> bool {
        self.allows(Action::ReadAll)
    }

    pub fn require_reader_or_self(&self, user: &str) -> Result<(), ApiError> {
        if self.allows(Action::ReadOwn { owner: user }) {
            Ok(())
        } else {
            Err(ApiError::forbidden("you may only read your own records"))
        }
    }
}

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ApiError::unauthorized("missing bearer token"))?;
        let token = header
            .strip_prefix("Bearer ")
            .ok_or_else(|| ApiError::unauthorized("expected `Authorization: Bearer TOKEN`"))?;
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
        if let Err(reason) = state.lockout.check("", client.ip()) {
            api_auth_failed(state, client, reason).await;
            return Err(ApiError::too_many(
                "too many failed logins from this address; try again later",
            ));
        }
        let snapshot = state.control.snapshot();
        let found = crate::auth::verify_token(&snapshot, token).and_then(|identity| {
            let user = snapshot.users.get(identity.user())?;
            (user.status == Status::Active).then(|| (identity, Arc::clone(user)))
        });
        let Some((identity, user)) = found else {
            state.lockout.failed("", client.ip());
            api_auth_failed(state, client, "invalid, expired or inactive token".into()).await;
            return Err(ApiError::unauthorized("invalid or expired token"));
        };
        state.control.token_used(&identity);
        Ok(Caller(user, identity))
    }
}

/// The caller's address (the admin server puts it in every request).
pub struct ClientAddr(pub SocketAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0),
        ))
    }
}

/// A refused API call's `auth_failed` event (protocol `http`, mode `admin`).
async fn api_auth_failed(state: &ApiState, client: SocketAddr, reason: String) {
    crate::metrics::Metrics::inc(&state.metrics.auth_failures_total);
    let mut common = Common::new("", Channel::Http, client);
    common.mode = Mode::Admin;
    state
        .record(Arc::new(common), Kind::AuthFailed { reason })
        .await;
}

/// A JSON body whose rejection is a JSON `400` like every other error.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(e) => Err(ApiError::bad_request(error::humane(&e.body_text()))),
        }
    }
}

/// Refuses to change an object the config file owns.
pub fn not_managed(state: &ApiState, managed: bool, what: &str) -> Result<(), ApiError> {
    if managed {
        let file = state.control.config().source.display().to_string();
        return Err(ApiError::conflict(format!(
            "{what} is declared in {file}; change it there"
        )));
    }
    Ok(())
}

/// After a successful write: record the admin change and publish the new snapshot now,
/// so this instance's next connection already sees it.
pub async fn changed<B: serde::Serialize, A: serde::Serialize>(
    state: &ApiState,
    caller: &Caller,
    action: &str,
    object: &str,
    before: Option<&B>,
    after: Option<&A>,
) -> Result<(), ApiError> {
    let json = |v: Option<serde_json::Value>| v.filter(|v| !v.is_null());
    state
        .control
        .record_change(
            caller.name(),
            action,
            object,
            json(before.and_then(|b| serde_json::to_value(b).ok())),
            json(after.and_then(|a| serde_json::to_value(a).ok())),
        )
        .await?;
    state.control.refresh().await?;
    Ok(())
}
