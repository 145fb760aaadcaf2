//! Kept upstream connections (`limits.idle_upstreams`), plain or TLS: when a session says
//! goodbye with its upstream idle (outside any transaction, nothing outstanding), the
//! gateway withholds the goodbye (PostgreSQL Terminate, MySQL `COM_QUIT`), resets the
//! connection (the protocol's `reset`) and keeps it for the next session of the same
//! resource role with the same client parameters — which then skips the database's
//! connection start and login, as PgBouncer's session pooling does. Each session is still
//! its own session: access is decided, and `session_started` / `session_ended` written,
//! per client login.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use sha2::{Digest, Sha256};

use crate::access::Permit;
use crate::config::Limits;
use crate::protocol::Upstream;

/// The reset's whole round trip; a connection slower than this is closed instead.
const RESET_TIMEOUT: Duration = Duration::from_secs(2);

/// What a kept connection must match: where it is logged in, as whom, and the client
/// parameters it started with (`Upstream::key_params`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The Portcullis user the connection was logged in for (its identity is in the
    /// login's parameters).
    gateway_user: String,
    resource_role: String,
    address: String,
    user: String,
    database: String,
    /// SHA-256 of the resource role's secret: a changed password keeps nothing old.
    credential: [u8; 32],
    params: Vec<(String, String)>,
}

impl Key {
    /// `params`: what the login carried of the client's, by name.
    pub fn new(permit: &Permit, params: Vec<(String, String)>) -> Key {
        let role = permit.resource_role();
        let secret = role.secret.as_ref().map(|s| s.expose()).unwrap_or_default();
        Key {
            gateway_user: permit.user().name.clone(),
            resource_role: role.name.clone(),
            address: permit.resource().address.clone(),
            user: role.user.clone(),
            database: role.database.clone(),
            credential: Sha256::digest(secret.as_bytes()).into(),
            params,
        }
    }
}

struct Parked<C> {
    conn: C,
    since: Instant,
}

/// The kept connections of one protocol.
pub struct Pool<C> {
    idle: Arc<DashMap<Key, Vec<Parked<C>>>>,
    per_key: usize,
    timeout: Duration,
}

impl<C: Upstream> Pool<C> {
    pub fn new(limits: &Limits) -> Pool<C> {
        Pool {
            idle: Arc::default(),
            per_key: limits.idle_upstreams,
            timeout: limits.idle_upstream_timeout,
        }
    }

    pub fn enabled(&self) -> bool {
        self.per_key > 0
    }

    /// Kept connections right now.
    pub fn len(&self) -> usize {
        self.idle.iter().map(|e| e.value().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest kept connection for `key` that is still open and silent.
    pub fn take(&self, key: &Key) -> Option<C> {
        let mut list = self.idle.get_mut(key)?;
        while let Some(mut p) = list.pop() {
            if p.since.elapsed() <= self.timeout && p.conn.silent() {
                return Some(p.conn);
            }
        }
        None
    }

    /// Resets a connection a session left idle and keeps it, in the background.
    pub fn put(&self, key: Key, mut conn: C) {
        let (idle, per_key) = (Arc::clone(&self.idle), self.per_key);
        tokio::spawn(async move {
            match tokio::time::timeout(RESET_TIMEOUT, conn.reset(&key.database)).await {
                Ok(Ok(())) => {
                    let mut list = idle.entry(key).or_default();
                    if list.len() >= per_key {
                        // Full: the oldest goes (dropping it closes it).
                        list.remove(0);
                    }
                    list.push(Parked {
                        conn,
                        since: Instant::now(),
                    });
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "upstream connection not kept: its reset failed");
                    conn.goodbye().await;
                }
                Err(_) => tracing::debug!("upstream connection not kept: its reset timed out"),
            }
        });
    }

    /// Says goodbye on every kept connection (at shutdown).
    pub async fn close(&self) {
        let keys: Vec<Key> = self.idle.iter().map(|e| e.key().clone()).collect();
        for key in keys {
            if let Some((_, list)) = self.idle.remove(&key) {
                for p in list {
                    p.conn.goodbye().await;
                }
            }
        }
    }

    /// Closes connections kept longer than `limits.idle_upstream_timeout`.
    pub fn sweep(&self) {
        self.idle.retain(|_, list| {
            list.retain(|p| p.since.elapsed() <= self.timeout);
            !list.is_empty()
        });
    }
}
