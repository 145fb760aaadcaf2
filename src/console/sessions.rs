//! Sessions, the auditor's home: live ones first, then the rest newest first, paged
//! server-side, filtered by user, resource role, mode, status, time and statement text;
//! an admin may end a live one. A session's page: its timeline of statements, paged. The
//! monitoring log's last verification, and a button to run one.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query as Q, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::people::{error_page, when};
use super::signin::Viewer;
use super::{ConsoleState, Fields, Nav, Query, back, encode, page};
use crate::admin::{ApiError, ops, sessions};
use crate::model::AccessMode;
use crate::store::{SessionFilter, SessionRecord};

const PAGE: i64 = 50;
const STATEMENTS_PAGE: usize = 100;

pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/ui/sessions", get(list))
        .route("/ui/sessions/{id}", get(show))
        .route("/ui/sessions/{id}/end", post(end))
        .route("/ui/audit/verify", post(verify))
}

/// The filters as the form holds them.
#[derive(Default)]
struct Form {
    user: String,
    resource_role: String,
    mode: String,
    status: String,
    since: String,
    q: String,
}

impl Form {
    fn from(q: &Query) -> Form {
        let get = |k: &str| q.get(k).unwrap_or_default();
        Form {
            user: get("user"),
            resource_role: get("resource_role"),
            mode: get("mode"),
            status: get("status"),
            since: get("since"),
            q: get("q"),
        }
    }

    fn filter(&self, status: &str, limit: i64, offset: i64) -> SessionFilter {
        let some = |v: &String| Some(v.clone()).filter(|v| !v.is_empty());
        SessionFilter {
            user: some(&self.user),
            resource_role: some(&self.resource_role),
            mode: some(&self.mode),
            status: Some(status.to_owned()),
            since: self
                .since
                .parse::<i64>()
                .ok()
                .map(|s| crate::clock::now() - s),
            until: None,
            limit: Some(limit),
            offset: Some(offset),
            q: some(&self.q),
        }
    }

    /// This page's query string with `page` set.
    fn link(&self, page: i64) -> String {
        format!(
            "/ui/sessions?user={}&resource_role={}&mode={}&status={}&since={}&q={}&page={page}",
            encode(&self.user),
            encode(&self.resource_role),
            encode(&self.mode),
            encode(&self.status),
            encode(&self.since),
            encode(&self.q)
        )
    }
}

struct Row {
    id: String,
    started: String,
    user: String,
    resource_role: String,
    mode: String,
    client: String,
    application: String,
    statements: i64,
    live: bool,
    ended: String,
}

fn row(r: SessionRecord) -> Row {
    Row {
        started: when(r.started_at),
        live: r.ended_at.is_none(),
        ended: r.ended_at.map(when).unwrap_or_default(),
        id: r.id,
        user: r.user,
        resource_role: r.resource_role,
        mode: r.mode,
        client: r.client_addr,
        application: r.application_name,
        statements: r.statements,
    }
}

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    nav: Nav,
    f: Form,
    sessions: Vec<Row>,
    modes: &'static [&'static str],
    windows: Vec<(String, &'static str)>,
    page: i64,
    more: bool,
    prev: String,
    next: String,
    verify: Option<(String, bool, String)>,
}

async fn fetch(
    s: &ConsoleState,
    viewer: &Viewer,
    f: SessionFilter,
) -> Result<Vec<SessionRecord>, ApiError> {
    let api = axum::extract::State(s.api.clone());
    Ok(
        sessions::list(api, viewer.caller.clone(), axum::extract::Query(f))
            .await?
            .0,
    )
}

async fn list(State(s): State<ConsoleState>, viewer: Viewer, Q(q): Q<Query>) -> Response {
    let nav = viewer.nav("sessions", &q);
    let f = Form::from(&q);
    let page_no = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1i64)
        .max(1);
    let offset = (page_no - 1) * PAGE;
    let paged = if f.status == "live" { "live" } else { "ended" };
    let found = async {
        let mut rows = Vec::new();
        if f.status.is_empty() && page_no == 1 {
            rows = fetch(&s, &viewer, f.filter("live", 500, 0)).await?;
        }
        let mut more = fetch(&s, &viewer, f.filter(paged, PAGE + 1, offset)).await?;
        let has_more = more.len() as i64 > PAGE;
        more.truncate(PAGE as usize);
        rows.extend(more);
        Ok::<_, ApiError>((rows, has_more))
    };
    let (rows, more) = match found.await {
        Ok(r) => r,
        Err(e) => return error_page(nav, e),
    };
    let windows = [
        ("", "any time"),
        ("3600", "the last hour"),
        ("86400", "the last day"),
        ("604800", "the last 7 days"),
        ("2592000", "the last 30 days"),
    ]
    .map(|(v, l)| (v.to_owned(), l))
    .into();
    page(&SessionsPage {
        nav,
        prev: f.link(page_no - 1),
        next: f.link(page_no + 1),
        f,
        sessions: rows.into_iter().map(row).collect(),
        modes: AccessMode::ALL,
        windows,
        page: page_no,
        more,
        verify: s.verified(),
    })
}

struct Statement {
    n: usize,
    ts: String,
    text: String,
    params: String,
    duration: String,
    rows: u64,
    error: String,
}

#[derive(Template)]
#[template(path = "session.html")]
struct SessionPage {
    nav: Nav,
    s: SessionRecord,
    started: String,
    ended: String,
    statements: Vec<Statement>,
    total: usize,
    page: usize,
    pages: usize,
}

fn statement(n: usize, v: &serde_json::Value) -> Statement {
    let params = match &v["params"] {
        serde_json::Value::Array(p) => p
            .iter()
            .map(|x| x.as_str().map_or("NULL".to_owned(), |s| format!("'{s}'")))
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    };
    let us = v["duration_us"].as_u64().unwrap_or(0);
    Statement {
        n,
        ts: v["ts"].as_str().unwrap_or_default().replace('T', " "),
        text: v["statement"].as_str().unwrap_or_default().to_owned(),
        params,
        duration: if us >= 1000 {
            format!("{:.1} ms", us as f64 / 1000.0)
        } else {
            format!("{us} µs")
        },
        rows: v["rows"].as_u64().unwrap_or(0),
        error: v["error_code"].as_str().unwrap_or_default().to_owned(),
    }
}

async fn show(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Q(q): Q<Query>,
) -> Response {
    let nav = viewer.nav("sessions", &q);
    let api = axum::extract::State(s.api.clone());
    let detail = match sessions::show(api, viewer.caller.clone(), Path(id)).await {
        Ok(d) => d.0,
        Err(e) => return error_page(nav, e),
    };
    let total = detail.statements.len();
    let pages = total.div_ceil(STATEMENTS_PAGE).max(1);
    let page_no = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1usize)
        .clamp(1, pages);
    let first = (page_no - 1) * STATEMENTS_PAGE;
    let statements = detail
        .statements
        .iter()
        .enumerate()
        .skip(first)
        .take(STATEMENTS_PAGE)
        .map(|(i, v)| statement(i + 1, v))
        .collect();
    let s_rec = detail.session;
    page(&SessionPage {
        nav,
        started: when(s_rec.started_at),
        ended: s_rec.ended_at.map(when).unwrap_or_default(),
        s: s_rec,
        statements,
        total,
        page: page_no,
        pages,
    })
}

async fn end(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    Path(id): Path<String>,
    f: Fields,
) -> Response {
    if let Some(r) = viewer.refused(&f) {
        return r;
    }
    let api = axum::extract::State(s.api.clone());
    let done = sessions::end(api, viewer.caller.clone(), Path(id.clone()))
        .await
        .map(|_| "the session was told to end".to_owned());
    back(&format!("/ui/sessions/{}", encode(&id)), done)
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPart {
    nav: Nav,
    verify: Option<(String, bool, String)>,
}

/// Runs `audit verify` (the API's, role-checked) and keeps its outcome for the page.
async fn verify(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    headers: axum::http::HeaderMap,
    f: Fields,
) -> Response {
    if let Some(r) = viewer.refused(&f) {
        return r;
    }
    let api = axum::extract::State(s.api.clone());
    let outcome = match ops::verify(api, viewer.caller.clone()).await {
        Ok(report) => {
            let r = report.0;
            let summary = match &r.first_error {
                Some(e) => format!("{} lines in {} files; first problem: {e}", r.lines, r.files),
                None => format!(
                    "{} lines in {} files, {} signed checkpoints",
                    r.lines, r.files, r.checkpoints
                ),
            };
            (when(crate::clock::now()), r.ok, summary)
        }
        Err(e) => return back("/ui/sessions", Err(e)),
    };
    if let Ok(mut last) = s.verify.lock() {
        *last = Some(outcome);
    }
    if headers.contains_key("hx-request") {
        let nav = viewer.nav("sessions", &Query::default());
        return page(&VerifyPart {
            nav,
            verify: s.verified(),
        })
        .into_response();
    }
    back("/ui/sessions", Ok("the monitoring log was verified".into()))
}
