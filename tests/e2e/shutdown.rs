//! Shutdown: live sessions get a grace period, then end with `ended_by: shutdown`; every
//! event is written before the process is done, and the chain verifies.

use crate::common;

use std::time::Duration;

use common::pg::{PgEnv, read_events};

#[tokio::test]
async fn shutdown_ends_live_sessions_and_writes_every_event() {
    let env = PgEnv::new("").await;
    let clients: Vec<_> = futures::future::join_all((0..5).map(|_| env.alice())).await;
    for c in &clients {
        c.simple_query("select 1").await.unwrap();
    }
    let audit = env.dir.path().join("audit");
    let PgEnv { gw, dir, .. } = env;
    gw.shutdown_with_grace(Duration::from_millis(300)).await;
    for c in &clients {
        let err = c.simple_query("select 1").await.unwrap_err();
        let code = err.as_db_error().map(|d| d.code().code().to_owned());
        assert!(
            code.as_deref() == Some("57P01") || err.is_closed(),
            "{err:?}"
        );
    }
    let events = read_events(&audit);
    let started = events
        .iter()
        .filter(|e| e["kind"] == "session_started")
        .count();
    let ended: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "session_ended")
        .collect();
    assert_eq!(
        (started, ended.len()),
        (5, 5),
        "exactly one session_ended per session"
    );
    assert!(ended.iter().all(|e| e["ended_by"] == "shutdown"));
    assert_eq!(events.iter().filter(|e| e["kind"] == "query").count(), 5);
    assert!(portcullis::audit::verify_dir(&audit).unwrap().ok);
    drop(dir);
}

#[tokio::test]
async fn sessions_that_finish_within_the_grace_period_end_normally() {
    let env = PgEnv::new("").await;
    let c = env.alice().await;
    c.simple_query("select 1").await.unwrap();
    let audit = env.dir.path().join("audit");
    let PgEnv { gw, dir, .. } = env;
    let closer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(c);
    });
    gw.shutdown_with_grace(Duration::from_secs(5)).await;
    closer.await.unwrap();
    let events = read_events(&audit);
    let ended: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "session_ended")
        .collect();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["ended_by"], "client");
    drop(dir);
}

#[tokio::test]
async fn shutdown_under_load_loses_no_event() {
    let env = PgEnv::new("").await;
    let clients: Vec<_> = futures::future::join_all((0..4).map(|_| env.alice())).await;
    let workers: Vec<_> = clients
        .into_iter()
        .map(|c| {
            tokio::spawn(async move {
                let mut answered = 0u64;
                while c.simple_query("select 1").await.is_ok() {
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let audit = env.dir.path().join("audit");
    let PgEnv { gw, dir, .. } = env;
    gw.shutdown_with_grace(Duration::ZERO).await;
    let mut answered = 0;
    for w in workers {
        answered += w.await.unwrap();
    }
    let events = read_events(&audit);
    let logged = events.iter().filter(|e| e["kind"] == "query").count() as u64;
    assert!(answered > 50, "the load ran: {answered}");
    // Every answered statement is logged; at most one per client was cut mid-flight.
    assert!(
        logged >= answered && logged <= answered + 4,
        "answered {answered}, logged {logged}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["kind"] == "session_ended")
            .count(),
        4
    );
    assert!(portcullis::audit::verify_dir(&audit).unwrap().ok);
    drop(dir);
}
