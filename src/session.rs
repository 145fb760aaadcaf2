//! The one login sequence both protocols share, and the life of every session:
//!
//! handshake → authenticate → `access::decide` → admit (registered live, decided again) →
//! upstream login → accept → start → relay → end.
//!
//! A protocol implements `Frontend` (the client side only); `run` owns the order, the login
//! timeout, the monitoring-log events and the client-facing refusal. The upstream side is
//! `crate::upstream`, the same for every mode; `lifecycle` gives one-offs and runbook runs
//! the same start and end a native session has. A refused login is not a session: it
//! produces `auth_failed` or `access_denied` and no `session_started`/`session_ended`.

pub mod index;
mod lifecycle;
mod listen;
mod login;
pub mod mysql;
pub mod postgres;
mod registry;
pub mod remote;
mod sink;

use std::future::Future;
use std::sync::Arc;

pub use lifecycle::{Admitted, End};
pub use listen::{Accept, accept_loop};
pub use login::run;
pub use registry::{EndReason, Registry};
pub use sink::{EventSink, RelayLink};

use crate::access::{Denied, Identity, Permit};
use crate::audit::{Common, Event, Kind, Recorder};
use crate::control::ControlPlane;
use crate::metrics::Metrics;
use crate::snapshot::Snapshot;
use crate::upstream::{Lease, Pooled, UpstreamError, Upstreams};

/// What every session reaches: the control plane, the monitoring log, the registry, the
/// upstream side.
pub struct Gateway {
    pub control: Arc<ControlPlane>,
    pub recorder: Recorder,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub index: index::SessionIndex,
    pub lockout: Arc<crate::lockout::Lockout>,
    pub upstreams: Upstreams,
    /// Every session task; shutdown waits on it (closed when the last task ends).
    pub tasks: tokio_util::task::TaskTracker,
    /// This instance's id (`store.data_dir/instance-id`).
    pub instance: Arc<str>,
    /// Signs the monitoring log's checkpoints; its public key is what auditors verify with.
    pub signer: Arc<crate::audit::signing::CheckpointSigner>,
    /// Access request changes go out to the webhooks through it.
    pub notifier: crate::notify::Notifier,
    /// Where the PostgreSQL and MySQL listeners listen (as bound: a configured port 0
    /// becomes the real one), for the console's connection hints.
    pub listening:
        std::sync::OnceLock<(Option<std::net::SocketAddr>, Option<std::net::SocketAddr>)>,
    /// Masking's PostgreSQL catalogs, per resource.
    pub catalogs: Arc<crate::masking::catalog::Catalogs>,
    /// Shipping the monitoring log to NATS (`[audit.nats]`), when configured.
    pub shipping: Option<Arc<crate::audit::ship::ShipState>>,
}

impl Gateway {
    /// Hands an event to the monitoring log. A log that is gone (shutting down) or failing
    /// is counted by the recorder (`audit_events_lost`); it is said here too.
    pub async fn record(&self, common: Arc<Common>, kind: Kind) {
        self.recorder.emit(Event { common, kind }).await;
    }
}

/// What the client claims before proving anything.
#[derive(Clone, Debug, Default)]
pub struct Hello {
    pub user: String,
    pub resource_role: String,
    pub application_name: String,
    pub tls: bool,
}

/// Whose fault a refused login was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The client: bad credentials, a protocol violation, too slow, gone.
    Client,
    /// Access control said no.
    Policy,
    /// The database behind the resource role.
    Upstream,
    /// The gateway itself (its monitoring log cannot be written).
    Internal,
}

/// Why a login did not become a session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Wrong password, unknown user, bad token: the client sees one generic message.
    #[error("authentication failed: {0}")]
    AuthFailed(String),
    #[error("access denied: {0}")]
    Denied(#[from] Denied),
    #[error("TLS is required for password authentication")]
    TlsRequired,
    #[error("the client did not name a resource role")]
    NoResourceRole,
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error("login timed out")]
    Timeout,
    /// `audit.on_failure = "block"` and the monitoring log cannot be written.
    #[error("the monitoring log cannot be written; refusing new sessions (fail closed)")]
    LogUnavailable,
    /// The store has not been reached for longer than `store.max_staleness`.
    #[error("the store has not been reached for {0}s; refusing new sessions (fail closed)")]
    StoreStale(u64),
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The client went away (or a cancel request was served): nothing to answer.
    #[error("client closed the connection")]
    Closed,
}

/// What the client is told of a refusal, in protocol-neutral terms; each protocol maps it
/// to its codes and wording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    BadCredentials,
    NotAllowed,
    /// The name given as the database is no resource role (said only after the user
    /// proved who they are: how to name one).
    UnknownResourceRole,
    /// A startup parameter the resource role does not forward (said only after the user
    /// proved who they are and may use the role).
    Parameter(String),
    /// An access request rule needs an approval first: what to do (said only to a user
    /// who passed access control for the role).
    ApprovalRequired(String),
    NoResourceRole,
    TlsRequired,
    UpstreamUnreachable,
    UpstreamRefused,
    Timeout,
    LogUnavailable,
    StoreStale,
    Protocol(String),
}

impl SessionError {
    pub fn fault(&self) -> Fault {
        match self {
            SessionError::Denied(_) => Fault::Policy,
            SessionError::Upstream(_) => Fault::Upstream,
            SessionError::LogUnavailable | SessionError::StoreStale(_) => Fault::Internal,
            SessionError::AuthFailed(_)
            | SessionError::TlsRequired
            | SessionError::NoResourceRole
            | SessionError::Timeout
            | SessionError::Protocol(_)
            | SessionError::Closed => Fault::Client,
        }
    }

    /// What the client is told; `None` when there is no one to tell. `role`: the
    /// resource role the client named.
    pub fn refusal(&self, role: &str) -> Option<Refusal> {
        Some(match self {
            SessionError::Closed => return None,
            SessionError::AuthFailed(_) => Refusal::BadCredentials,
            SessionError::Denied(Denied::StartupParameter(name)) => {
                Refusal::Parameter(name.clone())
            }
            SessionError::Denied(Denied::ApprovalRequired { kind, .. }) => {
                Refusal::ApprovalRequired(approval_guidance(role, *kind))
            }
            SessionError::Denied(Denied::UnknownResourceRole) => Refusal::UnknownResourceRole,
            SessionError::Denied(_) => Refusal::NotAllowed,
            SessionError::NoResourceRole => Refusal::NoResourceRole,
            SessionError::TlsRequired => Refusal::TlsRequired,
            SessionError::Upstream(UpstreamError::Unreachable { .. }) => {
                Refusal::UpstreamUnreachable
            }
            SessionError::Upstream(UpstreamError::Refused { .. }) => Refusal::UpstreamRefused,
            SessionError::Timeout => Refusal::Timeout,
            SessionError::LogUnavailable => Refusal::LogUnavailable,
            SessionError::StoreStale(_) => Refusal::StoreStale,
            SessionError::Protocol(m) => Refusal::Protocol(m.clone()),
        })
    }

    /// The monitoring log's reason: this error and every source under it.
    pub fn reason(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            out.push_str(": ");
            out.push_str(&s.to_string());
            source = s.source();
        }
        out
    }
}

/// What a user who may use `role` but needs an approval first is told to do.
pub fn approval_guidance(role: &str, kind: crate::model::RequestKind) -> String {
    match kind {
        crate::model::RequestKind::Jit => format!(
            "access to {role} requires an approved request: portcullis request {role} --for 1h --reason \"…\""
        ),
        crate::model::RequestKind::Command => format!(
            "{role} runs approved commands only: portcullis exec {role} -e \"…\" holds each for approval"
        ),
    }
}

/// One protocol's client side of the login sequence.
pub trait Frontend: Send + Sized {
    /// The upstream connection this protocol logs in with.
    type Upstream: Pooled;

    /// Reads what the client claims. `Ok(None)` when the connection is not a session
    /// (a cancel request, already served).
    fn handshake(&mut self) -> impl Future<Output = Result<Option<Hello>, SessionError>> + Send;
    /// Proves the claim against the snapshot's verifiers and tokens.
    fn authenticate(
        &mut self,
        hello: &Hello,
        snapshot: &Arc<Snapshot>,
    ) -> impl Future<Output = Result<Identity, SessionError>> + Send;
    /// What the client contributes to the upstream login.
    fn upstream_params(&self) -> &<Self::Upstream as crate::protocol::Upstream>::Params;
    /// The startup settings the client asks to carry upstream, checked against the
    /// permit's resource role (`access::startup_settings`); `session_started` records them.
    fn settings(&self, _permit: &Permit) -> Result<Vec<(String, String)>, SessionError> {
        Ok(Vec::new())
    }
    /// Tells the client it is in.
    fn accept(
        &mut self,
        permit: &Permit,
        upstream: &mut Lease<Self::Upstream>,
    ) -> impl Future<Output = Result<(), SessionError>> + Send;
    /// Sends the protocol's error for a refused login.
    fn refuse(&mut self, hello: &Hello, refusal: Refusal) -> impl Future<Output = ()> + Send;
    /// Relays until either side ends or the session is told to end; gives the upstream
    /// back (`Upstreams::release`) when the client's goodbye was withheld. `Next` says
    /// whether another session follows on the same client connection.
    fn relay(
        self,
        upstream: Lease<Self::Upstream>,
        link: RelayLink,
    ) -> impl Future<Output = (End, Next<Self, Self::Upstream>)> + Send;

    /// Whether a login that names no resource role is a control session (MySQL: the
    /// client's Ctrl-C, `mariadb-admin`); otherwise it is refused.
    const CONTROL: bool = false;

    /// Tells the client its control session is in.
    fn accept_control(&mut self) -> impl Future<Output = Result<(), SessionError>> + Send {
        async { Err(SessionError::NoResourceRole) }
    }

    /// Serves a control session until the client leaves or it is told to end.
    fn control(
        &mut self,
        _identity: &Identity,
        _link: RelayLink,
    ) -> impl Future<Output = End> + Send {
        async { End::bare(crate::audit::EndedBy::Error, None) }
    }

    /// After `Next::ChangeUser`: who the client now claims to be, and its proof of it
    /// (a failed proof counts towards the lockout like a failed login).
    #[allow(clippy::type_complexity)]
    fn change_user(
        &mut self,
        _snapshot: &Arc<Snapshot>,
    ) -> impl Future<Output = Result<(Hello, Result<Identity, SessionError>), SessionError>> + Send
    {
        async {
            Err(SessionError::Protocol(
                "changing user is not supported".into(),
            ))
        }
    }
}

/// What follows a relay on the same client connection.
pub enum Next<F, U> {
    /// Nothing: the connection is done.
    Done,
    /// The client asked to become another user (MySQL `COM_CHANGE_USER`): the frontend
    /// and the idle upstream, for the next session.
    ChangeUser(F, Lease<U>),
}
