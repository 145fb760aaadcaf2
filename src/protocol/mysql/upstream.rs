//! A logged-in MySQL upstream connection: the login (`handshake::login` with the client's
//! capabilities), and what the pool needs: `COM_RESET_CONNECTION` + `COM_INIT_DB` back to
//! the resource role's database, `COM_QUIT`.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::handshake::{self, ClientHello, UpstreamError, UpstreamTls};
use super::packet;
use crate::model::TlsMode;
use crate::protocol::{Credentials, TlsTarget};
use crate::tls::Stream;

const COM_QUIT: u8 = 0x01;
const COM_INIT_DB: u8 = 0x02;
const COM_RESET_CONNECTION: u8 = 0x1f;

/// The stream and what the server said of itself at login.
pub struct Upstream {
    pub stream: Stream,
    /// The server's id for the connection (`CONNECTION_ID()`, what `KILL` names).
    pub thread_id: u32,
    /// The server's version string.
    pub version: String,
}

impl crate::protocol::Upstream for Upstream {
    /// The client's handshake response: capabilities, packet size, character set and
    /// connect attributes are logged in with as the client sent them.
    type Params = ClientHello;
    type Error = UpstreamError;

    fn key_params(h: &ClientHello) -> Vec<(String, String)> {
        [
            ("caps", h.caps),
            ("max_packet", h.max_packet),
            ("charset", h.charset.into()),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_string()))
        .into()
    }

    /// Connect attributes `_portcullis_user` = the user, and `program_name` =
    /// `mariadb (alice via portcullis)` (performance_schema.session_connect_attrs).
    fn identified(h: &ClientHello, user: &str) -> ClientHello {
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = handshake::attributes(&h.attrs)
            .into_iter()
            .filter(|(k, _)| k != b"_portcullis_user")
            .collect();
        let program = h.application_name();
        let named = crate::protocol::identified_name(&program, user, 255).into_bytes();
        match pairs.iter_mut().find(|(k, _)| k == b"program_name") {
            Some(pair) => pair.1 = named,
            None => pairs.push((b"program_name".to_vec(), named)),
        }
        pairs.push((b"_portcullis_user".to_vec(), user.as_bytes().to_vec()));
        let mut block = Vec::new();
        for (k, v) in &pairs {
            packet::lenenc_str(&mut block, k);
            packet::lenenc_str(&mut block, v);
        }
        let mut attrs = Vec::with_capacity(block.len() + 3);
        packet::lenenc_str(&mut attrs, &block);
        ClientHello { attrs, ..h.clone() }
    }

    fn unreachable(error: &UpstreamError) -> bool {
        matches!(error, UpstreamError::Io(_) | UpstreamError::NoServerName)
    }

    async fn login(
        tcp: TcpStream,
        tls: TlsTarget,
        creds: &Credentials<'_>,
        hello: &ClientHello,
    ) -> Result<Upstream, UpstreamError> {
        let tls = match tls.connector {
            Some(connector) => Some(UpstreamTls {
                connector,
                name: tls.name.ok_or(UpstreamError::NoServerName)?,
                required: matches!(tls.mode, TlsMode::Require | TlsMode::VerifyFull),
            }),
            None => None,
        };
        let password = creds.password.unwrap_or_default();
        let (stream, server) =
            handshake::login(tcp, hello, creds.user, password, creds.database, tls).await?;
        Ok(Upstream {
            stream,
            thread_id: server.thread_id,
            version: server.version,
        })
    }

    /// `COM_RESET_CONNECTION` (transaction, session variables back to the server's
    /// defaults and the login's character set, user variables, temporary tables, prepared
    /// statements, table locks: all gone), then `COM_INIT_DB` back to `database`, which the
    /// reset leaves. Anything but an OK to each is an error, and the connection is not kept.
    async fn reset(&mut self, database: &str) -> std::io::Result<()> {
        let mut init = vec![COM_INIT_DB];
        init.extend_from_slice(database.as_bytes());
        for (command, what) in [
            (&[COM_RESET_CONNECTION][..], "COM_RESET_CONNECTION"),
            (&init[..], "COM_INIT_DB"),
        ] {
            packet::write(&mut self.stream, 0, command).await?;
            let (_, reply) = packet::read(&mut self.stream, packet::MAX_LOGIN_PACKET).await?;
            if reply.first() != Some(&0x00) {
                return Err(std::io::Error::other(format!("{what} was not answered OK")));
            }
        }
        Ok(())
    }

    async fn goodbye(mut self) {
        let _ = packet::write(&mut self.stream, 0, &[COM_QUIT]).await;
        let _ = self.stream.shutdown().await;
    }

    fn silent(&mut self) -> bool {
        self.stream.silent()
    }
}
