//! Live sessions: listed and ended through the admin API, re-checked against every new
//! snapshot (a deactivated user or a revoked grant ends the user's sessions), and told to
//! end at shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use serde::Serialize;
use tokio::sync::watch;

use crate::access::{Identity, Permit};
use crate::audit::{Channel, Common, EndedBy, Mode};
use crate::snapshot::Snapshot;

/// Why a live session is being ended from outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    Killed { by: String },
    AccessLost(crate::access::Denied),
    Shutdown,
}

impl EndReason {
    /// `ended_by` in `session_ended`.
    pub fn ended_by(&self) -> EndedBy {
        match self {
            EndReason::Killed { .. } | EndReason::AccessLost(_) => EndedBy::Killed,
            EndReason::Shutdown => EndedBy::Shutdown,
        }
    }

    /// What the client is told.
    pub fn message(&self) -> String {
        match self {
            EndReason::Killed { .. } => "terminating connection: ended by an administrator".into(),
            EndReason::AccessLost(crate::access::Denied::ApprovalRequired { .. }) => {
                "terminating connection: the approved access request for this resource role ended"
                    .into()
            }
            EndReason::AccessLost(_) => {
                "terminating connection: access to this resource role was withdrawn".into()
            }
            EndReason::Shutdown => "terminating connection: the gateway is shutting down".into(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SessionView {
    pub id: String,
    pub user: String,
    pub resource_role: String,
    pub resource: String,
    pub protocol: Channel,
    pub mode: Mode,
    pub client_addr: String,
    pub application_name: String,
    pub started_at: i64,
    /// Statements so far.
    pub statements: u64,
}

/// What a live session holds, checked again on every change.
#[derive(Clone, Debug)]
pub enum Grant {
    /// A session on a resource role.
    Permit(Permit),
    /// A control session: its user must stay active.
    Control(Identity),
}

impl Grant {
    fn recheck(&self, snapshot: &Snapshot) -> Result<(), crate::access::Denied> {
        match self {
            Grant::Permit(p) => p.recheck(snapshot),
            Grant::Control(identity) => crate::access::active(snapshot, identity),
        }
    }
}

/// A registered session: what the API shows, what it holds, and how to tell it to end.
struct Entry {
    view: SessionView,
    grant: Grant,
    end: watch::Sender<Option<EndReason>>,
    /// Statements relayed so far (the sink counts them).
    statements: Arc<AtomicU64>,
}

impl Entry {
    fn view(&self) -> SessionView {
        SessionView {
            statements: self.statements.load(Ordering::Relaxed),
            ..self.view.clone()
        }
    }
}

pub struct LiveSession {
    view: SessionView,
    registry: Arc<DashMap<String, Arc<Entry>>>,
    statements: Arc<AtomicU64>,
}

impl LiveSession {
    /// The counter of statements relayed so far, for the session's sink.
    pub fn counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.statements)
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        self.registry.remove(&self.view.id);
    }
}

#[derive(Default)]
pub struct Registry {
    sessions: Arc<DashMap<String, Arc<Entry>>>,
}

impl Registry {
    /// Adds a session; it leaves the registry when the returned value is dropped.
    pub fn register(
        &self,
        common: &Common,
        grant: Grant,
    ) -> (LiveSession, watch::Receiver<Option<EndReason>>) {
        let (end, rx) = watch::channel(None);
        let view = SessionView {
            id: common.session_id.clone(),
            user: common.user.clone(),
            resource_role: common.resource_role.clone(),
            resource: common.resource.clone(),
            protocol: common.protocol,
            mode: common.mode,
            client_addr: common.client_addr.clone(),
            application_name: common.application_name.clone(),
            started_at: crate::clock::now(),
            statements: 0,
        };
        let statements = Arc::new(AtomicU64::new(0));
        let entry = Entry {
            view: view.clone(),
            grant,
            end,
            statements: Arc::clone(&statements),
        };
        self.sessions.insert(view.id.clone(), Arc::new(entry));
        let live = LiveSession {
            view,
            registry: Arc::clone(&self.sessions),
            statements,
        };
        (live, rx)
    }

    pub fn list(&self) -> Vec<SessionView> {
        let mut all: Vec<SessionView> = self.sessions.iter().map(|e| e.value().view()).collect();
        all.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        all
    }

    pub fn get(&self, id: &str) -> Option<SessionView> {
        self.sessions.get(id).map(|e| e.value().view())
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Tells one session to end; false if it is not live.
    pub fn end(&self, id: &str, reason: EndReason) -> bool {
        let entry = self.sessions.get(id).map(|e| Arc::clone(e.value()));
        match entry {
            Some(e) => {
                e.end.send_replace(Some(reason));
                true
            }
            None => false,
        }
    }

    pub fn end_all(&self, reason: EndReason) {
        let all: Vec<_> = self
            .sessions
            .iter()
            .map(|e| Arc::clone(e.value()))
            .collect();
        for e in all {
            e.end.send_replace(Some(reason.clone()));
        }
    }

    /// Ends every session the new snapshot no longer permits; returns how many.
    pub fn revalidate(&self, snapshot: &Snapshot) -> usize {
        let all: Vec<_> = self
            .sessions
            .iter()
            .map(|e| Arc::clone(e.value()))
            .collect();
        let mut ended = 0;
        for e in all {
            if let Err(denied) = e.grant.recheck(snapshot) {
                let view = &e.view;
                tracing::info!(session_id = %view.id, user = %view.user, reason = %denied, "ending session: access withdrawn");
                e.end.send_replace(Some(EndReason::AccessLost(denied)));
                ended += 1;
            }
        }
        ended
    }
}
