//! The pool daemon (`warren-poold`): keeps `size` sandboxes warm, serves the JSON API on
//! `pool.sock`, runs each exec in a free sandbox, resets it, and replaces any sandbox that
//! fails.
//!
//! Threads: the accept loop, one thread per connection (which runs the exec and then
//! resets the sandbox), one refill thread creating sandboxes up to the pool's size, and
//! one waiting for SIGTERM/SIGINT. A sandbox is owned by exactly one of: the free list, the
//! refill thread (while being made), a connection thread (one exec and its reset) — so it
//! never serves two callers at once.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::api::{self, ErrorCode, ExecRequest, ExecResult, PoolStatus, Request, Response};
use super::config::PoolConfig;
use super::sandbox::{Ctx, Sandbox};
use super::wire::{self, Kind};
use crate::error::{Error, Result};
use crate::ns::{self, NsFds};
use crate::spec::LoadedProfile;

/// Where the daemon finds its pool.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The pool directory (`RUN/pools/NAME`), holding `pool.json` and the `init` copy.
    pub dir: PathBuf,
    pub runtime_root: PathBuf,
    pub data_root: PathBuf,
    /// This daemon's binary: run with `__create` to create each sandbox in a
    /// single-threaded process.
    pub helper: PathBuf,
}

/// How long a caller waits for a free sandbox by default.
const DEFAULT_ACQUIRE_MS: u64 = 60_000;
/// Added to an exec's time limit before the daemon stops trusting the init.
const WATCHDOG_GRACE: Duration = Duration::from_secs(5);

/// A caller waiting for a sandbox: served strictly in arrival order.
#[derive(Debug)]
struct Waiter {
    id: u64,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct State {
    idle: Vec<Sandbox>,
    /// Callers waiting for a sandbox, first come first served.
    waiters: VecDeque<Arc<Waiter>>,
    /// Sandboxes handed to a waiter that has not woken up yet.
    handed: Vec<(u64, Sandbox)>,
    next_waiter: u64,
    /// Sandboxes that exist or are being made.
    live: usize,
    starting: usize,
    busy: usize,
    shutting: bool,
    last_error: Option<String>,
    next_seq: u64,
}

#[derive(Debug)]
struct Daemon {
    ctx: Ctx,
    st: Mutex<State>,
    cv: Condvar,
    execs: AtomicU64,
    replaced: AtomicU64,
    resets: AtomicU64,
    reset_us: AtomicU64,
    stopping: AtomicBool,
    socket: PathBuf,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A thread that panicked while holding the lock aborts the process (panic = abort in
    // release); in debug builds keep going with the data as it is.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the daemon until `shutdown` or SIGTERM; does not return on success (the process
/// exits once every sandbox is gone).
pub fn run(o: &DaemonOptions) -> Result<()> {
    let cfg = PoolConfig::load(&o.dir.join("pool.json"))?;
    // The sandboxes' inits are created by short-lived helpers; when those exit, the inits
    // become our children.
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(Error::Namespace {
            what: "become a child subreaper".into(),
            source: nix::Error::last(),
        });
    }
    let profile = LoadedProfile::load(&cfg.profile)?;
    let home = NsFds::current()?;
    let pidfile = o.dir.join("poold.pid");
    std::fs::write(&pidfile, std::process::id().to_string())
        .map_err(|e| Error::io("write", &pidfile, e))?;
    let socket = o.dir.join("pool.sock");
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(|e| Error::io("bind", &socket, e))?;
    let d = Arc::new(Daemon {
        ctx: Ctx {
            cfg,
            profile,
            rt: warren_runtime::Runtime::new(&o.runtime_root),
            data_root: o.data_root.clone(),
            dir: o.dir.clone(),
            init: o.dir.join("init"),
            home,
            helper: o.helper.clone(),
        },
        st: Mutex::new(State::default()),
        cv: Condvar::new(),
        execs: AtomicU64::new(0),
        replaced: AtomicU64::new(0),
        resets: AtomicU64::new(0),
        reset_us: AtomicU64::new(0),
        stopping: AtomicBool::new(false),
        socket,
    });
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(f)
            .map_err(|e| Error::Pool {
                name: d.ctx.cfg.name.clone(),
                msg: format!("start thread {name}: {e}"),
            })
    };
    let r = d.clone();
    spawn("refill", Box::new(move || r.refill()))?;
    let r = d.clone();
    spawn("signals", Box::new(move || r.signals()))?;
    tracing::info!(pool = %d.ctx.cfg.name, size = d.ctx.cfg.size, "pool daemon ready");
    for conn in listener.incoming() {
        match conn {
            Ok(s) => {
                let r = d.clone();
                let spawned = std::thread::Builder::new()
                    .name("conn".into())
                    .spawn(move || r.serve(s));
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "start connection thread");
                }
            }
            Err(e) => tracing::warn!(error = %e, "accept"),
        }
    }
    Ok(())
}

/// Blocks the signals the daemon handles in every thread (call before any thread
/// starts); the sandboxes get an empty mask from the runtime.
pub fn block_signals() -> Result<()> {
    let mut set = nix::sys::signal::SigSet::empty();
    for s in [
        nix::sys::signal::SIGTERM,
        nix::sys::signal::SIGINT,
        nix::sys::signal::SIGHUP,
    ] {
        set.add(s);
    }
    set.thread_block().map_err(|e| Error::Namespace {
        what: "block signals".into(),
        source: e,
    })
}

impl Daemon {
    fn name(&self) -> &str {
        &self.ctx.cfg.name
    }

    fn signals(self: Arc<Self>) {
        let mut set = nix::sys::signal::SigSet::empty();
        for s in [
            nix::sys::signal::SIGTERM,
            nix::sys::signal::SIGINT,
            nix::sys::signal::SIGHUP,
        ] {
            set.add(s);
        }
        if let Ok(sig) = set.wait() {
            tracing::info!(?sig, "stopping");
            self.shutdown();
            std::process::exit(0);
        }
    }

    fn refill(self: Arc<Self>) {
        if let Err(e) = ns::prepare_thread() {
            tracing::error!(error = %e, "refill thread");
            std::process::exit(1);
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            let seq = {
                let mut st = lock(&self.st);
                while !st.shutting && st.live >= self.ctx.cfg.size {
                    st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
                }
                if st.shutting {
                    return;
                }
                st.live += 1;
                st.starting += 1;
                st.next_seq += 1;
                st.next_seq
            };
            match Sandbox::create(&self.ctx, seq) {
                Ok(sb) => {
                    backoff = Duration::from_millis(100);
                    let mut st = lock(&self.st);
                    st.starting -= 1;
                    if st.shutting {
                        st.live -= 1;
                        drop(st);
                        sb.destroy(&self.ctx);
                        self.cv.notify_all();
                        return;
                    }
                    st.last_error = None;
                    give(&mut st, sb);
                }
                Err(e) => {
                    tracing::warn!(seq, error = %e, "create sandbox");
                    {
                        let mut st = lock(&self.st);
                        st.starting -= 1;
                        st.live -= 1;
                        st.last_error = Some(e.to_string());
                    }
                    self.cv.notify_all();
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// A free sandbox, waiting up to `timeout`; waiting callers are served in the order
    /// they came.
    fn acquire(&self, timeout: Duration) -> std::result::Result<Sandbox, (ErrorCode, String)> {
        let end = Instant::now() + timeout;
        let mut st = lock(&self.st);
        let shutting = |name: &str| {
            (
                ErrorCode::ShuttingDown,
                format!("pool {name} is shutting down"),
            )
        };
        if st.shutting {
            return Err(shutting(self.name()));
        }
        if st.waiters.is_empty()
            && let Some(sb) = st.idle.pop()
        {
            st.busy += 1;
            return Ok(sb);
        }
        st.next_waiter += 1;
        let me = Arc::new(Waiter {
            id: st.next_waiter,
            cv: Condvar::new(),
        });
        st.waiters.push_back(me.clone());
        loop {
            if let Some(i) = st.handed.iter().position(|(id, _)| *id == me.id) {
                let (_, sb) = st.handed.swap_remove(i);
                st.busy += 1;
                return Ok(sb);
            }
            let now = Instant::now();
            // No sandbox exists, none is in use, and making one fails: waiting cannot help.
            let failing = st.idle.is_empty() && st.busy == 0 && st.last_error.is_some();
            if st.shutting || now >= end || failing {
                st.waiters.retain(|w| w.id != me.id);
                if st.shutting {
                    return Err(shutting(self.name()));
                }
                if failing && let Some(e) = &st.last_error {
                    return Err((
                        ErrorCode::Internal,
                        format!(
                            "pool {} has no sandbox: creating one fails: {e}",
                            self.name()
                        ),
                    ));
                }
                let why = st
                    .last_error
                    .as_ref()
                    .map(|e| format!("; creating sandboxes fails: {e}"))
                    .unwrap_or_default();
                return Err((
                    ErrorCode::Busy,
                    format!(
                        "no sandbox of pool {} became free within {} ms{why}",
                        self.name(),
                        timeout.as_millis()
                    ),
                ));
            }
            st = me
                .cv
                .wait_timeout(st, end - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Takes a sandbox back after an exec: reset here, in the connection's thread (no
    /// hand-off to another thread), then free again; destroyed (and replaced by the refill
    /// thread) when it cannot be trusted or its reset fails.
    fn release(&self, mut sb: Sandbox, healthy: bool) {
        if healthy {
            let t = Instant::now();
            match sb.reset(&self.ctx) {
                Ok(c) => {
                    let us = t.elapsed().as_micros() as u64;
                    self.resets.fetch_add(1, Ordering::Relaxed);
                    self.reset_us.fetch_add(us, Ordering::Relaxed);
                    tracing::debug!(id = %sb.id, us, ?c, "reset");
                    let mut st = lock(&self.st);
                    st.busy -= 1;
                    if !st.shutting {
                        give(&mut st, sb);
                        return;
                    }
                    st.live -= 1;
                    drop(st);
                    sb.destroy(&self.ctx);
                    self.cv.notify_all();
                    return;
                }
                Err(e) => {
                    tracing::warn!(id = %sb.id, error = %e, "reset failed; replacing the sandbox");
                }
            }
        }
        sb.kill_all();
        sb.destroy(&self.ctx);
        self.replaced.fetch_add(1, Ordering::Relaxed);
        {
            let mut st = lock(&self.st);
            st.busy -= 1;
            st.live -= 1;
        }
        self.cv.notify_all();
    }

    fn status(&self) -> PoolStatus {
        let st = lock(&self.st);
        PoolStatus {
            api_version: api::API_VERSION,
            name: self.ctx.cfg.name.clone(),
            profile: self.ctx.cfg.profile.clone(),
            image: self.ctx.cfg.image.clone(),
            size: self.ctx.cfg.size,
            ready: st.idle.len(),
            busy: st.busy,
            starting: st.starting,
            execs: self.execs.load(Ordering::Relaxed),
            resets: self.resets.load(Ordering::Relaxed),
            reset_avg_us: self.reset_us.load(Ordering::Relaxed)
                / self.resets.load(Ordering::Relaxed).max(1),
            replaced: self.replaced.load(Ordering::Relaxed),
            daemon_pid: std::process::id(),
            created: self.ctx.cfg.created,
            last_error: st.last_error.clone(),
            limits: self.ctx.cfg.limits,
        }
    }

    /// Destroys every sandbox (waiting up to 15 s for busy ones) and the pool directory.
    fn shutdown(&self) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            // Someone else is shutting down; wait for the process to exit.
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        let _ = std::fs::remove_file(&self.socket);
        let idle = {
            let mut st = lock(&self.st);
            st.shutting = true;
            for w in &st.waiters {
                w.cv.notify_one();
            }
            let mut v = std::mem::take(&mut st.idle);
            v.extend(std::mem::take(&mut st.handed).into_iter().map(|(_, sb)| sb));
            v
        };
        self.cv.notify_all();
        let n = idle.len();
        for sb in idle {
            sb.destroy(&self.ctx);
        }
        {
            let mut st = lock(&self.st);
            st.live -= n;
        }
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            let st = lock(&self.st);
            if st.live == 0 || Instant::now() > end {
                if st.live != 0 {
                    tracing::warn!(left = st.live, "sandboxes still busy at shutdown");
                }
                break;
            }
            drop(st);
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Err(e) = std::fs::remove_dir_all(&self.ctx.dir) {
            tracing::warn!(dir = ?self.ctx.dir, error = %e, "remove pool directory");
        }
    }

    fn serve(self: Arc<Self>, stream: UnixStream) {
        if let Err(e) = self.serve_conn(stream) {
            tracing::debug!(error = %e, "connection ended");
        }
    }

    fn serve_conn(&self, stream: UnixStream) -> std::io::Result<()> {
        // Resets run in this thread and enter the sandbox's mount namespace.
        ns::prepare_thread().map_err(std::io::Error::other)?;
        stream.set_write_timeout(Some(Duration::from_secs(60)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut w = stream;
        loop {
            let mut line = String::new();
            let n = (&mut reader)
                .take(api::MAX_REQUEST as u64)
                .read_line(&mut line)?;
            if n == 0 {
                return Ok(());
            }
            if !line.ends_with('\n') && n >= api::MAX_REQUEST {
                send(
                    &mut w,
                    &Response::Error {
                        code: ErrorCode::BadRequest,
                        message: format!("request longer than {} bytes", api::MAX_REQUEST),
                    },
                )?;
                return Ok(());
            }
            if line.trim().is_empty() {
                continue;
            }
            let req: Request = match serde_json::from_str(&line) {
                Ok(r) => r,
                Err(e) => {
                    send(
                        &mut w,
                        &Response::Error {
                            code: ErrorCode::BadRequest,
                            message: format!("invalid request: {e}"),
                        },
                    )?;
                    continue;
                }
            };
            match req {
                Request::Exec(r) => self.exec(r, &mut w)?,
                Request::Status => send(&mut w, &Response::Status(self.status()))?,
                Request::Shutdown => {
                    self.shutdown();
                    let _ = send(&mut w, &Response::Ok);
                    std::process::exit(0);
                }
            }
        }
    }

    fn exec(&self, r: ExecRequest, w: &mut UnixStream) -> std::io::Result<()> {
        let plan = match self.plan(&r) {
            Ok(p) => p,
            Err(message) => {
                return send(
                    w,
                    &Response::Error {
                        code: ErrorCode::BadRequest,
                        message,
                    },
                );
            }
        };
        let acquire = Duration::from_millis(r.acquire_timeout_ms.unwrap_or(DEFAULT_ACQUIRE_MS));
        for _attempt in 0..3 {
            let mut sb = match self.acquire(acquire) {
                Ok(sb) => sb,
                Err((code, message)) => return send(w, &Response::Error { code, message }),
            };
            match self.run_in(&mut sb, &plan, &r, w) {
                Outcome::Done {
                    result,
                    healthy,
                    client,
                } => {
                    self.execs.fetch_add(1, Ordering::Relaxed);
                    sb.execs += 1;
                    let sent = match client {
                        Ok(()) => send(w, &Response::Exit(result)),
                        Err(e) => Err(e),
                    };
                    self.release(sb, healthy);
                    return sent;
                }
                Outcome::InitGone(why) => {
                    tracing::warn!(id = %sb.id, %why, "sandbox lost before the exec started; retrying");
                    self.release(sb, false);
                }
            }
        }
        send(
            w,
            &Response::Error {
                code: ErrorCode::Internal,
                message: format!("pool {}: three sandboxes failed in a row", self.name()),
            },
        )
    }

    fn plan(&self, r: &ExecRequest) -> std::result::Result<Plan, String> {
        let lim = self.ctx.cfg.limits;
        if r.argv.is_empty() {
            return Err("argv is empty: nothing to run".into());
        }
        if r.argv.iter().any(|a| a.contains('\0')) {
            return Err("argv contains a NUL byte".into());
        }
        let pick = |asked: Option<u64>, max: u64| asked.filter(|&v| v > 0).unwrap_or(max).min(max);
        let timeout_ms = pick(r.timeout_ms, lim.timeout_ms);
        let output = pick(r.output_limit, lim.output_bytes);
        let memory = r.memory.unwrap_or(lim.memory).min(lim.memory);
        if memory < (16 << 20) {
            return Err(format!("memory {memory} is below 16 MiB"));
        }
        let pids = r.pids.unwrap_or(lim.pids).min(lim.pids);
        if pids < 2 {
            return Err("pids must be at least 2".into());
        }
        let mut env = Vec::with_capacity(r.env.len());
        for (k, v) in &r.env {
            if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
                return Err(format!("invalid environment variable name {k:?}"));
            }
            env.push(format!("{k}={v}"));
        }
        let env = crate::spec::merge_env([&self.ctx.cfg.env[..], &env[..]]);
        let stdin = match &r.stdin {
            Some(s) => api::decode(r.encoding, s).map_err(|e| format!("stdin: {e}"))?,
            None => Vec::new(),
        };
        let cwd = r
            .cwd
            .clone()
            .unwrap_or_else(|| self.ctx.cfg.workdir.display().to_string());
        Ok(Plan {
            spawn: wire::Spawn {
                argv: r.argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
                env: env.into_iter().map(String::into_bytes).collect(),
                cwd: cwd.into_bytes(),
                stdin,
                timeout_ms,
                output_limit: output,
                uid: wire::KEEP_ID,
                gid: wire::KEEP_ID,
            },
            memory,
            pids,
        })
    }

    fn run_in(&self, sb: &mut Sandbox, p: &Plan, r: &ExecRequest, w: &mut UnixStream) -> Outcome {
        if let Err(e) = sb.set_limits(p.memory, p.pids, &self.ctx.cfg) {
            return Outcome::InitGone(format!("set limits: {e}"));
        }
        let before = sb.counters();
        let watchdog = Duration::from_millis(p.spawn.timeout_ms) + WATCHDOG_GRACE;
        if let Err(e) = sb.ctl.set_read_timeout(Some(watchdog)) {
            return Outcome::InitGone(e.to_string());
        }
        if let Err(e) = wire::write_frame(&mut sb.ctl, Kind::Spawn, &p.spawn.encode()) {
            return Outcome::InitGone(format!("send: {e}"));
        }
        let mut started = false;
        let mut client: std::io::Result<()> = Ok(());
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut result = ExecResult {
            sandbox: sb.id.clone(),
            ..Default::default()
        };
        let mut healthy = true;
        loop {
            let f = match wire::read_frame(&mut sb.ctl) {
                Ok(Some(f)) => f,
                Ok(None) | Err(_) if !started => {
                    return Outcome::InitGone("the init hung up".into());
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    tracing::warn!(id = %sb.id, "the init missed the time limit; killing the sandbox");
                    sb.kill_all();
                    result.timed_out = true;
                    result.exit_code = 137;
                    result.signal = Some(libc::SIGKILL);
                    healthy = false;
                    break;
                }
                Ok(None) | Err(_) => {
                    result.exit_code = 137;
                    result.error = Some("the sandbox died during the exec".into());
                    healthy = false;
                    break;
                }
            };
            match f.kind {
                Kind::Started => started = true,
                Kind::SpawnFailed => {
                    let mut d = wire::Dec::new(&f.payload);
                    let errno = d.i32().unwrap_or(libc::EIO);
                    let what = String::from_utf8_lossy(d.rest()).into_owned();
                    let (code, msg) = spawn_error(errno, &what);
                    result.exit_code = code;
                    result.error = Some(msg);
                    break;
                }
                Kind::Stdout | Kind::Stderr => {
                    let is_out = f.kind == Kind::Stdout;
                    if r.stream {
                        if client.is_ok() {
                            let data = api::encode(r.encoding, &f.payload);
                            let line = if is_out {
                                Response::Stdout { data }
                            } else {
                                Response::Stderr { data }
                            };
                            client = send(w, &line);
                            if client.is_err() {
                                // The caller is gone: stop the command.
                                let _ = wire::write_frame(&mut sb.ctl, Kind::Kill, &[]);
                            }
                        }
                    } else if is_out {
                        out.extend_from_slice(&f.payload);
                    } else {
                        err.extend_from_slice(&f.payload);
                    }
                }
                Kind::Exit => {
                    match wire::Exit::decode(&f.payload) {
                        Ok(x) => {
                            result.exit_code = if x.signal > 0 { 128 + x.signal } else { x.code };
                            result.signal = (x.signal > 0).then_some(x.signal);
                            result.timed_out = x.flags & wire::EXIT_TIMED_OUT != 0;
                            result.output_truncated = x.flags & wire::EXIT_OUTPUT_LIMIT != 0;
                            result.duration_ms = x.duration_us as f64 / 1000.0;
                            result.max_rss_kb = x.max_rss_kb;
                        }
                        Err(e) => {
                            result.exit_code = 137;
                            result.error = Some(format!("bad exit report: {e}"));
                            healthy = false;
                        }
                    }
                    break;
                }
                Kind::Pong => {}
                other => {
                    let msg = String::from_utf8_lossy(&f.payload).into_owned();
                    tracing::warn!(id = %sb.id, ?other, %msg, "unexpected frame from the init");
                    result.exit_code = 137;
                    result.error = Some(format!("the sandbox's init failed: {msg}"));
                    healthy = false;
                    break;
                }
            }
        }
        let after = sb.counters();
        result.oom_killed = after.oom_kills > before.oom_kills;
        result.pids_limit_hit = after.pids_max > before.pids_max;
        if !r.stream {
            result.stdout = Some(api::encode(r.encoding, &out));
            result.stderr = Some(api::encode(r.encoding, &err));
        }
        Outcome::Done {
            result,
            healthy,
            client,
        }
    }
}

/// A validated exec.
#[derive(Debug)]
struct Plan {
    spawn: wire::Spawn,
    memory: i64,
    pids: i64,
}

enum Outcome {
    Done {
        result: ExecResult,
        healthy: bool,
        client: std::io::Result<()>,
    },
    /// The sandbox failed before the command started: try another one.
    InitGone(String),
}

/// Frees a sandbox: to the caller that has waited longest, else to the free list.
fn give(st: &mut State, sb: Sandbox) {
    match st.waiters.pop_front() {
        Some(w) => {
            st.handed.push((w.id, sb));
            w.cv.notify_one();
        }
        None => st.idle.push(sb),
    }
}

/// The exit code and message for a command that could not be started.
pub fn spawn_error(errno: i32, what: &str) -> (i32, String) {
    let desc = nix::Error::from_raw(errno).desc();
    if let Some(dir) = what.strip_prefix("chdir ") {
        return (126, format!("working directory {dir}: {desc}"));
    }
    match errno {
        libc::ENOENT => (127, format!("command not found: {what}")),
        libc::EACCES | libc::ENOEXEC | libc::EPERM | libc::EISDIR => {
            (126, format!("cannot execute {what}: {desc}"))
        }
        _ => (126, format!("cannot start {what}: {desc}")),
    }
}

fn send(w: &mut UnixStream, r: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)
}

/// The socket of the daemon for pool directory `dir`.
pub fn socket_in(dir: &Path) -> PathBuf {
    dir.join("pool.sock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_errors_are_clear() {
        assert_eq!(
            spawn_error(libc::ENOENT, "nosuchcmd"),
            (127, "command not found: nosuchcmd".into())
        );
        let (code, msg) = spawn_error(libc::EACCES, "/tmp/x");
        assert_eq!(code, 126);
        assert!(msg.contains("cannot execute /tmp/x"), "{msg}");
        let (code, msg) = spawn_error(libc::ENOENT, "chdir /nope");
        assert_eq!(code, 126);
        assert!(msg.contains("working directory /nope"), "{msg}");
    }
}
