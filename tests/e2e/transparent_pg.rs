//! What PostgreSQL clients see through the gateway is what they see direct: cancel over TLS
//! with libpq 17+'s cancel API, the backend pid, a server-ended session.

use crate::common;
use common::clients::python;
use common::pg::{PASSWORD, PgEnv};
use common::tls::TestCert;

/// libpq ≥ 17 negotiates TLS for the cancel connection like the main one; the gateway
/// must end that TLS connection properly (close_notify) or OpenSSL 3 reports the cancel
/// as failed. psycopg's binary wheel bundles a libpq ≥ 17.
#[tokio::test]
async fn cancel_over_tls_works_with_libpq_17() {
    let cert = TestCert::new();
    let env = PgEnv::new(&format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        cert.cert.display(),
        cert.key.display()
    ))
    .await;
    let conn = format!(
        "host=127.0.0.1 port={} user=alice password={PASSWORD} dbname=rr sslmode=require",
        env.port
    );
    let out = python(&format!(
        r#"
import psycopg, threading, time
print("libpq", psycopg.pq.version())
conn = psycopg.connect("{conn}")
result = {{}}
def run():
    t = time.time()
    try:
        conn.execute("select pg_sleep(20)")
        result["outcome"] = "finished"
    except psycopg.errors.QueryCanceled:
        result["outcome"] = "cancelled"
    result["seconds"] = time.time() - t
th = threading.Thread(target=run); th.start()
time.sleep(0.5)
conn.cancel_safe(timeout=5)
th.join()
print(result["outcome"], round(result["seconds"], 1))
"#
    ))
    .await;
    let version: u32 = out
        .lines()
        .find_map(|l| l.strip_prefix("libpq "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(version >= 170000, "{out}");
    let line = out.lines().last().unwrap();
    assert!(line.starts_with("cancelled"), "{out}");
    let secs: f64 = line.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(secs < 5.0, "{out}");
    env.gw.shutdown().await;
}

/// The backend pid a client learns (`BackendKeyData`) is the upstream backend's: it
/// equals `pg_backend_pid()`, a NOTIFY from the session itself carries it, and
/// terminating it ends the session with the server's 57P01 and a closed connection.
#[tokio::test]
async fn the_backend_pid_is_the_servers_and_its_end_reaches_the_client() {
    let env = PgEnv::new("[limits]\nidle_upstreams = 2\n").await;
    let conn = env.conn_str("alice", PASSWORD, "rr");
    let out = python(&format!(
        r#"
import psycopg
for round in range(2):   # the second time through a kept upstream connection
    conn = psycopg.connect("{conn}", autocommit=True)
    pid = conn.pgconn.backend_pid
    print("same", pid == conn.execute("select pg_backend_pid()").fetchone()[0])
    conn.execute("listen ch")
    conn.execute("notify ch, 'hi'")
    n = next(conn.notifies(timeout=5))
    print("notify pid", n.pid == pid)
    conn.close()
conn = psycopg.connect("{conn}", autocommit=True)
try:
    conn.execute("select pg_terminate_backend(pg_backend_pid())")
    print("no error")
except psycopg.errors.AdminShutdown as e:
    print("terminated", e.sqlstate)
except Exception as e:
    print("other", type(e).__name__, e)
print("closed", conn.closed)
"#
    ))
    .await;
    assert!(!out.contains("same False"), "{out}");
    assert_eq!(out.matches("same True").count(), 2, "{out}");
    assert_eq!(out.matches("notify pid True").count(), 2, "{out}");
    assert!(out.contains("terminated 57P01"), "{out}");
    assert!(out.contains("closed True"), "{out}");
    // The terminated connection was not kept for the next session.
    let next = env.alice().await;
    assert_eq!(
        next.query_one("select 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
    env.gw.shutdown().await;
}
