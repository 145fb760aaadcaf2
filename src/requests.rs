//! Access requests at work: a user asks (just-in-time, or a one-off / runbook run held for
//! approval), approvers vote, the gateway expires what nobody decided and grants whose
//! time is up, an admin revokes, the requester cancels or runs an approved command once.
//! Who may do what is `access::approval`'s; each change is one store transaction, an
//! `access_request` event, a webhook, and (for grants) a fresh snapshot — so live
//! sessions on a grant that ended are ended by the registry like any lost access.

use std::sync::Arc;
use std::time::Duration;

use crate::access::approval::{self, VoteRefused};
use crate::audit::{Channel, Common, Kind, Mode};
use crate::model::{
    AccessRequest, AccessRequestRule, AccessRequestView, HeldWork, RequestKind, RequestStatus, Vote,
};
use crate::session::Gateway;
use crate::snapshot::{Snapshot, UserEntry};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    /// The request is not in a state for this.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<VoteRefused> for RequestError {
    fn from(e: VoteRefused) -> RequestError {
        match e {
            VoteRefused::NotPending(_) | VoteRefused::AlreadyVoted => {
                RequestError::Conflict(e.to_string())
            }
            VoteRefused::OwnRequest | VoteRefused::NotApprover => {
                RequestError::Forbidden(e.to_string())
            }
        }
    }
}

type Result<T> = std::result::Result<T, RequestError>;

/// A new request: who asks, for what, why.
pub struct Ask {
    pub resource_role: String,
    pub kind: RequestKind,
    pub reason: String,
    /// Just-in-time: how long (default: the rule's longest).
    pub duration: Option<Duration>,
    /// Per command: what will run.
    pub work: Option<HeldWork>,
}

/// Files a request for `user`; approved at once when the user is in the rule's
/// break-glass groups.
pub async fn create(gw: &Arc<Gateway>, user: &UserEntry, ask: Ask) -> Result<AccessRequest> {
    let snapshot = gw.control.snapshot();
    let role = &ask.resource_role;
    if crate::access::reachable_modes(&snapshot, &user.name, role).is_empty() {
        return Err(RequestError::Forbidden(format!(
            "you cannot use resource role `{role}`: access control comes before any request"
        )));
    }
    let rule = approval::governing(&snapshot, user, role, ask.kind).ok_or_else(|| {
        RequestError::Invalid(format!(
            "no {} access request rule governs your access to `{role}`: no request is needed",
            ask.kind
        ))
    })?;
    if rule.reason_required && ask.reason.trim().is_empty() {
        return Err(RequestError::Invalid(format!(
            "rule `{}` needs a reason",
            rule.name
        )));
    }
    let duration_s = match ask.kind {
        RequestKind::Jit => Some(jit_duration(&rule, ask.duration)?),
        RequestKind::Command => None,
    };
    let now = crate::clock::now();
    let mut request = AccessRequest {
        id: uuid::Uuid::new_v4().to_string(),
        requester: user.name.clone(),
        resource_role: role.clone(),
        rule: rule.name.clone(),
        kind: ask.kind,
        status: RequestStatus::Pending,
        reason: ask.reason,
        duration_s,
        work: ask.work,
        votes: Vec::new(),
        break_glass: false,
        created_at: now,
        expires_at: now + pending_timeout(gw),
        decided_at: None,
        closed_by: None,
        session_id: None,
    };
    let glass = approval::breaks_glass(user, &rule);
    if glass {
        request.break_glass = true;
        approve(gw, &mut request, now);
        tracing::warn!(request = %request.id, user = %user.name, resource_role = %role, rule = %rule.name, "BREAK-GLASS access request: approved at once");
    }
    gw.control.store.create_request(&request).await?;
    announce(gw, &request, "created", &user.name, &request.reason.clone()).await;
    if glass {
        announce(
            gw,
            &request,
            "break_glass",
            &user.name,
            &request.reason.clone(),
        )
        .await;
    }
    published(gw).await;
    Ok(request)
}

/// The grant's length: what was asked (the rule's longest by default), never longer.
fn jit_duration(rule: &AccessRequestRule, asked: Option<Duration>) -> Result<u64> {
    let max = rule.max_duration_s.unwrap_or(3600);
    let asked = asked.map_or(max, |d| d.as_secs());
    if asked == 0 {
        return Err(RequestError::Invalid(
            "the duration must be more than 0s".into(),
        ));
    }
    if asked > max {
        return Err(RequestError::Invalid(format!(
            "rule `{}` grants at most {}",
            rule.name,
            crate::clock::human_duration(max)
        )));
    }
    Ok(asked)
}

fn pending_timeout(gw: &Gateway) -> i64 {
    gw.control
        .config()
        .access_requests
        .pending_timeout
        .as_secs() as i64
}

/// Approved now: a just-in-time grant runs from now for its duration (capped by the
/// rule as it is now); an approved command may run until the pending timeout.
fn approve(gw: &Gateway, r: &mut AccessRequest, now: i64) {
    r.status = RequestStatus::Approved;
    r.decided_at = Some(now);
    r.expires_at = match r.duration_s {
        Some(d) => {
            let max = gw
                .control
                .snapshot()
                .rules
                .get(&r.rule)
                .and_then(|rule| rule.max_duration_s)
                .unwrap_or(d);
            now + d.min(max) as i64
        }
        None => now + pending_timeout(gw),
    };
}

/// A vote on a pending request: decided when the rule's approvals are in, or by one
/// denial.
pub async fn vote(
    gw: &Arc<Gateway>,
    voter: &str,
    id: &str,
    approve_it: bool,
    comment: String,
) -> Result<AccessRequest> {
    let snapshot = gw.control.snapshot();
    let now = crate::clock::now();
    let changed = gw
        .control
        .store
        .update_request(id, |r| -> Result<()> {
            let rule = snapshot.rules.get(&r.rule).ok_or_else(|| {
                RequestError::Conflict(format!("rule `{}` no longer exists", r.rule))
            })?;
            let groups = approval::may_vote(&snapshot, voter, r, rule)?;
            r.votes.push(Vote {
                approver: voter.to_owned(),
                approve: approve_it,
                comment: comment.clone(),
                groups,
                at: now,
            });
            let tally = approval::tally(rule, &r.votes);
            if tally.denied {
                r.status = RequestStatus::Denied;
                r.decided_at = Some(now);
            } else if tally.approved() {
                approve(gw, r, now);
            }
            Ok(())
        })
        .await??;
    let state = match changed.status {
        RequestStatus::Approved => "approved",
        RequestStatus::Denied => "denied",
        _ => "voted",
    };
    announce(gw, &changed, state, voter, &comment).await;
    published(gw).await;
    Ok(changed)
}

/// Revoked by an admin (a grant ends now; the live sessions on it end within a second),
/// or cancelled by its requester.
pub async fn close(
    gw: &Arc<Gateway>,
    by: &str,
    id: &str,
    revoke: bool,
    reason: String,
) -> Result<AccessRequest> {
    let changed = gw
        .control
        .store
        .update_request(id, |r| -> Result<()> {
            let open = matches!(r.status, RequestStatus::Pending | RequestStatus::Approved);
            if !open {
                return Err(RequestError::Conflict(format!(
                    "the request is {}",
                    r.status
                )));
            }
            if !revoke && r.requester != by {
                return Err(RequestError::Forbidden(
                    "only the requester cancels a request".into(),
                ));
            }
            r.status = if revoke {
                RequestStatus::Revoked
            } else {
                RequestStatus::Cancelled
            };
            r.closed_by = Some(by.to_owned());
            r.decided_at.get_or_insert(crate::clock::now());
            Ok(())
        })
        .await??;
    let state = if revoke { "revoked" } else { "cancelled" };
    announce(gw, &changed, state, by, &reason).await;
    published(gw).await;
    Ok(changed)
}

/// Takes an approved command for its one run: `executed` in the store from now on (so it
/// runs at most once, on any instance); `check` refuses it first (a changed runbook, say).
/// Returns the approval as it stood, for `access::decide_approved`.
pub async fn take_for_run(
    gw: &Arc<Gateway>,
    by: &str,
    id: &str,
    check: impl FnOnce(&AccessRequest) -> Result<()>,
) -> Result<AccessRequest> {
    let now = crate::clock::now();
    let taken = gw
        .control
        .store
        .update_request(id, |r| -> Result<()> {
            if r.requester != by {
                return Err(RequestError::Forbidden(
                    "only the requester runs an approved command".into(),
                ));
            }
            if r.kind != RequestKind::Command {
                return Err(RequestError::Invalid(
                    "a just-in-time request has nothing to run".into(),
                ));
            }
            match r.status {
                RequestStatus::Approved if r.expires_at > now => {}
                RequestStatus::Approved => {
                    return Err(RequestError::Conflict("the approval has expired".into()));
                }
                other => {
                    return Err(RequestError::Conflict(format!(
                        "the request is {other}, not approved"
                    )));
                }
            }
            check(r)?;
            r.status = RequestStatus::Executed;
            Ok(())
        })
        .await??;
    Ok(AccessRequest {
        status: RequestStatus::Approved,
        ..taken
    })
}

/// A taken approval whose run never started (refused, or the database unreachable): it
/// is approved again.
pub async fn untake(gw: &Arc<Gateway>, id: &str) {
    let restored = gw
        .control
        .store
        .update_request(id, |r| -> std::result::Result<(), ()> {
            if r.status != RequestStatus::Executed || r.session_id.is_some() {
                return Err(());
            }
            r.status = RequestStatus::Approved;
            Ok(())
        })
        .await;
    if let Err(e) = restored {
        tracing::warn!(request = %id, error = %e, "could not give an unused approval back");
    }
}

/// After an approved command ran: the session it ran in.
pub async fn executed(gw: &Arc<Gateway>, mut taken: AccessRequest, session_id: String) {
    taken.status = RequestStatus::Executed;
    let id = taken.id.clone();
    let stored = gw
        .control
        .store
        .update_request(&id, |r| -> std::result::Result<(), ()> {
            r.session_id = Some(session_id.clone());
            Ok(())
        })
        .await;
    if let Err(e) = stored {
        tracing::warn!(request = %id, error = %e, "could not record the session of an executed request");
    }
    taken.session_id = Some(session_id);
    let requester = taken.requester.clone();
    announce(gw, &taken, "executed", &requester, "").await;
}

/// Ends what is due: undecided requests past the pending timeout, grants whose time is
/// up, approved commands never run. Every instance runs it; each change happens once.
pub async fn sweep(gw: &Arc<Gateway>) {
    let now = crate::clock::now();
    let due = match gw.control.store.due_requests(now).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the access requests that are due");
            return;
        }
    };
    let mut any = false;
    for r in due {
        let expired = gw
            .control
            .store
            .update_request(&r.id, |r| -> std::result::Result<(), ()> {
                let open = matches!(r.status, RequestStatus::Pending | RequestStatus::Approved);
                if !open || r.expires_at > now {
                    return Err(()); // decided or extended elsewhere
                }
                r.status = RequestStatus::Expired;
                Ok(())
            })
            .await;
        if let Ok(Ok(r)) = expired {
            let why = if r.decided_at.is_some() {
                "its time is up"
            } else {
                "nobody decided in time"
            };
            announce(gw, &r, "expired", "gateway", why).await;
            any = true;
        }
    }
    if any {
        published(gw).await;
    }
}

/// Publishes the new snapshot on this instance now (others poll the store).
async fn published(gw: &Gateway) {
    if let Err(e) = gw.control.refresh().await {
        tracing::warn!(error = %e, "could not publish the access request change");
    }
}

/// The `access_request` event and the webhook of one change.
async fn announce(gw: &Gateway, r: &AccessRequest, state: &str, by: &str, reason: &str) {
    let common = Common {
        user: by.to_owned(),
        resource_role: r.resource_role.clone(),
        mode: Mode::Admin,
        protocol: Channel::Http,
        ..Default::default()
    };
    let kind = Kind::AccessRequest {
        request_id: r.id.clone(),
        rule: r.rule.clone(),
        request_kind: r.kind,
        resource_role: r.resource_role.clone(),
        requester: r.requester.clone(),
        state: state.to_owned(),
        by: by.to_owned(),
        reason: reason.to_owned(),
        break_glass: r.break_glass,
    };
    gw.record(Arc::new(common), kind).await;
    let view = view(&gw.control.snapshot(), r.clone());
    let payload = serde_json::json!({
        "event": format!("access_request.{state}"),
        "by": by,
        "reason": reason,
        "instance": &*gw.instance,
        "request": view,
    });
    gw.notifier
        .send(&format!("access_request.{state}"), &payload);
}

/// A request with its votes counted against its rule.
pub fn view(snapshot: &Snapshot, request: AccessRequest) -> AccessRequestView {
    let (approvals, approvals_needed, groups_missing) = match snapshot.rules.get(&request.rule) {
        Some(rule) => {
            let t = approval::tally(rule, &request.votes);
            (t.approvals, t.needed, t.missing_groups)
        }
        None => (0, 0, Vec::new()),
    };
    AccessRequestView {
        request,
        approvals,
        approvals_needed,
        groups_missing,
    }
}

/// Runs `sweep` every second until the process ends.
pub fn spawn_sweeper(gw: &Arc<Gateway>) -> tokio::task::JoinHandle<()> {
    let gw = Arc::clone(gw);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            sweep(&gw).await;
        }
    })
}
