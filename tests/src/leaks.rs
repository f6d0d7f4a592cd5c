//! Leak checks: after a test, nothing it made may remain — no mount, cgroup directory,
//! state directory or process that mentions its container ids or temp dirs.
//!
//! The roots (`/proc`, `/sys/fs/cgroup`) are parameters so the scanners can be pointed
//! at a fake tree.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::command::wait_until;
use crate::error::{HarnessError, Result};

/// How deep below each cgroup hierarchy's root the scanner looks for directories.
pub const CGROUP_DEPTH: usize = 4;

/// Everything a scan found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LeakReport {
    /// `/proc/self/mountinfo` lines whose root, mount point or source mentions a needle.
    pub mounts: Vec<String>,
    /// Cgroup directories whose name mentions a needle.
    pub cgroups: Vec<PathBuf>,
    /// Entries left in a checked state root.
    pub state: Vec<PathBuf>,
    /// `(pid, /proc/PID/cgroup line)` of processes in a cgroup that mentions a needle.
    pub processes: Vec<(i32, String)>,
}

impl LeakReport {
    pub fn is_empty(&self) -> bool {
        self.mounts.is_empty()
            && self.cgroups.is_empty()
            && self.state.is_empty()
            && self.processes.is_empty()
    }
}

impl fmt::Display for LeakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.mounts {
            writeln!(f, "  mount: {m}")?;
        }
        for c in &self.cgroups {
            writeln!(f, "  cgroup: {}", c.display())?;
        }
        for s in &self.state {
            writeln!(f, "  state: {}", s.display())?;
        }
        for (pid, line) in &self.processes {
            writeln!(f, "  process {pid}: {line}")?;
        }
        Ok(())
    }
}

/// A leak check: needles (container ids, temp dir paths) and state roots to inspect.
#[derive(Debug, Clone)]
pub struct LeakCheck {
    needles: Vec<String>,
    state_roots: Vec<PathBuf>,
    proc_root: PathBuf,
    cgroup_root: PathBuf,
}

impl Default for LeakCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl LeakCheck {
    /// A check of the real `/proc` and `/sys/fs/cgroup`, with nothing to look for yet.
    pub fn new() -> Self {
        Self::with_roots("/proc", "/sys/fs/cgroup")
    }

    /// A check of other proc and cgroup roots (for tests of the checker).
    pub fn with_roots(proc_root: impl Into<PathBuf>, cgroup_root: impl Into<PathBuf>) -> Self {
        Self {
            needles: Vec::new(),
            state_roots: Vec::new(),
            proc_root: proc_root.into(),
            cgroup_root: cgroup_root.into(),
        }
    }

    /// Looks for `s` (a container id or id prefix) everywhere.
    pub fn id(mut self, s: &str) -> Self {
        self.needles.push(s.to_owned());
        self
    }

    /// Looks for mounts of or under `p` (a test's temp dir).
    pub fn path(mut self, p: &Path) -> Self {
        self.needles.push(p.display().to_string());
        self
    }

    /// Requires `root` (a runtime's private `--root`) to be empty.
    pub fn state_root(mut self, root: &Path) -> Self {
        self.state_roots.push(root.to_owned());
        self
    }

    fn mentions(&self, s: &str) -> bool {
        self.needles.iter().any(|n| !n.is_empty() && s.contains(n))
    }

    /// One scan.
    pub fn scan(&self) -> LeakReport {
        LeakReport {
            mounts: self.scan_mounts(),
            cgroups: self.scan_cgroups(),
            state: self.scan_state(),
            processes: self.scan_processes(),
        }
    }

    fn scan_mounts(&self) -> Vec<String> {
        let text =
            std::fs::read_to_string(self.proc_root.join("self/mountinfo")).unwrap_or_default();
        text.lines()
            .filter(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                // root, mount point, and the source after the " - fstype " separator.
                let source = f
                    .iter()
                    .position(|x| *x == "-")
                    .and_then(|i| f.get(i + 2))
                    .copied()
                    .unwrap_or("");
                [
                    f.get(3).copied().unwrap_or(""),
                    f.get(4).copied().unwrap_or(""),
                    source,
                ]
                .iter()
                .any(|x| self.mentions(&unescape(x)))
            })
            .map(str::to_owned)
            .collect()
    }

    fn scan_cgroups(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.cgroup_root) else {
            return found;
        };
        for e in rd.flatten() {
            // cpu,cpuacct style links point at hierarchies seen under their own name.
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                self.walk_cgroup(&e.path(), 1, &mut found);
            }
        }
        found
    }

    fn walk_cgroup(&self, dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
        if depth > CGROUP_DEPTH {
            return;
        }
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let p = e.path();
            if self.mentions(&e.file_name().to_string_lossy()) {
                found.push(p.clone());
            }
            self.walk_cgroup(&p, depth + 1, found);
        }
    }

    fn scan_state(&self) -> Vec<PathBuf> {
        self.state_roots
            .iter()
            .flat_map(|r| {
                std::fs::read_dir(r)
                    .map(|rd| rd.flatten().map(|e| e.path()).collect::<Vec<_>>())
                    .unwrap_or_default()
            })
            .collect()
    }

    fn scan_processes(&self) -> Vec<(i32, String)> {
        let mut found = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.proc_root) else {
            return found;
        };
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(cg) = std::fs::read_to_string(e.path().join("cgroup")) else {
                continue;
            };
            if let Some(line) = cg.lines().find(|l| self.mentions(l)) {
                found.push((pid, line.to_owned()));
            }
        }
        found
    }

    /// Scans until clean or until `settle` has passed (a killed process takes a moment to
    /// disappear); returns the last report as an error when something is left.
    pub fn assert_clean_within(&self, settle: Duration) -> Result<()> {
        let mut last = LeakReport::default();
        if wait_until(settle, Duration::from_millis(50), || {
            last = self.scan();
            last.is_empty()
        }) {
            Ok(())
        } else {
            Err(HarnessError::Leaks(last))
        }
    }

    /// [`LeakCheck::assert_clean_within`] two seconds.
    pub fn assert_clean(&self) -> Result<()> {
        self.assert_clean_within(Duration::from_secs(2))
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Number of lines in `/proc/self/mountinfo`.
pub fn mount_count() -> Result<usize> {
    let p = "/proc/self/mountinfo";
    std::fs::read_to_string(p)
        .map(|s| s.lines().count())
        .map_err(|e| HarnessError::io("read", p, e))
}

/// The lines of `/proc/self/mountinfo`.
pub fn mount_lines() -> Result<Vec<String>> {
    let p = "/proc/self/mountinfo";
    std::fs::read_to_string(p)
        .map(|s| s.lines().map(str::to_owned).collect())
        .map_err(|e| HarnessError::io("read", p, e))
}

/// Number of open file descriptors of this process.
pub fn fd_count() -> Result<usize> {
    let p = "/proc/self/fd";
    // read_dir holds one fd of its own while counting.
    std::fs::read_dir(p)
        .map(|rd| rd.count().saturating_sub(1))
        .map_err(|e| HarnessError::io("read", p, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_octal() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/end\\04"), "/end\\04");
    }

    #[test]
    fn finds_planted_leaks_in_a_fake_tree() {
        let t = tempfile::tempdir().unwrap();
        let proc_root = t.path().join("proc");
        let cg = t.path().join("cg");
        std::fs::create_dir_all(proc_root.join("self")).unwrap();
        std::fs::create_dir_all(proc_root.join("42")).unwrap();
        std::fs::write(
            proc_root.join("self/mountinfo"),
            "1 0 0:1 / / rw - ext4 /dev/sda rw\n\
             2 1 0:2 / /tmp/x/rootfs rw - overlay e2e1-a-s rw\n",
        )
        .unwrap();
        std::fs::write(proc_root.join("42/cgroup"), "4:memory:/e2e1-a-s\n").unwrap();
        std::fs::create_dir_all(cg.join("memory/p/q/e2e1-a-s")).unwrap();
        std::fs::create_dir_all(cg.join("pids/e2e10-a-s")).unwrap();
        let state = t.path().join("root");
        std::fs::create_dir_all(state.join("e2e1-a-s")).unwrap();
        let r = LeakCheck::with_roots(&proc_root, &cg)
            .id("e2e1-a-s")
            .state_root(&state)
            .scan();
        assert_eq!(r.mounts.len(), 1, "{r}");
        assert_eq!(r.cgroups, vec![cg.join("memory/p/q/e2e1-a-s")]);
        assert_eq!(r.processes.len(), 1);
        assert_eq!(r.state.len(), 1);
    }
}
