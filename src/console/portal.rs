//! The developer portal: the resource roles the user can use and how to connect; for
//! `web` mode a SQL editor with results as tables; for `runbooks` a form drawn from the
//! runbook's parameter schema. Runs go through the API's handlers (same decision, same
//! session, same approvals).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query as Q, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde_json::Value;

use super::people::error_page;
use super::signin::Viewer;
use super::{ConsoleState, Fields, Nav, Query, page};
use crate::admin::{ApiError, ClientAddr, oneoffs};
use crate::api::{ExecRequest, RunAnswer, RunbookRun, StatementResult};
use crate::model::{AccessMode, Protocol};
use crate::runbook::Runbook;

pub fn routes() -> Router<ConsoleState> {
    Router::new()
        .route("/ui/portal", get(portal))
        .route("/ui/portal/sql/{role}", get(editor).post(run_sql))
        .route(
            "/ui/portal/runbooks/{name}",
            get(runbook_form).post(run_runbook),
        )
}

struct RoleRow {
    name: String,
    resource: String,
    protocol: &'static str,
    modes: String,
    native: bool,
    web: bool,
    connect: String,
}

struct RunbookRow {
    name: String,
    description: String,
    roles: String,
}

#[derive(Template)]
#[template(path = "portal.html")]
struct PortalPage {
    nav: Nav,
    roles: Vec<RoleRow>,
    runbooks: Vec<RunbookRow>,
}

/// How a client connects natively to `role` through this gateway.
fn connect(s: &ConsoleState, user: &str, role: &str, protocol: Protocol) -> String {
    let (postgres, mysql) = s.api.listening.get().copied().unwrap_or_default();
    match (protocol, postgres, mysql) {
        (Protocol::Postgres, Some(a), _) => format!(
            "psql \"host={} port={} user={user} dbname={role}\"",
            a.ip(),
            a.port()
        ),
        (Protocol::Mysql, _, Some(a)) => {
            format!("mysql -h {} -P {} -u {user} -p -D {role}", a.ip(), a.port())
        }
        _ => "(no listener for this protocol)".into(),
    }
}

async fn portal(State(s): State<ConsoleState>, viewer: Viewer, Q(q): Q<Query>) -> Response {
    let nav = viewer.nav("portal", &q);
    let snapshot = s.api.control.snapshot();
    let me = viewer.caller.name().to_owned();
    let mut roles: Vec<RoleRow> = snapshot
        .resource_roles
        .values()
        .filter_map(|r| {
            let modes = crate::access::reachable_modes(&snapshot, &me, &r.name);
            let resource = snapshot.resources.get(&r.resource)?;
            (!modes.is_empty()).then(|| RoleRow {
                name: r.name.clone(),
                resource: resource.name.clone(),
                protocol: resource.protocol.as_str(),
                modes: modes
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                native: modes.contains(&AccessMode::Native),
                web: modes.contains(&AccessMode::Web),
                connect: connect(&s, &me, &r.name, resource.protocol),
            })
        })
        .collect();
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    let api = axum::extract::State(s.api.clone());
    let runbooks = match oneoffs::list_runbooks(api, viewer.caller.clone()).await {
        Ok(r) => r.0,
        Err(e) => return error_page(nav, e),
    };
    let runbooks = runbooks
        .into_iter()
        .filter(|r| !runnable_roles(&s, &viewer, r).is_empty())
        .map(|r| RunbookRow {
            roles: runnable_roles(&s, &viewer, &r).join(", "),
            name: r.name,
            description: r.description,
        })
        .collect();
    page(&PortalPage {
        nav,
        roles,
        runbooks,
    })
}

/// The resource roles the viewer may run `runbook` on.
fn runnable_roles(s: &ConsoleState, viewer: &Viewer, runbook: &Runbook) -> Vec<String> {
    let snapshot = s.api.control.snapshot();
    let mut roles: Vec<String> = snapshot
        .resource_roles
        .keys()
        .filter(|role| oneoffs::runnable_on(&snapshot, &viewer.caller, runbook, role))
        .cloned()
        .collect();
    roles.sort();
    roles
}

/// A result as the page shows it.
struct Shown {
    statement: String,
    duration: String,
    error: Option<String>,
    columns: Vec<(String, String)>,
    rows: Vec<Vec<String>>,
    count: String,
    truncated: bool,
    notices: Vec<String>,
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn shown(r: StatementResult) -> Shown {
    let n = r.rows.len();
    let count = if !r.columns.is_empty() {
        format!("{n} row{}", if n == 1 { "" } else { "s" })
    } else {
        match r.rows_affected {
            Some(a) => format!("OK, {a} row{} affected", if a == 1 { "" } else { "s" }),
            None => "OK".into(),
        }
    };
    Shown {
        duration: format!("{:.1} ms", r.duration_us as f64 / 1000.0),
        error: r.error.map(|e| format!("{}: {}", e.code, e.message)),
        columns: r
            .columns
            .into_iter()
            .map(|c| (c.name, c.type_name))
            .collect(),
        rows: r
            .rows
            .iter()
            .map(|row| row.iter().map(cell).collect())
            .collect(),
        count,
        truncated: r.truncated,
        notices: r.notices,
        statement: r.statement,
    }
}

struct Held {
    id: String,
    rule: String,
    needed: u32,
}

/// What a run leaves on the page.
#[derive(Default)]
struct Outcome {
    results: Vec<Shown>,
    held: Option<Held>,
    run_error: Option<String>,
}

fn outcome(answer: Result<RunAnswer, ApiError>) -> Outcome {
    match answer {
        Ok(RunAnswer::Ran(done)) => Outcome {
            results: done.results.into_iter().map(shown).collect(),
            ..Outcome::default()
        },
        Ok(RunAnswer::Held(view)) => Outcome {
            held: Some(Held {
                id: view.request.id.clone(),
                rule: view.request.rule.clone(),
                needed: view.approvals_needed,
            }),
            ..Outcome::default()
        },
        Err(e) => Outcome {
            run_error: Some(e.message),
            ..Outcome::default()
        },
    }
}

#[derive(Template)]
#[template(path = "sql.html")]
struct SqlPage {
    nav: Nav,
    role: String,
    statement: String,
    max_rows: String,
    timeout: String,
    results: Vec<Shown>,
    held: Option<Held>,
    run_error: Option<String>,
}

#[derive(Template)]
#[template(path = "results.html")]
struct ResultsPart {
    results: Vec<Shown>,
    held: Option<Held>,
    run_error: Option<String>,
}

async fn editor(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    Path(role): Path<String>,
    Q(q): Q<Query>,
) -> Response {
    let config = s.api.control.config();
    page(&SqlPage {
        nav: viewer.nav("portal", &q),
        role,
        statement: String::new(),
        max_rows: config.oneoffs.max_rows.to_string(),
        timeout: crate::clock::human_duration(config.oneoffs.timeout.as_secs()),
        results: Vec::new(),
        held: None,
        run_error: None,
    })
}

async fn run_sql(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    ClientAddr(client): ClientAddr,
    Path(role): Path<String>,
    headers: HeaderMap,
    f: Fields,
) -> Response {
    if let Some(r) = viewer.refused(&f) {
        return r;
    }
    let req = ExecRequest {
        statement: f.get("statement"),
        params: Vec::new(),
        max_rows: f.get("max_rows").parse().ok(),
        timeout: f.some("timeout"),
        application_name: Some("portcullis-console".into()),
        reason: f.get("reason"),
    };
    let statement = req.statement.clone();
    let o = outcome(oneoffs::exec_answer(&s.api, &viewer.caller, client, role.clone(), req).await);
    if headers.contains_key("hx-request") {
        return page(&ResultsPart {
            results: o.results,
            held: o.held,
            run_error: o.run_error,
        });
    }
    page(&SqlPage {
        nav: viewer.nav("portal", &Query::default()),
        role,
        statement,
        max_rows: f.get("max_rows"),
        timeout: f.get("timeout"),
        results: o.results,
        held: o.held,
        run_error: o.run_error,
    })
}

/// A parameter as the form draws it.
struct ParamField {
    name: String,
    kind: &'static str,
    input: &'static str,
    required: bool,
    default: String,
    values: Vec<String>,
    min: Option<f64>,
    max: Option<f64>,
    description: String,
}

#[derive(Template)]
#[template(path = "runbook.html")]
struct RunbookPage {
    nav: Nav,
    name: String,
    description: String,
    roles: Vec<String>,
    params: Vec<ParamField>,
    statements: Vec<String>,
    results: Vec<Shown>,
    held: Option<Held>,
    run_error: Option<String>,
}

fn fields_of(r: &Runbook) -> Vec<ParamField> {
    r.params
        .iter()
        .map(|p| ParamField {
            name: p.name.clone(),
            kind: p.type_name,
            input: match p.type_name {
                "integer" => "number",
                "date" => "date",
                "timestamp" => "datetime-local",
                _ => "text",
            },
            required: p.required,
            default: p.default.as_ref().map(cell).unwrap_or_default(),
            values: p.values.clone(),
            min: p.min,
            max: p.max,
            description: p.description.clone(),
        })
        .collect()
}

async fn runbook_page(
    s: &ConsoleState,
    viewer: &Viewer,
    name: &str,
    nav: Nav,
    o: Outcome,
) -> Response {
    let runbook = match oneoffs::find(&s.api, &viewer.caller, name) {
        Ok(r) => r,
        Err(e) => return error_page(nav, e),
    };
    page(&RunbookPage {
        nav,
        name: runbook.name.clone(),
        description: runbook.description.clone(),
        roles: runnable_roles(s, viewer, &runbook),
        params: fields_of(&runbook),
        statements: runbook
            .statements
            .iter()
            .map(|st| st.text.clone())
            .collect(),
        results: o.results,
        held: o.held,
        run_error: o.run_error,
    })
}

async fn runbook_form(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Q(q): Q<Query>,
) -> Response {
    let nav = viewer.nav("portal", &q);
    runbook_page(&s, &viewer, &name, nav, Outcome::default()).await
}

async fn run_runbook(
    State(s): State<ConsoleState>,
    viewer: Viewer,
    ClientAddr(client): ClientAddr,
    Path(name): Path<String>,
    headers: HeaderMap,
    f: Fields,
) -> Response {
    if let Some(r) = viewer.refused(&f) {
        return r;
    }
    let params =
        f.0.iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("p.")?.to_owned(), v.trim().to_owned())))
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k, Value::from(v)))
            .collect();
    let req = RunbookRun {
        resource_role: f.get("resource_role"),
        params,
        max_rows: None,
        timeout: None,
        application_name: Some(format!("portcullis-console runbook {name}")),
        reason: f.get("reason"),
    };
    let o =
        outcome(oneoffs::runbook_answer(&s.api, &viewer.caller, client, name.clone(), req).await);
    if headers.contains_key("hx-request") {
        return page(&ResultsPart {
            results: o.results,
            held: o.held,
            run_error: o.run_error,
        });
    }
    let nav = viewer.nav("portal", &Query::default());
    runbook_page(&s, &viewer, &name, nav, o).await
}
