//! `portcullis`: parse the command line, then run the gateway or one admin command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use portcullis::cli::{Cli, Command};
use portcullis::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Serve { config } => serve(Config::path_from(config.clone())),
        Command::CheckConfig { config } => {
            let path = Config::path_from(config.clone());
            match Config::load(&path) {
                Ok(_) => {
                    println!("{}: ok", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Audit(cmd) if portcullis::cli::audit::local(cmd) => {
            portcullis::cli::audit::run(cmd, cli.output)
        }
        Command::Runbooks(portcullis::cli::RunbooksCmd::Lint { dir, config }) => {
            portcullis::cli::lint_runbooks(dir.clone(), config.as_deref())
        }
        _ => remote(&cli),
    }
}

/// An admin command against a running gateway's API.
fn remote(cli: &Cli) -> ExitCode {
    let printed = runtime(0).and_then(|rt| {
        rt.block_on(portcullis::cli::run_remote(cli))
            .map_err(Into::into)
    });
    match printed {
        Ok(printed) => {
            print!("{}", printed.out);
            eprint!("{}", printed.err);
            if printed.failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The runtime sessions run on: `threads` workers, one per core for 0, and for 1 a single
/// thread that also polls the sockets (no hand-overs between threads: the least CPU a
/// statement, as PgBouncer's one event loop).
fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = match threads {
        1 => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    if threads > 1 {
        builder.worker_threads(threads);
    }
    let built = builder.enable_all().build();
    built.map_err(|e| anyhow::anyhow!("cannot start the runtime: {e}"))
}

/// `portcullis serve`: the config first (`limits.threads` shapes the runtime), then the
/// gateway until it is told to stop.
fn serve(path: PathBuf) -> ExitCode {
    portcullis::app::init_tracing();
    let ran = Config::load(&path)
        .map_err(anyhow::Error::from)
        .and_then(|config| {
            runtime(config.limits.threads)?.block_on(portcullis::app::run(&path, config))
        });
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
