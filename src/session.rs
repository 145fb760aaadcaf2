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
pub mod mysql;
pub mod postgres;
mod registry;
mod sink;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub use lifecycle::{Admitted, End};
pub use listen::{Accept, accept_loop};
pub use registry::{EndReason, Registry};
pub use sink::{EventSink, RelayLink};

use crate::access::{Denied, Identity, Permit, decide_native};
use crate::audit::{Common, Event, Kind, Recorder};
use crate::control::ControlPlane;
use crate::metrics::Metrics;
use crate::model::Protocol;
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
    /// A startup parameter the resource role does not forward (said only after the user
    /// proved who they are and may use the role).
    Parameter(String),
    NoResourceRole,
    TlsRequired,
    UpstreamUnreachable,
    UpstreamRefused,
    Timeout,
    LogUnavailable,
    Protocol(String),
}

impl SessionError {
    pub fn fault(&self) -> Fault {
        match self {
            SessionError::Denied(_) => Fault::Policy,
            SessionError::Upstream(_) => Fault::Upstream,
            SessionError::LogUnavailable => Fault::Internal,
            SessionError::AuthFailed(_)
            | SessionError::TlsRequired
            | SessionError::NoResourceRole
            | SessionError::Timeout
            | SessionError::Protocol(_)
            | SessionError::Closed => Fault::Client,
        }
    }

    /// What the client is told; `None` when there is no one to tell.
    pub fn refusal(&self) -> Option<Refusal> {
        Some(match self {
            SessionError::Closed => return None,
            SessionError::AuthFailed(_) => Refusal::BadCredentials,
            SessionError::Denied(Denied::StartupParameter(name)) => {
                Refusal::Parameter(name.clone())
            }
            SessionError::Denied(_) => Refusal::NotAllowed,
            SessionError::NoResourceRole => Refusal::NoResourceRole,
            SessionError::TlsRequired => Refusal::TlsRequired,
            SessionError::Upstream(UpstreamError::Unreachable { .. }) => {
                Refusal::UpstreamUnreachable
            }
            SessionError::Upstream(UpstreamError::Refused { .. }) => Refusal::UpstreamRefused,
            SessionError::Timeout => Refusal::Timeout,
            SessionError::LogUnavailable => Refusal::LogUnavailable,
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
    /// back (`Upstreams::release`) when the client's goodbye was withheld.
    fn relay(
        self,
        upstream: Lease<Self::Upstream>,
        link: RelayLink,
    ) -> impl Future<Output = End> + Send;
}

/// Runs one client connection through the login sequence and the relay.
pub async fn run<F: Frontend>(
    gw: &Arc<Gateway>,
    mut fe: F,
    protocol: Protocol,
    client: SocketAddr,
) {
    let id = uuid::Uuid::new_v4().to_string();
    let mut common = Common::new(&id, protocol.into(), client);
    let login_timeout = gw.control.config().limits.login_timeout;
    let mut hello = Hello::default();
    let login = tokio::time::timeout(
        login_timeout,
        login(gw, &mut fe, protocol, client.ip(), &mut common, &mut hello),
    )
    .await;
    let (admitted, upstream, settings) = match login.unwrap_or(Err(SessionError::Timeout)) {
        Ok(Some(ok)) => ok,
        Ok(None) => return,
        Err(e) => {
            refused(gw, &common, &hello, &e).await;
            if let Some(refusal) = e.refusal() {
                fe.refuse(&hello, refusal).await;
            }
            return;
        }
    };
    let session = admitted.start(settings).await;
    let end = fe.relay(upstream, session.link()).await;
    session.finish(end).await;
}

type LoggedIn<U> = (Admitted, Lease<U>, Vec<(String, String)>);

async fn login<F: Frontend>(
    gw: &Arc<Gateway>,
    fe: &mut F,
    protocol: Protocol,
    client: std::net::IpAddr,
    common: &mut Common,
    hello_out: &mut Hello,
) -> Result<Option<LoggedIn<F::Upstream>>, SessionError> {
    let Some(hello) = fe.handshake().await? else {
        return Ok(None);
    };
    *hello_out = hello.clone();
    common.user = hello.user.clone();
    common.resource_role = hello.resource_role.clone();
    common.application_name = hello.application_name.clone();
    common.tls = hello.tls;
    if !gw.recorder.healthy() {
        return Err(SessionError::LogUnavailable);
    }
    let snapshot = gw.control.snapshot();
    gw.lockout
        .check(&hello.user, client)
        .map_err(SessionError::AuthFailed)?;
    let identity = match fe.authenticate(&hello, &snapshot).await {
        Err(e @ SessionError::AuthFailed(_)) => {
            gw.lockout.failed(&hello.user, client);
            return Err(e);
        }
        other => other?,
    };
    gw.control.token_used(&identity);
    let permit = decide_native(&snapshot, &identity, &hello.resource_role, protocol)?;
    let settings = fe.settings(&permit)?;
    let admitted = gw.admit(common.clone(), permit)?;
    let mut upstream = gw
        .upstreams
        .login::<F::Upstream>(admitted.permit(), fe.upstream_params(), &gw.metrics)
        .await?;
    fe.accept(admitted.permit(), &mut upstream).await?;
    Ok(Some((admitted, upstream, settings)))
}

/// The monitoring log gets the real reason of a refusal.
async fn refused(gw: &Gateway, common: &Common, hello: &Hello, e: &SessionError) {
    let reason = e.reason();
    let kind = match e {
        SessionError::Closed => return,
        SessionError::Denied(_) => {
            Metrics::inc(&gw.metrics.access_denied_total);
            Kind::AccessDenied { reason }
        }
        SessionError::AuthFailed(_) | SessionError::TlsRequired | SessionError::NoResourceRole => {
            Metrics::inc(&gw.metrics.auth_failures_total);
            Kind::AuthFailed { reason }
        }
        _ => Kind::AuthFailed { reason },
    };
    tracing::info!(user = %hello.user, resource_role = %hello.resource_role, client = %common.client_addr, fault = ?e.fault(), reason = %e.reason(), "login refused");
    gw.record(Arc::new(common.clone()), kind).await;
}
