//! A protocol listener's accept loop: each connection on its own tracked task, up to
//! `limits.max_connections`; a connection over the cap gets the protocol's "too many
//! connections" answer.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use super::Gateway;
use crate::metrics::Metrics;

/// A protocol listener: what to do with each accepted connection.
pub trait Accept: Send + Sync + Sized + 'static {
    fn gateway(&self) -> &Arc<Gateway>;
    /// Tells a connection over `limits.max_connections` why it is refused.
    fn over_cap(tcp: tokio::net::TcpStream) -> impl Future<Output = ()> + Send;
    fn connection(
        self: Arc<Self>,
        tcp: tokio::net::TcpStream,
        addr: SocketAddr,
    ) -> impl Future<Output = ()> + Send;
}

/// Accepts until `stop` resolves; each connection runs on its own task (tracked by the
/// gateway, so shutdown can wait for it), up to the cap.
pub async fn accept_loop<L: Accept>(
    l: Arc<L>,
    listener: tokio::net::TcpListener,
    stop: impl Future<Output = ()>,
) {
    let gw = Arc::clone(l.gateway());
    let cap = Arc::new(tokio::sync::Semaphore::new(
        gw.control.config().limits.max_connections,
    ));
    tokio::pin!(stop);
    loop {
        let (tcp, addr) = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let Ok(permit) = Arc::clone(&cap).try_acquire_owned() else {
            Metrics::inc(&gw.metrics.connections_refused_total);
            gw.tasks.spawn(L::over_cap(tcp));
            continue;
        };
        let this = Arc::clone(&l);
        gw.tasks.spawn(async move {
            let _permit = permit;
            this.connection(tcp, addr).await;
        });
    }
}
