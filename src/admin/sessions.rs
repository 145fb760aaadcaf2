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
use crate::store::{EndState, SessionFilter, SessionRecord};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show, end))
}

/// Sessions from the index, newest first (readers: all; others: their own).
#[utoipa::path(get, path = "/api/sessions", tag = "sessions", params(SessionFilter),
    responses((status = 200, body = Vec<SessionRecord>), Failures))]
pub(crate) async fn list(
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
    let mut found = match f.q.clone().filter(|q| !q.is_empty()) {
        None => s.control.store.list_sessions(&f).await?,
        Some(text) => searched(&s, &f, text).await?,
    };
    so_far(&s, &mut found);
    Ok(Json(found))
}

/// Live sessions' statements so far (the index has them only once a session ends).
fn so_far(s: &ApiState, sessions: &mut [SessionRecord]) {
    for r in sessions.iter_mut().filter(|r| r.ended_at.is_none()) {
        if let Some(live) = s.registry.get(&r.id) {
            r.statements = live.statements as i64;
        }
    }
}

/// Sessions whose statements contain `text` (found in the monitoring log), then the
/// other filters, newest first, paged. The index is read only as far as the page needs,
/// newest found first.
async fn searched(
    s: &ApiState,
    f: &SessionFilter,
    text: String,
) -> Result<Vec<SessionRecord>, ApiError> {
    let dir = s.control.config().audit.dir.clone();
    let since = f.since.unwrap_or(0);
    let ids = tokio::task::spawn_blocking(move || {
        crate::audit::sessions_with(&dir, &text, since, 10_000)
    })
    .await
    .map_err(|e| ApiError::unavailable(e.to_string()))?
    .map_err(|e| ApiError::unavailable(format!("cannot read the monitoring log: {e}")))?;
    let wanted = |r: &SessionRecord| {
        let is =
            |filter: &Option<String>, value: &str| filter.as_deref().is_none_or(|f| f == value);
        let live = r.ended_at.is_none();
        is(&f.user, &r.user)
            && is(&f.resource_role, &r.resource_role)
            && is(&f.mode, &r.mode)
            && f.status.as_deref().is_none_or(|st| (st == "live") == live)
            && f.since.is_none_or(|t| r.started_at >= t)
            && f.until.is_none_or(|t| r.started_at <= t)
    };
    let offset = f.offset.unwrap_or(0).max(0) as usize;
    let limit = f.limit.unwrap_or(100).clamp(1, 10_000) as usize;
    let mut matched = Vec::new();
    for chunk in ids.rchunks(500) {
        let found = s.control.store.sessions_by_id(chunk).await?;
        matched.extend(found.into_iter().filter(wanted));
        if matched.len() >= offset + limit {
            break;
        }
    }
    matched.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
    Ok(matched.into_iter().skip(offset).take(limit).collect())
}

/// One session (live or ended) with its statements.
#[utoipa::path(get, path = "/api/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "session id")),
    responses((status = 200, body = SessionDetail), Failures))]
pub(crate) async fn show(
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

/// How long an instance holding a session has to answer a request to end it.
const REMOTE_END_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Ends a session another instance holds: asks it through the store and waits for its
/// answer. Its index record, for the change event.
async fn elsewhere(s: &ApiState, caller: &Caller, id: &str) -> Result<serde_json::Value, ApiError> {
    let store = &s.control.store;
    let record = store
        .get_session(id)
        .await?
        .filter(|r| r.ended_at.is_none() && *r.instance != *s.instance)
        .ok_or_else(|| ApiError::not_found(format!("no live session `{id}`")))?;
    store
        .request_session_end(id, &record.instance, caller.name())
        .await?;
    let until = std::time::Instant::now() + REMOTE_END_WAIT;
    while std::time::Instant::now() < until {
        match store.session_end_state(id).await? {
            Some(EndState::Done { ended: true }) => {
                return serde_json::to_value(&record)
                    .map_err(|e| ApiError::unavailable(e.to_string()));
            }
            Some(EndState::Done { ended: false }) => {
                return Err(ApiError::not_found(format!(
                    "session `{id}` is no longer live on instance `{}`",
                    record.instance
                )));
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    Err(ApiError::unavailable(format!(
        "instance `{}`, which holds session `{id}`, did not answer within {}s: it may be down (its sessions are ended when it starts again); the request stands",
        record.instance,
        REMOTE_END_WAIT.as_secs()
    )))
}

/// Ends a live session (admin), on whichever instance holds it.
#[utoipa::path(delete, path = "/api/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "session id")),
    responses((status = 204), Failures))]
pub(crate) async fn end(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let view = match s.registry.get(&id) {
        Some(view) => {
            let by = caller.name().to_owned();
            s.registry.end(&id, EndReason::Killed { by });
            serde_json::to_value(view).map_err(|e| ApiError::unavailable(e.to_string()))?
        }
        None => elsewhere(&s, &caller, &id).await?,
    };
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
