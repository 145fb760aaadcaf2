//! One-offs (`web` mode) and runbook runs (`runbooks` mode): statements run for a user
//! through the HTTP API. Each is a session like a native one — the same access decision
//! (`access::decide` / `decide_runbook`), lockout and fail-closed log, the same admission
//! and lifecycle (`session_started`, one `query` event per statement, exactly one
//! `session_ended`), the same upstream login and kept connections (`Upstreams::login`).
//! Only the client side differs: the statements come from the request, run one at a time
//! (stopping at the first error), with parameters bound by the server; a statement past
//! its timeout, or a session ended by an admin, is cancelled on the server.

mod runner;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::access::{self, Denied, Identity, Permit};
pub use crate::api::Executed;
use crate::audit::{Common, Kind, RunbookRef};
use crate::metrics::Metrics;
use crate::model::{AccessMode, Protocol};
use crate::protocol::exec::Bind;
use crate::runbook::Runbook;
use crate::session::{Admitted, Gateway};
use crate::upstream::{MysqlUpstream, PostgresUpstream, UpstreamError};

/// What to run, where, within which limits.
pub struct Job {
    pub resource_role: String,
    pub work: Work,
    /// An approved per-command request this job is the one run of.
    pub approved: Option<crate::model::AccessRequest>,
    pub max_rows: usize,
    pub timeout: Duration,
    pub application_name: String,
    pub client: SocketAddr,
}

pub enum Work {
    /// A one-off: text of one or more statements; parameters only with a single one.
    Text { text: String, params: Vec<Bind> },
    /// A runbook with the values of its parameters.
    Runbook {
        runbook: Arc<Runbook>,
        values: serde_json::Map<String, serde_json::Value>,
    },
}

/// Why nothing ran.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("access denied: {0}")]
    Denied(#[from] Denied),
    #[error("{0}")]
    LockedOut(String),
    #[error("{0}")]
    Invalid(String),
    /// A runbook's parameters: each problem by parameter name.
    #[error("invalid parameters")]
    Params(Vec<(String, String)>),
    #[error("the monitoring log cannot be written; refusing new sessions (fail closed)")]
    LogUnavailable,
    #[error("the store has not been reached for {0}s; refusing new sessions (fail closed)")]
    StoreStale(u64),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

/// Runs `job` for `identity`.
pub async fn run(gw: &Arc<Gateway>, identity: &Identity, job: Job) -> Result<Executed, RunError> {
    let mut common = Common::new(
        &uuid::Uuid::new_v4().to_string(),
        crate::audit::Channel::Http,
        job.client,
    );
    common.user = identity.user().to_owned();
    common.resource_role = job.resource_role.clone();
    common.application_name = job.application_name.clone();
    common.mode = match job.work {
        Work::Text { .. } => AccessMode::Web.into(),
        Work::Runbook { .. } => AccessMode::Runbooks.into(),
    };
    let admitted = match admit(gw, identity, &job, common.clone()) {
        Ok(a) => a,
        Err(e) => {
            refused(gw, common, &e).await;
            return Err(e);
        }
    };
    let (admitted, permit, statements) = admitted;
    let outcome = match permit.resource().protocol {
        Protocol::Postgres => {
            runner::execute::<PostgresUpstream>(gw, admitted, &permit, statements, &job).await
        }
        Protocol::Mysql => {
            runner::execute::<MysqlUpstream>(gw, admitted, &permit, statements, &job).await
        }
    };
    if let Err(e) = &outcome {
        refused(gw, common, e).await;
    }
    outcome
}

/// A statement to run and its bound values.
pub struct Planned {
    pub text: String,
    pub binds: Vec<Bind>,
}

type Admission = (Admitted, Permit, Vec<Planned>);

/// Lockout, log health, the decision, the statements checked, the session registered.
fn admit(
    gw: &Arc<Gateway>,
    identity: &Identity,
    job: &Job,
    common: Common,
) -> Result<Admission, RunError> {
    gw.lockout
        .check(identity.user(), job.client.ip())
        .map_err(RunError::LockedOut)?;
    if !gw.recorder.healthy() {
        return Err(RunError::LogUnavailable);
    }
    gw.control
        .fresh_enough()
        .map_err(|stale| RunError::StoreStale(stale.as_secs()))?;
    let snapshot = gw.control.snapshot();
    let role = &job.resource_role;
    let approved = job.approved.as_ref();
    let permit = match (&job.work, approved) {
        (Work::Text { .. }, None) => access::decide(&snapshot, identity, role, AccessMode::Web)?,
        (Work::Text { .. }, Some(r)) => {
            access::decide_approved(&snapshot, identity, r, AccessMode::Web)?
        }
        (Work::Runbook { runbook, .. }, approved) => {
            access::decide_runbook(&snapshot, identity, runbook, role, approved)?
        }
    };
    let statements = plan(&job.work, permit.resource().protocol)?;
    let mut admitted = gw.admit(common, permit.clone())?;
    if let Work::Runbook { runbook, .. } = &job.work {
        admitted = admitted.runbook(RunbookRef {
            name: runbook.name.clone(),
            sha256: runbook.sha256.clone(),
        });
    }
    Ok((admitted, permit, statements))
}

/// The statements to run, in order, each allowed (`sql::oneoff_allowed`); a runbook's in
/// one transaction unless it says otherwise.
fn plan(work: &Work, protocol: Protocol) -> Result<Vec<Planned>, RunError> {
    let mysql = protocol == Protocol::Mysql;
    let planned: Vec<Planned> = match work {
        Work::Text { text, params } => {
            let split = crate::sql::split(text, mysql).map_err(RunError::Invalid)?;
            if split.is_empty() {
                return Err(RunError::Invalid("no statement to run".into()));
            }
            if !params.is_empty() && split.len() > 1 {
                return Err(RunError::Invalid(
                    "parameters go with exactly one statement".into(),
                ));
            }
            split
                .into_iter()
                .map(|(_, text)| Planned {
                    text,
                    binds: params.clone(),
                })
                .collect()
        }
        Work::Runbook { runbook, values } => {
            let bound = runbook.bind(values, protocol).map_err(RunError::Params)?;
            let mut out: Vec<Planned> = bound
                .into_iter()
                .map(|b| Planned {
                    text: b.text,
                    binds: b.binds,
                })
                .collect();
            if runbook.transaction && out.len() > 1 {
                let begin = if mysql { "START TRANSACTION" } else { "BEGIN" };
                out.insert(0, plain(begin));
                out.push(plain("COMMIT"));
            }
            out
        }
    };
    for p in &planned {
        crate::sql::oneoff_allowed(&p.text, mysql).map_err(|e| RunError::Invalid(e.into()))?;
    }
    Ok(planned)
}

fn plain(text: &str) -> Planned {
    Planned {
        text: text.to_owned(),
        binds: Vec::new(),
    }
}

/// A refused run in the monitoring log: `access_denied` for a decision, `auth_failed` for
/// the rest (as a refused native login).
async fn refused(gw: &Gateway, common: Common, e: &RunError) {
    let reason = e.to_string();
    let kind = match e {
        // A command held for approval is not a refusal: its request is the record.
        RunError::Denied(Denied::ApprovalRequired {
            kind: crate::model::RequestKind::Command,
            ..
        }) => return,
        RunError::Denied(_) => {
            Metrics::inc(&gw.metrics.access_denied_total);
            Kind::AccessDenied { reason }
        }
        RunError::Invalid(_) | RunError::Params(_) => return,
        _ => Kind::AuthFailed { reason },
    };
    tracing::info!(user = %common.user, resource_role = %common.resource_role, mode = %common.mode, reason = %e, "run refused");
    gw.record(Arc::new(common), kind).await;
}
