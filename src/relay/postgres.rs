//! What the monitoring log needs from a relayed PostgreSQL session, read from frames the
//! `Framer` reports. The client's `Query`/`Parse`/`Bind`/`Execute`/`Describe`/`Close`/
//! `Sync`/`FunctionCall` queue up expected responses; the server's responses complete
//! them in order (the protocol guarantees it), producing one `Outcome` per simple `Query`,
//! per `Execute` and per `FunctionCall` (and per failed `Parse`/`Bind`).
//!
//! What a name means is what the *server* accepted: a `Parse` names its statement only
//! once the server answers `ParseComplete` (a rejected `Parse` — say a duplicate name —
//! leaves the earlier statement in force, and so does this observer), a `Bind` makes its
//! portal at `BindComplete`, a `Close` removes at `CloseComplete`, portals end with their
//! transaction and a simple `Query` destroys the unnamed statement. So an `Execute` is
//! logged with the text the server runs, however the client pipelines. DataRows are
//! counted, never decoded.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::framer::Cut;
use crate::audit::Op;
use crate::guardrail::Decision;

/// What the guardrails said about a message, carried to its outcomes.
type Note = Option<Arc<Decision>>;
pub use crate::relay::{Outcome, Params};

/// A statement the client named: its text and the parameter types it declared (0:
/// unspecified), and the cut if the text was too long to keep whole.
#[derive(Clone, Debug, Default)]
struct Prepared {
    text: Arc<str>,
    types: Arc<[u32]>,
    cut: Option<Arc<Cut>>,
    note: Note,
    /// Its result columns, once a Describe (of it or of a portal running it) said them.
    fields: Option<Fields>,
}

/// Result columns as a Describe reported them (masking reads their origins).
type Fields = Arc<[crate::masking::pg::Field]>;

/// A portal: the statement text it runs and its bound parameters.
#[derive(Clone, Debug)]
struct Portal {
    text: Arc<str>,
    params: Params,
    cut: Option<Arc<Cut>>,
    note: Note,
    fields: Option<Fields>,
    /// Bind's result format codes (kept under masking only).
    formats: Option<Arc<[i16]>>,
    /// The statement it runs (a Describe of the portal describes it too).
    statement: Box<str>,
}

/// A response the server owes the client, in order.
#[derive(Debug)]
enum Expect {
    /// A simple `Query` or a `FunctionCall`: complete at ReadyForQuery.
    Query(Running),
    Parse {
        name: Box<str>,
        prepared: Prepared,
        run: Running,
    },
    Bind {
        portal: Box<str>,
        statement: Box<str>,
        /// The Bind's parameter formats and values, decoded once the server accepts it
        /// (by the types of the statement it accepted).
        values: Box<[u8]>,
        started: Instant,
    },
    Execute {
        portal: Box<str>,
        run: Running,
    },
    Describe {
        statement: bool,
        name: Box<str>,
    },
    Close {
        statement: bool,
        name: Box<str>,
    },
    Sync,
}

#[derive(Debug)]
struct Running {
    op: Op,
    statement: Arc<str>,
    params: Params,
    cut: Option<Arc<Cut>>,
    note: Note,
    started: Instant,
    /// DataRows seen.
    rows: u64,
    /// Sum of the row counts in CommandComplete tags, when any had one.
    tag_rows: Option<u64>,
    error_code: Option<String>,
    /// Columns masked in its results.
    masked: Vec<Arc<str>>,
}

impl Running {
    fn new(op: Op, statement: Arc<str>, params: Params, cut: Option<Arc<Cut>>) -> Running {
        Running {
            op,
            statement,
            params,
            cut,
            note: None,
            started: Instant::now(),
            rows: 0,
            tag_rows: None,
            error_code: None,
            masked: Vec::new(),
        }
    }

    fn finish(self) -> Outcome {
        Outcome {
            statement: self.statement,
            op: self.op,
            params: self.params,
            duration_us: self.started.elapsed().as_micros() as u64,
            rows: self.tag_rows.unwrap_or(self.rows),
            error_code: self.error_code,
            application_name: None,
            cut: self.cut,
            guard: self.note,
            masked: (!self.masked.is_empty()).then(|| self.masked.into()),
        }
    }
}

/// What both directions of one session share: the expected responses, and the
/// statements and portals as the server accepted them.
#[derive(Debug, Default)]
pub struct Shared {
    queue: VecDeque<Expect>,
    statements: HashMap<Box<str>, Prepared>,
    portals: HashMap<Box<str>, Portal>,
    /// Results are masked: portals keep their result formats and statement's name.
    masked: bool,
}

impl Shared {
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty()
    }

    /// The portal an `Execute` names, as the server has it.
    fn portal(&self, name: &str) -> Portal {
        self.portals.get(name).cloned().unwrap_or(Portal {
            text: Arc::from(""),
            params: None,
            cut: None,
            note: None,
            fields: None,
            formats: None,
            statement: Box::from(""),
        })
    }
}

pub type Pending = Arc<Mutex<Shared>>;

pub fn pending() -> Pending {
    Arc::default()
}

/// Client → server: queues expectations. Names are resolved on the server side.
#[derive(Debug, Default)]
pub struct Frontend {
    /// The guardrails' word on the next `Query`/`Parse`.
    pub note: Note,
}

/// Frontend tags whose body we read.
pub fn frontend_wants(tag: u8) -> bool {
    matches!(tag, b'Q' | b'P' | b'B' | b'E' | b'C' | b'D' | b'F')
}

/// Backend tags whose body we read.
pub fn backend_wants(tag: u8) -> bool {
    matches!(tag, b'C' | b'E' | b'Z' | b'S')
}

impl Frontend {
    /// One client frame. Returns true on `Terminate`.
    pub fn on_frame(&mut self, tag: u8, body: &[u8], cut: Option<&Cut>, pending: &Pending) -> bool {
        let mut r = Reader(body);
        let cut = || cut.map(|c| Arc::new(c.clone()));
        let note = self.note.take();
        let expect = match tag {
            b'Q' => {
                let mut run = Running::new(Op::Simple, r.text(), None, cut());
                run.note = note;
                Expect::Query(run)
            }
            b'P' => {
                let name = Box::from(r.cstr().unwrap_or_default());
                let text = r.text();
                let n = r.i16().unwrap_or(0).max(0);
                let types: Arc<[u32]> = (0..n).map_while(|_| r.i32()).map(|t| t as u32).collect();
                let mut run = Running::new(Op::Parse, Arc::clone(&text), None, cut());
                run.note = note.clone();
                let prepared = Prepared {
                    text,
                    types,
                    cut: cut(),
                    note,
                    fields: None,
                };
                Expect::Parse {
                    name,
                    prepared,
                    run,
                }
            }
            b'B' => Expect::Bind {
                portal: Box::from(r.cstr().unwrap_or_default()),
                statement: Box::from(r.cstr().unwrap_or_default()),
                values: Box::from(r.0),
                started: Instant::now(),
            },
            b'E' => Expect::Execute {
                portal: Box::from(r.cstr().unwrap_or_default()),
                run: Running::new(Op::Execute, Arc::from(""), None, None),
            },
            b'D' => Expect::Describe {
                statement: r.u8() == Some(b'S'),
                name: Box::from(r.cstr().unwrap_or_default()),
            },
            b'C' => Expect::Close {
                statement: r.u8() == Some(b'S'),
                name: Box::from(r.cstr().unwrap_or_default()),
            },
            b'S' => Expect::Sync,
            b'F' => function_call(&mut r),
            b'X' => return true,
            _ => return false,
        };
        if let Ok(mut q) = pending.lock() {
            q.queue.push_back(expect);
        }
        false
    }
}

/// FunctionCall: Int32 function OID, Int16 n formats, formats, Int16 n args, args
/// (Int32 length, bytes), Int16 result format. Logged as the function and its arguments.
fn function_call(r: &mut Reader) -> Expect {
    let oid = r.i32().unwrap_or(0) as u32;
    let params = bind_params(r, &[]);
    let text = Arc::from(format!("<function call: oid {oid}>").as_str());
    Expect::Query(Running::new(Op::FunctionCall, text, params, None))
}

/// Bind values (after portal and statement names): formats, then values; text-format
/// values as sent, binary ones in text form when the Parse named their type
/// (`params::binary`).
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
        let Ok(mut guard) = pending.lock() else {
            return;
        };
        let s = &mut *guard;
        let rows = std::mem::take(&mut self.rows);
        if rows > 0
            && let Some(Expect::Query(r) | Expect::Execute { run: r, .. }) = s.queue.front_mut()
        {
            r.rows += rows;
        }
        match tag {
            b'C' | b'I' | b's' => {
                let rows = if tag == b'C' { tag_rows(body) } else { None };
                match s.queue.front_mut() {
                    // A multi-statement Query sums its statements' rows.
                    Some(Expect::Query(r)) => {
                        if let Some(n) = rows {
                            r.tag_rows = Some(r.tag_rows.unwrap_or(0) + n);
                        }
                    }
                    Some(Expect::Execute { .. }) => {
                        if let Some(Expect::Execute { portal, mut run }) = s.queue.pop_front() {
                            run.tag_rows = rows;
                            out.push(resolved(s, &portal, run).finish());
                        }
                    }
                    _ => {}
                }
            }
            b'1' => accept_parse(s),
            b'2' => accept_bind(s),
            b'3' => {
                if let Some(Expect::Close { .. }) = s.queue.front()
                    && let Some(Expect::Close { statement, name }) = s.queue.pop_front()
                {
                    if statement {
                        s.statements.remove(&name);
                    } else {
                        s.portals.remove(&name);
                    }
                }
            }
            b'T' | b'n' => pop_if(&mut s.queue, |e| matches!(e, Expect::Describe { .. })),
            b'E' => self.error(s, body, out),
            b'Z' => {
                self.ready = body.first().copied().unwrap_or(0);
                ready(s, self.ready, out);
            }
            _ => {}
        }
    }

    /// An ErrorResponse: the failed message's outcome; the rest up to Sync is skipped
    /// (never run, never named).
    fn error(&mut self, s: &mut Shared, body: &[u8], out: &mut Vec<Outcome>) {
        let (severity, code) = error_fields(body);
        if severity.as_deref() == Some("FATAL") || severity.as_deref() == Some("PANIC") {
            self.fatal = code.clone().or(Some(String::new()));
        }
        match s.queue.front_mut() {
            Some(Expect::Query(r)) => r.error_code = code,
            Some(Expect::Sync) | None => {}
            Some(_) => {
                let failed = match s.queue.pop_front() {
                    Some(Expect::Parse { run, .. }) => Some(run),
                    Some(Expect::Bind {
                        portal: _,
                        statement,
                        values,
                        started,
                    }) => Some(bind_failure(s, &statement, &values, started)),
                    Some(Expect::Execute { portal, run }) => Some(resolved(s, &portal, run)),
                    _ => None,
                };
                if let Some(mut r) = failed {
                    r.error_code = code;
                    out.push(r.finish());
                }
                while s
                    .queue
                    .front()
                    .is_some_and(|e| !matches!(e, Expect::Sync | Expect::Query(_)))
                {
                    s.queue.pop_front();
                }
            }
        }
    }
}

/// ParseComplete: the statement is now known by its name (the unnamed one replaced).
fn accept_parse(s: &mut Shared) {
    if let Some(Expect::Parse { .. }) = s.queue.front()
        && let Some(Expect::Parse { name, prepared, .. }) = s.queue.pop_front()
    {
        s.statements.insert(name, prepared);
    }
}

/// BindComplete: the portal now runs the statement the server has under that name, with
/// these values.
fn accept_bind(s: &mut Shared) {
    if let Some(Expect::Bind { .. }) = s.queue.front()
        && let Some(Expect::Bind {
            portal,
            statement,
            values,
            ..
        }) = s.queue.pop_front()
    {
        let prepared = s.statements.get(&statement).cloned().unwrap_or_default();
        let params = bind_params(&mut Reader(&values), &prepared.types);
        let (formats, statement) = if s.masked {
            let formats = crate::masking::pg::result_formats(&values).unwrap_or_default();
            (Some(formats.into()), statement)
        } else {
            (None, Box::from(""))
        };
        let bound = Portal {
            text: prepared.text,
            params,
            cut: prepared.cut,
            note: prepared.note,
            fields: prepared.fields,
            formats,
            statement,
        };
        s.portals.insert(portal, bound);
    }
}

/// A failed Bind's outcome: the statement it named, as the server has it.
fn bind_failure(s: &Shared, statement: &str, values: &[u8], started: Instant) -> Running {
    let prepared = s.statements.get(statement).cloned().unwrap_or_default();
    let params = bind_params(&mut Reader(values), &prepared.types);
    let mut run = Running::new(Op::Bind, prepared.text, params, prepared.cut);
    run.note = prepared.note;
    run.started = started;
    run
}

/// An Execute's outcome with the portal's statement and parameters.
fn resolved(s: &Shared, portal: &str, mut run: Running) -> Running {
    let p = s.portal(portal);
    run.statement = p.text;
    run.params = p.params;
    run.cut = p.cut;
    run.note = p.note;
    run
}

/// ReadyForQuery: a simple Query (or FunctionCall) is complete, or a Sync is answered.
/// Outside a transaction no portal survives; a simple Query destroys the unnamed
/// statement.
fn ready(s: &mut Shared, status: u8, out: &mut Vec<Outcome>) {
    while let Some(e) = s.queue.pop_front() {
        match e {
            Expect::Query(r) => {
                // (Most sessions of the simple protocol have neither: no hashing then.)
                if r.op == Op::Simple {
                    if !s.statements.is_empty() {
                        s.statements.remove("");
                    }
                    if !s.portals.is_empty() {
                        s.portals.remove("");
                    }
                }
                out.push(r.finish());
                break;
            }
            Expect::Sync => break,
            _ => {}
        }
    }
    if status == b'I' {
        s.portals.clear();
    }
}

fn pop_if(q: &mut VecDeque<Expect>, is: impl Fn(&Expect) -> bool) {
    if q.front().is_some_and(is) {
        q.pop_front();
    }
}

/// `INSERT 0 5` → 5, `SELECT 3` → 3, `COPY 100` → 100, `BEGIN` → None. Read as bytes
/// (no UTF-8 check, no `str::parse`: this runs once a statement).
fn tag_rows(body: &[u8]) -> Option<u64> {
    let tag = &body[..body.iter().position(|&b| b == 0)?];
    let last = tag.rsplit(|&b| b == b' ').next()?;
    if last.is_empty() {
        return None;
    }
    last.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit()
            .then(|| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))?
    })
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

#[path = "postgres_masking.rs"]
pub mod masking;

/// The PostgreSQL observers for the shared relay.
pub mod sides {
    use super::*;
    use crate::relay::framer::Pg;
    use crate::relay::{ClientSide, ServerSide, Verdict};

    /// Whether this session may signal (`pg_terminate_backend`, `pg_cancel_backend`) the
    /// backend with this pid: one of its user's own sessions on the same resource (admins:
    /// anyone's there).
    pub type SignalTarget = Box<dyn Fn(i32) -> bool + Send>;

    pub struct PgClient {
        pub fe: Frontend,
        pub pending: Pending,
        /// Answer Terminate with `Verdict::Hold` (the upstream may serve another session).
        pub hold_goodbye: bool,
        pub may_signal: SignalTarget,
        /// The session's guardrails (`None`: no rule applies, nothing is parsed).
        pub guard: Option<crate::guardrail::Guard>,
    }

    /// The built-in functions' OIDs, for fast-path FunctionCalls.
    const PG_CANCEL_BACKEND: u32 = 2171;
    const PG_TERMINATE_BACKEND: u32 = 2096;

    impl PgClient {
        /// Why a `Query`, `Parse` or `FunctionCall` may not reach the server, if it may
        /// not: it signals a backend that is not the caller's to signal, or one the gateway
        /// cannot identify.
        fn refused(&self, tag: u8, body: &[u8]) -> Option<&'static str> {
            if tag != b'F' && !crate::sql::could_signal(body) {
                return None;
            }
            if tag == b'F' {
                let oid = Reader(body).i32().unwrap_or(0) as u32;
                return matches!(oid, PG_CANCEL_BACKEND | PG_TERMINATE_BACKEND).then_some(
                    "pg_terminate_backend and pg_cancel_backend are not allowed as fast-path calls through the gateway",
                );
            }
            let text = statement_text(tag, body)?;
            match crate::sql::pg_signals(&text) {
                Ok(signals) => signals.iter().find_map(|s| match s {
                    crate::sql::Signal::Own => None,
                    crate::sql::Signal::Pid(pid) => (!(self.may_signal)(*pid))
                        .then_some("that backend is not one of your sessions on this resource"),
                }),
                Err(why) => Some(why),
            }
        }
    }

    impl PgClient {
        /// The guardrails' decision on a `Query` or `Parse`, when any rule matched.
        fn guarded(&mut self, tag: u8, body: &[u8]) -> Note {
            let guard = self.guard.as_mut()?;
            guard.check(&statement_text(tag, body)?)
        }
    }

    /// The statement text of a `Query` or `Parse`, borrowed from the frame when it is
    /// UTF-8 (the checks only read it).
    fn statement_text(tag: u8, body: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
        let mut r = Reader(body);
        match tag {
            b'Q' => {}
            b'P' => {
                r.cstr();
            }
            _ => return None,
        }
        let end = r.0.iter().position(|&b| b == 0).unwrap_or(r.0.len());
        Some(String::from_utf8_lossy(&r.0[..end]))
    }

    /// What goes to the server instead of a refused message: a statement that fails with
    /// 42501 and the reason (for a `Parse`, when it is executed; the pipeline stays in step).
    fn refusal(tag: u8, body: &[u8], why: &str) -> Vec<u8> {
        let sql = format!(
            "DO $portcullis$BEGIN RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'refused by the gateway: {}'; END$portcullis$",
            why.replace(['\'', '$'], "")
        );
        let mut out = bytes::BytesMut::new();
        let written = if tag == b'P' {
            let mut r = Reader(body);
            let name = r.cstr().unwrap_or_default();
            let types = parameter_types(&r.text(), &mut r);
            postgres_protocol::message::frontend::parse(name, &sql, types, &mut out)
        } else {
            postgres_protocol::message::frontend::query(&sql, &mut out)
        };
        match written {
            Ok(()) => out.to_vec(),
            Err(_) => Vec::new(),
        }
    }

    /// A `Parse` under the same name that the server rejects at once (its error is
    /// replaced by the refusal on the way back: `PgServer::blocked_parse`).
    fn unparsable(body: &[u8]) -> Vec<u8> {
        let name = Reader(body).cstr().unwrap_or_default();
        let sql = "portcullis refused this statement";
        let mut out = bytes::BytesMut::new();
        match postgres_protocol::message::frontend::parse(name, sql, [], &mut out) {
            Ok(()) => out.to_vec(),
            Err(_) => Vec::new(),
        }
    }

    /// The parameter types a refused `Parse` keeps, so the client's `Bind` still fits and
    /// the refusal comes at `Execute`: as many as the statement's text uses (`$n`) or the
    /// client declared, the declared ones as declared, the rest `text`.
    fn parameter_types(text: &str, r: &mut Reader) -> Vec<u32> {
        const TEXT: u32 = 25;
        let n = r.i16().unwrap_or(0).max(0);
        let declared: Vec<u32> = (0..n).map_while(|_| r.i32()).map(|t| t as u32).collect();
        let dialect = sqlparser::dialect::PostgreSqlDialect {};
        let used = sqlparser::tokenizer::Tokenizer::new(&dialect, text)
            .tokenize()
            .unwrap_or_default()
            .iter()
            .filter_map(|t| match t {
                sqlparser::tokenizer::Token::Placeholder(p) => p.strip_prefix('$')?.parse().ok(),
                _ => None,
            })
            .max()
            .unwrap_or(0usize)
            .min(65_535);
        (0..used.max(declared.len()))
            .map(|i| declared.get(i).copied().filter(|t| *t != 0).unwrap_or(TEXT))
            .collect()
    }

    pub struct PgServer {
        pub be: Backend,
        pub pending: Pending,
        /// The session's masking (`None`: nothing is masked, rows are never read).
        pub masking: Option<super::masking::PgMasking>,
    }

    impl PgServer {
        /// The error the client gets for a `Parse` a guardrail blocked (the server was sent
        /// one that cannot parse, so the pipeline fails there and skips to `Sync`, as it
        /// would for any failed `Parse`).
        fn blocked_parse(&self) -> Option<Vec<u8>> {
            let q = self.pending.lock().ok()?;
            let Some(Expect::Parse { run, .. }) = q.queue.front() else {
                return None;
            };
            let d = run.note.as_ref().filter(|d| d.block)?;
            let bytes = crate::protocol::postgres::front::error_bytes(
                "ERROR",
                "42501",
                &format!("refused by the gateway: {}", d.message()),
            );
            Some(bytes.to_vec())
        }
    }

    /// The two observers of one session, sharing the queue of expected responses.
    pub fn pair() -> (PgClient, PgServer) {
        let pending = pending();
        (
            PgClient {
                fe: Frontend::default(),
                pending: Arc::clone(&pending),
                hold_goodbye: false,
                may_signal: Box::new(|_| false),
                guard: None,
            },
            PgServer {
                be: Backend::default(),
                pending,
                masking: None,
            },
        )
    }

    impl ClientSide for PgClient {
        type Wire = Pg;
        fn wants(h: &[u8]) -> bool {
            frontend_wants(h[0])
        }
        fn rewrites(&self) -> bool {
            self.guard.is_some()
        }
        fn frame(&mut self, h: &[u8], body: &[u8], cut: Option<&Cut>) -> Verdict {
            let refused = self.refused(h[0], body);
            let note = self.guarded(h[0], body);
            let blocked = note.as_ref().filter(|d| d.block).map(|d| d.message());
            self.fe.note = note;
            if !self.fe.on_frame(h[0], body, cut, &self.pending) {
                match (refused, blocked) {
                    (Some(why), _) => Verdict::Replace(refusal(h[0], body, why)),
                    (None, Some(_)) if h[0] == b'P' => Verdict::Replace(unparsable(body)),
                    (None, Some(why)) => Verdict::Replace(refusal(h[0], body, &why)),
                    (None, None) => Verdict::Pass,
                }
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
                && self.pending.lock().is_ok_and(|q| q.is_idle())
        }
    }

    impl PgServer {
        /// Masks this session's results.
        pub fn mask(&mut self, masking: super::masking::PgMasking) {
            if let Ok(mut s) = self.pending.lock() {
                s.masked = true;
            }
            self.masking = Some(masking);
        }
    }

    impl ServerSide for PgServer {
        type Wire = Pg;
        const LIMIT: usize = crate::relay::framer::CAPTURE_LIMIT;
        fn wants(h: &[u8]) -> bool {
            backend_wants(h[0])
        }
        fn frame(&mut self, h: &[u8], body: &[u8], out: &mut Vec<Outcome>) -> Option<Vec<u8>> {
            let blocked = if h[0] == b'E' {
                self.blocked_parse()
            } else {
                None
            };
            let masked = match self.masking.as_mut() {
                Some(m) => m.frame(h[0], body, &self.pending),
                None => None,
            };
            self.be.on_frame(h[0], body, &self.pending, out);
            blocked.or(masked)
        }
        fn aligned(&self) -> bool {
            self.masking.is_some()
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
