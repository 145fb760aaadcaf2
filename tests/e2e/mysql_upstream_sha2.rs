//! caching_sha2_password full authentication towards the upstream. No server here offers
//! it (Debian ships MariaDB, not MySQL 8), so a byte-level fake MySQL 8 peer plays the
//! server side of the handshake as MySQL 8 does on a cache miss: greeting naming
//! caching_sha2_password, SSLRequest + TLS, HandshakeResponse, AuthMoreData
//! `perform_full_authentication` (0x04), then the password in clear inside TLS. Without
//! TLS the gateway refuses to send it.

use crate::common;

use common::my::{PASSWORD, mariadb};
use common::tls::TestCert;
use common::{Dir, start};
use portcullis::protocol::mysql::handshake::parse_response;
use portcullis::protocol::mysql::packet::{self, caps};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

const FAKE_CAPS: u32 = caps::GATEWAY | caps::SSL;

fn greeting() -> Vec<u8> {
    let mut p = vec![10];
    p.extend_from_slice(b"8.0.36-fake\0");
    p.extend_from_slice(&77u32.to_le_bytes());
    p.extend_from_slice(b"abcdefgh\0");
    p.extend_from_slice(&(FAKE_CAPS as u16).to_le_bytes());
    p.push(0xff);
    p.extend_from_slice(&2u16.to_le_bytes());
    p.extend_from_slice(&((FAKE_CAPS >> 16) as u16).to_le_bytes());
    p.push(21);
    p.extend_from_slice(&[0; 10]);
    p.extend_from_slice(b"ijklmnopqrst\0");
    p.extend_from_slice(b"caching_sha2_password\0");
    p
}

/// After the handshake response: full authentication, then OK to every query.
async fn full_auth_then_serve<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, mut seq: u8) {
    seq = seq.wrapping_add(1);
    packet::write(s, seq, &[0x01, 0x04]).await.unwrap();
    let Ok((rseq, password)) = packet::read(s, 1 << 16).await else {
        return; // the gateway gave up (no TLS): nothing more to do
    };
    if password != b"app-pw\0" {
        let err = packet::err(1045, "28000", "Access denied for user 'app'");
        let _ = packet::write(s, rseq.wrapping_add(1), &err).await;
        return;
    }
    packet::write(s, rseq.wrapping_add(1), &packet::ok())
        .await
        .unwrap();
    while let Ok((_, cmd)) = packet::read(s, 1 << 24).await {
        if cmd.first() == Some(&0x01) {
            return;
        }
        packet::write(s, 1, &packet::ok()).await.unwrap();
    }
}

/// A fake MySQL 8 server; returns its port.
async fn fake_mysql8(cert: &TestCert) -> u16 {
    portcullis::app::install_crypto();
    let acceptor = tokio_rustls::TlsAcceptor::from(
        portcullis::tls::server_config(&cert.cert, &cert.key).unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                packet::write(&mut tcp, 0, &greeting()).await.unwrap();
                let (seq, first) = packet::read(&mut tcp, 1 << 16).await.unwrap();
                let ssl = first.len() == 32
                    && u32::from_le_bytes(first[..4].try_into().unwrap()) & caps::SSL != 0;
                if ssl {
                    let mut tls = acceptor.accept(tcp).await.unwrap();
                    let (seq, response) = packet::read(&mut tls, 1 << 16).await.unwrap();
                    let hello = parse_response(&response, FAKE_CAPS).unwrap();
                    assert_eq!(hello.user, "app");
                    assert_eq!(hello.plugin, "caching_sha2_password");
                    full_auth_then_serve(&mut tls, seq).await;
                } else {
                    full_auth_then_serve(&mut tcp, seq).await;
                }
            });
        }
    });
    port
}

async fn gateway_to(port: u16, tls: &str, password: &str) -> (Dir, portcullis::app::Running) {
    let dir = Dir::new();
    let declared = common::declarations(
        "mysql8",
        "mysql",
        &format!("127.0.0.1:{port}"),
        tls,
        "app",
        "app",
        password,
    );
    dir.write_config(None, &declared);
    let gw = start(&dir).await;
    (dir, gw)
}

async fn through(gw: &portcullis::app::Running) -> (bool, String, String) {
    let port = gw.mysql_addr.unwrap().port().to_string();
    let pw = format!("-p{PASSWORD}");
    mariadb(&["-P", &port, "-u", "alice", &pw, "-D", "rr", "-e", "do 1"]).await
}

#[tokio::test]
async fn full_caching_sha2_authentication_upstream_goes_inside_tls_only() {
    let cert = TestCert::new();
    let port = fake_mysql8(&cert).await;

    let (_dir, gw) = gateway_to(port, "require", "app-pw").await;
    let (ok, _, err) = through(&gw).await;
    assert!(ok, "full authentication over TLS: {err}");
    gw.shutdown().await;

    let (_dir, gw) = gateway_to(port, "require", "wrong-pw").await;
    let (ok, _, err) = through(&gw).await;
    assert!(!ok && err.contains("1105"), "{err}");
    gw.shutdown().await;

    // Without TLS the password is never sent: a clear refusal, the reason in the log.
    let (dir, gw) = gateway_to(port, "disable", "app-pw").await;
    let (ok, _, err) = through(&gw).await;
    assert!(!ok && err.contains("1105"), "{err}");
    gw.shutdown().await;
    let events = common::pg::read_events(&dir.path().join("audit"));
    let reason = events
        .iter()
        .find(|e| e["kind"] == "auth_failed")
        .map(|e| e["reason"].as_str().unwrap().to_owned())
        .unwrap();
    assert!(reason.contains("needs TLS"), "{reason}");
}
