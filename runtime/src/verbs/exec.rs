//! `exec`: run a new process inside a created or running container, joining its
//! namespaces, cgroups, seccomp filter and (by default) user and capabilities.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use libcontainer::oci_spec::runtime::{
    Capability, LinuxCapabilities, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType,
    Process, Spec,
};

use crate::Runtime;
use crate::console;
use crate::error::{Result, RuntimeError, chain};
use crate::executor::PreExec;
use crate::spawn::{self, Kind, SpawnRequest};
use crate::state::Status;
use crate::supervise::{self, Relay};

/// Options of `exec` (runc's flags).
#[derive(Debug, Clone, Default)]
pub struct ExecOpts {
    pub id: String,
    /// A JSON file holding the whole OCI process (containerd and conmon use this).
    pub process: Option<PathBuf>,
    pub args: Vec<String>,
    pub cwd: Option<String>,
    pub env: Vec<String>,
    pub tty: bool,
    pub user: Option<(u32, Option<u32>)>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: i32,
    pub ignore_paused: bool,
    pub pre_exec: Option<Arc<dyn PreExec>>,
}

fn ns_file(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Reads a process.json, naming the failing field.
pub fn load_process(path: &Path) -> Result<Process> {
    let bytes = std::fs::read(path).map_err(|e| RuntimeError::io("read", path, e))?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize::<_, Process>(de).map_err(|e| RuntimeError::ConfigParse {
        path: path.to_owned(),
        field: e.path().to_string(),
        msg: e.into_inner().to_string(),
    })
}

fn parse_cap(name: &str) -> Result<Capability> {
    let up = name.to_ascii_uppercase();
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    serde_json::from_value(serde_json::Value::String(full.clone())).map_err(|_| {
        RuntimeError::InvalidArgument {
            what: "capability",
            value: name.to_owned(),
            msg: "not a known capability".into(),
        }
    })
}

/// The process to run: the given process.json, or the container's process with the
/// command line's overrides.
fn build_process(spec: &Spec, o: &ExecOpts) -> Result<Process> {
    if let Some(p) = &o.process {
        let mut p = load_process(p)?;
        if o.tty {
            p.set_terminal(Some(true));
        }
        let mut env = p.env().clone().unwrap_or_default();
        crate::devices::add_device_env(spec, &mut env);
        p.set_env(Some(env));
        return Ok(p);
    }
    if o.args.is_empty() {
        return Err(RuntimeError::InvalidArgument {
            what: "command",
            value: String::new(),
            msg: "exec needs a command to run (or --process)".into(),
        });
    }
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    let mut env = p.env().clone().unwrap_or_default();
    for e in &o.env {
        if !e.contains('=') {
            return Err(RuntimeError::InvalidArgument {
                what: "--env",
                value: e.clone(),
                msg: "expected KEY=value".into(),
            });
        }
        env.push(e.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(PathBuf::from(cwd));
    }
    if let Some((uid, gid)) = o.user {
        let mut u = p.user().clone();
        u.set_uid(uid);
        if let Some(g) = gid {
            u.set_gid(g);
        }
        p.set_user(u);
    }
    if !o.additional_gids.is_empty() {
        let mut u = p.user().clone();
        u.set_additional_gids(Some(o.additional_gids.clone()));
        p.set_user(u);
    }
    if !o.caps.is_empty() {
        let mut caps: LinuxCapabilities = p.capabilities().clone().unwrap_or_default();
        for c in &o.caps {
            let cap = parse_cap(c)?;
            let add = |s: &Option<std::collections::HashSet<Capability>>| {
                let mut s = s.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
            if caps.ambient().is_some() {
                caps.set_ambient(add(caps.ambient()));
            }
        }
        p.set_capabilities(Some(caps));
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(a) = &o.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &o.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    Ok(p)
}

/// Runs the exec. Returns the process's exit code (0 when detached).
pub fn exec(rt: &Runtime, o: &ExecOpts) -> Result<i32> {
    let dir = rt.state_dir(&o.id)?;
    let st = dir.load()?;
    match st.status(&dir) {
        Status::Running | Status::Created => {}
        Status::Paused if o.ignore_paused => {}
        Status::Paused => {
            return Err(RuntimeError::status(
                "cannot exec in a paused container (use --ignore-paused to override)",
            ));
        }
        Status::Stopped => return Err(RuntimeError::status("cannot exec in a stopped container")),
        Status::Creating => {
            return Err(RuntimeError::status(
                "cannot exec in a container that is being created",
            ));
        }
    }
    let mut spec = dir.load_spec()?;
    let process = build_process(&spec, o)?;
    // Processes exec'd into a sandbox get the same Landlock rules and profile filters.
    let plan = crate::sandbox::prepare(rt, &mut spec)?;
    if !process.cwd().is_absolute() {
        return Err(RuntimeError::ConfigInvalid {
            field: "process.cwd".into(),
            msg: format!("{:?} is not an absolute path", process.cwd()),
        });
    }
    let terminal = process.terminal().unwrap_or(false);
    if terminal && o.detach && o.console_socket.is_none() {
        return Err(RuntimeError::InvalidArgument {
            what: "--tty",
            value: "true".into(),
            msg: "a detached exec with a terminal needs --console-socket".into(),
        });
    }
    if !terminal && o.console_socket.is_some() {
        return Err(RuntimeError::InvalidArgument {
            what: "--console-socket",
            value: String::new(),
            msg: "given without --tty / process.terminal".into(),
        });
    }
    // Join every namespace the container has, through its init.
    let mut linux = spec.linux().clone().unwrap_or_default();
    let nss: Vec<LinuxNamespace> = linux
        .namespaces()
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|ns| {
            LinuxNamespaceBuilder::default()
                .typ(ns.typ())
                .path(PathBuf::from(format!(
                    "/proc/{}/ns/{}",
                    st.init_pid,
                    ns_file(ns.typ())
                )))
                .build()
                .map_err(|e| RuntimeError::ConfigInvalid {
                    field: "linux.namespaces".into(),
                    msg: e.to_string(),
                })
        })
        .collect::<Result<_>>()?;
    linux.set_namespaces(Some(nss));
    linux.set_resources(None);
    linux.set_devices(None);
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    spec.set_linux(Some(linux));
    spec.set_process(Some(process));
    spec.set_hooks(None);
    spec.set_mounts(None);

    let (console_fd, pair) = match (&o.console_socket, terminal && !o.detach) {
        (Some(path), _) => {
            let path = std::fs::canonicalize(path)
                .map_err(|e| RuntimeError::io("console socket", path, e))?;
            let name = format!("exec-console-{}", std::process::id());
            let fd =
                libcontainer::tty::setup_console_socket(&dir.dir, &path, &name).map_err(|e| {
                    RuntimeError::Init(format!(
                        "connect console socket {}: {}",
                        path.display(),
                        chain(&e)
                    ))
                })?;
            let _ = std::fs::remove_file(dir.path(&name));
            (Some(fd), None)
        }
        (None, true) => {
            let p = console::pair()?;
            (Some(p.container_end), Some(p.runtime_end))
        }
        (None, false) => (None, None),
    };

    let old_mask = if o.detach {
        None
    } else {
        Some(supervise::block_signals()?)
    };
    let r = exec_spawn(o, &dir, &st, spec, console_fd, pair, old_mask, plan);
    if let Some(m) = old_mask {
        supervise::restore_signals(&m);
    }
    r
}

#[allow(clippy::too_many_arguments)]
fn exec_spawn(
    o: &ExecOpts,
    dir: &crate::state::StateDir,
    st: &crate::state::ContainerState,
    spec: Spec,
    console_fd: Option<std::os::fd::OwnedFd>,
    pair: Option<std::os::fd::OwnedFd>,
    old_mask: Option<nix::sys::signal::SigSet>,
    plan: crate::sandbox::SandboxPlan,
) -> Result<i32> {
    let sigmask = match old_mask {
        Some(m) => m,
        None => nix::sys::signal::SigSet::thread_get_mask()
            .map_err(|e| RuntimeError::sys("read signal mask", e))?,
    };
    let notify = dir.path(&format!("exec-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&notify);
    let spawned = spawn::spawn(SpawnRequest {
        kind: Kind::Tenant,
        id: &o.id,
        bundle: &st.bundle,
        spec,
        rootfs: st.rootfs.clone(),
        state_dir: &dir.dir,
        notify_path: notify.clone(),
        cgroup: &st.cgroup,
        console_socket: console_fd,
        preserve_fds: o.preserve_fds,
        no_pivot: false,
        no_new_keyring: true,
        sigmask,
        pre_exec: if plan.is_empty() {
            o.pre_exec.clone()
        } else {
            Some(std::sync::Arc::new(crate::sandbox::PlanHook {
                plan,
                then: o.pre_exec.clone(),
            }))
        },
        annotations: Default::default(),
        before_release: None,
        seccomp: None,
        rootfs_setup: None,
        sandbox: &crate::sandbox::SandboxPlan::default(),
    });
    let _ = std::fs::remove_file(&notify);
    let spawned = spawned?;
    if let Some(pf) = &o.pid_file {
        crate::verbs::create::write_pid_file(pf, spawned.pid)?;
    }
    if o.detach {
        return Ok(0);
    }
    let relay = match &pair {
        Some(sock) => Some(Relay {
            master: console::recv_master(sock)?,
        }),
        None => None,
    };
    supervise::wait(spawned.pid, relay)
}
