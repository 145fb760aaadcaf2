//! Faults: the upstream dies mid-query and comes back; the store is unreachable at start
//! (clear error, non-zero exit) and goes away during operation (live sessions continue,
//! new logins use the last good snapshot, `/readyz` says not ready).

use crate::common;

use std::time::Duration;

use common::cluster::Cluster;
use common::pg::{PASSWORD, read_events};
use common::{Dir, start};

fn pg_conn(port: u16) -> String {
    format!("host=127.0.0.1 port={port} user=alice password={PASSWORD} dbname=rr sslmode=disable")
}

async fn connect(port: u16) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (c, conn) = tokio_postgres::connect(&pg_conn(port), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(c)
}

#[tokio::test]
async fn an_upstream_that_dies_mid_query_ends_the_session_and_is_used_again_once_back() {
    let cluster = Cluster::start("host all all 127.0.0.1/32 scram-sha-256\n");
    let su = cluster.superuser().await;
    su.batch_execute("CREATE ROLE app LOGIN PASSWORD 'app-pw'")
        .await
        .unwrap();
    drop(su);
    let dir = Dir::new();
    let declared = common::declarations(
        "private",
        "postgres",
        &format!("127.0.0.1:{}", cluster.port),
        "disable",
        "postgres",
        "app",
        "app-pw",
    );
    dir.write_config(None, &declared);
    let gw = start(&dir).await;
    let port = gw.postgres_addr.unwrap().port();

    let c = connect(port).await.unwrap();
    c.simple_query("select 1").await.unwrap();
    let sleeping = tokio::spawn(async move { c.simple_query("select pg_sleep(30)").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.kill();
    let err = tokio::time::timeout(Duration::from_secs(10), sleeping)
        .await
        .expect("the client is told, not left hanging")
        .unwrap()
        .unwrap_err();
    let code = err.as_db_error().map(|d| d.code().code().to_owned());
    assert!(
        code.as_deref().is_some_and(|c| c.starts_with("57")) || err.is_closed(),
        "{err:?}"
    );

    // While it is down: a clear connection error, not a hang.
    let down = connect(port).await.unwrap_err();
    assert_eq!(
        down.as_db_error().map(|d| d.code().code()),
        Some("08001"),
        "{down:?}"
    );

    // Back up: new sessions work without restarting the gateway.
    cluster.restart();
    let again = connect(port).await.unwrap();
    again.simple_query("select 2").await.unwrap();
    drop(again);
    gw.shutdown().await;

    let events = read_events(&dir.path().join("audit"));
    let ended: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "session_ended")
        .collect();
    assert_eq!(ended.len(), 2, "{ended:?}");
    assert_eq!(ended[0]["ended_by"], "upstream", "{:?}", ended[0]);
    // The second ends as the client closes, or at the shutdown right after.
    assert!(
        ended[1]["ended_by"] == "client" || ended[1]["ended_by"] == "shutdown",
        "{:?}",
        ended[1]
    );
}

#[tokio::test]
async fn an_unreachable_store_at_start_is_a_clear_error_and_a_non_zero_exit() {
    let dir = Dir::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    dir.write_config(
        Some(&format!("postgres://postgres@127.0.0.1:{port}/nowhere")),
        "",
    );
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["serve", "--config"])
            .arg(dir.config_path())
            .output(),
    )
    .await
    .expect("the gateway gives up instead of hanging")
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot open the store"), "{stderr}");
}

#[tokio::test]
async fn losing_the_store_keeps_live_sessions_and_logins_on_the_last_snapshot() {
    let url = common::fresh_pg_database().await;
    let db = url.rsplit('/').next().unwrap().to_owned();
    let env_role = common::unique("r");
    let admin = common::pg_admin().await;
    admin
        .batch_execute(&format!("CREATE ROLE {env_role} LOGIN"))
        .await
        .unwrap();
    let dir = Dir::new();
    let declared = common::declarations(
        "pg",
        "postgres",
        "127.0.0.1:5432",
        "disable",
        "test",
        &env_role,
        "unused",
    );
    dir.write_config(Some(&url), &declared);
    let gw = start(&dir).await;
    let port = gw.postgres_addr.unwrap().port();
    let live = connect(port).await.unwrap();
    live.simple_query("select 1").await.unwrap();

    // The store goes away: no new connections to its database, existing ones cut.
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {db} WITH ALLOW_CONNECTIONS false;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"
        ))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    live.simple_query("select 2").await.unwrap();
    let fresh = connect(port).await.unwrap();
    fresh.simple_query("select 3").await.unwrap();
    let api = common::client(&gw, None);
    let ready = api.get("/readyz").await;
    assert_eq!(
        common::status(ready),
        503,
        "not ready while the store is gone"
    );

    admin
        .batch_execute(&format!("ALTER DATABASE {db} WITH ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    drop((live, fresh));
    gw.shutdown().await;
}
