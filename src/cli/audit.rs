//! `portcullis audit …`: `verify` asks the gateway (role-checked) unless given `--dir` or
//! `--config` for an offline copy; `events` asks the gateway; `tail` and `public-key`
//! read the files directly.

use std::io::{BufRead, Seek};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::client::{Client, ClientError};
use super::{AuditCmd, Output, Printed};
use crate::audit::VerifyReport;
use crate::config::Config;

/// Whether `cmd` reads files here rather than asking the gateway.
pub fn local(cmd: &AuditCmd) -> bool {
    match cmd {
        AuditCmd::Verify {
            dir, config, nats, ..
        } => dir.is_some() || config.is_some() || nats.is_some(),
        AuditCmd::Events { .. } => false,
        AuditCmd::PublicKey { .. } | AuditCmd::Tail { .. } => true,
    }
}

/// The commands that ask the gateway.
pub async fn remote(c: &Client, cmd: &AuditCmd, output: Output) -> Result<Printed, ClientError> {
    match cmd {
        AuditCmd::Events {
            kind,
            user,
            since,
            limit,
        } => {
            let mut q = vec![format!("limit={limit}")];
            if let Some(k) = kind {
                q.push(format!("kind={}", super::commands::seg(k)));
            }
            if let Some(u) = user {
                q.push(format!("user={}", super::commands::seg(u)));
            }
            if let Some(s) = since {
                q.push(format!("since={}", super::commands::ago(s)?));
            }
            let events: Vec<serde_json::Value> = c
                .fetch(&format!("/api/audit/events?{}", q.join("&")))
                .await?;
            Ok(Printed::ok(events_text(&events, output)))
        }
        _ => {
            let report: VerifyReport = c.fetch("/api/audit/verify").await?;
            let (out, ok) = report_text(&report, true, output);
            Ok(Printed {
                out,
                err: String::new(),
                failed: !ok,
            })
        }
    }
}

/// Events as a table: when, kind, who, and what (reason, or action and object).
fn events_text(events: &[serde_json::Value], output: Output) -> String {
    let rows: Vec<serde_json::Value> = events
        .iter()
        .map(|e| {
            let what = match e["kind"].as_str() {
                Some("admin_change") => format!(
                    "{} {}",
                    e["action"].as_str().unwrap_or(""),
                    e["object"].as_str().unwrap_or("")
                ),
                _ => e["reason"].as_str().unwrap_or("").to_owned(),
            };
            let who = e["actor"].as_str().or(e["user"].as_str()).unwrap_or("");
            serde_json::json!({
                "ts": e["ts"], "kind": e["kind"], "user": who,
                "client_addr": e["client_addr"], "resource_role": e["resource_role"],
                "what": what,
            })
        })
        .collect();
    let cols = &["ts", "kind", "user", "client_addr", "resource_role", "what"];
    match output {
        Output::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(events).unwrap_or_default()
        ),
        Output::Table => super::table::render(&serde_json::Value::Array(rows), cols),
        Output::Csv => super::table::render_csv(&serde_json::Value::Array(rows), cols),
    }
}

fn load(config: &Option<PathBuf>) -> Result<Config, String> {
    let path = Config::path_from(config.clone());
    Config::load(&path).map_err(|e| e.to_string())
}

fn log_dir(dir: &Option<PathBuf>, config: &Option<PathBuf>) -> Result<PathBuf, String> {
    match dir {
        Some(d) => Ok(d.clone()),
        None => load(config).map(|c| c.audit.dir),
    }
}

pub fn run(cmd: &AuditCmd, output: Output) -> ExitCode {
    let done = match cmd {
        AuditCmd::Verify {
            nats: Some(url),
            stream,
            subject_prefix,
            nats_token,
            ..
        } => {
            let nats = crate::config::NatsConfig {
                url: url.clone(),
                stream: stream.clone(),
                subject_prefix: subject_prefix.clone(),
                token: nats_token.clone().map(crate::config::Secret::new),
                max_age: std::time::Duration::ZERO,
            };
            Ok(verify_nats(&nats, output))
        }
        AuditCmd::Verify {
            dir,
            config,
            public_key,
            max_unsigned,
            ..
        } => checks(config, public_key, *max_unsigned)
            .and_then(|checks| Ok((log_dir(dir, config)?, checks)))
            .map(|(dir, checks)| verify(&dir, &checks, output)),
        AuditCmd::Tail { dir, config } => log_dir(dir, config).map(|d| tail(&d)),
        AuditCmd::Events { .. } => Err("`audit events` asks the gateway".into()),
        AuditCmd::PublicKey { config } => load(config).and_then(|c| {
            let path = c
                .store
                .data_dir
                .join(crate::audit::signing::PUBLIC_KEY_FILE);
            std::fs::read_to_string(&path)
                .map(|k| {
                    println!("{}", k.trim());
                    ExitCode::SUCCESS
                })
                .map_err(|e| {
                    format!(
                        "cannot read {}: {e} (has the gateway started once?)",
                        path.display()
                    )
                })
        }),
    };
    done.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })
}

/// The signature checks `--public-key` asks for.
fn checks(
    config: &Option<PathBuf>,
    public_key: &Option<PathBuf>,
    max_unsigned: Option<u64>,
) -> Result<crate::audit::Checks, String> {
    let Some(file) = public_key else {
        return Ok(crate::audit::Checks::default());
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let key =
        crate::audit::signing::public_key(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let max_unsigned = match max_unsigned {
        Some(n) => n,
        None => {
            let events = load(config).map_or(10_000, |c| c.audit.checkpoint_events);
            crate::audit::max_unsigned(events)
        }
    };
    Ok(crate::audit::Checks {
        public_key: Some(key),
        max_unsigned,
        anchor: None,
    })
}

/// `audit verify --nats`: every instance's chain in the stream.
fn verify_nats(nats: &crate::config::NatsConfig, output: Output) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let found = match runtime {
        Ok(rt) => rt.block_on(crate::audit::ship::verify_stream(nats)),
        Err(e) => Err(e.to_string()),
    };
    let copies = match found {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if copies.is_empty() {
        eprintln!("error: stream `{}` holds no monitoring log", nats.stream);
        return ExitCode::FAILURE;
    }
    let mut all = true;
    for c in &copies {
        let (text, ok) = report_text(&c.report, false, output);
        all &= ok;
        print!("instance {}: {text}", c.instance);
        if c.duplicates > 0 {
            println!(
                "  ({} lines sent twice after an outage, counted once)",
                c.duplicates
            );
        }
    }
    if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn verify(dir: &std::path::Path, checks: &crate::audit::Checks, output: Output) -> ExitCode {
    let report = match crate::audit::verify_with(dir, checks) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    let (out, ok) = report_text(&report, checks.public_key.is_some(), output);
    print!("{out}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A verification as people (or scripts) read it, and whether the log holds.
fn report_text(report: &VerifyReport, signed: bool, output: Output) -> (String, bool) {
    use std::fmt::Write;
    let mut out = String::new();
    if output == Output::Json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
    } else if report.ok {
        let _ = writeln!(
            out,
            "ok: {} lines in {} files, hash chain intact",
            report.lines, report.files
        );
        if signed {
            let _ = writeln!(
                out,
                "signed: {} checkpoints verify; {} lines after the last one",
                report.checkpoints, report.unsigned_tail
            );
        }
        if let Some(seq) = report.anchored_seq {
            let _ = writeln!(
                out,
                "anchored: the log reaches line {seq} recorded in the store"
            );
        }
        if report.truncated_tail {
            let _ = writeln!(
                out,
                "note: the last line of the newest file is incomplete (the process stopped mid-write); it is not part of the chain"
            );
        }
    } else {
        let _ = writeln!(
            out,
            "BROKEN: {}",
            report.first_error.as_deref().unwrap_or("unknown")
        );
    }
    (out, report.ok)
}

/// Follows the newest file, switching when a newer one appears.
fn tail(dir: &std::path::Path) -> ExitCode {
    let mut current: Option<(PathBuf, std::io::BufReader<std::fs::File>)> = None;
    loop {
        let newest = crate::audit::chain::log_files(dir)
            .ok()
            .and_then(|f| f.last().cloned());
        if let Some(path) = newest
            && current.as_ref().is_none_or(|(p, _)| *p != path)
            && let Ok(mut file) = std::fs::File::open(&path)
        {
            if current.is_none() {
                let _ = file.seek(std::io::SeekFrom::End(0));
            }
            current = Some((path, std::io::BufReader::new(file)));
        }
        if let Some((_, reader)) = current.as_mut() {
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                print!("{line}");
                line.clear();
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
