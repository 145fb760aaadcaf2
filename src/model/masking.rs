//! Masking rules (SPEC §1): which result columns a session reads masked on a resource
//! role, keyed on the column a value comes from (its table and column in the database),
//! never on the name a query gives it.

use serde::{Deserialize, Serialize};

use super::{FromStr, fmt, string_enum};

string_enum!(
    /// How a masked value is shown.
    MaskMethod {
        Redact => "redact",
        Null => "null",
        Partial => "partial",
        Email => "email",
        Hash => "hash",
        Default => "default",
    }
);

/// A masking rule. A result column is masked when its origin matches one of `columns`
/// (`schema.table.column` or `table.column`, `*` for any part of a name) or its origin
/// column's name matches one of `column_names` (any table: the weaker matcher).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaskingRule {
    pub name: String,
    /// At least one.
    pub resource_roles: Vec<String>,
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default)]
    pub column_names: Vec<String>,
    pub method: MaskMethod,
    /// `partial`: characters kept at the start.
    #[serde(default)]
    pub keep_first: u16,
    /// `partial`: characters kept at the end (4 when neither is set).
    #[serde(default)]
    pub keep_last: u16,
    /// Members of these groups read clear values.
    #[serde(default)]
    pub except_groups: Vec<String>,
}

/// A column pattern split into its parts (lowercased): schema (`None`: any), table,
/// column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnPattern {
    pub schema: Option<String>,
    pub table: String,
    pub column: String,
}

impl ColumnPattern {
    pub fn parse(text: &str) -> Option<ColumnPattern> {
        let parts: Vec<String> = text.split('.').map(str::to_lowercase).collect();
        if parts.iter().any(String::is_empty) {
            return None;
        }
        match parts.as_slice() {
            [t, c] => Some(ColumnPattern {
                schema: None,
                table: t.clone(),
                column: c.clone(),
            }),
            [s, t, c] => Some(ColumnPattern {
                schema: Some(s.clone()),
                table: t.clone(),
                column: c.clone(),
            }),
            _ => None,
        }
    }
}

impl MaskingRule {
    /// Whether the rule masks what a member of `groups` reads on `resource_role`.
    pub fn applies(&self, resource_role: &str, groups: &[String]) -> bool {
        self.resource_roles.iter().any(|r| r == resource_role)
            && !self.except_groups.iter().any(|g| groups.contains(g))
    }

    /// `partial`'s (first, last) characters kept.
    pub fn kept(&self) -> (usize, usize) {
        match (self.keep_first, self.keep_last) {
            (0, 0) => (0, 4),
            (f, l) => (usize::from(f), usize::from(l)),
        }
    }

    pub fn patterns(&self) -> Vec<ColumnPattern> {
        self.columns
            .iter()
            .filter_map(|c| ColumnPattern::parse(c))
            .collect()
    }

    /// Every problem with the rule on its own, as (field, message).
    pub fn problems(&self, known: &super::Known<'_>) -> Vec<(&'static str, String)> {
        let mut out = known.problems(
            &self.name,
            &self.resource_roles,
            &[("except_groups", &self.except_groups)],
        );
        for c in &self.columns {
            if ColumnPattern::parse(c).is_none() {
                out.push((
                    "columns",
                    format!("`{c}` is not `table.column` or `schema.table.column`"),
                ));
            }
        }
        for c in &self.column_names {
            if c.is_empty() || c.contains('.') {
                out.push(("column_names", format!("`{c}` is not a column name")));
            }
        }
        if self.columns.is_empty() && self.column_names.is_empty() {
            out.push((
                "columns",
                "the rule masks nothing: set columns or column_names".to_owned(),
            ));
        }
        let partial = self.keep_first > 0 || self.keep_last > 0;
        if partial && self.method != MaskMethod::Partial {
            out.push((
                "keep_last",
                "keep_first and keep_last are for method `partial`".to_owned(),
            ));
        }
        out
    }
}

/// A masking rule as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MaskingRuleView {
    #[serde(flatten)]
    pub rule: MaskingRule,
    /// Declared in the config file (read-only through the API).
    pub managed: bool,
}
