//! `/api/masking`: which result columns sessions read masked on a resource role (anyone signed in reads
//! them; admins write; config-declared ones read-only). The work is `definitions`'.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::definitions::{self, Definition};
use super::{ApiError, ApiState, Body, Caller, Failures};
use crate::model::{MaskingRule, MaskingRuleView};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, replace, delete))
}

fn view((rule, managed): (MaskingRule, bool)) -> MaskingRuleView {
    MaskingRuleView { rule, managed }
}

/// The masking rules, in the order they are evaluated.
#[utoipa::path(get, path = "/api/masking", tag = "masking",
    responses((status = 200, body = Vec<MaskingRuleView>), Failures))]
pub(crate) async fn list(
    State(s): State<ApiState>,
    _caller: Caller,
) -> Result<Json<Vec<MaskingRuleView>>, ApiError> {
    let all = MaskingRule::list(&s.control.store).await?;
    Ok(Json(all.into_iter().map(view).collect()))
}

#[utoipa::path(get, path = "/api/masking/{name}", tag = "masking",
    params(("name" = String, Path, description = "masking rule name")),
    responses((status = 200, body = MaskingRuleView), Failures))]
pub(crate) async fn show(
    State(s): State<ApiState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<MaskingRuleView>, ApiError> {
    Ok(Json(view(definitions::find(&s, &name).await?)))
}

/// Creates a masking rule (admin). Live sessions keep the rules they started with; new
/// sessions get it.
#[utoipa::path(post, path = "/api/masking", tag = "masking",
    request_body = MaskingRule,
    responses((status = 201, body = MaskingRuleView), Failures))]
pub(crate) async fn create(
    State(s): State<ApiState>,
    caller: Caller,
    Body(new): Body<MaskingRule>,
) -> Result<(StatusCode, Json<MaskingRuleView>), ApiError> {
    let rule = definitions::create(&s, &caller, new).await?;
    Ok((StatusCode::CREATED, Json(view((rule, false)))))
}

/// Replaces a masking rule (admin; not one the config declares).
#[utoipa::path(put, path = "/api/masking/{name}", tag = "masking",
    params(("name" = String, Path, description = "masking rule name")),
    request_body = MaskingRule,
    responses((status = 200, body = MaskingRuleView), Failures))]
pub(crate) async fn replace(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(new): Body<MaskingRule>,
) -> Result<Json<MaskingRuleView>, ApiError> {
    let rule = definitions::replace(&s, &caller, &name, new).await?;
    Ok(Json(view((rule, false))))
}

/// Deletes a masking rule (admin; not one the config declares).
#[utoipa::path(delete, path = "/api/masking/{name}", tag = "masking",
    params(("name" = String, Path, description = "masking rule name")),
    responses((status = 204), Failures))]
pub(crate) async fn delete(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    definitions::delete::<MaskingRule>(&s, &caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
