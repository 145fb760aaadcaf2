//! One statement over a logged-in upstream connection (logged in without
//! `CLIENT_DEPRECATE_EOF` or multi-statements): `COM_QUERY` when there is nothing to bind,
//! otherwise `COM_STMT_PREPARE` / `COM_STMT_EXECUTE` / `COM_STMT_CLOSE` with typed binary
//! parameters; the answer read to its end, warnings fetched with `SHOW WARNINGS`.

use std::future::Future;

use serde_json::Value;

use super::packet::{self, Reader, SERVER_MORE_RESULTS_EXISTS, STATUS_IN_TRANS};
use super::params::{Cell, cell};
use super::upstream::Upstream;
use crate::protocol::exec::{self, Bind, Column, ExecError, StatementResult, Watch};
use crate::tls::Stream;

const COM_QUERY: u8 = 0x03;
const COM_STMT_PREPARE: u8 = 0x16;
const COM_STMT_EXECUTE: u8 = 0x17;
const COM_STMT_CLOSE: u8 = 0x19;

/// Largest row (or other packet, continuations joined) read.
const MAX_PACKET: usize = 256 << 20;

/// Runs `statement` with `params`; keeps at most `max_rows` rows. `interrupt` resolves once
/// the caller has asked the server to stop the statement (`KILL QUERY` beside it). The
/// second value: the connection is inside a transaction.
pub async fn run(
    up: &mut Upstream,
    statement: &str,
    params: &[Bind],
    max_rows: usize,
    interrupt: impl Future<Output = ()>,
) -> Result<(StatementResult, bool), ExecError> {
    let started = std::time::Instant::now();
    let mut result = StatementResult::new(statement);
    let mut watch = Watch::new(interrupt);
    let s = &mut up.stream;
    let status = if params.is_empty() {
        send(s, COM_QUERY, statement.as_bytes()).await?;
        read_answer(s, &mut watch, &mut result, max_rows, Rows::Text).await?
    } else {
        prepared(s, &mut watch, &mut result, params, max_rows).await?
    };
    result.duration_us = started.elapsed().as_micros() as u64;
    if status.warnings > 0 {
        warnings(s, &mut result).await?;
    }
    Ok((result, status.flags & STATUS_IN_TRANS != 0))
}

async fn send(s: &mut Stream, command: u8, body: &[u8]) -> std::io::Result<()> {
    let mut p = Vec::with_capacity(body.len() + 1);
    p.push(command);
    p.extend_from_slice(body);
    packet::write(s, 0, &p).await
}

/// A packet, its continuations joined.
async fn read(s: &mut Stream) -> std::io::Result<Vec<u8>> {
    let (_, mut payload) = packet::read(s, MAX_PACKET).await?;
    let mut last = payload.len();
    while last == 0xFF_FFFF {
        let (_, more) = packet::read(s, MAX_PACKET - payload.len()).await?;
        last = more.len();
        payload.extend_from_slice(&more);
    }
    Ok(payload)
}

#[derive(Clone, Copy, Default)]
struct Status {
    flags: u16,
    warnings: u16,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rows {
    Text,
    Binary,
}

/// A column as the rows need it.
struct Def {
    ty: u8,
    charset: u16,
    flags: u16,
}

/// OK, ERR, or result sets (the first kept, any more read past) to their end.
async fn read_answer<I: Future<Output = ()>>(
    s: &mut Stream,
    watch: &mut Watch<I>,
    result: &mut StatementResult,
    max_rows: usize,
    rows: Rows,
) -> Result<Status, ExecError> {
    let mut first_set = true;
    loop {
        let p = watch.read(read(s)).await?;
        let mut r = Reader(&p);
        let status = match p.first() {
            Some(0x00) => {
                r.u8();
                let affected = r.lenenc().unwrap_or(0);
                if first_set {
                    result.rows_affected = Some(affected);
                }
                r.lenenc();
                Status {
                    flags: r.u16().unwrap_or(0),
                    warnings: r.u16().unwrap_or(0),
                }
            }
            Some(0xFF) => {
                error(result, &p);
                return Ok(Status::default());
            }
            Some(0xFB) => {
                // LOAD DATA LOCAL INFILE: no file from here.
                packet::write(s, 2, &[]).await?;
                watch.read(read(s)).await?;
                result.failed(
                    "HY000".into(),
                    "LOAD DATA LOCAL INFILE is not available here".into(),
                );
                return Ok(Status::default());
            }
            _ => {
                let n = r.lenenc().unwrap_or(0);
                let keep = first_set.then_some(&mut *result);
                result_set(s, watch, n, keep, max_rows, rows).await?
            }
        };
        first_set = false;
        if status.flags & SERVER_MORE_RESULTS_EXISTS == 0 {
            return Ok(status);
        }
    }
}

/// A result set of `n` columns after its column count; rows go to `keep` (when given).
async fn result_set<I: Future<Output = ()>>(
    s: &mut Stream,
    watch: &mut Watch<I>,
    n: u64,
    mut keep: Option<&mut StatementResult>,
    max_rows: usize,
    rows: Rows,
) -> Result<Status, ExecError> {
    let mut defs = Vec::new();
    for _ in 0..n {
        let p = watch.read(read(s)).await?;
        let (column, def) = column(&p).ok_or_else(|| bad("column definition"))?;
        if let Some(k) = keep.as_deref_mut() {
            k.columns.push(column);
        }
        defs.push(def);
    }
    watch.read(read(s)).await?; // EOF after the definitions
    loop {
        let p = watch.read(read(s)).await?;
        match p.first() {
            Some(0xFE) if p.len() < 9 => {
                let mut r = Reader(&p[1..]);
                let warnings = r.u16().unwrap_or(0);
                let flags = r.u16().unwrap_or(0);
                return Ok(Status { flags, warnings });
            }
            Some(0xFF) => {
                if let Some(k) = keep.as_deref_mut() {
                    error(k, &p);
                }
                return Ok(Status::default());
            }
            _ => {
                if let Some(k) = keep.as_deref_mut() {
                    let row = || match rows {
                        Rows::Text => text_row(&p, &defs),
                        Rows::Binary => binary_row(&p, &defs),
                    };
                    k.push_row(max_rows, || row().unwrap_or_default());
                }
            }
        }
    }
}

fn bad(what: &str) -> ExecError {
    ExecError::Protocol(format!("malformed {what}"))
}

fn error(result: &mut StatementResult, p: &[u8]) {
    let mut r = Reader(p);
    r.u8();
    let code = r.u16().unwrap_or(0).to_string();
    let mut rest = r.rest();
    if rest.first() == Some(&b'#') && rest.len() >= 6 {
        rest = &rest[6..];
    }
    result.failed(code, String::from_utf8_lossy(rest).into_owned());
}

fn column(p: &[u8]) -> Option<(Column, Def)> {
    let mut r = Reader(p);
    let mut string = || {
        let n = usize::try_from(r.lenenc()?).ok()?;
        r.take(n)
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    string()?; // catalog
    let schema = text(string()?);
    string()?; // table
    let org_table = text(string()?);
    let name = text(string()?);
    let org_name = text(string()?);
    r.lenenc()?;
    let charset = r.u16()?;
    r.u32()?;
    let ty = r.u8()?;
    let flags = r.u16()?;
    let column = Column {
        name,
        type_name: type_name(ty, charset).to_owned(),
        origin: Some(crate::protocol::exec::ColumnOrigin::My {
            schema,
            table: org_table,
            column: org_name,
            code: ty,
            charset,
        }),
    };
    Some((column, Def { ty, charset, flags }))
}

fn text_row(p: &[u8], defs: &[Def]) -> Option<Vec<Value>> {
    let mut r = Reader(p);
    let mut out = Vec::with_capacity(defs.len());
    for def in defs {
        if r.0.first() == Some(&0xFB) {
            r.u8();
            out.push(Value::Null);
            continue;
        }
        let n = usize::try_from(r.lenenc()?).ok()?;
        out.push(typed(def, r.take(n)?));
    }
    Some(out)
}

fn binary_row(p: &[u8], defs: &[Def]) -> Option<Vec<Value>> {
    let mut r = Reader(p);
    r.u8()?; // 0x00
    let nulls = r.take((defs.len() + 7 + 2) / 8)?;
    let mut out = Vec::with_capacity(defs.len());
    for (i, def) in defs.iter().enumerate() {
        let bit = i + 2;
        if nulls[bit / 8] & (1 << (bit % 8)) != 0 {
            out.push(Value::Null);
            continue;
        }
        out.push(match cell(&mut r, def.ty, def.flags & 0x20 != 0)? {
            Cell::Text(t) => typed(def, t.as_bytes()),
            Cell::Bytes(b) => typed(def, b),
        });
    }
    Some(out)
}

/// A value of column `def`, typed for JSON.
fn typed(def: &Def, bytes: &[u8]) -> Value {
    match def.ty {
        0x00 | 0x01..=0x05 | 0x08 | 0x09 | 0x0d | 0xf6 => {
            exec::number_or_text(&String::from_utf8_lossy(bytes))
        }
        0x10 | 0xff => exec::base64(bytes),
        0x0f | 0xf9..=0xfe if def.charset == BINARY => exec::base64(bytes),
        _ => Value::from(String::from_utf8_lossy(bytes).into_owned()),
    }
}

/// The `binary` character set: bytes, not text.
const BINARY: u16 = 63;

fn type_name(ty: u8, charset: u16) -> &'static str {
    let binary = charset == BINARY;
    match ty {
        0x00 | 0xf6 => "decimal",
        0x01 => "tinyint",
        0x02 => "smallint",
        0x03 => "int",
        0x04 => "float",
        0x05 => "double",
        0x06 => "null",
        0x07 => "timestamp",
        0x08 => "bigint",
        0x09 => "mediumint",
        0x0a => "date",
        0x0b => "time",
        0x0c => "datetime",
        0x0d => "year",
        0x10 => "bit",
        0xf5 => "json",
        0xf7 => "enum",
        0xf8 => "set",
        0xf9..=0xfc if binary => "blob",
        0xf9..=0xfc => "text",
        0x0f | 0xfd if binary => "varbinary",
        0x0f | 0xfd => "varchar",
        0xfe if binary => "binary",
        0xfe => "char",
        0xff => "geometry",
        _ => "unknown",
    }
}

/// Prepare, execute with the values bound, close.
async fn prepared<I: Future<Output = ()>>(
    s: &mut Stream,
    watch: &mut Watch<I>,
    result: &mut StatementResult,
    params: &[Bind],
    max_rows: usize,
) -> Result<Status, ExecError> {
    send(s, COM_STMT_PREPARE, result.statement.as_bytes()).await?;
    let p = watch.read(read(s)).await?;
    if p.first() == Some(&0xFF) {
        error(result, &p);
        return Ok(Status::default());
    }
    let mut r = Reader(&p[1..]);
    let (id, columns, wanted) = (
        r.u32().ok_or_else(|| bad("prepare answer"))?,
        r.u16().unwrap_or(0),
        r.u16().unwrap_or(0),
    );
    for count in [wanted, columns] {
        if count > 0 {
            for _ in 0..=count {
                watch.read(read(s)).await?; // definitions, then EOF
            }
        }
    }
    let status = if usize::from(wanted) == params.len() {
        send(s, COM_STMT_EXECUTE, &execute(id, params)).await?;
        read_answer(s, watch, result, max_rows, Rows::Binary).await?
    } else {
        let message = format!(
            "the statement has {wanted} placeholders and {} values were given",
            params.len()
        );
        result.failed("HY000".into(), message);
        Status::default()
    };
    send(s, COM_STMT_CLOSE, &id.to_le_bytes()).await?;
    Ok(status)
}

/// `COM_STMT_EXECUTE`'s body: no cursor, one iteration, every value's type bound.
fn execute(id: u32, params: &[Bind]) -> Vec<u8> {
    let mut b = id.to_le_bytes().to_vec();
    b.push(0);
    b.extend_from_slice(&1u32.to_le_bytes());
    let mut nulls = vec![0u8; params.len().div_ceil(8)];
    let mut types = Vec::with_capacity(params.len() * 2);
    let mut values = Vec::new();
    for (i, p) in params.iter().enumerate() {
        let ty = match p {
            Bind::Null => {
                nulls[i / 8] |= 1 << (i % 8);
                0x06
            }
            Bind::Int(v) => {
                values.extend_from_slice(&v.to_le_bytes());
                0x08
            }
            Bind::Float(v) => {
                values.extend_from_slice(&v.to_le_bytes());
                0x05
            }
            Bind::Bool(v) => {
                values.push(u8::from(*v));
                0x01
            }
            Bind::Decimal(v) => {
                packet::lenenc_str(&mut values, v.as_bytes());
                0xf6
            }
            Bind::Text(v) => {
                packet::lenenc_str(&mut values, v.as_bytes());
                0xfd
            }
        };
        types.extend_from_slice(&[ty, 0]);
    }
    b.extend_from_slice(&nulls);
    b.push(1);
    b.extend_from_slice(&types);
    b.extend_from_slice(&values);
    b
}

/// `SHOW WARNINGS` after a statement that had some: its rows as notices.
async fn warnings(s: &mut Stream, result: &mut StatementResult) -> Result<(), ExecError> {
    let mut shown = StatementResult::new("SHOW WARNINGS");
    let mut watch = Watch::new(std::future::pending());
    send(s, COM_QUERY, b"SHOW WARNINGS").await?;
    read_answer(s, &mut watch, &mut shown, 100, Rows::Text).await?;
    for row in shown.rows {
        let text = |i: usize| match row.get(i) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        };
        result
            .notices
            .push(format!("{} {}: {}", text(0), text(1), text(2)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execute_binds_every_type_with_its_null_bit() {
        let params = [
            Bind::Int(-2),
            Bind::Null,
            Bind::Text("1; drop table t".into()),
            Bind::Bool(true),
        ];
        let body = execute(7, &params);
        assert_eq!(&body[..9], &[7, 0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(body[9], 0b10, "the second value is NULL");
        assert_eq!(body[10], 1, "types are bound");
        assert_eq!(&body[11..19], &[0x08, 0, 0x06, 0, 0xfd, 0, 0x01, 0]);
        let mut values = (-2i64).to_le_bytes().to_vec();
        values.push(15);
        values.extend_from_slice(b"1; drop table t");
        values.push(1);
        assert_eq!(&body[19..], &values[..]);
    }
}
