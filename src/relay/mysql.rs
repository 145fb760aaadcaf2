//! What the monitoring log needs from a relayed MySQL session. The client's commands (a
//! packet with sequence id 0) queue expected responses; the server's packets complete them
//! through a small state machine (OK / ERR / EOF / result set / LOCAL INFILE), producing
//! one `Outcome` per command that reads or changes anything: `COM_QUERY`,
//! `COM_STMT_EXECUTE` (and a failed `COM_STMT_PREPARE`), `COM_INIT_DB`, `COM_FIELD_LIST`,
//! `COM_PROCESS_KILL`, `COM_STATISTICS`, `COM_SET_OPTION`, `COM_RESET_CONNECTION`,
//! `COM_STMT_RESET` / `FETCH` / `CLOSE` / `SEND_LONG_DATA` (the last two have no answer:
//! logged in their place in the queue) and the rest by name. Rows are counted, never
//! decoded.
//!
//! `KILL` in any form (`crate::sql::kill`) and `COM_PROCESS_KILL` are mapped to the
//! upstream id of one of the caller's own sessions on the same resource (`KillTarget`) or
//! refused; the replication commands are refused; `COM_CHANGE_USER` is yielded to the
//! session, which re-authenticates it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::framer::{Cut, My};
use super::{ClientSide, Outcome, Params, ServerSide, Verdict};
use crate::audit::Op;
use crate::guardrail::{Decision, Guard};
use crate::protocol::mysql::packet::{self, Reader, SERVER_MORE_RESULTS_EXISTS, STATUS_IN_TRANS};
use crate::protocol::mysql::params::{Bound, decode};
use crate::sql::{self, KillCheck};

const COM_QUIT: u8 = 0x01;
const COM_INIT_DB: u8 = 0x02;
const COM_QUERY: u8 = 0x03;
const COM_FIELD_LIST: u8 = 0x04;
const COM_STATISTICS: u8 = 0x09;
const COM_PROCESS_INFO: u8 = 0x0a;
const COM_PROCESS_KILL: u8 = 0x0c;
const COM_PING: u8 = 0x0e;
const COM_CHANGE_USER: u8 = 0x11;
const COM_STMT_PREPARE: u8 = 0x16;
const COM_STMT_EXECUTE: u8 = 0x17;
const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
const COM_STMT_CLOSE: u8 = 0x19;
const COM_STMT_RESET: u8 = 0x1a;
const COM_SET_OPTION: u8 = 0x1b;
const COM_STMT_FETCH: u8 = 0x1c;
const COM_RESET_CONNECTION: u8 = 0x1f;

/// The server is asked to answer a refused command with this error (the client gets a
/// clear refusal and the session goes on).
fn refusal(message: &str) -> Vec<u8> {
    let sql = format!(
        "SIGNAL SQLSTATE '42000' SET MYSQL_ERRNO = {}, MESSAGE_TEXT = '{}'",
        packet::code::SPECIFIC_ACCESS_DENIED,
        message.replace(['\'', '\\'], "")
    );
    command(COM_QUERY, sql.as_bytes())
}

fn command(code: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = vec![code];
    body.extend_from_slice(payload);
    packet::frame(0, &body)
}

/// What answers a command, so the server's packets can be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// OK, ERR, or a result set (with more results when the status says so).
    ResultSet,
    /// A prepare's OK with its parameter and column definitions, or ERR.
    Prepare,
    /// Packets up to an EOF (column definitions, fetched rows), or ERR.
    UntilEof,
    /// Exactly one packet, whatever it is (OK, ERR, EOF, a statistics string).
    OnePacket,
    /// None at all (`COM_STMT_CLOSE`, `COM_STMT_SEND_LONG_DATA`): complete as sent.
    Nothing,
}

#[derive(Debug)]
struct Expect {
    answer: Answer,
    /// `None`: a command with nothing to log (`COM_PING`).
    op: Option<Op>,
    statement: Arc<str>,
    started: Instant,
    rows: u64,
    error_code: Option<String>,
    params: Params,
    cut: Option<Arc<Cut>>,
    /// What the guardrails said about it.
    note: Option<Arc<Decision>>,
    /// Columns masked in its results.
    masked: Vec<Arc<str>>,
}

fn expect(answer: Answer, op: Option<Op>, statement: Arc<str>) -> Expect {
    Expect {
        answer,
        op,
        statement,
        started: Instant::now(),
        rows: 0,
        error_code: None,
        params: None,
        cut: None,
        note: None,
        masked: Vec::new(),
    }
}

#[derive(Debug)]
enum State {
    First,
    Columns(u64),
    Rows,
    /// Packets of a prepare response still to come.
    Skip(u64),
}

#[derive(Debug, Default)]
struct Shared {
    queue: VecDeque<Expect>,
    prepared: HashMap<u32, Prepared>,
}

#[derive(Debug)]
struct Prepared {
    statement: Arc<str>,
    params: Bound,
    note: Option<Arc<Decision>>,
}

/// Maps a session id named in `KILL` to the upstream thread id this session may kill, or
/// `None` (unknown id, another user's session, another server).
pub type KillTarget = Box<dyn Fn(u32) -> Option<u32> + Send>;

pub struct MyClient {
    shared: Arc<Mutex<Shared>>,
    kill_target: KillTarget,
    /// Answer `COM_QUIT` with `Verdict::Hold`: the upstream may be kept.
    pub hold_goodbye: bool,
    /// The session's guardrails (`None`: no rule applies, nothing is parsed).
    pub guard: Option<Guard>,
    /// Results are masked: cursor fetches (whose rows come without their columns) are
    /// refused.
    pub masked: bool,
}

pub struct MyServer {
    shared: Arc<Mutex<Shared>>,
    m: Machine,
    /// The session's masking (`None`: nothing is masked, rows are never read).
    pub masking: Option<super::mysql_masking::MyMasking>,
}

/// Where the server's answer to the command at the front of the queue stands.
struct Machine {
    state: State,
    /// The last packet was 0xFFFFFF long: the next one continues it.
    continuing: bool,
    /// The status flags of the last OK or EOF that ended a response.
    status: u16,
}

/// The two observers of one session.
pub fn pair(kill_target: KillTarget) -> (MyClient, MyServer) {
    let shared = Arc::new(Mutex::new(Shared::default()));
    (
        MyClient {
            shared: Arc::clone(&shared),
            kill_target,
            hold_goodbye: false,
            guard: None,
            masked: false,
        },
        MyServer {
            shared,
            m: Machine {
                state: State::First,
                continuing: false,
                status: 0,
            },
            masking: None,
        },
    )
}

impl MyClient {
    /// `COM_QUERY`: a `KILL` is mapped or refused; anything else passes.
    fn query(&self, text: Arc<str>, cut: Option<&Cut>) -> (Expect, Verdict) {
        let mut e = expect(Answer::ResultSet, Some(Op::ComQuery), Arc::clone(&text));
        e.cut = cut.map(|c| Arc::new(c.clone()));
        let verdict = match sql::kill(&text) {
            KillCheck::Clean => Verdict::Pass,
            KillCheck::Kill(k) => {
                // Ids mean nothing upstream: translate, or aim at no thread at all so the
                // server answers "Unknown thread id".
                let target = u32::try_from(k.id)
                    .ok()
                    .and_then(|id| (self.kill_target)(id))
                    .unwrap_or(0);
                Verdict::Replace(command(COM_QUERY, k.to_sql(target).as_bytes()))
            }
            KillCheck::Refuse(why) => Verdict::Replace(refusal(why)),
        };
        (e, verdict)
    }

    /// `COM_STMT_PREPARE`: a statement that is or could hide a `KILL` is refused (its
    /// session id would only be known at execute time).
    fn prepare(&self, text: Arc<str>) -> (Expect, Verdict) {
        let verdict = match sql::kill(&text) {
            KillCheck::Clean => Verdict::Pass,
            KillCheck::Kill(_) => Verdict::Replace(refusal(
                "KILL cannot be prepared through the gateway; send it as a statement",
            )),
            KillCheck::Refuse(why) => Verdict::Replace(refusal(why)),
        };
        let e = expect(Answer::Prepare, Some(Op::StmtPrepare), text);
        (e, verdict)
    }

    /// `COM_PROCESS_KILL <u32>`: the binary `KILL CONNECTION`, mapped the same way.
    fn process_kill(&self, rest: &[u8]) -> (Expect, Verdict) {
        let id = Reader(rest).u32().unwrap_or(0);
        let target = (self.kill_target)(id).unwrap_or(0);
        let statement = Arc::from(format!("COM_PROCESS_KILL {id}").as_str());
        let e = expect(Answer::OnePacket, Some(Op::ProcessKill), statement);
        (
            e,
            Verdict::Replace(command(COM_PROCESS_KILL, &target.to_le_bytes())),
        )
    }

    /// `COM_STMT_EXECUTE`: the prepared statement's text and the bound values.
    fn execute(shared: &mut Shared, rest: &[u8]) -> Expect {
        let id = Reader(rest).u32().unwrap_or(0);
        match shared.prepared.get_mut(&id) {
            Some(p) => {
                let params = decode(rest, &mut p.params).map(Arc::from);
                let mut e = expect(
                    Answer::ResultSet,
                    Some(Op::StmtExecute),
                    Arc::clone(&p.statement),
                );
                e.params = params;
                e.note = p.note.clone();
                e
            }
            None => expect(Answer::ResultSet, Some(Op::StmtExecute), Arc::from("")),
        }
    }

    /// The statement a `COM_STMT_*` names, for its event.
    fn named(shared: &Shared, rest: &[u8], what: &str) -> Arc<str> {
        let id = Reader(rest).u32().unwrap_or(0);
        match shared.prepared.get(&id) {
            Some(p) => Arc::clone(&p.statement),
            None => Arc::from(format!("{what} {id}").as_str()),
        }
    }
}

impl ClientSide for MyClient {
    type Wire = My;

    fn wants(h: &[u8]) -> bool {
        h.get(3) == Some(&0)
    }

    fn rewrites(&self) -> bool {
        self.guard.is_some()
    }

    fn frame(&mut self, h: &[u8], body: &[u8], cut: Option<&Cut>) -> Verdict {
        if h.get(3) != Some(&0) {
            return Verdict::Pass; // a continuation or LOCAL INFILE data
        }
        let Some((&code, rest)) = body.split_first() else {
            return Verdict::Pass;
        };
        let text = || crate::protocol::text(rest);
        let Ok(mut shared) = self.shared.lock() else {
            return Verdict::Pass;
        };
        let with = |op, statement: String| {
            expect(Answer::OnePacket, Some(op), Arc::from(statement.as_str()))
        };
        let (mut e, mut verdict) = match code {
            COM_QUIT if self.hold_goodbye => return Verdict::Hold,
            COM_QUIT => return Verdict::Bye,
            // The session re-authenticates it and decides again (`session::mysql`).
            COM_CHANGE_USER => return Verdict::Yield,
            COM_QUERY => self.query(text(), cut),
            COM_STMT_PREPARE => self.prepare(text()),
            COM_STMT_EXECUTE => (MyClient::execute(&mut shared, rest), Verdict::Pass),
            COM_PROCESS_KILL => self.process_kill(rest),
            COM_STMT_SEND_LONG_DATA => {
                let statement = MyClient::named(&shared, rest, "COM_STMT_SEND_LONG_DATA");
                let op = Some(Op::StmtSendLongData);
                (expect(Answer::Nothing, op, statement), Verdict::Pass)
            }
            COM_STMT_CLOSE => {
                let statement = MyClient::named(&shared, rest, "COM_STMT_CLOSE");
                if let Some(id) = Reader(rest).u32() {
                    shared.prepared.remove(&id);
                }
                let op = Some(Op::StmtClose);
                (expect(Answer::Nothing, op, statement), Verdict::Pass)
            }
            COM_STMT_RESET => {
                let statement = MyClient::named(&shared, rest, "COM_STMT_RESET");
                let op = Some(Op::StmtReset);
                (expect(Answer::OnePacket, op, statement), Verdict::Pass)
            }
            COM_STMT_FETCH => {
                let statement = MyClient::named(&shared, rest, "COM_STMT_FETCH");
                let op = Some(Op::StmtFetch);
                let verdict = if self.masked {
                    Verdict::Replace(refusal(
                        "cursor fetches cannot be masked; read without a cursor",
                    ))
                } else {
                    Verdict::Pass
                };
                (expect(Answer::UntilEof, op, statement), verdict)
            }
            COM_INIT_DB => (
                with(Op::InitDb, format!("USE {}", String::from_utf8_lossy(rest))),
                Verdict::Pass,
            ),
            COM_FIELD_LIST => {
                let table = String::from_utf8_lossy(Reader(rest).nul_str().unwrap_or(rest));
                let e = expect(
                    Answer::UntilEof,
                    Some(Op::FieldList),
                    Arc::from(format!("COM_FIELD_LIST {table}").as_str()),
                );
                (e, Verdict::Pass)
            }
            COM_STATISTICS => (with(Op::Statistics, "COM_STATISTICS".into()), Verdict::Pass),
            COM_SET_OPTION => {
                let option = Reader(rest).u16().unwrap_or(0);
                (
                    with(Op::SetOption, format!("COM_SET_OPTION {option}")),
                    Verdict::Pass,
                )
            }
            COM_RESET_CONNECTION => (
                with(Op::ResetConnection, "COM_RESET_CONNECTION".into()),
                Verdict::Pass,
            ),
            COM_PING => (
                expect(Answer::OnePacket, None, Arc::from("")),
                Verdict::Pass,
            ),
            COM_PROCESS_INFO => {
                let e = expect(
                    Answer::ResultSet,
                    Some(Op::Command),
                    Arc::from("COM_PROCESS_INFO"),
                );
                (e, Verdict::Pass)
            }
            0x12..=0x15 | 0x1e => {
                // Replication (binlog dumps, slave registration): not a session's business.
                let e = with(Op::Command, format!("replication command 0x{code:02x}"));
                let why = "replication commands are not allowed through the gateway";
                (e, Verdict::Replace(refusal(why)))
            }
            other => (
                with(Op::Command, format!("command 0x{other:02x}")),
                Verdict::Pass,
            ),
        };
        if matches!(code, COM_QUERY | COM_STMT_PREPARE | COM_INIT_DB)
            && let Some(d) = self.guard.as_mut().and_then(|g| g.check(&e.statement))
        {
            if d.block {
                verdict = Verdict::Replace(refusal(&d.message()));
            }
            e.note = Some(d);
        }
        shared.queue.push_back(e);
        verdict
    }
}

impl Machine {
    /// The first packet of a response. True when the response is complete.
    fn first(
        &mut self,
        front: &mut Expect,
        prepared: &mut HashMap<u32, Prepared>,
        body: &[u8],
    ) -> bool {
        let mut r = Reader(body);
        let first = body.first().copied();
        if first == Some(0xFF) {
            r.u8();
            front.error_code = Some(r.u16().unwrap_or(0).to_string());
            return true;
        }
        match front.answer {
            Answer::OnePacket | Answer::Nothing => {
                if first == Some(0x00) {
                    r.u8();
                    front.rows += r.lenenc().unwrap_or(0);
                }
                true
            }
            Answer::UntilEof => {
                self.state = State::Rows;
                self.row(front, body, body.len())
            }
            Answer::Prepare if first == Some(0x00) => {
                r.u8();
                let id = r.u32().unwrap_or(0);
                let columns = r.u16().unwrap_or(0) as u64;
                let params = r.u16().unwrap_or(0) as u64;
                let p = Prepared {
                    note: front.note.clone(),
                    statement: Arc::clone(&front.statement),
                    params: Bound {
                        count: params as usize,
                        types: Vec::new(),
                    },
                };
                prepared.insert(id, p);
                let skip = if params > 0 { params + 1 } else { 0 }
                    + if columns > 0 { columns + 1 } else { 0 };
                if skip > 0 {
                    self.state = State::Skip(skip);
                }
                skip == 0
            }
            _ => match first {
                Some(0x00) => {
                    r.u8();
                    front.rows += r.lenenc().unwrap_or(0);
                    r.lenenc();
                    self.status = r.u16().unwrap_or(0);
                    self.status & SERVER_MORE_RESULTS_EXISTS == 0
                }
                Some(0xFB) => false, // LOCAL INFILE: the client sends the file, then OK/ERR
                _ => {
                    self.state = State::Columns(r.lenenc().unwrap_or(0));
                    false
                }
            },
        }
    }

    /// A row (or column definition), or the EOF / ERR that ends them. True when the
    /// response is complete.
    fn row(&mut self, front: &mut Expect, body: &[u8], len: usize) -> bool {
        let mut r = Reader(body);
        match body.first().copied() {
            Some(0xFE) if len < 9 => {
                r.u8();
                r.u16();
                self.status = r.u16().unwrap_or(0);
                self.state = State::First;
                front.answer == Answer::UntilEof || self.status & SERVER_MORE_RESULTS_EXISTS == 0
            }
            Some(0xFF) => {
                r.u8();
                front.error_code = Some(r.u16().unwrap_or(0).to_string());
                self.state = State::First;
                true
            }
            _ => {
                front.rows += 1;
                false
            }
        }
    }
}

impl MyServer {
    /// The upstream is outside any transaction with nothing outstanding: safe to reset
    /// and hand to another session.
    pub fn reusable(&self) -> bool {
        self.idle() && self.m.status & STATUS_IN_TRANS == 0
    }

    /// Nothing outstanding: every command answered in full.
    pub fn idle(&self) -> bool {
        matches!(self.m.state, State::First)
            && !self.m.continuing
            && self.shared.lock().is_ok_and(|s| s.queue.is_empty())
    }
}

/// Commands without an answer at the front of the queue are complete: their events go out
/// in their place.
fn unanswered(shared: &mut Shared, out: &mut Vec<Outcome>) {
    while shared
        .queue
        .front()
        .is_some_and(|e| e.answer == Answer::Nothing)
    {
        if let Some(e) = shared.queue.pop_front() {
            out.extend(finished(e));
        }
    }
}

/// The `query` event of a completed command, for the commands that have one (a prepare
/// only when it failed: its execution is what gets logged).
fn finished(e: Expect) -> Option<Outcome> {
    let op = e.op?;
    if op == Op::StmtPrepare && e.error_code.is_none() {
        return None;
    }
    Some(Outcome {
        statement: e.statement,
        op,
        params: e.params,
        duration_us: e.started.elapsed().as_micros() as u64,
        rows: e.rows,
        error_code: e.error_code,
        application_name: None,
        cut: e.cut,
        guard: e.note,
        masked: (!e.masked.is_empty()).then(|| e.masked.into()),
    })
}

impl MyServer {
    fn observe(&mut self, h: &[u8], body: &[u8], out: &mut Vec<Outcome>) -> Option<Vec<u8>> {
        let len = h
            .first()
            .map_or(0, |_| u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize);
        let continued = std::mem::replace(&mut self.m.continuing, len == 0xFF_FFFF);
        if continued {
            return None;
        }
        let Ok(mut guard) = self.shared.lock() else {
            return None;
        };
        let shared = &mut *guard;
        unanswered(shared, out);
        let front = shared.queue.front_mut()?;
        let rewritten = match self.masking.as_mut() {
            Some(m) => masking_packet(m, &self.m.state, front, h, body),
            None => None,
        };
        let done = match self.m.state {
            State::First => self.m.first(front, &mut shared.prepared, body),
            State::Columns(0) => {
                // The EOF after the column definitions.
                self.m.state = State::Rows;
                false
            }
            State::Columns(n) => {
                self.m.state = State::Columns(n - 1);
                false
            }
            State::Rows => self.m.row(front, body, len),
            State::Skip(n) => {
                self.m.state = if n <= 1 {
                    State::First
                } else {
                    State::Skip(n - 1)
                };
                n <= 1
            }
        };
        if done && let Some(e) = shared.queue.pop_front() {
            self.m.state = State::First;
            out.extend(finished(e));
            unanswered(shared, out);
        }
        rewritten
    }
}

/// What masking does with one server packet, by where the answer stands: a result set
/// starts, a column is defined, the columns are complete, a row (rewritten).
fn masking_packet(
    m: &mut super::mysql_masking::MyMasking,
    state: &State,
    front: &mut Expect,
    h: &[u8],
    body: &[u8],
) -> Option<Vec<u8>> {
    match state {
        State::First if front.answer == Answer::ResultSet => {
            if !matches!(body.first(), Some(0x00 | 0xFF | 0xFB) | None) {
                m.start(front.op == Some(Op::StmtExecute));
            }
            None
        }
        State::Columns(0) => {
            for o in m.masked() {
                if !front.masked.contains(o) {
                    front.masked.push(Arc::clone(o));
                }
            }
            None
        }
        State::Columns(_) => {
            m.column(body);
            None
        }
        State::Rows if front.answer == Answer::ResultSet => {
            let end = matches!(body.first(), Some(0xFE) if body.len() < 9);
            if end || body.first() == Some(&0xFF) {
                None
            } else {
                m.row(h, body)
            }
        }
        _ => None,
    }
}

impl ServerSide for MyServer {
    type Wire = My;
    const LIMIT: usize = 32;

    fn wants(_: &[u8]) -> bool {
        true
    }

    fn frame(&mut self, h: &[u8], body: &[u8], out: &mut Vec<Outcome>) -> Option<Vec<u8>> {
        self.observe(h, body, out)
    }

    fn aligned(&self) -> bool {
        self.masking.is_some()
    }

    fn refused(&mut self) -> Option<String> {
        self.masking.as_mut()?.failed()
    }

    fn drain(&mut self, out: &mut Vec<Outcome>) {
        if let Ok(mut shared) = self.shared.lock() {
            unanswered(&mut shared, out);
        }
    }

    fn fatal(&self) -> Option<String> {
        None
    }

    fn goodbye(&self, _message: &str) -> Option<Vec<u8>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: usize, seq: u8) -> [u8; 4] {
        let l = (len as u32).to_le_bytes();
        [l[0], l[1], l[2], seq]
    }

    /// Client command, then the server's one-packet answer; returns the outcomes.
    fn exchange(c: &mut MyClient, s: &mut MyServer, command: &[u8], answer: &[u8]) -> Vec<Outcome> {
        c.frame(&header(command.len(), 0), command, None);
        let mut out = Vec::new();
        s.frame(&header(answer.len(), 1), answer, &mut out);
        out
    }

    const OK: [u8; 7] = [0x00, 0, 0, 0x02, 0, 0, 0];

    #[test]
    fn long_data_expects_no_answer_and_transactions_keep_the_upstream() {
        let (mut c, mut s) = pair(Box::new(|_| None));
        let long = [COM_STMT_SEND_LONG_DATA, 1, 0, 0, 0, 0, 0, b'x'];
        assert_eq!(c.frame(&header(long.len(), 0), &long, None), Verdict::Pass);
        // OK with SERVER_STATUS_IN_TRANS: the query is the one answered, not the long data,
        // whose own event comes first.
        let in_trans = [0x00, 0, 0, 0x03, 0, 0, 0];
        let ops: Vec<Op> = exchange(&mut c, &mut s, b"\x03begin", &in_trans)
            .iter()
            .map(|o| o.op)
            .collect();
        assert_eq!(ops, [Op::StmtSendLongData, Op::ComQuery]);
        assert!(!s.reusable(), "inside a transaction");
        assert_eq!(exchange(&mut c, &mut s, b"\x03commit", &OK).len(), 1);
        assert!(s.reusable());
        c.frame(&header(9, 0), b"\x03select 1", None);
        assert!(!s.reusable(), "an answer is outstanding");
        c.hold_goodbye = true;
        assert_eq!(c.frame(&header(1, 0), &[COM_QUIT], None), Verdict::Hold);
    }

    #[test]
    fn cursor_fetches_are_refused_under_masking() {
        let (mut c, _s) = pair(Box::new(|_| None));
        let fetch = [COM_STMT_FETCH, 1, 0, 0, 0, 10, 0, 0, 0];
        assert_eq!(
            c.frame(&header(fetch.len(), 0), &fetch, None),
            Verdict::Pass
        );
        c.masked = true;
        let refused = c.frame(&header(fetch.len(), 0), &fetch, None);
        assert!(matches!(refused, Verdict::Replace(_)), "{refused:?}");
    }

    #[test]
    fn every_command_that_reads_or_changes_is_logged() {
        let (mut c, mut s) = pair(Box::new(|_| None));
        let eof = [0xfe, 0, 0, 0x02, 0];
        for (command, answer, op) in [
            (&b"\x02otherdb"[..], &OK[..], Op::InitDb),
            (b"\x09", b"Uptime: 5", Op::Statistics),
            (b"\x1b\x01\x00", &eof, Op::SetOption),
            (b"\x1f", &OK, Op::ResetConnection),
            (b"\x1a\x01\x00\x00\x00", &OK, Op::StmtReset),
            (b"\x0c\x05\x00\x00\x00", &OK, Op::ProcessKill),
            (b"\x04t\x00", &eof, Op::FieldList),
        ] {
            let out = exchange(&mut c, &mut s, command, answer);
            assert_eq!(out.iter().map(|o| o.op).collect::<Vec<_>>(), [op]);
        }
        // A ping reads nothing: no event.
        assert!(exchange(&mut c, &mut s, b"\x0e", &OK).is_empty());
        let close = [COM_STMT_CLOSE, 9, 0, 0, 0];
        c.frame(&header(close.len(), 0), &close, None);
        let mut out = Vec::new();
        s.drain(&mut out);
        assert_eq!(out[0].op, Op::StmtClose);
    }

    #[test]
    fn kills_are_mapped_to_the_callers_sessions_or_refused() {
        let (mut c, _) = pair(Box::new(|id| (id == 7).then_some(700)));
        let kill = |c: &mut MyClient, body: &[u8]| c.frame(&header(body.len(), 0), body, None);
        assert_eq!(
            kill(&mut c, b"\x03/**/KILL QUERY 7 ;"),
            Verdict::Replace(command(COM_QUERY, b"KILL QUERY 700"))
        );
        assert_eq!(
            kill(&mut c, b"\x03KILL 8"),
            Verdict::Replace(command(COM_QUERY, b"KILL CONNECTION 0"))
        );
        assert_eq!(
            kill(&mut c, b"\x0c\x07\x00\x00\x00"),
            Verdict::Replace(command(COM_PROCESS_KILL, &700u32.to_le_bytes()))
        );
        for refused in [
            &b"\x03SELECT 1; KILL 7"[..],
            b"\x03KILL USER 'root'",
            b"\x03EXECUTE IMMEDIATE 'KILL 7'",
            b"\x16KILL ?",
        ] {
            match kill(&mut c, refused) {
                Verdict::Replace(bytes) => assert!(bytes.windows(6).any(|w| w == b"SIGNAL")),
                other => panic!("{refused:?}: {other:?}"),
            }
        }
    }
}
