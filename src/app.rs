//! Wires the gateway together: config → store → control plane → listeners (admin API,
//! PostgreSQL, MySQL) → reload on SIGHUP → drain on SIGTERM/SIGINT.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use std::time::Duration;

use crate::admin::ApiState;
use crate::audit::WriterHandle;
use crate::audit::checkpoint::{Anchor, Checkpoints};
use crate::audit::signing::CheckpointSigner;
use crate::caps::Caps;
use crate::config::Config;
use crate::control::ControlPlane;
use crate::metrics::Metrics;
use crate::seal::Sealer;
use crate::session::mysql::MyListener;
use crate::session::postgres::PgListener;
use crate::session::{EndReason, Gateway, Registry};
use crate::store::Store;
use crate::upstream::Upstreams;

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

/// Makes (at first start) the self-signed certificate and says how clients trust it.
fn announce_self_signed(t: &crate::config::TlsConfig) -> anyhow::Result<()> {
    let (made, fingerprint) = crate::tls::self_signed(&t.cert, &t.key)?;
    let what = if made {
        "made a self-signed TLS certificate"
    } else {
        "TLS with the self-signed certificate"
    };
    tracing::info!(
        cert = %t.cert.display(),
        sha256 = %fingerprint,
        "{what}: clients encrypt with sslmode=require / --ssl, verify with sslrootcert= / --ssl-ca= this file; set [tls] cert and key for your own, or [tls] enabled = false"
    );
    Ok(())
}

/// Installs ring as the process's rustls provider (once; later calls are no-ops).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A running gateway: its bound addresses and a way to stop it.
pub struct Running {
    pub control: Arc<ControlPlane>,
    pub gateway: Arc<Gateway>,
    pub admin_addr: Option<SocketAddr>,
    pub postgres_addr: Option<SocketAddr>,
    pub mysql_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    index_task: tokio::task::JoinHandle<()>,
    listeners: JoinSet<()>,
    writer: Writer,
}

impl Running {
    /// Stops accepting, ends live sessions after `grace`, writes every event, closes the
    /// store.
    pub async fn shutdown(self) {
        self.shutdown_with_grace(Duration::ZERO).await
    }

    pub async fn shutdown_with_grace(mut self, grace: Duration) {
        self.stop.send_replace(true);
        while self.listeners.join_next().await.is_some() {}
        // No new session task can start now; `wait` resolves when the last one ends.
        let tasks = self.gateway.tasks.clone();
        tasks.close();
        if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
            self.gateway.registry.end_all(EndReason::Shutdown);
            // A session stuck writing to a client that stopped reading cannot see the
            // stop; do not wait for it forever (its guard still records `session_ended`).
            if tokio::time::timeout(Duration::from_secs(5), tasks.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    sessions = self.gateway.registry.len(),
                    "sessions did not end in time; exiting anyway"
                );
            }
        }
        self.gateway.upstreams.close().await;
        // Session tasks have recorded their `session_ended`; let the writer drain.
        let Running {
            gateway,
            writer,
            control,
            index_task,
            ..
        } = self;
        drop(gateway);
        // The index task ends once the last session (and the gateway) let go of it.
        let _ = tokio::time::timeout(Duration::from_secs(5), index_task).await;
        writer.finish().await;
        control.store.close().await;
    }
}

/// Opens the store and the monitoring log and starts every configured listener.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    install_crypto();
    let listen = config.listen.clone();
    let server_tls = match &config.tls {
        Some(t) => {
            if t.self_signed {
                announce_self_signed(t)?;
            }
            Some(crate::tls::server_config(&t.cert, &t.key)?)
        }
        None => None,
    };
    let budget = crate::caps::budget(&config.limits, crate::caps::raise_nofile());
    let per_address = config.limits.max_connections_per_address;
    let (gateway, writer, index_task) = open(config).await?;
    let control = Arc::clone(&gateway.control);
    let (stop, stopped) = watch::channel(false);
    let stopped_fut = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut listeners = JoinSet::new();
    listeners.spawn(background(
        Arc::clone(&gateway),
        stopped_fut(stopped.clone()),
    ));
    let mut admin_addr = None;
    if let Some(addr) = listen.admin {
        let listener = bind(addr, "listen.admin").await?;
        admin_addr = Some(listener.local_addr()?);
        tracing::info!(addr = %listener.local_addr()?, console = %format!("http://{}/ui/", listener.local_addr()?), "admin API and web console listening");
        let (api, shutdown) = (ApiState(Arc::clone(&gateway)), stopped_fut(stopped.clone()));
        let caps = Caps::new(budget.admin, per_address);
        let app = crate::admin::router(api.clone())
            .merge(crate::console::router(api.clone()))
            .fallback(crate::admin::not_found);
        listeners.spawn(crate::admin::serve(listener, api, app, caps, shutdown));
    }
    let mut postgres_addr = None;
    if let Some(addr) = listen.postgres {
        let listener = bind(addr, "listen.postgres").await?;
        postgres_addr = Some(listener.local_addr()?);
        tracing::info!(addr = %listener.local_addr()?, tls = server_tls.is_some(), "PostgreSQL listener ready");
        let acceptor = server_tls.clone().map(pgwire::tokio::TlsAcceptor::from);
        let pg = Arc::new(PgListener::new(Arc::clone(&gateway), acceptor));
        let stop = stopped_fut(stopped.clone());
        let caps = Caps::new(budget.sessions, per_address);
        listeners.spawn(crate::session::accept_loop(pg, listener, caps, stop));
    }
    let mut mysql_addr = None;
    if let Some(addr) = listen.mysql {
        let listener = bind(addr, "listen.mysql").await?;
        mysql_addr = Some(listener.local_addr()?);
        tracing::info!(addr = %listener.local_addr()?, tls = server_tls.is_some(), "MySQL listener ready");
        let acceptor = server_tls.clone().map(tokio_rustls::TlsAcceptor::from);
        let my = Arc::new(MyListener::new(Arc::clone(&gateway), acceptor));
        let stop = stopped_fut(stopped.clone());
        let caps = Caps::new(budget.sessions, per_address);
        listeners.spawn(crate::session::accept_loop(my, listener, caps, stop));
    }
    let _ = gateway.listening.set((postgres_addr, mysql_addr));
    Ok(Running {
        mysql_addr,
        control,
        gateway,
        admin_addr,
        postgres_addr,
        stop,
        index_task,
        listeners,
        writer,
    })
}

/// The store, the monitoring log, the control plane, the session index (after ending the
/// sessions a crash left open): the gateway every listener shares.
async fn open(
    config: Config,
) -> anyhow::Result<(Arc<Gateway>, Writer, tokio::task::JoinHandle<()>)> {
    let sealer = Sealer::load(config.store.key.as_ref(), &config.store.data_dir)?;
    let store = Store::open(&config.store.url, sealer)
        .await
        .with_context(|| format!("cannot open the store at {}", redact_url(&config.store.url)))?;
    let instance = crate::session::index::instance_id(
        &config.store.data_dir,
        config.instance.as_deref(),
        || default_instance(&config),
    )
    .context("cannot read or create this instance's id in store.data_dir")?;
    let signer = Arc::new(CheckpointSigner::load(
        config.audit.signing_key.as_ref(),
        &config.store.data_dir,
    )?);
    let (checkpoints, anchor_task) = checkpoints(&config, &store, &instance, &signer).await?;
    let lost = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (recorder, writer) =
        crate::audit::spawn_writer(&config.audit, &instance, lost, Some(checkpoints))
            .with_context(|| {
                format!(
                    "cannot open the monitoring log in {}",
                    config.audit.dir.display()
                )
            })?;
    let writer = Writer {
        handle: writer,
        anchors: anchor_task,
    };
    let control = ControlPlane::start(config, store).await?;
    control.attach_recorder(recorder.clone());
    let audit_dir = control.config().audit.dir.clone();
    match crate::session::index::close_orphans(&control.store, &recorder, &instance, &audit_dir)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            sessions = n,
            "closed sessions a previous run left open (it stopped without ending them)"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot close sessions a previous run left open"),
    }
    let (index, index_task) =
        crate::session::index::SessionIndex::spawn(control.store.clone(), &instance);
    warn_open_files(&control.config());
    let limits = &control.config().limits;
    let gateway = Arc::new(Gateway {
        control: Arc::clone(&control),
        recorder,
        registry: Arc::new(Registry::default()),
        metrics: Arc::new(Metrics::default()),
        index,
        lockout: Arc::new(crate::lockout::Lockout::new(limits)),
        upstreams: Upstreams::new(limits),
        tasks: tokio_util::task::TaskTracker::new(),
        instance: instance.into(),
        signer,
        notifier: crate::notify::Notifier::spawn(control.config().notify.webhooks.clone()),
        listening: std::sync::OnceLock::new(),
        catalogs: Arc::default(),
        shipping: control.config().audit.nats.as_ref().map(|_| Arc::default()),
    });
    Ok((gateway, writer, index_task))
}

/// The monitoring log's writer and the task that anchors its checkpoints in the store.
struct Writer {
    handle: WriterHandle,
    anchors: tokio::task::JoinHandle<()>,
}

impl Writer {
    /// Writes every event (and the last checkpoint), then waits for its anchor.
    async fn finish(self) {
        self.handle.finish().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.anchors).await;
    }
}

/// The checkpoint schedule, the store's last anchor for this instance, and a task that
/// writes each new anchor to the store.
async fn checkpoints(
    config: &Config,
    store: &Store,
    instance: &str,
    signer: &Arc<CheckpointSigner>,
) -> anyhow::Result<(Checkpoints, tokio::task::JoinHandle<()>)> {
    let anchored = store
        .anchor(instance)
        .await
        .context("cannot read the monitoring log's anchor from the store")?
        .map(|(seq, hash)| Anchor { seq, hash });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Anchor>();
    let (store, who) = (store.clone(), instance.to_owned());
    let task = tokio::spawn(async move {
        while let Some(a) = rx.recv().await {
            if let Err(e) = store.set_anchor(&who, a.seq, &a.hash).await {
                tracing::warn!(error = %e, "cannot anchor the monitoring log's checkpoint in the store");
            }
        }
    });
    let schedule = (
        config.audit.checkpoint_interval,
        config.audit.checkpoint_events,
    );
    let cp = Checkpoints::new(Arc::clone(signer), instance, schedule, tx, anchored);
    Ok((cp, task))
}

/// Says loudly when the data directory, the store or the monitoring log can be read by
/// other users (created private, they could have been loosened since, or made by hand).
fn warn_open_files(config: &Config) {
    let mut paths = vec![config.store.data_dir.clone(), config.audit.dir.clone()];
    if let Some(file) = config
        .store
        .url
        .strip_prefix("sqlite://")
        .and_then(|p| p.split('?').next())
    {
        paths.push(file.into());
    }
    for p in paths {
        crate::fsutil::warn_if_open(&p);
    }
}

/// A new instance's id: the host name and the first configured listener port.
fn default_instance(config: &Config) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "portcullis".into());
    let l = &config.listen;
    let port = [l.postgres, l.mysql, l.admin]
        .into_iter()
        .flatten()
        .map(|a| a.port())
        .find(|p| *p != 0);
    match port {
        Some(p) => format!("{host}:{p}"),
        // Ports chosen by the system change at each start: the host and a random part.
        None => format!("{host}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
    }
}

/// The gateway's own background work until `stop`: polling the store, ending sessions a
/// change withdrew access from, sweeping expired lockouts and kept connections.
async fn background(gateway: Arc<Gateway>, stop: impl Future<Output = ()>) {
    let poller = gateway.control.spawn_poller();
    let watcher = spawn_revalidator(&gateway);
    let requests = crate::requests::spawn_sweeper(&gateway);
    let remote_ends = crate::session::remote::spawn(Arc::clone(&gateway));
    let lockouts = spawn_lockout_sync(&gateway);
    let heartbeat = spawn_heartbeat(&gateway);
    let shipper = spawn_shipper(&gateway);
    let gw = Arc::clone(&gateway);
    let sweeper = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            gw.lockout.sweep();
            gw.upstreams.sweep();
        }
    });
    stop.await;
    poller.abort();
    watcher.abort();
    requests.abort();
    remote_ends.abort();
    heartbeat.abort();
    if let Some(s) = shipper {
        s.abort();
    }
    if let Some(l) = lockouts {
        l.abort();
    }
    sweeper.abort();
}

/// Ships the monitoring log to NATS JetStream, when `[audit.nats]` says where.
fn spawn_shipper(gateway: &Arc<Gateway>) -> Option<tokio::task::JoinHandle<()>> {
    let config = gateway.control.config();
    let nats = config.audit.nats.clone()?;
    let state = Arc::clone(gateway.shipping.as_ref()?);
    let (dir, data_dir) = (config.audit.dir.clone(), config.store.data_dir.clone());
    let instance = Arc::clone(&gateway.instance);
    Some(tokio::spawn(crate::audit::ship::run(
        nats, dir, data_dir, instance, state,
    )))
}

/// Says this instance is alive in the store, and ends the open sessions of any peer not
/// seen for `store.instance_timeout` (the one peer that claims it does).
fn spawn_heartbeat(gateway: &Arc<Gateway>) -> tokio::task::JoinHandle<()> {
    let gw = Arc::clone(gateway);
    tokio::spawn(async move {
        let timeout = gw.control.config().store.instance_timeout;
        let mut tick = tokio::time::interval((timeout / 4).min(Duration::from_secs(5)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let store = &gw.control.store;
            if let Err(e) = store.instance_seen(&gw.instance).await {
                tracing::warn!(error = %e, "could not say this instance is alive in the store");
                continue;
            }
            let secs = timeout.as_secs() as i64;
            let closed =
                crate::session::index::close_for_silent(store, &gw.recorder, &gw.instance, secs);
            if let Err(e) = closed.await {
                tracing::warn!(error = %e, "could not end the sessions of a silent instance");
            }
        }
    })
}

/// With a PostgreSQL store (several instances may share it), failed logins and lockouts
/// are shared through it each second (`Lockout::sync`).
fn spawn_lockout_sync(gateway: &Arc<Gateway>) -> Option<tokio::task::JoinHandle<()>> {
    if !gateway.control.config().store.url.starts_with("postgres") {
        return None;
    }
    gateway.lockout.share();
    let gw = Arc::clone(gateway);
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = gw.lockout.sync(&gw.control.store).await {
                tracing::warn!(error = %e, "could not share failed logins and lockouts through the store");
            }
        }
    }))
}

async fn bind(addr: SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({key})"))
}

/// Re-checks live sessions whenever a new snapshot is published.
fn spawn_revalidator(gateway: &Arc<Gateway>) -> tokio::task::JoinHandle<()> {
    let gw = Arc::clone(gateway);
    let mut changes = gw.control.subscribe();
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            gw.registry.revalidate(&gw.control.snapshot());
        }
    })
}

/// `portcullis serve` with `config`, loaded from `path` (`main` reads `limits.threads`
/// before the runtime exists): run until SIGTERM or SIGINT; SIGHUP reloads the config.
pub async fn run(path: &Path, config: Config) -> anyhow::Result<()> {
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
    tracing::info!("shutting down: no new connections; live sessions get 10s to finish");
    running.shutdown_with_grace(Duration::from_secs(10)).await;
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
