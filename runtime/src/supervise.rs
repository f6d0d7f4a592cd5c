//! Staying attached to a container process (foreground `run` and `exec`): forward
//! signals, relay a pty, reap children, and report the exit status.
//!
//! Every signal is blocked *before* the process is cloned and read through a signalfd
//! afterwards, so an exit can never slip between "child started" and "waiting" — the race
//! that makes youki 0.7's foreground `run` hang.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::console;
use crate::error::{Result, RuntimeError};

/// Signals that are never blocked: faults must kill us as usual.
const SYNCHRONOUS: [Signal; 6] = [
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGILL,
    Signal::SIGFPE,
    Signal::SIGTRAP,
    Signal::SIGSYS,
];

/// The set of signals we block and forward.
pub fn forwarded_set() -> SigSet {
    let mut set = SigSet::all();
    for s in SYNCHRONOUS {
        set.remove(s);
    }
    set
}

/// Blocks every forwardable signal; returns the previous mask (to restore in the workload).
pub fn block_signals() -> Result<SigSet> {
    let mut old = SigSet::empty();
    sigprocmask(
        SigmaskHow::SIG_BLOCK,
        Some(&forwarded_set()),
        Some(&mut old),
    )
    .map_err(|e| RuntimeError::sys("block signals", e))?;
    Ok(old)
}

/// Restores a mask saved by [`block_signals`].
pub fn restore_signals(old: &SigSet) {
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(old), None);
}

/// Exit code in shell convention: the status, or 128 + signal.
pub fn exit_code(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// A pty master to relay between our stdio and the container.
#[derive(Debug)]
pub struct Relay {
    pub master: OwnedFd,
}

/// Waits for `pid` (our child) to exit, forwarding signals to it and relaying `relay`.
/// Other children (we may be a subreaper) are reaped and ignored. Returns the exit code.
pub fn wait(pid: i32, relay: Option<Relay>) -> Result<i32> {
    let sfd = SignalFd::with_flags(
        &forwarded_set(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
    .map_err(|e| RuntimeError::sys("signalfd", e))?;
    let stdin = std::io::stdin();
    let stdout_fd = std::io::stdout();
    let _raw = relay
        .as_ref()
        .and_then(|_| console::RawMode::enter(stdin.as_fd()));
    if let Some(r) = &relay {
        console::copy_winsize(stdin.as_fd(), &r.master);
    }
    let mut stdin_open = relay.is_some();
    let mut master_open = relay.is_some();
    let mut code: Option<i32> = None;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // Reap first: a child that exited before we got here is never missed.
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(ws) => {
                    if ws.pid() == Some(Pid::from_raw(pid))
                        && let Some(c) = exit_code(ws)
                    {
                        code = Some(c);
                    }
                }
                Err(nix::Error::EINTR) => continue,
                Err(_) => break,
            }
        }
        if let Some(c) = code {
            // Drain what the pty still holds before returning.
            if let Some(r) = &relay {
                while master_open {
                    match nix::unistd::read(r.master.as_raw_fd(), &mut buf) {
                        Ok(0) | Err(_) => master_open = false,
                        Ok(n) => write_all(stdout_fd.as_fd(), &buf[..n]),
                    }
                }
            }
            return Ok(c);
        }
        let mut fds = vec![libc::pollfd {
            fd: sfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(r) = &relay {
            if stdin_open {
                fds.push(libc::pollfd {
                    fd: 0,
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            if master_open {
                fds.push(libc::pollfd {
                    fd: r.master.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        // SAFETY: poll(2) over a vector of pollfd structures we own.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            continue;
        }
        for p in &fds {
            if p.revents == 0 {
                continue;
            }
            if p.fd == sfd.as_raw_fd() {
                while let Ok(Some(si)) = sfd.read_signal() {
                    let signo = si.ssi_signo as i32;
                    if signo == libc::SIGCHLD {
                        continue;
                    }
                    if signo == libc::SIGWINCH {
                        if let Some(r) = &relay {
                            console::copy_winsize(stdin.as_fd(), &r.master);
                        }
                        continue;
                    }
                    // SAFETY: kill(2) on our own, not yet reaped, child.
                    unsafe { libc::kill(pid, signo) };
                }
            } else if p.fd == 0 {
                match nix::unistd::read(0, &mut buf) {
                    Ok(0) | Err(_) => stdin_open = false,
                    Ok(n) => {
                        if let Some(r) = &relay {
                            write_all(r.master.as_fd(), &buf[..n]);
                        }
                    }
                }
            } else if let Some(r) = &relay {
                match nix::unistd::read(r.master.as_raw_fd(), &mut buf) {
                    Ok(0) | Err(_) => master_open = false,
                    Ok(n) => write_all(stdout_fd.as_fd(), &buf[..n]),
                }
            }
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(0) => return,
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}
