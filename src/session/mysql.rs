//! The MySQL side of the login sequence: our own HandshakeV10 (optionally upgraded to TLS),
//! `caching_sha2_password` fast path or `mysql_native_password` (by AuthSwitchRequest)
//! against stored verifiers, the upstream login with the client's capabilities, then the
//! shared relay.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use dashmap::DashMap;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::{Accept, End, EventSink, Frontend, Gateway, Hello, Refusal, RelayLink, SessionError};
use crate::access::{Identity, KillParty, Permit};
use crate::auth::mysql::{Scramble, verify_scramble};
use crate::model::Protocol;
use crate::protocol::mysql::handshake::{self, ClientHello, NATIVE, SHA2};
use crate::protocol::mysql::packet::{self, caps, code};
use crate::relay::mysql as observe;
use crate::relay::{self, Counters, Ended, Ends};
use crate::snapshot::Snapshot;
use crate::tls::Stream;
use crate::upstream::{Lease, MysqlUpstream as Upstream};

/// The version the gateway announces before it knows which server is behind the resource
/// role. A 5.7 string makes MySQL 8 drivers pick collations MariaDB also knows.
const GATEWAY_VERSION: &str = "5.7.44-portcullis";

pub struct MyListener {
    pub gw: Arc<Gateway>,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    next_id: AtomicU32,
    /// Live connections by gateway connection id, for `KILL` translation.
    conns: Arc<DashMap<u32, Conn>>,
}

/// What `KILL n` needs to know about connection `n`: whose it is, and its upstream id.
#[derive(Clone, Debug)]
struct Conn {
    party: KillParty,
    thread_id: u32,
}

impl MyListener {
    pub fn new(gw: Arc<Gateway>, tls: Option<tokio_rustls::TlsAcceptor>) -> MyListener {
        MyListener {
            gw,
            tls,
            next_id: AtomicU32::new(1),
            conns: Arc::default(),
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
        let fe = MyFrontend {
            client: Some(ClientStream::Plain(tcp)),
            listener: &self,
            require_tls: config.tls.as_ref().is_some_and(|t| t.require),
            seq: 0,
            scramble: [0; 20],
            hello: ClientHello::default(),
            id: 0,
            me: None,
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
    /// This connection as `KILL` sees it, once logged in upstream.
    me: Option<Conn>,
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
    /// `KILL n` from this session may reach connection `n` when it is on the same
    /// resource and belongs to the same user (admins: anyone's).
    fn kill_target(&self) -> observe::KillTarget {
        let conns = Arc::clone(&self.listener.conns);
        let me = self.me.clone();
        Box::new(move |id| {
            let me = me.as_ref()?;
            let target = conns.get(&id)?;
            crate::access::may_kill(&me.party, &target.party).then_some(target.thread_id)
        })
    }
}

impl Frontend for MyFrontend<'_> {
    type Upstream = Upstream;

    async fn handshake(&mut self) -> Result<Option<Hello>, SessionError> {
        self.scramble = new_scramble();
        let id = self.listener.next_id.fetch_add(1, Ordering::Relaxed);
        self.id = id;
        let mut server_caps = caps::GATEWAY;
        if self.listener.tls.is_some() {
            server_caps |= caps::SSL;
        }
        let hs = packet::handshake(id, &self.scramble, server_caps, GATEWAY_VERSION, NATIVE);
        self.seq = 0;
        let seq = self.seq;
        if let Some(ClientStream::Plain(s)) = self.client.as_mut() {
            packet::write(s, seq, &hs)
                .await
                .map_err(|_| SessionError::Closed)?;
        }
        let mut payload = self.read().await?;
        let mut tls = false;
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
            tls = true;
            payload = self.read().await?;
        }
        self.hello =
            handshake::parse_response(&payload, server_caps).map_err(SessionError::Protocol)?;
        let hello = Hello {
            user: self.hello.user.clone(),
            resource_role: self.hello.database.clone().unwrap_or_default(),
            application_name: self.hello.application_name(),
            tls,
        };
        if self.require_tls && !tls {
            return Err(SessionError::TlsRequired);
        }
        if hello.resource_role.is_empty() {
            return Err(SessionError::NoResourceRole);
        }
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
        let me = Conn {
            party: KillParty {
                user: permit.user().name.clone(),
                resource: permit.resource().name.clone(),
                admin: permit.user().role == crate::model::Role::Admin,
            },
            thread_id: lease.conn.thread_id,
        };
        self.write(&packet::ok()).await?;
        self.listener.conns.insert(self.id, me.clone());
        self.me = Some(me);
        Ok(())
    }

    async fn refuse(&mut self, hello: &Hello, refusal: Refusal) {
        let (code, state, message) = refusal_message(hello, refusal);
        let _ = self.write(&packet::err(code, state, &message)).await;
    }

    async fn relay(mut self, lease: Lease<Upstream>, link: RelayLink) -> End {
        let Lease { conn, key, .. } = lease;
        let Upstream {
            stream,
            thread_id,
            version,
        } = conn;
        let hold = key.is_some();
        let (end, held, upstream) = match stream {
            Stream::Plain(tcp) => {
                let (mut up_r, mut up_w) = tcp.into_split();
                let (end, held) = self.relay_with(&mut up_r, &mut up_w, &link, hold).await;
                (end, held, up_r.reunite(up_w).ok().map(Stream::Plain))
            }
            Stream::Tls(tls) => {
                let (mut up_r, mut up_w) = tokio::io::split(*tls);
                let (end, held) = self.relay_with(&mut up_r, &mut up_w, &link, hold).await;
                (end, held, Some(Stream::Tls(Box::new(up_r.unsplit(up_w)))))
            }
        };
        self.listener.conns.remove(&self.id);
        // The client's COM_QUIT was withheld: the upstream is kept or told goodbye.
        if let (Some(reusable), Some(stream)) = (held, upstream) {
            let up = Upstream {
                stream,
                thread_id,
                version,
            };
            let upstreams = &self.listener.gw.upstreams;
            upstreams.release(key, reusable, up).await;
        }
        end
    }
}

impl MyFrontend<'_> {
    /// Relays with the upstream halves, whichever the client's stream is. The second
    /// value is `Some(reusable)` when the client's goodbye was withheld.
    async fn relay_with<UR, UW>(
        &mut self,
        up_r: UR,
        up_w: UW,
        link: &RelayLink,
        hold: bool,
    ) -> (End, Option<bool>)
    where
        UR: AsyncRead + Unpin + Send,
        UW: AsyncWrite + Unpin + Send,
    {
        let stop = link.stop_signal();
        let mut sink = EventSink::new(link);
        let mut counters = Counters::default();
        let (mut c, mut s) = observe::pair(self.kill_target());
        c.hold_goodbye = hold;
        let sides = (&mut c, &mut s, &mut sink, &mut counters);
        let ended = match self.client.take() {
            Some(ClientStream::Plain(c)) => {
                let (r, w) = c.into_split();
                run_relay(r, w, up_r, up_w, stop, sides).await
            }
            Some(ClientStream::Tls(c)) => {
                let (r, w) = tokio::io::split(*c);
                run_relay(r, w, up_r, up_w, stop, sides).await
            }
            None => Ended::ClientClosed,
        };
        let held = (ended == Ended::Held).then(|| s.reusable());
        (sink.end_of(ended, &counters), held)
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
        Refusal::NotAllowed | Refusal::Parameter(_) => (
            code::DB_ACCESS_DENIED,
            "42000",
            format!("Access denied for user '{user}' to resource role '{role}'"),
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
        Refusal::LogUnavailable => (
            code::UNKNOWN,
            "HY000",
            "The gateway cannot write its monitoring log; new sessions are refused".into(),
        ),
        Refusal::Protocol(m) => (code::UNKNOWN, "08S01", format!("Protocol violation: {m}")),
    }
}
