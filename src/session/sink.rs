//! Where a relay's finished statements go: `query` events (waiting when the log is
//! behind), the statement counter, the session's application name as the client changes
//! it; and how a relay's end becomes the session's `End`.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

use super::lifecycle::End;
use super::registry::EndReason;
use crate::audit::{Common, EndedBy, Event, Kind, Msg, Recorder, Status};
use crate::metrics::Metrics;
use crate::relay::{Counters, Ended, Outcome, Sink};

/// What a relay needs from the session.
pub struct RelayLink {
    pub common: Arc<Common>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Becomes `Some` when the session must end (admin kill, lost access, shutdown).
    pub end: watch::Receiver<Option<EndReason>>,
    /// `audit.statements`: write a `query` event per statement.
    pub statements: bool,
    /// `audit.durability = "acknowledged"`: completions wait for their events.
    pub acknowledged: bool,
    /// Statements so far, as the registry shows a live session.
    pub counted: Arc<std::sync::atomic::AtomicU64>,
    /// The session's guardrails, for its relay or runner to take.
    pub guard: Option<crate::guardrail::Guard>,
    /// The session's masking rules (`None`: nothing is masked).
    pub masker: Option<crate::masking::Masker>,
    /// The upstream database (a MySQL session's unqualified tables are in it).
    pub database: String,
}

impl RelayLink {
    /// Resolves with the message for the client once the session is told to end.
    pub fn stop_signal(&self) -> impl Future<Output = String> + Send + 'static {
        let mut end = self.end.clone();
        async move {
            loop {
                if let Some(reason) = end.borrow_and_update().clone() {
                    return reason.message();
                }
                if end.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// How the relay ended (`EventSink::end_of` adds what the client changed).
    fn end_of(&self, ended: Ended, counters: &Counters) -> End {
        let (ended_by, error) = match ended {
            Ended::ClientTerminated | Ended::Held | Ended::ClientClosed | Ended::Yielded(_) => {
                (EndedBy::Client, None)
            }
            Ended::UpstreamClosed(code) => (
                EndedBy::Upstream,
                code.map(|c| format!("upstream ended the session ({c})")),
            ),
            Ended::Stopped => {
                let reason = self.end.borrow().clone();
                (
                    reason.as_ref().map_or(EndedBy::Killed, |r| r.ended_by()),
                    reason.map(|r| format!("{r:?}")),
                )
            }
            Ended::Failed(e) => (EndedBy::Error, Some(e)),
        };
        End {
            ended_by,
            error,
            bytes_in: counters.bytes_in,
            bytes_out: counters.bytes_out,
            queries: counters.queries,
            application_name: None,
        }
    }
}

/// Turns finished statements into `query` events (waiting when the log is behind).
pub struct EventSink<'a> {
    link: &'a RelayLink,
    /// The session's fields as its events carry them: the link's, until the client sets
    /// another application name.
    common: Arc<Common>,
    /// Events not yet confirmed written (`acknowledged` durability).
    unwritten: Vec<tokio::sync::oneshot::Receiver<()>>,
    /// Events the writer had no room for yet, in order (`flush` hands them over).
    held: VecDeque<Msg>,
}

impl<'a> EventSink<'a> {
    pub fn new(link: &'a RelayLink) -> Self {
        EventSink {
            link,
            common: Arc::clone(&link.common),
            unwritten: Vec::new(),
            held: VecDeque::new(),
        }
    }

    /// How the relay ended, for `session_ended`, with the application name the client set
    /// during the session, if it set one.
    pub fn end_of(&self, ended: Ended, counters: &Counters) -> End {
        let mut end = self.link.end_of(ended, counters);
        if !Arc::ptr_eq(&self.common, &self.link.common) {
            end.application_name = Some(self.common.application_name.clone());
        }
        end
    }
}

impl EventSink<'_> {
    fn lost(&self) {
        tracing::warn!(session_id = %self.common.session_id, "a query event could not be handed to the monitoring log");
    }
}

impl Sink for EventSink<'_> {
    fn outcome(&mut self, o: Outcome) {
        if let Some(name) = &o.application_name
            && **name != *self.common.application_name
        {
            self.common = Arc::new(self.common.renamed(name));
        }
        (self.link.counted).fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !self.link.statements {
            Metrics::inc(&self.link.metrics.queries_total);
            return;
        }
        let blocked = o.guard.as_ref().is_some_and(|d| d.block);
        let status = if blocked {
            Status::Blocked
        } else if o.error_code.is_some() {
            Status::Error
        } else {
            Status::Ok
        };
        let event = Event {
            common: Arc::clone(&self.common),
            kind: Kind::Query {
                statement: o.statement,
                op: o.op,
                params: o.params,
                duration_us: o.duration_us,
                rows: o.rows,
                status,
                error_code: o.error_code,
                guardrails: o.guard.map(|d| Arc::clone(&d.rules)),
                masked: o.masked,
                cut: o.cut,
            },
        };
        let written = self.link.acknowledged.then(|| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.unwritten.push(rx);
            tx
        });
        Metrics::inc(&self.link.metrics.queries_total);
        if self
            .link
            .recorder
            .offer(event, written, &mut self.held)
            .is_err()
        {
            self.lost();
        }
    }

    async fn flush(&mut self) {
        if !self.held.is_empty() && self.link.recorder.hand_over(&mut self.held).await.is_err() {
            self.lost();
        }
    }

    fn holds_completions(&self) -> bool {
        self.link.acknowledged
    }

    async fn settled(&mut self) {
        for rx in self.unwritten.drain(..) {
            // An error means the event was lost (`on_failure = "continue"`, counted there):
            // the client is not held forever for it.
            let _ = rx.await;
        }
    }
}
