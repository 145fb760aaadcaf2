//! The server version the MySQL listener's greeting announces. Drivers choose their SQL
//! dialect and features from it (MariaDB's `max_statement_time` or MySQL's
//! `MAX_EXECUTION_TIME`, JSON casts, collations), so it is the upstream's own: learned for
//! each MySQL resource from its greeting at start and at every upstream login. The
//! greeting goes out before the client names a resource role, so a listener whose
//! resources disagree announces `listen.mysql_server_version` when it is set, else the
//! version most of them run (and says so at start).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::protocol::mysql::handshake::parse_server_hello;
use crate::protocol::mysql::packet;
use crate::snapshot::Snapshot;

/// Before any MySQL resource has been reached: a MySQL 5.7 string, which MySQL 8 drivers
/// read as "use collations MariaDB also knows".
pub const UNKNOWN: &str = "5.7.44";

#[derive(Default)]
pub struct Versions {
    /// Resource name → the version its server announced.
    learned: Mutex<BTreeMap<String, String>>,
    /// What the greeting announces when no version is configured.
    current: ArcSwap<Option<Arc<str>>>,
}

impl Versions {
    /// The version to announce: the configured one, else the learned one.
    pub fn greeting(&self, configured: Option<&str>) -> Arc<str> {
        if let Some(v) = configured {
            return Arc::from(v);
        }
        match &**self.current.load() {
            Some(v) => Arc::clone(v),
            None => Arc::from(UNKNOWN),
        }
    }

    /// `resource`'s server announced `version`.
    pub fn learn(&self, resource: &str, version: &str) {
        let Ok(mut learned) = self.learned.lock() else {
            return;
        };
        if learned.get(resource).is_some_and(|v| v == version) {
            return;
        }
        learned.insert(resource.to_owned(), version.to_owned());
        let (most, disagree) = most_common(&learned);
        if disagree {
            tracing::warn!(versions = ?learned, announced = %most, "the MySQL resources run different server versions; the MySQL listener announces the most common one (set listen.mysql_server_version to choose)");
        }
        self.current.store(Arc::new(Some(Arc::from(most.as_str()))));
    }

    /// Reads every MySQL resource's greeting (no login), in the background.
    pub fn probe(self: &Arc<Self>, snapshot: &Snapshot) {
        for entry in snapshot.resources.values() {
            if entry.protocol != crate::model::Protocol::Mysql {
                continue;
            }
            let (versions, name, address) =
                (Arc::clone(self), entry.name.clone(), entry.address.clone());
            tokio::spawn(async move {
                match greeting_of(&address).await {
                    Ok(version) => versions.learn(&name, &version),
                    Err(e) => {
                        tracing::info!(resource = %name, error = %e, "could not read the MySQL server's version yet; it is learned at the first login")
                    }
                }
            });
        }
    }
}

/// The most common version (ties: the greatest), and whether there was more than one.
fn most_common(learned: &BTreeMap<String, String>) -> (String, bool) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in learned.values() {
        *counts.entry(v).or_default() += 1;
    }
    let most = counts
        .iter()
        .max_by_key(|(v, n)| (**n, **v))
        .map(|(v, _)| (*v).to_owned())
        .unwrap_or_else(|| UNKNOWN.to_owned());
    (most, counts.len() > 1)
}

async fn greeting_of(address: &str) -> Result<String, String> {
    let read = async {
        let mut tcp = crate::upstream::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        let (_, payload) = packet::read(&mut tcp, packet::MAX_LOGIN_PACKET)
            .await
            .map_err(|e| e.to_string())?;
        parse_server_hello(&payload).map(|h| h.version)
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .map_err(|_| "no greeting within 10s".to_owned())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_greeting_is_the_configured_version_else_the_most_common_learned_one() {
        let v = Versions::default();
        assert_eq!(&*v.greeting(None), UNKNOWN);
        v.learn("a", "5.5.5-10.11.6-MariaDB");
        assert_eq!(&*v.greeting(None), "5.5.5-10.11.6-MariaDB");
        v.learn("b", "8.0.36");
        v.learn("c", "8.0.36");
        assert_eq!(&*v.greeting(None), "8.0.36");
        v.learn("c", "5.5.5-10.11.6-MariaDB");
        assert_eq!(&*v.greeting(None), "5.5.5-10.11.6-MariaDB");
        assert_eq!(&*v.greeting(Some("10.6.1-MariaDB")), "10.6.1-MariaDB");
    }
}
