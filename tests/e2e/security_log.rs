//! The adversarial review's findings about the monitoring log, each against the real
//! servers: what the log says must be what ran.

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common;
use common::clients::python;
use common::my::{MyEnv, PASSWORD as MY_PASSWORD};
use common::pg::{PASSWORD, PgEnv, RawPg};

fn parse(name: &str, sql: &str) -> BytesMut {
    let mut b = BytesMut::new();
    frontend::parse(name, sql, std::iter::empty(), &mut b).unwrap();
    b
}

fn bind_execute_sync(statement: &str) -> BytesMut {
    let mut b = BytesMut::new();
    frontend::bind(
        "",
        statement,
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
    b
}

fn sync() -> BytesMut {
    let mut b = BytesMut::new();
    frontend::sync(&mut b);
    b
}

fn queries(events: &[Value], user: &str) -> Vec<(String, String, String)> {
    events
        .iter()
        .filter(|e| e["kind"] == "query" && e["user"] == user)
        .map(|e| {
            (
                e["op"].as_str().unwrap_or_default().to_owned(),
                e["statement"].as_str().unwrap_or_default().to_owned(),
                e["error_code"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Finding 1: Parse s1 = DELETE (accepted), Parse s1 = SELECT 1 (rejected, 42P05), then
/// Bind/Execute s1 runs the DELETE — and the log must say DELETE, however it is pipelined.
#[tokio::test]
async fn a_rejected_parse_does_not_rewrite_the_log() {
    let env = PgEnv::new("").await;
    let c = env.alice().await;
    c.batch_execute("create table t (x int); insert into t values (1), (2), (3)")
        .await
        .unwrap();
    let mut raw = RawPg::connect(env.port, "alice", PASSWORD, "rr").await;
    let mut first = parse("s1", "DELETE FROM t");
    first.extend_from_slice(&sync());
    raw.send(&first).await;
    raw.until_ready().await;
    // One pipeline: the rejected Parse, its Sync, then Bind/Execute/Sync of s1.
    let mut pipeline = parse("s1", "SELECT 1");
    pipeline.extend_from_slice(&sync());
    pipeline.extend_from_slice(&bind_execute_sync("s1"));
    raw.send(&pipeline).await;
    let answered = raw.until_ready().await;
    assert_eq!(answered[0].0, b'E');
    assert_eq!(RawPg::sqlstate(&answered[0].1), "42P05");
    let ran = raw.until_ready().await;
    assert!(
        ran.iter()
            .any(|(tag, body)| *tag == b'C' && body.starts_with(b"DELETE 3"))
    );
    let seen = queries(&env.events().await, "alice");
    assert!(
        seen.contains(&("parse".into(), "SELECT 1".into(), "42P05".into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("execute".into(), "DELETE FROM t".into(), String::new())),
        "the DELETE that ran is in the log: {seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|(op, s, _)| op == "execute" && s == "SELECT 1")
    );
    env.gw.shutdown().await;
}

/// Finding 2: a statement over 1 MiB is logged cut, and says so with its full length and
/// the SHA-256 of its full text.
#[tokio::test]
async fn a_long_statement_is_marked_cut_with_its_length_and_hash() {
    let env = PgEnv::new("").await;
    let c = env.alice().await;
    let sql = format!("select 1 /* {} */", "x".repeat(3 << 20));
    c.simple_query(&sql).await.unwrap();
    let events = env.events().await;
    let q = events
        .iter()
        .find(|e| e["kind"] == "query" && e["statement_truncated"] == true)
        .expect("the long statement's event");
    assert_eq!(q["statement_length"], sql.len() as u64);
    assert_eq!(
        q["statement_sha256"],
        hex::encode(Sha256::digest(sql.as_bytes()))
    );
    assert!(q["statement"].as_str().unwrap().len() <= 1 << 20);
    assert!(sql.starts_with(q["statement"].as_str().unwrap()));
    env.gw.shutdown().await;
}

/// Finding 3 (PostgreSQL): a fast-path FunctionCall is logged with the function's OID and
/// its arguments.
#[tokio::test]
async fn a_fast_path_function_call_is_logged_with_oid_and_arguments() {
    let env = PgEnv::new("").await;
    let mut raw = RawPg::connect(env.port, "alice", PASSWORD, "rr").await;
    // int4abs (OID 1397) of -7, argument in text format, result in text.
    let mut f = BytesMut::new();
    f.extend_from_slice(b"F");
    let mut body = 1397i32.to_be_bytes().to_vec();
    body.extend(1i16.to_be_bytes());
    body.extend(0i16.to_be_bytes());
    body.extend(1i16.to_be_bytes());
    body.extend(2i32.to_be_bytes());
    body.extend(b"-7");
    body.extend(0i16.to_be_bytes());
    f.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    f.extend_from_slice(&body);
    raw.send(&f).await;
    let answer = raw.until_ready().await;
    assert_eq!(answer[0].0, b'V', "{answer:?}");
    let events = env.events().await;
    let call = events
        .iter()
        .find(|e| e["op"] == "function_call")
        .expect("the function call's event");
    assert_eq!(call["statement"], "<function call: oid 1397>");
    assert_eq!(call["params"], serde_json::json!(["-7"]));
    env.gw.shutdown().await;
}

/// Finding 3 (MySQL): commands beyond COM_QUERY — COM_PROCESS_KILL, COM_INIT_DB,
/// COM_FIELD_LIST, COM_SET_OPTION, COM_RESET_CONNECTION, COM_STATISTICS — each produce an
/// event.
#[tokio::test]
async fn every_mysql_command_that_reads_or_changes_is_logged() {
    let env = MyEnv::new("").await;
    let (port, db) = (env.port, env.db.clone());
    python(&format!(
        r#"
import pymysql
from pymysql.constants import COMMAND
c = pymysql.connect(host="127.0.0.1", port={port}, user="alice", password="{MY_PASSWORD}", database="rr")
c.cursor().execute("create table t (x int)")
c.select_db("{db}")
c.ping()
c.set_character_set("utf8mb4")
c._execute_command(COMMAND.COM_FIELD_LIST, b"t\0"); c._read_packet()
try:
    c._read_packet()
except Exception:
    pass
c._execute_command(COMMAND.COM_STATISTICS, b""); c._read_packet()
c._execute_command(0x1f, b""); c._read_ok_packet()
import struct
c._execute_command(0x0c, struct.pack("<I", 999999))
try:
    c._read_ok_packet()
except pymysql.err.OperationalError as e:
    print("kill refused", e.args[0])
print("done")
"#
    ))
    .await;
    let events = env.events().await;
    let ops: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "query")
        .filter_map(|e| e["op"].as_str())
        .collect();
    for op in [
        "com_query",
        "init_db",
        "field_list",
        "statistics",
        "reset_connection",
        "process_kill",
    ] {
        assert!(ops.contains(&op), "no {op} event in {ops:?}: {events:?}");
    }
    env.gw.shutdown().await;
}

/// Finding 7 (MySQL): every way to send KILL — commented, with trailing `;`, HARD,
/// multi-statement, EXECUTE IMMEDIATE, KILL USER, the binary COM_PROCESS_KILL, with the
/// victim's upstream id — is mapped to the caller's own sessions or refused; the victim's
/// statement runs to its end; each attempt is in the log.
#[tokio::test]
async fn no_form_of_kill_reaches_another_users_session() {
    let env = MyEnv::new("").await;
    let port = env.port;
    let out = python(&format!(
        r#"
import pymysql, threading, time
from pymysql.constants import CLIENT
def conn(user):
    return pymysql.connect(host="127.0.0.1", port={port}, user=user, password="{MY_PASSWORD}",
                           database="rr", client_flag=CLIENT.MULTI_STATEMENTS)
victim = conn("alice")
gw_id = victim.thread_id()
cur = victim.cursor(); cur.execute("select connection_id()"); up_id = cur.fetchone()[0]
result = {{}}
def sleeper():
    with victim.cursor() as c:
        c.execute("select sleep(4)")
        result["value"] = c.fetchone()[0]
th = threading.Thread(target=sleeper); th.start()
time.sleep(0.5)
erin = conn("erin")
attempts = []
for ident in (gw_id, up_id):
    attempts += ["/**/KILL %d" % ident, "KILL %d ;" % ident, "KILL HARD %d" % ident,
                 "KILL QUERY %d" % ident, "SELECT 1; KILL %d" % ident,
                 "EXECUTE IMMEDIATE 'KILL %d'" % ident, "PREPARE s FROM 'KILL %d'" % ident]
attempts += ["KILL USER 'root'", "KILL USER CURRENT_USER"]
for sql in attempts:
    try:
        c = erin.cursor(); c.execute(sql)
        while c.nextset():
            pass
        print("PASSED", sql)
    except pymysql.err.MySQLError as e:
        print("refused", e.args[0], sql)
import struct
for ident in (gw_id, up_id):
    erin._execute_command(0x0c, struct.pack("<I", ident))
    try:
        erin._read_ok_packet(); print("PASSED COM_PROCESS_KILL", ident)
    except pymysql.err.MySQLError as e:
        print("refused", e.args[0], "COM_PROCESS_KILL")
th.join()
print("victim", result)
"#
    ))
    .await;
    assert!(!out.contains("PASSED"), "{out}");
    assert!(
        out.contains("victim {'value': 0}"),
        "the victim's sleep ran to its end: {out}"
    );
    let events = env.events().await;
    let erin: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "query" && e["user"] == "erin")
        .filter(|e| {
            !e["statement"]
                .as_str()
                .unwrap_or_default()
                .starts_with("SET ")
        })
        .collect();
    assert_eq!(erin.len(), 18, "every attempt is logged");
    let process_kills = erin.iter().filter(|e| e["op"] == "process_kill").count();
    assert_eq!(process_kills, 2);
    assert!(
        erin.iter().all(|e| e["status"] == "error"),
        "{:?}",
        erin.iter()
            .map(|e| (&e["statement"], &e["status"], &e["error_code"]))
            .collect::<Vec<_>>()
    );
    env.gw.shutdown().await;
}

/// Finding 7 (PostgreSQL): `pg_terminate_backend` / `pg_cancel_backend` of another user's
/// backend through the shared upstream user is refused (42501); the caller's own sessions
/// are theirs to signal.
#[tokio::test]
async fn backend_signals_reach_only_the_callers_own_sessions() {
    let env = PgEnv::new("").await;
    let victim = env.alice().await;
    let pid: i32 = victim
        .query_one("select pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let erin = env.connect("erin", PASSWORD, "rr").await.unwrap();
    for sql in [
        format!("select pg_terminate_backend({pid})"),
        format!("select pg_cancel_backend({pid})"),
        "select pg_terminate_backend(pid) from pg_stat_activity where pid <> pg_backend_pid()"
            .to_owned(),
        format!("do $$begin perform pg_terminate_backend({pid}); end$$"),
    ] {
        let e = erin.simple_query(&sql).await.unwrap_err();
        assert_eq!(
            e.as_db_error().map(|d| d.code().code()),
            Some("42501"),
            "{sql}: {e}"
        );
        let e = erin.prepare(&sql).await.map(|_| ()).err();
        if let Some(e) = e {
            assert!(e.as_db_error().is_some(), "{sql}: {e}");
        }
    }
    // Prepared: refused when it runs, with the pipeline in step.
    let st = erin
        .prepare(&format!("select pg_terminate_backend({pid})"))
        .await
        .unwrap();
    let e = erin.query(&st, &[]).await.unwrap_err();
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("42501"));
    assert_eq!(
        erin.query_one("select 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
    // The victim lives; alice's own second session may cancel it.
    assert_eq!(
        victim
            .query_one("select 2", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        2
    );
    let alice2 = env.alice().await;
    let r = alice2
        .query_one(&format!("select pg_cancel_backend({pid})"), &[])
        .await
        .unwrap();
    assert!(r.get::<_, bool>(0));
    let events = env.events().await;
    let refused = events
        .iter()
        .filter(|e| e["user"] == "erin" && e["error_code"] == "42501")
        .count();
    assert!(refused >= 5, "each refusal is logged: {refused}");
    env.gw.shutdown().await;
}
