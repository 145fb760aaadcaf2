//! Single-threaded session runtimes, one per core (`limits.session_threads`): a session's
//! two sockets, its relay task and its timers stay on one thread, so a statement costs no
//! cross-thread wake-up and no work-stealing bookkeeping — the way PgBouncer's one event
//! loop works, times the cores. Listeners, the admin API and the store stay on the main
//! runtime; an accepted connection moves to the core with the fewest live sessions.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

struct Core {
    handle: Handle,
    live: Arc<AtomicUsize>,
    _stop: oneshot::Sender<()>,
}

/// The session runtimes; dropping this stops them (after the gateway has drained).
pub struct Cores {
    cores: Vec<Core>,
}

/// Counts a session on its core for as long as it runs.
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Cores {
    /// `n` threads, or one per available core when `n` is 0.
    pub fn start(n: usize) -> io::Result<Cores> {
        let n = match n {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut cores = Vec::with_capacity(n);
        for i in 0..n {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("portcullis-core-{i}"))
                .spawn(move || {
                    let _ = runtime.block_on(stopped);
                })?;
            cores.push(Core {
                handle,
                live: Arc::new(AtomicUsize::new(0)),
                _stop: stop,
            });
        }
        Ok(Cores { cores })
    }

    /// Live sessions on each core.
    pub fn live(&self) -> Vec<usize> {
        self.cores
            .iter()
            .map(|c| c.live.load(Ordering::Relaxed))
            .collect()
    }

    /// Runs `session` on the least busy core, with `tcp` registered on that core's reactor.
    pub fn spawn<F, Fut>(&self, tcp: TcpStream, session: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some(core) = self
            .cores
            .iter()
            .min_by_key(|c| c.live.load(Ordering::Relaxed))
        else {
            return;
        };
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, "cannot move a connection to a session core");
                return;
            }
        };
        core.live.fetch_add(1, Ordering::Relaxed);
        let live = Live(Arc::clone(&core.live));
        core.handle.spawn(async move {
            let _live = live;
            match TcpStream::from_std(tcp) {
                Ok(tcp) => session(tcp).await,
                Err(e) => tracing::warn!(error = %e, "cannot register a connection on its core"),
            }
        });
    }
}
