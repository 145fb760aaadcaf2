//! What the monitoring log needs from a relayed PostgreSQL session, read from frames the
//! `Framer` reports: the client's `Query`/`Parse`/`Bind`/`Execute`/`Describe`/`Close`/
//! `Sync` queue up expected responses; the server's responses complete them in order
//! (the protocol guarantees it), producing one `Outcome` per simple `Query` and per
//! `Execute` (and per failed `Parse`/`Bind`). DataRows are counted, never decoded.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::audit::Op;
pub use crate::relay::{Outcome, Params};

/// A response the server owes the client, in order.
#[derive(Debug)]
pub enum Expect {
    Query(Running),
    Parse(Running),
    Bind(Running),
    Execute(Running),
    Describe,
    Close,
    Sync,
}

#[derive(Debug)]
pub struct Running {
    statement: Arc<str>,
    params: Params,
    started: Instant,
    /// DataRows seen.
    rows: u64,
    /// Sum of the row counts in CommandComplete tags, when any had one.
    tag_rows: Option<u64>,
    error_code: Option<String>,
}

impl Running {
    fn new(statement: Arc<str>, params: Params) -> Running {
        Running {
            statement,
            params,
            started: Instant::now(),
            rows: 0,
            tag_rows: None,
            error_code: None,
        }
    }

    fn finish(self, op: Op) -> Outcome {
        Outcome {
            statement: self.statement,
            op,
            params: self.params,
            duration_us: self.started.elapsed().as_micros() as u64,
            rows: self.tag_rows.unwrap_or(self.rows),
            error_code: self.error_code,
            application_name: None,
        }
    }
}

/// The queue shared by the two directions of one session.
pub type Pending = Arc<Mutex<VecDeque<Expect>>>;

pub fn pending() -> Pending {
    Arc::default()
}

/// Client → server: remembers prepared statements and portals, queues expectations.
#[derive(Debug, Default)]
pub struct Frontend {
    statements: HashMap<String, Prepared>,
    portals: HashMap<String, (Arc<str>, Params)>,
}

/// A Parse: the statement text and the parameter types it named (0: unnamed).
#[derive(Debug, Default)]
struct Prepared {
    text: Arc<str>,
    types: Box<[u32]>,
}

/// Frontend tags whose body we read.
pub fn frontend_wants(tag: u8) -> bool {
    matches!(tag, b'Q' | b'P' | b'B' | b'E' | b'C')
}

/// Backend tags whose body we read.
pub fn backend_wants(tag: u8) -> bool {
    matches!(tag, b'C' | b'E' | b'Z' | b'S')
}

impl Frontend {
    /// One client frame. Returns true on `Terminate`.
    pub fn on_frame(&mut self, tag: u8, body: &[u8], pending: &Pending) -> bool {
        let mut r = Reader(body);
        let expect = match tag {
            b'Q' => Expect::Query(Running::new(r.text(), None)),
            b'P' => {
                let name = r.cstr().unwrap_or_default().to_owned();
                let text = r.text();
                let n = r.i16().unwrap_or(0).max(0);
                let types = (0..n).map_while(|_| r.i32()).map(|t| t as u32).collect();
                let prepared = Prepared {
                    text: Arc::clone(&text),
                    types,
                };
                self.statements.insert(name, prepared);
                Expect::Parse(Running::new(text, None))
            }
            b'B' => {
                let portal = r.cstr().unwrap_or_default();
                let stmt = r.cstr().unwrap_or_default();
                let (text, params) = match self.statements.get(stmt) {
                    Some(p) => (Arc::clone(&p.text), bind_params(&mut r, &p.types)),
                    None => (Arc::from(""), bind_params(&mut r, &[])),
                };
                let bound = (Arc::clone(&text), params.clone());
                // The same portal (usually the unnamed one) again: no new key.
                match self.portals.get_mut(portal) {
                    Some(slot) => *slot = bound,
                    None => {
                        self.portals.insert(portal.to_owned(), bound);
                    }
                }
                Expect::Bind(Running::new(text, params))
            }
            b'E' => {
                let portal = r.cstr().unwrap_or_default();
                let (text, params) = self
                    .portals
                    .get(portal)
                    .cloned()
                    .unwrap_or_else(|| (Arc::from(""), None));
                Expect::Execute(Running::new(text, params))
            }
            b'D' => Expect::Describe,
            b'C' => {
                let kind = r.u8();
                let name = r.cstr().unwrap_or_default();
                match kind {
                    Some(b'S') => drop(self.statements.remove(name)),
                    _ => drop(self.portals.remove(name)),
                };
                Expect::Close
            }
            b'S' => Expect::Sync,
            b'F' => Expect::Query(Running::new(Arc::from("<function call>"), None)),
            b'X' => return true,
            _ => return false,
        };
        if let Ok(mut q) = pending.lock() {
            q.push_back(expect);
        }
        false
    }
}

/// Bind: formats, then values; text-format values as sent, binary ones in text form when
/// the Parse named their type (`params::binary`).
fn bind_params(r: &mut Reader, types: &[u32]) -> Params {
    let nformats = r.i16()?;
    let mut formats = Vec::with_capacity(nformats.max(0) as usize);
    for _ in 0..nformats {
        formats.push(r.i16()?);
    }
    let nparams = r.i16()?.max(0) as usize;
    let mut params = Vec::with_capacity(nparams);
    for i in 0..nparams {
        let len = r.i32()?;
        let binary = match formats.len() {
            0 => false,
            1 => formats[0] == 1,
            _ => formats.get(i).copied() == Some(1),
        };
        if len < 0 {
            params.push(None);
            continue;
        }
        let bytes = r.take(len as usize)?;
        params.push(Some(if binary {
            crate::protocol::postgres::params::binary(types.get(i).copied().unwrap_or(0), bytes)
        } else {
            String::from_utf8_lossy(bytes).into_owned()
        }));
    }
    Some(params.into())
}

/// Server → client: completes expectations and reports outcomes.
#[derive(Debug, Default)]
pub struct Backend {
    /// SQLSTATE of a FATAL error, if the server sent one.
    pub fatal: Option<String>,
    /// DataRows counted since the last other frame: rows stream without taking the lock.
    rows: u64,
    /// The transaction status of the last ReadyForQuery (`I`, `T`, `E`; 0 before one).
    pub ready: u8,
    /// An `application_name` the server reported, for the next outcome.
    renamed: Option<Arc<str>>,
}

impl Backend {
    pub fn on_frame(&mut self, tag: u8, body: &[u8], pending: &Pending, out: &mut Vec<Outcome>) {
        if tag == b'D' {
            self.rows += 1;
            return;
        }
        if tag == b'S' {
            let mut r = Reader(body);
            if r.cstr() == Some("application_name") {
                self.renamed = Some(Arc::from(r.cstr().unwrap_or_default()));
            }
            return;
        }
        let before = out.len();
        self.complete(tag, body, pending, out);
        if out.len() > before
            && let Some(name) = self.renamed.take()
        {
            out[before].application_name = Some(name);
        }
    }

    #[inline(always)]
    fn complete(&mut self, tag: u8, body: &[u8], pending: &Pending, out: &mut Vec<Outcome>) {
        let Ok(mut q) = pending.lock() else { return };
        let rows = std::mem::take(&mut self.rows);
        if rows > 0
            && let Some(Expect::Query(r) | Expect::Execute(r)) = q.front_mut()
        {
            r.rows += rows;
        }
        match tag {
            b'C' | b'I' | b's' => {
                let rows = if tag == b'C' { tag_rows(body) } else { None };
                match q.front_mut() {
                    // A multi-statement Query sums its statements' rows.
                    Some(Expect::Query(r)) => {
                        if let Some(n) = rows {
                            r.tag_rows = Some(r.tag_rows.unwrap_or(0) + n);
                        }
                    }
                    Some(Expect::Execute(_)) => {
                        if let Some(Expect::Execute(mut r)) = q.pop_front() {
                            r.tag_rows = rows;
                            out.push(r.finish(Op::Execute));
                        }
                    }
                    _ => {}
                }
            }
            b'1' => pop_if(&mut q, |e| matches!(e, Expect::Parse(_))),
            b'2' => pop_if(&mut q, |e| matches!(e, Expect::Bind(_))),
            b'3' => pop_if(&mut q, |e| matches!(e, Expect::Close)),
            b'T' | b'n' => pop_if(&mut q, |e| matches!(e, Expect::Describe)),
            b'E' => {
                let (severity, code) = error_fields(body);
                if severity.as_deref() == Some("FATAL") || severity.as_deref() == Some("PANIC") {
                    self.fatal = code.clone().or(Some(String::new()));
                }
                match q.front_mut() {
                    Some(Expect::Query(r)) => r.error_code = code,
                    Some(Expect::Sync) | None => {}
                    Some(_) => {
                        // The failed message's outcome; the rest up to Sync is skipped.
                        let failed = match q.pop_front() {
                            Some(Expect::Parse(r)) => Some((Op::Parse, r)),
                            Some(Expect::Bind(r)) => Some((Op::Bind, r)),
                            Some(Expect::Execute(r)) => Some((Op::Execute, r)),
                            _ => None,
                        };
                        if let Some((op, mut r)) = failed {
                            r.error_code = code;
                            out.push(r.finish(op));
                        }
                        while q
                            .front()
                            .is_some_and(|e| !matches!(e, Expect::Sync | Expect::Query(_)))
                        {
                            q.pop_front();
                        }
                    }
                }
            }
            b'Z' => {
                self.ready = body.first().copied().unwrap_or(0);
                while let Some(e) = q.pop_front() {
                    match e {
                        Expect::Query(r) => {
                            out.push(r.finish(Op::Simple));
                            break;
                        }
                        Expect::Sync => break,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

fn pop_if(q: &mut VecDeque<Expect>, is: impl Fn(&Expect) -> bool) {
    if q.front().is_some_and(is) {
        q.pop_front();
    }
}

/// `INSERT 0 5` → 5, `SELECT 3` → 3, `COPY 100` → 100, `BEGIN` → None.
fn tag_rows(body: &[u8]) -> Option<u64> {
    let tag = Reader(body).cstr()?;
    tag.rsplit(' ').next()?.parse().ok()
}

/// ErrorResponse: (Byte1 field type, CString value)*, 0 → (severity, SQLSTATE).
fn error_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    let mut r = Reader(body);
    let (mut severity, mut code) = (None, None);
    while let Some(t) = r.u8() {
        if t == 0 {
            break;
        }
        let value = r.cstr().unwrap_or_default();
        match t {
            b'V' => severity = Some(value.to_owned()),
            b'S' if severity.is_none() => severity = Some(value.to_owned()),
            b'C' => code = Some(value.to_owned()),
            _ => {}
        }
    }
    (severity, code)
}

/// Bounds-checked reads over a frame body; every read is `None` past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn cstr(&mut self) -> Option<&'a str> {
        let end = self.0.iter().position(|&b| b == 0)?;
        let s = std::str::from_utf8(&self.0[..end]).ok();
        self.0 = &self.0[end + 1..];
        s
    }
    /// A statement text: up to the NUL (or the end, when truncated).
    fn text(&mut self) -> Arc<str> {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        let s = crate::protocol::text(&self.0[..end]);
        self.0 = self.0.get(end + 1..).unwrap_or_default();
        s
    }
}

#[cfg(test)]
#[path = "postgres_tests.rs"]
mod tests;

/// The PostgreSQL observers for the shared relay.
pub mod sides {
    use super::*;
    use crate::relay::framer::Pg;
    use crate::relay::{ClientSide, ServerSide, Verdict};

    pub struct PgClient {
        pub fe: Frontend,
        pub pending: Pending,
        /// Answer Terminate with `Verdict::Hold` (the upstream may serve another session).
        pub hold_goodbye: bool,
    }

    pub struct PgServer {
        pub be: Backend,
        pub pending: Pending,
    }

    /// The two observers of one session, sharing the queue of expected responses.
    pub fn pair() -> (PgClient, PgServer) {
        let pending = pending();
        (
            PgClient {
                fe: Frontend::default(),
                pending: Arc::clone(&pending),
                hold_goodbye: false,
            },
            PgServer {
                be: Backend::default(),
                pending,
            },
        )
    }

    impl ClientSide for PgClient {
        type Wire = Pg;
        fn wants(h: &[u8]) -> bool {
            frontend_wants(h[0])
        }
        fn frame(&mut self, h: &[u8], body: &[u8]) -> Verdict {
            if !self.fe.on_frame(h[0], body, &self.pending) {
                Verdict::Pass
            } else if self.hold_goodbye {
                Verdict::Hold
            } else {
                Verdict::Bye
            }
        }
    }

    impl PgServer {
        /// The upstream is outside any transaction with nothing outstanding and no fatal
        /// error: safe to reset and hand to another session.
        pub fn reusable(&self) -> bool {
            self.be.ready == b'I'
                && self.be.fatal.is_none()
                && self.pending.lock().is_ok_and(|q| q.is_empty())
        }
    }

    impl ServerSide for PgServer {
        type Wire = Pg;
        const LIMIT: usize = crate::relay::framer::CAPTURE_LIMIT;
        fn wants(h: &[u8]) -> bool {
            backend_wants(h[0])
        }
        fn frame(&mut self, h: &[u8], body: &[u8], out: &mut Vec<Outcome>) {
            self.be.on_frame(h[0], body, &self.pending, out);
        }
        fn fatal(&self) -> Option<String> {
            self.be.fatal.clone()
        }
        fn goodbye(&self, message: &str) -> Option<Vec<u8>> {
            let bytes = crate::protocol::postgres::front::fatal_bytes(
                crate::protocol::postgres::front::sqlstate::ADMIN_SHUTDOWN,
                message,
            );
            Some(bytes.to_vec())
        }
    }
}
