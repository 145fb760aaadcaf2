//! The monitoring log (SPEC §6): session events go from sessions to one writer task over
//! a bounded channel (back-pressure, never silent loss), and the writer appends them as
//! hash-chained JSON Lines under `audit.dir`. `verify` checks the chain end to end.
//!
//! Sessions build `Event` values (no JSON on the relay task); the writer adds `seq`, `ts`,
//! `prev_hash` and `hash`.

pub mod chain;
pub mod checkpoint;
pub mod encode;
mod fields;
pub mod search;
pub mod ship;
pub mod signing;
mod writer;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::mpsc;

pub use chain::{Checks, VerifyReport, verify_dir, verify_with};
pub use fields::{Channel, Cut, EndedBy, Mode, Op, Status};
pub use writer::{WriterHandle, spawn_writer};

/// Fields every event of a session carries.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Common {
    /// The fields as JSON, made once per session by the writer.
    #[serde(skip)]
    pub(crate) json: std::sync::OnceLock<String>,
    pub session_id: String,
    pub user: String,
    pub groups: Vec<String>,
    pub resource_role: String,
    pub resource: String,
    pub protocol: Channel,
    pub mode: Mode,
    pub client_addr: String,
    pub application_name: String,
    pub tls: bool,
}

impl Common {
    /// This session's fields as a JSON object, serialized once.
    pub fn json(&self) -> &str {
        self.json
            .get_or_init(|| serde_json::to_string(self).unwrap_or_else(|_| "{}".into()))
    }

    pub fn new(session_id: &str, protocol: Channel, client: SocketAddr) -> Common {
        Common {
            session_id: session_id.to_owned(),
            protocol,
            mode: Mode::Native,
            client_addr: client.to_string(),
            ..Common::default()
        }
    }

    /// The same session under the application name the client set since it logged in.
    pub fn renamed(&self, application_name: &str) -> Common {
        Common {
            json: std::sync::OnceLock::new(),
            application_name: application_name.to_owned(),
            ..self.clone()
        }
    }
}

/// The runbook a session ran, as reviewed: its name and its file's SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunbookRef {
    pub name: String,
    pub sha256: String,
}

/// What happened: the kind-specific fields of SPEC §6.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    SessionStarted {
        upstream_user: String,
        database: String,
        /// The client's startup settings forwarded upstream (PostgreSQL parameters and
        /// `options` settings).
        #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        parameters: std::collections::BTreeMap<String, String>,
        /// A runbook run: the runbook's name and its file's SHA-256.
        #[serde(skip_serializing_if = "Option::is_none")]
        runbook: Option<RunbookRef>,
    },
    Query {
        statement: Arc<str>,
        op: Op,
        #[serde(skip_serializing_if = "Option::is_none")]
        params: Option<Arc<[Option<String>]>>,
        duration_us: u64,
        rows: u64,
        status: Status,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_code: Option<String>,
        /// The guardrails that matched (`status: "blocked"` when one blocked it).
        #[serde(skip_serializing_if = "Option::is_none")]
        guardrails: Option<Arc<[Box<str>]>>,
        /// The columns masked in its results (`schema.table.column`; `*`: every value,
        /// the result's columns being unknown). Never the values.
        #[serde(skip_serializing_if = "Option::is_none")]
        masked: Option<Arc<[Arc<str>]>>,
        /// The statement was cut (`statement_truncated`, `statement_length`,
        /// `statement_sha256`).
        #[serde(flatten, serialize_with = "fields::cut_fields")]
        cut: Option<Arc<Cut>>,
    },
    SessionEnded {
        duration_ms: u64,
        bytes_in: u64,
        bytes_out: u64,
        queries: u64,
        ended_by: EndedBy,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    AuthFailed {
        reason: String,
    },
    AccessDenied {
        reason: String,
    },
    /// The chain head (`head_seq`, `head_hash`: the line before this one) signed with the
    /// gateway's checkpoint key.
    Checkpoint {
        instance: String,
        head_seq: u64,
        head_hash: String,
        signature: String,
        key_id: String,
    },
    /// An access request changed (SPEC §6): created, a vote, approved, denied, expired,
    /// revoked, cancelled, executed, break-glass.
    AccessRequest {
        request_id: String,
        rule: String,
        request_kind: crate::model::RequestKind,
        resource_role: String,
        requester: String,
        state: String,
        /// Who made the change (the requester, an approver, an admin; `gateway` for an
        /// expiry).
        by: String,
        #[serde(skip_serializing_if = "String::is_empty")]
        reason: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        break_glass: bool,
    },
    /// At start, the log did not reach the head anchored in the store.
    LogTruncated {
        anchored_seq: u64,
        anchored_hash: String,
        found_seq: u64,
        reason: String,
    },
    AdminChange {
        actor: String,
        action: String,
        object: String,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    },
}

#[derive(Clone, Debug, Serialize)]
pub struct Event {
    #[serde(flatten)]
    pub common: Arc<Common>,
    #[serde(flatten)]
    pub kind: Kind,
}

/// The most lines a log written with `checkpoint_events` may hold after its last
/// checkpoint: the schedule, plus a writer batch that crossed it.
pub fn max_unsigned(checkpoint_events: u64) -> u64 {
    checkpoint_events + writer::BATCH as u64 + 1
}

/// The sessions' handle on the monitoring log. Cloning is cheap.
#[derive(Clone, Debug)]
pub struct Recorder {
    tx: mpsc::Sender<Msg>,
    lost: Arc<AtomicU64>,
    /// False while the writer cannot write (`on_failure = "block"`).
    healthy: Arc<std::sync::atomic::AtomicBool>,
    /// The seq of the last line written to the files (flushed).
    written: Arc<AtomicU64>,
}

/// What travels to the writer: events (with, for `audit.durability = "acknowledged"`, who
/// to tell once the event is written), then one `Close` at shutdown.
#[derive(Debug)]
pub enum Msg {
    Event(Event, Option<Written>),
    Close,
}

/// Told (by the writer) once an event is in the file (and synced, with `fsync =
/// "always"`); dropped unsent if it was lost (`on_failure = "continue"`).
pub type Written = tokio::sync::oneshot::Sender<()>;

#[derive(Debug, thiserror::Error)]
#[error("the monitoring log is not accepting events")]
pub struct Closed;

impl Recorder {
    /// Hands an event to the writer; waits only when the writer is behind (back-pressure).
    pub async fn record(&self, event: Event) -> Result<(), Closed> {
        self.send(event, None).await
    }

    /// Hands an event over without waiting, in order after those `held` keeps: what the
    /// writer has no room for yet joins `held`, for `hand_over`. `written` is told once the
    /// event is written (`audit.durability = "acknowledged"`: the writer answers a whole
    /// batch after one write).
    pub fn offer(
        &self,
        event: Event,
        written: Option<Written>,
        held: &mut VecDeque<Msg>,
    ) -> Result<(), Closed> {
        let msg = Msg::Event(event, written);
        if !held.is_empty() {
            held.push_back(msg);
            return Ok(());
        }
        match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(msg)) => {
                held.push_back(msg);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.lost.fetch_add(1, Ordering::Relaxed);
                Err(Closed)
            }
        }
    }

    /// Hands over what `offer` held, waiting while the writer is behind (back-pressure).
    /// Cancel-safe: an event leaves `held` only once handed over.
    pub async fn hand_over(&self, held: &mut VecDeque<Msg>) -> Result<(), Closed> {
        while !held.is_empty() {
            let Ok(permit) = self.tx.reserve().await else {
                self.lost.fetch_add(held.len() as u64, Ordering::Relaxed);
                held.clear();
                return Err(Closed);
            };
            if let Some(msg) = held.pop_front() {
                permit.send(msg);
            }
        }
        Ok(())
    }

    async fn send(&self, event: Event, written: Option<Written>) -> Result<(), Closed> {
        match self.tx.try_send(Msg::Event(event, written)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(event)) => {
                self.tx.send(event).await.map_err(|_| Closed)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.lost.fetch_add(1, Ordering::Relaxed);
                Err(Closed)
            }
        }
    }

    /// `record`, saying so in the gateway's log when the event could not be handed over (the
    /// recorder has counted it lost).
    pub async fn emit(&self, event: Event) {
        if let Err(e) = self.record(event).await {
            tracing::warn!(error = %e, "an event could not be handed to the monitoring log");
        }
    }

    /// From a context that cannot wait (a destructor): hands the event to a task.
    pub fn record_detached(&self, event: Event) {
        let this = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move { this.emit(event).await });
            }
            Err(_) => {
                if self.tx.try_send(Msg::Event(event, None)).is_err() {
                    self.lost.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Whether the log is being written; new sessions are refused while it is not.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// The seq of the last line written to the files.
    pub fn written_seq(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Events that could not be written (only with `on_failure = "continue"`).
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

/// The `query` events of one session, in order, read from the log files (only the
/// statement fields, with the guardrails that matched). Files last written before the
/// session started (`since`, Unix seconds) are skipped unread, and reading stops at the
/// session's `session_ended`.
pub fn session_queries(
    dir: &std::path::Path,
    session_id: &str,
    since: i64,
) -> std::io::Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    let needle = format!("\"session_id\":\"{session_id}\"");
    let finder = memchr::memmem::Finder::new(needle.as_bytes());
    for file in written_since(dir, since)? {
        let bytes = std::fs::read(file)?;
        for line in lines_with(&bytes, &finder) {
            let Ok(serde_json::Value::Object(mut o)) = serde_json::from_slice(line) else {
                continue;
            };
            match o.get("kind").and_then(|k| k.as_str()) {
                // Nothing of the session comes after its end: the rest of the log is not read.
                Some("session_ended") => return Ok(out),
                Some("query") => {}
                _ => continue,
            }
            let keep = [
                "seq",
                "ts",
                "statement",
                "op",
                "params",
                "duration_us",
                "rows",
                "status",
                "error_code",
                "guardrails",
                "masked",
            ];
            o.retain(|k, _| keep.contains(&k.as_str()));
            out.push(serde_json::Value::Object(o));
        }
    }
    Ok(out)
}

/// The log files last written at or after `since` (Unix seconds), oldest first.
fn written_since(dir: &std::path::Path, since: i64) -> std::io::Result<Vec<std::path::PathBuf>> {
    let since = std::time::UNIX_EPOCH + std::time::Duration::from_secs(since.max(1) as u64 - 1);
    let mut out = Vec::new();
    for file in chain::log_files(dir)? {
        if !std::fs::metadata(&file)?
            .modified()
            .is_ok_and(|m| m < since)
        {
            out.push(file);
        }
    }
    Ok(out)
}

/// The lines of `bytes` that `finder` finds in, in order, each once.
fn lines_with<'a>(
    bytes: &'a [u8],
    finder: &'a memchr::memmem::Finder<'a>,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut at = 0;
    std::iter::from_fn(move || {
        let hit = at + finder.find(bytes.get(at..)?)?;
        let start = memchr::memrchr(b'\n', &bytes[..hit]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &bytes[hit..]).map_or(bytes.len(), |i| hit + i);
        at = end;
        Some(&bytes[start..end])
    })
}

/// The `session_id` of a log line, read without parsing it (the writer puts it as
/// `"session_id":"…"`, a uuid that needs no escaping).
fn session_of(line: &[u8]) -> Option<&str> {
    const KEY: &[u8] = b"\"session_id\":\"";
    let from = memchr::memmem::find(line, KEY)? + KEY.len();
    let len = memchr::memchr(b'"', &line[from..])?;
    std::str::from_utf8(&line[from..from + len]).ok()
}

/// The sessions whose statements contain `text` (case-sensitive, as written), newest
/// last, at most `limit`: read from the log files written since `since` (Unix seconds).
/// A byte search finds the candidate lines; only those are parsed.
pub fn sessions_with(
    dir: &std::path::Path,
    text: &str,
    since: i64,
    limit: usize,
) -> std::io::Result<Vec<String>> {
    let mut found: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // The text as it appears inside a JSON string.
    let escaped = serde_json::to_string(text).unwrap_or_default();
    let needle = escaped.trim_matches('"').as_bytes().to_vec();
    let finder = memchr::memmem::Finder::new(&needle);
    for file in written_since(dir, since)? {
        let bytes = std::fs::read(&file)?;
        for raw in lines_with(&bytes, &finder) {
            // A session already found needs no second look (the common case when the text
            // is in many of its statements).
            if session_of(raw).is_some_and(|id| seen.contains(id)) {
                continue;
            }
            let Ok(line) = serde_json::from_slice::<serde_json::Value>(raw) else {
                continue;
            };
            let matches = line["kind"] == "query"
                && line["statement"].as_str().is_some_and(|s| s.contains(text));
            if let (true, Some(id)) = (matches, line["session_id"].as_str())
                && seen.insert(id.to_owned())
            {
                found.push(id.to_owned());
            }
        }
    }
    if found.len() > limit {
        found.drain(..found.len() - limit);
    }
    Ok(found)
}
