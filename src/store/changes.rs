//! The record of admin changes (actor, action, object, before/after with secrets redacted).
//! The monitoring log receives the same events as `admin_change`.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Result, Store};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangeRecord {
    pub id: String,
    pub ts: i64,
    /// The same time in microseconds (orders changes made within one second).
    #[serde(default)]
    pub ts_us: i64,
    pub actor: String,
    pub action: String,
    pub object: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl Store {
    pub async fn record_change(&self, c: &ChangeRecord) -> Result<()> {
        let json = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
        sqlx::query(
            "INSERT INTO admin_changes (id, ts, actor, action, object, before_json, after_json, ts_us) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.id)
        .bind(c.ts)
        .bind(&c.actor)
        .bind(&c.action)
        .bind(&c.object)
        .bind(json(&c.before))
        .bind(json(&c.after))
        .bind(c.ts_us)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The most recent changes first.
    pub async fn list_changes(&self, limit: i64) -> Result<Vec<ChangeRecord>> {
        let rows = sqlx::query(
            "SELECT id, ts, actor, action, object, before_json, after_json, ts_us \
             FROM admin_changes ORDER BY ts DESC, ts_us DESC, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        rows.into_iter()
            .map(|r| {
                Ok(ChangeRecord {
                    id: r.try_get(0)?,
                    ts: r.try_get(1)?,
                    actor: r.try_get(2)?,
                    action: r.try_get(3)?,
                    object: r.try_get(4)?,
                    before: json(r.try_get(5)?),
                    after: json(r.try_get(6)?),
                    ts_us: r.try_get(7)?,
                })
            })
            .collect()
    }
}
