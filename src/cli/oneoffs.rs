//! `portcullis exec`, `runbook list|show|run` (through the admin API) and `runbooks lint`
//! (local): results as tables, JSON or CSV; a failed statement makes the exit non-zero.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use hyper::Method;
use serde_json::Value;

use super::client::{Client, ClientError};
use super::commands::{Printed, seg};
use super::table::{csv, grid, positional, render};
use super::{ExecArgs, Output, RunLimits, RunbookCmd};
use crate::api::{ExecRequest, Executed, RunAnswer, RunbookRun, StatementResult};

pub async fn exec(c: &Client, args: &ExecArgs, output: Output) -> Result<Printed, ClientError> {
    let statement = match (&args.sql, &args.file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| ClientError::Local(format!("cannot read {}: {e}", file.display())))?,
        (None, None) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| ClientError::Local(format!("cannot read stdin: {e}")))?;
            s
        }
    };
    let RunLimits {
        max_rows,
        timeout,
        app,
    } = &args.limits;
    let req = ExecRequest {
        statement,
        params: args.params.iter().cloned().map(Value::from).collect(),
        max_rows: *max_rows,
        timeout: timeout.clone(),
        application_name: app.clone(),
        reason: args.reason.clone().unwrap_or_default(),
    };
    let path = format!("/api/resource-roles/{}/exec", seg(&args.resource_role));
    let answer: RunAnswer = c.typed(Method::POST, &path, Some(&req)).await?;
    Ok(answered(answer, output))
}

/// Results, or the request that holds the run for approval.
fn answered(answer: RunAnswer, output: Output) -> Printed {
    match answer {
        RunAnswer::Ran(done) => executed(&done, output),
        RunAnswer::Held(view) => {
            let r = &view.request;
            let mut printed = Printed::ok(match output {
                Output::Json => serde_json::to_string_pretty(&view).unwrap_or_default() + "\n",
                _ => format!("{}\n", r.id),
            });
            printed.err = format!(
                "held for approval under rule `{}` ({} approval{} needed): request {}\nonce approved, run it with `portcullis request run {}`\n",
                r.rule,
                view.approvals_needed,
                if view.approvals_needed == 1 { "" } else { "s" },
                r.id,
                r.id
            );
            printed
        }
    }
}

pub async fn runbook(c: &Client, cmd: &RunbookCmd, output: Output) -> Result<Printed, ClientError> {
    let path = |n: &str| format!("/api/runbooks/{}", seg(n));
    let cols = &["name", "description", "resource_roles", "groups", "sha256"];
    let shown = |v: &Value| match output {
        Output::Json => serde_json::to_string_pretty(v).unwrap_or_default() + "\n",
        Output::Csv => super::table::render_csv(v, cols),
        Output::Table => render(v, cols),
    };
    match cmd {
        RunbookCmd::List => Ok(Printed::ok(shown(
            &c.fetch::<Value>("/api/runbooks").await?,
        ))),
        RunbookCmd::Show { name } => {
            let v: Value = c.fetch(&path(name)).await?;
            let mut out = shown(&v);
            if output == Output::Table {
                out.push('\n');
                out.push_str(&render(
                    &v["params"],
                    &["name", "type", "required", "default", "description"],
                ));
                for s in v["statements"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "\n-- line {}\n{}\n",
                        s["line"],
                        s["text"].as_str().unwrap_or_default()
                    ));
                }
            }
            Ok(Printed::ok(out))
        }
        RunbookCmd::Run {
            name,
            resource_role,
            params,
            reason,
            limits,
        } => {
            let mut values = serde_json::Map::new();
            for p in params {
                let (k, v) = p.split_once('=').ok_or_else(|| {
                    ClientError::Local(format!("--param `{p}` is not name=value"))
                })?;
                values.insert(k.to_owned(), Value::from(v));
            }
            let req = RunbookRun {
                resource_role: resource_role.clone(),
                params: values,
                max_rows: limits.max_rows,
                timeout: limits.timeout.clone(),
                application_name: limits.app.clone(),
                reason: reason.clone().unwrap_or_default(),
            };
            let run_path = format!("{}/run", path(name));
            let answer: RunAnswer = c.typed(Method::POST, &run_path, Some(&req)).await?;
            Ok(answered(answer, output))
        }
    }
}

/// A run's results as the caller asked; failed when a statement failed.
pub(super) fn executed(done: &Executed, output: Output) -> Printed {
    let mut printed = Printed::ok(String::new());
    printed.failed = done.failed.is_some();
    match output {
        Output::Json => {
            printed.out = serde_json::to_string_pretty(done).unwrap_or_default() + "\n";
        }
        Output::Csv => {
            for r in done.results.iter().filter(|r| !r.columns.is_empty()) {
                let header: Vec<String> = r.columns.iter().map(|c| c.name.clone()).collect();
                printed.out.push_str(&csv(&header, &positional(&r.rows)));
            }
        }
        Output::Table => {
            let many = done.results.len() > 1;
            for r in &done.results {
                printed.out.push_str(&table(r, many));
            }
        }
    }
    if let Some(i) = done.failed
        && let Some(r) = done.results.get(i)
        && let Some(e) = &r.error
    {
        printed.err = format!(
            "ERROR {}: {}\n(statement {} of the run: {})\nsession {}\n",
            e.code,
            e.message,
            i + 1,
            first_line(&r.statement),
            done.session_id
        );
    }
    printed
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

fn table(r: &StatementResult, many: bool) -> String {
    let mut out = String::new();
    if many {
        out.push_str(&format!("-- {}\n", first_line(&r.statement)));
    }
    if !r.columns.is_empty() {
        let header = r.columns.iter().map(|c| c.name.clone()).collect();
        out.push_str(&grid(header, positional(&r.rows)));
        let n = r.rows.len();
        let cut = if r.truncated { ", cut at max_rows" } else { "" };
        out.push_str(&format!(
            "({n} row{}{cut})\n",
            if n == 1 { "" } else { "s" }
        ));
    } else if r.error.is_none() {
        match r.rows_affected {
            Some(n) => out.push_str(&format!(
                "OK, {n} row{} affected\n",
                if n == 1 { "" } else { "s" }
            )),
            None => out.push_str("OK\n"),
        }
    }
    for n in &r.notices {
        out.push_str(&format!("NOTICE {n}\n"));
    }
    out
}

/// `portcullis runbooks lint [DIR]`: every problem of every file, `file:line: message`.
pub fn lint_runbooks(dir: Option<PathBuf>, config: Option<&std::path::Path>) -> ExitCode {
    let dir = dir.unwrap_or_else(|| PathBuf::from("runbooks"));
    let (catalog, bad) = match crate::runbook::load(&dir) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    let mut problems = 0;
    if let Some(path) = config {
        match crate::config::Config::load(path) {
            Ok(config) => {
                for (file, line, message) in guarded_runbooks(&dir, &catalog, &config) {
                    problems += 1;
                    eprintln!("{file}:{line}: {message}");
                }
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let blocked = problems;
    for f in &bad {
        for p in &f.problems {
            problems += 1;
            eprintln!("{}:{}: {}", f.path.display(), p.line, p.message);
        }
    }
    let good = catalog.runbooks.len();
    println!(
        "{}: {good} runbook{} ok, {} with problems ({problems} problem{})",
        dir.display(),
        if good == 1 { "" } else { "s" },
        bad.len(),
        if problems == 1 { "" } else { "s" }
    );
    if blocked > 0 {
        eprintln!("{blocked} statement(s) a guardrail would block");
    }
    if bad.is_empty() && good > 0 && blocked == 0 {
        ExitCode::SUCCESS
    } else {
        if good == 0 && bad.is_empty() {
            eprintln!("{}: no runbook files (*.sql)", dir.display());
        }
        ExitCode::FAILURE
    }
}

/// Each runbook statement a guardrail would block on a resource role it may run on, as
/// (file, line, message). Rules are taken for everyone (their groups ignored): a
/// statement blocked for anyone is reported.
fn guarded_runbooks(
    dir: &std::path::Path,
    catalog: &crate::runbook::Catalog,
    config: &crate::config::Config,
) -> Vec<(String, usize, String)> {
    use std::sync::Arc;
    let rules: Vec<Arc<crate::model::Guardrail>> = config
        .guardrails
        .iter()
        .map(|g| {
            let mut g = g.clone();
            g.groups.clear();
            g.except_groups.clear();
            Arc::new(g)
        })
        .collect();
    let mut out = Vec::new();
    for rb in catalog.runbooks.values() {
        for role in config.resource_roles.iter().filter(|r| rb.runs_on(&r.name)) {
            let Some(resource) = config.resources.iter().find(|r| r.name == role.resource) else {
                continue;
            };
            let protocol = resource.protocol;
            let schema = match protocol {
                crate::model::Protocol::Postgres => "public",
                crate::model::Protocol::Mysql => role.database.as_str(),
            };
            let Some(mut guard) =
                crate::guardrail::Guard::new(&rules, &role.name, &[], protocol, schema)
            else {
                continue;
            };
            let mysql = protocol == crate::model::Protocol::Mysql;
            for s in &rb.statements {
                let text =
                    crate::sql::placeholders(&s.text, mysql).map_or(s.text.clone(), |p| p.text);
                if let Some(d) = guard.check(&text).filter(|d| d.block) {
                    let file = dir.join(format!("{}.sql", rb.name)).display().to_string();
                    out.push((
                        file,
                        s.line,
                        format!("on resource role `{}`: {}", role.name, d.message()),
                    ));
                }
            }
        }
    }
    out
}
