//! Operations endpoints: `/healthz`, `/readyz`, `/metrics` (Prometheus text),
//! `/openapi.json`, `POST /api/config/reload`, `GET /api/changes` (the admin-change record).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Deserialize;

use super::{ApiError, ApiState, Caller};
use crate::store::ChangeRecord;

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/api/config/reload", post(reload))
        .route("/api/changes", get(changes))
        .route("/api/audit/verify", get(verify))
}

async fn ready(State(s): State<ApiState>) -> Result<&'static str, ApiError> {
    s.control
        .store
        .ping()
        .await
        .map_err(|e| ApiError::unavailable(format!("store unreachable: {e}")))?;
    Ok("ready\n")
}

async fn metrics(State(s): State<ApiState>) -> impl IntoResponse {
    let snap = s.control.snapshot();
    let m = &s.metrics;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let rows: [(&str, &str, &str, u64); 13] = [
        (
            "portcullis_snapshot_revision",
            "gauge",
            "Control-plane revision in use.",
            snap.revision as u64,
        ),
        (
            "portcullis_users",
            "gauge",
            "Users in the snapshot.",
            snap.users.len() as u64,
        ),
        (
            "portcullis_resource_roles",
            "gauge",
            "Resource roles in the snapshot.",
            snap.resource_roles.len() as u64,
        ),
        (
            "portcullis_sessions_total",
            "counter",
            "Sessions started.",
            load(&m.sessions_total),
        ),
        (
            "portcullis_sessions_active",
            "gauge",
            "Sessions open now.",
            load(&m.sessions_active),
        ),
        (
            "portcullis_auth_failures_total",
            "counter",
            "Failed logins.",
            load(&m.auth_failures_total),
        ),
        (
            "portcullis_access_denied_total",
            "counter",
            "Logins refused by access control.",
            load(&m.access_denied_total),
        ),
        (
            "portcullis_connections_refused_total",
            "counter",
            "Connections refused at the cap.",
            load(&m.connections_refused_total),
        ),
        (
            "portcullis_queries_total",
            "counter",
            "Statements observed.",
            load(&m.queries_total),
        ),
        (
            "portcullis_upstreams_reused_total",
            "counter",
            "Sessions served by a kept upstream connection.",
            load(&m.upstreams_reused_total),
        ),
        (
            "portcullis_upstreams_kept",
            "gauge",
            "Upstream connections kept for the next session.",
            s.pool.len() as u64,
        ),
        (
            "portcullis_live_sessions",
            "gauge",
            "Sessions in the registry.",
            s.sessions.len() as u64,
        ),
        (
            "audit_events_lost",
            "counter",
            "Monitoring-log events that could not be written.",
            s.recorder.as_ref().map_or(0, |r| r.lost()),
        ),
    ];
    let mut out = String::new();
    for (name, kind, help, v) in rows {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
}

async fn reload(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require_admin()?;
    s.control.reload_config().await.map_err(|e| {
        ApiError::invalid(format!(
            "config not reloaded, the old one stays in force: {e}"
        ))
    })?;
    let revision = s.control.snapshot().revision;
    Ok(Json(
        serde_json::json!({ "reloaded": true, "revision": revision }),
    ))
}

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<i64>,
}

async fn changes(
    State(s): State<ApiState>,
    caller: Caller,
    Query(l): Query<Limit>,
) -> Result<Json<Vec<ChangeRecord>>, ApiError> {
    if !caller.is_reader() {
        return Err(ApiError::forbidden(
            "this requires the admin or auditor role",
        ));
    }
    let limit = l.limit.unwrap_or(100).clamp(1, 10_000);
    Ok(Json(s.control.store.list_changes(limit).await?))
}

/// `GET /api/audit/verify`: the hash chain of this instance's monitoring log.
pub async fn verify(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<crate::audit::VerifyReport>, ApiError> {
    if !caller.is_reader() {
        return Err(ApiError::forbidden(
            "this requires the admin or auditor role",
        ));
    }
    let dir = s.control.config().audit.dir.clone();
    let report = tokio::task::spawn_blocking(move || crate::audit::verify_dir(&dir))
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .map_err(|e| ApiError::unavailable(format!("cannot read the monitoring log: {e}")))?;
    Ok(Json(report))
}
