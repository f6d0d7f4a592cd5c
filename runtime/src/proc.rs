//! Small /proc readers: process start times (to tell a live init from a recycled pid),
//! process states, and pidfd-based signalling.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Process state as read from `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// One-letter state (`R`, `S`, `Z`, …).
    pub state: u8,
    /// Start time in clock ticks after boot (field 22).
    pub start_time: u64,
    /// Parent pid.
    pub ppid: i32,
}

/// Reads `/proc/PID/stat`; `None` when the process does not exist.
pub fn stat(pid: i32) -> Option<ProcStat> {
    let data = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&data)
}

fn parse_stat(data: &[u8]) -> Option<ProcStat> {
    // comm may contain spaces and parentheses: fields resume after the last ')'.
    let close = data.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(data.get(close + 2..)?).ok()?;
    let mut it = rest.split_ascii_whitespace();
    let state = it.next()?.bytes().next()?;
    let ppid = it.next()?.parse().ok()?;
    // fields after comm: state(3) ppid(4) ... starttime(22) => skip 17 more after ppid
    let start_time = it.nth(17)?.parse().ok()?;
    Some(ProcStat {
        state,
        start_time,
        ppid,
    })
}

/// True when `pid` is the same process that started at `start_time` and has not exited.
/// Zombies count as exited.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    match stat(pid) {
        Some(s) => s.start_time == start_time && s.state != b'Z' && s.state != b'X',
        None => false,
    }
}

/// Opens a pidfd for `pid` and checks, after opening, that it is still the process that
/// started at `start_time`, so a signal can never reach a recycled pid.
pub fn pidfd_for(pid: i32, start_time: u64) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is
    // shared with the kernel.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the syscall returned a fresh fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    if is_alive(pid, start_time) {
        Some(fd)
    } else {
        None
    }
}

/// Sends `sig` through a pidfd.
pub fn pidfd_signal(fd: &OwnedFd, sig: i32) -> nix::Result<()> {
    // SAFETY: pidfd_send_signal with a valid pidfd, a signal number, a null siginfo and no
    // flags; the kernel reads no memory from us.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        Ok(())
    }
}

/// Waits until the pidfd's process has exited, up to `timeout_ms` (negative: forever).
/// Returns true when it exited.
pub fn pidfd_wait_exit(fd: &OwnedFd, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd structure on our stack, count 1.
        let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if r < 0 && nix::Error::last() == nix::Error::EINTR {
            continue;
        }
        return r > 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_comm() {
        let line = b"42 (a b) c)) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 1000 10 18446744073709551615";
        let s = parse_stat(line).expect("parse");
        assert_eq!(s.state, b'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.start_time, 12345);
    }

    #[test]
    fn self_is_alive() {
        let me = std::process::id() as i32;
        let st = stat(me).expect("own stat");
        assert!(is_alive(me, st.start_time));
        assert!(!is_alive(me, st.start_time + 1));
        assert!(pidfd_for(me, st.start_time).is_some());
    }
}
