//! `warren`: run sandboxes and experiments. Parses arguments and calls `warren_cli`.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use warren_cli::exit::WARREN_ERROR;
use warren_cli::run::{
    Network, ProfileRef, RunOptions, Volume, parse_env_file, parse_size, parse_user,
};
use warren_cli::state::Roots;

/// Environment variable carrying the path of the `warren` binary across the
/// CVE-2019-5736 re-exec (after which `/proc/self/exe` is a detached mount).
const EXE_ENV: &str = "WARREN_EXE";

#[derive(Parser, Debug)]
#[command(
    name = "warren",
    version,
    about = "Sandboxes and experiments for AI workloads"
)]
struct Cli {
    /// Runtime state root (tmpfs): runtime state, bundles, exit files.
    #[arg(long, global = true, default_value = "/run/warren")]
    root: PathBuf,
    /// Persistent data root: records, logs, names, the event journal, images.
    #[arg(long, global = true, default_value = "/var/lib/warren")]
    data_root: PathBuf,
    /// Log level of warren's own messages (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "warn")]
    log_level: String,
    /// Log format of warren's own messages (text or json).
    #[arg(long, global = true, default_value = "text")]
    log_format: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run a command (or a script file) in a sandbox.
    Run(Box<RunArgs>),
    /// List sandboxes.
    Ps {
        /// Show all sandboxes, also exited ones.
        #[arg(short, long)]
        all: bool,
        /// table or json.
        #[arg(long, default_value = "table")]
        format: String,
        /// Only ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show the logs of a detached sandbox.
    Logs {
        /// Keep printing new output until the sandbox exits.
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(long)]
        tail: Option<usize>,
        /// Prefix each line with its timestamp.
        #[arg(short, long)]
        timestamps: bool,
        name: String,
    },
    /// Run a command in a running sandbox.
    Exec(ExecArgs),
    /// Stop sandboxes: SIGTERM, then SIGKILL after the timeout.
    Stop {
        /// Seconds to wait before SIGKILL.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove sandboxes.
    Rm {
        /// Kill running sandboxes first.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show a sandbox's configuration, state and profile as JSON.
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Show lifecycle events (create, start, oom, die, stop, rm).
    Events {
        /// Keep printing new events.
        #[arg(short, long)]
        follow: bool,
        /// text or json.
        #[arg(long, default_value = "text")]
        format: String,
        /// Only events of this sandbox (name or id prefix).
        #[arg(long)]
        filter: Option<String>,
    },
    /// Resource use of running sandboxes.
    Stats {
        /// Print one reading and exit.
        #[arg(long)]
        no_stream: bool,
        /// table or json.
        #[arg(long, default_value = "table")]
        format: String,
        /// Seconds between readings.
        #[arg(long, default_value_t = 1.0)]
        interval: f64,
        /// Sandboxes (default: all running).
        names: Vec<String>,
    },
    /// Live dashboard of every sandbox (keys: c m n sort, / filter, l or enter logs, s stop, q quit).
    Top {
        /// Milliseconds between refreshes.
        #[arg(long, default_value_t = 1000)]
        interval: u64,
    },
    /// Import a root filesystem tarball as a one-layer image (like `podman import`).
    Import { tarball: PathBuf, name: String },
    /// Measure what the sandbox costs, side by side with runc and crun (report + plots).
    Bench(BenchArgs),
    /// Manage images: ls, rm, import, export, pull, build, gc.
    #[command(subcommand)]
    Images(ImagesCmd),
    /// GPUs and other devices: what `--gpus`/`--device` can name, and CDI specs for them.
    #[command(subcommand)]
    Gpu(GpuCmd),
    /// Kubernetes: warren-runtime as a CRI runtime handler (containerd, CRI-O).
    #[command(subcommand)]
    Cri(CriCmd),
    /// Agent teams: a sandbox per agent on the swarm's own private network (swarm.toml).
    #[command(subcommand)]
    Swarm(SwarmCmd),
    /// Warm sandbox pools: commands in a ready sandbox in about a millisecond.
    #[command(subcommand)]
    Pool(PoolCmd),
    /// Run by a sandbox's monitor after the sandbox exited.
    #[command(name = "__cleanup", hide = true)]
    Cleanup { id: String },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Run in the background under a monitor; print the sandbox id.
    #[arg(short, long)]
    detach: bool,
    /// Sandbox name (default: w-<id prefix>).
    #[arg(long)]
    name: Option<String>,
    /// Environment variable KEY=value (repeatable).
    #[arg(short, long)]
    env: Vec<String>,
    /// File of KEY=value lines (repeatable).
    #[arg(long)]
    env_file: Vec<PathBuf>,
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
    /// Read-only root filesystem and workspace (only /tmp and tmpfs mounts are writable).
    #[arg(long)]
    read_only: bool,
    /// Add a capability (CAP_X, X or ALL; repeatable).
    #[arg(long)]
    cap_add: Vec<String>,
    /// Drop a capability (repeatable).
    #[arg(long)]
    cap_drop: Vec<String>,
    /// none (own network namespace, no connectivity; the default), private (own
    /// namespace, loopback) or host.
    #[arg(long)]
    network: Option<String>,
    /// Allocate a terminal.
    #[arg(short, long)]
    tty: bool,
    /// Keep stdin open (a foreground run always has it).
    #[arg(short, long)]
    interactive: bool,
    /// Remove the sandbox when it exits (a foreground run always is).
    #[arg(long)]
    rm: bool,
    /// Sandbox profile: a built-in (agent, experiment, trusted) or a TOML file.
    #[arg(long)]
    profile: Option<String>,
    /// GPUs: all, a count, or device=0,1 (NVIDIA).
    #[arg(long)]
    gpus: Option<String>,
    /// CDI device vendor/class=name (repeatable).
    #[arg(long)]
    device: Vec<String>,
    /// Image from the store (default: a read-only view of the host).
    #[arg(long)]
    image: Option<String>,
    /// Log size cap of a detached sandbox (rotated past it), e.g. 10m.
    #[arg(long)]
    log_max_size: Option<String>,
    /// Command and arguments, or a script file (.py .R .jl .go .rs .cpp .cc .sh) and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum GpuCmd {
    /// NVIDIA GPUs and MIG devices (NVML), RDMA, AMD and TPU devices (sysfs), and the
    /// names in the CDI registry.
    Ls {
        /// table or json.
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Generate CDI specs for this host (as `nvidia-ctk cdi generate`, plus RDMA, AMD, TPU).
    Cdi {
        /// nvidia, rdma, amd, tpu or all.
        #[arg(long, default_value = "all")]
        kind: String,
        /// yaml or json.
        #[arg(long, default_value = "yaml", value_parser = ["yaml", "json"])]
        format: String,
        /// Write the spec here (e.g. /etc/cdi/nvidia.yaml) instead of to stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Emit no hooks: warren-runtime does the NVIDIA createContainer work itself
        /// (without it the spec names nvidia-ctk's hooks, as nvidia-ctk writes it, so
        /// that runc and crun can use it too).
        #[arg(long)]
        builtin_hooks: bool,
        /// Driver root (e.g. /run/nvidia/driver with the GPU operator).
        #[arg(long, default_value = "/")]
        driver_root: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum CriCmd {
    /// Register the runtime handler in containerd's config (or a CRI-O drop-in) and print
    /// the RuntimeClass; idempotent, keeps a backup.
    Install(CriInstallArgs),
    /// Check the node: engine version, the handler, annotations, CDI, warren-runtime.
    Status(CriStatusArgs),
}

#[derive(clap::Args, Debug)]
struct CriInstallArgs {
    /// Config to edit (default /etc/containerd/config.toml; with --crio
    /// /etc/crio/crio.conf.d/99-warren.conf).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Write CRI-O's drop-in instead of containerd's config.
    #[arg(long)]
    crio: bool,
    /// warren-runtime to register (default: beside warren, else on PATH).
    #[arg(long)]
    runtime: Option<PathBuf>,
    /// Handler name, the RuntimeClass's `handler`.
    #[arg(long, default_value = "warren")]
    handler: String,
    /// Print the change as a unified diff; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Restore the backup kept by the first install.
    #[arg(long)]
    uninstall: bool,
}

#[derive(clap::Args, Debug)]
struct CriStatusArgs {
    /// Config to check (default as for install).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Check CRI-O's drop-in instead of containerd's config.
    #[arg(long)]
    crio: bool,
    /// Handler name.
    #[arg(long, default_value = "warren")]
    handler: String,
    /// The engine binary asked for its version (default containerd, or crio).
    #[arg(long)]
    engine_binary: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct ExecArgs {
    #[arg(short, long)]
    interactive: bool,
    #[arg(short, long)]
    tty: bool,
    #[arg(short, long)]
    env: Vec<String>,
    #[arg(short, long)]
    user: Option<String>,
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    name: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

fn exe_path() -> PathBuf {
    std::env::var_os(EXE_ENV)
        .map(PathBuf::from)
        .or_else(|| std::env::current_exe().ok())
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin/warren"))
}

/// Protects our binary before a sandbox process is cloned from us, remembering where the
/// binary really is (the monitor and its cleanup command need it).
fn protect(argv: &[OsString]) -> Result<()> {
    if std::env::var_os(EXE_ENV).is_none()
        && let Ok(p) = std::env::current_exe()
    {
        // SAFETY: no other thread exists yet; nothing reads the environment concurrently.
        unsafe { std::env::set_var(EXE_ENV, p) };
    }
    warren_runtime::exe_guard::ensure_protected(argv)?;
    Ok(())
}

fn run_options(a: RunArgs, roots: &Roots) -> Result<RunOptions> {
    let cwd = std::env::current_dir().context("current directory")?;
    let workspace = match &a.workdir {
        Some(w) => std::fs::canonicalize(cwd.join(w))
            .with_context(|| format!("invalid -w {}", w.display()))?,
        None => cwd.clone(),
    };
    let mut env = Vec::new();
    for f in &a.env_file {
        env.extend(parse_env_file(&cwd.join(f), &|k| std::env::var(k).ok())?);
    }
    env.extend(a.env);
    let mut o = RunOptions {
        name: a.name,
        command: a.command,
        env,
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
        read_only: a.read_only,
        cap_add: a.cap_add,
        cap_drop: a.cap_drop,
        network: a
            .network
            .as_deref()
            .map(str::parse::<Network>)
            .transpose()?,
        tty: a.tty,
        interactive: a.interactive,
        detach: a.detach,
        auto_remove: a.rm,
        profile: a.profile.as_deref().map(ProfileRef::parse),
        gpus: a.gpus,
        devices: a.device,
        image: a.image,
        log_max: a
            .log_max_size
            .as_deref()
            .map(|s| parse_size("--log-max-size", s))
            .transpose()?
            .unwrap_or(0) as u64,
        script: None,
    };
    if o.command.is_empty() && o.image.is_none() {
        bail!("nothing to run: give a command after -- or a script file");
    }
    script_mode(&mut o, &cwd, roots)?;
    Ok(o)
}

/// `warren run FILE`: the image and command of the script's language, or the host view.
fn script_mode(o: &mut RunOptions, cwd: &Path, roots: &Roots) -> Result<()> {
    let Some((script, lang)) = warren_cli::script::detect(&o.command, cwd) else {
        return Ok(());
    };
    if o.image.is_none() {
        if warren_cli::run::image_exists(&roots.data_root, lang.image) {
            o.image = Some(format!("warren/{}", lang.image));
        } else if warren_cli::script::host_has(lang.tool, Path::new("/")) {
            eprintln!(
                "warren: image warren/{} is not built; running {} on the host view with the host's {}",
                lang.image,
                script.display(),
                lang.tool
            );
        } else {
            return Err(anyhow::Error::new(NotFound(format!(
                "cannot run {}: image warren/{} is not built and the host has no {} (build the image or install {})",
                script.display(),
                lang.image,
                lang.tool,
                lang.tool
            ))));
        }
    }
    // The script must be visible inside: it is when it lies in the workspace; otherwise
    // its directory is mounted read-only at the same path.
    if !script.starts_with(&o.workspace)
        && let Some(dir) = script.parent()
    {
        o.volumes.push(Volume {
            host: dir.to_owned(),
            container: dir.to_owned(),
            read_only: true,
        });
    }
    o.script = Some(format!(
        "{} ({})",
        script.display(),
        o.image.clone().unwrap_or_else(|| "host view".into())
    ));
    let args: Vec<String> = o.command.iter().skip(1).cloned().collect();
    o.command = warren_cli::script::command(lang, &script, &args);
    Ok(())
}

/// An error that exits with 127.
#[derive(Debug)]
struct NotFound(String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFound {}

fn cmd_run(a: RunArgs, roots: &Roots, argv: &[OsString]) -> Result<i32> {
    // The sandbox's init is a clone of this process (or of its monitor child).
    protect(argv)?;
    let o = run_options(a, roots)?;
    let p = warren_cli::run::prepare(roots, &o)?;
    if o.detach {
        let id = warren_cli::run::run_detached(p, &exe_path())?;
        println!("{id}");
        return Ok(0);
    }
    match warren_cli::run::run_foreground(p) {
        Ok(code) => Ok(code),
        Err(e) => {
            let code = warren_cli::run::start_error_code(&e);
            if code != WARREN_ERROR {
                eprintln!("warren: {e}");
                return Ok(code);
            }
            Err(e.into())
        }
    }
}

fn cmd_ps(roots: &Roots, all: bool, format: &str, quiet: bool) -> Result<i32> {
    let list = warren_cli::sandbox::list(roots, all)?;
    let now = warren_cli::timefmt::now().0;
    let mut out = std::io::stdout().lock();
    match (quiet, format) {
        (true, _) => {
            for i in &list {
                writeln!(out, "{}", i.record.id)?;
            }
        }
        (false, "json") => {
            let v: Vec<_> = list.iter().map(|i| i.to_json(now)).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        (false, "table") => {
            writeln!(
                out,
                "{:<12}  {:<20}  {:<28}  {:<24}  {:<14}  {:<10}  {:<8}  COMMAND",
                "ID", "NAME", "STATUS", "IMAGE", "PROFILE", "GPUS", "CREATED"
            )?;
            for i in &list {
                let r = &i.record;
                writeln!(
                    out,
                    "{:<12}  {:<20}  {:<28}  {:<24}  {:<14}  {:<10}  {:<8}  {}",
                    &r.id[..12],
                    r.name,
                    i.status_text(now),
                    r.image.as_deref().unwrap_or("(host view)"),
                    r.profile.as_deref().unwrap_or("-"),
                    r.gpus.as_deref().unwrap_or("-"),
                    format!(
                        "{} ago",
                        warren_cli::timefmt::human_duration(now.saturating_sub(r.created))
                    ),
                    warren_cli::stats::truncate(&r.command.join(" "), 40)
                )?;
            }
        }
        (false, f) => bail!("invalid --format {f:?}: expected table or json"),
    }
    Ok(0)
}

fn cmd_exec(a: ExecArgs, roots: &Roots, argv: &[OsString]) -> Result<i32> {
    protect(argv)?;
    let o = warren_cli::exec::ExecOptions {
        command: a.command,
        env: a.env,
        user: a.user.as_deref().map(parse_user).transpose()?,
        workdir: a.workdir,
        tty: a.tty,
        interactive: a.interactive,
    };
    match warren_cli::exec::exec(roots, &a.name, &o) {
        Ok(c) => Ok(c),
        Err(warren_cli::exec::ExecError::Runtime(e)) => {
            let e = warren_cli::run::RunError::Runtime(e);
            let code = warren_cli::run::start_error_code(&e);
            eprintln!("warren: {e}");
            Ok(code)
        }
        Err(e) => Err(e.into()),
    }
}

fn cmd_stats(
    roots: &Roots,
    no_stream: bool,
    format: &str,
    interval: f64,
    names: &[String],
) -> Result<i32> {
    if !matches!(format, "table" | "json") {
        bail!("invalid --format {format:?}: expected table or json");
    }
    if !(interval > 0.0 && interval.is_finite()) {
        bail!("invalid --interval {interval}: must be positive");
    }
    let ids: Vec<String> = names
        .iter()
        .map(|n| warren_cli::state::resolve(roots, n))
        .collect::<Result<_, _>>()?;
    let gpus = warren_cli::stats::Gpus::probe();
    let mut prev: std::collections::HashMap<String, warren_cli::stats::Sample> = Default::default();
    let proc_root = Path::new("/proc");
    let read = |prev: &std::collections::HashMap<String, warren_cli::stats::Sample>| -> Result<Vec<warren_cli::stats::Sample>> {
        let infos = if ids.is_empty() {
            warren_cli::sandbox::list(roots, false)?
        } else {
            ids.iter().map(|id| warren_cli::sandbox::info(roots, id)).collect::<Result<_, _>>()?
        };
        Ok(infos
            .iter()
            .filter_map(|i| warren_cli::stats::sample(i, &gpus, prev.get(&i.record.id), proc_root))
            .collect())
    };
    // CPU % needs two readings: the first is a baseline.
    for s in read(&prev)? {
        prev.insert(s.id.clone(), s);
    }
    loop {
        std::thread::sleep(Duration::from_secs_f64(if no_stream {
            interval.min(0.5)
        } else {
            interval
        }));
        let samples = read(&prev)?;
        let mut out = std::io::stdout().lock();
        if format == "json" {
            let v = serde_json::json!({"gpu": gpus.reason.clone().unwrap_or_else(|| "present".into()), "sandboxes": samples});
            writeln!(out, "{}", serde_json::to_string(&v)?)?;
        } else {
            if !no_stream {
                write!(out, "\x1b[2J\x1b[H")?;
            }
            writeln!(out, "{}", warren_cli::stats::TABLE_HEADER)?;
            for s in &samples {
                writeln!(out, "{}", warren_cli::stats::table_row(s, &gpus))?;
            }
        }
        out.flush()?;
        prev = samples.into_iter().map(|s| (s.id.clone(), s)).collect();
        if no_stream {
            return Ok(0);
        }
    }
}

fn cmd_gpu(c: GpuCmd) -> Result<i32> {
    use warren_cli::gpu::{self, CdiOptions, GpuRoots};
    let mut roots = GpuRoots::host();
    // As warren-runtime: CDI spec directories, colon-separated, increasing priority.
    if let Some(dirs) = std::env::var_os("WARREN_CDI_SPEC_DIRS") {
        roots.cdi_dirs = std::env::split_paths(&dirs).collect();
    }
    let mut out = std::io::stdout().lock();
    match c {
        GpuCmd::Ls { format } => {
            gpu::ls(&roots, format == "json", &mut out)?;
            Ok(0)
        }
        GpuCmd::Cdi {
            kind,
            format,
            output,
            builtin_hooks,
            driver_root,
        } => {
            roots.nvidia.driver_root = driver_root;
            let o = CdiOptions {
                kind,
                json: format == "json",
                output: output.clone(),
                builtin_hooks,
            };
            let (found, absent) = gpu::cdi_generate(&roots, &o, &mut out)?;
            for a in &absent {
                eprintln!("{a}");
            }
            if let (Some(p), true) = (&output, found > 0) {
                eprintln!("wrote {found} spec(s) to {}", p.display());
            }
            Ok(if found > 0 { 0 } else { 1 })
        }
    }
}

fn cmd_cri(c: CriCmd) -> Result<i32> {
    use warren_cli::cri::{self, Engine};
    let engine = |crio| {
        if crio {
            Engine::Crio
        } else {
            Engine::Containerd
        }
    };
    match c {
        CriCmd::Install(a) => {
            let engine = engine(a.crio);
            let exe = std::env::current_exe().ok();
            let runtime = a.runtime.unwrap_or_else(|| {
                cri::default_runtime(
                    exe.as_deref().and_then(Path::parent),
                    std::env::var_os("PATH").as_deref(),
                )
            });
            let o = cri::InstallOptions {
                engine,
                config: a
                    .config
                    .unwrap_or_else(|| engine.default_config().to_owned()),
                handler: cri::Handler::new(&a.handler, &runtime),
                dry_run: a.dry_run,
                uninstall: a.uninstall,
            };
            let r = cri::install(&o)?;
            if o.dry_run {
                print!("{}", r.diff);
            }
            eprintln!("warren: {}", r.summary(&o));
            if !o.uninstall && !o.dry_run {
                print!("{}", cri::runtime_class(&o.handler.name));
            }
            Ok(0)
        }
        CriCmd::Status(a) => {
            let engine = engine(a.crio);
            let o = cri::StatusOptions {
                engine,
                config: a
                    .config
                    .unwrap_or_else(|| engine.default_config().to_owned()),
                handler: a.handler,
                engine_binary: a
                    .engine_binary
                    .unwrap_or_else(|| PathBuf::from(if a.crio { "crio" } else { "containerd" })),
            };
            let r = cri::status(&o);
            print!("{}", r.render());
            Ok(if r.ok() { 0 } else { 1 })
        }
    }
}

fn dispatch(cli: Cli, argv: &[OsString]) -> Result<i32> {
    let roots = Roots {
        root: cli.root,
        data_root: cli.data_root,
    };
    match cli.cmd {
        Cmd::Run(a) => cmd_run(*a, &roots, argv),
        Cmd::Ps { all, format, quiet } => cmd_ps(&roots, all, &format, quiet),
        Cmd::Logs {
            follow,
            tail,
            timestamps,
            name,
        } => {
            let o = warren_cli::logs::LogsOptions {
                follow,
                tail,
                timestamps,
            };
            warren_cli::logs::logs(
                &roots,
                &name,
                &o,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            )?;
            Ok(0)
        }
        Cmd::Exec(a) => cmd_exec(a, &roots, argv),
        Cmd::Stop { time, names } => {
            let mut code = 0;
            for n in names {
                match warren_cli::remove::stop(&roots, &n, Duration::from_secs(time)) {
                    Ok(_) => println!("{n}"),
                    Err(e) => {
                        eprintln!("warren: stop {n}: {e}");
                        code = WARREN_ERROR;
                    }
                }
            }
            Ok(code)
        }
        Cmd::Rm { force, names } => {
            let mut code = 0;
            for n in names {
                match warren_cli::remove::rm(&roots, &n, force) {
                    Ok(_) => println!("{n}"),
                    Err(e) => {
                        eprintln!("warren: rm {n}: {e}");
                        code = WARREN_ERROR;
                    }
                }
            }
            Ok(code)
        }
        Cmd::Inspect { names } => {
            let v: Vec<serde_json::Value> = names
                .iter()
                .map(|n| warren_cli::inspect::inspect(&roots, n))
                .collect::<Result<_, _>>()?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(0)
        }
        Cmd::Events {
            follow,
            format,
            filter,
        } => {
            if !matches!(format.as_str(), "text" | "json") {
                bail!("invalid --format {format:?}: expected text or json");
            }
            let o = warren_cli::events::EventsOptions {
                follow,
                json: format == "json",
                filter,
            };
            warren_cli::events::events(&roots, &o, &mut std::io::stdout())?;
            Ok(0)
        }
        Cmd::Stats {
            no_stream,
            format,
            interval,
            names,
        } => cmd_stats(&roots, no_stream, &format, interval, &names),
        Cmd::Top { interval } => {
            warren_cli::top::run(&roots, Duration::from_millis(interval.max(100)))?;
            Ok(0)
        }
        Cmd::Images(c) => cmd_images(&roots, c),
        Cmd::Bench(b) => cmd_bench(b),
        Cmd::Import { tarball, name } => {
            let store = warren_images::Store::open(&roots.data_root)?;
            let info = store.import_rootfs(&tarball, &name)?;
            println!("{} {}", info.name, info.digest);
            Ok(0)
        }
        Cmd::Gpu(c) => cmd_gpu(c),
        Cmd::Cri(c) => cmd_cri(c),
        Cmd::Swarm(c) => cmd_swarm(c, &roots),
        Cmd::Pool(c) => cmd_pool(c, &roots),
        Cmd::Cleanup { id } => {
            warren_cli::remove::cleanup(&roots, &id)?;
            Ok(0)
        }
    }
}

fn init_logging(level: &str, format: &str) -> Result<()> {
    // A level, or tracing's directives (`warren_runtime=debug,info`).
    let simple = ["off", "error", "warn", "info", "debug", "trace"];
    if !simple.contains(&level) && !level.contains('=') {
        bail!("invalid --log-level {level:?}: expected error, warn, info, debug or trace");
    }
    let filter = tracing_subscriber::EnvFilter::try_new(level).with_context(|| {
        format!("invalid --log-level {level:?}: expected error, warn, info, debug or trace")
    })?;
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        "text" => b.try_init(),
        "json" => b.json().try_init(),
        f => bail!("invalid --log-format {f:?}: expected text or json"),
    }
    .map_err(|e| anyhow::anyhow!("set up logging: {e}"))
}

/// The error and its causes, each cause only once (our messages often quote theirs).
fn message(e: &anyhow::Error) -> String {
    let mut m = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !m.contains(&c) {
            m.push_str(": ");
            m.push_str(&c);
        }
    }
    m
}

fn main() {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { WARREN_ERROR } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if let Err(e) = init_logging(&cli.log_level, &cli.log_format) {
        eprintln!("warren: {e:#}");
        std::process::exit(WARREN_ERROR);
    }
    match dispatch(cli, &argv) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("warren: {}", message(&e));
            let code = if e.downcast_ref::<NotFound>().is_some() {
                127
            } else {
                WARREN_ERROR
            };
            std::process::exit(code)
        }
    }
}

#[derive(Subcommand, Debug)]
enum ImagesCmd {
    /// List images.
    Ls {
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
    },
    /// Remove images (their blobs go at the next gc).
    Rm { names: Vec<String> },
    /// Import an OCI archive or a `docker save`/`podman save` archive.
    Import {
        file: PathBuf,
        /// Name for the image (when the archive holds one).
        #[arg(long)]
        name: Option<String>,
    },
    /// Export images to an OCI archive (or docker-archive).
    Export {
        names: Vec<String>,
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, default_value = "oci", value_parser = ["oci", "docker"])]
        format: String,
    },
    /// Pull from a registry.
    Pull {
        reference: String,
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        password: Option<String>,
        /// Plain HTTP (a loopback registry).
        #[arg(long)]
        insecure: bool,
    },
    /// Build a curated image (and its parents) from its recipe.
    Build {
        name: String,
        /// Recipe directory (default: the installed or source tree recipes).
        #[arg(long)]
        recipes: Option<PathBuf>,
        #[arg(long)]
        no_cache: bool,
        /// Show the steps' output.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Delete blobs and unpacked layers no image uses.
    Gc,
}

fn cmd_images(roots: &warren_cli::state::Roots, c: ImagesCmd) -> Result<i32> {
    use warren_cli::images;
    let store = warren_images::Store::open(&roots.data_root)?;
    let mut out = std::io::stdout();
    match c {
        ImagesCmd::Ls { format } => images::ls(&store, format == "json", &mut out)?,
        ImagesCmd::Rm { names } => {
            for n in names {
                store.remove(&n)?;
                println!("{n}");
            }
        }
        ImagesCmd::Import { file, name } => {
            for l in images::import(&store, &file, name)? {
                println!("{l}");
            }
        }
        ImagesCmd::Export {
            names,
            output,
            format,
        } => images::export(&store, &names, &output, &format)?,
        ImagesCmd::Pull {
            reference,
            user,
            password,
            insecure,
        } => {
            println!(
                "{}",
                images::pull(&store, &reference, user, password, insecure)?
            );
        }
        ImagesCmd::Build {
            name,
            recipes,
            no_cache,
            verbose,
        } => {
            let exe = std::env::current_exe().context("locate the warren binary")?;
            // warren-runtime next to warren (an install), else on PATH.
            let mut candidates = vec![exe.with_file_name("warren-runtime")];
            if let Some(path) = std::env::var_os("PATH") {
                candidates.extend(std::env::split_paths(&path).map(|d| d.join("warren-runtime")));
            }
            let runtime = candidates
                .into_iter()
                .find(|p| p.is_file())
                .context("warren-runtime not found next to warren or on PATH")?;
            let dir = images::recipes_dir(recipes, &exe);
            let line = images::build_image(
                &store,
                &dir,
                &name,
                &runtime,
                &roots.root.join("build-runtime"),
                no_cache,
                verbose,
                &mut std::io::stderr(),
            )?;
            println!("{line}");
        }
        ImagesCmd::Gc => {
            let r = store.gc()?;
            println!("{r:?}");
        }
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
struct BenchArgs {
    /// Under a minute.
    #[arg(long)]
    quick: bool,
    /// Thorough (several minutes).
    #[arg(long)]
    full: bool,
    /// Runtimes to compare with, comma-separated (those not installed are skipped).
    #[arg(long, default_value = "runc,crun")]
    vs: String,
    /// Report directory (report.md, results.json, PNG plots).
    #[arg(long, default_value = "warren-bench")]
    out: PathBuf,
    /// The warren-runtime binary (default: next to warren, else on PATH).
    #[arg(long)]
    warren: Option<PathBuf>,
    /// Only these suites (comma-separated).
    #[arg(long)]
    suites: Option<String>,
}

fn cmd_bench(b: BenchArgs) -> Result<i32> {
    let exe = std::env::current_exe().context("locate the warren binary")?;
    let runtime = match b.warren {
        Some(p) => p,
        None => {
            let mut candidates = vec![exe.with_file_name("warren-runtime")];
            if let Some(path) = std::env::var_os("PATH") {
                candidates.extend(std::env::split_paths(&path).map(|d| d.join("warren-runtime")));
            }
            candidates
                .into_iter()
                .find(|p| p.is_file())
                .context("warren-runtime not found next to warren or on PATH (give --warren)")?
        }
    };
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let cfg = warren_benches::BenchConfig {
        quick: b.quick,
        full: b.full,
        vs: split(&b.vs),
        warren_runtime: runtime,
        out_dir: b.out,
        suites: b.suites.as_deref().map(split).unwrap_or_default(),
        note: None,
        progress: true,
    };
    let report = warren_benches::report::run(&cfg)?;
    for f in &report.files {
        println!("{}", f.display());
    }
    Ok(0)
}

#[derive(Subcommand, Debug)]
enum SwarmCmd {
    /// Start every agent of a swarm file, each in its own sandbox on the swarm's network.
    Up { file: PathBuf },
    /// List swarms and their agents.
    Ps {
        /// table or json.
        #[arg(long, default_value = "table")]
        format: String,
        /// A swarm name or file (default: every swarm).
        name: Option<String>,
    },
    /// Show the agents' output, each line prefixed by its agent.
    Logs {
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(long)]
        tail: Option<usize>,
        #[arg(short, long)]
        timestamps: bool,
        /// Only this agent (repeatable).
        #[arg(long = "agent")]
        agents: Vec<String>,
        /// A swarm name or file.
        name: String,
    },
    /// Stop a swarm and remove its containers, network, cgroups and mounts.
    Down {
        /// Seconds between SIGTERM and SIGKILL.
        #[arg(short = 't', long = "time", default_value_t = 10)]
        time: u64,
        /// Also remove the logs and workspaces.
        #[arg(long)]
        purge: bool,
        /// A swarm name or file.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
enum PoolCmd {
    /// Start a pool of warm sandboxes.
    Create(PoolCreateArgs),
    /// Run a command in a free sandbox of a pool.
    Exec(PoolExecArgs),
    /// List pools.
    Ls {
        /// table or json.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Stop pools and remove their sandboxes.
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
struct PoolCreateArgs {
    #[arg(long)]
    name: String,
    /// Sandbox profile: agent (default), experiment, trusted, or a TOML file.
    #[arg(long)]
    profile: Option<String>,
    /// Image from the store (default: a read-only view of the host).
    #[arg(long)]
    image: Option<String>,
    /// Sandboxes kept ready.
    #[arg(long, default_value_t = 4)]
    size: usize,
    /// Memory limit of each exec (default: the profile's).
    #[arg(long)]
    memory: Option<String>,
    /// Process limit of each exec (default: the profile's).
    #[arg(long)]
    pids: Option<i64>,
    #[arg(long)]
    cpus: Option<f64>,
    /// Time limit of each exec (default 30s).
    #[arg(long)]
    timeout: Option<String>,
    /// Output limit of each exec, stdout and stderr together (default 16m).
    #[arg(long)]
    output_limit: Option<String>,
    /// Environment of every exec, KEY=value (repeatable).
    #[arg(short, long)]
    env: Vec<String>,
    /// Working directory of execs (default: the profile's workspace).
    #[arg(short = 'w', long)]
    workdir: Option<PathBuf>,
    /// Writable tmpfs, cleared after every exec (repeatable; default /tmp /var/tmp and the
    /// workspace).
    #[arg(long)]
    tmpfs: Vec<PathBuf>,
    /// Size of each tmpfs (default 256m).
    #[arg(long)]
    tmpfs_size: Option<String>,
    /// UID[:GID] the commands run as.
    #[arg(short, long)]
    user: Option<String>,
}

#[derive(clap::Args, Debug)]
struct PoolExecArgs {
    /// KEY=value (repeatable).
    #[arg(short, long)]
    env: Vec<String>,
    /// Working directory.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// Time limit (at most the pool's).
    #[arg(long)]
    timeout: Option<String>,
    /// Memory limit (at most the pool's).
    #[arg(long)]
    memory: Option<String>,
    /// Process limit (at most the pool's).
    #[arg(long)]
    pids: Option<i64>,
    /// Send this process's stdin to the command.
    #[arg(short, long)]
    interactive: bool,
    name: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

fn agent_roots(roots: &Roots) -> warren_agents::Roots {
    warren_agents::Roots::new(&roots.root, &roots.data_root)
}

fn cmd_swarm(c: SwarmCmd, roots: &Roots) -> Result<i32> {
    let r = agent_roots(roots);
    let tools = warren_agents::cmd::Tools::default();
    let mut out = std::io::stdout().lock();
    match c {
        SwarmCmd::Up { file } => {
            let helpers = warren_agents::Helpers::locate(&exe_path())?;
            let info = warren_agents::swarm::up(&r, &helpers, &tools, &file)?;
            warren_agents::swarm::print_ps(std::slice::from_ref(&info), &mut out)?;
        }
        SwarmCmd::Ps { format, name } => {
            let infos = warren_agents::swarm::ps(&r, name.as_deref())?;
            if format == "json" {
                writeln!(out, "{}", serde_json::to_string_pretty(&infos)?)?;
            } else {
                warren_agents::swarm::print_ps(&infos, &mut out)?;
            }
        }
        SwarmCmd::Logs {
            follow,
            tail,
            timestamps,
            agents,
            name,
        } => {
            let o = warren_agents::swarm::LogsOptions {
                follow,
                tail,
                timestamps,
                agents,
            };
            warren_agents::swarm::logs(&r, &name, &o, &mut out)?;
        }
        SwarmCmd::Down { time, purge, name } => {
            let rep =
                warren_agents::swarm::down(&r, &tools, &name, Duration::from_secs(time), purge)?;
            if !rep.leftovers.is_empty() {
                bail!(
                    "swarm {}: left behind: {}",
                    rep.name,
                    rep.leftovers.join(", ")
                );
            }
            writeln!(out, "{}", rep.name)?;
        }
    }
    Ok(0)
}

fn cmd_pool(c: PoolCmd, roots: &Roots) -> Result<i32> {
    use warren_agents::units::{parse_duration_ms, parse_size};
    let r = agent_roots(roots);
    let size = |s: Option<String>| {
        s.as_deref()
            .map(parse_size)
            .transpose()
            .map_err(anyhow::Error::msg)
    };
    let ms = |s: Option<String>| {
        s.as_deref()
            .map(parse_duration_ms)
            .transpose()
            .map_err(anyhow::Error::msg)
    };
    match c {
        PoolCmd::Create(a) => {
            let helpers = warren_agents::Helpers::locate(&exe_path())?;
            let o = warren_agents::pool::PoolOptions {
                name: a.name,
                profile: a.profile,
                image: a.image,
                size: a.size,
                memory: size(a.memory)?,
                pids: a.pids,
                cpus: a.cpus,
                timeout_ms: ms(a.timeout)?,
                output_limit: size(a.output_limit)?.map(|v| v as u64),
                env: a.env,
                workdir: a.workdir,
                tmpfs: a.tmpfs,
                tmpfs_size: a.tmpfs_size,
                user: a.user.as_deref().map(parse_user).transpose()?,
            };
            let st =
                warren_agents::pool::manage::create(&r, &helpers, &o, Duration::from_secs(300))?;
            println!("{} ({} sandboxes ready)", st.name, st.ready);
            Ok(0)
        }
        PoolCmd::Exec(a) => {
            let mut env = std::collections::BTreeMap::new();
            for e in &a.env {
                let (k, v) = e
                    .split_once('=')
                    .context(format!("invalid -e {e:?}: expected KEY=value"))?;
                env.insert(k.to_owned(), v.to_owned());
            }
            let stdin = if a.interactive {
                let mut b = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)?;
                Some(warren_agents::b64::encode(&b))
            } else {
                None
            };
            let req = warren_agents::pool::ExecRequest {
                argv: a.command,
                env,
                cwd: a.workdir,
                stdin,
                encoding: warren_agents::pool::Encoding::Base64,
                timeout_ms: ms(a.timeout)?,
                memory: size(a.memory)?,
                pids: a.pids,
                ..Default::default()
            };
            let res = warren_agents::pool::manage::exec(
                &r,
                &a.name,
                &req,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            )?;
            Ok(pool_exit(&a.name, &res))
        }
        PoolCmd::Ls { format } => {
            let pools = warren_agents::pool::manage::ls(&r);
            let mut out = std::io::stdout().lock();
            if format == "json" {
                let v: Vec<_> = pools
                    .iter()
                    .map(|p| match p {
                        warren_agents::pool::manage::Listed::Up(s) => serde_json::to_value(s),
                        warren_agents::pool::manage::Listed::Dead { name, error } => {
                            Ok(serde_json::json!({"name": name, "error": error}))
                        }
                    })
                    .collect::<Result<_, _>>()?;
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                warren_agents::pool::manage::print_ls(&pools, &mut out)?;
            }
            Ok(0)
        }
        PoolCmd::Rm { names } => {
            for n in &names {
                warren_agents::pool::manage::rm(&r, n)?;
                println!("{n}");
            }
            Ok(0)
        }
    }
}

/// The exit code of `warren pool exec` (documented in COMMANDS.md): the command's, 124
/// when the time limit killed it, 126/127 when it could not be started.
fn pool_exit(pool: &str, r: &warren_agents::pool::ExecResult) -> i32 {
    if let Some(e) = &r.error {
        eprintln!("warren: pool {pool}: {e}");
    }
    let mut why = Vec::new();
    if r.timed_out {
        why.push("the time limit killed it");
    }
    if r.oom_killed {
        why.push("the memory limit's OOM killer fired");
    }
    if r.pids_limit_hit {
        why.push("forks failed at the process limit");
    }
    if r.output_truncated {
        why.push("its output passed the limit and was cut");
    }
    if !why.is_empty() {
        eprintln!("warren: pool {pool}: {} ({})", why.join("; "), r.sandbox);
    }
    if r.timed_out { 124 } else { r.exit_code }
}
