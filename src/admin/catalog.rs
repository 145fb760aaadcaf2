//! `/api/groups` and `/api/resources`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiState, Body, Caller, Failures, changed, not_managed};
use crate::api::{NewGroup, NewResource, ResourcePatch};
use crate::model::{GroupView, Resource, ResourceView, TlsMode, check_address, check_name};
use crate::store::ResourceRecord;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_groups, create_group))
        .routes(routes!(show_group, delete_group))
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

/// Deletes a group, its memberships and its grants (admin).
#[utoipa::path(delete, path = "/api/groups/{name}", tag = "groups",
    params(("name" = String, Path, description = "group name")),
    responses((status = 204), Failures))]
pub(crate) async fn delete_group(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let before = find_group(&s, &name).await?;
    not_managed(&s, before.managed, &format!("group `{name}`"))?;
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

/// Deletes a resource no resource role uses (admin).
#[utoipa::path(delete, path = "/api/resources/{name}", tag = "resources",
    params(("name" = String, Path, description = "resource name")),
    responses((status = 204), Failures))]
pub(crate) async fn delete_resource(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let before = find_resource(&s, &name).await?;
    not_managed(&s, before.managed, &format!("resource `{name}`"))?;
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
