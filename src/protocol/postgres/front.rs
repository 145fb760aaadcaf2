//! The client-facing PostgreSQL startup on pgwire: TLS negotiation, the startup message,
//! SCRAM/cleartext through `AuthDriver`, and the pieces `complete_authentication` calls
//! back into: the upstream's ParameterStatus values and proxy-issued cancel keys mapped
//! to the upstream's. Also the raw ErrorResponse used once the relay owns the socket.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use dashmap::DashMap;
use futures::SinkExt;
use pgwire::api::auth::ServerParameterProvider;
use pgwire::api::{ClientInfo, PidSecretKeyGenerator, RandomPidSecretKeyGenerator};
use pgwire::error::ErrorInfo;
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::startup::SecretKey;
use pgwire::tokio::server::{MaybeTls, PgWireMessageServerCodec};
use tokio_util::codec::Framed;

pub type PgFramed = Framed<MaybeTls, PgWireMessageServerCodec<()>>;

/// SQLSTATEs the gateway itself sends.
pub mod sqlstate {
    pub const INVALID_PASSWORD: &str = "28P01";
    pub const INVALID_AUTHORIZATION: &str = "28000";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const CONNECTION_FAILURE: &str = "08006";
    pub const CANNOT_CONNECT: &str = "08001";
    pub const REJECTED_CONNECTION: &str = "08004";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    pub const ADMIN_SHUTDOWN: &str = "57P01";
    pub const CANNOT_CONNECT_NOW: &str = "57P03";
    pub const INVALID_DATABASE: &str = "3D000";
}

/// Sends a FATAL ErrorResponse during startup and flushes it.
pub async fn send_fatal(framed: &mut PgFramed, code: &str, message: &str) {
    let info = ErrorInfo::new("FATAL".into(), code.into(), message.into());
    let _ = framed
        .send(PgWireBackendMessage::ErrorResponse(info.into()))
        .await;
}

/// ErrorResponse bytes: 'E', Int32 len, ('S' FATAL\0 'V' FATAL\0 'C' code\0 'M' msg\0), \0.
pub fn fatal_bytes(code: &str, message: &str) -> Bytes {
    error_bytes("FATAL", code, message)
}

/// ErrorResponse bytes of any severity (`ERROR`: the session goes on).
pub fn error_bytes(severity: &str, code: &str, message: &str) -> Bytes {
    let mut body = BytesMut::new();
    for (t, v) in [
        (b'S', severity),
        (b'V', severity),
        (b'C', code),
        (b'M', message),
    ] {
        body.put_u8(t);
        body.put_slice(v.as_bytes());
        body.put_u8(0);
    }
    body.put_u8(0);
    let mut out = BytesMut::with_capacity(body.len() + 5);
    out.put_u8(b'E');
    out.put_i32(body.len() as i32 + 4);
    out.put_slice(&body);
    out.freeze()
}

/// The upstream's ParameterStatus values, left in the connection's extensions for
/// `complete_authentication`.
pub struct UpstreamParams(pub Vec<(String, String)>);

/// Serves the upstream's parameters (real `server_version`, `TimeZone`, …) to the client.
#[derive(Debug, Default)]
pub struct ProxyParams;

impl ServerParameterProvider for ProxyParams {
    fn server_parameters<C: ClientInfo>(&self, client: &C) -> Option<HashMap<String, String>> {
        let params = client.session_extensions().get::<UpstreamParams>()?;
        Some(params.0.iter().cloned().collect())
    }
}

/// Where a cancel for a proxy-issued key must go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamKey {
    pub address: String,
    pub pid: i32,
    pub secret: i32,
}

/// Proxy key (pid, secret bytes) → upstream key. The client only ever sees proxy keys.
#[derive(Debug, Default)]
pub struct CancelKeys {
    map: DashMap<(i32, Vec<u8>), UpstreamKey>,
    generator: RandomPidSecretKeyGenerator,
}

pub fn secret_bytes(secret: &SecretKey) -> Vec<u8> {
    match secret {
        SecretKey::I32(v) => v.to_be_bytes().to_vec(),
        SecretKey::Bytes(b) => b.to_vec(),
    }
}

impl CancelKeys {
    pub fn lookup(&self, pid: i32, secret: &SecretKey) -> Option<UpstreamKey> {
        self.map
            .get(&(pid, secret_bytes(secret)))
            .map(|e| e.value().clone())
    }

    pub fn remove(&self, pid: i32, secret: &SecretKey) {
        self.map.remove(&(pid, secret_bytes(secret)));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Issues the client's key: the upstream backend's real pid (so `backend_pid`,
/// `pg_backend_pid()` and a NOTIFY's sender agree, as direct) with a fresh secret of the
/// gateway's, sized for the client's protocol (4 bytes for 3.0, 32 for 3.2); the pair maps
/// to the upstream's own key, which the client never sees.
#[derive(Debug, Default)]
pub struct ProxyKeys(pub Arc<CancelKeys>);

impl PidSecretKeyGenerator for ProxyKeys {
    fn generate(&self, client: &dyn ClientInfo) -> (i32, SecretKey) {
        let (random_pid, secret) = self.0.generator.generate(client);
        let Some(up) = client.session_extensions().get::<UpstreamKey>() else {
            return (random_pid, secret);
        };
        let pid = up.pid;
        self.0
            .map
            .insert((pid, secret_bytes(&secret)), (*up).clone());
        (pid, secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fatal_bytes_are_a_well_formed_error_response() {
        let b = fatal_bytes("57P01", "bye");
        assert_eq!(b[0], b'E');
        let len = i32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize;
        assert_eq!(len + 1, b.len());
        assert!(b.ends_with(b"bye\0\0"));
    }
}
