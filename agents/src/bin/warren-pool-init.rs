//! `warren-pool-init`: PID 1 of every pooled sandbox.
//!
//! The runtime starts it like any container process, so the profile's capabilities,
//! no_new_privs, Landlock ruleset and seccomp filter are already in force when `main`
//! runs, and every command it starts inherits them. It connects to the pool daemon's
//! socket (its only argument, bind-mounted read-only into the sandbox) and then serves
//! [`wire`] frames, one command at a time: spawn with argv, env and cwd; stream stdout and
//! stderr; report the exit status; then kill and reap everything else in the sandbox
//! (`kill(-1, SIGKILL)` from PID 1 reaches every other process of the pid namespace) and
//! say so. It never runs two commands at once.
//!
//! Built static (`-C target-feature=+crt-static`) so that it runs in any image; it uses
//! only std and libc. Exit status: 0 when the daemon hung up, 1 on a fatal error.

#[path = "../pool/wire.rs"]
#[allow(dead_code)]
mod wire;

use std::ffi::{CString, OsString};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use wire::{Exit, Kind, Spawn};

const DEFAULT_SOCKET: &str = "/.warren/ctl.sock";
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How long the cleanup after a command may take before the daemon is told it failed.
const CLEAN_TIMEOUT: Duration = Duration::from_secs(3);

/// Steps of the child before `execve`, reported with the errno when one fails.
const STAGE_CWD: i32 = 1;
const STAGE_SETGID: i32 = 2;
const STAGE_SETUID: i32 = 3;
const STAGE_EXEC: i32 = 4;

fn main() {
    let path = std::env::args_os()
        .nth(1)
        .unwrap_or_else(|| OsString::from(DEFAULT_SOCKET));
    if let Err(e) = serve(&path) {
        // stderr is /dev/null once connected; this reaches the daemon's log only when the
        // connection itself failed.
        eprintln!("warren-pool-init: {e}");
        std::process::exit(1);
    }
}

fn last_errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// SIGCHLD blocked and readable from a signalfd, so the poll loop sees child exits.
fn sigchld_fd() -> io::Result<OwnedFd> {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t on our stack.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
    }
    // SAFETY: sigprocmask with a valid set and a null old-set pointer; single-threaded.
    cvt(unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) })?;
    // SAFETY: signalfd(-1, ...) creates a new fd from a valid sigset.
    let fd = cvt(unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) })?;
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn drain_signalfd(fd: &OwnedFd) {
    let mut buf = [0u8; std::mem::size_of::<libc::signalfd_siginfo>() * 8];
    loop {
        // SAFETY: read into a buffer we own, of the given length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return;
        }
    }
}

fn connect(path: &OsString) -> io::Result<UnixStream> {
    let mut last = None;
    for _ in 0..100 {
        match UnixStream::connect(path) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Err(last.unwrap_or_else(|| io::Error::other("connect")))
}

/// stdin, stdout and stderr become /dev/null: the commands get their own pipes, and
/// nothing the init inherited from the daemon stays reachable.
fn null_stdio() {
    // SAFETY: open with a NUL-terminated path; the result is checked.
    let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        return;
    }
    for target in 0..3 {
        // SAFETY: dup2 onto the standard descriptors, which we own.
        unsafe { libc::dup2(fd, target) };
    }
    if fd > 2 {
        // SAFETY: closing the fd we opened above.
        unsafe { libc::close(fd) };
    }
}

fn serve(path: &OsString) -> io::Result<()> {
    let sigfd = sigchld_fd()?;
    // Non-dumpable: commands running as the same user cannot read or write the init's
    // memory through /proc (the agent profile also blocks ptrace).
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let mut ctl = connect(path)?;
    null_stdio();
    let mut hello = wire::Enc::default();
    hello.u32(wire::VERSION);
    wire::write_frame(&mut ctl, Kind::Hello, &hello.0)?;
    loop {
        let Some(f) = wire::read_frame(&mut ctl)? else {
            // The daemon hung up: nothing may outlive it.
            kill_and_reap(&sigfd, CLEAN_TIMEOUT);
            return Ok(());
        };
        match f.kind {
            Kind::Spawn => match Spawn::decode(&f.payload) {
                Ok(s) => run_one(&mut ctl, &sigfd, &s)?,
                Err(e) => {
                    wire::write_frame(&mut ctl, Kind::Error, e.to_string().as_bytes())?;
                }
            },
            Kind::Ping => wire::write_frame(&mut ctl, Kind::Pong, &[])?,
            Kind::Kill => {}
            other => {
                let msg = format!("unexpected frame {other:?}");
                wire::write_frame(&mut ctl, Kind::Error, msg.as_bytes())?;
            }
        }
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills two fds into our array.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: two fresh fds that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
}

/// Everything the child needs, prepared before `fork` (the child must not allocate).
struct Prepared {
    argv: Vec<CString>,
    env: Vec<CString>,
    candidates: Vec<CString>,
    cwd: CString,
}

fn prepare(s: &Spawn) -> Result<Prepared, (i32, String)> {
    let cstr = |b: &[u8], what: &str| {
        CString::new(b.to_vec()).map_err(|_| (libc::EINVAL, format!("{what} contains a NUL byte")))
    };
    let argv: Vec<CString> = s
        .argv
        .iter()
        .map(|a| cstr(a, "an argument"))
        .collect::<Result<_, _>>()?;
    let Some(arg0) = s.argv.first() else {
        return Err((libc::EINVAL, "empty command".into()));
    };
    if arg0.is_empty() {
        return Err((libc::ENOENT, String::new()));
    }
    let env: Vec<CString> = s
        .env
        .iter()
        .map(|e| cstr(e, "an environment variable"))
        .collect::<Result<_, _>>()?;
    let path_var: &[u8] = s
        .env
        .iter()
        .find_map(|e| e.strip_prefix(b"PATH="))
        .unwrap_or(DEFAULT_PATH.as_bytes());
    let candidates = if arg0.contains(&b'/') {
        vec![cstr(arg0, "the command")?]
    } else {
        path_var
            .split(|&b| b == b':')
            .map(|dir| {
                let mut p = if dir.is_empty() {
                    b".".to_vec()
                } else {
                    dir.to_vec()
                };
                p.push(b'/');
                p.extend_from_slice(arg0);
                cstr(&p, "the command")
            })
            .collect::<Result<_, _>>()?
    };
    let cwd = if s.cwd.is_empty() {
        c"/".to_owned()
    } else {
        cstr(&s.cwd, "the working directory")?
    };
    Ok(Prepared {
        argv,
        env,
        candidates,
        cwd,
    })
}

fn ptrs(v: &[CString]) -> Vec<*const libc::c_char> {
    let mut p: Vec<*const libc::c_char> = v.iter().map(|c| c.as_ptr()).collect();
    p.push(std::ptr::null());
    p
}

/// Reports a failed step to the parent through the error pipe and exits.
///
/// # Safety
/// Only async-signal-safe calls: this runs in the forked child.
unsafe fn child_fail(fd: RawFd, stage: i32, errno: i32) -> ! {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&errno.to_le_bytes());
    b[4..].copy_from_slice(&stage.to_le_bytes());
    // SAFETY: write(2) and _exit(2) are async-signal-safe; `b` lives on our stack.
    unsafe {
        libc::write(fd, b.as_ptr().cast(), b.len());
        libc::_exit(127)
    }
}

/// The forked child: becomes the command.
///
/// # Safety
/// Runs between `fork` and `execve`: async-signal-safe calls only, no allocation; every
/// pointer array is NULL-terminated and outlives the call (prepared by the parent).
#[allow(clippy::too_many_arguments)]
unsafe fn child(
    fds: [RawFd; 4],
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    candidates: &[*const libc::c_char],
    cwd: *const libc::c_char,
    uid: u32,
    gid: u32,
) -> ! {
    let [stdin, stdout, stderr, errp] = fds;
    // SAFETY: each call in the block is async-signal-safe and takes valid pointers into
    // memory the parent prepared before forking, or plain integers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        // Rust ignores SIGPIPE in its own processes; commands expect the default.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::setsid();
        libc::dup2(stdin, 0);
        libc::dup2(stdout, 1);
        libc::dup2(stderr, 2);
        // A fresh session keyring: keys one command adds must not reach the next. (The
        // agent profile's seccomp denies keyctl; then there are no keys to leak either.)
        libc::syscall(
            libc::SYS_keyctl,
            1, /* KEYCTL_JOIN_SESSION_KEYRING */
            0usize,
        );
        if gid != wire::KEEP_ID {
            libc::setgroups(0, std::ptr::null());
            if libc::setgid(gid) != 0 {
                child_fail(errp, STAGE_SETGID, last_errno_raw());
            }
        }
        if uid != wire::KEEP_ID && libc::setuid(uid) != 0 {
            child_fail(errp, STAGE_SETUID, last_errno_raw());
        }
        if libc::chdir(cwd) != 0 {
            child_fail(errp, STAGE_CWD, last_errno_raw());
        }
        let mut err = libc::ENOENT;
        for &c in candidates {
            if c.is_null() {
                break;
            }
            libc::execve(c, argv.as_ptr(), envp.as_ptr());
            let e = last_errno_raw();
            if e == libc::ENOENT || e == libc::ENOTDIR {
                continue;
            }
            err = e;
            if e != libc::EACCES {
                break;
            }
        }
        child_fail(errp, STAGE_EXEC, err)
    }
}

fn last_errno_raw() -> i32 {
    // SAFETY: __errno_location returns this thread's errno slot; reading it is safe.
    unsafe { *libc::__errno_location() }
}

fn stage_name(stage: i32) -> &'static str {
    match stage {
        STAGE_CWD => "chdir",
        STAGE_SETGID => "setgid",
        STAGE_SETUID => "setuid",
        _ => "exec",
    }
}

/// Reaps what has exited; true when we have no child left, so that no other process
/// exists in the sandbox.
fn alone() -> bool {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid status pointer.
        let p = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if p > 0 {
            continue;
        }
        return p < 0 && last_errno() == libc::ECHILD;
    }
}

/// Kills every process of the sandbox but ourselves (PID 1) and reaps them; returns how
/// many were reaped and whether none is left.
fn kill_and_reap(sigfd: &OwnedFd, timeout: Duration) -> (u32, bool) {
    let start = Instant::now();
    let mut reaped = 0u32;
    let mut first = true;
    loop {
        // Every process of the namespace descends from us, so once we have no child
        // (ECHILD) nobody else is left: `kill(-1)` walks every process of the host, skip it
        // in that common case.
        if !first || !alone() {
            // SAFETY: kill(-1) from PID 1 signals every other process of the namespace.
            unsafe { libc::kill(-1, libc::SIGKILL) };
        }
        first = false;
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid status pointer.
            let p = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if p > 0 {
                reaped += 1;
                continue;
            }
            if p < 0 {
                match last_errno() {
                    libc::EINTR => continue,
                    libc::ECHILD => return (reaped, true),
                    _ => return (reaped, false),
                }
            }
            break;
        }
        if start.elapsed() > timeout {
            return (reaped, false);
        }
        let mut pfd = libc::pollfd {
            fd: sigfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd on our stack.
        unsafe { libc::poll(&mut pfd, 1, 5) };
        drain_signalfd(sigfd);
    }
}

fn send_clean(ctl: &mut UnixStream, sigfd: &OwnedFd) -> io::Result<()> {
    let (n, ok) = kill_and_reap(sigfd, CLEAN_TIMEOUT);
    // Keys a command linked into the sandbox's session keyring (its own, made by the
    // runtime) must not reach the next one. Under the agent profile keyctl is denied, so
    // there is nothing to clear.
    // SAFETY: keyctl(KEYCTL_CLEAR = 7, KEY_SPEC_SESSION_KEYRING = -3): integer arguments.
    unsafe { libc::syscall(libc::SYS_keyctl, 7, -3i32) };
    let mut e = wire::Enc::default();
    e.u32(n).u8(u8::from(ok));
    wire::write_frame(ctl, Kind::Clean, &e.0)
}

fn spawn_failed(ctl: &mut UnixStream, errno: i32, what: &str) -> io::Result<()> {
    let mut e = wire::Enc::default();
    e.i32(errno);
    e.0.extend_from_slice(what.as_bytes());
    wire::write_frame(ctl, Kind::SpawnFailed, &e.0)
}

fn tv_us(tv: libc::timeval) -> u64 {
    (tv.tv_sec.max(0) as u64) * 1_000_000 + tv.tv_usec.max(0) as u64
}

/// Output of the running command.
struct Stream {
    fd: Option<OwnedFd>,
    kind: Kind,
}

struct Limits {
    total: u64,
    limit: u64,
    hit: bool,
}

/// Reads what is available; forwards it within the output limit. Returns false when the
/// limit was reached now (the caller kills the command).
fn pump(ctl: &mut UnixStream, s: &mut Stream, lim: &mut Limits) -> io::Result<bool> {
    let Some(fd) = &s.fd else { return Ok(true) };
    let mut buf = vec![0u8; wire::CHUNK];
    loop {
        // SAFETY: read into our buffer of the given length from an fd we own.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 {
            s.fd = None;
            return Ok(true);
        }
        if n < 0 {
            return match last_errno() {
                libc::EINTR => continue,
                libc::EAGAIN => Ok(true),
                _ => {
                    s.fd = None;
                    Ok(true)
                }
            };
        }
        let mut n = n as usize;
        if lim.hit {
            continue;
        }
        let mut within = true;
        if lim.limit > 0 && lim.total + n as u64 > lim.limit {
            n = (lim.limit - lim.total) as usize;
            lim.hit = true;
            within = false;
        }
        lim.total += n as u64;
        if n > 0 {
            wire::write_frame(ctl, s.kind, &buf[..n])?;
        }
        if !within {
            return Ok(false);
        }
    }
}

fn is_dir(path: &CString) -> Result<bool, i32> {
    // SAFETY: stat into a zeroed struct on our stack with a NUL-terminated path.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::stat(path.as_ptr(), &mut st) } != 0 {
        return Err(last_errno());
    }
    Ok(st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

/// Starts the command with `posix_spawn` (glibc's `clone(CLONE_VM | CLONE_VFORK)` on a
/// stack of its own: no copy of our page tables, exec errors returned directly).
fn spawn_fast(
    p: &Prepared,
    s: &Spawn,
    fds: [RawFd; 3],
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> Result<i32, (i32, String)> {
    let arg0 = String::from_utf8_lossy(&s.argv[0]).into_owned();
    let cwd_msg = || format!("chdir {}", String::from_utf8_lossy(&s.cwd));
    // Checked here, so that a bad working directory is not taken for a missing command.
    match is_dir(&p.cwd) {
        Ok(true) => {}
        Ok(false) => return Err((libc::ENOTDIR, cwd_msg())),
        Err(e) => return Err((e, cwd_msg())),
    }
    let Some(cmd) = p.candidates.iter().find(|c| matches!(is_dir(c), Ok(false))) else {
        return Err((libc::ENOENT, arg0));
    };
    // SAFETY: plain-data structures initialised by the *_init calls below before use.
    let mut fa: libc::posix_spawn_file_actions_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut attr: libc::posix_spawnattr_t = unsafe { std::mem::zeroed() };
    // SAFETY: empty and full signal sets initialised by sigemptyset/sigfillset.
    let (mut none, mut all): (libc::sigset_t, libc::sigset_t) =
        unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is to a live local or to NUL-terminated strings and
    // NULL-terminated arrays prepared by the caller; the file actions and attributes are
    // initialised before use and destroyed after.
    let r = unsafe {
        libc::sigemptyset(&mut none);
        libc::sigfillset(&mut all);
        libc::posix_spawn_file_actions_init(&mut fa);
        libc::posix_spawnattr_init(&mut attr);
        libc::posix_spawn_file_actions_adddup2(&mut fa, fds[0], 0);
        libc::posix_spawn_file_actions_adddup2(&mut fa, fds[1], 1);
        libc::posix_spawn_file_actions_adddup2(&mut fa, fds[2], 2);
        libc::posix_spawn_file_actions_addchdir_np(&mut fa, p.cwd.as_ptr());
        libc::posix_spawnattr_setflags(
            &mut attr,
            (libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short
                | libc::POSIX_SPAWN_SETSID,
        );
        libc::posix_spawnattr_setsigmask(&mut attr, &none);
        libc::posix_spawnattr_setsigdefault(&mut attr, &all);
        let r = libc::posix_spawn(
            &mut pid,
            cmd.as_ptr(),
            &fa,
            &attr,
            argv.as_ptr() as *const *mut libc::c_char,
            envp.as_ptr() as *const *mut libc::c_char,
        );
        libc::posix_spawn_file_actions_destroy(&mut fa);
        libc::posix_spawnattr_destroy(&mut attr);
        r
    };
    if r != 0 {
        return Err((r, arg0));
    }
    Ok(pid)
}

/// Starts the command with `fork`, for what `posix_spawn` cannot do (another user).
fn spawn_forked(
    p: &Prepared,
    s: &Spawn,
    fds: [&OwnedFd; 3],
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    cands: &[*const libc::c_char],
) -> Result<i32, (i32, String)> {
    let (errp_r, errp_w) =
        pipe().map_err(|e| (e.raw_os_error().unwrap_or(libc::EIO), "pipe".to_owned()))?;
    // SAFETY: we are single-threaded, so the child may run the async-signal-safe code in
    // `child` until execve.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err((last_errno(), "fork".into()));
    }
    if pid == 0 {
        // SAFETY: the forked child; all pointers were prepared above and stay valid.
        unsafe {
            child(
                [
                    fds[0].as_raw_fd(),
                    fds[1].as_raw_fd(),
                    fds[2].as_raw_fd(),
                    errp_w.as_raw_fd(),
                ],
                argv,
                envp,
                cands,
                p.cwd.as_ptr(),
                s.uid,
                s.gid,
            )
        }
    }
    drop(errp_w);
    // The error pipe closes on a successful execve (O_CLOEXEC) or carries errno+stage.
    let mut errp = std::fs::File::from(errp_r);
    let mut b = [0u8; 8];
    let mut got = 0;
    loop {
        match errp.read(&mut b[got..]) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if got == b.len() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if got < b.len() {
        return Ok(pid);
    }
    let mut st = 0;
    // SAFETY: reaping our failed child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    let errno = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let stage = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let what = match stage {
        STAGE_EXEC => String::from_utf8_lossy(&s.argv[0]).into_owned(),
        STAGE_CWD => format!("chdir {}", String::from_utf8_lossy(&s.cwd)),
        other => stage_name(other).to_owned(),
    };
    Err((errno, what))
}

fn run_one(ctl: &mut UnixStream, sigfd: &OwnedFd, s: &Spawn) -> io::Result<()> {
    let start = Instant::now();
    let p = match prepare(s) {
        Ok(p) => p,
        Err((errno, what)) => {
            spawn_failed(ctl, errno, &what)?;
            return send_clean(ctl, sigfd);
        }
    };
    let argv = ptrs(&p.argv);
    let envp = ptrs(&p.env);
    let cands = ptrs(&p.candidates);
    let (in_r, in_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let spawned = if s.uid == wire::KEEP_ID && s.gid == wire::KEEP_ID {
        spawn_fast(
            &p,
            s,
            [in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()],
            &argv,
            &envp,
        )
    } else {
        spawn_forked(&p, s, [&in_r, &out_w, &err_w], &argv, &envp, &cands)
    };
    drop((in_r, out_w, err_w));
    let pid = match spawned {
        Ok(pid) => pid,
        Err((errno, what)) => {
            spawn_failed(ctl, errno, &what)?;
            return send_clean(ctl, sigfd);
        }
    };
    let mut e = wire::Enc::default();
    e.i32(pid);
    wire::write_frame(ctl, Kind::Started, &e.0)?;

    set_nonblocking(out_r.as_raw_fd());
    set_nonblocking(err_r.as_raw_fd());
    set_nonblocking(in_w.as_raw_fd());
    let mut streams = [
        Stream {
            fd: Some(out_r),
            kind: Kind::Stdout,
        },
        Stream {
            fd: Some(err_r),
            kind: Kind::Stderr,
        },
    ];
    let mut stdin = Some(in_w);
    let mut stdin_off = 0usize;
    if s.stdin.is_empty() {
        stdin = None;
    }
    let mut lim = Limits {
        total: 0,
        limit: s.output_limit,
        hit: false,
    };
    let deadline = (s.timeout_ms > 0).then(|| start + Duration::from_millis(s.timeout_ms));
    let mut flags = 0u8;
    let mut killed = false;
    let mut status: Option<(i32, libc::rusage)> = None;
    while status.is_none() {
        let mut pfds: Vec<libc::pollfd> = Vec::with_capacity(5);
        pfds.push(libc::pollfd {
            fd: ctl.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        pfds.push(libc::pollfd {
            fd: sigfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        for st in &streams {
            pfds.push(libc::pollfd {
                fd: st.fd.as_ref().map_or(-1, |f| f.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        pfds.push(libc::pollfd {
            fd: stdin.as_ref().map_or(-1, |f| f.as_raw_fd()),
            events: libc::POLLOUT,
            revents: 0,
        });
        let timeout = match deadline {
            Some(d) if !killed => {
                let left = d.saturating_duration_since(Instant::now());
                (left.as_micros().div_ceil(1000)).min(i32::MAX as u128) as i32
            }
            _ => -1,
        };
        // SAFETY: a valid array of pollfds of the given length.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout) };
        if r < 0 && last_errno() != libc::EINTR {
            return Err(io::Error::last_os_error());
        }
        if let Some(d) = deadline
            && !killed
            && Instant::now() >= d
        {
            flags |= wire::EXIT_TIMED_OUT;
            killed = true;
            // SAFETY: kill(-1) from PID 1: every other process of the sandbox.
            unsafe { libc::kill(-1, libc::SIGKILL) };
        }
        if pfds[0].revents != 0 {
            match wire::read_frame(ctl)? {
                None => {
                    kill_and_reap(sigfd, CLEAN_TIMEOUT);
                    std::process::exit(0);
                }
                Some(f) if f.kind == Kind::Kill => {
                    flags |= wire::EXIT_KILLED;
                    killed = true;
                    // SAFETY: as above.
                    unsafe { libc::kill(-1, libc::SIGKILL) };
                }
                Some(f) if f.kind == Kind::Ping => wire::write_frame(ctl, Kind::Pong, &[])?,
                Some(_) => {}
            }
        }
        for (i, st) in streams.iter_mut().enumerate() {
            if pfds[2 + i].revents != 0 && !pump(ctl, st, &mut lim)? && !killed {
                flags |= wire::EXIT_OUTPUT_LIMIT;
                killed = true;
                // SAFETY: as above.
                unsafe { libc::kill(-1, libc::SIGKILL) };
            }
        }
        if pfds[4].revents != 0
            && let Some(w) = &stdin
        {
            let rest = &s.stdin[stdin_off..];
            // SAFETY: write from our buffer slice to an fd we own.
            let n = unsafe { libc::write(w.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
            if n > 0 {
                stdin_off += n as usize;
            }
            if (n < 0 && last_errno() != libc::EAGAIN) || stdin_off >= s.stdin.len() {
                stdin = None;
            }
        }
        if pfds[1].revents != 0 {
            drain_signalfd(sigfd);
        }
        // Reap whatever exited; the command's own status ends the loop.
        loop {
            let mut st = 0;
            // SAFETY: rusage is plain data the kernel fills.
            let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: wait4 with valid status and rusage pointers.
            let w = unsafe { libc::wait4(-1, &mut st, libc::WNOHANG, &mut ru) };
            if w <= 0 {
                break;
            }
            if w == pid {
                status = Some((st, ru));
            }
        }
    }
    // The command is gone: stop anything it left behind so the pipes reach EOF, then
    // forward what is already buffered.
    if !alone() {
        // SAFETY: as above.
        unsafe { libc::kill(-1, libc::SIGKILL) };
    }
    for st in streams.iter_mut() {
        if !pump(ctl, st, &mut lim)? {
            flags |= wire::EXIT_OUTPUT_LIMIT;
        }
    }
    let (st, ru) = status.unwrap_or((0, {
        // SAFETY: plain data.
        unsafe { std::mem::zeroed() }
    }));
    let (code, signal) = if libc::WIFSIGNALED(st) {
        (-1, libc::WTERMSIG(st))
    } else {
        (libc::WEXITSTATUS(st), 0)
    };
    let x = Exit {
        code,
        signal,
        flags,
        duration_us: start.elapsed().as_micros() as u64,
        max_rss_kb: ru.ru_maxrss.max(0) as u64,
        user_us: tv_us(ru.ru_utime),
        system_us: tv_us(ru.ru_stime),
    };
    wire::write_frame(ctl, Kind::Exit, &x.encode())?;
    send_clean(ctl, sigfd)
}
