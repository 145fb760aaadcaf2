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
