//! A session's life, whatever its mode: admitted (registered live against a permit, and
//! the permit checked again against the snapshot current at registration, so a change
//! published during the login cannot be missed), started (`session_started`, the index,
//! the counters), then ended exactly once (`session_ended`) — by `finish`, or by `Drop`
//! if the task ended any other way. Native sessions and one-off or runbook executions
//! (which have no client socket) go through the same steps.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::watch;

use super::registry::{EndReason, Grant, LiveSession};
use super::{Gateway, RelayLink};
use crate::access::{Denied, Identity, Permit};
use crate::audit::{Common, EndedBy, Event, Kind, RunbookRef};
use crate::guardrail::Guard;
use crate::metrics::Metrics;
use crate::model::Protocol;
use crate::store::{SessionEnd, SessionRecord};

/// How a session ended: what `session_ended` and the index say.
#[derive(Debug)]
pub struct End {
    pub ended_by: EndedBy,
    pub error: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub queries: u64,
    /// The application name the client set during the session, when it set one.
    pub application_name: Option<String>,
}

impl End {
    /// An end with no traffic counted (a task that ended unexpectedly, a failed run).
    pub fn bare(ended_by: EndedBy, error: Option<String>) -> End {
        End {
            ended_by,
            error,
            bytes_in: 0,
            bytes_out: 0,
            queries: 0,
            application_name: None,
        }
    }
}

/// Registered live, not yet started: no event has been written. Dropping it unregisters.
pub struct Admitted {
    gw: Arc<Gateway>,
    common: Arc<Common>,
    /// `None` for a control session.
    permit: Option<Permit>,
    live: LiveSession,
    end: watch::Receiver<Option<EndReason>>,
    started: Instant,
    runbook: Option<RunbookRef>,
}

impl Gateway {
    /// Registers a session for `permit`, then asks again against the snapshot current now:
    /// a user deactivated (or a grant revoked) between the decision and this point is
    /// refused here; one changed after it is ended by the registry's revalidation.
    pub fn admit(self: &Arc<Self>, mut common: Common, permit: Permit) -> Result<Admitted, Denied> {
        common.groups = permit.user().groups.clone();
        common.resource = permit.resource().name.clone();
        common.resource_role = permit.resource_role().name.clone();
        common.mode = permit.mode().into();
        let common = Arc::new(common);
        let (live, end) = self
            .registry
            .register(&common, Grant::Permit(permit.clone()));
        permit.recheck(&self.control.snapshot())?;
        Ok(Admitted {
            gw: Arc::clone(self),
            common,
            permit: Some(permit),
            live,
            end,
            started: Instant::now(),
            runbook: None,
        })
    }

    /// Registers a control session (no resource role: an authenticated user's `KILL`,
    /// ping, statistics); it lasts while the user stays active.
    pub fn admit_control(
        self: &Arc<Self>,
        common: Common,
        identity: &Identity,
    ) -> Result<Admitted, Denied> {
        let common = Arc::new(common);
        let (live, end) = self
            .registry
            .register(&common, Grant::Control(identity.clone()));
        crate::access::active(&self.control.snapshot(), identity)?;
        Ok(Admitted {
            gw: Arc::clone(self),
            common,
            permit: None,
            live,
            end,
            started: Instant::now(),
            runbook: None,
        })
    }
}

impl Admitted {
    pub fn common(&self) -> &Arc<Common> {
        &self.common
    }

    /// A runbook run: `session_started` names the runbook and its file's hash.
    pub fn runbook(mut self, runbook: RunbookRef) -> Admitted {
        self.runbook = Some(runbook);
        self
    }

    /// The session starts: `session_started` (with the upstream user and database), the
    /// index, the counters. From here on it ends in exactly one `session_ended`.
    pub async fn start(self, parameters: Vec<(String, String)>) -> Session {
        let gw = &self.gw;
        Metrics::inc(&gw.metrics.sessions_total);
        gw.metrics.sessions_active.fetch_add(1, Ordering::Relaxed);
        let (upstream_user, database) = match &self.permit {
            Some(p) => (
                p.resource_role().user.clone(),
                p.resource_role().database.clone(),
            ),
            None => (String::new(), String::new()),
        };
        let kind = Kind::SessionStarted {
            upstream_user,
            database: database.clone(),
            parameters: parameters.into_iter().collect(),
            runbook: self.runbook.clone(),
        };
        gw.record(Arc::clone(&self.common), kind).await;
        gw.index.started(record(&self.common));
        let c = &self.common;
        tracing::info!(session_id = %c.session_id, user = %c.user, resource_role = %c.resource_role, mode = %c.mode, "session started");
        Session {
            done: false,
            database,
            gw: self.gw,
            common: self.common,
            live: self.live,
            end: self.end,
            started: self.started,
        }
    }
}

fn record(c: &Common) -> SessionRecord {
    SessionRecord {
        id: c.session_id.clone(),
        user: c.user.clone(),
        resource_role: c.resource_role.clone(),
        resource: c.resource.clone(),
        protocol: c.protocol.as_str().to_owned(),
        mode: c.mode.as_str().to_owned(),
        client_addr: c.client_addr.clone(),
        application_name: c.application_name.clone(),
        started_at: crate::clock::now(),
        ended_at: None,
        statements: 0,
        bytes_in: 0,
        bytes_out: 0,
        ended_by: None,
        error: None,
        instance: String::new(),
    }
}

/// A started session. `finish` writes its one `session_ended`; if the task ends without
/// calling it (a panic, a task cancelled at shutdown), `Drop` does.
pub struct Session {
    gw: Arc<Gateway>,
    common: Arc<Common>,
    /// Keeps the session in the registry until the session ends.
    live: LiveSession,
    end: watch::Receiver<Option<EndReason>>,
    started: Instant,
    done: bool,
    /// The upstream database (a MySQL session's unqualified tables are in it).
    database: String,
}

impl Session {
    pub fn common(&self) -> &Arc<Common> {
        &self.common
    }

    /// What the relay (or a one-off's runner) needs: where events go, when to stop.
    pub fn link(&self) -> RelayLink {
        RelayLink {
            common: Arc::clone(&self.common),
            recorder: self.gw.recorder.clone(),
            metrics: Arc::clone(&self.gw.metrics),
            end: self.end.clone(),
            statements: self.gw.control.config().audit.statements,
            acknowledged: self.gw.control.config().audit.durability
                == crate::config::Durability::Acknowledged,
            counted: self.live.counter(),
            guard: self.guard(),
            masker: self.masker(),
            database: self.database.clone(),
        }
    }

    /// The masking rules this session reads under (`None`: none apply to it).
    fn masker(&self) -> Option<crate::masking::Masker> {
        let c = &self.common;
        let snapshot = self.gw.control.snapshot();
        let key = crate::masking::period_key(&snapshot.masking_key, crate::clock::now());
        crate::masking::Masker::new(&snapshot.masking, &c.resource_role, &c.groups, key)
    }

    /// The guardrails this session works under (`None`: no rule applies to it).
    fn guard(&self) -> Option<Guard> {
        let c = &self.common;
        let snapshot = self.gw.control.snapshot();
        let protocol = snapshot.resources.get(&c.resource)?.resource.protocol;
        let schema = match protocol {
            Protocol::Postgres => "public",
            Protocol::Mysql => self.database.as_str(),
        };
        Guard::new(
            &snapshot.guardrails,
            &c.resource_role,
            &c.groups,
            protocol,
            schema,
        )
    }

    pub async fn finish(mut self, end: End) {
        self.done = true;
        self.gw
            .metrics
            .sessions_active
            .fetch_sub(1, Ordering::Relaxed);
        tracing::info!(session_id = %self.common.session_id, ended_by = %end.ended_by, queries = end.queries, "session ended");
        let (common, kind) = self.ended(end);
        self.gw.record(common, kind).await;
    }

    /// The `session_ended` event (and its index write).
    fn ended(&self, end: End) -> (Arc<Common>, Kind) {
        let common = match &end.application_name {
            Some(name) => Arc::new(self.common.renamed(name)),
            None => Arc::clone(&self.common),
        };
        self.gw.index.ended(SessionEnd {
            id: self.common.session_id.clone(),
            ended_at: crate::clock::now(),
            statements: end.queries as i64,
            bytes_in: end.bytes_in as i64,
            bytes_out: end.bytes_out as i64,
            ended_by: end.ended_by.as_str().to_owned(),
            error: end.error.clone(),
            application_name: end.application_name,
        });
        let kind = Kind::SessionEnded {
            duration_ms: self.started.elapsed().as_millis() as u64,
            bytes_in: end.bytes_in,
            bytes_out: end.bytes_out,
            queries: end.queries,
            ended_by: end.ended_by,
            error: end.error,
        };
        (common, kind)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.gw
            .metrics
            .sessions_active
            .fetch_sub(1, Ordering::Relaxed);
        let end = End::bare(
            EndedBy::Error,
            Some("session task ended unexpectedly".into()),
        );
        let (common, kind) = self.ended(end);
        self.gw.recorder.record_detached(Event { common, kind });
    }
}
