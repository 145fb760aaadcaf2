//! One-offs (`web` mode) through the API and the CLI, against the real PostgreSQL and
//! MariaDB: typed results, multi-statement runs that stop at the first error, bound
//! parameters, row limits, timeouts cancelled on the server, refusals; each run a session
//! in the index and the monitoring log.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common;
use common::my::MyEnv;
use common::pg::PgEnv;
use common::{status, user_client};

fn exec_path(role: &str) -> String {
    format!("/api/resource-roles/{role}/exec")
}

#[tokio::test]
async fn one_offs_on_postgres_are_sessions_with_typed_results() {
    let env = PgEnv::new("").await;
    let alice = user_client(&env.gw, &env.dir, "alice").await;
    let run = |body: Value| {
        let alice = &alice;
        async move { alice.post(&exec_path("rr-ops"), body).await.unwrap() }
    };
    let done = run(json!({"statement": "create table t (id int primary key, v text, n numeric, b bool, d bytea, f float8);\
        insert into t values (1, 'a', 1.5, true, '\\x0102', 0.25), (2, null, 12345678901234567890.5, false, null, null);\
        select * from t order by id"}))
    .await;
    let results = done["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{done}");
    assert!(done["failed"].is_null());
    assert_eq!(results[1]["rows_affected"], 2);
    let select = &results[2];
    let types: Vec<&str> = select["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["int4", "text", "numeric", "bool", "bytea", "float8"]
    );
    assert_eq!(
        select["rows"],
        json!([
            [1, "a", 1.5, true, "AQI=", 0.25],
            [2, null, "12345678901234567890.5", false, null, null]
        ])
    );
    // Several statements stop at the first error, which says which one and why.
    let done = run(json!({"statement": "select 1; select * from nope; select 2"})).await;
    assert_eq!(done["failed"], 1);
    assert_eq!(done["results"].as_array().unwrap().len(), 2);
    assert_eq!(done["results"][1]["error"]["code"], "42P01");
    // Parameters are bound by the server.
    let done = run(json!({"statement": "select $1::int + 1 as n, $2::text as t", "params": [41, "' or 1=1 --"]})).await;
    assert_eq!(done["results"][0]["rows"], json!([[42, "' or 1=1 --"]]));
    // max_rows cuts, and says so.
    let done = run(json!({"statement": "select generate_series(1, 10) as g", "max_rows": 3})).await;
    assert_eq!(done["results"][0]["rows"], json!([[1], [2], [3]]));
    assert_eq!(done["results"][0]["truncated"], true);
    // Notices come back.
    let done = run(json!({"statement": "do $$ begin raise notice 'hello there'; end $$"})).await;
    let notices = done["results"][0]["notices"].to_string();
    assert!(notices.contains("hello there"), "{done}");
    // Who is behind it shows in pg_stat_activity.
    let done = run(json!({"statement": "select application_name from pg_stat_activity where pid = pg_backend_pid()"})).await;
    assert_eq!(
        done["results"][0]["rows"],
        json!([["portcullis-exec (alice via portcullis)"]])
    );
    // A statement past its timeout is cancelled on the server.
    let started = Instant::now();
    let done = run(json!({"statement": "select pg_sleep(20)", "timeout": "1s"})).await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(done["results"][0]["error"]["code"], "57014", "{done}");
    let admin = common::pg_admin().await;
    let sleeping = admin
        .query_one(
            "select count(*) from pg_stat_activity where query = 'select pg_sleep(20)' and state = 'active'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        sleeping.get::<_, i64>(0),
        0,
        "the statement still runs upstream"
    );
    // Each run is a session: in the index (mode web) with its statements.
    let sessions = alice.get("/api/sessions?mode=web").await.unwrap();
    assert_eq!(sessions.as_array().unwrap().len(), 7, "{sessions}");
    let id = done["session_id"].as_str().unwrap();
    let shown = alice.get(&format!("/api/sessions/{id}")).await.unwrap();
    assert_eq!(shown["statements"][0]["statement"], "select pg_sleep(20)");
    assert_eq!(shown["statements"][0]["error_code"], "57014");
    let events = env.events().await;
    let bound = events
        .iter()
        .find(|e| e["kind"] == "query" && e["params"].is_array())
        .unwrap();
    assert_eq!(bound["params"], json!(["41", "' or 1=1 --"]));
    assert_eq!(bound["mode"], "web");
    assert_eq!(bound["op"], "execute");
    let started = events
        .iter()
        .filter(|e| e["kind"] == "session_started")
        .count();
    let ended = events
        .iter()
        .filter(|e| e["kind"] == "session_ended")
        .count();
    assert_eq!((started, ended), (7, 7));
    env.gw.shutdown().await;
}

#[tokio::test]
async fn one_offs_are_refused_without_access_and_the_log_says_why() {
    let env = PgEnv::new("").await;
    let body = json!({"statement": "select 1"});
    let bob = user_client(&env.gw, &env.dir, "bob").await;
    assert_eq!(
        status(bob.post(&exec_path("rr-ops"), body.clone()).await),
        403
    );
    let alice = user_client(&env.gw, &env.dir, "alice").await;
    // `rr` has native access only.
    assert_eq!(
        status(alice.post(&exec_path("rr"), body.clone()).await),
        403
    );
    assert_eq!(
        status(alice.post(&exec_path("missing"), body.clone()).await),
        403
    );
    // One-offs cannot end other sessions.
    let kill = json!({"statement": "select pg_terminate_backend(1)"});
    assert_eq!(status(alice.post(&exec_path("rr-ops"), kill).await), 422);
    let bad = json!({"statement": "select 1; select 2", "params": [1]});
    assert_eq!(status(alice.post(&exec_path("rr-ops"), bad).await), 422);
    // A user deactivated: their tokens stop working at once.
    let admin = common::client(&env.gw, Some(&env.dir.bootstrap_token()));
    let dora = json!({"name": "dora", "groups": ["eng"], "password": "dora-password"});
    admin.post("/api/users", dora).await.unwrap();
    let dora = user_client(&env.gw, &env.dir, "dora").await;
    assert_eq!(
        status(dora.post(&exec_path("rr-ops"), body.clone()).await),
        200
    );
    admin
        .patch("/api/users/dora", json!({"status": "inactive"}))
        .await
        .unwrap();
    assert_eq!(status(dora.post(&exec_path("rr-ops"), body).await), 401);
    let events = env.events().await;
    let denied: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "access_denied")
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(denied.len(), 3, "{denied:?}");
    assert!(denied[0].contains("shares no group"), "{denied:?}");
    assert!(denied[1].contains("web is disabled"), "{denied:?}");
    assert!(denied[2].contains("unknown resource role"), "{denied:?}");
    let started: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "session_started")
        .collect();
    assert_eq!(started.len(), 1, "dora's one run");
    env.gw.shutdown().await;
}

#[tokio::test]
async fn one_offs_on_mariadb_bind_type_and_cancel() {
    let env = MyEnv::new("").await;
    let alice = user_client(&env.gw, &env.dir, "alice").await;
    let run = |body: Value| {
        let alice = &alice;
        async move { alice.post(&exec_path("rr-ops"), body).await.unwrap() }
    };
    let done = run(json!({"statement": "create table t (id int primary key, v varchar(10), n decimal(30,2), b blob, f double, u bigint unsigned);\
        insert into t values (1, 'a', 1.50, x'0102', 0.25, 18446744073709551615), (2, null, 1234567890123456789012.50, null, null, 0);\
        select * from t order by id"}))
    .await;
    let results = done["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{done}");
    assert_eq!(results[1]["rows_affected"], 2);
    let types: Vec<&str> = results[2]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["int", "varchar", "decimal", "blob", "double", "bigint"]
    );
    assert_eq!(
        results[2]["rows"],
        json!([
            [1, "a", 1.5, "AQI=", 0.25, 18446744073709551615u64],
            [2, null, "1234567890123456789012.50", null, null, 0]
        ])
    );
    // The same through the binary protocol, with bound parameters.
    let done = run(json!({"statement": "select id, v, n, b from t where id = ? or v = ?", "params": [2, "' or 1=1 --"]})).await;
    assert_eq!(
        done["results"][0]["rows"],
        json!([[2, null, "1234567890123456789012.50", null]])
    );
    let done = run(json!({"statement": "select 1; select * from nope; select 2"})).await;
    assert_eq!(done["failed"], 1);
    assert_eq!(done["results"][1]["error"]["code"], "1146");
    let done = run(json!({"statement": "select cast('1x' as signed) as n"})).await;
    assert_eq!(done["results"][0]["rows"], json!([[1]]));
    let notices = done["results"][0]["notices"].to_string();
    assert!(
        notices.contains("1292"),
        "a warning comes back as a notice: {done}"
    );
    let started = Instant::now();
    let done =
        run(json!({"statement": "select benchmark(100000000000, md5('x'))", "timeout": "1s"}))
            .await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(done["results"][0]["error"]["code"], "1317", "{done}");
    let running = common::my::direct(
        "select count(*) from information_schema.processlist where info like 'select benchmark%'",
    )
    .await;
    assert_eq!(running.trim(), "0", "the statement still runs upstream");
    let events = env.events().await;
    let bound = events
        .iter()
        .find(|e| e["kind"] == "query" && e["params"].is_array())
        .unwrap();
    assert_eq!(bound["op"], "stmt_execute");
    assert_eq!(bound["params"], json!(["2", "' or 1=1 --"]));
    env.gw.shutdown().await;
}

/// The CLI as `token`'s user against `server`.
async fn cli(
    token: &str,
    server: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> (i32, String, String) {
    let env = [("PORTCULLIS_SERVER", server), ("PORTCULLIS_TOKEN", token)];
    common::clients::portcullis(args, &env, stdin).await
}

#[tokio::test]
async fn portcullis_exec_prints_tables_json_and_csv_and_fails_on_a_statement_error() {
    let env = PgEnv::new("").await;
    let admin = common::client(&env.gw, Some(&env.dir.bootstrap_token()));
    let made = admin
        .post("/api/tokens", json!({"user": "alice"}))
        .await
        .unwrap();
    let token = made["token"].as_str().unwrap();
    let server = format!("http://{}", env.gw.admin_addr.unwrap());
    let exec = |args: Vec<&'static str>, stdin: Option<&'static str>| {
        let (token, server) = (token.to_owned(), server.clone());
        async move {
            let mut all = vec!["exec", "rr-ops"];
            all.extend(args);
            cli(&token, &server, &all, stdin).await
        }
    };
    let (code, out, err) = exec(vec!["-e", "select 1 as one, 'a,b' as two"], None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "one  two\n1    a,b\n(1 row)\n");
    let (_, out, _) = exec(
        vec!["-e", "select 1 as one, 'a,b' as two", "--output", "csv"],
        None,
    )
    .await;
    assert_eq!(out, "one,two\r\n1,\"a,b\"\r\n");
    let (_, out, _) = exec(
        vec![
            "--output",
            "json",
            "-e",
            "select $1::int as n",
            "--param",
            "7",
        ],
        None,
    )
    .await;
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["results"][0]["rows"], json!([[7]]));
    let (code, out, _) = exec(
        vec![],
        Some("create table c (i int); insert into c values (1), (2);"),
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "-- create table c (i int)\nOK\n-- insert into c values (1), (2)\nOK, 2 rows affected\n"
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "select count(*) as n from c").unwrap();
    let path: &'static str = Box::leak(file.path().display().to_string().into_boxed_str());
    let (code, out, _) = exec(vec!["-f", path], None).await;
    assert_eq!((code, out.as_str()), (0, "n\n2\n(1 row)\n"));
    let (code, _, err) = exec(vec!["-e", "select * from missing_table"], None).await;
    assert_eq!(code, 1);
    assert!(
        err.starts_with("ERROR 42P01: relation \"missing_table\" does not exist"),
        "{err}"
    );
    let (code, _, err) = exec(vec!["-e", "select 1"], None).await.clone();
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(token, &server, &["exec", "rr", "-e", "select 1"], None).await;
    assert_eq!(code, 1);
    assert!(err.contains("403") || err.contains("may not"), "{err}");
    let (code, out, _) = cli(token, &server, &["sessions", "--mode", "web"], None).await;
    assert_eq!(code, 0);
    assert_eq!(
        out.lines().filter(|l| l.contains("rr-ops")).count(),
        7,
        "{out}"
    );
    env.gw.shutdown().await;
}
