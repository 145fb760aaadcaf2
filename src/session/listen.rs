//! A protocol listener's accept loop: each connection on its own tracked task, within the
//! listener's caps (`crate::caps`: its total and each client address's). A connection
//! over a cap gets the protocol's "too many connections" answer in one non-blocking write
//! and is closed at once: refusing a flood costs no task and no wait.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use super::Gateway;
use crate::caps::Caps;
use crate::metrics::Metrics;

/// A protocol listener: what to do with each accepted connection.
pub trait Accept: Send + Sync + Sized + 'static {
    fn gateway(&self) -> &Arc<Gateway>;
    /// The bytes that tell a connection over a cap why it is refused.
    fn too_many() -> Vec<u8>;
    fn connection(
        self: Arc<Self>,
        tcp: tokio::net::TcpStream,
        addr: SocketAddr,
    ) -> impl Future<Output = ()> + Send;
}

/// Accepts until `stop` resolves; each connection runs on its own task (tracked by the
/// gateway, so shutdown can wait for it), within `caps`.
pub async fn accept_loop<L: Accept>(
    l: Arc<L>,
    listener: tokio::net::TcpListener,
    caps: Caps,
    stop: impl Future<Output = ()>,
) {
    let gw = Arc::clone(l.gateway());
    let refusal = L::too_many();
    tokio::pin!(stop);
    loop {
        let (tcp, addr) = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, most likely: let some close before the next.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let Some(slot) = caps.admit(addr.ip()) else {
            Metrics::inc(&gw.metrics.connections_refused_total);
            let _ = tcp.try_write(&refusal);
            continue;
        };
        let this = Arc::clone(&l);
        gw.tasks.spawn(async move {
            let _slot = slot;
            this.connection(tcp, addr).await;
        });
    }
}
