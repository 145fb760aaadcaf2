//! The monitoring log is tamper-evident: editing, removing, inserting or swapping a line
//! is detected and located, across rotated files; a crash-truncated tail is reported as
//! such; `portcullis audit verify` says so and exits non-zero.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::pg::{PgEnv, read_events};
use portcullis::audit::verify_dir;

/// A log of a few hundred events over several rotated files, copied to a scratch dir.
async fn make_log() -> tempfile::TempDir {
    let env = PgEnv::new("[audit]\nrotate_bytes = 4096\n").await;
    let c = env.alice().await;
    for i in 0..60 {
        c.simple_query(&format!("select {i}")).await.unwrap();
    }
    drop(c);
    let _ = env.events().await;
    let src = env.dir.path().join("audit");
    env.gw.shutdown().await;
    let copy = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, copy.path().join(f.file_name().unwrap())).unwrap();
    }
    copy
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut f: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    f.sort();
    f
}

fn edit(dir: &Path, file_index: usize, change: impl FnOnce(&mut Vec<String>)) -> String {
    let path = &files(dir)[file_index];
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    change(&mut lines);
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
    path.file_name().unwrap().to_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_log_rotates_and_verifies_across_files() {
    let dir = make_log().await;
    assert!(files(dir.path()).len() >= 3, "rotation by size");
    let report = verify_dir(dir.path()).unwrap();
    assert!(report.ok, "{report:?}");
    let events = read_events(dir.path());
    assert_eq!(report.lines as usize, events.len());
    assert_eq!(events.iter().filter(|e| e["kind"] == "query").count(), 60);
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["audit", "verify", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok:"));
}

#[tokio::test]
async fn each_kind_of_tampering_is_found_and_located() {
    type Tamper = fn(&mut Vec<String>);
    let cases: [(&str, Tamper, &str); 4] = [
        (
            "edited",
            |l| l[3] = l[3].replace("select", "SELECT"),
            ":4: seq",
        ),
        ("removed", |l| drop(l.remove(3)), ":4: seq"),
        ("inserted", |l| l.insert(3, l[5].clone()), ":4: seq"),
        ("swapped", |l| l.swap(3, 4), ":4: seq"),
    ];
    let pristine = make_log().await;
    for (what, tamper, location) in cases {
        let dir = tempfile::tempdir().unwrap();
        for f in files(pristine.path()) {
            std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
        }
        let name = edit(dir.path(), 1, tamper);
        let report = verify_dir(dir.path()).unwrap();
        assert!(!report.ok, "{what} went unnoticed");
        let err = report.first_error.unwrap();
        assert!(
            err.starts_with(&name) && err.contains(location),
            "{what}: {err}"
        );
        let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["audit", "verify", "--dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{what}: verify must exit non-zero");
        assert!(String::from_utf8_lossy(&out.stdout).contains(&name));
    }
}

#[tokio::test]
async fn a_removed_file_and_a_truncated_tail_are_told_apart() {
    let dir = make_log().await;
    let all = files(dir.path());
    // A crash mid-write: the newest file ends in half a line.
    let last = all.last().unwrap();
    let text = std::fs::read_to_string(last).unwrap();
    std::fs::write(last, format!("{text}{{\"seq\": 99999, \"kind\": \"que")).unwrap();
    let report = verify_dir(dir.path()).unwrap();
    assert!(report.ok && report.truncated_tail, "{report:?}");
    // A whole rotated file removed breaks the chain at the next file.
    std::fs::remove_file(&all[1]).unwrap();
    let report = verify_dir(dir.path()).unwrap();
    assert!(!report.ok);
    assert!(report.first_error.unwrap().contains("removed"));
}

/// Rewrites a log as someone who can write the files (but not read the gateway's keys)
/// would: drops the lines `drop` selects and renumbers and rehashes the rest, so the
/// plain hash chain verifies again.
fn rebuild(dir: &Path, drop: impl Fn(&serde_json::Value) -> bool) {
    let mut all: Vec<String> = Vec::new();
    for f in files(dir) {
        all.extend(
            std::fs::read_to_string(&f)
                .unwrap()
                .lines()
                .map(str::to_owned),
        );
        std::fs::remove_file(f).unwrap();
    }
    let (mut prev, mut seq) = (portcullis::audit::chain::GENESIS.to_owned(), 0u64);
    let mut out = String::new();
    for line in all {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if drop(&v) {
            continue;
        }
        seq += 1;
        // `{"seq":N,"ts":"…","prev_hash":"…",<rest>,"hash":"…"}`
        let ts_at = line.find(",\"ts\":").unwrap();
        let rest_at = line.find(",\"prev_hash\":").unwrap() + ",\"prev_hash\":".len() + 66;
        let hash_at = line.rfind(",\"hash\":").unwrap();
        let canonical = format!(
            "{{\"seq\":{seq}{}\"prev_hash\":\"{prev}\"{}}}",
            &line[ts_at..line.find("\"prev_hash\"").unwrap()],
            &line[rest_at..hash_at]
        );
        let hash = portcullis::audit::chain::hash_of(&prev, &canonical);
        out.push_str(&format!(
            "{},\"hash\":\"{hash}\"}}\n",
            &canonical[..canonical.len() - 1]
        ));
        prev = hash;
    }
    std::fs::write(dir.join("portcullis-000001.jsonl"), out).unwrap();
}

/// Finding 5: a log rebuilt by someone without the signing key (events deleted, lines
/// renumbered and rehashed) passes the plain chain check but not the signed one; a log
/// cut short is found against the store's anchor, and the restart that finds it says so
/// and records it.
#[tokio::test]
async fn checkpoints_and_the_anchor_catch_a_rebuilt_or_cut_log() {
    let env = PgEnv::new("[audit]\ncheckpoint_events = 5\n").await;
    let c = env.alice().await;
    for i in 0..30 {
        c.simple_query(&format!("select {i}")).await.unwrap();
    }
    drop(c);
    let _ = env.events().await;
    let api = common::client(&env.gw, Some(&env.dir.bootstrap_token()));
    let report = api.get("/api/audit/verify").await.unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["checkpoints"].as_u64().unwrap() >= 2, "{report}");
    let key = api.get("/api/audit/public-key").await.unwrap();
    let key_file = env.dir.path().join("public.key");
    std::fs::write(&key_file, key.as_str().unwrap()).unwrap();
    let dir = env.dir.path().join("audit");
    let bin = env!("CARGO_BIN_EXE_portcullis");
    let verify = |extra: &[&str]| {
        let out = Command::new(bin)
            .args(["audit", "verify", "--dir"])
            .arg(&dir)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let signed = ["--public-key", key_file.to_str().unwrap()];
    let (ok, out) = verify(&signed);
    assert!(ok, "{out}");
    assert!(out.contains("checkpoints verify"), "{out}");

    // Rebuilt without the key: the chain verifies, the signatures do not.
    let copy = tempfile::tempdir().unwrap();
    for f in files(&dir) {
        std::fs::copy(&f, copy.path().join(f.file_name().unwrap())).unwrap();
    }
    rebuild(copy.path(), |v| v["statement"] == "select 7");
    assert!(
        verify_dir(copy.path()).unwrap().ok,
        "the plain chain is fooled"
    );
    let key = portcullis::audit::signing::public_key(&std::fs::read_to_string(&key_file).unwrap())
        .unwrap();
    let checks = portcullis::audit::Checks {
        public_key: Some(key),
        max_unsigned: portcullis::audit::max_unsigned(5),
        anchor: None,
    };
    let report = portcullis::audit::verify_with(copy.path(), &checks).unwrap();
    assert!(!report.ok, "the signed check is not: {report:?}");
    rebuild(copy.path(), |v| v["kind"] == "checkpoint");
    let report = portcullis::audit::verify_with(copy.path(), &checks).unwrap();
    assert!(!report.ok, "nor with the checkpoints taken out: {report:?}");

    // Cut short: the last lines go; the anchor in the store finds it.
    env.gw.shutdown().await;
    let newest = files(&dir).pop().unwrap();
    let text = std::fs::read_to_string(&newest).unwrap();
    let kept: Vec<&str> = text.lines().collect();
    std::fs::write(&newest, kept[..kept.len() - 4].join("\n") + "\n").unwrap();
    let gw = common::start(&env.dir).await;
    let events = read_events(&dir);
    let cut = events
        .iter()
        .find(|e| e["kind"] == "log_truncated")
        .expect("the restart records the cut");
    assert!(
        cut["reason"].as_str().unwrap().contains("cut short"),
        "{cut}"
    );
    let api = common::client(&gw, Some(&env.dir.bootstrap_token()));
    let report = api.get("/api/audit/verify").await.unwrap();
    assert_eq!(report["ok"], false, "{report}");
    gw.shutdown().await;
}
