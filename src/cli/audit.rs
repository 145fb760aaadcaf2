//! `portcullis audit verify` and `audit tail`: read the log files directly.

use std::io::{BufRead, Seek};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::{AuditCmd, Output};
use crate::config::Config;

fn log_dir(dir: &Option<PathBuf>, config: &Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(d) = dir {
        return Ok(d.clone());
    }
    let path = Config::path_from(config.clone());
    Config::load(&path)
        .map(|c| c.audit.dir)
        .map_err(|e| e.to_string())
}

pub fn run(cmd: &AuditCmd, output: Output) -> ExitCode {
    let (dir, config) = match cmd {
        AuditCmd::Verify { dir, config } | AuditCmd::Tail { dir, config } => (dir, config),
    };
    let dir = match log_dir(dir, config) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cmd {
        AuditCmd::Verify { .. } => verify(&dir, output),
        AuditCmd::Tail { .. } => tail(&dir),
    }
}

fn verify(dir: &std::path::Path, output: Output) -> ExitCode {
    let report = match crate::audit::verify_dir(dir) {
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
