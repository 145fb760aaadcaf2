//! Reads the whole control plane into a `Snapshot`, opening sealed secrets.

use std::sync::Arc;

use sqlx::Row;

use super::{Result, Store};
use crate::config::Secret;
use crate::model::User;
use crate::snapshot::{
    ResourceEntry, ResourceRoleEntry, Snapshot, TokenEntry, UserEntry, Verifiers,
};

impl Store {
    pub async fn load_snapshot(&self) -> Result<Snapshot> {
        let revision = self.revision().await?;
        let mut snap = Snapshot {
            revision,
            decoy_key: self.sealer.derive("scram decoy salt"),
            masking_key: self.sealer.derive("masking hash"),
            ..Snapshot::default()
        };
        let mut memberships = self.memberships().await?;
        let rows = sqlx::query(
            "SELECT name, email, display_name, status, role, scram, mysql_native, mysql_sha2, managed FROM users",
        )
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let name: String = r.try_get(0)?;
            let open = |i: usize| -> Result<Option<Vec<u8>>> {
                match r.try_get::<Option<String>, _>(i)? {
                    Some(sealed) => Ok(Some(self.sealer.open(&sealed)?)),
                    None => Ok(None),
                }
            };
            let entry = UserEntry {
                user: User {
                    groups: memberships.remove(&name).unwrap_or_default(),
                    name: name.clone(),
                    email: r.try_get(1)?,
                    display_name: r.try_get(2)?,
                    status: super::users::parse(r.try_get(3)?)?,
                    role: super::users::parse(r.try_get(4)?)?,
                },
                verifiers: Verifiers {
                    scram: r.try_get(5)?,
                    mysql_native: open(6)?,
                    mysql_sha2: open(7)?,
                },
                managed: r.try_get::<i64, _>(8)? != 0,
            };
            snap.users.insert(name, Arc::new(entry));
        }
        snap.groups = self
            .list_groups()
            .await?
            .into_iter()
            .map(|g| g.name)
            .collect();
        for r in self.list_resources().await? {
            let entry = ResourceEntry {
                resource: r.resource,
                managed: r.managed,
            };
            snap.resources.insert(entry.name.clone(), Arc::new(entry));
        }
        for (v, sealed) in self.resource_role_rows().await? {
            let secret = match sealed {
                Some(s) => Some(Secret::new(
                    String::from_utf8(self.sealer.open(&s)?).unwrap_or_default(),
                )),
                None => None,
            };
            let entry = ResourceRoleEntry {
                role: v.role,
                secret,
                managed: v.managed,
            };
            snap.resource_roles
                .insert(entry.name.clone(), Arc::new(entry));
        }
        let rows = sqlx::query("SELECT id, user_name, hash, expires_at, scram FROM tokens")
            .fetch_all(&self.pool)
            .await?;
        for r in rows {
            let entry = TokenEntry {
                id: r.try_get(0)?,
                user: r.try_get(1)?,
                expires_at: r.try_get(3)?,
                scram: r
                    .try_get::<Option<String>, _>(4)?
                    .as_deref()
                    .and_then(crate::snapshot::ScramVerifier::parse),
            };
            snap.tokens.insert(r.try_get(2)?, entry);
        }
        for v in self.list_rules().await? {
            snap.rules.insert(v.rule.name.clone(), Arc::new(v.rule));
        }
        let guardrails = self.list_guardrails().await?;
        snap.guardrails = guardrails.into_iter().map(|v| Arc::new(v.rule)).collect();
        let masking = self.list_masking().await?;
        snap.masking = masking.into_iter().map(|v| Arc::new(v.rule)).collect();
        for g in self.live_grants().await? {
            let until = snap
                .grants
                .entry((g.requester, g.resource_role))
                .or_default();
            *until = (*until).max(g.expires_at);
        }
        Ok(snap)
    }
}
