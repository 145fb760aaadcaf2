//! `GET /api/access`: who can reach what — every (user, resource role) pair that
//! `access::decide` would permit, with the modes and the groups that grant it. The
//! regular-audit view; filters `user` and `resource_role`.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiState, Caller, Failures};
use crate::access::reachable_modes;
use crate::api::{Reach, ReviewRow};
use crate::model::Role;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(reach))
        .routes(routes!(review))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReviewFilter {
    /// Grants not used for this long are flagged, e.g. `90d` (default 90d).
    pub(crate) unused_for: Option<String>,
    pub(crate) resource_role: Option<String>,
}

/// The access review (readers): every user who can reach each resource role, through
/// which groups, and when they last used it; grants unused for `unused_for` flagged.
#[utoipa::path(get, path = "/api/access/review", tag = "access control", params(ReviewFilter),
    responses((status = 200, body = Vec<ReviewRow>), Failures))]
pub(crate) async fn review(
    State(s): State<ApiState>,
    caller: Caller,
    Query(f): Query<ReviewFilter>,
) -> Result<Json<Vec<ReviewRow>>, ApiError> {
    if !caller.is_reader() {
        return Err(ApiError::forbidden(
            "the access review is for admins and auditors",
        ));
    }
    let window = match &f.unused_for {
        Some(d) => crate::config::parse_duration(d).map_err(ApiError::invalid)?,
        None => std::time::Duration::from_secs(90 * 86_400),
    };
    let filter = Filter {
        user: None,
        resource_role: f.resource_role,
    };
    let reach = reach(State(s.clone()), caller, Query(filter)).await?.0;
    let used = s.control.store.last_uses().await?;
    let since = crate::clock::now() - window.as_secs() as i64;
    Ok(Json(
        reach
            .into_iter()
            .map(|r| {
                let last = used
                    .get(&(r.user.clone(), r.resource_role.clone()))
                    .copied();
                ReviewRow {
                    unused: last.is_none_or(|t| t < since),
                    last_used_at: last,
                    resource_role: r.resource_role,
                    resource: r.resource,
                    user: r.user,
                    modes: r.modes,
                    via: r.via,
                }
            })
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Filter {
    pub(crate) user: Option<String>,
    pub(crate) resource_role: Option<String>,
}

/// Who can reach what (readers: everyone; others: themselves).
#[utoipa::path(get, path = "/api/access", tag = "access control", params(Filter),
    responses((status = 200, body = Vec<Reach>), Failures))]
pub(crate) async fn reach(
    State(s): State<ApiState>,
    caller: Caller,
    Query(f): Query<Filter>,
) -> Result<Json<Vec<Reach>>, ApiError> {
    let user_filter = match (&f.user, caller.is_reader()) {
        (_, true) => f.user.clone(),
        (Some(u), false) if u != caller.name() => {
            return Err(ApiError::forbidden("you may only see your own access"));
        }
        _ => Some(caller.name().to_owned()),
    };
    let snap = s.control.snapshot();
    if let Some(rr) = &f.resource_role
        && !snap.resource_roles.contains_key(rr)
    {
        return Err(ApiError::not_found(format!(
            "resource role `{rr}` not found"
        )));
    }
    let mut users: Vec<_> = snap
        .users
        .values()
        .filter(|u| user_filter.as_ref().is_none_or(|n| *n == u.name))
        .collect();
    users.sort_by(|a, b| a.name.cmp(&b.name));
    let mut roles: Vec<_> = snap
        .resource_roles
        .values()
        .filter(|r| f.resource_role.as_ref().is_none_or(|n| *n == r.name))
        .collect();
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Vec::new();
    for role in &roles {
        for user in &users {
            let modes = reachable_modes(&snap, &user.name, &role.name);
            if modes.is_empty() {
                continue;
            }
            let via = if user.role == Role::Admin {
                vec!["(admin)".to_owned()]
            } else {
                user.groups
                    .iter()
                    .filter(|g| role.allowed_groups.contains(g) && snap.groups.contains(*g))
                    .cloned()
                    .collect()
            };
            out.push(Reach {
                user: user.name.clone(),
                resource_role: role.name.clone(),
                resource: role.resource.clone(),
                modes,
                via,
            });
        }
    }
    Ok(Json(out))
}
