//! Slowloris: hundreds of connections that open and send nothing, or dribble one byte a
//! second, neither exhaust the gateway nor stop real logins; each is cut at the login
//! timeout, and the gateway keeps serving afterwards.

use crate::common;

use std::time::{Duration, Instant};

use common::pg::PgEnv;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SILENT: usize = 300;
const DRIBBLING: usize = 200;

/// Reads until the gateway closes the connection (or `limit` passes).
async fn closed_within(mut s: TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline.into(), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_dribbling_connections_do_not_block_logins_and_are_cut() {
    let env = PgEnv::new("[limits]\nlogin_timeout = \"5s\"\n").await;
    let pg = env.gw.postgres_addr.unwrap();
    let my = env.gw.mysql_addr.unwrap();
    let mut silent = Vec::new();
    for i in 0..SILENT {
        // Both protocols: PostgreSQL waits for a startup packet, MySQL for the response
        // to its greeting.
        let addr = if i % 2 == 0 { pg } else { my };
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut dribblers = Vec::new();
    for _ in 0..DRIBBLING {
        let mut s = TcpStream::connect(pg).await.unwrap();
        dribblers.push(tokio::spawn(async move {
            // A startup packet announcing 200 bytes, sent one byte a second.
            let packet = [0u8, 0, 0, 200, 0, 3, 0, 0, b'u', b's', b'e', b'r'];
            for b in packet {
                if s.write_all(&[b]).await.is_err() {
                    return true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            closed_within(s, Duration::from_secs(10)).await
        }));
    }

    // Real logins go through while all of them hang on.
    for _ in 0..5 {
        let c = env.alice().await;
        c.simple_query("select 1").await.unwrap();
    }
    // They ran while the slow connections were still open (not yet cut at 5 s).
    let mut probe = [0u8; 1];
    let still_open = tokio::time::timeout(Duration::from_millis(10), silent[0].read(&mut probe))
        .await
        .is_err();
    assert!(
        still_open,
        "logins were not held up until the slow ones were cut"
    );

    // Each slow connection is cut at the login timeout.
    let cut = futures::future::join_all(
        silent
            .into_iter()
            .map(|s| closed_within(s, Duration::from_secs(10))),
    )
    .await;
    assert!(cut.iter().all(|c| *c), "every silent connection was closed");
    for d in dribblers {
        assert!(d.await.unwrap(), "every dribbling connection was closed");
    }
    // And the gateway still serves.
    let c = env.alice().await;
    c.simple_query("select 1").await.unwrap();
    let events = env.events().await;
    let timeouts = events
        .iter()
        .filter(|e| e["kind"] == "auth_failed" && e["reason"] == "login timed out")
        .count();
    // MySQL connections time out after the greeting, inside the login: each is logged.
    // (PostgreSQL ones that never finish a startup packet are cut before any claim.)
    assert!(timeouts >= SILENT / 2, "{timeouts} logged timeouts");
}
