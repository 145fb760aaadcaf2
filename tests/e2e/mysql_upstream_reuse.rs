//! `limits.idle_upstreams` for MySQL: an upstream connection its session left idle is reset
//! (`COM_RESET_CONNECTION`, then back to the resource role's database) and serves the next
//! session of the same user, resource role and client parameters, with nothing of the previous
//! session left in it; a session that leaves a transaction open takes its upstream with it.

use crate::common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::my::{MyEnv, PASSWORD, direct};
use mysql_async::prelude::*;

const KEEP: &str = "[limits]\nidle_upstreams = 4\n";

async fn connect(env: &MyEnv, user: &str) -> mysql_async::Conn {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(env.port)
        .user(Some(user))
        .pass(Some(PASSWORD))
        .db_name(Some("rr"))
        .prefer_socket(false);
    mysql_async::Conn::new(opts).await.unwrap()
}

async fn kept(env: &MyEnv, n: usize) {
    common::kept_upstreams(&env.gw, n).await
}

async fn first<T: FromValue + Send + 'static>(c: &mut mysql_async::Conn, sql: &str) -> T {
    c.query_first(sql).await.unwrap().unwrap()
}

#[tokio::test]
async fn the_next_session_gets_the_idle_upstream_reset() {
    let env = MyEnv::new(KEEP).await;
    let mut c = connect(&env, "alice").await;
    let thread: u64 = first(&mut c, "select connection_id()").await;
    let charset: String = first(&mut c, "select @@character_set_client").await;
    c.query_drop(
        "create temporary table kept_t (x int); set @kept = 5; set names latin1; \
         set session sql_mode = ''; prepare kept_p from 'select 1'; use information_schema",
    )
    .await
    .unwrap();
    c.disconnect().await.unwrap();
    kept(&env, 1).await;

    // The same user's next session gets that connection, reset (a kept connection
    // carries its user's identity, so it serves that user only).
    let mut c = connect(&env, "alice").await;
    assert_eq!(
        first::<u64>(&mut c, "select connection_id()").await,
        thread,
        "the kept upstream is reused"
    );
    let reused = &env.gw.gateway.metrics.upstreams_reused_total;
    assert_eq!(reused.load(Ordering::Relaxed), 1);
    kept(&env, 0).await;
    assert_eq!(
        first::<String>(&mut c, "select database()").await,
        env.db,
        "back in the resource role's database"
    );
    let var: Option<i64> = c.query_first("select @kept").await.unwrap().unwrap();
    assert_eq!(var, None, "user variables are gone");
    assert!(
        c.query_drop("select * from kept_t").await.is_err(),
        "temporary tables are gone"
    );
    assert!(
        c.query_drop("execute kept_p").await.is_err(),
        "prepared statements are gone"
    );
    assert_eq!(
        first::<String>(&mut c, "select @@character_set_client").await,
        charset,
        "the login's character set, not the last session's"
    );
    let global: String = first(&mut c, "select @@global.sql_mode").await;
    assert_eq!(first::<String>(&mut c, "select @@sql_mode").await, global);
    // The gateway's KILL translation knows the reused connection's thread.
    let id: u32 = c.id();
    let mut other = connect(&env, "alice").await;
    other.query_drop(format!("KILL QUERY {id}")).await.unwrap();
    other.disconnect().await.unwrap();
    c.disconnect().await.unwrap();

    let events = env.events().await;
    let started = events
        .iter()
        .filter(|e| e["kind"] == "session_started")
        .count();
    assert_eq!(started, 3, "each client login is its own session");
    env.gw.shutdown().await;
}

#[tokio::test]
async fn an_open_transaction_is_not_kept_and_other_parameters_get_their_own() {
    let env = MyEnv::new(KEEP).await;
    direct(&format!("create table {}.t (x int) engine=InnoDB", env.db)).await;
    let mut c = connect(&env, "alice").await;
    c.query_drop("begin; insert into t values (1)")
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        env.gw.gateway.upstreams.kept(),
        0,
        "a transaction's upstream goes"
    );
    let rows = direct(&format!("select count(*) from {}.t", env.db)).await;
    assert!(rows.contains('0'), "rolled back: {rows}");

    // The mariadb CLI logs in with other capabilities than mysql_async: its own upstream.
    let mut c = connect(&env, "alice").await;
    c.query_drop("select 1").await.unwrap();
    c.disconnect().await.unwrap();
    kept(&env, 1).await;
    let (ok, out, err) = env
        .client("alice", PASSWORD, "rr", &["-e", "select 2"])
        .await;
    assert!(ok, "{err}");
    assert!(out.contains('2'));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reused = env
        .gw
        .gateway
        .metrics
        .upstreams_reused_total
        .load(Ordering::Relaxed);
    assert_eq!(
        reused, 0,
        "different client parameters do not share a connection"
    );
    env.gw.shutdown().await;
}
