//! Micro-benchmarks of the per-statement hot path, without sockets: frame splitting and
//! observation per protocol (the work the relay task adds to a copy), and the writer's
//! per-event encoding and sealing. `cargo bench --bench hot_path`; figures in
//! docs/performance.md. The side-by-side harness (benches/run.sh) measures the whole.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portcullis::audit::Kind;
use portcullis::audit::chain::{members, seal_into};
use portcullis::audit::encode::{Clock, kind_json};
use portcullis::relay::Outcome;
use portcullis::relay::framer::Framer;
use portcullis::relay::mysql as my;
use portcullis::relay::postgres::sides as pg;
use portcullis::relay::{ClientSide, ServerSide};

fn pg_msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    m.extend_from_slice(body);
    m
}

fn my_packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = (payload.len() as u32).to_le_bytes()[..3].to_vec();
    p.push(seq);
    p.extend_from_slice(payload);
    p
}

/// pgbench -S, simple protocol: one Query, its answer.
fn pg_simple() -> (Vec<u8>, Vec<u8>) {
    let client = pg_msg(
        b'Q',
        b"SELECT abalance FROM pgbench_accounts WHERE aid = 48213;\0",
    );
    let mut row_desc = 1u16.to_be_bytes().to_vec();
    row_desc.extend_from_slice(b"abalance\0");
    row_desc.extend_from_slice(&[
        0, 0, 0, 0, 0, 0, 0, 0, 0, 23, 0, 4, 255, 255, 255, 255, 0, 0,
    ]);
    (client, pg_answer(pg_msg(b'T', &row_desc)))
}

/// `head` (RowDescription or BindComplete), one single-column row, SELECT 1, ready.
fn pg_answer(head: Vec<u8>) -> Vec<u8> {
    let mut data_row = 1u16.to_be_bytes().to_vec();
    data_row.extend_from_slice(&1u32.to_be_bytes());
    data_row.push(b'0');
    [
        head,
        pg_msg(b'D', &data_row),
        pg_msg(b'C', b"SELECT 1\0"),
        pg_msg(b'Z', b"I"),
    ]
    .concat()
}

/// pgbench -S -M prepared: Bind, Execute, Sync and the answer.
fn pg_prepared() -> (Vec<u8>, Vec<u8>) {
    let mut bind = b"\0P0_1\0".to_vec();
    bind.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 5]);
    bind.extend_from_slice(b"48213");
    bind.extend_from_slice(&[0, 0]);
    let client = [
        pg_msg(b'B', &bind),
        pg_msg(b'E', b"\0\0\0\0\0"),
        pg_msg(b'S', b""),
    ]
    .concat();
    (client, pg_answer(pg_msg(b'2', b"")))
}

/// sysbench point select: COM_QUERY and a one-row result set (EOF-style).
fn my_simple() -> (Vec<u8>, Vec<u8>) {
    let client = my_packet(0, b"\x03SELECT c FROM sbtest1 WHERE id=4821");
    let mut coldef = Vec::new();
    for s in ["def", "sbtest", "sbtest1", "sbtest1", "c", "c"] {
        coldef.push(s.len() as u8);
        coldef.extend_from_slice(s.as_bytes());
    }
    coldef.extend_from_slice(&[0x0c, 0x21, 0, 0xe0, 1, 0, 0, 0xfe, 0, 0, 0, 0, 0]);
    let mut row = vec![120];
    row.extend_from_slice(&[b'7'; 120]);
    let server = [
        my_packet(1, &[1]),
        my_packet(2, &coldef),
        my_packet(3, &[0xfe, 0, 0, 2, 0]),
        my_packet(4, &row),
        my_packet(5, &[0xfe, 0, 0, 2, 0]),
    ]
    .concat();
    (client, server)
}

/// One statement through both directions' framers and observers, as the relay does it.
fn statement<C: ClientSide, S: ServerSide>(
    c: &mut C,
    s: &mut S,
    fe: &mut Framer<C::Wire>,
    be: &mut Framer<S::Wire>,
    client: &[u8],
    server: &[u8],
    out: &mut Vec<Outcome>,
) -> usize {
    let _ = fe.feed(client, C::wants, |h, body, _| {
        black_box(c.frame(h, body, None));
    });
    let _ = be.feed(server, S::wants, |h, body, _| {
        s.frame(h, body, out);
    });
    let n = out.len();
    out.clear();
    n
}

fn observe(cr: &mut Criterion) {
    let mut g = cr.benchmark_group("observe");
    g.throughput(Throughput::Elements(1));
    for (name, (client, server)) in [("pg_simple", pg_simple()), ("pg_prepared", pg_prepared())] {
        let (mut c, mut s) = pg::pair();
        let (mut fe, mut be) = (Framer::default(), Framer::with_limit(pg::PgServer::LIMIT));
        let mut out = Vec::new();
        // The prepared shape needs its statement parsed once, as on a real session.
        let mut parse = b"P0_1\0SELECT abalance FROM pgbench_accounts WHERE aid = $1;\0".to_vec();
        parse.extend_from_slice(&[0, 0]);
        let setup = [pg_msg(b'P', &parse), pg_msg(b'S', b"")].concat();
        statement(
            &mut c,
            &mut s,
            &mut fe,
            &mut be,
            &setup,
            &[pg_msg(b'1', b""), pg_msg(b'Z', b"I")].concat(),
            &mut out,
        );
        assert_eq!(
            statement(&mut c, &mut s, &mut fe, &mut be, &client, &server, &mut out),
            1,
            "{name}: one statement observed"
        );
        g.bench_function(name, |b| {
            b.iter(|| statement(&mut c, &mut s, &mut fe, &mut be, &client, &server, &mut out))
        });
    }
    let (client, server) = my_simple();
    let (mut c, mut s) = my::pair(Box::new(|_| None));
    let (mut fe, mut be) = (Framer::default(), Framer::with_limit(my::MyServer::LIMIT));
    let mut out = Vec::new();
    assert_eq!(
        statement(&mut c, &mut s, &mut fe, &mut be, &client, &server, &mut out),
        1,
        "mysql: one statement observed"
    );
    g.bench_function("mysql_simple", |b| {
        b.iter(|| statement(&mut c, &mut s, &mut fe, &mut be, &client, &server, &mut out))
    });
    g.finish();
}

/// Splitting a large result: 1 000 DataRows of ~110 bytes per iteration.
fn framing(cr: &mut Criterion) {
    let mut row = 2u16.to_be_bytes().to_vec();
    row.extend_from_slice(&7u32.to_be_bytes());
    row.extend_from_slice(b"1234567");
    row.extend_from_slice(&92u32.to_be_bytes());
    row.extend_from_slice(&[b'x'; 92]);
    let rows: Vec<u8> = (0..1000).flat_map(|_| pg_msg(b'D', &row)).collect();
    let mut g = cr.benchmark_group("framing");
    g.throughput(Throughput::Bytes(rows.len() as u64));
    let (_, mut s) = pg::pair();
    let mut be = Framer::<<pg::PgServer as ServerSide>::Wire>::with_limit(pg::PgServer::LIMIT);
    let mut out = Vec::new();
    g.bench_function("pg_data_rows", |b| {
        b.iter(|| {
            // In 32 KiB reads, as the relay's buffer delivers them.
            for chunk in rows.chunks(32 * 1024) {
                let _ = be.feed(chunk, pg::PgServer::wants, |h, body, _| {
                    s.frame(h, body, &mut out);
                });
            }
        })
    });
    g.finish();
}

fn event(cr: &mut Criterion) {
    let kind = Kind::Query {
        statement: Arc::from("SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"),
        op: portcullis::audit::Op::Simple,
        params: None,
        duration_us: 87,
        rows: 1,
        status: portcullis::audit::Status::Ok,
        error_code: None,
        guardrails: None,
        masked: None,
        cut: None,
    };
    let common = br#"{"session_id":"0b6c1f3e-8d1e-4c55-9b1a-2f8f9b3c7d11","user":"alice","groups":["eng"],"resource_role":"bench","resource":"pg","protocol":"postgres","mode":"native","client_addr":"127.0.0.1:52144","application_name":"pgbench","tls":false}"#;
    let (mut buf, mut ts, mut line, mut clock) =
        (Vec::new(), Vec::new(), Vec::new(), Clock::default());
    let prev = "0".repeat(64);
    let mut g = cr.benchmark_group("event");
    g.throughput(Throughput::Elements(1));
    g.bench_function("query_encode", |b| {
        b.iter(|| {
            buf.clear();
            kind_json(black_box(&kind), &mut buf).map(|()| buf.len())
        })
    });
    g.bench_function("query_encode_and_seal", |b| {
        b.iter(|| {
            buf.clear();
            let _ = kind_json(black_box(&kind), &mut buf);
            clock.now_into(&mut ts);
            seal_into(&mut line, 1, &ts, &prev, &[members(&buf), members(common)])
        })
    });
    g.bench_function("query_serde_json", |b| {
        b.iter(|| {
            buf.clear();
            serde_json::to_writer(&mut buf, black_box(&kind)).map(|()| buf.len())
        })
    });
    g.finish();
}

/// Parse and decide per statement (a guard with a fresh cache each time), and a repeated
/// text (the cache).
fn guardrails(cr: &mut Criterion) {
    use portcullis::guardrail::Guard;
    use portcullis::model::{Guardrail, Protocol};
    let rules: Vec<Arc<Guardrail>> = serde_json::from_str::<Vec<Guardrail>>(
        r#"[
        {"name": "no-ddl", "resource_roles": ["r"], "action": "block", "classes": ["ddl", "dcl"]},
        {"name": "no-bare-writes", "resource_roles": ["r"], "action": "block",
         "update_without_where": true, "delete_without_where": true},
        {"name": "no-secrets", "resource_roles": ["r"], "action": "block",
         "tables": ["*.secrets", "billing.*"]},
        {"name": "watch-writes", "resource_roles": ["r"], "action": "warn", "classes": ["write"]}
    ]"#,
    )
    .expect("rules")
    .into_iter()
    .map(Arc::new)
    .collect();
    let base = Guard::new(&rules, "r", &[], Protocol::Postgres, "public").expect("guard");
    let mut g = cr.benchmark_group("guardrail");
    g.throughput(Throughput::Elements(1));
    for (name, text) in [
        (
            "point_select",
            "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;",
        ),
        (
            "update",
            "UPDATE pgbench_accounts SET abalance = abalance + -4120 WHERE aid = 10332;",
        ),
        (
            "insert",
            "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 71262, -4120, CURRENT_TIMESTAMP);",
        ),
        (
            "join_cte",
            "WITH recent AS (SELECT customer_id, sum(total) AS t FROM orders WHERE created_at > now() - interval '7 days' GROUP BY 1) SELECT c.name, r.t FROM customers c JOIN recent r ON r.customer_id = c.id WHERE c.region IN (SELECT id FROM regions WHERE active) ORDER BY r.t DESC LIMIT 20",
        ),
        ("blocked_drop", "DROP TABLE billing.invoices"),
    ] {
        g.bench_function(format!("parse_decide_{name}"), |b| {
            b.iter(|| base.clone().check(black_box(text)))
        });
    }
    let mut warm = base.clone();
    let text = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";
    warm.check(text);
    g.bench_function("cached", |b| b.iter(|| warm.check(black_box(text))));
    g.finish();
}

criterion_group!(benches, observe, framing, event, guardrails);
criterion_main!(benches);
