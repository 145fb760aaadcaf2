//! Users (list with search and status filter, create, edit, deactivate, tokens) and
//! groups (list with member counts, create, delete, members and grants).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query as Q, State};
use axum::response::Response;
use axum::routing::{get, post};

use super::signin::Viewer;
use super::{ConsoleState, Fields, Nav, Query, back, delete_via, page};
use crate::admin::{ApiError, Body, catalog, tokens, users};
use crate::api::{NewGroup, NewToken, NewUser, UserPatch};
use crate::model::{Role, Status, UserView};

pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/ui/users", get(list).post(create))
        .route("/ui/users/{name}", get(show).post(update))
        .route("/ui/users/{name}/deactivate", post(deactivate))
        .route("/ui/users/{name}/tokens", post(new_token))
        .route("/ui/tokens/{id}/revoke", post(revoke_token))
        .route("/ui/groups", get(groups).post(create_group))
        .route("/ui/groups/{name}", get(group))
        .route("/ui/groups/{name}/delete", post(delete_group))
}

/// Unix seconds as people read them (UTC).
pub fn when(ts: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| ts.to_string())
}

pub fn error_page(nav: Nav, e: ApiError) -> Response {
    let mut nav = nav;
    nav.error = Some(e.message);
    page(&Plain {
        nav,
        title: "Not available".into(),
    })
}

#[derive(Template)]
#[template(
    source = "{% extends \"base.html\" %}{% block content %}<h1>{{ title }}</h1>{% endblock %}",
    ext = "html"
)]
struct Plain {
    nav: Nav,
    title: String,
}

struct UserRow {
    name: String,
    email: String,
    status: &'static str,
    role: &'static str,
    groups: String,
    live: usize,
    managed: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    nav: Nav,
    users: Vec<UserRow>,
    q: String,
    status: String,
    statuses: &'static [&'static str],
    roles: &'static [&'static str],
    group_names: String,
}

fn live_sessions(s: &ConsoleState, user: &str) -> usize {
    s.api
        .registry
        .list()
        .iter()
        .filter(|v| v.user == user)
        .count()
}

async fn list(State(s): State<ConsoleState>, viewer: Viewer, Q(q): Q<Query>) -> Response {
    let nav = viewer.nav("users", &q);
    let all = match users::list(axum::extract::State(s.api.clone()), viewer.caller.clone()).await {
        Ok(all) => all.0,
        Err(e) => return error_page(nav, e),
    };
    let (text, status) = (
        q.get("q").unwrap_or_default(),
        q.get("status").unwrap_or_default(),
    );
    let needle = text.to_lowercase();
    let rows = all
        .into_iter()
        .filter(|u| status.is_empty() || u.status.as_str() == status)
        .filter(|u| {
            needle.is_empty()
                || u.name.to_lowercase().contains(&needle)
                || u.email.to_lowercase().contains(&needle)
        })
        .map(|u| UserRow {
            live: live_sessions(&s, &u.name),
            name: u.name.clone(),
            email: u.email.clone(),
            status: u.status.as_str(),
            role: u.role.as_str(),
            groups: u.groups.join(", "),
            managed: u.managed,
        })
        .collect();
    let mut names: Vec<String> = s.api.control.snapshot().groups.iter().cloned().collect();
    names.sort();
    page(&UsersPage {
        nav,
        users: rows,
        q: text,
        status,
        statuses: Status::ALL,
        roles: Role::ALL,
        group_names: names.join(", "),
    })
}

fn parsed<T: std::str::FromStr<Err = String>>(what: &str, v: &str) -> Result<Option<T>, ApiError> {
    if v.is_empty() {
        return Ok(None);
    }
    v.parse()
        .map(Some)
        .map_err(|e| ApiError::invalid(format!("{what}: {e}")))
}

async fn create(State(s): State<ConsoleState>, viewer: Viewer, f: Fields) -> Response {
    if let Some(r) = viewer.refused(&f) {
        return r;
    }
    let made = async {
        let new = NewUser {
            name: f.get("name"),
            email: f.get("email"),
            display_name: f.get("display_name"),
            status: None,
            role: parsed("role", &f.get("role"))?,
            groups: f.list("groups"),
            password: f.some("password"),
        };
        let name = new.name.clone();
        let _ = users::create(
            axum::extract::State(s.api.clone()),
            viewer.caller.clone(),
            Body(new),
        )
        .await?;
        Ok(format!("user {name} created"))
    };
    back("/ui/users", made.await)
}

struct TokenRow {
    id: String,
    name: String,
    created: String,
    expires: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    nav: Nav,
    user: UserView,
    groups: String,
    live: usize,
    tokens: Vec<TokenRow>,
    new_token: Option<String>,
    roles: &'static [&'static str],
    statuses: &'static [&'static str],
}

async fn user_page(
    s: &ConsoleState,
    viewer: &Viewer,
    name: &str,
    nav: Nav,
    new_token: Option<String>,
) -> Response {
    let api = || axum::extract::State(s.api.clone());
    let user = match users::show(api(), viewer.caller.clone(), Path(name.to_owned())).await {
        Ok(u) => u.0,
        Err(e) => return error_page(nav, e),
    };
    let filter = tokens::Filter {
        user: Some(name.to_owned()),
    };
    let tokens =
        match tokens::list(api(), viewer.caller.clone(), axum::extract::Query(filter)).await {
            Ok(t) => t.0,
            Err(e) => return error_page(nav, e),
        };
    let rows = tokens
        .into_iter()
        .map(|t| TokenRow {
            id: t.id,
            name: t.name,
            created: when(t.created_at),
            expires: t.expires_at.map_or("never".into(), when),
            last_used: t.last_used_at.map_or("never".into(), when),
        })
        .collect();
    page(&UserPage {
        nav,
        groups: user.groups.join(", "),
        live: live_sessions(s, name),
        user,
        tokens: rows,
        new_token,
        roles: Role::ALL,
        statuses: Status::ALL,
    })
}

async fn show(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Q(q): Q<Query>,
) -> Response {
    let nav = viewer.nav("users", &q);
    user_page(&s, &viewer, &name, nav, None).await
}

async fn update(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    Path(name): Path<String>,
    f: Fields,
) -> Response {
    if let Some(r) = viewer.refused(&f) {
        return r;
    }
    let done = async {
        let patch = UserPatch {
            email: Some(f.get("email")),
            display_name: Some(f.get("display_name")),
            status: parsed("status", &f.get("status"))?,
            role: parsed("role", &f.get("role"))?,
            groups: Some(f.list("groups")),
            password: f.some("password"),
            current_password: None,
        };
        let api = axum::extract::State(s.api.clone());
        let _ = users::patch(api, viewer.caller.clone(), Path(name.clone()), Body(patch)).await?;
        Ok("saved".to_owned())
    };
    back(&format!("/ui/users/{}", super::encode(&name)), done.await)
}

async fn deactivate(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    Path(name): Path<String>,
    f: Fields,
) -> Response {
    if let Some(r) = viewer.refused(&f) {
        return r;
    }
    let live = live_sessions(&s, &name);
    let patch = UserPatch {
        status: Some(Status::Inactive),
        ..UserPatch::default()
    };
    let api = axum::extract::State(s.api.clone());
    let done = users::patch(api, viewer.caller.clone(), Path(name.clone()), Body(patch))
        .await
        .map(|_| format!("{name} deactivated; {live} live session(s) ended"));
    back(&format!("/ui/users/{}", super::encode(&name)), done)
}

/// A new token is shown on the page this once (never put in a URL).
async fn new_token(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    Path(name): Path<String>,
    f: Fields,
) -> Response {
    if let Some(r) = viewer.refused(&f) {
        return r;
    }
    let new = NewToken {
        user: Some(name.clone()),
        name: f.get("name"),
        expires: f.some("expires"),
    };
    let mut nav = viewer.nav("users", &Query::default());
    let made = tokens::create(
        axum::extract::State(s.api.clone()),
        viewer.caller.clone(),
        Body(new),
    )
    .await;
    match made {
        Ok((_, created)) => {
            nav.notice = Some(format!("token {} created", created.0.meta.name));
            user_page(&s, &viewer, &name, nav, Some(created.0.token)).await
        }
        Err(e) => {
            nav.error = Some(e.message);
            user_page(&s, &viewer, &name, nav, None).await
        }
    }
}

async fn revoke_token(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Q(q): Q<Query>,
    f: Fields,
) -> Response {
    if let Some(r) = viewer.refused(&f) {
        return r;
    }
    let done = tokens::remove(
        axum::extract::State(s.api.clone()),
        viewer.caller.clone(),
        Path(id),
    )
    .await
    .map(|_| "token revoked".to_owned());
    let user = q.get("user").unwrap_or_default();
    back(&format!("/ui/users/{}", super::encode(&user)), done)
}

struct GroupRow {
    name: String,
    members: usize,
    roles: String,
    managed: bool,
}

#[derive(Template)]
#[template(path = "groups.html")]
struct GroupsPage {
    nav: Nav,
    groups: Vec<GroupRow>,
}

/// The resource roles that allow `group`.
fn roles_of(s: &ConsoleState, group: &str) -> Vec<String> {
    let snapshot = s.api.control.snapshot();
    let mut roles: Vec<String> = snapshot
        .resource_roles
        .values()
        .filter(|r| r.allowed_groups.iter().any(|g| g == group))
        .map(|r| r.name.clone())
        .collect();
    roles.sort();
    roles
}

async fn groups(State(s): State<ConsoleState>, viewer: Viewer, Q(q): Q<Query>) -> Response {
    let nav = viewer.nav("groups", &q);
    let all = match catalog::list_groups(axum::extract::State(s.api.clone()), viewer.caller.clone())
        .await
    {
        Ok(g) => g.0,
        Err(e) => return error_page(nav, e),
    };
    let rows = all
        .into_iter()
        .map(|g| GroupRow {
            members: g.members.len(),
            roles: roles_of(&s, &g.name).join(", "),
            name: g.name,
            managed: g.managed,
        })
        .collect();
    page(&GroupsPage { nav, groups: rows })
}

#[derive(Template)]
#[template(path = "group.html")]
struct GroupPage {
    nav: Nav,
    name: String,
    members: Vec<String>,
    roles: Vec<String>,
}

async fn group(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Q(q): Q<Query>,
) -> Response {
    let nav = viewer.nav("groups", &q);
    let api = axum::extract::State(s.api.clone());
    match catalog::show_group(api, viewer.caller.clone(), Path(name.clone())).await {
        Ok(g) => page(&GroupPage {
            nav,
            roles: roles_of(&s, &name),
            members: g.0.members,
            name,
        }),
        Err(e) => error_page(nav, e),
    }
}

async fn create_group(State(s): State<ConsoleState>, viewer: Viewer, f: Fields) -> Response {
    if let Some(r) = viewer.refused(&f) {
        return r;
    }
    let name = f.get("name");
    let new = NewGroup { name: name.clone() };
    let done = catalog::create_group(
        axum::extract::State(s.api.clone()),
        viewer.caller.clone(),
        Body(new),
    )
    .await
    .map(|_| format!("group {name} created"));
    back("/ui/groups", done)
}

async fn delete_group(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    Path(name): Path<String>,
    f: Fields,
) -> Response {
    delete_via(
        &s,
        &viewer,
        &f,
        ("group", name, "/ui/groups"),
        catalog::delete_group,
    )
    .await
}
