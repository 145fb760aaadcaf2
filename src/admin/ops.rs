//! Operations endpoints: `/healthz`, `/readyz`, `/metrics` (Prometheus text),
//! `/openapi.json`, `POST /api/config/reload`, `GET /api/changes` (the admin-change record).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiState, Caller, Failures};
use crate::api::Reloaded;
use crate::store::ChangeRecord;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
        .routes(routes!(reload))
        .routes(routes!(changes))
        .routes(routes!(verify))
        .routes(routes!(events))
        .routes(routes!(public_key))
}

/// Which events `GET /api/audit/events` answers.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Comma-separated kinds, e.g. `auth_failed,access_denied,admin_change` (default:
    /// those three).
    kind: Option<String>,
    /// Events of this user (or, for admin changes, by this actor).
    user: Option<String>,
    /// Unix seconds.
    since: Option<i64>,
    /// The newest this many (default 100, at most 10 000).
    limit: Option<usize>,
}

/// Events from this instance's monitoring log, oldest first: by default the refusals and
/// admin changes an auditor reads (readers). `auth_failed` events carry the real reason.
#[utoipa::path(get, path = "/api/audit/events", tag = "monitoring log", params(EventFilter),
    responses((status = 200, body = Vec<serde_json::Value>), Failures))]
pub(crate) async fn events(
    State(s): State<ApiState>,
    caller: Caller,
    Query(f): Query<EventFilter>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    if !caller.is_reader() {
        return Err(ApiError::forbidden(
            "this requires the admin or auditor role",
        ));
    }
    const KNOWN: &[&str] = &[
        "session_started",
        "session_ended",
        "query",
        "auth_failed",
        "access_denied",
        "admin_change",
        "access_request",
        "checkpoint",
        "log_truncated",
    ];
    let kinds: Vec<String> = f
        .kind
        .as_deref()
        .unwrap_or("auth_failed,access_denied,admin_change")
        .split(',')
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .collect();
    if let Some(bad) = kinds.iter().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::invalid(format!(
            "unknown event kind `{bad}`: kinds are {}",
            KNOWN.join(", ")
        )));
    }
    let dir = s.control.config().audit.dir.clone();
    let limit = f.limit.unwrap_or(100).clamp(1, 10_000);
    let found = tokio::task::spawn_blocking(move || {
        let q = crate::audit::search::EventQuery {
            kinds: &kinds,
            user: f.user.as_deref(),
            since: f.since.unwrap_or(0),
            limit,
        };
        crate::audit::search::events(&dir, &q)
    })
    .await
    .map_err(|e| ApiError::unavailable(e.to_string()))?
    .map_err(|e| ApiError::unavailable(format!("cannot read the monitoring log: {e}")))?;
    Ok(Json(found))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, body = String, content_type = "text/plain")))]
pub(crate) async fn health() -> &'static str {
    "ok\n"
}

/// The gateway can make decisions: its store answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, body = String, content_type = "text/plain"),
        (status = 503, body = super::error::ErrorBody)))]
pub(crate) async fn ready(State(s): State<ApiState>) -> Result<&'static str, ApiError> {
    s.control
        .store
        .ping()
        .await
        .map_err(|e| ApiError::unavailable(format!("store unreachable: {e}")))?;
    Ok("ready\n")
}

/// Counters and gauges in the Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(State(s): State<ApiState>) -> impl IntoResponse {
    let snap = s.control.snapshot();
    let m = &s.metrics;
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let rows: [(&str, &str, &str, u64); 14] = [
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
            "portcullis_cancel_requests_refused_total",
            "counter",
            "Cancel requests dropped over limits.cancel_requests_per_address.",
            load(&m.cancels_refused_total),
        ),
        (
            "portcullis_upstreams_kept",
            "gauge",
            "Upstream connections kept for the next session.",
            s.upstreams.kept() as u64,
        ),
        (
            "portcullis_live_sessions",
            "gauge",
            "Sessions in the registry.",
            s.registry.len() as u64,
        ),
        (
            "audit_events_lost",
            "counter",
            "Monitoring-log events that could not be written.",
            s.recorder.lost(),
        ),
    ];
    let mut out = String::new();
    let written = s.recorder.written_seq();
    let shipped = s
        .shipping
        .as_ref()
        .map(|st| shipping_rows(st, written))
        .unwrap_or_default();
    for (name, kind, help, v) in rows.into_iter().chain(shipped) {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// The NATS shipper's rows: the last seq acknowledged, how many events and seconds it
/// lags behind the files.
fn shipping_rows(
    st: &crate::audit::ship::ShipState,
    written: u64,
) -> Vec<(&'static str, &'static str, &'static str, u64)> {
    let acked = st.acked.load(Ordering::Relaxed);
    let written = written.max(st.written.load(Ordering::Relaxed));
    let oldest = st.oldest_waiting.load(Ordering::Relaxed);
    let now = crate::clock::now().max(0) as u64;
    vec![
        (
            "audit_nats_acked_seq",
            "gauge",
            "The last monitoring-log seq NATS acknowledged.",
            acked,
        ),
        (
            "audit_nats_lag_events",
            "gauge",
            "Events written but not yet acknowledged by NATS.",
            written.saturating_sub(acked),
        ),
        (
            "audit_nats_lag_seconds",
            "gauge",
            "Age of the oldest event not yet acknowledged by NATS.",
            if oldest == 0 {
                0
            } else {
                now.saturating_sub(oldest)
            },
        ),
    ]
}

/// This document, generated from the handlers.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", security(()),
    responses((status = 200, body = Object, content_type = "application/json")))]
pub(crate) async fn openapi() -> impl IntoResponse {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(|| super::openapi().to_pretty_json().unwrap_or_default());
    ([(header::CONTENT_TYPE, "application/json")], doc.as_str())
}

/// The public key that verifies this gateway's checkpoints (hex Ed25519), for auditors
/// who check a copy of the log offline (`portcullis audit verify --public-key FILE`).
#[utoipa::path(get, path = "/api/audit/public-key", tag = "monitoring log",
    responses((status = 200, body = String, content_type = "text/plain"), Failures))]
pub(crate) async fn public_key(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<String, ApiError> {
    if !caller.is_reader() {
        return Err(ApiError::forbidden(
            "this requires the admin or auditor role",
        ));
    }
    Ok(format!("{}\n", s.signer.public_hex()))
}

/// Re-reads the config file; a bad file keeps the old config (admin).
#[utoipa::path(post, path = "/api/config/reload", tag = "operations",
    responses((status = 200, body = Reloaded), Failures))]
pub(crate) async fn reload(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Reloaded>, ApiError> {
    caller.require_admin()?;
    s.control.reload_config().await.map_err(|e| {
        ApiError::invalid(format!(
            "config not reloaded, the old one stays in force: {e}"
        ))
    })?;
    let revision = s.control.snapshot().revision;
    Ok(Json(Reloaded {
        reloaded: true,
        revision,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Limit {
    limit: Option<i64>,
}

/// Recorded admin changes, newest first (readers).
#[utoipa::path(get, path = "/api/changes", tag = "operations", params(Limit),
    responses((status = 200, body = Vec<ChangeRecord>), Failures))]
pub(crate) async fn changes(
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

/// Checks this instance's monitoring log: the hash chain, every checkpoint's signature,
/// and that the log reaches the head anchored in the store (readers).
#[utoipa::path(get, path = "/api/audit/verify", tag = "monitoring log",
    responses((status = 200, body = crate::audit::VerifyReport), Failures))]
pub async fn verify(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<crate::audit::VerifyReport>, ApiError> {
    if !caller.is_reader() {
        return Err(ApiError::forbidden(
            "this requires the admin or auditor role",
        ));
    }
    let config = s.control.config();
    // The anchor first: a checkpoint written while the files are read only adds lines.
    let anchor = s.control.store.anchor(&s.instance).await?;
    let checks = crate::audit::Checks {
        public_key: Some(s.signer.verifying_key()),
        max_unsigned: crate::audit::max_unsigned(config.audit.checkpoint_events),
        anchor,
    };
    let dir = config.audit.dir.clone();
    let report = tokio::task::spawn_blocking(move || crate::audit::verify_with(&dir, &checks))
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?
        .map_err(|e| ApiError::unavailable(format!("cannot read the monitoring log: {e}")))?;
    Ok(Json(report))
}
