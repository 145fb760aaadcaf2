//! A private PostgreSQL cluster (initdb) on a free port, for testing upstream password
//! authentication, which the pre-started trust-auth server cannot exercise. Runs as the
//! `postgres` user when the tests run as root (PostgreSQL refuses root).
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

pub struct Cluster {
    _dir: tempfile::TempDir,
    data: PathBuf,
    pub port: u16,
}

fn bin(name: &str) -> String {
    let mut versions: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries are missing; run scripts/services.sh")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    versions.sort();
    versions
        .last()
        .unwrap()
        .join("bin")
        .join(name)
        .display()
        .to_string()
}

fn as_postgres(cmd: &str) -> std::process::Output {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let out = if is_root {
        Command::new("su")
            .args(["postgres", "-s", "/bin/sh", "-c", cmd])
            .output()
    } else {
        Command::new("sh").args(["-c", cmd]).output()
    };
    out.unwrap()
}

impl Cluster {
    /// Starts a cluster whose `pg_hba.conf` is `hba` (lines), superuser `postgres` with
    /// password `postgres-pw`.
    pub fn start(hba: &str) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let _ = Command::new("chmod")
            .args(["755", dir.path().to_str().unwrap()])
            .status();
        let _ = Command::new("chown")
            .args(["postgres", dir.path().to_str().unwrap()])
            .status();
        let data = dir.path().join("data");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "postgres-pw\n").unwrap();
        let _ = Command::new("chown")
            .args(["postgres", pw.to_str().unwrap()])
            .status();
        let out = as_postgres(&format!(
            "{} -D {} -U postgres --pwfile={} -A scram-sha-256 >/dev/null",
            bin("initdb"),
            data.display(),
            pw.display()
        ));
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster {
            _dir: dir,
            data,
            port,
        };
        cluster.restart();
        cluster
    }

    /// Starts the server (again) on its port.
    pub fn restart(&self) {
        let dir = self._dir.path().display();
        let out = as_postgres(&format!(
            "{} -D {} -w -l {dir}/log -o '-p {} -c listen_addresses=127.0.0.1 -k {dir}' start",
            bin("pg_ctl"),
            self.data.display(),
            self.port,
        ));
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server at once, as a crash would.
    pub fn kill(&self) {
        as_postgres(&format!(
            "{} -D {} -m immediate stop",
            bin("pg_ctl"),
            self.data.display()
        ));
    }

    pub async fn superuser(&self) -> tokio_postgres::Client {
        let conn = format!(
            "host=127.0.0.1 port={} user=postgres password=postgres-pw dbname=postgres",
            self.port
        );
        let (c, conn) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill();
    }
}
