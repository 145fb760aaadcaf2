//! Groups, resources and resource roles with their allowed groups.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{Any, Row, Transaction};

use super::users::parse;
use super::{Result, Store, StoreError, conflict, now};
use crate::model::{
    AccessModes, GroupView, Resource, ResourceRole, ResourceRoleView, ResourceView, carries,
};

/// A resource as written: the resource and whether the config file owns it.
pub type ResourceRecord = ResourceView;

/// A resource role as written. `secret: None` keeps the stored secret on update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRoleRecord {
    pub role: ResourceRole,
    pub secret: Option<String>,
    pub managed: bool,
}
carries!(ResourceRoleRecord => role: ResourceRole);

/// Fails with `Invalid` naming the first group that does not exist.
pub(super) async fn require_groups(
    tx: &mut Transaction<'static, Any>,
    groups: &[String],
) -> Result<()> {
    for g in groups {
        let found = sqlx::query("SELECT 1 FROM access_groups WHERE name = $1")
            .bind(g)
            .fetch_optional(&mut **tx)
            .await?;
        if found.is_none() {
            return Err(StoreError::Invalid(format!("group `{g}` does not exist")));
        }
    }
    Ok(())
}

async fn delete_one(
    tx: &mut Transaction<'static, Any>,
    sql: &'static str,
    name: &str,
    what: &str,
) -> Result<()> {
    let done = sqlx::query(sql).bind(name).execute(&mut **tx).await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound(format!("{what} `{name}`")));
    }
    Ok(())
}

impl Store {
    pub async fn list_groups(&self) -> Result<Vec<GroupView>> {
        let rows = sqlx::query("SELECT name, managed FROM access_groups ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (user, groups) in self.memberships().await? {
            for g in groups {
                members.entry(g).or_default().push(user.clone());
            }
        }
        let mut grants: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let sql =
            "SELECT group_name, resource_role FROM resource_role_groups ORDER BY resource_role";
        for r in sqlx::query(sql).fetch_all(&self.pool).await? {
            grants.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
        }
        rows.into_iter()
            .map(|r| {
                let name: String = r.try_get(0)?;
                Ok(GroupView {
                    members: members.remove(&name).unwrap_or_default(),
                    resource_roles: grants.remove(&name).unwrap_or_default(),
                    name,
                    managed: r.try_get::<i64, _>(1)? != 0,
                })
            })
            .collect()
    }

    /// Creates a group; with `upsert` an existing one is kept (and its ownership set).
    pub async fn put_group(&self, name: &str, managed: bool, upsert: bool) -> Result<()> {
        let mut tx = self.begin().await?;
        // Names that differ only in case would read as one group to people.
        let twin = sqlx::query(
            "SELECT name FROM access_groups WHERE lower(name) = lower($1) AND name <> $1",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = twin {
            let other: String = row.try_get(0)?;
            return Err(StoreError::Conflict(format!(
                "group `{name}` differs from the existing group `{other}` only in case"
            )));
        }
        let sql = if upsert {
            "INSERT INTO access_groups (name, managed, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET managed = $2"
        } else {
            "INSERT INTO access_groups (name, managed, created_at) VALUES ($1, $2, $3)"
        };
        sqlx::query(sql)
            .bind(name)
            .bind(managed as i64)
            .bind(now())
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict(e, || format!("group `{name}` already exists")))?;
        Store::commit(tx).await
    }

    /// Renames a group; its members and grants move with it.
    pub async fn rename_group(&self, old: &str, new: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let twin = sqlx::query("SELECT name FROM access_groups WHERE lower(name) = lower($1)")
            .bind(new)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = twin {
            let other: String = row.try_get(0)?;
            return Err(StoreError::Conflict(format!(
                "a group `{other}` already exists"
            )));
        }
        let made = sqlx::query(
            "INSERT INTO access_groups (name, managed, created_at) \
             SELECT $2, managed, created_at FROM access_groups WHERE name = $1",
        )
        .bind(old)
        .bind(new)
        .execute(&mut *tx)
        .await?;
        if made.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("group `{old}`")));
        }
        for sql in [
            "UPDATE user_groups SET group_name = $2 WHERE group_name = $1",
            "UPDATE resource_role_groups SET group_name = $2 WHERE group_name = $1",
        ] {
            sqlx::query(sql)
                .bind(old)
                .bind(new)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM access_groups WHERE name = $1")
            .bind(old)
            .execute(&mut *tx)
            .await?;
        Store::commit(tx).await
    }

    /// Deletes a group, its memberships and its grants.
    pub async fn delete_group(&self, name: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        for sql in [
            "DELETE FROM user_groups WHERE group_name = $1",
            "DELETE FROM resource_role_groups WHERE group_name = $1",
        ] {
            sqlx::query(sql).bind(name).execute(&mut *tx).await?;
        }
        delete_one(
            &mut tx,
            "DELETE FROM access_groups WHERE name = $1",
            name,
            "group",
        )
        .await?;
        Store::commit(tx).await
    }

    pub async fn list_resources(&self) -> Result<Vec<ResourceView>> {
        let rows = sqlx::query(
            "SELECT name, protocol, address, tls, managed FROM resources ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ResourceView {
                    resource: Resource {
                        name: r.try_get(0)?,
                        protocol: parse(r.try_get(1)?)?,
                        address: r.try_get(2)?,
                        tls: parse(r.try_get(3)?)?,
                    },
                    managed: r.try_get::<i64, _>(4)? != 0,
                })
            })
            .collect()
    }

    pub async fn put_resource(&self, r: &ResourceRecord, upsert: bool) -> Result<()> {
        let mut tx = self.begin().await?;
        let sql = if upsert {
            "INSERT INTO resources (name, protocol, address, tls, managed, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (name) DO UPDATE SET protocol = $2, address = $3, tls = $4, managed = $5"
        } else {
            "INSERT INTO resources (name, protocol, address, tls, managed, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
        };
        sqlx::query(sql)
            .bind(&r.name)
            .bind(r.protocol.as_str())
            .bind(&r.address)
            .bind(r.tls.as_str())
            .bind(r.managed as i64)
            .bind(now())
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict(e, || format!("resource `{}` already exists", r.name)))?;
        Store::commit(tx).await
    }

    pub async fn delete_resource(&self, name: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        let used = sqlx::query("SELECT name FROM resource_roles WHERE resource = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = used {
            let role: String = row.try_get(0)?;
            return Err(StoreError::Conflict(format!(
                "resource `{name}` is used by resource role `{role}`; delete that first"
            )));
        }
        delete_one(
            &mut tx,
            "DELETE FROM resources WHERE name = $1",
            name,
            "resource",
        )
        .await?;
        Store::commit(tx).await
    }

    pub async fn list_resource_roles(&self) -> Result<Vec<ResourceRoleView>> {
        Ok(self
            .resource_role_rows()
            .await?
            .into_iter()
            .map(|(view, _)| view)
            .collect())
    }

    /// Views with their sealed secret, for the snapshot.
    pub(super) async fn resource_role_rows(
        &self,
    ) -> Result<Vec<(ResourceRoleView, Option<String>)>> {
        let grants = sqlx::query(
            "SELECT resource_role, group_name FROM resource_role_groups ORDER BY group_name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut allowed: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for g in grants {
            allowed
                .entry(g.try_get(0)?)
                .or_default()
                .push(g.try_get(1)?);
        }
        let rows = sqlx::query(
            "SELECT name, resource, database_name, upstream_user, secret, mode_native, mode_web, \
             mode_runbooks, managed, forward_options FROM resource_roles ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let name: String = r.try_get(0)?;
                let view = ResourceRoleView {
                    role: ResourceRole {
                        allowed_groups: allowed.remove(&name).unwrap_or_default(),
                        name,
                        resource: r.try_get(1)?,
                        database: r.try_get(2)?,
                        user: r.try_get(3)?,
                        access_modes: AccessModes {
                            native: r.try_get::<i64, _>(5)? != 0,
                            web: r.try_get::<i64, _>(6)? != 0,
                            runbooks: r.try_get::<i64, _>(7)? != 0,
                        },
                        forward_options: r
                            .try_get::<Option<String>, _>(9)?
                            .and_then(|j| serde_json::from_str(&j).ok()),
                    },
                    managed: r.try_get::<i64, _>(8)? != 0,
                };
                Ok((view, r.try_get(4)?))
            })
            .collect()
    }

    /// Creates (`upsert = false`, `Conflict` if taken) or replaces a resource role and its
    /// allowed groups. The secret is sealed before it is written.
    pub async fn put_resource_role(&self, r: &ResourceRoleRecord, upsert: bool) -> Result<()> {
        let mut tx = self.begin().await?;
        let exists = sqlx::query("SELECT 1 FROM resources WHERE name = $1")
            .bind(&r.resource)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::Invalid(format!(
                "resource `{}` does not exist",
                r.resource
            )));
        }
        require_groups(&mut tx, &r.allowed_groups).await?;
        let sealed = r.secret.as_deref().map(|s| self.sealer.seal(s.as_bytes()));
        let sql = if upsert {
            "INSERT INTO resource_roles (name, resource, database_name, upstream_user, secret, mode_native, \
             mode_web, mode_runbooks, managed, created_at, forward_options) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (name) DO UPDATE SET resource = $2, database_name = $3, upstream_user = $4, \
             secret = COALESCE($5, resource_roles.secret), mode_native = $6, mode_web = $7, \
             mode_runbooks = $8, managed = $9, forward_options = $11"
        } else {
            "INSERT INTO resource_roles (name, resource, database_name, upstream_user, secret, mode_native, \
             mode_web, mode_runbooks, managed, created_at, forward_options) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        };
        sqlx::query(sql)
            .bind(&r.name)
            .bind(&r.resource)
            .bind(&r.database)
            .bind(&r.user)
            .bind(sealed)
            .bind(r.access_modes.native as i64)
            .bind(r.access_modes.web as i64)
            .bind(r.access_modes.runbooks as i64)
            .bind(r.managed as i64)
            .bind(now())
            .bind(
                r.forward_options
                    .as_ref()
                    .and_then(|f| serde_json::to_string(f).ok()),
            )
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict(e, || format!("resource role `{}` already exists", r.name)))?;
        sqlx::query("DELETE FROM resource_role_groups WHERE resource_role = $1")
            .bind(&r.name)
            .execute(&mut *tx)
            .await?;
        for g in r.allowed_groups.iter().collect::<BTreeSet<_>>() {
            sqlx::query(
                "INSERT INTO resource_role_groups (resource_role, group_name) VALUES ($1, $2)",
            )
            .bind(&r.name)
            .bind(g)
            .execute(&mut *tx)
            .await?;
        }
        Store::commit(tx).await
    }

    pub async fn delete_resource_role(&self, name: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM resource_role_groups WHERE resource_role = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        delete_one(
            &mut tx,
            "DELETE FROM resource_roles WHERE name = $1",
            name,
            "resource role",
        )
        .await?;
        Store::commit(tx).await
    }
}
