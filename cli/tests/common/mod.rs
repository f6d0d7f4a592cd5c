//! Test harness: a `warren` with its own `--root`/`--data-root` in a temp dir, removed
//! with everything in it (sandboxes, mounts, monitors) even when a test fails.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const WARREN: &str = env!("CARGO_BIN_EXE_warren");

pub fn is_root() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Skips a test that needs root.
#[macro_export]
macro_rules! need_root {
    () => {
        if !common::is_root() {
            eprintln!("SKIPPED: needs root");
            return;
        }
    };
}

#[derive(Debug)]
pub struct Env {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub data: PathBuf,
    pub work: PathBuf,
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

impl From<Output> for Out {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("warren-cli-test")
            .tempdir_in("/tmp")
            .unwrap();
        let root = dir.path().join("run");
        let data = dir.path().join("data");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        Self {
            dir,
            root,
            data,
            work,
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(WARREN);
        c.arg("--root")
            .arg(&self.root)
            .arg("--data-root")
            .arg(&self.data);
        c.args(args).current_dir(&self.work).stdin(Stdio::null());
        c
    }

    pub fn warren(&self, args: &[&str]) -> Out {
        self.cmd(args).output().unwrap().into()
    }

    /// Runs and asserts success.
    pub fn ok(&self, args: &[&str]) -> Out {
        let o = self.warren(args);
        assert_eq!(o.code, 0, "warren {args:?}: {o:?}");
        o
    }

    /// The shell line that runs warren with this env's roots (for tmux and script).
    pub fn shell(&self, args: &str) -> String {
        format!(
            "cd {} && {WARREN} --root {} --data-root {} {args}",
            self.work.display(),
            self.root.display(),
            self.data.display()
        )
    }

    pub fn ps_json(&self, all: bool) -> Vec<serde_json::Value> {
        let o = if all {
            self.ok(&["ps", "-a", "--format", "json"])
        } else {
            self.ok(&["ps", "--format", "json"])
        };
        serde_json::from_str(&o.stdout).unwrap()
    }

    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let o = self.ok(&["inspect", name]);
        let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        v[0].clone()
    }

    /// Waits until `f` holds (or panics after `secs`).
    pub fn wait_for(&self, secs: u64, what: &str, mut f: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out waiting for {what}");
    }

    pub fn status(&self, name: &str) -> String {
        self.inspect(name)["state"]["status"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// Entries left under a state directory.
    pub fn entries(&self, p: &Path) -> Vec<String> {
        std::fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts that no sandbox state is left: no records, names, runtime state, bundles
    /// or mounts under the roots.
    pub fn assert_empty(&self) {
        let sandboxes = self.entries(&self.data.join("sandboxes"));
        assert!(sandboxes.is_empty(), "records left: {sandboxes:?}");
        let names = self.entries(&self.data.join("names"));
        assert!(names.is_empty(), "names left: {names:?}");
        let rt: Vec<String> = self
            .entries(&self.root.join("runtime"))
            .into_iter()
            .filter(|e| !e.starts_with('.'))
            .collect();
        assert!(rt.is_empty(), "runtime state left: {rt:?}");
        let run = self.entries(&self.root.join("sandboxes"));
        assert!(run.is_empty(), "run dirs left: {run:?}");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let base = self.dir.path().to_string_lossy().into_owned();
        assert!(!mounts.contains(&base), "mounts left under {base}");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Remove whatever a failed test left: sandboxes first, then stray mounts.
        if let Ok(o) = self.cmd(&["ps", "-aq"]).output() {
            for id in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = self.cmd(&["rm", "-f", id]).output();
            }
        }
        let base = self.dir.path().to_string_lossy().into_owned();
        if let Ok(m) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut points: Vec<&str> = m
                .lines()
                .filter_map(|l| l.split_whitespace().nth(4))
                .filter(|p| p.starts_with(&base))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }
}

/// Reads a cgroup file of a sandbox (first recorded directory that has it).
pub fn cgroup_file(inspect: &serde_json::Value, file: &str) -> Option<String> {
    inspect["state"]["runtime"]["cgroups"]
        .as_array()?
        .iter()
        .filter_map(|d| d.as_str())
        .map(|d| Path::new(d).join(file))
        .find(|p| p.exists())
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
}

pub fn tmux(args: &[&str]) -> Out {
    Command::new("tmux").args(args).output().unwrap().into()
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
