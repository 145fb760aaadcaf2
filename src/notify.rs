//! Webhooks (`[[notify.webhooks]]`): a JSON POST to each URL on every access request
//! change, signed with HMAC-SHA-256 of the body under the webhook's secret
//! (`X-Portcullis-Signature: sha256=HEX`), retried with backoff. Sending never blocks
//! the change itself: events queue for a background task (a full queue drops the event,
//! counted and said in the gateway's log).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::config::Webhook;
use crate::tls::{Stream, UpstreamTls};

/// Attempts per delivery; the waits between them double from one second.
const ATTEMPTS: u32 = 5;
const QUEUE: usize = 1024;
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where access request changes go out.
#[derive(Clone)]
pub struct Notifier {
    tx: Option<mpsc::Sender<(String, Bytes)>>,
    /// Deliveries given up on (queue full, or every attempt failed).
    pub dropped: Arc<AtomicU64>,
}

impl Notifier {
    /// A notifier posting to `webhooks` (none: a notifier that sends nothing).
    pub fn spawn(webhooks: Vec<Webhook>) -> Notifier {
        let dropped = Arc::new(AtomicU64::new(0));
        if webhooks.is_empty() {
            return Notifier { tx: None, dropped };
        }
        let (tx, mut rx) = mpsc::channel::<(String, Bytes)>(QUEUE);
        let hooks: Arc<[Webhook]> = webhooks.into();
        let lost = Arc::clone(&dropped);
        tokio::spawn(async move {
            let tls = UpstreamTls::new();
            while let Some((event, body)) = rx.recv().await {
                for hook in hooks.iter() {
                    let (hook, event, body, tls) =
                        (hook.clone(), event.clone(), body.clone(), tls.clone());
                    let lost = Arc::clone(&lost);
                    tokio::spawn(async move {
                        if let Err(e) = deliver(&tls, &hook, &event, body).await {
                            lost.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(url = %hook.url, event, error = %e, "a webhook was not delivered");
                        }
                    });
                }
            }
        });
        Notifier {
            tx: Some(tx),
            dropped,
        }
    }

    /// Queues `payload` (JSON) as `event` for every webhook.
    pub fn send(&self, event: &str, payload: &serde_json::Value) {
        let Some(tx) = &self.tx else { return };
        let body = Bytes::from(payload.to_string());
        if tx.try_send((event.to_owned(), body)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(event, "the webhook queue is full; an event was dropped");
        }
    }
}

/// `sha256=HEX` of the body under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` does not fail.
    match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::new(),
    }
}

/// Posts until the server answers 2xx, at most `ATTEMPTS` times.
async fn deliver(
    tls: &UpstreamTls,
    hook: &Webhook,
    event: &str,
    body: Bytes,
) -> Result<(), String> {
    let mut wait = Duration::from_secs(1);
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match tokio::time::timeout(TIMEOUT, post(tls, hook, event, body.clone())).await {
            Ok(Ok(status)) if (200..300).contains(&status) => return Ok(()),
            Ok(Ok(status)) => last = format!("HTTP {status}"),
            Ok(Err(e)) => last = e,
            Err(_) => last = format!("no answer within {}s", TIMEOUT.as_secs()),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    Err(format!("{last} (after {ATTEMPTS} attempts)"))
}

/// One POST over a fresh connection (TLS for https, the system's CA bundle).
async fn post(tls: &UpstreamTls, hook: &Webhook, event: &str, body: Bytes) -> Result<u16, String> {
    let uri: hyper::Uri = hook.url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let https = uri.scheme_str() == Some("https");
    let host = uri.host().ok_or("the URL has no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    let stream = if https {
        let connector = tls
            .connector(crate::model::TlsMode::VerifyFull)
            .ok_or("no TLS")?;
        let name = crate::tls::server_name(&host).ok_or("bad host name")?;
        Stream::Tls(Box::new(
            connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?,
        ))
    } else {
        Stream::Plain(tcp)
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = hyper::Request::post(path)
        .header("host", &host)
        .header("content-type", "application/json")
        .header("user-agent", "portcullis")
        .header("x-portcullis-event", event);
    if let Some(secret) = &hook.secret {
        req = req.header(
            "x-portcullis-signature",
            signature(secret.expose().as_bytes(), &body),
        );
    }
    let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    Ok(status)
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        let got = super::signature(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            got,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
