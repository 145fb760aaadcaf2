//! A runbook file: a header of `-- ` comment lines holding TOML (description, the resource
//! roles it may run on, the groups allowed to run it, its parameters), then the SQL body,
//! one or more statements with named placeholders (`:order_id`). Reading a file checks
//! everything `runbooks lint` reports, each problem with its line.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::params::{Param, RawParam};
use super::{Runbook, Statement};
use crate::model::Protocol;

/// A problem in a file, at a line (1-based; 0: the file as a whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

fn at(line: usize, message: impl Into<String>) -> Problem {
    Problem {
        line,
        message: message.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    description: Option<String>,
    resource_roles: Option<Vec<String>>,
    groups: Option<Vec<String>>,
    transaction: Option<bool>,
    protocol: Option<String>,
    #[serde(default)]
    params: Vec<RawParam>,
}

/// The header's TOML (comment markers taken off, one line per file line) and the line the
/// body starts on.
fn split_header(text: &str) -> (String, usize) {
    let mut header = String::new();
    let mut body_line = 1;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("--") {
            header.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        } else if !trimmed.is_empty() {
            body_line = i + 1;
            break;
        }
        header.push('\n');
        body_line = i + 2;
    }
    (header, body_line)
}

/// The line of a byte offset in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Reads runbook `name` from its file's text; every problem at once.
pub fn read(name: &str, text: &str) -> Result<Runbook, Vec<Problem>> {
    let mut problems = Vec::new();
    if let Err(e) = crate::model::check_name(name) {
        problems.push(at(0, format!("the file name is not a runbook name: {e}")));
    }
    let (header_text, body_line) = split_header(text);
    let header: Header = match toml::from_str(&header_text) {
        Ok(h) => h,
        Err(e) => {
            let line = e.span().map_or(0, |s| line_of(&header_text, s.start));
            problems.push(at(line, format!("header: {}", e.message())));
            return Err(problems);
        }
    };
    let protocol = match header.protocol.as_deref().map(str::parse::<Protocol>) {
        Some(Err(e)) => {
            problems.push(at(0, format!("header: protocol: {e}")));
            None
        }
        other => other.and_then(Result::ok),
    };
    let description = header.description.unwrap_or_default();
    if description.trim().is_empty() {
        problems.push(at(0, "header: `description` is missing"));
    }
    let resource_roles = header.resource_roles.unwrap_or_default();
    if resource_roles.is_empty() {
        problems.push(at(
            0,
            "header: `resource_roles` names none (names, or patterns like `orders-*`)",
        ));
    }
    let params = params(header.params, &mut problems);
    let body: String = text
        .lines()
        .skip(body_line - 1)
        .collect::<Vec<_>>()
        .join("\n");
    let statements = statements(&body, body_line, protocol, &params, &mut problems);
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Runbook {
        name: name.to_owned(),
        description,
        resource_roles,
        groups: header.groups.unwrap_or_default(),
        transaction: header.transaction.unwrap_or(true),
        protocol,
        params,
        statements,
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
    })
}

fn params(raw: Vec<RawParam>, problems: &mut Vec<Problem>) -> Vec<Param> {
    let mut out: Vec<Param> = Vec::new();
    for r in raw {
        let name = r.name.clone();
        if out.iter().any(|p| p.name == name) {
            problems.push(at(0, format!("parameter `{name}` is declared twice")));
            continue;
        }
        match Param::new(r) {
            Ok(p) => out.push(p),
            Err(e) => problems.push(at(0, format!("parameter `{name}`: {e}"))),
        }
    }
    out
}

/// The body's statements; each placeholder must be a declared parameter, each parameter
/// used, and each statement must parse for the runbook's protocol (either, when the header
/// names none).
fn statements(
    body: &str,
    first_line: usize,
    protocol: Option<Protocol>,
    params: &[Param],
    problems: &mut Vec<Problem>,
) -> Vec<Statement> {
    let split = match crate::sql::split(body, protocol == Some(Protocol::Mysql)) {
        Ok(s) => s,
        Err(e) => {
            problems.push(at(first_line, e));
            return Vec::new();
        }
    };
    if split.is_empty() {
        problems.push(at(first_line, "the runbook has no statement"));
    }
    let mut used = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (line, text) in split {
        let line = first_line + line - 1;
        check_statement(&text, line, protocol, params, &mut used, problems);
        out.push(Statement { line, text });
    }
    for p in params.iter().filter(|p| !used.contains(p.name.as_str())) {
        problems.push(at(0, format!("parameter `{}` is never used", p.name)));
    }
    out
}

fn check_statement<'a>(
    text: &str,
    line: usize,
    protocol: Option<Protocol>,
    params: &'a [Param],
    used: &mut std::collections::HashSet<&'a str>,
    problems: &mut Vec<Problem>,
) {
    let protocols = match protocol {
        Some(p) => vec![p],
        None => vec![Protocol::Postgres, Protocol::Mysql],
    };
    let mut parsed = Vec::new();
    for p in &protocols {
        let mysql = *p == Protocol::Mysql;
        let marked = match crate::sql::placeholders(text, mysql) {
            Ok(m) => m,
            Err(e) => {
                problems.push(at(line, e));
                return;
            }
        };
        for (name, l) in &marked.used {
            match params.iter().find(|p| p.name == *name) {
                Some(p) => {
                    used.insert(p.name.as_str());
                }
                None if *p == protocols[0] => {
                    problems.push(at(line + l - 1, format!("unknown placeholder :{name}")));
                }
                None => {}
            }
        }
        parsed.push(crate::sql::parses(&marked.text, mysql));
    }
    if let Some(Err(e)) = parsed.iter().find(|r| r.is_err())
        && !parsed.iter().any(Result::is_ok)
    {
        let which = match protocol {
            Some(p) => format!("as {p}"),
            None => "as PostgreSQL or MySQL".into(),
        };
        problems.push(at(
            line,
            format!("the statement does not parse {which}: {e}"),
        ));
    }
}
