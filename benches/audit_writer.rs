//! How many events a second the monitoring-log writer sustains, and what one event costs
//! to encode: `cargo bench --bench audit_writer`. Sessions (tasks) record `query` events
//! as fast as they can into a fresh log with the default settings (64 MiB rotation,
//! `fsync = "interval"`), then `always` and `never` for comparison; the chain is verified
//! afterwards so a fast but wrong writer cannot pass.

use std::sync::Arc;
use std::time::Instant;

use portcullis::audit::{Common, Event, Kind, spawn_writer, verify_dir};
use portcullis::config::{AuditConfig, Fsync, OnFailure};

const SESSIONS: usize = 8;
const PER_SESSION: usize = 125_000;

fn query(common: &Arc<Common>, i: usize) -> Event {
    Event {
        common: Arc::clone(common),
        kind: Kind::Query {
            statement: Arc::from("SELECT abalance FROM pgbench_accounts WHERE aid = $1"),
            op: portcullis::audit::Op::Execute,
            params: Some(Arc::from(vec![Some(i.to_string())])),
            duration_us: 42,
            rows: 1,
            status: portcullis::audit::Status::Ok,
            error_code: None,
            guardrails: None,
            masked: None,
            cut: None,
        },
    }
}

async fn run(fsync: Fsync, label: &str, events_per_session: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = AuditConfig {
        dir: dir.path().join("audit"),
        fsync,
        durability: portcullis::config::Durability::Written,
        on_failure: OnFailure::Block,
        rotate_bytes: 64 << 20,
        statements: true,
        checkpoint_interval: std::time::Duration::from_secs(10),
        checkpoint_events: 10_000,
        signing_key: None,
        nats: None,
    };
    let lost = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (recorder, writer) = spawn_writer(&config, "bench", lost, None).expect("writer");
    let start = Instant::now();
    let tasks: Vec<_> = (0..SESSIONS)
        .map(|s| {
            let recorder = recorder.clone();
            tokio::spawn(async move {
                let mut common = Common::new(
                    &format!("bench-session-{s}"),
                    portcullis::audit::Channel::Postgres,
                    "127.0.0.1:50000".parse().expect("address"),
                );
                common.user = "alice".into();
                common.groups = vec!["engineering".into()];
                common.resource_role = "orders-ro".into();
                common.resource = "orders-db".into();
                let common = Arc::new(common);
                for i in 0..events_per_session {
                    recorder
                        .record(query(&common, i))
                        .await
                        .expect("writer open");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("session task");
    }
    drop(recorder);
    writer.finish().await;
    let elapsed = start.elapsed();
    let total = SESSIONS * events_per_session;
    let report = verify_dir(&config.dir).expect("read log");
    assert!(report.ok && report.lines as usize == total, "{report:?}");
    let bytes: u64 = std::fs::read_dir(&config.dir)
        .expect("log dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "writer fsync={label:<8} {total:>9} events in {:>6.2} s = {:>9.0} events/s, {:>6.1} MB/s, {} B/event",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        bytes as f64 / elapsed.as_secs_f64() / 1e6,
        bytes / total as u64
    );
}

fn encode_cost() {
    let mut common = Common::new(
        "s",
        portcullis::audit::Channel::Postgres,
        "127.0.0.1:1".parse().expect("address"),
    );
    common.user = "alice".into();
    let common = Arc::new(common);
    let n = 200_000;
    let start = Instant::now();
    let mut bytes = 0;
    for i in 0..n {
        let e = query(&common, i);
        bytes += serde_json::to_vec(&e.kind).map(|v| v.len()).unwrap_or(0);
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "encode query kind fields: {ns:.0} ns/event ({} B)",
        bytes / n
    );
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let per = if quick { 1_000 } else { PER_SESSION };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    encode_cost();
    rt.block_on(run(Fsync::Interval, "interval", per));
    rt.block_on(run(Fsync::Never, "never", per));
    rt.block_on(run(Fsync::Always, "always", per / 10));
}
