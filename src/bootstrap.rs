//! Start-up state: the config's declarative `[[groups]]`, `[[users]]`, `[[resources]]` and
//! `[[resource_roles]]` (and `[[access_request_rules]]`) are applied to the store and marked as owned by the file (the API
//! refuses to change them); objects the file owned before but no longer declares are
//! removed. On an empty store, an `admin` user and a one-time bootstrap token are created.

use std::collections::HashSet;

use crate::config::Config;
use crate::model::{Role, Status, User};
use crate::store::{ResourceRecord, ResourceRoleRecord, Result, Store, UserRecord};

pub const BOOTSTRAP_TOKEN_FILE: &str = "bootstrap-token";

/// The bootstrap token works for a day: long enough to create real admin credentials.
const BOOTSTRAP_TOKEN_LIFETIME: i64 = 24 * 3600;

/// Applies the config's declarations, one instance at a time (`Store::setup_lock`).
pub async fn apply(store: &Store, config: &Config) -> Result<()> {
    let lock = store.setup_lock().await?;
    declare(store, config).await?;
    lock.release().await
}

async fn declare(store: &Store, config: &Config) -> Result<()> {
    first_start(store, config).await?;
    for g in &config.groups {
        store.put_group(&g.name, true, true).await?;
    }
    for u in &config.users {
        let record = UserRecord {
            user: u.user.clone(),
            managed: true,
        };
        let password = u.password.as_ref().map(|p| p.expose());
        store.put_user(&record, password).await?;
    }
    for r in &config.resources {
        let record = ResourceRecord {
            resource: r.clone(),
            managed: true,
        };
        store.put_resource(&record, true).await?;
    }
    for r in &config.resource_roles {
        let record = ResourceRoleRecord {
            role: r.role.clone(),
            secret: r.password.as_ref().map(|p| p.expose().to_owned()),
            managed: true,
        };
        store.put_resource_role(&record, true).await?;
    }
    for rule in &config.access_request_rules {
        store.put_rule(rule, true, false).await?;
    }
    for g in &config.guardrails {
        store.put_guardrail(g, true, false).await?;
    }
    for m in &config.masking {
        store.put_masking(m, true, false).await?;
    }
    remove_undeclared(store, config).await
}

/// Objects the file owned but no longer declares go, dependents first.
async fn remove_undeclared(store: &Store, config: &Config) -> Result<()> {
    let declared = |names: Vec<&String>| names.into_iter().cloned().collect::<HashSet<_>>();
    let rules = declared(
        config
            .access_request_rules
            .iter()
            .map(|r| &r.name)
            .collect(),
    );
    for r in store.list_rules().await? {
        if r.managed && !rules.contains(&r.rule.name) {
            tracing::info!(rule = %r.rule.name, "removed: no longer declared in the config");
            store.delete_rule(&r.rule.name).await?;
        }
    }
    let guardrails = declared(config.guardrails.iter().map(|g| &g.name).collect());
    for g in store.list_guardrails().await? {
        if g.managed && !guardrails.contains(&g.rule.name) {
            tracing::info!(guardrail = %g.rule.name, "removed: no longer declared in the config");
            store.delete_guardrail(&g.rule.name).await?;
        }
    }
    let masking = declared(config.masking.iter().map(|m| &m.name).collect());
    for m in store.list_masking().await? {
        if m.managed && !masking.contains(&m.rule.name) {
            tracing::info!(masking = %m.rule.name, "removed: no longer declared in the config");
            store.delete_masking(&m.rule.name).await?;
        }
    }
    let roles = declared(config.resource_roles.iter().map(|r| &r.name).collect());
    for r in store.list_resource_roles().await? {
        if r.managed && !roles.contains(&r.name) {
            tracing::info!(resource_role = %r.name, "removed: no longer declared in the config");
            store.delete_resource_role(&r.name).await?;
        }
    }
    let resources = declared(config.resources.iter().map(|r| &r.name).collect());
    for r in store.list_resources().await? {
        if r.managed && !resources.contains(&r.name) {
            tracing::info!(resource = %r.name, "removed: no longer declared in the config");
            store.delete_resource(&r.name).await?;
        }
    }
    let users = declared(config.users.iter().map(|u| &u.name).collect());
    for u in store.list_users().await? {
        if u.managed && !users.contains(&u.name) {
            tracing::info!(user = %u.name, "removed: no longer declared in the config");
            store.delete_user(&u.name).await?;
        }
    }
    let groups = declared(config.groups.iter().map(|g| &g.name).collect());
    for g in store.list_groups().await? {
        if g.managed && !groups.contains(&g.name) {
            tracing::info!(group = %g.name, "removed: no longer declared in the config");
            store.delete_group(&g.name).await?;
        }
    }
    Ok(())
}

/// On an empty store: user `admin` and a token written to `data_dir/bootstrap-token` (0600).
async fn first_start(store: &Store, config: &Config) -> Result<()> {
    if !store.list_users().await?.is_empty() {
        return Ok(());
    }
    let admin = UserRecord {
        user: User {
            name: "admin".into(),
            email: String::new(),
            display_name: "Administrator".into(),
            status: Status::Active,
            role: Role::Admin,
            groups: vec![],
        },
        managed: false,
    };
    store.create_user(&admin, None).await?;
    let expires = crate::clock::now() + BOOTSTRAP_TOKEN_LIFETIME;
    let (_, token) = store
        .create_token("admin", "bootstrap", Some(expires))
        .await?;
    let path = config.store.data_dir.join(BOOTSTRAP_TOKEN_FILE);
    crate::fsutil::write_private(&path, format!("{token}\n").as_bytes()).map_err(|e| {
        crate::store::StoreError::Invalid(format!("cannot write {}: {e}", path.display()))
    })?;
    tracing::warn!(path = %path.display(), "first start: created user `admin`; its bootstrap token is in this file (mode 0600) and expires in 24 hours — use it to create your own admin credentials (`portcullis user passwd admin`, `portcullis token create`), then delete the file");
    Ok(())
}
