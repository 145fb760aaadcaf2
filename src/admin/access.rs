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
use crate::api::Reach;
use crate::model::Role;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(reach))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Filter {
    user: Option<String>,
    resource_role: Option<String>,
}

/// Who can reach what (readers: everyone; others: themselves).
#[utoipa::path(get, path = "/api/access", tag = "access control", params(Filter),
    responses((status = 200, body = Vec<Reach>), Failures))]
async fn reach(
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
