//! Keeps the store's session index current, off the session's path: starts and ends go
//! over a channel to one task that writes them in order.

use tokio::sync::mpsc;

use crate::store::{SessionEnd, SessionRecord, Store};

enum Msg {
    Started(Box<SessionRecord>),
    Ended(SessionEnd),
}

#[derive(Clone, Debug)]
pub struct SessionIndex {
    tx: mpsc::UnboundedSender<Msg>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("index message")
    }
}

impl SessionIndex {
    /// Starts the writer task; it ends when every `SessionIndex` is dropped.
    pub fn spawn(store: Store) -> (SessionIndex, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                let result = match &msg {
                    Msg::Started(s) => store.session_started(s).await,
                    Msg::Ended(e) => store.session_ended(e).await,
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "session index write failed; the monitoring log still has the session");
                }
            }
        });
        (SessionIndex { tx }, task)
    }

    pub fn started(&self, record: SessionRecord) {
        let _ = self.tx.send(Msg::Started(Box::new(record)));
    }

    pub fn ended(&self, end: SessionEnd) {
        let _ = self.tx.send(Msg::Ended(end));
    }
}
