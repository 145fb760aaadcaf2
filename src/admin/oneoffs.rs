//! One-offs and runbooks over the API: `POST /api/resource-roles/{name}/exec` (`web`
//! mode), `GET /api/runbooks` (those the caller may run, with their parameters: enough to
//! draw a form), `GET /api/runbooks/{name}`, `POST /api/runbooks/{name}/run` (`runbooks`
//! mode). Each run is a session (`crate::oneoff`); the answer is its results.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiState, Body, Caller, ClientAddr, Failures};
use crate::access::Denied;
use crate::api::{ExecRequest, Executed, RunAnswer, RunbookRun};
use crate::config::OneoffsConfig;
use crate::model::{AccessRequestView, HeldWork, RequestKind};
use crate::oneoff::{self, Job, RunError, Work};
use crate::protocol::exec::Bind;
use crate::requests::{self, Ask, RequestError};
use crate::runbook::Runbook;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(exec))
        .routes(routes!(list_runbooks))
        .routes(routes!(show_runbook))
        .routes(routes!(run_runbook))
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> ApiError {
        match e {
            RequestError::Forbidden(m) => ApiError::forbidden(m),
            RequestError::Invalid(m) => ApiError::invalid(m),
            RequestError::Conflict(m) => ApiError::conflict(m),
            RequestError::Store(e) => e.into(),
        }
    }
}

impl From<RunError> for ApiError {
    fn from(e: RunError) -> ApiError {
        match e {
            RunError::Denied(_) => ApiError::forbidden(
                "you may not run this on that resource role (the monitoring log has the reason)",
            ),
            RunError::LockedOut(m) => ApiError::too_many(m),
            RunError::Invalid(m) => ApiError::invalid(m),
            RunError::Params(problems) => ApiError::invalid(
                problems
                    .iter()
                    .map(|(name, why)| format!("parameter `{name}` {why}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            RunError::LogUnavailable | RunError::StoreStale(_) => {
                ApiError::unavailable(e.to_string())
            }
            RunError::Upstream(u) => {
                ApiError::bad_gateway(format!("{u}; the monitoring log has the reason"))
            }
        }
    }
}

/// The request's limits within the config's bounds.
fn limits(
    s: &ApiState,
    max_rows: Option<usize>,
    timeout: Option<&str>,
) -> Result<(usize, Duration), ApiError> {
    let defaults = s.control.config().oneoffs.clone();
    let max_rows = max_rows.unwrap_or(defaults.max_rows);
    if max_rows == 0 || max_rows > OneoffsConfig::MAX_ROWS {
        return Err(ApiError::invalid(format!(
            "max_rows is between 1 and {}",
            OneoffsConfig::MAX_ROWS
        )));
    }
    let timeout = match timeout {
        None => defaults.timeout,
        Some(t) => crate::config::parse_duration(t).map_err(ApiError::invalid)?,
    };
    if timeout.is_zero() || timeout > OneoffsConfig::MAX_TIMEOUT {
        return Err(ApiError::invalid("timeout is more than 0s and at most 1h"));
    }
    Ok((max_rows, timeout))
}

/// A job within the request's limits.
fn job(
    s: &ApiState,
    resource_role: String,
    work: Work,
    (max_rows, timeout): (Option<usize>, Option<&str>),
    application_name: String,
    client: std::net::SocketAddr,
) -> Result<Job, ApiError> {
    let (max_rows, timeout) = limits(s, max_rows, timeout)?;
    Ok(Job {
        resource_role,
        work,
        approved: None,
        max_rows,
        timeout,
        application_name,
        client,
    })
}

/// Runs `job`; a resource role that holds commands for approval gets a pending request
/// holding exactly `held` instead (202).
pub(crate) async fn run(
    s: &ApiState,
    caller: &Caller,
    job: Job,
    held: HeldWork,
    reason: String,
) -> Result<RunAnswer, ApiError> {
    let role = job.resource_role.clone();
    match oneoff::run(&s.0, &caller.1, job).await {
        Ok(done) => Ok(RunAnswer::Ran(done)),
        Err(RunError::Denied(Denied::ApprovalRequired {
            kind: RequestKind::Command,
            ..
        })) => {
            let ask = Ask {
                resource_role: role,
                kind: RequestKind::Command,
                reason,
                duration: None,
                work: Some(held),
            };
            let request = requests::create(&s.0, &caller.0, ask).await?;
            let view = requests::view(&s.control.snapshot(), request);
            Ok(RunAnswer::Held(Box::new(view)))
        }
        Err(RunError::Denied(Denied::ApprovalRequired { kind, .. })) => Err(ApiError::forbidden(
            crate::session::approval_guidance(&role, kind),
        )),
        Err(e) => Err(e.into()),
    }
}

/// 200 with the results, or 202 with the request that holds the run.
fn respond(answer: RunAnswer) -> Response {
    match answer {
        ran @ RunAnswer::Ran(_) => Json(ran).into_response(),
        held @ RunAnswer::Held(_) => (StatusCode::ACCEPTED, Json(held)).into_response(),
    }
}

/// A JSON value as a bound parameter.
fn bind(v: &Value) -> Result<Bind, ApiError> {
    Ok(match v {
        Value::Null => Bind::Null,
        Value::Bool(b) => Bind::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Bind::Int(i),
            None => Bind::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Bind::Text(s.clone()),
        _ => {
            return Err(ApiError::invalid(
                "a parameter is a string, number, boolean or null",
            ));
        }
    })
}

/// Runs one-off statements on a resource role (`web` mode); a session of its own. On a
/// resource role whose commands need approval: 202 with the pending request.
#[utoipa::path(post, path = "/api/resource-roles/{name}/exec", tag = "one-offs",
    params(("name" = String, Path, description = "resource role name")),
    request_body = ExecRequest,
    responses((status = 200, body = Executed), (status = 202, body = AccessRequestView), Failures))]
pub(crate) async fn exec(
    State(s): State<ApiState>,
    caller: Caller,
    ClientAddr(client): ClientAddr,
    Path(name): Path<String>,
    Body(req): Body<ExecRequest>,
) -> Result<Response, ApiError> {
    exec_answer(&s, &caller, client, name, req)
        .await
        .map(respond)
}

/// A one-off's answer (the console shows it as a page).
pub(crate) async fn exec_answer(
    s: &ApiState,
    caller: &Caller,
    client: std::net::SocketAddr,
    name: String,
    req: ExecRequest,
) -> Result<RunAnswer, ApiError> {
    let params = req.params.iter().map(bind).collect::<Result<_, _>>()?;
    let held = HeldWork::Statement {
        statement: req.statement.clone(),
        params: req.params,
    };
    let work = Work::Text {
        text: req.statement,
        params,
    };
    let app = req
        .application_name
        .unwrap_or_else(|| "portcullis-exec".into());
    let limits = (req.max_rows, req.timeout.as_deref());
    let job = job(s, name, work, limits, app, client)?;
    run(s, caller, job, held, req.reason).await
}

/// The runbooks the caller may run on some resource role (admins and auditors: all).
#[utoipa::path(get, path = "/api/runbooks", tag = "runbooks",
    responses((status = 200, body = Vec<Runbook>), Failures))]
pub(crate) async fn list_runbooks(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<Runbook>>, ApiError> {
    let catalog = s.control.runbooks();
    Ok(Json(
        catalog
            .runbooks
            .values()
            .filter(|r| caller.is_reader() || runnable(&s, &caller, r))
            .map(|r| (**r).clone())
            .collect(),
    ))
}

/// Whether the caller may run `runbook` on `role`, now or once a command is approved.
pub(crate) fn runnable_on(
    snapshot: &crate::snapshot::Snapshot,
    caller: &Caller,
    runbook: &Runbook,
    role: &str,
) -> bool {
    use crate::access::Denied;
    use crate::model::RequestKind;
    match crate::access::decide_runbook(snapshot, &caller.1, runbook, role, None) {
        Ok(_) => true,
        Err(Denied::ApprovalRequired { kind, .. }) => kind == RequestKind::Command,
        Err(_) => false,
    }
}

/// Whether the caller may run `runbook` on at least one resource role.
fn runnable(s: &ApiState, caller: &Caller, runbook: &Runbook) -> bool {
    let snapshot = s.control.snapshot();
    snapshot
        .resource_roles
        .keys()
        .any(|role| runnable_on(&snapshot, caller, runbook, role))
}

pub(crate) fn find(s: &ApiState, caller: &Caller, name: &str) -> Result<Arc<Runbook>, ApiError> {
    s.control
        .runbooks()
        .runbooks
        .get(name)
        .filter(|r| caller.is_reader() || runnable(s, caller, r))
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("runbook `{name}` not found")))
}

/// One runbook, with its parameters and statements.
#[utoipa::path(get, path = "/api/runbooks/{name}", tag = "runbooks",
    params(("name" = String, Path, description = "runbook name")),
    responses((status = 200, body = Runbook), Failures))]
pub(crate) async fn show_runbook(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Runbook>, ApiError> {
    Ok(Json((*find(&s, &caller, &name)?).clone()))
}

/// Runs a runbook on a resource role (`runbooks` mode): parameters checked against their
/// types first (422 naming each bad one, nothing run), then bound by the server. On a
/// resource role whose commands need approval: 202 with the pending request.
#[utoipa::path(post, path = "/api/runbooks/{name}/run", tag = "runbooks",
    params(("name" = String, Path, description = "runbook name")),
    request_body = RunbookRun,
    responses((status = 200, body = Executed), (status = 202, body = AccessRequestView), Failures))]
pub(crate) async fn run_runbook(
    State(s): State<ApiState>,
    caller: Caller,
    ClientAddr(client): ClientAddr,
    Path(name): Path<String>,
    Body(req): Body<RunbookRun>,
) -> Result<Response, ApiError> {
    runbook_answer(&s, &caller, client, name, req)
        .await
        .map(respond)
}

/// A runbook run's answer (the console shows it as a page).
pub(crate) async fn runbook_answer(
    s: &ApiState,
    caller: &Caller,
    client: std::net::SocketAddr,
    name: String,
    req: RunbookRun,
) -> Result<RunAnswer, ApiError> {
    let runbook = find(s, caller, &name)?;
    let held = HeldWork::Runbook {
        name: runbook.name.clone(),
        sha256: runbook.sha256.clone(),
        params: req.params.clone(),
    };
    let work = Work::Runbook {
        runbook,
        values: req.params,
    };
    let app = req
        .application_name
        .unwrap_or_else(|| format!("portcullis-runbook {name}"));
    let limits = (req.max_rows, req.timeout.as_deref());
    let job = job(s, req.resource_role, work, limits, app, client)?;
    run(s, caller, job, held, req.reason).await
}

/// The job an approved command request holds.
fn approved_job(
    s: &ApiState,
    taken: &crate::model::AccessRequest,
    client: std::net::SocketAddr,
) -> Result<Job, ApiError> {
    let (work, app) = match taken.work.clone() {
        Some(HeldWork::Statement { statement, params }) => {
            let params = params.iter().map(bind).collect::<Result<_, _>>()?;
            let work = Work::Text {
                text: statement,
                params,
            };
            (work, "portcullis-exec".to_owned())
        }
        Some(HeldWork::Runbook { name, params, .. }) => {
            let runbook = s
                .control
                .runbooks()
                .runbooks
                .get(&name)
                .cloned()
                .ok_or_else(|| ApiError::conflict(format!("runbook `{name}` no longer exists")))?;
            let work = Work::Runbook {
                runbook,
                values: params,
            };
            (work, format!("portcullis-runbook {name}"))
        }
        None => return Err(ApiError::invalid("the request holds nothing to run")),
    };
    let mut job = job(
        s,
        taken.resource_role.clone(),
        work,
        (None, None),
        app,
        client,
    )?;
    job.approved = Some(taken.clone());
    Ok(job)
}

/// The one run of an approved command request (its requester's): exactly what was
/// approved. A runbook whose file changed since is refused.
pub async fn run_approved(
    s: &ApiState,
    caller: &Caller,
    id: &str,
    client: std::net::SocketAddr,
) -> Result<Executed, ApiError> {
    let catalog = s.control.runbooks();
    let current = |name: &str| catalog.runbooks.get(name).cloned();
    let check = |r: &crate::model::AccessRequest| match &r.work {
        Some(HeldWork::Runbook { name, sha256, .. }) => match current(name) {
            Some(now) if now.sha256 == *sha256 => Ok(()),
            Some(_) => Err(RequestError::Conflict(format!(
                "runbook `{name}` changed since it was approved; request the run again"
            ))),
            None => Err(RequestError::Conflict(format!(
                "runbook `{name}` no longer exists"
            ))),
        },
        Some(HeldWork::Statement { .. }) => Ok(()),
        None => Err(RequestError::Invalid(
            "the request holds nothing to run".into(),
        )),
    };
    let taken = requests::take_for_run(&s.0, caller.name(), id, check).await?;
    let job = match approved_job(s, &taken, client) {
        Ok(job) => job,
        Err(e) => {
            requests::untake(&s.0, id).await;
            return Err(e);
        }
    };
    match oneoff::run(&s.0, &caller.1, job).await {
        Ok(done) => {
            requests::executed(&s.0, taken, done.session_id.clone()).await;
            Ok(done)
        }
        Err(e) => {
            requests::untake(&s.0, id).await;
            Err(e.into())
        }
    }
}
