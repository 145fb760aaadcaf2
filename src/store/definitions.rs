//! Objects stored whole as a JSON definition under a name, with `managed` (declared by the
//! config file): access request rules and guardrails. Every change bumps the revision
//! (they are part of the snapshot).

use sqlx::Row;

use super::{Result, Store, StoreError, conflict, now};

/// A table of named definitions and what its objects are called in messages.
#[derive(Clone, Copy)]
pub(super) struct Definitions {
    pub table: &'static str,
    pub what: &'static str,
}

pub(super) fn json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Invalid(e.to_string()))
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Invalid(format!("a stored record does not read: {e}")))
}

impl Store {
    /// (definition, managed) of every object, by name.
    pub(super) async fn list_definitions<T: serde::de::DeserializeOwned>(
        &self,
        d: Definitions,
    ) -> Result<Vec<(T, bool)>> {
        let sql = format!("SELECT definition, managed FROM {} ORDER BY name", d.table);
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok((
                    parse(&r.try_get::<String, _>(0)?)?,
                    r.try_get::<i64, _>(1)? != 0,
                ))
            })
            .collect()
    }

    /// Creates (`create`) or replaces an object.
    pub(super) async fn put_definition<T: serde::Serialize>(
        &self,
        d: Definitions,
        name: &str,
        value: &T,
        managed: bool,
        create: bool,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let insert = format!(
            "INSERT INTO {} (name, definition, managed, created_at) VALUES ($1, $2, $3, $4)",
            d.table
        );
        let sql = if create {
            insert
        } else {
            insert + " ON CONFLICT (name) DO UPDATE SET definition = $2, managed = $3"
        };
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .bind(json(value)?)
            .bind(i64::from(managed))
            .bind(now())
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict(e, || format!("{} `{name}` exists", d.what)))?;
        Self::commit(tx).await
    }

    pub(super) async fn delete_definition(&self, d: Definitions, name: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let sql = format!("DELETE FROM {} WHERE name = $1", d.table);
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("{} `{name}`", d.what)));
        }
        Self::commit(tx).await
    }
}
