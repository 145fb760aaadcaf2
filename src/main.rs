//! `portcullis`: parse the command line, then run the gateway or one admin command.

use std::process::ExitCode;

use clap::Parser;
use portcullis::cli::{Cli, Command};
use portcullis::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match &cli.command {
        Command::Serve { config } => {
            portcullis::app::init_tracing();
            let path = Config::path_from(config.clone());
            match runtime.block_on(portcullis::app::run(&path)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
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
        _ => match runtime.block_on(portcullis::cli::run_remote(&cli)) {
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
        },
    }
}
