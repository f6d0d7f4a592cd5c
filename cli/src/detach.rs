//! Starting a detached sandbox: the CLI forks, the child starts a new session and forks
//! again (so the monitor is no session leader and no child of the CLI), and the grandchild
//! becomes the monitor: a child subreaper that creates and starts the sandbox *itself* (so
//! the sandbox's init is its child and it can wait for it), tells the CLI over a pipe that
//! the sandbox runs (or why not), and execs the small `warren-monitor` binary with the
//! sandbox's stdio. The CLI then exits; the monitor lives on.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;

use nix::fcntl::OFlag;
use nix::unistd::ForkResult;
use warren_runtime::verbs::create::CreateOpts;

use crate::monitor;
use crate::run::Prepared;
use crate::state;

/// Name of the monitor binary, installed beside `warren`.
pub const MONITOR_BIN: &str = "warren-monitor";

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1)
}

/// Forks the monitor and waits until it reports that the sandbox runs.
pub fn spawn(p: &Prepared, opts: &CreateOpts, exe: &Path) -> Result<(), String> {
    // fork() copies only the calling thread: everything below relies on being alone.
    if threads() > 1 {
        return Err("internal error: the CLI must be single-threaded to fork the monitor".into());
    }
    let (sync_r, sync_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the process is single-threaded (checked above), so the child may run any code.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Parent { child } => {
            drop(sync_w);
            let _ = nix::sys::wait::waitpid(child, None);
            let mut msg = Vec::new();
            let mut f = std::fs::File::from(sync_r);
            let _ = std::io::Read::read_to_end(&mut f, &mut msg);
            let msg = String::from_utf8_lossy(&msg);
            match msg.strip_prefix("ok") {
                Some(_) => Ok(()),
                None if msg.is_empty() => {
                    Err("the monitor exited before the sandbox started".into())
                }
                None => Err(msg.trim().to_owned()),
            }
        }
        ForkResult::Child => {
            drop(sync_r);
            let _ = nix::unistd::setsid();
            // SAFETY: still single-threaded.
            match unsafe { nix::unistd::fork() } {
                Ok(ForkResult::Child) => {
                    let err = monitor_main(p, opts, exe, sync_w);
                    // Only reached on failure; sync_w was consumed, the error is in the log.
                    let _ = err;
                    // SAFETY: _exit(2) ends the process without running destructors that
                    // belong to the CLI (the prepared sandbox must not be removed here).
                    unsafe { libc::_exit(1) }
                }
                _ => {
                    // SAFETY: as above.
                    unsafe { libc::_exit(0) }
                }
            }
        }
    }
}

fn report(sync: OwnedFd, msg: &str) {
    let _ = nix::unistd::write(&sync, msg.as_bytes());
}

fn dup2(from: RawFd, to: RawFd) {
    // SAFETY: dup2(2) on descriptors we own; the target is one of our stdio slots.
    unsafe { libc::dup2(from, to) };
}

fn clear_cloexec(fd: RawFd) {
    // SAFETY: fcntl(F_SETFD) on an fd we own.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
}

/// The monitor before it execs `warren-monitor`. Returns only on failure (reported on
/// `sync`).
fn monitor_main(p: &Prepared, opts: &CreateOpts, exe: &Path, sync: OwnedFd) -> String {
    match start_sandbox(p, opts) {
        Ok(m) => {
            report_ok(sync);
            let cfg = monitor::Config {
                id: p.record.id.clone(),
                name: p.record.name.clone(),
                pid: m.pid,
                stdout_fd: m.stdout,
                stderr_fd: m.stderr,
                pty_fd: m.pty,
                log: p.roots.log_path(&p.record.id),
                log_max: m.log_max,
                exit_file: p.roots.exit_path(&p.record.id),
                events: p.roots.events_path(),
                oom_file: m.oom_file,
                cleanup: vec![
                    exe.as_os_str().to_owned(),
                    OsString::from("--root"),
                    p.roots.root.clone().into(),
                    OsString::from("--data-root"),
                    p.roots.data_root.clone().into(),
                    OsString::from("__cleanup"),
                    p.record.id.clone().into(),
                ],
            };
            for fd in [m.stdout, m.stderr, m.pty].into_iter().flatten() {
                clear_cloexec(fd);
            }
            let bin = exe.with_file_name(MONITOR_BIN);
            let mut argv = vec![OsString::from(MONITOR_BIN)];
            argv.extend(cfg.to_args());
            let err = exec(&bin, &argv);
            tracing::warn!(bin = %bin.display(), error = %err, "small monitor unavailable; monitoring in-process");
            monitor::run(&cfg).to_string()
        }
        Err(e) => {
            report(sync, &e);
            e
        }
    }
}

fn report_ok(sync: OwnedFd) {
    report(sync, "ok\n");
}

struct Monitored {
    pid: i32,
    stdout: Option<RawFd>,
    stderr: Option<RawFd>,
    pty: Option<RawFd>,
    oom_file: Option<std::path::PathBuf>,
    log_max: u64,
}

fn start_sandbox(p: &Prepared, opts: &CreateOpts) -> Result<Monitored, String> {
    let rt = p.roots.runtime();
    let id = &p.record.id;
    let _ = std::env::set_current_dir("/");
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes an integer flag.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("open /dev/null: {e}"))?;
    let null = OwnedFd::from(null);
    dup2(null.as_raw_fd(), 0);
    let mut opts = opts.clone();
    let mut pty_pair = None;
    let mut pipes = None;
    if p.record.tty {
        let pair = warren_runtime::console::pair().map_err(|e| e.to_string())?;
        opts.console_fd = Some(Arc::new(pair.container_end));
        pty_pair = Some(pair.runtime_end);
        dup2(null.as_raw_fd(), 1);
        dup2(null.as_raw_fd(), 2);
    } else {
        let (out_r, out_w) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let (err_r, err_w) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        dup2(out_w.as_raw_fd(), 1);
        dup2(err_w.as_raw_fd(), 2);
        pipes = Some((out_r, err_r));
    }
    let created = warren_runtime::verbs::create::create(&rt, &opts);
    // Our copies of the sandbox's stdout/stderr go: the pipes reach EOF when it exits.
    dup2(null.as_raw_fd(), 1);
    let mlog = p.roots.run_dir(id).join("monitor.log");
    if let Ok(f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&mlog)
    {
        dup2(f.as_raw_fd(), 2);
    } else {
        dup2(null.as_raw_fd(), 2);
    }
    let created = created.map_err(|e| e.to_string())?;
    let fail = |e: String| -> String {
        let _ = warren_runtime::verbs::delete::delete(&rt, id, true);
        e
    };
    let pty = match &pty_pair {
        Some(sock) => Some(
            warren_runtime::console::recv_master(sock)
                .map_err(|e| fail(e.to_string()))?
                .into_raw_fd(),
        ),
        None => None,
    };
    warren_runtime::verbs::start::start(&rt, id).map_err(|e| fail(e.to_string()))?;
    state::append_event(&p.roots, "create", id, &p.record.name, None);
    state::append_event(&p.roots, "start", id, &p.record.name, None);
    let _ = std::fs::write(
        p.roots.run_dir(id).join("monitor.pid"),
        std::process::id().to_string(),
    );
    let cg = &created.state.cgroup;
    let oom_file = match (cg.mode, cg.v2_dir(), cg.v1_dir("memory")) {
        (warren_runtime::cgroups::Mode::Unified, Some(d), _) => Some(d.join("memory.events")),
        (_, _, Some(d)) => Some(d.join("memory.oom_control")),
        _ => None,
    };
    let (stdout, stderr) = match pipes {
        Some((o, e)) => (Some(o.into_raw_fd()), Some(e.into_raw_fd())),
        None => (None, None),
    };
    Ok(Monitored {
        pid: created.pid,
        stdout,
        stderr,
        pty,
        oom_file,
        log_max: p.log_max,
    })
}

fn exec(bin: &Path, argv: &[OsString]) -> std::io::Error {
    use std::os::unix::ffi::OsStrExt;
    let Ok(prog) = std::ffi::CString::new(bin.as_os_str().as_bytes()) else {
        return std::io::Error::other("monitor path contains NUL");
    };
    let cargs: Vec<std::ffi::CString> = argv
        .iter()
        .filter_map(|a| std::ffi::CString::new(a.as_bytes()).ok())
        .collect();
    let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let env = [
        c"PATH=/usr/sbin:/usr/bin:/sbin:/bin".as_ptr(),
        std::ptr::null(),
    ];
    // SAFETY: execve(2) with NUL-terminated strings and NULL-terminated arrays that live
    // until the call; on success it does not return.
    unsafe { libc::execve(prog.as_ptr(), ptrs.as_ptr(), env.as_ptr()) };
    std::io::Error::last_os_error()
}
