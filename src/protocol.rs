//! Wire protocols: bytes ⇄ messages, handshakes, the upstream logins and the pool's
//! resets. The bottom layer: imports nothing of the gateway's but `model` and `tls`
//! (never `relay`, `session`, `auth`, `access`, `audit` or `admin`).

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

/// A statement's text from the wire: valid UTF-8 as it is (the common case, checked by
/// the fast validator), anything else with replacement characters.
pub fn text(bytes: &[u8]) -> Arc<str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Arc::from(s),
        Err(_) => Arc::from(String::from_utf8_lossy(bytes).as_ref()),
    }
}
