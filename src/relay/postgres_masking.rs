//! A PostgreSQL session under masking, server → client. A result's columns are known from
//! the `RowDescription` before its rows (a simple `Query`), or from the Describe of the
//! portal or of the statement it runs (the extended protocol: drivers describe before
//! they execute, and a `Bind`'s result formats say text or binary per column). Each
//! `DataRow` of a result with a masked column is rewritten; other results stream as they
//! are. A result whose columns the gateway cannot know (a statement executed without ever
//! being described) has every value sent as NULL: nothing unmasked gets out.

use std::sync::Arc;

use super::{Expect, Pending, Running, Shared};
use crate::masking::Masker;
use crate::masking::catalog::{Catalogs, PgCatalog};
use crate::masking::pg::{self, Columns};

/// The result being read.
#[derive(Debug)]
enum Current {
    /// Not yet known: its first row looks it up.
    Unresolved,
    /// Nothing in it is masked.
    Clear,
    Masked(Columns),
    /// Its columns cannot be known: every value goes as NULL.
    Unknown,
}

pub struct PgMasking {
    masker: Masker,
    catalog: Arc<PgCatalog>,
    catalogs: Arc<Catalogs>,
    resource: Arc<str>,
    current: Current,
}

impl PgMasking {
    pub fn new(
        masker: Masker,
        catalog: Arc<PgCatalog>,
        catalogs: Arc<Catalogs>,
        resource: Arc<str>,
    ) -> PgMasking {
        PgMasking {
            masker,
            catalog,
            catalogs,
            resource,
            current: Current::Unresolved,
        }
    }

    /// One server frame, before the observer completes anything with it: the bytes the
    /// client gets instead, for a rewritten row.
    pub fn frame(&mut self, tag: u8, body: &[u8], pending: &Pending) -> Option<Vec<u8>> {
        match tag {
            b'D' => return self.row(body, pending),
            b'T' => self.described(body, pending),
            b'C' => {
                if is_ddl(body) {
                    self.catalogs.invalidate(&self.resource);
                }
                self.current = Current::Unresolved;
            }
            b's' | b'E' | b'Z' | b'I' | b'n' => self.current = Current::Unresolved,
            _ => {}
        }
        None
    }

    /// A RowDescription: a simple Query's result starts, or a Describe is answered.
    fn described(&mut self, body: &[u8], pending: &Pending) {
        let Ok(mut guard) = pending.lock() else {
            return;
        };
        let s = &mut *guard;
        let Some(fields) = pg::fields(body) else {
            self.current = Current::Unknown;
            return;
        };
        match s.queue.front_mut() {
            Some(Expect::Query(run)) => self.current = self.resolve(&fields, None, run),
            Some(Expect::Describe { statement, name }) => {
                let (statement, name) = (*statement, name.clone());
                describe(s, statement, &name, fields.into());
            }
            _ => {}
        }
    }

    /// A DataRow: rewritten when its result has masked columns.
    fn row(&mut self, body: &[u8], pending: &Pending) -> Option<Vec<u8>> {
        if matches!(self.current, Current::Unresolved) {
            self.current = self.executing(pending);
        }
        match &self.current {
            Current::Clear | Current::Unresolved => None,
            Current::Masked(columns) => {
                Some(pg::data_row(body, columns).unwrap_or_else(|| pg::null_row(body)))
            }
            Current::Unknown => Some(pg::null_row(body)),
        }
    }

    /// The columns of the Execute the server is answering, from its portal.
    fn executing(&self, pending: &Pending) -> Current {
        let Ok(mut guard) = pending.lock() else {
            return Current::Unknown;
        };
        let s = &mut *guard;
        let Some(Expect::Execute { portal, run }) = s.queue.front_mut() else {
            return Current::Unknown;
        };
        let Some(p) = s.portals.get(&**portal) else {
            return Current::Unknown;
        };
        match &p.fields {
            Some(fields) => self.resolve(fields, Some(p.formats.as_deref().unwrap_or(&[])), run),
            None => {
                run.masked.push(Arc::from("*"));
                Current::Unknown
            }
        }
    }

    /// The masked columns of a result, noted on the statement that reads them.
    fn resolve(&self, fields: &[pg::Field], formats: Option<&[i16]>, run: &mut Running) -> Current {
        if fields
            .iter()
            .any(|f| f.table_oid != 0 && self.catalog.is_newer(f.table_oid))
        {
            self.catalogs.invalidate(&self.resource);
        }
        match pg::columns(&self.masker, &self.catalog, fields, formats) {
            None => Current::Clear,
            Some(columns) => {
                for c in columns.iter().flatten() {
                    if !run.masked.contains(&c.origin) {
                        run.masked.push(Arc::clone(&c.origin));
                    }
                }
                Current::Masked(columns)
            }
        }
    }
}

/// A Describe's answer: the statement's columns, or the portal's (and so its statement's).
fn describe(s: &mut Shared, statement: bool, name: &str, fields: Arc<[pg::Field]>) {
    if statement {
        if let Some(p) = s.statements.get_mut(name) {
            p.fields = Some(fields);
        }
        return;
    }
    let Some(portal) = s.portals.get_mut(name) else {
        return;
    };
    portal.fields = Some(Arc::clone(&fields));
    let of = portal.statement.clone();
    if let Some(p) = s.statements.get_mut(&of)
        && p.fields.is_none()
    {
        p.fields = Some(fields);
    }
}

/// A CommandComplete of a statement that may change what names and OIDs mean.
fn is_ddl(body: &[u8]) -> bool {
    ["CREATE", "ALTER", "DROP", "COMMENT"]
        .iter()
        .any(|t| body.starts_with(t.as_bytes()))
}
