//! Shipping the monitoring log to NATS JetStream (`[audit.nats]`). The local hash-chained
//! files stay the record and the buffer: the shipper reads the complete lines written
//! there, in order, and publishes each to `<subject_prefix>.<instance>` with the message id
//! `instance:seq` (JetStream drops a duplicate within its window), moving its durable
//! cursor (`store.data_dir/nats-cursor`) only once the server acknowledged. NATS away: the
//! lines wait in the files, statements are not slowed, and the shipper catches up when it
//! is back. `audit verify --nats` checks each instance's chain in the stream.

use std::collections::VecDeque;
use std::io::{BufRead, Seek};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage, stream};

use super::chain::log_files;
use crate::config::NatsConfig;

/// Publishes in flight before the oldest's ack is awaited.
const WINDOW: usize = 256;
/// How long a publish may wait for its ack.
const ACK_WAIT: Duration = Duration::from_secs(10);
/// Between attempts while NATS is away.
const RETRY: Duration = Duration::from_secs(1);
/// How long between looks at the files once everything is shipped.
const IDLE: Duration = Duration::from_millis(50);

/// What `/metrics` shows of the shipper.
#[derive(Debug, Default)]
pub struct ShipState {
    /// The last seq the server acknowledged.
    pub acked: AtomicU64,
    /// The last seq found in the files.
    pub written: AtomicU64,
    /// Unix seconds of the oldest line not yet acknowledged (0: none waiting).
    pub oldest_waiting: AtomicU64,
}

/// The subject an instance's lines go to.
pub fn subject(config: &NatsConfig, instance: &str) -> String {
    let token: String = instance
        .chars()
        .map(|c| {
            if c == '.' || c == '*' || c == '>' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!("{}.{token}", config.subject_prefix)
}

/// Connects, with the token when configured.
pub async fn connect(config: &NatsConfig) -> Result<async_nats::Client, String> {
    let mut options = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(5));
    if let Some(token) = &config.token {
        options = options.token(token.expose().to_owned());
    }
    options
        .connect(config.url.as_str())
        .await
        .map_err(|e| format!("cannot reach NATS at {}: {e}", config.url))
}

/// The stream, made with the configured limits when absent.
pub async fn stream(
    js: &jetstream::Context,
    config: &NatsConfig,
) -> Result<stream::Stream, String> {
    js.get_or_create_stream(stream::Config {
        name: config.stream.clone(),
        subjects: vec![format!("{}.>", config.subject_prefix)],
        max_age: config.max_age,
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(|e| format!("cannot make or read stream `{}`: {e}", config.stream))
}

/// Runs until the process ends.
pub async fn run(
    config: NatsConfig,
    dir: PathBuf,
    data_dir: PathBuf,
    instance: Arc<str>,
    state: Arc<ShipState>,
) {
    let cursor_file = data_dir.join("nats-cursor");
    let mut cursor = read_cursor(&cursor_file);
    state.acked.store(cursor, Ordering::Relaxed);
    loop {
        if let Err(e) = session(&config, &dir, &cursor_file, &instance, &state, &mut cursor).await {
            tracing::warn!(error = %e, acked = cursor, "shipping to NATS paused; the log keeps every line");
            // The lag goes on growing while NATS is away: the files say how far.
            if let Some(last) = last_seq(&dir) {
                state.written.fetch_max(last, Ordering::Relaxed);
            }
            if state.written.load(Ordering::Relaxed) > cursor {
                let now = crate::clock::now().max(0) as u64;
                let _ = state.oldest_waiting.compare_exchange(
                    0,
                    now,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// One connection's work: ships from the cursor until something fails.
async fn session(
    config: &NatsConfig,
    dir: &Path,
    cursor_file: &Path,
    instance: &str,
    state: &ShipState,
    cursor: &mut u64,
) -> Result<(), String> {
    let client = connect(config).await?;
    let js = jetstream::new(client);
    stream(&js, config).await?;
    let subject = subject(config, instance);
    let mut lines = Lines::from(dir, *cursor).map_err(|e| e.to_string())?;
    let mut in_flight: VecDeque<(u64, u64, jetstream::context::PublishAckFuture)> = VecDeque::new();
    loop {
        let mut sent = false;
        while in_flight.len() < WINDOW {
            let Some((seq, ts, line)) = lines.next_line(dir).map_err(|e| e.to_string())? else {
                break;
            };
            state.written.fetch_max(seq, Ordering::Relaxed);
            if in_flight.is_empty() {
                state.oldest_waiting.store(ts, Ordering::Relaxed);
            }
            let publish = PublishMessage::build()
                .payload(line.into())
                .message_id(format!("{instance}:{seq}"));
            let ack = js
                .send_publish(subject.clone(), publish)
                .await
                .map_err(|e| format!("publish failed: {e}"))?;
            in_flight.push_back((seq, ts, ack));
            sent = true;
        }
        let Some((seq, _, ack)) = in_flight.pop_front() else {
            state.oldest_waiting.store(0, Ordering::Relaxed);
            tokio::time::sleep(IDLE).await;
            continue;
        };
        tokio::time::timeout(ACK_WAIT, ack)
            .await
            .map_err(|_| "no acknowledgement within 10s".to_owned())?
            .map_err(|e| format!("not acknowledged: {e}"))?;
        *cursor = seq;
        state.acked.store(seq, Ordering::Relaxed);
        let next = in_flight.front().map_or(0, |(_, ts, _)| *ts);
        state.oldest_waiting.store(next, Ordering::Relaxed);
        if in_flight.is_empty() || !sent {
            write_cursor(cursor_file, seq).map_err(|e| format!("cannot keep the cursor: {e}"))?;
        }
    }
}

/// The seq of the last complete line of the last file (its last 64 KiB read).
fn last_seq(dir: &Path) -> Option<u64> {
    use std::io::Read;
    let file = log_files(dir).ok()?.pop()?;
    let mut f = std::fs::File::open(file).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(std::io::SeekFrom::Start(len.saturating_sub(64 << 10)))
        .ok()?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail).ok()?;
    tail.split(|b| *b == b'\n').filter_map(seq_of).next_back()
}

fn read_cursor(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn write_cursor(path: &Path, seq: u64) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{seq}\n"))?;
    std::fs::rename(tmp, path)
}

/// The complete lines of the log after a seq, file after file, as they are written.
struct Lines {
    files: Vec<PathBuf>,
    /// The file being read, and where.
    at: usize,
    reader: Option<std::io::BufReader<std::fs::File>>,
    after: u64,
}

impl Lines {
    fn from(dir: &Path, after: u64) -> std::io::Result<Lines> {
        Ok(Lines {
            files: log_files(dir)?,
            at: 0,
            reader: None,
            after,
        })
    }

    /// The next complete line after `after`: (seq, ts as Unix seconds, line), or `None`
    /// when none is written yet.
    fn next_line(&mut self, dir: &Path) -> std::io::Result<Option<(u64, u64, Vec<u8>)>> {
        loop {
            if self.reader.is_none() {
                let Some(file) = self.files.get(self.at) else {
                    self.files = log_files(dir)?;
                    if self.at >= self.files.len() {
                        return Ok(None);
                    }
                    continue;
                };
                self.reader = Some(std::io::BufReader::new(std::fs::File::open(file)?));
            }
            let Some(reader) = self.reader.as_mut() else {
                continue;
            };
            let mut line = Vec::new();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || !line.ends_with(b"\n") {
                // A later file: this one is done (a line cut by a crash is no line).
                self.files = log_files(dir)?;
                if self.at + 1 < self.files.len() {
                    self.at += 1;
                    self.reader = None;
                    continue;
                }
                // Nothing more yet, or a line still being written: read it again later.
                reader.seek_relative(-(n as i64))?;
                return Ok(None);
            }
            line.pop();
            let Some(seq) = seq_of(&line) else {
                continue;
            };
            if seq <= self.after {
                continue;
            }
            self.after = seq;
            return Ok(Some((seq, ts_of(&line), line)));
        }
    }
}

/// The `seq` a line starts with (`{"seq":N,`).
fn seq_of(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// The line's `ts` as Unix seconds (0 if it does not read).
fn ts_of(line: &[u8]) -> u64 {
    let Some(at) = memchr::memmem::find(line, b"\"ts\":\"") else {
        return 0;
    };
    let rest = &line[at + 6..];
    let end = rest.iter().position(|b| *b == b'"').unwrap_or(0);
    std::str::from_utf8(&rest[..end])
        .ok()
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .map_or(0, |t| t.unix_timestamp().max(0) as u64)
}

/// One instance's copy in the stream, as `audit verify --nats` found it.
#[derive(Debug)]
pub struct StreamReport {
    pub instance: String,
    pub report: super::chain::VerifyReport,
    /// Lines sent again after an outage (the same line twice): not a fault.
    pub duplicates: u64,
}

/// How many lines back a line sent again is recognised.
const REMEMBERED: usize = 4096;

/// Reads the whole stream and checks each instance's hash chain in it (gaps, reorders,
/// edits, as for the files; a line sent twice identically is counted, not a fault).
pub async fn verify_stream(config: &NatsConfig) -> Result<Vec<StreamReport>, String> {
    use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
    use futures::StreamExt;
    let js = jetstream::new(connect(config).await?);
    let mut stream = js
        .get_stream(&config.stream)
        .await
        .map_err(|e| format!("no stream `{}`: {e}", config.stream))?;
    let total = stream
        .info()
        .await
        .map_err(|e| e.to_string())?
        .state
        .messages;
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut chains: std::collections::BTreeMap<String, Copy> = Default::default();
    let mut seen = 0u64;
    while seen < total {
        let mut batch = consumer
            .fetch()
            .max_messages(1000)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .map_err(|e| e.to_string())?;
        let before = seen;
        while let Some(m) = batch.next().await {
            let m = m.map_err(|e| e.to_string())?;
            seen += 1;
            let instance = m
                .subject
                .strip_prefix(&format!("{}.", config.subject_prefix))
                .unwrap_or(&m.subject)
                .to_owned();
            let line = String::from_utf8_lossy(&m.payload).into_owned();
            let copy = chains.entry(instance).or_default();
            copy.line(seen, line);
        }
        if seen == before {
            return Err(format!(
                "the stream stopped after {seen} of {total} messages"
            ));
        }
    }
    Ok(chains
        .into_iter()
        .map(|(instance, c)| StreamReport {
            instance,
            report: c.check.finish(),
            duplicates: c.duplicates,
        })
        .collect())
}

/// One instance's lines in the stream, checked as they come.
struct Copy {
    check: super::chain::ChainCheck,
    recent: VecDeque<(u64, String)>,
    duplicates: u64,
}

impl Default for Copy {
    fn default() -> Copy {
        Copy {
            check: super::chain::ChainCheck::new(Default::default()),
            recent: VecDeque::new(),
            duplicates: 0,
        }
    }
}

impl Copy {
    fn line(&mut self, at: u64, line: String) {
        let seq = seq_of(line.as_bytes()).unwrap_or(0);
        if seq > 0
            && seq <= self.check.last_seq()
            && self.recent.iter().any(|(s, l)| *s == seq && *l == line)
        {
            self.duplicates += 1;
            return;
        }
        let ok = self.check.line(&format!("message {at}"), &line);
        if ok {
            if self.recent.len() == REMEMBERED {
                self.recent.pop_front();
            }
            self.recent.push_back((seq, line));
        }
    }
}
