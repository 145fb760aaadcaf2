//! The PostgreSQL side of the login sequence: pgwire for the client, postgres-protocol
//! upstream, then the raw relay. Also the listener loop with its connection cap.

use std::sync::Arc;

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

use crate::tls::Stream;

use super::{Frontend, Gateway, Hello, RelayEnd, RelayLink, SessionError};
use crate::access::{Identity, Permit, Snapshot};
use crate::model::Protocol;
use crate::protocol::postgres::backend::{self, BackendError, Login, Upstream};
use crate::protocol::postgres::front::{
    CancelKeys, PgFramed, ProxyKeys, ProxyParams, UpstreamKey, UpstreamParams, send_fatal, sqlstate,
};
use crate::protocol::postgres::observe::sides;
use crate::relay::{self, Counters, Ends};
use crate::upstream::pool::{Kept, Key};

/// Shared by every PostgreSQL connection.
pub struct PgListener {
    pub gw: Arc<Gateway>,
    pub tls: Option<pgwire::tokio::TlsAcceptor>,
    pub driver: Arc<AuthDriver<ProxyParams, Identity>>,
    pub cancel: Arc<CancelKeys>,
}

impl PgListener {
    pub fn new(gw: Arc<Gateway>, tls: Option<pgwire::tokio::TlsAcceptor>) -> PgListener {
        let cancel = Arc::new(CancelKeys::default());
        let driver = AuthDriver::new(ProxyParams)
            .with_pid_secret_key_generator(Arc::new(ProxyKeys(Arc::clone(&cancel))));
        PgListener {
            gw,
            tls,
            driver: Arc::new(driver),
            cancel,
        }
    }
}

impl super::Accept for PgListener {
    fn gateway(&self) -> &Gateway {
        &self.gw
    }

    async fn over_cap(tcp: TcpStream) {
        refuse_over_cap(tcp).await
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
            upstream_address: String::new(),
            kept: None,
        };
        super::run(&self.gw, fe, Protocol::Postgres, addr).await;
    }
}

async fn refuse_over_cap(tcp: TcpStream) {
    if let Ok(Ok(Some(mut f))) = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        pgwire::tokio::server::negotiate_tls::<()>(tcp, None),
    )
    .await
    {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), f.next()).await;
        send_fatal(
            &mut f,
            sqlstate::TOO_MANY_CONNECTIONS,
            "sorry, too many clients already",
        )
        .await;
    }
}

struct PgFrontend<'a> {
    framed: PgFramed,
    listener: &'a PgListener,
    require_tls: bool,
    allow_cleartext: bool,
    params: Vec<(String, String)>,
    final_message: Option<Authentication>,
    /// The resource's address, for forwarding cancel requests.
    upstream_address: String,
    /// Where the upstream goes back when the session ends idle (`limits.idle_upstreams`).
    kept: Option<Key>,
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

    async fn handshake(&mut self, _gw: &Gateway) -> Result<Option<Hello>, SessionError> {
        let startup = match self.framed.next().await {
            Some(Ok(PgWireFrontendMessage::Startup(s))) => s,
            Some(Ok(PgWireFrontendMessage::CancelRequest(c))) => {
                if let Some(up) = self.listener.cancel.lookup(c.pid, &c.secret_key)
                    && let Err(e) = backend::send_cancel(&up.address, up.pid, up.secret).await
                {
                    tracing::warn!(error = %e, "forwarding a cancel request failed");
                }
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
            Box::new(super::pg_scram::TokenAwareScram::new(
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

    async fn connect(&mut self, permit: &Permit, gw: &Gateway) -> Result<Upstream, SessionError> {
        let resource = permit.resource();
        self.upstream_address = resource.address.clone();
        let unreachable =
            |e: String| SessionError::UpstreamUnreachable(format!("{}: {e}", resource.name));
        if gw.pool.enabled() {
            let params = backend::forwarded(&self.params).cloned().collect();
            let key = Key::new(permit, params);
            let kept = gw.pool.take(&key);
            self.kept = Some(key);
            if let Some(Kept::Postgres(up)) = kept {
                crate::metrics::Metrics::inc(&gw.metrics.upstreams_reused_total);
                return Ok(up);
            }
        }
        let tcp = crate::upstream::connect(permit)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let connector = gw.upstream_tls.connector(resource.tls);
        let name = crate::tls::server_name(&resource.address);
        let stream = backend::negotiate_tls(tcp, resource.tls, connector, name)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let role = permit.resource_role();
        let login = Login {
            user: &role.user,
            password: role.secret.as_ref().map(|s| s.expose()),
            database: &role.database,
            params: &self.params,
        };
        backend::login(stream, &login).await.map_err(|e| match e {
            BackendError::Io(e) => unreachable(e.to_string()),
            other => SessionError::UpstreamRefused(format!("{}: {other}", resource.name)),
        })
    }

    async fn accept(&mut self, up: &mut Upstream, _gw: &Gateway) -> Result<(), SessionError> {
        let ext = self.framed.session_extensions();
        ext.insert(UpstreamParams(up.params.clone()));
        ext.insert(UpstreamKey {
            address: self.upstream_address.clone(),
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

    async fn refuse(&mut self, hello: &Hello, error: &SessionError) {
        let (code, message) = match error {
            SessionError::Closed => return,
            SessionError::AuthFailed(_) => (
                sqlstate::INVALID_PASSWORD,
                format!("password authentication failed for user \"{}\"", hello.user),
            ),
            SessionError::Denied(_) | SessionError::NoResourceRole => (
                sqlstate::INVALID_AUTHORIZATION,
                format!(
                    "user \"{}\" may not use resource role \"{}\"",
                    hello.user, hello.resource_role
                ),
            ),
            SessionError::TlsRequired => (
                sqlstate::INVALID_AUTHORIZATION,
                "this gateway requires TLS (use sslmode=require)".into(),
            ),
            SessionError::UpstreamUnreachable(_) => (
                sqlstate::CANNOT_CONNECT,
                format!(
                    "could not connect to the database behind resource role \"{}\"",
                    hello.resource_role
                ),
            ),
            SessionError::UpstreamRefused(_) => (
                sqlstate::REJECTED_CONNECTION,
                format!(
                    "the database behind resource role \"{}\" refused the gateway's login; the monitoring log has the reason",
                    hello.resource_role
                ),
            ),
            SessionError::Timeout => (sqlstate::CONNECTION_FAILURE, "login timed out".into()),
            SessionError::LogUnavailable => (
                sqlstate::CANNOT_CONNECT_NOW,
                "the gateway cannot write its monitoring log; new sessions are refused until it can".into(),
            ),
            SessionError::Protocol(m) => (
                sqlstate::PROTOCOL_VIOLATION,
                format!("protocol violation: {m}"),
            ),
        };
        send_fatal(&mut self.framed, code, &message).await;
    }

    async fn relay(self, up: Upstream, link: RelayLink) -> RelayEnd {
        let (pid, secret) = self.framed.pid_and_secret_key();
        let parts = self.framed.into_parts();
        let Upstream {
            stream,
            leftover,
            params,
            pid: up_pid,
            secret: up_secret,
        } = up;
        let stop = link.stop_signal();
        let mut observer = super::EventSink::new(&link);
        let mut counters = Counters::default();
        let (first_in, first_out) = (&parts.read_buf[..], &leftover[..]);
        let (mut c, mut s) = sides::pair();
        c.hold_goodbye = self.kept.is_some();
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
        if ended == relay::Ended::Held
            && let Some(stream) = upstream
        {
            // The client's Terminate was withheld: the upstream is kept or told goodbye.
            let up = Upstream {
                stream,
                params,
                pid: up_pid,
                secret: up_secret,
                leftover: Default::default(),
            };
            let pool = &self.listener.gw.pool;
            pool.release(self.kept, s.reusable(), Kept::Postgres(up))
                .await;
        }
        observer.end_of(ended, &counters)
    }
}
