//! `warren-poold --dir RUN/pools/NAME --root RUN --data-root DATA`: the daemon of one warm
//! pool, started by `warren pool create` (see `warren_agents::pool::daemon`). Exit status:
//! 0 after `shutdown` or SIGTERM, 1 when the pool cannot start.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "warren-poold", about = "The daemon of one warren sandbox pool")]
struct Args {
    /// The pool's directory (pool.json, the init, the sockets).
    #[arg(long)]
    dir: PathBuf,
    /// warren's runtime state root (the runtime's state is ROOT/runtime).
    #[arg(long, default_value = "/run/warren")]
    root: PathBuf,
    /// warren's data root (the image store).
    #[arg(long, default_value = "/var/lib/warren")]
    data_root: PathBuf,
    /// Log level (error, warn, info, debug, trace).
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("warren-poold: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // The sandboxes' inits are cloned from this process (CVE-2019-5736).
    warren_runtime::exe_guard::ensure_protected(&argv).context("protect the daemon binary")?;
    let a = Args::parse();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(a.dir.join("poold.log"))
        .with_context(|| format!("open the log in {}", a.dir.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&a.log_level))
        .with_writer(std::sync::Mutex::new(log))
        .with_ansi(false)
        .init();
    // The sandboxes inherit fds 0-2: they must be /dev/null, never a terminal or a log.
    warren_agents::proc::null_stdio().context("stdio to /dev/null")?;
    warren_agents::pool::daemon::block_signals()?;
    let roots = warren_agents::Roots::new(&a.root, &a.data_root);
    warren_agents::pool::daemon::run(&warren_agents::pool::daemon::DaemonOptions {
        dir: a.dir,
        runtime_root: roots.runtime_root(),
        data_root: roots.data.clone(),
    })?;
    Ok(())
}
