//! Process-wide counters, read by `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub sessions_total: AtomicU64,
    pub sessions_active: AtomicU64,
    pub auth_failures_total: AtomicU64,
    pub access_denied_total: AtomicU64,
    pub connections_refused_total: AtomicU64,
    pub queries_total: AtomicU64,
    /// Sessions served by a kept upstream connection (`limits.idle_upstreams`).
    pub upstreams_reused_total: AtomicU64,
    /// Cancel requests dropped over `limits.cancel_requests_per_address`.
    pub cancels_refused_total: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
