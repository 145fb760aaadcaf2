//! `/api/sessions`: live sessions (readers see all, a standard user its own);
//! `DELETE /api/sessions/{id}` ends one (admin).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;

use super::{ApiError, ApiState, Caller};
use crate::session::{EndReason, SessionView};

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route("/api/sessions", get(list))
        .route("/api/sessions/{id}", get(show).delete(end))
}

async fn list(State(s): State<ApiState>, caller: Caller) -> Json<Vec<SessionView>> {
    let all = s.sessions.list();
    Json(
        all.into_iter()
            .filter(|v| caller.is_reader() || v.user == caller.name())
            .collect(),
    )
}

async fn show(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionView>, ApiError> {
    let view = s
        .sessions
        .get(&id)
        .filter(|v| caller.is_reader() || v.user == caller.name())
        .ok_or_else(|| ApiError::not_found(format!("session `{id}` not found")))?;
    Ok(Json(view))
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
        .ok_or_else(|| ApiError::not_found(format!("session `{id}` not found")))?;
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
