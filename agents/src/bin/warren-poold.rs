//! `warren-poold --dir RUN/pools/NAME --root RUN --data-root DATA`: the daemon of one warm
//! pool, started by `warren pool create` (see `warren_agents::pool::daemon`). Exit status:
//! 0 after `shutdown` or SIGTERM, 1 when the pool cannot start.

use std::ffi::OsString;
use std::io::Write;
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
    // The sandboxes' inits are cloned from this binary (CVE-2019-5736).
    warren_runtime::exe_guard::ensure_protected(&argv).context("protect the daemon binary")?;
    if argv
        .get(1)
        .is_some_and(|a| a == warren_agents::pool::sandbox::CREATE_ARG)
    {
        return create(&argv[2..]);
    }
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
        // Our binary as it runs (after the re-exec above it has no path of its own).
        helper: PathBuf::from("/proc/self/exe"),
    })?;
    Ok(())
}

/// `warren-poold __create RUNTIME_ROOT ID BUNDLE`: the daemon's helper that creates one
/// sandbox (single-threaded) and prints its init's pid.
fn create(args: &[OsString]) -> Result<()> {
    let [root, id, bundle] = args else {
        anyhow::bail!("usage: warren-poold __create RUNTIME_ROOT ID BUNDLE");
    };
    let id = id.to_str().context("the id is not UTF-8")?;
    // The container's init inherits fds 0-2: give it /dev/null and keep close-on-exec
    // copies of our stdout and stderr for the answer.
    let keep = |fd: i32| -> Result<std::fs::File> {
        use std::os::fd::FromRawFd;
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) of a standard descriptor returns a new fd.
        let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        anyhow::ensure!(n >= 0, "dup fd {fd}: {}", std::io::Error::last_os_error());
        // SAFETY: a fresh fd we own.
        Ok(unsafe { std::fs::File::from_raw_fd(n) })
    };
    let mut out = keep(1)?;
    let mut err = keep(2)?;
    warren_agents::proc::null_stdio().context("stdio to /dev/null")?;
    match warren_agents::pool::sandbox::create_container(
        std::path::Path::new(root),
        id,
        std::path::Path::new(bundle),
    ) {
        Ok(pid) => {
            writeln!(out, "{pid}")?;
            Ok(())
        }
        Err(e) => {
            let _ = writeln!(err, "{e}");
            std::process::exit(1);
        }
    }
}
