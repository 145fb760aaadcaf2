//! MySQL through the gateway to a real MariaDB with the real mariadb CLI: logins (native
//! and caching_sha2), refusals with 1045/1044/1046, statements and errors in the log,
//! multi-statements, LOAD DATA LOCAL INFILE, large results, unicode.

use crate::common;

use common::clients::python;
use common::my::{MyEnv, PASSWORD, direct};

#[tokio::test]
async fn alice_reaches_mariadb_as_the_resource_roles_user_and_statements_are_logged() {
    let env = MyEnv::new("").await;
    let (ok, out, err) = env
        .client(
            "alice",
            PASSWORD,
            "rr",
            &[
                "-e",
                "select current_user(), database(); select 1; select 2; select * from nope_table",
            ],
        )
        .await;
    assert!(!ok, "the last statement fails");
    assert!(out.starts_with(&format!("{}@", env.user)), "{out}");
    assert!(out.contains(&env.db));
    assert!(err.contains("ERROR 1146"), "error codes propagate: {err}");
    let events = env.events().await;
    let queries: Vec<_> = events.iter().filter(|e| e["kind"] == "query").collect();
    assert_eq!(queries.len(), 4, "one event per statement: {queries:?}");
    assert!(queries.iter().all(|q| q["op"] == "com_query"));
    assert_eq!(queries[3]["error_code"], "1146");
    assert_eq!(queries[3]["status"], "error");
    let started: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "session_started")
        .collect();
    assert_eq!(started.len(), 1);
    let program = started[0]["application_name"].as_str().unwrap();
    assert!(
        program == "mariadb" || program == "mysql",
        "the CLI's program_name attribute: {program}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e["kind"] == "session_ended")
            .count(),
        1
    );
    env.gw.shutdown().await;
}

#[tokio::test]
async fn caching_sha2_fast_path_logs_in() {
    let env = MyEnv::new("").await;
    let (ok, out, err) = env
        .client(
            "alice",
            PASSWORD,
            "rr",
            &["--default-auth=caching_sha2_password", "-e", "select 42"],
        )
        .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "42");
    let (ok, _, err) = env
        .client(
            "alice",
            "wrong",
            "rr",
            &["--default-auth=caching_sha2_password", "-e", "select 1"],
        )
        .await;
    assert!(!ok && err.contains("ERROR 1045"), "{err}");
    env.gw.shutdown().await;
}

#[tokio::test]
async fn each_refusal_gets_its_error_code_and_one_message_shape() {
    let env = MyEnv::new("").await;
    let cases = [
        (
            "alice",
            "wrong",
            "rr",
            "ERROR 1045 (28000): Access denied for user 'alice'",
        ),
        (
            "nobody",
            PASSWORD,
            "rr",
            "ERROR 1045 (28000): Access denied for user 'nobody'",
        ),
        (
            "carol",
            PASSWORD,
            "rr",
            "ERROR 1044 (42000): Access denied for user 'carol' to resource role 'rr'",
        ),
        (
            "bob",
            PASSWORD,
            "rr",
            "ERROR 1044 (42000): Access denied for user 'bob' to resource role 'rr'",
        ),
        (
            "alice",
            PASSWORD,
            "rr-web-only",
            "ERROR 1044 (42000): Access denied for user 'alice' to resource role 'rr-web-only'",
        ),
        (
            "alice",
            PASSWORD,
            "missing",
            "ERROR 1044 (42000): Access denied for user 'alice' to resource role 'missing'",
        ),
        // No database: a control session once authenticated, which serves no `select`.
        (
            "alice",
            "wrong",
            "",
            "ERROR 1045 (28000): Access denied for user 'alice'",
        ),
        ("alice", PASSWORD, "", "No resource role selected"),
    ];
    for (user, pw, rr, want) in cases {
        let (ok, _, err) = env.client(user, pw, rr, &["-e", "select 1"]).await;
        assert!(!ok, "{user} → {rr} got in");
        assert!(err.contains(want), "{user} → {rr}: {err}");
    }
    let events = env.events().await;
    let reasons: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "auth_failed" || e["kind"] == "access_denied")
        .filter_map(|e| e["reason"].as_str())
        .collect();
    for want in [
        "user is inactive",
        "shares no group",
        "native is disabled",
        "unknown resource role",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(want)),
            "no reason `{want}` in {reasons:?}"
        );
    }
    env.gw.shutdown().await;
}

#[tokio::test]
async fn load_data_local_infile_large_results_and_unicode() {
    let env = MyEnv::new("").await;
    let file = env.dir.path().join("rows.tsv");
    let data: String = (0..100_000).map(|i| format!("{i}\tname-{i}-✓\n")).collect();
    std::fs::write(&file, &data).unwrap();
    let load = format!(
        "create table t (id int primary key, name varchar(64)) character set utf8mb4; \
         load data local infile '{}' into table t character set utf8mb4",
        file.display()
    );
    let (ok, _, err) = env
        .client(
            "alice",
            PASSWORD,
            "rr",
            &[
                "--local-infile=1",
                "--default-character-set=utf8mb4",
                "-e",
                &load,
            ],
        )
        .await;
    assert!(ok, "{err}");
    let check = "select count(*), sum(crc32(name)) from t";
    let (ok, through, err) = env.client("alice", PASSWORD, "rr", &["-e", check]).await;
    assert!(ok, "{err}");
    assert_eq!(through, direct(&format!("use {}; {check}", env.db)).await);
    assert!(through.starts_with("100000\t"));
    let (ok, out, _) = env
        .client(
            "alice",
            PASSWORD,
            "rr",
            &[
                "--default-character-set=utf8mb4",
                "-e",
                "select name from t where id = 7",
            ],
        )
        .await;
    assert!(ok && out.trim() == "name-7-✓", "{out}");
    let (ok, out, err) = env
        .client(
            "alice",
            PASSWORD,
            "rr",
            &["-e", "select seq, repeat('x', 40) from seq_1_to_1000000"],
        )
        .await;
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1_000_000);
    let events = env.events().await;
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "query" && e["rows"] == 1_000_000)
    );
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "query" && e["rows"] == 100_000),
        "LOAD DATA reports its rows"
    );
    env.gw.shutdown().await;
}

#[tokio::test]
async fn python_drivers_text_and_binary_protocol_transactions_and_multi_results() {
    let env = MyEnv::new("").await;
    let port = env.port;
    let out = python(&format!(
        r#"
import pymysql, mysql.connector
c = pymysql.connect(host="127.0.0.1", port={port}, user="alice", password="{PASSWORD}", database="rr",
                    client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS, autocommit=False)
cur = c.cursor()
cur.execute("create table p (id int primary key, v varchar(20))")
cur.executemany("insert into p values (%s, %s)", [(i, "v%d" % i) for i in range(50)])
c.rollback()
cur.execute("select count(*) from p"); print("after rollback", cur.fetchone()[0])
cur.executemany("insert into p values (%s, %s)", [(i, "v%d" % i) for i in range(50)])
c.commit()
cur.execute("select 1; select 2, 3")
print("multi", cur.fetchall(), cur.nextset(), cur.fetchall())
try:
    cur.execute("select * from missing")
except pymysql.err.ProgrammingError as e:
    print("code", e.args[0])
c.close()
m = mysql.connector.connect(host="127.0.0.1", port={port}, user="alice", password="{PASSWORD}", database="rr")
pc = m.cursor(prepared=True)
pc.execute("select v from p where id = %s", (7,))
print("prepared", pc.fetchall())
pc.execute("select v from p where id = %s", (8,))
print("prepared", pc.fetchall())
pc.execute("select %s, %s, %s, %s", ("naïve", None, 2.5, -3))
print("typed", pc.fetchall())
m.close()
"#
    ))
    .await;
    assert!(out.contains("after rollback 0"), "{out}");
    assert!(out.contains("multi ((1,),) True ((2, 3),)"), "{out}");
    assert!(out.contains("code 1146"), "{out}");
    assert!(
        out.contains("prepared [('v7',)]") && out.contains("prepared [('v8',)]"),
        "{out}"
    );
    let events = env.events().await;
    let executes: Vec<_> = events
        .iter()
        .filter(|e| e["op"] == "stmt_execute")
        .collect();
    assert_eq!(executes.len(), 3);
    assert_eq!(executes[0]["statement"], "select v from p where id = ?");
    assert_eq!(executes[0]["rows"], 1);
    // Bind parameters decoded from the binary protocol, with the prepare's types.
    assert_eq!(executes[0]["params"], serde_json::json!(["7"]));
    assert_eq!(executes[1]["params"], serde_json::json!(["8"]));
    assert_eq!(
        executes[2]["params"],
        serde_json::json!(["naïve", null, "2.5", "-3"]),
        "{out}"
    );
    env.gw.shutdown().await;
}

#[tokio::test]
async fn tls_with_a_test_certificate() {
    let certs = common::tls::TestCert::new();
    let env = MyEnv::new(&format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\nrequire = true\n",
        certs.cert.display(),
        certs.key.display()
    ))
    .await;
    let (ok, _, err) = env
        .client("alice", PASSWORD, "rr", &["--skip-ssl", "-e", "select 1"])
        .await;
    assert!(!ok && err.contains("requires TLS"), "{err}");
    let (ok, out, err) = env
        .client(
            "alice",
            PASSWORD,
            "rr",
            &[
                "--ssl",
                "--ssl-verify-server-cert=0",
                "-e",
                "show status like 'Ssl_cipher'; select 5",
            ],
        )
        .await;
    assert!(ok, "{err}");
    assert!(out.contains('5'), "{out}");
    let started = env
        .events()
        .await
        .into_iter()
        .find(|e| e["kind"] == "session_started")
        .unwrap();
    assert_eq!(started["tls"], true);
    env.gw.shutdown().await;
}

#[tokio::test]
async fn change_user_to_a_database_user_is_refused_and_revoked_access_ends_live_sessions() {
    let env = MyEnv::new("").await;
    let port = env.port;
    let token = env.dir.bootstrap_token();
    let admin = common::client(&env.gw, Some(&token));
    admin
        .post(
            "/api/users",
            serde_json::json!({"name": "dora", "groups": ["eng"], "password": PASSWORD}),
        )
        .await
        .unwrap();
    let out = python(&format!(
        r#"
import mysql.connector, pymysql, time, urllib.request, json
c = mysql.connector.connect(host="127.0.0.1", port={port}, user="alice", password="{PASSWORD}", database="rr")
cur = c.cursor(); cur.execute("select current_user()"); print("upstream", cur.fetchone()[0])
try:
    c.cmd_change_user(username="root", password="", database="mysql")
    print("change_user passed")
except Exception as e:
    print("change_user refused", type(e).__name__, e)
print("connection closed", not c.is_connected())
d = pymysql.connect(host="127.0.0.1", port={port}, user="dora", password="{PASSWORD}", database="rr")
d.cursor().execute("select 1")
req = urllib.request.Request("http://{admin}/api/users/dora", data=json.dumps({{"status": "inactive"}}).encode(),
                             method="PATCH", headers={{"Authorization": "Bearer {token}", "Content-Type": "application/json"}})
urllib.request.urlopen(req).read()
t = time.time()
while time.time() - t < 5:
    try:
        d.cursor().execute("select 1")
        time.sleep(0.05)
    except Exception as e:
        print("dora ended after", round(time.time() - t, 1), type(e).__name__)
        break
"#,
        admin = env.gw.admin_addr.unwrap()
    ))
    .await;
    // `root` is the database's user, not a Portcullis user: refused as a failed login,
    // and the connection ends as the server's would.
    assert!(out.contains(&format!("upstream {}@", env.user)), "{out}");
    assert!(out.contains("change_user refused"), "{out}");
    assert!(
        out.contains("1045") && out.contains("Access denied for user 'root'"),
        "{out}"
    );
    assert!(out.contains("connection closed True"), "{out}");
    assert!(out.contains("dora ended after"), "{out}");
    let events = env.events().await;
    let ended: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "session_ended" && e["user"] == "dora")
        .collect();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["ended_by"], "killed");
    // The log has alice's session ended by the client, and the attempt as a failed login.
    let attempt = events
        .iter()
        .find(|e| e["kind"] == "auth_failed" && e["user"] == "root")
        .unwrap();
    assert_eq!(attempt["resource_role"], "mysql");
    let alice_ended = events
        .iter()
        .filter(|e| e["kind"] == "session_ended" && e["user"] == "alice")
        .count();
    assert_eq!(alice_ended, 1);
    env.gw.shutdown().await;
}

#[tokio::test]
async fn sysbench_read_write_and_point_select_in_both_prepared_modes() {
    let env = MyEnv::new("").await;
    let base = [
        "--db-driver=mysql".to_owned(),
        "--mysql-host=127.0.0.1".to_owned(),
        format!("--mysql-port={}", env.port),
        "--mysql-user=alice".to_owned(),
        format!("--mysql-password={PASSWORD}"),
        "--mysql-db=rr".to_owned(),
        "--tables=1".to_owned(),
        "--table-size=10000".to_owned(),
    ];
    let sysbench = |extra: Vec<String>| {
        let mut args = base.to_vec();
        args.extend(extra);
        async move {
            let out = tokio::process::Command::new("sysbench")
                .args(&args)
                .output()
                .await
                .expect("sysbench is installed (scripts/test-tools.sh)");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success() && !text.contains("FATAL"),
                "{args:?}: {text}"
            );
            text
        }
    };
    sysbench(vec!["oltp_read_write".into(), "prepare".into()]).await;
    for mode in ["auto", "disable"] {
        for test in ["oltp_read_write", "oltp_point_select"] {
            let text = sysbench(vec![
                "--threads=2".into(),
                "--time=2".into(),
                format!("--db-ps-mode={mode}"),
                test.into(),
                "run".into(),
            ])
            .await;
            let tx: u64 = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("transactions:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            assert!(tx > 50, "{test} ({mode}): {text}");
        }
    }
    let events = env.events().await;
    assert!(
        events.iter().filter(|e| e["op"] == "stmt_execute").count() > 100,
        "prepared mode executes are logged"
    );
    env.gw.shutdown().await;
}

#[tokio::test]
async fn a_personal_access_token_works_as_the_password_over_tls() {
    let certs = common::tls::TestCert::new();
    let env = MyEnv::new(&format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        certs.cert.display(),
        certs.key.display()
    ))
    .await;
    let admin = common::client(&env.gw, Some(&env.dir.bootstrap_token()));
    let token = admin
        .post("/api/tokens", serde_json::json!({"user": "alice"}))
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let tls = ["--ssl", "--ssl-verify-server-cert=0"];
    let (ok, out, err) = env
        .client("alice", &token, "rr", &[tls[0], tls[1], "-e", "select 9"])
        .await;
    assert!(ok && out.trim() == "9", "{err}");
    // A caching_sha2_password client gets full authentication over TLS.
    let sha2 = "--default-auth=caching_sha2_password";
    let (ok, out, err) = env
        .client(
            "alice",
            &token,
            "rr",
            &[tls[0], tls[1], sha2, "-e", "select 8"],
        )
        .await;
    assert!(ok && out.trim() == "8", "{err}");
    let (ok, _, err) = env
        .client(
            "alice",
            "wrong",
            "rr",
            &[tls[0], tls[1], sha2, "-e", "select 1"],
        )
        .await;
    assert!(!ok && err.contains("ERROR 1045"), "{err}");
    // The password still works; a wrong secret and another user's token do not.
    let (ok, _, err) = env
        .client("alice", PASSWORD, "rr", &[tls[0], tls[1], "-e", "select 1"])
        .await;
    assert!(ok, "{err}");
    let (ok, _, err) = env
        .client("erin", &token, "rr", &[tls[0], tls[1], "-e", "select 1"])
        .await;
    assert!(!ok && err.contains("ERROR 1045"), "{err}");
    // Without TLS the token is never asked for in clear.
    let (ok, _, err) = env
        .client("alice", &token, "rr", &["--skip-ssl", "-e", "select 1"])
        .await;
    assert!(!ok && err.contains("ERROR 1045"), "{err}");
    env.gw.shutdown().await;
}
