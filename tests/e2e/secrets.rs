//! Secrets never leave: the upstream password and user passwords appear nowhere in the
//! gateway's own output (at debug level), its monitoring log, its store file, or the API.

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::pg::psql;
use common::{Dir, pg_admin, unique};

#[tokio::test]
async fn secrets_appear_in_no_output_log_store_or_api() {
    let upstream_pw = format!("UpstreamSecret{}", unique("x"));
    let user_pw = format!("UserSecret{}", unique("y"));
    let role = unique("r");
    pg_admin()
        .await
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{upstream_pw}'"
        ))
        .await
        .unwrap();
    let dir = Dir::new();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (pg_port, admin_port) = (free(), free());
    let path = dir.write_config(
        None,
        &format!(
            "[[groups]]\nname = \"eng\"\n[[users]]\nname = \"alice\"\ngroups = [\"eng\"]\npassword = {{ env = \"PC_TEST_ALICE_PW\" }}\n\
             [[resources]]\nname = \"pg\"\nprotocol = \"postgres\"\naddress = \"127.0.0.1:5432\"\n\
             [[resource_roles]]\nname = \"rr\"\nresource = \"pg\"\ndatabase = \"test\"\nuser = \"{role}\"\n\
             password = {{ env = \"PC_TEST_UPSTREAM_PW\" }}\nallowed_groups = [\"eng\"]\n"
        ),
    );
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "admin = \"127.0.0.1:0\"",
            &format!("admin = \"127.0.0.1:{admin_port}\""),
        )
        .replace(
            "postgres = \"127.0.0.1:0\"",
            &format!("postgres = \"127.0.0.1:{pg_port}\""),
        );
    std::fs::write(&path, text).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--config"])
        .arg(&path)
        .env("PORTCULLIS_LOG", "debug")
        .env("PC_TEST_ALICE_PW", &user_pw)
        .env("PC_TEST_UPSTREAM_PW", &upstream_pw)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let conn = format!(
        "host=127.0.0.1 port={pg_port} user=alice password={user_pw} dbname=rr sslmode=disable"
    );
    let mut ok = false;
    for _ in 0..100 {
        let (success, out, _) = psql(&conn, &["-c", "select current_user"]).await;
        if success {
            assert_eq!(out.trim(), role);
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the gateway never accepted the login");
    psql(&conn.replace(&user_pw, "wrong"), &["-c", "select 1"]).await;
    let api = portcullis::cli::client::Client::new(
        &format!("http://127.0.0.1:{admin_port}"),
        Some(dir.bootstrap_token()),
    );
    let mut api_text = String::new();
    for p in [
        "/api/users",
        "/api/resource-roles",
        "/api/changes",
        "/api/sessions",
        "/api/access",
    ] {
        api_text.push_str(&api.get(p).await.unwrap().to_string());
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        output.contains("session started"),
        "debug output was captured: {output}"
    );
    let mut places = vec![("gateway output", output), ("API", api_text)];
    for f in std::fs::read_dir(dir.path().join("audit")).unwrap() {
        places.push((
            "monitoring log",
            std::fs::read_to_string(f.unwrap().path()).unwrap(),
        ));
    }
    for file in ["portcullis.db", "portcullis.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(file)) {
            places.push(("store", String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    for (place, text) in places {
        assert!(!text.contains(&upstream_pw), "upstream password in {place}");
        assert!(!text.contains(&user_pw), "user password in {place}");
    }
}
