//! Both MySQL handshakes: reading the client's HandshakeResponse41 (after masking its
//! capabilities with ours) and checking its scramble against stored verifiers; and logging
//! in upstream as the resource role's user with the client's capabilities (minus
//! compression), `mysql_native_password` or `caching_sha2_password` (fast path, or the
//! cleartext full path over TLS).

use sha1::Sha1;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

use super::packet::{self, Reader, caps};
use crate::tls::Stream;

pub const NATIVE: &str = "mysql_native_password";
pub const SHA2: &str = "caching_sha2_password";
pub const CLEAR: &str = "mysql_clear_password";
/// MariaDB's ed25519 authentication (client side only: the gateway logs in with it).
pub const ED25519: &str = "client_ed25519";

/// What the client sent in its HandshakeResponse41.
#[derive(Clone, Debug, Default)]
pub struct ClientHello {
    /// The client's capabilities, masked with the gateway's.
    pub caps: u32,
    pub max_packet: u32,
    pub charset: u8,
    pub user: String,
    pub auth: Vec<u8>,
    pub database: Option<String>,
    pub plugin: String,
    /// Connect attributes as sent (the lenenc-prefixed block), forwarded upstream.
    pub attrs: Vec<u8>,
}

impl ClientHello {
    /// The client's name from its connect attributes — `program_name` (the mariadb and
    /// mysql CLIs, PyMySQL), else `_client_name` (the driver: libmariadb, Connector/J,
    /// mysql2) — as the session's `application_name`; at most 64 characters.
    pub fn application_name(&self) -> String {
        let pairs = attributes(&self.attrs);
        let find = |key: &[u8]| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| name(v));
        find(b"program_name")
            .or_else(|| find(b"_client_name"))
            .unwrap_or_default()
    }
}

/// The connect attributes of a lenenc-prefixed block, in order (as far as they read).
pub fn attributes(attrs: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut r = Reader(attrs);
    let Some(total) = r.lenenc() else {
        return Vec::new();
    };
    let all = r.rest();
    let mut r = Reader(all.get(..total as usize).unwrap_or(all));
    let mut string = || {
        let n = r.lenenc()?;
        r.take(usize::try_from(n).ok()?)
    };
    let mut out = Vec::new();
    while let (Some(key), Some(value)) = (string(), string()) {
        out.push((key.to_vec(), value.to_vec()));
    }
    out
}

fn name(value: &[u8]) -> String {
    String::from_utf8_lossy(value).chars().take(64).collect()
}

/// An SSLRequest is the first 32 bytes of a response, with `CLIENT_SSL`.
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == 32 && Reader(payload).u32().is_some_and(|c| c & caps::SSL != 0)
}

pub fn parse_response(payload: &[u8], server_caps: u32) -> Result<ClientHello, String> {
    let bad = |what: &str| format!("malformed handshake response: {what}");
    let mut r = Reader(payload);
    let client_caps = r.u32().ok_or_else(|| bad("capabilities"))?;
    // Trust only what both sides offered (clients set flags the server did not).
    let caps = client_caps & server_caps;
    if caps & caps::PROTOCOL_41 == 0 {
        return Err("the client does not speak protocol 4.1".into());
    }
    let max_packet = r.u32().ok_or_else(|| bad("max packet"))?;
    let charset = r.u8().ok_or_else(|| bad("charset"))?;
    r.take(23).ok_or_else(|| bad("filler"))?;
    let user = String::from_utf8_lossy(r.nul_str().ok_or_else(|| bad("user"))?).into_owned();
    let auth = if caps & caps::PLUGIN_AUTH_LENENC != 0 {
        let n = r.lenenc().ok_or_else(|| bad("auth length"))? as usize;
        r.take(n).ok_or_else(|| bad("auth data"))?.to_vec()
    } else {
        let n = r.u8().ok_or_else(|| bad("auth length"))? as usize;
        r.take(n).ok_or_else(|| bad("auth data"))?.to_vec()
    };
    let database = if caps & caps::CONNECT_WITH_DB != 0 && !r.is_empty() {
        Some(String::from_utf8_lossy(r.nul_str().ok_or_else(|| bad("database"))?).into_owned())
    } else {
        None
    };
    let plugin = if caps & caps::PLUGIN_AUTH != 0 && !r.is_empty() {
        String::from_utf8_lossy(r.nul_str().unwrap_or_default()).into_owned()
    } else {
        NATIVE.to_owned()
    };
    let attrs = if caps & caps::CONNECT_ATTRS != 0 {
        r.rest().to_vec()
    } else {
        Vec::new()
    };
    Ok(ClientHello {
        caps,
        max_packet,
        charset,
        user,
        auth,
        database: database.filter(|d| !d.is_empty()),
        plugin,
        attrs,
    })
}

/// A `COM_CHANGE_USER` (the body after the command byte), as the hello of the client it
/// makes: the new user, database and proof, with the connection's capabilities and packet
/// size; character set and connect attributes as sent, else as before.
pub fn parse_change_user(body: &[u8], before: &ClientHello) -> Result<ClientHello, String> {
    let bad = |what: &str| format!("malformed COM_CHANGE_USER: {what}");
    let mut r = Reader(body);
    let user = String::from_utf8_lossy(r.nul_str().ok_or_else(|| bad("user"))?).into_owned();
    let n = r.u8().ok_or_else(|| bad("auth length"))? as usize;
    let auth = r.take(n).ok_or_else(|| bad("auth data"))?.to_vec();
    let database = String::from_utf8_lossy(r.nul_str().unwrap_or_default()).into_owned();
    let charset = r.u16().map_or(before.charset, |c| c as u8);
    let plugin = match r.nul_str() {
        Some(p) if before.caps & caps::PLUGIN_AUTH != 0 && !p.is_empty() => {
            String::from_utf8_lossy(p).into_owned()
        }
        _ => NATIVE.to_owned(),
    };
    let attrs = match r.rest() {
        rest if before.caps & caps::CONNECT_ATTRS != 0 && !rest.is_empty() => rest.to_vec(),
        _ => before.attrs.clone(),
    };
    Ok(ClientHello {
        caps: before.caps,
        max_packet: before.max_packet,
        charset,
        user,
        auth,
        database: Some(database).filter(|d| !d.is_empty()),
        plugin,
        attrs,
    })
}

fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// `SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw)))`.
pub fn native_scramble(password: &str, nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    xor(
        &stage1,
        &Sha1::new()
            .chain_update(nonce)
            .chain_update(stage2)
            .finalize(),
    )
}

/// `SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce)`.
pub fn sha2_scramble(password: &str, nonce: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha256::digest(password.as_bytes());
    let stage2 = Sha256::digest(stage1);
    xor(
        &stage1,
        &Sha256::new()
            .chain_update(stage2)
            .chain_update(nonce)
            .finalize(),
    )
}

/// The upstream's HandshakeV10.
#[derive(Debug, Default)]
pub struct ServerHello {
    pub version: String,
    pub thread_id: u32,
    pub scramble: Vec<u8>,
    pub caps: u32,
    pub plugin: String,
}

pub fn parse_server_hello(payload: &[u8]) -> Result<ServerHello, String> {
    let bad = |what: &str| format!("malformed upstream handshake: {what}");
    let mut r = Reader(payload);
    match r.u8() {
        Some(10) => {}
        Some(0xFF) => {
            return Err(format!(
                "upstream refused the connection: {}",
                String::from_utf8_lossy(r.rest())
            ));
        }
        _ => return Err(bad("protocol version")),
    }
    let version = String::from_utf8_lossy(r.nul_str().ok_or_else(|| bad("version"))?).into_owned();
    let thread_id = r.u32().ok_or_else(|| bad("thread id"))?;
    let mut scramble = r.take(8).ok_or_else(|| bad("scramble"))?.to_vec();
    r.u8();
    let low = r.u16().ok_or_else(|| bad("capabilities"))? as u32;
    r.u8();
    r.u16();
    let high = r.u16().unwrap_or(0) as u32;
    let data_len = r.u8().unwrap_or(0) as usize;
    r.take(10);
    let part2 = data_len.saturating_sub(8).max(13);
    if let Some(rest) = r.take(part2) {
        scramble.extend_from_slice(rest.strip_suffix(&[0]).unwrap_or(rest));
    }
    let plugin = r
        .nul_str()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_else(|| NATIVE.into());
    Ok(ServerHello {
        version,
        thread_id,
        scramble,
        caps: low | (high << 16),
        plugin,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("connection to the upstream failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Protocol(String),
    #[error("the upstream refused the login: {code} {message}")]
    Refused { code: u16, message: String },
    #[error(
        "the upstream asked for full caching_sha2 authentication, which needs TLS to the resource"
    )]
    NeedsTls,
    #[error("the resource requires TLS but the upstream does not offer it")]
    NoTls,
    #[error("the resource's address has no usable TLS server name")]
    NoServerName,
}

/// TLS towards the upstream: the connector and name to use, and whether a server that
/// does not offer TLS is refused (`require`, `verify-full`) or used in plain (`prefer`).
pub struct UpstreamTls {
    pub connector: tokio_rustls::TlsConnector,
    pub name: rustls::pki_types::ServerName<'static>,
    pub required: bool,
}

/// Logs in upstream (upgrading to TLS first when `tls` says so and the server offers it);
/// returns the stream and the upstream's hello (its thread id, for KILL).
pub async fn login(
    mut tcp: TcpStream,
    client: &ClientHello,
    user: &str,
    password: &str,
    database: &str,
    tls: Option<UpstreamTls>,
) -> Result<(Stream, ServerHello), UpstreamError> {
    let (seq, payload) = packet::read(&mut tcp, packet::MAX_LOGIN_PACKET).await?;
    let hello = parse_server_hello(&payload).map_err(UpstreamError::Protocol)?;
    // Exactly the client's capabilities, so relayed packets parse on both sides.
    let mut caps =
        (client.caps & !caps::COMPRESS & !caps::SSL) | caps::CONNECT_WITH_DB | caps::PLUGIN_AUTH;
    if !client.attrs.is_empty() {
        caps |= caps::CONNECT_ATTRS;
    }
    let mut caps = caps & (hello.caps | caps::CONNECT_WITH_DB);
    let max_packet = client.max_packet.max(1 << 24);
    let mut seq = seq.wrapping_add(1);
    let mut s = match tls {
        Some(tls) if hello.caps & caps::SSL != 0 => {
            // SSLRequest: the first 32 bytes of a response, then the TLS handshake.
            caps |= caps::SSL;
            let p = response_head(caps, max_packet, client.charset);
            packet::write(&mut tcp, seq, &p).await?;
            seq = seq.wrapping_add(1);
            Stream::Tls(Box::new(tls.connector.connect(tls.name, tcp).await?))
        }
        Some(tls) if tls.required => return Err(UpstreamError::NoTls),
        _ => Stream::Plain(tcp),
    };
    let plugin = if hello.plugin == SHA2 { SHA2 } else { NATIVE };
    let auth = scramble_for(plugin, password, &hello.scramble);
    let mut p = response_head(caps, max_packet, client.charset);
    p.extend_from_slice(user.as_bytes());
    p.push(0);
    // A scramble is 20 or 32 bytes: one length byte, whether lenenc or not.
    p.push(auth.len() as u8);
    p.extend_from_slice(&auth);
    p.extend_from_slice(database.as_bytes());
    p.push(0);
    p.extend_from_slice(plugin.as_bytes());
    p.push(0);
    if caps & caps::CONNECT_ATTRS != 0 {
        p.extend_from_slice(&client.attrs);
    }
    packet::write(&mut s, seq, &p).await?;
    loop {
        let (rseq, payload) = packet::read(&mut s, packet::MAX_LOGIN_PACKET).await?;
        seq = rseq.wrapping_add(1);
        let mut r = Reader(&payload);
        match r.u8() {
            Some(0x00) => return Ok((s, hello)),
            Some(0xFF) => {
                let code = r.u16().unwrap_or(0);
                let message = String::from_utf8_lossy(r.rest()).into_owned();
                return Err(UpstreamError::Refused { code, message });
            }
            Some(0xFE) => {
                // AuthSwitchRequest: plugin, new scramble.
                let plugin = String::from_utf8_lossy(r.nul_str().unwrap_or_default()).into_owned();
                let data = r.rest();
                let nonce = data.strip_suffix(&[0]).unwrap_or(data);
                let reply = match plugin.as_str() {
                    NATIVE => native_scramble(password, nonce),
                    SHA2 => sha2_scramble(password, nonce),
                    ED25519 => ed25519_signature(password, nonce),
                    CLEAR if s.is_tls() => [password.as_bytes(), &[0]].concat(),
                    other => {
                        return Err(UpstreamError::Protocol(format!(
                            "unsupported upstream auth plugin {other}"
                        )));
                    }
                };
                packet::write(&mut s, seq, &reply).await?;
            }
            Some(0x01) => match r.u8() {
                Some(0x03) => continue, // fast auth succeeded; OK follows
                Some(0x04) if s.is_tls() => {
                    // caching_sha2 full authentication: the password itself, inside TLS.
                    let reply = [password.as_bytes(), &[0]].concat();
                    packet::write(&mut s, seq, &reply).await?;
                }
                Some(0x04) => return Err(UpstreamError::NeedsTls),
                _ => return Err(UpstreamError::Protocol("unexpected AuthMoreData".into())),
            },
            _ => {
                return Err(UpstreamError::Protocol(
                    "unexpected packet during upstream login".into(),
                ));
            }
        }
    }
}

/// The fixed first 32 bytes of a HandshakeResponse41 (alone: an SSLRequest).
pub fn response_head(caps: u32, max_packet: u32, charset: u8) -> Vec<u8> {
    let mut p = Vec::with_capacity(128);
    p.extend_from_slice(&caps.to_le_bytes());
    p.extend_from_slice(&max_packet.to_le_bytes());
    p.push(charset);
    p.extend_from_slice(&[0; 23]);
    p
}

/// MariaDB `client_ed25519`: an Ed25519 signature of the server's nonce with the key whose
/// expanded secret is SHA-512 of the password (RFC 8032 with the password as the seed).
pub fn ed25519_signature(password: &str, nonce: &[u8]) -> Vec<u8> {
    use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
    let expanded: [u8; 64] = sha2::Sha512::digest(password.as_bytes()).into();
    let secret = ExpandedSecretKey::from_bytes(&expanded);
    let public = ed25519_dalek::VerifyingKey::from(&secret);
    raw_sign::<sha2::Sha512>(&secret, nonce, &public)
        .to_bytes()
        .to_vec()
}

fn scramble_for(plugin: &str, password: &str, nonce: &[u8]) -> Vec<u8> {
    if plugin == SHA2 {
        sha2_scramble(password, nonce)
    } else {
        native_scramble(password, nonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_application_name_comes_from_the_connect_attributes() {
        let attrs = |pairs: &[(&str, &str)]| {
            let mut body = Vec::new();
            for (k, v) in pairs {
                for s in [k, v] {
                    body.push(s.len() as u8);
                    body.extend_from_slice(s.as_bytes());
                }
            }
            let mut out = vec![body.len() as u8];
            out.extend(body);
            ClientHello {
                attrs: out,
                ..ClientHello::default()
            }
        };
        let cli = attrs(&[("_client_name", "libmariadb"), ("program_name", "mariadb")]);
        assert_eq!(cli.application_name(), "mariadb");
        let driver = attrs(&[("_pid", "7"), ("_client_name", "MariaDB Connector/J")]);
        assert_eq!(driver.application_name(), "MariaDB Connector/J");
        assert_eq!(attrs(&[]).application_name(), "");
        assert_eq!(ClientHello::default().application_name(), "");
        let long = "x".repeat(200);
        assert_eq!(
            attrs(&[("program_name", &long)]).application_name().len(),
            64
        );
        // Truncated or lying lengths end the walk without a panic.
        let mut cut = attrs(&[("program_name", "mariadb")]);
        cut.attrs.truncate(9);
        assert_eq!(cut.application_name(), "");
        cut.attrs[0] = 0xfc;
        assert_eq!(cut.application_name(), "");
    }

    #[test]
    fn garbage_responses_are_errors_not_panics() {
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let _ = parse_response(&junk, caps::GATEWAY);
            let _ = parse_server_hello(&junk);
        }
    }
}
