//! Shipping the monitoring log to NATS JetStream (the local server at 127.0.0.1:4222, or a
//! private one for the outage): every line reaches the stream in order with its
//! `instance:seq` id, `audit verify --nats` checks the copy and fails on a tampered one,
//! and an outage in the middle of traffic loses nothing.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common;
use common::pg::{PgEnv, read_events};

const LOCAL: &str = "nats://127.0.0.1:4222";

fn names() -> (String, String) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    (format!("PCT_{id}"), format!("pct.{id}"))
}

fn shipping(url: &str, stream: &str, prefix: &str) -> String {
    format!("[audit.nats]\nurl = \"{url}\"\nstream = \"{stream}\"\nsubject_prefix = \"{prefix}\"\n")
}

/// Waits until the shipper has every line of the files acknowledged; their count.
async fn shipped(env: &PgEnv, within: Duration) -> u64 {
    let state = env
        .gw
        .gateway
        .shipping
        .clone()
        .expect("shipping is configured");
    let until = Instant::now() + within;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let last = read_events(&env.dir.path().join("audit"))
            .last()
            .and_then(|e| e["seq"].as_u64())
            .unwrap_or(0);
        let acked = state.acked.load(std::sync::atomic::Ordering::Relaxed);
        if acked == last && last > 0 {
            return last;
        }
        assert!(Instant::now() < until, "shipped {acked} of {last} lines");
    }
}

fn verify(url: &str, stream: &str, prefix: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["audit", "verify", "--nats", url, "--stream", stream])
        .args(["--subject-prefix", prefix])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

async fn traffic(env: &PgEnv, n: usize) {
    let c = env.alice().await;
    for i in 0..n {
        c.simple_query(&format!("select {i}")).await.unwrap();
    }
}

/// The stream's messages, in order: (subject, payload).
async fn messages(url: &str, stream: &str) -> Vec<(String, String)> {
    use async_nats::jetstream::consumer::{AckPolicy, pull};
    use futures::StreamExt;
    let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
    let mut s = js.get_stream(stream).await.unwrap();
    let total = s.info().await.unwrap().state.messages;
    let consumer = s
        .create_consumer(pull::Config {
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    while (out.len() as u64) < total {
        let mut batch = consumer.fetch().max_messages(500).messages().await.unwrap();
        while let Some(m) = batch.next().await {
            let m = m.unwrap();
            out.push((
                m.subject.to_string(),
                String::from_utf8_lossy(&m.payload).into_owned(),
            ));
        }
    }
    out
}

#[tokio::test]
async fn the_log_reaches_jetstream_in_order_and_its_copy_verifies() {
    assert!(
        tokio::net::TcpStream::connect("127.0.0.1:4222")
            .await
            .is_ok(),
        "NATS with JetStream is not reachable on 127.0.0.1:4222; run scripts/test-tools.sh"
    );
    let (stream, prefix) = names();
    let env = PgEnv::new(&shipping(LOCAL, &stream, &prefix)).await;
    traffic(&env, 50).await;
    let lines = shipped(&env, Duration::from_secs(20)).await;
    let copy = messages(LOCAL, &stream).await;
    assert_eq!(copy.len() as u64, lines, "one message per line");
    let files = read_events(&env.dir.path().join("audit"));
    for (i, ((subject, payload), event)) in copy.iter().zip(&files).enumerate() {
        let shipped: Value = serde_json::from_str(payload).unwrap();
        assert_eq!(&shipped, event, "line {} as written", i + 1);
        assert_eq!(
            *subject,
            format!("{prefix}.{}", env.gw.gateway.instance.replace('.', "_"))
        );
    }
    let (ok, out) = verify(LOCAL, &stream, &prefix);
    assert!(ok && out.contains("hash chain intact"), "{out}");
    // A copy with one line edited fails.
    let (tampered, tprefix) = names();
    let js = async_nats::jetstream::new(async_nats::connect(LOCAL).await.unwrap());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: tampered.clone(),
        subjects: vec![format!("{tprefix}.>")],
        ..Default::default()
    })
    .await
    .unwrap();
    for (i, (_, payload)) in copy.iter().enumerate() {
        let line = if i == 20 {
            payload.replace("\"alice\"", "\"mallory\"")
        } else {
            payload.clone()
        };
        js.publish(format!("{tprefix}.gw"), line.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let (ok, out) = verify(LOCAL, &tampered, &tprefix);
    assert!(!ok && out.contains("does not match its hash"), "{out}");
    // `/metrics` has the shipper's position.
    let addr = env.gw.admin_addr.unwrap();
    let metrics = reqwest_get(&format!("http://{addr}/metrics")).await;
    let acked: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("audit_nats_acked_seq "))
        .and_then(|v| v.parse().ok())
        .expect("the shipper's position in /metrics");
    assert!(acked >= lines, "{metrics}");
    assert!(metrics.contains("audit_nats_lag_events"), "{metrics}");
}

async fn reqwest_get(url: &str) -> String {
    let out = tokio::process::Command::new("curl")
        .args(["-s", "-m", "10", url])
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A private nats-server with JetStream, its data kept in `dir`.
fn nats_server(port: u16, dir: &std::path::Path) -> Child {
    Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server is installed (scripts/test-tools.sh installs it)")
}

async fn wait_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < until,
            "nats-server did not start on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_nats_outage_in_the_middle_of_traffic_loses_nothing() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = tempfile::tempdir().unwrap();
    let mut server = nats_server(port, data.path());
    wait_port(port).await;
    let url = format!("nats://127.0.0.1:{port}");
    let (stream, prefix) = names();
    let env = PgEnv::new(&shipping(&url, &stream, &prefix)).await;
    traffic(&env, 30).await;
    shipped(&env, Duration::from_secs(20)).await;
    // NATS goes away in the middle of traffic: statements go on.
    server.kill().unwrap();
    server.wait().unwrap();
    let started = Instant::now();
    traffic(&env, 200).await;
    eprintln!("200 statements with NATS down took {:?}", started.elapsed());
    let mut server = nats_server(port, data.path());
    wait_port(port).await;
    traffic(&env, 30).await;
    let lines = shipped(&env, Duration::from_secs(60)).await;
    let copy = messages(&url, &stream).await;
    assert_eq!(copy.len() as u64, lines, "every line, once");
    let (ok, out) = verify(&url, &stream, &prefix);
    assert!(ok, "{out}");
    server.kill().unwrap();
    server.wait().unwrap();
}
