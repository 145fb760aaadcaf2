//! Access requests (SPEC §1): rules that put approval on top of access control — for a
//! time (just-in-time) or per command — and the requests made under them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{FromStr, fmt, string_enum};

string_enum!(
    /// What a rule asks approval for: a time-bound grant, or each command.
    RequestKind { Jit => "jit", Command => "command" }
);
string_enum!(
    /// Where a request stands.
    RequestStatus {
        Pending => "pending",
        Approved => "approved",
        Denied => "denied",
        Expired => "expired",
        Revoked => "revoked",
        Cancelled => "cancelled",
        Executed => "executed",
    }
);

/// A rule: on these resource roles, these requesters need approval from these approvers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessRequestRule {
    pub name: String,
    /// At least one.
    pub resource_roles: Vec<String>,
    pub kind: RequestKind,
    /// Whose access the rule governs (empty: everyone who passes access control).
    pub requester_groups: Vec<String>,
    pub approver_groups: Vec<String>,
    /// Distinct approvers needed.
    pub min_approvals: u32,
    /// Each approver group must approve at least once.
    pub all_approver_groups: bool,
    /// The longest grant (just-in-time rules), seconds.
    pub max_duration_s: Option<u64>,
    pub reason_required: bool,
    /// Their requests are approved at once, flagged `break_glass` and logged loudly.
    pub break_glass_groups: Vec<String>,
}

impl AccessRequestRule {
    /// Whether the rule names `group` anywhere.
    pub fn names_group(&self, group: &str) -> bool {
        [
            &self.requester_groups,
            &self.approver_groups,
            &self.break_glass_groups,
        ]
        .iter()
        .any(|list| list.iter().any(|g| g == group))
    }

    /// Whether the rule governs `groups`' access to `resource_role`.
    pub fn governs(&self, resource_role: &str, groups: &[String]) -> bool {
        self.resource_roles.iter().any(|r| r == resource_role)
            && (self.requester_groups.is_empty()
                || self.requester_groups.iter().any(|g| groups.contains(g)))
    }
}

/// A rule as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessRequestRuleView {
    #[serde(flatten)]
    pub rule: AccessRequestRule,
    /// Declared in the config file (read-only through the API).
    pub managed: bool,
}

/// What a per-command request holds: exactly what will run once approved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HeldWork {
    /// A one-off's text and parameters.
    Statement {
        statement: String,
        #[schema(value_type = Vec<Object>)]
        params: Vec<Value>,
    },
    /// A runbook as reviewed (its file's hash) with its parameters.
    Runbook {
        name: String,
        sha256: String,
        #[schema(value_type = Object)]
        params: Map<String, Value>,
    },
}

/// One approver's vote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Vote {
    pub approver: String,
    pub approve: bool,
    /// The approver's comment, or a denial's reason.
    pub comment: String,
    /// The rule's approver groups the approver is in (what an all-groups rule counts).
    pub groups: Vec<String>,
    pub at: i64,
}

/// A request, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessRequest {
    pub id: String,
    pub requester: String,
    pub resource_role: String,
    pub rule: String,
    pub kind: RequestKind,
    pub status: RequestStatus,
    pub reason: String,
    /// Just-in-time: how long the grant lasts once approved, seconds.
    pub duration_s: Option<u64>,
    /// Per command: what runs once approved.
    pub work: Option<HeldWork>,
    pub votes: Vec<Vote>,
    pub break_glass: bool,
    pub created_at: i64,
    /// Pending: decided by then or expired. Approved: the grant ends (just-in-time), or
    /// the command must run, by then.
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    /// Who revoked or cancelled it, and why.
    pub closed_by: Option<String>,
    /// The session that ran an approved command.
    pub session_id: Option<String>,
}

/// A request as the API shows it: with the votes counted against its rule.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccessRequestView {
    #[serde(flatten)]
    pub request: AccessRequest,
    pub approvals: u32,
    pub approvals_needed: u32,
    /// Approver groups (an all-groups rule) that have not approved yet.
    pub groups_missing: Vec<String>,
}

/// What a rule names that must exist, and how many people may approve under it.
pub struct Known<'a> {
    pub resource_role: &'a dyn Fn(&str) -> bool,
    pub group: &'a dyn Fn(&str) -> bool,
    /// Distinct active users in any of these groups.
    pub approvers: &'a dyn Fn(&[String]) -> usize,
}

impl Known<'_> {
    /// A rule's name, resource roles (at least one, each existing) and groups (each
    /// existing), as (field, message).
    pub fn problems(
        &self,
        name: &str,
        resource_roles: &[String],
        groups: &[(&'static str, &Vec<String>)],
    ) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Err(e) = super::check_name(name) {
            out.push(("name", e));
        }
        if resource_roles.is_empty() {
            out.push(("resource_roles", "names no resource role".to_owned()));
        }
        for r in resource_roles.iter().filter(|r| !(self.resource_role)(r)) {
            out.push((
                "resource_roles",
                format!("resource role `{r}` does not exist"),
            ));
        }
        for (field, list) in groups {
            for g in list.iter().filter(|g| !(self.group)(g)) {
                out.push((*field, format!("group `{g}` does not exist")));
            }
        }
        out
    }
}

impl AccessRequestRule {
    /// Every problem with the rule on its own, as (field, message).
    pub fn problems(&self, known: &Known<'_>) -> Vec<(&'static str, String)> {
        let mut out = known.problems(
            &self.name,
            &self.resource_roles,
            &[
                ("requester_groups", &self.requester_groups),
                ("approver_groups", &self.approver_groups),
                ("break_glass_groups", &self.break_glass_groups),
            ],
        );
        if self.approver_groups.is_empty() {
            out.push(("approver_groups", "names no group".to_owned()));
        }
        if self.min_approvals == 0 {
            out.push(("min_approvals", "must be at least 1".to_owned()));
        }
        let approvers = (known.approvers)(&self.approver_groups);
        let needed = self.min_approvals as usize;
        if needed > approvers {
            out.push((
                "min_approvals",
                format!("{needed} approvals needed, but the approver groups have {approvers} active users"),
            ));
        }
        if self.all_approver_groups && needed < self.approver_groups.len() {
            out.push((
                "min_approvals",
                format!(
                    "{needed} is fewer than the {} approver groups that must each approve",
                    self.approver_groups.len()
                ),
            ));
        }
        match (self.kind, self.max_duration_s) {
            (RequestKind::Jit, None) => {
                out.push(("max_duration", "a just-in-time rule needs one".to_owned()))
            }
            (RequestKind::Command, Some(_)) => out.push((
                "max_duration",
                "only a just-in-time rule has one".to_owned(),
            )),
            _ => {}
        }
        out
    }
}

/// Rules of the same kind governing the same resource role (each pair once), which
/// would make one request ambiguous.
pub fn overlapping(rules: &[AccessRequestRule]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (i, a) in rules.iter().enumerate() {
        for b in &rules[i + 1..] {
            if a.kind != b.kind {
                continue;
            }
            for r in a
                .resource_roles
                .iter()
                .filter(|r| b.resource_roles.contains(r))
            {
                out.push((a.name.clone(), b.name.clone(), r.clone()));
            }
        }
    }
    out
}
