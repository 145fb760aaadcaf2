//! One statement over a logged-in upstream connection, in the extended protocol (Parse,
//! Bind with text-format parameters whose types the server infers, Describe, Execute with
//! a row limit, Sync), read to ReadyForQuery.

use std::future::Future;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::IsNull;
use postgres_protocol::message::backend::{DataRowBody, ErrorFields, Message};
use postgres_protocol::message::frontend;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::backend::Upstream;
use crate::protocol::exec::{self, Bind, Column, ExecError, StatementResult, Watch};

/// What a statement left the connection in (ReadyForQuery's status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    Idle,
    InTransaction,
    Failed,
}

/// Runs `statement` with `params`; keeps at most `max_rows` rows. `interrupt` resolves once
/// the caller has asked the server to stop the statement (a cancel request).
pub async fn run(
    up: &mut Upstream,
    statement: &str,
    params: &[Bind],
    max_rows: usize,
    interrupt: impl Future<Output = ()>,
) -> Result<(StatementResult, TxStatus), ExecError> {
    let started = std::time::Instant::now();
    let mut out = BytesMut::new();
    let bad = |e: std::io::Error| ExecError::Protocol(e.to_string());
    frontend::parse("", statement, std::iter::empty(), &mut out).map_err(bad)?;
    frontend::bind(
        "",
        "",
        std::iter::once(0i16),
        params.iter(),
        |p, buf| Ok::<_, Box<dyn std::error::Error + Sync + Send>>(text_param(p, buf)),
        std::iter::once(0i16),
        &mut out,
    )
    .map_err(|_| ExecError::Protocol("the parameters cannot be encoded".into()))?;
    frontend::describe(b'P', "", &mut out).map_err(bad)?;
    let limit = i32::try_from(max_rows.saturating_add(1)).unwrap_or(i32::MAX);
    frontend::execute("", limit, &mut out).map_err(bad)?;
    frontend::sync(&mut out);
    up.stream.write_all(&out).await?;
    up.stream.flush().await?;
    let mut answer = Answer {
        result: StatementResult::new(statement),
        types: Vec::new(),
        max_rows,
    };
    let mut watch = Watch::new(interrupt);
    let mut buf = BytesMut::with_capacity(8192);
    loop {
        let stream = &mut up.stream;
        let msg = watch.read(next(stream, &mut buf)).await?;
        if let Some(status) = answer.message(msg)? {
            answer.result.duration_us = started.elapsed().as_micros() as u64;
            return Ok((answer.result, status));
        }
    }
}

fn text_param(p: &Bind, buf: &mut BytesMut) -> IsNull {
    let text = match p {
        Bind::Null => return IsNull::Yes,
        Bind::Bool(true) => "t".to_owned(),
        Bind::Bool(false) => "f".to_owned(),
        other => other.logged().unwrap_or_default(),
    };
    buf.extend_from_slice(text.as_bytes());
    IsNull::No
}

async fn next(stream: &mut crate::tls::Stream, buf: &mut BytesMut) -> std::io::Result<Message> {
    loop {
        if let Some(msg) = Message::parse(buf)? {
            return Ok(msg);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

struct Answer {
    result: StatementResult,
    /// The result columns' type OIDs.
    types: Vec<u32>,
    max_rows: usize,
}

impl Answer {
    /// Takes one message; the connection's status once the answer is complete.
    fn message(&mut self, msg: Message) -> Result<Option<TxStatus>, ExecError> {
        let bad = |e: std::io::Error| ExecError::Protocol(e.to_string());
        match msg {
            Message::RowDescription(body) => {
                let mut fields = body.fields();
                while let Some(f) = fields.next().map_err(bad)? {
                    self.types.push(f.type_oid());
                    self.result.columns.push(Column {
                        name: f.name().to_owned(),
                        type_name: type_name(f.type_oid()),
                        origin: Some(exec::ColumnOrigin::Pg {
                            table: f.table_oid(),
                            attnum: f.column_id(),
                            type_oid: f.type_oid(),
                        }),
                    });
                }
            }
            Message::DataRow(body) => {
                let types = &self.types;
                let row = || row(&body, types).unwrap_or_default();
                self.result.push_row(self.max_rows, row);
            }
            Message::PortalSuspended => self.result.truncated = true,
            Message::CommandComplete(body) => {
                let tag = body.tag().map_err(bad)?;
                self.result.rows_affected = tag.rsplit(' ').next().and_then(|n| n.parse().ok());
            }
            Message::ErrorResponse(body) => {
                let (code, message) = fields(body.fields()).map_err(bad)?;
                self.result.failed(code, message);
            }
            Message::NoticeResponse(body) => {
                let (code, message) = fields(body.fields()).map_err(bad)?;
                self.result.notices.push(format!("{code}: {message}"));
            }
            Message::ReadyForQuery(r) => {
                return Ok(Some(match r.status() {
                    b'I' => TxStatus::Idle,
                    b'T' => TxStatus::InTransaction,
                    _ => TxStatus::Failed,
                }));
            }
            Message::ParseComplete
            | Message::BindComplete
            | Message::NoData
            | Message::EmptyQueryResponse
            | Message::ParameterStatus(_)
            | Message::NotificationResponse(_) => {}
            _ => return Err(ExecError::Protocol("unexpected message".into())),
        }
        Ok(None)
    }
}

/// A notice's or error's SQLSTATE and message.
fn fields(mut fields: ErrorFields<'_>) -> std::io::Result<(String, String)> {
    let (mut code, mut message) = (String::new(), String::new());
    while let Some(f) = fields.next()? {
        match f.type_() {
            b'C' => code = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            b'M' => message = String::from_utf8_lossy(f.value_bytes()).into_owned(),
            _ => {}
        }
    }
    Ok((code, message))
}

fn row(body: &DataRowBody, types: &[u32]) -> std::io::Result<Vec<Value>> {
    let buf = body.buffer();
    let mut ranges = body.ranges();
    let mut out = Vec::with_capacity(types.len());
    let mut i = 0;
    while let Some(range) = ranges.next()? {
        let oid = types.get(i).copied().unwrap_or(0);
        out.push(match range {
            None => Value::Null,
            Some(r) => value(oid, buf.get(r).unwrap_or_default()),
        });
        i += 1;
    }
    Ok(out)
}

/// A text-format value of type `oid`, typed for JSON.
fn value(oid: u32, bytes: &[u8]) -> Value {
    let text = String::from_utf8_lossy(bytes);
    match oid {
        oid::INT2 | oid::INT4 | oid::INT8 | oid::OID | oid::FLOAT4 | oid::FLOAT8 | oid::NUMERIC => {
            exec::number_or_text(&text)
        }
        oid::BOOL => Value::from(text == "t"),
        oid::BYTEA => match text.strip_prefix("\\x").map(hex::decode) {
            Some(Ok(raw)) => exec::base64(&raw),
            _ => Value::from(text.into_owned()),
        },
        _ => Value::from(text.into_owned()),
    }
}

mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const OID: u32 = 26;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const NUMERIC: u32 = 1700;
}

/// The built-in types' names (`pg_type.typname`); others by OID.
fn type_name(oid: u32) -> String {
    let name = match oid {
        16 => "bool",
        17 => "bytea",
        18 => "char",
        19 => "name",
        20 => "int8",
        21 => "int2",
        23 => "int4",
        25 => "text",
        26 => "oid",
        114 => "json",
        142 => "xml",
        650 => "cidr",
        700 => "float4",
        701 => "float8",
        790 => "money",
        869 => "inet",
        1000 => "_bool",
        1005 => "_int2",
        1007 => "_int4",
        1009 => "_text",
        1016 => "_int8",
        1042 => "bpchar",
        1043 => "varchar",
        1082 => "date",
        1083 => "time",
        1114 => "timestamp",
        1184 => "timestamptz",
        1186 => "interval",
        1266 => "timetz",
        1700 => "numeric",
        2950 => "uuid",
        3802 => "jsonb",
        _ => return format!("oid {oid}"),
    };
    name.to_owned()
}
