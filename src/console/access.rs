//! Access Control (each resource role's allowed groups, and who can reach what for a
//! user) and the access review (who can reach each role, when they last used it, unused
//! grants highlighted; CSV export).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query as Q, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::catalog::modes_text;
use super::people::{error_page, when};
use super::signin::Viewer;
use super::{ConsoleState, Fields, Nav, Query, back, page};
use crate::admin::{Body, access, resource_roles};
use crate::api::{Grant, Reach, ReviewRow};
use crate::model::AccessMode;

pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/ui/access", get(show))
        .route("/ui/access/{role}/grant", post(grant))
        .route("/ui/access/{role}/revoke", post(revoke))
        .route("/ui/review", get(review))
        .route("/ui/review.csv", get(review_csv))
}

struct RoleRow {
    name: String,
    modes: String,
    groups: Vec<String>,
    managed: bool,
}

struct ReachRow {
    resource_role: String,
    resource: String,
    modes: String,
    via: String,
}

#[derive(Template)]
#[template(path = "access.html")]
struct AccessPage {
    nav: Nav,
    roles: Vec<RoleRow>,
    all_groups: Vec<String>,
    users: Vec<String>,
    user: String,
    reach: Vec<ReachRow>,
}

fn modes(m: &[AccessMode]) -> String {
    m.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
}

async fn show(State(s): State<ConsoleState>, viewer: Viewer, Q(q): Q<Query>) -> Response {
    let nav = viewer.nav("access", &q);
    let api = || axum::extract::State(s.api.clone());
    let roles = match resource_roles::list(api(), viewer.caller.clone()).await {
        Ok(r) => r.0,
        Err(e) => return error_page(nav, e),
    };
    let user = q.get("user").unwrap_or_default();
    let reach: Vec<Reach> = if user.is_empty() {
        Vec::new()
    } else {
        let filter = access::Filter {
            user: Some(user.clone()),
            resource_role: None,
        };
        match access::reach(api(), viewer.caller.clone(), axum::extract::Query(filter)).await {
            Ok(r) => r.0,
            Err(e) => return error_page(nav, e),
        }
    };
    let snapshot = s.api.control.snapshot();
    let mut all_groups: Vec<String> = snapshot.groups.iter().cloned().collect();
    all_groups.sort();
    let mut users: Vec<String> = snapshot.users.keys().cloned().collect();
    users.sort();
    page(&AccessPage {
        nav,
        roles: roles
            .into_iter()
            .map(|r| RoleRow {
                modes: modes_text(&r.access_modes),
                groups: r.allowed_groups.clone(),
                name: r.role.name,
                managed: r.managed,
            })
            .collect(),
        all_groups,
        users,
        user,
        reach: reach
            .into_iter()
            .map(|r| ReachRow {
                modes: modes(&r.modes),
                via: r.via.join(", "),
                resource_role: r.resource_role,
                resource: r.resource,
            })
            .collect(),
    })
}

async fn grant(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    Path(role): Path<String>,
    f: Fields,
) -> Response {
    if let Some(r) = viewer.refused(&f) {
        return r;
    }
    let group = f.get("group");
    let body = Grant {
        group: group.clone(),
    };
    let api = axum::extract::State(s.api.clone());
    let done = resource_roles::grant(api, viewer.caller.clone(), Path(role.clone()), Body(body))
        .await
        .map(|_| format!("{group} may now use {role}"));
    back("/ui/access", done)
}

async fn revoke(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    Path(role): Path<String>,
    f: Fields,
) -> Response {
    if let Some(r) = viewer.refused(&f) {
        return r;
    }
    let group = f.get("group");
    let api = axum::extract::State(s.api.clone());
    let done = resource_roles::revoke(
        api,
        viewer.caller.clone(),
        Path((role.clone(), group.clone())),
    )
    .await
    .map(|_| format!("{group} may no longer use {role}"));
    back("/ui/access", done)
}

struct ReviewLine {
    resource_role: String,
    user: String,
    modes: String,
    via: String,
    last_used: String,
    unused: bool,
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    nav: Nav,
    rows: Vec<ReviewLine>,
    unused: usize,
    unused_for: String,
}

async fn rows(
    s: &ConsoleState,
    viewer: &Viewer,
    unused_for: &str,
) -> Result<Vec<ReviewRow>, crate::admin::ApiError> {
    let filter = access::ReviewFilter {
        unused_for: Some(unused_for.to_owned()),
        resource_role: None,
    };
    let api = axum::extract::State(s.api.clone());
    Ok(
        access::review(api, viewer.caller.clone(), axum::extract::Query(filter))
            .await?
            .0,
    )
}

async fn review(State(s): State<ConsoleState>, viewer: Viewer, Q(q): Q<Query>) -> Response {
    let nav = viewer.nav("review", &q);
    let unused_for = q.get("unused_for").unwrap_or_else(|| "90d".into());
    let all = match rows(&s, &viewer, &unused_for).await {
        Ok(r) => r,
        Err(e) => return error_page(nav, e),
    };
    let lines: Vec<ReviewLine> = all
        .into_iter()
        .map(|r| ReviewLine {
            modes: modes(&r.modes),
            via: r.via.join(", "),
            last_used: r.last_used_at.map_or("never".into(), when),
            unused: r.unused,
            resource_role: r.resource_role,
            user: r.user,
        })
        .collect();
    page(&ReviewPage {
        nav,
        unused: lines.iter().filter(|l| l.unused).count(),
        rows: lines,
        unused_for,
    })
}

async fn review_csv(State(s): State<ConsoleState>, viewer: Viewer, Q(q): Q<Query>) -> Response {
    let unused_for = q.get("unused_for").unwrap_or_else(|| "90d".into());
    let all = match rows(&s, &viewer, &unused_for).await {
        Ok(r) => r,
        Err(e) => return (e.status, e.message).into_response(),
    };
    let header_row: Vec<String> = [
        "resource_role",
        "resource",
        "user",
        "modes",
        "via",
        "last_used_at",
        "unused",
    ]
    .map(str::to_owned)
    .into();
    let cells: Vec<Vec<String>> = all
        .into_iter()
        .map(|r| {
            vec![
                r.resource_role,
                r.resource,
                r.user,
                modes(&r.modes),
                r.via.join(" "),
                r.last_used_at.map_or(String::new(), when),
                r.unused.to_string(),
            ]
        })
        .collect();
    let csv = crate::cli::table::csv(&header_row, &cells);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"access-review.csv\"",
            ),
        ],
        csv,
    )
        .into_response()
}
