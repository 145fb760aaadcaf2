//! Guardrails at work: the rules that apply to one session, and the decision for each
//! statement text it sends — parsed once per distinct text (a bounded cache), never for a
//! session whose resource role has no rules. Rules are evaluated in the order they are
//! listed (config first, then the API's, by name); every rule that matches is named, and
//! the strictest action wins (`block` over `warn`).

pub mod analyze;
pub mod expose;

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{GuardAction, Guardrail, Protocol, Unparsed};
use analyze::{Facts, Table};

/// Distinct texts remembered per session; the cache starts over when full.
const CACHE: usize = 512;

/// What the guardrails say about one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Refused: it never reaches the database.
    pub block: bool,
    /// Every rule that matched (for an unreadable text: the rules that decided it).
    pub rules: Arc<[Box<str>]>,
    /// The parser could not read it.
    pub unparsed: bool,
    /// Refused by masking: why (`rules` names the masking rule).
    pub masking: Option<Box<str>>,
}

impl Decision {
    /// The error the client reads for a blocked statement.
    pub fn message(&self) -> String {
        let names = self.rules.join("`, `");
        if let Some(why) = &self.masking {
            let rule = self.rules.last().map_or("", |r| &**r);
            format!("blocked by masking rule `{rule}`: {why}")
        } else if self.unparsed {
            format!("blocked by guardrail `{names}`: the gateway cannot read this statement")
        } else {
            format!("blocked by guardrail `{names}`")
        }
    }
}

/// The rules one session works under.
#[derive(Clone)]
pub struct Guard {
    protocol: Protocol,
    /// What an unqualified table name's schema is (PostgreSQL `public`; MySQL the
    /// resource's database).
    default_schema: String,
    rules: Vec<Arc<Guardrail>>,
    /// The session changed its schema (`SET search_path`, `USE`): unqualified names may be
    /// in any schema from now on.
    moved: bool,
    cache: HashMap<Box<str>, Option<Arc<Decision>>>,
    /// The session's masking: what the statement check refuses.
    masking: Option<Arc<MaskCheck>>,
}

/// What masking's statement check needs of a session (`expose`).
#[derive(Debug)]
pub struct MaskCheck {
    /// The rule named when a statement is refused.
    pub rule: Arc<str>,
    pub patterns: Vec<expose::RulePattern>,
    /// Views over masked columns: (schema, name).
    pub views: Vec<(String, String)>,
}

impl Guard {
    /// The guard for a member of `groups` on `resource_role`, or `None` when no rule
    /// applies (nothing to parse).
    pub fn new<'a>(
        all: impl IntoIterator<Item = &'a Arc<Guardrail>>,
        resource_role: &str,
        groups: &[String],
        protocol: Protocol,
        default_schema: &str,
    ) -> Option<Guard> {
        let rules: Vec<Arc<Guardrail>> = all
            .into_iter()
            .filter(|r| r.applies(resource_role, groups))
            .cloned()
            .collect();
        (!rules.is_empty()).then(|| Guard {
            protocol,
            default_schema: default_schema.to_lowercase(),
            rules,
            moved: false,
            cache: HashMap::new(),
            masking: None,
        })
    }

    /// `guard` (or one without guardrails) that also runs masking's statement check.
    pub fn masked(
        guard: Option<Guard>,
        check: MaskCheck,
        protocol: Protocol,
        default_schema: &str,
    ) -> Guard {
        let mut g = guard.unwrap_or_else(|| Guard {
            protocol,
            default_schema: default_schema.to_lowercase(),
            rules: Vec::new(),
            moved: false,
            cache: HashMap::new(),
            masking: None,
        });
        g.masking = Some(Arc::new(check));
        g.cache.clear();
        g
    }

    /// The decision for `text`, or `None` when no rule matched.
    pub fn check(&mut self, text: &str) -> Option<Arc<Decision>> {
        let key = shape(text);
        if let Some(d) = self.cache.get(key.as_str()) {
            return d.clone();
        }
        let facts = analyze::analyze(self.protocol, text);
        let decision = self.decide(facts.as_deref());
        let decision = self.masking_check(text, decision).map(Arc::new);
        let moves = facts.iter().flatten().any(|f| f.moves_schema);
        if moves && !decision.as_ref().is_some_and(|d| d.block) && !self.moved {
            self.moved = true;
            self.cache.clear();
            return decision; // not cached: the same text decides differently from now on
        }
        if self.cache.len() >= CACHE {
            self.cache.clear();
        }
        self.cache.insert(key.into_boxed_str(), decision.clone());
        decision
    }

    /// The guardrails' decision with masking's statement check added.
    fn masking_check(&self, text: &str, decision: Option<Decision>) -> Option<Decision> {
        let Some(m) = &self.masking else {
            return decision;
        };
        let schema = (!self.moved).then_some(self.default_schema.as_str());
        let refused = match expose::exposure(self.protocol, text) {
            Some(e) => expose::refusal(&e, &m.patterns, &m.views, schema),
            None => Some((
                None,
                "the gateway cannot read this statement, and masking must".to_owned(),
            )),
        };
        let Some((rule, why)) = refused else {
            return decision;
        };
        let rule = rule.unwrap_or_else(|| Arc::clone(&m.rule));
        let mut d = decision.unwrap_or(Decision {
            block: true,
            rules: Arc::from([]),
            unparsed: false,
            masking: None,
        });
        d.block = true;
        d.rules = d.rules.iter().cloned().chain([Box::from(&*rule)]).collect();
        d.masking = Some(why.into_boxed_str());
        Some(d)
    }

    fn decide(&self, facts: Option<&[Facts]>) -> Option<Decision> {
        let readable = facts.filter(|list| !list.iter().any(|f| f.dynamic));
        let Some(statements) = readable else {
            return self.unreadable();
        };
        let matched: Vec<&Arc<Guardrail>> = self
            .rules
            .iter()
            .filter(|r| self.matches(r, statements))
            .collect();
        if matched.is_empty() {
            return None;
        }
        Some(Decision {
            block: matched.iter().any(|r| r.action == GuardAction::Block),
            rules: matched.iter().map(|r| Box::from(r.name.as_str())).collect(),
            unparsed: false,
            masking: None,
        })
    }

    /// A text the parser cannot read: blocked when any rule says so, else allowed and
    /// marked with the rules that let it through.
    fn unreadable(&self) -> Option<Decision> {
        let blocking: Vec<_> = self
            .rules
            .iter()
            .filter(|r| r.on_unparsed() == Unparsed::Block)
            .collect();
        let named = if blocking.is_empty() {
            self.rules.iter().collect()
        } else {
            blocking.clone()
        };
        Some(Decision {
            block: !blocking.is_empty(),
            rules: named.iter().map(|r| Box::from(r.name.as_str())).collect(),
            unparsed: true,
            masking: None,
        })
    }

    fn matches(&self, rule: &Guardrail, statements: &[Facts]) -> bool {
        if !rule.allow_multi && statements.len() > 1 {
            return true;
        }
        rule.matches_statements() && statements.iter().any(|f| self.statement_matches(rule, f))
    }

    fn statement_matches(&self, rule: &Guardrail, f: &Facts) -> bool {
        let named = |t: &Table| rule.tables.is_empty() || rule.tables.iter().any(|p| self.is(p, t));
        let class = rule.classes.is_empty() || rule.classes.iter().any(|c| f.has(*c));
        let tables = rule.tables.is_empty() || f.opaque || f.tables.iter().any(named);
        let shapes = [
            (rule.update_without_where, f.update_without_where),
            (rule.delete_without_where, f.delete_without_where),
            (rule.select_star, f.star_tables.iter().any(named)),
        ];
        let shape =
            shapes.iter().all(|(set, _)| !set) || shapes.iter().any(|(set, is)| *set && *is);
        class && tables && shape
    }

    /// Whether `pattern` (`schema.table`, `table`; `*` anywhere in a part) names `t`.
    fn is(&self, pattern: &str, t: &Table) -> bool {
        let (schema_p, name_p) = match pattern.rsplit_once('.') {
            Some((s, n)) => (Some(s), n),
            None => (None, pattern),
        };
        if !glob(&name_p.to_lowercase(), &t.name) {
            return false;
        }
        match (schema_p, &t.schema) {
            (None, _) => true,
            (Some(p), Some(s)) => glob(&p.to_lowercase(), s),
            (Some(_), None) if self.moved => true,
            (Some(p), None) => glob(&p.to_lowercase(), &self.default_schema),
        }
    }
}

/// The cache key of a text: each standalone run of at most nine digits written `0`.
/// Standalone means between characters that cannot continue a name or a quoted word
/// (letters, digits, `_`, `$`, quotes, backticks, anything non-ASCII), so it is a number
/// literal (or lies in a comment or a string, where it is data): no decision depends on a
/// number's value, and `… WHERE aid = 48213` and `… WHERE aid = 7` share one parse. Names
/// (`t1`), placeholders (`$1`), quoted words (`"1"`, `'1'`) and longer numbers stay.
fn shape(text: &str) -> String {
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || b"_$'\"`".contains(&c) || c >= 0x80;
    let mut out = String::with_capacity(text.len());
    let (mut i, mut kept) = (0, 0);
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && word(b[i - 1])) {
            i += 1;
            continue;
        }
        let end = b[i..]
            .iter()
            .position(|c| !c.is_ascii_digit())
            .map_or(b.len(), |n| i + n);
        if end - i <= 9 && b.get(end).is_none_or(|c| !word(*c)) {
            out.push_str(&text[kept..i]);
            out.push('0');
            kept = end;
        }
        i = end;
    }
    out.push_str(&text[kept..]);
    out
}

/// `*` matches any run of characters; everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests;
