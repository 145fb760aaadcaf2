//! What MySQL clients see through the gateway is what they see direct: the `mariadb`
//! client's Ctrl-C and `mariadb-admin` (control sessions), 1045 before 1046, `KILL QUERY`
//! by either id a session answers to, the upstream's server version (and the dialect a
//! driver picks from it), `COM_CHANGE_USER` re-authenticated and decided again.

use std::time::Duration;

use crate::common;
use common::clients::{MARIADB_J, assert_lines, java, node, python};
use common::my::{MyEnv, PASSWORD, direct};

/// `mariadb-admin` through the gateway as `user`.
async fn admin(env: &MyEnv, user: &str, password: &str, args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new("mariadb-admin")
        .args(["--no-defaults", "--protocol=tcp", "-h", "127.0.0.1"])
        .arg(format!("-P{}", env.port))
        .arg(format!("-u{user}"))
        .arg(format!("-p{password}"))
        .args(args)
        .output()
        .await
        .expect("mariadb-admin is installed (scripts/services.sh installs it)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test]
async fn mariadb_admin_ping_and_status_work_and_a_bad_password_is_1045_without_a_database() {
    let env = MyEnv::new("").await;
    let (ok, out) = admin(&env, "alice", PASSWORD, &["ping"]).await;
    assert!(ok && out.contains("mysqld is alive"), "{out}");
    let (ok, out) = admin(&env, "alice", PASSWORD, &["status"]).await;
    assert!(
        ok && out.contains("Uptime: ") && out.contains("Threads: "),
        "{out}"
    );
    // (`ping` exits 0 when access is denied, as it does direct: the server is up.)
    let (_, out) = admin(&env, "alice", "wrong", &["ping"]).await;
    assert!(out.contains("Access denied for user 'alice'"), "{out}");
    // The CLI without a database: authenticated first, so a bad password is 1045 whatever
    // the client named; a good one gets a control session that says what to name.
    let (ok, _, err) = env.client("alice", "wrong", "", &["-e", "select 1"]).await;
    assert!(!ok && err.contains("ERROR 1045 (28000)"), "{err}");
    let (ok, _, err) = env.client("alice", PASSWORD, "", &["-e", "select 1"]).await;
    assert!(!ok && err.contains("ERROR 1046 (3D000)"), "{err}");
    assert!(
        err.contains("yours: rr"),
        "names the usable resource roles: {err}"
    );
    let (ok, _, err) = env.client("bob", PASSWORD, "", &["-e", "select 1"]).await;
    assert!(!ok && err.contains("no MySQL resource role"), "{err}");
    let events = env.events().await;
    let control: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "session_started" && e["user"] == "alice")
        .collect();
    assert_eq!(control.len(), 3, "ping, status, select: {control:?}");
    for e in &control {
        assert_eq!(e["resource_role"], "");
        assert_eq!(e["mode"], "native");
    }
    let stats = events
        .iter()
        .find(|e| e["kind"] == "query" && e["op"] == "statistics")
        .expect("COM_STATISTICS is logged");
    assert_eq!(stats["user"], "alice");
    let refused = events
        .iter()
        .find(|e| e["kind"] == "query" && e["statement"] == "select 1")
        .expect("the refused statement is logged");
    assert_eq!(refused["error_code"], "1046");
    let ended = events
        .iter()
        .filter(|e| e["kind"] == "session_ended" && e["user"] == "alice")
        .count();
    assert_eq!(ended, 3, "one session_ended per control session");
    env.gw.shutdown().await;
}

/// The interactive `mariadb` client in a tmux pane (its own server, so tests do not meet).
struct Pane {
    socket: String,
}

impl Pane {
    fn start(command: &str) -> Pane {
        let socket = common::unique("tmux");
        let ok = std::process::Command::new("tmux")
            .args([
                "-L",
                &socket,
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "200",
                "-y",
                "50",
            ])
            .arg(command)
            .status()
            .expect("tmux is installed (scripts/test-tools.sh installs it)");
        assert!(ok.success());
        Pane { socket }
    }

    fn keys(&self, keys: &[&str]) {
        let mut cmd = std::process::Command::new("tmux");
        cmd.args(["-L", &self.socket, "send-keys", "-t", "t"])
            .args(keys);
        assert!(cmd.status().unwrap().success());
    }

    /// Types `line` (literally: tmux reads `;` as its own separator) and Enter.
    fn line(&self, line: &str) {
        self.keys(&["-l", line]);
        self.keys(&["Enter"]);
    }

    fn text(&self) -> String {
        let out = std::process::Command::new("tmux")
            .args([
                "-L",
                &self.socket,
                "capture-pane",
                "-p",
                "-t",
                "t",
                "-S",
                "-100",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits up to `secs` for `text` to appear; the pane's text either way.
    async fn wait_for(&self, text: &str, secs: u64) -> (bool, String) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let now = self.text();
            if now.contains(text) || tokio::time::Instant::now() > deadline {
                return (now.contains(text), now);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

#[tokio::test]
async fn ctrl_c_in_the_mariadb_client_kills_the_running_query() {
    let env = MyEnv::new("").await;
    let version = direct("select version()").await;
    let pane = Pane::start(&format!(
        "mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P {} -u alice -p{PASSWORD} -D rr",
        env.port
    ));
    let (up, text) = pane.wait_for("MariaDB [rr]>", 20).await;
    assert!(up, "the client did not log in:\n{text}");
    assert!(
        text.contains(&format!("Server version: {}", version.trim())),
        "the client shows the server's own version ({}):\n{text}",
        version.trim()
    );
    pane.line("select sleep(30)\\g");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let started = tokio::time::Instant::now();
    pane.keys(&["C-c"]);
    let (killed, text) = pane.wait_for("Query execution was interrupted", 10).await;
    assert!(killed, "Ctrl-C did not end the query:\n{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(text.contains("Ctrl-C -- query killed"), "{text}");
    // The session goes on.
    pane.line("select 'still here'\\g");
    let (on, text) = pane.wait_for("| still here |", 10).await;
    assert!(on, "{text}");
    let events = env.events().await;
    let kill = events
        .iter()
        .find(|e| {
            e["kind"] == "query"
                && e["statement"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("KILL QUERY")
        })
        .expect("the control session's KILL is logged");
    assert_eq!(kill["resource_role"], "");
    assert!(kill["error_code"].is_null(), "{kill}");
    drop(pane);
    env.gw.shutdown().await;
}

#[tokio::test]
async fn kill_query_reaches_a_session_by_its_handshake_id_and_by_connection_id() {
    let env = MyEnv::new("").await;
    let port = env.port;
    let out = python(&format!(
        r#"
import pymysql, threading, time
def conn(user, db="rr"):
    return pymysql.connect(host="127.0.0.1", port={port}, user=user, password="{PASSWORD}", database=db)
a = conn("alice")
cur = a.cursor(); cur.execute("select connection_id()"); cid = cur.fetchone()[0]
print("ids differ", a.thread_id() != cid, "gateway id range", a.thread_id() >= 1 << 30)
def run(kill):
    result = {{}}
    def sleeper():
        t = time.time()
        try:
            with a.cursor() as c:
                c.execute("select sleep(20)")
                result["value"] = c.fetchone()[0]
        except pymysql.err.OperationalError as e:
            result["error"] = e.args[0]
        result["seconds"] = time.time() - t
    th = threading.Thread(target=sleeper); th.start()
    time.sleep(0.5)
    kill()
    th.join()
    return result
def kill_with(user, db, target):
    def go():
        k = conn(user, db)
        try:
            k.cursor().execute("KILL QUERY %d" % target)
            return "ok"
        except pymysql.err.OperationalError as e:
            return "refused %d" % e.args[0]
        finally:
            k.close()
    return go
for name, user, db, target in [("handshake id", "alice", "rr", a.thread_id()),
                                ("connection_id", "alice", "rr", cid),
                                ("control handshake id", "alice", None, a.thread_id()),
                                ("control connection_id", "alice", None, cid)]:
    said = {{}}
    r = run(lambda: said.update(k=kill_with(user, db, target)()))
    print(name, said["k"], "value" not in r, r["seconds"] < 3)
for name, db, target in [("erin handshake id", "rr", a.thread_id()), ("erin connection_id", "rr", cid),
                         ("erin control", None, cid)]:
    print(name, kill_with("erin", db, target)())
"#
    ))
    .await;
    assert_lines(
        &out,
        &[
            "ids differ True gateway id range True",
            "handshake id ok True True",
            "connection_id ok True True",
            "control handshake id ok True True",
            "control connection_id ok True True",
            "erin handshake id refused 1094",
            "erin connection_id refused 1094",
            "erin control refused 1094",
        ],
    );
    env.gw.shutdown().await;
}

#[tokio::test]
async fn drivers_see_the_upstreams_version_and_a_statement_time_limit_fires() {
    let env = MyEnv::new("").await;
    let version = direct("select version()").await;
    let url = format!("jdbc:mariadb://127.0.0.1:{}/rr", env.port);
    let out = java(
        MARIADB_J,
        r#"
import java.sql.*;
public class Main {
    public static void main(String[] a) throws Exception {
        try (Connection c = DriverManager.getConnection(a[0], "alice", a[1])) {
            DatabaseMetaData md = c.getMetaData();
            System.out.println("product " + md.getDatabaseProductName());
            System.out.println("version " + md.getDatabaseProductVersion());
            try (Statement s = c.createStatement()) {
                s.setQueryTimeout(1);
                long t = System.nanoTime();
                try {
                    s.executeQuery("select sleep(10)").next();
                    System.out.println("no time limit");
                } catch (SQLException e) {
                    long ms = (System.nanoTime() - t) / 1000000;
                    System.out.println("limited " + (ms < 4000) + " " + e.getErrorCode());
                }
            }
        }
    }
}
"#,
        &[&url, PASSWORD],
    )
    .await;
    let version = version.trim();
    assert_lines(
        &out,
        &[
            "product MariaDB",
            &format!("version {}", version.trim_start_matches("5.5.5-")),
        ],
    );
    assert!(out.contains("limited true"), "{out}");
    // Connector/J chose MariaDB's dialect: the limit is the server's, on the statement.
    let events = env.events().await;
    assert!(
        events.iter().any(|e| e["kind"] == "query"
            && e["statement"]
                .as_str()
                .unwrap_or("")
                .starts_with("SET STATEMENT max_statement_time=1 FOR select sleep(10)")),
        "{events:?}"
    );
    let out = python(&format!(
        r#"
import pymysql
c = pymysql.connect(host="127.0.0.1", port={}, user="alice", password="{PASSWORD}", database="rr")
d = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")
print("same server info", c.get_server_info() == d.get_server_info(), "MariaDB" in c.get_server_info())
"#,
        env.port
    ))
    .await;
    assert_lines(&out, &["same server info True True"]);
    env.gw.shutdown().await;
}

#[tokio::test]
async fn change_user_with_mysql2_re_authenticates_decides_and_resets() {
    let env = MyEnv::new("").await;
    let port = env.port;
    let out = node(&format!(
        r#"
  const mysql = require("mysql2/promise");
  const pool = mysql.createPool({{ host: "127.0.0.1", port: {port}, user: "alice", password: "{PASSWORD}",
                                   database: "rr", connectionLimit: 1 }});
  let c = await pool.getConnection();
  await c.query("set @x = 42");
  await c.query("create temporary table t (i int)");
  const [[before]] = await c.query("select connection_id() as id");
  // The same user again: the upstream is reset and kept.
  await c.changeUser({{ user: "alice", password: "{PASSWORD}", database: "rr" }});
  const [[same]] = await c.query("select @x as x, connection_id() as id");
  console.log("reset", same.x === null, "same upstream", same.id === before.id);
  try {{ await c.query("select * from t"); }} catch (e) {{ console.log("temporary table gone", e.errno); }}
  // Another user: a connection logged in for them (it carries who is behind it).
  await c.changeUser({{ user: "erin", password: "{PASSWORD}", database: "rr" }});
  const [[other]] = await c.query("select connection_id() as id");
  console.log("erin's own upstream", other.id !== before.id);
  c.release();
  c = await pool.getConnection();
  const [[again]] = await c.query("select 1 as one");
  console.log("pooled again", again.one);
  c.release();
  await pool.end();
  for (const [who, password] of [["bob", "{PASSWORD}"], ["erin", "wrong"], ["nobody", "{PASSWORD}"]]) {{
    const d = await mysql.createConnection({{ host: "127.0.0.1", port: {port}, user: "alice",
                                              password: "{PASSWORD}", database: "rr" }});
    try {{
      await d.changeUser({{ user: who, password, database: "rr" }});
      console.log(who, "changed");
    }} catch (e) {{
      console.log(who, "refused", e.errno);
    }}
    try {{ await d.query("select 1"); console.log(who, "connection goes on"); }}
    catch (e) {{ console.log(who, "connection closed"); }}
    d.destroy();
  }}
"#
    ))
    .await;
    assert_lines(
        &out,
        &[
            "reset true same upstream true",
            "temporary table gone 1146",
            "erin's own upstream true",
            "pooled again 1",
            "bob refused 1044",
            "bob connection closed",
            "erin refused 1045",
            "erin connection closed",
            "nobody refused 1045",
            "nobody connection closed",
        ],
    );
    let events = env.events().await;
    let of = |kind: &str, user: &str| {
        events
            .iter()
            .filter(|e| e["kind"] == kind && e["user"] == user)
            .cloned()
            .collect::<Vec<_>>()
    };
    // alice's pooled session ended where erin's began, on the same client connection.
    let erin = of("session_started", "erin");
    assert_eq!(erin.len(), 1, "{erin:?}");
    let alice_second = &of("session_ended", "alice")[1];
    assert_eq!(alice_second["client_addr"], erin[0]["client_addr"]);
    assert_eq!(of("session_ended", "erin").len(), 1);
    assert_eq!(of("access_denied", "bob").len(), 1);
    assert!(!of("auth_failed", "erin").is_empty());
    env.gw.shutdown().await;
}

#[tokio::test]
async fn a_configured_server_version_is_what_the_listener_announces() {
    let env = MyEnv::new("[listen]\nmysql_server_version = \"8.0.36-gateway\"\n").await;
    let out = python(&format!(
        r#"
import pymysql
c = pymysql.connect(host="127.0.0.1", port={}, user="alice", password="{PASSWORD}", database="rr")
print("server", c.get_server_info())
"#,
        env.port
    ))
    .await;
    assert_lines(&out, &["server 8.0.36-gateway"]);
    env.gw.shutdown().await;
}
