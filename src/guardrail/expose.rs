//! Masking's statement check: it closes what result rewriting cannot see. A value keeps its
//! origin only when a result column is the column itself (through aliases, subqueries in
//! `FROM` and CTEs); once it goes through an expression, a set operation, or into another
//! table, the server reports no origin. So under masking a statement is refused when its
//! parse (the guardrails' parser) shows a masked column, or a whole row of a table with
//! one, read inside an expression of what it returns or writes; when it copies such a
//! table out (`COPY … TO`); when it reads a view over a masked column; when it creates a
//! function or procedure (their bodies are not read); and when it cannot be parsed.

use std::ops::ControlFlow;

use sqlparser::ast::{
    CopySource, Expr, FunctionArgExpr, Query, Select, SelectItem, SetExpr, Statement, TableFactor,
    Visit, Visitor,
};
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};

use super::analyze::{self, Table};
use super::glob;
use crate::model::{ColumnPattern, Protocol};

/// What a statement does with values, as far as masking must know.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Exposure {
    /// Every table (or view, or CTE) it names.
    pub tables: Vec<Table>,
    /// `(alias, table)` for each aliased table.
    pub aliases: Vec<(String, Table)>,
    /// Names read where their origin is lost (lowercased, last part of the name).
    pub names: Vec<String>,
    /// `COPY … TO` of a whole table.
    pub copies_out: bool,
    /// It makes a function or procedure.
    pub makes_code: bool,
}

/// The exposure of `text`, or `None` when it does not parse.
pub fn exposure(protocol: Protocol, text: &str) -> Option<Exposure> {
    std::panic::catch_unwind(|| {
        let statements = match protocol {
            Protocol::Postgres => analyze::parse(&PostgreSqlDialect {}, text)?,
            Protocol::Mysql => analyze::parse(&MySqlDialect {}, &text.replace("/*M!", "/*!"))?,
        };
        let mut v = Walk::default();
        let _ = statements.visit(&mut v);
        Some(v.out)
    })
    .ok()?
}

/// A masked column pattern and the rule it is of.
pub type RulePattern = (std::sync::Arc<str>, ColumnPattern);

/// Why a statement may not run under masking, if it may not: the rule concerned (`None`:
/// not one in particular) and the reason. `patterns`: every masked column pattern;
/// `views`: views over masked columns (schema, name); `default_schema`: where unqualified
/// names are (`None`: anywhere, the session having moved).
pub fn refusal(
    e: &Exposure,
    patterns: &[RulePattern],
    views: &[(String, String)],
    default_schema: Option<&str>,
) -> Option<(Option<std::sync::Arc<str>>, String)> {
    if e.makes_code {
        return Some((
            None,
            "functions and procedures cannot be created under masking".into(),
        ));
    }
    // An unqualified name is in the default schema, or in any once the session moved.
    let in_schema = |t: &Table, p: &str| match (t.schema.as_deref(), default_schema) {
        (Some(s), _) | (None, Some(s)) => glob(p, s),
        (None, None) => true,
    };
    let masks = |p: &ColumnPattern, t: &Table| {
        glob(&p.table, &t.name) && p.schema.as_ref().is_none_or(|s| in_schema(t, s))
    };
    let rule_of = |t: &Table| {
        patterns
            .iter()
            .find(|(_, p)| masks(p, t))
            .map(|(r, _)| r.clone())
    };
    let view = e.tables.iter().find(|t| {
        views
            .iter()
            .any(|(s, n)| *n == t.name && (t.schema.is_none() || t.schema.as_ref() == Some(s)))
    });
    if let Some(t) = view {
        return Some((None, format!("`{}` is a view over a masked column", t.name)));
    }
    let masked: Vec<&Table> = e.tables.iter().filter(|t| rule_of(t).is_some()).collect();
    let first = masked.first()?;
    if e.copies_out {
        let why = format!("COPY out of `{}`, which has masked columns", first.name);
        return Some((rule_of(first), why));
    }
    let row_of = |n: &str| {
        if n == "*" {
            // Every column of every table named: the masked ones among them.
            return rule_of(first);
        }
        let aliased = e.aliases.iter().find(|(a, _)| a == n).map(|(_, t)| t);
        let table = aliased.or_else(|| masked.iter().copied().find(|t| t.name == n))?;
        rule_of(table)
    };
    let column = |n: &str| {
        patterns
            .iter()
            .find(|(_, p)| {
                glob(&p.column, n) && (p.table == "*" || masked.iter().any(|t| masks(p, t)))
            })
            .map(|(r, _)| r.clone())
    };
    e.names.iter().find_map(|n| {
        let rule = column(n).or_else(|| row_of(n))?;
        Some((Some(rule), format!("`{n}` is masked and is read in an expression, a set operation or a copy, where masking cannot follow it")))
    })
}

#[derive(Default)]
struct Walk {
    out: Exposure,
}

impl Walk {
    /// Every name in `expr` (subqueries included) loses its origin.
    fn lose(&mut self, expr: &Expr) {
        let names = &mut self.out.names;
        let _ = sqlparser::ast::visit_expressions(expr, |e| {
            match e {
                Expr::Identifier(i) => names.push(i.value.to_lowercase()),
                Expr::CompoundIdentifier(parts) => {
                    if let Some(last) = parts.last() {
                        names.push(last.value.to_lowercase());
                    }
                    if let [.., row, _] = parts.as_slice() {
                        names.push(row.value.to_lowercase());
                    }
                }
                Expr::Function(f) => wildcard_args(f, names),
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
    }

    /// A projection's items: plain columns keep their origin unless `all` (a set
    /// operation, an INSERT's source, SELECT INTO).
    fn projection(&mut self, items: &[SelectItem], all: bool) {
        for item in items {
            match item {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. }
                    if all || !plain(e) =>
                {
                    self.lose(e);
                }
                SelectItem::ExprWithAliases { expr: e, .. } => self.lose(e),
                SelectItem::QualifiedWildcard(..) | SelectItem::Wildcard(_) if all => {
                    self.out.names.push("*".into());
                }
                _ => {}
            }
        }
    }

    /// A query body whose every projected value loses its origin (`all`) or only those
    /// computed.
    fn body(&mut self, body: &SetExpr, all: bool) {
        match body {
            SetExpr::Select(s) => self.select(s, all),
            SetExpr::Query(q) => self.body(&q.body, all),
            SetExpr::SetOperation { left, right, .. } => {
                self.body(left, true);
                self.body(right, true);
            }
            _ => {}
        }
    }

    fn select(&mut self, s: &Select, all: bool) {
        self.projection(&s.projection, all || s.into.is_some());
    }
}

/// `f(t.*)`: whole rows.
fn wildcard_args(f: &sqlparser::ast::Function, names: &mut Vec<String>) {
    let sqlparser::ast::FunctionArguments::List(list) = &f.args else {
        return;
    };
    for arg in &list.args {
        let (sqlparser::ast::FunctionArg::Unnamed(a)
        | sqlparser::ast::FunctionArg::Named { arg: a, .. }
        | sqlparser::ast::FunctionArg::ExprNamed { arg: a, .. }) = arg;
        if let FunctionArgExpr::QualifiedWildcard(name) = a
            && let Some(last) = name.0.last().and_then(|p| p.as_ident())
        {
            names.push(last.value.to_lowercase());
        }
    }
}

/// A column as it is (its origin kept): a name, parenthesized or not.
fn plain(e: &Expr) -> bool {
    match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => true,
        Expr::Nested(inner) => plain(inner),
        _ => false,
    }
}

impl Visitor for Walk {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        // The body's own selects; nested queries are visited on their own.
        if let SetExpr::SetOperation { .. } = &*q.body {
            self.body(&q.body, true);
        } else if let SetExpr::Select(s) = &*q.body {
            self.select(s, false);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, f: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name,
            alias: Some(alias),
            ..
        } = f
        {
            let t = analyze::table(name);
            self.out.aliases.push((alias.name.value.to_lowercase(), t));
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, name: &sqlparser::ast::ObjectName) -> ControlFlow<()> {
        self.out.tables.push(analyze::table(name));
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<()> {
        match s {
            Statement::Insert(i) => {
                if let Some(source) = &i.source {
                    self.body(&source.body, true);
                }
                if let Some(r) = &i.returning {
                    self.projection(r, false);
                }
            }
            Statement::Update(u) => {
                for a in &u.assignments {
                    self.lose(&a.value);
                }
                if let Some(r) = &u.returning {
                    self.projection(r, false);
                }
            }
            Statement::Delete(d) => {
                if let Some(r) = &d.returning {
                    self.projection(r, false);
                }
            }
            Statement::CreateTable(c) => {
                if let Some(q) = &c.query {
                    self.body(&q.body, true);
                }
            }
            Statement::Copy {
                source, to: true, ..
            } => {
                match source {
                    CopySource::Query(q) => self.body(&q.body, true),
                    CopySource::Table {
                        table_name,
                        columns,
                    } => {
                        self.out.tables.push(analyze::table(table_name));
                        // The columns named go out; all of them when none is.
                        let named = columns.iter().map(|c| c.value.to_lowercase());
                        self.out.names.extend(named);
                        self.out.copies_out |= columns.is_empty();
                    }
                }
            }
            Statement::CreateFunction(_) | Statement::CreateProcedure { .. } => {
                self.out.makes_code = true;
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}
