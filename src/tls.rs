//! TLS configuration: the gateway's server certificate for client connections, and the
//! client configurations used towards upstream databases per resource `tls` mode.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use sha2::Digest;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::model::TlsMode;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {message}")]
    Pem { path: String, message: String },
    #[error("invalid TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Makes the self-signed certificate (names `localhost`, `127.0.0.1`, `::1` and this
/// host's name; key 0600) unless both files are there; answers whether it was made now
/// and the certificate's SHA-256 fingerprint (what a client pins or checks).
pub fn self_signed(cert: &Path, key: &Path) -> Result<(bool, String), TlsError> {
    let failed = |path: &Path, message: String| TlsError::Pem {
        path: path.display().to_string(),
        message,
    };
    let made = !(cert.is_file() && key.is_file());
    if made {
        let mut names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
        if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
            names.extend(Some(host.trim().to_owned()).filter(|h| !h.is_empty()));
        }
        let pair = rcgen::KeyPair::generate().map_err(|e| failed(key, e.to_string()))?;
        let mut params =
            rcgen::CertificateParams::new(names).map_err(|e| failed(cert, e.to_string()))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Portcullis (self-signed)");
        let made = params
            .self_signed(&pair)
            .map_err(|e| failed(cert, e.to_string()))?;
        crate::fsutil::write_private(key, pair.serialize_pem().as_bytes())
            .map_err(|e| failed(key, e.to_string()))?;
        crate::fsutil::write_private(cert, made.pem().as_bytes())
            .map_err(|e| failed(cert, e.to_string()))?;
    }
    let der = CertificateDer::from_pem_file(cert).map_err(|e| failed(cert, e.to_string()))?;
    let digest = sha2::Sha256::digest(der.as_ref());
    let fingerprint = digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok((made, fingerprint))
}

/// The server side: certificate chain and key from PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let pem_err = |path: &Path, e: rustls::pki_types::pem::Error| TlsError::Pem {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_err(cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err(cert, e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err(key, e))?;
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// Client configs for upstream connections, built once.
#[derive(Clone, Debug)]
pub struct UpstreamTls {
    /// `prefer` / `require`: encrypted, certificate not checked (as libpq's `require`).
    unverified: Arc<ClientConfig>,
    /// `verify-full`: the system's CA bundle and the host name.
    verified: Arc<ClientConfig>,
}

impl UpstreamTls {
    pub fn new() -> UpstreamTls {
        let unverified = ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify))
            .with_no_client_auth();
        let mut roots = RootCertStore::empty();
        for bundle in [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
        ] {
            if let Ok(iter) = CertificateDer::pem_file_iter(bundle) {
                for cert in iter.flatten() {
                    let _ = roots.add(cert);
                }
            }
        }
        let verified = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        UpstreamTls {
            unverified: Arc::new(unverified),
            verified: Arc::new(verified),
        }
    }

    /// The connector for a mode, `None` for `disable`.
    pub fn connector(&self, mode: TlsMode) -> Option<tokio_rustls::TlsConnector> {
        match mode {
            TlsMode::Disable => None,
            TlsMode::Prefer | TlsMode::Require => Some(Arc::clone(&self.unverified).into()),
            TlsMode::VerifyFull => Some(Arc::clone(&self.verified).into()),
        }
    }
}

impl Default for UpstreamTls {
    fn default() -> Self {
        UpstreamTls::new()
    }
}

/// `host:port` → the TLS server name (host).
pub fn server_name(address: &str) -> Option<ServerName<'static>> {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned()).ok()
}

#[derive(Debug)]
struct NoVerify;

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// An upstream connection, plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Open and silent: a read would wait. End of stream, an error or anything the peer
    /// said unasked reads as not silent.
    pub fn silent(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        Pin::new(self).poll_read(&mut cx, &mut buf).is_pending()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
