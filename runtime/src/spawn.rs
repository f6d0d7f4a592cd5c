//! Starting a container process: our own clone3 and handshake around libcontainer's
//! container init.
//!
//! libcontainer's own main/intermediate processes rebuild a cgroup manager (twelve
//! mountinfo scans on v1) and join only the v1 controllers. We clone the init directly
//! (`CLONE_NEWPID`, and `CLONE_INTO_CGROUP` on cgroup v2), join every hierarchy from the
//! paths in hand, and then hand over to libcontainer's `container_init_process`, which
//! prepares namespaces, rootfs, credentials and seccomp exactly as youki does.
//!
//! ```text
//! runtime (main)                         init (clone3 child)
//!   clone3(NEWPID [|NEWUSER] [|INTO_CGROUP]) ─▶ blocks on the go pipe
//!   join cgroups, write id maps
//!   go pipe: host pid ───────────────────▶ rlimits, setns(user), libcontainer init:
//!                                           namespaces, rootfs, hooks request ─┐
//!   prestart/createRuntime hooks ◀────────────────────────────────────────────┘
//!   hook done ────────────────────────────▶ pivot_root, caps, seccomp, ready
//!   wait init ready ◀──────────────────────  waits on notify socket (start)
//! ```

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use libcontainer::container::{Container, ContainerStatus};
use libcontainer::notify_socket::NotifyListener;
use libcontainer::oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType, Spec};
use libcontainer::process::args::{ContainerArgs, ContainerType};
use libcontainer::process::channel::{self, ChannelError};
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::user_ns::UserNamespaceConfig;
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::signal::SigSet;

use crate::cgroups::ContainerCgroup;
use crate::error::{Result, RuntimeError, chain};
use crate::executor::{PreExec, WarrenExecutor};
use crate::proc;
use crate::spec::namespace_path;

/// Whether we start a container's init or a process inside a running container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Init,
    Tenant,
}

/// Everything needed to start one container process.
#[derive(Debug)]
pub struct SpawnRequest<'a> {
    pub kind: Kind,
    pub id: &'a str,
    pub bundle: &'a Path,
    /// The spec to run (for a tenant: already adapted to join the container).
    pub spec: Spec,
    pub rootfs: PathBuf,
    /// Container state directory (notify socket, console-socket link).
    pub state_dir: &'a Path,
    /// Socket the init waits on until started.
    pub notify_path: PathBuf,
    pub cgroup: &'a ContainerCgroup,
    pub console_socket: Option<OwnedFd>,
    pub preserve_fds: i32,
    pub no_pivot: bool,
    /// Skip joining a fresh session keyring named after the container.
    pub no_new_keyring: bool,
    /// Signal mask to restore right before exec.
    pub sigmask: SigSet,
    pub pre_exec: Option<std::sync::Arc<dyn PreExec>>,
    pub annotations: std::collections::HashMap<String, String>,
    /// Work the parent does right after the clone, while the child sets up its network
    /// namespace; the child joins its cgroups only afterwards (cgroup creation).
    pub before_release: Option<BeforeRelease<'a>>,
    /// The spec's `linux.seccomp`, compiled ahead (then absent from `spec`).
    pub seccomp: Option<&'a warren_sandbox::seccomp::CompiledFilter>,
    /// Device driver setup inside the rootfs after mounting (NVIDIA libraries).
    pub rootfs_setup: Option<&'a warren_gpu::nvidia::RootfsSetup>,
    /// Landlock and profile filters for the init to enforce.
    pub sandbox: &'a crate::sandbox::SandboxPlan,
}

/// A closure the parent runs between clone and release (see [`SpawnRequest`]).
pub struct BeforeRelease<'a>(pub &'a dyn Fn(i32) -> Result<()>);

impl std::fmt::Debug for BeforeRelease<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeforeRelease(..)")
    }
}

/// A started process.
#[derive(Debug)]
pub struct Spawned {
    /// Host pid.
    pub pid: i32,
    /// `/proc/PID/stat` start time.
    pub start_time: u64,
}

const GO_OK: u8 = 1;

#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// fork-like clone3: returns 0 in the child and the pid in the parent.
fn clone3(flags: u64, cgroup_fd: Option<RawFd>) -> nix::Result<i32> {
    let mut args = CloneArgs {
        flags,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup_fd.map(|f| f as u64).unwrap_or(0),
    };
    if cgroup_fd.is_some() {
        args.flags |= 0x2_0000_0000; // CLONE_INTO_CGROUP
    }
    // SAFETY: clone3 without CLONE_VM and with a null stack behaves like fork: the child
    // gets a copy of our (single-threaded) address space. The args struct lives on our
    // stack for the duration of the call and its size is passed alongside.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        Ok(r as i32)
    }
}

fn chan_err(e: ChannelError) -> RuntimeError {
    // An init that failed sends ExecFailed where another message was expected: report the
    // init's error text rather than the protocol mismatch.
    if let ChannelError::UnexpectedMessage { received, .. } = &e
        && let Ok(v) = serde_json::to_value(&**received)
    {
        if let Some(s) = v.get("ExecFailed").and_then(|s| s.as_str()) {
            return RuntimeError::Init(s.to_owned());
        }
        if let Some(s) = v.get("OtherError").and_then(|s| s.as_str()) {
            return RuntimeError::Init(s.to_owned());
        }
    }
    if let ChannelError::ExecError(s) = &e {
        return RuntimeError::Init(
            s.trim_start_matches("error in executing process : ")
                .to_owned(),
        );
    }
    RuntimeError::Init(format!(
        "lost contact with the container init: {}",
        chain(&e)
    ))
}

/// Builds the libcontainer view of the container used for hook states.
pub fn hook_container(
    id: &str,
    bundle: &Path,
    state_dir: &Path,
    pid: Option<i32>,
    status: ContainerStatus,
    annotations: &std::collections::HashMap<String, String>,
) -> Result<Container> {
    let mut c = Container::new(id, status, pid, bundle, state_dir)
        .map_err(|e| RuntimeError::Init(chain(&e)))?;
    if !annotations.is_empty() {
        c.set_annotations(Some(annotations.clone()));
    }
    Ok(c)
}

/// Starts the process described by `req` and waits until it is ready to exec (init: until
/// it waits for `start`; tenant: until it has been told to go).
/// The container's init is cloned from the calling process with a raw `clone3`, which
/// runs no `pthread_atfork` handlers: a lock (the allocator's, stdio's) held by another
/// thread at that moment would stay locked in the child forever. So the caller must be
/// single-threaded; a multi-threaded program creates containers from a helper process
/// (as `warren-poold` does) or through the `warren-runtime` binary.
fn ensure_single_threaded() -> Result<()> {
    let threads = std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .map_err(|e| RuntimeError::io("read", "/proc/self/task", e))?;
    if threads > 1 {
        return Err(RuntimeError::Unsupported(format!(
            "creating a container or exec'ing into one from a process with {threads} threads \
             (the child is cloned without fork handlers and could deadlock); call it from a \
             single-threaded process"
        )));
    }
    Ok(())
}

pub fn spawn(mut req: SpawnRequest<'_>) -> Result<Spawned> {
    ensure_single_threaded()?;
    let mut lc_spec = std::mem::take(&mut req.spec);
    // A new network namespace is created by our child, which also brings loopback up
    // (runc does; libcontainer does not). libcontainer is told nothing about it.
    if req.rootfs_setup.is_some() && !crate::init::supports(&lc_spec) {
        return Err(RuntimeError::Unsupported(
            "NVIDIA driver setup together with user namespaces, time namespaces or idmapped mounts"
                .into(),
        ));
    }
    let new_netns = req.kind == Kind::Init
        && matches!(
            namespace_path(&lc_spec, LinuxNamespaceType::Network),
            Some(None)
        );
    if new_netns && let Some(linux) = lc_spec.linux_mut() {
        let nss: Vec<LinuxNamespace> = linux
            .namespaces()
            .iter()
            .flatten()
            .filter(|ns| ns.typ() != LinuxNamespaceType::Network)
            .cloned()
            .collect();
        linux.set_namespaces(Some(nss));
    }
    let spec = Rc::new(lc_spec);
    if spec.linux().is_none() {
        return Err(RuntimeError::ConfigInvalid {
            field: "linux".into(),
            msg: "missing".into(),
        });
    }
    let user_ns = namespace_path(&spec, LinuxNamespaceType::User);
    let pid_ns = namespace_path(&spec, LinuxNamespaceType::Pid);
    let new_user_ns = matches!(user_ns, Some(None)) && req.kind == Kind::Init;
    let user_ns_config = if req.kind == Kind::Init {
        UserNamespaceConfig::new(&spec).map_err(|e| RuntimeError::ConfigInvalid {
            field: "linux.uidMappings".into(),
            msg: chain(&e),
        })?
    } else {
        None
    };

    let listener = NotifyListener::new(&req.notify_path).map_err(|e| {
        RuntimeError::Init(format!(
            "create notify socket {}: {}",
            req.notify_path.display(),
            chain(&e)
        ))
    })?;
    let (mut main_sender, mut main_receiver) = channel::main_channel().map_err(chan_err)?;
    let (mut init_sender, mut init_receiver) = channel::init_channel().map_err(chan_err)?;
    // Only a new user namespace needs the parent before the child may go on (id maps,
    // and cgroup joins, which the unmapped child may not do itself).
    // The child waits on this pipe before joining its cgroups: meanwhile the parent
    // creates them (in parallel with the child's network namespace), and for a new user
    // namespace it also writes the id maps.
    let (go_r, go_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| RuntimeError::sys("pipe", e))?;
    let (go_r, go_w) = (Some(go_r), Some(go_w));
    let exec_notify = if req.kind == Kind::Tenant {
        Some(nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| RuntimeError::sys("pipe", e))?)
    } else {
        None
    };

    // The container process is created in (or joins) its pid namespace at clone time.
    let mut flags: u64 = 0;
    let mut restore_pidns: Option<File> = None;
    match &pid_ns {
        Some(None) if req.kind == Kind::Init => flags |= CloneFlags::CLONE_NEWPID.bits() as u64,
        Some(Some(path)) => {
            let own = File::open("/proc/self/ns/pid")
                .map_err(|e| RuntimeError::io("open", "/proc/self/ns/pid", e))?;
            let target =
                File::open(path).map_err(|e| RuntimeError::io("open pid namespace", path, e))?;
            nix::sched::setns(&target, CloneFlags::CLONE_NEWPID)
                .map_err(|e| RuntimeError::sys("setns pid namespace", e))?;
            restore_pidns = Some(own);
        }
        _ => {}
    }
    if new_user_ns {
        flags |= CloneFlags::CLONE_NEWUSER.bits() as u64;
    }
    // cgroup2 (unified host, or the unified hierarchy of a hybrid one) is joined at
    // clone time, which takes the threadgroup rwsem only for reading.
    let cgroup_fd: Option<OwnedFd> = req.cgroup.v2_dir().and_then(|dir| {
        File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)
            .ok()
            .map(OwnedFd::from)
    });

    let container = if req.kind == Kind::Init {
        Some(hook_container(
            req.id,
            req.bundle,
            req.state_dir,
            None,
            ContainerStatus::Creating,
            &req.annotations,
        )?)
    } else {
        None
    };
    let executor = WarrenExecutor {
        sigmask: req.sigmask,
        pre_exec: req.pre_exec.clone(),
    };
    let args = ContainerArgs {
        container_type: match exec_notify {
            Some((_, ref w)) => ContainerType::TenantContainer {
                exec_notify_fd: w.as_raw_fd(),
            },
            None => ContainerType::InitContainer,
        },
        syscall: SyscallType::default(),
        spec: Rc::clone(&spec),
        rootfs: req.rootfs.clone(),
        console_socket: req.console_socket.as_ref().map(|f| f.as_raw_fd()),
        notify_listener: listener,
        preserve_fds: req.preserve_fds,
        container,
        user_ns_config: user_ns_config.clone(),
        cgroup_config: libcgroups::common::CgroupConfig {
            cgroup_path: PathBuf::new(),
            systemd_cgroup: false,
            container_name: req.id.to_owned(),
        },
        detached: true,
        executor: Box::new(executor),
        no_pivot: req.no_pivot,
        stdin: None,
        stdout: None,
        stderr: None,
        as_sibling: false,
        pid_file: None,
    };

    let mut cloned = clone3(flags, cgroup_fd.as_ref().map(|f| f.as_raw_fd()));
    if cgroup_fd.is_some()
        && matches!(
            cloned,
            Err(nix::Error::ENOSYS) | Err(nix::Error::EINVAL) | Err(nix::Error::E2BIG)
        )
    {
        cloned = clone3(flags, None);
    }
    let joined_by_clone = cgroup_fd.is_some() && cloned.is_ok();
    let child = match cloned {
        Ok(0) => {
            // In the child: never returns.
            let keyring = (!req.no_new_keyring).then(|| req.id.to_owned());
            let self_join = (!new_user_ns).then_some((req.cgroup, joined_by_clone));
            let fast = (req.kind == Kind::Init && crate::init::supports(&spec)).then(|| FastInit {
                bundle: req.bundle,
                cgroup: req.cgroup,
                executor: WarrenExecutor {
                    sigmask: req.sigmask,
                    pre_exec: req.pre_exec.clone(),
                },
                seccomp: req.seccomp,
                rootfs_setup: req.rootfs_setup,
                sandbox: req.sandbox,
            });
            let code = child_main(
                args,
                fast,
                go_r,
                self_join,
                new_netns,
                !req.sandbox.loopback_down,
                &mut main_sender,
                &mut init_receiver,
                user_ns.clone(),
                exec_notify.as_ref().map(|(_, w)| w.as_raw_fd()),
                keyring,
            );
            // SAFETY: _exit ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        Ok(pid) => pid,
        Err(e) => {
            if let Some(own) = restore_pidns {
                let _ = nix::sched::setns(&own, CloneFlags::CLONE_NEWPID);
            }
            return Err(RuntimeError::sys("clone3 container init", e));
        }
    };
    if let Some(own) = restore_pidns {
        // Our own later children (hooks) must stay in the host pid namespace.
        let _ = nix::sched::setns(&own, CloneFlags::CLONE_NEWPID);
    }
    drop(go_r);
    let _ = main_sender.close();
    let _ = init_receiver.close();
    drop(args);
    let tenant_notify_r = exec_notify.map(|(r, w)| {
        drop(w);
        r
    });

    let result = parent_handshake(
        &req,
        &spec,
        child,
        joined_by_clone,
        go_w,
        user_ns_config.as_ref(),
        &mut main_receiver,
        &mut init_sender,
        tenant_notify_r,
    );
    let _ = main_receiver.close();
    let _ = init_sender.close();
    if result.is_err() {
        // SAFETY: kill(2) on the child we just cloned; it cannot have been reaped yet.
        unsafe { libc::kill(child, libc::SIGKILL) };
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
    }
    result?;
    let start_time = proc::stat(child).map(|s| s.start_time).unwrap_or(0);
    Ok(Spawned {
        pid: child,
        start_time,
    })
}

#[allow(clippy::too_many_arguments)]
fn parent_handshake(
    req: &SpawnRequest<'_>,
    spec: &Spec,
    child: i32,
    joined_by_clone: bool,
    go_w: Option<OwnedFd>,
    user_ns: Option<&UserNamespaceConfig>,
    main_receiver: &mut channel::MainReceiver,
    init_sender: &mut channel::InitSender,
    tenant_notify_r: Option<OwnedFd>,
) -> Result<()> {
    if let Some(go_w) = go_w {
        if let Some(prepare) = &req.before_release {
            (prepare.0)(child)?;
        }
        if user_ns.is_some() {
            // New user namespace: the child cannot write host cgroup files; join it here.
            req.cgroup.join(child, joined_by_clone)?;
        }
        if let Some(cfg) = user_ns {
            let pid = nix::unistd::Pid::from_raw(child);
            cfg.write_uid_mapping(pid)
                .map_err(|e| RuntimeError::Init(format!("write uid mapping: {}", chain(&e))))?;
            cfg.write_gid_mapping(pid)
                .map_err(|e| RuntimeError::Init(format!("write gid mapping: {}", chain(&e))))?;
        }
        File::from(go_w).write_all(&[GO_OK]).map_err(|e| {
            RuntimeError::Init(format!(
                "the container init exited before it was released: {e}"
            ))
        })?;
    }

    if req.kind == Kind::Init
        && let Some(hooks) = spec.hooks()
    {
        main_receiver.wait_for_hook_request().map_err(chan_err)?;
        let c = hook_container(
            req.id,
            req.bundle,
            req.state_dir,
            Some(child),
            ContainerStatus::Creating,
            &req.annotations,
        )?;
        libcontainer::hooks::run_hooks(
            hooks.prestart().as_ref(),
            Some(&c.state),
            None,
            Some(nix::unistd::Pid::from_raw(child)),
            None,
        )
        .map_err(|e| RuntimeError::Hook {
            kind: "prestart",
            path: String::new(),
            msg: chain(&e),
        })?;
        libcontainer::hooks::run_hooks(
            hooks.create_runtime().as_ref(),
            Some(&c.state),
            None,
            Some(nix::unistd::Pid::from_raw(child)),
            None,
        )
        .map_err(|e| RuntimeError::Hook {
            kind: "createRuntime",
            path: String::new(),
            msg: chain(&e),
        })?;
        init_sender.hook_done().map_err(chan_err)?;
    }
    tracing::debug!("spawn: waiting for init");
    main_receiver.wait_for_init_ready().map_err(chan_err)?;

    if let Some(r) = tenant_notify_r {
        // The tenant waits on its own notify socket; release it and learn whether the
        // exec worked (the pipe closes on exec, or carries the error).
        libcontainer::notify_socket::NotifySocket::new(&req.notify_path)
            .notify_container_start()
            .map_err(|e| RuntimeError::Init(format!("release exec process: {}", chain(&e))))?;
        let _ = std::fs::remove_file(&req.notify_path);
        let mut f = File::from(r);
        let mut buf = String::new();
        let _ = f.read_to_string(&mut buf);
        if !buf.is_empty() {
            return Err(RuntimeError::Init(buf));
        }
    }
    Ok(())
}

/// The cloned child: wait to be released, finish what the intermediate process would
/// have done, then run libcontainer's init. Returns an exit code on failure.
/// What our own init needs beyond libcontainer's arguments.
struct FastInit<'a> {
    bundle: &'a Path,
    cgroup: &'a ContainerCgroup,
    executor: WarrenExecutor,
    seccomp: Option<&'a warren_sandbox::seccomp::CompiledFilter>,
    rootfs_setup: Option<&'a warren_gpu::nvidia::RootfsSetup>,
    sandbox: &'a crate::sandbox::SandboxPlan,
}

#[allow(clippy::too_many_arguments)]
fn child_main(
    mut args: ContainerArgs,
    fast: Option<FastInit<'_>>,
    go_r: Option<OwnedFd>,
    self_join: Option<(&ContainerCgroup, bool)>,
    new_netns: bool,
    loopback: bool,
    main_sender: &mut channel::MainSender,
    init_receiver: &mut channel::InitReceiver,
    user_ns: Option<Option<PathBuf>>,
    exec_notify_fd: Option<RawFd>,
    keyring: Option<String>,
) -> i32 {
    let fail = |main_sender: &mut channel::MainSender, msg: String| -> i32 {
        if let Some(fd) = exec_notify_fd {
            // SAFETY: fd is the write end of the exec-notify pipe, owned by this process.
            let mut f = unsafe { File::from_raw_fd(fd) };
            let _ = f.write_all(msg.as_bytes());
            std::mem::forget(f);
        }
        let _ = main_sender.exec_failed(msg);
        1
    };
    tracing::debug!("child: cloned");
    // Until the workload's execve, nothing in the container may open our /proc files.
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    // Without any user namespace the network namespace can be made right away, while the
    // parent is still creating cgroups.
    let early_netns = new_netns && user_ns.is_none();
    if early_netns && let Err(e) = new_network_namespace(loopback) {
        return fail(main_sender, e);
    }
    if let Some(go_r) = go_r {
        let mut go = File::from(go_r);
        let mut msg = [0u8; 1];
        if go.read_exact(&mut msg).is_err() || msg[0] != GO_OK {
            return 1;
        }
    }
    if let Some((cg, unified_done)) = self_join {
        // Migrating oneself (writing "0" to `tasks`) skips the kernel's global
        // threadgroup rwsem, whose write side costs an RCU grace period (≈5 ms) when the
        // parent moves us by pid through cgroup.procs.
        if let Err(e) = cg.join_self(unified_done) {
            return fail(main_sender, chain(&e));
        }
    }
    // /proc is still the host's procfs here, so /proc/self names our host pid.
    let host_pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str().and_then(|s| s.parse::<i32>().ok()))
        .unwrap_or(0);
    if let Some(c) = args.container.as_mut() {
        c.set_pid(host_pid);
    }
    let _ = prctl_set_name(b"warren:[init]\0");
    match &user_ns {
        Some(Some(path)) => {
            let f = match File::open(path) {
                Ok(f) => f,
                Err(e) => {
                    return fail(
                        main_sender,
                        format!("open user namespace {}: {e}", path.display()),
                    );
                }
            };
            if let Err(e) = nix::sched::setns(&f, CloneFlags::CLONE_NEWUSER) {
                return fail(
                    main_sender,
                    format!("join user namespace {}: {e}", path.display()),
                );
            }
        }
        Some(None) if args.user_ns_config.is_some() => {
            if let Err(e) = become_root_in_userns() {
                return fail(main_sender, e);
            }
        }
        _ => {}
    }
    if new_netns
        && !early_netns
        && let Err(e) = new_network_namespace(loopback)
    {
        return fail(main_sender, e);
    }
    if let Some(id) = keyring
        && let Err(e) = join_session_keyring(&id)
    {
        return fail(main_sender, e);
    }
    if let Some(rlimits) = args
        .spec
        .process()
        .as_ref()
        .and_then(|p| p.rlimits().as_ref())
    {
        for rl in rlimits {
            let lim = libc::rlimit {
                rlim_cur: rl.soft(),
                rlim_max: rl.hard(),
            };
            let res = rl.typ() as u32;
            // SAFETY: setrlimit with a resource number from the spec and a limit struct on
            // our stack.
            if unsafe { libc::setrlimit(res, &lim) } != 0 {
                let e = std::io::Error::last_os_error();
                return fail(
                    main_sender,
                    format!(
                        "setrlimit {:?} soft={} hard={}: {e}",
                        rl.typ(),
                        rl.soft(),
                        rl.hard()
                    ),
                );
            }
        }
    }
    if let Some(f) = fast {
        let ia = crate::init::InitArgs {
            spec: &args.spec,
            rootfs: &args.rootfs,
            bundle: f.bundle,
            cgroup: f.cgroup,
            hook_state: args.container.as_ref().map(|c| &c.state),
            console_fd: args.console_socket,
            preserve_fds: args.preserve_fds,
            no_pivot: args.no_pivot,
            executor: &f.executor,
            seccomp: f.seccomp,
            rootfs_setup: f.rootfs_setup,
            sandbox: f.sandbox,
        };
        tracing::debug!("child: entering warren init");
        let e = match crate::init::run(&ia, &args.notify_listener, main_sender, init_receiver) {
            Err(e) => e,
            Ok(never) => match never {},
        };
        return fail(main_sender, e);
    }
    tracing::debug!("child: entering libcontainer init");
    match libcontainer::process::init::container_init_process(&args, main_sender, init_receiver) {
        Ok(()) => 0,
        Err(e) => fail(main_sender, chain(&e)),
    }
}

/// Gives the container its own session keyring, `_ses.ID`, as runc does, so that it
/// cannot read the keys of the runtime's session. Kernels without keyrings are fine.
fn join_session_keyring(id: &str) -> std::result::Result<(), String> {
    let name = std::ffi::CString::new(format!("_ses.{id}"))
        .map_err(|_| "container id contains NUL".to_owned())?;
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING takes a NUL-terminated name we own.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            name.as_ptr(),
        )
    };
    if r < 0 {
        let e = nix::Error::last();
        if e != nix::Error::ENOSYS {
            return Err(format!("join session keyring {name:?}: {e}"));
        }
        return Ok(());
    }
    // Let the container's processes (possibly another uid) use it, as runc does.
    let perm: u32 = 0x3f3f_0000 | 0x003f_003f;
    // SAFETY: KEYCTL_SETPERM on the key id just returned, with a permission mask.
    unsafe { libc::syscall(libc::SYS_keyctl, libc::KEYCTL_SETPERM, r, perm) };
    Ok(())
}

fn new_network_namespace(loopback: bool) -> std::result::Result<(), String> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("create network namespace: {e}"))?;
    if loopback {
        loopback_up().map_err(|e| format!("bring up loopback: {e}"))?;
    }
    Ok(())
}

/// `ip link set lo up` in the current network namespace.
fn loopback_up() -> std::result::Result<(), nix::Error> {
    // SAFETY: socket(2) with constant arguments; the fd is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: the fd was just returned by socket(2) and is owned here.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills ifr_ifru.ifru_flags of our ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) } < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: reading and writing the flags member of the union SIOCGIFFLAGS filled.
    unsafe { ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads our ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) } < 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}

fn become_root_in_userns() -> std::result::Result<(), String> {
    nix::unistd::setresgid(0.into(), 0.into(), 0.into())
        .map_err(|e| format!("setresgid 0 in user namespace: {e}"))?;
    nix::unistd::setresuid(0.into(), 0.into(), 0.into())
        .map_err(|e| format!("setresuid 0 in user namespace: {e}"))
}

fn prctl_set_name(name: &[u8]) -> i32 {
    // SAFETY: PR_SET_NAME reads at most 16 bytes from a NUL-terminated buffer we own.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0) }
}

use std::os::unix::fs::OpenOptionsExt;
