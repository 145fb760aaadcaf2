//! `/api/groups` and `/api/resources`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiState, Body, Caller, Failures, changed, not_managed};
use crate::api::{Force, GroupPatch, NewGroup, NewResource, ResourcePatch};
use crate::model::{GroupView, Resource, ResourceView, TlsMode, check_address, check_name};
use crate::store::ResourceRecord;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(show_group, rename_group, delete_group))
        .routes(routes!(list_resources, create_resource))
        .routes(routes!(show_resource, patch_resource, delete_resource))
}

fn reader(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_reader() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "this requires the admin or auditor role",
        ))
    }
}

/// Every group with its members (readers).
#[utoipa::path(get, path = "/api/groups", tag = "groups",
    responses((status = 200, body = Vec<GroupView>), Failures))]
pub(crate) async fn list_groups(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<GroupView>>, ApiError> {
    reader(&caller)?;
    Ok(Json(s.control.store.list_groups().await?))
}

pub(crate) async fn find_group(s: &ApiState, name: &str) -> Result<GroupView, ApiError> {
    let groups = s.control.store.list_groups().await?;
    groups
        .into_iter()
        .find(|g| g.name == name)
        .ok_or_else(|| ApiError::not_found(format!("group `{name}` not found")))
}

/// One group (readers).
#[utoipa::path(get, path = "/api/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "group name")),
    responses((status = 200, body = GroupView), Failures))]
pub(crate) async fn show_group(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<GroupView>, ApiError> {
    reader(&caller)?;
    Ok(Json(find_group(&s, &name).await?))
}

/// Creates a group (admin).
#[utoipa::path(post, path = "/api/groups", tag = "groups", request_body = NewGroup,
    responses((status = 201, body = GroupView), Failures))]
pub(crate) async fn create_group(
    State(s): State<ApiState>,
    caller: Caller,
    Body(new): Body<NewGroup>,
) -> Result<(StatusCode, Json<GroupView>), ApiError> {
    caller.require_admin()?;
    check_name(&new.name).map_err(ApiError::invalid)?;
    s.control.store.put_group(&new.name, false, false).await?;
    let view = find_group(&s, &new.name).await?;
    changed(
        &s,
        &caller,
        "group.create",
        &format!("group/{}", new.name),
        None::<&()>,
        Some(&view),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Renames a group; members and grants move with it (admin).
#[utoipa::path(patch, path = "/api/groups/{name}", tag = "groups", request_body = GroupPatch,
    params(("name" = String, Path, description = "group name")),
    responses((status = 200, body = GroupView), Failures))]
pub(crate) async fn rename_group(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(patch): Body<GroupPatch>,
) -> Result<Json<GroupView>, ApiError> {
    caller.require_admin()?;
    check_name(&patch.name).map_err(ApiError::invalid)?;
    let before = find_group(&s, &name).await?;
    not_managed(&s, before.managed, &format!("group `{name}`"))?;
    let rules = s.control.snapshot();
    if let Some(rule) = rules.rules.values().find(|r| r.names_group(&name)) {
        return Err(ApiError::conflict(format!(
            "access request rule `{}` names group `{name}`: change the rule first",
            rule.name
        )));
    }
    s.control.store.rename_group(&name, &patch.name).await?;
    let after = find_group(&s, &patch.name).await?;
    let object = format!("group/{name}");
    changed(
        &s,
        &caller,
        "group.rename",
        &object,
        Some(&before),
        Some(&after),
    )
    .await?;
    Ok(Json(after))
}

/// Deletes a group, its memberships and its grants (admin). A group with members or
/// grants is refused, saying what would go, unless `force`.
#[utoipa::path(delete, path = "/api/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "group name"), Force),
    responses((status = 204), Failures))]
pub(crate) async fn delete_group(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(force): Query<Force>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let before = find_group(&s, &name).await?;
    not_managed(&s, before.managed, &format!("group `{name}`"))?;
    let in_use = !(before.members.is_empty() && before.resource_roles.is_empty());
    if !force.force && in_use {
        let live = live_through(&s, &before.members, &before.resource_roles);
        return Err(ApiError::conflict(format!(
            "group `{name}` has {} member(s) ({}) and grants on {} resource role(s) ({}); \
             deleting it removes them and ends up to {live} live session(s): confirm with --force",
            before.members.len(),
            before.members.join(", "),
            before.resource_roles.len(),
            before.resource_roles.join(", "),
        )));
    }
    s.control.store.delete_group(&name).await?;
    changed(
        &s,
        &caller,
        "group.delete",
        &format!("group/{name}"),
        Some(&before),
        None::<&()>,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Live sessions of `users` on `roles`: what taking the grant away may end.
pub(crate) fn live_through(s: &ApiState, users: &[String], roles: &[String]) -> usize {
    s.registry
        .list()
        .iter()
        .filter(|v| users.contains(&v.user) && roles.contains(&v.resource_role))
        .count()
}

/// Every resource (readers).
#[utoipa::path(get, path = "/api/resources", tag = "resources",
    responses((status = 200, body = Vec<ResourceView>), Failures))]
pub(crate) async fn list_resources(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<ResourceView>>, ApiError> {
    reader(&caller)?;
    Ok(Json(s.control.store.list_resources().await?))
}

pub(crate) async fn find_resource(s: &ApiState, name: &str) -> Result<ResourceView, ApiError> {
    let all = s.control.store.list_resources().await?;
    all.into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| ApiError::not_found(format!("resource `{name}` not found")))
}

/// One resource (readers).
#[utoipa::path(get, path = "/api/resources/{name}", tag = "resources",
    params(("name" = String, Path, description = "resource name")),
    responses((status = 200, body = ResourceView), Failures))]
pub(crate) async fn show_resource(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ResourceView>, ApiError> {
    reader(&caller)?;
    Ok(Json(find_resource(&s, &name).await?))
}

/// Creates a resource (admin).
#[utoipa::path(post, path = "/api/resources", tag = "resources", request_body = NewResource,
    responses((status = 201, body = ResourceView), Failures))]
pub(crate) async fn create_resource(
    State(s): State<ApiState>,
    caller: Caller,
    Body(new): Body<NewResource>,
) -> Result<(StatusCode, Json<ResourceView>), ApiError> {
    caller.require_admin()?;
    check_name(&new.name).map_err(ApiError::invalid)?;
    check_address(&new.address).map_err(ApiError::invalid)?;
    let record = ResourceRecord {
        resource: Resource {
            name: new.name.clone(),
            protocol: new.protocol,
            address: new.address,
            tls: new.tls.unwrap_or(TlsMode::Prefer),
        },
        managed: false,
    };
    s.control.store.put_resource(&record, false).await?;
    let view = find_resource(&s, &new.name).await?;
    changed(
        &s,
        &caller,
        "resource.create",
        &format!("resource/{}", new.name),
        None::<&()>,
        Some(&view),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Changes a resource's protocol, address or TLS mode (admin).
#[utoipa::path(patch, path = "/api/resources/{name}", tag = "resources", request_body = ResourcePatch,
    params(("name" = String, Path, description = "resource name")),
    responses((status = 200, body = ResourceView), Failures))]
pub(crate) async fn patch_resource(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(p): Body<ResourcePatch>,
) -> Result<Json<ResourceView>, ApiError> {
    caller.require_admin()?;
    let before = find_resource(&s, &name).await?;
    not_managed(&s, before.managed, &format!("resource `{name}`"))?;
    if let Some(a) = &p.address {
        check_address(a).map_err(ApiError::invalid)?;
    }
    let record = ResourceRecord {
        resource: Resource {
            name: name.clone(),
            protocol: p.protocol.unwrap_or(before.protocol),
            address: p.address.unwrap_or_else(|| before.address.clone()),
            tls: p.tls.unwrap_or(before.tls),
        },
        managed: false,
    };
    s.control.store.put_resource(&record, true).await?;
    let after = find_resource(&s, &name).await?;
    changed(
        &s,
        &caller,
        "resource.update",
        &format!("resource/{name}"),
        Some(&before),
        Some(&after),
    )
    .await?;
    Ok(Json(after))
}

/// Deletes a resource (admin). One that resource roles use is refused, naming them,
/// unless `force`, which deletes those roles (and their grants) too.
#[utoipa::path(delete, path = "/api/resources/{name}", tag = "resources",
    params(("name" = String, Path, description = "resource name"), Force),
    responses((status = 204), Failures))]
pub(crate) async fn delete_resource(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(force): Query<Force>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let before = find_resource(&s, &name).await?;
    not_managed(&s, before.managed, &format!("resource `{name}`"))?;
    let roles: Vec<_> = s.control.store.list_resource_roles().await?;
    let roles: Vec<_> = roles
        .into_iter()
        .filter(|r| r.role.resource == name)
        .collect();
    if !roles.is_empty() {
        let names: Vec<String> = roles.iter().map(|r| r.role.name.clone()).collect();
        if !force.force {
            let live = s
                .registry
                .list()
                .iter()
                .filter(|v| names.contains(&v.resource_role))
                .count();
            return Err(ApiError::conflict(format!(
                "resource `{name}` is used by {} resource role(s) ({}) with {live} live \
                 session(s); deleting it deletes them too: confirm with --force",
                names.len(),
                names.join(", ")
            )));
        }
        for role in roles {
            let path = Path(role.role.name.clone());
            super::resource_roles::remove(State(s.clone()), caller.clone(), path, Query(force))
                .await?;
        }
    }
    s.control.store.delete_resource(&name).await?;
    changed(
        &s,
        &caller,
        "resource.delete",
        &format!("resource/{name}"),
        Some(&before),
        None::<&()>,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
