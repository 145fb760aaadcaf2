//! The monitoring log's enumerated fields (SPEC §6), as types: each serializes to the
//! string the log has always carried.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::model::{AccessMode, Protocol, string_enum};

string_enum!(
    /// What an event came through: a protocol listener or the admin API.
    Channel { Postgres => "postgres", Mysql => "mysql", Http => "http" }
);
string_enum!(
    /// A session's access mode, or `admin` for the admin API's own events.
    Mode { Native => "native", Web => "web", Runbooks => "runbooks", Admin => "admin" }
);
string_enum!(
    /// Who ended a session.
    EndedBy {
        Client => "client",
        Upstream => "upstream",
        Killed => "killed",
        Shutdown => "shutdown",
        Error => "error",
    }
);
string_enum!(
    /// How a statement reached the server.
    Op {
        Simple => "simple",
        Parse => "parse",
        Bind => "bind",
        Execute => "execute",
        ComQuery => "com_query",
        StmtPrepare => "stmt_prepare",
        StmtExecute => "stmt_execute",
        ChangeUser => "change_user",
    }
);
string_enum!(
    /// How a statement ended.
    Status { Ok => "ok", Error => "error" }
);

// The enums come from `string_enum!`, which takes no per-variant `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for Channel {
    fn default() -> Self {
        Channel::Http
    }
}

#[allow(clippy::derivable_impls)]
impl Default for Mode {
    fn default() -> Self {
        Mode::Native
    }
}

impl From<Protocol> for Channel {
    fn from(p: Protocol) -> Channel {
        match p {
            Protocol::Postgres => Channel::Postgres,
            Protocol::Mysql => Channel::Mysql,
        }
    }
}

impl From<AccessMode> for Mode {
    fn from(m: AccessMode) -> Mode {
        match m {
            AccessMode::Native => Mode::Native,
            AccessMode::Web => Mode::Web,
            AccessMode::Runbooks => Mode::Runbooks,
        }
    }
}
