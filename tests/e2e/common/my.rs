//! A MariaDB environment for end-to-end tests: a uniquely named upstream user and database
//! on the local server, and a gateway declaring users and resource roles on it. Clients
//! are the real `mariadb` CLI.
#![allow(dead_code, clippy::unwrap_used)]

use portcullis::app::Running;
use serde_json::Value;

use super::pg::read_events;
use super::{Dir, start, unique};

pub const PASSWORD: &str = "alice-password";

pub struct MyEnv {
    pub dir: Dir,
    pub gw: Running,
    pub user: String,
    pub db: String,
    pub port: u16,
}

/// Runs the mariadb CLI; returns (success, stdout, stderr).
pub async fn mariadb(args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new("mariadb")
        .args([
            "--protocol=tcp",
            "-h",
            "127.0.0.1",
            "--batch",
            "--skip-column-names",
        ])
        .args(args)
        .output()
        .await
        .expect("the mariadb client is installed (scripts/services.sh installs it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// As root, directly against the local MariaDB.
pub async fn direct(sql: &str) -> String {
    let (ok, out, err) = mariadb(&["-P", "3306", "-uroot", "-e", sql]).await;
    assert!(
        ok,
        "MariaDB is not reachable on 127.0.0.1:3306 or refused `{sql}` ({err}); run scripts/services.sh"
    );
    out
}

impl MyEnv {
    pub async fn new(extra: &str) -> MyEnv {
        let (user, db) = (unique("u"), unique("d"));
        direct(&format!(
            "CREATE DATABASE {db}; CREATE USER '{user}'@'%' IDENTIFIED BY 'up-pw'; GRANT ALL ON {db}.* TO '{user}'@'%'"
        ))
        .await;
        let dir = Dir::new();
        let declared = super::declarations(
            "maria",
            "mysql",
            "127.0.0.1:3306",
            "disable",
            &db,
            &user,
            "up-pw",
        );
        let config = format!("{extra}\n{declared}");
        dir.write_config(None, &config);
        let gw = start(&dir).await;
        let port = gw.mysql_addr.unwrap().port();
        MyEnv {
            dir,
            gw,
            user,
            db,
            port,
        }
    }

    /// The mariadb CLI through the gateway as `user` on `rr`.
    pub async fn client(
        &self,
        user: &str,
        password: &str,
        rr: &str,
        args: &[&str],
    ) -> (bool, String, String) {
        let port = self.port.to_string();
        let pw = format!("-p{password}");
        let mut all = vec!["-P", port.as_str(), "-u", user, pw.as_str()];
        if !rr.is_empty() {
            all.extend(["-D", rr]);
        }
        all.extend_from_slice(args);
        mariadb(&all).await
    }

    pub async fn events(&self) -> Vec<Value> {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        read_events(&self.dir.path().join("audit"))
    }
}
