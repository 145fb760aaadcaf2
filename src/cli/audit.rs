//! `portcullis audit verify` and `audit tail`: read the log files directly.

use std::io::{BufRead, Seek};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::{AuditCmd, Output};
use crate::config::Config;

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
            dir,
            config,
            public_key,
            max_unsigned,
        } => checks(config, public_key, *max_unsigned)
            .and_then(|checks| Ok((log_dir(dir, config)?, checks)))
            .map(|(dir, checks)| verify(&dir, &checks, output)),
        AuditCmd::Tail { dir, config } => log_dir(dir, config).map(|d| tail(&d)),
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

fn verify(dir: &std::path::Path, checks: &crate::audit::Checks, output: Output) -> ExitCode {
    let report = match crate::audit::verify_with(dir, checks) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    if output == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else if report.ok {
        println!(
            "ok: {} lines in {} files, hash chain intact",
            report.lines, report.files
        );
        if checks.public_key.is_some() {
            println!(
                "signed: {} checkpoints verify; {} lines after the last one",
                report.checkpoints, report.unsigned_tail
            );
        }
        if report.truncated_tail {
            println!(
                "note: the last line of the newest file is incomplete (the process stopped mid-write); it is not part of the chain"
            );
        }
    } else {
        println!(
            "BROKEN: {}",
            report.first_error.as_deref().unwrap_or("unknown")
        );
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
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
