//! `/api/guardrails`: what sessions may do on a resource role (anyone signed in reads
//! them; admins write; config-declared ones read-only).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiState, Body, Caller, Failures, changed, not_managed};
use crate::model::{Guardrail, GuardrailView, Known};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, replace, delete))
}

/// The guardrails, in the order they are evaluated.
#[utoipa::path(get, path = "/api/guardrails", tag = "guardrails",
    responses((status = 200, body = Vec<GuardrailView>), Failures))]
pub(crate) async fn list(
    State(s): State<ApiState>,
    _caller: Caller,
) -> Result<Json<Vec<GuardrailView>>, ApiError> {
    Ok(Json(s.control.store.list_guardrails().await?))
}

async fn find(s: &ApiState, name: &str) -> Result<GuardrailView, ApiError> {
    s.control
        .store
        .list_guardrails()
        .await?
        .into_iter()
        .find(|r| r.rule.name == name)
        .ok_or_else(|| ApiError::not_found(format!("guardrail `{name}` not found")))
}

#[utoipa::path(get, path = "/api/guardrails/{name}", tag = "guardrails",
    params(("name" = String, Path, description = "guardrail name")),
    responses((status = 200, body = GuardrailView), Failures))]
pub(crate) async fn show(
    State(s): State<ApiState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<GuardrailView>, ApiError> {
    Ok(Json(find(&s, &name).await?))
}

/// The rule, checked against the resource roles and groups that exist.
fn checked(s: &ApiState, rule: Guardrail) -> Result<Guardrail, ApiError> {
    let snapshot = s.control.snapshot();
    let known = Known {
        resource_role: &|r| snapshot.resource_roles.contains_key(r),
        group: &|g| snapshot.groups.contains(g),
        approvers: &|_| 0,
    };
    let problems: Vec<String> = rule
        .problems(&known)
        .into_iter()
        .map(|(field, m)| format!("{field}: {m}"))
        .collect();
    if problems.is_empty() {
        Ok(rule)
    } else {
        Err(ApiError::invalid(problems.join("; ")))
    }
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
    caller.require_admin()?;
    let rule = checked(&s, new)?;
    s.control.store.put_guardrail(&rule, false, true).await?;
    let object = format!("guardrail/{}", rule.name);
    changed(
        &s,
        &caller,
        "guardrail.create",
        &object,
        None::<&()>,
        Some(&rule),
    )
    .await?;
    let view = GuardrailView {
        rule,
        managed: false,
    };
    Ok((StatusCode::CREATED, Json(view)))
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
    caller.require_admin()?;
    let before = find(&s, &name).await?;
    not_managed(&s, before.managed, &format!("guardrail `{name}`"))?;
    if new.name != name {
        return Err(ApiError::invalid("a guardrail keeps its name"));
    }
    let rule = checked(&s, new)?;
    s.control.store.put_guardrail(&rule, false, false).await?;
    let object = format!("guardrail/{name}");
    changed(
        &s,
        &caller,
        "guardrail.update",
        &object,
        Some(&before.rule),
        Some(&rule),
    )
    .await?;
    Ok(Json(GuardrailView {
        rule,
        managed: false,
    }))
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
    caller.require_admin()?;
    let before = find(&s, &name).await?;
    not_managed(&s, before.managed, &format!("guardrail `{name}`"))?;
    s.control.store.delete_guardrail(&name).await?;
    let object = format!("guardrail/{name}");
    changed(
        &s,
        &caller,
        "guardrail.delete",
        &object,
        Some(&before.rule),
        None::<&()>,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
