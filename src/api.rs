//! The admin API's contract: the bodies each call takes and the answers that are not one
//! of the vocabulary's views (`model`). The handlers (`admin`) and the command line
//! (`cli`) both use these types, so the two cannot drift; the OpenAPI document is
//! generated from them.

use serde::{Deserialize, Serialize};

use crate::model::{AccessMode, AccessModes, Protocol, Role, Status, TlsMode, TokenView};
pub use crate::protocol::exec::{Column, StatementError, StatementResult};
use crate::store::SessionRecord;

#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    /// Default `active`.
    pub status: Option<Status>,
    /// Default `standard`.
    pub role: Option<Role>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// At least 8 characters; write-only.
    pub password: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub status: Option<Status>,
    pub role: Option<Role>,
    pub groups: Option<Vec<String>>,
    /// A user may set its own password (with `current_password`); everything else needs
    /// an admin.
    pub password: Option<String>,
    /// The password being replaced, when a user sets its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_password: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    pub name: String,
}

/// `PATCH /api/groups/{name}`: a new name (members and grants move with it).
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupPatch {
    pub name: String,
}

/// `?force=true` on a delete: go ahead although the object is in use.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Force {
    #[serde(default)]
    pub force: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewResource {
    pub name: String,
    pub protocol: Protocol,
    pub address: String,
    pub tls: Option<TlsMode>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourcePatch {
    pub protocol: Option<Protocol>,
    pub address: Option<String>,
    pub tls: Option<TlsMode>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewResourceRole {
    pub name: String,
    pub resource: String,
    pub database: String,
    pub user: String,
    pub password: Option<String>,
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    pub access_modes: Option<AccessModes>,
    /// PostgreSQL startup parameters clients may send; absent: the default safe list.
    pub forward_options: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceRolePatch {
    pub resource: Option<String>,
    pub database: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub allowed_groups: Option<Vec<String>>,
    pub access_modes: Option<AccessModes>,
    /// `null` back to the default list; a list replaces it.
    #[serde(
        default,
        deserialize_with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub forward_options: Option<Option<Vec<String>>>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The groups allowed to use a resource role.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Access {
    pub groups: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub group: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub user: Option<String>,
    #[serde(default)]
    pub name: String,
    /// A duration like `30d`; none means the token does not expire.
    pub expires: Option<String>,
}

/// `POST /api/login`: a user name and password (or token) for a new token.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub user: String,
    pub password: String,
    /// The new token's name (default `portcullis login`).
    pub name: Option<String>,
    /// Its expiry, e.g. `30d` (the default).
    pub expires: Option<String>,
}

/// A new token: its metadata and, this once, its value.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub meta: TokenView,
    /// Shown once; only its hash is stored.
    pub token: String,
}

/// One user who can reach one resource role.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct Reach {
    pub user: String,
    pub resource_role: String,
    pub resource: String,
    pub modes: Vec<AccessMode>,
    /// The shared groups, or `["(admin)"]` when the admin role bypasses groups.
    pub via: Vec<String>,
}

/// One line of the access review: a user who can reach a resource role, how, and when
/// they last used it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, utoipa::ToSchema)]
pub struct ReviewRow {
    pub resource_role: String,
    pub resource: String,
    pub user: String,
    pub modes: Vec<AccessMode>,
    pub via: Vec<String>,
    /// Their last session on it (unix seconds), if any.
    pub last_used_at: Option<i64>,
    /// Not used within the review's window (`unused_for`).
    pub unused: bool,
}

/// What a reload answers.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reloaded {
    pub reloaded: bool,
    /// The control-plane revision now in force.
    pub revision: i64,
}

/// A session and its statements, read from the monitoring log.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionDetail {
    #[serde(flatten)]
    pub session: SessionRecord,
    pub statements: Vec<serde_json::Value>,
}

/// A one-off: `POST /api/resource-roles/{name}/exec`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    /// One statement, or several separated by `;` (run in order, stopping at the first
    /// error).
    pub statement: String,
    /// Values for `$1`, `$2`… (PostgreSQL) or `?` (MySQL), bound by the server; only with
    /// a single statement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub params: Vec<serde_json::Value>,
    /// Rows kept per statement (default `oneoffs.max_rows`, at most 100000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<usize>,
    /// How long a statement may run before it is cancelled on the server, e.g. `30s`
    /// (default `oneoffs.timeout`, at most 1h).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// The session's application name (default `portcullis-exec`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
    /// Why: for the approvers, when the resource role holds commands for approval.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// A runbook run: `POST /api/runbooks/{name}/run`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunbookRun {
    pub resource_role: String,
    /// The parameters' values by name.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rows: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
    /// Why: for the approvers, when the resource role holds commands for approval.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// What a one-off or runbook run did: a result per statement run, up to the first that
/// failed.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Executed {
    /// The run's session (`portcullis sessions show ID`).
    pub session_id: String,
    pub results: Vec<StatementResult>,
    /// The index in `results` of the statement the run stopped at.
    pub failed: Option<usize>,
}

/// A just-in-time access request: `POST /api/access-requests`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccessRequest {
    pub resource_role: String,
    /// How long the access lasts once approved, e.g. `2h` (default: the rule's longest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default)]
    pub reason: String,
}

/// An approver's vote, a denial's reason, a revocation's reason.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    #[serde(default)]
    pub comment: String,
}

/// An access request rule as written to the API (`max_duration` like `8h`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccessRequestRule {
    pub name: String,
    pub resource_roles: Vec<String>,
    /// `jit` or `command`.
    pub kind: String,
    #[serde(default)]
    pub requester_groups: Vec<String>,
    #[serde(default)]
    pub approver_groups: Vec<String>,
    /// Default 1.
    pub min_approvals: Option<u32>,
    #[serde(default)]
    pub all_approver_groups: bool,
    pub max_duration: Option<String>,
    /// Default true.
    pub reason_required: Option<bool>,
    #[serde(default)]
    pub break_glass_groups: Vec<String>,
}

/// What a one-off or runbook run answered: its results, or (202) the request that holds
/// it for approval.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum RunAnswer {
    Ran(Executed),
    Held(Box<crate::model::AccessRequestView>),
}
