//! One-offs and runbooks: their results arrive decoded (JSON values per column, with each
//! column's origin as the server reported it), and a masked column's values are replaced
//! by the same masked values a native session reads, in the JSON kind of the column's
//! type.

use std::sync::Arc;

use serde_json::Value;

use super::catalog::PgCatalog;
use super::value::{Kind, Masked, mask};
use super::{Mask, Masker, Origin};
use crate::protocol::exec::{ColumnOrigin, StatementResult};

/// A masked column: its mask, type family and origin.
type Masking = (Arc<Mask>, Kind, Arc<str>);

/// What masks a run's results.
pub struct ResultMasking {
    pub masker: Masker,
    /// PostgreSQL: the resource's catalog.
    pub catalog: Option<Arc<PgCatalog>>,
}

impl ResultMasking {
    /// Masks `result` in place; the columns masked (`schema.table.column`).
    pub fn apply(&self, result: &mut StatementResult) -> Vec<Arc<str>> {
        let masks: Vec<Option<Masking>> = result
            .columns
            .iter()
            .map(|c| self.resolve(c.origin.as_ref()?, &c.name))
            .collect();
        let mut origins: Vec<Arc<str>> = Vec::new();
        for (_, _, o) in masks.iter().flatten() {
            if !origins.contains(o) {
                origins.push(Arc::clone(o));
            }
        }
        if origins.is_empty() {
            return origins;
        }
        for row in &mut result.rows {
            for (v, m) in row.iter_mut().zip(&masks) {
                if let Some((mask, kind, _)) = m {
                    *v = masked(mask, *kind, v);
                }
            }
        }
        origins
    }

    fn resolve(&self, o: &ColumnOrigin, name: &str) -> Option<Masking> {
        match o {
            ColumnOrigin::Pg {
                table,
                attnum,
                type_oid,
            } => {
                let field = super::pg::Field {
                    name: name.to_owned(),
                    table_oid: *table,
                    attnum: *attnum,
                    type_oid: *type_oid,
                    format: 0,
                };
                let catalog = self.catalog.as_deref()?;
                let (mask, origin) = super::pg::resolve(&self.masker, catalog, &field)?;
                Some((mask, super::pg::kind(*type_oid), Arc::from(origin.as_str())))
            }
            ColumnOrigin::My {
                schema,
                table,
                column,
                code,
                charset,
            } => {
                if table.is_empty() {
                    return None;
                }
                let origin = Origin::new(schema, table, column);
                let mask = self.masker.lookup(&origin)?;
                let qualified = Arc::from(origin.qualified().as_str());
                Some((mask, super::my::kind(*code, *charset), qualified))
            }
        }
    }
}

/// The masked form of a decoded value.
fn masked(m: &Mask, kind: Kind, v: &Value) -> Value {
    let text = match v {
        Value::Null => return Value::Null,
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match mask(m, kind, text.as_bytes()) {
        Masked::Null => Value::Null,
        Masked::Text(s) => Value::from(s),
        Masked::Int(n) => Value::from(n),
        Masked::Uuid(u) => Value::from(super::value::uuid_text(&u)),
        Masked::Zero => match kind {
            Kind::Int(_) | Kind::Float(_) | Kind::Numeric => Value::from(0),
            Kind::Bool => Value::from(false),
            Kind::Date => Value::from("1970-01-01"),
            Kind::Timestamp => Value::from("1970-01-01 00:00:00"),
            Kind::TimestampTz => Value::from("1970-01-01 00:00:00+00"),
            Kind::Time => Value::from("00:00:00"),
            Kind::Uuid => Value::from("00000000-0000-0000-0000-000000000000"),
            _ => Value::from(""),
        },
    }
}
