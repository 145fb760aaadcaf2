//! What the gateway must know of a statement's text before it reaches the database, read
//! by a real SQL tokenizer (sqlparser's), never by string matching: comments, string
//! literals, quoted identifiers, dollar quoting and backticks are what they are, and
//! MySQL/MariaDB version comments (`/*! … */`, `/*M! … */`), which the server executes,
//! are read as code.
//!
//! - MySQL `KILL` in every form the server accepts (`kill`), so a `KILL` is mapped to the
//!   caller's own sessions or refused — never passed through to an upstream where every
//!   session of a resource role is the same database user.
//! - PostgreSQL `pg_terminate_backend` / `pg_cancel_backend` calls (`pg_signals`), for the
//!   same reason.
//!
//! Dynamic SQL is read too: the literal of `EXECUTE IMMEDIATE` / `PREPARE … FROM` (and, for
//! PostgreSQL, every string literal, which covers `DO` blocks) is checked like the
//! statement itself; dynamic SQL whose text is not a literal cannot be checked and is
//! refused when it could hide a `KILL`.

use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect};
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, Tokenizer, Word};

/// How deep string literals are re-read for hidden statements.
const MAX_DEPTH: usize = 4;

/// MySQL as the server lexes it with `NO_BACKSLASH_ESCAPES` (a client may set that mode,
/// and `'a\'` then ends a string the default lexing would continue).
#[derive(Debug)]
pub(crate) struct MySqlNoBackslash;

impl Dialect for MySqlNoBackslash {
    fn dialect(&self) -> std::any::TypeId {
        std::any::TypeId::of::<MySqlDialect>()
    }
    fn is_identifier_start(&self, ch: char) -> bool {
        MySqlDialect {}.is_identifier_start(ch)
    }
    fn is_identifier_part(&self, ch: char) -> bool {
        MySqlDialect {}.is_identifier_part(ch)
    }
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        MySqlDialect {}.is_delimited_identifier_start(ch)
    }
    fn supports_string_literal_backslash_escape(&self) -> bool {
        false
    }
    fn supports_multiline_comment_hints(&self) -> bool {
        true
    }
    fn supports_hash_comment(&self) -> bool {
        true
    }
    fn requires_single_line_comment_whitespace(&self) -> bool {
        true
    }
    fn supports_numeric_prefix(&self) -> bool {
        true
    }
}

/// The significant tokens of `text` (no whitespace or comments), or `None` when it does
/// not tokenize. MariaDB's `/*M!` version comments are read as code, like `/*!`.
fn tokens(dialect: &dyn Dialect, text: &str) -> Option<Vec<Token>> {
    let text = text.replace("/*M!", "/*!");
    let all = Tokenizer::new(dialect, &text).tokenize().ok()?;
    Some(
        all.into_iter()
            .filter(|t| !matches!(t, Token::Whitespace(_)))
            .collect(),
    )
}

fn keyword(t: Option<&Token>, k: Keyword) -> bool {
    matches!(t, Some(Token::Word(Word { keyword, quote_style: None, .. })) if *keyword == k)
}

fn string(t: &Token) -> Option<&str> {
    match t {
        Token::SingleQuotedString(s)
        | Token::DoubleQuotedString(s)
        | Token::NationalStringLiteral(s)
        | Token::EscapedStringLiteral(s) => Some(s),
        Token::DollarQuotedString(d) => Some(&d.value),
        _ => None,
    }
}

/// `KILL [HARD | SOFT] [CONNECTION | QUERY] n`, alone in its text: what it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kill {
    /// `HARD` or `SOFT` (MariaDB), kept as written.
    pub hardness: Option<&'static str>,
    /// `KILL QUERY`: the statement, not the connection.
    pub query: bool,
    /// The session id named.
    pub id: u64,
}

impl Kill {
    /// The same `KILL` aimed at `thread_id` upstream.
    pub fn to_sql(&self, thread_id: u32) -> String {
        let mut sql = String::from("KILL ");
        if let Some(h) = self.hardness {
            sql.push_str(h);
            sql.push(' ');
        }
        sql.push_str(if self.query { "QUERY " } else { "CONNECTION " });
        sql.push_str(&thread_id.to_string());
        sql
    }
}

/// What a MySQL text does about `KILL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KillCheck {
    /// No `KILL` in it, and no dynamic SQL that could hide one.
    Clean,
    /// Exactly one plain `KILL` of a session id: to be mapped.
    Kill(Kill),
    /// A `KILL` (or possibly one) in a form that cannot be mapped: refuse, with why.
    Refuse(&'static str),
}

/// Whether `text` contains any of `words` (ASCII, any case): the cheap test that spares
/// the tokenizer almost every statement.
fn mentions(text: &str, words: &[&str]) -> bool {
    mentions_bytes(text.as_bytes(), words)
}

/// Whether a message's bytes could name a backend signal function (`pg_signals` has
/// nothing to find otherwise): the relay asks before it makes a string.
pub fn could_signal(bytes: &[u8]) -> bool {
    mentions_bytes(bytes, &["_backend"])
}

fn mentions_bytes(bytes: &[u8], words: &[&str]) -> bool {
    words.iter().any(|w| {
        let w = w.as_bytes();
        let Some(&first) = w.first() else {
            return false;
        };
        let (lo, up) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
        // memchr jumps to the candidates (vectorized): most statements have few.
        memchr::memchr2_iter(lo, up, bytes).any(|i| {
            bytes
                .get(i..i + w.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(w))
        })
    })
}

/// Reads a MySQL text for `KILL`, lexed both with and without backslash escapes (the
/// client may have set either); when the two readings disagree, the stricter wins.
pub fn kill(text: &str) -> KillCheck {
    if !mentions(text, &["kill", "prepare", "immediate"]) {
        return KillCheck::Clean;
    }
    let a = kill_with(&MySqlDialect {}, text, 0);
    let b = kill_with(&MySqlNoBackslash, text, 0);
    match (a, b) {
        (a, b) if a == b => a,
        (r @ KillCheck::Refuse(_), _) | (_, r @ KillCheck::Refuse(_)) => r,
        _ => KillCheck::Refuse("the statement reads differently under the server's SQL modes"),
    }
}

fn kill_with(dialect: &dyn Dialect, text: &str, depth: usize) -> KillCheck {
    let Some(tokens) = tokens(dialect, text) else {
        // The server will not run what does not lex; but say no if it names KILL.
        return if text.to_ascii_lowercase().contains("kill") {
            KillCheck::Refuse("a KILL in a statement the gateway cannot read")
        } else {
            KillCheck::Clean
        };
    };
    if let Some(refusal) = hidden_kill(dialect, &tokens, depth) {
        return KillCheck::Refuse(refusal);
    }
    let kills = tokens
        .iter()
        .filter(|t| keyword(Some(t), Keyword::KILL))
        .count();
    match kills {
        0 => KillCheck::Clean,
        1 if keyword(tokens.first(), Keyword::KILL) => plain_kill(&tokens),
        _ => KillCheck::Refuse("KILL must be sent on its own, not with other statements"),
    }
}

/// `EXECUTE IMMEDIATE <literal>` and `PREPARE name FROM <literal>` are read like the
/// statement itself; from anything but a literal, the text cannot be known.
fn hidden_kill(dialect: &dyn Dialect, tokens: &[Token], depth: usize) -> Option<&'static str> {
    for (i, t) in tokens.iter().enumerate() {
        let dynamic = (keyword(Some(t), Keyword::EXECUTE)
            && keyword(tokens.get(i + 1), Keyword::IMMEDIATE))
            || (keyword(Some(t), Keyword::PREPARE) && keyword(tokens.get(i + 2), Keyword::FROM));
        if !dynamic {
            continue;
        }
        let at = if keyword(Some(t), Keyword::EXECUTE) {
            i + 2
        } else {
            i + 3
        };
        let Some(literal) = tokens.get(at).and_then(string) else {
            return Some(
                "dynamic SQL from anything but a string literal cannot be checked by the gateway",
            );
        };
        if depth >= MAX_DEPTH {
            return Some("dynamic SQL nested too deep to check");
        }
        if kill_with(dialect, literal, depth + 1) != KillCheck::Clean {
            return Some("KILL inside dynamic SQL is not allowed through the gateway");
        }
    }
    None
}

/// `KILL [HARD|SOFT] [CONNECTION|QUERY] <integer> [;]`, nothing else.
fn plain_kill(tokens: &[Token]) -> KillCheck {
    let mut rest = &tokens[1..];
    if let Some(Token::SemiColon) = rest.last() {
        rest = &rest[..rest.len() - 1];
    }
    let mut hardness = None;
    let word = |t: Option<&Token>, w: &str| matches!(t, Some(Token::Word(Word { value, quote_style: None, .. })) if value.eq_ignore_ascii_case(w));
    if word(rest.first(), "HARD") || word(rest.first(), "SOFT") {
        hardness = Some(if word(rest.first(), "HARD") {
            "HARD"
        } else {
            "SOFT"
        });
        rest = &rest[1..];
    }
    let mut query = false;
    if keyword(rest.first(), Keyword::QUERY) {
        query = true;
        rest = &rest[1..];
        if word(rest.first(), "ID") {
            return KillCheck::Refuse(
                "KILL QUERY ID names a query, not a session; use KILL QUERY with a session id",
            );
        }
    } else if keyword(rest.first(), Keyword::CONNECTION) {
        rest = &rest[1..];
    }
    if keyword(rest.first(), Keyword::USER) {
        return KillCheck::Refuse(
            "KILL USER would end every session of the database user behind the resource role",
        );
    }
    match rest {
        [Token::Number(n, false)] => match n.parse() {
            Ok(id) => KillCheck::Kill(Kill {
                hardness,
                query,
                id,
            }),
            Err(_) => KillCheck::Refuse("KILL needs a session id"),
        },
        _ => KillCheck::Refuse("KILL needs a session id written as a number"),
    }
}

/// A PostgreSQL call that signals a backend: `pg_terminate_backend` or
/// `pg_cancel_backend`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Of this backend pid.
    Pid(i32),
    /// `pg_backend_pid()`: the caller's own backend.
    Own,
}

/// Every backend-signalling call in a PostgreSQL text (string literals, which include
/// `DO` bodies, read too), or why it cannot be allowed: a pid that is not written as a
/// number (or `pg_backend_pid()`) cannot be checked.
pub fn pg_signals(text: &str) -> Result<Vec<Signal>, &'static str> {
    let mut out = Vec::new();
    pg_signals_at(text, 0, &mut out)?;
    Ok(out)
}

fn pg_signals_at(text: &str, depth: usize, out: &mut Vec<Signal>) -> Result<(), &'static str> {
    if !mentions(text, &["_backend"]) {
        return Ok(()); // no name that could signal
    }
    let Some(tokens) = tokens(&PostgreSqlDialect {}, text) else {
        return Err("a backend signal in a statement the gateway cannot read");
    };
    for (i, t) in tokens.iter().enumerate() {
        if let Some(s) = string(t) {
            if depth >= MAX_DEPTH {
                return Err("dynamic SQL nested too deep to check");
            }
            pg_signals_at(s, depth + 1, out)?;
            continue;
        }
        let Token::Word(w) = t else { continue };
        let name = match w.quote_style {
            None => w.value.to_ascii_lowercase(),
            Some(_) => w.value.clone(),
        };
        if name != "pg_terminate_backend" && name != "pg_cancel_backend" {
            continue;
        }
        out.push(signal_argument(&tokens[i + 1..])?);
    }
    Ok(())
}

/// `( <integer> [, …] )` or `( pg_backend_pid() [, …] )`.
fn signal_argument(after: &[Token]) -> Result<Signal, &'static str> {
    const WHY: &str = "pg_terminate_backend and pg_cancel_backend take a pid written as a number (or pg_backend_pid()) through the gateway";
    let closes = |t: Option<&Token>| matches!(t, Some(Token::RParen | Token::Comma));
    match after {
        [Token::LParen, Token::Number(n, false), rest @ ..] if closes(rest.first()) => {
            n.parse().map(Signal::Pid).map_err(|_| WHY)
        }
        [
            Token::LParen,
            Token::Word(w),
            Token::LParen,
            Token::RParen,
            rest @ ..,
        ] if w.value.eq_ignore_ascii_case("pg_backend_pid") && closes(rest.first()) => {
            Ok(Signal::Own)
        }
        _ => Err(WHY),
    }
}

/// The dialect a protocol's statements are read in.
fn dialect(mysql: bool) -> Box<dyn Dialect> {
    if mysql {
        Box::new(MySqlDialect {})
    } else {
        Box::new(PostgreSqlDialect {})
    }
}

/// Byte offsets of a text's (line, column) positions, as the tokenizer counts them
/// (1-based, columns in characters).
struct Positions<'a> {
    text: &'a str,
    lines: Vec<usize>,
}

impl Positions<'_> {
    fn new(text: &str) -> Positions<'_> {
        let mut lines = vec![0];
        lines.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Positions { text, lines }
    }

    fn offset(&self, at: sqlparser::tokenizer::Location) -> usize {
        let line = usize::try_from(at.line).unwrap_or(1).max(1);
        let start = self.lines.get(line - 1).copied().unwrap_or(self.text.len());
        let column = usize::try_from(at.column).unwrap_or(1).max(1) - 1;
        self.text[start..]
            .char_indices()
            .nth(column)
            .map_or(self.text.len(), |(i, _)| start + i)
    }
}

/// A script's statements, split at the semicolons that end them (not those inside
/// strings, comments, quoted names or dollar-quoted bodies), each with the line it starts
/// on; empty ones dropped. MySQL compound statements (`BEGIN … END` bodies) are not
/// recognised: send those one at a time.
pub fn split(text: &str, mysql: bool) -> Result<Vec<(usize, String)>, String> {
    let dialect = dialect(mysql);
    let tokens = Tokenizer::new(&*dialect, text)
        .tokenize_with_location()
        .map_err(|e| format!("the text does not read as SQL: {e}"))?;
    let at = Positions::new(text);
    let mut out = Vec::new();
    let mut start = 0;
    let mut push = |from: usize, to: usize| {
        let piece = &text[from..to];
        let body = piece.trim();
        let significant = Tokenizer::new(&*dialect, body)
            .tokenize()
            .map(|t| {
                t.iter()
                    .any(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon))
            })
            .unwrap_or(true);
        if significant {
            let lead = piece.len() - piece.trim_start().len();
            let line = text[..from + lead].matches('\n').count() + 1;
            out.push((line, body.to_owned()));
        }
    };
    for t in &tokens {
        if t.token == Token::SemiColon {
            let end = at.offset(t.span.start);
            push(start, end);
            start = end + 1;
        }
    }
    if start < text.len() {
        push(start, text.len());
    }
    Ok(out)
}

/// Whether `text` parses as one statement of the protocol's dialect (as far as sqlparser
/// reads it: a runbook lint's check, never a gate on what reaches a database).
pub fn parses(text: &str, mysql: bool) -> Result<(), String> {
    let dialect = dialect(mysql);
    sqlparser::parser::Parser::parse_sql(&*dialect, text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Whether a one-off or runbook statement may run: no MySQL `KILL` and no PostgreSQL
/// backend signal but to its own backend (sessions are ended with `portcullis sessions
/// end`, where access is checked).
pub fn oneoff_allowed(text: &str, mysql: bool) -> Result<(), &'static str> {
    const WHY: &str = "KILL and pg_terminate_backend/pg_cancel_backend are not available in one-offs and runbooks; end a session with `portcullis sessions end`";
    if mysql {
        return match kill(text) {
            KillCheck::Clean => Ok(()),
            _ => Err(WHY),
        };
    }
    match pg_signals(text) {
        Ok(signals) if signals.iter().all(|s| *s == Signal::Own) => Ok(()),
        _ => Err(WHY),
    }
}

/// A statement with named placeholders (`:order_id`) made ready to prepare: `$n`
/// (PostgreSQL, one number per name) or `?` (MySQL, one per occurrence), and the names in
/// parameter order. Placeholders inside strings, comments and quoted names are text;
/// `::` casts and `:=` are not placeholders.
#[derive(Debug, PartialEq, Eq)]
pub struct Placeholders {
    pub text: String,
    pub names: Vec<String>,
    /// Every placeholder used, with the line (within the statement) it is on.
    pub used: Vec<(String, usize)>,
}

pub fn placeholders(statement: &str, mysql: bool) -> Result<Placeholders, String> {
    let dialect = dialect(mysql);
    let tokens = Tokenizer::new(&*dialect, statement)
        .tokenize_with_location()
        .map_err(|e| format!("the statement does not read as SQL: {e}"))?;
    let at = Positions::new(statement);
    let mut out = Placeholders {
        text: String::with_capacity(statement.len()),
        names: Vec::new(),
        used: Vec::new(),
    };
    let mut copied = 0;
    for pair in tokens.windows(2) {
        let (Token::Colon, Token::Word(w)) = (&pair[0].token, &pair[1].token) else {
            continue;
        };
        let (colon, word) = (at.offset(pair[0].span.start), at.offset(pair[1].span.start));
        if w.quote_style.is_some() || word != colon + 1 {
            continue;
        }
        out.text.push_str(&statement[copied..colon]);
        let name = w.value.clone();
        let marker = if mysql {
            out.names.push(name.clone());
            "?".to_owned()
        } else {
            let n = match out.names.iter().position(|n| *n == name) {
                Some(i) => i + 1,
                None => {
                    out.names.push(name.clone());
                    out.names.len()
                }
            };
            format!("${n}")
        };
        out.text.push_str(&marker);
        out.used.push((name, pair[0].span.start.line as usize));
        copied = word + w.value.len();
    }
    out.text.push_str(&statement[copied..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kill_of(id: u64, query: bool, hardness: Option<&'static str>) -> KillCheck {
        KillCheck::Kill(Kill {
            hardness,
            query,
            id,
        })
    }

    #[test]
    fn plain_kills_are_recognised_in_every_spelling() {
        for (text, want) in [
            ("KILL 7", kill_of(7, false, None)),
            ("kill query 12", kill_of(12, true, None)),
            ("KILL CONNECTION 3;", kill_of(3, false, None)),
            ("/**/KILL 5", kill_of(5, false, None)),
            ("KILL 5 ;", kill_of(5, false, None)),
            ("KILL HARD 5", kill_of(5, false, Some("HARD"))),
            ("kill soft query 9", kill_of(9, true, Some("SOFT"))),
            ("-- hi\nKILL 4", kill_of(4, false, None)),
            ("/*!KILL 6*/", kill_of(6, false, None)),
            ("/*M!100000 KILL 6*/", kill_of(6, false, None)),
        ] {
            assert_eq!(kill(text), want, "{text}");
        }
    }

    #[test]
    fn kills_that_cannot_be_mapped_are_refused() {
        for text in [
            "SELECT 1; KILL 5",
            "KILL 5; SELECT 1",
            "KILL USER 'root'",
            "KILL QUERY ID 55",
            "KILL @id",
            "KILL (SELECT 5)",
            "EXECUTE IMMEDIATE 'KILL 5'",
            "EXECUTE IMMEDIATE CONCAT('KI', 'LL 5')",
            "PREPARE s FROM 'KILL 5'",
            "PREPARE s FROM @sql",
            "BEGIN NOT ATOMIC KILL 5; END",
            "SELECT 1 /*! ; KILL 5 */",
            "EXECUTE IMMEDIATE 'EXECUTE IMMEDIATE \"KILL 5\"'",
            "SELECT 'a\\'; KILL 5; -- '",
        ] {
            assert!(
                matches!(kill(text), KillCheck::Refuse(_)),
                "{text} should be refused, got {:?}",
                kill(text)
            );
        }
    }

    #[test]
    fn kill_in_literals_comments_and_quoted_names_is_not_a_kill() {
        for text in [
            "SELECT 'KILL 5'",
            "SELECT `kill` FROM t",
            "SELECT 1 -- KILL 5",
            "SELECT 1 /* KILL 5 */",
            "SELECT \"kill 5\"",
            "PREPARE s FROM 'SELECT 1'",
            "EXECUTE IMMEDIATE 'SELECT 1'",
        ] {
            assert_eq!(kill(text), KillCheck::Clean, "{text}");
        }
    }

    #[test]
    fn pg_signal_calls_are_found_wherever_they_hide() {
        assert_eq!(pg_signals("select 1"), Ok(vec![]));
        assert_eq!(
            pg_signals("SELECT pg_terminate_backend(123)"),
            Ok(vec![Signal::Pid(123)])
        );
        assert_eq!(
            pg_signals("select pg_catalog.pg_cancel_backend( 7 )"),
            Ok(vec![Signal::Pid(7)])
        );
        assert_eq!(
            pg_signals("select pg_terminate_backend(pg_backend_pid())"),
            Ok(vec![Signal::Own])
        );
        assert_eq!(
            pg_signals("DO $$BEGIN PERFORM pg_terminate_backend(9); END$$"),
            Ok(vec![Signal::Pid(9)])
        );
        for text in [
            "select pg_terminate_backend(pid) from pg_stat_activity",
            "select \"pg_terminate_backend\"(5 + 1)",
            "DO $$BEGIN EXECUTE 'select pg_cancel_backend(' || 5 || ')'; END$$",
            "select PG_TERMINATE_BACKEND ((5))",
        ] {
            assert!(pg_signals(text).is_err(), "{text}");
        }
        assert_eq!(pg_signals("select 'pg_backend'"), Ok(vec![]));
        assert_eq!(
            pg_signals("select 1 -- pg_terminate_backend(5)"),
            Ok(vec![])
        );
    }

    #[test]
    fn scripts_split_at_the_semicolons_that_end_statements() {
        let text =
            "select 1;\n-- a comment; not an end\nselect ';' as s; /* ; */\n\nselect $$a;b$$;  ;";
        let got = split(text, false).expect("test input");
        let texts: Vec<&str> = got.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(
            texts,
            [
                "select 1",
                "-- a comment; not an end\nselect ';' as s",
                "/* ; */\n\nselect $$a;b$$"
            ]
        );
        assert_eq!(got[0].0, 1);
        assert_eq!(got[1].0, 2);
        let my = split("select `a;b` from t; select \"x;\"", true).expect("test input");
        assert_eq!(my.len(), 2);
        assert_eq!(split("  ;; ", false).expect("test input"), vec![]);
    }

    #[test]
    fn placeholders_become_parameters_and_strings_stay_text() {
        let p = placeholders(
            "update t set a = :v, b = ':v' where id = :id and x = :v::int -- :c",
            false,
        )
        .expect("test input");
        assert_eq!(
            p.text,
            "update t set a = $1, b = ':v' where id = $2 and x = $1::int -- :c"
        );
        assert_eq!(p.names, ["v", "id"]);
        let m = placeholders("select :a, @x := :b, :a", true).expect("test input");
        assert_eq!(m.text, "select ?, @x := ?, ?");
        assert_eq!(m.names, ["a", "b", "a"]);
    }

    #[test]
    fn one_offs_may_not_kill_or_signal_others() {
        assert!(oneoff_allowed("select 1", true).is_ok());
        assert!(oneoff_allowed("KILL QUERY 5", true).is_err());
        assert!(oneoff_allowed("select pg_cancel_backend(pg_backend_pid())", false).is_ok());
        assert!(oneoff_allowed("select pg_terminate_backend(123)", false).is_err());
    }
}
