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
        FunctionCall => "function_call",
        InitDb => "init_db",
        FieldList => "field_list",
        ProcessKill => "process_kill",
        Statistics => "statistics",
        SetOption => "set_option",
        ResetConnection => "reset_connection",
        StmtReset => "stmt_reset",
        StmtFetch => "stmt_fetch",
        StmtClose => "stmt_close",
        StmtSendLongData => "stmt_send_long_data",
        Command => "command",
    }
);
string_enum!(
    /// How a statement ended.
    Status { Ok => "ok", Error => "error", Blocked => "blocked" }
);

/// A statement too long to keep whole in the log (over 1 MiB): its full length and the
/// SHA-256 of its full text, so the cut is visible and the full text provable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    pub len: u64,
    pub sha256: [u8; 32],
}

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

/// `statement_truncated: true`, the full length and the hex SHA-256, when cut; nothing
/// otherwise.
pub fn cut_fields<S: serde::Serializer>(
    cut: &Option<std::sync::Arc<Cut>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(None)?;
    if let Some(c) = cut {
        map.serialize_entry("statement_truncated", &true)?;
        map.serialize_entry("statement_length", &c.len)?;
        map.serialize_entry("statement_sha256", &hex::encode(c.sha256))?;
    }
    map.end()
}
