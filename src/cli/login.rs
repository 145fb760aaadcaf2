//! `portcullis login` / `logout` and where every other command finds its server and
//! token: `--server`/`PORTCULLIS_SERVER` and `--token`/`PORTCULLIS_TOKEN` first, then the
//! login saved in the user's config directory (`credentials.json`, mode 0600), then — in a
//! gateway's own directory, for the demo — `data/bootstrap-token`.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use hyper::Method;
use serde::{Deserialize, Serialize};

use super::client::{Client, ClientError};
use super::{Cli, Printed};
use crate::api::{CreatedToken, LoginRequest};

pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8009";

/// What `portcullis login` saved: a token per server, and the server last logged in to.
#[derive(Default, Serialize, Deserialize)]
struct Saved {
    current: Option<String>,
    servers: BTreeMap<String, Login>,
}

#[derive(Clone, Serialize, Deserialize)]
struct Login {
    user: String,
    token: String,
    /// The token's id when `login` made it (so `logout` revokes it).
    token_id: Option<String>,
    expires_at: Option<i64>,
}

/// `$PORTCULLIS_CONFIG_DIR`, else `$XDG_CONFIG_HOME/portcullis`, else
/// `~/.config/portcullis`.
fn dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("PORTCULLIS_CONFIG_DIR")
        .or_else(|| env("XDG_CONFIG_HOME").map(|d| d.join("portcullis")))
        .or_else(|| env("HOME").map(|h| h.join(".config/portcullis")))
}

fn file() -> Option<PathBuf> {
    dir().map(|d| d.join("credentials.json"))
}

fn load() -> Saved {
    file()
        .and_then(|f| std::fs::read(f).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn store(saved: &Saved) -> Result<PathBuf, ClientError> {
    let fail = |e: std::io::Error| ClientError::Local(format!("cannot save the login: {e}"));
    let path = file().ok_or_else(|| {
        ClientError::Local("no config directory: set HOME or PORTCULLIS_CONFIG_DIR".into())
    })?;
    let json = serde_json::to_vec_pretty(saved).map_err(|e| ClientError::Local(e.to_string()))?;
    crate::fsutil::write_private(&path, &json).map_err(fail)?;
    Ok(path)
}

/// The server a command talks to and the token it sends.
pub fn resolve(cli: &Cli) -> (String, Option<String>) {
    let saved = load();
    let server = cli
        .server
        .clone()
        .or_else(|| saved.current.clone())
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let server = server.trim_end_matches('/').to_owned();
    let token = cli
        .token
        .clone()
        .or_else(|| saved.servers.get(&server).map(|l| l.token.clone()))
        .or_else(|| {
            std::fs::read_to_string("data/bootstrap-token")
                .ok()
                .map(|t| t.trim().to_owned())
        });
    (server, token)
}

/// What to do when a command has no token at all.
pub fn missing(server: &str) -> ClientError {
    ClientError::Local(format!(
        "not logged in to {server}: run `portcullis login --server {server} --user NAME` \
         (or set PORTCULLIS_TOKEN to a personal access token)"
    ))
}

/// Reads a secret: from the terminal without echo, or one line of stdin.
fn secret(prompt: &str) -> Result<String, ClientError> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let stty = |arg: &str| {
        let _ = std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status();
    };
    if tty {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        stty("-echo");
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if tty {
        stty("echo");
        eprintln!();
    }
    read.map_err(|e| ClientError::Local(format!("cannot read the secret: {e}")))?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        return Err(ClientError::Local("no password or token given".into()));
    }
    Ok(line)
}

/// `portcullis login`: a password (or token) for a personal access token, saved.
pub async fn login(
    cli: &Cli,
    user: Option<&str>,
    with_token: bool,
    expires: &str,
) -> Result<Printed, ClientError> {
    let (server, _) = resolve(cli);
    let plain = Client::new(&server, None);
    let (login, what) = if with_token {
        let token = secret("Token: ")?;
        let c = Client::new(&server, Some(token.clone()));
        let me: crate::model::UserView = c.fetch("/api/me").await?;
        let login = Login {
            user: me.name.clone(),
            token,
            token_id: None,
            expires_at: None,
        };
        (login, "the given token")
    } else {
        let user = match user {
            Some(u) => u.to_owned(),
            None => std::env::var("USER").map_err(|_| {
                ClientError::Local("say who you are: portcullis login --user NAME".into())
            })?,
        };
        let password = secret(&format!("Password for {user} at {server}: "))?;
        let req = LoginRequest {
            user: user.clone(),
            password,
            name: Some(format!("portcullis login ({})", host())),
            expires: Some(expires.to_owned()),
        };
        let made: CreatedToken = plain.typed(Method::POST, "/api/login", Some(&req)).await?;
        let login = Login {
            user,
            token: made.token,
            token_id: Some(made.meta.id),
            expires_at: made.meta.expires_at,
        };
        (login, "a new personal access token")
    };
    let mut saved = load();
    saved.current = Some(server.clone());
    saved.servers.insert(server.clone(), login.clone());
    let path = store(&saved)?;
    let until = login
        .expires_at
        .map(|e| format!(", until {}", super::table::timestamp(e)))
        .unwrap_or_default();
    Ok(Printed::ok(format!(
        "logged in to {server} as {} with {what}{until}; saved in {}\n",
        login.user,
        path.display()
    )))
}

/// `portcullis logout`: revokes the token `login` made and forgets the login.
pub async fn logout(cli: &Cli) -> Result<Printed, ClientError> {
    let (server, _) = resolve(cli);
    let mut saved = load();
    let Some(login) = saved.servers.remove(&server) else {
        return Ok(Printed::ok(format!("not logged in to {server}\n")));
    };
    let mut note = String::new();
    match &login.token_id {
        Some(id) => {
            let c = Client::new(&server, Some(login.token.clone()));
            let path = format!("/api/tokens/{}", super::commands::seg(id));
            if let Err(e) = c.delete(&path).await {
                note = format!(" (the token was not revoked: {e})");
            }
        }
        None => note = " (the token was given to login, so it is kept: revoke it with `portcullis token revoke ID`)".into(),
    }
    if saved.current.as_deref() == Some(&server) {
        saved.current = saved.servers.keys().next().cloned();
    }
    store(&saved)?;
    Ok(Printed::ok(format!(
        "logged out of {server} as {}{note}\n",
        login.user
    )))
}

fn host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "cli".to_owned())
}
