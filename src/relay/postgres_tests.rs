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
        self.fe.on_frame(tag, body, None, &self.pending);
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
    assert!(s.pending.lock().expect("lock").is_idle());
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

fn execute(portal: &str) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend(0i32.to_be_bytes());
    b
}

#[test]
fn a_rejected_parse_does_not_rename_the_statement_the_server_keeps() {
    let mut s = Session::new();
    // s1 = DELETE, accepted.
    s.client(b'P', &parse("s1", "DELETE FROM t"));
    s.client(b'S', b"");
    s.server(b'1', b"");
    s.server(b'Z', b"I");
    // s1 = SELECT 1, rejected (42P05 duplicate prepared statement), then, after the Sync,
    // Bind/Execute s1 in the same pipeline: the server runs the DELETE.
    s.client(b'P', &parse("s1", "SELECT 1"));
    s.client(b'S', b"");
    s.client(b'B', &bind("", "s1", &[]));
    s.client(b'E', &execute(""));
    s.client(b'S', b"");
    s.server(b'E', &error("42P05"));
    s.server(b'Z', b"I");
    s.server(b'2', b"");
    s.server(b'C', &cstr("DELETE 3"));
    s.server(b'Z', b"I");
    let seen: Vec<_> = s
        .out
        .iter()
        .map(|o| (o.op, &*o.statement, o.error_code.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (Op::Parse, "SELECT 1", Some("42P05".to_string())),
            (Op::Execute, "DELETE FROM t", None),
        ]
    );
    assert_eq!(s.out[1].rows, 3);
}

#[test]
fn the_unnamed_statement_and_portals_follow_the_server() {
    let mut s = Session::new();
    s.client(b'P', &parse("", "SELECT 2"));
    s.client(b'B', &bind("p", "", &[]));
    s.client(b'S', b"");
    s.server(b'1', b"");
    s.server(b'2', b"");
    s.server(b'Z', b"T");
    // A failing re-Parse of the unnamed statement inside the pipeline skips to Sync: the
    // portal p (bound before, in the transaction) still runs SELECT 2.
    s.client(b'P', &parse("", "SELEC 3"));
    s.client(b'S', b"");
    s.client(b'E', &execute("p"));
    s.client(b'S', b"");
    s.server(b'E', &error("42601"));
    s.server(b'Z', b"E");
    s.server(b'D', b"");
    s.server(b'C', &cstr("SELECT 1"));
    s.server(b'Z', b"T");
    assert_eq!(s.out[1].op, Op::Execute);
    assert_eq!(&*s.out[1].statement, "SELECT 2");
    // Close, then an Execute of the closed portal finds nothing.
    let mut close = vec![b'P'];
    close.extend(cstr("p"));
    s.client(b'C', &close);
    s.client(b'S', b"");
    s.server(b'3', b"");
    s.server(b'Z', b"I");
    s.client(b'E', &execute("p"));
    s.client(b'S', b"");
    s.server(b'E', &error("34000"));
    s.server(b'Z', b"I");
    assert_eq!(&*s.out[2].statement, "");
    assert_eq!(s.out[2].error_code.as_deref(), Some("34000"));
}

#[test]
fn a_function_call_is_logged_with_its_oid_and_arguments() {
    let mut s = Session::new();
    let mut f = 1234i32.to_be_bytes().to_vec();
    f.extend(0i16.to_be_bytes());
    f.extend(1i16.to_be_bytes());
    f.extend(2i32.to_be_bytes());
    f.extend(b"42");
    f.extend(0i16.to_be_bytes());
    s.client(b'F', &f);
    s.server(b'V', b"");
    s.server(b'Z', b"I");
    assert_eq!(s.out[0].op, Op::FunctionCall);
    assert_eq!(&*s.out[0].statement, "<function call: oid 1234>");
    assert_eq!(
        s.out[0].params.as_deref(),
        Some(&[Some("42".to_string())][..])
    );
}

#[test]
fn command_tags_give_their_row_counts() {
    let tag = |t: &str| tag_rows(&cstr(t));
    assert_eq!(tag("INSERT 0 5"), Some(5));
    assert_eq!(tag("SELECT 3"), Some(3));
    assert_eq!(tag("COPY 100"), Some(100));
    assert_eq!(tag("BEGIN"), None);
    assert_eq!(tag("SELECT "), None);
    assert_eq!(tag("SELECT 18446744073709551615"), Some(u64::MAX));
    assert_eq!(
        tag("SELECT 18446744073709551616"),
        None,
        "past u64: no count"
    );
    assert_eq!(tag_rows(b"SELECT 3"), None, "no NUL: not a tag");
}
