//! `/api/sessions`: the session index, filtered by user, resource role, mode, status
//! (`live`/`ended`) and time range (readers see all, a standard user its own);
//! `GET /api/sessions/{id}` adds the session's statements from the monitoring log;
//! `DELETE /api/sessions/{id}` ends a live session (admin).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::Serialize;

use super::{ApiError, ApiState, Caller};
use crate::session::EndReason;
use crate::store::{SessionFilter, SessionRecord};

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route("/api/sessions", get(list))
        .route("/api/sessions/{id}", get(show).delete(end))
}

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

#[derive(Serialize)]
pub struct SessionDetail {
    #[serde(flatten)]
    session: SessionRecord,
    statements: Vec<serde_json::Value>,
}

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

async fn end(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let view = s
        .sessions
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no live session `{id}`")))?;
    s.sessions.end(
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
