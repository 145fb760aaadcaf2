//! The access decision (SPEC §1 "access control"): pure and synchronous over an immutable
//! `Snapshot`. `decide` is the only place a `Permit` is constructed; upstream login needs
//! one, so nothing reaches a database without passing here. No I/O, no tokio.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use crate::config::Secret;
use crate::model::{AccessMode, AccessModes, Protocol, Role, Status, TlsMode};

/// Password verifiers of one user (never the password).
#[derive(Clone, Debug, Default)]
pub struct Verifiers {
    /// `SCRAM-SHA-256$iter:salt$StoredKey:ServerKey`, PostgreSQL's format.
    pub scram: Option<String>,
    /// SHA1(SHA1(password)) for `mysql_native_password`.
    pub mysql_native: Option<Vec<u8>>,
    /// SHA256(SHA256(password)) for the `caching_sha2_password` fast path.
    pub mysql_sha2: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
pub struct UserEntry {
    pub name: String,
    pub email: String,
    pub display_name: String,
    pub status: Status,
    pub role: Role,
    pub groups: Vec<String>,
    pub verifiers: Verifiers,
    pub managed: bool,
}

#[derive(Clone, Debug)]
pub struct ResourceEntry {
    pub name: String,
    pub protocol: Protocol,
    pub address: String,
    pub tls: TlsMode,
    pub managed: bool,
}

#[derive(Clone, Debug)]
pub struct ResourceRoleEntry {
    pub name: String,
    pub resource: String,
    pub database: String,
    pub user: String,
    pub secret: Option<Secret>,
    pub allowed_groups: Vec<String>,
    pub access_modes: AccessModes,
    pub managed: bool,
}

/// A personal access token as sessions see it: found by the SHA-256 of its value.
#[derive(Clone, Debug)]
pub struct TokenEntry {
    pub id: String,
    pub user: String,
    pub expires_at: Option<i64>,
    /// The token's SCRAM verifier, with its user's salt.
    pub scram: Option<crate::auth::ScramVerifier>,
}

/// Everything a decision reads, published whole and swapped on change.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub revision: i64,
    pub users: HashMap<String, Arc<UserEntry>>,
    pub groups: HashSet<String>,
    pub resources: HashMap<String, Arc<ResourceEntry>>,
    pub resource_roles: HashMap<String, Arc<ResourceRoleEntry>>,
    /// Keyed by the hex SHA-256 of the token value.
    pub tokens: HashMap<String, TokenEntry>,
}

/// A user proven by a password or a token. Only `auth` makes these after verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub via_token: bool,
}

/// Permission to open one session on one resource role in one mode.
#[derive(Clone, Debug)]
pub struct Permit {
    user: Arc<UserEntry>,
    resource_role: Arc<ResourceRoleEntry>,
    resource: Arc<ResourceEntry>,
    mode: AccessMode,
}

impl Permit {
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
        }
    }
}

/// Active, and admin or sharing a group that still exists; the mode must be enabled.
pub fn decide(
    snapshot: &Snapshot,
    identity: &Identity,
    resource_role: &str,
    mode: AccessMode,
) -> Result<Permit, Denied> {
    let user = snapshot
        .users
        .get(&identity.user)
        .ok_or(Denied::UnknownUser)?;
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
    Ok(Permit {
        user: Arc::clone(user),
        resource_role: Arc::clone(role),
        resource: Arc::clone(resource),
        mode,
    })
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

fn shares_group(snapshot: &Snapshot, user: &UserEntry, role: &ResourceRoleEntry) -> bool {
    role.allowed_groups
        .iter()
        .any(|g| snapshot.groups.contains(g) && user.groups.contains(g))
}

/// Whether `user` may reach `resource_role` in some mode: the "who can reach what" view.
pub fn reachable_modes(snapshot: &Snapshot, user: &str, resource_role: &str) -> Vec<AccessMode> {
    let identity = Identity {
        user: user.to_owned(),
        via_token: false,
    };
    [AccessMode::Native, AccessMode::Web, AccessMode::Runbooks]
        .into_iter()
        .filter(|m| decide(snapshot, &identity, resource_role, *m).is_ok())
        .collect()
}

#[cfg(test)]
#[path = "access/tests.rs"]
mod tests;
