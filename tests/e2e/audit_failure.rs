//! When the monitoring log cannot be written: `on_failure = "block"` refuses new sessions
//! (57P03) and loses nothing once the log is writable again; `"continue"` keeps serving and
//! counts the lost events in `/metrics` and in the next event written. The fault: the next
//! rotated file's name is taken by a directory.

use crate::common;

use std::time::Duration;

use common::pg::{PgEnv, read_events};

/// Fills the first file so the next event needs the (blocked) second one.
async fn fill_first_file(env: &PgEnv) {
    let c = env.alice().await;
    for i in 0..40 {
        c.simple_query(&format!("select {i}, 'padding padding padding padding'"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn block_refuses_new_sessions_and_loses_nothing() {
    let env = PgEnv::new("[audit]\nrotate_bytes = 4096\non_failure = \"block\"\n").await;
    let audit = env.dir.path().join("audit");
    let blocker = audit.join("portcullis-000002.jsonl");
    std::fs::create_dir_all(&blocker).unwrap();
    let filler = tokio::spawn({
        let conn = env.conn_str("alice", common::pg::PASSWORD, "rr");
        async move {
            let (c, conn) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            for i in 0..40 {
                c.simple_query(&format!("select {i}, 'padding padding padding padding'"))
                    .await
                    .unwrap();
            }
        }
    });
    // Wait until the writer has hit the fault.
    let mut refused = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Err(e) = env.connect("alice", common::pg::PASSWORD, "rr").await {
            refused = Some(e);
            break;
        }
    }
    let err = refused.expect("new sessions are refused while the log cannot be written");
    assert_eq!(err.as_db_error().unwrap().code().code(), "57P03");
    std::fs::remove_dir(&blocker).unwrap();
    filler.await.unwrap();
    // The writer retries every second; then sessions are admitted again.
    let mut c = None;
    for _ in 0..50 {
        if let Ok(ok) = env.connect("alice", common::pg::PASSWORD, "rr").await {
            c = Some(ok);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c = c.expect("sessions are admitted once the log is writable");
    c.simple_query("select 'after'").await.unwrap();
    drop(c);
    let _ = env.events().await;
    let audit_dir = audit.clone();
    env.gw.shutdown().await;
    let events = read_events(&audit_dir);
    assert_eq!(
        events.iter().filter(|e| e["kind"] == "query").count(),
        41,
        "nothing lost"
    );
    assert!(portcullis::audit::verify_dir(&audit_dir).unwrap().ok);
}

/// More statements than the writer's queue and batch hold (8 192 + 512) while it cannot
/// write: the session waits with them (back-pressure), and once the log is writable every
/// event arrives, in the order the statements ran.
#[tokio::test]
async fn a_session_waits_for_a_blocked_log_and_its_events_stay_in_order() {
    const N: usize = 9_000;
    let env = PgEnv::new("[audit]\nrotate_bytes = 4096\non_failure = \"block\"\n").await;
    let audit = env.dir.path().join("audit");
    let blocker = audit.join("portcullis-000002.jsonl");
    std::fs::create_dir_all(&blocker).unwrap();
    let c = env.alice().await;
    let run = tokio::spawn(async move {
        // Pipelined: each query is sent when first polled, in this order.
        let texts: Vec<String> = (0..N).map(|i| format!("select {i}")).collect();
        let queries = texts.iter().map(|q| c.simple_query(q));
        futures::future::join_all(queries)
            .await
            .iter()
            .all(Result::is_ok)
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !run.is_finished(),
        "the session waits while the log is behind"
    );
    std::fs::remove_dir(&blocker).unwrap();
    let all_ok = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the session goes on once the log is writable")
        .unwrap();
    assert!(all_ok, "every statement ran");
    env.gw.shutdown().await;
    let statements: Vec<String> = read_events(&audit)
        .iter()
        .filter(|e| e["kind"] == "query")
        .map(|e| e["statement"].as_str().unwrap_or_default().to_owned())
        .collect();
    let expected: Vec<String> = (0..N).map(|i| format!("select {i}")).collect();
    assert_eq!(statements.len(), N, "nothing lost");
    assert!(
        statements == expected,
        "the events are in the order the statements ran"
    );
    assert!(portcullis::audit::verify_dir(&audit).unwrap().ok);
}

#[tokio::test]
async fn continue_keeps_serving_and_counts_what_was_lost() {
    let env = PgEnv::new("[audit]\nrotate_bytes = 4096\non_failure = \"continue\"\n").await;
    let audit = env.dir.path().join("audit");
    std::fs::create_dir_all(audit.join("portcullis-000002.jsonl")).unwrap();
    fill_first_file(&env).await;
    // Sessions keep working while events are lost.
    env.alice().await.simple_query("select 1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = common::client(&env.gw, None)
        .get("/metrics")
        .await
        .unwrap()
        .to_string();
    let lost: u64 = metrics
        .split("\\naudit_events_lost ")
        .nth(1)
        .and_then(|v| v.split('\\').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(lost > 0, "{metrics}");
    std::fs::remove_dir(audit.join("portcullis-000002.jsonl")).unwrap();
    env.alice()
        .await
        .simple_query("select 'after'")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    env.gw.shutdown().await;
    let events = read_events(&audit);
    assert!(
        events
            .iter()
            .any(|e| e["audit_events_lost"].as_u64().is_some_and(|n| n > 0)),
        "the next event written reports the loss"
    );
}
