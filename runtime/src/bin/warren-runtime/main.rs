//! `warren-runtime`: the runc-compatible OCI runtime binary. Parses runc's command line,
//! sets up logging and calls the library; exit status 1 on any runtime error (as runc),
//! 2 on a usage error, and the container's own status for `run` and `exec`.

mod cli;
mod dispatch;
mod log;

use std::ffi::OsString;
use std::io::Write;

use clap::Parser;
use tracing_subscriber::layer::SubscriberExt;

fn main() {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let cli = match cli::Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let log_file = match &cli.log {
        Some(p) if p.as_os_str() != "/dev/stderr" => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
        {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("warren-runtime: open log file {}: {e}", p.display());
                std::process::exit(1);
            }
        },
        _ => None,
    };
    let to_stderr = log_file.is_none();
    let json = cli.log_format == "json";
    // WARREN_RUNTIME_DEBUG_LIBCONTAINER=1 with --debug also shows libcontainer's own logs.
    let lc_debug = cli.debug && std::env::var_os("WARREN_RUNTIME_DEBUG_LIBCONTAINER").is_some();
    let subscriber =
        tracing_subscriber::registry().with(log::RuncLog::new(log_file, json, cli.debug, lc_debug));
    let _ = tracing::subscriber::set_global_default(subscriber);

    // runc exits 255 when exec itself fails, so callers can tell that from the process's
    // own exit status; every other runtime error is 1.
    let error_code = if matches!(cli.cmd, Some(cli::Cmd::Exec(_))) {
        255
    } else {
        1
    };
    match dispatch::run(cli, &argv) {
        Ok(code) => {
            let _ = std::io::stdout().flush();
            std::process::exit(code)
        }
        Err(e) => {
            let msg = format!("{e:#}");
            tracing::error!("{msg}");
            if !to_stderr {
                // runc prints the error on stderr too when the log goes elsewhere.
                eprintln!("{msg}");
            }
            std::process::exit(error_code)
        }
    }
}
