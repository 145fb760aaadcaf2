//! Kept upstream connections (`limits.idle_upstreams`), plain or TLS: when a session says
//! goodbye with its upstream idle (outside any transaction, nothing outstanding), the
//! gateway withholds the goodbye (PostgreSQL Terminate, MySQL `COM_QUIT`), resets the
//! connection (`DISCARD ALL`; `COM_RESET_CONNECTION` and `COM_INIT_DB` back to the
//! resource role's database) and keeps it for the next session of the same resource role
//! with the same client parameters — which then skips the database's connection start and
//! login, as PgBouncer's session pooling does. Each session is still its own session:
//! access is decided, and `session_started` / `session_ended` written, per client login.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use dashmap::DashMap;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

use crate::access::Permit;
use crate::config::Limits;
use crate::protocol::mysql::packet;
use crate::protocol::postgres::backend::Upstream;
use crate::tls::Stream;

/// The reset's whole round trip; a connection slower than this is closed instead.
const RESET_TIMEOUT: Duration = Duration::from_secs(2);

/// What a kept connection must match: where it is logged in, as whom, and the client
/// parameters it started with (PostgreSQL: its `RESET ALL` values; MySQL: the
/// capabilities, packet size and character set of the login).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key {
    protocol: &'static str,
    resource_role: String,
    address: String,
    user: String,
    database: String,
    /// SHA-256 of the resource role's secret: a changed password keeps nothing old.
    credential: [u8; 32],
    params: Vec<(String, String)>,
}

impl Key {
    /// `params`: what the login carried of the client's, by name.
    pub fn new(permit: &Permit, params: Vec<(String, String)>) -> Key {
        let role = permit.resource_role();
        let secret = role.secret.as_ref().map(|s| s.expose()).unwrap_or_default();
        Key {
            protocol: permit.resource().protocol.as_str(),
            resource_role: role.name.clone(),
            address: permit.resource().address.clone(),
            user: role.user.clone(),
            database: role.database.clone(),
            credential: Sha256::digest(secret.as_bytes()).into(),
            params,
        }
    }
}

/// A logged-in upstream connection, as each protocol's session hands it over.
pub enum Kept {
    Postgres(Upstream),
    Mysql(MyUpstream),
}

/// A MySQL upstream: the stream and the server's id for the connection (for `KILL`).
pub struct MyUpstream {
    pub stream: Stream,
    pub thread_id: u32,
}

impl Kept {
    fn stream(&mut self) -> &mut Stream {
        match self {
            Kept::Postgres(up) => &mut up.stream,
            Kept::Mysql(up) => &mut up.stream,
        }
    }

    /// Says goodbye in the connection's protocol (for one that is not kept).
    async fn terminate(mut self) {
        match &mut self {
            Kept::Postgres(up) => terminate(&mut up.stream).await,
            Kept::Mysql(up) => mysql_quit(&mut up.stream).await,
        }
    }
}

struct Parked {
    kept: Kept,
    since: Instant,
}

pub struct Pool {
    idle: DashMap<Key, Vec<Parked>>,
    per_key: usize,
    timeout: Duration,
}

impl Pool {
    pub fn new(limits: &Limits) -> Pool {
        Pool {
            idle: DashMap::new(),
            per_key: limits.idle_upstreams,
            timeout: limits.idle_upstream_timeout,
        }
    }

    pub fn enabled(&self) -> bool {
        self.per_key > 0
    }

    /// Kept connections right now.
    pub fn len(&self) -> usize {
        self.idle.iter().map(|e| e.value().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest kept connection for `key` that is still open and silent.
    pub fn take(&self, key: &Key) -> Option<Kept> {
        let mut list = self.idle.get_mut(key)?;
        while let Some(mut p) = list.pop() {
            if p.since.elapsed() <= self.timeout && silent(p.kept.stream()) {
                return Some(p.kept);
            }
        }
        None
    }

    /// The upstream of a session whose goodbye was withheld: kept when the session had a
    /// key and left it reusable (idle, outside a transaction), otherwise told goodbye.
    pub async fn release(self: &Arc<Self>, key: Option<Key>, reusable: bool, kept: Kept) {
        match key {
            Some(key) if reusable => self.put(key, kept),
            _ => kept.terminate().await,
        }
    }

    /// Resets the idle upstream a session left and keeps it, in the background.
    fn put(self: &Arc<Self>, key: Key, mut kept: Kept) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let reset = async {
                match &mut kept {
                    Kept::Postgres(up) => {
                        let params = std::mem::take(&mut up.params);
                        up.params = reset(&mut up.stream, params).await?;
                    }
                    Kept::Mysql(up) => mysql_reset(&mut up.stream, &key.database).await?,
                }
                std::io::Result::Ok(())
            };
            match tokio::time::timeout(RESET_TIMEOUT, reset).await {
                Ok(Ok(())) => this.park(
                    key,
                    Parked {
                        kept,
                        since: Instant::now(),
                    },
                ),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "upstream connection not kept: its reset failed");
                    kept.terminate().await;
                }
                Err(_) => tracing::debug!("upstream connection not kept: its reset timed out"),
            }
        });
    }

    fn park(&self, key: Key, parked: Parked) {
        let mut list = self.idle.entry(key).or_default();
        if list.len() >= self.per_key {
            // Full: the oldest goes (dropping it closes it).
            list.remove(0);
        }
        list.push(parked);
    }

    /// Says goodbye on every kept connection (at shutdown).
    pub async fn close(&self) {
        let keys: Vec<Key> = self.idle.iter().map(|e| e.key().clone()).collect();
        for key in keys {
            if let Some((_, list)) = self.idle.remove(&key) {
                for p in list {
                    p.kept.terminate().await;
                }
            }
        }
    }

    /// Closes connections kept longer than `limits.idle_upstream_timeout`.
    pub fn sweep(&self) {
        self.idle.retain(|_, list| {
            list.retain(|p| p.since.elapsed() <= self.timeout);
            !list.is_empty()
        });
    }
}

/// Open and silent: a read would wait. End of stream, an error, or anything the server
/// said unasked (an administrator's termination, say) and the connection is not used.
fn silent(stream: &mut Stream) -> bool {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut byte = [0u8; 1];
    let mut buf = ReadBuf::new(&mut byte);
    std::pin::Pin::new(stream)
        .poll_read(&mut cx, &mut buf)
        .is_pending()
}

/// Says goodbye to a PostgreSQL upstream that is not kept.
async fn terminate<S: tokio::io::AsyncWrite + Unpin>(stream: &mut S) {
    let mut out = BytesMut::new();
    frontend::terminate(&mut out);
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}

const COM_QUIT: u8 = 0x01;
const COM_INIT_DB: u8 = 0x02;
const COM_RESET_CONNECTION: u8 = 0x1f;

/// Says goodbye to a MySQL upstream that is not kept.
async fn mysql_quit<S: tokio::io::AsyncWrite + Unpin>(stream: &mut S) {
    let _ = packet::write(stream, 0, &[COM_QUIT]).await;
    let _ = stream.shutdown().await;
}

/// `COM_RESET_CONNECTION` (transaction, session variables back to the server's defaults
/// and the login's character set, user variables, temporary tables, prepared statements,
/// table locks: all gone), then `COM_INIT_DB` back to `database`, which the reset leaves.
/// Anything but an OK to each is an error, and the connection is not kept.
async fn mysql_reset(stream: &mut Stream, database: &str) -> std::io::Result<()> {
    let mut init = vec![COM_INIT_DB];
    init.extend_from_slice(database.as_bytes());
    for (command, what) in [
        (&[COM_RESET_CONNECTION][..], "COM_RESET_CONNECTION"),
        (&init[..], "COM_INIT_DB"),
    ] {
        packet::write(stream, 0, command).await?;
        let (_, reply) = packet::read(stream, packet::MAX_LOGIN_PACKET).await?;
        if reply.first() != Some(&0x00) {
            return Err(std::io::Error::other(format!("{what} was not answered OK")));
        }
    }
    Ok(())
}

/// `DISCARD ALL` (temporary tables, prepared statements, session settings, advisory locks,
/// LISTEN: all gone); returns the parameters as they now are. Anything but the expected
/// answer is an error, and the connection is not kept.
async fn reset(
    tcp: &mut Stream,
    mut params: Vec<(String, String)>,
) -> std::io::Result<Vec<(String, String)>> {
    let mut out = BytesMut::new();
    frontend::query("DISCARD ALL", &mut out)?;
    tcp.write_all(&out).await?;
    let mut buf = BytesMut::with_capacity(1024);
    let mut discarded = false;
    let unexpected =
        |what: &str| std::io::Error::other(format!("unexpected {what} after DISCARD ALL"));
    loop {
        let msg = loop {
            if let Some(msg) = Message::parse(&mut buf)? {
                break msg;
            }
            if tcp.read_buf(&mut buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        };
        match msg {
            Message::CommandComplete(c) if c.tag()? == "DISCARD ALL" => discarded = true,
            Message::ParameterStatus(p) => {
                let (name, value) = (p.name()?.to_owned(), p.value()?.to_owned());
                match params.iter_mut().find(|(n, _)| *n == name) {
                    Some(kept) => kept.1 = value,
                    None => params.push((name, value)),
                }
            }
            Message::NoticeResponse(_) => {}
            Message::ReadyForQuery(r) if discarded && r.status() == b'I' && buf.is_empty() => {
                return Ok(params);
            }
            Message::ErrorResponse(_) => return Err(unexpected("error")),
            _ => return Err(unexpected("message")),
        }
    }
}
