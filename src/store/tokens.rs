//! Personal access tokens: the value is shown once; the store keeps its SHA-256.

use sqlx::Row;

use super::{Result, Store, StoreError, now};
use crate::auth::{new_token, token_hash};
use crate::model::TokenView;

impl Store {
    /// Creates a token for `user`; returns its metadata and the value, to show once.
    pub async fn create_token(
        &self,
        user: &str,
        name: &str,
        expires_at: Option<i64>,
    ) -> Result<(TokenView, String)> {
        let value = new_token();
        let view = TokenView {
            id: uuid::Uuid::new_v4().to_string(),
            user: user.to_owned(),
            name: name.to_owned(),
            created_at: now(),
            expires_at,
            last_used_at: None,
        };
        let mut tx = self.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM users WHERE name = $1")
            .bind(user)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("user `{user}`")));
        }
        sqlx::query(
            "INSERT INTO tokens (id, user_name, name, hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&view.id)
        .bind(user)
        .bind(name)
        .bind(token_hash(&value))
        .bind(view.created_at)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        Store::commit(tx).await?;
        Ok((view, value))
    }

    /// Tokens of one user, or of everyone.
    pub async fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenView>> {
        let rows = sqlx::query(
            "SELECT id, user_name, name, created_at, expires_at, last_used_at FROM tokens \
             WHERE ($1 IS NULL OR user_name = $1) ORDER BY created_at, id",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(TokenView {
                    id: r.try_get(0)?,
                    user: r.try_get(1)?,
                    name: r.try_get(2)?,
                    created_at: r.try_get(3)?,
                    expires_at: r.try_get(4)?,
                    last_used_at: r.try_get(5)?,
                })
            })
            .collect()
    }

    pub async fn delete_token(&self, id: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query("DELETE FROM tokens WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("token `{id}`")));
        }
        Store::commit(tx).await
    }

    /// Records a use. Not a snapshot change, so the revision stays.
    pub async fn touch_token(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE tokens SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
