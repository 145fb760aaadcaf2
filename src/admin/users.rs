//! `/api/users`: create, read, patch (status, groups, email, display name, role,
//! password), delete.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;

use super::{ApiError, ApiState, Body, Caller, changed, not_managed};
use crate::model::{Role, Status, UserView, check_name};
use crate::store::UserRecord;

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route("/api/users", get(list).post(create))
        .route("/api/me", get(me))
        .route("/api/users/{name}", get(show).patch(patch).delete(remove))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    status: Option<Status>,
    role: Option<Role>,
    #[serde(default)]
    groups: Vec<String>,
    password: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    email: Option<String>,
    display_name: Option<String>,
    status: Option<Status>,
    role: Option<Role>,
    groups: Option<Vec<String>>,
    password: Option<String>,
}

async fn list(State(s): State<ApiState>, caller: Caller) -> Result<Json<Vec<UserView>>, ApiError> {
    let users = s.control.store.list_users().await?;
    Ok(Json(
        users
            .into_iter()
            .filter(|u| caller.is_reader() || u.name == caller.name())
            .collect(),
    ))
}

async fn me(State(s): State<ApiState>, caller: Caller) -> Result<Json<UserView>, ApiError> {
    show(State(s), caller.clone(), Path(caller.name().to_owned())).await
}

async fn find(s: &ApiState, name: &str) -> Result<UserView, ApiError> {
    s.control
        .store
        .get_user(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user `{name}` not found")))
}

async fn show(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    caller.require_reader_or_self(&name)?;
    Ok(Json(find(&s, &name).await?))
}

fn check_password(pw: &Option<String>) -> Result<(), ApiError> {
    match pw {
        Some(p) if p.len() < 8 => Err(ApiError::invalid("password must be at least 8 characters")),
        _ => Ok(()),
    }
}

async fn create(
    State(s): State<ApiState>,
    caller: Caller,
    Body(new): Body<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    caller.require_admin()?;
    check_name(&new.name).map_err(ApiError::invalid)?;
    check_password(&new.password)?;
    let record = UserRecord {
        name: new.name.clone(),
        email: new.email,
        display_name: new.display_name,
        status: new.status.unwrap_or(Status::Active),
        role: new.role.unwrap_or(Role::Standard),
        groups: new.groups,
        managed: false,
    };
    s.control
        .store
        .create_user(&record, new.password.as_deref())
        .await?;
    let view = find(&s, &new.name).await?;
    changed(
        &s,
        &caller,
        "user.create",
        &format!("user/{}", new.name),
        None::<&()>,
        Some(&view),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

async fn patch(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(p): Body<UserPatch>,
) -> Result<Json<UserView>, ApiError> {
    let only_password = p.password.is_some()
        && p.email.is_none()
        && p.display_name.is_none()
        && p.status.is_none()
        && p.role.is_none()
        && p.groups.is_none();
    if !(only_password && caller.name() == name) {
        caller.require_admin()?;
    }
    check_password(&p.password)?;
    let before = find(&s, &name).await?;
    not_managed(&s, before.managed, &format!("user `{name}`"))?;
    let mut record = UserRecord::from(before.clone());
    record.email = p.email.unwrap_or(record.email);
    record.display_name = p.display_name.unwrap_or(record.display_name);
    record.status = p.status.unwrap_or(record.status);
    record.role = p.role.unwrap_or(record.role);
    record.groups = p.groups.unwrap_or(record.groups);
    s.control
        .store
        .put_user(&record, p.password.as_deref())
        .await?;
    let after = find(&s, &name).await?;
    changed(
        &s,
        &caller,
        "user.update",
        &format!("user/{name}"),
        Some(&before),
        Some(&after),
    )
    .await?;
    Ok(Json(after))
}

async fn remove(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let before = find(&s, &name).await?;
    not_managed(&s, before.managed, &format!("user `{name}`"))?;
    if name == caller.name() {
        return Err(ApiError::conflict("you cannot delete yourself"));
    }
    s.control.store.delete_user(&name).await?;
    changed(
        &s,
        &caller,
        "user.delete",
        &format!("user/{name}"),
        Some(&before),
        None::<&()>,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
