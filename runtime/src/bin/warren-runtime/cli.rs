//! runc's command line, flag for flag, as containerd, podman/conmon and CRI-O use it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "warren-runtime",
    about = "warren's OCI runtime: a runc-compatible container runtime",
    disable_version_flag = true
)]
pub struct Cli {
    /// Root directory for container state.
    #[arg(long, global = true, default_value = warren_runtime::DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Log file (default: stderr).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Enable debug logging.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Interpret cgroupsPath as systemd's slice:prefix:name.
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for compatibility (rootless mode is detected).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// Accepted for compatibility (checkpointing is not supported).
    #[arg(long, hide = true)]
    pub criu: Option<String>,
    /// Print the version.
    #[arg(short = 'v', long)]
    pub version: bool,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a container (its process waits for `start`).
    Create(Create),
    /// Start a created container.
    Start(Id),
    /// Print the state of a container as JSON.
    State(Id),
    /// Send a signal to a container's init (or, with --all, every process).
    Kill(Kill),
    /// Delete a container.
    Delete(Delete),
    /// Create and start a container; stay attached unless --detach.
    Run(Run),
    /// Run a new process inside a running container.
    Exec(Exec),
    /// List the processes of a container.
    Ps(Ps),
    /// Show container events and resource statistics.
    Events(Events),
    /// Update a container's resource limits.
    Update(Update),
    /// Freeze all processes of a container.
    Pause(Id),
    /// Thaw a paused container.
    Resume(Id),
    /// List containers.
    List(List),
    /// Write a default config.json.
    Spec(SpecCmd),
    /// Print the features this runtime supports, as JSON.
    Features,
    /// Container Device Interface: generate specs for this host's devices, list devices.
    #[command(subcommand)]
    Cdi(CdiCmd),
    /// Not supported (no CRIU).
    #[command(hide = true)]
    Checkpoint(Passthrough),
    /// Not supported (no CRIU).
    #[command(hide = true)]
    Restore(Passthrough),
}

#[derive(Args, Debug)]
pub struct Id {
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Passthrough {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct CreateFlags {
    /// Bundle directory (holds config.json).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// File to write the init pid to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root (for ramdisk roots).
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N more file descriptors (from 3) to the container.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
}

#[derive(Args, Debug)]
pub struct Create {
    #[command(flatten)]
    pub flags: CreateFlags,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Run {
    #[command(flatten)]
    pub flags: CreateFlags,
    /// Detach from the container's process.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container after it exits.
    #[arg(long)]
    pub keep: bool,
    /// Do not become a subreaper.
    #[arg(long)]
    pub no_subreaper: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Kill {
    /// Signal every process in the container.
    #[arg(short, long)]
    pub all: bool,
    pub id: String,
    /// Signal name or number.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Args, Debug)]
pub struct Delete {
    /// Kill a running container first.
    #[arg(short, long)]
    pub force: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Exec {
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Working directory.
    #[arg(long)]
    pub cwd: Option<String>,
    /// Environment variable KEY=value (repeatable).
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// UID[:GID].
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional group (repeatable).
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// JSON file with the full OCI process to run.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Detach from the process.
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    #[arg(long)]
    pub process_label: Option<String>,
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Set no_new_privileges.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Add a capability (repeatable).
    #[arg(short, long)]
    pub cap: Vec<String>,
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Allow exec in a paused container.
    #[arg(long)]
    pub ignore_paused: bool,
    /// Sub-cgroup to run in (accepted; the process joins the container's cgroup).
    #[arg(long)]
    pub cgroup: Vec<String>,
    pub id: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct Ps {
    /// table or json.
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    pub id: String,
    /// Options for ps(1) in table mode.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct Events {
    /// Interval between stats (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Print statistics once and exit.
    #[arg(long)]
    pub stats: bool,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct Update {
    /// JSON file with linux.resources ("-" for stdin).
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    #[arg(long)]
    pub cpu_period: Option<u64>,
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    #[arg(long)]
    pub cpu_share: Option<u64>,
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    #[arg(long)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    #[arg(long)]
    pub kernel_memory: Option<String>,
    #[arg(long)]
    pub kernel_memory_tcp: Option<String>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long)]
    pub memory_reservation: Option<String>,
    #[arg(long)]
    pub memory_swap: Option<String>,
    #[arg(long)]
    pub pids_limit: Option<i64>,
    #[arg(long)]
    pub l3_cache_schema: Option<String>,
    #[arg(long)]
    pub mem_bw_schema: Option<String>,
    pub id: String,
}

#[derive(Args, Debug)]
pub struct List {
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print only ids.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct SpecCmd {
    #[arg(short, long)]
    pub bundle: Option<PathBuf>,
    /// Generate a spec for rootless containers.
    #[arg(long)]
    pub rootless: bool,
}

#[derive(Subcommand, Debug)]
pub enum CdiCmd {
    /// Discover devices and print CDI specs (as `nvidia-ctk cdi generate`).
    Generate(CdiGenerate),
    /// List the devices of the CDI registry (/etc/cdi, /var/run/cdi).
    List,
}

#[derive(Args, Debug)]
pub struct CdiGenerate {
    /// nvidia, rdma, amd, tpu or all.
    #[arg(long, default_value = "all")]
    pub kind: String,
    /// yaml or json.
    #[arg(long, default_value = "yaml", value_parser = ["yaml", "json"])]
    pub format: String,
    /// Write here instead of stdout (one file; with several kinds, one document each).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Emit no hooks: warren-runtime does the NVIDIA createContainer work itself.
    #[arg(long)]
    pub builtin_hooks: bool,
    /// Driver root (e.g. /run/nvidia/driver with the GPU operator).
    #[arg(long, default_value = "/")]
    pub driver_root: PathBuf,
}
