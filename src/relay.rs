//! The hot path, written once for both protocols: bytes are forwarded as read, in both
//! directions, never re-encoded. Each direction runs a `Framer` over what passes and hands
//! the frames the monitoring log needs to the protocol's observers; finished statements go
//! to the `Sink` as `Outcome`s. The observers (`postgres`, `mysql`) live here too: they read
//! frames through `protocol`'s codecs, and `protocol` knows nothing of them. A stop request is honoured at a frame boundary towards the client with
//! the protocol's goodbye (PostgreSQL: FATAL 57P01), or by closing.

pub mod framer;
pub mod mysql;
pub mod postgres;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use framer::{Framer, Wire};

/// Read buffers start small (idle sessions stay cheap) and grow once a read fills one.
const BUF_START: usize = 2 * 1024;
const BUF: usize = 32 * 1024;

/// Bind parameters as text (`None` for NULL), when known.
pub type Params = Option<Arc<[Option<String>]>>;

/// A finished statement, ready to become a `query` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub statement: Arc<str>,
    pub op: crate::audit::Op,
    pub params: Params,
    pub duration_us: u64,
    pub rows: u64,
    pub error_code: Option<String>,
    /// The session's application name as the server reported it during this statement
    /// (PostgreSQL `SET application_name`: pgjdbc sets it that way after login).
    pub application_name: Option<Arc<str>>,
}

/// What the relay does with a client frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The client said goodbye; forward it and end.
    Bye,
    /// Never forward this; end the session with the reason.
    Block(&'static str),
    /// Forward these bytes instead of the frame (only when the frame is a whole read).
    Replace(Vec<u8>),
    /// The client said goodbye; keep it from the upstream, which stays open for another
    /// session (`Ended::Held`), when the goodbye ends the read and the upstream is at a
    /// message boundary; otherwise as `Bye`.
    Hold,
}

/// Client → server observation.
pub trait ClientSide: Send {
    type Wire: Wire;
    fn wants(header: &[u8]) -> bool;
    /// One client frame.
    fn frame(&mut self, header: &[u8], body: &[u8]) -> Verdict;
}

/// Server → client observation.
pub trait ServerSide: Send {
    type Wire: Wire;
    /// How much of a wanted body to keep.
    const LIMIT: usize;
    fn wants(header: &[u8]) -> bool;
    fn frame(&mut self, header: &[u8], body: &[u8], out: &mut Vec<Outcome>);
    /// The error code of a fatal server error, if one was seen.
    fn fatal(&self) -> Option<String>;
    /// Bytes telling the client the session ends, when the protocol has them.
    fn goodbye(&self, message: &str) -> Option<Vec<u8>>;
}

/// Receives finished statements (and may make the relay wait: back-pressure).
pub trait Sink: Send {
    fn outcome(&mut self, outcome: Outcome) -> impl Future<Output = ()> + Send;
}

#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The client said goodbye (Terminate / COM_QUIT).
    ClientTerminated,
    /// The client said goodbye, which was not forwarded: the upstream is still logged in,
    /// at a message boundary, and may serve another session.
    Held,
    /// The client closed without goodbye.
    ClientClosed,
    /// The upstream closed; with the code of its fatal error if it sent one.
    UpstreamClosed(Option<String>),
    /// Told to stop.
    Stopped,
    /// A socket error or a malformed frame.
    Failed(String),
}

#[derive(Debug, Default)]
pub struct Counters {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub queries: u64,
}

/// The two connections' halves and what each already holds unread.
pub struct Ends<'a, CR, CW, UR, UW> {
    pub client_r: CR,
    pub client_w: CW,
    pub up_r: UR,
    pub up_w: UW,
    pub client_first: &'a [u8],
    pub upstream_first: &'a [u8],
}

/// Relays until one side ends or `stop` resolves with the message for the client.
pub async fn relay<CR, CW, UR, UW, C, S, K>(
    ends: Ends<'_, CR, CW, UR, UW>,
    client: &mut C,
    server: &mut S,
    stop: impl Future<Output = String> + Send,
    sink: &mut K,
    counters: &mut Counters,
) -> Ended
where
    CR: AsyncRead + Unpin + Send,
    CW: AsyncWrite + Unpin + Send,
    UR: AsyncRead + Unpin + Send,
    UW: AsyncWrite + Unpin + Send,
    C: ClientSide,
    S: ServerSide,
    K: Sink,
{
    let Ends {
        mut client_r,
        mut client_w,
        mut up_r,
        mut up_w,
        client_first,
        upstream_first,
    } = ends;
    let mut fe_framer = Framer::<C::Wire>::default();
    let mut be_framer = Framer::<S::Wire>::with_limit(S::LIMIT);
    let mut outcomes = Vec::new();
    // Whether the upstream's bytes so far end at a frame boundary (for `Verdict::Hold`).
    let server_boundary = AtomicBool::new(upstream_first.is_empty());
    let Counters {
        bytes_in,
        bytes_out,
        queries,
    } = counters;

    let up = async {
        let mut buf = vec![0u8; BUF_START];
        let mut filled = false;
        let mut chunk: &[u8] = client_first;
        loop {
            if !chunk.is_empty() {
                let (mut bye, mut blocked, mut replace, mut hold) = (false, None, None, None);
                let whole = chunk.len();
                let fed = fe_framer.feed(chunk, C::wants, |h, body, _| {
                    // A goodbye to hold must be the read's last frame (checked below).
                    hold = None;
                    match client.frame(h, body) {
                        Verdict::Pass => {}
                        Verdict::Bye => bye = true,
                        Verdict::Hold => {
                            bye = true;
                            hold = <C::Wire as Wire>::body_len(h).ok().map(|b| h.len() + b);
                        }
                        Verdict::Block(why) => blocked = Some(why),
                        // A rewrite is only safe when the read is exactly that one frame.
                        Verdict::Replace(bytes) if h.len() + body.len() == whole => {
                            replace = Some(bytes)
                        }
                        Verdict::Replace(_) => {
                            blocked = Some("a rewritten command must arrive on its own")
                        }
                    }
                });
                if let Err(e) = fed {
                    return Ended::Failed(format!("client sent a malformed frame: {e:?}"));
                }
                if let Some(why) = blocked {
                    return Ended::Failed(why.to_owned());
                }
                *bytes_in += chunk.len() as u64;
                // Held only if the goodbye is whole in this read and ends it.
                let hold = hold.filter(|_| fe_framer.at_boundary());
                if let Some(len) = hold
                    && len <= whole
                    && server_boundary.load(Ordering::Relaxed)
                {
                    let before = whole - len;
                    if before > 0
                        && let Err(e) = write(&mut up_w, &chunk[..before]).await
                    {
                        return Ended::Failed(format!("writing to the upstream: {e}"));
                    }
                    return Ended::Held;
                }
                let out = replace.as_deref().unwrap_or(chunk);
                if let Err(e) = write(&mut up_w, out).await {
                    return Ended::Failed(format!("writing to the upstream: {e}"));
                }
                if bye {
                    return Ended::ClientTerminated;
                }
            }
            if filled && buf.len() < BUF {
                buf.resize(BUF, 0);
            }
            chunk = match client_r.read(&mut buf).await {
                Ok(0) => return Ended::ClientClosed,
                Ok(n) => {
                    filled = n == buf.len();
                    &buf[..n]
                }
                Err(e) => return Ended::Failed(format!("reading from the client: {e}")),
            };
        }
    };

    let down = async {
        let mut buf = vec![0u8; BUF_START];
        let mut filled = false;
        let mut chunk: &[u8] = upstream_first;
        tokio::pin!(stop);
        loop {
            if !chunk.is_empty() {
                let fed = be_framer.feed(chunk, S::wants, |h, body, _| {
                    server.frame(h, body, &mut outcomes);
                });
                if let Err(e) = fed {
                    return Ended::Failed(format!("upstream sent a malformed frame: {e:?}"));
                }
                server_boundary.store(be_framer.at_boundary(), Ordering::Relaxed);
                *bytes_out += chunk.len() as u64;
                if let Err(e) = write(&mut client_w, chunk).await {
                    return Ended::Failed(format!("writing to the client: {e}"));
                }
                for o in outcomes.drain(..) {
                    *queries += 1;
                    sink.outcome(o).await;
                }
            }
            if filled && buf.len() < BUF {
                buf.resize(BUF, 0);
            }
            let n = tokio::select! {
                biased;
                message = &mut stop => {
                    if be_framer.at_boundary()
                        && let Some(bytes) = server.goodbye(&message)
                    {
                        let _ = write(&mut client_w, &bytes).await;
                    }
                    return Ended::Stopped;
                }
                read = up_r.read(&mut buf) => read,
            };
            chunk = match n {
                Ok(0) => return Ended::UpstreamClosed(server.fatal()),
                Ok(n) => {
                    filled = n == buf.len();
                    &buf[..n]
                }
                Err(e) => return Ended::Failed(format!("reading from the upstream: {e}")),
            };
        }
    };

    tokio::select! {
        ended = up => ended,
        ended = down => ended,
    }
}

async fn write<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(bytes).await?;
    w.flush().await
}
