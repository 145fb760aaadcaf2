//! Wire protocols: bytes ⇄ messages, handshakes, the upstream logins and the pool's
//! resets. The bottom layer: imports nothing of the gateway's but `model` and `tls`
//! (never `relay`, `session`, `auth`, `access`, `audit` or `admin`).

pub mod exec;
pub mod mysql;
pub mod postgres;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpStream;

use crate::model::TlsMode;

/// How to reach an upstream: its TLS mode, and for any mode but `disable` the connector
/// and the server name to present.
pub struct TlsTarget {
    pub mode: TlsMode,
    pub connector: Option<tokio_rustls::TlsConnector>,
    pub name: Option<rustls::pki_types::ServerName<'static>>,
}

/// Whom the gateway logs in as: a resource role's upstream user, secret and database.
pub struct Credentials<'a> {
    pub user: &'a str,
    pub password: Option<&'a str>,
    pub database: &'a str,
}

/// A logged-in upstream connection of one protocol: how it logs in, and what the pool of
/// kept connections needs of it (reset, goodbye, a check that it is still quiet). The
/// upstream room (`crate::upstream`) drives these; it knows no protocol's bytes.
pub trait Upstream: Sized + Send + Sync + 'static {
    /// What the client side contributes to the login (startup parameters, capabilities).
    type Params: Send + Sync;
    type Error: std::error::Error + Send + Sync + 'static;

    /// The parameters a kept connection must have been logged in with to serve `params`.
    fn key_params(params: &Self::Params) -> Vec<(String, String)>;

    /// The login's parameters carrying who is behind the session (`user`), so the
    /// database's own views and logs can tell: PostgreSQL `application_name`, MySQL
    /// connect attributes.
    fn identified(params: &Self::Params, user: &str) -> Self::Params;

    /// Whether `error` means the server could not be reached (rather than that it refused).
    fn unreachable(error: &Self::Error) -> bool;

    /// Logs in over `tcp`, upgrading to TLS as `tls` says.
    fn login(
        tcp: TcpStream,
        tls: TlsTarget,
        creds: &Credentials<'_>,
        params: &Self::Params,
    ) -> impl Future<Output = Result<Self, Self::Error>> + Send;

    /// Back to a fresh session's state, in `database`; an error means: do not keep it.
    fn reset(&mut self, database: &str) -> impl Future<Output = std::io::Result<()>> + Send;

    /// Says goodbye in the protocol and closes.
    fn goodbye(self) -> impl Future<Output = ()> + Send;

    /// Open, and the server has said nothing since (an administrator's termination, say).
    fn silent(&mut self) -> bool;
}

/// `name (user via portcullis)` within `max` bytes, the client's own name kept first (cut
/// when the whole does not fit).
pub fn identified_name(name: &str, user: &str, max: usize) -> String {
    let suffix = if name.is_empty() {
        format!("{user} via portcullis")
    } else {
        format!(" ({user} via portcullis)")
    };
    let room = max.saturating_sub(suffix.len());
    let mut out = String::from(cut(name, room));
    out.push_str(&suffix);
    cut(&out, max).to_owned()
}

/// The longest prefix of `s` within `max` bytes, at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A statement's text from the wire: valid UTF-8 as it is (the common case, checked by
/// the fast validator), anything else with replacement characters.
pub fn text(bytes: &[u8]) -> Arc<str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Arc::from(s),
        Err(_) => Arc::from(String::from_utf8_lossy(bytes).as_ref()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_identity_fits_with_the_clients_name_first() {
        use super::identified_name;
        assert_eq!(
            identified_name("psql", "alice", 63),
            "psql (alice via portcullis)"
        );
        assert_eq!(identified_name("", "alice", 63), "alice via portcullis");
        let long = "é".repeat(40);
        let got = identified_name(&long, "alice", 63);
        assert!(
            got.len() <= 63 && got.ends_with(" (alice via portcullis)"),
            "{got}"
        );
        let user = "u".repeat(80);
        assert_eq!(identified_name("psql", &user, 63).len(), 63);
    }
}
