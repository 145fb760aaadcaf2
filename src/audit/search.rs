//! Reading events back out of the log files for auditors: the refusals and admin changes
//! (`GET /api/audit/events`, `portcullis audit events`). A byte search finds the lines of
//! the wanted kinds; only those are parsed.

use std::path::Path;

use serde_json::Value;

use super::chain;

/// What `events` looks for.
pub struct EventQuery<'a> {
    /// Event kinds, e.g. `auth_failed`; empty: every kind.
    pub kinds: &'a [String],
    pub user: Option<&'a str>,
    /// Unix seconds; events before it are skipped.
    pub since: i64,
    pub limit: usize,
}

/// The newest `limit` events matching `q`, oldest first.
pub fn events(dir: &Path, q: &EventQuery<'_>) -> std::io::Result<Vec<Value>> {
    let needles: Vec<Vec<u8>> = if q.kinds.is_empty() {
        vec![b"\"kind\":\"".to_vec()]
    } else {
        q.kinds
            .iter()
            .map(|k| format!("\"kind\":\"{k}\"").into_bytes())
            .collect()
    };
    let since_time =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(q.since.max(1) as u64 - 1);
    let mut found: std::collections::VecDeque<Value> = std::collections::VecDeque::new();
    for file in chain::log_files(dir)? {
        if std::fs::metadata(&file)?
            .modified()
            .is_ok_and(|m| m < since_time)
        {
            continue;
        }
        let bytes = std::fs::read(&file)?;
        for line in bytes.split(|b| *b == b'\n') {
            let wanted = needles
                .iter()
                .any(|n| memchr::memmem::find(line, n).is_some());
            if !wanted {
                continue;
            }
            let Ok(event) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            if matches(&event, q) {
                found.push_back(event);
                if found.len() > q.limit {
                    found.pop_front();
                }
            }
        }
    }
    Ok(found.into())
}

fn matches(event: &Value, q: &EventQuery<'_>) -> bool {
    let kind_ok = q.kinds.is_empty() || q.kinds.iter().any(|k| event["kind"] == k.as_str());
    let user_ok = q
        .user
        .is_none_or(|u| event["user"] == u || event["actor"] == u);
    let ts_ok = q.since <= 0
        || event["ts"].as_str().is_some_and(|ts| {
            time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
                .is_ok_and(|t| t.unix_timestamp() >= q.since)
        });
    kind_ok && user_ok && ts_ok
}
