//! `/api/lockouts`: users and client addresses locked out after repeated failed logins
//! (readers list them; admins clear them).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiState, Caller, Failures, changed};
use crate::lockout::{LockView, Subject};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(clear))
}

/// Users and client addresses locked out now (readers).
#[utoipa::path(get, path = "/api/lockouts", tag = "lockouts",
    responses((status = 200, body = Vec<LockView>), Failures))]
pub(crate) async fn list(
    State(s): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<LockView>>, ApiError> {
    if !caller.is_reader() {
        return Err(ApiError::forbidden(
            "this requires the admin or auditor role",
        ));
    }
    Ok(Json(s.lockout.list()))
}

/// Lifts a lockout (admin): `user/NAME` or `address/IP`.
#[utoipa::path(delete, path = "/api/lockouts/{kind}/{subject}", tag = "lockouts",
    params(("kind" = String, Path, description = "`user` or `address`"),
        ("subject" = String, Path, description = "the user name or IP address")),
    responses((status = 204), Failures))]
pub(crate) async fn clear(
    State(s): State<ApiState>,
    caller: Caller,
    Path((kind, subject)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let target = match kind.as_str() {
        "user" => Subject::User(subject.clone()),
        "address" => Subject::Address(
            subject
                .parse()
                .map_err(|_| ApiError::bad_request(format!("`{subject}` is not an IP address")))?,
        ),
        _ => {
            return Err(ApiError::not_found(
                "lockouts are cleared by `user/NAME` or `address/IP`",
            ));
        }
    };
    if !s.lockout.clear(&target) {
        return Err(ApiError::not_found(format!("{target} is not locked out")));
    }
    changed(
        &s,
        &caller,
        "lockout.clear",
        &format!("lockout/{kind}/{subject}"),
        None::<&()>,
        None::<&()>,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
