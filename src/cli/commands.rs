//! The remote commands: each is one or two admin API calls, read into the API contract's
//! types (`crate::api`, `crate::model`), and shown as a table or JSON.

use std::io::Read;

use hyper::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::client::{Client, ClientError};
use super::table::render;
use super::*;
use crate::api::{
    Access, CreatedToken, Grant, NewGroup, NewResource, NewResourceRole, NewToken, NewUser, Reach,
    Reloaded, ResourcePatch, ResourceRolePatch, ReviewRow, SessionDetail, UserPatch,
};
use crate::lockout::LockView;
use crate::model::{
    AccessModes, GroupView, ResourceRoleView, ResourceView, Role, Status, TokenView, UserView,
};
use crate::store::{ChangeRecord, SessionRecord};

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
const GROUP_COLS: &[&str] = &["name", "members", "resource_roles", "managed"];
const SESSION_COLS: &[&str] = &[
    "id",
    "user",
    "resource_role",
    "protocol",
    "mode",
    "client_addr",
    "started_at",
    "ended_at",
    "duration",
    "ended_by",
    "queries",
    "instance",
];
const STATEMENT_COLS: &[&str] = &[
    "ts",
    "op",
    "duration_us",
    "rows",
    "status",
    "error_code",
    "statement",
];

/// What a command prints: typed data as JSON values, and the table's columns.
struct Shown {
    value: Value,
    cols: &'static [&'static str],
}

fn shown<T: Serialize>(data: &T, cols: &'static [&'static str]) -> Result<Shown, ClientError> {
    let value = serde_json::to_value(data).map_err(|e| ClientError::Decode(e.to_string()))?;
    Ok(Shown { value, cols })
}

fn deleted(name: &str) -> Result<Shown, ClientError> {
    shown(&serde_json::json!({ "deleted": name }), &["deleted"])
}

/// One path segment, percent-encoded (a name or id from the command line never changes
/// which path is called).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn modes(list: &str) -> Result<AccessModes, ClientError> {
    let mut m = AccessModes {
        native: false,
        web: false,
        runbooks: false,
    };
    for mode in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match mode {
            "native" => m.native = true,
            "web" => m.web = true,
            "runbooks" => m.runbooks = true,
            other => {
                return Err(ClientError::Local(format!(
                    "unknown access mode `{other}`: use native, web, runbooks"
                )));
            }
        }
    }
    Ok(m)
}

fn parsed<T: std::str::FromStr<Err = String>>(what: &str, value: &str) -> Result<T, ClientError> {
    value
        .parse()
        .map_err(|e| ClientError::Local(format!("{what}: {e}")))
}

fn stdin_line() -> Result<String, ClientError> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| ClientError::Local(format!("cannot read stdin: {e}")))?;
    Ok(s.trim_end_matches(['\r', '\n']).to_owned())
}

async fn send<B: Serialize, T: DeserializeOwned>(
    c: &Client,
    method: Method,
    path: &str,
    body: &B,
) -> Result<T, ClientError> {
    c.typed(method, path, Some(body)).await
}

/// What a command prints, on stdout and stderr, and whether it failed (a statement error).
#[derive(Debug, Default)]
pub struct Printed {
    pub out: String,
    pub err: String,
    pub failed: bool,
}

impl Printed {
    pub fn ok(out: String) -> Printed {
        Printed {
            out,
            ..Printed::default()
        }
    }
}

/// Runs one remote command and returns what to print.
pub async fn run_remote(cli: &Cli) -> Result<Printed, ClientError> {
    match &cli.command {
        Command::Login {
            user,
            with_token,
            expires,
        } => return super::login::login(cli, user.as_deref(), *with_token, expires).await,
        Command::Logout => return super::login::logout(cli).await,
        _ => {}
    }
    let (server, token) = super::login::resolve(cli);
    if token.is_none() {
        return Err(super::login::missing(&server));
    }
    let c = Client::new(&server, token);
    let out = match &cli.command {
        Command::Serve { .. }
        | Command::CheckConfig { .. }
        | Command::Runbooks(_)
        | Command::Login { .. }
        | Command::Logout => {
            return Ok(Printed::default());
        }
        Command::Audit(cmd) => return super::audit::remote(&c, cmd, cli.output).await,
        Command::Exec(args) => return super::oneoffs::exec(&c, args, cli.output).await,
        Command::Runbook(cmd) => return super::oneoffs::runbook(&c, cmd, cli.output).await,
        Command::Request(args) => return super::requests::request(&c, args, cli.output).await,
        Command::Requests {
            mine,
            pending,
            status,
        } => {
            let status = status.as_deref();
            return super::requests::requests(&c, *mine, *pending, status, cli.output).await;
        }
        Command::Sessions { action, filter } => match action {
            Some(SessionsCmd::Show { id, search }) => {
                let search = search.as_deref();
                return session(&c, id, search, cli.output).await.map(Printed::ok);
            }
            Some(SessionsCmd::End { id }) => {
                c.delete(&format!("/api/sessions/{}", seg(id))).await?;
                deleted(id)?
            }
            None => sessions(&c, filter).await?,
        },
        Command::User(cmd) => user(&c, cmd).await?,
        Command::Group(cmd) => group(&c, cmd).await?,
        Command::Resource(cmd) => resource(&c, cmd).await?,
        Command::ResourceRole(cmd) => resource_role(&c, cmd).await?,
        Command::Access(cmd) => access(&c, cmd).await?,
        Command::Token(cmd) => tokens(&c, cmd).await?,
        Command::Lockouts { action: None } => shown(
            &c.fetch::<Vec<LockView>>("/api/lockouts").await?,
            &["kind", "subject", "remaining_s"],
        )?,
        Command::Lockouts {
            action: Some(LockoutsCmd::Clear { kind, subject }),
        } => {
            let path = format!("/api/lockouts/{}/{}", seg(kind), seg(subject));
            c.delete(&path).await?;
            deleted(&format!("{kind} {subject}"))?
        }
        Command::Guardrails { action } => guardrails(&c, action.as_ref()).await?,
        Command::Changes { limit } => shown(
            &c.fetch::<Vec<ChangeRecord>>(&format!("/api/changes?limit={limit}"))
                .await?,
            &["ts_us", "actor", "action", "object"],
        )?,
        Command::Reload => {
            let r: Reloaded = send(&c, Method::POST, "/api/config/reload", &()).await?;
            shown(&r, &["reloaded", "revision"])?
        }
    };
    Ok(Printed::ok(print(&out.value, out.cols, cli.output)))
}

fn print(value: &Value, cols: &[&str], output: Output) -> String {
    match output {
        Output::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
        Output::Table => render(value, cols),
        Output::Csv => super::table::render_csv(value, cols),
    }
}

async fn sessions(c: &Client, f: &SessionsFilter) -> Result<Shown, ClientError> {
    let mut q = vec![format!("limit={}", f.limit)];
    for (k, v) in [
        ("user", &f.user),
        ("resource_role", &f.resource_role),
        ("mode", &f.mode),
        ("status", &f.status),
    ] {
        if let Some(v) = v {
            q.push(format!("{k}={}", seg(v)));
        }
    }
    if let Some(since) = &f.since {
        q.push(format!("since={}", ago(since)?));
    }
    if let Some(text) = &f.search {
        q.push(format!("q={}", seg(text)));
    }
    let list: Vec<SessionRecord> = c.fetch(&format!("/api/sessions?{}", q.join("&"))).await?;
    let mut out = shown(&list, SESSION_COLS)?;
    if let Value::Array(rows) = &mut out.value {
        rows.iter_mut().for_each(with_duration);
    }
    Ok(out)
}

/// `1h` → the Unix time an hour ago.
pub fn ago(since: &str) -> Result<i64, ClientError> {
    let d = crate::config::parse_duration(since)
        .map_err(|e| ClientError::Local(format!("--since: {e}")))?;
    Ok(crate::clock::now() - d.as_secs() as i64)
}

/// Adds how long the session lasted (so far, when live).
fn with_duration(row: &mut Value) {
    let started = row["started_at"].as_i64().unwrap_or_default();
    let end = row["ended_at"].as_i64();
    let secs = end.unwrap_or_else(crate::clock::now) - started;
    let text = crate::clock::human_duration(secs.max(0) as u64);
    let text = if end.is_none() {
        format!("{text} (live)")
    } else {
        text
    };
    row["duration"] = Value::String(text);
}

async fn session(
    c: &Client,
    id: &str,
    search: Option<&str>,
    output: Output,
) -> Result<String, ClientError> {
    let mut detail: SessionDetail = c.fetch(&format!("/api/sessions/{}", seg(id))).await?;
    if let Some(text) = search {
        for st in &mut detail.statements {
            let hit = st["statement"].as_str().is_some_and(|s| s.contains(text));
            st["match"] = Value::Bool(hit);
            if hit && output == Output::Table {
                st["op"] = Value::String(format!("» {}", st["op"].as_str().unwrap_or("")));
            }
        }
    }
    let mut head = shown(&detail.session, SESSION_COLS)?;
    with_duration(&mut head.value);
    let statements = shown(&detail.statements, STATEMENT_COLS)?;
    Ok(match output {
        Output::Table => format!(
            "{}\n{}",
            render(&head.value, SESSION_COLS),
            render(&statements.value, STATEMENT_COLS)
        ),
        Output::Json | Output::Csv => {
            print(&shown(&detail, SESSION_COLS)?.value, SESSION_COLS, output)
        }
    })
}

/// `user add`.
async fn add_user(c: &Client, cmd: &UserCmd) -> Result<Shown, ClientError> {
    let UserCmd::Add {
        name,
        email,
        display_name,
        groups,
        role,
        status,
        password,
        password_stdin,
    } = cmd
    else {
        return Err(ClientError::Local("not `user add`".into()));
    };
    let password = match (password, password_stdin) {
        (_, true) => Some(stdin_line()?),
        (p, false) => p.clone(),
    };
    let new = NewUser {
        name: name.clone(),
        email: email.clone(),
        display_name: display_name.clone(),
        status: Some(parsed::<Status>("--status", status)?),
        role: Some(parsed::<Role>("--role", role)?),
        groups: groups.clone(),
        password,
    };
    let v: UserView = send(c, Method::POST, "/api/users", &new).await?;
    shown(&v, USER_COLS)
}

async fn user(c: &Client, cmd: &UserCmd) -> Result<Shown, ClientError> {
    let path = |n: &str| format!("/api/users/{}", seg(n));
    let patch = async |name: &str, p: UserPatch| -> Result<Shown, ClientError> {
        let v: UserView = send(c, Method::PATCH, &path(name), &p).await?;
        shown(&v, USER_COLS)
    };
    match cmd {
        UserCmd::List => shown(&c.fetch::<Vec<UserView>>("/api/users").await?, USER_COLS),
        UserCmd::Show { name } => shown(&c.fetch::<UserView>(&path(name)).await?, USER_COLS),
        UserCmd::Add { .. } => add_user(c, cmd).await,
        UserCmd::SetStatus { name, status } => {
            let status = Some(parsed::<Status>("status", status)?);
            patch(
                name,
                UserPatch {
                    status,
                    ..UserPatch::default()
                },
            )
            .await
        }
        UserCmd::SetGroups { name, groups } => {
            let groups = Some(groups.clone());
            patch(
                name,
                UserPatch {
                    groups,
                    ..UserPatch::default()
                },
            )
            .await
        }
        UserCmd::SetRole { name, role } => {
            let role = Some(parsed::<Role>("role", role)?);
            patch(
                name,
                UserPatch {
                    role,
                    ..UserPatch::default()
                },
            )
            .await
        }
        UserCmd::Passwd {
            name,
            password,
            current_password,
        } => {
            let password = Some(match password {
                Some(p) => p.clone(),
                None => stdin_line()?,
            });
            let p = UserPatch {
                password,
                current_password: current_password.clone(),
                ..UserPatch::default()
            };
            patch(name, p).await
        }
        UserCmd::Set {
            name,
            email,
            display_name,
        } => {
            if email.is_none() && display_name.is_none() {
                return Err(ClientError::Local(
                    "nothing to change: give --email and/or --display-name".into(),
                ));
            }
            let p = UserPatch {
                email: email.clone(),
                display_name: display_name.clone(),
                ..UserPatch::default()
            };
            patch(name, p).await
        }
        UserCmd::Delete { name } => {
            c.delete(&path(name)).await?;
            deleted(name)
        }
    }
}

async fn group(c: &Client, cmd: &GroupCmd) -> Result<Shown, ClientError> {
    let path = |n: &str| format!("/api/groups/{}", seg(n));
    match cmd {
        GroupCmd::List => shown(&c.fetch::<Vec<GroupView>>("/api/groups").await?, GROUP_COLS),
        GroupCmd::Show { name } => shown(&c.fetch::<GroupView>(&path(name)).await?, GROUP_COLS),
        GroupCmd::Add { name } => {
            let new = NewGroup { name: name.clone() };
            let v: GroupView = send(c, Method::POST, "/api/groups", &new).await?;
            shown(&v, &["name"])
        }
        GroupCmd::Rename { name, new_name } => {
            let p = crate::api::GroupPatch {
                name: new_name.clone(),
            };
            let v: GroupView = send(c, Method::PATCH, &path(name), &p).await?;
            shown(&v, GROUP_COLS)
        }
        GroupCmd::Delete { name, force } => {
            c.delete(&forced(path(name), *force)).await?;
            deleted(name)
        }
    }
}

/// A delete's path, with `?force=true` when asked.
fn forced(path: String, force: bool) -> String {
    if force {
        format!("{path}?force=true")
    } else {
        path
    }
}

async fn resource(c: &Client, cmd: &ResourceCmd) -> Result<Shown, ClientError> {
    let path = |n: &str| format!("/api/resources/{}", seg(n));
    match cmd {
        ResourceCmd::List => shown(
            &c.fetch::<Vec<ResourceView>>("/api/resources").await?,
            RESOURCE_COLS,
        ),
        ResourceCmd::Show { name } => {
            shown(&c.fetch::<ResourceView>(&path(name)).await?, RESOURCE_COLS)
        }
        ResourceCmd::Add {
            name,
            protocol,
            address,
            tls,
        } => {
            let new = NewResource {
                name: name.clone(),
                protocol: parsed("--protocol", protocol)?,
                address: address.clone(),
                tls: Some(parsed("--tls", tls)?),
            };
            let v: ResourceView = send(c, Method::POST, "/api/resources", &new).await?;
            shown(&v, RESOURCE_COLS)
        }
        ResourceCmd::Set { name, address, tls } => {
            let p = ResourcePatch {
                protocol: None,
                address: address.clone(),
                tls: tls.as_deref().map(|t| parsed("--tls", t)).transpose()?,
            };
            let v: ResourceView = send(c, Method::PATCH, &path(name), &p).await?;
            shown(&v, RESOURCE_COLS)
        }
        ResourceCmd::Delete { name, force } => {
            c.delete(&forced(path(name), *force)).await?;
            deleted(name)
        }
    }
}

async fn resource_role(c: &Client, cmd: &ResourceRoleCmd) -> Result<Shown, ClientError> {
    let path = |n: &str| format!("/api/resource-roles/{}", seg(n));
    match cmd {
        ResourceRoleCmd::List => shown(
            &c.fetch::<Vec<ResourceRoleView>>("/api/resource-roles")
                .await?,
            ROLE_COLS,
        ),
        ResourceRoleCmd::Show { name } => {
            shown(&c.fetch::<ResourceRoleView>(&path(name)).await?, ROLE_COLS)
        }
        ResourceRoleCmd::Add {
            name,
            resource,
            database,
            user,
            password,
            password_env,
            groups,
            modes: m,
            forward_options,
        } => {
            let password = match password_env {
                Some(var) => Some(std::env::var(var).map_err(|_| {
                    ClientError::Local(format!("environment variable `{var}` is not set"))
                })?),
                None => password.clone(),
            };
            let new = NewResourceRole {
                name: name.clone(),
                resource: resource.clone(),
                database: database.clone(),
                user: user.clone(),
                password,
                allowed_groups: groups.clone(),
                access_modes: Some(modes(m)?),
                forward_options: (!forward_options.is_empty()).then(|| forward_options.clone()),
            };
            let v: ResourceRoleView = send(c, Method::POST, "/api/resource-roles", &new).await?;
            shown(&v, ROLE_COLS)
        }
        ResourceRoleCmd::Set {
            name,
            database,
            user,
            password,
            modes: m,
            forward_options,
        } => {
            let p = ResourceRolePatch {
                database: database.clone(),
                user: user.clone(),
                password: password.clone(),
                access_modes: m.as_deref().map(modes).transpose()?,
                forward_options: (!forward_options.is_empty())
                    .then(|| Some(forward_options.clone())),
                ..ResourceRolePatch::default()
            };
            let v: ResourceRoleView = send(c, Method::PATCH, &path(name), &p).await?;
            shown(&v, ROLE_COLS)
        }
        ResourceRoleCmd::Delete { name, force } => {
            c.delete(&forced(path(name), *force)).await?;
            deleted(name)
        }
    }
}

async fn access(c: &Client, cmd: &AccessCmd) -> Result<Shown, ClientError> {
    match cmd {
        AccessCmd::Show {
            resource_role,
            user,
        } => {
            let mut q = vec![];
            if let Some(r) = resource_role {
                q.push(format!("resource_role={}", seg(r)));
            }
            if let Some(u) = user {
                q.push(format!("user={}", seg(u)));
            }
            let reach: Vec<Reach> = c.fetch(&format!("/api/access?{}", q.join("&"))).await?;
            shown(&reach, &["resource_role", "user", "modes", "via"])
        }
        AccessCmd::Review {
            unused_for,
            resource_role,
        } => {
            let mut q = vec![format!("unused_for={}", seg(unused_for))];
            if let Some(r) = resource_role {
                q.push(format!("resource_role={}", seg(r)));
            }
            let rows: Vec<ReviewRow> = c
                .fetch(&format!("/api/access/review?{}", q.join("&")))
                .await?;
            shown(
                &rows,
                &[
                    "resource_role",
                    "user",
                    "modes",
                    "via",
                    "last_used_at",
                    "unused",
                ],
            )
        }
        AccessCmd::Grant {
            resource_role,
            group,
        } => {
            let path = format!("/api/resource-roles/{}/access", seg(resource_role));
            let grant = Grant {
                group: group.clone(),
            };
            let a: Access = send(c, Method::POST, &path, &grant).await?;
            shown(&a, &["groups"])
        }
        AccessCmd::Revoke {
            resource_role,
            group,
        } => {
            let path = format!(
                "/api/resource-roles/{}/access/{}",
                seg(resource_role),
                seg(group)
            );
            let a: Access = c.typed::<(), _>(Method::DELETE, &path, None).await?;
            shown(&a, &["groups"])
        }
    }
}

async fn tokens(c: &Client, cmd: &TokenCmd) -> Result<Shown, ClientError> {
    match cmd {
        TokenCmd::Create {
            user,
            name,
            expires,
        } => {
            let new = NewToken {
                user: user.clone(),
                name: name.clone(),
                expires: expires.clone(),
            };
            let t: CreatedToken = send(c, Method::POST, "/api/tokens", &new).await?;
            shown(&t, &["id", "user", "name", "expires_at", "token"])
        }
        TokenCmd::List { user } => {
            let path = match user {
                Some(u) => format!("/api/tokens?user={}", seg(u)),
                None => "/api/tokens".into(),
            };
            shown(
                &c.fetch::<Vec<TokenView>>(&path).await?,
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
        TokenCmd::Revoke { id } => {
            c.delete(&format!("/api/tokens/{}", seg(id))).await?;
            deleted(id)
        }
    }
}

const GUARDRAIL_COLS: &[&str] = &[
    "name",
    "resource_roles",
    "action",
    "classes",
    "tables",
    "groups",
    "except_groups",
    "managed",
];

async fn guardrails(c: &Client, action: Option<&GuardrailsCmd>) -> Result<Shown, ClientError> {
    use crate::model::GuardrailView;
    match action {
        None => shown(
            &c.fetch::<Vec<GuardrailView>>("/api/guardrails").await?,
            GUARDRAIL_COLS,
        ),
        Some(GuardrailsCmd::Show { name }) => shown(
            &c.fetch::<GuardrailView>(&format!("/api/guardrails/{}", seg(name)))
                .await?,
            GUARDRAIL_COLS,
        ),
        Some(GuardrailsCmd::Add { file }) => {
            let text = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).map(|_| s)
            } else {
                std::fs::read_to_string(file)
            }
            .map_err(|e| ClientError::Local(format!("{}: {e}", file.display())))?;
            let rule: crate::model::Guardrail = serde_json::from_str(&text)
                .map_err(|e| ClientError::Local(format!("{}: {e}", file.display())))?;
            let made: GuardrailView = send(c, Method::POST, "/api/guardrails", &rule).await?;
            shown(&made, GUARDRAIL_COLS)
        }
        Some(GuardrailsCmd::Delete { name }) => {
            c.delete(&format!("/api/guardrails/{}", seg(name))).await?;
            deleted(name)
        }
    }
}
