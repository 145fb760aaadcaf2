//! Access requests in the decision: the rules that govern a user's access to a resource
//! role, the just-in-time grants that satisfy them, who may vote on a request and when
//! the votes approve it. Pure, over the snapshot (and the clock, for grants).

use std::sync::Arc;

use super::Denied;
use crate::model::{AccessRequest, AccessRequestRule, RequestKind, RequestStatus, Role, Vote};
use crate::snapshot::{Snapshot, UserEntry};

/// The rule of `kind` that governs `user`'s access to `resource_role`, if any.
pub fn governing(
    snapshot: &Snapshot,
    user: &UserEntry,
    resource_role: &str,
    kind: RequestKind,
) -> Option<Arc<AccessRequestRule>> {
    let mut rules: Vec<_> = snapshot
        .rules
        .values()
        .filter(|r| r.kind == kind && r.governs(resource_role, &user.groups))
        .collect();
    rules.sort_by(|a, b| a.name.cmp(&b.name));
    rules.first().map(|r| Arc::clone(r))
}

/// Whether `user` holds a just-in-time grant on `resource_role` now.
pub fn granted(snapshot: &Snapshot, user: &str, resource_role: &str) -> bool {
    snapshot
        .grants
        .get(&(user.to_owned(), resource_role.to_owned()))
        .is_some_and(|until| *until > crate::clock::now())
}

/// The rules on top of access control: a just-in-time rule needs a live grant; a
/// per-command rule lets nothing through but an approved command (`command_approved`).
pub(super) fn required(
    snapshot: &Snapshot,
    user: &UserEntry,
    resource_role: &str,
    command_approved: bool,
) -> Result<(), Denied> {
    if let Some(rule) = governing(snapshot, user, resource_role, RequestKind::Jit)
        && !granted(snapshot, &user.name, resource_role)
    {
        return Err(Denied::ApprovalRequired {
            rule: rule.name.clone(),
            kind: RequestKind::Jit,
        });
    }
    if !command_approved
        && let Some(rule) = governing(snapshot, user, resource_role, RequestKind::Command)
    {
        return Err(Denied::ApprovalRequired {
            rule: rule.name.clone(),
            kind: RequestKind::Command,
        });
    }
    Ok(())
}

/// Why a vote is not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VoteRefused {
    #[error("nobody approves their own request (break-glass groups are the way to go faster)")]
    OwnRequest,
    #[error("only members of the rule's approver groups (or admins) vote on this request")]
    NotApprover,
    #[error("you have voted on this request already")]
    AlreadyVoted,
    #[error("the request is {0}, not pending")]
    NotPending(RequestStatus),
}

/// The rule's approver groups `voter` is in; an admin may vote without being in any.
pub fn may_vote(
    snapshot: &Snapshot,
    voter: &str,
    request: &AccessRequest,
    rule: &AccessRequestRule,
) -> Result<Vec<String>, VoteRefused> {
    if request.status != RequestStatus::Pending {
        return Err(VoteRefused::NotPending(request.status));
    }
    if voter == request.requester {
        return Err(VoteRefused::OwnRequest);
    }
    if request.votes.iter().any(|v| v.approver == voter) {
        return Err(VoteRefused::AlreadyVoted);
    }
    let user = snapshot.users.get(voter).ok_or(VoteRefused::NotApprover)?;
    let groups: Vec<String> = rule
        .approver_groups
        .iter()
        .filter(|g| user.groups.contains(g))
        .cloned()
        .collect();
    if groups.is_empty() && user.role != Role::Admin {
        return Err(VoteRefused::NotApprover);
    }
    Ok(groups)
}

/// The votes counted against a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    pub approvals: u32,
    pub needed: u32,
    /// Approver groups (an all-groups rule) with no approval yet.
    pub missing_groups: Vec<String>,
    pub denied: bool,
}

impl Tally {
    pub fn approved(&self) -> bool {
        !self.denied && self.approvals >= self.needed && self.missing_groups.is_empty()
    }
}

/// Distinct approvers, each approver group's approval when the rule wants all of them;
/// one denial decides.
pub fn tally(rule: &AccessRequestRule, votes: &[Vote]) -> Tally {
    let approving: Vec<&Vote> = votes.iter().filter(|v| v.approve).collect();
    let missing_groups = if rule.all_approver_groups {
        rule.approver_groups
            .iter()
            .filter(|g| !approving.iter().any(|v| v.groups.contains(g)))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    Tally {
        approvals: approving.len() as u32,
        needed: rule.min_approvals,
        missing_groups,
        denied: votes.iter().any(|v| !v.approve),
    }
}

/// Whether `user`'s requests under `rule` are approved at once (break-glass).
pub fn breaks_glass(user: &UserEntry, rule: &AccessRequestRule) -> bool {
    rule.break_glass_groups
        .iter()
        .any(|g| user.groups.contains(g))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], min: u32, all: bool) -> AccessRequestRule {
        AccessRequestRule {
            name: "r".into(),
            resource_roles: vec!["rr".into()],
            kind: RequestKind::Jit,
            requester_groups: vec![],
            approver_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            min_approvals: min,
            all_approver_groups: all,
            max_duration_s: Some(3600),
            reason_required: true,
            break_glass_groups: vec![],
        }
    }

    fn vote(who: &str, approve: bool, groups: &[&str]) -> Vote {
        Vote {
            approver: who.into(),
            approve,
            comment: String::new(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            at: 0,
        }
    }

    #[test]
    fn n_of_m_across_groups_and_one_denial_decides() {
        let r = rule(&["leads", "security"], 2, true);
        let one = [vote("ann", true, &["leads"])];
        assert!(!tally(&r, &one).approved());
        let same_group = [vote("ann", true, &["leads"]), vote("bea", true, &["leads"])];
        let t = tally(&r, &same_group);
        assert_eq!((t.approvals, t.approved()), (2, false));
        assert_eq!(t.missing_groups, ["security"]);
        let both = [
            vote("ann", true, &["leads"]),
            vote("sec", true, &["security"]),
        ];
        assert!(tally(&r, &both).approved());
        let denied = [
            vote("ann", true, &["leads"]),
            vote("sec", false, &["security"]),
        ];
        assert!(tally(&r, &denied).denied);
        assert!(!tally(&r, &denied).approved());
        let any = rule(&["leads", "security"], 2, false);
        assert!(tally(&any, &same_group).approved());
    }
}
