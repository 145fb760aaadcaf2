//! The MySQL side of the login sequence: our own HandshakeV10 announcing the upstream's
//! server version (`versions`), optionally upgraded to TLS, `caching_sha2_password` fast
//! path or `mysql_native_password` (by AuthSwitchRequest) against stored verifiers, the
//! upstream login with the client's capabilities, then the shared relay. A login without
//! a database is a control session (`control`); `COM_CHANGE_USER` ends one session and,
//! re-authenticated and decided again, starts the next on the same connection.

mod conns;
mod control;
mod versions;

use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::{
    Accept, End, EventSink, Frontend, Gateway, Hello, Next, Refusal, RelayLink, SessionError,
};
use crate::access::{Identity, KillParty, Permit};
use crate::auth::mysql::{Scramble, verify_scramble};
use crate::guardrail::{Guard, MaskCheck};
use crate::model::Protocol;
use crate::protocol::mysql::handshake::{self, ClientHello, NATIVE, SHA2};
use crate::protocol::mysql::packet::{self, caps, code};
use crate::relay::mysql as observe;
use crate::relay::mysql_masking::MyMasking;
use crate::relay::{self, Counters, Ended, Ends};
use crate::snapshot::Snapshot;
use crate::tls::Stream;
use crate::upstream::{Lease, MysqlUpstream as Upstream};
use conns::{Conn, Conns};
use versions::Versions;

pub struct MyListener {
    pub gw: Arc<Gateway>,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Live sessions by gateway connection id, for `KILL`.
    conns: Arc<Conns>,
    versions: Arc<Versions>,
    started: Instant,
}

impl MyListener {
    /// A listener; reads the MySQL resources' versions in the background.
    pub fn new(gw: Arc<Gateway>, tls: Option<tokio_rustls::TlsAcceptor>) -> MyListener {
        let versions = Arc::new(Versions::default());
        versions.probe(&gw.control.snapshot());
        MyListener {
            gw,
            tls,
            conns: Arc::default(),
            versions,
            started: Instant::now(),
        }
    }
}

/// The client connection, plain or upgraded to TLS after an SSLRequest.
enum ClientStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Accept for MyListener {
    fn gateway(&self) -> &Arc<Gateway> {
        &self.gw
    }

    fn too_many() -> Vec<u8> {
        let e = packet::err(code::TOO_MANY_CONNECTIONS, "08004", "Too many connections");
        packet::frame(0, &e)
    }

    async fn connection(self: Arc<Self>, tcp: TcpStream, addr: std::net::SocketAddr) {
        let config = self.gw.control.config();
        let version = (self.versions).greeting(config.listen.mysql_server_version.as_deref());
        let fe = MyFrontend {
            client: Some(ClientStream::Plain(tcp)),
            listener: &self,
            require_tls: config.tls.as_ref().is_some_and(|t| t.require),
            seq: 0,
            scramble: [0; 20],
            hello: ClientHello::default(),
            id: self.conns.next_id(),
            version,
            yielded: None,
        };
        super::run(&self.gw, fe, Protocol::Mysql, addr).await;
    }
}

struct MyFrontend<'a> {
    client: Option<ClientStream>,
    listener: &'a MyListener,
    require_tls: bool,
    /// The sequence id of the last packet exchanged.
    seq: u8,
    scramble: [u8; 20],
    hello: ClientHello,
    /// The gateway connection id given to the client.
    id: u32,
    /// The server version the greeting announced.
    version: Arc<str>,
    /// A `COM_CHANGE_USER` the relay stopped at (header and body).
    yielded: Option<Vec<u8>>,
}

/// A fresh scramble: printable-range bytes, never NUL (part 2 is NUL-terminated).
fn new_scramble() -> [u8; 20] {
    let mut s: [u8; 20] = rand::random();
    for b in &mut s {
        *b = 0x21 + (*b % 0x5e);
    }
    s
}

impl MyFrontend<'_> {
    async fn read(&mut self) -> Result<Vec<u8>, SessionError> {
        let (seq, payload) = match self.client.as_mut() {
            Some(ClientStream::Plain(s)) => packet::read(s, packet::MAX_LOGIN_PACKET).await,
            Some(ClientStream::Tls(s)) => packet::read(s, packet::MAX_LOGIN_PACKET).await,
            None => return Err(SessionError::Closed),
        }
        .map_err(|_| SessionError::Closed)?;
        self.seq = seq;
        Ok(payload)
    }

    async fn write(&mut self, payload: &[u8]) -> Result<(), SessionError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        match self.client.as_mut() {
            Some(ClientStream::Plain(s)) => packet::write(s, seq, payload).await,
            Some(ClientStream::Tls(s)) => packet::write(s, seq, payload).await,
            None => return Err(SessionError::Closed),
        }
        .map_err(|_| SessionError::Closed)
    }
}

impl MyFrontend<'_> {
    /// `KILL n` from this session may reach session `n` (by either of its ids) when it is
    /// on the same resource and belongs to the same user (admins: anyone's).
    fn kill_target(&self, me: Option<Conn>) -> observe::KillTarget {
        let conns = Arc::clone(&self.listener.conns);
        Box::new(move |id| {
            let me = &me.as_ref()?.party;
            conns.target(id, me).ok().map(|c| c.thread_id)
        })
    }
}

impl MyFrontend<'_> {
    /// What the client's hello claims.
    fn claim(&self) -> Hello {
        Hello {
            user: self.hello.user.clone(),
            resource_role: self.hello.database.clone().unwrap_or_default(),
            application_name: self.hello.application_name(),
            tls: matches!(self.client, Some(ClientStream::Tls(_))),
        }
    }
}

impl Frontend for MyFrontend<'_> {
    type Upstream = Upstream;

    async fn handshake(&mut self) -> Result<Option<Hello>, SessionError> {
        self.scramble = new_scramble();
        let mut server_caps = caps::GATEWAY;
        if self.listener.tls.is_some() {
            server_caps |= caps::SSL;
        }
        let hs = packet::handshake(self.id, &self.scramble, server_caps, &self.version, NATIVE);
        self.seq = 0;
        let seq = self.seq;
        if let Some(ClientStream::Plain(s)) = self.client.as_mut() {
            packet::write(s, seq, &hs)
                .await
                .map_err(|_| SessionError::Closed)?;
        }
        let mut payload = self.read().await?;
        if handshake::is_ssl_request(&payload) {
            let (Some(acceptor), Some(ClientStream::Plain(tcp))) =
                (self.listener.tls.clone(), self.client.take())
            else {
                return Err(SessionError::Protocol(
                    "TLS requested but not configured".into(),
                ));
            };
            let stream = acceptor
                .accept(tcp)
                .await
                .map_err(|_| SessionError::Closed)?;
            self.client = Some(ClientStream::Tls(Box::new(stream)));
            payload = self.read().await?;
        }
        self.hello =
            handshake::parse_response(&payload, server_caps).map_err(SessionError::Protocol)?;
        let hello = self.claim();
        if self.require_tls && !hello.tls {
            return Err(SessionError::TlsRequired);
        }
        // No database: a control session, once authenticated (`Frontend::CONTROL`).
        Ok(Some(hello))
    }

    async fn authenticate(
        &mut self,
        hello: &Hello,
        snapshot: &Arc<Snapshot>,
    ) -> Result<Identity, SessionError> {
        let failed =
            || SessionError::AuthFailed(format!("wrong password or unknown user {}", hello.user));
        let mut plugin = match self.hello.plugin.as_str() {
            SHA2 => SHA2,
            NATIVE => NATIVE,
            _ => "",
        };
        let mut auth = self.hello.auth.clone();
        let scrambled = |plugin: &str, auth: &[u8]| {
            (plugin == SHA2 && auth.len() == 32) || (plugin == NATIVE && auth.len() == 20)
        };
        if !scrambled(plugin, &auth) {
            // Another plugin, or no scramble yet (a client whose plugin is not the one the
            // greeting named sends none): ask again, in caching_sha2_password when that is
            // the client's, else in mysql_native_password.
            plugin = if plugin == SHA2 { SHA2 } else { NATIVE };
            self.write(&packet::auth_switch(plugin, &self.scramble))
                .await?;
            auth = self.read().await?;
        }
        let kind = if plugin == SHA2 {
            Scramble::Sha2
        } else {
            Scramble::Native
        };
        let proven = verify_scramble(snapshot, &hello.user, kind, &self.scramble, &auth);
        if proven.is_some() && kind == Scramble::Sha2 {
            // AuthMoreData: fast authentication succeeded.
            self.write(&[0x01, 0x03]).await?;
        }
        let Some(identity) = proven else {
            // Over TLS, a client that sent a scramble may still hold a personal access
            // token: ask for the secret itself and check token or password — caching_sha2
            // full authentication (AuthMoreData `perform_full_authentication`), else a
            // switch to mysql_clear_password. Never without TLS (no RSA key exchange).
            if hello.tls && scrambled(plugin, &auth) {
                if plugin == SHA2 {
                    self.write(&[0x01, 0x04]).await?;
                } else {
                    self.write(&packet::auth_switch_clear()).await?;
                }
                let reply = self.read().await?;
                let presented = String::from_utf8_lossy(reply.strip_suffix(&[0]).unwrap_or(&reply))
                    .into_owned();
                return crate::auth::verify_cleartext(snapshot, &hello.user, &presented)
                    .ok_or_else(failed);
            }
            return Err(failed());
        };
        Ok(identity)
    }

    fn upstream_params(&self) -> &ClientHello {
        &self.hello
    }

    async fn accept(
        &mut self,
        permit: &Permit,
        lease: &mut Lease<Upstream>,
    ) -> Result<(), SessionError> {
        let resource = &permit.resource().name;
        self.listener.versions.learn(resource, &lease.conn.version);
        self.write(&packet::ok()).await?;
        let me = Conn {
            party: KillParty::of(permit),
            thread_id: lease.conn.thread_id,
            permit: permit.clone(),
        };
        self.listener.conns.insert(self.id, me);
        Ok(())
    }

    async fn refuse(&mut self, hello: &Hello, refusal: Refusal) {
        let (code, state, message) = refusal_message(hello, refusal);
        let _ = self.write(&packet::err(code, state, &message)).await;
    }

    async fn relay(
        mut self,
        lease: Lease<Upstream>,
        link: RelayLink,
    ) -> (End, Next<Self, Upstream>) {
        let (mut conn, terms) = lease.split();
        let masking = match masking(&link, &mut conn).await {
            Ok(m) => m,
            Err(why) => {
                let _ = self
                    .write(&packet::err(code::SPECIFIC_ACCESS_DENIED, "42000", &why))
                    .await;
                return (
                    End::bare(crate::audit::EndedBy::Error, Some(why)),
                    Next::Done,
                );
            }
        };
        let Upstream {
            stream,
            thread_id,
            version,
        } = conn;
        let me = self.listener.conns.get(self.id);
        let (relayed, upstream) = match stream {
            Stream::Plain(tcp) => {
                let (mut up_r, mut up_w) = tcp.into_split();
                let relayed = self
                    .relay_with(&mut up_r, &mut up_w, &link, terms.keep, me, masking)
                    .await;
                (relayed, up_r.reunite(up_w).ok().map(Stream::Plain))
            }
            Stream::Tls(tls) => {
                let (mut up_r, mut up_w) = tokio::io::split(*tls);
                let relayed = self
                    .relay_with(&mut up_r, &mut up_w, &link, terms.keep, me, masking)
                    .await;
                (relayed, Some(Stream::Tls(Box::new(up_r.unsplit(up_w)))))
            }
        };
        self.listener.conns.remove(self.id);
        let Relayed { end, after } = relayed;
        let lease = upstream.map(|stream| {
            terms.rejoin(Upstream {
                stream,
                thread_id,
                version,
            })
        });
        let upstreams = &self.listener.gw.upstreams;
        match (after, lease) {
            // The client's COM_QUIT was withheld: the upstream is kept or told goodbye.
            (After::Held { reusable }, Some(lease)) => upstreams.release(lease, reusable).await,
            (After::ChangeUser, Some(lease)) => return (end, Next::ChangeUser(self, lease)),
            _ => {}
        }
        (end, Next::Done)
    }

    const CONTROL: bool = true;

    async fn accept_control(&mut self) -> Result<(), SessionError> {
        self.write(&packet::ok()).await
    }

    async fn control(&mut self, identity: &Identity, link: RelayLink) -> End {
        self.serve_control(identity, link).await
    }

    async fn change_user(
        &mut self,
        snapshot: &Arc<Snapshot>,
    ) -> Result<(Hello, Result<Identity, SessionError>), SessionError> {
        let frame = self.yielded.take().unwrap_or_default();
        let body = frame.get(5..).unwrap_or_default();
        self.seq = 0;
        self.hello =
            handshake::parse_change_user(body, &self.hello).map_err(SessionError::Protocol)?;
        let hello = self.claim();
        let proof = self.authenticate(&hello, snapshot).await;
        Ok((hello, proof))
    }
}

/// The session's masking — the relay's row rewriting and the statement check, with the
/// views that read a masked column — or `None`: nothing is masked.
async fn masking(
    link: &RelayLink,
    up: &mut Upstream,
) -> Result<Option<(MyMasking, MaskCheck)>, String> {
    let Some(masker) = link.masker.clone() else {
        return Ok(None);
    };
    let views = crate::masking::catalog::my_views(up, &masker).await?;
    let check = crate::masking::catalog::check(&masker, views.iter().map(|(s, n)| (&**s, &**n)));
    Ok(Some((MyMasking::new(masker), check)))
}

/// What a relay leaves behind besides the session's end.
enum After {
    /// The connection is done.
    Done,
    /// The client's goodbye was withheld; the upstream is `reusable` as it is.
    Held { reusable: bool },
    /// The client asked to change user (`MyFrontend::yielded`); the upstream is idle.
    ChangeUser,
}

struct Relayed {
    end: End,
    after: After,
}

impl MyFrontend<'_> {
    /// Relays with the upstream halves, whichever the client's stream is; the client's
    /// stream stays when the next session follows on it.
    async fn relay_with<UR, UW>(
        &mut self,
        up_r: UR,
        up_w: UW,
        link: &RelayLink,
        hold: bool,
        me: Option<Conn>,
        masking: Option<(MyMasking, MaskCheck)>,
    ) -> Relayed
    where
        UR: AsyncRead + Unpin + Send,
        UW: AsyncWrite + Unpin + Send,
    {
        let stop = link.stop_signal();
        let mut sink = EventSink::new(link);
        let mut counters = Counters::default();
        let (mut c, mut s) = observe::pair(self.kill_target(me));
        c.hold_goodbye = hold;
        c.guard = link.guard.clone();
        if let Some((m, check)) = masking {
            s.masking = Some(m);
            c.masked = true;
            let guard = c.guard.take();
            c.guard = Some(Guard::masked(guard, check, Protocol::Mysql, &link.database));
        }
        let sides = (&mut c, &mut s, &mut sink, &mut counters);
        let ended = match self.client.take() {
            Some(ClientStream::Plain(c)) => {
                let (mut r, mut w) = c.into_split();
                let ended = run_relay(&mut r, &mut w, up_r, up_w, stop, sides).await;
                self.client = r.reunite(w).ok().map(ClientStream::Plain);
                ended
            }
            Some(ClientStream::Tls(c)) => {
                let (mut r, mut w) = tokio::io::split(*c);
                let ended = run_relay(&mut r, &mut w, up_r, up_w, stop, sides).await;
                self.client = Some(ClientStream::Tls(Box::new(r.unsplit(w))));
                ended
            }
            None => Ended::ClientClosed,
        };
        let after = match &ended {
            Ended::Held => After::Held {
                reusable: s.reusable(),
            },
            Ended::Yielded(frame) if s.idle() => {
                self.yielded = Some(frame.clone());
                After::ChangeUser
            }
            _ => After::Done,
        };
        let ended = match (ended, &after) {
            (Ended::Yielded(_), After::Done) => {
                Ended::Failed("a change of user before the server had answered".into())
            }
            (ended, _) => ended,
        };
        Relayed {
            end: sink.end_of(ended, &counters),
            after,
        }
    }
}

/// The relay's observers, sink and counters, borrowed for one run.
type Sides<'a, 'l> = (
    &'a mut observe::MyClient,
    &'a mut observe::MyServer,
    &'a mut EventSink<'l>,
    &'a mut Counters,
);

async fn run_relay<CR, CW, UR, UW>(
    client_r: CR,
    client_w: CW,
    up_r: UR,
    up_w: UW,
    stop: impl std::future::Future<Output = String> + Send,
    (c, s, sink, counters): Sides<'_, '_>,
) -> Ended
where
    CR: AsyncRead + Unpin + Send,
    CW: AsyncWrite + Unpin + Send,
    UR: AsyncRead + Unpin + Send,
    UW: AsyncWrite + Unpin + Send,
{
    let ends = Ends {
        client_r,
        client_w,
        up_r,
        up_w,
        client_first: &[],
        upstream_first: &[],
    };
    relay::relay(ends, c, s, stop, sink, counters).await
}

/// The error a refused client gets: 1045 for bad credentials and 1044 for "not allowed",
/// one message shape each, revealing nothing about what exists.
fn refusal_message(hello: &Hello, refusal: Refusal) -> (u16, &'static str, String) {
    let (user, role) = (&hello.user, &hello.resource_role);
    match refusal {
        Refusal::BadCredentials => (
            code::ACCESS_DENIED,
            "28000",
            format!("Access denied for user '{user}'"),
        ),
        Refusal::ApprovalRequired(message) => (code::DB_ACCESS_DENIED, "42000", message),
        Refusal::Parameter(_) => (
            code::DB_ACCESS_DENIED,
            "42000",
            format!("Access denied for user '{user}' to resource role '{role}'"),
        ),
        Refusal::NotAllowed | Refusal::UnknownResourceRole => (
            code::DB_ACCESS_DENIED,
            "42000",
            format!(
                "Access denied for user '{user}' to resource role '{role}': name a resource role as the database (mysql -u {user} -p ROLE; `portcullis access show --user {user}` lists yours)"
            ),
        ),
        Refusal::NoResourceRole => (
            code::NO_DB,
            "3D000",
            "No resource role selected: name one as the database (mysql -D RESOURCE_ROLE)".into(),
        ),
        Refusal::TlsRequired => (
            code::SECURE_TRANSPORT_REQUIRED,
            "HY000",
            "This gateway requires TLS (use --ssl)".into(),
        ),
        Refusal::UpstreamUnreachable | Refusal::UpstreamRefused => (
            code::UNKNOWN,
            "08004",
            format!(
                "Could not log in to the database behind resource role '{role}'; the monitoring log has the reason"
            ),
        ),
        Refusal::Timeout => (code::UNKNOWN, "08S01", "Login timed out".into()),
        Refusal::StoreStale => (
            code::UNKNOWN,
            "HY000",
            "The gateway cannot reach its store; new sessions are refused".into(),
        ),
        Refusal::LogUnavailable => (
            code::UNKNOWN,
            "HY000",
            "The gateway cannot write its monitoring log; new sessions are refused".into(),
        ),
        Refusal::Protocol(m) => (code::UNKNOWN, "08S01", format!("Protocol violation: {m}")),
    }
}
