//! What a statement text does, read by sqlparser's parser (never by pattern matching):
//! per statement its classes, the tables it names, and the shapes rules look for. Nested
//! statements count as part of theirs: a data-modifying CTE makes a `SELECT` a write,
//! `PREPARE … AS` and `EXPLAIN` are what they contain, and the literal of `EXECUTE
//! IMMEDIATE` is read like the statement itself.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, FromTable, ObjectName, ObjectType, Query, Select, SelectItem, Statement, TableFactor,
    Value, Visit, Visitor,
};
use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::model::{Protocol, StatementClass};

/// How deep nested statements (and dynamic SQL literals) are followed.
const MAX_DEPTH: usize = 4;
/// The parser's own recursion limit (deeper texts are not parsed: `Unparsed`).
const RECURSION_LIMIT: usize = 40;

/// A table as a statement names it: schema (or database) when qualified, and name, both
/// lowercased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub schema: Option<String>,
    pub name: String,
}

/// What one statement (with everything nested in it) does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Bit `1 << class as u16` for each class it belongs to.
    pub classes: u16,
    /// Tables read or written (CTE names excluded).
    pub tables: Vec<Table>,
    /// Tables a `SELECT *` / `t.*` reads.
    pub star_tables: Vec<Table>,
    pub update_without_where: bool,
    pub delete_without_where: bool,
    /// It changes what unqualified names mean (`SET search_path`, `USE`, `set_config`).
    pub moves_schema: bool,
    /// Dynamic SQL whose text is not a literal: what it runs cannot be known.
    pub dynamic: bool,
    /// Read from its tokens only (MySQL forms the parser lacks): the tables it names are
    /// not known, so any table pattern matches it.
    pub opaque: bool,
}

impl Facts {
    pub fn has(&self, class: StatementClass) -> bool {
        self.classes & bit(class) != 0
    }
}

fn bit(class: StatementClass) -> u16 {
    1 << (class as u16)
}

/// The statements of `text`, or `None` when it does not parse for the protocol.
pub fn analyze(protocol: Protocol, text: &str) -> Option<Vec<Facts>> {
    // The parser is third-party code reading untrusted bytes: a panic in it is a text
    // that cannot be read, never a dead session.
    std::panic::catch_unwind(|| statements(protocol, text, 0)).ok()?
}

fn statements(protocol: Protocol, text: &str, depth: usize) -> Option<Vec<Facts>> {
    let parsed = match protocol {
        Protocol::Postgres => parse(&PostgreSqlDialect {}, text)?,
        Protocol::Mysql => {
            // The server executes `/*! … */` and MariaDB's `/*M! … */` as code.
            let text = text.replace("/*M!", "/*!");
            let Some(mut out) = parse(&MySqlDialect {}, &text) else {
                return mysql_forms(&text, depth);
            };
            // A client may set NO_BACKSLASH_ESCAPES, and `'a\'` then ends a string the
            // default reading continues: a text must read the same both ways.
            if text.contains('\\') {
                let other = Parser::new(&MySqlDialect {})
                    .with_recursion_limit(RECURSION_LIMIT)
                    .with_tokens(no_backslash_tokens(&text)?)
                    .parse_statements()
                    .ok()?;
                if other != out {
                    return None;
                }
            }
            out.shrink_to_fit();
            out
        }
    };
    parsed
        .iter()
        .map(|s| {
            let mut c = Collector::new(protocol, depth);
            let _ = s.visit(&mut c);
            c.done()
        })
        .collect()
}

/// MySQL statements sqlparser does not parse, read from their tokens: `LOAD DATA|XML`
/// and `… INTO OUTFILE|DUMPFILE` (class `copy`), `PREPARE s FROM '…'` (its literal read
/// as a statement; from a variable: dynamic). Anything else: `None`.
fn mysql_forms(text: &str, depth: usize) -> Option<Vec<Facts>> {
    let tokens: Vec<Token> = Tokenizer::new(&MySqlDialect {}, text)
        .tokenize()
        .ok()?
        .into_iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let word = |t: Option<&Token>, w: &str| matches!(t, Some(Token::Word(x)) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w));
    tokens
        .split(|t| *t == Token::SemiColon)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut f = Facts::default();
            if (word(s.first(), "load") && (word(s.get(1), "data") || word(s.get(1), "xml")))
                || s.iter()
                    .any(|t| word(Some(t), "outfile") || word(Some(t), "dumpfile"))
            {
                f.classes = bit(StatementClass::Copy);
                f.opaque = true;
                return Some(f);
            }
            if !(word(s.first(), "prepare") && word(s.get(2), "from")) || depth >= MAX_DEPTH {
                return None;
            }
            let mut c = Collector::new(Protocol::Mysql, depth);
            c.class(StatementClass::Call);
            match s.get(3) {
                Some(Token::SingleQuotedString(t) | Token::DoubleQuotedString(t)) => {
                    c.dynamic(Some(t))
                }
                _ => c.dynamic(None),
            }
            c.done()
        })
        .collect()
}

pub(crate) fn parse(dialect: &dyn Dialect, text: &str) -> Option<Vec<Statement>> {
    Parser::new(dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .try_with_sql(text)
        .ok()?
        .parse_statements()
        .ok()
}

fn no_backslash_tokens(text: &str) -> Option<Vec<Token>> {
    Tokenizer::new(&crate::sql::MySqlNoBackslash, text)
        .tokenize()
        .ok()
}

/// Walks one statement's tree.
struct Collector {
    protocol: Protocol,
    depth: usize,
    facts: Facts,
    /// CTE names in scope (not tables).
    ctes: Vec<String>,
    /// A nested text that does not parse.
    unreadable: bool,
}

impl Collector {
    fn new(protocol: Protocol, depth: usize) -> Collector {
        Collector {
            protocol,
            depth,
            facts: Facts::default(),
            ctes: Vec::new(),
            unreadable: false,
        }
    }

    fn done(mut self) -> Option<Facts> {
        if self.unreadable {
            return None;
        }
        let ctes = std::mem::take(&mut self.ctes);
        let is_cte = |t: &Table| t.schema.is_none() && ctes.contains(&t.name);
        self.facts.tables.retain(|t| !is_cte(t));
        self.facts.star_tables.retain(|t| !is_cte(t));
        if self.facts.classes == 0 {
            self.facts.classes = bit(StatementClass::Other);
        }
        Some(self.facts)
    }

    fn class(&mut self, class: StatementClass) {
        self.facts.classes |= bit(class);
    }

    /// The literal of `EXECUTE IMMEDIATE '…'`, read as statements of their own.
    fn dynamic(&mut self, text: Option<&str>) {
        let nested = match text {
            Some(t) if self.depth < MAX_DEPTH => statements(self.protocol, t, self.depth + 1),
            Some(_) => None,
            None => {
                self.facts.dynamic = true;
                return;
            }
        };
        match nested {
            Some(list) => list.into_iter().for_each(|f| self.merge(f)),
            None => self.unreadable = true,
        }
    }

    fn merge(&mut self, f: Facts) {
        let me = &mut self.facts;
        me.classes |= f.classes;
        me.tables.extend(f.tables);
        me.star_tables.extend(f.star_tables);
        me.update_without_where |= f.update_without_where;
        me.delete_without_where |= f.delete_without_where;
        me.moves_schema |= f.moves_schema;
        me.dynamic |= f.dynamic;
        me.opaque |= f.opaque;
    }
}

impl Visitor for Collector {
    type Break = ();

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<()> {
        let class = classify(s);
        self.class(class);
        match s {
            Statement::Update(u) => {
                self.facts.update_without_where |= without_where(u.selection.as_ref());
            }
            Statement::Delete(d) => {
                self.facts.delete_without_where |= without_where(d.selection.as_ref());
                let from = match &d.from {
                    FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
                };
                for t in from {
                    if let TableFactor::Table { name, .. } = &t.relation {
                        self.facts.tables.push(table(name));
                    }
                }
            }
            Statement::Set(_) => self.facts.moves_schema |= sets_schema(s),
            Statement::Use(_) => self.facts.moves_schema = true,
            // MySQL's `EXECUTE IMMEDIATE '…'` parses as EXECUTE of a statement named
            // `immediate`.
            Statement::Execute {
                immediate,
                parameters,
                name,
                ..
            } if *immediate
                || name
                    .as_ref()
                    .is_some_and(|n| n.to_string().eq_ignore_ascii_case("immediate")) =>
            {
                let literal = match parameters.as_slice() {
                    [Expr::Value(v)] => match &v.value {
                        Value::SingleQuotedString(t) | Value::DoubleQuotedString(t) => {
                            Some(t.clone())
                        }
                        _ => None,
                    },
                    _ => None,
                };
                self.dynamic(literal.as_deref());
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if let Some(with) = &q.with {
            self.ctes.extend(
                with.cte_tables
                    .iter()
                    .map(|c| c.alias.name.value.to_lowercase()),
            );
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<()> {
        if s.into.is_some() {
            self.class(StatementClass::Ddl); // SELECT … INTO new_table
        }
        let star = s.projection.iter().any(|p| {
            matches!(
                p,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        });
        if star {
            for t in &s.from {
                let factors =
                    std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation));
                for f in factors {
                    if let TableFactor::Table { name, .. } = f {
                        self.facts.star_tables.push(table(name));
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, name: &ObjectName) -> ControlFlow<()> {
        self.facts.tables.push(table(name));
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = e
            && f.name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| i.value.eq_ignore_ascii_case("set_config"))
        {
            self.facts.moves_schema = true;
        }
        ControlFlow::Continue(())
    }
}

/// `a.b.c` → schema `b`, name `c`.
pub(crate) fn table(name: &ObjectName) -> Table {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| match p.as_ident() {
            Some(i) => i.value.to_lowercase(),
            None => p.to_string().to_lowercase(),
        })
        .collect();
    match parts.as_slice() {
        [.., schema, name] => Table {
            schema: Some(schema.clone()),
            name: name.clone(),
        },
        [name] => Table {
            schema: None,
            name: name.clone(),
        },
        [] => Table {
            schema: None,
            name: String::new(),
        },
    }
}

/// No `WHERE`, or one that names no column (`WHERE true`, `WHERE 1 = 1`, `WHERE now() >
/// 0`): it cannot tell one row from another, so it counts as none.
fn without_where(selection: Option<&Expr>) -> bool {
    let Some(e) = selection else {
        return true;
    };
    let names_a_column = e.visit(&mut ColumnFinder).is_break();
    !names_a_column
}

struct ColumnFinder;

impl Visitor for ColumnFinder {
    type Break = ();
    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        match e {
            Expr::Identifier(_)
            | Expr::CompoundIdentifier(_)
            | Expr::Subquery(_)
            | Expr::Exists { .. } => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    }
    /// A subquery (`IN (SELECT …)`) may tell rows apart.
    fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
        ControlFlow::Break(())
    }
}

/// `SET search_path …` (PostgreSQL) or any `SET` naming `search_path`.
fn sets_schema(s: &Statement) -> bool {
    s.to_string().to_ascii_lowercase().contains("search_path")
}

/// The class a statement itself belongs to (what it contains is visited separately).
fn classify(s: &Statement) -> StatementClass {
    use StatementClass as C;
    match s {
        Statement::Query(_)
        | Statement::ExplainTable { .. }
        | Statement::Explain { .. }
        | Statement::Fetch { .. }
        | Statement::Declare { .. }
        | Statement::Close { .. } => C::Read,
        Statement::Insert(_)
        | Statement::Update(_)
        | Statement::Delete(_)
        | Statement::Merge(_) => C::Write,
        Statement::Copy { .. }
        | Statement::CopyIntoSnowflake { .. }
        | Statement::LoadData { .. }
        | Statement::Load { .. }
        | Statement::Unload { .. }
        | Statement::ExportData(_)
        | Statement::Directory { .. } => C::Copy,
        Statement::Grant(_)
        | Statement::Deny(_)
        | Statement::Revoke(_)
        | Statement::CreateRole(_)
        | Statement::AlterRole { .. }
        | Statement::CreateUser(_)
        | Statement::AlterUser(_)
        | Statement::AlterDefaultPrivileges(_)
        | Statement::Drop {
            object_type: ObjectType::Role | ObjectType::User | ObjectType::Group,
            ..
        } => C::Dcl,
        Statement::Set(_)
        | Statement::Use(_)
        | Statement::Reset(_)
        | Statement::Discard { .. }
        | Statement::AlterSession { .. } => C::Session,
        Statement::StartTransaction { .. }
        | Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => C::TransactionControl,
        Statement::Call(_) | Statement::Execute { .. } => C::Call,
        _ => by_keyword(s),
    }
}

/// The rest by the statement's first keyword as sqlparser writes it: CREATE, ALTER,
/// DROP, TRUNCATE, RENAME, COMMENT, ATTACH, DETACH, REFRESH are `ddl` (roles and users
/// were taken above), SHOW is `read`, anything else `other`.
fn by_keyword(s: &Statement) -> StatementClass {
    const DDL: &[&str] = &[
        "CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "COMMENT", "ATTACH", "DETACH", "REFRESH",
    ];
    let text = s.to_string();
    let first = text.split_whitespace().next().unwrap_or_default();
    if DDL.iter().any(|k| first.eq_ignore_ascii_case(k)) {
        StatementClass::Ddl
    } else if first.eq_ignore_ascii_case("SHOW") {
        StatementClass::Read
    } else {
        StatementClass::Other
    }
}
