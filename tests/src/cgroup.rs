//! Finding a process's cgroups from the host (cgroup v1, or the v2 unified hierarchy).

use std::path::{Path, PathBuf};

/// The cgroup path (relative to the hierarchy root) of `pid` in the v1 hierarchy that
/// has controller `ctrl` (e.g. `memory`, `freezer`, `name=systemd`), or `""` for the
/// unified hierarchy. Reads `PROC/PID/cgroup`.
pub fn path_of(proc_root: &Path, pid: i64, ctrl: &str) -> Option<String> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup")).ok()?;
    text.lines().find_map(|l| {
        let mut it = l.splitn(3, ':');
        let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
        let hit = if ctrl.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == ctrl)
        };
        hit.then(|| path.to_owned())
    })
}

/// Host directory of `pid`'s cgroup for controller `ctrl` under `/sys/fs/cgroup/<ctrl>`
/// (`ctrl == ""`: the unified hierarchy at `/sys/fs/cgroup/unified`).
pub fn dir_of(pid: i64, ctrl: &str) -> Option<PathBuf> {
    let p = path_of(Path::new("/proc"), pid, ctrl)?;
    let mount = if ctrl.is_empty() { "unified" } else { ctrl };
    Some(
        Path::new("/sys/fs/cgroup")
            .join(mount)
            .join(p.trim_start_matches('/')),
    )
}

/// Contents (trimmed) of `file` in `pid`'s cgroup for `ctrl`.
pub fn read(pid: i64, ctrl: &str, file: &str) -> Option<String> {
    let d = dir_of(pid, ctrl)?;
    std::fs::read_to_string(d.join(file))
        .ok()
        .map(|s| s.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_controller_lines() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("7")).unwrap();
        std::fs::write(
            t.path().join("7/cgroup"),
            "4:memory:/a/b\n3:cpu,cpuacct:/c\n0::/u\n",
        )
        .unwrap();
        assert_eq!(path_of(t.path(), 7, "memory").as_deref(), Some("/a/b"));
        assert_eq!(path_of(t.path(), 7, "cpuacct").as_deref(), Some("/c"));
        assert_eq!(path_of(t.path(), 7, "").as_deref(), Some("/u"));
        assert_eq!(path_of(t.path(), 7, "pids"), None);
    }
}
