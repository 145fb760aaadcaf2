//! `/api/access-requests`: ask for just-in-time access, list (mine, pending my vote, all),
//! show, approve, deny, revoke (admin), cancel (requester), run an approved command once;
//! `/api/access-request-rules`: the rules (admins write; config-declared ones read-only).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiError, ApiState, Body, Caller, ClientAddr, Failures, changed, not_managed};
use crate::access::approval;
use crate::api::{Decision, Executed, NewAccessRequest, NewAccessRequestRule};
use crate::model::{
    AccessRequest, AccessRequestRule, AccessRequestRuleView, AccessRequestView, Known, RequestKind,
    RequestStatus, Status,
};
use crate::requests::{self, Ask};
use crate::store::RequestFilter;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show))
        .routes(routes!(approve))
        .routes(routes!(deny))
        .routes(routes!(revoke))
        .routes(routes!(cancel))
        .routes(routes!(run))
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(show_rule, replace_rule, delete_rule))
}

/// Asks for just-in-time access to a resource role (201: pending, or approved at once
/// for a break-glass group).
#[utoipa::path(post, path = "/api/access-requests", tag = "access requests",
    request_body = NewAccessRequest,
    responses((status = 201, body = AccessRequestView), Failures))]
pub(crate) async fn create(
    State(s): State<ApiState>,
    caller: Caller,
    Body(req): Body<NewAccessRequest>,
) -> Result<(StatusCode, Json<AccessRequestView>), ApiError> {
    let duration = match &req.duration {
        Some(d) => Some(crate::config::parse_duration(d).map_err(ApiError::invalid)?),
        None => None,
    };
    let ask = Ask {
        resource_role: req.resource_role,
        kind: RequestKind::Jit,
        reason: req.reason,
        duration,
        work: None,
    };
    let request = requests::create(&s.0, &caller.0, ask).await?;
    Ok((
        StatusCode::CREATED,
        Json(requests::view(&s.control.snapshot(), request)),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Listing {
    /// `mine` (yours), `pending` (waiting for your vote), `all` (readers: everything;
    /// others: theirs and those they may vote on). Default `all`.
    scope: Option<String>,
    status: Option<RequestStatus>,
    limit: Option<i64>,
}

impl Listing {
    pub(crate) fn scoped(scope: &str) -> Listing {
        Listing {
            scope: Some(scope.to_owned()),
            status: None,
            limit: None,
        }
    }
}

/// Whether `caller` may vote on `r` now.
fn votes_on(s: &ApiState, caller: &Caller, r: &AccessRequest) -> bool {
    let snapshot = s.control.snapshot();
    snapshot
        .rules
        .get(&r.rule)
        .is_some_and(|rule| approval::may_vote(&snapshot, caller.name(), r, rule).is_ok())
}

/// Whether `caller` may see `r`: its requester, readers, members of its approver groups.
fn sees(s: &ApiState, caller: &Caller, r: &AccessRequest) -> bool {
    if caller.is_reader() || r.requester == caller.name() {
        return true;
    }
    let snapshot = s.control.snapshot();
    snapshot.rules.get(&r.rule).is_some_and(|rule| {
        rule.approver_groups
            .iter()
            .any(|g| caller.0.groups.contains(g))
    })
}

/// Requests, newest first.
#[utoipa::path(get, path = "/api/access-requests", tag = "access requests", params(Listing),
    responses((status = 200, body = Vec<AccessRequestView>), Failures))]
pub(crate) async fn list(
    State(s): State<ApiState>,
    caller: Caller,
    Query(q): Query<Listing>,
) -> Result<Json<Vec<AccessRequestView>>, ApiError> {
    let scope = q.scope.as_deref().unwrap_or("all");
    let mut f = RequestFilter {
        status: q.status,
        requester: None,
        limit: q.limit.unwrap_or(200),
    };
    match scope {
        "mine" => f.requester = Some(caller.name().to_owned()),
        "pending" => f.status = Some(RequestStatus::Pending),
        "all" => {}
        other => {
            return Err(ApiError::invalid(format!(
                "scope `{other}` is not one of mine, pending, all"
            )));
        }
    }
    let all = s.control.store.list_requests(&f).await?;
    let snapshot = s.control.snapshot();
    Ok(Json(
        all.into_iter()
            .filter(|r| match scope {
                "pending" => votes_on(&s, &caller, r),
                _ => sees(&s, &caller, r),
            })
            .map(|r| requests::view(&snapshot, r))
            .collect(),
    ))
}

pub(crate) async fn find(
    s: &ApiState,
    caller: &Caller,
    id: &str,
) -> Result<AccessRequest, ApiError> {
    let missing = || ApiError::not_found(format!("access request `{id}` not found"));
    let r = s
        .control
        .store
        .get_request(id)
        .await
        .map_err(|_| missing())?;
    if !sees(s, caller, &r) {
        return Err(missing());
    }
    Ok(r)
}

/// One request with its votes.
#[utoipa::path(get, path = "/api/access-requests/{id}", tag = "access requests",
    params(("id" = String, Path, description = "request id")),
    responses((status = 200, body = AccessRequestView), Failures))]
pub(crate) async fn show(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AccessRequestView>, ApiError> {
    let r = find(&s, &caller, &id).await?;
    Ok(Json(requests::view(&s.control.snapshot(), r)))
}

pub(crate) async fn voted(
    s: ApiState,
    caller: Caller,
    id: String,
    approve: bool,
    comment: String,
) -> Result<Json<AccessRequestView>, ApiError> {
    find(&s, &caller, &id).await?;
    let r = requests::vote(&s.0, caller.name(), &id, approve, comment).await?;
    Ok(Json(requests::view(&s.control.snapshot(), r)))
}

/// Approves (a member of the rule's approver groups, or an admin; never the requester;
/// one vote each). Approved once the rule's approvals are in.
#[utoipa::path(post, path = "/api/access-requests/{id}/approve", tag = "access requests",
    params(("id" = String, Path, description = "request id")), request_body = Decision,
    responses((status = 200, body = AccessRequestView), Failures))]
pub(crate) async fn approve(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(d): Body<Decision>,
) -> Result<Json<AccessRequestView>, ApiError> {
    voted(s, caller, id, true, d.comment).await
}

/// Denies (any approver: one denial ends it); the comment is the reason.
#[utoipa::path(post, path = "/api/access-requests/{id}/deny", tag = "access requests",
    params(("id" = String, Path, description = "request id")), request_body = Decision,
    responses((status = 200, body = AccessRequestView), Failures))]
pub(crate) async fn deny(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(d): Body<Decision>,
) -> Result<Json<AccessRequestView>, ApiError> {
    if d.comment.trim().is_empty() {
        return Err(ApiError::invalid("a denial needs a reason (`comment`)"));
    }
    voted(s, caller, id, false, d.comment).await
}

/// Revokes a pending or approved request (admin): a grant ends now, and the live
/// sessions on it within a second.
#[utoipa::path(post, path = "/api/access-requests/{id}/revoke", tag = "access requests",
    params(("id" = String, Path, description = "request id")), request_body = Decision,
    responses((status = 200, body = AccessRequestView), Failures))]
pub(crate) async fn revoke(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(d): Body<Decision>,
) -> Result<Json<AccessRequestView>, ApiError> {
    caller.require_admin()?;
    let r = requests::close(&s.0, caller.name(), &id, true, d.comment).await?;
    Ok(Json(requests::view(&s.control.snapshot(), r)))
}

/// Cancels one's own pending or approved request.
#[utoipa::path(post, path = "/api/access-requests/{id}/cancel", tag = "access requests",
    params(("id" = String, Path, description = "request id")),
    responses((status = 200, body = AccessRequestView), Failures))]
pub(crate) async fn cancel(
    State(s): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AccessRequestView>, ApiError> {
    find(&s, &caller, &id).await?;
    let r = requests::close(&s.0, caller.name(), &id, false, String::new()).await?;
    Ok(Json(requests::view(&s.control.snapshot(), r)))
}

/// Runs an approved command request once (its requester): exactly what was approved.
#[utoipa::path(post, path = "/api/access-requests/{id}/run", tag = "access requests",
    params(("id" = String, Path, description = "request id")),
    responses((status = 200, body = Executed), Failures))]
pub(crate) async fn run(
    State(s): State<ApiState>,
    caller: Caller,
    ClientAddr(client): ClientAddr,
    Path(id): Path<String>,
) -> Result<Json<Executed>, ApiError> {
    find(&s, &caller, &id).await?;
    Ok(Json(
        super::oneoffs::run_approved(&s, &caller, &id, client).await?,
    ))
}

/// The rules (anyone may read them: they say who approves what).
#[utoipa::path(get, path = "/api/access-request-rules", tag = "access requests",
    responses((status = 200, body = Vec<AccessRequestRuleView>), Failures))]
pub(crate) async fn list_rules(
    State(s): State<ApiState>,
    _caller: Caller,
) -> Result<Json<Vec<AccessRequestRuleView>>, ApiError> {
    Ok(Json(s.control.store.list_rules().await?))
}

pub(crate) async fn find_rule(s: &ApiState, name: &str) -> Result<AccessRequestRuleView, ApiError> {
    s.control
        .store
        .list_rules()
        .await?
        .into_iter()
        .find(|r| r.rule.name == name)
        .ok_or_else(|| ApiError::not_found(format!("access request rule `{name}` not found")))
}

#[utoipa::path(get, path = "/api/access-request-rules/{name}", tag = "access requests",
    params(("name" = String, Path, description = "rule name")),
    responses((status = 200, body = AccessRequestRuleView), Failures))]
pub(crate) async fn show_rule(
    State(s): State<ApiState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<AccessRequestRuleView>, ApiError> {
    Ok(Json(find_rule(&s, &name).await?))
}

/// The rule from the request, checked against what exists and the other rules.
pub(crate) async fn checked(
    s: &ApiState,
    new: NewAccessRequestRule,
    replacing: Option<&str>,
) -> Result<AccessRequestRule, ApiError> {
    let kind = new.kind.parse::<RequestKind>().map_err(ApiError::invalid)?;
    let max = match &new.max_duration {
        Some(d) => Some(
            crate::config::parse_duration(d)
                .map_err(ApiError::invalid)?
                .as_secs(),
        ),
        None => None,
    };
    let rule = AccessRequestRule {
        name: new.name,
        resource_roles: new.resource_roles,
        kind,
        requester_groups: new.requester_groups,
        approver_groups: new.approver_groups,
        min_approvals: new.min_approvals.unwrap_or(1),
        all_approver_groups: new.all_approver_groups,
        max_duration_s: max,
        reason_required: new.reason_required.unwrap_or(true),
        break_glass_groups: new.break_glass_groups,
    };
    let snapshot = s.control.snapshot();
    let approvers = |groups: &[String]| {
        snapshot
            .users
            .values()
            .filter(|u| u.status == Status::Active && u.groups.iter().any(|g| groups.contains(g)))
            .count()
    };
    let known = Known {
        resource_role: &|r| snapshot.resource_roles.contains_key(r),
        group: &|g| snapshot.groups.contains(g),
        approvers: &approvers,
    };
    let mut problems: Vec<String> = rule
        .problems(&known)
        .into_iter()
        .map(|(field, m)| format!("{field}: {m}"))
        .collect();
    let mut all: Vec<AccessRequestRule> = snapshot
        .rules
        .values()
        .filter(|r| Some(r.name.as_str()) != replacing)
        .map(|r| (**r).clone())
        .collect();
    all.push(rule.clone());
    for (a, b, role) in crate::model::overlapping(&all) {
        problems.push(format!(
            "rules `{a}` and `{b}` are of the same kind on resource role `{role}`"
        ));
    }
    if problems.is_empty() {
        Ok(rule)
    } else {
        Err(ApiError::invalid(problems.join("; ")))
    }
}

/// Creates a rule (admin).
#[utoipa::path(post, path = "/api/access-request-rules", tag = "access requests",
    request_body = NewAccessRequestRule,
    responses((status = 201, body = AccessRequestRuleView), Failures))]
pub(crate) async fn create_rule(
    State(s): State<ApiState>,
    caller: Caller,
    Body(new): Body<NewAccessRequestRule>,
) -> Result<(StatusCode, Json<AccessRequestRuleView>), ApiError> {
    caller.require_admin()?;
    let rule = checked(&s, new, None).await?;
    s.control.store.put_rule(&rule, false, true).await?;
    let object = format!("access_request_rule/{}", rule.name);
    changed(
        &s,
        &caller,
        "access_request_rule.create",
        &object,
        None::<&()>,
        Some(&rule),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(AccessRequestRuleView {
            rule,
            managed: false,
        }),
    ))
}

/// Replaces a rule (admin; not one the config declares).
#[utoipa::path(put, path = "/api/access-request-rules/{name}", tag = "access requests",
    params(("name" = String, Path, description = "rule name")),
    request_body = NewAccessRequestRule,
    responses((status = 200, body = AccessRequestRuleView), Failures))]
pub(crate) async fn replace_rule(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(new): Body<NewAccessRequestRule>,
) -> Result<Json<AccessRequestRuleView>, ApiError> {
    caller.require_admin()?;
    let before = find_rule(&s, &name).await?;
    not_managed(&s, before.managed, &format!("access request rule `{name}`"))?;
    if new.name != name {
        return Err(ApiError::invalid("a rule keeps its name"));
    }
    let rule = checked(&s, new, Some(&name)).await?;
    s.control.store.put_rule(&rule, false, false).await?;
    let object = format!("access_request_rule/{name}");
    changed(
        &s,
        &caller,
        "access_request_rule.update",
        &object,
        Some(&before.rule),
        Some(&rule),
    )
    .await?;
    Ok(Json(AccessRequestRuleView {
        rule,
        managed: false,
    }))
}

/// Deletes a rule (admin; not one the config declares).
#[utoipa::path(delete, path = "/api/access-request-rules/{name}", tag = "access requests",
    params(("name" = String, Path, description = "rule name")),
    responses((status = 204), Failures))]
pub(crate) async fn delete_rule(
    State(s): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let before = find_rule(&s, &name).await?;
    not_managed(&s, before.managed, &format!("access request rule `{name}`"))?;
    s.control.store.delete_rule(&name).await?;
    let object = format!("access_request_rule/{name}");
    changed(
        &s,
        &caller,
        "access_request_rule.delete",
        &object,
        Some(&before.rule),
        None::<&()>,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
