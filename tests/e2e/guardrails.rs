//! Guardrails against the real PostgreSQL and MariaDB with real clients (psql, pgbench,
//! tokio-postgres's extended protocol, a hand-made pipeline, the mariadb CLI, mysql_async
//! prepared statements, one-offs): each class blocked and allowed, DELETE/UPDATE without a
//! WHERE, tables through CTEs/subqueries/aliases/joins, comment and literal tricks,
//! several statements in one message, unreadable statements, warnings, and the events.

use serde_json::{Value, json};

use crate::common;
use common::my::MyEnv;
use common::pg::{PASSWORD, PgEnv, RawPg, psql};
use common::user_client;

const RULES: &str = r#"
[[guardrails]]
name = "no-ddl"
resource_roles = ["rr", "rr-ops"]
action = "block"
classes = ["ddl", "dcl"]

[[guardrails]]
name = "no-bare-writes"
resource_roles = ["rr", "rr-ops"]
action = "block"
update_without_where = true
delete_without_where = true

[[guardrails]]
name = "no-secrets"
resource_roles = ["rr", "rr-ops"]
action = "block"
tables = ["*.secrets"]

[[guardrails]]
name = "watch-writes"
resource_roles = ["rr", "rr-ops"]
action = "warn"
classes = ["write"]
"#;

/// Tables the rules talk about, made directly on the upstream.
async fn pg_tables(env: &PgEnv) {
    let conn = format!("host=127.0.0.1 user=postgres dbname={}", env.db);
    let (c, task) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(task);
    let role = &env.role;
    c.batch_execute(&format!(
        "create table t (id int primary key, v text); insert into t values (1, 'a'), (2, 'b');
         create table secrets (k text); insert into secrets values ('x');
         alter table t owner to {role}; alter table secrets owner to {role};"
    ))
    .await
    .unwrap();
}

fn guarded<'a>(events: &'a [Value], statement: &str) -> &'a Value {
    events
        .iter()
        .rev()
        .find(|e| e["kind"] == "query" && e["statement"] == statement)
        .unwrap_or_else(|| panic!("no query event for `{statement}`"))
}

#[tokio::test]
async fn postgres_simple_queries_are_decided_by_the_parser() {
    let env = PgEnv::new(RULES).await;
    pg_tables(&env).await;
    let c = env.alice().await;
    let blocked = [
        "create table x (a int)",
        "drop table t",
        "grant select on t to public",
        "delete from t",
        "delete from t where 1 = 1",
        "update t set v = 'z' where true",
        "with d as (delete from t returning *) select * from d",
        "select * from secrets",
        "with s as (select * from public.secrets) select * from s",
        "select 1 from t where exists (select 1 from secrets x where x.k = t.v)",
        "select * from t join secrets s on s.k = t.v",
        "select /* harmless */ * from \"secrets\"",
        "select 1; drop table t",
        "DO $$ BEGIN DROP TABLE t; END $$",
    ];
    for sql in blocked {
        let e = c.simple_query(sql).await.expect_err(sql);
        let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e}"));
        assert_eq!(db.code().code(), "42501", "{sql}: {db}");
        assert!(db.message().contains("guardrail"), "{sql}: {db}");
    }
    // The session goes on, and nothing blocked reached the database.
    let allowed = [
        "select 'drop table t; delete from t'",
        "select 1 -- ; drop table t",
        "select $$ delete from secrets $$",
        "select v from t where id = 1",
        "delete from t where id = 2",
        "update t set v = 'c' where id = 1",
        "begin",
        "commit",
        "set application_name = 'x'",
    ];
    for sql in allowed {
        c.simple_query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let rows = c.query("select count(*) from t", &[]).await.unwrap();
    assert_eq!(
        rows[0].get::<_, i64>(0),
        1,
        "only the DELETE with a WHERE ran"
    );
    // psql reads the same error.
    let (ok, _, err) = psql(
        &env.conn_str("alice", PASSWORD, "rr"),
        &["-c", "truncate t"],
    )
    .await;
    assert!(
        !ok && err.contains("blocked by guardrail `no-ddl`"),
        "{err}"
    );
    let events = env.events().await;
    let e = guarded(&events, "delete from t");
    assert_eq!(e["status"], "blocked");
    assert_eq!(e["guardrails"], json!(["no-bare-writes", "watch-writes"]));
    // `sessions show` has them too.
    let admin = common::client(&env.gw, Some(&env.dir.bootstrap_token()));
    let sid = e["session_id"].as_str().unwrap();
    let detail = admin.get(&format!("/api/sessions/{sid}")).await.unwrap();
    let shown = detail["statements"].as_array().unwrap();
    assert!(
        shown.iter().any(|q| q["statement"] == "delete from t"
            && q["status"] == "blocked"
            && q["guardrails"] == json!(["no-bare-writes", "watch-writes"])),
        "{detail}"
    );
    let e = guarded(&events, "delete from t where id = 2");
    assert_eq!(e["status"], "ok");
    assert_eq!(e["guardrails"], json!(["watch-writes"]));
    assert!(guarded(&events, "select v from t where id = 1")["guardrails"].is_null());
}

#[tokio::test]
async fn postgres_extended_protocol_blocks_at_parse_and_stays_in_step() {
    let env = PgEnv::new(RULES).await;
    pg_tables(&env).await;
    let c = env.alice().await;
    let e = c
        .query("delete from t where $1::int = $1", &[&1i32])
        .await
        .expect_err("no column in the WHERE");
    assert_eq!(e.as_db_error().unwrap().code().code(), "42501", "{e}");
    let e = c
        .prepare("select * from secrets")
        .await
        .expect_err("secrets");
    assert_eq!(e.as_db_error().unwrap().code().code(), "42501", "{e}");
    let rows = c
        .query("select v from t where id = $1", &[&1i32])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, &str>(0), "a");
    // A hand-made pipeline: the blocked Parse fails, the rest up to Sync is skipped, and
    // the next message runs.
    let mut raw = RawPg::connect(env.port, "alice", PASSWORD, "rr").await;
    let mut b = bytes::BytesMut::new();
    use postgres_protocol::message::frontend;
    frontend::parse("s1", "drop table t", std::iter::empty(), &mut b).unwrap();
    frontend::bind(
        "",
        "s1",
        std::iter::empty::<i16>(),
        std::iter::empty::<Option<i32>>(),
        |_: Option<i32>, _| Ok(postgres_protocol::IsNull::Yes),
        Some(0),
        &mut b,
    )
    .map_err(|_| ())
    .unwrap();
    frontend::execute("", 0, &mut b).unwrap();
    frontend::sync(&mut b);
    frontend::query("select count(*) from t", &mut b).unwrap();
    raw.send(&b).await;
    let first = raw.until_ready().await;
    assert_eq!(first[0].0, b'E', "{first:?}");
    assert_eq!(RawPg::sqlstate(&first[0].1), "42501");
    assert_eq!(
        first.len(),
        2,
        "only the error and ReadyForQuery: {first:?}"
    );
    let second = raw.until_ready().await;
    assert!(second.iter().any(|m| m.0 == b'D'), "{second:?}");
    let events = env.events().await;
    let e = guarded(&events, "drop table t");
    assert_eq!(
        (&e["status"], &e["op"]),
        (&json!("blocked"), &json!("parse"))
    );
}

#[tokio::test]
async fn pgbench_runs_under_rules_that_allow_it() {
    let env = PgEnv::new(RULES).await;
    let conn = format!("host=127.0.0.1 user={} dbname={}", env.role, env.db);
    let init = tokio::process::Command::new("pgbench")
        .args(["-i", "-s", "1", "-q", &conn])
        .output()
        .await
        .expect("pgbench is installed (scripts/services.sh)");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    for mode in ["simple", "prepared"] {
        let out = tokio::process::Command::new("pgbench")
            .args(["-S", "-t", "50", "-c", "2", "-M", mode])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &env.port.to_string(),
                "-U",
                "alice",
                "rr",
            ])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("transactions actually processed: 100/100"),
            "{mode}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn mysql_native_and_prepared_and_one_offs() {
    use mysql_async::prelude::*;
    let env = MyEnv::new(RULES).await;
    common::my::direct(&format!(
        "create table {db}.t (id int primary key, v text); insert into {db}.t values (1, 'a'), (2, 'b'); create table {db}.secrets (k text)",
        db = env.db
    ))
    .await;
    for sql in [
        "drop table t",
        "/*!50000 drop table t */",
        "delete from t",
        "select * from secrets",
        "select 1; drop table t",
        "execute immediate 'drop table t'",
        "prepare s from 'drop table t'",
    ] {
        let (ok, _, err) = env.client("alice", PASSWORD, "rr", &["-e", sql]).await;
        assert!(
            !ok && err.contains("ERROR 1227") && err.contains("guardrail"),
            "{sql}: {err}"
        );
    }
    for sql in [
        "select 'drop table t'",
        "select `id` from t where id = 1",
        "delete from t where id = 2",
    ] {
        let (ok, _, err) = env.client("alice", PASSWORD, "rr", &["-e", sql]).await;
        assert!(ok, "{sql}: {err}");
    }
    let url = format!(
        "mysql://alice:{PASSWORD}@127.0.0.1:{}/rr?prefer_socket=false",
        env.port
    );
    let pool = mysql_async::Pool::new(url.as_str());
    let mut c = pool.get_conn().await.unwrap();
    let e = c
        .exec_drop("delete from t where ? = ?", (1, 1))
        .await
        .expect_err("no column");
    assert!(e.to_string().contains("guardrail"), "{e}");
    let v: Option<String> = c
        .exec_first("select v from t where id = ?", (1,))
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("a"), "the connection goes on");
    drop(c);
    pool.disconnect().await.unwrap();
    // One-offs obey the same rules.
    let alice = user_client(&env.gw, &env.dir, "alice").await;
    let done = alice
        .post(
            "/api/resource-roles/rr-ops/exec",
            json!({"statement": "select 1; drop table t"}),
        )
        .await
        .unwrap();
    assert_eq!(done["failed"], 1, "{done}");
    assert_eq!(done["results"][1]["error"]["code"], "1227");
    let events = env.events().await;
    let e = guarded(&events, "drop table t");
    assert_eq!(e["status"], "blocked");
    assert_eq!(e["guardrails"], json!(["no-ddl"]));
    let count = common::my::direct(&format!("select count(*) from {}.t", env.db)).await;
    assert_eq!(count.trim(), "1");
}

#[tokio::test]
async fn guardrails_through_the_api() {
    let env = PgEnv::new(RULES).await;
    pg_tables(&env).await;
    let admin = common::client(&env.gw, Some(&env.dir.bootstrap_token()));
    let list = admin.get("/api/guardrails").await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 4);
    assert_eq!(list[0]["managed"], true);
    let bad = admin
        .post(
            "/api/guardrails",
            json!({"name": "x", "resource_roles": ["nope"], "action": "block", "classes": ["ddl"]}),
        )
        .await;
    assert_eq!(common::status(bad), 422);
    let rule = json!({"name": "no-star", "resource_roles": ["rr"], "action": "block", "select_star": true, "tables": ["t"]});
    let empty = admin
        .post(
            "/api/guardrails",
            json!({"name": "x", "resource_roles": ["rr"], "action": "warn"}),
        )
        .await;
    assert_eq!(common::status(empty), 422, "a rule that matches nothing");
    admin.post("/api/guardrails", rule).await.unwrap();
    let c = env.alice().await;
    let e = c
        .simple_query("select * from t")
        .await
        .expect_err("select *");
    assert!(
        e.as_db_error().unwrap().message().contains("no-star"),
        "{e}"
    );
    c.simple_query("select id from t").await.unwrap();
    let declared = admin.delete("/api/guardrails/no-ddl").await;
    assert_eq!(common::status(declared), 409);
    admin.delete("/api/guardrails/no-star").await.unwrap();
    let c = env.alice().await;
    c.simple_query("select * from t").await.unwrap();
    let events = env.events().await;
    let actions: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "admin_change" && e["object"] == "guardrail/no-star")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["guardrail.create", "guardrail.delete"]);
}

#[tokio::test]
async fn runbooks_are_checked_at_lint_time_and_at_run_time() {
    let books = tempfile::tempdir().unwrap();
    std::fs::write(
        books.path().join("purge.sql"),
        "-- description = \"Empties t\"\n-- resource_roles = [\"rr-ops\"]\n--\ndelete from t;\n",
    )
    .unwrap();
    std::fs::write(
        books.path().join("one.sql"),
        "-- description = \"One row\"\n-- resource_roles = [\"rr-ops\"]\n-- [[params]]\n-- name = \"id\"\n-- type = \"integer\"\nselect v from t where id = :id;\n",
    )
    .unwrap();
    let extra = format!("[runbooks]\ndir = \"{}\"\n{RULES}", books.path().display());
    let env = PgEnv::new(&extra).await;
    pg_tables(&env).await;
    let config = env.dir.config_path().display().to_string();
    let dir = books.path().display().to_string();
    let (code, out, err) =
        common::clients::portcullis(&["runbooks", "lint", &dir, "--config", &config], &[], None)
            .await;
    assert_eq!(code, 1, "{out}{err}");
    let file = books.path().join("purge.sql").display().to_string();
    assert!(
        err.contains(&format!(
            "{file}:4: on resource role `rr-ops`: blocked by guardrail `no-bare-writes`"
        )),
        "{err}"
    );
    let alice = user_client(&env.gw, &env.dir, "alice").await;
    let run = |name: &str, params: Value| {
        let alice = &alice;
        let path = format!("/api/runbooks/{name}/run");
        async move {
            alice
                .post(&path, json!({"resource_role": "rr-ops", "params": params}))
                .await
                .unwrap()
        }
    };
    let done = run("purge", json!({})).await;
    assert_eq!(done["results"][0]["error"]["code"], "42501", "{done}");
    let done = run("one", json!({"id": 1})).await;
    assert_eq!(done["results"][0]["rows"], json!([["a"]]), "{done}");
}

#[tokio::test]
async fn mysql_init_db_is_a_session_statement() {
    let rule = "[[guardrails]]\nname = \"stay\"\nresource_roles = [\"rr\"]\naction = \"block\"\nclasses = [\"session\"]\n";
    let env = MyEnv::new(rule).await;
    // The CLI's `use` is COM_INIT_DB.
    let use_db = format!("use {}", env.db);
    let (ok, _, err) = env.client("alice", PASSWORD, "rr", &["-e", &use_db]).await;
    assert!(!ok && err.contains("1227") && err.contains("stay"), "{err}");
    let (ok, out, err) = env
        .client("alice", PASSWORD, "rr", &["-e", "select 41 + 1"])
        .await;
    assert!(ok && out.trim() == "42", "{out}{err}");
}

#[tokio::test]
async fn a_blocked_statement_split_across_reads_ends_the_session_unrun() {
    let env = PgEnv::new(RULES).await;
    pg_tables(&env).await;
    let c = env.alice().await;
    // Up to a read's 32 KiB: refused in place, the session goes on.
    let medium = format!("drop table t /* {} */", "x".repeat(20_000));
    let e = c.simple_query(&medium).await.expect_err("blocked");
    assert_eq!(
        e.as_db_error().map(|d| d.code().code()),
        Some("42501"),
        "{e}"
    );
    c.simple_query("select 1").await.unwrap();
    let long = format!("drop table t /* {} */", "x".repeat(40_000));
    let e = c.simple_query(&long).await.expect_err("blocked");
    assert!(
        e.as_db_error().is_none() || e.as_db_error().unwrap().code().code() == "42501",
        "{e}"
    );
    let again = env.alice().await;
    let rows = again.query("select count(*) from t", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, i64>(0), 2, "the table is still there");
}

#[tokio::test]
async fn guardrails_from_the_cli() {
    let env = PgEnv::new(RULES).await;
    let server = format!("http://{}", env.gw.admin_addr.unwrap());
    let token = env.dir.bootstrap_token();
    let cli_env = [
        ("PORTCULLIS_SERVER", server.as_str()),
        ("PORTCULLIS_TOKEN", token.as_str()),
    ];
    let run = |args: Vec<&'static str>, stdin: Option<&'static str>| async move {
        common::clients::portcullis(&args, &cli_env, stdin).await
    };
    let (code, out, err) = run(vec!["guardrails"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("no-ddl") && out.contains("watch-writes"),
        "{out}"
    );
    let rule =
        r#"{"name": "no-copy", "resource_roles": ["rr"], "action": "block", "classes": ["copy"]}"#;
    let (code, out, err) = run(vec!["guardrails", "add", "--file", "-"], Some(rule)).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = run(vec!["guardrails", "show", "no-copy"], None).await;
    assert!(code == 0 && out.contains("copy"), "{out}");
    let (code, _, err) = run(vec!["guardrails", "delete", "no-ddl"], None).await;
    assert!(code != 0 && err.contains("declared in"), "{err}");
    let (code, _, err) = run(vec!["guardrails", "delete", "no-copy"], None).await;
    assert_eq!(code, 0, "{err}");
}
