//! `/api/lockouts`: users and client addresses locked out after repeated failed logins
//! (readers list them; admins clear them).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};

use super::{ApiError, ApiState, Caller, changed};
use crate::lockout::{LockView, Subject};

pub fn routes() -> axum::Router<ApiState> {
    axum::Router::new()
        .route("/api/lockouts", get(list))
        .route("/api/lockouts/{kind}/{subject}", delete(clear))
}

async fn list(State(s): State<ApiState>, caller: Caller) -> Result<Json<Vec<LockView>>, ApiError> {
    if !caller.is_reader() {
        return Err(ApiError::forbidden(
            "this requires the admin or auditor role",
        ));
    }
    Ok(Json(s.lockout.list()))
}

async fn clear(
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
