//! Masking at work: the rules that apply to one session, which result columns they mask
//! (by the table and column a value comes from, as the protocol reports it), and the
//! masked value for each method and column type. The protocols' row rewriting is in
//! `pg` and `my`; the catalog lookups that turn PostgreSQL table OIDs into names are in
//! `catalog`. A session whose resource role has no rule (or whose user is in every
//! rule's `except_groups`) has no `Masker` and pays nothing.

pub mod catalog;
pub mod my;
pub mod pg;
pub mod result;
pub mod value;

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::guardrail::glob;
use crate::model::{ColumnPattern, MaskMethod, MaskingRule};

/// How one masked column's values are rewritten.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask {
    /// The rule's name.
    pub rule: Arc<str>,
    pub method: MaskMethod,
    /// `partial`: characters kept at the start and the end.
    pub kept: (usize, usize),
    /// `hash`: the HMAC key of this key period.
    key: [u8; 32],
}

impl Mask {
    /// A mask that sends every value as NULL (values whose origin cannot be known).
    pub fn nulled(rule: Arc<str>) -> Mask {
        Mask {
            rule,
            method: MaskMethod::Null,
            kept: (0, 0),
            key: [0; 32],
        }
    }

    /// HMAC-SHA256 of `value` under the period's key.
    pub fn digest(&self, value: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(value);
        mac.finalize().into_bytes().into()
    }
}

/// A column a value comes from: schema (MySQL: database), table, column.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    pub schema: String,
    pub table: String,
    pub column: String,
}

impl Origin {
    pub fn new(schema: &str, table: &str, column: &str) -> Origin {
        Origin {
            schema: schema.to_lowercase(),
            table: table.to_lowercase(),
            column: column.to_lowercase(),
        }
    }

    /// `schema.table.column`, as the monitoring log names it.
    pub fn qualified(&self) -> String {
        format!("{}.{}.{}", self.schema, self.table, self.column)
    }
}

struct Compiled {
    mask: Arc<Mask>,
    patterns: Vec<ColumnPattern>,
    names: Vec<String>,
}

/// The masking rules one session works under, first match wins.
#[derive(Clone)]
pub struct Masker {
    rules: Arc<[Compiled]>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.rules.iter().map(|r| &*r.mask.rule).collect();
        f.debug_struct("Masker").field("rules", &names).finish()
    }
}

/// The HMAC key for `hash` in the key period holding `now` (a UTC calendar month): the
/// same value hashes the same within a month, on every instance with the same store key.
pub fn period_key(base: &[u8; 32], unix_secs: i64) -> [u8; 32] {
    let now = time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let label = format!("masking {:04}-{:02}", now.year(), u8::from(now.month()));
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(base)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    mac.update(label.as_bytes());
    mac.finalize().into_bytes().into()
}

impl Masker {
    /// The masker for a member of `groups` on `resource_role`, or `None` when no rule
    /// applies. `key`: the `hash` method's key for this period (`period_key`).
    pub fn new<'a>(
        all: impl IntoIterator<Item = &'a Arc<MaskingRule>>,
        resource_role: &str,
        groups: &[String],
        key: [u8; 32],
    ) -> Option<Masker> {
        let rules: Vec<Compiled> = all
            .into_iter()
            .filter(|r| r.applies(resource_role, groups))
            .map(|r| Compiled {
                mask: Arc::new(Mask {
                    rule: Arc::from(r.name.as_str()),
                    method: r.method,
                    kept: r.kept(),
                    key,
                }),
                patterns: r.patterns(),
                names: r.column_names.iter().map(|n| n.to_lowercase()).collect(),
            })
            .collect();
        (!rules.is_empty()).then(|| Masker {
            rules: rules.into(),
        })
    }

    /// The mask for values from `origin`, if a rule masks it.
    pub fn lookup(&self, origin: &Origin) -> Option<Arc<Mask>> {
        self.rules
            .iter()
            .find(|r| {
                r.patterns.iter().any(|p| matches(p, origin))
                    || r.names.iter().any(|n| glob(n, &origin.column))
            })
            .map(|r| Arc::clone(&r.mask))
    }

    /// The mask for a column whose origin is unknown but whose name is `name`: the weaker
    /// matcher (a rule's column name, from either list), for tables the gateway has not
    /// resolved yet.
    pub fn by_name(&self, name: &str) -> Option<Arc<Mask>> {
        let name = name.to_lowercase();
        self.rules
            .iter()
            .find(|r| {
                r.patterns.iter().any(|p| glob(&p.column, &name))
                    || r.names.iter().any(|n| glob(n, &name))
            })
            .map(|r| Arc::clone(&r.mask))
    }

    /// Every column pattern with its rule's name (a bare column name is any table's).
    pub fn patterns(&self) -> impl Iterator<Item = (Arc<str>, ColumnPattern)> + '_ {
        self.rules.iter().flat_map(|r| {
            let rule = &r.mask.rule;
            let any = r.names.iter().map(move |n| {
                let p = ColumnPattern {
                    schema: None,
                    table: "*".to_owned(),
                    column: n.clone(),
                };
                (Arc::clone(rule), p)
            });
            let named = r
                .patterns
                .iter()
                .map(move |p| (Arc::clone(rule), p.clone()));
            named.chain(any)
        })
    }

    /// The first rule's name (for messages naming why something was refused).
    pub fn first_rule(&self) -> Arc<str> {
        self.rules
            .first()
            .map_or_else(|| Arc::from(""), |r| Arc::clone(&r.mask.rule))
    }
}

fn matches(p: &ColumnPattern, o: &Origin) -> bool {
    glob(&p.column, &o.column)
        && glob(&p.table, &o.table)
        && p.schema.as_ref().is_none_or(|s| glob(s, &o.schema))
}

#[cfg(test)]
mod tests;
