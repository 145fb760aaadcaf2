//! What the monitoring log needs from a relayed MySQL session. The client's commands (a
//! packet with sequence id 0) queue expected responses; the server's packets complete them
//! through a small state machine (OK / ERR / result set with EOF packets / LOCAL INFILE),
//! producing one `Outcome` per `COM_QUERY` and `COM_STMT_EXECUTE` (and per failed
//! `COM_STMT_PREPARE`). Rows are counted, never decoded.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::framer::My;
use super::{ClientSide, Outcome, Params, ServerSide, Verdict};
use crate::audit::Op;
use crate::protocol::mysql::packet::{self, Reader, SERVER_MORE_RESULTS_EXISTS, STATUS_IN_TRANS};
use crate::protocol::mysql::params::{Bound, decode};

const COM_QUIT: u8 = 0x01;
const COM_INIT_DB: u8 = 0x02;
const COM_QUERY: u8 = 0x03;
const COM_PING: u8 = 0x0e;
const COM_CHANGE_USER: u8 = 0x11;
const COM_STMT_PREPARE: u8 = 0x16;
const COM_STMT_EXECUTE: u8 = 0x17;
const COM_STMT_SEND_LONG_DATA: u8 = 0x18;
const COM_STMT_CLOSE: u8 = 0x19;
const COM_RESET_CONNECTION: u8 = 0x1f;

/// What the server is asked to answer a `COM_CHANGE_USER` with.
const CHANGE_USER_REFUSAL: &str = "SIGNAL SQLSTATE '42000' SET MYSQL_ERRNO = 1227, MESSAGE_TEXT = \
     'COM_CHANGE_USER is not allowed through the gateway; reconnect as the other user'";

#[derive(Debug)]
enum Kind {
    Query,
    ChangeUser,
    Prepare,
    Execute,
    Other,
}

#[derive(Debug)]
struct Expect {
    kind: Kind,
    statement: Arc<str>,
    started: Instant,
    rows: u64,
    error_code: Option<String>,
    params: Params,
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
}

/// Maps a gateway connection id named in `KILL` to the upstream thread id this session
/// may kill, or `None` (unknown id, another user's session, another server).
pub type KillTarget = Box<dyn Fn(u32) -> Option<u32> + Send>;

pub struct MyClient {
    shared: Arc<Mutex<Shared>>,
    kill_target: KillTarget,
    /// Answer `COM_QUIT` with `Verdict::Hold`: the upstream may be kept.
    pub hold_goodbye: bool,
}

pub struct MyServer {
    shared: Arc<Mutex<Shared>>,
    m: Machine,
}

/// Where the server's answer to the command at the front of the queue stands.
struct Machine {
    state: State,
    /// The last packet was 0xFFFFFF long: the next one continues it.
    continuing: bool,
    /// The status flags of the last OK or EOF that ended a response.
    status: u16,
}

impl Machine {
    /// The first packet of a response: OK, ERR, LOCAL INFILE, a prepare's answer, or a
    /// result set's column count. True when the response is complete.
    fn first(&mut self, shared: &mut Shared, body: &[u8]) -> bool {
        let mut r = Reader(body);
        let Some(front) = shared.queue.front_mut() else {
            return false;
        };
        match body.first().copied() {
            Some(0x00) if matches!(front.kind, Kind::Prepare) => {
                r.u8();
                let id = r.u32().unwrap_or(0);
                let columns = r.u16().unwrap_or(0) as u64;
                let params = r.u16().unwrap_or(0) as u64;
                let prepared = Prepared {
                    statement: Arc::clone(&front.statement),
                    params: Bound {
                        count: params as usize,
                        types: Vec::new(),
                    },
                };
                shared.prepared.insert(id, prepared);
                let skip = if params > 0 { params + 1 } else { 0 }
                    + if columns > 0 { columns + 1 } else { 0 };
                if skip > 0 {
                    self.state = State::Skip(skip);
                }
                skip == 0
            }
            Some(0x00) => {
                r.u8();
                front.rows += r.lenenc().unwrap_or(0);
                r.lenenc();
                self.status = r.u16().unwrap_or(0);
                self.status & SERVER_MORE_RESULTS_EXISTS == 0
            }
            Some(0xFF) => {
                r.u8();
                front.error_code = Some(r.u16().unwrap_or(0).to_string());
                true
            }
            Some(0xFB) => false, // LOCAL INFILE: the client sends the file, then OK/ERR
            _ => {
                self.state = State::Columns(r.lenenc().unwrap_or(0));
                false
            }
        }
    }

    /// A row, or the EOF / ERR that ends the rows. True when the response is complete.
    fn row(&mut self, shared: &mut Shared, body: &[u8], len: usize) -> bool {
        let mut r = Reader(body);
        let Some(front) = shared.queue.front_mut() else {
            return false;
        };
        match body.first().copied() {
            Some(0xFE) if len < 9 => {
                r.u8();
                r.u16();
                self.status = r.u16().unwrap_or(0);
                self.state = State::First;
                self.status & SERVER_MORE_RESULTS_EXISTS == 0
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
        matches!(self.m.state, State::First)
            && !self.m.continuing
            && self.m.status & STATUS_IN_TRANS == 0
            && self.shared.lock().is_ok_and(|s| s.queue.is_empty())
    }
}

/// The two observers of one session.
pub fn pair(kill_target: KillTarget) -> (MyClient, MyServer) {
    let shared = Arc::new(Mutex::new(Shared::default()));
    (
        MyClient {
            shared: Arc::clone(&shared),
            kill_target,
            hold_goodbye: false,
        },
        MyServer {
            shared,
            m: Machine {
                state: State::First,
                continuing: false,
                status: 0,
            },
        },
    )
}

/// The `query` event of a completed command, for the commands that have one.
fn finished(e: Expect) -> Option<Outcome> {
    let op = match e.kind {
        Kind::Query => Op::ComQuery,
        Kind::ChangeUser => Op::ChangeUser,
        Kind::Execute => Op::StmtExecute,
        Kind::Prepare if e.error_code.is_some() => Op::StmtPrepare,
        Kind::Prepare | Kind::Other => return None,
    };
    Some(Outcome {
        statement: e.statement,
        op,
        params: e.params,
        duration_us: e.started.elapsed().as_micros() as u64,
        rows: e.rows,
        error_code: e.error_code,
        application_name: None,
    })
}

/// `KILL [QUERY | CONNECTION] n` → (query only, n).
pub fn parse_kill(sql: &str) -> Option<(bool, u32)> {
    let mut words = sql.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("kill") {
        return None;
    }
    let mut next = words.next()?;
    let mut query = false;
    if next.eq_ignore_ascii_case("query") {
        query = true;
        next = words.next()?;
    } else if next.eq_ignore_ascii_case("connection") {
        next = words.next()?;
    }
    let id = next.trim_end_matches(';').parse().ok()?;
    words.next().is_none().then_some((query, id))
}

fn expect(kind: Kind, statement: Arc<str>) -> Expect {
    Expect {
        kind,
        statement,
        started: Instant::now(),
        rows: 0,
        error_code: None,
        params: None,
    }
}

impl ClientSide for MyClient {
    type Wire = My;

    fn wants(h: &[u8]) -> bool {
        h.get(3) == Some(&0)
    }

    fn frame(&mut self, h: &[u8], body: &[u8]) -> Verdict {
        if h.get(3) != Some(&0) {
            return Verdict::Pass; // a continuation or LOCAL INFILE data
        }
        let Some((&command, rest)) = body.split_first() else {
            return Verdict::Pass;
        };
        let text = || crate::protocol::text(rest);
        let Ok(mut shared) = self.shared.lock() else {
            return Verdict::Pass;
        };
        let e = match command {
            COM_QUIT if self.hold_goodbye => return Verdict::Hold,
            COM_QUIT => return Verdict::Bye,
            COM_CHANGE_USER => {
                // Never passed through: the server is asked for an error instead, so the
                // client gets a clear refusal and the session stays who it was.
                let user = String::from_utf8_lossy(Reader(rest).nul_str().unwrap_or_default())
                    .into_owned();
                let statement = Arc::from(format!("COM_CHANGE_USER {user}").as_str());
                shared.queue.push_back(expect(Kind::ChangeUser, statement));
                let mut payload = vec![COM_QUERY];
                payload.extend_from_slice(CHANGE_USER_REFUSAL.as_bytes());
                return Verdict::Replace(packet::frame(0, &payload));
            }
            // No response: nothing to expect (the execute that follows is logged).
            COM_STMT_SEND_LONG_DATA => return Verdict::Pass,
            COM_STMT_CLOSE => {
                // No response; forget the statement.
                if let Some(id) = Reader(rest).u32() {
                    shared.prepared.remove(&id);
                }
                return Verdict::Pass;
            }
            COM_QUERY => {
                let statement: Arc<str> = text();
                if let Some((query, id)) = parse_kill(&statement) {
                    // Gateway connection ids mean nothing upstream: translate, or aim at no
                    // thread at all so the server answers "Unknown thread id".
                    let target = (self.kill_target)(id).unwrap_or(0);
                    let sql = format!("KILL {}{target}", if query { "QUERY " } else { "" });
                    let mut payload = vec![COM_QUERY];
                    payload.extend_from_slice(sql.as_bytes());
                    shared.queue.push_back(expect(Kind::Query, statement));
                    return Verdict::Replace(packet::frame(0, &payload));
                }
                expect(Kind::Query, statement)
            }
            COM_INIT_DB => expect(
                Kind::Query,
                Arc::from(format!("USE {}", String::from_utf8_lossy(rest)).as_str()),
            ),
            COM_STMT_PREPARE => expect(Kind::Prepare, text()),
            COM_STMT_EXECUTE => {
                let id = Reader(rest).u32().unwrap_or(0);
                match shared.prepared.get_mut(&id) {
                    Some(p) => {
                        let params = decode(rest, &mut p.params).map(Arc::from);
                        let mut e = expect(Kind::Execute, Arc::clone(&p.statement));
                        e.params = params;
                        e
                    }
                    None => expect(Kind::Execute, Arc::from("")),
                }
            }
            COM_PING | COM_RESET_CONNECTION => expect(Kind::Other, Arc::from("")),
            _ => expect(Kind::Other, Arc::from("")),
        };
        shared.queue.push_back(e);
        Verdict::Pass
    }
}

impl ServerSide for MyServer {
    type Wire = My;
    const LIMIT: usize = 32;

    fn wants(_: &[u8]) -> bool {
        true
    }

    fn frame(&mut self, h: &[u8], body: &[u8], out: &mut Vec<Outcome>) {
        let len = h
            .first()
            .map_or(0, |_| u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize);
        let continued = std::mem::replace(&mut self.m.continuing, len == 0xFF_FFFF);
        if continued {
            return;
        }
        let Ok(mut shared) = self.shared.lock() else {
            return;
        };
        if shared.queue.is_empty() {
            return;
        }
        let done = match self.m.state {
            State::First => self.m.first(&mut shared, body),
            State::Columns(0) => {
                // The EOF after the column definitions.
                self.m.state = State::Rows;
                false
            }
            State::Columns(n) => {
                self.m.state = State::Columns(n - 1);
                false
            }
            State::Rows => self.m.row(&mut shared, body, len),
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

    #[test]
    fn kill_statements_are_recognised() {
        assert_eq!(parse_kill("KILL QUERY 12"), Some((true, 12)));
        assert_eq!(parse_kill("kill 7;"), Some((false, 7)));
        assert_eq!(parse_kill("kill connection 3"), Some((false, 3)));
        assert_eq!(parse_kill("killer 3"), None);
        assert_eq!(parse_kill("kill query 3 4"), None);
        assert_eq!(parse_kill("select 1"), None);
    }

    fn header(len: usize, seq: u8) -> [u8; 4] {
        let l = (len as u32).to_le_bytes();
        [l[0], l[1], l[2], seq]
    }

    /// Client command, then the server's one-packet answer; returns the outcomes.
    fn exchange(c: &mut MyClient, s: &mut MyServer, command: &[u8], answer: &[u8]) -> usize {
        c.frame(&header(command.len(), 0), command);
        let mut out = Vec::new();
        s.frame(&header(answer.len(), 1), answer, &mut out);
        out.len()
    }

    #[test]
    fn long_data_expects_no_answer_and_transactions_keep_the_upstream() {
        let (mut c, mut s) = pair(Box::new(|_| None));
        let long = [COM_STMT_SEND_LONG_DATA, 1, 0, 0, 0, 0, 0, b'x'];
        assert_eq!(c.frame(&header(long.len(), 0), &long), Verdict::Pass);
        // OK with SERVER_STATUS_IN_TRANS: the query is the one answered, not the long data.
        let in_trans = [0x00, 0, 0, 0x03, 0, 0, 0];
        assert_eq!(exchange(&mut c, &mut s, b"\x03begin", &in_trans), 1);
        assert!(!s.reusable(), "inside a transaction");
        let idle = [0x00, 0, 0, 0x02, 0, 0, 0];
        assert_eq!(exchange(&mut c, &mut s, b"\x03commit", &idle), 1);
        assert!(s.reusable());
        c.frame(&header(9, 0), b"\x03select 1");
        assert!(!s.reusable(), "an answer is outstanding");
        c.hold_goodbye = true;
        assert_eq!(c.frame(&header(1, 0), &[COM_QUIT]), Verdict::Hold);
    }
}
