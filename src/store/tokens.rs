//! Personal access tokens: the value is shown once; the store keeps its SHA-256.

use sqlx::{Any, Row, Transaction};

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
        let (salt, iterations) = user_scram_salt(&mut tx, user)
            .await?
            .unwrap_or_else(|| (crate::auth::new_scram_salt(), crate::auth::SCRAM_ITERATIONS));
        let scram = crate::auth::scram::verifier_with_salt(&value, &salt, iterations).to_text();
        sqlx::query(
            "INSERT INTO tokens (id, user_name, name, hash, created_at, expires_at, scram) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&view.id)
        .bind(user)
        .bind(name)
        .bind(token_hash(&value))
        .bind(view.created_at)
        .bind(expires_at)
        .bind(scram)
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

/// The SCRAM salt and iterations a user's credentials share: from the password verifier,
/// else from a token's. `None` when the user has neither yet.
pub(super) async fn user_scram_salt(
    tx: &mut Transaction<'static, Any>,
    user: &str,
) -> Result<Option<(Vec<u8>, usize)>> {
    let row = sqlx::query(
        "SELECT scram FROM users WHERE name = $1 AND scram IS NOT NULL \
         UNION ALL SELECT scram FROM tokens WHERE user_name = $1 AND scram IS NOT NULL",
    )
    .bind(user)
    .fetch_all(&mut **tx)
    .await?;
    for r in row {
        let text: String = r.try_get(0)?;
        if let Some(v) = crate::snapshot::ScramVerifier::parse(&text) {
            return Ok(Some((v.salt, v.iterations)));
        }
    }
    Ok(None)
}
