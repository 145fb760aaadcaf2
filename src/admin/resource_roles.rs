//! `/api/resource-roles` and `/api/resource-roles/{name}/access` (allowed groups).
//! The upstream password is write-only: accepted here, never returned.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use serde::Deserialize;

use super::{ApiError, ApiState, Body, Caller, changed, not_managed};
use crate::access::reachable_modes;
use crate::model::{AccessModes, ResourceRoleView, check_name};
use crate::store::ResourceRoleRecord;

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route("/api/resource-roles", get(list).post(create))
        .route(
            "/api/resource-roles/{name}",
            get(show).patch(patch).delete(remove),
        )
        .route(
            "/api/resource-roles/{name}/access",
            get(show_access).put(set_access).post(grant),
        )
        .route("/api/resource-roles/{name}/access/{group}", delete(revoke))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewResourceRole {
    name: String,
    resource: String,
    database: String,
    user: String,
    password: Option<String>,
    #[serde(default)]
    allowed_groups: Vec<String>,
    access_modes: Option<AccessModes>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceRolePatch {
    resource: Option<String>,
    database: Option<String>,
    user: Option<String>,
    password: Option<String>,
    allowed_groups: Option<Vec<String>>,
    access_modes: Option<AccessModes>,
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    groups: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    group: String,
}

/// Readers see every resource role; a standard user those it can reach in some mode.
fn visible(s: &ApiState, caller: &Caller, name: &str) -> bool {
    caller.is_reader() || !reachable_modes(&s.control.snapshot(), caller.name(), name).is_empty()
}

async fn list(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<ResourceRoleView>>, ApiError> {
    let all = s.control.store.list_resource_roles().await?;
    Ok(Json(
        all.into_iter()
            .filter(|r| visible(&s, &caller, &r.name))
            .collect(),
    ))
}

async fn find(s: &ApiState, name: &str) -> Result<ResourceRoleView, ApiError> {
    let all = s.control.store.list_resource_roles().await?;
    all.into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| ApiError::not_found(format!("resource role `{name}` not found")))
}

async fn show(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ResourceRoleView>, ApiError> {
    if !visible(&s, &caller, &name) {
        // Same answer as a missing one: a standard user learns nothing of what it can't use.
        return Err(ApiError::not_found(format!(
            "resource role `{name}` not found"
        )));
    }
    Ok(Json(find(&s, &name).await?))
}

fn record(v: ResourceRoleView, secret: Option<String>) -> ResourceRoleRecord {
    ResourceRoleRecord {
        name: v.name,
        resource: v.resource,
        database: v.database,
        user: v.user,
        secret,
        allowed_groups: v.allowed_groups,
        access_modes: v.access_modes,
        managed: false,
    }
}

async fn create(
    State(s): State<ApiState>,
    caller: Caller,
    Body(new): Body<NewResourceRole>,
) -> Result<(StatusCode, Json<ResourceRoleView>), ApiError> {
    caller.require_admin()?;
    check_name(&new.name).map_err(ApiError::invalid)?;
    if new.database.is_empty() || new.user.is_empty() {
        return Err(ApiError::invalid("database and user must not be empty"));
    }
    let r = ResourceRoleRecord {
        name: new.name.clone(),
        resource: new.resource,
        database: new.database,
        user: new.user,
        secret: new.password,
        allowed_groups: new.allowed_groups,
        access_modes: new.access_modes.unwrap_or_default(),
        managed: false,
    };
    s.control.store.put_resource_role(&r, false).await?;
    let view = find(&s, &new.name).await?;
    let object = format!("resource_role/{}", new.name);
    changed(
        &s,
        &caller,
        "resource_role.create",
        &object,
        None::<&()>,
        Some(&view),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Applies `edit` to the stored resource role and records the change.
async fn update(
    s: &ApiState,
    caller: &Caller,
    name: &str,
    action: &str,
    edit: impl FnOnce(&mut ResourceRoleRecord),
) -> Result<ResourceRoleView, ApiError> {
    caller.require_admin()?;
    let before = find(s, name).await?;
    not_managed(s, before.managed, &format!("resource role `{name}`"))?;
    let mut r = record(before.clone(), None);
    edit(&mut r);
    s.control.store.put_resource_role(&r, true).await?;
    let after = find(s, name).await?;
    let object = format!("resource_role/{name}");
    changed(s, caller, action, &object, Some(&before), Some(&after)).await?;
    Ok(after)
}

async fn patch(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(p): Body<ResourceRolePatch>,
) -> Result<Json<ResourceRoleView>, ApiError> {
    let view = update(&s, &caller, &name, "resource_role.update", |r| {
        r.resource = p.resource.unwrap_or(r.resource.clone());
        r.database = p.database.unwrap_or(r.database.clone());
        r.user = p.user.unwrap_or(r.user.clone());
        r.secret = p.password;
        r.allowed_groups = p.allowed_groups.unwrap_or(r.allowed_groups.clone());
        r.access_modes = p.access_modes.unwrap_or(r.access_modes);
    })
    .await?;
    Ok(Json(view))
}

async fn remove(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let before = find(&s, &name).await?;
    not_managed(&s, before.managed, &format!("resource role `{name}`"))?;
    s.control.store.delete_resource_role(&name).await?;
    let object = format!("resource_role/{name}");
    changed(
        &s,
        &caller,
        "resource_role.delete",
        &object,
        Some(&before),
        None::<&()>,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn show_access(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Access>, ApiError> {
    if !caller.is_reader() {
        return Err(ApiError::forbidden(
            "this requires the admin or auditor role",
        ));
    }
    Ok(Json(Access {
        groups: find(&s, &name).await?.allowed_groups,
    }))
}

async fn set_access(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(a): Body<Access>,
) -> Result<Json<Access>, ApiError> {
    let view = update(&s, &caller, &name, "access.set", |r| {
        r.allowed_groups = a.groups
    })
    .await?;
    Ok(Json(Access {
        groups: view.allowed_groups,
    }))
}

async fn grant(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(g): Body<Grant>,
) -> Result<Json<Access>, ApiError> {
    let view = update(&s, &caller, &name, "access.grant", |r| {
        if !r.allowed_groups.contains(&g.group) {
            r.allowed_groups.push(g.group);
        }
    })
    .await?;
    Ok(Json(Access {
        groups: view.allowed_groups,
    }))
}

async fn revoke(
    State(s): State<ApiState>,
    caller: Caller,
    Path((name, group)): Path<(String, String)>,
) -> Result<Json<Access>, ApiError> {
    let view = update(&s, &caller, &name, "access.revoke", |r| {
        r.allowed_groups.retain(|g| *g != group)
    })
    .await?;
    Ok(Json(Access {
        groups: view.allowed_groups,
    }))
}
