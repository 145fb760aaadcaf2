//! `limits.threads = 1`: the gateway process runs every session on its main thread (as
//! PgBouncer runs), and nothing of a session is lost or mixed up: concurrent sessions of
//! the simple and extended protocols each get every statement logged, one
//! `session_ended` each, and a chain that verifies after a graceful stop.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::pg::{PgEnv, read_events};

/// CPU clock ticks (user + system) a thread, or with `tid = None` the whole process
/// (threads that ended included), has used.
fn ticks(pid: u32, tid: Option<u32>) -> u64 {
    let path = match tid {
        Some(tid) => format!("/proc/{pid}/task/{tid}/stat"),
        None => format!("/proc/{pid}/stat"),
    };
    let stat = std::fs::read_to_string(path).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success(), "a graceful stop");
}

/// Sessions at once, and statements each (half simple `select`s, half prepared).
const SESSIONS: i32 = 8;
const EACH: i32 = 200;

async fn run_sessions(port: u16) {
    let conn = format!(
        "host=127.0.0.1 port={port} user=alice password={} dbname=rr sslmode=disable",
        common::pg::PASSWORD
    );
    let mut tasks = Vec::new();
    for s in 0..SESSIONS {
        let conn = conn.clone();
        tasks.push(tokio::spawn(async move {
            let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            for i in 0..EACH {
                let n: i32 = s * 1000 + i;
                if i % 2 == 0 {
                    let got = client.simple_query(&format!("select {n}")).await.unwrap();
                    let value = got.iter().find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
                        _ => None,
                    });
                    assert_eq!(value, Some(n.to_string()));
                } else {
                    let row = client.query_one("select $1::int + 0", &[&n]).await;
                    assert_eq!(row.unwrap().get::<_, i32>(0), n);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn one_thread_runs_concurrent_sessions_with_every_statement_logged() {
    let (child, port, dir, _) = PgEnv::new("[limits]\nthreads = 1\n")
        .await
        .into_process()
        .await;
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = child.id();
    if !up {
        stop(child);
        panic!("the gateway process does not listen");
    }
    let (main0, all0) = (ticks(pid, Some(pid)), ticks(pid, None));
    run_sessions(port).await;
    let (main1, all1) = (ticks(pid, Some(pid)), ticks(pid, None));
    // The relaying ran on the main thread (with the default runtime the main thread only
    // waits for the workers); the log writer and the store have threads of their own.
    let (main, all) = (main1 - main0, all1 - all0);
    assert!(all > 0, "the sessions used the gateway's CPU");
    assert!(
        main * 2 >= all,
        "the main thread used {main} of the gateway's {all} ticks"
    );
    // A graceful stop: every event written, the chain closed.
    stop(child);

    let audit = dir.path().join("audit");
    assert!(portcullis::audit::verify_dir(&audit).unwrap().ok);
    let events = read_events(&audit);
    let count = |kind: &str| events.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!(count("session_started"), SESSIONS as usize);
    assert_eq!(count("session_ended"), SESSIONS as usize);
    for s in 0..SESSIONS {
        for i in (0..EACH).step_by(2) {
            let text = format!("select {}", s * 1000 + i);
            assert!(
                events.iter().any(|e| e["statement"] == text.as_str()),
                "{text} is in the log"
            );
        }
    }
    let executes = events
        .iter()
        .filter(|e| e["op"] == "execute" && e["statement"] == "select $1::int + 0")
        .count();
    assert_eq!(executes, (SESSIONS * EACH / 2) as usize);
}

#[test]
fn more_threads_than_allowed_is_a_config_error() {
    let dir = common::Dir::new();
    dir.write_config(None, "[limits]\nthreads = 5000\n");
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check-config", "--config"])
        .arg(dir.config_path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("limits.threads"), "{err}");
}
