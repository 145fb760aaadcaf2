//! Logging in with a user name and a password (or token) over HTTP: the console's sign-in
//! and `POST /api/login`, which gives the CLI's `portcullis login` a personal access
//! token. One proof for both, under the lockout the native listeners use; a refusal is an
//! `auth_failed` event with the real reason (for auditors), the client hears only that it
//! failed.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiState, Body, Caller, ClientAddr, Failures};
use crate::api::{CreatedToken, LoginRequest, NewToken};
use crate::audit::{Channel, Common, Kind, Mode};
use crate::auth::Identity;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(login))
}

/// Proves `name` with `secret` (a password or one of the user's tokens), an active user,
/// not locked out. A failure counts towards the lockout and is logged with its reason.
pub(crate) async fn prove(
    s: &ApiState,
    name: &str,
    secret: &str,
    client: SocketAddr,
) -> Result<Identity, ApiError> {
    if let Err(reason) = s.lockout.check(name, client.ip()) {
        failed(s, name, client, reason).await;
        return Err(ApiError::too_many(
            "too many failed logins: try again later",
        ));
    }
    let snapshot = s.control.snapshot();
    let proven = crate::auth::verify_cleartext(&snapshot, name, secret).filter(|id| {
        snapshot
            .users
            .get(id.user())
            .is_some_and(|u| u.status == crate::model::Status::Active)
    });
    let Some(identity) = proven else {
        s.lockout.failed(name, client.ip());
        let why = crate::auth::refusal(&snapshot, name, Some(secret));
        failed(s, name, client, format!("http login: {why}")).await;
        return Err(ApiError::unauthorized("wrong user name, password or token"));
    };
    s.control.token_used(&identity);
    Ok(identity)
}

async fn failed(s: &ApiState, name: &str, client: SocketAddr, reason: String) {
    crate::metrics::Metrics::inc(&s.metrics.auth_failures_total);
    let mut common = Common::new("", Channel::Http, client);
    common.mode = Mode::Admin;
    common.user = name.to_owned();
    s.record(Arc::new(common), Kind::AuthFailed { reason })
        .await;
}

/// Logs in with a user name and password (or token) and answers a new personal access
/// token for the CLI (default expiry 30 days, at most the config's limit for tokens made
/// with a token).
#[utoipa::path(post, path = "/api/login", tag = "tokens", request_body = LoginRequest,
    responses((status = 201, body = CreatedToken), Failures))]
pub(crate) async fn login(
    State(s): State<ApiState>,
    ClientAddr(client): ClientAddr,
    Body(req): Body<LoginRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let identity = prove(&s, &req.user, &req.password, client).await?;
    let user = s
        .control
        .snapshot()
        .users
        .get(identity.user())
        .cloned()
        .ok_or_else(|| ApiError::unauthorized("wrong user name, password or token"))?;
    let new = NewToken {
        user: None,
        name: req.name.unwrap_or_else(|| "portcullis login".to_owned()),
        expires: Some(req.expires.unwrap_or_else(|| "30d".to_owned())),
    };
    super::tokens::create(State(s), Caller(user, identity), Body(new)).await
}
