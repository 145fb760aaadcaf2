//! The hot path, written once for both protocols: bytes are forwarded as read, in both
//! directions, never re-encoded. Each direction runs a `Framer` over what passes and hands
//! the frames the monitoring log needs to the protocol's observers; finished statements go
//! to the `Sink` as `Outcome`s. The observers (`postgres`, `mysql`) live here too: they read
//! frames through `protocol`'s codecs, and `protocol` knows nothing of them. A stop request is honoured at a frame boundary towards the client with
//! the protocol's goodbye (PostgreSQL: FATAL 57P01), or by closing.

pub mod framer;
mod gate;
pub mod mysql;
pub mod mysql_masking;
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
    /// The statement was too long to keep whole: its full length and hash.
    pub cut: Option<Arc<framer::Cut>>,
    /// What the guardrails said, when any matched.
    pub guard: Option<Arc<crate::guardrail::Decision>>,
    /// The columns masked in its results (`schema.table.column`), when any were.
    pub masked: Option<Arc<[Arc<str>]>>,
}

/// What the relay does with a client frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// The client said goodbye; forward it and end.
    Bye,
    /// Never forward this; end the session with the reason.
    Block(&'static str),
    /// Forward these bytes instead of the frame (which must lie whole in one read;
    /// otherwise the session ends, as for `Block`).
    Replace(Vec<u8>),
    /// The client said goodbye; keep it from the upstream, which stays open for another
    /// session (`Ended::Held`), when the goodbye ends the read and the upstream is at a
    /// message boundary; otherwise as `Bye`.
    Hold,
    /// The session handles this frame outside the relay (MySQL `COM_CHANGE_USER`): stop
    /// with it (`Ended::Yielded`), which must end the read with the upstream at a message
    /// boundary; otherwise the session ends, as for `Block`.
    Yield,
}

/// Client → server observation.
pub trait ClientSide: Send {
    type Wire: Wire;
    fn wants(header: &[u8]) -> bool;
    /// One client frame (`cut`: its statement was too long to keep whole).
    fn frame(&mut self, header: &[u8], body: &[u8], cut: Option<&framer::Cut>) -> Verdict;
    /// Whether statements may be rewritten (guardrails): reads start at full size, so a
    /// statement up to that size arrives whole in one read and can be swapped.
    fn rewrites(&self) -> bool {
        false
    }
}

/// Server → client observation.
pub trait ServerSide: Send {
    type Wire: Wire;
    /// How much of a wanted body to keep.
    const LIMIT: usize;
    fn wants(header: &[u8]) -> bool;
    /// One server frame; `Some`: the bytes the client gets instead (only when the whole
    /// frame lies in one read; otherwise it goes as the server sent it).
    fn frame(&mut self, header: &[u8], body: &[u8], out: &mut Vec<Outcome>) -> Option<Vec<u8>>;
    /// Statements complete without an answer the server never got to send (the relay
    /// ended first): their outcomes.
    fn drain(&mut self, _out: &mut Vec<Outcome>) {}
    /// The error code of a fatal server error, if one was seen.
    fn fatal(&self) -> Option<String>;
    /// Bytes telling the client the session ends, when the protocol has them.
    fn goodbye(&self, message: &str) -> Option<Vec<u8>>;
    /// Whether every frame must reach `frame` whole, with its whole body (masking
    /// rewrites rows): the relay then forwards whole frames only, holding a frame's
    /// first bytes until the rest has arrived.
    fn aligned(&self) -> bool {
        false
    }
    /// Why the session must end before the frames just observed reach the client (a
    /// result masking cannot rewrite), if it must.
    fn refused(&mut self) -> Option<String> {
        None
    }
}

/// Receives finished statements (and may make the relay wait: back-pressure).
pub trait Sink: Send {
    /// Takes a finished statement without waiting; when the log is behind, the sink keeps
    /// it until `flush`.
    fn outcome(&mut self, outcome: Outcome);
    /// Resolves once every outcome taken so far is handed over (waiting while the log is
    /// behind). Cancel-safe: what was not handed over stays with the sink.
    fn flush(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// Whether the server's bytes that complete statements wait for `settled`.
    fn holds_completions(&self) -> bool {
        false
    }
    /// Resolves once every outcome handed over so far is durably recorded.
    fn settled(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
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
    /// A frame the session handles itself (`Verdict::Yield`), not forwarded; the upstream
    /// is idle.
    Yielded(Vec<u8>),
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
        client_r,
        mut client_w,
        up_r,
        up_w,
        client_first,
        upstream_first,
    } = ends;
    // Whether the upstream's bytes so far end at a frame boundary (for `Verdict::Hold`).
    let server_boundary = AtomicBool::new(upstream_first.is_empty());
    let Counters {
        bytes_in,
        bytes_out,
        queries,
    } = counters;
    let up = Upstream {
        from: client_r,
        to: up_w,
        first: client_first,
        observer: client,
        server_boundary: &server_boundary,
        bytes: bytes_in,
    };
    let down = Downstream {
        from: up_r,
        to: &mut client_w,
        first: upstream_first,
        observer: server,
        server_boundary: &server_boundary,
        bytes: bytes_out,
        queries,
        sink,
    };
    // Gated: a wake-up polls only the direction it was for (each read that finds nothing
    // costs a readiness check). Biased: no random draw on every wake-up.
    let ended = tokio::select! {
        biased;
        ended = gate::Gate::new(down.run(stop)) => ended,
        ended = gate::Gate::new(up.run()) => ended,
    };
    let mut outcomes = Vec::new();
    server.drain(&mut outcomes);
    for o in outcomes {
        *queries += 1;
        sink.outcome(o);
    }
    // Also what a relay that ended while the log was behind had not handed over yet.
    sink.flush().await;
    // Close the client's side properly (a TLS close_notify after the server's last words)
    // unless it stopped reading, or stays for the session's next step.
    if !matches!(ended, Ended::Yielded(_)) {
        let _ = tokio::time::timeout(CLOSE_WAIT, client_w.shutdown()).await;
    }
    ended
}

/// How long closing a client connection may wait for the client.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// A read buffer that starts small (idle sessions stay cheap) and grows once a read
/// fills it.
struct ReadBuf {
    buf: Vec<u8>,
    filled: bool,
}

impl ReadBuf {
    fn new() -> ReadBuf {
        ReadBuf::sized(BUF_START)
    }

    fn sized(len: usize) -> ReadBuf {
        ReadBuf {
            buf: vec![0u8; len],
            filled: false,
        }
    }

    /// The buffer for the next read, grown if the last one filled it.
    fn next(&mut self) -> &mut [u8] {
        if self.filled && self.buf.len() < BUF {
            self.buf.resize(BUF, 0);
        }
        &mut self.buf
    }

    fn got(&mut self, n: usize) -> &[u8] {
        self.filled = n == self.buf.len();
        &self.buf[..n]
    }
}

/// Client → server: observe each client frame, forward the bytes as read (or what the
/// observer says instead), stop at the client's goodbye.
struct Upstream<'a, R, W, C> {
    from: R,
    to: W,
    first: &'a [u8],
    observer: &'a mut C,
    server_boundary: &'a AtomicBool,
    bytes: &'a mut u64,
}

/// What one client read asks of the relay, after its frames were observed.
#[derive(Default)]
struct ReadVerdict {
    bye: bool,
    blocked: Option<&'static str>,
    /// Frames to forward as other bytes: (start, end) in the read, and the bytes.
    replace: Vec<(usize, usize, Vec<u8>)>,
    /// The length of a goodbye to hold back (it must be the read's last frame).
    hold: Option<usize>,
    /// A frame yielded to the session: where it starts in the read (it must end it).
    yielded: Option<usize>,
}

/// Where a frame lies in `chunk`, when its header and whole body do.
fn span_in(chunk: &[u8], header: &[u8], body: &[u8]) -> Option<(usize, usize)> {
    let base = chunk.as_ptr() as usize;
    let start = (header.as_ptr() as usize).checked_sub(base)?;
    let contiguous =
        body.is_empty() || body.as_ptr() as usize == header.as_ptr() as usize + header.len();
    let end = start + header.len() + body.len();
    (contiguous && end <= chunk.len()).then_some((start, end))
}

/// The read with the replaced frames spliced in.
fn spliced(chunk: &[u8], replace: &[(usize, usize, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len());
    let mut at = 0;
    for (start, end, bytes) in replace {
        out.extend_from_slice(&chunk[at..*start]);
        out.extend_from_slice(bytes);
        at = *end;
    }
    out.extend_from_slice(&chunk[at..]);
    out
}

impl<R, W, C> Upstream<'_, R, W, C>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
    C: ClientSide,
{
    async fn run(mut self) -> Ended {
        let mut framer = Framer::<C::Wire>::default();
        let mut buf = if self.observer.rewrites() {
            ReadBuf::sized(BUF)
        } else {
            ReadBuf::new()
        };
        let mut chunk: &[u8] = self.first;
        loop {
            if !chunk.is_empty()
                && let Some(ended) = self.forward(&mut framer, chunk).await
            {
                return ended;
            }
            chunk = match self.from.read(buf.next()).await {
                Ok(0) => return Ended::ClientClosed,
                Ok(n) => buf.got(n),
                Err(e) => return Ended::Failed(format!("reading from the client: {e}")),
            };
        }
    }

    /// One read: observed, then forwarded (or held, replaced, refused). `Some` ends.
    async fn forward(&mut self, framer: &mut Framer<C::Wire>, chunk: &[u8]) -> Option<Ended> {
        let whole = chunk.len();
        let mut v = ReadVerdict::default();
        let observer = &mut *self.observer;
        let fed = framer.feed(chunk, C::wants, |h, body, cut| {
            // A goodbye to hold, or a yielded frame, must be the read's last (checked below).
            v.hold = None;
            if v.yielded.take().is_some() {
                v.blocked = Some("a command the session must handle arrived with others");
            }
            match observer.frame(h, body, cut) {
                Verdict::Pass => {}
                Verdict::Bye => v.bye = true,
                Verdict::Hold => {
                    v.bye = true;
                    v.hold = <C::Wire as Wire>::body_len(h).ok().map(|b| h.len() + b);
                }
                Verdict::Block(why) => v.blocked = Some(why),
                Verdict::Yield => match span_in(chunk, h, body) {
                    Some((start, _)) if cut.is_none() => v.yielded = Some(start),
                    _ => v.blocked = Some("a command the session must handle arrived split"),
                },
                // A rewrite needs the whole frame in this read (and none of it cut).
                Verdict::Replace(bytes) => match span_in(chunk, h, body) {
                    Some((start, end)) if cut.is_none() => v.replace.push((start, end, bytes)),
                    _ => v.blocked = Some("a command the gateway must rewrite arrived split"),
                },
            }
        });
        if let Err(e) = fed {
            return Some(Ended::Failed(format!(
                "client sent a malformed frame: {e:?}"
            )));
        }
        if let Some(why) = v.blocked {
            return Some(Ended::Failed(why.to_owned()));
        }
        if let Some(start) = v.yielded {
            if !(framer.at_boundary() && self.server_boundary.load(Ordering::Relaxed)) {
                return Some(Ended::Failed(
                    "a change of user while the server was still answering".into(),
                ));
            }
            if start > 0
                && let Err(e) = write(&mut self.to, &chunk[..start]).await
            {
                return Some(Ended::Failed(format!("writing to the upstream: {e}")));
            }
            *self.bytes += whole as u64;
            return Some(Ended::Yielded(chunk[start..].to_vec()));
        }
        *self.bytes += whole as u64;
        // Held only if the goodbye is whole in this read, ends it, and the upstream is
        // at a message boundary.
        if let Some(len) = v.hold.filter(|_| framer.at_boundary())
            && len <= whole
            && v.replace.is_empty()
            && self.server_boundary.load(Ordering::Relaxed)
        {
            let before = whole - len;
            if before > 0
                && let Err(e) = write(&mut self.to, &chunk[..before]).await
            {
                return Some(Ended::Failed(format!("writing to the upstream: {e}")));
            }
            return Some(Ended::Held);
        }
        let replaced;
        let out = if v.replace.is_empty() {
            chunk
        } else {
            replaced = spliced(chunk, &v.replace);
            &replaced
        };
        if let Err(e) = write(&mut self.to, out).await {
            return Some(Ended::Failed(format!("writing to the upstream: {e}")));
        }
        v.bye.then_some(Ended::ClientTerminated)
    }
}

/// Server → client: forward each read, observe its frames, hand finished statements to
/// the sink; on a stop, say the protocol's goodbye at a frame boundary.
struct Downstream<'a, R, W, S, K> {
    from: R,
    to: W,
    first: &'a [u8],
    observer: &'a mut S,
    server_boundary: &'a AtomicBool,
    bytes: &'a mut u64,
    queries: &'a mut u64,
    sink: &'a mut K,
}

impl<R, W, S, K> Downstream<'_, R, W, S, K>
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
    S: ServerSide,
    K: Sink,
{
    async fn run(mut self, stop: impl Future<Output = String> + Send) -> Ended {
        let aligned = self.observer.aligned();
        let limit = if aligned { usize::MAX } else { S::LIMIT };
        let mut framer = Framer::<S::Wire>::with_limit(limit);
        let mut outcomes = Vec::new();
        let mut buf = ReadBuf::new();
        // Aligned: the start of a frame not yet whole, held for the next read.
        let mut carry = Vec::new();
        let mut joined;
        let mut read: &[u8] = self.first;
        let mut stop = gate::Gate::new(stop);
        loop {
            let mut chunk = read;
            if aligned && !read.is_empty() {
                chunk = if carry.is_empty() {
                    let end = whole_frames::<S::Wire>(read);
                    carry.extend_from_slice(&read[end..]);
                    &read[..end]
                } else {
                    // A frame's start waits in `carry`: moved, never copied again while
                    // the frame is still not whole (a large row takes many reads).
                    joined = std::mem::take(&mut carry);
                    joined.extend_from_slice(read);
                    let end = whole_frames::<S::Wire>(&joined);
                    if end == 0 {
                        carry = std::mem::take(&mut joined);
                        &[]
                    } else {
                        carry = joined.split_off(end);
                        &joined[..]
                    }
                };
            }
            if !chunk.is_empty() {
                let observer = &mut *self.observer;
                let mut replace = Vec::new();
                let fed = framer.feed(
                    chunk,
                    |h| aligned || S::wants(h),
                    |h, body, _| {
                        if let Some(bytes) = observer.frame(h, body, &mut outcomes)
                            && let Some((start, end)) = span_in(chunk, h, body)
                        {
                            replace.push((start, end, bytes));
                        }
                    },
                );
                if let Err(e) = fed {
                    return Ended::Failed(format!("upstream sent a malformed frame: {e:?}"));
                }
                if let Some(why) = self.observer.refused() {
                    return Ended::Failed(why);
                }
                self.server_boundary
                    .store(framer.at_boundary() && carry.is_empty(), Ordering::Relaxed);
                *self.bytes += chunk.len() as u64;
                let replaced;
                let out = if replace.is_empty() {
                    chunk
                } else {
                    replaced = spliced(chunk, &replace);
                    &replaced[..]
                };
                // Held completions (`audit.durability = "acknowledged"`): the client sees
                // a statement complete only once its event is written.
                let hold = !outcomes.is_empty() && self.sink.holds_completions();
                if !hold && let Err(e) = write(&mut self.to, out).await {
                    return Ended::Failed(format!("writing to the client: {e}"));
                }
                for o in outcomes.drain(..) {
                    self.sink.outcome(o);
                    *self.queries += 1;
                }
                // A relay that ends while this waits for the log (the client's goodbye
                // came first) flushes again after the select.
                self.sink.flush().await;
                if hold {
                    self.sink.settled().await;
                    if let Err(e) = write(&mut self.to, out).await {
                        return Ended::Failed(format!("writing to the client: {e}"));
                    }
                }
            }
            let n = tokio::select! {
                biased;
                message = &mut stop => {
                    if framer.at_boundary()
                        && let Some(bytes) = self.observer.goodbye(&message)
                    {
                        let _ = write(&mut self.to, &bytes).await;
                    }
                    return Ended::Stopped;
                }
                read = self.from.read(buf.next()) => read,
            };
            read = match n {
                Ok(0) => return Ended::UpstreamClosed(self.observer.fatal()),
                Ok(n) => buf.got(n),
                Err(e) => return Ended::Failed(format!("reading from the upstream: {e}")),
            };
        }
    }
}

/// How much of `data` (from a frame boundary) is whole frames.
fn whole_frames<W: Wire>(data: &[u8]) -> usize {
    let mut at = 0;
    while let Some(header) = data.get(at..at + W::HEADER) {
        let Ok(body) = W::body_len(header) else {
            return data.len(); // the framer reports it
        };
        let end = at + W::HEADER + body;
        if end > data.len() {
            break;
        }
        at = end;
    }
    at
}

async fn write<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(bytes).await?;
    w.flush().await
}
