//! What a newcomer meets in the first hour: `portcullis login` from any directory, a CLI
//! that explains itself, errors written for people, a hint for psql without a database
//! name, TLS out of the box, and the auditor's refusals, search and verification through
//! the API.

use serde_json::Value;

use crate::common::clients::portcullis;
use crate::common::pg::{PASSWORD, PgEnv, psql};
use crate::common::{self, status};

/// The CLI as a user on another machine runs it: its own config directory, the gateway's
/// address, no token in the environment.
struct Cli {
    server: String,
    home: tempfile::TempDir,
}

impl Cli {
    fn new(env: &PgEnv) -> Cli {
        Cli {
            server: format!("http://{}", env.gw.admin_addr.unwrap()),
            home: tempfile::tempdir().unwrap(),
        }
    }

    async fn run(&self, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
        let home = self.home.path().to_str().unwrap();
        let env = [("PORTCULLIS_CONFIG_DIR", home), ("HOME", home)];
        portcullis(args, &env, stdin).await
    }

    /// Runs a command that must succeed; its stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args, None).await;
        assert_eq!(code, 0, "portcullis {args:?}:\n{out}{err}");
        out
    }
}

#[tokio::test]
async fn login_saves_a_token_and_logout_revokes_it() {
    let env = PgEnv::new("").await;
    let cli = Cli::new(&env);
    // Nothing saved yet: the error says what to do.
    let (code, _, err) = cli
        .run(&["--server", &cli.server, "user", "list"], None)
        .await;
    assert_ne!(code, 0);
    assert!(
        err.contains("not logged in to") && err.contains("portcullis login --server"),
        "{err}"
    );
    let (code, out, err) = cli
        .run(
            &["login", "--server", &cli.server, "--user", "alice"],
            Some(&format!("{PASSWORD}\n")),
        )
        .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("logged in to") && out.contains("as alice"),
        "{out}"
    );
    let saved = cli.home.path().join("credentials.json");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Later commands find the server and the token on their own.
    let me = cli.ok(&["access", "show", "--user", "alice"]).await;
    assert!(me.contains("rr"), "{me}");
    let tokens = cli.ok(&["token", "list", "--output", "json"]).await;
    let tokens: Vec<Value> = serde_json::from_str(&tokens).unwrap();
    assert!(
        tokens.iter().any(|t| t["expires_at"].is_i64()),
        "{tokens:?}"
    );
    let token: Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    let token = token["servers"][&cli.server]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = cli.ok(&["logout"]).await;
    assert!(out.contains("logged out"), "{out}");
    let revoked = common::client(&env.gw, Some(&token)).get("/api/me").await;
    assert_eq!(status(revoked), 401, "logout revokes the token");
    // A wrong password: refused, counted, and the auditor sees why.
    let (code, _, err) = cli
        .run(
            &["login", "--server", &cli.server, "--user", "alice"],
            Some("not-it\n"),
        )
        .await;
    assert_ne!(code, 0);
    assert!(err.contains("wrong user name, password or token"), "{err}");
    let reasons: Vec<String> = env
        .events_of("auth_failed", "alice")
        .await
        .iter()
        .map(|e| e["reason"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("wrong password")),
        "{reasons:?}"
    );
    env.gw.shutdown().await;
}

#[tokio::test]
async fn the_cli_explains_itself_and_checks_values() {
    let (code, out, _) = portcullis(&["user", "add", "--help"], &[], None).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("[possible values: admin, auditor, standard]"),
        "{out}"
    );
    assert!(out.contains("Global options:"), "{out}");
    let (code, out, _) = portcullis(&["resource", "add", "--help"], &[], None).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("disable, prefer, require, verify-full"),
        "{out}"
    );
    assert!(out.contains("postgres, mysql"), "{out}");
    let (code, _, err) = portcullis(&["user", "add", "x", "--role", "admn"], &[], None).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("'admn'") && err.contains("'admin'"), "{err}");
    // Every subcommand says what it does.
    let (_, out, _) = portcullis(&["--help"], &[], None).await;
    for line in out
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
    {
        if line.trim().is_empty() {
            break;
        }
        assert!(line.trim().contains("  "), "no description: {line}");
    }
}

#[tokio::test]
async fn users_groups_and_deletes_that_say_what_they_would_remove() {
    let env = PgEnv::new("").await;
    let cli = Cli::new(&env);
    let token = env.dir.bootstrap_token();
    let t = ["--server", cli.server.as_str(), "--token", token.as_str()];
    let run = async |args: &[&str]| cli.ok(&[&t[..], args].concat()).await;
    run(&["group", "add", "analysts"]).await;
    run(&[
        "user",
        "add",
        "dana",
        "--group",
        "analysts",
        "--password",
        "a-long-password",
    ])
    .await;
    run(&[
        "resource",
        "add",
        "pg2",
        "--protocol",
        "postgres",
        "--address",
        "127.0.0.1:5432",
        "--tls",
        "disable",
    ])
    .await;
    let (db, role, pw) = (
        env.db.as_str(),
        env.role.as_str(),
        env.upstream_password.as_str(),
    );
    run(&[
        "resource-role",
        "add",
        "mine",
        "--resource",
        "pg2",
        "--database",
        db,
        "--user",
        role,
        "--password",
        pw,
    ])
    .await;
    run(&["access", "grant", "mine", "analysts"]).await;
    let out = run(&[
        "user",
        "set",
        "dana",
        "--email",
        "dana@example.com",
        "--display-name",
        "Dana D",
    ])
    .await;
    assert!(out.contains("dana@example.com"), "{out}");
    let out = run(&["group", "rename", "analysts", "analytics"]).await;
    assert!(
        out.contains("analytics") && out.contains("dana") && out.contains("mine"),
        "{out}"
    );
    let out = run(&["group", "show", "analytics"]).await;
    assert!(out.contains("dana") && out.contains("mine"), "{out}");
    // dana still reaches `mine` through the renamed group.
    let (ok, _, err) = psql(
        &env.conn_str("dana", "a-long-password", "mine"),
        &["-c", "select 1"],
    )
    .await;
    assert!(ok, "{err}");
    let (code, _, err) = cli
        .run(&[&t[..], &["group", "delete", "analytics"]].concat(), None)
        .await;
    assert_ne!(code, 0);
    assert!(
        err.contains("1 member(s) (dana)") && err.contains("(mine)") && err.contains("--force"),
        "{err}"
    );
    let (code, _, err) = cli
        .run(
            &[&t[..], &["resource-role", "delete", "mine"]].concat(),
            None,
        )
        .await;
    assert_ne!(code, 0);
    assert!(
        err.contains("granted to 1 group(s) (analytics)") && err.contains("--force"),
        "{err}"
    );
    let (code, _, err) = cli
        .run(&[&t[..], &["resource", "delete", "pg2"]].concat(), None)
        .await;
    assert_ne!(code, 0);
    assert!(err.contains("used by 1 resource role(s) (mine)"), "{err}");
    run(&["group", "delete", "analytics", "--force"]).await;
    run(&["resource", "delete", "pg2", "--force"]).await;
    let (code, _, _) = cli
        .run(&[&t[..], &["resource-role", "show", "mine"]].concat(), None)
        .await;
    assert_ne!(code, 0, "the resource's roles went with it");
    // The CLI's own validation is not an "unexpected response".
    let (code, _, err) = cli
        .run(
            &[
                &t[..],
                &["resource-role", "set", "rr-web-only", "--modes", "webb"],
            ]
            .concat(),
            None,
        )
        .await;
    assert_ne!(code, 0);
    assert!(
        err.contains("unknown access mode `webb`") && !err.contains("unexpected"),
        "{err}"
    );
    let out = run(&["changes"]).await;
    assert!(out.contains("group.rename"), "{out}");
    env.gw.shutdown().await;
}

#[tokio::test]
async fn api_errors_are_json_sentences() {
    let env = PgEnv::new("").await;
    let addr = env.gw.admin_addr.unwrap();
    let token = env.dir.bootstrap_token();
    let call = async |method: &str, path: &str, body: &str| {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let (head, text) = common::browser::raw(addr, &request).await;
        let code: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        let json: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {head}\n{text}"));
        let error = json["error"].as_str();
        (
            code,
            error
                .unwrap_or_else(|| panic!("no error: {text}"))
                .to_owned(),
        )
    };
    let (code, error) = call("POST", "/api/users", r#"{"name":"x","role":"root"}"#).await;
    assert_eq!(code, 400);
    assert_eq!(
        error,
        "role must be one of admin, auditor, standard (not `root`)"
    );
    let (code, error) = call("POST", "/api/users", r#"{"email":"x"}"#).await;
    assert_eq!((code, error.as_str()), (400, "`name` is required"));
    let (code, error) = call("GET", "/api/sessions?limit=many", "").await;
    assert_eq!(code, 400);
    assert!(error.contains("limit"), "{error}");
    let (code, _) = call("GET", "/api/no-such-thing", "").await;
    assert_eq!(code, 404);
    let (code, _) = call("PUT", "/api/users", "{}").await;
    assert_eq!(code, 405);
    // The console's paths get a page instead.
    let (head, body) = common::browser::raw(addr, &common::browser::get("/ui/nope", None)).await;
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    assert!(body.contains("Back to the console"), "{body}");
    env.gw.shutdown().await;
}

#[tokio::test]
async fn psql_without_a_database_name_is_told_the_convention_after_authenticating() {
    let env = PgEnv::new("").await;
    let conn = |user: &str, password: &str| {
        format!(
            "host=127.0.0.1 port={} user={user} password={password} sslmode=disable",
            env.port
        )
    };
    let (ok, _, err) = psql(&conn("alice", PASSWORD), &["-c", "select 1"]).await;
    assert!(!ok);
    assert!(
        err.contains("name a resource role as the database"),
        "{err}"
    );
    let (ok, _, err) = psql(&conn("alice", "wrong"), &["-c", "select 1"]).await;
    assert!(!ok);
    assert!(
        !err.contains("resource role as the database"),
        "nothing before authentication: {err}"
    );
    env.gw.shutdown().await;
}

#[tokio::test]
async fn the_auditor_reads_refusals_searches_statements_and_verifies_through_the_api() {
    let env = PgEnv::new("").await;
    let cli = Cli::new(&env);
    let token = env.dir.bootstrap_token();
    let t = ["--server", cli.server.as_str(), "--token", token.as_str()];
    let run = async |args: &[&str]| cli.ok(&[&t[..], args].concat()).await;
    let alice = env.alice().await;
    alice
        .simple_query("select 'needle-in-a-haystack'")
        .await
        .unwrap();
    alice.simple_query("select 2").await.unwrap();
    let _ = env.connect("nobody", "x", "rr").await;
    let _ = env.connect("alice", "wrong-password", "rr").await;
    let _ = env.connect("bob", PASSWORD, "rr").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let out = run(&["audit", "events"]).await;
    for expected in [
        "auth_failed",
        "unknown user",
        "alice",
        "wrong password",
        "access_denied",
        "bob",
    ] {
        assert!(out.contains(expected), "no `{expected}` in:\n{out}");
    }
    let json = run(&[
        "audit",
        "events",
        "--kind",
        "auth_failed",
        "--user",
        "nobody",
        "--output",
        "json",
    ])
    .await;
    let events: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert!(
        !events.is_empty() && events.iter().all(|e| e["user"] == "nobody"),
        "{json}"
    );
    let (code, _, err) = cli
        .run(
            &[&t[..], &["audit", "events", "--kind", "nope"]].concat(),
            None,
        )
        .await;
    assert_ne!(code, 0);
    assert!(err.contains("unknown event kind `nope`"), "{err}");
    // Sessions whose statements contain the text; the live one shows how long so far.
    let out = run(&["sessions", "--search", "needle-in", "--output", "json"]).await;
    let found: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(found.len(), 1, "{out}");
    let id = found[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        found[0]["queries"], 2,
        "a live session's statements so far: {out}"
    );
    let table = run(&["sessions", "--search", "needle-in"]).await;
    assert!(table.contains("(live)"), "{table}");
    let shown = run(&["sessions", "show", &id, "--search", "needle"]).await;
    assert!(
        shown
            .lines()
            .any(|l| l.contains("»") && l.contains("needle")),
        "{shown}"
    );
    // The log verified by the gateway (its signatures and anchor too), not from a file.
    let out = run(&["audit", "verify"]).await;
    assert!(out.starts_with("ok: ") && out.contains("signed:"), "{out}");
    drop(alice);
    env.gw.shutdown().await;
}

#[tokio::test]
async fn a_gateway_without_tls_settings_makes_a_self_signed_certificate() {
    let env = PgEnv::new("").await;
    let cert = env.dir.path().join("data/tls-cert.pem");
    let key = env.dir.path().join("data/tls-key.pem");
    assert!(cert.is_file());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // psql verifies the gateway with the certificate as its root.
    let conn = format!(
        "host=localhost port={} user=alice password={PASSWORD} dbname=rr sslmode=verify-full sslrootcert={}",
        env.port,
        cert.display()
    );
    let (ok, out, err) = psql(&conn, &["-c", "select 1"]).await;
    assert!(ok && out.trim() == "1", "{out}{err}");
    // A personal access token as the MySQL password, over TLS (a control session:
    // mariadb-admin names no database).
    let alice = common::user_client(&env.gw, &env.dir, "alice").await;
    let made = alice
        .post("/api/tokens", serde_json::json!({}))
        .await
        .unwrap();
    let secret = made["token"].as_str().unwrap().to_owned();
    let port = env.gw.mysql_addr.unwrap().port().to_string();
    let out = tokio::process::Command::new("mariadb-admin")
        .args([
            "--protocol=tcp",
            "-h",
            "127.0.0.1",
            "-P",
            &port,
            "-u",
            "alice",
        ])
        .arg(format!("-p{secret}"))
        .args(["--ssl", &format!("--ssl-ca={}", cert.display()), "ping"])
        .output()
        .await
        .expect("mariadb-admin is installed (scripts/services.sh installs it)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("is alive"), "{text}");
    // A native login with a token records its use, as the API does.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let tokens = alice.get("/api/tokens").await.unwrap();
    let used = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == made["id"])
        .unwrap();
    assert!(used["last_used_at"].is_i64(), "{tokens}");
    env.gw.shutdown().await;
}
