//! The one way to reach a database: `login` takes a `Permit` (so nothing reaches a
//! database without an access decision), hands out a kept connection when one matches
//! (`limits.idle_upstreams`), else connects, upgrades to TLS per the resource's mode and
//! logs in as the resource role's upstream user, in the protocol of the connection type
//! asked for. Native sessions, one-offs and runbook runs all come through here; a session
//! gives its connection back with `Upstreams::release`.

pub mod pool;

use std::time::Duration;

use tokio::net::TcpStream;

use crate::access::Permit;
use crate::config::Limits;
use crate::metrics::Metrics;
use crate::protocol::{self, Credentials, TlsTarget};
use crate::tls::UpstreamTls;
use pool::{Key, Pool};

pub use crate::protocol::mysql::upstream::Upstream as MysqlUpstream;
pub use crate::protocol::postgres::backend::Upstream as PostgresUpstream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the gateway could not log in upstream: whose fault it is is the database's.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("could not reach resource `{resource}`")]
    Unreachable {
        resource: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("resource `{resource}` refused the gateway's login")]
    Refused {
        resource: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A connection type the gateway logs in with, and the pool that keeps its kind.
pub trait Pooled: protocol::Upstream {
    fn pool(upstreams: &Upstreams) -> &Pool<Self>;
}

impl Pooled for PostgresUpstream {
    fn pool(upstreams: &Upstreams) -> &Pool<Self> {
        &upstreams.postgres
    }
}

impl Pooled for MysqlUpstream {
    fn pool(upstreams: &Upstreams) -> &Pool<Self> {
        &upstreams.mysql
    }
}

/// The upstream side every session shares: TLS client configs and the kept connections.
pub struct Upstreams {
    tls: UpstreamTls,
    postgres: Pool<PostgresUpstream>,
    mysql: Pool<MysqlUpstream>,
}

/// A logged-in connection lent to one session, and where it goes back.
pub struct Lease<C> {
    pub conn: C,
    /// What it is logged in as (resource role, credentials, client parameters).
    pub key: Key,
    /// It may be kept after the session (`limits.idle_upstreams`).
    pub keep: bool,
    /// Served by a kept connection (no login happened).
    pub reused: bool,
}

/// A lease without its connection, while a relay holds the connection in pieces.
pub struct Terms {
    key: Key,
    pub keep: bool,
    reused: bool,
}

impl<C> Lease<C> {
    pub fn split(self) -> (C, Terms) {
        let terms = Terms {
            key: self.key,
            keep: self.keep,
            reused: self.reused,
        };
        (self.conn, terms)
    }
}

impl Terms {
    pub fn rejoin<C>(self, conn: C) -> Lease<C> {
        Lease {
            conn,
            key: self.key,
            keep: self.keep,
            reused: self.reused,
        }
    }
}

impl Upstreams {
    pub fn new(limits: &Limits) -> Upstreams {
        Upstreams {
            tls: UpstreamTls::new(),
            postgres: Pool::new(limits),
            mysql: Pool::new(limits),
        }
    }

    /// Kept connections right now, of both protocols.
    pub fn kept(&self) -> usize {
        self.postgres.len() + self.mysql.len()
    }

    /// Logs in as the permit's resource role (or takes a kept connection that matches).
    pub async fn login<C: Pooled>(
        &self,
        permit: &Permit,
        params: &C::Params,
        metrics: &Metrics,
    ) -> Result<Lease<C>, UpstreamError> {
        let pool = C::pool(self);
        // Who is behind the session goes with the login, so the database can tell; a kept
        // connection serves only the same user again.
        let params = &C::identified(params, &permit.user().name);
        let key = Key::new(permit, C::key_params(params));
        let keep = pool.enabled();
        if let Some(conn) = keep.then(|| pool.take(&key)).flatten() {
            Metrics::inc(&metrics.upstreams_reused_total);
            return Ok(Lease {
                conn,
                key,
                keep,
                reused: true,
            });
        }
        let resource = permit.resource();
        let unreachable =
            |source: Box<dyn std::error::Error + Send + Sync>| UpstreamError::Unreachable {
                resource: resource.name.clone(),
                source,
            };
        let tcp = connect(&resource.address)
            .await
            .map_err(|e| unreachable(e.into()))?;
        let tls = TlsTarget {
            mode: resource.tls,
            connector: self.tls.connector(resource.tls),
            name: crate::tls::server_name(&resource.address),
        };
        let role = permit.resource_role();
        let creds = Credentials {
            user: &role.user,
            password: role.secret.as_ref().map(|s| s.expose()),
            database: &role.database,
        };
        match C::login(tcp, tls, &creds, params).await {
            Ok(conn) => Ok(Lease {
                conn,
                key,
                keep,
                reused: false,
            }),
            Err(e) if C::unreachable(&e) => Err(unreachable(e.into())),
            Err(e) => Err(UpstreamError::Refused {
                resource: resource.name.clone(),
                source: e.into(),
            }),
        }
    }

    /// A session's connection after its client said goodbye: kept when connections are
    /// kept and the session left it reusable (idle, outside a transaction), otherwise told
    /// goodbye.
    pub async fn release<C: Pooled>(&self, lease: Lease<C>, reusable: bool) {
        if lease.keep && reusable {
            C::pool(self).put(lease.key, lease.conn);
        } else {
            lease.conn.goodbye().await;
        }
    }

    /// The connection for a session that follows another on the same client connection
    /// (MySQL `COM_CHANGE_USER`): the old one, reset, when it is logged in as the new
    /// permit needs; otherwise a new login (and the old one told goodbye).
    pub async fn change<C: Pooled>(
        &self,
        mut old: Lease<C>,
        permit: &Permit,
        params: &C::Params,
        metrics: &Metrics,
    ) -> Result<Lease<C>, UpstreamError> {
        let identified = C::identified(params, &permit.user().name);
        if Key::new(permit, C::key_params(&identified)) == old.key
            && old
                .conn
                .reset(&permit.resource_role().database)
                .await
                .is_ok()
        {
            return Ok(old);
        }
        old.conn.goodbye().await;
        self.login(permit, params, metrics).await
    }

    /// MySQL: logs in beside a session as its `permit` and sends `statement` (a `KILL`
    /// aimed at that session's thread), as the `mysql` client's Ctrl-C does; the server's
    /// answer (an OK or ERR payload).
    pub async fn mysql_beside(
        &self,
        permit: &Permit,
        hello: &crate::protocol::mysql::handshake::ClientHello,
        statement: &str,
        metrics: &Metrics,
    ) -> Result<Vec<u8>, UpstreamError> {
        use crate::protocol::mysql::packet;
        let mut lease = self.login::<MysqlUpstream>(permit, hello, metrics).await?;
        let mut command = vec![0x03]; // COM_QUERY
        command.extend_from_slice(statement.as_bytes());
        let stream = &mut lease.conn.stream;
        let reply = match packet::write(stream, 0, &command).await {
            Ok(()) => packet::read(stream, packet::MAX_LOGIN_PACKET).await,
            Err(e) => Err(e),
        };
        match reply {
            Ok((_, reply)) => {
                self.release(lease, reply.first() == Some(&0x00)).await;
                Ok(reply)
            }
            Err(e) => {
                self.release(lease, false).await;
                Err(unreachable_error(permit, e))
            }
        }
    }

    /// Closes kept connections past `limits.idle_upstream_timeout`.
    pub fn sweep(&self) {
        self.postgres.sweep();
        self.mysql.sweep();
    }

    /// Says goodbye on every kept connection (at shutdown).
    pub async fn close(&self) {
        self.postgres.close().await;
        self.mysql.close().await;
    }
}

/// A TCP connection to `address` with `TCP_NODELAY`, or an error within 5 s.
fn unreachable_error(permit: &Permit, e: std::io::Error) -> UpstreamError {
    UpstreamError::Unreachable {
        resource: permit.resource().name.clone(),
        source: Box::new(e),
    }
}

pub(crate) async fn connect(address: &str) -> std::io::Result<TcpStream> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
        .await
        .map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("connecting to {address} timed out"),
            )
        })??;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}
