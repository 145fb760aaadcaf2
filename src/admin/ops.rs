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

/// Counters shared by the listeners and read by `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub sessions_total: AtomicU64,
    pub sessions_active: AtomicU64,
    pub auth_failures_total: AtomicU64,
    pub access_denied_total: AtomicU64,
    pub audit_events_lost: AtomicU64,
}

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/api/config/reload", post(reload))
        .route("/api/changes", get(changes))
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
    let mut out = String::new();
    let mut line = |name: &str, kind: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    };
    line(
        "portcullis_snapshot_revision",
        "gauge",
        "Control-plane revision in use.",
        snap.revision as u64,
    );
    line(
        "portcullis_users",
        "gauge",
        "Users in the snapshot.",
        snap.users.len() as u64,
    );
    line(
        "portcullis_resource_roles",
        "gauge",
        "Resource roles in the snapshot.",
        snap.resource_roles.len() as u64,
    );
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    line(
        "portcullis_sessions_total",
        "counter",
        "Sessions started.",
        load(&m.sessions_total),
    );
    line(
        "portcullis_sessions_active",
        "gauge",
        "Sessions open now.",
        load(&m.sessions_active),
    );
    line(
        "portcullis_auth_failures_total",
        "counter",
        "Failed logins.",
        load(&m.auth_failures_total),
    );
    line(
        "portcullis_access_denied_total",
        "counter",
        "Refused by access control.",
        load(&m.access_denied_total),
    );
    line(
        "portcullis_audit_events_lost",
        "counter",
        "Monitoring-log events that could not be written.",
        load(&m.audit_events_lost),
    );
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
