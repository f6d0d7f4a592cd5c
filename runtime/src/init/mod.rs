//! warren's own container init: what runs in the cloned child of `create` between the
//! clone and the workload's execve.
//!
//! libcontainer's `container_init_process` resolves every path through several verified
//! /proc handles (≈1700 system calls for a default container); this init does the same
//! work with ≈400, following runc's order step for step. Specs using features this init
//! does not implement (user namespaces, idmapped mounts, time namespaces, personality,
//! I/O priority, scheduler and memory policies) fall back to libcontainer's init, so
//! behaviour never depends on which path runs — only speed does.

mod fs;
mod mounts;

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use libcontainer::container::State as HookState;
use libcontainer::notify_socket::NotifyListener;
use libcontainer::oci_spec::runtime::{LinuxNamespaceType, Spec};
use libcontainer::process::channel::{InitReceiver, MainSender};
use libcontainer::syscall::Syscall;
use libcontainer::workload::Executor;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::cgroups::ContainerCgroup;
use crate::error::chain;
use crate::executor::WarrenExecutor;

type Result<T> = std::result::Result<T, String>;

/// Whether this init can run `spec`; otherwise libcontainer's init is used.
pub fn supports(spec: &Spec) -> bool {
    let Some(linux) = spec.linux() else {
        return false;
    };
    let Some(process) = spec.process() else {
        return false;
    };
    let nss = linux.namespaces().clone().unwrap_or_default();
    let has = |t| nss.iter().any(|n| n.typ() == t);
    if has(LinuxNamespaceType::User)
        || has(LinuxNamespaceType::Time)
        || !has(LinuxNamespaceType::Mount)
    {
        return false;
    }
    if linux.personality().is_some()
        || linux.memory_policy().is_some()
        || linux.intel_rdt().is_some()
        || process.io_priority().is_some()
        || process.scheduler().is_some()
        || process.exec_cpu_affinity().is_some()
    {
        return false;
    }
    let idmapped = spec.mounts().iter().flatten().any(|m| {
        m.options()
            .iter()
            .flatten()
            .any(|o| o == "idmap" || o == "ridmap")
            || m.uid_mappings().is_some()
    });
    !idmapped
}

/// Inputs of the init.
#[derive(Debug)]
pub struct InitArgs<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub cgroup: &'a ContainerCgroup,
    pub hook_state: Option<&'a HookState>,
    pub console_fd: Option<RawFd>,
    pub preserve_fds: i32,
    pub no_pivot: bool,
    pub executor: &'a WarrenExecutor,
    /// The spec's seccomp filter, precompiled (the spec then has none).
    pub seccomp: Option<&'a warren_sandbox::seccomp::CompiledFilter>,
    /// Device driver setup to do inside the rootfs once everything is mounted.
    pub rootfs_setup: Option<&'a warren_gpu::nvidia::RootfsSetup>,
    /// Landlock and profile filters.
    pub sandbox: &'a crate::sandbox::SandboxPlan,
}

fn sys() -> Box<dyn Syscall> {
    libcontainer::syscall::syscall::create_syscall()
}

/// Runs the init up to the workload's execve. Returns only on failure.
pub fn run(
    a: &InitArgs<'_>,
    listener: &NotifyListener,
    main_sender: &mut MainSender,
    init_receiver: &mut InitReceiver,
) -> Result<std::convert::Infallible> {
    let spec = a.spec;
    let linux = spec.linux().as_ref().ok_or("spec has no linux section")?;
    let process = spec.process().as_ref().ok_or("spec has no process")?;
    let syscall = sys();

    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| format!("set oom_score_adj {adj}: {e}"))?;
    }

    // Namespaces: join the given paths first (fds opened before anything moves), then
    // create the new ones in one unshare. Network was created by the caller.
    let mut new_flags = CloneFlags::empty();
    let mut joins = Vec::new();
    let mut cgroup_ns = false;
    for ns in linux.namespaces().iter().flatten() {
        let flag = match ns.typ() {
            LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Cgroup => {
                cgroup_ns = true;
                CloneFlags::CLONE_NEWCGROUP
            }
            LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
            // pid: at clone time; user/time: not on this path.
            _ => continue,
        };
        match ns.path() {
            Some(p) => {
                let f = std::fs::File::open(p)
                    .map_err(|e| format!("open namespace {}: {e}", p.display()))?;
                joins.push((f, flag, p.clone()));
            }
            None if flag != CloneFlags::CLONE_NEWNET => new_flags |= flag,
            None => {}
        }
    }
    for (f, flag, p) in &joins {
        nix::sched::setns(f, *flag).map_err(|e| format!("join namespace {}: {e}", p.display()))?;
    }
    if !new_flags.is_empty() {
        nix::sched::unshare(new_flags).map_err(|e| format!("unshare {new_flags:?}: {e}"))?;
    }
    if new_flags.contains(CloneFlags::CLONE_NEWUTS) {
        if let Some(h) = spec.hostname() {
            nix::unistd::sethostname(h).map_err(|e| format!("set hostname {h:?}: {e}"))?;
        }
        if let Some(d) = spec.domainname() {
            syscall
                .set_domainname(d)
                .map_err(|e| format!("set domainname {d:?}: {}", chain(&e)))?;
        }
    }

    // Root filesystem.
    let root = mounts::mount_rootfs(spec, a.rootfs, a.bundle, a.cgroup, cgroup_ns)?;
    mounts::create_devices(&root, spec)?;
    drop(root);
    if let Some(setup) = a.rootfs_setup {
        // Driver libraries are bind-mounted by now: link libcuda.so and refresh the cache.
        setup
            .apply(a.rootfs)
            .map_err(|e| format!("device driver setup: {}", chain(&e)))?;
        warren_gpu::nvidia::run_ldconfig(Path::new("/sbin/ldconfig"), a.rootfs)
            .map_err(|e| format!("device driver setup: {}", chain(&e)))?;
    }
    if let Some(hooks) = spec.hooks() {
        // prestart and createRuntime run in the runtime's namespaces, done by the parent.
        main_sender.hook_request().map_err(|e| chain(&e))?;
        init_receiver
            .wait_for_hook_request_done()
            .map_err(|e| chain(&e))?;
        if hooks
            .create_container()
            .as_ref()
            .is_some_and(|h| !h.is_empty())
        {
            let state = a.hook_state.ok_or("no container state for hooks")?;
            libcontainer::hooks::run_hooks(
                hooks.create_container().as_ref(),
                Some(state),
                None,
                None,
                None,
            )
            .map_err(|e| format!("createContainer hook: {}", chain(&e)))?;
        }
    }
    pivot(a.rootfs, a.no_pivot)?;
    match linux.rootfs_propagation().as_deref() {
        Some("shared") => nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_SHARED,
            None::<&str>,
        )
        .map_err(|e| format!("make / shared: {e}"))?,
        Some("unbindable") => nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_UNBINDABLE,
            None::<&str>,
        )
        .map_err(|e| format!("make / unbindable: {e}"))?,
        _ => {}
    }
    reopen_dev_null()?;
    if let Some(params) = linux.sysctl() {
        for (k, v) in params {
            let rel = k.replace('.', "/");
            if rel.split('/').any(|c| c == ".." || c.is_empty()) {
                return Err(format!("linux.sysctl: invalid key {k:?}"));
            }
            std::fs::write(format!("/proc/sys/{rel}"), v)
                .map_err(|e| format!("linux.sysctl {k}={v}: {e}"))?;
        }
    }
    if let Some(fd) = a.console_fd {
        libcontainer::tty::setup_console(syscall.as_ref(), fd, true)
            .map_err(|e| format!("set up console: {}", chain(&e)))?;
    }
    if let Some(profile) = process.apparmor_profile() {
        libcontainer::apparmor::apply_profile(profile)
            .map_err(|e| format!("apparmor profile {profile:?}: {}", chain(&e)))?;
    }
    if let Some(umask) = process.user().umask() {
        // SAFETY: umask(2) only changes our file-creation mask.
        unsafe { libc::umask(umask & 0o777) };
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let st = nix::sys::statvfs::statvfs("/").map_err(|e| format!("statfs /: {e}"))?;
        let keep = MsFlags::from_bits_truncate(st.flags().bits() as libc::c_ulong)
            & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | keep,
            None::<&str>,
        )
        .map_err(|e| format!("remount / read-only: {e}"))?;
    }
    for p in linux.readonly_paths().iter().flatten() {
        readonly_path(Path::new(p))?;
    }
    for p in linux.masked_paths().iter().flatten() {
        mask_path(Path::new(p))?;
    }

    // Credentials.
    let cwd = process.cwd();
    let chdir_later = match nix::unistd::chdir(cwd) {
        Ok(()) => false,
        Err(nix::Error::EPERM) | Err(nix::Error::EACCES) => true,
        Err(e) => return Err(format!("chdir to process.cwd {}: {e}", cwd.display())),
    };
    let user = process.user();
    let passwd = PasswdEntry::lookup(user.uid());
    // runc with a numeric user: exactly process.user.additionalGids, in order (no lookup
    // of memberships in the container's /etc/group).
    let groups: Vec<u32> = user.additional_gids().clone().unwrap_or_default();
    let gids: Vec<nix::unistd::Gid> = groups
        .iter()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    nix::unistd::setgroups(&gids).map_err(|e| format!("setgroups {groups:?}: {e}"))?;
    syscall
        .set_id(
            nix::unistd::Uid::from_raw(user.uid()),
            nix::unistd::Gid::from_raw(user.gid()),
        )
        .map_err(|e| format!("set uid {} gid {}: {}", user.uid(), user.gid(), chain(&e)))?;
    syscall
        .close_range(a.preserve_fds)
        .map_err(|e| format!("mark fds close-on-exec: {}", chain(&e)))?;
    // Landlock needs no_new_privs, so a container with Landlock rules always has it. A
    // profile without Landlock that keeps setuid working (`trusted`) does not.
    let nnp = process.no_new_privileges().unwrap_or(false) || a.sandbox.landlock.is_some();
    if !nnp {
        // Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: before the drop.
        crate::sandbox::enforce(a.sandbox)?;
        install_seccomp(a, linux)?;
    }
    libcontainer::capabilities::reset_effective(syscall.as_ref())
        .map_err(|e| format!("reset capabilities: {}", chain(&e)))?;
    if let Some(caps) = process.capabilities() {
        libcontainer::capabilities::drop_privileges(caps, syscall.as_ref())
            .map_err(|e| format!("drop capabilities: {}", chain(&e)))?;
    }
    if chdir_later {
        nix::unistd::chdir(cwd)
            .map_err(|e| format!("chdir to process.cwd {}: {e}", cwd.display()))?;
    }
    let here = nix::unistd::getcwd().map_err(|e| format!("getcwd: {e}"))?;
    if !here.starts_with("/") {
        return Err(format!(
            "process.cwd {} is outside the container",
            cwd.display()
        ));
    }
    if nnp {
        // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1) takes integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(format!("set no_new_privs: {}", nix::Error::last()));
        }
        if let Some(report) = crate::sandbox::enforce(a.sandbox)? {
            tracing::debug!(%report, "landlock");
        }
        install_seccomp(a, linux)?;
    }

    // Environment, then wait for `start`.
    let mut envs: HashMap<String, String> =
        libcontainer::utils::parse_env(process.env().as_deref().unwrap_or(&[]));
    if envs.get("HOME").is_none_or(|h| h.is_empty()) {
        let home = passwd
            .as_ref()
            .map(|p| p.home.clone())
            .unwrap_or_else(|| "/".into());
        envs.insert("HOME".into(), home);
    }
    a.executor.validate(spec).map_err(|e| chain(&e))?;
    let start_env = envs.clone();
    a.executor.setup_envs(envs).map_err(|e| chain(&e))?;
    main_sender.init_ready().map_err(|e| chain(&e))?;
    let _ = main_sender.close();
    listener
        .wait_for_container_start()
        .map_err(|e| format!("wait for start: {}", chain(&e)))?;
    let _ = listener.close();
    if let Some(hooks) = spec.hooks()
        && hooks
            .start_container()
            .as_ref()
            .is_some_and(|h| !h.is_empty())
    {
        // startContainer hooks see the container as created (runc).
        let mut state = a.hook_state.ok_or("no container state for hooks")?.clone();
        state.status = libcontainer::container::ContainerStatus::Created;
        libcontainer::hooks::run_hooks(
            hooks.start_container().as_ref(),
            Some(&state),
            None,
            None,
            Some(&start_env),
        )
        .map_err(|e| format!("startContainer hook: {}", chain(&e)))?;
    }
    a.executor.exec(spec).map_err(|e| chain(&e))?;
    Err("exec returned".into())
}

/// The precompiled filter if there is one, else libcontainer's libseccomp path.
fn install_seccomp(a: &InitArgs<'_>, linux: &libcontainer::oci_spec::runtime::Linux) -> Result<()> {
    if let Some(f) = a.seccomp {
        return f.install().map_err(|e| format!("seccomp: {}", chain(&e)));
    }
    if let Some(sc) = linux.seccomp() {
        libcontainer::seccomp::initialize_seccomp(sc)
            .map_err(|e| format!("seccomp: {}", chain(&e)))?;
    }
    Ok(())
}

fn pivot(rootfs: &Path, no_pivot: bool) -> Result<()> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    if no_pivot {
        nix::unistd::chdir(rootfs).map_err(|e| format!("chdir rootfs: {e}"))?;
        nix::mount::mount(
            Some(rootfs),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(|e| format!("move rootfs to /: {e}"))?;
        nix::unistd::chroot(".").map_err(|e| format!("chroot: {e}"))?;
        return nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"));
    }
    let old = open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open /: {e}"))?;
    let new = open(
        rootfs,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open rootfs: {e}"))?;
    let r = (|| {
        nix::unistd::fchdir(new).map_err(|e| format!("fchdir rootfs: {e}"))?;
        nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
        nix::unistd::fchdir(old).map_err(|e| format!("fchdir old root: {e}"))?;
        // Keep the detach of the old root from propagating anywhere.
        nix::mount::mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("make old root slave: {e}"))?;
        nix::mount::umount2(".", MntFlags::MNT_DETACH)
            .map_err(|e| format!("detach old root: {e}"))?;
        nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))
    })();
    let _ = nix::unistd::close(old);
    let _ = nix::unistd::close(new);
    r
}

fn reopen_dev_null() -> Result<()> {
    let null = match std::fs::File::open("/dev/null") {
        Ok(f) => f,
        Err(_) => return Ok(()),
    };
    let Ok(nst) = nix::sys::stat::fstat(null.as_raw_fd()) else {
        return Ok(());
    };
    for fd in 0..3 {
        if let Ok(st) = nix::sys::stat::fstat(fd)
            && st.st_rdev == nst.st_rdev
            && (st.st_mode & libc::S_IFMT) == libc::S_IFCHR
        {
            nix::unistd::dup2(null.as_raw_fd(), fd)
                .map_err(|e| format!("reopen /dev/null as fd {fd}: {e}"))?;
        }
    }
    Ok(())
}

fn readonly_path(p: &Path) -> Result<()> {
    match nix::mount::mount(
        Some(p),
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Ok(()) => {}
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(e) => return Err(format!("linux.readonlyPaths {}: {e}", p.display())),
    }
    let st = nix::sys::statvfs::statvfs(p).map_err(|e| format!("statfs {}: {e}", p.display()))?;
    let keep = MsFlags::from_bits_truncate(st.flags().bits() as libc::c_ulong)
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    nix::mount::mount(
        Some(p),
        p,
        None::<&str>,
        keep | MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|e| format!("linux.readonlyPaths {}: {e}", p.display()))
}

fn mask_path(p: &Path) -> Result<()> {
    let md = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("linux.maskedPaths {}: {e}", p.display())),
    };
    let r = if md.is_dir() {
        nix::mount::mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None::<&str>,
        )
    } else {
        nix::mount::mount(
            Some("/dev/null"),
            p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    match r {
        Ok(()) | Err(nix::Error::ENOENT) => Ok(()),
        Err(e) => Err(format!("linux.maskedPaths {}: {e}", p.display())),
    }
}

/// An /etc/passwd entry of the container.
#[derive(Debug, Clone)]
struct PasswdEntry {
    home: String,
}

impl PasswdEntry {
    fn lookup(uid: u32) -> Option<Self> {
        let mut s = String::new();
        std::fs::File::open("/etc/passwd")
            .ok()?
            .take(1 << 20)
            .read_to_string(&mut s)
            .ok()?;
        s.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| PasswdEntry {
                home: f[5].to_owned(),
            })
        })
    }
}
