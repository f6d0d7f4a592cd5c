//! `create`: set up a container and leave its init waiting for `start`.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libcontainer::oci_spec::runtime::LinuxNamespaceType;
use nix::sys::signal::SigSet;

use crate::cgroups::{ContainerCgroup, Layout, layout};
use crate::error::{Result, RuntimeError, chain};
use crate::executor::PreExec;
use crate::spawn::{self, Kind, SpawnRequest};
use crate::spec::{self, BundleConfig};
use crate::state::{ContainerState, NOTIFY_SOCKET, STATE_FORMAT, StateDir};
use crate::{Runtime, id};

/// Options of `create` (runc's flags).
#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// The runtime will stay attached (foreground `run`): a terminal then needs no
    /// console socket.
    pub foreground: bool,
    /// Signal mask for the workload (the caller may have blocked signals).
    pub sigmask: Option<SigSet>,
    /// Console socket already connected (foreground `run -t` passes its own pair).
    pub console_fd: Option<std::sync::Arc<OwnedFd>>,
    pub pre_exec: Option<std::sync::Arc<dyn PreExec>>,
}

/// What `create` made.
#[derive(Debug)]
pub struct Created {
    pub pid: i32,
    pub state: ContainerState,
    pub dir: StateDir,
}

/// Resolves the container's cgroupsPath (converting systemd's `slice:prefix:name`).
pub fn cgroup_inner_path(rt: &Runtime, cfg: &BundleConfig, id: &str) -> Result<String> {
    let given = cfg
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    if rt.systemd_cgroup {
        return Ok(layout::systemd_to_fs_path(&given, id)?);
    }
    if given.is_empty() {
        return Ok(id.to_owned());
    }
    Ok(given)
}

fn check_terminal(cfg: &BundleConfig, o: &CreateOpts) -> Result<()> {
    let terminal = cfg
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let has_socket = o.console_socket.is_some() || o.console_fd.is_some();
    if terminal && !has_socket && !o.foreground {
        return Err(RuntimeError::ConfigInvalid {
            field: "process.terminal".into(),
            msg: "cannot allocate a tty without --console-socket when the runtime detaches".into(),
        });
    }
    if !terminal && o.console_socket.is_some() {
        return Err(RuntimeError::ConfigInvalid {
            field: "process.terminal".into(),
            msg: "--console-socket was given but process.terminal is false".into(),
        });
    }
    Ok(())
}

/// Creates the container. On any error nothing is left behind: no state directory, no
/// cgroup, no process.
pub fn create(rt: &Runtime, o: &CreateOpts) -> Result<Created> {
    id::validate(&o.id)?;
    let cfg = spec::load_bundle(&o.bundle)?;
    create_from(rt, o, &cfg)
}

/// [`create`] for a bundle the caller has loaded already.
pub fn create_from(rt: &Runtime, o: &CreateOpts, cfg: &BundleConfig) -> Result<Created> {
    id::validate(&o.id)?;
    check_terminal(cfg, o)?;
    let dir = StateDir::create(&rt.root, &o.id)?;
    let mut cgroup: Option<ContainerCgroup> = None;
    match create_in(rt, o, cfg, &dir, &mut cgroup) {
        Ok(c) => Ok(c),
        Err(e) => {
            // The lifecycle continues at "delete": poststop hooks run even for a container
            // that failed to come up (OCI runtime spec, lifecycle step 12; runc does too).
            if let Some(hooks) = cfg.spec.hooks()
                && hooks.poststop().as_ref().is_some_and(|h| !h.is_empty())
            {
                let annotations = cfg.spec.annotations().clone().unwrap_or_default();
                match crate::spawn::hook_container(
                    &o.id,
                    &cfg.bundle,
                    &dir.dir,
                    None,
                    libcontainer::container::ContainerStatus::Stopped,
                    &annotations,
                ) {
                    Ok(c) => {
                        if let Err(he) = libcontainer::hooks::run_hooks(
                            hooks.poststop().as_ref(),
                            Some(&c.state),
                            None,
                            None,
                            None,
                        ) {
                            tracing::warn!(error = %chain(&he), "poststop hook after failed create");
                        }
                    }
                    Err(he) => tracing::warn!(error = %he, "poststop hooks skipped"),
                }
            }
            if let Some(cg) = &cgroup
                && let Err(ce) = cg.remove()
            {
                tracing::warn!(error = %chain(&ce), "cleanup after failed create");
            }
            let _ = dir.remove();
            Err(e)
        }
    }
}

fn create_in(
    rt: &Runtime,
    o: &CreateOpts,
    cfg: &BundleConfig,
    dir: &StateDir,
    cgroup_out: &mut Option<ContainerCgroup>,
) -> Result<Created> {
    tracing::debug!("create: state directory made");
    // Spec edits first — devices requested through CDI annotations or
    // NVIDIA_VISIBLE_DEVICES, and a requested sandbox profile — so that everything below
    // (cgroup device rules and limits, the saved spec used by exec and update) sees them.
    let mut cfg = cfg.clone();
    let gpu_setup = crate::devices::resolve(&mut cfg.spec, &rt.devices)?;
    let plan = crate::sandbox::prepare(rt, &mut cfg.spec)?;
    let cfg = &cfg;
    let layout = Layout::detect(Path::new("/proc"))?;
    let inner = cgroup_inner_path(rt, cfg, &o.id)?;
    let mut cg = ContainerCgroup::resolve(&layout, &inner)?;
    if rt.systemd_cgroup
        && layout.mode == crate::cgroups::Mode::Unified
        && crate::cgroups::systemd::available()
    {
        let given = cfg
            .spec
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("system.slice:warren:{}", o.id));
        cg.systemd = Some(crate::cgroups::SystemdScope {
            cgroups_path: given,
            id: o.id.clone(),
        });
    }
    let resources = cfg
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref());
    *cgroup_out = Some(cg.clone());
    // Only the cgroup2 directory must exist before the clone (CLONE_INTO_CGROUP); the
    // rest is created while the child builds its network namespace.
    cg.create_v2_dir()?;
    let make_cgroups = |pid: i32| -> Result<()> {
        if let Some(sd) = &cg.systemd {
            crate::cgroups::systemd::start(&sd.cgroups_path, &sd.id, pid, resources)?;
            crate::cgroups::install_device_filter_for(pid, resources)?;
        }
        cg.create(resources)?;
        tracing::debug!("create: cgroups made");
        Ok(())
    };

    let console = match (&o.console_fd, &o.console_socket) {
        (Some(fd), _) => Some(
            fd.try_clone()
                .map_err(|e| RuntimeError::io("dup", "console socket", e))?,
        ),
        (None, Some(path)) => {
            let path = std::fs::canonicalize(path)
                .map_err(|e| RuntimeError::io("console socket", path, e))?;
            Some(
                libcontainer::tty::setup_console_socket(&dir.dir, &path, "console-socket")
                    .map_err(|e| {
                        RuntimeError::Init(format!(
                            "connect console socket {}: {}",
                            path.display(),
                            chain(&e)
                        ))
                    })?,
            )
        }
        (None, None) => None,
    };
    dir.save_spec(&cfg.spec)?;
    crate::rootfs::ensure_cwd(&cfg.spec, cfg.rootfs())?;
    crate::rootfs::ensure_workspace(&cfg.spec, cfg.rootfs())?;
    // The spec libcontainer sees: tmpcopyup mounts become binds of staged tmpfs copies.
    let mut lc_spec = cfg.spec.clone();
    let mut copyups = crate::rootfs::stage_copyups(&mut lc_spec, cfg.rootfs(), &dir.dir)?;
    let fast_init = crate::init::supports(&lc_spec);
    let seccomp = if fast_init {
        crate::seccomp::precompile(rt, &mut lc_spec)?
    } else {
        None
    };
    // libcontainer's init (the fallback) knows nothing of profiles: their Landlock rules
    // and filters go in as a hook run just before the container's process is executed.
    let (plan, pre_exec): (_, Option<std::sync::Arc<dyn PreExec>>) = if fast_init || plan.is_empty()
    {
        (plan, o.pre_exec.clone())
    } else {
        let left = crate::sandbox::SandboxPlan {
            loopback_down: plan.loopback_down,
            ..Default::default()
        };
        let hook = crate::sandbox::PlanHook {
            plan,
            then: o.pre_exec.clone(),
        };
        (left, Some(std::sync::Arc::new(hook)))
    };
    let annotations: std::collections::HashMap<String, String> =
        cfg.spec.annotations().clone().unwrap_or_default();
    let sigmask = match o.sigmask {
        Some(m) => m,
        None => SigSet::thread_get_mask().map_err(|e| RuntimeError::sys("read signal mask", e))?,
    };
    let spawned = spawn::spawn(SpawnRequest {
        kind: Kind::Init,
        id: &o.id,
        bundle: &cfg.bundle,
        spec: lc_spec,
        rootfs: cfg.rootfs().to_owned(),
        state_dir: &dir.dir,
        notify_path: dir.path(NOTIFY_SOCKET),
        cgroup: &cg,
        console_socket: console,
        preserve_fds: o.preserve_fds,
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        sigmask,
        pre_exec,
        annotations: annotations.clone(),
        before_release: Some(crate::spawn::BeforeRelease(&make_cgroups)),
        seccomp: seccomp.as_ref(),
        rootfs_setup: (!gpu_setup.is_empty()).then_some(&gpu_setup),
        sandbox: &plan,
    })?;
    copyups.release();
    tracing::debug!(pid = spawned.pid, "create: init ready");
    let st = ContainerState {
        format: STATE_FORMAT,
        id: o.id.clone(),
        bundle: cfg.bundle.clone(),
        rootfs: cfg.rootfs().to_owned(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        owner: nix::unistd::geteuid().as_raw(),
        init_pid: spawned.pid,
        init_start_time: spawned.start_time,
        annotations: annotations.into_iter().collect(),
        cgroup: cg,
        own_pid_ns: matches!(
            spec::namespace_path(&cfg.spec, LinuxNamespaceType::Pid),
            Some(None)
        ),
        hooks: cfg.spec.hooks().clone(),
        systemd: rt.systemd_cgroup,
    };
    if let Err(e) = dir.save(&st) {
        kill_and_reap(spawned.pid);
        return Err(e);
    }
    if let Some(pf) = &o.pid_file
        && let Err(e) = write_pid_file(pf, spawned.pid)
    {
        kill_and_reap(spawned.pid);
        return Err(e);
    }
    Ok(Created {
        pid: spawned.pid,
        state: st,
        dir: dir.clone(),
    })
}

fn kill_and_reap(pid: i32) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
}

/// Writes a pid file atomically (engines poll for it).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let abs = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .map_err(|e| RuntimeError::io("getcwd", ".", e))?
            .join(path)
    };
    let tmp = abs.with_file_name(format!(
        ".{}.tmp",
        abs.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string())
        .map_err(|e| RuntimeError::io("write pid file", &tmp, e))?;
    std::fs::rename(&tmp, &abs).map_err(|e| RuntimeError::io("rename pid file", &abs, e))?;
    Ok(())
}
