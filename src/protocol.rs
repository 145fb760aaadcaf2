//! Wire protocols: bytes ⇄ messages, handshakes and relay framing. Never imports
//! `access`, `audit` or `admin`; `session` drives these.

pub mod framer;
pub mod mysql;
pub mod postgres;

use std::sync::Arc;

/// Bind parameters as text (`None` for NULL), when known.
pub type Params = Option<Arc<[Option<String>]>>;

/// A finished statement, ready to become a `query` event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub statement: Arc<str>,
    pub op: &'static str,
    pub params: Params,
    pub duration_us: u64,
    pub rows: u64,
    pub error_code: Option<String>,
    /// The session's application name as the server reported it during this statement
    /// (PostgreSQL `SET application_name`: pgjdbc sets it that way after login).
    pub application_name: Option<Arc<str>>,
}

/// A statement's text from the wire: valid UTF-8 as it is (the common case, checked by
/// the fast validator), anything else with replacement characters.
pub fn text(bytes: &[u8]) -> Arc<str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Arc::from(s),
        Err(_) => Arc::from(String::from_utf8_lossy(bytes).as_ref()),
    }
}
