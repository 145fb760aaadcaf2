//! Test helpers: a gateway started in-process on free ports with its own temp dir and
//! store, an API client, and fresh PostgreSQL databases. Servers that are missing fail
//! the test with a message saying how to start them.
#![allow(dead_code)]

pub mod browser;
pub mod clients;
pub mod cluster;
pub mod maria;
pub mod my;
pub mod pg;
pub mod tls;

use std::path::{Path, PathBuf};

use portcullis::app::Running;
use portcullis::cli::client::Client;
use portcullis::config::Config;
use serde_json::Value;

pub const PG: &str = "host=127.0.0.1 port=5432 user=postgres dbname=test";

pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A connection to the local PostgreSQL, or a panic saying how to start it.
pub async fn pg_admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(PG, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is not reachable on 127.0.0.1:5432 ({e}); run scripts/services.sh")
        });
    tokio::spawn(conn);
    client
}

/// A fresh, uniquely named PostgreSQL database; returns its URL for sqlx.
pub async fn fresh_pg_database() -> String {
    let name = unique("pc_store");
    pg_admin()
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    format!("postgres://postgres@127.0.0.1:5432/{name}")
}

/// A gateway's working directory with its config file.
pub struct Dir {
    pub tmp: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        Dir {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn config_path(&self) -> PathBuf {
        self.path().join("portcullis.toml")
    }

    /// Writes a config: listeners on free ports, the store (`sqlite` in the dir unless
    /// `store_url`), then `extra` TOML.
    pub fn write_config(&self, store_url: Option<&str>, extra: &str) -> PathBuf {
        let dir = self.path().display();
        let url = store_url
            .map(str::to_owned)
            .unwrap_or_else(|| format!("sqlite://{dir}/portcullis.db"));
        // `[listen]` and `[audit]` blocks at the start of `extra` (in that order) extend
        // the common ones.
        // Bare keys at the start of `extra` (before any section) are top-level keys.
        let split = if extra.starts_with('[') {
            0
        } else {
            extra.find("\n[").map_or(extra.len(), |i| i + 1)
        };
        let (top, extra) = extra.split_at(split);
        let (listen_extra, extra) = leading(extra, "[listen]\n");
        let (audit_extra, extra) = leading(extra, "[audit]\n");
        let text = format!(
            "{top}[listen]\nadmin = \"127.0.0.1:0\"\npostgres = \"127.0.0.1:0\"\nmysql = \"127.0.0.1:0\"\n{listen_extra}\n[store]\nurl = \"{url}\"\ndata_dir = \"{dir}/data\"\n\
             poll_interval = \"100ms\"\n\n[audit]\ndir = \"{dir}/audit\"\n{audit_extra}\n{extra}\n"
        );
        std::fs::write(self.config_path(), text).unwrap();
        self.config_path()
    }

    pub fn bootstrap_token(&self) -> String {
        std::fs::read_to_string(self.path().join("data/bootstrap-token"))
            .unwrap()
            .trim()
            .to_owned()
    }
}

/// The body of a `header` block that starts `extra`, and the rest.
fn leading<'a>(extra: &'a str, header: &str) -> (&'a str, &'a str) {
    match extra.strip_prefix(header) {
        Some(rest) => rest.split_at(rest.find("\n[").map_or(rest.len(), |i| i + 1)),
        None => ("", extra),
    }
}

/// Starts a gateway in-process from the dir's config.
pub async fn start(dir: &Dir) -> Running {
    portcullis::app::init_tracing();
    let config = Config::load(&dir.config_path()).unwrap();
    portcullis::app::start(config).await.unwrap()
}

/// Waits until the gateway keeps `n` upstream connections (`limits.idle_upstreams`).
pub async fn kept_upstreams(running: &Running, n: usize) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while running.gateway.upstreams.kept() != n {
        assert!(
            std::time::Instant::now() < until,
            "expected {n} kept upstream connections, not {}",
            running.gateway.upstreams.kept()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub fn client(running: &Running, token: Option<&str>) -> Client {
    let addr = running.admin_addr.unwrap();
    Client::new(&format!("http://{addr}"), token.map(str::to_owned))
}

/// An API client holding a fresh token of `user` (made with the bootstrap token).
pub async fn user_client(running: &Running, dir: &Dir, user: &str) -> Client {
    let admin = client(running, Some(&dir.bootstrap_token()));
    let made = admin
        .post("/api/tokens", serde_json::json!({ "user": user }))
        .await
        .unwrap();
    client(running, made["token"].as_str())
}

/// The HTTP status of a failed call, or 200 for success.
pub fn status(r: Result<Value, portcullis::cli::client::ClientError>) -> u16 {
    match r {
        Ok(_) => 200,
        Err(portcullis::cli::client::ClientError::Api { status, .. }) => status,
        Err(e) => panic!("transport error: {e}"),
    }
}

/// The people every end-to-end environment declares: alice and erin (group eng), bob
/// (sales), carol (eng, inactive), all with `password`.
pub fn people(password: &str) -> String {
    let mut out = String::from("[[groups]]\nname = \"eng\"\n[[groups]]\nname = \"sales\"\n");
    for (name, group, status) in [
        ("alice", "eng", "active"),
        ("erin", "eng", "active"),
        ("bob", "sales", "active"),
        ("carol", "eng", "inactive"),
    ] {
        out.push_str(&format!(
            "[[users]]\nname = \"{name}\"\ngroups = [\"{group}\"]\nstatus = \"{status}\"\npassword = \"{password}\"\n"
        ));
    }
    out
}

/// Everything an end-to-end environment declares: the people, one resource, and three
/// resource roles on it, all for group eng — `rr` (native), `rr-web-only` (web, no
/// upstream password) and `rr-ops` (web and runbooks).
pub fn declarations(
    resource: &str,
    protocol: &str,
    address: &str,
    tls: &str,
    db: &str,
    user: &str,
    password: &str,
) -> String {
    let mut out = people(pg::PASSWORD);
    out.push_str(&format!(
        "[[resources]]\nname = \"{resource}\"\nprotocol = \"{protocol}\"\naddress = \"{address}\"\ntls = \"{tls}\"\n"
    ));
    for (name, password, modes) in [
        ("rr", Some(password), None),
        ("rr-web-only", None, Some("{ native = false, web = true }")),
        (
            "rr-ops",
            Some(password),
            Some("{ native = false, web = true, runbooks = true }"),
        ),
    ] {
        out.push_str(&format!(
            "[[resource_roles]]\nname = \"{name}\"\nresource = \"{resource}\"\ndatabase = \"{db}\"\nuser = \"{user}\"\nallowed_groups = [\"eng\"]\n"
        ));
        if let Some(p) = password {
            out.push_str(&format!("password = \"{p}\"\n"));
        }
        if let Some(m) = modes {
            out.push_str(&format!("access_modes = {m}\n"));
        }
    }
    out
}

/// Percent-encodes a form value.
pub fn console_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A free loopback port (bound and released: nothing else here takes it in between).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `portcullis serve` as its own process on `dir`'s config with the PostgreSQL listener
/// on `port` (the config as `Dir` wrote it, `127.0.0.1:0`), output discarded.
pub fn serve_process(dir: &Dir, config: &str, port: u16) -> std::process::Child {
    let fixed = config.replace(
        "postgres = \"127.0.0.1:0\"",
        &format!("postgres = \"127.0.0.1:{port}\""),
    );
    std::fs::write(dir.config_path(), &fixed).unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--config"])
        .arg(dir.config_path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}
