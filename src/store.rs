//! The control-plane store: users, groups, resources, resource roles, tokens and the record
//! of admin changes. One code path (sqlx `Any`) over the embedded SQLite default and a
//! shared PostgreSQL; one set of migrations written for both. Every write bumps a revision
//! so every instance can see that its snapshot is stale.

mod anchors;
mod catalog;
mod changes;
mod definitions;
mod lockouts;
mod requests;
mod session_ends;
mod sessions;
mod snapshot;
mod tokens;
mod users;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Row, Transaction};

pub use catalog::{ResourceRecord, ResourceRoleRecord};
pub use changes::ChangeRecord;
pub use requests::RequestFilter;
pub use session_ends::{EndState, SESSION_END_CHANNEL};
pub use sessions::{IndexWrite, SessionEnd, SessionFilter, SessionRecord};
pub use users::UserRecord;

use crate::seal::{SealError, Sealer};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error("store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("store migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The PostgreSQL advisory lock instances take turns with while applying their config.
const SETUP_LOCK: i64 = 0x706f_7274_6375;

/// The setup lock, held until `release` (or dropped: its connection closes).
pub struct SetupLock(Option<sqlx::pool::PoolConnection<Any>>);

impl SetupLock {
    pub async fn release(mut self) -> Result<()> {
        if let Some(mut c) = self.0.take() {
            let unlock = format!("SELECT pg_advisory_unlock({SETUP_LOCK})");
            sqlx::query(sqlx::AssertSqlSafe(unlock))
                .execute(&mut *c)
                .await?;
        }
        Ok(())
    }
}

/// The PostgreSQL notification channel a committed write is announced on.
pub const REVISION_CHANNEL: &str = "portcullis_revision";

/// Maps a unique-key violation to `Conflict` with `what`, anything else stays `Db`.
fn conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match e.as_database_error() {
        Some(d) if d.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Db(e),
    }
}

use crate::clock::now;

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// The session index's own connection, whose commits do not wait for the disk: the
    /// monitoring log is the record of sessions, the index a searchable copy of it, and a
    /// machine crash may lose its last moment (a process crash loses nothing). Catalog
    /// writes keep waiting for the disk on `pool`.
    index: AnyPool,
    sealer: Sealer,
    /// SQLite needs `BEGIN IMMEDIATE` for read-then-write transactions under WAL.
    sqlite: bool,
}

/// The store's migrations (`migrations/`), compiled in. What sqlx's `migrate!` would
/// build, without its proc-macro crate (which compiles both database drivers a second
/// time); the checksums are the same, so stores migrated either way agree.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "control plane",
        include_str!("../migrations/0001_control_plane.sql"),
    ),
    (
        2,
        "token scram",
        include_str!("../migrations/0002_token_scram.sql"),
    ),
    (
        3,
        "sessions",
        include_str!("../migrations/0003_sessions.sql"),
    ),
    (
        4,
        "session instance",
        include_str!("../migrations/0004_session_instance.sql"),
    ),
    (
        5,
        "forward options",
        include_str!("../migrations/0005_forward_options.sql"),
    ),
    (
        6,
        "audit anchors",
        include_str!("../migrations/0006_audit_anchors.sql"),
    ),
    (
        7,
        "access requests",
        include_str!("../migrations/0007_access_requests.sql"),
    ),
    (
        8,
        "session review",
        include_str!("../migrations/0008_session_review.sql"),
    ),
    (
        9,
        "change time",
        include_str!("../migrations/0009_change_time.sql"),
    ),
    (
        10,
        "live sessions",
        include_str!("../migrations/0010_live_sessions.sql"),
    ),
    (
        11,
        "guardrails",
        include_str!("../migrations/0011_guardrails.sql"),
    ),
    (
        12,
        "masking",
        include_str!("../migrations/0012_masking.sql"),
    ),
    (
        13,
        "session ends",
        include_str!("../migrations/0013_session_ends.sql"),
    ),
    (
        14,
        "shared lockouts",
        include_str!("../migrations/0014_shared_lockouts.sql"),
    ),
    (
        15,
        "instances",
        include_str!("../migrations/0015_instances.sql"),
    ),
];

fn migrator() -> sqlx::migrate::Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                let kind = MigrationType::Simple;
                Migration::new(version, description.into(), kind, sql.into_sql_str(), false)
            })
            .collect(),
    )
}

impl Store {
    /// Connects (creating an SQLite file and its directory if needed) and migrates.
    pub async fn open(url: &str, sealer: Sealer) -> Result<Store> {
        install_default_drivers();
        let url = sqlite_create_mode(url)?;
        let sqlite = url.starts_with("sqlite:");
        let pool = connect(&url, sqlite, if sqlite { 4 } else { 8 }, false).await?;
        if sqlite {
            // Many readers beside one writer.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        migrator().run(&pool).await?;
        let index = connect(&url, sqlite, 1, true).await?;
        Ok(Store {
            pool,
            index,
            sealer,
            sqlite,
        })
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The change counter; it grows with every write, on any instance.
    pub async fn revision(&self) -> Result<i64> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = 'revision'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get(0)?)
    }

    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn begin(&self) -> Result<Transaction<'static, Any>> {
        // Take SQLite's write lock up front: a read transaction that later writes fails
        // with SQLITE_BUSY_SNAPSHOT when another connection committed in between.
        if self.sqlite {
            Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
        } else {
            Ok(self.pool.begin().await?)
        }
    }

    /// Commits a write transaction after bumping the revision; on PostgreSQL, every
    /// instance listening on `REVISION_CHANNEL` hears of it when the commit lands.
    async fn commit(mut tx: Transaction<'static, Any>) -> Result<()> {
        sqlx::query("UPDATE meta SET value = value + 1 WHERE key = 'revision'")
            .execute(&mut *tx)
            .await?;
        if tx.backend_name() == "PostgreSQL" {
            let notify = format!("SELECT pg_notify('{REVISION_CHANNEL}', '')");
            sqlx::query(sqlx::AssertSqlSafe(notify))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Taken while an instance applies its config: instances starting together on one
    /// PostgreSQL store take turns, so exactly one makes the first admin (an SQLite file
    /// has one process).
    pub async fn setup_lock(&self) -> Result<SetupLock> {
        if self.sqlite {
            return Ok(SetupLock(None));
        }
        let mut c = self.pool.acquire().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT pg_advisory_lock({SETUP_LOCK})"
        )))
        .execute(&mut *c)
        .await?;
        // Never back to the pool: if it is not released, the lock goes with it.
        c.close_on_drop();
        Ok(SetupLock(Some(c)))
    }

    pub async fn close(&self) {
        self.index.close().await;
        self.pool.close().await;
    }
}

/// A pool of `max` connections. `relaxed`: commits return before they reach the disk
/// (SQLite `synchronous = NORMAL` under WAL, PostgreSQL `synchronous_commit = off`).
async fn connect(url: &str, sqlite: bool, max: u32, relaxed: bool) -> Result<AnyPool> {
    Ok(AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(std::time::Duration::from_secs(5))
        // An SQLite connection is a file handle; checking it on every acquire costs two
        // thread hand-offs and finds nothing.
        .test_before_acquire(!sqlite)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    // Every connection waits for a lock instead of failing with SQLITE_BUSY.
                    sqlx::query("PRAGMA busy_timeout = 5000")
                        .execute(&mut *conn)
                        .await?;
                }
                if relaxed {
                    let sql = if sqlite {
                        "PRAGMA synchronous = NORMAL"
                    } else {
                        "SET synchronous_commit = off"
                    };
                    sqlx::query(sql).execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await?)
}

/// `sqlite://data/x.db` → create the directory and ask SQLite to create the file.
fn sqlite_create_mode(url: &str) -> Result<String> {
    let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Ok(url.to_owned());
    };
    let file = path.split('?').next().unwrap_or(path);
    let dir = std::path::Path::new(file).parent();
    if let Some(dir) = dir.filter(|d| file != ":memory:" && !d.as_os_str().is_empty()) {
        crate::fsutil::private_dir(dir)
            .map_err(|e| StoreError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
    }
    if file != ":memory:" && !file.is_empty() {
        // SQLite gives its -wal and -shm files the database file's mode.
        crate::fsutil::private_file(std::path::Path::new(file))
            .map_err(|e| StoreError::Invalid(format!("cannot create {file}: {e}")))?;
    }
    Ok(if url.contains("mode=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    /// Every file of `migrations/` is compiled in, in order, under its own version.
    #[test]
    fn every_migration_file_is_listed() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".sql"))
            .collect();
        files.sort();
        assert_eq!(files.len(), super::MIGRATIONS.len(), "{files:?}");
        for (file, &(version, description, sql)) in files.iter().zip(super::MIGRATIONS) {
            let (v, rest) = file.split_once('_').unwrap();
            assert_eq!(v.parse::<i64>().unwrap(), version);
            assert_eq!(rest.trim_end_matches(".sql").replace('_', " "), description);
            assert_eq!(
                std::fs::read_to_string(format!("{dir}/{file}")).unwrap(),
                sql
            );
        }
    }
}
