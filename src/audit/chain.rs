//! The hash chain: each line's `hash` is SHA-256 over the previous line's hash and the
//! line's canonical content (its JSON object without `hash`, keys sorted). Files rotate;
//! the chain and `seq` run on across them, so a removed file is found too.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use sha2::{Digest, Sha256};

/// `prev_hash` of the very first line.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

pub fn hash_of(prev_hash: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// The suffix every line ends with: `,"hash":"<64 hex>"}`.
const HASH_KEY: &str = ",\"hash\":\"";

/// Builds a line into `line` from its head fields and the event's JSON members (without
/// braces): `{"seq":…,"ts":…,"prev_hash":…,<members>}` is the canonical content; the line
/// is that with `,"hash":"…"}` in place of the closing brace. Returns the line's hash
/// (hex). Reuses the buffer: no allocation per line.
pub fn seal_into(
    line: &mut Vec<u8>,
    seq: u64,
    ts: &[u8],
    prev_hash: &str,
    members: &[&[u8]],
) -> [u8; 64] {
    line.clear();
    line.extend_from_slice(b"{\"seq\":");
    line.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
    line.extend_from_slice(b",\"ts\":\"");
    line.extend_from_slice(ts);
    line.extend_from_slice(b"\",\"prev_hash\":\"");
    line.extend_from_slice(prev_hash.as_bytes());
    line.push(b'"');
    for m in members.iter().filter(|m| !m.is_empty()) {
        line.push(b',');
        line.extend_from_slice(m);
    }
    line.push(b'}');
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(&line[..]);
    let mut hex = [0u8; 64];
    // 32 bytes always fit 64 hex digits.
    let _ = hex::encode_to_slice(h.finalize(), &mut hex);
    line.pop();
    line.extend_from_slice(HASH_KEY.as_bytes());
    line.extend_from_slice(&hex);
    line.extend_from_slice(b"\"}");
    hex
}

/// `{"a":1}` → `"a":1`: the members of a serialized JSON object.
pub fn members(object_json: &[u8]) -> &[u8] {
    object_json
        .strip_prefix(b"{")
        .and_then(|s| s.strip_suffix(b"}"))
        .unwrap_or_default()
}

/// The log files of `dir` in order.
pub fn log_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("portcullis-") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The hash of the line with `seq`, looking from the newest file back (for the anchor
/// check at start).
pub fn line_hash(dir: &Path, seq: u64) -> std::io::Result<Option<String>> {
    for file in log_files(dir)?.iter().rev() {
        let text = std::fs::read_to_string(file)?;
        let seq_of = |line: &str| -> Option<u64> {
            serde_json::from_str::<Value>(line)
                .ok()?
                .get("seq")?
                .as_u64()
        };
        let first = text.lines().next().and_then(seq_of);
        if first.is_some_and(|f| f > seq) {
            continue;
        }
        for line in text.lines().filter(|l| l.ends_with('}')) {
            if seq_of(line) == Some(seq) {
                let hash = line
                    .rfind(HASH_KEY)
                    .map(|at| line[at + HASH_KEY.len()..line.len().saturating_sub(2)].to_owned());
                return Ok(hash);
            }
        }
        return Ok(None);
    }
    Ok(None)
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    pub files: usize,
    pub lines: u64,
    /// `file:line: what is wrong` for the first broken line.
    pub first_error: Option<String>,
    /// The last line of the last file is incomplete (the process died mid-write).
    pub truncated_tail: bool,
    /// Checkpoints whose signature was checked (with a public key).
    #[serde(default)]
    pub checkpoints: u64,
    /// Lines after the last checked checkpoint: not (yet) covered by a signature.
    #[serde(default)]
    pub unsigned_tail: u64,
    /// The seq anchored in the store that the log was checked against.
    #[serde(default)]
    pub anchored_seq: Option<u64>,
}

/// What a verification checks besides the chain.
#[derive(Clone, Debug, Default)]
pub struct Checks {
    /// Verify every checkpoint's signature with this key, and that no stretch of lines
    /// longer than `max_unsigned` goes without one.
    pub public_key: Option<ed25519_dalek::VerifyingKey>,
    pub max_unsigned: u64,
    /// The log must reach this anchored head (seq, hash).
    pub anchor: Option<(u64, String)>,
}

/// Checks every line of every file: hash, chain link and sequence.
pub fn verify_dir(dir: &Path) -> std::io::Result<VerifyReport> {
    verify_with(dir, &Checks::default())
}

/// `verify_dir`, and the checkpoints' signatures and the anchor, as `checks` asks.
pub fn verify_with(dir: &Path, checks: &Checks) -> std::io::Result<VerifyReport> {
    let files = log_files(dir)?;
    let mut check = ChainCheck::new(checks.clone());
    check.report.files = files.len();
    for (fi, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file)?;
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_owned();
        let last_file = fi + 1 == files.len();
        let mut lines = text.split_inclusive('\n').enumerate().peekable();
        while let Some((i, raw)) = lines.next() {
            let complete = raw.ends_with('\n');
            if !complete && last_file && lines.peek().is_none() {
                check.report.truncated_tail = true;
                break;
            }
            if !check.line(&format!("{name}:{}", i + 1), raw.trim_end()) {
                return Ok(check.report);
            }
        }
    }
    Ok(check.finish())
}

/// A chain checked line by line (the files, or a copy such as a NATS stream).
pub struct ChainCheck {
    state: State,
    checks: Checks,
    pub report: VerifyReport,
}

impl ChainCheck {
    pub fn new(checks: Checks) -> ChainCheck {
        ChainCheck {
            report: VerifyReport {
                ok: true,
                files: 0,
                lines: 0,
                first_error: None,
                truncated_tail: false,
                checkpoints: 0,
                unsigned_tail: 0,
                anchored_seq: checks.anchor.as_ref().map(|a| a.0),
            },
            state: State {
                prev_hash: GENESIS.to_owned(),
                prev_seq: 0,
                anchor_seen: false,
            },
            checks,
        }
    }

    /// One line (`at` says where, for the error); false once the chain is broken.
    pub fn line(&mut self, at: &str, line: &str) -> bool {
        if !self.report.ok {
            return false;
        }
        self.report.lines += 1;
        if let Err(what) = check_line(line, &mut self.state, &self.checks, &mut self.report) {
            self.report.ok = false;
            self.report.first_error = Some(format!("{at}: {what}"));
        }
        self.report.ok
    }

    /// The seq of the last good line.
    pub fn last_seq(&self) -> u64 {
        self.state.prev_seq
    }

    /// The hash of the last good line.
    pub fn last_hash(&self) -> &str {
        &self.state.prev_hash
    }

    pub fn finish(mut self) -> VerifyReport {
        if self.report.ok {
            finish(&mut self.report, &self.state, &self.checks);
        }
        self.report
    }
}

/// What runs on from line to line.
struct State {
    prev_hash: String,
    prev_seq: u64,
    anchor_seen: bool,
}

/// The checks that need the whole log: the anchor reached, the unsigned tail bounded.
fn finish(report: &mut VerifyReport, state: &State, checks: &Checks) {
    if let Some((seq, _)) = &checks.anchor
        && !state.anchor_seen
    {
        report.ok = false;
        report.first_error = Some(format!(
            "the log ends at seq {} but the store's anchor is seq {seq}: lines or files were removed from the end",
            state.prev_seq
        ));
    } else if checks.public_key.is_some() && report.lines > 0 && report.checkpoints == 0 {
        report.ok = false;
        report.first_error = Some(
            "no checkpoint at all: every log the gateway writes begins with one (log rebuilt)"
                .into(),
        );
    } else if checks.public_key.is_some() && report.unsigned_tail > checks.max_unsigned {
        report.ok = false;
        report.first_error = Some(format!(
            "the last {} lines are covered by no checkpoint (at most {} expected): checkpoints were removed or the log was rebuilt",
            report.unsigned_tail, checks.max_unsigned
        ));
    }
}

/// A checkpoint line: signed by the key, over the line before it.
fn check_checkpoint(
    object: &Map<String, Value>,
    state: &State,
    public: &ed25519_dalek::VerifyingKey,
) -> Result<(), String> {
    let field = |k: &str| object.get(k).and_then(Value::as_str).unwrap_or_default();
    let head_seq = object.get("head_seq").and_then(Value::as_u64).unwrap_or(0);
    if head_seq != state.prev_seq || field("head_hash") != state.prev_hash {
        return Err("a checkpoint that does not sign the line before it (log rebuilt)".into());
    }
    let signed = super::signing::verify(
        public,
        field("instance"),
        head_seq,
        field("head_hash"),
        field("signature"),
    );
    if !signed {
        return Err("a checkpoint signature that does not verify with this public key (log rebuilt or another key)".into());
    }
    Ok(())
}

fn check_line(
    line: &str,
    state: &mut State,
    checks: &Checks,
    report: &mut VerifyReport,
) -> Result<(), String> {
    let object: Map<String, Value> = match serde_json::from_str(line) {
        Ok(Value::Object(o)) => o,
        _ => return Err("not a JSON object (line edited or inserted)".into()),
    };
    if let Some(public) = &checks.public_key
        && object.get("kind").and_then(Value::as_str) == Some("checkpoint")
    {
        check_checkpoint(&object, state, public)?;
        report.checkpoints += 1;
        report.unsigned_tail = 0;
    } else {
        report.unsigned_tail += 1;
        if checks.public_key.is_some() && report.unsigned_tail > checks.max_unsigned {
            return Err(format!(
                "more than {} lines without a checkpoint: checkpoints were removed or the log was rebuilt",
                checks.max_unsigned
            ));
        }
    }
    chained(line, &object, state)?;
    if let Some((seq, hash)) = &checks.anchor
        && *seq == state.prev_seq
    {
        if *hash != state.prev_hash {
            return Err(format!(
                "seq {seq} is not the line the store anchored (log rewritten)"
            ));
        }
        state.anchor_seen = true;
    }
    Ok(())
}

/// The line's hash, chain link and sequence.
fn chained(line: &str, object: &Map<String, Value>, state: &mut State) -> Result<(), String> {
    let (prev_hash, prev_seq) = (&mut state.prev_hash, &mut state.prev_seq);
    // The canonical content is the line without its trailing `,"hash":"…"` member.
    let (canonical, hash) = match line.rfind(HASH_KEY) {
        Some(at) if line.len() == at + HASH_KEY.len() + 66 && line.ends_with("\"}") => (
            format!("{}}}", &line[..at]),
            &line[at + HASH_KEY.len()..line.len() - 2],
        ),
        _ => return Err("no hash at the end of the line (line edited or inserted)".into()),
    };
    let seq = object
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or("no seq (line edited or inserted)")?;
    let claimed_prev = object
        .get("prev_hash")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if hash_of(&claimed_prev, &canonical) != hash {
        return Err(format!(
            "seq {seq}: content does not match its hash (line edited)"
        ));
    }
    if seq != *prev_seq + 1 {
        let what = if seq <= *prev_seq {
            "reordered or inserted"
        } else {
            "lines removed before it"
        };
        return Err(format!("seq {seq} follows seq {prev_seq} ({what})"));
    }
    if claimed_prev != *prev_hash {
        return Err(format!(
            "seq {seq}: prev_hash does not match the line before it (line inserted, removed or reordered)"
        ));
    }
    *prev_hash = hash.to_owned();
    *prev_seq = seq;
    Ok(())
}
