//! `/api/resource-roles` and `/api/resource-roles/{name}/access` (allowed groups).
//! The upstream password is write-only: accepted here, never returned.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiState, Body, Caller, Failures, changed, not_managed};
use crate::access::reachable_modes;
use crate::api::{Access, Force, Grant, NewResourceRole, ResourceRolePatch};
use crate::model::{ResourceRole, ResourceRoleView, check_name};
use crate::store::ResourceRoleRecord;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, patch, remove))
        .routes(routes!(show_access, set_access, grant))
        .routes(routes!(revoke))
}

/// Readers see every resource role; a standard user those it can reach in some mode.
fn visible(s: &ApiState, caller: &Caller, name: &str) -> bool {
    caller.is_reader() || !reachable_modes(&s.control.snapshot(), caller.name(), name).is_empty()
}

/// `forward_options` may not name what would run a session as someone else.
fn check_forward_options(list: Option<&[String]>) -> Result<(), ApiError> {
    crate::model::check_forward_options(list.unwrap_or_default()).map_err(ApiError::invalid)
}

/// What the caller may see of a resource role: the upstream user's name is for admins and
/// auditors only (clients never learn it).
fn shown(caller: &Caller, mut view: ResourceRoleView) -> ResourceRoleView {
    if !caller.is_reader() {
        view.role.user.clear();
    }
    view
}

/// Every resource role (readers), or those the caller can use in some mode.
#[utoipa::path(get, path = "/api/resource-roles", tag = "resource roles",
    responses((status = 200, body = Vec<ResourceRoleView>), Failures))]
pub(crate) async fn list(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<ResourceRoleView>>, ApiError> {
    let all = s.control.store.list_resource_roles().await?;
    Ok(Json(
        all.into_iter()
            .filter(|r| visible(&s, &caller, &r.name))
            .map(|r| shown(&caller, r))
            .collect(),
    ))
}

pub(crate) async fn find(s: &ApiState, name: &str) -> Result<ResourceRoleView, ApiError> {
    let all = s.control.store.list_resource_roles().await?;
    all.into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| ApiError::not_found(format!("resource role `{name}` not found")))
}

/// One resource role (readers, or a user who can use it).
#[utoipa::path(get, path = "/api/resource-roles/{name}", tag = "resource roles",
    params(("name" = String, Path, description = "resource role name")),
    responses((status = 200, body = ResourceRoleView), Failures))]
pub(crate) async fn show(
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
    Ok(Json(shown(&caller, find(&s, &name).await?)))
}

fn record(v: ResourceRoleView, secret: Option<String>) -> ResourceRoleRecord {
    ResourceRoleRecord {
        role: v.role,
        secret,
        managed: false,
    }
}

/// Creates a resource role (admin). The password is write-only.
#[utoipa::path(post, path = "/api/resource-roles", tag = "resource roles",
    request_body = NewResourceRole,
    responses((status = 201, body = ResourceRoleView), Failures))]
pub(crate) async fn create(
    State(s): State<ApiState>,
    caller: Caller,
    Body(new): Body<NewResourceRole>,
) -> Result<(StatusCode, Json<ResourceRoleView>), ApiError> {
    caller.require_admin()?;
    check_name(&new.name).map_err(ApiError::invalid)?;
    check_forward_options(new.forward_options.as_deref())?;
    if new.database.is_empty() || new.user.is_empty() {
        return Err(ApiError::invalid("database and user must not be empty"));
    }
    let r = ResourceRoleRecord {
        role: ResourceRole {
            name: new.name.clone(),
            resource: new.resource,
            database: new.database,
            user: new.user,
            allowed_groups: new.allowed_groups,
            access_modes: new.access_modes.unwrap_or_default(),
            forward_options: new.forward_options,
        },
        secret: new.password,
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
pub(crate) async fn update(
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

/// Changes a resource role (admin); a password given replaces the stored one.
#[utoipa::path(patch, path = "/api/resource-roles/{name}", tag = "resource roles",
    request_body = ResourceRolePatch,
    params(("name" = String, Path, description = "resource role name")),
    responses((status = 200, body = ResourceRoleView), Failures))]
pub(crate) async fn patch(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(p): Body<ResourceRolePatch>,
) -> Result<Json<ResourceRoleView>, ApiError> {
    if let Some(f) = &p.forward_options {
        check_forward_options(f.as_deref())?;
    }
    let view = update(&s, &caller, &name, "resource_role.update", |r| {
        r.secret = p.password;
        let r = &mut r.role;
        r.resource = p.resource.unwrap_or(std::mem::take(&mut r.resource));
        r.database = p.database.unwrap_or(std::mem::take(&mut r.database));
        r.user = p.user.unwrap_or(std::mem::take(&mut r.user));
        r.allowed_groups = p
            .allowed_groups
            .unwrap_or(std::mem::take(&mut r.allowed_groups));
        r.access_modes = p.access_modes.unwrap_or(r.access_modes);
        if let Some(f) = p.forward_options {
            r.forward_options = f;
        }
    })
    .await?;
    Ok(Json(view))
}

/// Deletes a resource role (admin). One that groups are granted, or with live sessions,
/// is refused, saying what would go, unless `force`.
#[utoipa::path(delete, path = "/api/resource-roles/{name}", tag = "resource roles",
    params(("name" = String, Path, description = "resource role name"), Force),
    responses((status = 204), Failures))]
pub(crate) async fn remove(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(force): Query<Force>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let before = find(&s, &name).await?;
    not_managed(&s, before.managed, &format!("resource role `{name}`"))?;
    let groups = &before.role.allowed_groups;
    let live = s
        .registry
        .list()
        .iter()
        .filter(|v| v.resource_role == name)
        .count();
    if !force.force && (!groups.is_empty() || live > 0) {
        return Err(ApiError::conflict(format!(
            "resource role `{name}` is granted to {} group(s) ({}) and has {live} live \
             session(s); deleting it removes the grants and ends the sessions: confirm with --force",
            groups.len(),
            groups.join(", ")
        )));
    }
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

/// The groups allowed to use a resource role (readers).
#[utoipa::path(get, path = "/api/resource-roles/{name}/access", tag = "access control",
    params(("name" = String, Path, description = "resource role name")),
    responses((status = 200, body = Access), Failures))]
pub(crate) async fn show_access(
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
        groups: find(&s, &name).await?.role.allowed_groups,
    }))
}

/// Replaces the allowed groups (admin).
#[utoipa::path(put, path = "/api/resource-roles/{name}/access", tag = "access control",
    request_body = Access,
    params(("name" = String, Path, description = "resource role name")),
    responses((status = 200, body = Access), Failures))]
pub(crate) async fn set_access(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(a): Body<Access>,
) -> Result<Json<Access>, ApiError> {
    let view = update(&s, &caller, &name, "access.set", |r| {
        r.role.allowed_groups = a.groups
    })
    .await?;
    Ok(Json(Access {
        groups: view.role.allowed_groups,
    }))
}

/// Allows one more group (admin).
#[utoipa::path(post, path = "/api/resource-roles/{name}/access", tag = "access control",
    request_body = Grant,
    params(("name" = String, Path, description = "resource role name")),
    responses((status = 200, body = Access), Failures))]
pub(crate) async fn grant(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(g): Body<Grant>,
) -> Result<Json<Access>, ApiError> {
    let view = update(&s, &caller, &name, "access.grant", |r| {
        if !r.allowed_groups.contains(&g.group) {
            r.role.allowed_groups.push(g.group);
        }
    })
    .await?;
    Ok(Json(Access {
        groups: view.role.allowed_groups,
    }))
}

/// Withdraws a group's grant (admin); its members' live sessions on the role end.
#[utoipa::path(delete, path = "/api/resource-roles/{name}/access/{group}", tag = "access control",
    params(("name" = String, Path, description = "resource role name"),
        ("group" = String, Path, description = "group name")),
    responses((status = 200, body = Access), Failures))]
pub(crate) async fn revoke(
    State(s): State<ApiState>,
    caller: Caller,
    Path((name, group)): Path<(String, String)>,
) -> Result<Json<Access>, ApiError> {
    let view = update(&s, &caller, &name, "access.revoke", |r| {
        r.role.allowed_groups.retain(|g| *g != group)
    })
    .await?;
    Ok(Json(Access {
        groups: view.role.allowed_groups,
    }))
}
