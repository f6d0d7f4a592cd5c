//! `warren-swarmd --dir RUN/swarms/NAME --root RUN --data-root DATA`: the supervisor of one
//! swarm, started by `warren swarm up` (see `warren_agents::swarm::supervisor`). Exit
//! status: 0 after `down` or SIGTERM, 1 when the swarm could not come up (the reason is in
//! state.json for `swarm up` to report).

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "warren-swarmd", about = "The supervisor of one warren swarm")]
struct Args {
    /// The swarm's run directory (state.json).
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value = "/run/warren")]
    root: PathBuf,
    #[arg(long, default_value = "/var/lib/warren")]
    data_root: PathBuf,
    #[arg(long, default_value = "info")]
    log_level: String,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("warren-swarmd: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let argv: Vec<OsString> = std::env::args_os().collect();
    warren_runtime::exe_guard::ensure_protected(&argv).context("protect the supervisor binary")?;
    let a = Args::parse();
    let roots = warren_agents::Roots::new(&a.root, &a.data_root);
    // Our own log: a file, never fds 1 and 2 (the agents' pipes go there during create).
    let log_file = {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: dup of fd 2 (the log file `swarm up` gave us) into a new fd we own.
        let fd = unsafe { libc::dup(std::io::stderr().as_raw_fd()) };
        anyhow::ensure!(fd >= 0, "dup stderr");
        // SAFETY: a fresh fd from dup.
        unsafe { std::fs::File::from_raw_fd(fd) }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&a.log_level))
        .with_writer(std::sync::Mutex::new(log_file))
        .with_ansi(false)
        .init();
    warren_agents::proc::null_stdio().context("stdio to /dev/null")?;
    let sup = warren_agents::swarm::supervisor::Supervisor::new(
        &a.dir,
        &roots,
        warren_agents::cmd::Tools::default(),
    )?;
    sup.run()?;
    Ok(())
}
