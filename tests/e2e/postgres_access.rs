//! PostgreSQL logins through the gateway: who gets in, who is refused with which
//! SQLSTATE, what the monitoring log says, and that live sessions end when access goes.

use crate::common;

use std::time::{Duration, Instant};

use common::pg::{PASSWORD, PgEnv, psql};
use common::{client, status};
use serde_json::json;

fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_owned())
        .unwrap_or_else(|| format!("no db error: {e}"))
}

fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn alice_reaches_the_upstream_as_the_resource_roles_user() {
    let env = PgEnv::new("").await;
    let c = env.alice().await;
    let row = c
        .query_one("select current_user::text, current_database()::text", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), env.role);
    assert_eq!(row.get::<_, String>(1), env.db);
    drop(c);
    let events = env.events().await;
    let started: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "session_started")
        .collect();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["upstream_user"], env.role.as_str());
    assert_eq!(started[0]["groups"], json!(["eng"]));
    // The upstream password appears nowhere the gateway writes.
    let log = std::fs::read_dir(env.dir.path().join("audit")).unwrap();
    for f in log {
        assert!(
            !std::fs::read_to_string(f.unwrap().path())
                .unwrap()
                .contains(&env.upstream_password)
        );
    }
    env.gw.shutdown().await;
}

#[tokio::test]
async fn each_refusal_gets_its_sqlstate_with_one_message_shape_and_the_log_gets_the_reason() {
    let env = PgEnv::new("").await;
    let cases = [
        (
            "alice",
            "wrong-password",
            "rr",
            "28P01",
            "authentication failed",
        ),
        ("nobody", PASSWORD, "rr", "28P01", "authentication failed"),
        ("carol", PASSWORD, "rr", "28000", "user is inactive"),
        ("bob", PASSWORD, "rr", "28000", "shares no group"),
        (
            "alice",
            PASSWORD,
            "rr-web-only",
            "28000",
            "access mode native is disabled",
        ),
        (
            "alice",
            PASSWORD,
            "no-such-role",
            "28000",
            "unknown resource role",
        ),
    ];
    for (user, pw, rr, code, _) in cases {
        let err = env
            .connect(user, pw, rr)
            .await
            .err()
            .unwrap_or_else(|| panic!("{user}/{rr} got in"));
        assert_eq!(sqlstate(&err), code, "{user} → {rr}");
        let msg = message(&err);
        let expected = if code == "28P01" {
            format!("password authentication failed for user \"{user}\"")
        } else {
            format!(
                "user \"{user}\" may not use resource role \"{rr}\": name a resource role as the database (psql \"host=… user={user} dbname=ROLE\"; `portcullis access show --user {user}` lists yours)"
            )
        };
        assert_eq!(msg, expected, "one message shape, nothing revealed");
    }
    let events = env.events().await;
    for (user, _, rr, _, reason) in cases {
        let found = events.iter().any(|e| {
            (e["kind"] == "auth_failed" || e["kind"] == "access_denied")
                && e["user"] == user
                && e["resource_role"] == rr
                && e["reason"].as_str().unwrap_or_default().contains(reason)
        });
        assert!(found, "no event with reason `{reason}` for {user} → {rr}");
    }
    assert!(events.iter().all(|e| e["kind"] != "session_started"));
    env.gw.shutdown().await;
}

#[tokio::test]
async fn deactivating_a_user_ends_their_live_session_with_57p01() {
    let env = PgEnv::new("").await;
    let c = env.alice().await;
    c.simple_query("select 1").await.unwrap();
    let admin = client(&env.gw, Some(&env.dir.bootstrap_token()));
    // alice is declared in the file: the API refuses, so change access another way.
    assert_eq!(
        status(
            admin
                .patch("/api/users/alice", json!({"status": "inactive"}))
                .await
        ),
        409
    );
    admin
        .post(
            "/api/users",
            json!({"name": "dora", "groups": ["eng"], "password": PASSWORD}),
        )
        .await
        .unwrap();
    let dora = env.connect("dora", PASSWORD, "rr").await.unwrap();
    dora.simple_query("select 1").await.unwrap();
    let t = Instant::now();
    admin
        .patch("/api/users/dora", json!({"status": "inactive"}))
        .await
        .unwrap();
    let err = loop {
        match dora.simple_query("select 1").await {
            Err(e) => break e,
            Ok(_) if t.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Ok(_) => panic!("session still alive 5 s after deactivation"),
        }
    };
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    let code = err.as_db_error().map(|d| d.code().code().to_owned());
    assert!(
        code.as_deref() == Some("57P01") || err.is_closed(),
        "{err:?}"
    );
    // alice, untouched, still works.
    c.simple_query("select 1").await.unwrap();
    let ended = env.events_of("session_ended", "dora").await;
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["ended_by"], "killed");
    env.gw.shutdown().await;
}

#[tokio::test]
async fn an_admin_can_end_a_live_session_through_the_api() {
    let env = PgEnv::new("").await;
    let c = env.alice().await;
    c.simple_query("select 1").await.unwrap();
    let admin = client(&env.gw, Some(&env.dir.bootstrap_token()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let live = admin.get("/api/sessions?status=live").await.unwrap();
    let id = live[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(live[0]["user"], "alice");
    admin.delete(&format!("/api/sessions/{id}")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(c.simple_query("select 1").await.is_err());
    assert_eq!(
        admin.get("/api/sessions?status=live").await.unwrap(),
        json!([])
    );
    let ended = admin.get(&format!("/api/sessions/{id}")).await.unwrap();
    assert_eq!(ended["ended_by"], "killed");
    assert_eq!(ended["statements"].as_array().unwrap().len(), 1);
    assert_eq!(ended["statements"][0]["statement"], "select 1");
    env.gw.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_upstream_gets_a_clear_08001_not_a_hang() {
    let env = PgEnv::new("").await;
    let admin = client(&env.gw, Some(&env.dir.bootstrap_token()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    admin
        .post(
            "/api/resources",
            json!({"name": "gone", "protocol": "postgres", "address": format!("127.0.0.1:{port}")}),
        )
        .await
        .unwrap();
    admin
        .post("/api/resource-roles", json!({"name": "gone-rr", "resource": "gone", "database": "x", "user": "x", "allowed_groups": ["eng"]}))
        .await
        .unwrap();
    let t = Instant::now();
    let err = env
        .connect("alice", PASSWORD, "gone-rr")
        .await
        .err()
        .unwrap();
    assert_eq!(sqlstate(&err), "08001");
    assert!(t.elapsed() < Duration::from_secs(6));
    env.gw.shutdown().await;
}

#[tokio::test]
async fn tls_require_refuses_plaintext_and_accepts_tls() {
    let certs = common::tls::TestCert::new();
    let env = PgEnv::new(&format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\nrequire = true\n",
        certs.cert.display(),
        certs.key.display()
    ))
    .await;
    let err = env.connect("alice", PASSWORD, "rr").await.err().unwrap();
    assert_eq!(sqlstate(&err), "28000");
    assert!(message(&err).contains("requires TLS"));
    let conn = format!(
        "host=127.0.0.1 port={} user=alice password={PASSWORD} dbname=rr sslmode=require",
        env.port
    );
    let (ok, out, err) = psql(&conn, &["-c", "select 42", "-c", "\\conninfo"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("42") && out.contains("SSL connection"),
        "{out}"
    );
    let started = env.events_of("session_started", "alice").await;
    assert_eq!(started[0]["tls"], true);
    env.gw.shutdown().await;
}

#[tokio::test]
async fn a_personal_access_token_works_as_the_password() {
    let env = PgEnv::new("").await;
    let admin = client(&env.gw, Some(&env.dir.bootstrap_token()));
    let created = admin
        .post("/api/tokens", json!({"user": "alice", "name": "bi-tool"}))
        .await
        .unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let c = env.connect("alice", &token, "rr").await.unwrap();
    let who: String = c
        .query_one("select current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(who, env.role);
    // The password still works beside it; another user's token does not.
    env.connect("alice", PASSWORD, "rr").await.unwrap();
    let err = env.connect("bob", &token, "rr").await.err().unwrap();
    assert_eq!(sqlstate(&err), "28P01");
    // A revoked token stops working at once.
    let id = created["id"].as_str().unwrap();
    admin.delete(&format!("/api/tokens/{id}")).await.unwrap();
    let err = env.connect("alice", &token, "rr").await.err().unwrap();
    assert_eq!(sqlstate(&err), "28P01");
    env.gw.shutdown().await;
}

#[tokio::test]
async fn the_connection_cap_refuses_with_53300() {
    let env = PgEnv::new("[limits]\nmax_connections = 2\n").await;
    let (a, b) = (env.alice().await, env.alice().await);
    let err = env.connect("alice", PASSWORD, "rr").await.err().unwrap();
    assert_eq!(sqlstate(&err), "53300");
    drop((a, b));
    tokio::time::sleep(Duration::from_millis(200)).await;
    env.connect("alice", PASSWORD, "rr").await.unwrap();
    env.gw.shutdown().await;
}

#[tokio::test]
async fn cleartext_over_tls_accepts_passwords_and_tokens_when_allowed() {
    let certs = common::tls::TestCert::new();
    let env = PgEnv::new(&format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\nallow_cleartext = true\n",
        certs.cert.display(),
        certs.key.display()
    ))
    .await;
    let admin = client(&env.gw, Some(&env.dir.bootstrap_token()));
    let token = admin
        .post("/api/tokens", json!({"user": "alice"}))
        .await
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for secret in [PASSWORD, token.as_str()] {
        let conn = format!(
            "host=127.0.0.1 port={} user=alice password={secret} dbname=rr sslmode=require",
            env.port
        );
        let (ok, out, err) = psql(&conn, &["-c", "select 7"]).await;
        assert!(ok && out.trim() == "7", "{err}");
    }
    let conn = format!(
        "host=127.0.0.1 port={} user=alice password=wrong dbname=rr sslmode=require",
        env.port
    );
    let (ok, _, err) = psql(&conn, &["-c", "select 7"]).await;
    assert!(
        !ok && err.contains("password authentication failed"),
        "{err}"
    );
    // Without TLS the same listener still uses SCRAM, never cleartext.
    env.connect("alice", PASSWORD, "rr").await.unwrap();
    env.gw.shutdown().await;
}
