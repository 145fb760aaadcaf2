//! Real clients through the gateway to a real PostgreSQL: tokio-postgres, psql, pgbench
//! and psycopg — simple and extended protocol, pipelining, transactions, COPY, LISTEN/
//! NOTIFY, cancel, large results, unicode — and what the monitoring log records of it.

use crate::common;

use std::time::{Duration, Instant};

use common::pg::{PASSWORD, PgEnv, psql};
use futures::{StreamExt, TryStreamExt};

#[tokio::test]
async fn extended_protocol_prepared_pipelined_and_transactions() {
    let env = PgEnv::new("").await;
    let c = env.alice().await;
    c.batch_execute("create table t (id int primary key, name text)")
        .await
        .unwrap();
    let insert = c.prepare("insert into t values ($1, $2)").await.unwrap();
    for i in 0..10 {
        c.execute(&insert, &[&i, &format!("n{i}")]).await.unwrap();
    }
    // Pipelining: several queries in flight at once on one connection.
    let q = c.prepare("select name from t where id = $1").await.unwrap();
    let ids: Vec<i32> = (0..10).collect();
    let params: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 1]> =
        ids.iter().map(|i| [i as _]).collect();
    let futs: Vec<_> = params.iter().map(|p| c.query_one(&q, p)).collect();
    let rows = futures::future::try_join_all(futs).await.unwrap();
    assert_eq!(rows[7].get::<_, String>(0), "n7");

    let mut c2 = env.alice().await;
    let tx = c2.transaction().await.unwrap();
    tx.execute("delete from t", &[]).await.unwrap();
    tx.rollback().await.unwrap();
    let n: i64 = c2
        .query_one("select count(*) from t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 10, "rollback undid the delete");

    let err = c
        .query("select * from missing_table", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "42P01");
    let text = "héllo wörld ✓ 你好 🐘";
    let back: String = c
        .query_one("select $1::text", &[&text])
        .await
        .unwrap()
        .get(0);
    assert_eq!(back, text);
    drop((c, c2));

    let queries: Vec<_> = env
        .events()
        .await
        .into_iter()
        .filter(|e| e["kind"] == "query")
        .collect();
    let executes = queries.iter().filter(|e| e["op"] == "execute").count();
    // 1 create (simple) + 10 inserts + 10 selects + begin/delete/rollback + count + failing + unicode
    assert!(executes >= 23, "{executes} execute events");
    let insert_ev = queries
        .iter()
        .find(|e| e["statement"] == "insert into t values ($1, $2)")
        .unwrap();
    assert_eq!(insert_ev["rows"], 1);
    assert!(insert_ev["params"].is_array());
    let failed = queries.iter().find(|e| e["error_code"] == "42P01").unwrap();
    assert_eq!(failed["status"], "error");
    assert!(queries.iter().any(|e| e["statement"] == "select $1::text"));
    env.gw.shutdown().await;
}

#[tokio::test]
async fn every_statement_is_one_query_event_and_sessions_start_and_end_once() {
    let env = PgEnv::new("").await;
    let conn = env.conn_str("alice", PASSWORD, "rr");
    let script = "select 1; select 2;\nselect 3;\nselect 1/0;\n";
    psql(
        &conn,
        &[
            "-v",
            "ON_ERROR_STOP=0",
            "-c",
            "select 1",
            "-c",
            "select 'two'",
            "-c",
            "select nope",
        ],
    )
    .await;
    let file = env.dir.path().join("script.sql");
    std::fs::write(&file, script).unwrap();
    psql(
        &conn,
        &["-v", "ON_ERROR_STOP=0", "-f", file.to_str().unwrap()],
    )
    .await;
    let events = env.events().await;
    let q = events.iter().filter(|e| e["kind"] == "query").count();
    assert_eq!(q, 3 + 4, "one event per statement sent");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["kind"] == "session_started")
            .count(),
        2
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["kind"] == "session_ended")
            .count(),
        2
    );
    env.gw.shutdown().await;
}

#[tokio::test]
async fn copy_in_and_out_of_100k_rows_matches_direct() {
    let env = PgEnv::new("").await;
    let conn = env.conn_str("alice", PASSWORD, "rr");
    let data = (0..100_000)
        .map(|i| format!("{i}\tname-{i}\n"))
        .collect::<String>();
    let file = env.dir.path().join("rows.tsv");
    std::fs::write(&file, &data).unwrap();
    let (ok, _, err) = psql(
        &conn,
        &[
            "-c",
            "create table c (id int, name text)",
            "-c",
            &format!("\\copy c from '{}'", file.display()),
        ],
    )
    .await;
    assert!(ok, "{err}");
    let through = psql(
        &conn,
        &["-c", "copy (select * from c order by id) to stdout"],
    )
    .await;
    let direct_conn = format!("host=127.0.0.1 port=5432 user=postgres dbname={}", env.db);
    let direct = psql(
        &direct_conn,
        &["-c", "copy (select * from c order by id) to stdout"],
    )
    .await;
    assert!(through.0 && direct.0);
    assert_eq!(through.1.len(), data.len());
    assert_eq!(sha(&through.1), sha(&direct.1));
    assert_eq!(sha(&through.1), sha(&data));
    let copies: Vec<_> = env
        .events()
        .await
        .into_iter()
        .filter(|e| e["kind"] == "query" && e["rows"] == 100_000)
        .collect();
    assert_eq!(copies.len(), 2, "COPY FROM and COPY TO, 100k rows each");
    env.gw.shutdown().await;
}

fn sha(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

#[tokio::test]
async fn a_million_row_result_arrives_whole() {
    let env = PgEnv::new("").await;
    let c = env.alice().await;
    let stream = c
        .query_raw(
            "select g, 'row ' || g from generate_series(1, 1000000) g",
            std::iter::empty::<i32>(),
        )
        .await
        .unwrap();
    let n = stream
        .try_fold(0u64, |n, _| async move { Ok(n + 1) })
        .await
        .unwrap();
    assert_eq!(n, 1_000_000);
    drop(c);
    let ev = env
        .events()
        .await
        .into_iter()
        .find(|e| e["kind"] == "query" && e["rows"] == 1_000_000);
    assert!(ev.is_some());
    env.gw.shutdown().await;
}

#[tokio::test]
async fn cancel_interrupts_pg_sleep_within_two_seconds() {
    let env = PgEnv::new("").await;
    let c = env.alice().await;
    let token = c.cancel_token();
    let t = Instant::now();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    });
    let err = c.simple_query("select pg_sleep(30)").await.unwrap_err();
    canceller.await.unwrap();
    assert_eq!(err.code().unwrap().code(), "57014");
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    // The session survives a cancel.
    c.simple_query("select 1").await.unwrap();
    env.gw.shutdown().await;
}

#[tokio::test]
async fn listen_notify_between_two_sessions() {
    let env = PgEnv::new("").await;
    let (listener, mut conn) = tokio_postgres::connect(
        &env.conn_str("alice", PASSWORD, "rr"),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(m)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = tx.send((n.channel().to_owned(), n.payload().to_owned()));
            }
        }
    });
    listener.batch_execute("listen jobs").await.unwrap();
    let sender = env.alice().await;
    sender.batch_execute("notify jobs, 'run-42'").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, ("jobs".to_owned(), "run-42".to_owned()));
    env.gw.shutdown().await;
}

#[tokio::test]
async fn application_name_and_startup_parameters_reach_the_upstream() {
    let env = PgEnv::new("").await;
    let conn = format!(
        "{} application_name=bi-tool options='-c search_path=custom'",
        env.conn_str("alice", PASSWORD, "rr")
    );
    let (ok, out, err) = psql(
        &conn,
        &[
            "-c",
            "select current_setting('application_name'), current_setting('search_path')",
        ],
    )
    .await;
    assert!(ok, "{err}");
    // The server's application_name also says who is behind the session.
    assert_eq!(out.trim(), "bi-tool (alice via portcullis)|custom");
    env.gw.shutdown().await;
}

#[tokio::test]
async fn pgbench_simple_extended_and_prepared_without_failures() {
    let env = PgEnv::new("").await;
    let direct = format!(
        "host=127.0.0.1 port=5432 user={} dbname={}",
        env.role, env.db
    );
    let init = tokio::process::Command::new("pgbench")
        .args(["-i", "-s", "1", "-q", &direct])
        .output()
        .await
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    for mode in ["simple", "extended", "prepared"] {
        let out = tokio::process::Command::new("pgbench")
            .env("PGPASSWORD", PASSWORD)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &env.port.to_string(),
                "-U",
                "alice",
                "-c",
                "4",
                "-t",
                "50",
                "-M",
                mode,
                "rr",
            ])
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{mode}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("number of failed transactions: 0"),
            "{mode}: {text}"
        );
        assert!(
            text.contains("number of transactions actually processed: 200/200"),
            "{mode}: {text}"
        );
    }
    env.gw.shutdown().await;
}

#[tokio::test]
async fn psycopg_works_through_the_gateway() {
    let env = PgEnv::new("").await;
    let script = format!(
        r#"
import psycopg
with psycopg.connect("{}") as conn:
    conn.execute("create table p (id int, v text)")
    with conn.cursor() as cur:
        cur.executemany("insert into p values (%s, %s)", [(i, f"v{{i}}") for i in range(100)])
        cur.execute("select count(*), max(v) from p where id < %s", (50,))
        print(cur.fetchone())
    try:
        conn.execute("select 1/0")
    except psycopg.errors.DivisionByZero as e:
        print("sqlstate", e.sqlstate)
"#,
        env.conn_str("alice", PASSWORD, "rr")
    );
    let text = common::clients::python(&script).await;
    assert!(
        text.contains("(50, 'v9')") && text.contains("sqlstate 22012"),
        "{text}"
    );
    env.gw.shutdown().await;
}
