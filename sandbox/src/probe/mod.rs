//! Kernel feature probing: what the sandbox layer can count on here, and what it cannot.
//!
//! Checks that read files take their roots (`proc_root`, usually `/proc`; `sys_root`,
//! usually `/sys`) so that tests can point them at a fake tree; checks that need the
//! kernel itself (Landlock ABI, seccomp actions, pidfd_open, clone3) make harmless
//! syscalls. [`Features::annotations`] renders the result for `warren-runtime features`,
//! and [`Features::degradations`] says openly what is missing.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

/// Which cgroup hierarchy the machine mounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupVersion {
    /// Only v1 controllers.
    V1,
    /// v1 controllers plus a cgroup2 mount at `fs/cgroup/unified`.
    Hybrid,
    /// The unified hierarchy only.
    V2,
    /// No cgroup filesystem found.
    Unknown,
}

impl CgroupVersion {
    /// Short name: `v1`, `hybrid`, `v2`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::Hybrid => "hybrid",
            CgroupVersion::V2 => "v2",
            CgroupVersion::Unknown => "unknown",
        }
    }
}

/// User namespace availability and the sysctls that restrict it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize)]
pub struct UserNamespaces {
    /// `/proc/sys/user/max_user_namespaces` (0 disables them).
    pub max_user_namespaces: Option<u64>,
    /// `kernel.unprivileged_userns_clone` (Debian's switch; 0 forbids unprivileged use).
    pub unprivileged_userns_clone: Option<bool>,
    /// `kernel.apparmor_restrict_unprivileged_userns` (Ubuntu; 1 restricts unprivileged use).
    pub apparmor_restrict_unprivileged_userns: Option<bool>,
}

impl UserNamespaces {
    /// Whether user namespaces can be created at all (by root).
    pub fn available(&self) -> bool {
        self.max_user_namespaces != Some(0)
    }

    /// Whether an unprivileged process may create one.
    pub fn unprivileged(&self) -> bool {
        self.available()
            && self.unprivileged_userns_clone != Some(false)
            && self.apparmor_restrict_unprivileged_userns != Some(true)
    }
}

/// Seccomp support.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize)]
pub struct SeccompSupport {
    /// Whether the kernel has seccomp filters.
    pub available: bool,
    /// Actions the kernel reports available (`SECCOMP_GET_ACTION_AVAIL`).
    pub actions: Vec<&'static str>,
    /// Actions it reports unavailable.
    pub missing_actions: Vec<&'static str>,
}

/// What the machine offers.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Features {
    /// Landlock ABI (0: none).
    pub landlock_abi: u32,
    /// Seccomp.
    pub seccomp: SeccompSupport,
    /// User namespaces.
    pub user_namespaces: UserNamespaces,
    /// Cgroup hierarchy.
    pub cgroup: CgroupVersion,
    /// overlayfs listed in `/proc/filesystems`.
    pub overlayfs: bool,
    /// `pidfd_open(2)` works.
    pub pidfd_open: bool,
    /// `clone3(2)` exists.
    pub clone3: bool,
}

/// The kernel's Landlock ABI (`landlock_create_ruleset(NULL, 0, VERSION)`); `None` when
/// Landlock is not built in or not enabled.
pub fn landlock_abi() -> Option<u32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a NULL attribute pointer, size 0 and the VERSION flag the syscall only
    // returns the ABI number; it reads and writes no memory and creates no fd.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(v).ok().filter(|v| *v > 0)
}

const SECCOMP_ACTIONS: &[(&str, u32)] = &[
    ("kill_process", libc::SECCOMP_RET_KILL_PROCESS),
    ("kill_thread", libc::SECCOMP_RET_KILL_THREAD),
    ("trap", libc::SECCOMP_RET_TRAP),
    ("errno", libc::SECCOMP_RET_ERRNO),
    ("user_notif", libc::SECCOMP_RET_USER_NOTIF),
    ("trace", libc::SECCOMP_RET_TRACE),
    ("log", libc::SECCOMP_RET_LOG),
    ("allow", libc::SECCOMP_RET_ALLOW),
];

/// Seccomp support of the running kernel.
pub fn seccomp_support() -> SeccompSupport {
    // SAFETY: PR_GET_SECCOMP takes no pointer; it returns the calling thread's mode or
    // fails with EINVAL on kernels without seccomp.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    let mut s = SeccompSupport {
        available: mode >= 0,
        ..SeccompSupport::default()
    };
    if !s.available {
        return s;
    }
    for (name, action) in SECCOMP_ACTIONS {
        let a: u32 = *action;
        // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 through the pointer, which points
        // at `a`, alive for the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_GET_ACTION_AVAIL,
                0,
                &a as *const u32,
            )
        };
        if rc == 0 {
            s.actions.push(name);
        } else {
            s.missing_actions.push(name);
        }
    }
    s
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// User namespace limits under `proc_root`.
pub fn user_namespaces(proc_root: &Path) -> UserNamespaces {
    let flag = |p: &str| {
        read_trimmed(&proc_root.join(p))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|v| v != 0)
    };
    UserNamespaces {
        max_user_namespaces: read_trimmed(&proc_root.join("sys/user/max_user_namespaces"))
            .and_then(|v| v.parse().ok()),
        unprivileged_userns_clone: flag("sys/kernel/unprivileged_userns_clone"),
        apparmor_restrict_unprivileged_userns: flag(
            "sys/kernel/apparmor_restrict_unprivileged_userns",
        ),
    }
}

/// The cgroup hierarchy under `sys_root` (`fs/cgroup`).
pub fn cgroup_version(sys_root: &Path) -> CgroupVersion {
    let root = sys_root.join("fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return CgroupVersion::V2;
    }
    let v1 = [
        "memory", "cpu", "pids", "cpuset", "devices", "freezer", "blkio",
    ]
    .iter()
    .any(|c| root.join(c).is_dir());
    match (v1, root.join("unified/cgroup.controllers").exists()) {
        (true, true) => CgroupVersion::Hybrid,
        (true, false) => CgroupVersion::V1,
        (false, true) => CgroupVersion::V2,
        (false, false) => CgroupVersion::Unknown,
    }
}

/// Whether `proc_root/filesystems` lists overlayfs (it may still load as a module on demand).
pub fn overlayfs(proc_root: &Path) -> bool {
    std::fs::read_to_string(proc_root.join("filesystems"))
        .map(|s| {
            s.lines()
                .any(|l| l.split_whitespace().last() == Some("overlay"))
        })
        .unwrap_or(false)
}

/// Whether `pidfd_open(2)` works (on the calling process).
pub fn pidfd_open_available() -> bool {
    // SAFETY: pidfd_open(getpid(), 0) takes no pointers; a returned fd is closed below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    if fd >= 0 {
        // SAFETY: `fd` was just returned to us and is not used elsewhere.
        unsafe { libc::close(fd as libc::c_int) };
        return true;
    }
    false
}

/// Whether `clone3(2)` exists: called with a too-small size it fails with EINVAL when the
/// kernel has it and ENOSYS when not, without creating anything.
pub fn clone3_available() -> bool {
    // SAFETY: a NULL args pointer with size 0 is rejected by the size check (EINVAL) before
    // any memory is read or any process is created.
    let rc = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<libc::c_void>(), 0usize) };
    rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
}

impl Features {
    /// Probes the running kernel, reading files under `proc_root` and `sys_root`.
    pub fn probe(proc_root: &Path, sys_root: &Path) -> Features {
        Features {
            landlock_abi: landlock_abi().unwrap_or(0),
            seccomp: seccomp_support(),
            user_namespaces: user_namespaces(proc_root),
            cgroup: cgroup_version(sys_root),
            overlayfs: overlayfs(proc_root),
            pidfd_open: pidfd_open_available(),
            clone3: clone3_available(),
        }
    }

    /// runc-style feature annotations for `warren-runtime features`.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        let mut a = BTreeMap::new();
        let mut put = |k: &str, v: String| {
            a.insert(format!("run.warren.{k}"), v);
        };
        put("landlock.abi", self.landlock_abi.to_string());
        put("seccomp.enabled", self.seccomp.available.to_string());
        put("seccomp.actions", self.seccomp.actions.join(","));
        put("userns", self.user_namespaces.available().to_string());
        put(
            "userns.unprivileged",
            self.user_namespaces.unprivileged().to_string(),
        );
        put("cgroup", self.cgroup.as_str().to_owned());
        put("overlayfs", self.overlayfs.to_string());
        put("pidfd_open", self.pidfd_open.to_string());
        put("clone3", self.clone3.to_string());
        let degraded = self.degradations();
        if !degraded.is_empty() {
            put("degraded", degraded.join("; "));
        }
        a
    }

    /// What warren's sandbox cannot enforce here, one line each; empty when nothing.
    pub fn degradations(&self) -> Vec<String> {
        let mut d = Vec::new();
        let abi = self.landlock_abi;
        if abi == 0 {
            d.push(
                "landlock unavailable: profiles' filesystem and network rules are not enforced"
                    .to_owned(),
            );
        } else {
            for (need, what) in [
                (2, "file reparenting (refer)"),
                (3, "truncation"),
                (4, "TCP port rules"),
                (5, "device ioctl rules"),
                (6, "abstract-socket and signal scoping"),
            ] {
                if abi < need {
                    d.push(format!("landlock abi {abi} < {need}: {what} not enforced"));
                }
            }
        }
        if !self.seccomp.available {
            d.push("seccomp unavailable: warren refuses to start sandboxed containers".to_owned());
        } else {
            for m in &self.seccomp.missing_actions {
                d.push(format!("seccomp action {m} unavailable"));
            }
        }
        if !self.user_namespaces.available() {
            d.push("user namespaces disabled (max_user_namespaces = 0)".to_owned());
        } else if !self.user_namespaces.unprivileged() {
            d.push(
                "unprivileged user namespaces restricted (rootless containers unavailable)"
                    .to_owned(),
            );
        }
        match self.cgroup {
            CgroupVersion::V1 => d.push("cgroup v1 only: no unified hierarchy".to_owned()),
            CgroupVersion::Hybrid => {
                d.push("cgroup hybrid: limits are applied through the v1 controllers".to_owned());
            }
            CgroupVersion::Unknown => {
                d.push("no cgroup filesystem found: limits cannot be applied".to_owned())
            }
            CgroupVersion::V2 => {}
        }
        if !self.overlayfs {
            d.push("overlayfs not listed in /proc/filesystems".to_owned());
        }
        if !self.pidfd_open {
            d.push("pidfd_open unavailable: process tracking falls back to pids".to_owned());
        }
        if !self.clone3 {
            d.push("clone3 unavailable: no CLONE_INTO_CGROUP".to_owned());
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    #[test]
    fn cgroup_versions_from_a_fake_sysfs() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(cgroup_version(t.path()), CgroupVersion::Unknown);
        fs::create_dir_all(t.path().join("fs/cgroup/memory")).unwrap();
        assert_eq!(cgroup_version(t.path()), CgroupVersion::V1);
        write(t.path(), "fs/cgroup/unified/cgroup.controllers", "");
        assert_eq!(cgroup_version(t.path()), CgroupVersion::Hybrid);
        let u = tempfile::tempdir().unwrap();
        write(u.path(), "fs/cgroup/cgroup.controllers", "cpu memory pids");
        assert_eq!(cgroup_version(u.path()), CgroupVersion::V2);
    }

    #[test]
    fn user_namespace_restrictions_from_a_fake_proc() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(user_namespaces(t.path()), UserNamespaces::default());
        assert!(user_namespaces(t.path()).unprivileged());
        write(t.path(), "sys/user/max_user_namespaces", "63000\n");
        write(
            t.path(),
            "sys/kernel/apparmor_restrict_unprivileged_userns",
            "1\n",
        );
        let u = user_namespaces(t.path());
        assert_eq!(u.max_user_namespaces, Some(63000));
        assert!(u.available());
        assert!(!u.unprivileged());
        write(t.path(), "sys/user/max_user_namespaces", "0\n");
        assert!(!user_namespaces(t.path()).available());
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "sys/kernel/unprivileged_userns_clone", "0");
        assert!(!user_namespaces(d.path()).unprivileged());
    }

    #[test]
    fn overlayfs_from_a_fake_proc() {
        let t = tempfile::tempdir().unwrap();
        assert!(!overlayfs(t.path()));
        write(
            t.path(),
            "filesystems",
            "nodev\tsysfs\n\text4\nnodev\toverlay\n",
        );
        assert!(overlayfs(t.path()));
    }

    #[test]
    fn this_kernel() {
        // Measured on the development machines: Landlock ABI 7, seccomp with every action,
        // pidfd_open and clone3.
        let f = Features::probe(Path::new("/proc"), Path::new("/sys"));
        assert!(f.seccomp.available);
        assert!(f.seccomp.actions.contains(&"kill_process"));
        assert!(f.seccomp.actions.contains(&"errno"));
        assert!(f.pidfd_open);
        assert!(f.clone3);
        let a = f.annotations();
        assert_eq!(a["run.warren.landlock.abi"], f.landlock_abi.to_string());
        assert_eq!(a["run.warren.seccomp.enabled"], "true");
        assert!(a.contains_key("run.warren.cgroup"));
        if f.landlock_abi >= 7 {
            assert!(!f.degradations().iter().any(|d| d.contains("landlock")));
        }
    }

    #[test]
    fn degradations_say_what_is_missing() {
        let f = Features {
            landlock_abi: 3,
            seccomp: SeccompSupport {
                available: true,
                actions: vec!["errno"],
                missing_actions: vec!["user_notif"],
            },
            user_namespaces: UserNamespaces {
                max_user_namespaces: Some(0),
                ..UserNamespaces::default()
            },
            cgroup: CgroupVersion::Hybrid,
            overlayfs: true,
            pidfd_open: true,
            clone3: false,
        };
        let d = f.degradations().join("\n");
        assert!(d.contains("TCP port rules not enforced"));
        assert!(d.contains("scoping not enforced"));
        assert!(!d.contains("truncation"));
        assert!(d.contains("user_notif"));
        assert!(d.contains("user namespaces disabled"));
        assert!(d.contains("clone3"));
        assert!(f.annotations()["run.warren.degraded"].contains("landlock abi 3 < 4"));
    }
}
