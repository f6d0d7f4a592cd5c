//! The frames between a pool daemon and the init of a pooled sandbox (`warren-pool-init`).
//!
//! Private to warren (clients speak JSON to the daemon, see [`crate::pool::api`]), so it is
//! binary and tiny: the init decodes it with std alone. Every frame is
//! `u32 length (LE, of what follows) | u8 kind | payload`; integers are little-endian and
//! byte strings are `u32 length | bytes`. This file is also compiled into the init
//! (`#[path]`), so it uses nothing but `std`.

use std::io::{self, Read, Write};

/// Protocol version, sent in [`Kind::Hello`].
pub const VERSION: u32 = 1;

/// Largest frame accepted (a data frame carries at most [`CHUNK`] bytes).
pub const MAX_FRAME: usize = 1 << 20;

/// Largest stdout/stderr chunk the init puts in one frame.
pub const CHUNK: usize = 64 * 1024;

/// Frame kinds. Init → daemon: 1..=9; daemon → init: 20..
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// `u32 version`: the init is connected and idle.
    Hello = 1,
    /// `i32 pid` (in the sandbox's pid namespace): the command was executed.
    Started = 2,
    /// `i32 errno | bytes what`: the command could not be started (`what` names the step
    /// or the path that failed).
    SpawnFailed = 3,
    /// Bytes the command wrote to stdout.
    Stdout = 4,
    /// Bytes the command wrote to stderr.
    Stderr = 5,
    /// The command exited: see [`Exit`].
    Exit = 6,
    /// `u32 killed | u8 ok`: every process but the init is gone (`ok` = 1) after an exit.
    Clean = 7,
    /// Answer to [`Kind::Ping`].
    Pong = 8,
    /// `bytes message`: the init refused a frame.
    Error = 9,
    /// Run a command: see [`Spawn`].
    Spawn = 20,
    /// Kill the running command (and everything it started).
    Kill = 21,
    /// Are you there?
    Ping = 22,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Hello,
            2 => Self::Started,
            3 => Self::SpawnFailed,
            4 => Self::Stdout,
            5 => Self::Stderr,
            6 => Self::Exit,
            7 => Self::Clean,
            8 => Self::Pong,
            9 => Self::Error,
            20 => Self::Spawn,
            21 => Self::Kill,
            22 => Self::Ping,
            _ => return None,
        })
    }
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub payload: Vec<u8>,
}

/// Writes one frame with a single `write_all` (frames from one writer never interleave).
pub fn write_frame(w: &mut impl Write, kind: Kind, payload: &[u8]) -> io::Result<()> {
    let len = payload.len() + 1;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "frame too large",
        ));
    }
    let mut buf = Vec::with_capacity(4 + len);
    buf.extend_from_slice(&(len as u32).to_le_bytes());
    buf.push(kind as u8);
    buf.extend_from_slice(payload);
    w.write_all(&buf)
}

/// Reads one frame; `Ok(None)` on a clean end of stream before a frame starts.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Frame>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad frame length {len}"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    let kind = Kind::from_u8(body[0]).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown frame kind {}", body[0]),
        )
    })?;
    body.remove(0);
    Ok(Some(Frame {
        kind,
        payload: body,
    }))
}

/// Appends little-endian fields to a payload.
#[derive(Debug, Default)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
        self
    }
    pub fn list(&mut self, v: &[Vec<u8>]) -> &mut Self {
        self.u32(v.len() as u32);
        for x in v {
            self.bytes(x);
        }
        self
    }
}

/// Reads fields back; every getter fails on a short payload instead of panicking.
#[derive(Debug)]
pub struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn short() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "short frame payload")
}

impl<'a> Dec<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(short)?;
        let s = self.buf.get(self.pos..end).ok_or_else(short)?;
        self.pos = end;
        Ok(s)
    }
    pub fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> io::Result<u32> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    pub fn i32(&mut self) -> io::Result<i32> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(i32::from_le_bytes(a))
    }
    pub fn u64(&mut self) -> io::Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    pub fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    pub fn list(&mut self) -> io::Result<Vec<Vec<u8>>> {
        let n = self.u32()? as usize;
        if n > self.buf.len() {
            return Err(short());
        }
        (0..n).map(|_| self.bytes()).collect()
    }
    /// Whatever is left.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos.min(self.buf.len())..];
        self.pos = self.buf.len();
        s
    }
}

/// "Keep the sandbox's user" in [`Spawn::uid`] and [`Spawn::gid`].
pub const KEEP_ID: u32 = u32::MAX;

/// What to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spawn {
    /// argv; argv[0] without a `/` is looked up in the `PATH` of `env`.
    pub argv: Vec<Vec<u8>>,
    /// The complete environment, `KEY=value`.
    pub env: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    /// Written to the command's stdin, which is then closed.
    pub stdin: Vec<u8>,
    /// Wall-clock limit; 0 = none.
    pub timeout_ms: u64,
    /// Combined stdout+stderr limit in bytes; 0 = none.
    pub output_limit: u64,
    pub uid: u32,
    pub gid: u32,
}

impl Spawn {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.list(&self.argv)
            .list(&self.env)
            .bytes(&self.cwd)
            .bytes(&self.stdin)
            .u64(self.timeout_ms)
            .u64(self.output_limit)
            .u32(self.uid)
            .u32(self.gid);
        e.0
    }

    pub fn decode(b: &[u8]) -> io::Result<Self> {
        let mut d = Dec::new(b);
        Ok(Self {
            argv: d.list()?,
            env: d.list()?,
            cwd: d.bytes()?,
            stdin: d.bytes()?,
            timeout_ms: d.u64()?,
            output_limit: d.u64()?,
            uid: d.u32()?,
            gid: d.u32()?,
        })
    }
}

/// [`Exit`] flag: the time limit killed the command.
pub const EXIT_TIMED_OUT: u8 = 1;
/// [`Exit`] flag: the output limit killed the command.
pub const EXIT_OUTPUT_LIMIT: u8 = 2;
/// [`Exit`] flag: a [`Kind::Kill`] killed the command.
pub const EXIT_KILLED: u8 = 4;

/// How the command ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exit {
    /// Exit status, or -1 when a signal ended it.
    pub code: i32,
    /// The signal, or 0.
    pub signal: i32,
    /// `EXIT_*` bits.
    pub flags: u8,
    /// From the spawn to the exit.
    pub duration_us: u64,
    /// Peak resident set of the command (and the children it waited for), KiB.
    pub max_rss_kb: u64,
    pub user_us: u64,
    pub system_us: u64,
}

impl Exit {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.i32(self.code)
            .i32(self.signal)
            .u8(self.flags)
            .u64(self.duration_us)
            .u64(self.max_rss_kb)
            .u64(self.user_us)
            .u64(self.system_us);
        e.0
    }

    pub fn decode(b: &[u8]) -> io::Result<Self> {
        let mut d = Dec::new(b);
        Ok(Self {
            code: d.i32()?,
            signal: d.i32()?,
            flags: d.u8()?,
            duration_us: d.u64()?,
            max_rss_kb: d.u64()?,
            user_us: d.u64()?,
            system_us: d.u64()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_refuse_garbage() {
        let s = Spawn {
            argv: vec![b"python3".to_vec(), b"-c".to_vec(), b"pass".to_vec()],
            env: vec![b"PATH=/usr/bin".to_vec()],
            cwd: b"/workspace".to_vec(),
            stdin: b"in".to_vec(),
            timeout_ms: 5000,
            output_limit: 1 << 20,
            uid: KEEP_ID,
            gid: KEEP_ID,
        };
        let mut buf = Vec::new();
        write_frame(&mut buf, Kind::Spawn, &s.encode()).expect("write");
        let x = Exit {
            code: -1,
            signal: 9,
            flags: EXIT_TIMED_OUT,
            duration_us: 7,
            ..Default::default()
        };
        write_frame(&mut buf, Kind::Exit, &x.encode()).expect("write");
        let mut r = &buf[..];
        let f = read_frame(&mut r).expect("read").expect("frame");
        assert_eq!(f.kind, Kind::Spawn);
        assert_eq!(Spawn::decode(&f.payload).expect("spawn"), s);
        let f = read_frame(&mut r).expect("read").expect("frame");
        assert_eq!(Exit::decode(&f.payload).expect("exit"), x);
        assert!(read_frame(&mut r).expect("eof").is_none());

        // Truncated payloads, bad kinds and absurd lengths are errors, not panics.
        assert!(Spawn::decode(&s.encode()[..10]).is_err());
        assert!(read_frame(&mut &[2u8, 0, 0, 0, 99, 0][..]).is_err());
        assert!(read_frame(&mut &[0xff, 0xff, 0xff, 0x7f][..]).is_err());
        let mut e = Enc::default();
        e.u32(u32::MAX);
        assert!(Dec::new(&e.0).list().is_err());
    }
}
