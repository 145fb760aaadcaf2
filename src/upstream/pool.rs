//! Kept upstream connections (`limits.idle_upstreams`), PostgreSQL (plain or TLS): when a
//! session says goodbye with its upstream idle (outside any transaction, nothing
//! outstanding), the gateway withholds the Terminate, resets the connection with
//! `DISCARD ALL` and keeps it for the next session of the same resource role with the same
//! client parameters — which then skips the database's backend start and login, as
//! PgBouncer's session pooling does. Each session is still its own session: access is
//! decided, and `session_started` / `session_ended` written, per client login.

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
use crate::protocol::postgres::backend::Upstream;
use crate::tls::Stream;

/// The reset's whole round trip; a connection slower than this is closed instead.
const RESET_TIMEOUT: Duration = Duration::from_secs(2);

/// What a kept connection must match: where it is logged in, as whom, and the client
/// parameters it started with (its `RESET ALL` values).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key {
    resource_role: String,
    address: String,
    user: String,
    database: String,
    /// SHA-256 of the resource role's secret: a changed password keeps nothing old.
    credential: [u8; 32],
    params: Vec<(String, String)>,
}

impl Key {
    pub fn new(permit: &Permit, params: &[(String, String)]) -> Key {
        let role = permit.resource_role();
        let secret = role.secret.as_ref().map(|s| s.expose()).unwrap_or_default();
        Key {
            resource_role: role.name.clone(),
            address: permit.resource().address.clone(),
            user: role.user.clone(),
            database: role.database.clone(),
            credential: Sha256::digest(secret.as_bytes()).into(),
            params: crate::protocol::postgres::backend::forwarded(params)
                .cloned()
                .collect(),
        }
    }
}

struct Parked {
    stream: Stream,
    params: Vec<(String, String)>,
    pid: i32,
    secret: i32,
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
    pub fn take(&self, key: &Key) -> Option<Upstream> {
        let mut list = self.idle.get_mut(key)?;
        while let Some(mut p) = list.pop() {
            if p.since.elapsed() <= self.timeout && silent(&mut p.stream) {
                return Some(Upstream {
                    stream: p.stream,
                    params: p.params,
                    pid: p.pid,
                    secret: p.secret,
                    leftover: BytesMut::new(),
                });
            }
        }
        None
    }

    /// Resets the idle upstream a session left and keeps it, in the background.
    pub fn put(self: &Arc<Self>, key: Key, up: Upstream) {
        let Upstream {
            mut stream,
            params,
            pid,
            secret,
            ..
        } = up;
        let this = Arc::clone(self);
        tokio::spawn(async move {
            match tokio::time::timeout(RESET_TIMEOUT, reset(&mut stream, params)).await {
                Ok(Ok(params)) => this.park(
                    key,
                    Parked {
                        stream,
                        params,
                        pid,
                        secret,
                        since: Instant::now(),
                    },
                ),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "upstream connection not kept: its reset failed");
                    terminate(&mut stream).await;
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
                for mut p in list {
                    terminate(&mut p.stream).await;
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

/// Says goodbye to an upstream that is not kept.
pub async fn terminate<S: tokio::io::AsyncWrite + Unpin>(stream: &mut S) {
    let mut out = BytesMut::new();
    frontend::terminate(&mut out);
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
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
