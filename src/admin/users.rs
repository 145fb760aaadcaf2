//! `/api/users`: create, read, patch (status, groups, email, display name, role,
//! password), delete.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiState, Body, Caller, Failures, changed, not_managed};
use crate::api::{NewUser, UserPatch};
use crate::model::{Role, Status, User, UserView, check_name};
use crate::store::UserRecord;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(me))
        .routes(routes!(show, patch, remove))
}

/// All users (readers), or just the caller.
#[utoipa::path(get, path = "/api/users", tag = "users",
    responses((status = 200, body = Vec<UserView>), Failures))]
pub(crate) async fn list(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<UserView>>, ApiError> {
    let users = s.control.store.list_users().await?;
    Ok(Json(
        users
            .into_iter()
            .filter(|u| caller.is_reader() || u.name == caller.name())
            .collect(),
    ))
}

/// The caller's own profile.
#[utoipa::path(get, path = "/api/me", tag = "users",
    responses((status = 200, body = UserView), Failures))]
pub(crate) async fn me(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(find(&s, caller.name()).await?))
}

pub(crate) async fn find(s: &ApiState, name: &str) -> Result<UserView, ApiError> {
    s.control
        .store
        .get_user(name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user `{name}` not found")))
}

/// One user (readers, or the user itself).
#[utoipa::path(get, path = "/api/users/{name}", tag = "users",
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = UserView), Failures))]
pub(crate) async fn show(
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

/// Creates a user (admin).
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = UserView), Failures))]
pub(crate) async fn create(
    State(s): State<ApiState>,
    caller: Caller,
    Body(new): Body<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    caller.require_admin()?;
    check_name(&new.name).map_err(ApiError::invalid)?;
    check_password(&new.password)?;
    let record = UserRecord {
        user: User {
            name: new.name.clone(),
            email: new.email,
            display_name: new.display_name,
            status: new.status.unwrap_or(Status::Active),
            role: new.role.unwrap_or(Role::Standard),
            groups: new.groups,
        },
        managed: false,
    };
    s.control
        .store
        .create_user(&record, new.password.as_deref())
        .await?;
    let view = find(&s, &new.name).await?;
    let object = format!("user/{}", new.name);
    changed(
        &s,
        &caller,
        "user.create",
        &object,
        None::<&()>,
        Some(&view),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Changes a user's details, status, role, groups or password (admin; a user may change
/// only its own password).
#[utoipa::path(patch, path = "/api/users/{name}", tag = "users", request_body = UserPatch,
    params(("name" = String, Path, description = "user name")),
    responses((status = 200, body = UserView), Failures))]
pub(crate) async fn patch(
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
    } else if !caller.is_admin() {
        // Changing one's own password takes the current one: a token alone may not.
        let snapshot = s.control.snapshot();
        let current = p.current_password.as_deref().unwrap_or_default();
        let proven = crate::auth::verify_password(&snapshot, &name, current);
        if !proven {
            return Err(ApiError::forbidden(
                "changing your password needs your current password (current_password)",
            ));
        }
    }
    check_password(&p.password)?;
    let before = find(&s, &name).await?;
    not_managed(&s, before.managed, &format!("user `{name}`"))?;
    let mut record = UserRecord::from(before.clone());
    let u = &mut record.user;
    u.email = p.email.unwrap_or(std::mem::take(&mut u.email));
    u.display_name = p
        .display_name
        .unwrap_or(std::mem::take(&mut u.display_name));
    u.status = p.status.unwrap_or(u.status);
    u.role = p.role.unwrap_or(u.role);
    u.groups = p.groups.unwrap_or(std::mem::take(&mut u.groups));
    s.control
        .store
        .put_user(&record, p.password.as_deref())
        .await?;
    let after = find(&s, &name).await?;
    let object = format!("user/{name}");
    changed(
        &s,
        &caller,
        "user.update",
        &object,
        Some(&before),
        Some(&after),
    )
    .await?;
    Ok(Json(after))
}

/// Deletes a user and its tokens (admin).
#[utoipa::path(delete, path = "/api/users/{name}", tag = "users",
    params(("name" = String, Path, description = "user name")),
    responses((status = 204), Failures))]
pub(crate) async fn remove(
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
    let object = format!("user/{name}");
    changed(
        &s,
        &caller,
        "user.delete",
        &object,
        Some(&before),
        None::<&()>,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
