//! Discovering the host's cgroup hierarchies, once per invocation.
//!
//! libcgroups' v1 manager re-reads `/proc/self/mountinfo` and `/proc/self/cgroup` for every
//! controller (twelve times per create). We parse each file once and compute every path.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::CgroupError;

/// How the host mounts cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only cgroup v1 hierarchies.
    Legacy,
    /// cgroup v1 hierarchies plus a cgroup2 mount (usually `/sys/fs/cgroup/unified`).
    Hybrid,
    /// Only cgroup v2, mounted at the cgroup root.
    Unified,
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where the hierarchy is mounted.
    pub mountpoint: PathBuf,
    /// The hierarchy path the mount shows at `mountpoint` (usually `/`).
    pub mount_root: String,
    /// v1 controllers (`cpu`, `cpuacct`) or a name (`name=systemd`); empty for cgroup2.
    pub controllers: Vec<String>,
    /// True for a cgroup2 hierarchy.
    pub v2: bool,
    /// The calling process's cgroup in this hierarchy.
    pub current: String,
}

/// The host's cgroup layout.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Legacy, hybrid or unified.
    pub mode: Mode,
    /// Every mounted hierarchy, v1 ones first.
    pub hierarchies: Vec<Hierarchy>,
}

impl Layout {
    /// Reads `PROC/self/mountinfo` and `PROC/self/cgroup`.
    pub fn detect(proc_root: &Path) -> Result<Self, CgroupError> {
        let mi_path = proc_root.join("self/mountinfo");
        let mountinfo =
            std::fs::read_to_string(&mi_path).map_err(|e| CgroupError::io("read", &mi_path, e))?;
        let cg_path = proc_root.join("self/cgroup");
        let cgroup =
            std::fs::read_to_string(&cg_path).map_err(|e| CgroupError::io("read", &cg_path, e))?;
        Self::parse(&mountinfo, &cgroup)
    }

    /// Builds the layout from the text of mountinfo and /proc/self/cgroup.
    pub fn parse(mountinfo: &str, proc_cgroup: &str) -> Result<Self, CgroupError> {
        let mut own: Vec<(Vec<String>, String)> = Vec::new();
        for line in proc_cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let ctrls: Vec<String> = if ctrls.is_empty() {
                Vec::new()
            } else {
                ctrls.split(',').map(str::to_owned).collect()
            };
            own.push((ctrls, path.to_owned()));
        }
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        for line in mountinfo.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 5 || post.len() < 3 {
                continue;
            }
            let fstype = post[0];
            let v2 = match fstype {
                "cgroup" => false,
                "cgroup2" => true,
                _ => continue,
            };
            let mountpoint = PathBuf::from(unescape(pre[4]));
            let mount_root = unescape(pre[3]);
            let controllers: Vec<String> = if v2 {
                Vec::new()
            } else {
                post[2]
                    .split(',')
                    .filter(|o| is_v1_controller(o) || o.starts_with("name="))
                    .map(str::to_owned)
                    .collect()
            };
            if !v2 && controllers.is_empty() {
                continue;
            }
            // A hierarchy may be mounted more than once; keep the first mount.
            if hierarchies
                .iter()
                .any(|h| h.v2 == v2 && h.controllers == controllers)
            {
                continue;
            }
            let current = own
                .iter()
                .find(|(c, _)| {
                    if v2 {
                        c.is_empty()
                    } else {
                        same_set(c, &controllers)
                    }
                })
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| "/".to_owned());
            hierarchies.push(Hierarchy {
                mountpoint,
                mount_root,
                controllers,
                v2,
                current,
            });
        }
        hierarchies.sort_by_key(|h| h.v2);
        let has_v1 = hierarchies.iter().any(|h| !h.v2);
        let has_v2 = hierarchies.iter().any(|h| h.v2);
        let mode = match (has_v1, has_v2) {
            (true, true) => Mode::Hybrid,
            (true, false) => Mode::Legacy,
            (false, true) => Mode::Unified,
            (false, false) => return Err(CgroupError::NoCgroups),
        };
        Ok(Self { mode, hierarchies })
    }

    /// The hierarchy holding v1 controller `name`.
    pub fn v1(&self, name: &str) -> Option<&Hierarchy> {
        self.hierarchies
            .iter()
            .find(|h| !h.v2 && h.controllers.iter().any(|c| c == name))
    }

    /// The cgroup2 hierarchy, if one is mounted.
    pub fn v2(&self) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.v2)
    }
}

impl Hierarchy {
    /// Directory for the container cgroup `inner` (absolute: from the hierarchy root;
    /// relative: below the calling process's cgroup).
    pub fn dir_for(&self, inner: &str) -> Result<PathBuf, CgroupError> {
        let full = if inner.starts_with('/') {
            inner.to_owned()
        } else {
            format!("{}/{}", self.current.trim_end_matches('/'), inner)
        };
        // The mount may show a sub-tree of the hierarchy (inside a container).
        let rel = match full.strip_prefix(self.mount_root.trim_end_matches('/')) {
            Some(r) if self.mount_root != "/" => r.to_owned(),
            _ => full.clone(),
        };
        let clean = clean_path(&rel).ok_or_else(|| {
            CgroupError::InvalidPath(inner.to_owned(), "it escapes the cgroup root")
        })?;
        Ok(self.mountpoint.join(clean.trim_start_matches('/')))
    }
}

/// Lexically cleans a slash path; `None` when `..` would climb above the root.
pub fn clean_path(p: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(format!("/{}", out.join("/")))
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

fn is_v1_controller(s: &str) -> bool {
    matches!(
        s,
        "cpu"
            | "cpuacct"
            | "cpuset"
            | "memory"
            | "devices"
            | "freezer"
            | "net_cls"
            | "net_prio"
            | "blkio"
            | "perf_event"
            | "hugetlb"
            | "pids"
            | "rdma"
            | "misc"
    )
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Converts a systemd-style cgroupsPath `slice:prefix:name` into a cgroupfs path, for hosts
/// where the systemd driver was asked for but systemd does not manage cgroups (runc's
/// expansion: `a-b.slice` lives at `a.slice/a-b.slice`).
pub fn systemd_to_fs_path(spec: &str, id: &str) -> Result<String, CgroupError> {
    let (slice, prefix, name) = if spec.is_empty() {
        ("system.slice", "warren", id)
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        if parts.len() != 3 {
            return Err(CgroupError::InvalidPath(
                spec.to_owned(),
                "the systemd cgroup driver expects slice:prefix:name",
            ));
        }
        (
            if parts[0].is_empty() {
                "system.slice"
            } else {
                parts[0]
            },
            parts[1],
            parts[2],
        )
    };
    let slice_path = expand_slice(slice)
        .ok_or_else(|| CgroupError::InvalidPath(spec.to_owned(), "invalid systemd slice name"))?;
    let unit = if name.ends_with(".slice") {
        name.to_owned()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok(format!("{slice_path}/{unit}"))
}

fn expand_slice(slice: &str) -> Option<String> {
    let base = slice.strip_suffix(".slice")?;
    if base.contains('/') {
        return None;
    }
    if base == "-" {
        return Some("/".to_owned());
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for comp in base.split('-') {
        if comp.is_empty() {
            return None;
        }
        path.push('/');
        path.push_str(&prefix);
        path.push_str(comp);
        path.push_str(".slice");
        prefix.push_str(comp);
        prefix.push('-');
    }
    Some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MI: &str = "\
25 30 0:23 / /sys/fs/cgroup rw,relatime shared:9 - tmpfs tmpfs rw,mode=755
26 25 0:24 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
27 25 0:25 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
28 25 0:26 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
29 25 0:27 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
";

    #[test]
    fn detects_hybrid_and_own_cgroups() {
        let cg = "4:memory:/process_api/abc\n1:cpu:/\n9:name=systemd:/\n0::/\n";
        let l = Layout::parse(HYBRID_MI, cg).expect("parse");
        assert_eq!(l.mode, Mode::Hybrid);
        assert_eq!(
            l.v1("memory").map(|h| h.current.as_str()),
            Some("/process_api/abc")
        );
        assert!(l.v2().is_some());
        let mem = l.v1("memory").expect("memory");
        assert_eq!(
            mem.dir_for("/ns/c1").ok(),
            Some(PathBuf::from("/sys/fs/cgroup/memory/ns/c1"))
        );
        assert_eq!(
            mem.dir_for("c1").ok(),
            Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/abc/c1"))
        );
        assert!(mem.dir_for("/../../etc").is_err());
    }

    #[test]
    fn detects_unified() {
        let mi = "35 24 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let l = Layout::parse(mi, "0::/user.slice\n").expect("parse");
        assert_eq!(l.mode, Mode::Unified);
        assert_eq!(l.hierarchies.len(), 1);
        assert_eq!(l.v2().map(|h| h.current.as_str()), Some("/user.slice"));
    }

    #[test]
    fn systemd_paths_expand_like_runc() {
        assert_eq!(
            systemd_to_fs_path("machine-app.slice:libpod:abc", "x")
                .ok()
                .as_deref(),
            Some("/machine.slice/machine-app.slice/libpod-abc.scope")
        );
        assert_eq!(
            systemd_to_fs_path("", "c1").ok().as_deref(),
            Some("/system.slice/warren-c1.scope")
        );
        assert!(systemd_to_fs_path("only:two", "x").is_err());
    }
}
