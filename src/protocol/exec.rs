//! Running one statement over a logged-in upstream connection and reading its whole
//! answer: what one-offs and runbook runs need of each protocol (`postgres::exec`,
//! `mysql::exec`). Parameters are always bound by the server (PostgreSQL's extended
//! protocol, MySQL's `COM_STMT_PREPARE` / `COM_STMT_EXECUTE`), never spliced into the text.
//! Values come back typed for JSON: numbers as numbers, NULL as null, binary as base64,
//! everything else as text.

use std::future::Future;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How long the server may take to stop a statement after it was asked to.
pub const GRACE: Duration = Duration::from_secs(10);

/// A parameter value, bound by the server.
#[derive(Clone, Debug, PartialEq)]
pub enum Bind {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    /// An exact decimal, as text (`12.50`).
    Decimal(String),
    Bool(bool),
}

impl Bind {
    /// The value as the monitoring log shows it.
    pub fn logged(&self) -> Option<String> {
        match self {
            Bind::Null => None,
            Bind::Text(s) | Bind::Decimal(s) => Some(s.clone()),
            Bind::Int(i) => Some(i.to_string()),
            Bind::Float(f) => Some(f.to_string()),
            Bind::Bool(b) => Some(b.to_string()),
        }
    }
}

/// A result column: its name and the server's type for it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: String,
    /// Where its values come from, as the server said (for masking; never shown).
    #[serde(skip)]
    pub origin: Option<ColumnOrigin>,
}

/// A result column's origin and type as the protocol reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnOrigin {
    /// PostgreSQL: table OID (0: none) and attribute number, type OID.
    Pg {
        table: u32,
        attnum: i16,
        type_oid: u32,
    },
    /// MySQL: schema, `org_table`, `org_name` (empty: none), type code and charset.
    My {
        schema: String,
        table: String,
        column: String,
        code: u8,
        charset: u16,
    },
}

/// The server's error for a statement.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatementError {
    /// SQLSTATE (PostgreSQL) or the MySQL error number.
    pub code: String,
    pub message: String,
}

/// What one statement did.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatementResult {
    pub statement: String,
    pub columns: Vec<Column>,
    #[schema(value_type = Vec<Vec<Object>>)]
    pub rows: Vec<Vec<Value>>,
    /// Rows inserted, updated, deleted (or returned), as the server counts them.
    pub rows_affected: Option<u64>,
    /// `max_rows` cut the result.
    pub truncated: bool,
    /// The server's notices (PostgreSQL) or warnings (MySQL).
    pub notices: Vec<String>,
    pub duration_us: u64,
    pub error: Option<StatementError>,
}

impl StatementResult {
    pub fn new(statement: &str) -> StatementResult {
        StatementResult {
            statement: statement.to_owned(),
            ..StatementResult::default()
        }
    }

    /// Keeps a row unless `max_rows` are kept already (then marks the result cut).
    pub fn push_row(&mut self, max_rows: usize, row: impl FnOnce() -> Vec<Value>) {
        if self.rows.len() < max_rows {
            self.rows.push(row());
        } else {
            self.truncated = true;
        }
    }

    pub fn failed(&mut self, code: String, message: String) {
        self.error = Some(StatementError { code, message });
    }
}

/// Why a statement's answer could not be read to its end: the connection is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("the connection to the database failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the database did not stop the statement within {}s of being asked to", GRACE.as_secs())]
    Unstoppable,
    #[error("the database sent something unexpected: {0}")]
    Protocol(String),
}

/// Reads an answer while watching `interrupt`: once it resolves (the caller has asked the
/// server to stop the statement), the server has `GRACE` to finish answering.
pub struct Watch<I> {
    interrupt: std::pin::Pin<Box<I>>,
    deadline: Option<Instant>,
}

impl<I: Future<Output = ()>> Watch<I> {
    pub fn new(interrupt: I) -> Watch<I> {
        Watch {
            interrupt: Box::pin(interrupt),
            deadline: None,
        }
    }

    /// Runs `read`; an interrupt on the way arms the grace period.
    pub async fn read<T, F>(&mut self, read: F) -> Result<T, ExecError>
    where
        F: Future<Output = std::io::Result<T>>,
    {
        let read = std::pin::pin!(read);
        let mut read = read;
        loop {
            if let Some(deadline) = self.deadline {
                return tokio::time::timeout_at(deadline.into(), &mut read)
                    .await
                    .map_err(|_| ExecError::Unstoppable)?
                    .map_err(ExecError::Io);
            }
            tokio::select! {
                got = &mut read => return got.map_err(ExecError::Io),
                () = &mut self.interrupt => self.deadline = Some(Instant::now() + GRACE),
            }
        }
    }
}

/// A number when the text is one JSON carries exactly, else the text.
pub fn number_or_text(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(u) = text.parse::<u64>() {
        return Value::from(u);
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() && exact(text, f) => Value::from(f),
        _ => Value::from(text),
    }
}

/// Whether `f` prints back as `text` (ignoring trailing fractional zeros): no digit lost.
fn exact(text: &str, f: f64) -> bool {
    let trim = |s: &str| -> String {
        if s.contains('.') && !s.contains(['e', 'E']) {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    trim(text) == trim(&f.to_string())
}

pub fn base64(bytes: &[u8]) -> Value {
    Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_exact_or_stay_text() {
        assert_eq!(number_or_text("42"), Value::from(42));
        assert_eq!(number_or_text("-7"), Value::from(-7));
        assert_eq!(
            number_or_text("18446744073709551615"),
            Value::from(u64::MAX)
        );
        assert_eq!(number_or_text("12.50"), Value::from(12.5));
        assert_eq!(number_or_text("0.1"), Value::from(0.1));
        assert_eq!(
            number_or_text("12345678901234567890.123456789"),
            Value::from("12345678901234567890.123456789")
        );
        assert_eq!(number_or_text("NaN"), Value::from("NaN"));
        assert_eq!(number_or_text("Infinity"), Value::from("Infinity"));
    }
}
