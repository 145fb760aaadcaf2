//! The admin listener: HTTP/1 by hyper, each connection within the listener's caps, with
//! a header-read timeout (`limits.login_timeout`) and an idle timeout
//! (`limits.admin_idle_timeout`), so idle or dribbling connections cannot pile up. A
//! connection over a cap gets a 503 in one non-blocking write and is closed.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::ApiState;
use crate::caps::{Caps, Slot};

const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
content-length: 32\r\nconnection: close\r\n\r\n{\"error\":\"too many connections\"}";

/// Serves `app` (the API, and the console beside it) on `listener` until `shutdown`
/// resolves, then lets requests in flight finish (up to 5 s).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    app: axum::Router,
    caps: Caps,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let limits = state.control.config().limits.clone();
    let (stop, stopping) = watch::channel(false);
    let tasks = tokio_util::task::TaskTracker::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = caps.admit(addr.ip()) else {
            let _ = tcp.try_write(TOO_MANY);
            continue;
        };
        let app = app.clone().layer(axum::Extension(ConnectInfo(addr)));
        let timeouts = (limits.login_timeout, limits.admin_idle_timeout);
        tasks.spawn(connection(tcp, addr, app, slot, timeouts, stopping.clone()));
    }
    stop.send_replace(true);
    tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await;
}

pub(crate) async fn connection(
    tcp: TcpStream,
    addr: SocketAddr,
    app: axum::Router,
    _slot: Slot,
    (header_read, idle): (Duration, Duration),
    mut stopping: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: tcp,
        activity: Arc::clone(&activity),
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read);
    let conn = http.serve_connection(io, TowerToHyperService::new(app));
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(client = %addr, error = %e, "admin connection ended");
            }
        }
        _ = activity.idle_for(idle) => {
            tracing::debug!(client = %addr, "admin connection idle: closed");
        }
        _ = async { let _ = stopping.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// When a connection last moved bytes, as milliseconds since it opened.
struct Activity {
    opened: Instant,
    last: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = self.opened.elapsed().as_millis() as u64;
        self.last.store(now, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
            let quiet = self.opened.elapsed().saturating_sub(last);
            if quiet >= idle {
                return;
            }
            tokio::time::sleep(idle - quiet).await;
        }
    }
}

/// A stream that notes every read and write in its `Activity`.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch();
        }
        r
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
