//! Users, their group memberships and password verifiers.

use std::collections::BTreeMap;

use sqlx::{Any, Row, Transaction};

use super::{Result, Store, StoreError, conflict, now};
use crate::model::{User, UserView, carries};
use crate::snapshot::Verifiers;

/// A user as written: the user and whether the config file owns it (never the password).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub user: User,
    pub managed: bool,
}
carries!(UserRecord => user: User);

impl From<UserView> for UserRecord {
    fn from(v: UserView) -> Self {
        UserRecord {
            user: v.user,
            managed: v.managed,
        }
    }
}

pub(super) fn parse<T: std::str::FromStr<Err = String>>(text: String) -> Result<T> {
    text.parse().map_err(StoreError::Invalid)
}

impl Store {
    pub async fn list_users(&self) -> Result<Vec<UserView>> {
        let rows = sqlx::query(
            "SELECT name, email, display_name, status, role, scram, managed FROM users ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut memberships = self.memberships().await?;
        rows.into_iter()
            .map(|r| {
                let name: String = r.try_get(0)?;
                Ok(UserView {
                    user: User {
                        groups: memberships.remove(&name).unwrap_or_default(),
                        name,
                        email: r.try_get(1)?,
                        display_name: r.try_get(2)?,
                        status: parse(r.try_get(3)?)?,
                        role: parse(r.try_get(4)?)?,
                    },
                    has_password: r.try_get::<Option<String>, _>(5)?.is_some(),
                    managed: r.try_get::<i64, _>(6)? != 0,
                })
            })
            .collect()
    }

    pub async fn get_user(&self, name: &str) -> Result<Option<UserView>> {
        // The user table is small; one code path for list and get keeps them consistent.
        Ok(self
            .list_users()
            .await?
            .into_iter()
            .find(|u| u.name == name))
    }

    /// user → groups, sorted.
    pub(super) async fn memberships(&self) -> Result<BTreeMap<String, Vec<String>>> {
        let rows = sqlx::query("SELECT user_name, group_name FROM user_groups ORDER BY group_name")
            .fetch_all(&self.pool)
            .await?;
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in rows {
            map.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
        }
        Ok(map)
    }

    /// Creates a user; `Conflict` if the name is taken.
    pub async fn create_user(&self, user: &UserRecord, password: Option<&str>) -> Result<()> {
        self.write_user(user, password, false).await
    }

    /// Replaces every field but the password; creates the user if absent (bootstrap).
    pub async fn put_user(&self, user: &UserRecord, password: Option<&str>) -> Result<()> {
        self.write_user(user, password, true).await
    }

    async fn write_user(
        &self,
        user: &UserRecord,
        password: Option<&str>,
        upsert: bool,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let sql = if upsert {
            "INSERT INTO users (name, email, display_name, status, role, managed, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (name) DO UPDATE SET email = $2, display_name = $3, status = $4, \
             role = $5, managed = $6, updated_at = $7"
        } else {
            "INSERT INTO users (name, email, display_name, status, role, managed, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
        };
        sqlx::query(sql)
            .bind(&user.name)
            .bind(&user.email)
            .bind(&user.display_name)
            .bind(user.status.as_str())
            .bind(user.role.as_str())
            .bind(user.managed as i64)
            .bind(now())
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict(e, || format!("user `{}` already exists", user.name)))?;
        set_groups(&mut tx, &user.name, &user.groups).await?;
        if let Some(pw) = password {
            self.write_verifiers(&mut tx, &user.name, pw).await?;
        }
        Store::commit(tx).await
    }

    pub async fn set_password(&self, name: &str, password: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        self.write_verifiers(&mut tx, name, password).await?;
        Store::commit(tx).await
    }

    async fn write_verifiers(
        &self,
        tx: &mut Transaction<'static, Any>,
        name: &str,
        password: &str,
    ) -> Result<()> {
        let salt = super::tokens::user_scram_salt(tx, name).await?;
        let v = Verifiers::from_password(password, salt.as_ref().map(|(s, _)| s.as_slice()));
        let seal = |b: Option<Vec<u8>>| b.map(|b| self.sealer.seal(&b));
        let done = sqlx::query(
            "UPDATE users SET scram = $2, mysql_native = $3, mysql_sha2 = $4, updated_at = $5 WHERE name = $1",
        )
        .bind(name)
        .bind(v.scram)
        .bind(seal(v.mysql_native))
        .bind(seal(v.mysql_sha2))
        .bind(now())
        .execute(&mut **tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user `{name}`")));
        }
        Ok(())
    }

    pub async fn delete_user(&self, name: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        // Explicit child deletes: foreign-key enforcement is not guaranteed on every SQLite.
        for sql in [
            "DELETE FROM user_groups WHERE user_name = $1",
            "DELETE FROM tokens WHERE user_name = $1",
        ] {
            sqlx::query(sql).bind(name).execute(&mut *tx).await?;
        }
        let done = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user `{name}`")));
        }
        Store::commit(tx).await
    }
}

/// Replaces a user's groups; every group must exist.
async fn set_groups(
    tx: &mut Transaction<'static, Any>,
    user: &str,
    groups: &[String],
) -> Result<()> {
    super::catalog::require_groups(tx, groups).await?;
    sqlx::query("DELETE FROM user_groups WHERE user_name = $1")
        .bind(user)
        .execute(&mut **tx)
        .await?;
    for g in groups.iter().collect::<std::collections::BTreeSet<_>>() {
        sqlx::query("INSERT INTO user_groups (user_name, group_name) VALUES ($1, $2)")
            .bind(user)
            .bind(g)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}
