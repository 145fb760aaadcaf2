//! Load generator for `scripts/soak.sh`: opens PostgreSQL and MySQL sessions through the
//! gateway (ramped over a few seconds), runs `select 1` in each with a short pause until
//! the time is up, and prints one JSON line: sessions opened, statements answered, errors.
//!
//! Usage: soak_load PG_ADDR MY_ADDR USER PASSWORD PG_ROLE MY_ROLE PG_SESSIONS MY_SESSIONS
//!        SECONDS [THINK_MS]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use portcullis::protocol::mysql::handshake::{ClientHello, login};
use portcullis::protocol::mysql::packet::{self, caps};
use tokio::net::TcpStream;

#[derive(Default)]
struct Tally {
    sessions: AtomicU64,
    statements: AtomicU64,
    errors: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
}

impl Tally {
    fn error(&self, e: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(e);
        }
    }
}

struct Plan {
    user: String,
    password: String,
    deadline: Instant,
    think: Duration,
}

async fn pg_session(addr: String, role: String, plan: Arc<Plan>, tally: Arc<Tally>) {
    let (host, port) = addr.rsplit_once(':').unwrap_or((&addr, "5432"));
    let conn = format!(
        "host={host} port={port} user={} password={} dbname={role} sslmode=disable",
        plan.user, plan.password
    );
    let client = match tokio_postgres::connect(&conn, tokio_postgres::NoTls).await {
        Ok((c, conn)) => {
            tokio::spawn(conn);
            c
        }
        Err(e) => return tally.error(format!("postgres login: {e}")),
    };
    tally.sessions.fetch_add(1, Ordering::Relaxed);
    while Instant::now() < plan.deadline {
        match client.simple_query("select 1").await {
            Ok(_) => tally.statements.fetch_add(1, Ordering::Relaxed),
            Err(e) => return tally.error(format!("postgres statement: {e}")),
        };
        tokio::time::sleep(plan.think).await;
    }
}

/// Reads one `select 1` answer: a result set (column count, definition, EOF, row, EOF).
async fn my_answer(s: &mut portcullis::tls::Stream) -> Result<(), String> {
    let mut eofs = 0;
    loop {
        let (_, p) = packet::read(s, 1 << 24).await.map_err(|e| e.to_string())?;
        match p.first() {
            Some(0xFF) => return Err(String::from_utf8_lossy(&p).into_owned()),
            Some(0x00) if eofs == 0 && p.len() > 1 && p.len() < 9 => return Ok(()),
            Some(0xFE) if p.len() < 9 => {
                eofs += 1;
                if eofs == 2 {
                    return Ok(());
                }
            }
            _ => {}
        }
    }
}

async fn my_session(addr: String, role: String, plan: Arc<Plan>, tally: Arc<Tally>) {
    let tcp = match TcpStream::connect(&addr).await {
        Ok(s) => s,
        Err(e) => return tally.error(format!("mysql connect: {e}")),
    };
    let hello = ClientHello {
        caps: caps::PROTOCOL_41
            | caps::SECURE_CONNECTION
            | caps::LONG_PASSWORD
            | caps::TRANSACTIONS
            | caps::MULTI_RESULTS
            | caps::PLUGIN_AUTH,
        max_packet: 1 << 24,
        charset: 45,
        ..ClientHello::default()
    };
    let mut s = match login(tcp, &hello, &plan.user, &plan.password, &role, None).await {
        Ok((s, _)) => s,
        Err(e) => return tally.error(format!("mysql login: {e}")),
    };
    tally.sessions.fetch_add(1, Ordering::Relaxed);
    let mut query = vec![0x03];
    query.extend_from_slice(b"select 1");
    while Instant::now() < plan.deadline {
        if let Err(e) = packet::write(&mut s, 0, &query).await {
            return tally.error(format!("mysql write: {e}"));
        }
        match my_answer(&mut s).await {
            Ok(()) => tally.statements.fetch_add(1, Ordering::Relaxed),
            Err(e) => return tally.error(format!("mysql statement: {e}")),
        };
        tokio::time::sleep(plan.think).await;
    }
    let _ = packet::write(&mut s, 0, &[0x01]).await; // COM_QUIT
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 9 {
        eprintln!(
            "usage: soak_load PG_ADDR MY_ADDR USER PASSWORD PG_ROLE MY_ROLE PG_SESSIONS MY_SESSIONS SECONDS [THINK_MS]"
        );
        std::process::exit(2);
    }
    let number = |i: usize| -> u64 { args[i].parse().unwrap_or(0) };
    let (pg_n, my_n, seconds) = (number(6), number(7), number(8));
    let think = Duration::from_millis(args.get(9).and_then(|t| t.parse().ok()).unwrap_or(50));
    let ramp = Duration::from_secs(5);
    let plan = Arc::new(Plan {
        user: args[2].clone(),
        password: args[3].clone(),
        deadline: Instant::now() + ramp + Duration::from_secs(seconds),
        think,
    });
    let tally = Arc::new(Tally::default());
    let total = (pg_n + my_n).max(1);
    let mut tasks = Vec::new();
    for i in 0..pg_n + my_n {
        let (plan, tally) = (Arc::clone(&plan), Arc::clone(&tally));
        let delay = ramp.mul_f64(i as f64 / total as f64);
        let (pg, my) = (args[0].clone(), args[1].clone());
        let (pg_role, my_role) = (args[4].clone(), args[5].clone());
        let even = i % 2 == 0;
        // Interleave the protocols while both have sessions left.
        let postgres = if i < 2 * pg_n.min(my_n) {
            even
        } else {
            pg_n > my_n
        };
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if postgres {
                pg_session(pg, pg_role, plan, tally).await
            } else {
                my_session(my, my_role, plan, tally).await
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let first = tally.first_error.lock().ok().and_then(|f| f.clone());
    println!(
        "{}",
        serde_json::json!({
            "sessions": tally.sessions.load(Ordering::Relaxed),
            "sessions_planned": pg_n + my_n,
            "statements": tally.statements.load(Ordering::Relaxed),
            "errors": tally.errors.load(Ordering::Relaxed),
            "first_error": first,
        })
    );
}
