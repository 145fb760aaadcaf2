//! Wires the gateway together: config → store → control plane → listeners (admin API,
//! PostgreSQL, MySQL) → reload on SIGHUP → drain on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admin::ApiState;
use crate::config::Config;
use crate::control::ControlPlane;
use crate::seal::Sealer;
use crate::store::Store;

pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Installs ring as the process's rustls provider (once; later calls are no-ops).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A running gateway: its bound addresses and a way to stop it.
pub struct Running {
    pub control: Arc<ControlPlane>,
    pub api: ApiState,
    pub admin_addr: Option<SocketAddr>,
    pub postgres_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Running {
    /// Stops accepting, lets the listeners finish, and closes the store.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        while self.tasks.join_next().await.is_some() {}
        self.control.store.close().await;
    }
}

/// Opens the store and starts every configured listener.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    install_crypto();
    let sealer = Sealer::load(config.store.key.as_ref(), &config.store.data_dir)?;
    let store = Store::open(&config.store.url, sealer)
        .await
        .with_context(|| format!("cannot open the store at {}", redact_url(&config.store.url)))?;
    let listen = config.listen.clone();
    let control = ControlPlane::start(config, store).await?;
    let api = ApiState::new(Arc::clone(&control));
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let poller = control.spawn_poller();
    let mut stop_poller = stopped.clone();
    tasks.spawn(async move {
        let _ = stop_poller.wait_for(|s| *s).await;
        poller.abort();
    });

    let mut admin_addr = None;
    if let Some(addr) = listen.admin {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (listen.admin)"))?;
        admin_addr = Some(listener.local_addr()?);
        tracing::info!(addr = %listener.local_addr()?, "admin API listening");
        let (state, mut stopped) = (api.clone(), stopped.clone());
        tasks.spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = crate::admin::serve(listener, state, shutdown).await {
                tracing::error!(error = %e, "admin API stopped");
            }
        });
    }
    Ok(Running {
        control,
        api,
        admin_addr,
        postgres_addr: None,
        stop,
        tasks,
    })
}

/// `portcullis serve`: run until SIGTERM or SIGINT; SIGHUP reloads the config.
pub async fn run(path: &Path) -> anyhow::Result<()> {
    let config = Config::load(path)?;
    tracing::info!(config = %path.display(), "starting");
    let running = start(config).await?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                if let Err(e) = running.control.reload_config().await {
                    tracing::error!("config not reloaded, the old one stays in force: {e}");
                }
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db` for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
