//! The control-plane vocabulary of SPEC §1 as types: users, groups, resources, resource
//! roles, access modes. Shared by config, store, access and the admin API; no I/O here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

mod guardrails;
mod masking;
mod requests;
pub use guardrails::*;
pub use masking::*;
pub use requests::*;

/// Checks a name (user, group, resource, resource role): 1–63 characters of ASCII letters,
/// digits, `_`, `-`, `.`, starting with a letter or digit.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_len = !name.is_empty() && name.len() <= 63;
    let ok_first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok_len && ok_first && ok_chars {
        Ok(())
    } else {
        Err(format!(
            "invalid name `{name}`: use 1-63 letters, digits, `_`, `-` or `.`, starting with a letter or digit"
        ))
    }
}

/// An upstream address is `host:port` (the host may be a name).
pub fn check_address(address: &str) -> Result<(), String> {
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(())
        }
        _ => Err(format!("`{address}` is not host:port")),
    }
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [&'static str] = &[$($text),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("`{other}` is not one of {}", Self::ALL.join(", "))),
                }
            }
        }
    };
}

pub(crate) use string_enum;

string_enum!(
    /// Only `active` users can log in.
    Status { Active => "active", Inactive => "inactive", Invited => "invited" }
);
string_enum!(
    /// `admin` manages everything and bypasses group checks; `auditor` reads; `standard` uses.
    Role { Admin => "admin", Auditor => "auditor", Standard => "standard" }
);
string_enum!(
    /// Which wire protocol a resource speaks.
    Protocol { Postgres => "postgres", Mysql => "mysql" }
);
string_enum!(
    /// Upstream TLS per resource.
    TlsMode { Disable => "disable", Prefer => "prefer", Require => "require", VerifyFull => "verify-full" }
);
string_enum!(
    /// How a session reaches a resource role.
    AccessMode { Native => "native", Web => "web", Runbooks => "runbooks" }
);

/// The access modes enabled on a resource role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessModes {
    #[serde(default)]
    pub native: bool,
    #[serde(default)]
    pub web: bool,
    #[serde(default)]
    pub runbooks: bool,
}

impl Default for AccessModes {
    fn default() -> Self {
        AccessModes {
            native: true,
            web: false,
            runbooks: false,
        }
    }
}

impl AccessModes {
    pub fn allows(&self, mode: AccessMode) -> bool {
        match mode {
            AccessMode::Native => self.native,
            AccessMode::Web => self.web,
            AccessMode::Runbooks => self.runbooks,
        }
    }
}

/// A user: the one definition that config declarations, store records, the snapshot's
/// entries, API views and the CLI share (SPEC §1). Credentials live beside it, never in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub display_name: String,
    pub status: Status,
    pub role: Role,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// An upstream database server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Resource {
    pub name: String,
    pub protocol: Protocol,
    pub address: String,
    pub tls: TlsMode,
}

/// A named way to reach a resource. Its upstream secret is never part of it; `user` (the
/// upstream user's name) is shown to admins and auditors only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResourceRole {
    pub name: String,
    pub resource: String,
    pub database: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    pub access_modes: AccessModes,
    /// PostgreSQL startup parameters (and `options` settings) a client may send through
    /// this role; absent: `DEFAULT_FORWARD_OPTIONS`. `role` and `session_authorization`
    /// never pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_options: Option<Vec<String>>,
}

/// The startup parameters a resource role forwards unless it says otherwise: what drivers
/// send to set up a session's formatting and timeouts, nothing that changes who it is.
pub const DEFAULT_FORWARD_OPTIONS: &[&str] = &[
    "application_name",
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "extra_float_digits",
    "search_path",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
];

/// Settings no resource role forwards: they would run the session as someone else.
pub const NEVER_FORWARDED: &[&str] = &["role", "session_authorization"];

/// A `forward_options` list may not name what `NEVER_FORWARDED` holds.
pub fn check_forward_options(list: &[String]) -> Result<(), String> {
    match list
        .iter()
        .find(|n| NEVER_FORWARDED.iter().any(|x| x.eq_ignore_ascii_case(n)))
    {
        Some(n) => Err(format!(
            "`{n}` cannot be forwarded: it would run the session as another database role"
        )),
        None => Ok(()),
    }
}

/// Derefs a wrapper (a view, a record, an entry) to the entity it carries, so `view.name`
/// reads the entity's field.
macro_rules! carries {
    ($wrapper:ty => $field:ident : $entity:ty) => {
        impl std::ops::Deref for $wrapper {
            type Target = $entity;
            fn deref(&self) -> &$entity {
                &self.$field
            }
        }
    };
}
pub(crate) use carries;

/// A user as the API shows it: the user, whether a password is set, whether the config
/// file owns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserView {
    #[serde(flatten)]
    pub user: User,
    pub has_password: bool,
    pub managed: bool,
}
carries!(UserView => user: User);

/// A group with its members and the resource roles it is granted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupView {
    pub name: String,
    pub members: Vec<String>,
    #[serde(default)]
    pub resource_roles: Vec<String>,
    pub managed: bool,
}

/// A resource as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResourceView {
    #[serde(flatten)]
    pub resource: Resource,
    pub managed: bool,
}
carries!(ResourceView => resource: Resource);

/// A resource role as the API shows it: the upstream secret is never included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResourceRoleView {
    #[serde(flatten)]
    pub role: ResourceRole,
    pub managed: bool,
}
carries!(ResourceRoleView => role: ResourceRole);

/// A personal access token's metadata (never its value or hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: String,
    pub user: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("orders-ro").is_ok());
        assert!(check_name("a.b_c").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("-x").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"x".repeat(64)).is_err());
    }

    #[test]
    fn enums_round_trip() {
        assert_eq!("verify-full".parse::<TlsMode>(), Ok(TlsMode::VerifyFull));
        assert_eq!(Status::Invited.to_string(), "invited");
        assert!("root".parse::<Role>().is_err());
    }
}
