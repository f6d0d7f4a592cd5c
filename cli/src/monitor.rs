//! The per-sandbox monitor (conmon's job): it is the parent of a detached sandbox's init
//! (created *from* the monitor process, which is a child subreaper), holds the sandbox's
//! stdout and stderr (or its pty), writes them to a log with timestamps and a size cap,
//! waits for the init, records the exit status and whether the OOM killer fired, appends
//! `oom`/`die` to the journal and finally execs `warren __cleanup`.
//!
//! This module uses only `std` and `libc` so that the `warren-monitor` binary that runs it
//! stays small: an idle monitor is a few pages of code blocked in `poll(2)`.
//!
//! Log format: one entry per line, CRI style (what conmon writes for Kubernetes):
//! `2026-05-01T12:00:00.123456789Z stdout F text` — `F` for a full line, `P` for a
//! partial one that the next entry of the same stream continues. **Size cap: rotation.**
//! When the next entry would take `ctr.log` past the cap, it is renamed to `ctr.log.1`
//! (replacing the previous one) and a new `ctr.log` starts, so at most twice the cap is
//! on disk and the newest output is never lost; `warren logs` reads both files.

use std::ffi::{CString, OsString};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::state::{ExitInfo, FORMAT, append_event_to, event_line};
use crate::timefmt;

/// Default log size cap (bytes) before rotation.
pub const DEFAULT_LOG_MAX: u64 = 10 << 20;

/// What the monitor is told (on its command line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub id: String,
    pub name: String,
    /// The sandbox init: our child.
    pub pid: i32,
    /// Read ends of the sandbox's stdout and stderr pipes, or of its pty master.
    pub stdout_fd: Option<RawFd>,
    pub stderr_fd: Option<RawFd>,
    pub pty_fd: Option<RawFd>,
    pub log: PathBuf,
    pub log_max: u64,
    pub exit_file: PathBuf,
    pub events: PathBuf,
    /// `memory.events` (cgroup v2) or `memory.oom_control` (v1): `oom_kill N`.
    pub oom_file: Option<PathBuf>,
    /// The command to exec once everything is recorded (`warren … __cleanup ID`).
    pub cleanup: Vec<OsString>,
}

impl Config {
    /// The command line for [`Config::parse`].
    pub fn to_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut kv = |k: &str, v: OsString| {
            a.push(format!("--{k}").into());
            a.push(v);
        };
        kv("id", self.id.clone().into());
        kv("name", self.name.clone().into());
        kv("pid", self.pid.to_string().into());
        for (k, v) in [
            ("stdout-fd", self.stdout_fd),
            ("stderr-fd", self.stderr_fd),
            ("pty-fd", self.pty_fd),
        ] {
            if let Some(fd) = v {
                kv(k, fd.to_string().into());
            }
        }
        kv("log", self.log.clone().into());
        kv("log-max", self.log_max.to_string().into());
        kv("exit-file", self.exit_file.clone().into());
        kv("events", self.events.clone().into());
        if let Some(o) = &self.oom_file {
            kv("oom-file", o.clone().into());
        }
        a.push("--".into());
        a.extend(self.cleanup.iter().cloned());
        a
    }

    /// Parses the monitor's command line (after argv\[0\]).
    pub fn parse(args: &[OsString]) -> Result<Self, String> {
        let mut c = Config {
            log_max: DEFAULT_LOG_MAX,
            ..Default::default()
        };
        let mut it = args.iter();
        while let Some(k) = it.next() {
            let k = k.to_string_lossy();
            if k == "--" {
                c.cleanup = it.cloned().collect();
                break;
            }
            let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
            let s = v.to_string_lossy();
            let num = |what: &str| {
                s.parse::<i64>()
                    .map_err(|_| format!("{what}: not a number: {s}"))
            };
            match k.as_ref() {
                "--id" => c.id = s.into_owned(),
                "--name" => c.name = s.into_owned(),
                "--pid" => c.pid = num("--pid")? as i32,
                "--stdout-fd" => c.stdout_fd = Some(num("--stdout-fd")? as RawFd),
                "--stderr-fd" => c.stderr_fd = Some(num("--stderr-fd")? as RawFd),
                "--pty-fd" => c.pty_fd = Some(num("--pty-fd")? as RawFd),
                "--log" => c.log = PathBuf::from(v),
                "--log-max" => c.log_max = num("--log-max")?.max(4096) as u64,
                "--exit-file" => c.exit_file = PathBuf::from(v),
                "--events" => c.events = PathBuf::from(v),
                "--oom-file" => c.oom_file = Some(PathBuf::from(v)),
                other => return Err(format!("unknown option {other}")),
            }
        }
        if c.pid <= 0 || c.id.is_empty() {
            return Err("--id and --pid are required".into());
        }
        Ok(c)
    }
}

/// The log file with rotation.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max: u64,
}

impl LogWriter {
    /// Opens (appends to) `path`.
    pub fn open(path: PathBuf, max: u64) -> Self {
        let mut w = Self {
            path,
            file: None,
            size: 0,
            max,
        };
        w.reopen();
        w
    }

    fn reopen(&mut self) {
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC)
            .open(&self.path)
            .ok();
        self.size = self
            .file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
    }

    /// Writes one chunk of output of `stream` as log entries.
    pub fn write_chunk(&mut self, stream: &str, data: &[u8]) {
        let (s, ns) = timefmt::now();
        let ts = timefmt::rfc3339_nanos(s, ns);
        let mut out = Vec::with_capacity(data.len() + 64);
        let mut rest = data;
        while !rest.is_empty() {
            let (line, full, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], true, &rest[i + 1..]),
                None => (rest, false, &rest[rest.len()..]),
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            out.extend_from_slice(ts.as_bytes());
            out.push(b' ');
            out.extend_from_slice(stream.as_bytes());
            out.extend_from_slice(if full { b" F " } else { b" P " });
            out.extend_from_slice(line);
            out.push(b'\n');
            rest = next;
        }
        if self.size + out.len() as u64 > self.max && self.size > 0 {
            let old = self.path.with_extension("log.1");
            let _ = std::fs::rename(&self.path, old);
            self.reopen();
        }
        if let Some(f) = &mut self.file
            && f.write_all(&out).is_ok()
        {
            self.size += out.len() as u64;
        }
    }
}

/// Number of OOM kills in the sandbox's memory cgroup (`oom_kill N`).
pub fn oom_kills(file: &std::path::Path) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|v| v.trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh fd returned by the kernel, owned by nobody else.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn wait_exit(pid: i32) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            if libc::WIFEXITED(status) {
                return libc::WEXITSTATUS(status);
            }
            if libc::WIFSIGNALED(status) {
                return 128 + libc::WTERMSIG(status);
            }
            continue;
        }
        if r < 0 && nix::Error::last() != nix::Error::EINTR {
            // Not our child (the monitor was started on a pid it does not own).
            return 255;
        }
    }
}

struct Stream {
    fd: RawFd,
    name: &'static str,
    open: bool,
}

/// Runs the monitor until the sandbox's init exits and everything is recorded, then
/// execs the cleanup command. Returns only if that exec fails (with the error).
pub fn run(c: &Config) -> std::io::Error {
    for sig in [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGPIPE,
        libc::SIGTTOU,
        libc::SIGTTIN,
    ] {
        // SAFETY: setting SIG_IGN installs no handler code.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    let mut log = LogWriter::open(c.log.clone(), c.log_max);
    let mut streams: Vec<Stream> = Vec::new();
    for (fd, name) in [
        (c.stdout_fd, "stdout"),
        (c.stderr_fd, "stderr"),
        (c.pty_fd, "stdout"),
    ] {
        if let Some(fd) = fd {
            // SAFETY: fcntl(F_SETFD) on an fd we were handed.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            streams.push(Stream {
                fd,
                name,
                open: true,
            });
        }
    }
    let pidfd = pidfd_open(c.pid);
    let mut code: Option<i32> = None;
    let mut buf = vec![0u8; 64 * 1024];
    let mut drain_deadline: Option<std::time::Instant> = None;
    loop {
        if code.is_none() && pidfd.is_none() {
            // No pidfd (old kernel): block on the child; the pipes are drained after.
            code = Some(wait_exit(c.pid));
        }
        let open: Vec<usize> = (0..streams.len()).filter(|&i| streams[i].open).collect();
        if code.is_some()
            && (open.is_empty() || drain_deadline.is_some_and(|d| std::time::Instant::now() > d))
        {
            break;
        }
        let mut fds: Vec<libc::pollfd> = open
            .iter()
            .map(|&i| libc::pollfd {
                fd: streams[i].fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        if code.is_none()
            && let Some(p) = &pidfd
        {
            fds.push(libc::pollfd {
                fd: p.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let timeout = if code.is_some() { 100 } else { -1 };
        // SAFETY: poll(2) over a vector of pollfd structures we own.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            continue;
        }
        for (k, p) in fds.iter().enumerate() {
            if p.revents == 0 {
                continue;
            }
            if k >= open.len() {
                code = Some(wait_exit(c.pid));
                drain_deadline =
                    Some(std::time::Instant::now() + std::time::Duration::from_secs(2));
                continue;
            }
            let s = &mut streams[open[k]];
            // SAFETY: read(2) into our buffer of the given length.
            let r = unsafe { libc::read(s.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if r > 0 {
                log.write_chunk(s.name, &buf[..r as usize]);
            } else if r == 0 || nix::Error::last() != nix::Error::EINTR {
                // EOF, or EIO on a pty whose other side closed.
                s.open = false;
            }
        }
    }
    let code = code.unwrap_or(255);
    let oom = c.oom_file.as_deref().is_some_and(|f| oom_kills(f) > 0);
    let (now, _) = timefmt::now();
    let exit = ExitInfo {
        format: FORMAT,
        exit_code: code,
        oom_killed: oom,
        finished: now,
    };
    let tmp = c.exit_file.with_extension("tmp");
    if std::fs::write(&tmp, exit.to_json()).is_ok() {
        let _ = std::fs::rename(&tmp, &c.exit_file);
    }
    if oom {
        append_event_to(&c.events, &event_line("oom", &c.id, &c.name, None));
    }
    append_event_to(&c.events, &event_line("die", &c.id, &c.name, Some(code)));
    drop(log);
    exec(&c.cleanup)
}

fn exec(argv: &[OsString]) -> std::io::Error {
    let Some(first) = argv.first() else {
        return std::io::Error::other("no cleanup command");
    };
    let cargs: Vec<CString> = argv
        .iter()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let Ok(prog) = CString::new(first.as_bytes()) else {
        return std::io::Error::other("cleanup command contains NUL");
    };
    let mut ptrs: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: execv(2) with a NUL-terminated path and a NULL-terminated argv of live
    // CStrings; on success it does not return.
    unsafe { libc::execv(prog.as_ptr(), ptrs.as_ptr()) };
    std::io::Error::last_os_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip() {
        let c = Config {
            id: "abc".into(),
            name: "n".into(),
            pid: 42,
            stdout_fd: Some(3),
            stderr_fd: Some(4),
            pty_fd: None,
            log: "/l/ctr.log".into(),
            log_max: 1 << 20,
            exit_file: "/r/exit.json".into(),
            events: "/d/events.jsonl".into(),
            oom_file: Some("/sys/fs/cgroup/memory/x/memory.oom_control".into()),
            cleanup: vec!["/usr/bin/warren".into(), "__cleanup".into(), "abc".into()],
        };
        assert_eq!(Config::parse(&c.to_args()).expect("parse"), c);
        assert!(Config::parse(&["--pid".into()]).is_err());
    }

    #[test]
    fn log_lines_are_split_and_rotated() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("ctr.log");
        let mut w = LogWriter::open(p.clone(), 4096);
        w.write_chunk("stdout", b"one\r\ntwo\npart");
        let s = std::fs::read_to_string(&p).expect("read");
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].ends_with(" stdout F one"), "{}", lines[0]);
        assert!(lines[2].ends_with(" stdout P part"), "{}", lines[2]);
        for _ in 0..100 {
            w.write_chunk("stderr", &[b'x'; 100]);
        }
        assert!(std::fs::metadata(&p).expect("log").len() <= 4096);
        assert!(d.path().join("ctr.log.1").exists());
    }

    #[test]
    fn oom_counter_is_read_from_both_formats() {
        let d = tempfile::tempdir().expect("tmp");
        let v2 = d.path().join("memory.events");
        std::fs::write(&v2, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n").expect("write");
        assert_eq!(oom_kills(&v2), 1);
        let v1 = d.path().join("memory.oom_control");
        std::fs::write(&v1, "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n").expect("write");
        assert_eq!(oom_kills(&v1), 0);
    }
}
