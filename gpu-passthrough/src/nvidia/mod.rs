//! NVIDIA GPUs: discovery through NVML (`nvml-wrapper`, which dlopens
//! `libnvidia-ml.so.1`), driver files through the driver root's ld.so.cache, a CDI spec
//! equivalent to `nvidia-ctk cdi generate`, on-the-fly injection for
//! `NVIDIA_VISIBLE_DEVICES` (the toolkit's "jit-cdi"), and the toolkit's createContainer
//! hooks done in-process on a container rootfs.

mod capabilities;
mod discover;
mod driver;
mod generate;
mod jit;
pub mod ldcache;
mod rootfs;
mod roots;

pub use capabilities::{Capability, DriverCapabilities};
pub use discover::{Discovery, Gpu, Inventory, MigDevice, discover, discover_with};
pub use driver::{DriverFiles, DriverLibrary, locate_driver_files};
pub use generate::{CDI_HOOK_PATH, GenerateOptions, GeneratedSpec, HookStyle, KIND, generate};
pub use jit::{inject, inject_request, select_devices};
pub use ldcache::{LdCache, LdCacheEntry, LdCacheError};
pub use rootfs::{LDCONFIG_FILE, RootfsSetup, Symlink, run_ldconfig};
pub use roots::NvidiaRoots;

use std::path::PathBuf;

use crate::error::IoError;
use crate::sysfs::SysfsError;

/// Errors from NVIDIA discovery, generation, injection and rootfs setup.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// NVML loaded but a query failed.
    #[error("NVML {call}: {source}")]
    Nvml {
        /// The NVML call.
        call: &'static str,
        /// What NVML said.
        #[source]
        source: nvml_wrapper::error::NvmlError,
    },
    /// The driver root's ld.so.cache could not be read.
    #[error(transparent)]
    LdCache(#[from] LdCacheError),
    /// A sysfs or procfs file could not be read.
    #[error(transparent)]
    Sysfs(#[from] SysfsError),
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The MIG capability minors for a MIG device are missing from procfs.
    #[error(
        "no MIG capability minor for gpu{gpu_minor}/gi{gi}{} in {}",
        ci.map(|c| format!("/ci{c}")).unwrap_or_default(),
        path.display()
    )]
    MigCaps {
        /// The parent GPU's minor number.
        gpu_minor: u32,
        /// GPU instance id.
        gi: u32,
        /// Compute instance id (None for the GI access file).
        ci: Option<u32>,
        /// The mig-minors file.
        path: PathBuf,
    },
    /// Devices were requested but there are no NVIDIA GPUs.
    #[error("NVIDIA devices requested but not available: {0}")]
    NotPresent(String),
    /// An `NVIDIA_VISIBLE_DEVICES` entry matched no GPU.
    #[error("unknown NVIDIA device {requested:?}; known devices: {}", known.join(", "))]
    UnknownDevice {
        /// The entry as written.
        requested: String,
        /// Every device name of the generated spec.
        known: Vec<String>,
    },
    /// Applying the generated spec failed.
    #[error(transparent)]
    Cdi(#[from] crate::cdi::Error),
    /// A path inside the container rootfs is unusable.
    #[error("container path {}: {reason}", path.display())]
    RootfsPath {
        /// The path inside the rootfs.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// ldconfig failed.
    #[error("run {}: {status}", ldconfig.display())]
    Ldconfig {
        /// The binary.
        ldconfig: PathBuf,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
}
