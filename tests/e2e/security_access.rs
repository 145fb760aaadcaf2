//! The adversarial review's findings about access decisions, tokens and exposure, each
//! against the real servers: a decision must hold.

use serde_json::json;

use crate::common;
use common::pg::{PASSWORD, PgEnv, psql};
use common::{client, status};

/// Finding 8: startup `options` go upstream only as the resource role allows, never
/// `role` / `session_authorization`, and `session_started` records what was forwarded.
#[tokio::test]
async fn startup_options_are_checked_and_recorded() {
    let env = PgEnv::new("").await;
    let base = env.conn_str("alice", PASSWORD, "rr");
    let (ok, _, err) = psql(
        &format!("{base} options='-c role=pg_read_server_files'"),
        &["-c", "select current_user"],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("startup parameter \"role\" is not forwarded"),
        "{err}"
    );
    let (ok, out, err) = psql(
        &format!("{base} options='-c search_path=pg_catalog -c geqo=off'"),
        &["-c", "select 1"],
    )
    .await;
    assert!(!ok, "geqo is not on the default list: {out}");
    assert!(err.contains("\"geqo\""), "{err}");
    let (ok, out, err) = psql(
        &format!("{base} options='-c search_path=pg_catalog'"),
        &["-c", "show search_path"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "pg_catalog");
    let events = env.events().await;
    let started = events
        .iter()
        .rfind(|e| e["kind"] == "session_started")
        .unwrap();
    assert_eq!(started["parameters"]["search_path"], "pg_catalog");
    assert_eq!(started["parameters"]["application_name"], "psql");
    let denied: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "access_denied")
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(denied.iter().any(|r| r.contains("`role`")), "{denied:?}");
    // A resource role may forward more; never `role`.
    let admin = client(&env.gw, Some(&env.dir.bootstrap_token()));
    let role = json!({"name": "rr-geqo", "resource": "pg", "database": env.db, "user": env.role,
        "password": env.upstream_password, "allowed_groups": ["eng"],
        "forward_options": ["application_name", "client_encoding", "geqo"]});
    admin.post("/api/resource-roles", role).await.unwrap();
    let (ok, out, err) = psql(
        &format!(
            "{} options='-c geqo=off'",
            env.conn_str("alice", PASSWORD, "rr-geqo")
        ),
        &["-c", "show geqo"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "off");
    let bad = json!({"name": "rr-role", "resource": "pg", "database": env.db, "user": env.role,
        "forward_options": ["ROLE"]});
    assert_eq!(status(admin.post("/api/resource-roles", bad).await), 422);
    env.gw.shutdown().await;
}

/// Finding 9: a token cannot make a token that outlives it, cannot change the account's
/// password without the current one, and the bootstrap token expires.
#[tokio::test]
async fn tokens_cannot_outlive_their_parent_or_change_the_password() {
    let dir = common::Dir::new();
    dir.write_config(None, &common::people(PASSWORD));
    let gw = common::start(&dir).await;
    let admin = client(&gw, Some(&dir.bootstrap_token()));
    let tokens = admin.get("/api/tokens?user=admin").await.unwrap();
    let boot = tokens[0]["expires_at"]
        .as_i64()
        .expect("the bootstrap token expires");
    let in_a_day = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 24 * 3600;
    assert!((boot - in_a_day).abs() < 60, "{boot} vs {in_a_day}");
    let short = admin
        .post("/api/tokens", json!({"user": "alice", "expires": "1h"}))
        .await
        .unwrap();
    let alice = client(&gw, short["token"].as_str());
    // No expiry asked: the parent's; a later one: refused; an earlier one: fine.
    let child = alice.post("/api/tokens", json!({})).await.unwrap();
    assert_eq!(child["expires_at"], short["expires_at"]);
    assert_eq!(
        status(alice.post("/api/tokens", json!({"expires": "2h"})).await),
        422
    );
    assert_eq!(
        status(alice.post("/api/tokens", json!({"expires": "30m"})).await),
        200
    );
    // The password: not with the token alone.
    let change = json!({"password": "a-new-password-1"});
    assert_eq!(status(alice.patch("/api/users/alice", change).await), 403);
    let wrong = json!({"password": "a-new-password-1", "current_password": "nope-nope"});
    assert_eq!(status(alice.patch("/api/users/alice", wrong).await), 403);
    let right = json!({"password": "a-new-password-1", "current_password": PASSWORD});
    // alice is declared in the file: the API refuses to change her (409), after the
    // current password was checked.
    assert_eq!(status(alice.patch("/api/users/alice", right).await), 409);
    gw.shutdown().await;
}

/// Finding 11: the store (verifiers, emails), the monitoring log (statements, bind values)
/// and the data directory are private to the gateway's user; a looser one found at start
/// is said loudly.
#[tokio::test]
async fn data_store_and_log_files_are_private() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = common::Dir::new();
    let loose = dir.path().join("loose-audit");
    std::fs::create_dir(&loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir.write_config(None, "");
    let gw = common::start(&dir).await;
    let mode = |p: std::path::PathBuf| std::fs::metadata(&p).unwrap().mode() & 0o777;
    assert_eq!(mode(dir.path().join("data")), 0o700);
    assert_eq!(mode(dir.path().join("audit")), 0o700);
    assert_eq!(mode(dir.path().join("portcullis.db")), 0o600);
    assert_eq!(mode(dir.path().join("data/bootstrap-token")), 0o600);
    for f in std::fs::read_dir(dir.path().join("audit")).unwrap() {
        assert_eq!(mode(f.unwrap().path()), 0o600);
    }
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let p = f.unwrap().path();
        if p.to_string_lossy().contains("portcullis.db-") {
            assert_eq!(mode(p), 0o600, "SQLite's side files too");
        }
    }
    gw.shutdown().await;
    // An existing looser directory is kept as it is, and said so at start.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--config"])
        .arg(dir.config_path())
        .env("PORTCULLIS__AUDIT__DIR", &loose)
        .env("PORTCULLIS_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap()));
    let mut seen = String::new();
    for line in stderr {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("web console listening") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.contains("readable by other users"), "{seen}");
    assert_eq!(mode(loose), 0o755);
}

/// The SCRAM salt the gateway offers `user` (the server-first message's `s=`).
async fn offered_salt(port: u16, user: &str) -> String {
    use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
    use postgres_protocol::message::frontend;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut out = bytes::BytesMut::new();
    frontend::startup_message([("user", user), ("database", "rr")], &mut out).unwrap();
    tcp.write_all(&out).await.unwrap();
    let mut buf = vec![0u8; 512];
    let _ = tcp.read(&mut buf).await.unwrap(); // AuthenticationSASL
    out.clear();
    let s = ScramSha256::new(b"whatever", ChannelBinding::unsupported());
    frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut out).unwrap();
    tcp.write_all(&out).await.unwrap();
    let n = tcp.read(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf[9..n]).into_owned();
    text.split(',')
        .find_map(|f| f.strip_prefix("s="))
        .unwrap()
        .to_owned()
}

/// Finding 12: the smaller ones — the upstream user's name is for admins and auditors
/// only; group names that differ only in case are refused; an unknown user's decoy salt
/// survives a restart; cancel requests are limited per address.
#[tokio::test]
async fn smaller_exposures_are_closed() {
    let dir = common::Dir::new();
    let cfg = format!(
        "[limits]\ncancel_requests_per_address = 3\n{}",
        common::declarations(
            "pg",
            "postgres",
            "127.0.0.1:5432",
            "disable",
            "test",
            "postgres",
            "x"
        )
    );
    dir.write_config(None, &cfg);
    let gw = common::start(&dir).await;
    let admin = client(&gw, Some(&dir.bootstrap_token()));
    let t = admin
        .post("/api/tokens", json!({"user": "alice"}))
        .await
        .unwrap();
    let alice = client(&gw, t["token"].as_str());
    let seen = alice.get("/api/resource-roles/rr").await.unwrap();
    assert!(seen.get("user").is_none(), "{seen}");
    assert_eq!(
        admin.get("/api/resource-roles/rr").await.unwrap()["user"],
        "postgres"
    );
    assert_eq!(
        status(admin.post("/api/groups", json!({"name": "ENG"})).await),
        409
    );
    let port = gw.postgres_addr.unwrap().port();
    let salt = offered_salt(port, "nobody-here").await;
    assert_eq!(offered_salt(port, "nobody-here").await, salt);
    for _ in 0..6 {
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut cancel = bytes::BytesMut::new();
        postgres_protocol::message::frontend::cancel_request(1, 2, &mut cancel);
        tokio::io::AsyncWriteExt::write_all(&mut tcp, &cancel)
            .await
            .unwrap();
        let mut sink = [0u8; 1];
        let _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut sink).await;
    }
    let metrics = client(&gw, None).get("/metrics").await.unwrap();
    let text = metrics.as_str().unwrap().to_owned();
    assert!(
        text.contains("portcullis_cancel_requests_refused_total 3"),
        "{text}"
    );
    gw.shutdown().await;
    let gw = common::start(&dir).await;
    let port = gw.postgres_addr.unwrap().port();
    assert_eq!(
        offered_salt(port, "nobody-here").await,
        salt,
        "stable across restarts"
    );
    gw.shutdown().await;
}

/// A PostgreSQL "server" whose login takes `delay` (what a real one does only under load),
/// then trusts anyone and answers every query with an empty result.
async fn slow_login_upstream(delay: std::time::Duration) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let len = tcp.read_i32().await.unwrap_or(8) as usize;
                let mut startup = vec![0u8; len.saturating_sub(4)];
                let _ = tcp.read_exact(&mut startup).await;
                tokio::time::sleep(delay).await;
                let mut out = vec![b'R', 0, 0, 0, 8, 0, 0, 0, 0];
                out.extend([b'K', 0, 0, 0, 12, 0, 0, 0, 42, 0, 0, 0, 7]);
                out.extend([b'Z', 0, 0, 0, 5, b'I']);
                let _ = tcp.write_all(&out).await;
                let mut buf = [0u8; 4096];
                while let Ok(n) = tcp.read(&mut buf).await {
                    if n == 0 || buf[0] == b'X' {
                        break;
                    }
                    let mut reply = vec![b'C', 0, 0, 0, 13];
                    reply.extend(b"SELECT 0\0");
                    reply.extend([b'Z', 0, 0, 0, 5, b'I']);
                    let _ = tcp.write_all(&reply).await;
                }
            });
        }
    });
    addr
}

/// Finding 6: a user deactivated while their login is under way does not end up with a
/// working session (the session is registered, then decided again, before the upstream
/// login; a change after that ends it).
#[tokio::test]
async fn a_user_deactivated_during_login_gets_no_working_session() {
    let upstream = slow_login_upstream(std::time::Duration::from_millis(800)).await;
    let dir = common::Dir::new();
    let cfg = format!(
        "[[groups]]\nname = \"eng\"\n[[resources]]\nname = \"slow\"\nprotocol = \"postgres\"\naddress = \"{upstream}\"\ntls = \"disable\"\n\
         [[resource_roles]]\nname = \"rr\"\nresource = \"slow\"\ndatabase = \"d\"\nuser = \"u\"\nallowed_groups = [\"eng\"]\n"
    );
    dir.write_config(None, &cfg);
    let gw = common::start(&dir).await;
    let admin = client(&gw, Some(&dir.bootstrap_token()));
    let user = json!({"name": "dana", "groups": ["eng"], "password": PASSWORD});
    admin.post("/api/users", user).await.unwrap();
    let port = gw.postgres_addr.unwrap().port();
    let login = tokio::spawn(async move {
        let conn = format!(
            "host=127.0.0.1 port={port} user=dana password={PASSWORD} dbname=rr sslmode=disable"
        );
        let (c, conn) = tokio_postgres::connect(&conn, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        c.simple_query("select 1").await.map(|_| ())
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    admin
        .patch("/api/users/dana", json!({"status": "inactive"}))
        .await
        .unwrap();
    let outcome = login.await.unwrap();
    assert!(outcome.is_err(), "dana still has a working session");
    gw.shutdown().await;
}

/// Reads what the peer sends until it closes (or `within` passes: then `None`).
async fn until_closed(
    tcp: &mut tokio::net::TcpStream,
    within: std::time::Duration,
) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut all = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read).await.ok()?;
    Some(all)
}

/// Finding 10: the admin port closes idle and dribbling connections, every listener caps
/// its connections (and each address's), a refusal is immediate, and the process may use
/// every descriptor its hard limit allows.
#[tokio::test]
async fn listeners_cap_and_time_out_connections() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let dir = common::Dir::new();
    dir.write_config(
        None,
        "[limits]\nlogin_timeout = \"1s\"\nadmin_idle_timeout = \"1s\"\nmax_admin_connections = 3\nmax_connections_per_address = 2\n",
    );
    let gw = common::start(&dir).await;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let nums: Vec<&str> = files.split_whitespace().skip(3).take(2).collect();
    assert_eq!(
        nums[0], nums[1],
        "soft open-files limit raised to the hard one: {files}"
    );
    let admin = gw.admin_addr.unwrap();
    let second = std::time::Duration::from_secs(3);
    // Idle, and dribbling headers: both cut.
    let mut idle = TcpStream::connect(admin).await.unwrap();
    let mut dribble = TcpStream::connect(admin).await.unwrap();
    dribble
        .write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    // At the cap (3), the next connection gets a 503 at once.
    let mut third = TcpStream::connect(admin).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut over = TcpStream::connect(admin).await.unwrap();
    let refused = until_closed(&mut over, second)
        .await
        .expect("refused at once");
    assert!(
        String::from_utf8_lossy(&refused).starts_with("HTTP/1.1 503"),
        "{refused:?}"
    );
    assert!(
        until_closed(&mut idle, second).await.is_some(),
        "idle connection closed"
    );
    assert!(
        until_closed(&mut dribble, second).await.is_some(),
        "slow headers cut"
    );
    assert!(until_closed(&mut third, second).await.is_some());
    // Once they are gone, the API answers again.
    let health = common::client(&gw, None).get("/healthz").await;
    assert!(health.is_ok(), "{health:?}");
    // PostgreSQL: two connections from one address, the third is refused with 53300.
    let pg = gw.postgres_addr.unwrap();
    let _a = TcpStream::connect(pg).await.unwrap();
    let _b = TcpStream::connect(pg).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut c = TcpStream::connect(pg).await.unwrap();
    let answer = until_closed(&mut c, second).await.expect("refused at once");
    assert_eq!(answer.first(), Some(&b'E'));
    assert!(String::from_utf8_lossy(&answer).contains("53300"));
    gw.shutdown().await;
}
