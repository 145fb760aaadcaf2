//! The access decision (SPEC §1 "access control") and the other policy questions the
//! gateway asks: pure and synchronous over an immutable `Snapshot`. `decide` is the only
//! place a `Permit` is constructed; upstream login needs one, so nothing reaches a
//! database without passing here. Who may end whose statement (`may_kill`) and what an
//! API caller's role allows (`api`) are answered here too. No I/O, no tokio.

use std::fmt;
use std::sync::Arc;

pub use crate::auth::Identity;
use crate::model::{
    AccessMode, AccessRequest, DEFAULT_FORWARD_OPTIONS, NEVER_FORWARDED, Protocol, RequestKind,
    RequestStatus, ResourceRole, Role, Status,
};
use crate::runbook::Runbook;
use crate::snapshot::{ResourceEntry, ResourceRoleEntry, Snapshot, UserEntry};

pub mod api;
pub mod approval;

/// Permission to open one session on one resource role in one mode.
#[derive(Clone, Debug)]
pub struct Permit {
    identity: Identity,
    user: Arc<UserEntry>,
    resource_role: Arc<ResourceRoleEntry>,
    resource: Arc<ResourceEntry>,
    mode: AccessMode,
    /// The approved command request this permit runs (per-command rules let it through).
    request: Option<String>,
}

impl Permit {
    /// Who the permit was decided for.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
    pub fn user(&self) -> &UserEntry {
        &self.user
    }
    pub fn resource_role(&self) -> &ResourceRoleEntry {
        &self.resource_role
    }
    pub fn resource(&self) -> &ResourceEntry {
        &self.resource
    }
    pub fn mode(&self) -> AccessMode {
        self.mode
    }

    /// The same question asked again against a newer snapshot (a live session, after a
    /// change): `Ok` while the user may still use the resource role in this mode, on a
    /// resource of the same protocol.
    pub fn recheck(&self, snapshot: &Snapshot) -> Result<(), Denied> {
        let role = &self.resource_role.name;
        let now = decide_with(
            snapshot,
            &self.identity,
            role,
            self.mode,
            self.request.is_some(),
        )?;
        if now.resource.protocol != self.resource.protocol {
            return Err(Denied::WrongProtocol {
                wanted: self.resource.protocol,
                resource: now.resource.protocol,
            });
        }
        Ok(())
    }
}

/// Why a request was refused; for the monitoring log, never for the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Denied {
    UnknownUser,
    NotActive(Status),
    UnknownResourceRole,
    NoSharedGroup,
    ModeDisabled(AccessMode),
    WrongProtocol {
        wanted: Protocol,
        resource: Protocol,
    },
    /// A startup parameter (or `options` setting) the resource role does not forward.
    StartupParameter(String),
    /// The runbook does not name this resource role.
    RunbookNotForRole,
    /// The runbook is limited to groups the user is not in.
    NotInRunbookGroups,
    /// An access request rule governs the user's access: it needs an approved request.
    ApprovalRequired {
        rule: String,
        kind: RequestKind,
    },
    /// An approved-command run whose request is not (or no longer) approved for it.
    RequestNotApproved(String),
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::UnknownUser => f.write_str("unknown user"),
            Denied::NotActive(s) => write!(f, "user is {s}"),
            Denied::UnknownResourceRole => f.write_str("unknown resource role"),
            Denied::NoSharedGroup => f.write_str("user shares no group with the resource role"),
            Denied::ModeDisabled(m) => {
                write!(f, "access mode {m} is disabled on the resource role")
            }
            Denied::WrongProtocol { wanted, resource } => {
                write!(f, "resource role is on a {resource} resource, not {wanted}")
            }
            Denied::StartupParameter(name) => write!(
                f,
                "startup parameter `{name}` is not forwarded by this resource role"
            ),
            Denied::RunbookNotForRole => {
                f.write_str("the runbook does not run on this resource role")
            }
            Denied::NotInRunbookGroups => {
                f.write_str("the user is in none of the runbook's groups")
            }
            Denied::ApprovalRequired { rule, kind } => {
                write!(
                    f,
                    "access request rule `{rule}` requires an approved {kind} request"
                )
            }
            Denied::RequestNotApproved(why) => write!(f, "the access request {why}"),
        }
    }
}

impl std::error::Error for Denied {}

/// Active, and admin or sharing a group that still exists; the mode must be enabled; and
/// the access request rules on the resource role satisfied (a live just-in-time grant; a
/// per-command rule lets only approved commands through, `decide_approved`).
pub fn decide(
    snapshot: &Snapshot,
    identity: &Identity,
    resource_role: &str,
    mode: AccessMode,
) -> Result<Permit, Denied> {
    decide_with(snapshot, identity, resource_role, mode, false)
}

fn decide_with(
    snapshot: &Snapshot,
    identity: &Identity,
    resource_role: &str,
    mode: AccessMode,
    command_approved: bool,
) -> Result<Permit, Denied> {
    let (user, role, resource) = check(snapshot, identity.user(), resource_role, mode)?;
    approval::required(snapshot, user, resource_role, command_approved)?;
    Ok(Permit {
        identity: identity.clone(),
        user: Arc::clone(user),
        resource_role: Arc::clone(role),
        resource: Arc::clone(resource),
        mode,
        request: None,
    })
}

/// The run of an approved per-command `request` (by its requester, before it expires):
/// access control in `mode` again, the just-in-time rules too, the command rule satisfied
/// by the approval.
pub fn decide_approved(
    snapshot: &Snapshot,
    identity: &Identity,
    request: &AccessRequest,
    mode: AccessMode,
) -> Result<Permit, Denied> {
    let refused = |why: &str| Err(Denied::RequestNotApproved(why.to_owned()));
    if request.requester != identity.user() {
        return refused("is someone else's");
    }
    if request.kind != RequestKind::Command || request.status != RequestStatus::Approved {
        return refused(&format!(
            "is {} {}, not an approved command",
            request.status, request.kind
        ));
    }
    if request.expires_at <= crate::clock::now() {
        return refused("has expired");
    }
    let mut permit = decide_with(snapshot, identity, &request.resource_role, mode, true)?;
    permit.request = Some(request.id.clone());
    Ok(permit)
}

/// `decide` for a native session arriving on the listener of `protocol`.
pub fn decide_native(
    snapshot: &Snapshot,
    identity: &Identity,
    resource_role: &str,
    protocol: Protocol,
) -> Result<Permit, Denied> {
    let permit = decide(snapshot, identity, resource_role, AccessMode::Native)?;
    if permit.resource.protocol != protocol {
        return Err(Denied::WrongProtocol {
            wanted: protocol,
            resource: permit.resource.protocol,
        });
    }
    Ok(permit)
}

/// A run of `runbook` on `resource_role`: access control in the `runbooks` mode (an
/// approved command request's run: `approved`), then the runbook's own limits (the
/// resource roles it names, its groups).
pub fn decide_runbook(
    snapshot: &Snapshot,
    identity: &Identity,
    runbook: &Runbook,
    resource_role: &str,
    approved: Option<&AccessRequest>,
) -> Result<Permit, Denied> {
    let mode = AccessMode::Runbooks;
    let permit = match approved {
        Some(request) => decide_approved(snapshot, identity, request, mode)?,
        None => decide(snapshot, identity, resource_role, mode)?,
    };
    if !runbook.runs_on(resource_role) {
        return Err(Denied::RunbookNotForRole);
    }
    if !runbook.groups.is_empty()
        && !runbook
            .groups
            .iter()
            .any(|g| permit.user.groups.contains(g))
    {
        return Err(Denied::NotInRunbookGroups);
    }
    Ok(permit)
}

/// The resource roles `identity` may use natively with `protocol`, by name: what a
/// client that named none is told it can name.
pub fn native_roles(snapshot: &Snapshot, identity: &Identity, protocol: Protocol) -> Vec<String> {
    let mut names: Vec<String> = snapshot
        .resource_roles
        .keys()
        .filter(|name| decide_native(snapshot, identity, name, protocol).is_ok())
        .cloned()
        .collect();
    names.sort();
    names
}

type Found<'a> = (
    &'a Arc<UserEntry>,
    &'a Arc<ResourceRoleEntry>,
    &'a Arc<ResourceEntry>,
);

/// The rule itself, for a user by name: `decide` (which makes the permit) and the
/// "who can reach what" view share it.
fn check<'a>(
    snapshot: &'a Snapshot,
    user: &str,
    resource_role: &str,
    mode: AccessMode,
) -> Result<Found<'a>, Denied> {
    let user = snapshot.users.get(user).ok_or(Denied::UnknownUser)?;
    if user.status != Status::Active {
        return Err(Denied::NotActive(user.status));
    }
    let role = snapshot
        .resource_roles
        .get(resource_role)
        .ok_or(Denied::UnknownResourceRole)?;
    let resource = snapshot
        .resources
        .get(&role.resource)
        .ok_or(Denied::UnknownResourceRole)?;
    if user.role != Role::Admin && !shares_group(snapshot, user, role) {
        return Err(Denied::NoSharedGroup);
    }
    if !role.access_modes.allows(mode) {
        return Err(Denied::ModeDisabled(mode));
    }
    Ok((user, role, resource))
}

fn shares_group(snapshot: &Snapshot, user: &UserEntry, role: &ResourceRoleEntry) -> bool {
    role.allowed_groups
        .iter()
        .any(|g| snapshot.groups.contains(g) && user.groups.contains(g))
}

/// A user who may hold a session at all (a control session, which reaches no resource
/// role): known and active.
pub fn active(snapshot: &Snapshot, identity: &Identity) -> Result<(), Denied> {
    let user = snapshot
        .users
        .get(identity.user())
        .ok_or(Denied::UnknownUser)?;
    match user.status {
        Status::Active => Ok(()),
        other => Err(Denied::NotActive(other)),
    }
}

/// Whether `user` may reach `resource_role` in some mode: the "who can reach what" view.
pub fn reachable_modes(snapshot: &Snapshot, user: &str, resource_role: &str) -> Vec<AccessMode> {
    [AccessMode::Native, AccessMode::Web, AccessMode::Runbooks]
        .into_iter()
        .filter(|m| check(snapshot, user, resource_role, *m).is_ok())
        .collect()
}

/// The client's startup settings a session may carry upstream: each must be in the
/// resource role's `forward_options` (or the default list), compared without case as
/// PostgreSQL does, and never `role` or `session_authorization`.
pub fn startup_settings(role: &ResourceRole, settings: &[(String, String)]) -> Result<(), Denied> {
    for (name, _) in settings {
        let listed = match &role.forward_options {
            Some(list) => list.iter().any(|n| n.eq_ignore_ascii_case(name)),
            None => DEFAULT_FORWARD_OPTIONS
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name)),
        };
        let never = NEVER_FORWARDED.iter().any(|n| n.eq_ignore_ascii_case(name));
        if !listed || never {
            return Err(Denied::StartupParameter(name.clone()));
        }
    }
    Ok(())
}

/// One side of a `KILL`: whose session it is, on which resource (`None`: a control
/// session, which reaches no resource itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KillParty {
    pub user: String,
    pub resource: Option<String>,
    pub admin: bool,
}

impl KillParty {
    /// A session under `permit`.
    pub fn of(permit: &Permit) -> KillParty {
        KillParty {
            user: permit.user().name.clone(),
            resource: Some(permit.resource().name.clone()),
            admin: permit.user().role == Role::Admin,
        }
    }

    /// A control session of `identity` (MySQL: the client's Ctrl-C, `mariadb-admin`).
    pub fn control(snapshot: &Snapshot, identity: &Identity) -> KillParty {
        let admin = snapshot
            .users
            .get(identity.user())
            .is_some_and(|u| u.role == Role::Admin);
        KillParty {
            user: identity.user().to_owned(),
            resource: None,
            admin,
        }
    }
}

/// A session may end another session's statement (MySQL `KILL`, PostgreSQL
/// `pg_cancel_backend`) only on the same resource, and only its own user's (admins:
/// anyone's on that resource). Every session of a resource role is the same database user
/// upstream, so without this any user could end everyone's work there. A control session
/// reaches its user's sessions on every resource (admins: everyone's).
pub fn may_kill(killer: &KillParty, target: &KillParty) -> bool {
    let resource = killer.resource.is_none() || killer.resource == target.resource;
    resource && (killer.admin || killer.user == target.user)
}

#[cfg(test)]
#[path = "access/tests.rs"]
mod tests;
