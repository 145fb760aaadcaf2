//! The hot path for PostgreSQL: bytes are forwarded as read, in both directions, never
//! re-encoded. Each direction runs a `Framer` over what passes and hands the frames the
//! monitoring log needs to `observe`; finished statements go to the `Observer`. A stop
//! request is honoured at a frame boundary towards the client, with a FATAL 57P01.

use std::future::Future;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::front::{fatal_bytes, sqlstate};
use super::observe::{self, Backend, Frontend, Outcome};
use crate::protocol::framer::{Framer, Pg};

/// Read buffers start small (idle sessions stay cheap) and grow once a read fills one.
const BUF_START: usize = 2 * 1024;
const BUF: usize = 32 * 1024;

/// Receives finished statements (and may make the relay wait: back-pressure).
pub trait Observer: Send {
    fn outcome(&mut self, outcome: Outcome) -> impl Future<Output = ()> + Send;
}

#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The client sent Terminate.
    ClientTerminated,
    /// The client closed without Terminate.
    ClientClosed,
    /// The upstream closed; with the SQLSTATE of its FATAL error if it sent one.
    UpstreamClosed(Option<String>),
    /// Told to stop; the client was sent the message (when at a frame boundary).
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

/// Relays until one side ends or `stop` resolves with the message for the client.
#[allow(clippy::too_many_arguments)]
pub async fn relay<CR, CW, UR, UW, O>(
    mut client_r: CR,
    mut client_w: CW,
    mut up_r: UR,
    mut up_w: UW,
    client_first: &[u8],
    upstream_first: &[u8],
    stop: impl Future<Output = String> + Send,
    observer: &mut O,
    counters: &mut Counters,
) -> Ended
where
    CR: AsyncRead + Unpin + Send,
    CW: AsyncWrite + Unpin + Send,
    UR: AsyncRead + Unpin + Send,
    UW: AsyncWrite + Unpin + Send,
    O: Observer,
{
    let pending = observe::pending();
    let (mut fe_framer, mut fe) = (Framer::<Pg>::default(), Frontend::default());
    let (mut be_framer, mut be) = (Framer::<Pg>::default(), Backend::default());
    let mut outcomes = Vec::new();
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
                let mut terminated = false;
                let fed = fe_framer.feed(
                    chunk,
                    |h| observe::frontend_wants(h[0]),
                    |h, body, _| {
                        terminated |= fe.on_frame(h[0], body, &pending);
                    },
                );
                if let Err(e) = fed {
                    return Ended::Failed(format!("client sent a malformed frame: {e:?}"));
                }
                *bytes_in += chunk.len() as u64;
                if let Err(e) = write(&mut up_w, chunk).await {
                    return Ended::Failed(format!("writing to the upstream: {e}"));
                }
                if terminated {
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
                let fed = be_framer.feed(
                    chunk,
                    |h| observe::backend_wants(h[0]),
                    |h, body, _| {
                        be.on_frame(h[0], body, &pending, &mut outcomes);
                    },
                );
                if let Err(e) = fed {
                    return Ended::Failed(format!("upstream sent a malformed frame: {e:?}"));
                }
                *bytes_out += chunk.len() as u64;
                if let Err(e) = write(&mut client_w, chunk).await {
                    return Ended::Failed(format!("writing to the client: {e}"));
                }
                for o in outcomes.drain(..) {
                    *queries += 1;
                    observer.outcome(o).await;
                }
            }
            if filled && buf.len() < BUF {
                buf.resize(BUF, 0);
            }
            let n = tokio::select! {
                biased;
                message = &mut stop => {
                    if be_framer.at_boundary() {
                        let _ = write(&mut client_w, &fatal_bytes(sqlstate::ADMIN_SHUTDOWN, &message)).await;
                    }
                    return Ended::Stopped;
                }
                read = up_r.read(&mut buf) => read,
            };
            chunk = match n {
                Ok(0) => return Ended::UpstreamClosed(be.fatal.clone()),
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
