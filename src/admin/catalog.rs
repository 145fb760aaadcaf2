//! `/api/groups` and `/api/resources`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;

use super::{ApiError, ApiState, Body, Caller, changed, not_managed};
use crate::model::{GroupView, Protocol, ResourceView, TlsMode, check_address, check_name};
use crate::store::ResourceRecord;

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route("/api/groups", get(list_groups).post(create_group))
        .route("/api/groups/{name}", get(show_group).delete(delete_group))
        .route("/api/resources", get(list_resources).post(create_resource))
        .route(
            "/api/resources/{name}",
            get(show_resource)
                .patch(patch_resource)
                .delete(delete_resource),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    name: String,
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

async fn list_groups(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<GroupView>>, ApiError> {
    reader(&caller)?;
    Ok(Json(s.control.store.list_groups().await?))
}

async fn find_group(s: &ApiState, name: &str) -> Result<GroupView, ApiError> {
    let groups = s.control.store.list_groups().await?;
    groups
        .into_iter()
        .find(|g| g.name == name)
        .ok_or_else(|| ApiError::not_found(format!("group `{name}` not found")))
}

async fn show_group(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<GroupView>, ApiError> {
    reader(&caller)?;
    Ok(Json(find_group(&s, &name).await?))
}

async fn create_group(
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

async fn delete_group(
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewResource {
    name: String,
    protocol: Protocol,
    address: String,
    tls: Option<TlsMode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcePatch {
    protocol: Option<Protocol>,
    address: Option<String>,
    tls: Option<TlsMode>,
}

async fn list_resources(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<ResourceView>>, ApiError> {
    reader(&caller)?;
    Ok(Json(s.control.store.list_resources().await?))
}

async fn find_resource(s: &ApiState, name: &str) -> Result<ResourceView, ApiError> {
    let all = s.control.store.list_resources().await?;
    all.into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| ApiError::not_found(format!("resource `{name}` not found")))
}

async fn show_resource(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ResourceView>, ApiError> {
    reader(&caller)?;
    Ok(Json(find_resource(&s, &name).await?))
}

async fn create_resource(
    State(s): State<ApiState>,
    caller: Caller,
    Body(new): Body<NewResource>,
) -> Result<(StatusCode, Json<ResourceView>), ApiError> {
    caller.require_admin()?;
    check_name(&new.name).map_err(ApiError::invalid)?;
    check_address(&new.address).map_err(ApiError::invalid)?;
    let record = ResourceRecord {
        name: new.name.clone(),
        protocol: new.protocol,
        address: new.address,
        tls: new.tls.unwrap_or(TlsMode::Prefer),
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

async fn patch_resource(
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
        name: name.clone(),
        protocol: p.protocol.unwrap_or(before.protocol),
        address: p.address.unwrap_or_else(|| before.address.clone()),
        tls: p.tls.unwrap_or(before.tls),
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

async fn delete_resource(
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
