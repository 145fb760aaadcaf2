//! A control session: a MySQL login that named no database (the `mariadb` client's Ctrl-C
//! connection, `mariadb-admin ping` / `status`). Authenticated like any login, registered
//! and logged like any session (`mode: "native"`, no resource role); it reaches no upstream
//! database of its own. It serves `KILL [QUERY] n` and `COM_PROCESS_KILL` for its user's
//! sessions (admins: anyone's) by logging in beside the target with the target's own
//! permit, `COM_PING`, `COM_STATISTICS`, `COM_QUIT`, the session settings clients send at
//! connect (accepted, with nothing to apply them to) and a few identity questions; anything
//! else is told which resource roles the user can name.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::MyFrontend;
use super::conns::{Conn, Miss};
use crate::access::{Identity, KillParty};
use crate::audit::Op;
use crate::model::Protocol;
use crate::protocol::mysql::packet::{self, Reader, code};
use crate::relay::{Counters, Ended, Outcome, Sink};
use crate::session::{End, EventSink, RelayLink};
use crate::sql::{self, KillCheck};

const COM_QUIT: u8 = 0x01;
const COM_INIT_DB: u8 = 0x02;
const COM_QUERY: u8 = 0x03;
const COM_STATISTICS: u8 = 0x09;
const COM_PROCESS_KILL: u8 = 0x0c;
const COM_PING: u8 = 0x0e;

/// What the version comment says of a control session.
const COMMENT: &str = "Portcullis gateway: control session (no resource role)";

/// The answer to one command: packets for the client, and the event it makes (`None`:
/// nothing to log, like a ping in any session).
struct Answer {
    packets: Vec<Vec<u8>>,
    logged: Option<(Op, String)>,
}

impl Answer {
    fn one(packet: Vec<u8>, op: Op, statement: String) -> Answer {
        Answer {
            packets: vec![packet],
            logged: Some((op, statement)),
        }
    }

    /// The error code the client got, for the event.
    fn error_code(&self) -> Option<String> {
        let first = self.packets.first()?;
        (first.first() == Some(&0xFF)).then(|| Reader(&first[1..]).u16().unwrap_or(0).to_string())
    }
}

enum Step {
    Command(Vec<u8>),
    Gone,
    Stopped,
}

impl MyFrontend<'_> {
    /// Serves a control session until the client quits or the session is told to end.
    pub(super) async fn serve_control(&mut self, identity: &Identity, link: RelayLink) -> End {
        let party = KillParty::control(&self.listener.gw.control.snapshot(), identity);
        let mut sink = EventSink::new(&link);
        let mut counters = Counters::default();
        let stop = link.stop_signal();
        tokio::pin!(stop);
        loop {
            let step = tokio::select! {
                read = self.read() => read.map_or(Step::Gone, Step::Command),
                _ = &mut stop => Step::Stopped,
            };
            let body = match step {
                Step::Command(body) => body,
                Step::Gone => return sink.end_of(Ended::ClientClosed, &counters),
                Step::Stopped => return sink.end_of(Ended::Stopped, &counters),
            };
            counters.bytes_in += body.len() as u64 + 4;
            if body.first() == Some(&COM_QUIT) {
                return sink.end_of(Ended::ClientTerminated, &counters);
            }
            let started = Instant::now();
            let answer = self.command(&body, &party, identity).await;
            for p in &answer.packets {
                counters.bytes_out += p.len() as u64 + 4;
                if self.write(p).await.is_err() {
                    return sink.end_of(Ended::ClientClosed, &counters);
                }
            }
            if let Some((op, statement)) = answer.logged.clone() {
                counters.queries += 1;
                let outcome = Outcome {
                    statement: Arc::from(statement.as_str()),
                    op,
                    params: None,
                    duration_us: started.elapsed().as_micros() as u64,
                    rows: 0,
                    error_code: answer.error_code(),
                    application_name: None,
                    cut: None,
                    guard: None,
                    masked: None,
                };
                sink.outcome(outcome);
                sink.flush().await;
            }
        }
    }

    async fn command(&mut self, body: &[u8], party: &KillParty, identity: &Identity) -> Answer {
        let (&command, rest) = body.split_first().unwrap_or((&0, &[]));
        match command {
            COM_PING => Answer {
                packets: vec![packet::ok()],
                logged: None,
            },
            COM_STATISTICS => {
                Answer::one(self.statistics(), Op::Statistics, "COM_STATISTICS".into())
            }
            COM_PROCESS_KILL => {
                let id = Reader(rest).u32().unwrap_or(0);
                let kill = sql::Kill {
                    hardness: None,
                    query: false,
                    id: id.into(),
                };
                let reply = self.kill(&kill, party).await;
                Answer::one(reply, Op::ProcessKill, format!("COM_PROCESS_KILL {id}"))
            }
            COM_QUERY => {
                let text = String::from_utf8_lossy(rest).into_owned();
                let packets = self.query(&text, party, identity).await;
                Answer {
                    packets,
                    logged: Some((Op::ComQuery, text)),
                }
            }
            COM_INIT_DB => {
                let statement = format!("USE {}", String::from_utf8_lossy(rest));
                Answer::one(self.no_role(identity), Op::InitDb, statement)
            }
            other => {
                let statement = format!("command 0x{other:02x}");
                Answer::one(self.no_role(identity), Op::Command, statement)
            }
        }
    }

    async fn query(&mut self, text: &str, party: &KillParty, identity: &Identity) -> Vec<Vec<u8>> {
        match sql::kill(text) {
            KillCheck::Kill(kill) => return vec![self.kill(&kill, party).await],
            KillCheck::Refuse(why) => {
                return vec![packet::err(code::SPECIFIC_ACCESS_DENIED, "42000", why)];
            }
            KillCheck::Clean => {}
        }
        if harmless_setting(text) {
            return vec![packet::ok()];
        }
        match self.identity_question(text) {
            Some((column, value)) => packet::text_result(&[column], &[vec![value]]),
            None => vec![self.no_role(identity)],
        }
    }

    /// `SELECT @@version_comment` (the `mariadb` client's first question) and the like.
    fn identity_question(&self, text: &str) -> Option<(&'static str, Option<String>)> {
        let words: Vec<String> = text
            .trim()
            .trim_end_matches(';')
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let asked = match words.as_slice() {
            ["select", asked] | ["select", asked, "limit", "1"] => *asked,
            _ => return None,
        };
        Some(match asked {
            "@@version_comment" => ("@@version_comment", Some(COMMENT.into())),
            "@@version" | "version()" => ("version()", Some(self.version.to_string())),
            "connection_id()" => ("connection_id()", Some(self.id.to_string())),
            "database()" => ("database()", None),
            _ => return None,
        })
    }

    /// The error for anything a control session does not serve, naming the resource
    /// roles the user can use.
    fn no_role(&self, identity: &Identity) -> Vec<u8> {
        let snapshot = self.listener.gw.control.snapshot();
        let roles = crate::access::native_roles(&snapshot, identity, Protocol::Mysql);
        let yours = if roles.is_empty() {
            "you have no MySQL resource role to name".to_owned()
        } else {
            format!("yours: {}", roles.join(", "))
        };
        let message = format!(
            "No resource role selected: this connection serves only KILL, ping and statistics. Reconnect naming a resource role as the database (mariadb -D ROLE); {yours}"
        );
        packet::err(code::NO_DB, "3D000", &message)
    }

    /// `COM_STATISTICS`: the gateway's own figures, in the server's format.
    fn statistics(&self) -> Vec<u8> {
        let m = &self.listener.gw.metrics;
        let uptime = self.listener.started.elapsed().as_secs().max(1);
        let questions = m.queries_total.load(Ordering::Relaxed);
        let text = format!(
            "Uptime: {uptime}  Threads: {}  Questions: {questions}  Queries per second avg: {:.3}",
            m.sessions_active.load(Ordering::Relaxed),
            questions as f64 / uptime as f64
        );
        text.into_bytes()
    }

    /// Ends the statement (or connection) of a session this one may reach: logged in
    /// beside it as its resource role, the `KILL` aimed at its server thread id. The
    /// server's answer is the client's.
    async fn kill(&self, kill: &sql::Kill, party: &KillParty) -> Vec<u8> {
        let id = u32::try_from(kill.id).unwrap_or(0);
        match self.listener.conns.target(id, party) {
            Ok(target) => {
                self.kill_beside(&target, &kill.to_sql(target.thread_id))
                    .await
            }
            Err(Miss::Unknown) => unknown_thread(id),
            Err(Miss::Ambiguous) => packet::err(
                code::NO_SUCH_THREAD,
                "HY000",
                &format!(
                    "Thread id {id} is the server's id of sessions on more than one resource; KILL the connection id the session's handshake reported"
                ),
            ),
        }
    }

    async fn kill_beside(&self, target: &Conn, statement: &str) -> Vec<u8> {
        let gw = &self.listener.gw;
        let sent = gw
            .upstreams
            .mysql_beside(&target.permit, &self.hello, statement, &gw.metrics);
        match sent.await {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!(resource = %target.permit.resource().name, error = %e, "control session: could not send KILL");
                let message = "Could not reach the session's database to KILL; the gateway's log has the reason";
                packet::err(code::UNKNOWN, "HY000", message)
            }
        }
    }
}

fn unknown_thread(id: u32) -> Vec<u8> {
    packet::err(
        code::NO_SUCH_THREAD,
        "HY000",
        &format!("Unknown thread id: {id}"),
    )
}

/// A `SET` of session settings: accepted (there is nothing to apply it to). Global,
/// persisted, password and role changes are not settings a control session accepts.
fn harmless_setting(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let mut words = lower
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty());
    words.next() == Some("set")
        && !lower.contains(';')
        && words.all(|w| {
            !matches!(
                w,
                "global" | "persist" | "persist_only" | "password" | "role"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::harmless_setting;

    #[test]
    fn session_settings_are_harmless_and_global_ones_are_not() {
        for ok in [
            "SET NAMES utf8mb4",
            "set autocommit=1, sql_mode = concat(@@sql_mode, ',STRICT_TRANS_TABLES')",
            "SET @@session.wait_timeout = 100",
        ] {
            assert!(harmless_setting(ok), "{ok}");
        }
        for no in [
            "SET GLOBAL max_connections = 1",
            "set @@global.x = 1",
            "SET PASSWORD = 'x'",
            "SET ROLE admin",
            "SET NAMES utf8; DROP TABLE t",
            "SELECT 1",
        ] {
            assert!(!harmless_setting(no), "{no}");
        }
    }
}
