//! One pooled sandbox: created through the runtime with `warren-pool-init` as its
//! process, connected to the daemon, limited per exec through its cgroup, reset after
//! every exec, destroyed when anything about it looks wrong.

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::SigSet;
use warren_runtime::cgroups::ContainerCgroup;
use warren_runtime::verbs::create::CreateOpts;

use super::config::PoolConfig;
use super::reset::{self, TmpfsState};
use super::wire::{self, Kind};
use crate::error::{Error, Result};
use crate::ns::{self, NsFds};
use crate::spec::{self, Bind, LoadedProfile, Resources, SandboxSpec};

/// Where the sandbox's socket directory is mounted inside it.
pub const CTL_DIR: &str = "/.warren";

/// What every sandbox of a pool is made from.
#[derive(Debug)]
pub struct Ctx {
    pub cfg: PoolConfig,
    pub profile: LoadedProfile,
    pub rt: warren_runtime::Runtime,
    pub data_root: PathBuf,
    /// The pool's directory.
    pub dir: PathBuf,
    /// The pool's copy of `warren-pool-init`.
    pub init: PathBuf,
    /// The daemon's own mount and IPC namespaces.
    pub home: NsFds,
    /// The daemon's binary, run with [`CREATE_ARG`] to create each sandbox.
    pub helper: PathBuf,
}

/// A live pooled sandbox.
#[derive(Debug)]
pub struct Sandbox {
    pub seq: u64,
    /// The runtime's container id.
    pub id: String,
    /// Host pid of the init.
    pub pid: i32,
    pub ctl: UnixStream,
    pub ns: NsFds,
    pub cgroup: ContainerCgroup,
    pub dir: PathBuf,
    pub image: bool,
    pub base: Vec<TmpfsState>,
    /// Limits differ from the pool's (set for one exec).
    pub limits_changed: bool,
    pub execs: u64,
    /// The cgroup files read around every exec, kept open.
    files: cg::Files,
}

fn pool_err(ctx: &Ctx, msg: impl Into<String>) -> Error {
    Error::Pool {
        name: ctx.cfg.name.clone(),
        msg: msg.into(),
    }
}

/// Leftovers of a half-made sandbox, removed on drop unless disarmed.
struct Partial<'a> {
    ctx: &'a Ctx,
    id: String,
    dir: PathBuf,
    image: bool,
    pid: Option<i32>,
    armed: bool,
}

impl Drop for Partial<'_> {
    fn drop(&mut self) {
        if self.armed {
            teardown(self.ctx, &self.id, self.pid, &self.dir, self.image);
        }
    }
}

fn teardown(ctx: &Ctx, id: &str, pid: Option<i32>, dir: &Path, image: bool) {
    if let Err(e) = warren_runtime::verbs::delete::delete(&ctx.rt, id, true) {
        tracing::warn!(%id, error = %e, "delete pooled sandbox");
    }
    if let Some(pid) = pid {
        crate::proc::reap(pid);
    }
    if image && let Err(e) = spec::remove_image_rootfs(&ctx.data_root, id) {
        tracing::warn!(%id, error = %e, "remove image rootfs");
    }
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(%id, ?dir, error = %e, "remove sandbox directory");
    }
}

/// The argument that makes the daemon's binary create one container and exit (see
/// [`create_container`]).
pub const CREATE_ARG: &str = "__create";

/// Creates and starts container `id` from `bundle` in a fresh process running
/// `ctx.helper` (the daemon's own binary): the runtime clones the container's init from
/// its caller, which must be single-threaded (the clone's child allocates, and another
/// thread could hold the allocator's lock at that moment). The helper exits after the
/// start; the init is then reparented to the daemon, a child subreaper.
fn spawn_container(ctx: &Ctx, id: &str, bundle: &Path) -> Result<i32> {
    let out = std::process::Command::new(&ctx.helper)
        .arg(CREATE_ARG)
        .arg(&ctx.rt.root)
        .arg(id)
        .arg(bundle)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|e| Error::io("run", &ctx.helper, e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().parse::<i32>() {
        Ok(pid) if out.status.success() && pid > 0 => Ok(pid),
        _ => Err(pool_err(
            ctx,
            format!(
                "create {id}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        )),
    }
}

/// The helper's side of [`spawn_container`]: creates and starts the container (its
/// stdio is /dev/null) and returns the init's pid. On error nothing is left.
pub fn create_container(runtime_root: &Path, id: &str, bundle: &Path) -> Result<i32> {
    let rt = warren_runtime::Runtime::new(runtime_root);
    let created = warren_runtime::verbs::create::create(
        &rt,
        &CreateOpts {
            id: id.to_owned(),
            bundle: bundle.to_owned(),
            sigmask: Some(SigSet::empty()),
            ..Default::default()
        },
    )?;
    if let Err(e) = warren_runtime::verbs::start::start(&rt, id) {
        let _ = warren_runtime::verbs::delete::delete(&rt, id, true);
        crate::proc::reap(created.pid);
        return Err(e.into());
    }
    Ok(created.pid)
}

fn accept_within(l: &UnixListener, timeout: Duration) -> io::Result<UnixStream> {
    l.set_nonblocking(true)?;
    let end = Instant::now() + timeout;
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)?;
                return Ok(s);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if Instant::now() > end {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the sandbox's init did not connect",
                    ));
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => return Err(e),
        }
    }
}

impl Sandbox {
    /// Creates sandbox number `seq`. The calling thread must have called
    /// [`ns::prepare_thread`]. On error nothing is left behind.
    pub fn create(ctx: &Ctx, seq: u64) -> Result<Self> {
        let id = format!("pool-{}-{seq}", ctx.cfg.name);
        let dir = ctx.dir.join("sb").join(seq.to_string());
        let mut partial = Partial {
            ctx,
            id: id.clone(),
            dir: dir.clone(),
            image: ctx.cfg.image.is_some(),
            pid: None,
            armed: true,
        };
        // A stale directory of a sandbox that died with an earlier daemon.
        let _ = std::fs::remove_dir_all(&dir);
        let ctl_dir = dir.join("ctl");
        std::fs::create_dir_all(&ctl_dir).map_err(|e| Error::io("create", &ctl_dir, e))?;
        let init = ctl_dir.join("init");
        if std::fs::hard_link(&ctx.init, &init).is_err() {
            std::fs::copy(&ctx.init, &init).map_err(|e| Error::io("copy", &init, e))?;
        }
        let sock = ctl_dir.join("ctl.sock");
        let listener = UnixListener::bind(&sock).map_err(|e| Error::io("bind", &sock, e))?;
        if let Some((uid, gid)) = ctx.cfg.user {
            // The init runs as the pool's user and must be able to connect.
            std::os::unix::fs::chown(&sock, Some(uid), Some(gid))
                .map_err(|e| Error::io("chown", &sock, e))?;
        }

        let (rootfs, host_view, image_env) = match &ctx.cfg.image {
            Some(img) => {
                // A writable overlay, so that the runtime can make the mount points; the
                // sandbox sees it read-only (root.readonly), so nothing an exec does lands
                // in it.
                let (r, s) = spec::image_rootfs(&ctx.data_root, img, &id, false, true)?;
                (r, false, s.env)
            }
            None => {
                let r = dir.join("rootfs");
                std::fs::create_dir_all(&r).map_err(|e| Error::io("create", &r, e))?;
                (r, true, Vec::new())
            }
        };
        let s = SandboxSpec {
            args: vec![format!("{CTL_DIR}/init"), format!("{CTL_DIR}/ctl.sock")],
            env: Vec::new(),
            image_env,
            cwd: PathBuf::from("/"),
            hostname: format!("{}-{seq}", ctx.cfg.name),
            rootfs,
            host_view,
            root_readonly: true,
            tmpfs: ctx.cfg.tmpfs.clone(),
            binds: vec![Bind {
                src: ctl_dir.clone(),
                dst: PathBuf::from(CTL_DIR),
                read_only: true,
            }],
            etc_hosts: None,
            netns: None,
            resources: Resources {
                memory: Some(ctx.cfg.limits.memory),
                pids: Some(ctx.cfg.limits.pids),
                cpus: ctx.cfg.cpus,
            },
            readonly_paths: Vec::new(),
            annotations: Default::default(),
            user: ctx.cfg.user,
            cgroups_path: Some(super::manage::sandbox_cgroup(&ctx.cfg.name, seq)),
        };
        let oci = spec::build(&s, &ctx.profile)?;
        let bundle = dir.join("bundle");
        spec::write_bundle(&bundle, &oci)?;
        let pid = spawn_container(ctx, &id, &bundle)?;
        partial.pid = Some(pid);
        let mut ctl = accept_within(&listener, Duration::from_secs(10))
            .map_err(|e| Error::io("accept the init's connection on", &sock, e))?;
        drop(listener);
        let _ = std::fs::remove_file(&sock);
        // Only our init may hold this connection.
        let cred = nix::sys::socket::getsockopt(&ctl, nix::sys::socket::sockopt::PeerCredentials)
            .map_err(|e| pool_err(ctx, format!("peer credentials of {id}: {e}")))?;
        if cred.pid() != pid {
            return Err(pool_err(
                ctx,
                format!(
                    "{id}: the control socket was answered by pid {}, not the init {}",
                    cred.pid(),
                    pid
                ),
            ));
        }
        ctl.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| Error::io("configure", &sock, e))?;
        match wire::read_frame(&mut ctl) {
            Ok(Some(f)) if f.kind == Kind::Hello => {}
            Ok(other) => {
                return Err(pool_err(
                    ctx,
                    format!("{id}: the init said {other:?} instead of hello"),
                ));
            }
            Err(e) => return Err(Error::io("read the init's hello on", &sock, e)),
        }
        let sns = NsFds::of_pid(pid)?;
        let mut ro: Vec<&Path> = vec![Path::new("/dev")];
        if host_view {
            ro.push(Path::new("/etc"));
        }
        let mounts = ctx.cfg.reset_mounts();
        let base = ns::with_ns(&sns, &ctx.home, || reset::prepare(&ro, &mounts))?
            .map_err(|e| pool_err(ctx, format!("{id}: prepare: {e}")))?;
        let cgroup = ctx.rt.state_dir(&id)?.load()?.cgroup;
        let files = cg::Files::open(&cgroup)?;
        partial.armed = false;
        Ok(Self {
            seq,
            id,
            pid,
            ctl,
            ns: sns,
            cgroup,
            dir,
            image: ctx.cfg.image.is_some(),
            base,
            limits_changed: false,
            execs: 0,
            files,
        })
    }

    /// Kills and removes the sandbox.
    pub fn destroy(self, ctx: &Ctx) {
        let _ = self.ctl.shutdown(std::net::Shutdown::Both);
        teardown(ctx, &self.id, Some(self.pid), &self.dir, self.image);
    }

    /// Kills every process of the sandbox from the host (the init too): used when the
    /// init stopped answering. The sandbox must be destroyed afterwards.
    pub fn kill_all(&self) {
        if let Err(e) = self.cgroup.signal_all(libc::SIGKILL) {
            tracing::warn!(id = %self.id, error = %e, "kill sandbox processes");
        }
    }

    /// Sets the memory and process limits for the next exec (the pool's, or lower).
    pub fn set_limits(&mut self, memory: i64, pids: i64, pool: &PoolConfig) -> Result<()> {
        if memory == pool.limits.memory && pids == pool.limits.pids && !self.limits_changed {
            return Ok(());
        }
        cg::set_memory(&self.cgroup, memory)?;
        cg::set_pids(&self.cgroup, pids)?;
        self.limits_changed = memory != pool.limits.memory || pids != pool.limits.pids;
        Ok(())
    }

    /// Counters that tell whether a limit fired during an exec.
    pub fn counters(&self) -> cg::Counters {
        self.files.counters()
    }

    /// Makes the sandbox as good as new after an exec: waits for the init's report that
    /// every other process is gone, checks the cgroup agrees, clears tmpfs mounts, message
    /// queues and SysV IPC, and restores the pool's limits. The calling thread must have
    /// called [`ns::prepare_thread`].
    pub fn reset(&mut self, ctx: &Ctx) -> Result<reset::Cleaned> {
        let err = |m: String| pool_err(ctx, format!("reset {}: {m}", self.id));
        self.ctl
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| err(e.to_string()))?;
        loop {
            match wire::read_frame(&mut self.ctl) {
                Ok(Some(f)) if f.kind == Kind::Clean => {
                    let mut d = wire::Dec::new(&f.payload);
                    let _killed = d.u32().map_err(|e| err(e.to_string()))?;
                    if d.u8().map_err(|e| err(e.to_string()))? != 1 {
                        return Err(err("the init could not kill every process".into()));
                    }
                    break;
                }
                // Output that raced with a kill, or a late pong: skip.
                Ok(Some(f))
                    if matches!(
                        f.kind,
                        Kind::Stdout | Kind::Stderr | Kind::Pong | Kind::Exit
                    ) =>
                {
                    continue;
                }
                Ok(other) => return Err(err(format!("unexpected {other:?} from the init"))),
                Err(e) => return Err(err(format!("the init did not report: {e}"))),
            }
        }
        let pids = self.files.pids().map_err(|e| err(e.to_string()))?;
        if pids != [self.pid] {
            return Err(err(format!(
                "processes left in the cgroup: {pids:?} (init {})",
                self.pid
            )));
        }
        let mounts = ctx.cfg.reset_mounts();
        let cleaned = ns::with_ns(&self.ns, &ctx.home, || reset::clean(&mounts, &self.base))?
            .map_err(|e| err(e.to_string()))?;
        if self.limits_changed {
            cg::set_memory(&self.cgroup, ctx.cfg.limits.memory)?;
            cg::set_pids(&self.cgroup, ctx.cfg.limits.pids)?;
            self.limits_changed = false;
        }
        Ok(cleaned)
    }
}

/// Per-exec limits and the counters that report them, in v1 or v2 cgroup files.
pub mod cg {
    use std::path::{Path, PathBuf};

    use warren_runtime::cgroups::ContainerCgroup;

    use crate::error::{Error, Result};

    fn write(path: PathBuf, v: &str) -> Result<()> {
        std::fs::write(&path, v).map_err(|e| Error::io("write", path, e))
    }

    fn read_key(path: &Path, key: &str) -> u64 {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    let (k, v) = l.split_once(' ')?;
                    (k == key).then(|| v.trim().parse().ok()).flatten()
                })
            })
            .unwrap_or(0)
    }

    fn read_num(path: &Path) -> Option<i64> {
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    /// Sets the memory limit (and the v1 memory+swap limit to the same value, in the
    /// order the kernel accepts).
    pub fn set_memory(cg: &ContainerCgroup, bytes: i64) -> Result<()> {
        if let Some(d) = cg.v1_dir("memory") {
            let limit = d.join("memory.limit_in_bytes");
            let memsw = d.join("memory.memsw.limit_in_bytes");
            let lowering = read_num(&limit).is_some_and(|cur| bytes < cur);
            let has_memsw = memsw.exists();
            if lowering {
                write(limit, &bytes.to_string())?;
                if has_memsw {
                    write(memsw, &bytes.to_string())?;
                }
            } else {
                if has_memsw {
                    write(memsw, &bytes.to_string())?;
                }
                write(limit, &bytes.to_string())?;
            }
            return Ok(());
        }
        if let Some(d) = cg.v2_dir() {
            write(d.join("memory.max"), &bytes.to_string())?;
            let swap = d.join("memory.swap.max");
            if swap.exists() {
                write(swap, "0")?;
            }
        }
        Ok(())
    }

    /// Sets the process limit.
    pub fn set_pids(cg: &ContainerCgroup, n: i64) -> Result<()> {
        if let Some(d) = cg.v1_dir("pids").or(cg.v2_dir()) {
            write(d.join("pids.max"), &n.to_string())?;
        }
        Ok(())
    }

    /// Monotonic counters: OOM kills and forks refused at the process limit.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Counters {
        pub oom_kills: u64,
        pub pids_max: u64,
    }

    /// `cgroup.procs`, the OOM and the pids event counters of one sandbox, open.
    #[derive(Debug)]
    pub struct Files {
        procs: std::fs::File,
        oom: Option<(std::fs::File, &'static str)>,
        pids_events: Option<std::fs::File>,
    }

    fn read_at(f: &std::fs::File, buf: &mut Vec<u8>) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        buf.clear();
        buf.resize(4096, 0);
        let mut n = 0;
        loop {
            let k = f.read_at(&mut buf[n..], n as u64)?;
            if k == 0 {
                break;
            }
            n += k;
            if n == buf.len() {
                buf.resize(n * 2, 0);
            }
        }
        buf.truncate(n);
        Ok(())
    }

    fn key_in(text: &[u8], key: &str) -> u64 {
        String::from_utf8_lossy(text)
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok()).flatten()
            })
            .unwrap_or(0)
    }

    impl Files {
        pub fn open(cg: &ContainerCgroup) -> Result<Self> {
            let procs_dir = cg
                .procs_dir()
                .ok_or_else(|| Error::Invalid("the sandbox's cgroup has no process list".into()))?;
            let p = procs_dir.join("cgroup.procs");
            let procs = std::fs::File::open(&p).map_err(|e| Error::io("open", &p, e))?;
            let oom = match cg.v1_dir("memory") {
                Some(d) => std::fs::File::open(d.join("memory.oom_control"))
                    .ok()
                    .map(|f| (f, "oom_kill")),
                None => cg.v2_dir().and_then(|d| {
                    std::fs::File::open(d.join("memory.events"))
                        .ok()
                        .map(|f| (f, "oom_kill"))
                }),
            };
            let pids_events = cg
                .v1_dir("pids")
                .or(cg.v2_dir())
                .and_then(|d| std::fs::File::open(d.join("pids.events")).ok());
            Ok(Self {
                procs,
                oom,
                pids_events,
            })
        }

        /// Processes in the sandbox's cgroup (it cannot make child cgroups: its cgroup
        /// file system is read-only).
        pub fn pids(&self) -> std::io::Result<Vec<i32>> {
            let mut b = Vec::new();
            read_at(&self.procs, &mut b)?;
            Ok(String::from_utf8_lossy(&b)
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect())
        }

        pub fn counters(&self) -> Counters {
            let mut b = Vec::new();
            let oom_kills = match &self.oom {
                Some((f, key)) if read_at(f, &mut b).is_ok() => key_in(&b, key),
                _ => 0,
            };
            let pids_max = match &self.pids_events {
                Some(f) if read_at(f, &mut b).is_ok() => key_in(&b, "max"),
                _ => 0,
            };
            Counters {
                oom_kills,
                pids_max,
            }
        }
    }

    pub fn counters(cg: &ContainerCgroup) -> Counters {
        let oom_kills = match cg.v1_dir("memory") {
            Some(d) => read_key(&d.join("memory.oom_control"), "oom_kill"),
            None => cg
                .v2_dir()
                .map_or(0, |d| read_key(&d.join("memory.events"), "oom_kill")),
        };
        let pids_max = cg
            .v1_dir("pids")
            .or(cg.v2_dir())
            .map_or(0, |d| read_key(&d.join("pids.events"), "max"));
        Counters {
            oom_kills,
            pids_max,
        }
    }
}
