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
    /// This gateway stopped and started again as its own process (`serve_process`) on a
    /// free port: the process, its port, the directory, and the config as it was written.
    pub async fn into_process(self) -> (std::process::Child, u16, Dir, String) {
        let PgEnv { gw, dir, .. } = self;
        gw.shutdown().await;
        let config = std::fs::read_to_string(dir.config_path()).unwrap();
        let port = super::free_port();
        let child = super::serve_process(&dir, &config, port);
        (child, port, dir, config)
    }

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

/// A PostgreSQL client that speaks the wire protocol by hand (SCRAM login through
/// postgres-protocol), for sequences drivers do not send: pipelines with a rejected Parse,
/// FunctionCalls, oversized messages.
pub struct RawPg {
    stream: tokio::net::TcpStream,
    buf: bytes::BytesMut,
}

/// A backend message as the tests look at it: the tag and the body.
pub type Msg = (u8, Vec<u8>);

impl RawPg {
    pub async fn connect(port: u16, user: &str, password: &str, db: &str) -> RawPg {
        use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
        use postgres_protocol::message::frontend;
        use tokio::io::AsyncWriteExt;
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut raw = RawPg {
            stream,
            buf: bytes::BytesMut::new(),
        };
        let mut out = bytes::BytesMut::new();
        frontend::startup_message([("user", user), ("database", db)], &mut out).unwrap();
        raw.stream.write_all(&out).await.unwrap();
        let mut scram = None;
        loop {
            let (tag, body) = raw.next().await;
            out.clear();
            match (tag, body.get(..4)) {
                (b'R', Some([0, 0, 0, 10])) => {
                    let s = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
                    frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut out).unwrap();
                    scram = Some(s);
                }
                (b'R', Some([0, 0, 0, 11])) => {
                    let s = scram.as_mut().unwrap();
                    s.update(&body[4..]).unwrap();
                    frontend::sasl_response(s.message(), &mut out).unwrap();
                }
                (b'Z', _) => return raw,
                (b'E', _) => panic!("login refused: {}", String::from_utf8_lossy(&body)),
                _ => continue,
            }
            raw.stream.write_all(&out).await.unwrap();
        }
    }

    /// The next backend message.
    pub async fn next(&mut self) -> Msg {
        use tokio::io::AsyncReadExt;
        loop {
            if self.buf.len() >= 5 {
                let len = i32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
                let total = 1 + len as usize;
                if self.buf.len() >= total {
                    let msg = self.buf.split_to(total);
                    return (msg[0], msg[5..].to_vec());
                }
            }
            let n = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                self.stream.read_buf(&mut self.buf),
            )
            .await
            .expect("the gateway answered within 10 s")
            .unwrap();
            assert!(n > 0, "the gateway closed the connection");
        }
    }

    /// Sends raw frontend bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Messages up to and including the next ReadyForQuery.
    pub async fn until_ready(&mut self) -> Vec<Msg> {
        let mut out = Vec::new();
        loop {
            let m = self.next().await;
            let ready = m.0 == b'Z';
            out.push(m);
            if ready {
                return out;
            }
        }
    }

    /// The SQLSTATE of an ErrorResponse body.
    pub fn sqlstate(body: &[u8]) -> String {
        let mut fields = body.split(|b| *b == 0);
        fields
            .find_map(|f| f.strip_prefix(b"C"))
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .unwrap_or_default()
    }
}
