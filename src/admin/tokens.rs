//! `/api/tokens`: personal access tokens. The value is in the create response only.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiState, Body, Caller, Failures, changed};
use crate::api::{CreatedToken, NewToken};
use crate::config::parse_duration;
use crate::model::TokenView;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(remove))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Filter {
    pub(crate) user: Option<String>,
}

/// Tokens' metadata (readers: any user's; others: their own).
#[utoipa::path(get, path = "/api/tokens", tag = "tokens", params(Filter),
    responses((status = 200, body = Vec<TokenView>), Failures))]
pub(crate) async fn list(
    State(s): State<ApiState>,
    caller: Caller,
    Query(f): Query<Filter>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let user = match f.user {
        Some(u) => {
            caller.require_reader_or_self(&u)?;
            Some(u)
        }
        None if caller.is_reader() => None,
        None => Some(caller.name().to_owned()),
    };
    Ok(Json(s.control.store.list_tokens(user.as_deref()).await?))
}

/// Creates a token for the caller (or, for an admin, for any user); its value is shown
/// once.
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", request_body = NewToken,
    responses((status = 201, body = CreatedToken), Failures))]
pub(crate) async fn create(
    State(s): State<ApiState>,
    caller: Caller,
    Body(new): Body<NewToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let user = new.user.unwrap_or_else(|| caller.name().to_owned());
    if user != caller.name() {
        caller.require_admin()?;
    }
    let asked = match &new.expires {
        Some(d) => {
            let d = parse_duration(d).map_err(ApiError::invalid)?;
            Some(crate::clock::now() + d.as_secs() as i64)
        }
        None => None,
    };
    let expires_at = within_parent(&s, &caller, asked)?;
    let (meta, token) = s
        .control
        .store
        .create_token(&user, &new.name, expires_at)
        .await?;
    let object = format!("token/{}", meta.id);
    changed(
        &s,
        &caller,
        "token.create",
        &object,
        None::<&()>,
        Some(&meta),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { meta, token })))
}

/// A token made with a token may not outlive it: no expiry asked means the parent's;
/// a later one is refused.
fn within_parent(
    s: &ApiState,
    caller: &Caller,
    asked: Option<i64>,
) -> Result<Option<i64>, ApiError> {
    let Some(parent) = caller.1.token() else {
        return Ok(asked);
    };
    let snapshot = s.control.snapshot();
    let limit = snapshot
        .tokens
        .values()
        .find(|t| t.id == parent)
        .and_then(|t| t.expires_at);
    match (limit, asked) {
        (None, asked) => Ok(asked),
        (Some(limit), None) => Ok(Some(limit)),
        (Some(limit), Some(asked)) if asked <= limit => Ok(Some(asked)),
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "a token may not outlive the token that creates it; ask for a shorter expiry",
        )),
    }
}

/// Revokes a token (its owner or an admin).
#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "token id")),
    responses((status = 204), Failures))]
pub(crate) async fn remove(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let all = s.control.store.list_tokens(None).await?;
    let token = all
        .into_iter()
        .find(|t| t.id == id)
        .ok_or_else(|| ApiError::not_found(format!("token `{id}` not found")))?;
    if token.user != caller.name() {
        caller.require_admin()?;
    }
    s.control.store.delete_token(&id).await?;
    changed(
        &s,
        &caller,
        "token.delete",
        &format!("token/{id}"),
        Some(&token),
        None::<&()>,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
