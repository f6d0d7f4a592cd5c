//! Running a command with a hard deadline and capturing what it printed.
//!
//! stdout and stderr go to anonymous temporary files, not pipes: a detached container
//! inherits the runtime's stdio, and a pipe held open by a container would make a reader
//! wait for the container instead of the runtime. The command runs in its own process
//! group, so a hang is ended by killing the whole group.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{HarnessError, Result};

/// Deadline for a runtime command unless a test says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A command line to run, built up like [`std::process::Command`].
#[derive(Debug)]
pub struct Invocation {
    program: PathBuf,
    args: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    stdout: Option<File>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    timeout: Duration,
}

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub cmdline: String,
    /// Exit code when it exited normally.
    pub code: Option<i32>,
    /// Signal number when it was killed by a signal.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    /// True when the command exited with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The status a shell would report: the exit code, or 128 + the signal number.
    pub fn exit_code(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => -1,
        }
    }

    /// `Ok(self)` when the command succeeded, else an error that shows everything.
    pub fn check(self) -> Result<Self> {
        if self.success() {
            Ok(self)
        } else {
            Err(HarnessError::Failed(Box::new(self)))
        }
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.stdout).map_err(|source| HarnessError::Json {
            what: format!("stdout of `{}`", self.cmdline),
            text: self.stdout.clone(),
            source,
        })
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "`{}` exited with {} after {:?}",
            self.cmdline,
            self.exit_code(),
            self.elapsed
        )?;
        writeln!(f, "--- stdout ---\n{}", self.stdout.trim_end())?;
        write!(f, "--- stderr ---\n{}", self.stderr.trim_end())
    }
}

fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

impl Invocation {
    /// A command running `program` with no arguments yet.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            stdin: None,
            stdout: None,
            cwd: None,
            env: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Bytes fed to the command's stdin (default: /dev/null).
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(data.into());
        self
    }

    /// Sends stdout to `file` instead of capturing it (for output a detached container
    /// writes after the runtime has exited).
    pub fn stdout_to(mut self, file: File) -> Self {
        self.stdout = Some(file);
        self
    }

    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }

    /// Hard deadline: the command is killed (with its process group) when it passes.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The command line as a shell would show it.
    pub fn cmdline(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(quote)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Starts the command without waiting for it.
    pub fn spawn(self) -> Result<Running> {
        let cmdline = self.cmdline();
        let spawn_err = |op, source| HarnessError::Spawn {
            op,
            cmdline: cmdline.clone(),
            source,
        };
        let out = tempfile::tempfile().map_err(|e| spawn_err("create stdout file for", e))?;
        let err = tempfile::tempfile().map_err(|e| spawn_err("create stderr file for", e))?;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).process_group(0);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        match self.stdin {
            Some(data) => {
                let mut f =
                    tempfile::tempfile().map_err(|e| spawn_err("create stdin file for", e))?;
                f.write_all(&data)
                    .and_then(|_| f.seek(SeekFrom::Start(0)).map(drop))
                    .map_err(|e| spawn_err("write stdin file for", e))?;
                cmd.stdin(Stdio::from(f));
            }
            None => {
                cmd.stdin(Stdio::null());
            }
        }
        let captured = match self.stdout {
            Some(f) => {
                cmd.stdout(Stdio::from(f));
                None
            }
            None => {
                let dup = out.try_clone().map_err(|e| spawn_err("dup stdout of", e))?;
                cmd.stdout(Stdio::from(dup));
                Some(out)
            }
        };
        let dup = err.try_clone().map_err(|e| spawn_err("dup stderr of", e))?;
        cmd.stderr(Stdio::from(dup));
        let started = Instant::now();
        let child = cmd.spawn().map_err(|e| spawn_err("start", e))?;
        Ok(Running {
            child,
            cmdline,
            stdout: captured,
            stderr: err,
            started,
            deadline: started + self.timeout,
        })
    }

    /// Runs the command to completion (or its deadline).
    pub fn output(self) -> Result<Output> {
        self.spawn()?.wait()
    }
}

/// A started command.
#[derive(Debug)]
pub struct Running {
    child: Child,
    cmdline: String,
    stdout: Option<File>,
    stderr: File,
    started: Instant,
    deadline: Instant,
}

fn read_all(f: Option<&mut File>) -> String {
    let Some(f) = f else {
        return String::new();
    };
    let mut v = Vec::new();
    if f.seek(SeekFrom::Start(0)).is_ok() {
        let _ = f.read_to_end(&mut v);
    }
    String::from_utf8_lossy(&v).into_owned()
}

impl Running {
    /// Host pid of the command.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True once the command has exited (it is not reaped until [`Running::wait`]).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the command; kills its process group at the deadline and reports a hang.
    pub fn wait(mut self) -> Result<Output> {
        let mut nap = Duration::from_millis(1);
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) => {}
                Err(source) => {
                    return Err(HarnessError::Spawn {
                        op: "wait for",
                        cmdline: self.cmdline,
                        source,
                    });
                }
            }
            if Instant::now() >= self.deadline {
                // The child is not reaped yet, so its pid (= its process group) is still ours.
                let pgid = self.child.id() as i32;
                // SAFETY: kill(2) with a negative pid signals our child's process group.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(HarnessError::Timeout {
                    cmdline: self.cmdline,
                    after: self.started.elapsed(),
                    stdout: read_all(self.stdout.as_mut()),
                    stderr: read_all(Some(&mut self.stderr)),
                });
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(10));
        };
        Ok(Output {
            cmdline: self.cmdline,
            code: status.code(),
            signal: status.signal(),
            stdout: read_all(self.stdout.as_mut()),
            stderr: read_all(Some(&mut self.stderr)),
            elapsed: self.started.elapsed(),
        })
    }
}

/// Runs `sh -c script` on the host and returns its output (for host-side setup such as
/// `ip netns add`).
pub fn host_sh(script: &str) -> Result<Output> {
    Invocation::new("/bin/sh")
        .args(["-c", script])
        .timeout(Duration::from_secs(30))
        .output()
}

/// Polls `cond` every `every` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, every: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(every);
    }
}
