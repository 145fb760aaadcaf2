//! Keeps the store's session index current, off the session's path: starts and ends go
//! over a channel to one task that writes them in order.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::audit::{Channel, Common, EndedBy, Event, Kind, Mode, Recorder};
use crate::store::{IndexWrite, SessionEnd, SessionRecord, Store};

/// The file under `store.data_dir` holding this instance's id.
const INSTANCE_FILE: &str = "instance-id";

/// Index writes waiting for the task; a burst is written in one transaction.
const BATCH: usize = 256;

/// After a small batch the task lets writes gather this long: each transaction costs its
/// begin, commit and WAL write, shared by however many writes it carries.
const BATCH_NAP: std::time::Duration = std::time::Duration::from_millis(5);

#[derive(Clone, Debug)]
pub struct SessionIndex {
    tx: mpsc::UnboundedSender<IndexWrite>,
    instance: Arc<str>,
}

impl SessionIndex {
    /// Starts the writer task; it ends when every `SessionIndex` is dropped.
    pub fn spawn(store: Store, instance: &str) -> (SessionIndex, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                if let Err(e) = store.index_writes(&batch).await {
                    // One bad write must not cost the others: write them one by one.
                    tracing::debug!(error = %e, "session index batch failed; writing one by one");
                    for w in &batch {
                        if let Err(e) = store.index_writes(std::slice::from_ref(w)).await {
                            tracing::warn!(error = %e, "session index write failed; the monitoring log still has the session");
                        }
                    }
                }
                let small = batch.len() < BATCH / 4;
                batch.clear();
                if small {
                    tokio::time::sleep(BATCH_NAP).await;
                }
            }
        });
        let instance = instance.into();
        (SessionIndex { tx, instance }, task)
    }

    pub fn started(&self, mut record: SessionRecord) {
        record.instance = self.instance.to_string();
        let _ = self.tx.send(IndexWrite::Started(Box::new(record)));
    }

    pub fn ended(&self, end: SessionEnd) {
        let _ = self.tx.send(IndexWrite::Ended(end));
    }
}

/// This instance's id: `instance` from the config, or made once (`first`: the host name
/// and a listener port) and kept in `data_dir`, so a restart knows its own sessions.
pub fn instance_id(
    data_dir: &Path,
    configured: Option<&str>,
    first: impl FnOnce() -> String,
) -> std::io::Result<String> {
    if let Some(id) = configured {
        return Ok(id.to_owned());
    }
    let path = data_dir.join(INSTANCE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    crate::fsutil::private_dir(data_dir)?;
    let id = first();
    crate::fsutil::write_private(&path, id.as_bytes())?;
    Ok(id)
}

/// Ends the sessions a crash (or SIGKILL) of this instance left open: each gets its one
/// `session_ended` (`ended_by: error`, with the statements the log holds) and its index
/// row is closed. Returns how many there were.
pub async fn close_orphans(
    store: &Store,
    recorder: &Recorder,
    instance: &str,
    audit_dir: &Path,
) -> crate::store::Result<usize> {
    let orphans = store.open_sessions(instance).await?;
    for s in &orphans {
        let dir = audit_dir.to_owned();
        let (id, since) = (s.id.clone(), s.started_at);
        let queries = tokio::task::spawn_blocking(move || {
            crate::audit::session_queries(&dir, &id, since).map(|q| q.len())
        })
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or(0) as u64;
        let error = "the gateway stopped without ending this session (crash or kill); \
                     statements after the last logged one are unknown";
        close(store, recorder, s, queries, error.to_owned()).await?;
    }
    Ok(orphans.len())
}

/// Ends the sessions a peer silent for `timeout_s` left open (in this instance's log: the
/// peer's holds their statements). Only the one peer that claims the silent instance does.
pub async fn close_for_silent(
    store: &Store,
    recorder: &Recorder,
    me: &str,
    timeout_s: i64,
) -> crate::store::Result<usize> {
    let before = crate::clock::now() - timeout_s;
    let mut n = 0;
    for peer in store.silent_instances(me, before).await? {
        if !store.claim_silent(&peer, before).await? {
            continue;
        }
        let open = store.open_sessions(&peer).await?;
        for s in &open {
            let error = format!(
                "instance `{peer}` was not seen for {timeout_s}s; ended by instance `{me}` (its statements are in that instance's log)"
            );
            close(store, recorder, s, 0, error).await?;
        }
        if !open.is_empty() {
            tracing::warn!(instance = %peer, sessions = open.len(), "ended the sessions of a silent instance");
        }
        n += open.len();
    }
    Ok(n)
}

/// One session's `session_ended` (an error, as said) and its index row closed.
async fn close(
    store: &Store,
    recorder: &Recorder,
    s: &crate::store::SessionRecord,
    queries: u64,
    error: String,
) -> crate::store::Result<()> {
    let common = Common {
        session_id: s.id.clone(),
        user: s.user.clone(),
        resource_role: s.resource_role.clone(),
        resource: s.resource.clone(),
        protocol: s.protocol.parse().unwrap_or(Channel::Postgres),
        mode: s.mode.parse().unwrap_or(Mode::Native),
        client_addr: s.client_addr.clone(),
        application_name: s.application_name.clone(),
        ..Common::default()
    };
    let now = crate::clock::now();
    let event = Event {
        common: Arc::new(common),
        kind: Kind::SessionEnded {
            duration_ms: (now - s.started_at).max(0) as u64 * 1000,
            bytes_in: 0,
            bytes_out: 0,
            queries,
            ended_by: EndedBy::Error,
            error: Some(error.clone()),
        },
    };
    recorder.emit(event).await;
    store
        .session_ended(&SessionEnd {
            id: s.id.clone(),
            ended_at: now,
            statements: queries as i64,
            bytes_in: 0,
            bytes_out: 0,
            ended_by: "error".into(),
            error: Some(error),
            application_name: None,
        })
        .await
}
