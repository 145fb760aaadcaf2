//! The admin HTTP API (SPEC §5): axum on hyper, JSON in and out, bearer tokens.
//! `admin` writes; `auditor` reads everything and changes nothing; `standard` sees its own
//! profile, its tokens and the resource roles it can use. Each resource has its own file.

mod access;
mod catalog;
mod error;
mod lockouts;
mod ops;
mod resource_roles;
mod sessions;
mod tokens;
mod users;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

pub use error::ApiError;

use crate::access::UserEntry;
use crate::auth::token_hash;
use crate::control::ControlPlane;
use crate::model::{Role, Status};

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    pub control: Arc<ControlPlane>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub recorder: Option<crate::audit::Recorder>,
    pub sessions: Arc<crate::session::Registry>,
    pub lockout: Arc<crate::lockout::Lockout>,
    pub pool: Arc<crate::upstream::pool::Pool>,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .merge(users::routes())
        .merge(catalog::routes())
        .merge(resource_roles::routes())
        .merge(sessions::routes())
        .merge(lockouts::routes())
        .merge(access::routes())
        .merge(tokens::routes())
        .merge(ops::routes())
        .with_state(state)
}

/// The authenticated caller, from `Authorization: Bearer TOKEN`.
#[derive(Clone, Debug)]
pub struct Caller(pub Arc<UserEntry>);

impl Caller {
    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        match self.0.role {
            Role::Admin => Ok(()),
            _ => Err(ApiError::forbidden("this requires the admin role")),
        }
    }

    /// Admins and auditors read everything.
    pub fn is_reader(&self) -> bool {
        matches!(self.0.role, Role::Admin | Role::Auditor)
    }

    pub fn require_reader_or_self(&self, user: &str) -> Result<(), ApiError> {
        if self.is_reader() || self.0.name == user {
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
        let now = crate::store::now();
        let user = snapshot
            .tokens
            .get(&token_hash(token.trim()))
            .filter(|t| t.expires_at.is_none_or(|e| e > now))
            .and_then(|entry| {
                let user = snapshot.users.get(&entry.user)?;
                (user.status == Status::Active).then_some((entry, user))
            });
        let Some((entry, user)) = user else {
            state.lockout.failed("", client.ip());
            api_auth_failed(state, client, "invalid, expired or inactive token".into()).await;
            return Err(ApiError::unauthorized("invalid or expired token"));
        };
        let (store, id) = (state.control.store.clone(), entry.id.clone());
        tokio::spawn(async move {
            if let Err(e) = store.touch_token(&id).await {
                tracing::debug!(error = %e, "could not record token use");
            }
        });
        Ok(Caller(Arc::clone(user)))
    }
}

/// A refused API call's `auth_failed` event (protocol `http`, mode `admin`).
async fn api_auth_failed(state: &ApiState, client: SocketAddr, reason: String) {
    crate::metrics::Metrics::inc(&state.metrics.auth_failures_total);
    if let Some(recorder) = &state.recorder {
        let mut common = crate::audit::Common::new("", "http", client);
        common.mode = "admin";
        let event = crate::audit::Event {
            common: Arc::new(common),
            kind: crate::audit::Kind::AuthFailed { reason },
        };
        let _ = recorder.record(event).await;
    }
}

/// A JSON body whose rejection is a JSON `400` like every other error.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
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

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
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
