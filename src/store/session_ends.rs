//! Ending a session from any instance: a request row for the instance that holds it,
//! announced on PostgreSQL (`SESSION_END_CHANNEL`), done by the holder, whose answer the
//! asker waits for.

use sqlx::Row;

use super::{Result, Store, now};

/// The PostgreSQL notification channel session end requests are announced on.
pub const SESSION_END_CHANNEL: &str = "portcullis_session_end";

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndState {
    Pending,
    /// Done: whether the session was live there and is now ended.
    Done {
        ended: bool,
    },
}

impl Store {
    /// Asks `instance` to end session `id` (a request made again starts over).
    pub async fn request_session_end(&self, id: &str, instance: &str, by: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO session_ends (session_id, instance, requested_by, requested_at, done_at, ended) \
             VALUES ($1, $2, $3, $4, NULL, 0) ON CONFLICT (session_id) DO UPDATE \
             SET instance = $2, requested_by = $3, requested_at = $4, done_at = NULL, ended = 0",
        )
        .bind(id)
        .bind(instance)
        .bind(by)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        if tx.backend_name() == "PostgreSQL" {
            let notify = format!("SELECT pg_notify('{SESSION_END_CHANNEL}', '')");
            sqlx::query(sqlx::AssertSqlSafe(notify))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The requests `instance` has not answered: (session id, who asked).
    pub async fn pending_session_ends(&self, instance: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT session_id, requested_by FROM session_ends WHERE instance = $1 AND done_at IS NULL",
        )
        .bind(instance)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    pub async fn session_end_done(&self, id: &str, ended: bool) -> Result<()> {
        sqlx::query("UPDATE session_ends SET done_at = $1, ended = $2 WHERE session_id = $3")
            .bind(now())
            .bind(i64::from(ended))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn session_end_state(&self, id: &str) -> Result<Option<EndState>> {
        let row = sqlx::query("SELECT done_at, ended FROM session_ends WHERE session_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let done: Option<i64> = r.try_get(0)?;
        let ended: i64 = r.try_get(1)?;
        Ok(Some(match done {
            None => EndState::Pending,
            Some(_) => EndState::Done { ended: ended != 0 },
        }))
    }
}

impl Store {
    /// This instance is alive.
    pub async fn instance_seen(&self, id: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO instances (id, seen_at) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET seen_at = $2",
        )
        .bind(id)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Instances other than `me` not seen since `before` (Unix seconds).
    pub async fn silent_instances(&self, me: &str, before: i64) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM instances WHERE seen_at < $1 AND id <> $2")
            .bind(before)
            .bind(me)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Takes a silent instance off the list; true for the one caller that did (it ends the
    /// instance's sessions), false when it spoke again or another peer was first.
    pub async fn claim_silent(&self, id: &str, before: i64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM instances WHERE id = $1 AND seen_at < $2")
            .bind(id)
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
