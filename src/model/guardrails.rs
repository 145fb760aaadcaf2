//! Guardrails (SPEC §1): what a session may do on a resource role, decided on the parsed
//! statement for both protocols and every access mode.

use serde::{Deserialize, Serialize};

use super::{FromStr, fmt, string_enum};

string_enum!(
    /// What a matching statement gets: refused, or logged with the rule's name.
    GuardAction { Block => "block", Warn => "warn" }
);
string_enum!(
    /// What a statement is (a statement may be several: a `SELECT` with a data-modifying
    /// CTE is `read` and `write`).
    StatementClass {
        Read => "read",
        Write => "write",
        Ddl => "ddl",
        Dcl => "dcl",
        Copy => "copy",
        Session => "session",
        TransactionControl => "transaction_control",
        Call => "call",
        Other => "other",
    }
);
string_enum!(
    /// What a statement the parser cannot read gets under a rule.
    Unparsed { Block => "block", Allow => "allow" }
);

/// A guardrail. A statement matches when every matcher the rule sets holds for it:
/// `classes` (any of them), `tables` (any named), and of the shapes
/// (`update_without_where`, `delete_without_where`, `select_star`) any one set. A message
/// of several statements matches when `allow_multi = false`, or when one of them matches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Guardrail {
    pub name: String,
    /// At least one.
    pub resource_roles: Vec<String>,
    pub action: GuardAction,
    /// Only for members of these groups (empty: everyone).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Never for members of these groups.
    #[serde(default)]
    pub except_groups: Vec<String>,
    #[serde(default)]
    pub classes: Vec<StatementClass>,
    /// `schema.table` patterns (`*` for any part of a name; no schema: any schema).
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub update_without_where: bool,
    #[serde(default)]
    pub delete_without_where: bool,
    /// `SELECT *` (or `t.*`) on a table `tables` names (on any table when it names none).
    #[serde(default)]
    pub select_star: bool,
    /// `false`: a message with more than one statement matches.
    #[serde(default = "yes")]
    pub allow_multi: bool,
    /// A statement the parser cannot read: default `block` for a `block` rule, `allow` for
    /// a `warn` rule.
    #[serde(default)]
    pub unparsed: Option<Unparsed>,
}

fn yes() -> bool {
    true
}

impl Guardrail {
    /// Whether the rule applies to a member of `groups` on `resource_role`.
    pub fn applies(&self, resource_role: &str, groups: &[String]) -> bool {
        let member = |list: &[String]| list.iter().any(|g| groups.contains(g));
        self.resource_roles.iter().any(|r| r == resource_role)
            && (self.groups.is_empty() || member(&self.groups))
            && !member(&self.except_groups)
    }

    /// Whether it sets any statement matcher (beyond `allow_multi`).
    pub fn matches_statements(&self) -> bool {
        !self.classes.is_empty()
            || !self.tables.is_empty()
            || self.update_without_where
            || self.delete_without_where
            || self.select_star
    }

    /// What an unreadable statement gets under this rule.
    pub fn on_unparsed(&self) -> Unparsed {
        self.unparsed.unwrap_or(match self.action {
            GuardAction::Block => Unparsed::Block,
            GuardAction::Warn => Unparsed::Allow,
        })
    }

    /// Every problem with the rule on its own, as (field, message).
    pub fn problems(&self, known: &super::Known<'_>) -> Vec<(&'static str, String)> {
        let mut out = known.problems(
            &self.name,
            &self.resource_roles,
            &[
                ("groups", &self.groups),
                ("except_groups", &self.except_groups),
            ],
        );
        for t in &self.tables {
            let parts: Vec<&str> = t.split('.').collect();
            if parts.len() > 2 || parts.iter().any(|p| p.is_empty()) {
                out.push(("tables", format!("`{t}` is not `table` or `schema.table`")));
            }
        }
        if !self.matches_statements() && self.allow_multi {
            out.push((
                "classes",
                "the rule matches nothing: set classes, tables, update_without_where, delete_without_where, select_star or allow_multi = false".to_owned(),
            ));
        }
        out
    }

    /// Whether the rule names `group`.
    pub fn names_group(&self, group: &str) -> bool {
        self.groups
            .iter()
            .chain(&self.except_groups)
            .any(|g| g == group)
    }
}

/// A guardrail as the API shows it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GuardrailView {
    #[serde(flatten)]
    pub rule: Guardrail,
    /// Declared in the config file (read-only through the API).
    pub managed: bool,
}
