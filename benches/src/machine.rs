//! The machine the numbers were taken on: kernel, CPU model and count, memory, cgroup mode,
//! Landlock ABI and seccomp actions (through `warren_sandbox::probe`), and whether it is a
//! virtual machine. Reads `proc_root` and `sys_root` so tests can point them at a fake tree.

use std::path::Path;

use serde::{Deserialize, Serialize};
use warren_sandbox::probe::Features;

/// What the numbers were taken on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    /// `uname -r`.
    pub kernel: String,
    /// `uname -m`.
    pub arch: String,
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub os: Option<String>,
    /// `model name` of `/proc/cpuinfo`.
    pub cpu_model: String,
    /// CPUs this process may run on.
    pub cpus: usize,
    /// `MemTotal` of `/proc/meminfo`, bytes.
    pub memory_bytes: u64,
    /// The CPU reports a hypervisor (`hypervisor` flag in `/proc/cpuinfo`).
    pub virtual_machine: bool,
    /// `v1`, `hybrid`, `v2` or `unknown`.
    pub cgroup: String,
    /// Landlock ABI (0: none).
    pub landlock_abi: u32,
    /// Seccomp actions the kernel has.
    pub seccomp_actions: Vec<String>,
    /// overlayfs available.
    pub overlayfs: bool,
    /// What warren's sandbox layer cannot count on here.
    pub degradations: Vec<String>,
}

impl Machine {
    /// Describes this machine.
    pub fn describe(proc_root: &Path, sys_root: &Path) -> Machine {
        let f = Features::probe(proc_root, sys_root);
        let u = nix::sys::utsname::uname().ok();
        let cpuinfo = std::fs::read_to_string(proc_root.join("cpuinfo")).unwrap_or_default();
        let field = |name: &str| {
            cpuinfo.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().to_owned())
            })
        };
        let memory_bytes = std::fs::read_to_string(proc_root.join("meminfo"))
            .ok()
            .and_then(|m| {
                m.lines().find_map(|l| {
                    let rest = l.strip_prefix("MemTotal:")?;
                    rest.split_whitespace().next()?.parse::<u64>().ok()
                })
            })
            .map_or(0, |kib| kib * 1024);
        let os = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|s| {
                s.lines().find_map(|l| {
                    l.strip_prefix("PRETTY_NAME=")
                        .map(|v| v.trim_matches('"').to_owned())
                })
            });
        Machine {
            kernel: u
                .as_ref()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            arch: u
                .as_ref()
                .map(|u| u.machine().to_string_lossy().into_owned())
                .unwrap_or_default(),
            os,
            cpu_model: field("model name").unwrap_or_else(|| "unknown".into()),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes,
            virtual_machine: field("flags")
                .is_some_and(|f| f.split_whitespace().any(|x| x == "hypervisor")),
            cgroup: f.cgroup.as_str().to_owned(),
            landlock_abi: f.landlock_abi,
            seccomp_actions: f.seccomp.actions.iter().map(|a| (*a).to_owned()).collect(),
            overlayfs: f.overlayfs,
            degradations: f.degradations(),
        }
    }

    /// One line: `kernel 6.1, 2 × AMD EPYC (VM), 24 GiB, cgroup hybrid, Landlock ABI 7`.
    pub fn summary(&self) -> String {
        format!(
            "kernel {}, {} × {}{}, {:.0} GiB, cgroup {}, Landlock ABI {}",
            self.kernel,
            self.cpus,
            self.cpu_model,
            if self.virtual_machine { " (VM)" } else { "" },
            self.memory_bytes as f64 / (1u64 << 30) as f64,
            self.cgroup,
            self.landlock_abi
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_fake_proc() {
        let d = tempfile::tempdir().ok();
        let Some(d) = d else { return };
        let proc_root = d.path().join("proc");
        let sys_root = d.path().join("sys");
        let _ = std::fs::create_dir_all(&proc_root);
        let _ = std::fs::create_dir_all(&sys_root);
        let _ = std::fs::write(
            proc_root.join("cpuinfo"),
            "processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu hypervisor sse\n",
        );
        let _ = std::fs::write(proc_root.join("meminfo"), "MemTotal:       2048 kB\n");
        let m = Machine::describe(&proc_root, &sys_root);
        assert_eq!(m.cpu_model, "Test CPU 9000");
        assert!(m.virtual_machine);
        assert_eq!(m.memory_bytes, 2048 * 1024);
        assert_eq!(m.cgroup, "unknown");
        assert!(m.summary().contains("Test CPU 9000 (VM)"));
    }
}
