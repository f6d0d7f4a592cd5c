//! `warren`: run sandboxes and experiments. Parses arguments and calls `warren_cli`.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use warren_cli::run::{Network, RunOptions, Volume, parse_size};

#[derive(Parser, Debug)]
#[command(
    name = "warren",
    version,
    about = "Sandboxes and experiments for AI workloads"
)]
struct Cli {
    /// State root.
    #[arg(long, global = true, default_value = "/run/warren")]
    root: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a command in a sandbox (a read-only view of the host when no image is given).
    Run(RunArgs),
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Container name.
    #[arg(long)]
    name: Option<String>,
    /// Environment variable KEY=value (repeatable).
    #[arg(short, long)]
    env: Vec<String>,
    /// Workspace: host directory mounted read-write and used as working directory
    /// (default: the current directory).
    #[arg(short = 'w', long)]
    workdir: Option<PathBuf>,
    /// Bind mount HOST:CONTAINER[:ro|rw] (repeatable).
    #[arg(short = 'v', long = "volume")]
    volume: Vec<String>,
    /// Fresh tmpfs at this path (repeatable).
    #[arg(long)]
    tmpfs: Vec<PathBuf>,
    /// UID[:GID] to run as.
    #[arg(short, long)]
    user: Option<String>,
    /// Memory limit (e.g. 512m, 2g).
    #[arg(long)]
    memory: Option<String>,
    /// CPU limit in CPUs (e.g. 1.5).
    #[arg(long)]
    cpus: Option<f64>,
    /// Maximum number of processes.
    #[arg(long)]
    pids_limit: Option<i64>,
    #[arg(long)]
    cap_add: Vec<String>,
    #[arg(long)]
    cap_drop: Vec<String>,
    /// none (default: own network namespace, loopback only), private, or host.
    #[arg(long, default_value = "none")]
    network: String,
    /// Allocate a terminal.
    #[arg(short, long)]
    tty: bool,
    /// Keep stdin open (the default for a foreground run).
    #[arg(short, long)]
    interactive: bool,
    /// Remove the container when it exits (always true for a foreground run).
    #[arg(long)]
    rm: bool,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

fn parse_user(s: &str) -> Result<(u32, u32)> {
    let (u, g) = s.split_once(':').unwrap_or((s, s));
    Ok((
        u.parse()
            .with_context(|| format!("invalid --user {s:?}: uid must be a number"))?,
        g.parse()
            .with_context(|| format!("invalid --user {s:?}: gid must be a number"))?,
    ))
}

fn run(cli: Cli, argv: &[OsString]) -> Result<i32> {
    match cli.cmd {
        Cmd::Run(a) => {
            // The container's init is a clone of this process: protect our binary first.
            warren_runtime::exe_guard::ensure_protected(argv)?;
            let cwd = std::env::current_dir().context("current directory")?;
            let workspace = match &a.workdir {
                Some(w) => std::fs::canonicalize(cwd.join(w))
                    .with_context(|| format!("invalid -w {}", w.display()))?,
                None => cwd.clone(),
            };
            let o = RunOptions {
                name: a.name,
                command: a.command,
                env: a.env,
                workspace,
                volumes: a
                    .volume
                    .iter()
                    .map(|v| Volume::parse(v, &cwd))
                    .collect::<Result<_, _>>()?,
                tmpfs: a.tmpfs,
                user: a.user.as_deref().map(parse_user).transpose()?,
                memory: a
                    .memory
                    .as_deref()
                    .map(|m| parse_size("--memory", m))
                    .transpose()?,
                cpus: a.cpus,
                pids_limit: a.pids_limit,
                cap_add: a.cap_add,
                cap_drop: a.cap_drop,
                network: a.network.parse::<Network>()?,
                tty: a.tty,
                state_root: cli.root,
            };
            let _ = (a.interactive, a.rm);
            Ok(warren_cli::run::run(&o)?)
        }
    }
}

fn main() {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let cli = Cli::parse_from(&argv);
    match run(cli, &argv) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("warren: {e:#}");
            std::process::exit(125)
        }
    }
}
