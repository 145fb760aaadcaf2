//! `/api/sessions`: the session index, filtered by user, resource role, mode, status
//! (`live`/`ended`) and time range (readers see all, a standard user its own);
//! `GET /api/sessions/{id}` adds the session's statements from the monitoring log;
//! `DELETE /api/sessions/{id}` ends a live session (admin).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiState, Caller, Failures};
use crate::api::SessionDetail;
use crate::session::EndReason;
use crate::store::{SessionFilter, SessionRecord};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show, end))
}

/// Sessions from the index, newest first (readers: all; others: their own).
#[utoipa::path(get, path = "/api/sessions", tag = "sessions", params(SessionFilter),
    responses((status = 200, body = Vec<SessionRecord>), Failures))]
async fn list(
    State(s): State<ApiState>,
    caller: Caller,
    Query(mut f): Query<SessionFilter>,
) -> Result<Json<Vec<SessionRecord>>, ApiError> {
    if !caller.is_reader() {
        if f.user.as_deref().is_some_and(|u| u != caller.name()) {
            return Err(ApiError::forbidden("you may only see your own sessions"));
        }
        f.user = Some(caller.name().to_owned());
    }
    if let Some(status) = &f.status
        && status != "live"
        && status != "ended"
    {
        return Err(ApiError::invalid("status is `live` or `ended`"));
    }
    Ok(Json(s.control.store.list_sessions(&f).await?))
}

/// One session (live or ended) with its statements.
#[utoipa::path(get, path = "/api/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, body = SessionDetail), Failures))]
async fn show(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionDetail>, ApiError> {
    let session = s
        .control
        .store
        .get_session(&id)
        .await?
        .filter(|v| caller.is_reader() || v.user == caller.name())
        .ok_or_else(|| ApiError::not_found(format!("session `{id}` not found")))?;
    let dir = s.control.config().audit.dir.clone();
    let (wanted, since) = (id.clone(), session.started_at);
    let statements =
        tokio::task::spawn_blocking(move || crate::audit::session_queries(&dir, &wanted, since))
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?
            .map_err(|e| ApiError::unavailable(format!("cannot read the monitoring log: {e}")))?;
    Ok(Json(SessionDetail {
        session,
        statements,
    }))
}

/// Ends a live session (admin).
#[utoipa::path(delete, path = "/api/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "session id")),
    responses((status = 204), Failures))]
async fn end(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let view = s
        .registry
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no live session `{id}`")))?;
    s.registry.end(
        &id,
        EndReason::Killed {
            by: caller.name().to_owned(),
        },
    );
    super::changed(
        &s,
        &caller,
        "session.end",
        &format!("session/{id}"),
        Some(&view),
        None::<&()>,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
