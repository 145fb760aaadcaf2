//! The PostgreSQL side of the login sequence: pgwire for the client, postgres-protocol
//! upstream, then the raw relay. Also the listener loop with its connection cap.

use std::sync::Arc;

use dashmap::DashMap;
use futures::StreamExt;
use pgwire::api::ClientInfo;
use pgwire::api::auth::driver::{AuthDriver, AuthOutcome};
use pgwire::api::auth::mechanism::AuthMechanismFactory;
use pgwire::api::auth::{
    AuthSource, LoginInfo, Password, protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireFrontendMessage;
use pgwire::messages::startup::Authentication;
use pgwire::tokio::server::MaybeTls;
use tokio::net::TcpStream;

use super::{End, Frontend, Gateway, Hello, Next, Refusal, RelayLink, SessionError};
use crate::access::{Identity, KillParty, Permit};
use crate::guardrail::{Guard, MaskCheck};
use crate::masking::catalog;
use crate::model::Protocol;
use crate::protocol::postgres::backend;
use crate::protocol::postgres::front::{
    CancelKeys, PgFramed, ProxyKeys, ProxyParams, UpstreamKey, UpstreamParams, send_fatal, sqlstate,
};
use crate::relay::postgres::masking::PgMasking;
use crate::relay::postgres::sides;
use crate::relay::{self, Counters, Ends};
use crate::snapshot::Snapshot;
use crate::tls::Stream;
use crate::upstream::{Lease, PostgresUpstream as Upstream};

/// Shared by every PostgreSQL connection.
pub struct PgListener {
    pub gw: Arc<Gateway>,
    pub tls: Option<pgwire::tokio::TlsAcceptor>,
    pub driver: Arc<AuthDriver<ProxyParams, Identity>>,
    pub cancel: Arc<CancelKeys>,
    /// Live sessions by upstream backend pid: whose they are, for `pg_terminate_backend`
    /// and `pg_cancel_backend` (`access::may_kill`).
    conns: Arc<DashMap<i32, KillParty>>,
    /// Cancel requests a minute per client address (`limits.cancel_requests_per_address`).
    cancels: Option<governor::DefaultKeyedRateLimiter<std::net::IpAddr>>,
}

impl PgListener {
    pub fn new(gw: Arc<Gateway>, tls: Option<pgwire::tokio::TlsAcceptor>) -> PgListener {
        let per_minute = gw.control.config().limits.cancel_requests_per_address;
        let cancel = Arc::new(CancelKeys::default());
        let driver = AuthDriver::new(ProxyParams)
            .with_pid_secret_key_generator(Arc::new(ProxyKeys(Arc::clone(&cancel))));
        PgListener {
            gw,
            tls,
            driver: Arc::new(driver),
            cancel,
            conns: Arc::default(),
            cancels: std::num::NonZeroU32::new(per_minute)
                .map(|n| governor::RateLimiter::keyed(governor::Quota::per_minute(n))),
        }
    }
}

impl super::Accept for PgListener {
    fn gateway(&self) -> &Arc<Gateway> {
        &self.gw
    }

    /// A FATAL 53300 sent at once: libpq reads it even in answer to an SSLRequest (as
    /// PostgreSQL's own postmaster does when it cannot start a backend).
    fn too_many() -> Vec<u8> {
        crate::protocol::postgres::front::fatal_bytes(
            sqlstate::TOO_MANY_CONNECTIONS,
            "sorry, too many clients already",
        )
        .to_vec()
    }

    async fn connection(self: Arc<Self>, tcp: TcpStream, addr: std::net::SocketAddr) {
        let timeout = self.gw.control.config().limits.login_timeout;
        let framed = match tokio::time::timeout(
            timeout,
            pgwire::tokio::server::negotiate_tls::<()>(tcp, self.tls.clone()),
        )
        .await
        {
            Ok(Ok(Some(f))) => f,
            Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return,
        };
        let config = self.gw.control.config();
        let fe = PgFrontend {
            framed,
            listener: &self,
            require_tls: config.tls.as_ref().is_some_and(|t| t.require),
            allow_cleartext: config.tls.as_ref().is_some_and(|t| t.allow_cleartext),
            params: Vec::new(),
            final_message: None,
            me: None,
            client: addr.ip(),
        };
        super::run(&self.gw, fe, Protocol::Postgres, addr).await;
    }
}

struct PgFrontend<'a> {
    framed: PgFramed,
    listener: &'a PgListener,
    require_tls: bool,
    allow_cleartext: bool,
    params: Vec<(String, String)>,
    final_message: Option<Authentication>,
    /// This session as a backend signal sees it, and its upstream pid.
    me: Option<(i32, KillParty)>,
    client: std::net::IpAddr,
}

/// Cleartext password checks for pgwire, against the snapshot.
#[derive(Debug)]
struct SnapshotSource(Arc<Snapshot>);

#[async_trait::async_trait]
impl AuthSource<Identity> for SnapshotSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        Err(PgWireError::InvalidPassword(
            login.user().unwrap_or_default().to_owned(),
        ))
    }

    async fn verify_password(
        &self,
        login: &LoginInfo,
        presented: &[u8],
    ) -> PgWireResult<Option<Identity>> {
        let user = login.user().unwrap_or_default();
        let presented = std::str::from_utf8(presented).unwrap_or_default();
        crate::auth::verify_cleartext(&self.0, user, presented)
            .ok_or_else(|| PgWireError::InvalidPassword(user.to_owned()))
            .map(Some)
    }
}

fn auth_failed(e: PgWireError) -> SessionError {
    match e {
        PgWireError::IoError(_) => SessionError::Closed,
        other => SessionError::AuthFailed(other.to_string()),
    }
}

impl Frontend for PgFrontend<'_> {
    type Upstream = Upstream;

    async fn handshake(&mut self) -> Result<Option<Hello>, SessionError> {
        let startup = match self.framed.next().await {
            Some(Ok(PgWireFrontendMessage::Startup(s))) => s,
            Some(Ok(PgWireFrontendMessage::CancelRequest(c))) => {
                let limits = &self.listener.cancels;
                if limits
                    .as_ref()
                    .is_some_and(|l| l.check_key(&self.client).is_err())
                {
                    crate::metrics::Metrics::inc(&self.listener.gw.metrics.cancels_refused_total);
                    tracing::warn!(client = %self.client, "cancel request dropped: over limits.cancel_requests_per_address");
                    return Ok(None);
                }
                if let Some(up) = self.listener.cancel.lookup(c.pid, &c.secret_key)
                    && let Err(e) = backend::send_cancel(&up.address, up.pid, up.secret).await
                {
                    tracing::warn!(error = %e, "forwarding a cancel request failed");
                }
                // End TLS properly (close_notify): libpq 17+ negotiates TLS for its cancel
                // connection and takes a bare close as a failed cancel.
                let _ = futures::SinkExt::close(&mut self.framed).await;
                return Ok(None);
            }
            Some(Ok(other)) => {
                return Err(SessionError::Protocol(format!(
                    "expected a startup message, got {other:?}"
                )));
            }
            Some(Err(e)) => return Err(SessionError::Protocol(e.to_string())),
            None => return Err(SessionError::Closed),
        };
        protocol_negotiation(&mut self.framed, &startup)
            .await
            .map_err(|e| SessionError::Protocol(e.to_string()))?;
        save_startup_parameters_to_metadata(&mut self.framed, &startup);
        let user = startup.parameters.get("user").cloned().unwrap_or_default();
        let resource_role = startup
            .parameters
            .get("database")
            .cloned()
            .unwrap_or_else(|| user.clone());
        self.params = startup
            .parameters
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let hello = Hello {
            application_name: startup
                .parameters
                .get("application_name")
                .cloned()
                .unwrap_or_default(),
            user,
            resource_role,
            tls: self.framed.is_secure(),
        };
        if hello.user.is_empty() {
            return Err(SessionError::Protocol(
                "no user in the startup message".into(),
            ));
        }
        if self.require_tls && !hello.tls {
            return Err(SessionError::TlsRequired);
        }
        Ok(Some(hello))
    }

    async fn authenticate(
        &mut self,
        hello: &Hello,
        snapshot: &Arc<Snapshot>,
    ) -> Result<Identity, SessionError> {
        let source = Arc::new(SnapshotSource(Arc::clone(snapshot)));
        let mechanism = if hello.tls && self.allow_cleartext {
            pgwire::api::auth::cleartext::CleartextPasswordAuth::new(source).create()
        } else {
            Box::new(crate::auth::pg_scram::TokenAwareScram::new(
                Arc::clone(&source.0),
                &hello.user,
            ))
        };
        let driver = Arc::clone(&self.listener.driver);
        let mut outcome = driver
            .begin_authentication(&mut self.framed, mechanism)
            .await
            .map_err(auth_failed)?;
        loop {
            if let AuthOutcome::Authenticated {
                identity,
                final_message,
            } = outcome
            {
                self.final_message = final_message;
                let identity = identity.ok_or_else(|| {
                    SessionError::AuthFailed(format!("unknown user {}", hello.user))
                })?;
                return Ok(identity);
            }
            let message = match self.framed.next().await {
                Some(Ok(PgWireFrontendMessage::PasswordMessageFamily(m))) => m,
                Some(Ok(_)) => {
                    return Err(SessionError::Protocol("expected a password message".into()));
                }
                Some(Err(e)) => return Err(SessionError::Protocol(e.to_string())),
                None => return Err(SessionError::Closed),
            };
            outcome = driver
                .advance_authentication(&mut self.framed, message)
                .await
                .map_err(auth_failed)?;
        }
    }

    fn upstream_params(&self) -> &Vec<(String, String)> {
        &self.params
    }

    fn settings(&self, permit: &Permit) -> Result<Vec<(String, String)>, SessionError> {
        let settings = backend::settings(&self.params).map_err(SessionError::Protocol)?;
        crate::access::startup_settings(permit.resource_role(), &settings)?;
        Ok(settings)
    }

    async fn accept(
        &mut self,
        permit: &Permit,
        lease: &mut Lease<Upstream>,
    ) -> Result<(), SessionError> {
        let up = &lease.conn;
        let party = KillParty::of(permit);
        self.listener.conns.insert(up.pid, party.clone());
        self.me = Some((up.pid, party));
        let ext = self.framed.session_extensions();
        ext.insert(UpstreamParams(self.client_view(&up.params)));
        ext.insert(UpstreamKey {
            address: up.address.clone(),
            pid: up.pid,
            secret: up.secret,
        });
        let final_message = self.final_message.take();
        let driver = Arc::clone(&self.listener.driver);
        driver
            .complete_authentication(&mut self.framed, final_message)
            .await
            .map_err(|_| SessionError::Closed)
    }

    async fn refuse(&mut self, hello: &Hello, refusal: Refusal) {
        let (code, message) = refusal_message(hello, refusal);
        send_fatal(&mut self.framed, code, &message).await;
        let _ = futures::SinkExt::close(&mut self.framed).await;
    }

    async fn relay(self, lease: Lease<Upstream>, link: RelayLink) -> (End, Next<Self, Upstream>) {
        let (pid, secret) = self.framed.pid_and_secret_key();
        let may_signal = self.signal_target();
        let mut parts = self.framed.into_parts();
        let (mut conn, terms) = lease.split();
        let masking = match masking(&self.listener.gw, &link, &mut conn).await {
            Ok(m) => m,
            Err(why) => {
                let bytes = crate::protocol::postgres::front::fatal_bytes(
                    sqlstate::INSUFFICIENT_PRIVILEGE,
                    &why,
                );
                let _ = tokio::io::AsyncWriteExt::write_all(&mut parts.io, &bytes).await;
                let end = End::bare(crate::audit::EndedBy::Error, Some(why));
                return (end, Next::Done);
            }
        };
        let Upstream {
            stream,
            leftover,
            params,
            pid: up_pid,
            secret: up_secret,
            address,
        } = conn;
        // The client's bytes read past the login, copied out: the framing buffers (8 KiB
        // each) are not kept for the session's life (RSS per idle session).
        let first_in = parts.read_buf.to_vec();
        if !parts.write_buf.is_empty() {
            use tokio::io::AsyncWriteExt;
            let _ = parts.io.write_all(&parts.write_buf).await;
            let _ = parts.io.flush().await;
        }
        (parts.read_buf, parts.write_buf) = Default::default();
        let stop = link.stop_signal();
        let mut observer = super::EventSink::new(&link);
        let mut counters = Counters::default();
        let (first_in, first_out) = (&first_in[..], &leftover[..]);
        let (mut c, mut s) = sides::pair();
        c.hold_goodbye = terms.keep;
        c.may_signal = may_signal;
        c.guard = link.guard.clone();
        if let Some((m, check)) = masking {
            s.mask(m);
            c.guard = Some(Guard::masked(
                c.guard.take(),
                check,
                Protocol::Postgres,
                "public",
            ));
        }
        let (ended, upstream) = match (parts.io, stream) {
            // Plain TCP both ways: owned halves, no lock per read or write.
            (MaybeTls::Plain(client), Stream::Plain(upstream)) => {
                let (client_r, client_w) = client.into_split();
                let (mut up_r, mut up_w) = upstream.into_split();
                let ends = Ends {
                    client_r,
                    client_w,
                    up_r: &mut up_r,
                    up_w: &mut up_w,
                    client_first: first_in,
                    upstream_first: first_out,
                };
                let ended =
                    relay::relay(ends, &mut c, &mut s, stop, &mut observer, &mut counters).await;
                (ended, up_r.reunite(up_w).ok().map(Stream::Plain))
            }
            (client, upstream) => {
                let (client_r, client_w) = tokio::io::split(client);
                let (mut up_r, mut up_w) = tokio::io::split(upstream);
                let ends = Ends {
                    client_r,
                    client_w,
                    up_r: &mut up_r,
                    up_w: &mut up_w,
                    client_first: first_in,
                    upstream_first: first_out,
                };
                let ended =
                    relay::relay(ends, &mut c, &mut s, stop, &mut observer, &mut counters).await;
                (ended, Some(up_r.unsplit(up_w)))
            }
        };
        self.listener.cancel.remove(pid, &secret);
        if let Some((up_pid, _)) = &self.me {
            self.listener.conns.remove(up_pid);
        }
        if ended == relay::Ended::Held
            && let Some(stream) = upstream
        {
            // The client's Terminate was withheld: the upstream is kept or told goodbye.
            let conn = Upstream {
                stream,
                params,
                pid: up_pid,
                secret: up_secret,
                leftover: Default::default(),
                address,
            };
            let lease = terms.rejoin(conn);
            self.listener
                .gw
                .upstreams
                .release(lease, s.reusable())
                .await;
        }
        (observer.end_of(ended, &counters), Next::Done)
    }
}

/// The session's masking — the relay's row rewriting and the statement check — with the
/// resource's catalog. `None`: nothing is masked.
async fn masking(
    gw: &Gateway,
    link: &RelayLink,
    up: &mut Upstream,
) -> Result<Option<(PgMasking, MaskCheck)>, String> {
    let Some(masker) = link.masker.clone() else {
        return Ok(None);
    };
    let resource = link.common.resource.as_str();
    let catalog = catalog::pg_catalog(&gw.catalogs, resource, up, &masker).await?;
    let check = catalog::check(&masker, catalog.views());
    let catalogs = Arc::clone(&gw.catalogs);
    let m = PgMasking::new(masker, catalog, catalogs, Arc::from(resource));
    Ok(Some((m, check)))
}

impl PgFrontend<'_> {
    /// The upstream's parameters as the client sees them: its own `application_name`,
    /// not the identified one the gateway logged in with.
    fn client_view(&self, upstream: &[(String, String)]) -> Vec<(String, String)> {
        let own = self
            .params
            .iter()
            .find(|(k, _)| k == "application_name")
            .map_or(String::new(), |(_, v)| v.clone());
        let mut out = upstream.to_vec();
        for (k, v) in &mut out {
            if k == "application_name" {
                v.clone_from(&own);
            }
        }
        out
    }

    /// Which backend pids this session may signal.
    fn signal_target(&self) -> crate::relay::postgres::sides::SignalTarget {
        let conns = Arc::clone(&self.listener.conns);
        let me = self.me.as_ref().map(|(_, party)| party.clone());
        Box::new(move |pid| {
            let (Some(me), Some(target)) = (me.as_ref(), conns.get(&pid)) else {
                return false;
            };
            crate::access::may_kill(me, &target)
        })
    }
}

/// The SQLSTATE and message a refused client gets: one message shape for a bad password
/// and one for "not allowed", revealing nothing about what exists.
fn refusal_message(hello: &Hello, refusal: Refusal) -> (&'static str, String) {
    let role = &hello.resource_role;
    match refusal {
        Refusal::BadCredentials => (
            sqlstate::INVALID_PASSWORD,
            format!("password authentication failed for user \"{}\"", hello.user),
        ),
        Refusal::NoResourceRole => (
            sqlstate::INVALID_AUTHORIZATION,
            format!(
                "user \"{}\" may not use resource role \"{role}\"",
                hello.user
            ),
        ),
        // One shape for "not allowed" and "no such resource role" (nothing revealed),
        // with the convention a client that sent no database name needs.
        Refusal::NotAllowed | Refusal::UnknownResourceRole => (
            sqlstate::INVALID_AUTHORIZATION,
            format!(
                "user \"{user}\" may not use resource role \"{role}\": name a resource role as the database (psql \"host=… user={user} dbname=ROLE\"; `portcullis access show --user {user}` lists yours)",
                user = hello.user
            ),
        ),
        Refusal::TlsRequired => (
            sqlstate::INVALID_AUTHORIZATION,
            "this gateway requires TLS (use sslmode=require)".into(),
        ),
        Refusal::ApprovalRequired(message) => (sqlstate::INVALID_AUTHORIZATION, message),
        Refusal::Parameter(name) => (
            sqlstate::INSUFFICIENT_PRIVILEGE,
            format!(
                "startup parameter \"{name}\" is not forwarded by resource role \"{role}\" (forward_options)"
            ),
        ),
        Refusal::UpstreamUnreachable => (
            sqlstate::CANNOT_CONNECT,
            format!("could not connect to the database behind resource role \"{role}\""),
        ),
        Refusal::UpstreamRefused => (
            sqlstate::REJECTED_CONNECTION,
            format!(
                "the database behind resource role \"{role}\" refused the gateway's login; the monitoring log has the reason"
            ),
        ),
        Refusal::Timeout => (sqlstate::CONNECTION_FAILURE, "login timed out".into()),
        Refusal::StoreStale => (
            sqlstate::CANNOT_CONNECT_NOW,
            "the gateway cannot reach its store; new sessions are refused until it can".into(),
        ),
        Refusal::LogUnavailable => (
            sqlstate::CANNOT_CONNECT_NOW,
            "the gateway cannot write its monitoring log; new sessions are refused until it can"
                .into(),
        ),
        Refusal::Protocol(m) => (
            sqlstate::PROTOCOL_VIOLATION,
            format!("protocol violation: {m}"),
        ),
    }
}
