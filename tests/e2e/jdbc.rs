//! The JDBC drivers BI tools use, through the gateway to real servers: pgjdbc (PostgreSQL)
//! and MariaDB Connector/J (MySQL protocol). Metadata queries, batches, server-side
//! prepared statements, transactions, cursors with a fetch size, errors, TLS with a
//! personal access token — and what the monitoring log records of them.

use crate::common;

use common::clients::{MARIADB_J, PGJDBC, java};
use common::my::MyEnv;
use common::pg::{PASSWORD, PgEnv};

/// One program for both drivers; `a[3]` is `pg` or `mariadb`.
const PROGRAM: &str = r#"
import java.sql.*;
import java.util.Properties;

public class Main {
    static void insert(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("insert into j values (?, ?, ?)")) {
            for (int i = 0; i < 200; i++) {
                ps.setInt(1, i);
                ps.setString(2, "v" + i);
                ps.setBigDecimal(3, new java.math.BigDecimal(i + ".5"));
                ps.addBatch();
            }
            ps.executeBatch();
        }
    }

    public static void main(String[] a) throws Exception {
        boolean pg = a[3].equals("pg");
        Properties p = new Properties();
        p.setProperty("user", a[1]);
        p.setProperty("password", a[2]);
        if (pg) p.setProperty("ApplicationName", "jdbc-test");
        try (Connection c = DriverManager.getConnection(a[0], p)) {
            DatabaseMetaData md = c.getMetaData();
            System.out.println("product " + md.getDatabaseProductName());
            Statement s = c.createStatement();
            s.execute("create table j (id int primary key, v varchar(20), n decimal(10,1))");
            try (ResultSet rs = md.getTables(null, null, "j", new String[] {"TABLE"})) {
                while (rs.next()) System.out.println("table " + rs.getString("TABLE_NAME"));
            }
            c.setAutoCommit(false);
            insert(c);
            c.rollback();
            try (ResultSet rs = s.executeQuery("select count(*) from j")) {
                rs.next();
                System.out.println("after rollback " + rs.getLong(1));
            }
            insert(c);
            c.commit();
            // pgjdbc: used more than prepareThreshold (5) times, a named server-side
            // statement with binary parameters.
            String last = null;
            try (PreparedStatement ps = c.prepareStatement("select v from j where id = ?")) {
                for (int i = 0; i < 10; i++) {
                    ps.setInt(1, i);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        last = rs.getString(1);
                    }
                }
            }
            System.out.println("prepared " + last);
            // pgjdbc: a cursor, the portal executed 50 rows at a time.
            Statement f = c.createStatement();
            f.setFetchSize(50);
            long rows = 0, sum = 0;
            try (ResultSet rs = f.executeQuery("select id from j order by id")) {
                while (rs.next()) { rows++; sum += rs.getInt(1); }
            }
            System.out.println("fetched " + rows + " " + sum);
            c.commit();
            try (PreparedStatement ps = c.prepareStatement(pg ? "select ?::text" : "select ?")) {
                ps.setString(1, "héllo ✓ 你好");
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    System.out.println("unicode " + rs.getString(1).equals("héllo ✓ 你好"));
                }
            }
            try {
                s.executeQuery(pg ? "select 1/0" : "select * from missing");
            } catch (SQLException e) {
                System.out.println("error " + e.getSQLState() + " " + e.getErrorCode());
            }
            c.rollback();
            c.setAutoCommit(true);
            s.execute("drop table j");
        }
        p.setProperty("password", "wrong");
        try {
            DriverManager.getConnection(a[0], p).close();
        } catch (SQLException e) {
            System.out.println("login " + e.getSQLState() + " " + e.getErrorCode());
        }
    }
}
"#;

/// The lines every run prints, whichever the driver, and `lines`.
fn assert_ran(out: &str, lines: &[&str]) {
    common::clients::assert_lines(
        out,
        &[
            "table j",
            "after rollback 0",
            "prepared v9",
            "fetched 200 19900",
            "unicode true",
        ],
    );
    common::clients::assert_lines(out, lines);
}

#[tokio::test]
async fn pgjdbc_works_through_the_gateway() {
    let env = PgEnv::new("").await;
    let url = format!(
        "jdbc:postgresql://127.0.0.1:{}/rr?sslmode=disable",
        env.port
    );
    let out = java(PGJDBC, PROGRAM, &[&url, "alice", PASSWORD, "pg"]).await;
    assert_ran(
        &out,
        &["product PostgreSQL", "error 22012 0", "login 28P01 0"],
    );
    let events = env.events().await;
    // pgjdbc sets ApplicationName with `SET application_name` after login; the server's
    // report of it names the session in the events that follow and in its end.
    let named = |kind: &str| {
        events
            .iter()
            .filter(|e| e["kind"] == kind)
            .map(|e| e["application_name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(named("session_started")[0], "");
    assert_eq!(named("session_ended")[0], "jdbc-test");
    assert!(named("query").iter().skip(2).all(|n| n == "jdbc-test"));
    let selects: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "query" && e["statement"] == "select v from j where id = $1")
        .collect();
    assert_eq!(selects.len(), 10, "every execution is logged");
    assert_eq!(selects[9]["params"], serde_json::json!(["9"]));
    let cursor: u64 = events
        .iter()
        .filter(|e| e["kind"] == "query" && e["statement"] == "select id from j order by id")
        .map(|e| e["rows"].as_u64().unwrap())
        .sum();
    assert_eq!(cursor, 200, "the rows of a portal fetched 50 at a time");
    assert!(
        events.iter().any(|e| e["kind"] == "auth_failed"),
        "the wrong password is logged"
    );
    env.gw.shutdown().await;
}

#[tokio::test]
async fn mariadb_connector_j_works_through_the_gateway() {
    let env = MyEnv::new("").await;
    for (how, options) in [("text", ""), ("binary", "?useServerPrepStmts=true")] {
        let url = format!("jdbc:mariadb://127.0.0.1:{}/rr{options}", env.port);
        let out = java(MARIADB_J, PROGRAM, &[&url, "alice", PASSWORD, "mariadb"]).await;
        assert_ran(&out, &["error 42S02 1146", "login 28000 1045"]);
        let events = env.events().await;
        assert!(
            events
                .iter()
                .filter(|e| e["kind"] == "session_started")
                .all(|e| e["application_name"] == "MariaDB Connector/J"),
            "the driver's name from its connect attributes"
        );
        let selects: Vec<_> = events
            .iter()
            .filter(|e| {
                e["kind"] == "query"
                    && e["statement"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("select v from j where id =")
            })
            .collect();
        // Both runs share the log: the text run's ten, then the binary run's.
        let last = selects.last().unwrap();
        if how == "text" {
            assert_eq!(selects.len(), 10, "every execution is logged");
            assert_eq!(last["statement"], "select v from j where id = 9");
        } else {
            assert_eq!(selects.len(), 20, "every execution is logged");
            assert_eq!(last["op"], "stmt_execute");
            assert_eq!(last["statement"], "select v from j where id = ?");
            assert_eq!(last["params"], serde_json::json!(["9"]));
        }
    }
    env.gw.shutdown().await;
}

/// Connects with `a[1]` / `a[2]` and prints what the session sees.
const WHO: &str = r#"
import java.sql.*;

public class Main {
    public static void main(String[] a) throws Exception {
        try (Connection c = DriverManager.getConnection(a[0], a[1], a[2]);
             ResultSet rs = c.createStatement().executeQuery("select 6 * 7")) {
            rs.next();
            System.out.println("answer " + rs.getInt(1));
        }
    }
}
"#;

async fn alices_token(gw: &portcullis::app::Running, dir: &common::Dir) -> String {
    let admin = common::client(gw, Some(&dir.bootstrap_token()));
    let created = admin
        .post(
            "/api/tokens",
            serde_json::json!({"user": "alice", "name": "bi-tool"}),
        )
        .await
        .unwrap();
    created["token"].as_str().unwrap().to_owned()
}

/// The way a BI tool is set up: TLS to the gateway and a personal access token as the
/// password, for both drivers; the gateway requires TLS for passwords.
#[tokio::test]
async fn bi_tools_log_in_over_tls_with_a_personal_access_token() {
    let certs = common::tls::TestCert::new();
    let tls = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\nrequire = true\n",
        certs.cert.display(),
        certs.key.display()
    );
    let pg = PgEnv::new(&tls).await;
    let pg_token = alices_token(&pg.gw, &pg.dir).await;
    let url = format!("jdbc:postgresql://127.0.0.1:{}/rr?sslmode=require", pg.port);
    let out = java(PGJDBC, WHO, &[&url, "alice", &pg_token]).await;
    assert!(out.contains("answer 42"), "{out}");
    let started = pg.events_of("session_started", "alice").await;
    assert_eq!(started[0]["tls"], true);
    pg.gw.shutdown().await;

    let my = MyEnv::new(&tls).await;
    let my_token = alices_token(&my.gw, &my.dir).await;
    let url = format!(
        "jdbc:mariadb://127.0.0.1:{}/rr?useSsl=true&trustServerCertificate=true",
        my.port
    );
    let out = java(MARIADB_J, WHO, &[&url, "alice", &my_token]).await;
    assert!(out.contains("answer 42"), "{out}");
    let events = my.events().await;
    let started = events
        .iter()
        .find(|e| e["kind"] == "session_started" && e["user"] == "alice")
        .unwrap();
    assert_eq!(started["tls"], true);
    my.gw.shutdown().await;
}
