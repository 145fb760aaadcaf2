//! The monitoring log's anchors: each instance's chain head as of its last checkpoint.

use sqlx::Row;

use super::{Result, Store, now};

impl Store {
    /// The anchored (seq, hash) of `instance`'s log, if it has one.
    pub async fn anchor(&self, instance: &str) -> Result<Option<(u64, String)>> {
        let row = sqlx::query("SELECT seq, hash FROM audit_anchors WHERE instance = $1")
            .bind(instance)
            .fetch_optional(&self.index)
            .await?;
        Ok(match row {
            Some(r) => Some((r.try_get::<i64, _>(0)? as u64, r.try_get(1)?)),
            None => None,
        })
    }

    /// Moves `instance`'s anchor on (never back).
    pub async fn set_anchor(&self, instance: &str, seq: u64, hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_anchors (instance, seq, hash, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (instance) DO UPDATE SET seq = $2, hash = $3, updated_at = $4 \
             WHERE audit_anchors.seq < $2",
        )
        .bind(instance)
        .bind(seq as i64)
        .bind(hash)
        .bind(now())
        .execute(&self.index)
        .await?;
        Ok(())
    }
}
