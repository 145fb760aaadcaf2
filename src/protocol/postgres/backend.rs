//! Logging in to the upstream PostgreSQL as the resource role's user, with
//! postgres-protocol: optional SSLRequest/TLS per the resource's mode, StartupMessage with
//! the client's parameters, then trust, cleartext, MD5 or SCRAM-SHA-256 — whatever the
//! server asks. The socket stays ours for the relay. Also what the pool of kept
//! connections needs: `DISCARD ALL`, Terminate.

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::model::TlsMode;
use crate::protocol::{Credentials, TlsTarget};
use crate::tls::Stream;

/// What the relay needs after a successful upstream login.
pub struct Upstream {
    pub stream: Stream,
    /// ParameterStatus values, passed on to the client.
    pub params: Vec<(String, String)>,
    /// The upstream's BackendKeyData, for forwarding cancels.
    pub pid: i32,
    pub secret: i32,
    /// Bytes read past ReadyForQuery (none in practice; forwarded if any).
    pub leftover: BytesMut,
    /// Where it is connected, for forwarding cancel requests.
    pub address: String,
}

pub struct Login<'a> {
    pub user: &'a str,
    pub password: Option<&'a str>,
    pub database: &'a str,
    /// The client's startup parameters to forward (application_name, DateStyle, …).
    pub params: &'a [(String, String)],
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("connection to the upstream failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the upstream does not offer TLS but the resource requires it")]
    TlsUnavailable,
    #[error("TLS towards the upstream failed")]
    Tls(#[source] Box<BackendError>),
    #[error("the upstream refused the login: {code} {message}")]
    Refused { code: String, message: String },
    #[error("the upstream asked for a password but the resource role has none")]
    NoPassword,
    #[error("the upstream asked for an unsupported authentication method ({0})")]
    Unsupported(&'static str),
    #[error("unexpected upstream message during login: {0}")]
    Protocol(String),
}

impl crate::protocol::Upstream for Upstream {
    /// The client's startup parameters.
    type Params = Vec<(String, String)>;
    type Error = BackendError;

    fn key_params(params: &Self::Params) -> Vec<(String, String)> {
        forwarded(params).cloned().collect()
    }

    /// `application_name` = `psql (alice via portcullis)` (63 bytes at most, as the
    /// server keeps).
    fn identified(params: &Self::Params, user: &str) -> Self::Params {
        let mut out: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| k != "application_name")
            .cloned()
            .collect();
        let name = params
            .iter()
            .find(|(k, _)| k == "application_name")
            .map_or("", |(_, v)| v.as_str());
        let value = crate::protocol::identified_name(name, user, 63);
        out.push(("application_name".into(), value));
        out
    }

    fn unreachable(error: &BackendError) -> bool {
        matches!(error, BackendError::Io(_) | BackendError::Tls(_))
    }

    async fn login(
        tcp: TcpStream,
        tls: TlsTarget,
        creds: &Credentials<'_>,
        params: &Self::Params,
    ) -> Result<Upstream, BackendError> {
        let address = tcp.peer_addr()?.to_string();
        let stream = negotiate_tls(tcp, tls.mode, tls.connector, tls.name)
            .await
            .map_err(|e| match e {
                BackendError::Io(e) => BackendError::Io(e),
                other => BackendError::Tls(Box::new(other)),
            })?;
        let login = Login {
            user: creds.user,
            password: creds.password,
            database: creds.database,
            params,
        };
        let mut up = self::login(stream, &login).await?;
        up.address = address;
        Ok(up)
    }

    async fn reset(&mut self, _database: &str) -> std::io::Result<()> {
        let params = std::mem::take(&mut self.params);
        self.params = discard_all(&mut self.stream, params).await?;
        Ok(())
    }

    async fn goodbye(mut self) {
        let mut out = BytesMut::new();
        frontend::terminate(&mut out);
        let _ = self.stream.write_all(&out).await;
        let _ = self.stream.shutdown().await;
    }

    fn silent(&mut self) -> bool {
        self.stream.silent()
    }
}

/// `DISCARD ALL` (temporary tables, prepared statements, session settings, advisory locks,
/// LISTEN: all gone); returns the parameters as they now are. Anything but the expected
/// answer is an error, and the connection is not kept.
async fn discard_all(
    tcp: &mut Stream,
    mut params: Vec<(String, String)>,
) -> std::io::Result<Vec<(String, String)>> {
    let mut out = BytesMut::new();
    frontend::query("DISCARD ALL", &mut out)?;
    tcp.write_all(&out).await?;
    let mut buf = BytesMut::with_capacity(1024);
    let mut discarded = false;
    let unexpected =
        |what: &str| std::io::Error::other(format!("unexpected {what} after DISCARD ALL"));
    loop {
        let msg = loop {
            if let Some(msg) = Message::parse(&mut buf)? {
                break msg;
            }
            if tcp.read_buf(&mut buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        };
        match msg {
            Message::CommandComplete(c) if c.tag()? == "DISCARD ALL" => discarded = true,
            Message::ParameterStatus(p) => {
                let (name, value) = (p.name()?.to_owned(), p.value()?.to_owned());
                match params.iter_mut().find(|(n, _)| *n == name) {
                    Some(kept) => kept.1 = value,
                    None => params.push((name, value)),
                }
            }
            Message::NoticeResponse(_) => {}
            Message::ReadyForQuery(r) if discarded && r.status() == b'I' && buf.is_empty() => {
                return Ok(params);
            }
            Message::ErrorResponse(_) => return Err(unexpected("error")),
            _ => return Err(unexpected("message")),
        }
    }
}

/// Upgrades to TLS if the mode wants it and the server agrees.
pub async fn negotiate_tls(
    mut tcp: TcpStream,
    mode: TlsMode,
    connector: Option<tokio_rustls::TlsConnector>,
    server_name: Option<rustls::pki_types::ServerName<'static>>,
) -> Result<Stream, BackendError> {
    let Some(connector) = connector else {
        return Ok(Stream::Plain(tcp));
    };
    let mut buf = BytesMut::new();
    frontend::ssl_request(&mut buf);
    tcp.write_all(&buf).await?;
    match tcp.read_u8().await? {
        b'S' => {
            let name = server_name.ok_or_else(|| {
                BackendError::Protocol("no TLS server name for the resource address".into())
            })?;
            let tls = connector.connect(name, tcp).await?;
            Ok(Stream::Tls(Box::new(tls)))
        }
        b'N' if mode == TlsMode::Prefer => Ok(Stream::Plain(tcp)),
        b'N' => Err(BackendError::TlsUnavailable),
        other => Err(BackendError::Protocol(format!(
            "SSLRequest answered with byte {other}"
        ))),
    }
}

/// The settings a client's startup asks for, by name: each forwarded parameter, and each
/// `-c name=value` / `--name=value` of `options` (what the server would apply). An
/// `options` the gateway cannot read is an error.
pub fn settings(params: &[(String, String)]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (k, v) in forwarded(params) {
        if k != "options" {
            out.push((k.clone(), v.clone()));
            continue;
        }
        let mut words = v.split_ascii_whitespace();
        while let Some(w) = words.next() {
            let setting = match w {
                "-c" => words.next(),
                _ => w.strip_prefix("-c").or_else(|| w.strip_prefix("--")),
            };
            let Some((name, value)) = setting.and_then(|s| s.split_once('=')) else {
                return Err(format!(
                    "startup option `{w}` is not a -c name=value setting"
                ));
            };
            out.push((name.replace('-', "_"), value.to_owned()));
        }
    }
    Ok(out)
}

/// The client's startup parameters that go upstream (not who or where, not protocol
/// extensions).
pub fn forwarded(params: &[(String, String)]) -> impl Iterator<Item = &(String, String)> {
    params.iter().filter(|(k, _)| {
        !matches!(k.as_str(), "user" | "database" | "replication") && !k.starts_with("_pq_.")
    })
}

/// Runs the startup and authentication exchange up to ReadyForQuery.
pub async fn login(mut stream: Stream, req: &Login<'_>) -> Result<Upstream, BackendError> {
    let mut out = BytesMut::new();
    let mut params: Vec<(&str, &str)> = vec![("user", req.user), ("database", req.database)];
    params.extend(forwarded(req.params).map(|(k, v)| (k.as_str(), v.as_str())));
    frontend::startup_message(params.iter().copied(), &mut out)?;
    stream.write_all(&out).await?;
    stream.flush().await?;

    let mut buf = BytesMut::with_capacity(8192);
    let mut auth = Auth { req, scram: None };
    let mut server_params = Vec::new();
    let (mut pid, mut secret) = (0, 0);
    loop {
        let msg = loop {
            if let Some(msg) = Message::parse(&mut buf)? {
                break msg;
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(BackendError::Protocol(
                    "the upstream closed the connection during login".into(),
                ));
            }
        };
        out.clear();
        match msg {
            Message::ParameterStatus(body) => {
                server_params.push((body.name()?.to_owned(), body.value()?.to_owned()));
            }
            Message::BackendKeyData(body) => {
                pid = body.process_id();
                secret = body.secret_key();
            }
            Message::NoticeResponse(_) => {}
            Message::ErrorResponse(body) => return Err(refused(&body)?),
            Message::ReadyForQuery(_) => {
                return Ok(Upstream {
                    stream,
                    params: server_params,
                    pid,
                    secret,
                    // Not the 8 KiB read buffer: a session keeps this for its life.
                    leftover: BytesMut::from(&buf[..]),
                    address: String::new(),
                });
            }
            other => {
                auth.answer(other, &mut out)?;
                if !out.is_empty() {
                    stream.write_all(&out).await?;
                    stream.flush().await?;
                }
            }
        }
    }
}

/// The authentication exchange: what to send for each request the server makes.
struct Auth<'a> {
    req: &'a Login<'a>,
    scram: Option<ScramSha256>,
}

impl Auth<'_> {
    fn password(&self) -> Result<&[u8], BackendError> {
        self.req
            .password
            .map(str::as_bytes)
            .ok_or(BackendError::NoPassword)
    }

    /// Writes the answer to `msg` into `out` (nothing when none is due).
    fn answer(&mut self, msg: Message, out: &mut BytesMut) -> Result<(), BackendError> {
        match msg {
            Message::AuthenticationOk => {}
            Message::AuthenticationCleartextPassword => {
                frontend::password_message(self.password()?, out)?;
            }
            Message::AuthenticationMd5Password(body) => {
                let hash = md5_hash(self.req.user.as_bytes(), self.password()?, body.salt());
                frontend::password_message(hash.as_bytes(), out)?;
            }
            Message::AuthenticationSasl(body) => {
                let mut mechanisms = body.mechanisms();
                let mut offered = false;
                while let Some(m) = mechanisms.next()? {
                    offered |= m == SCRAM_SHA_256;
                }
                if !offered {
                    return Err(BackendError::Unsupported("SASL without SCRAM-SHA-256"));
                }
                let s = ScramSha256::new(self.password()?, ChannelBinding::unsupported());
                frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), out)?;
                self.scram = Some(s);
            }
            Message::AuthenticationSaslContinue(body) => {
                let s = self
                    .scram
                    .as_mut()
                    .ok_or_else(|| BackendError::Protocol("SASL continue without SASL".into()))?;
                s.update(body.data())?;
                frontend::sasl_response(s.message(), out)?;
            }
            Message::AuthenticationSaslFinal(body) => {
                let s = self
                    .scram
                    .as_mut()
                    .ok_or_else(|| BackendError::Protocol("SASL final without SASL".into()))?;
                s.finish(body.data())?;
            }
            Message::AuthenticationGss
            | Message::AuthenticationSspi
            | Message::AuthenticationGssContinue(_) => {
                return Err(BackendError::Unsupported("GSSAPI/SSPI"));
            }
            Message::AuthenticationKerberosV5 | Message::AuthenticationScmCredential => {
                return Err(BackendError::Unsupported("Kerberos/SCM"));
            }
            _ => return Err(BackendError::Protocol("unexpected message".into())),
        }
        Ok(())
    }
}

/// The server's refusal: its SQLSTATE and message.
fn refused(
    body: &postgres_protocol::message::backend::ErrorResponseBody,
) -> Result<BackendError, BackendError> {
    let (mut code, mut message) = (String::new(), String::new());
    let mut fields = body.fields();
    while let Some(f) = fields.next()? {
        match f.type_() {
            b'C' => code = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            b'M' => message = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            _ => {}
        }
    }
    Ok(BackendError::Refused { code, message })
}

/// Sends a CancelRequest for (`pid`, `secret`) to the upstream at `address`.
pub async fn send_cancel(address: &str, pid: i32, secret: i32) -> std::io::Result<()> {
    let mut tcp = TcpStream::connect(address).await?;
    let mut buf = BytesMut::new();
    frontend::cancel_request(pid, secret, &mut buf);
    tcp.write_all(&buf).await?;
    // PostgreSQL closes the connection after handling it.
    let mut sink = [0u8; 1];
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut sink)).await;
    Ok(())
}
