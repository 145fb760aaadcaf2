//! The gateway's login to MySQL resources over TLS: `require` upgrades with an SSLRequest
//! before the login (a user created `REQUIRE SSL` gets in), `disable` stays plain (and that
//! user is refused, clearly), `require` against a server without TLS is refused; and
//! `client_ed25519` when the upstream user is identified via ed25519.

use crate::common;

use common::maria::Maria;
use common::my::{PASSWORD, mariadb};
use common::tls::TestCert;
use common::{Dir, start};
use portcullis::app::Running;

fn config(port: u16, tls: &str) -> String {
    common::declarations(
        "private",
        "mysql",
        &format!("127.0.0.1:{port}"),
        tls,
        "app",
        "tls_user",
        "tls-pw",
    )
}

/// A gateway declaring `config`: its dir (for the log), the gateway, its MySQL port.
async fn gateway(config: &str) -> (Dir, Running, u16) {
    let dir = Dir::new();
    dir.write_config(None, config);
    let gw = start(&dir).await;
    let port = gw.mysql_addr.unwrap().port();
    (dir, gw, port)
}

async fn through(gw_port: u16, sql: &str) -> (bool, String, String) {
    let port = gw_port.to_string();
    let pw = format!("-p{PASSWORD}");
    mariadb(&["-P", &port, "-u", "alice", &pw, "-D", "rr", "-e", sql]).await
}

#[tokio::test]
async fn tls_to_the_upstream_when_the_resource_asks_for_it() {
    let cert = TestCert::new();
    let maria = Maria::start(&[
        format!("--ssl-cert={}", cert.cert.display()),
        format!("--ssl-key={}", cert.key.display()),
    ]);
    maria
        .sql(
            "CREATE DATABASE app; CREATE USER tls_user@'%' IDENTIFIED BY 'tls-pw' REQUIRE SSL; \
             GRANT ALL ON app.* TO tls_user@'%'",
        )
        .unwrap();

    let (_dir, gw, port) = gateway(&config(maria.port, "require")).await;
    let (ok, out, err) = through(
        port,
        "select variable_value from information_schema.session_status where variable_name = 'Ssl_version'",
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.trim().starts_with("TLS"),
        "upstream session is encrypted: {out}"
    );
    let (ok, out, err) = through(port, "select current_user()").await;
    assert!(ok && out.trim() == "tls_user@%", "{out} {err}");
    gw.shutdown().await;

    // Plain to a user that requires TLS: the upstream refuses, the client gets 1105.
    let (_dir, gw, port) = gateway(&config(maria.port, "disable")).await;
    let (ok, _, err) = through(port, "select 1").await;
    assert!(!ok && err.contains("1105"), "{err}");
    gw.shutdown().await;
}

#[tokio::test]
async fn require_against_a_server_without_tls_is_refused() {
    let maria = Maria::start(&[]);
    maria
        .sql("CREATE DATABASE app; CREATE USER tls_user@'%' IDENTIFIED BY 'tls-pw'; GRANT ALL ON app.* TO tls_user@'%'")
        .unwrap();
    let (dir, gw, port) = gateway(&config(maria.port, "require")).await;
    let (ok, _, err) = through(port, "select 1").await;
    assert!(!ok && err.contains("1105"), "{err}");
    gw.shutdown().await;
    let events = common::pg::read_events(&dir.path().join("audit"));
    assert!(
        events.iter().any(|e| e["kind"] == "auth_failed"
            && e["reason"].as_str().unwrap().contains("does not offer")),
        "{events:?}"
    );
    // `prefer` falls back to plain.
    let (_dir, gw, port) = gateway(&config(maria.port, "prefer")).await;
    let (ok, out, err) = through(port, "select 7").await;
    assert!(ok && out.trim() == "7", "{err}");
    gw.shutdown().await;
}

#[tokio::test]
async fn client_ed25519_when_the_upstream_user_asks_for_it() {
    let maria = Maria::start(&[]);
    maria
        .sql(
            "INSTALL SONAME 'auth_ed25519'; CREATE DATABASE app; \
             CREATE USER tls_user@'%' IDENTIFIED VIA ed25519 USING PASSWORD('tls-pw'); \
             GRANT ALL ON app.* TO tls_user@'%'",
        )
        .unwrap();
    let (_dir, gw, port) = gateway(&config(maria.port, "disable")).await;
    let (ok, out, err) = through(port, "select current_user(), 6 * 7").await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "tls_user@%\t42");
    gw.shutdown().await;

    // A wrong upstream password is refused by the server, clearly.
    let wrong = config(maria.port, "disable").replace("\"tls-pw\"", "\"not-it\"");
    let (_dir, gw, port) = gateway(&wrong).await;
    let (ok, _, err) = through(port, "select 1").await;
    assert!(!ok && err.contains("1105"), "{err}");
    gw.shutdown().await;
}
