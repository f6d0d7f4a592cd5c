//! Where NVIDIA discovery looks: every root is a parameter so tests can use fake trees.

use std::path::{Path, PathBuf};

/// The roots NVIDIA discovery reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvidiaRoots {
    /// Root of the driver installation (`/`, or e.g. `/run/nvidia/driver` with the GPU
    /// operator). Libraries, binaries, firmware and IPC sockets are found under it and
    /// mounted at the same path inside the container.
    pub driver_root: PathBuf,
    /// Root under which `dev/nvidia*` live (`/` on a host).
    pub dev_root: PathBuf,
    /// The sysfs mount (`/sys`).
    pub sysfs_root: PathBuf,
    /// The procfs mount (`/proc`), for `devices` and `driver/nvidia-caps/mig-minors`.
    pub proc_root: PathBuf,
    /// The ld.so.cache listing the driver's libraries; `None` means
    /// `<driver_root>/etc/ld.so.cache`.
    pub ld_cache: Option<PathBuf>,
    /// What to dlopen for NVML; `None` means `libnvidia-ml.so.1`, looked up in the driver
    /// root's ld.so.cache when the driver root is not `/`.
    pub nvml_library: Option<PathBuf>,
}

impl Default for NvidiaRoots {
    fn default() -> Self {
        Self::host()
    }
}

impl NvidiaRoots {
    /// The running host: everything at `/`, `/sys`, `/proc`.
    pub fn host() -> Self {
        Self {
            driver_root: PathBuf::from("/"),
            dev_root: PathBuf::from("/"),
            sysfs_root: PathBuf::from("/sys"),
            proc_root: PathBuf::from("/proc"),
            ld_cache: None,
            nvml_library: None,
        }
    }

    /// The ld.so.cache to read.
    pub fn ld_cache_path(&self) -> PathBuf {
        self.ld_cache
            .clone()
            .unwrap_or_else(|| self.driver_root.join("etc/ld.so.cache"))
    }

    /// A path as seen inside the driver root, on the host.
    pub fn in_driver_root(&self, abs: &Path) -> PathBuf {
        self.driver_root.join(abs.strip_prefix("/").unwrap_or(abs))
    }
}
