//! Who is behind a session reaches the database, in every mode: PostgreSQL's
//! `application_name` (`pg_stat_activity`), MySQL's connect attributes
//! (`performance_schema.session_connect_attrs`, beside `SHOW PROCESSLIST`'s id) — and a kept
//! upstream connection never shows a previous user.

use std::time::Duration;

use serde_json::json;

use crate::common;
use common::maria::Maria;
use common::my::{PASSWORD, mariadb};
use common::pg::{PgEnv, psql};
use common::{Dir, start, user_client};

/// The application names of the test database's backends, as a DBA sees them.
async fn backends(db: &str) -> Vec<String> {
    let admin = common::pg_admin().await;
    let rows = admin
        .query(
            "select application_name from pg_stat_activity where datname = $1 and pid <> pg_backend_pid() order by 1",
            &[&db],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn postgres_sessions_carry_their_user_into_pg_stat_activity() {
    let env = PgEnv::new("[limits]\nidle_upstreams = 4\n").await;
    let conn = |user: &str| {
        format!(
            "{} application_name=report-tool",
            env.conn_str(user, PASSWORD, "rr")
        )
    };
    let (ok, out, err) = psql(
        &conn("alice"),
        &[
            "-c",
            "select application_name from pg_stat_activity where pid = pg_backend_pid()",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "report-tool (alice via portcullis)");
    common::kept_upstreams(&env.gw, 1).await;
    // alice's connection is kept: erin's session gets its own, showing erin.
    let (ok, out, _) = psql(
        &conn("erin"),
        &[
            "-c",
            "select application_name from pg_stat_activity where pid = pg_backend_pid()",
        ],
    )
    .await;
    assert!(ok);
    assert_eq!(out.trim(), "report-tool (erin via portcullis)");
    assert_eq!(
        backends(&env.db).await,
        [
            "report-tool (alice via portcullis)",
            "report-tool (erin via portcullis)"
        ],
        "both kept, each its user's"
    );
    // A one-off and a runbook run say who ran them too.
    let alice = user_client(&env.gw, &env.dir, "alice").await;
    let done = alice
        .post(
            "/api/resource-roles/rr-ops/exec",
            json!({"statement": "select application_name from pg_stat_activity where pid = pg_backend_pid()", "application_name": "console"}),
        )
        .await
        .unwrap();
    assert_eq!(
        done["results"][0]["rows"],
        json!([["console (alice via portcullis)"]])
    );
    env.gw.shutdown().await;
}

#[tokio::test]
async fn mysql_sessions_carry_their_user_in_connect_attributes() {
    let maria = Maria::start(&["--performance-schema=ON".to_owned()]);
    maria
        .sql("CREATE DATABASE app; CREATE USER app@'%' IDENTIFIED BY 'app-pw'; GRANT ALL ON *.* TO app@'%'")
        .unwrap();
    let dir = Dir::new();
    let declared = common::declarations(
        "private",
        "mysql",
        &format!("127.0.0.1:{}", maria.port),
        "disable",
        "app",
        "app",
        "app-pw",
    );
    dir.write_config(None, &format!("[limits]\nidle_upstreams = 4\n{declared}"));
    let gw = start(&dir).await;
    let port = gw.mysql_addr.unwrap().port().to_string();
    let pw = format!("-p{PASSWORD}");
    let attrs = "select attr_name, attr_value from performance_schema.session_connect_attrs \
                 where processlist_id = connection_id() and attr_name in ('_portcullis_user', 'program_name') order by 1";
    let (ok, out, err) = mariadb(&["-P", &port, "-u", "alice", &pw, "-D", "rr", "-e", attrs]).await;
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "_portcullis_user\talice\nprogram_name\tmysql (alice via portcullis)\n"
    );
    common::kept_upstreams(&gw, 1).await;
    let (ok, out, _) = mariadb(&["-P", &port, "-u", "erin", &pw, "-D", "rr", "-e", attrs]).await;
    assert!(ok);
    assert!(
        out.starts_with("_portcullis_user\terin\n"),
        "never the previous user: {out}"
    );
    // A DBA finds the user behind each process-list entry.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let listed = maria
        .sql(
            "select p.id, a.attr_value from information_schema.processlist p \
             join performance_schema.session_connect_attrs a on a.processlist_id = p.id \
             where a.attr_name = '_portcullis_user' order by a.attr_value",
        )
        .unwrap();
    let users: Vec<&str> = listed
        .lines()
        .map(|l| l.split('\t').nth(1).unwrap())
        .collect();
    assert_eq!(users, ["alice", "erin"], "{listed}");
    gw.shutdown().await;
}
