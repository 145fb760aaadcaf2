//! Access requests: the request form, the user's own requests (withdraw, run an approved
//! command once), and for approvers the queue of requests waiting for their vote.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query as Q, State};
use axum::response::Response;
use axum::routing::{get, post};

use super::people::{error_page, when};
use super::signin::Viewer;
use super::{ConsoleState, Fields, Nav, Query, back, page};
use crate::admin::{Body, ClientAddr, requests};
use crate::api::{Decision, NewAccessRequest};
use crate::model::{AccessRequestView, HeldWork, RequestKind, RequestStatus};

pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/ui/requests", get(list).post(ask))
        .route("/ui/requests/{id}/{action}", post(act))
}

struct Row {
    id: String,
    created: String,
    requester: String,
    role: String,
    kind: &'static str,
    what: String,
    reason: String,
    status: &'static str,
    votes: String,
    until: String,
    open: bool,
    runnable: bool,
    break_glass: bool,
}

fn row(v: AccessRequestView) -> Row {
    let r = v.request;
    let what = match &r.work {
        Some(HeldWork::Statement { statement, .. }) => statement.clone(),
        Some(HeldWork::Runbook { name, .. }) => format!("runbook {name}"),
        None => r
            .duration_s
            .map_or(String::new(), crate::clock::human_duration),
    };
    let open = matches!(r.status, RequestStatus::Pending | RequestStatus::Approved);
    Row {
        created: when(r.created_at),
        kind: r.kind.as_str(),
        status: r.status.as_str(),
        votes: format!("{}/{}", v.approvals, v.approvals_needed),
        until: if open {
            when(r.expires_at)
        } else {
            String::new()
        },
        runnable: r.kind == RequestKind::Command && r.status == RequestStatus::Approved,
        open,
        break_glass: r.break_glass,
        id: r.id,
        requester: r.requester,
        role: r.resource_role,
        what,
        reason: r.reason,
    }
}

#[derive(Template)]
#[template(path = "requests.html")]
struct RequestsPage {
    nav: Nav,
    queue: Vec<Row>,
    mine: Vec<Row>,
    roles: Vec<String>,
}

async fn listing(
    s: &ConsoleState,
    viewer: &Viewer,
    scope: &str,
) -> Result<Vec<AccessRequestView>, crate::admin::ApiError> {
    let listing = requests::Listing::scoped(scope);
    let api = axum::extract::State(s.api.clone());
    Ok(
        requests::list(api, viewer.caller.clone(), axum::extract::Query(listing))
            .await?
            .0,
    )
}

async fn list(State(s): State<ConsoleState>, viewer: Viewer, Q(q): Q<Query>) -> Response {
    let nav = viewer.nav("requests", &q);
    let (queue, mine) = match (
        listing(&s, &viewer, "pending").await,
        listing(&s, &viewer, "mine").await,
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return error_page(nav, e),
    };
    let snapshot = s.api.control.snapshot();
    let user = viewer.caller.0.clone();
    let mut roles: Vec<String> = snapshot
        .resource_roles
        .keys()
        .filter(|r| {
            !crate::access::reachable_modes(&snapshot, &user.name, r).is_empty()
                && crate::access::approval::governing(&snapshot, &user, r, RequestKind::Jit)
                    .is_some()
        })
        .cloned()
        .collect();
    roles.sort();
    page(&RequestsPage {
        nav,
        queue: queue.into_iter().map(row).collect(),
        mine: mine.into_iter().map(row).collect(),
        roles,
    })
}

async fn ask(State(s): State<ConsoleState>, viewer: Viewer, f: Fields) -> Response {
    if let Some(r) = viewer.refused(&f) {
        return r;
    }
    let new = NewAccessRequest {
        resource_role: f.get("resource_role"),
        duration: f.some("duration"),
        reason: f.get("reason"),
    };
    let api = axum::extract::State(s.api.clone());
    let done = requests::create(api, viewer.caller.clone(), Body(new))
        .await
        .map(|(_, v)| format!("request {} is {}", v.0.request.id, v.0.request.status));
    back("/ui/requests", done)
}

async fn act(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    ClientAddr(client): ClientAddr,
    Path((id, action)): Path<(String, String)>,
    f: Fields,
) -> Response {
    if let Some(r) = viewer.refused(&f) {
        return r;
    }
    let api = || axum::extract::State(s.api.clone());
    let caller = viewer.caller.clone();
    let decision = || {
        Body(Decision {
            comment: f.get("comment"),
        })
    };
    let path = || Path(id.clone());
    let done = match action.as_str() {
        "approve" => requests::approve(api(), caller, path(), decision())
            .await
            .map(|v| format!("request is {}", v.0.request.status)),
        "deny" => requests::deny(api(), caller, path(), decision())
            .await
            .map(|_| "request denied".into()),
        "cancel" => requests::cancel(api(), caller, path())
            .await
            .map(|_| "request withdrawn".into()),
        "run" => requests::run(api(), caller, ClientAddr(client), path())
            .await
            .map(|done| match done.0.failed {
                None => format!(
                    "ran: {} statement(s), session {}",
                    done.0.results.len(),
                    done.0.session_id
                ),
                Some(i) => format!("statement {} failed; session {}", i + 1, done.0.session_id),
            }),
        _ => Err(crate::admin::ApiError::not_found("no such action")),
    };
    back("/ui/requests", done)
}
