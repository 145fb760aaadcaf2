//! A gateway killed with SIGKILL mid-session: the log it leaves verifies (a cut last line is
//! reported as such), and the next start of the same instance gives the orphaned session
//! its one `session_ended` and closes it in the session index.

use crate::common;

use std::time::Duration;

use common::pg::{PgEnv, read_events};

#[tokio::test]
async fn sigkill_leaves_a_verifiable_log_and_the_restart_ends_the_orphans() {
    let (mut child, port, dir, config) = PgEnv::new("").await.into_process().await;
    let conn = format!(
        "host=127.0.0.1 port={port} user=alice password={} dbname=rr sslmode=disable",
        common::pg::PASSWORD
    );
    let mut client = None;
    for _ in 0..100 {
        if let Ok((c, conn)) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await {
            tokio::spawn(conn);
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let client = client.expect("the gateway process accepts sessions");
    for i in 0..5 {
        client.simple_query(&format!("select {i}")).await.unwrap();
    }
    // The default fsync window is at most a second; the writer itself is faster.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(client.simple_query("select 1").await.is_err());

    let audit = dir.path().join("audit");
    let report = portcullis::audit::verify_dir(&audit).unwrap();
    assert!(
        report.ok,
        "the prefix up to the last complete line verifies: {report:?}"
    );
    let before = read_events(&audit);
    let session_id = before
        .iter()
        .find(|e| e["kind"] == "session_started")
        .map(|e| e["session_id"].as_str().unwrap().to_owned())
        .expect("the session started before the kill");
    assert!(!before.iter().any(|e| e["kind"] == "session_ended"));

    // The same instance starts again (in-process, on a free port).
    std::fs::write(dir.config_path(), &config).unwrap();
    let gw = common::start(&dir).await;
    let token = dir.bootstrap_token();
    let api = common::client(&gw, Some(&token));
    let shown = api
        .get(&format!("/api/sessions/{session_id}"))
        .await
        .unwrap();
    assert_eq!(shown["ended_by"], "error", "{shown}");
    assert_eq!(shown["queries"], 5, "{shown}");
    assert_eq!(shown["statements"].as_array().map(Vec::len), Some(5));
    gw.shutdown().await;

    let after = read_events(&audit);
    let ended: Vec<_> = after
        .iter()
        .filter(|e| e["kind"] == "session_ended" && e["session_id"] == session_id.as_str())
        .collect();
    assert_eq!(ended.len(), 1, "exactly one session_ended for the orphan");
    assert_eq!(ended[0]["ended_by"], "error");
    assert_eq!(ended[0]["queries"], 5);
    assert_eq!(ended[0]["user"], "alice");
    assert!(portcullis::audit::verify_dir(&audit).unwrap().ok);
}

/// With `audit.durability = "acknowledged"`, a statement whose result a client received is
/// in the log even after `kill -9` — with many sessions busy at the moment of the kill.
/// (With the default, `written`, this test fails: a few statements clients saw complete
/// are still in the gateway's channel when it dies.)
#[tokio::test]
async fn acknowledged_statements_survive_sigkill() {
    let (mut child, port, dir, _) = PgEnv::new("[audit]\ndurability = \"acknowledged\"\n")
        .await
        .into_process()
        .await;
    let conn = format!(
        "host=127.0.0.1 port={port} user=alice password={} dbname=rr sslmode=disable",
        common::pg::PASSWORD
    );
    for _ in 0..100 {
        if tokio_postgres::connect(&conn, tokio_postgres::NoTls)
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut workers = Vec::new();
    // 30 in CI; the figure is measured with PORTCULLIS_KILL9_SESSIONS=150.
    let sessions: usize = std::env::var("PORTCULLIS_KILL9_SESSIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(30);
    for w in 0..sessions {
        let (conn, acked) = (conn.clone(), std::sync::Arc::clone(&acked));
        workers.push(tokio::spawn(async move {
            let Ok((c, connection)) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await
            else {
                return;
            };
            tokio::spawn(connection);
            for i in 0.. {
                let marker = format!("select 'w{w}-{i}'");
                if c.simple_query(&marker).await.is_err() {
                    return;
                }
                acked.lock().unwrap().push(marker);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    for w in workers {
        let _ = w.await;
    }
    let logged: std::collections::HashSet<String> = read_events(&dir.path().join("audit"))
        .iter()
        .filter_map(|e| e["statement"].as_str().map(str::to_owned))
        .collect();
    let acked = acked.lock().unwrap();
    assert!(acked.len() > 100, "only {} statements ran", acked.len());
    eprintln!(
        "{sessions} sessions: {} statements acknowledged before kill -9",
        acked.len()
    );
    let missing: Vec<_> = acked.iter().filter(|m| !logged.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged statements are not in the log: {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
}
