//! Running planned statements over one upstream connection, as a session: per protocol
//! (`Runner`) only how to log in, run one statement, and ask the server to stop it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::{Executed, Job, Planned, RunError};
use crate::access::Permit;
use crate::audit::{EndedBy, Op};
use crate::guardrail::{Guard, MaskCheck};
use crate::masking::Masker;
use crate::masking::catalog;
use crate::masking::result::ResultMasking;
use crate::protocol::exec::{Bind, ExecError, StatementResult};
use crate::protocol::mysql::handshake::ClientHello;
use crate::protocol::mysql::packet::caps;
use crate::protocol::{mysql, postgres};
use crate::relay::{Outcome, Sink};
use crate::session::{Admitted, End, EventSink, Gateway, RelayLink};
use crate::upstream::{Lease, MysqlUpstream, Pooled, PostgresUpstream};

type Cancel = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What one protocol contributes to a run.
pub trait Runner: Pooled {
    /// The login's client parameters for a run named `application_name`.
    fn params(application_name: &str) -> Self::Params;
    /// How the statement reached the server, for its `query` event.
    fn op(bound: bool) -> Op;
    /// The server's code for a statement it was asked to stop (MariaDB answers some, like
    /// `SLEEP`, as if they had finished: the run says they did not).
    const INTERRUPTED: &'static str;
    /// The code of a statement a guardrail blocked (as the native session's refusal).
    const BLOCKED: &'static str;
    /// Runs one statement; the second value: the connection is idle (outside any
    /// transaction), fit to keep.
    fn run(
        &mut self,
        text: &str,
        binds: &[Bind],
        max_rows: usize,
        interrupt: impl Future<Output = ()> + Send,
    ) -> impl Future<Output = Result<(StatementResult, bool), ExecError>> + Send;
    /// Asks the server to stop what this connection is running.
    fn cancel(&self, gw: &Arc<Gateway>, permit: &Permit) -> Cancel;
    /// Masking under `masker` for a run on `resource` (what it must know of the database
    /// read on this connection): the results' masking and the statement check.
    fn masking(
        &mut self,
        gw: &Arc<Gateway>,
        resource: &str,
        masker: Masker,
    ) -> impl Future<Output = Result<(ResultMasking, MaskCheck), String>> + Send;
    const PROTOCOL: crate::model::Protocol;
}

impl Runner for PostgresUpstream {
    fn params(application_name: &str) -> Vec<(String, String)> {
        vec![
            ("application_name".into(), application_name.into()),
            ("client_encoding".into(), "UTF8".into()),
        ]
    }

    fn op(_bound: bool) -> Op {
        Op::Execute
    }

    const INTERRUPTED: &'static str = "57014";
    const BLOCKED: &'static str = "42501";

    async fn run(
        &mut self,
        text: &str,
        binds: &[Bind],
        max_rows: usize,
        interrupt: impl Future<Output = ()> + Send,
    ) -> Result<(StatementResult, bool), ExecError> {
        let (result, status) = postgres::exec::run(self, text, binds, max_rows, interrupt).await?;
        Ok((result, status == postgres::exec::TxStatus::Idle))
    }

    async fn masking(
        &mut self,
        gw: &Arc<Gateway>,
        resource: &str,
        masker: Masker,
    ) -> Result<(ResultMasking, MaskCheck), String> {
        let catalog = catalog::pg_catalog(&gw.catalogs, resource, self, &masker).await?;
        let check = catalog::check(&masker, catalog.views());
        let catalog = Some(catalog);
        Ok((ResultMasking { masker, catalog }, check))
    }

    const PROTOCOL: crate::model::Protocol = crate::model::Protocol::Postgres;

    fn cancel(&self, _gw: &Arc<Gateway>, _permit: &Permit) -> Cancel {
        let (address, pid, secret) = (self.address.clone(), self.pid, self.secret);
        Box::pin(async move {
            if let Err(e) = postgres::backend::send_cancel(&address, pid, secret).await {
                tracing::warn!(error = %e, "could not send the cancel request");
            }
        })
    }
}

impl Runner for MysqlUpstream {
    async fn masking(
        &mut self,
        _gw: &Arc<Gateway>,
        _resource: &str,
        masker: Masker,
    ) -> Result<(ResultMasking, MaskCheck), String> {
        let views = catalog::my_views(self, &masker).await?;
        let check = catalog::check(&masker, views.iter().map(|(s, n)| (&**s, &**n)));
        let catalog = None;
        Ok((ResultMasking { masker, catalog }, check))
    }

    const PROTOCOL: crate::model::Protocol = crate::model::Protocol::Mysql;

    fn params(application_name: &str) -> ClientHello {
        let mut attrs = Vec::new();
        mysql::packet::lenenc_str(&mut attrs, b"program_name");
        mysql::packet::lenenc_str(&mut attrs, application_name.as_bytes());
        let mut block = Vec::new();
        mysql::packet::lenenc_str(&mut block, &attrs);
        ClientHello {
            caps: caps::LONG_PASSWORD
                | caps::LONG_FLAG
                | caps::CONNECT_WITH_DB
                | caps::PROTOCOL_41
                | caps::TRANSACTIONS
                | caps::SECURE_CONNECTION
                | caps::MULTI_RESULTS
                | caps::PS_MULTI_RESULTS
                | caps::PLUGIN_AUTH
                | caps::PLUGIN_AUTH_LENENC
                | caps::CONNECT_ATTRS,
            max_packet: 1 << 24,
            charset: 45, // utf8mb4_general_ci
            attrs: block,
            ..ClientHello::default()
        }
    }

    fn op(bound: bool) -> Op {
        if bound { Op::StmtExecute } else { Op::ComQuery }
    }

    const INTERRUPTED: &'static str = "1317";
    const BLOCKED: &'static str = "1227";

    async fn run(
        &mut self,
        text: &str,
        binds: &[Bind],
        max_rows: usize,
        interrupt: impl Future<Output = ()> + Send,
    ) -> Result<(StatementResult, bool), ExecError> {
        let (result, in_tx) = mysql::exec::run(self, text, binds, max_rows, interrupt).await?;
        Ok((result, !in_tx))
    }

    fn cancel(&self, gw: &Arc<Gateway>, permit: &Permit) -> Cancel {
        let (gw, permit) = (Arc::clone(gw), permit.clone());
        let statement = format!("KILL QUERY {}", self.thread_id);
        Box::pin(async move {
            let hello = <MysqlUpstream as Runner>::params("portcullis-cancel");
            let upstreams = &gw.upstreams;
            let sent = upstreams.mysql_beside(&permit, &hello, &statement, &gw.metrics);
            if let Err(e) = sent.await {
                tracing::warn!(error = %e, "could not send KILL QUERY");
            }
        })
    }
}

/// Why a statement was interrupted.
#[derive(Debug)]
enum Interrupted {
    Timeout(Duration),
    Ended(String),
}

/// Logs in, starts the session, runs the statements in order up to the first failure,
/// ends the session and gives the connection back.
pub async fn execute<C: Runner>(
    gw: &Arc<Gateway>,
    admitted: Admitted,
    permit: &Permit,
    planned: Vec<Planned>,
    job: &Job,
) -> Result<Executed, RunError> {
    let params = C::params(&job.application_name);
    let mut lease = gw
        .upstreams
        .login::<C>(permit, &params, &gw.metrics)
        .await?;
    let session_id = admitted.common().session_id.clone();
    let session = admitted.start(Vec::new()).await;
    let link = session.link();
    let mut run = Run {
        gw,
        permit,
        job,
        link: &link,
        guard: link.guard.clone(),
        masking: None,
        results: Vec::new(),
        failed: None,
        idle: true,
        broken: None,
        interrupted: Arc::new(OnceLock::new()),
    };
    run.all(&mut lease, planned).await;
    let end = run.end();
    let reusable = run.idle && run.broken.is_none();
    let executed = Executed {
        session_id,
        results: run.results,
        failed: run.failed,
    };
    session.finish(end).await;
    gw.upstreams.release(lease, reusable).await;
    Ok(executed)
}

struct Run<'a> {
    gw: &'a Arc<Gateway>,
    permit: &'a Permit,
    job: &'a Job,
    link: &'a RelayLink,
    guard: Option<crate::guardrail::Guard>,
    /// The session's masking, once set up (`mask`).
    masking: Option<ResultMasking>,
    results: Vec<StatementResult>,
    failed: Option<usize>,
    /// The connection is outside any transaction.
    idle: bool,
    /// The connection failed: why.
    broken: Option<String>,
    interrupted: Arc<OnceLock<Interrupted>>,
}

impl Run<'_> {
    /// Sets up the session's masking, if it has rules: false when it cannot be (the run
    /// fails at its first statement, which never runs).
    async fn mask<C: Runner>(&mut self, lease: &mut Lease<C>, first: Option<&Planned>) -> bool {
        let Some(masker) = self.link.masker.clone() else {
            return true;
        };
        let resource = &self.link.common.resource;
        match lease.conn.masking(self.gw, resource, masker).await {
            Ok((masking, check)) => {
                let schema = match C::PROTOCOL {
                    crate::model::Protocol::Postgres => "public",
                    crate::model::Protocol::Mysql => self.link.database.as_str(),
                };
                let guard = self.guard.take();
                self.guard = Some(Guard::masked(guard, check, C::PROTOCOL, schema));
                self.masking = Some(masking);
                true
            }
            Err(why) => {
                let text = first.map_or("", |p| p.text.as_str());
                let mut result = StatementResult::new(text);
                result.failed(C::BLOCKED.into(), why);
                self.results.push(result);
                self.failed = Some(0);
                false
            }
        }
    }

    async fn all<C: Runner>(&mut self, lease: &mut Lease<C>, planned: Vec<Planned>) {
        if !self.mask(lease, planned.first()).await {
            return;
        }
        let mut sink = EventSink::new(self.link);
        for p in &planned {
            let note = self.guard.as_mut().and_then(|g| g.check(&p.text));
            if let Some(d) = note.as_ref().filter(|d| d.block) {
                let mut result = StatementResult::new(&p.text);
                result.failed(C::BLOCKED.into(), d.message());
                let mut o = outcome::<C>(p, &result);
                o.guard = note.clone();
                sink.outcome(o);
                sink.flush().await;
                self.results.push(result);
                self.failed = Some(self.results.len() - 1);
                break;
            }
            let cancel = lease.conn.cancel(self.gw, self.permit);
            let interrupt = self.interrupt(cancel);
            let started = Instant::now();
            let ran = lease
                .conn
                .run(&p.text, &p.binds, self.job.max_rows, interrupt)
                .await;
            match ran {
                Ok((mut result, idle)) => {
                    self.idle = idle;
                    self.say_interrupted::<C>(&mut result);
                    let masked = self.masking.as_ref().map(|m| m.apply(&mut result));
                    let mut o = outcome::<C>(p, &result);
                    o.guard = note;
                    o.masked = masked.filter(|m| !m.is_empty()).map(Arc::from);
                    sink.outcome(o);
                    sink.flush().await;
                    let failed = result.error.is_some();
                    self.results.push(result);
                    if failed {
                        self.failed = Some(self.results.len() - 1);
                        break;
                    }
                }
                Err(e) => {
                    let mut result = StatementResult::new(&p.text);
                    result.duration_us = started.elapsed().as_micros() as u64;
                    result.failed("08006".into(), e.to_string());
                    sink.outcome(outcome::<C>(p, &result));
                    sink.flush().await;
                    self.results.push(result);
                    self.failed = Some(self.results.len() - 1);
                    self.broken = Some(e.to_string());
                    return;
                }
            }
        }
        if self.failed.is_some() && !self.idle {
            self.rollback(lease, &mut sink).await;
        }
    }

    /// A statement that was interrupted failed, and says why.
    fn say_interrupted<C: Runner>(&self, result: &mut StatementResult) {
        let Some(why) = self.interrupted.get() else {
            return;
        };
        let why = match why {
            Interrupted::Timeout(t) => format!("it ran past its {}s timeout", t.as_secs_f64()),
            Interrupted::Ended(m) => m.clone(),
        };
        match &mut result.error {
            Some(e) => e.message = format!("{} ({why})", e.message),
            None => result.failed(
                C::INTERRUPTED.into(),
                format!("the statement was stopped: {why}"),
            ),
        }
    }

    /// A run that stopped inside its transaction undoes it.
    async fn rollback<C: Runner>(&mut self, lease: &mut Lease<C>, sink: &mut EventSink<'_>) {
        let rollback = Planned {
            text: "ROLLBACK".into(),
            binds: Vec::new(),
        };
        let never = std::future::pending();
        match lease.conn.run(&rollback.text, &[], 0, never).await {
            Ok((result, idle)) => {
                self.idle = idle;
                sink.outcome(outcome::<C>(&rollback, &result));
                sink.flush().await;
                self.results.push(result);
            }
            Err(e) => self.broken = Some(e.to_string()),
        }
    }

    /// Resolves once the statement must stop — past its timeout, or the session told to
    /// end — and the server has been asked to stop it.
    fn interrupt(&self, cancel: Cancel) -> impl Future<Output = ()> + Send + 'static {
        let timeout = self.job.timeout;
        let stop = self.link.stop_signal();
        let why = Arc::clone(&self.interrupted);
        async move {
            let reason = tokio::select! {
                () = tokio::time::sleep(timeout) => Interrupted::Timeout(timeout),
                message = stop => Interrupted::Ended(message),
            };
            let _ = why.set(reason);
            cancel.await;
        }
    }

    fn end(&self) -> End {
        let (ended_by, error) = match (self.interrupted.get(), &self.broken) {
            (Some(Interrupted::Ended(m)), _) => (EndedBy::Killed, Some(m.clone())),
            (_, Some(e)) => (EndedBy::Error, Some(e.clone())),
            (Some(Interrupted::Timeout(t)), None) => (
                EndedBy::Client,
                Some(format!(
                    "a statement ran past its {}s timeout and was cancelled",
                    t.as_secs_f64()
                )),
            ),
            (None, None) => (EndedBy::Client, None),
        };
        let mut end = End::bare(ended_by, error);
        end.queries = self.results.len() as u64;
        end
    }
}

/// A statement's `query` event.
fn outcome<C: Runner>(p: &Planned, r: &StatementResult) -> Outcome {
    let params = (!p.binds.is_empty()).then(|| p.binds.iter().map(Bind::logged).collect());
    Outcome {
        statement: Arc::from(p.text.as_str()),
        op: C::op(!p.binds.is_empty()),
        params,
        duration_us: r.duration_us,
        rows: r.rows_affected.unwrap_or(r.rows.len() as u64),
        error_code: r.error.as_ref().map(|e| e.code.clone()),
        application_name: None,
        cut: None,
        guard: None,
        masked: None,
    }
}
