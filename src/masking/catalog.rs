//! PostgreSQL reports a result column's origin as a table OID and an attribute number;
//! masking rules name columns. The catalog of a resource — the columns the session's rule
//! patterns name, the views that read any of them (at any depth), and the highest
//! relation OID — is read with one query on the upstream before the session relays,
//! cached per resource and rule set, and read again when it is older than a minute, when
//! a session ran DDL, or when a result came from a table newer than it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use super::{Masker, Origin};
use crate::guardrail::MaskCheck;
use crate::model::ColumnPattern;
use crate::protocol::exec::StatementResult;
use crate::protocol::mysql::upstream::Upstream as MysqlUpstream;
use crate::protocol::postgres::backend::Upstream as PostgresUpstream;

/// How long a catalog is trusted without a reason to read it again.
const FRESH: Duration = Duration::from_secs(60);

/// What masking needs to know of one PostgreSQL database.
#[derive(Debug, Default)]
pub struct PgCatalog {
    columns: HashMap<(u32, i16), Origin>,
    /// Views (and materialized views) reading a masked column: `schema.name`.
    views: HashMap<u32, String>,
    max_oid: u32,
}

impl PgCatalog {
    pub fn column(&self, table: u32, attnum: i16) -> Option<&Origin> {
        self.columns.get(&(table, attnum))
    }

    pub fn view(&self, oid: u32) -> Option<&str> {
        self.views.get(&oid).map(String::as_str)
    }

    /// Views reading a masked column, as (schema, name).
    pub fn views(&self) -> impl Iterator<Item = (&str, &str)> {
        self.views.values().filter_map(|v| v.split_once('.'))
    }

    /// Whether `oid` names a relation made after the catalog was read.
    pub fn is_newer(&self, oid: u32) -> bool {
        oid > self.max_oid
    }

    /// The catalog from the query's rows: `kind` (`c` column, `v` view, `m` max OID),
    /// oid, attnum, schema, table, column — all as text.
    pub fn from_rows(rows: &[Vec<Option<String>>]) -> PgCatalog {
        let mut c = PgCatalog::default();
        for row in rows {
            let cell = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
            let oid: u32 = cell(1).parse().unwrap_or(0);
            match cell(0).as_str() {
                "c" => {
                    let attnum = cell(2).parse().unwrap_or(0);
                    c.columns
                        .insert((oid, attnum), Origin::new(&cell(3), &cell(4), &cell(5)));
                }
                "v" => {
                    c.views.insert(oid, format!("{}.{}", cell(3), cell(4)));
                }
                _ => c.max_oid = oid,
            }
        }
        c
    }
}

/// A pattern part as a `LIKE` pattern (`*` any run; `%`, `_` and `\` literal), quoted.
fn like(part: &str) -> String {
    let mut out = String::from("'");
    for ch in part.chars() {
        match ch {
            '*' => out.push('%'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(ch);
            }
            '\'' => out.push_str("''"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The one query that reads a catalog for these patterns.
pub fn query(patterns: impl Iterator<Item = (std::sync::Arc<str>, ColumnPattern)>) -> String {
    let conditions: Vec<String> = patterns
        .map(|(_, p)| {
            let schema = p
                .schema
                .as_deref()
                .map(|s| format!(" AND lower(n.nspname) LIKE {}", like(s)))
                .unwrap_or_default();
            format!(
                "(lower(c.relname) LIKE {} AND lower(a.attname) LIKE {}{schema})",
                like(&p.table),
                like(&p.column)
            )
        })
        .collect();
    let any = if conditions.is_empty() {
        "false".to_owned()
    } else {
        conditions.join(" OR ")
    };
    format!(
        "WITH RECURSIVE masked AS (\
           SELECT c.oid, a.attnum, n.nspname, c.relname, a.attname \
           FROM pg_catalog.pg_attribute a \
           JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
           WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','p','f','v','m') AND ({any})), \
         tainted(oid) AS (\
           SELECT r.ev_class FROM pg_catalog.pg_depend d \
           JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid \
           JOIN masked m ON d.refobjid = m.oid AND d.refobjsubid = m.attnum \
           WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND r.ev_class <> d.refobjid \
           UNION \
           SELECT r.ev_class FROM pg_catalog.pg_depend d \
           JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid \
           JOIN tainted t ON d.refobjid = t.oid \
           WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND r.ev_class <> d.refobjid) \
         SELECT 'c', oid::text, attnum::text, nspname::text, relname::text, attname::text FROM masked \
         UNION ALL SELECT 'v', t.oid::text, NULL, n.nspname::text, c.relname::text, NULL \
           FROM tainted t JOIN pg_catalog.pg_class c ON c.oid = t.oid \
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         UNION ALL SELECT 'm', max(oid::int8)::text, NULL, NULL, NULL, NULL FROM pg_catalog.pg_class"
    )
}

/// MySQL: the views whose definitions name a masked column (`schema`, `name`), and those
/// whose definitions the upstream user cannot read (they may).
pub fn mysql_views(patterns: impl Iterator<Item = (std::sync::Arc<str>, ColumnPattern)>) -> String {
    let conditions: Vec<String> = patterns
        .map(|(_, p)| {
            let column = like(&format!("*`{}`*", p.column));
            format!("lower(VIEW_DEFINITION) LIKE {column}")
        })
        .collect();
    let any = if conditions.is_empty() {
        "false".to_owned()
    } else {
        conditions.join(" OR ")
    };
    format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.VIEWS \
         WHERE VIEW_DEFINITION = '' OR {any}"
    )
}

struct Entry {
    catalog: Arc<PgCatalog>,
    read: Instant,
}

/// The catalogs read so far, per resource and query (the query is what the rule set asks).
#[derive(Default)]
pub struct Catalogs {
    entries: DashMap<(String, String), Entry>,
}

impl Catalogs {
    /// The cached catalog for `resource` under `masker`'s rules, if still fresh.
    pub fn fresh(&self, resource: &str, masker: &Masker) -> Option<Arc<PgCatalog>> {
        let key = (resource.to_owned(), query(masker.patterns()));
        let e = self.entries.get(&key)?;
        (e.read.elapsed() < FRESH).then(|| Arc::clone(&e.catalog))
    }

    pub fn store(&self, resource: &str, masker: &Masker, catalog: Arc<PgCatalog>) {
        let key = (resource.to_owned(), query(masker.patterns()));
        let read = Instant::now();
        self.entries.insert(key, Entry { catalog, read });
    }

    /// Forgets every catalog of `resource` (a session there ran DDL, or met a table newer
    /// than its catalog): the next session reads it again.
    pub fn invalidate(&self, resource: &str) {
        self.entries.retain(|(r, _), _| r != resource);
    }
}

/// The catalog of `resource` for `masker`'s rules: cached, or read now on `up`.
pub async fn pg_catalog(
    catalogs: &Catalogs,
    resource: &str,
    up: &mut PostgresUpstream,
    masker: &Masker,
) -> Result<Arc<PgCatalog>, String> {
    if let Some(c) = catalogs.fresh(resource, masker) {
        return Ok(c);
    }
    let sql = query(masker.patterns());
    let ran =
        crate::protocol::postgres::exec::run(up, &sql, &[], usize::MAX - 1, std::future::pending())
            .await
            .map(|(result, _)| result);
    let rows = rows(ran.map_err(|e| e.to_string()))?;
    let c = Arc::new(PgCatalog::from_rows(&rows));
    catalogs.store(resource, masker, Arc::clone(&c));
    Ok(c)
}

/// MySQL's views over masked columns, read on `up` (`mysql_views`).
pub async fn my_views(
    up: &mut MysqlUpstream,
    masker: &Masker,
) -> Result<Vec<(String, String)>, String> {
    let sql = mysql_views(masker.patterns());
    let ran =
        crate::protocol::mysql::exec::run(up, &sql, &[], usize::MAX - 1, std::future::pending())
            .await
            .map(|(result, _)| result);
    let rows = rows(ran.map_err(|e| e.to_string()))?;
    Ok(rows
        .into_iter()
        .filter_map(|r| match r.as_slice() {
            [Some(s), Some(n)] => Some((s.to_lowercase(), n.to_lowercase())),
            _ => None,
        })
        .collect())
}

/// A catalog query's rows as text, or why it failed.
fn rows(ran: Result<StatementResult, String>) -> Result<Vec<Vec<Option<String>>>, String> {
    let failed = |e: String| format!("masking could not read the database's catalog: {e}");
    let result = ran.map_err(failed)?;
    if let Some(e) = result.error {
        return Err(failed(format!("{} ({})", e.message, e.code)));
    }
    Ok(result
        .rows
        .iter()
        .map(|row| row.iter().map(|v| v.as_str().map(str::to_owned)).collect())
        .collect())
}

/// Masking's statement check for a session under `masker`, with these views over masked
/// columns.
pub fn check<'a>(masker: &Masker, views: impl Iterator<Item = (&'a str, &'a str)>) -> MaskCheck {
    MaskCheck {
        rule: masker.first_rule(),
        patterns: masker.patterns().collect(),
        views: views.map(|(s, n)| (s.to_owned(), n.to_owned())).collect(),
    }
}
