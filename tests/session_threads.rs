//! `limits.session_threads`: sessions on single-threaded runtimes, one per core. The same
//! logins, statements, monitoring and shutdown as on the shared runtime.
#![allow(clippy::unwrap_used)]

mod common;

use common::my::MyEnv;
use common::pg::PgEnv;

const PER_CORE: &str = "[limits]\nsession_threads = 2\n";

#[tokio::test]
async fn postgres_sessions_spread_over_the_session_threads_and_are_logged() {
    let env = PgEnv::new(PER_CORE).await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(env.alice().await);
    }
    // Each login went to the least busy session thread.
    let cores = env.gw.cores.as_ref().expect("session threads are running");
    assert_eq!(cores.live(), [2, 2]);
    for (i, c) in clients.iter().enumerate() {
        let row = c
            .query_one("select $1::int + 1", &[&(i as i32)])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), i as i32 + 1);
    }
    // A session still open at shutdown is ended by it, once.
    let open = clients.pop().unwrap();
    drop(clients);
    let events = env.events().await;
    let count = |kind: &str| events.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!(count("session_started"), 4);
    assert_eq!(count("query"), 4);
    env.gw.shutdown().await;
    drop(open);
    let events = common::pg::read_events(&env.dir.path().join("audit"));
    let ended = events
        .iter()
        .filter(|e| e["kind"] == "session_ended")
        .count();
    assert_eq!(ended, 4, "every session ended exactly once");
}

#[tokio::test]
async fn mysql_sessions_run_on_the_session_threads() {
    let env = MyEnv::new(PER_CORE).await;
    let (ok, out, err) = env
        .client(
            "alice",
            common::my::PASSWORD,
            "rr",
            &["-e", "select 40 + 2"],
        )
        .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "42");
    let events = env.events().await;
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "query" && e["statement"] == "select 40 + 2")
    );
    env.gw.shutdown().await;
}
