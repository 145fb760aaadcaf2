//! `limits.idle_upstreams`: an upstream PostgreSQL connection its session left idle is
//! reset and serves the next session of the same user, resource role and client parameters —
//! with nothing of the previous session left in it — and everything else gets a fresh one.

use crate::common;

use std::time::{Duration, Instant};

use common::pg::{PASSWORD, PgEnv};

const KEEP: &str = "[limits]\nidle_upstreams = 4\n";

async fn backend_pid(c: &tokio_postgres::Client) -> i32 {
    c.query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

async fn kept(env: &PgEnv, n: usize) {
    common::kept_upstreams(&env.gw, n).await
}

async fn one_i64(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn the_next_session_gets_the_idle_upstream_with_nothing_of_the_last_left() {
    let env = PgEnv::new(KEEP).await;
    let first = env.alice().await;
    let pid = backend_pid(&first).await;
    first
        .batch_execute(
            "SET search_path = pg_catalog; CREATE TEMP TABLE kept_t (x int); \
             PREPARE kept_p AS select 1; select pg_advisory_lock(42); LISTEN kept_channel",
        )
        .await
        .unwrap();
    drop(first);
    kept(&env, 1).await;

    // The same user's next session on the resource role gets that connection, reset (a
    // kept connection carries its user's identity, so it serves that user only).
    let second = env.connect("alice", PASSWORD, "rr").await.unwrap();
    assert_eq!(
        backend_pid(&second).await,
        pid,
        "the kept upstream is reused"
    );
    let reused = &env.gw.gateway.metrics.upstreams_reused_total;
    assert_eq!(reused.load(std::sync::atomic::Ordering::Relaxed), 1);
    kept(&env, 0).await;
    let path: String = second
        .query_one("show search_path", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(path, "\"$user\", public");
    assert_eq!(
        one_i64(
            &second,
            "select count(*) from pg_class where relname = 'kept_t' and relpersistence = 't'"
        )
        .await,
        0,
        "temporary tables are gone"
    );
    assert_eq!(
        one_i64(
            &second,
            "select count(*) from pg_prepared_statements where name = 'kept_p'"
        )
        .await,
        0
    );
    assert_eq!(
        one_i64(
            &second,
            "select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()"
        )
        .await,
        0,
        "advisory locks are released"
    );
    assert_eq!(
        one_i64(&second, "select count(*) from pg_listening_channels()").await,
        0
    );
    drop(second);
    kept(&env, 1).await;
    let metrics = common::client(&env.gw, None)
        .get("/metrics")
        .await
        .unwrap()
        .to_string();
    assert!(metrics.contains("portcullis_upstreams_kept 1"), "{metrics}");
    assert!(
        metrics.contains("portcullis_upstreams_reused_total 1"),
        "{metrics}"
    );

    // Each client login is its own session in the monitoring log.
    let events = env.events().await;
    let count = |kind: &str| events.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!(count("session_started"), 2);
    assert_eq!(count("session_ended"), 2);
    let users: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "session_started")
        .map(|e| e["user"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(users, ["alice", "alice"]);

    // Other client parameters: another connection (the kept one started with others).
    let conn = format!(
        "{} application_name=other",
        env.conn_str("alice", PASSWORD, "rr")
    );
    let (third, driver) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(driver);
    assert_ne!(backend_pid(&third).await, pid);
    drop(third);
    kept(&env, 2).await;
    env.gw.shutdown().await;
    // Shutdown says goodbye on the kept connections: their backends exit.
    let admin = common::pg_admin().await;
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = admin
            .query_one(
                "select count(*) from pg_stat_activity where pid = $1",
                &[&pid],
            )
            .await
            .unwrap()
            .get(0);
        if n == 0 {
            break;
        }
        assert!(
            Instant::now() < until,
            "the kept backend outlived the gateway"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_session_that_leaves_inside_a_transaction_takes_its_upstream_with_it() {
    let env = PgEnv::new(KEEP).await;
    let c = env.alice().await;
    c.batch_execute("CREATE TABLE kept_rows (x int)")
        .await
        .unwrap();
    let pid = backend_pid(&c).await;
    c.batch_execute("BEGIN; INSERT INTO kept_rows VALUES (1)")
        .await
        .unwrap();
    drop(c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        env.gw.gateway.upstreams.kept(),
        0,
        "a connection inside a transaction is not kept"
    );
    let next = env.alice().await;
    assert_ne!(backend_pid(&next).await, pid);
    assert_eq!(
        one_i64(&next, "select count(*) from kept_rows").await,
        0,
        "the open transaction was rolled back"
    );
    env.gw.shutdown().await;
}

#[tokio::test]
async fn a_kept_upstream_that_was_terminated_is_replaced() {
    let env = PgEnv::new(KEEP).await;
    let c = env.alice().await;
    let pid = backend_pid(&c).await;
    drop(c);
    kept(&env, 1).await;
    common::pg_admin()
        .await
        .execute("select pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let next = env.alice().await;
    let new_pid = backend_pid(&next).await;
    assert_ne!(new_pid, pid);
    env.gw.shutdown().await;
}

#[tokio::test]
async fn by_default_every_session_logs_in_anew() {
    let env = PgEnv::new("").await;
    let c = env.alice().await;
    let pid = backend_pid(&c).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(env.gw.gateway.upstreams.kept(), 0);
    let next = env.alice().await;
    assert_ne!(backend_pid(&next).await, pid);
    env.gw.shutdown().await;
}
