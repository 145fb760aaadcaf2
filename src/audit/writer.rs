//! The one writer task: drains the channel in batches, seals each event into the chain,
//! appends to the current file, rotates by size, and syncs per `audit.fsync`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;

use super::chain::{GENESIS, log_files, members, seal_into};
use super::checkpoint::{Anchor, Checkpoints};
use super::encode;
use super::{Event, Kind, Msg, Recorder};
use crate::config::{AuditConfig, Fsync, OnFailure};

const CHANNEL: usize = 8192;
pub(super) const BATCH: usize = 512;
const BATCH_NAP: Duration = Duration::from_millis(5);

pub struct WriterHandle {
    task: tokio::task::JoinHandle<()>,
    tx: mpsc::Sender<Msg>,
}

impl WriterHandle {
    /// Writes every event recorded before this call, syncs, and stops the writer.
    pub async fn finish(self) {
        let _ = self.tx.send(Msg::Close).await;
        let _ = self.task.await;
    }
}

struct Chain {
    dir: PathBuf,
    file: Option<std::io::BufWriter<std::fs::File>>,
    index: u64,
    size: u64,
    seq: u64,
    prev_hash: String,
    /// Events lost (with `on_failure = "continue"`) not yet reported in the log.
    lost_unreported: u64,
    /// Reused per line: the event's kind fields, the timestamp, the line.
    kind: Vec<u8>,
    ts: Vec<u8>,
    line: Vec<u8>,
    clock: encode::Clock,
    /// `"instance":"…"`, the member every line carries.
    instance: Vec<u8>,
}

impl Chain {
    /// Continues the chain from the last complete line on disk; a new file each start.
    fn resume(dir: &Path) -> std::io::Result<Chain> {
        crate::fsutil::private_dir(dir)?;
        let files = log_files(dir)?;
        let (mut seq, mut prev_hash) = (0, GENESIS.to_owned());
        for file in files.iter().rev() {
            let text = std::fs::read_to_string(file)?;
            let last = text.split_inclusive('\n').rfind(|l| l.ends_with('\n'));
            if let Some(Ok(Value::Object(o))) = last.map(serde_json::from_str::<Value>) {
                seq = o.get("seq").and_then(Value::as_u64).unwrap_or(0);
                prev_hash = o
                    .get("hash")
                    .and_then(Value::as_str)
                    .unwrap_or(GENESIS)
                    .to_owned();
                break;
            }
        }
        let index = files
            .last()
            .and_then(|f| {
                f.file_stem()?
                    .to_str()?
                    .strip_prefix("portcullis-")?
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0);
        Ok(Chain {
            dir: dir.to_owned(),
            file: None,
            index,
            size: 0,
            seq,
            prev_hash,
            lost_unreported: 0,
            kind: Vec::with_capacity(1024),
            ts: Vec::with_capacity(32),
            line: Vec::with_capacity(2048),
            clock: encode::Clock::default(),
            instance: Vec::new(),
        })
    }

    /// Opens the next file; on failure the same name is tried again next time, so the
    /// files stay numbered without gaps.
    fn open_next(&mut self) -> std::io::Result<()> {
        let path = self
            .dir
            .join(format!("portcullis-{:06}.jsonl", self.index + 1));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        self.index += 1;
        self.file = Some(std::io::BufWriter::with_capacity(256 * 1024, file));
        self.size = 0;
        Ok(())
    }

    fn append(&mut self, event: &Event, rotate_bytes: u64) -> std::io::Result<()> {
        if self.file.is_none() || self.size >= rotate_bytes {
            self.flush(true)?;
            self.open_next()?;
        }
        self.kind.clear();
        encode::kind_json(&event.kind, &mut self.kind)?;
        let lost = if self.lost_unreported > 0 {
            // The first event written after a loss says how many events were lost.
            format!("\"audit_events_lost\":{}", self.lost_unreported)
        } else {
            String::new()
        };
        self.clock.now_into(&mut self.ts);
        // Every event names the instance that wrote it (a checkpoint names it itself).
        let instance = match event.kind {
            Kind::Checkpoint { .. } => &[][..],
            _ => &self.instance[..],
        };
        let parts = [
            members(&self.kind),
            members(event.common.json().as_bytes()),
            instance,
            lost.as_bytes(),
        ];
        let hash = seal_into(
            &mut self.line,
            self.seq + 1,
            &self.ts,
            &self.prev_hash,
            &parts,
        );
        if let Some(f) = self.file.as_mut() {
            f.write_all(&self.line)?;
            f.write_all(b"\n")?;
        }
        self.size += self.line.len() as u64 + 1;
        // Only a written line moves the chain on: a retry seals the event again.
        self.seq += 1;
        self.prev_hash.clear();
        self.prev_hash
            .push_str(std::str::from_utf8(&hash).unwrap_or_default());
        self.lost_unreported = 0;
        Ok(())
    }

    fn flush(&mut self, sync: bool) -> std::io::Result<()> {
        if let Some(f) = self.file.as_mut() {
            f.flush()?;
            if sync {
                f.get_ref().sync_data()?;
            }
        }
        Ok(())
    }
}

/// Signs the chain head into the log, syncs it, and sends the checkpoint's own line to be
/// anchored in the store. A failure is said, and the next batch tries again.
fn checkpoint(chain: &mut Chain, cp: &mut Checkpoints, config: &AuditConfig) {
    let event = cp.event(chain.seq, &chain.prev_hash);
    let written = chain
        .append(&event, config.rotate_bytes)
        .and_then(|()| chain.flush(config.fsync != Fsync::Never));
    match written {
        Ok(()) => {
            let anchor = Anchor {
                seq: chain.seq,
                hash: chain.prev_hash.clone(),
            };
            let _ = cp.anchors.send(anchor);
        }
        Err(e) => {
            tracing::error!(error = %e, "writing a checkpoint failed; the next batch retries")
        }
    }
}

/// Starts the writer; returns the sessions' `Recorder` and the handle to wait on. With
/// `checkpoints`, the chain head is signed on schedule and anchored in the store, and the
/// resumed log is checked against the last anchor first.
pub fn spawn_writer(
    config: &AuditConfig,
    instance: &str,
    lost: Arc<AtomicU64>,
    mut checkpoints: Option<Checkpoints>,
) -> std::io::Result<(Recorder, WriterHandle)> {
    let mut chain = Chain::resume(&config.dir)?;
    chain.instance = format!("\"instance\":{}", serde_json::Value::from(instance)).into_bytes();
    if let Some(cp) = &checkpoints {
        let found = match &cp.anchored {
            Some(a) => super::chain::line_hash(&config.dir, a.seq)?,
            None => None,
        };
        if let Some(event) = cp.resumed(found.as_deref(), chain.seq) {
            chain.append(&event, config.rotate_bytes)?;
            chain.flush(true)?;
        }
    }
    // A checkpoint at start signs the head the chain goes on from: every log begins
    // signed, so one without any checkpoint was rebuilt.
    if let Some(cp) = checkpoints.as_mut() {
        checkpoint(&mut chain, cp, config);
    }
    let (tx, mut rx) = mpsc::channel::<Msg>(CHANNEL);
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let written_seq = Arc::new(AtomicU64::new(chain.seq));
    let recorder = Recorder {
        tx: tx.clone(),
        lost: Arc::clone(&lost),
        healthy: Arc::clone(&healthy),
        written: Arc::clone(&written_seq),
    };
    let config = config.clone();
    let task = tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(BATCH);
        let mut last_sync = Instant::now();
        let mut closing = false;
        while !closing {
            match rx.blocking_recv() {
                Some(Msg::Event(e, w)) => batch.push((e, w)),
                Some(Msg::Close) | None => closing = true,
            }
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(Msg::Event(e, w)) => batch.push((e, w)),
                    Ok(Msg::Close) => closing = true,
                    Err(_) => break,
                }
            }
            if batch.is_empty() {
                continue;
            }
            let sync = match config.fsync {
                Fsync::Always => true,
                Fsync::Interval => last_sync.elapsed() >= Duration::from_secs(1),
                Fsync::Never => false,
            };
            let mut done = 0;
            loop {
                // `done` survives a retry: events already sealed are not written twice.
                let result = batch[done..]
                    .iter()
                    .try_for_each(|(e, _)| {
                        chain.append(e, config.rotate_bytes)?;
                        done += 1;
                        Ok(())
                    })
                    .and_then(|()| chain.flush(sync));
                match result {
                    Ok(()) => {
                        healthy.store(true, Ordering::Relaxed);
                        written_seq.store(chain.seq, Ordering::Relaxed);
                        break;
                    }
                    Err(e) if config.on_failure == OnFailure::Continue => {
                        let n = (batch.len() - done) as u64;
                        tracing::error!(error = %e, lost = n, "monitoring log write failed; events lost (on_failure = continue)");
                        lost.fetch_add(n, Ordering::Relaxed);
                        chain.lost_unreported += n;
                        chain.file = None;
                        break;
                    }
                    Err(e) => {
                        // Fail closed: nothing is dropped; new sessions are refused and
                        // running ones wait on the full channel until the log is writable.
                        tracing::error!(error = %e, "monitoring log write failed; retrying, sessions are held (on_failure = block)");
                        healthy.store(false, Ordering::Relaxed);
                        chain.file = None;
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
            if sync {
                last_sync = Instant::now();
            }
            if let Some(cp) = checkpoints.as_mut() {
                cp.since += batch.len() as u64;
                if cp.due() {
                    checkpoint(&mut chain, cp, &config);
                }
            }
            let small = batch.len() < BATCH / 4;
            let mut waiting = false;
            for (_, written) in batch.drain(..) {
                if let Some(w) = written {
                    waiting = true;
                    let _ = w.send(());
                }
            }
            // Sessions waiting on their events (`acknowledged`) are the batch: no nap.
            if small && !closing && !waiting {
                // Let events accumulate: a writer parked on the channel costs every session
                // a wake-up (a syscall) per event; a short nap batches them instead.
                std::thread::sleep(BATCH_NAP);
            }
        }
        if let Some(cp) = checkpoints.as_mut().filter(|cp| cp.since > 0) {
            checkpoint(&mut chain, cp, &config);
        }
        if let Err(e) = chain.flush(true) {
            tracing::error!(error = %e, "final monitoring log sync failed");
        }
    });
    Ok((recorder, WriterHandle { task, tx }))
}
