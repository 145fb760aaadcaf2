//! When the writer signs the chain head, and where the head is anchored outside the log:
//! a `checkpoint` event every `audit.checkpoint_interval` or `audit.checkpoint_events`
//! (whichever comes first, and at a clean shutdown), signed (`signing`); each checkpoint's
//! own line (seq, hash) is then written to the store (`audit_anchors`), so a log that was
//! cut short or rewritten is found against it — at the next start (said loudly and
//! recorded as `log_truncated`) and by `GET /api/audit/verify`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::signing::CheckpointSigner;
use super::{Channel, Common, Event, Kind, Mode};

/// A chain head as anchored outside the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub seq: u64,
    pub hash: String,
}

/// The writer's checkpoint schedule and where anchors go.
pub struct Checkpoints {
    pub signer: Arc<CheckpointSigner>,
    pub instance: String,
    pub every: Duration,
    pub every_events: u64,
    /// Anchors for the store (written by an async task).
    pub anchors: tokio::sync::mpsc::UnboundedSender<Anchor>,
    /// The anchor the store held at start, checked against the log on resume.
    pub anchored: Option<Anchor>,
    pub(super) since: u64,
    pub(super) last: Instant,
}

impl Checkpoints {
    pub fn new(
        signer: Arc<CheckpointSigner>,
        instance: &str,
        (every, every_events): (Duration, u64),
        anchors: tokio::sync::mpsc::UnboundedSender<Anchor>,
        anchored: Option<Anchor>,
    ) -> Checkpoints {
        Checkpoints {
            signer,
            instance: instance.to_owned(),
            every,
            every_events,
            anchors,
            anchored,
            since: 0,
            last: Instant::now(),
        }
    }

    /// A checkpoint is due: events since the last, and enough of them or time.
    pub(super) fn due(&self) -> bool {
        self.since > 0 && (self.since >= self.every_events || self.last.elapsed() >= self.every)
    }

    fn common(&self) -> Arc<Common> {
        Arc::new(Common {
            protocol: Channel::Http,
            mode: Mode::Admin,
            ..Common::default()
        })
    }

    /// The signed checkpoint of the chain head (`seq`, `hash`).
    pub(super) fn event(&mut self, seq: u64, hash: &str) -> Event {
        self.since = 0;
        self.last = Instant::now();
        Event {
            common: self.common(),
            kind: Kind::Checkpoint {
                instance: self.instance.clone(),
                head_seq: seq,
                head_hash: hash.to_owned(),
                signature: self.signer.sign(&self.instance, seq, hash),
                key_id: self.signer.key_id(),
            },
        }
    }

    /// What a resumed chain says against the store's anchor: `None` when the log reaches
    /// it; otherwise the event that records the cut.
    pub(super) fn resumed(&self, found: Option<&str>, last_seq: u64) -> Option<Event> {
        let anchor = self.anchored.as_ref()?;
        let what = match found {
            Some(hash) if hash == anchor.hash => return None,
            Some(_) => "the line at the anchored seq has another hash: the log was rewritten",
            None if last_seq < anchor.seq => {
                "the log ends before the anchored seq: it was cut short"
            }
            None => "the anchored line is missing: the log was rewritten",
        };
        tracing::error!(
            anchored_seq = anchor.seq,
            last_seq,
            "MONITORING LOG TAMPERED WITH: {what}; the gateway goes on from what is on disk and records the cut"
        );
        Some(Event {
            common: self.common(),
            kind: Kind::LogTruncated {
                anchored_seq: anchor.seq,
                anchored_hash: anchor.hash.clone(),
                found_seq: last_seq,
                reason: what.to_owned(),
            },
        })
    }
}
