//! The remote commands: each is one or two admin API calls and a table.

use std::io::Read;

use serde_json::{Value, json};

use super::client::{Client, ClientError};
use super::table::render;
use super::*;

const USER_COLS: &[&str] = &[
    "name",
    "email",
    "status",
    "role",
    "groups",
    "has_password",
    "managed",
];
const ROLE_COLS: &[&str] = &[
    "name",
    "resource",
    "database",
    "user",
    "allowed_groups",
    "access_modes",
    "managed",
];
const RESOURCE_COLS: &[&str] = &["name", "protocol", "address", "tls", "managed"];

fn modes(list: &str) -> Result<Value, ClientError> {
    let mut m = json!({"native": false, "web": false, "runbooks": false});
    for mode in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match m.get_mut(mode) {
            Some(v) => *v = Value::Bool(true),
            None => {
                return Err(ClientError::Decode(format!(
                    "unknown access mode `{mode}`: use native, web, runbooks"
                )));
            }
        }
    }
    Ok(m)
}

fn stdin_line() -> Result<String, ClientError> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| ClientError::Decode(format!("cannot read stdin: {e}")))?;
    Ok(s.trim_end_matches(['\r', '\n']).to_owned())
}

/// Runs one remote command and returns what to print.
pub async fn run_remote(cli: &Cli) -> Result<String, ClientError> {
    let token = cli.token.clone().or_else(|| {
        std::fs::read_to_string("data/bootstrap-token")
            .ok()
            .map(|t| t.trim().to_owned())
    });
    let c = Client::new(&cli.server, token);
    let (value, cols): (Value, &[&str]) = match &cli.command {
        Command::Serve { .. } | Command::CheckConfig { .. } | Command::Audit(_) => {
            return Ok(String::new());
        }
        Command::Sessions {
            action,
            user,
            resource_role,
            mode,
            status,
            since,
            limit,
        } => {
            const COLS: &[&str] = &[
                "id",
                "user",
                "resource_role",
                "protocol",
                "mode",
                "client_addr",
                "started_at",
                "ended_by",
                "queries",
            ];
            match action {
                None => {
                    let mut q = vec![format!("limit={limit}")];
                    for (k, v) in [
                        ("user", user),
                        ("resource_role", resource_role),
                        ("mode", mode),
                        ("status", status),
                    ] {
                        if let Some(v) = v {
                            q.push(format!("{k}={v}"));
                        }
                    }
                    if let Some(since) = since {
                        let d =
                            crate::config::parse_duration(since).map_err(ClientError::Decode)?;
                        q.push(format!(
                            "since={}",
                            crate::clock::now() - d.as_secs() as i64
                        ));
                    }
                    (
                        c.get(&format!("/api/sessions?{}", q.join("&"))).await?,
                        COLS,
                    )
                }
                Some(SessionsCmd::Show { id }) => {
                    let detail = c.get(&format!("/api/sessions/{id}")).await?;
                    if cli.output == Output::Table {
                        let head = render(&detail, COLS);
                        let statements = render(
                            &detail["statements"],
                            &[
                                "ts",
                                "op",
                                "duration_us",
                                "rows",
                                "status",
                                "error_code",
                                "statement",
                            ],
                        );
                        return Ok(format!("{head}\n{statements}"));
                    }
                    (detail, COLS)
                }
                Some(SessionsCmd::End { id }) => (
                    deleted(c.delete(&format!("/api/sessions/{id}")).await?, id),
                    &["deleted"],
                ),
            }
        }
        Command::User(cmd) => user(&c, cmd).await?,
        Command::Group(cmd) => match cmd {
            GroupCmd::List => (c.get("/api/groups").await?, &["name", "members", "managed"]),
            GroupCmd::Show { name } => (
                c.get(&format!("/api/groups/{name}")).await?,
                &["name", "members", "managed"],
            ),
            GroupCmd::Add { name } => (
                c.post("/api/groups", json!({"name": name})).await?,
                &["name"],
            ),
            GroupCmd::Delete { name } => (
                deleted(c.delete(&format!("/api/groups/{name}")).await?, name),
                &["deleted"],
            ),
        },
        Command::Resource(cmd) => match cmd {
            ResourceCmd::List => (c.get("/api/resources").await?, RESOURCE_COLS),
            ResourceCmd::Show { name } => (
                c.get(&format!("/api/resources/{name}")).await?,
                RESOURCE_COLS,
            ),
            ResourceCmd::Add {
                name,
                protocol,
                address,
                tls,
            } => {
                let body =
                    json!({"name": name, "protocol": protocol, "address": address, "tls": tls});
                (c.post("/api/resources", body).await?, RESOURCE_COLS)
            }
            ResourceCmd::Set { name, address, tls } => {
                let body = json!({"address": address, "tls": tls});
                (
                    c.patch(&format!("/api/resources/{name}"), strip_nulls(body))
                        .await?,
                    RESOURCE_COLS,
                )
            }
            ResourceCmd::Delete { name } => (
                deleted(c.delete(&format!("/api/resources/{name}")).await?, name),
                &["deleted"],
            ),
        },
        Command::ResourceRole(cmd) => resource_role(&c, cmd).await?,
        Command::Access(cmd) => match cmd {
            AccessCmd::Show {
                resource_role,
                user,
            } => {
                let mut q = vec![];
                if let Some(r) = resource_role {
                    q.push(format!("resource_role={r}"));
                }
                if let Some(u) = user {
                    q.push(format!("user={u}"));
                }
                let path = format!("/api/access?{}", q.join("&"));
                (
                    c.get(&path).await?,
                    &["resource_role", "user", "modes", "via"],
                )
            }
            AccessCmd::Grant {
                resource_role,
                group,
            } => {
                let path = format!("/api/resource-roles/{resource_role}/access");
                (c.post(&path, json!({"group": group})).await?, &["groups"])
            }
            AccessCmd::Revoke {
                resource_role,
                group,
            } => {
                let path = format!("/api/resource-roles/{resource_role}/access/{group}");
                (c.delete(&path).await?, &["groups"])
            }
        },
        Command::Token(cmd) => match cmd {
            TokenCmd::Create {
                user,
                name,
                expires,
            } => {
                let body = strip_nulls(json!({"user": user, "name": name, "expires": expires}));
                (
                    c.post("/api/tokens", body).await?,
                    &["id", "user", "name", "expires_at", "token"],
                )
            }
            TokenCmd::List { user } => {
                let path = match user {
                    Some(u) => format!("/api/tokens?user={u}"),
                    None => "/api/tokens".into(),
                };
                (
                    c.get(&path).await?,
                    &[
                        "id",
                        "user",
                        "name",
                        "created_at",
                        "expires_at",
                        "last_used_at",
                    ],
                )
            }
            TokenCmd::Revoke { id } => (
                deleted(c.delete(&format!("/api/tokens/{id}")).await?, id),
                &["deleted"],
            ),
        },
        Command::Lockouts { action: None } => (
            c.get("/api/lockouts").await?,
            &["kind", "subject", "remaining_s"],
        ),
        Command::Lockouts {
            action: Some(LockoutsCmd::Clear { kind, subject }),
        } => (
            deleted(
                c.delete(&format!("/api/lockouts/{kind}/{subject}")).await?,
                &format!("{kind} {subject}"),
            ),
            &["deleted"],
        ),
        Command::Changes { limit } => (
            c.get(&format!("/api/changes?limit={limit}")).await?,
            &["ts", "actor", "action", "object"],
        ),
        Command::Reload => (
            c.post("/api/config/reload", json!({})).await?,
            &["reloaded", "revision"],
        ),
    };
    Ok(match cli.output {
        Output::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        ),
        Output::Table => render(&value, cols),
    })
}

fn deleted(_: Value, name: &str) -> Value {
    json!({ "deleted": name })
}

fn strip_nulls(mut v: Value) -> Value {
    if let Value::Object(map) = &mut v {
        map.retain(|_, v| !v.is_null());
    }
    v
}

async fn user(c: &Client, cmd: &UserCmd) -> Result<(Value, &'static [&'static str]), ClientError> {
    let path = |n: &str| format!("/api/users/{n}");
    Ok(match cmd {
        UserCmd::List => (c.get("/api/users").await?, USER_COLS),
        UserCmd::Show { name } => (c.get(&path(name)).await?, USER_COLS),
        UserCmd::Add {
            name,
            email,
            display_name,
            groups,
            role,
            status,
            password,
            password_stdin,
        } => {
            let password = match (password, password_stdin) {
                (_, true) => Some(stdin_line()?),
                (p, false) => p.clone(),
            };
            let body = strip_nulls(json!({
                "name": name, "email": email, "display_name": display_name, "groups": groups,
                "role": role, "status": status, "password": password,
            }));
            (c.post("/api/users", body).await?, USER_COLS)
        }
        UserCmd::SetStatus { name, status } => (
            c.patch(&path(name), json!({"status": status})).await?,
            USER_COLS,
        ),
        UserCmd::SetGroups { name, groups } => (
            c.patch(&path(name), json!({"groups": groups})).await?,
            USER_COLS,
        ),
        UserCmd::SetRole { name, role } => (
            c.patch(&path(name), json!({"role": role})).await?,
            USER_COLS,
        ),
        UserCmd::Passwd { name, password } => {
            let pw = match password {
                Some(p) => p.clone(),
                None => stdin_line()?,
            };
            (
                c.patch(&path(name), json!({"password": pw})).await?,
                USER_COLS,
            )
        }
        UserCmd::Delete { name } => (deleted(c.delete(&path(name)).await?, name), &["deleted"]),
    })
}

async fn resource_role(
    c: &Client,
    cmd: &ResourceRoleCmd,
) -> Result<(Value, &'static [&'static str]), ClientError> {
    let path = |n: &str| format!("/api/resource-roles/{n}");
    Ok(match cmd {
        ResourceRoleCmd::List => (c.get("/api/resource-roles").await?, ROLE_COLS),
        ResourceRoleCmd::Show { name } => (c.get(&path(name)).await?, ROLE_COLS),
        ResourceRoleCmd::Add {
            name,
            resource,
            database,
            user,
            password,
            password_env,
            groups,
            modes: m,
        } => {
            let password = match password_env {
                Some(var) => Some(std::env::var(var).map_err(|_| {
                    ClientError::Decode(format!("environment variable `{var}` is not set"))
                })?),
                None => password.clone(),
            };
            let body = strip_nulls(json!({
                "name": name, "resource": resource, "database": database, "user": user,
                "password": password, "allowed_groups": groups, "access_modes": modes(m)?,
            }));
            (c.post("/api/resource-roles", body).await?, ROLE_COLS)
        }
        ResourceRoleCmd::Set {
            name,
            database,
            user,
            password,
            modes: m,
        } => {
            let m = m.as_deref().map(modes).transpose()?;
            let body = strip_nulls(json!({
                "database": database, "user": user, "password": password, "access_modes": m,
            }));
            (c.patch(&path(name), body).await?, ROLE_COLS)
        }
        ResourceRoleCmd::Delete { name } => {
            (deleted(c.delete(&path(name)).await?, name), &["deleted"])
        }
    })
}
