//! Running one container to completion and reading what it printed, with a deadline; and
//! starting a long-running one for the memory measurements.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::lifecycle::Runtime;

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh container id.
pub fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn read_all(mut f: std::fs::File) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = f.rewind().and_then(|()| f.read_to_end(&mut v));
    v
}

/// The last `n` non-empty lines of `text`, joined with "; ".
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join("; ")
}

/// Runs `cmd` (stdout and stderr to temporary files, never pipes: a container keeps its
/// stdio open) until it exits or `deadline` passes (then it is killed). Returns stdout, or
/// an error with the exit status and the end of stderr.
pub fn run_command(mut cmd: Command, what: &str, deadline: Duration) -> Result<String> {
    let out = tempfile::tempfile().context("create a temporary file")?;
    let err = tempfile::tempfile().context("create a temporary file")?;
    cmd.stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?);
    let mut child = cmd.spawn().with_context(|| format!("spawn {what}"))?;
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .with_context(|| format!("wait for {what}"))?
        {
            break s;
        }
        if t.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{what}: timed out after {} s", deadline.as_secs());
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let stdout = String::from_utf8_lossy(&read_all(out)).into_owned();
    if !status.success() {
        let stderr = String::from_utf8_lossy(&read_all(err)).into_owned();
        let msg = tail(&stderr, 3);
        bail!(
            "{what}: {status}{}{}",
            if msg.is_empty() { "" } else { ": " },
            msg
        );
    }
    Ok(stdout)
}

/// `runtime --root ROOT run --bundle BUNDLE ID` in the foreground; returns what the
/// container printed on stdout. The container is deleted afterwards in any case.
pub fn run_to_completion(
    rt: &Runtime,
    root: &Path,
    bundle: &Path,
    deadline: Duration,
) -> Result<String> {
    let id = new_id("wbench");
    let mut cmd = Command::new(&rt.path);
    cmd.arg("--root")
        .arg(root)
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(&id);
    let r = run_command(cmd, &format!("{} run", rt.name), deadline);
    delete(rt, root, &id);
    r
}

/// `runtime delete -f ID`, ignoring errors (cleanup).
pub fn delete(rt: &Runtime, root: &Path, id: &str) {
    let _ = Command::new(&rt.path)
        .arg("--root")
        .arg(root)
        .args(["delete", "-f", id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A container started with `create` + `start`, deleted (forcibly) on drop.
#[derive(Debug)]
pub struct Started<'a> {
    rt: &'a Runtime,
    root: PathBuf,
    /// The container id.
    pub id: String,
    /// The pid of its process.
    pub pid: i32,
}

impl<'a> Started<'a> {
    /// Creates and starts a container of `bundle` under `root`.
    pub fn start(rt: &'a Runtime, root: &Path, bundle: &Path) -> Result<Started<'a>> {
        let id = new_id("wbench-mem");
        let pid_file = root.join(format!("{id}.pid"));
        let mut cmd = Command::new(&rt.path);
        cmd.arg("--root")
            .arg(root)
            .args(["create", "--bundle"])
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(&id);
        let mut started = Started {
            rt,
            root: root.to_owned(),
            id: id.clone(),
            pid: 0,
        };
        run_command(cmd, &format!("{} create", rt.name), Duration::from_secs(30))?;
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .with_context(|| format!("read {}", pid_file.display()))?
            .trim()
            .parse()
            .with_context(|| format!("parse {}", pid_file.display()))?;
        let mut cmd = Command::new(&rt.path);
        cmd.arg("--root").arg(root).args(["start", &id]);
        run_command(cmd, &format!("{} start", rt.name), Duration::from_secs(30))?;
        started.pid = pid;
        Ok(started)
    }
}

impl Drop for Started<'_> {
    fn drop(&mut self) {
        let _ = Command::new(&self.rt.path)
            .arg("--root")
            .arg(&self.root)
            .args(["kill", &self.id, "KILL"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        delete(self.rt, &self.root, &self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_commands_report_status_and_stderr() {
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "echo out; echo first >&2; echo 'it broke' >&2; exit 3",
        ]);
        let e = run_command(c, "sh", Duration::from_secs(10)).err();
        let e = e.map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(e.contains("exit status: 3"), "{e}");
        assert!(e.contains("first; it broke"), "{e}");
        let mut c = Command::new("sh");
        c.args(["-c", "echo out"]);
        assert_eq!(
            run_command(c, "sh", Duration::from_secs(10))
                .ok()
                .as_deref(),
            Some("out\n")
        );
        let mut c = Command::new("sleep");
        c.arg("5");
        let e = run_command(c, "sleep", Duration::from_millis(50)).err();
        assert!(e.is_some_and(|e| e.to_string().contains("timed out")));
    }
}
