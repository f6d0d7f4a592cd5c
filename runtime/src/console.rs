//! Terminals for foreground `run`/`exec` without `--console-socket`: the runtime plays
//! the console socket's other end itself, receives the pty master from the container and
//! relays it to its own stdio (as `runc run` does for an interactive container).

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{self, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType};
use nix::sys::termios::{self, SetArg, Termios};

use crate::error::{Result, RuntimeError};

/// A connected pair: give `container_end` to the init, keep `runtime_end`.
#[derive(Debug)]
pub struct ConsolePair {
    pub runtime_end: OwnedFd,
    pub container_end: OwnedFd,
}

/// Makes the socket pair over which the container sends its pty master.
pub fn pair() -> Result<ConsolePair> {
    let (a, b) = socket::socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| RuntimeError::sys("socketpair for console", e))?;
    Ok(ConsolePair {
        runtime_end: a,
        container_end: b,
    })
}

/// Receives the pty master fd sent by the container's init.
pub fn recv_master(sock: &OwnedFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = socket::recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| RuntimeError::sys("receive pty master", e))?;
    for c in msg
        .cmsgs()
        .map_err(|e| RuntimeError::sys("read pty control message", e))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(&fd) = fds.first()
        {
            // SAFETY: the kernel installed this fd in our table for us (SCM_RIGHTS).
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Err(RuntimeError::Init(
        "the container did not send a pty master".into(),
    ))
}

/// Puts a terminal in raw mode and restores it on drop.
#[derive(Debug)]
pub struct RawMode {
    fd: RawFd,
    saved: Termios,
}

impl RawMode {
    /// Raw mode on `fd` if it is a terminal.
    pub fn enter(fd: BorrowedFd<'_>) -> Option<Self> {
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(Self {
            fd: fd.as_raw_fd(),
            saved,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: the fd was a valid terminal when raw mode was entered and is one of our
        // stdio descriptors, which stay open for the life of the process.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        let _ = termios::tcsetattr(fd, SetArg::TCSANOW, &self.saved);
    }
}

/// Copies the window size of terminal `from` to pty `to` (ignored when `from` is no tty).
pub fn copy_winsize(from: BorrowedFd<'_>, to: &impl AsFd) {
    let mut ws: libc::winsize = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into our stack variable.
    if unsafe { libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } == 0 {
        // SAFETY: TIOCSWINSZ reads one winsize from our stack variable.
        unsafe { libc::ioctl(to.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
}
