//! Observation over scripted message sequences, as a real server answers them.

use super::*;

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn parse(name: &str, q: &str) -> Vec<u8> {
    let mut b = cstr(name);
    b.extend(cstr(q));
    b.extend(0i16.to_be_bytes());
    b
}

fn bind(portal: &str, stmt: &str, params: &[Option<&str>]) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend(cstr(stmt));
    b.extend(0i16.to_be_bytes());
    b.extend((params.len() as i16).to_be_bytes());
    for p in params {
        match p {
            Some(v) => {
                b.extend((v.len() as i32).to_be_bytes());
                b.extend(v.as_bytes());
            }
            None => b.extend((-1i32).to_be_bytes()),
        }
    }
    b.extend(0i16.to_be_bytes());
    b
}

fn error(code: &str) -> Vec<u8> {
    let mut b = vec![b'S'];
    b.extend(cstr("ERROR"));
    b.push(b'C');
    b.extend(cstr(code));
    b.push(b'M');
    b.extend(cstr("boom"));
    b.push(0);
    b
}

struct Session {
    fe: Frontend,
    be: Backend,
    pending: Pending,
    out: Vec<Outcome>,
}

impl Session {
    fn new() -> Session {
        Session {
            fe: Frontend::default(),
            be: Backend::default(),
            pending: pending(),
            out: vec![],
        }
    }
    fn client(&mut self, tag: u8, body: &[u8]) {
        self.fe.on_frame(tag, body, &self.pending);
    }
    fn server(&mut self, tag: u8, body: &[u8]) {
        self.be.on_frame(tag, body, &self.pending, &mut self.out);
    }
}

#[test]
fn simple_query_with_rows() {
    let mut s = Session::new();
    s.client(b'Q', &cstr("select * from t"));
    s.server(b'T', b"");
    for _ in 0..3 {
        s.server(b'D', b"");
    }
    s.server(b'C', &cstr("SELECT 3"));
    assert!(s.out.is_empty(), "a Query completes at ReadyForQuery");
    s.server(b'Z', b"I");
    assert_eq!(s.out.len(), 1);
    let o = &s.out[0];
    assert_eq!(
        (&*o.statement, o.op, o.rows, o.error_code.clone()),
        ("select * from t", Op::Simple, 3, None)
    );
}

#[test]
fn multi_statement_query_is_one_event_with_summed_rows() {
    let mut s = Session::new();
    s.client(b'Q', &cstr("insert into t values (1); update t set a = 2"));
    s.server(b'C', &cstr("INSERT 0 1"));
    s.server(b'C', &cstr("UPDATE 4"));
    s.server(b'Z', b"I");
    assert_eq!(s.out.len(), 1);
    assert_eq!(s.out[0].rows, 5);
}

#[test]
fn simple_query_error_carries_its_sqlstate() {
    let mut s = Session::new();
    s.client(b'Q', &cstr("select * from missing"));
    s.server(b'E', &error("42P01"));
    s.server(b'Z', b"I");
    assert_eq!(s.out[0].error_code.as_deref(), Some("42P01"));
}

#[test]
fn extended_protocol_reports_each_execute_with_params() {
    let mut s = Session::new();
    s.client(b'P', &parse("s1", "select $1::int"));
    s.client(b'S', b"");
    s.server(b'1', b"");
    s.server(b'Z', b"I");
    for v in ["7", "8"] {
        s.client(b'B', &bind("", "s1", &[Some(v)]));
        s.client(b'E', &cstr(""));
        s.client(b'S', b"");
    }
    for _ in 0..2 {
        s.server(b'2', b"");
        s.server(b'D', b"");
        s.server(b'C', &cstr("SELECT 1"));
        s.server(b'Z', b"I");
    }
    assert_eq!(s.out.len(), 2);
    assert_eq!(
        s.out[1].params.as_deref(),
        Some(&[Some("8".to_string())][..])
    );
    assert_eq!(
        (&*s.out[1].statement, s.out[1].op, s.out[1].rows),
        ("select $1::int", Op::Execute, 1)
    );
    assert!(s.pending.lock().expect("lock").is_empty());
}

#[test]
fn an_error_skips_the_rest_of_the_pipeline_until_sync() {
    let mut s = Session::new();
    s.client(b'P', &parse("", "select 1/0"));
    s.client(b'B', &bind("", "", &[None]));
    s.client(b'E', &cstr(""));
    s.client(b'P', &parse("", "select 2"));
    s.client(b'B', &bind("", "", &[]));
    s.client(b'E', &cstr(""));
    s.client(b'S', b"");
    s.client(b'Q', &cstr("select 3"));
    s.server(b'1', b"");
    s.server(b'2', b"");
    s.server(b'E', &error("22012"));
    s.server(b'Z', b"E");
    s.server(b'C', &cstr("SELECT 1"));
    s.server(b'Z', b"I");
    let ops: Vec<_> = s.out.iter().map(|o| (o.op, o.error_code.clone())).collect();
    assert_eq!(
        ops,
        [(Op::Execute, Some("22012".into())), (Op::Simple, None)]
    );
}

#[test]
fn a_failed_parse_is_reported() {
    let mut s = Session::new();
    s.client(b'P', &parse("", "selec 1"));
    s.client(b'S', b"");
    s.server(b'E', &error("42601"));
    s.server(b'Z', b"I");
    assert_eq!(s.out[0].op, Op::Parse);
    assert_eq!(s.out[0].error_code.as_deref(), Some("42601"));
}

#[test]
fn copy_rows_come_from_the_command_tag() {
    let mut s = Session::new();
    s.client(b'Q', &cstr("copy t from stdin"));
    s.server(b'G', b"");
    s.client(b'd', b"1\n2\n");
    s.client(b'c', b"");
    s.server(b'C', &cstr("COPY 2"));
    s.server(b'Z', b"I");
    assert_eq!(s.out[0].rows, 2);
}

#[test]
fn garbage_bodies_do_not_panic() {
    let mut s = Session::new();
    for tag in [b'Q', b'P', b'B', b'E', b'C', b'D'] {
        s.client(tag, &[0xff, 0x00, 0x7f]);
        s.client(tag, &[]);
    }
    for tag in [b'C', b'E', b'Z', b'D', b'1'] {
        s.server(tag, &[0xff]);
        s.server(tag, &[]);
    }
}
