//! A PostgreSQL environment for end-to-end tests: a uniquely named upstream role and
//! database on the local server, and a gateway declaring users and resource roles on it.
#![allow(dead_code, clippy::unwrap_used)]

use portcullis::app::Running;
use serde_json::Value;

use super::{Dir, pg_admin, start, unique};

pub const PASSWORD: &str = "alice-password";

pub struct PgEnv {
    pub dir: Dir,
    pub gw: Running,
    /// The upstream role and database the resource roles log in as.
    pub role: String,
    pub db: String,
    pub upstream_password: String,
    pub port: u16,
}

impl PgEnv {
    /// `extra` is appended to the config (e.g. a `[tls]` section).
    pub async fn new(extra: &str) -> PgEnv {
        let (role, db) = (unique("r"), unique("d"));
        let upstream_password = format!("Up-{}", unique("pw"));
        let admin = pg_admin().await;
        // Separate statements: CREATE DATABASE cannot run inside a multi-statement batch.
        let create_role = format!("CREATE ROLE {role} LOGIN PASSWORD '{upstream_password}'");
        admin.batch_execute(&create_role).await.unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {db} OWNER {role}"))
            .await
            .unwrap();
        let dir = Dir::new();
        let declared = super::declarations(
            "pg",
            "postgres",
            "127.0.0.1:5432",
            "prefer",
            &db,
            &role,
            &upstream_password,
        );
        let config = format!("{extra}\n{declared}");
        dir.write_config(None, &config);
        let gw = start(&dir).await;
        let port = gw.postgres_addr.unwrap().port();
        PgEnv {
            dir,
            gw,
            role,
            db,
            upstream_password,
            port,
        }
    }

    pub fn conn_str(&self, user: &str, password: &str, rr: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname={rr} sslmode=disable",
            self.port
        )
    }

    pub async fn connect(
        &self,
        user: &str,
        password: &str,
        rr: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, conn) =
            tokio_postgres::connect(&self.conn_str(user, password, rr), tokio_postgres::NoTls)
                .await?;
        tokio::spawn(conn);
        Ok(client)
    }

    pub async fn alice(&self) -> tokio_postgres::Client {
        self.connect("alice", PASSWORD, "rr").await.unwrap()
    }

    /// Every monitoring-log event written so far (waits for the writer to catch up).
    pub async fn events(&self) -> Vec<Value> {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        read_events(&self.dir.path().join("audit"))
    }

    /// Events of `kind` for `user`.
    pub async fn events_of(&self, kind: &str, user: &str) -> Vec<Value> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e["kind"] == kind && e["user"] == user)
            .collect()
    }
}

pub fn read_events(dir: &std::path::Path) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect()
}

/// Runs psql against the gateway; returns (success, stdout, stderr).
pub async fn psql(conn: &str, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new("psql")
        .arg(conn)
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-At"])
        .args(args)
        .output()
        .await
        .expect("psql is installed (scripts/services.sh installs it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
