//! The one login sequence both protocols share, the live-session registry, and the rule
//! that every started session ends in exactly one `session_ended`:
//!
//! handshake → authenticate → `access::decide` → upstream login → accept → relay → end.
//!
//! A protocol implements `Frontend`; `run` owns the order, the login timeout, the
//! monitoring-log events and the client-facing refusal. A refused login is not a session:
//! it produces `auth_failed` or `access_denied` and no `session_started`/`session_ended`.

pub mod index;
pub mod mysql;
mod pg_scram;
pub mod postgres;
mod registry;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

pub use registry::{EndReason, LiveSession, Registry, SessionView};

use crate::access::{Denied, Identity, Permit, Snapshot, decide_native};
use crate::audit::{Common, Event, Kind, Recorder};
use crate::control::ControlPlane;
use crate::metrics::Metrics;
use crate::model::Protocol;
use crate::tls::UpstreamTls;

/// What every session reaches: the control plane, the monitoring log, the registry.
pub struct Gateway {
    pub control: Arc<ControlPlane>,
    pub recorder: Recorder,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub upstream_tls: UpstreamTls,
    pub index: index::SessionIndex,
    pub lockout: Arc<crate::lockout::Lockout>,
    /// Kept PostgreSQL upstream connections (`limits.idle_upstreams`).
    pub pool: Arc<crate::upstream::pool::Pool>,
}

/// What the client claims before proving anything.
#[derive(Clone, Debug, Default)]
pub struct Hello {
    pub user: String,
    pub resource_role: String,
    pub application_name: String,
    pub tls: bool,
}

/// Why a login did not become a session, and whose fault it was.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Wrong password, unknown user, bad token: the client sees one generic message.
    #[error("authentication failed: {0}")]
    AuthFailed(String),
    #[error("access denied: {0}")]
    Denied(Denied),
    #[error("TLS is required for password authentication")]
    TlsRequired,
    #[error("the client did not name a resource role")]
    NoResourceRole,
    #[error("could not reach the upstream: {0}")]
    UpstreamUnreachable(String),
    #[error("the upstream refused the gateway's login: {0}")]
    UpstreamRefused(String),
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

/// How a relay ended.
#[derive(Debug)]
pub struct RelayEnd {
    pub ended_by: &'static str,
    pub error: Option<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub queries: u64,
    /// The application name the client set during the session, when it set one.
    pub application_name: Option<String>,
}

/// What a relay needs from the session.
pub struct RelayLink {
    pub common: Arc<Common>,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Becomes `Some` when the session must end (admin kill, lost access, shutdown).
    pub end: watch::Receiver<Option<EndReason>>,
    /// `audit.statements`: write a `query` event per statement.
    pub statements: bool,
}

/// One protocol's side of the login sequence.
pub trait Frontend: Send + Sized {
    type Upstream: Send;

    /// Reads what the client claims. `Ok(None)` when the connection is not a session
    /// (a cancel request, already served).
    fn handshake(
        &mut self,
        gw: &Gateway,
    ) -> impl Future<Output = Result<Option<Hello>, SessionError>> + Send;
    /// Proves the claim against the snapshot's verifiers and tokens.
    fn authenticate(
        &mut self,
        hello: &Hello,
        snapshot: &Arc<Snapshot>,
    ) -> impl Future<Output = Result<Identity, SessionError>> + Send;
    /// Logs in upstream as the permit's resource role.
    fn connect(
        &mut self,
        permit: &Permit,
        gw: &Gateway,
    ) -> impl Future<Output = Result<Self::Upstream, SessionError>> + Send;
    /// Tells the client it is in.
    fn accept(
        &mut self,
        upstream: &mut Self::Upstream,
        gw: &Gateway,
    ) -> impl Future<Output = Result<(), SessionError>> + Send;
    /// Sends the protocol's error for a refused login.
    fn refuse(&mut self, hello: &Hello, error: &SessionError) -> impl Future<Output = ()> + Send;
    /// Relays until either side ends or the session is told to end.
    fn relay(
        self,
        upstream: Self::Upstream,
        link: RelayLink,
    ) -> impl Future<Output = RelayEnd> + Send;
}

/// Runs one client connection through the login sequence and the relay.
pub async fn run<F: Frontend>(gw: &Gateway, mut fe: F, protocol: Protocol, client: SocketAddr) {
    let started = Instant::now();
    let id = uuid::Uuid::new_v4().to_string();
    let mut common = Common::new(&id, protocol.as_str(), client);
    let login_timeout = gw.control.config().limits.login_timeout;
    let mut hello = Hello::default();
    let login = tokio::time::timeout(
        login_timeout,
        login(gw, &mut fe, protocol, client.ip(), &mut hello),
    )
    .await;
    let result = login.unwrap_or(Err(SessionError::Timeout));
    common.user = hello.user.clone();
    common.resource_role = hello.resource_role.clone();
    common.application_name = hello.application_name.clone();
    common.tls = hello.tls;
    let (permit, upstream) = match result {
        Ok(Some(ok)) => ok,
        Ok(None) => return,
        Err(e) => {
            refused(gw, &common, &e).await;
            fe.refuse(&hello, &e).await;
            return;
        }
    };
    common.groups = permit.user().groups.clone();
    common.resource = permit.resource().name.clone();
    let common = Arc::new(common);
    let (live, end) = gw.registry.register(&common, &permit, protocol);
    let mut guard = EndGuard::new(gw, &common, started);
    Metrics::inc(&gw.metrics.sessions_total);
    gw.metrics
        .sessions_active
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let event = Event {
        common: Arc::clone(&common),
        kind: Kind::SessionStarted {
            upstream_user: permit.resource_role().user.clone(),
            database: permit.resource_role().database.clone(),
        },
    };
    let _ = gw.recorder.record(event).await;
    gw.index.started(crate::store::SessionRecord {
        id: id.clone(),
        user: common.user.clone(),
        resource_role: common.resource_role.clone(),
        resource: common.resource.clone(),
        protocol: common.protocol.to_owned(),
        mode: common.mode.to_owned(),
        client_addr: common.client_addr.clone(),
        application_name: common.application_name.clone(),
        started_at: crate::store::now(),
        ended_at: None,
        statements: 0,
        bytes_in: 0,
        bytes_out: 0,
        ended_by: None,
        error: None,
        instance: String::new(),
    });
    tracing::info!(session_id = %id, user = %common.user, resource_role = %common.resource_role, "session started");
    let link = RelayLink {
        common: Arc::clone(&common),
        recorder: gw.recorder.clone(),
        metrics: Arc::clone(&gw.metrics),
        end,
        statements: gw.control.config().audit.statements,
    };
    let end = fe.relay(upstream, link).await;
    drop(live);
    guard.finish(end).await;
}

async fn login<F: Frontend>(
    gw: &Gateway,
    fe: &mut F,
    protocol: Protocol,
    client: std::net::IpAddr,
    hello_out: &mut Hello,
) -> Result<Option<(Permit, F::Upstream)>, SessionError> {
    let Some(hello) = fe.handshake(gw).await? else {
        return Ok(None);
    };
    *hello_out = hello.clone();
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
    let permit = decide_native(&snapshot, &identity, &hello.resource_role, protocol)
        .map_err(SessionError::Denied)?;
    let mut upstream = fe.connect(&permit, gw).await?;
    fe.accept(&mut upstream, gw).await?;
    Ok(Some((permit, upstream)))
}

/// The monitoring log gets the real reason of a refusal.
async fn refused(gw: &Gateway, common: &Common, e: &SessionError) {
    let kind = match e {
        SessionError::Closed => return,
        SessionError::Denied(d) => {
            Metrics::inc(&gw.metrics.access_denied_total);
            Kind::AccessDenied {
                reason: d.to_string(),
            }
        }
        SessionError::AuthFailed(_) | SessionError::TlsRequired | SessionError::NoResourceRole => {
            Metrics::inc(&gw.metrics.auth_failures_total);
            Kind::AuthFailed {
                reason: e.to_string(),
            }
        }
        other => Kind::AuthFailed {
            reason: other.to_string(),
        },
    };
    tracing::info!(user = %common.user, resource_role = %common.resource_role, client = %common.client_addr, reason = %e, "login refused");
    let _ = gw
        .recorder
        .record(Event {
            common: Arc::new(common.clone()),
            kind,
        })
        .await;
}

/// Emits the session's one `session_ended`: from `finish`, or from `Drop` if the session
/// task ended any other way (a panic, a cancelled task at shutdown).
struct EndGuard<'a> {
    gw: &'a Gateway,
    common: Arc<Common>,
    started: Instant,
    done: bool,
}

impl<'a> EndGuard<'a> {
    fn new(gw: &'a Gateway, common: &Arc<Common>, started: Instant) -> Self {
        EndGuard {
            gw,
            common: Arc::clone(common),
            started,
            done: false,
        }
    }

    fn event(&self, end: RelayEnd) -> Event {
        let common = match &end.application_name {
            Some(name) => Arc::new(self.common.renamed(name)),
            None => Arc::clone(&self.common),
        };
        self.gw.index.ended(crate::store::SessionEnd {
            id: self.common.session_id.clone(),
            ended_at: crate::store::now(),
            statements: end.queries as i64,
            bytes_in: end.bytes_in as i64,
            bytes_out: end.bytes_out as i64,
            ended_by: end.ended_by.to_owned(),
            error: end.error.clone(),
            application_name: end.application_name,
        });
        Event {
            common,
            kind: Kind::SessionEnded {
                duration_ms: self.started.elapsed().as_millis() as u64,
                bytes_in: end.bytes_in,
                bytes_out: end.bytes_out,
                queries: end.queries,
                ended_by: end.ended_by,
                error: end.error,
            },
        }
    }

    async fn finish(&mut self, end: RelayEnd) {
        self.done = true;
        self.gw
            .metrics
            .sessions_active
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(session_id = %self.common.session_id, ended_by = end.ended_by, queries = end.queries, "session ended");
        let _ = self.gw.recorder.record(self.event(end)).await;
    }
}

impl Drop for EndGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.gw
                .metrics
                .sessions_active
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            let end = RelayEnd {
                ended_by: "error",
                error: Some("session task ended unexpectedly".into()),
                bytes_in: 0,
                bytes_out: 0,
                queries: 0,
                application_name: None,
            };
            self.gw.recorder.record_detached(self.event(end));
        }
    }
}

/// A protocol listener: what to do with each accepted connection.
pub trait Accept: Send + Sync + Sized + 'static {
    fn gateway(&self) -> &Gateway;
    /// Tells a connection over `limits.max_connections` why it is refused.
    fn over_cap(tcp: tokio::net::TcpStream) -> impl Future<Output = ()> + Send;
    fn connection(
        self: Arc<Self>,
        tcp: tokio::net::TcpStream,
        addr: SocketAddr,
    ) -> impl Future<Output = ()> + Send;
}

/// Accepts until `stop` resolves; each connection runs on its own task, up to the cap, on
/// the least busy session thread when there are `cores`.
pub async fn accept_loop<L: Accept>(
    l: Arc<L>,
    listener: tokio::net::TcpListener,
    cores: Option<Arc<crate::cores::Cores>>,
    stop: impl Future<Output = ()>,
) {
    let cap = Arc::new(tokio::sync::Semaphore::new(
        l.gateway().control.config().limits.max_connections,
    ));
    tokio::pin!(stop);
    loop {
        let (tcp, addr) = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let Ok(permit) = Arc::clone(&cap).try_acquire_owned() else {
            Metrics::inc(&l.gateway().metrics.connections_refused_total);
            tokio::spawn(L::over_cap(tcp));
            continue;
        };
        let this = Arc::clone(&l);
        let session = move |tcp| async move {
            let _permit = permit;
            this.connection(tcp, addr).await;
        };
        match &cores {
            Some(cores) => cores.spawn(tcp, session),
            None => {
                tokio::spawn(session(tcp));
            }
        }
    }
}

/// Turns finished statements into `query` events (waiting when the log is behind).
pub struct EventSink<'a> {
    link: &'a RelayLink,
    /// The session's fields as its events carry them: the link's, until the client sets
    /// another application name.
    common: Arc<Common>,
}

impl<'a> EventSink<'a> {
    pub fn new(link: &'a RelayLink) -> Self {
        EventSink {
            link,
            common: Arc::clone(&link.common),
        }
    }

    /// How the relay ended, for `session_ended`, with the application name the client set
    /// during the session, if it set one.
    pub fn end_of(
        &self,
        ended: crate::relay::Ended,
        counters: &crate::relay::Counters,
    ) -> RelayEnd {
        let mut end = self.link.end_of(ended, counters);
        if !Arc::ptr_eq(&self.common, &self.link.common) {
            end.application_name = Some(self.common.application_name.clone());
        }
        end
    }
}

impl crate::relay::Sink for EventSink<'_> {
    async fn outcome(&mut self, o: crate::protocol::Outcome) {
        Metrics::inc(&self.link.metrics.queries_total);
        if let Some(name) = &o.application_name
            && **name != *self.common.application_name
        {
            self.common = Arc::new(self.common.renamed(name));
        }
        if !self.link.statements {
            return;
        }
        let status = if o.error_code.is_some() {
            "error"
        } else {
            "ok"
        };
        let event = Event {
            common: Arc::clone(&self.common),
            kind: Kind::Query {
                statement: o.statement,
                op: o.op,
                params: o.params,
                duration_us: o.duration_us,
                rows: o.rows,
                status,
                error_code: o.error_code,
            },
        };
        let _ = self.link.recorder.record(event).await;
    }
}

impl RelayLink {
    /// Resolves with the message for the client once the session is told to end.
    pub fn stop_signal(&self) -> impl Future<Output = String> + Send + 'static {
        let mut end = self.end.clone();
        async move {
            loop {
                if let Some(reason) = end.borrow_and_update().clone() {
                    return reason.message();
                }
                if end.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// How the relay ended (`EventSink::end_of` adds what the client changed).
    fn end_of(&self, ended: crate::relay::Ended, counters: &crate::relay::Counters) -> RelayEnd {
        use crate::relay::Ended;
        let (ended_by, error) = match ended {
            Ended::ClientTerminated | Ended::Held | Ended::ClientClosed => ("client", None),
            Ended::UpstreamClosed(code) => (
                "upstream",
                code.map(|c| format!("upstream ended the session ({c})")),
            ),
            Ended::Stopped => {
                let reason = self.end.borrow().clone();
                (
                    reason.as_ref().map_or("killed", |r| r.ended_by()),
                    reason.map(|r| format!("{r:?}")),
                )
            }
            Ended::Failed(e) => ("error", Some(e)),
        };
        RelayEnd {
            ended_by,
            error,
            bytes_in: counters.bytes_in,
            bytes_out: counters.bytes_out,
            queries: counters.queries,
            application_name: None,
        }
    }
}
