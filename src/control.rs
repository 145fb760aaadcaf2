//! The live control plane: the store, the current config and the published snapshot.
//! A write through any path bumps the store's revision; every instance polls it and
//! swaps in a fresh snapshot, so a change reaches new connections within one poll
//! interval (250 ms by default) everywhere. Sessions subscribe to snapshot changes to end
//! themselves when their user loses access.

use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::config::{Config, ConfigError};
use crate::runbook::Catalog;
use crate::snapshot::Snapshot;
use crate::store::{ChangeRecord, Store, StoreError};

pub struct ControlPlane {
    pub store: Store,
    config: ArcSwap<Config>,
    snapshot: ArcSwap<Snapshot>,
    /// The runbooks of `runbooks.dir`, read at start and at every reload.
    runbooks: ArcSwap<Catalog>,
    changed: watch::Sender<i64>,
    /// Where `admin_change` events go once the monitoring log is open.
    recorder: std::sync::OnceLock<crate::audit::Recorder>,
    /// Fired when a request to end a session may be waiting for this instance.
    pub session_ends: tokio::sync::Notify,
    /// When the store last answered a refresh.
    reached: std::sync::Mutex<std::time::Instant>,
}

/// The runbooks of `dir`; a file with problems is left out and said so (`runbooks lint`
/// lists every problem).
fn load_runbooks(dir: &std::path::Path) -> Catalog {
    match crate::runbook::load(dir) {
        Ok((catalog, bad)) => {
            for f in bad {
                let first = f
                    .problems
                    .first()
                    .map(|p| p.message.clone())
                    .unwrap_or_default();
                tracing::warn!(file = %f.path.display(), problems = f.problems.len(), first = %first, "a runbook file has problems and is left out (run `portcullis runbooks lint`)");
            }
            tracing::info!(dir = %dir.display(), runbooks = catalog.runbooks.len(), "runbooks read");
            catalog
        }
        Err(e) => {
            tracing::info!(dir = %dir.display(), error = %e, "no runbooks directory; no runbooks");
            Catalog::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("applying the config to the store failed: {0}")]
    Store(#[from] StoreError),
}

impl ControlPlane {
    /// Applies the config's declarations and loads the first snapshot.
    pub async fn start(config: Config, store: Store) -> Result<Arc<ControlPlane>, StoreError> {
        crate::bootstrap::apply(&store, &config).await?;
        let snapshot = store.load_snapshot().await?;
        let (changed, _) = watch::channel(snapshot.revision);
        let runbooks = load_runbooks(&config.runbooks.dir);
        Ok(Arc::new(ControlPlane {
            store,
            runbooks: ArcSwap::from_pointee(runbooks),
            config: ArcSwap::from_pointee(config),
            snapshot: ArcSwap::from_pointee(snapshot),
            changed,
            recorder: std::sync::OnceLock::new(),
            session_ends: tokio::sync::Notify::new(),
            reached: std::sync::Mutex::new(std::time::Instant::now()),
        }))
    }

    /// Sends admin changes to the monitoring log from now on.
    pub fn attach_recorder(&self, recorder: crate::audit::Recorder) {
        let _ = self.recorder.set(recorder);
    }

    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    pub fn runbooks(&self) -> Arc<Catalog> {
        self.runbooks.load_full()
    }

    /// Fires whenever a new snapshot is published.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.changed.subscribe()
    }

    /// Publishes a fresh snapshot if the store changed since the current one.
    pub async fn refresh(&self) -> Result<bool, StoreError> {
        let revision = self.store.revision().await?;
        if let Ok(mut r) = self.reached.lock() {
            *r = std::time::Instant::now();
        }
        if revision == self.snapshot.load().revision {
            return Ok(false);
        }
        let snapshot = self.store.load_snapshot().await?;
        let rev = snapshot.revision;
        self.snapshot.store(Arc::new(snapshot));
        self.changed.send_replace(rev);
        Ok(true)
    }

    /// `Err(how long)` when the store has not answered for longer than
    /// `store.max_staleness`: the snapshot may no longer say who may log in.
    pub fn fresh_enough(&self) -> Result<(), std::time::Duration> {
        let since = self.reached.lock().map(|r| r.elapsed()).unwrap_or_default();
        if since > self.config().store.max_staleness {
            Err(since)
        } else {
            Ok(())
        }
    }

    /// Re-reads the config file; a bad file keeps the old config and says why.
    pub async fn reload_config(&self) -> Result<(), ReloadError> {
        let path = self.config.load().source.clone();
        let fresh = Config::load(&path)?;
        crate::bootstrap::apply(&self.store, &fresh).await?;
        self.runbooks
            .store(Arc::new(load_runbooks(&fresh.runbooks.dir)));
        self.config.store(Arc::new(fresh));
        self.refresh().await?;
        tracing::info!(path = %path.display(), "config reloaded");
        Ok(())
    }

    /// Records an admin change in the store (and, through it, for the monitoring log).
    pub async fn record_change(
        &self,
        actor: &str,
        action: &str,
        object: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<(), StoreError> {
        let us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64);
        let change = ChangeRecord {
            id: uuid::Uuid::new_v4().to_string(),
            ts: us / 1_000_000,
            ts_us: us,
            actor: actor.to_owned(),
            action: action.to_owned(),
            object: object.to_owned(),
            before,
            after,
        };
        tracing::info!(actor, action, object, "admin change");
        self.store.record_change(&change).await?;
        if let Some(recorder) = self.recorder.get() {
            let common = crate::audit::Common {
                user: change.actor.clone(),
                mode: crate::audit::Mode::Admin,
                protocol: crate::audit::Channel::Http,
                ..Default::default()
            };
            let kind = crate::audit::Kind::AdminChange {
                actor: change.actor,
                action: change.action,
                object: change.object,
                before: change.before,
                after: change.after,
            };
            let event = crate::audit::Event {
                common: Arc::new(common),
                kind,
            };
            recorder.emit(event).await;
        }
        Ok(())
    }

    /// Refreshes as soon as another instance's write is announced (`Store::commit`). A
    /// connection lost and made again refreshes at once: what was announced meanwhile is
    /// not missed for longer than that.
    async fn listen(self: Arc<Self>, url: String) {
        loop {
            let Err(e) = self.listening(&url).await;
            tracing::warn!(error = %e, "not listening for store changes; polling, and trying again in a second");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    async fn listening(&self, url: &str) -> Result<std::convert::Infallible, sqlx::Error> {
        let mut l = sqlx::postgres::PgListener::connect(url).await?;
        let channels = [
            crate::store::REVISION_CHANNEL,
            crate::store::SESSION_END_CHANNEL,
        ];
        l.listen_all(channels).await?;
        tracing::debug!("listening for store changes");
        // Whatever was announced while not listening.
        self.refresh_logged().await;
        self.session_ends.notify_one();
        loop {
            match l.try_recv().await? {
                Some(n) if n.channel() == crate::store::SESSION_END_CHANNEL => {
                    self.session_ends.notify_one();
                }
                Some(_) => self.refresh_logged().await,
                None => {
                    let lost = std::io::ErrorKind::ConnectionAborted;
                    return Err(sqlx::Error::Io(lost.into()));
                }
            }
        }
    }

    async fn refresh_logged(&self) {
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "store refresh failed; keeping the last good snapshot");
        }
    }

    /// Records, in the background, that the token behind `identity` was just used (API
    /// calls and native logins alike).
    pub fn token_used(&self, identity: &crate::auth::Identity) {
        let Some(id) = identity.token().map(str::to_owned) else {
            return;
        };
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.touch_token(&id).await {
                tracing::debug!(error = %e, "could not record token use");
            }
        });
    }

    /// Polls the store for changes made by any instance until the process ends; on a
    /// PostgreSQL store, also listens for them (`listen`), the poll staying as the
    /// fallback.
    pub fn spawn_poller(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let url = self.config().store.url.clone();
        // Ends with the poller (dropped with it when it is aborted).
        let listener = url.starts_with("postgres").then(|| {
            tokio_util::task::AbortOnDropHandle::new(tokio::spawn(Arc::clone(self).listen(url)))
        });
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let _listener = listener;
            let mut tick = tokio::time::interval(this.config().store.poll_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = this.refresh().await {
                    tracing::warn!(error = %e, "store poll failed; keeping the last good snapshot");
                }
            }
        })
    }
}
