//! `/api/guardrails`: what sessions may do on a resource role (anyone signed in reads
//! them; admins write; config-declared ones read-only). The work is `definitions`'.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::definitions::{self, Definition};
use super::{ApiError, ApiState, Body, Caller, Failures};
use crate::model::{Guardrail, GuardrailView};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, replace, delete))
}

fn view((rule, managed): (Guardrail, bool)) -> GuardrailView {
    GuardrailView { rule, managed }
}

/// The guardrails, in the order they are evaluated.
#[utoipa::path(get, path = "/api/guardrails", tag = "guardrails",
    responses((status = 200, body = Vec<GuardrailView>), Failures))]
pub(crate) async fn list(
    State(s): State<ApiState>,
    _caller: Caller,
) -> Result<Json<Vec<GuardrailView>>, ApiError> {
    let all = Guardrail::list(&s.control.store).await?;
    Ok(Json(all.into_iter().map(view).collect()))
}

#[utoipa::path(get, path = "/api/guardrails/{name}", tag = "guardrails",
    params(("name" = String, Path, description = "guardrail name")),
    responses((status = 200, body = GuardrailView), Failures))]
pub(crate) async fn show(
    State(s): State<ApiState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<GuardrailView>, ApiError> {
    Ok(Json(view(definitions::find(&s, &name).await?)))
}

/// Creates a guardrail (admin). Live sessions keep the rules they started with; new
/// sessions get it.
#[utoipa::path(post, path = "/api/guardrails", tag = "guardrails",
    request_body = Guardrail,
    responses((status = 201, body = GuardrailView), Failures))]
pub(crate) async fn create(
    State(s): State<ApiState>,
    caller: Caller,
    Body(new): Body<Guardrail>,
) -> Result<(StatusCode, Json<GuardrailView>), ApiError> {
    let rule = definitions::create(&s, &caller, new).await?;
    Ok((StatusCode::CREATED, Json(view((rule, false)))))
}

/// Replaces a guardrail (admin; not one the config declares).
#[utoipa::path(put, path = "/api/guardrails/{name}", tag = "guardrails",
    params(("name" = String, Path, description = "guardrail name")),
    request_body = Guardrail,
    responses((status = 200, body = GuardrailView), Failures))]
pub(crate) async fn replace(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(new): Body<Guardrail>,
) -> Result<Json<GuardrailView>, ApiError> {
    let rule = definitions::replace(&s, &caller, &name, new).await?;
    Ok(Json(view((rule, false))))
}

/// Deletes a guardrail (admin; not one the config declares).
#[utoipa::path(delete, path = "/api/guardrails/{name}", tag = "guardrails",
    params(("name" = String, Path, description = "guardrail name")),
    responses((status = 204), Failures))]
pub(crate) async fn delete(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    definitions::delete::<Guardrail>(&s, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
