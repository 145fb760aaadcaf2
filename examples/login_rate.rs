//! Logins per second for `benches/run.py`: CONCURRENCY tasks each log in, run `select 1`,
//! say goodbye and start again until SECONDS are up. Prints one JSON line.
//!
//! Usage: login_rate postgres|mysql HOST:PORT USER PASSWORD DATABASE CONCURRENCY SECONDS
//!
//! PostgreSQL logins use tokio-postgres (SCRAM-SHA-256 when the server asks for it). MySQL
//! logins answer the greeting with a `caching_sha2_password` scramble, as MySQL 8 clients
//! do; a server that wants another plugin switches them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portcullis::protocol::mysql::handshake::{self, SHA2};
use portcullis::protocol::mysql::packet::{self, caps};
use tokio::net::TcpStream;

struct Target {
    addr: String,
    user: String,
    password: String,
    database: String,
}

async fn pg_login(t: &Target) -> Result<(), String> {
    let (host, port) = t.addr.rsplit_once(':').unwrap_or((&t.addr, "5432"));
    let conn = format!(
        "host={host} port={port} user={} password={} dbname={} sslmode=disable",
        t.user, t.password, t.database
    );
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let driver = tokio::spawn(connection);
    client
        .simple_query("select 1")
        .await
        .map_err(|e| e.to_string())?;
    drop(client);
    let _ = driver.await;
    Ok(())
}

async fn my_login(t: &Target) -> Result<(), String> {
    let mut s = TcpStream::connect(&t.addr)
        .await
        .map_err(|e| e.to_string())?;
    let _ = s.set_nodelay(true);
    let (_, greeting) = packet::read(&mut s, packet::MAX_LOGIN_PACKET)
        .await
        .map_err(|e| e.to_string())?;
    let server = handshake::parse_server_hello(&greeting)?;
    let caps = (caps::PROTOCOL_41
        | caps::SECURE_CONNECTION
        | caps::LONG_PASSWORD
        | caps::TRANSACTIONS
        | caps::MULTI_RESULTS
        | caps::PLUGIN_AUTH
        | caps::CONNECT_WITH_DB)
        & server.caps;
    let auth = handshake::sha2_scramble(&t.password, &server.scramble);
    let mut p = handshake::response_head(caps, 1 << 24, 45);
    p.extend_from_slice(t.user.as_bytes());
    p.push(0);
    p.push(auth.len() as u8);
    p.extend_from_slice(&auth);
    p.extend_from_slice(t.database.as_bytes());
    p.push(0);
    p.extend_from_slice(SHA2.as_bytes());
    p.push(0);
    packet::write(&mut s, 1, &p)
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let (seq, reply) = packet::read(&mut s, packet::MAX_LOGIN_PACKET)
            .await
            .map_err(|e| e.to_string())?;
        match reply.first() {
            Some(0x00) => break,
            Some(0x01) => continue, // AuthMoreData: fast authentication succeeded
            Some(0xFE) => {
                // AuthSwitchRequest: plugin name, then the new nonce.
                let rest = &reply[1..];
                let name_end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                let plugin = &rest[..name_end];
                let nonce = rest.get(name_end + 1..).unwrap_or_default();
                let nonce = nonce.strip_suffix(&[0]).unwrap_or(nonce);
                let answer = if plugin == SHA2.as_bytes() {
                    handshake::sha2_scramble(&t.password, nonce)
                } else {
                    handshake::native_scramble(&t.password, nonce)
                };
                packet::write(&mut s, seq.wrapping_add(1), &answer)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            _ => return Err(String::from_utf8_lossy(&reply).into_owned()),
        }
    }
    let mut query = vec![0x03];
    query.extend_from_slice(b"select 1");
    packet::write(&mut s, 0, &query)
        .await
        .map_err(|e| e.to_string())?;
    let mut eofs = 0;
    while eofs < 2 {
        let (_, p) = packet::read(&mut s, 1 << 24)
            .await
            .map_err(|e| e.to_string())?;
        match p.first() {
            Some(0xFF) => return Err(String::from_utf8_lossy(&p).into_owned()),
            Some(0xFE) if p.len() < 9 => eofs += 1,
            _ => {}
        }
    }
    packet::write(&mut s, 0, &[0x01])
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 7 {
        eprintln!(
            "usage: login_rate postgres|mysql HOST:PORT USER PASSWORD DATABASE CONCURRENCY SECONDS"
        );
        std::process::exit(2);
    }
    let mysql = args[0] == "mysql";
    let target = Arc::new(Target {
        addr: args[1].clone(),
        user: args[2].clone(),
        password: args[3].clone(),
        database: args[4].clone(),
    });
    let concurrency: usize = args[5].parse().unwrap_or(4);
    let seconds: u64 = args[6].parse().unwrap_or(5);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (logins, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (target, logins, errors) = (
            Arc::clone(&target),
            Arc::clone(&logins),
            Arc::clone(&errors),
        );
        let first_error = Arc::clone(&first_error);
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let result = if mysql {
                    my_login(&target).await
                } else {
                    pg_login(&target).await
                };
                match result {
                    Ok(()) => logins.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        if let Ok(mut f) = first_error.lock() {
                            f.get_or_insert(e);
                        }
                        errors.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let n = logins.load(Ordering::Relaxed);
    let first = first_error.lock().ok().and_then(|f| f.clone());
    println!(
        "{}",
        serde_json::json!({
            "logins": n,
            "per_second": n as f64 / elapsed,
            "errors": errors.load(Ordering::Relaxed),
            "first_error": first,
        })
    );
}
