//! Requests from other instances to end sessions this one holds (`DELETE
//! /api/sessions/{id}` made there): each is ended here, and the request answered once the
//! session is gone from the registry, or with "not live here".

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{EndReason, Gateway};

/// How often requests are looked for without an announcement (SQLite stores have none).
const CHECK: Duration = Duration::from_secs(1);
/// How long an ended session may take to leave the registry before the answer goes anyway.
const GONE_WAIT: Duration = Duration::from_secs(2);

pub fn spawn(gw: Arc<Gateway>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = gw.control.session_ends.notified() => {}
                _ = tick.tick() => {}
            }
            if let Err(e) = answer(&gw).await {
                tracing::warn!(error = %e, "could not read or answer requests to end sessions");
            }
        }
    })
}

async fn answer(gw: &Gateway) -> Result<(), crate::store::StoreError> {
    let store = &gw.control.store;
    for (id, by) in store.pending_session_ends(&gw.instance).await? {
        let ended = gw.registry.end(&id, EndReason::Killed { by });
        let until = Instant::now() + GONE_WAIT;
        while ended && gw.registry.get(&id).is_some() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        store.session_end_done(&id, ended).await?;
    }
    Ok(())
}
