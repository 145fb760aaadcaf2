//! The login sequence, written once for both protocols and for every session that follows
//! another on the same client connection (MySQL `COM_CHANGE_USER`):
//!
//! handshake → authenticate → `access::decide` → admit → upstream login → accept → start →
//! relay → end, and again after a change of user.
//!
//! A login that names no resource role is a control session where the protocol has them
//! (MySQL: the client's Ctrl-C, `mariadb-admin`): authenticated, registered and logged like
//! any session, with no upstream.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::{Admitted, Frontend, Gateway, Hello, Next, SessionError};
use crate::access::{Identity, Permit, decide_native};
use crate::audit::{Common, Kind};
use crate::metrics::Metrics;
use crate::model::Protocol;
use crate::snapshot::Snapshot;
use crate::upstream::Lease;

/// What a login made: a session with its upstream, or a control session.
enum LoggedIn<U> {
    Session(Admitted, Lease<U>, Vec<(String, String)>),
    Control(Admitted, Identity),
}

/// Who is logging in, as the refusals and the events name them.
struct Attempt {
    protocol: Protocol,
    client: IpAddr,
    common: Common,
    hello: Hello,
}

impl Attempt {
    fn new(protocol: Protocol, client: SocketAddr) -> Attempt {
        let id = uuid::Uuid::new_v4().to_string();
        Attempt {
            protocol,
            client: client.ip(),
            common: Common::new(&id, protocol.into(), client),
            hello: Hello::default(),
        }
    }

    /// The client's claim, in the events to come.
    fn claims(&mut self, hello: Hello) {
        self.common.user = hello.user.clone();
        self.common.resource_role = hello.resource_role.clone();
        self.common.application_name = hello.application_name.clone();
        self.common.tls = hello.tls;
        self.hello = hello;
    }

    /// The next session on the same connection: a new session id.
    fn next(&self) -> Attempt {
        let mut common = self.common.clone();
        common.json = Default::default();
        common.session_id = uuid::Uuid::new_v4().to_string();
        Attempt {
            protocol: self.protocol,
            client: self.client,
            common,
            hello: self.hello.clone(),
        }
    }
}

/// Runs one client connection through the login sequence and its sessions.
pub async fn run<F: Frontend>(
    gw: &Arc<Gateway>,
    mut fe: F,
    protocol: Protocol,
    client: SocketAddr,
) {
    let login_timeout = gw.control.config().limits.login_timeout;
    let mut attempt = Attempt::new(protocol, client);
    let login = tokio::time::timeout(login_timeout, login(gw, &mut fe, &mut attempt)).await;
    let mut logged_in = match login.unwrap_or(Err(SessionError::Timeout)) {
        Ok(Some(ok)) => ok,
        Ok(None) => return,
        Err(e) => return refuse(gw, &mut fe, &attempt, &e).await,
    };
    loop {
        let (admitted, upstream, settings) = match logged_in {
            LoggedIn::Session(a, u, s) => (a, u, s),
            LoggedIn::Control(admitted, identity) => {
                let session = admitted.start(Vec::new()).await;
                let end = fe.control(&identity, session.link()).await;
                return session.finish(end).await;
            }
        };
        let session = admitted.start(settings).await;
        let (end, next) = fe.relay(upstream, session.link()).await;
        session.finish(end).await;
        let Next::ChangeUser(again, old) = next else {
            return;
        };
        fe = again;
        attempt = attempt.next();
        let change = change_user(gw, &mut fe, &mut attempt, old);
        logged_in = match tokio::time::timeout(login_timeout, change).await {
            Ok(Ok(ok)) => ok,
            Ok(Err(e)) => return refuse(gw, &mut fe, &attempt, &e).await,
            Err(_) => return refuse(gw, &mut fe, &attempt, &SessionError::Timeout).await,
        };
    }
}

async fn refuse<F: Frontend>(gw: &Gateway, fe: &mut F, attempt: &Attempt, e: &SessionError) {
    refused(gw, &attempt.common, &attempt.hello, e).await;
    if let Some(refusal) = e.refusal(&attempt.hello.resource_role) {
        fe.refuse(&attempt.hello, refusal).await;
    }
}

async fn login<F: Frontend>(
    gw: &Arc<Gateway>,
    fe: &mut F,
    attempt: &mut Attempt,
) -> Result<Option<LoggedIn<F::Upstream>>, SessionError> {
    let Some(hello) = fe.handshake().await? else {
        return Ok(None);
    };
    attempt.claims(hello.clone());
    if !gw.recorder.healthy() {
        return Err(SessionError::LogUnavailable);
    }
    gw.control
        .fresh_enough()
        .map_err(|stale| SessionError::StoreStale(stale.as_secs()))?;
    let snapshot = gw.control.snapshot();
    let identity = authenticated(gw, attempt, fe.authenticate(&hello, &snapshot).await)?;
    if hello.resource_role.is_empty() {
        if !F::CONTROL {
            return Err(SessionError::NoResourceRole);
        }
        let admitted = gw.admit_control(attempt.common.clone(), &identity)?;
        fe.accept_control().await?;
        return Ok(Some(LoggedIn::Control(admitted, identity)));
    }
    let (admitted, permit, settings) = admit(gw, fe, attempt, &snapshot, &identity)?;
    let mut upstream = gw
        .upstreams
        .login::<F::Upstream>(&permit, fe.upstream_params(), &gw.metrics)
        .await?;
    fe.accept(&permit, &mut upstream).await?;
    Ok(Some(LoggedIn::Session(admitted, upstream, settings)))
}

/// The lockout first, then the client's proof; a failure counts towards a lockout.
fn authenticated(
    gw: &Gateway,
    attempt: &Attempt,
    proof: Result<Identity, SessionError>,
) -> Result<Identity, SessionError> {
    let user = &attempt.hello.user;
    gw.lockout
        .check(user, attempt.client)
        .map_err(SessionError::AuthFailed)?;
    let identity = match proof {
        Err(SessionError::AuthFailed(detail)) => {
            gw.lockout.failed(user, attempt.client);
            let why = crate::auth::refusal(&gw.control.snapshot(), user, None);
            return Err(SessionError::AuthFailed(format!("{why} ({detail})")));
        }
        other => other?,
    };
    gw.control.token_used(&identity);
    Ok(identity)
}

type Admission = (Admitted, Permit, Vec<(String, String)>);

/// The decision, the startup settings it allows, and the session registered.
fn admit<F: Frontend>(
    gw: &Arc<Gateway>,
    fe: &F,
    attempt: &Attempt,
    snapshot: &Snapshot,
    identity: &Identity,
) -> Result<Admission, SessionError> {
    let role = &attempt.hello.resource_role;
    let permit = decide_native(snapshot, identity, role, attempt.protocol)?;
    let settings = fe.settings(&permit)?;
    let admitted = gw.admit(attempt.common.clone(), permit.clone())?;
    Ok((admitted, permit, settings))
}

/// A change of user on the same connection: proven against the gateway's users and
/// decided like a login; the upstream is reset when the new session may use it as it is
/// logged in, replaced otherwise.
async fn change_user<F: Frontend>(
    gw: &Arc<Gateway>,
    fe: &mut F,
    attempt: &mut Attempt,
    old: Lease<F::Upstream>,
) -> Result<LoggedIn<F::Upstream>, SessionError> {
    let snapshot = gw.control.snapshot();
    let (hello, proof) = fe.change_user(&snapshot).await?;
    attempt.claims(hello);
    let identity = authenticated(gw, attempt, proof)?;
    if attempt.hello.resource_role.is_empty() {
        return Err(SessionError::NoResourceRole);
    }
    let (admitted, permit, settings) = admit(gw, fe, attempt, &snapshot, &identity)?;
    let mut upstream = gw
        .upstreams
        .change::<F::Upstream>(old, &permit, fe.upstream_params(), &gw.metrics)
        .await?;
    fe.accept(&permit, &mut upstream).await?;
    Ok(LoggedIn::Session(admitted, upstream, settings))
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
