//! GPU inventory through NVML. A missing `libnvidia-ml.so.1` (or a driver that is not
//! loaded) means "no NVIDIA GPUs", reported as [`Discovery::Absent`], not as an error.

use std::ffi::c_uint;
use std::path::PathBuf;

use nvml_wrapper::Nvml;
use nvml_wrapper::error::{NvmlError, nvml_sym, nvml_try};

use super::Error;
use super::ldcache::LdCache;
use super::roots::NvidiaRoots;

/// The NVML library's soname.
pub(crate) const NVML_SONAME: &str = "libnvidia-ml.so.1";

/// A MIG device (a compute instance inside a GPU instance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigDevice {
    /// Index among the parent's MIG devices (the `1` of CDI name `0:1`).
    pub index: u32,
    /// `MIG-…` UUID.
    pub uuid: String,
    /// GPU instance id.
    pub gpu_instance: u32,
    /// Compute instance id.
    pub compute_instance: u32,
}

/// One physical GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    /// NVML index.
    pub index: u32,
    /// `GPU-…` UUID.
    pub uuid: String,
    /// Product name.
    pub name: String,
    /// Minor number of `/dev/nvidia<minor>`.
    pub minor: u32,
    /// PCI address in sysfs form (`0000:3b:00.0`).
    pub pci_bus_id: String,
    /// Whether MIG mode is currently enabled.
    pub mig_enabled: bool,
    /// The MIG devices, when enabled.
    pub migs: Vec<MigDevice>,
}

/// Everything NVML told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// Driver version (`550.54.14`).
    pub driver_version: String,
    /// CUDA driver API version (`12040`), when NVML reports it.
    pub cuda_driver_version: Option<i32>,
    /// GPUs in NVML index order.
    pub gpus: Vec<Gpu>,
}

/// The outcome of looking for NVIDIA GPUs.
#[derive(Debug)]
pub enum Discovery {
    /// NVML loaded and answered.
    Found(Inventory),
    /// No usable NVIDIA stack; the reason says why (library missing, driver not loaded).
    Absent {
        /// Human-readable reason, e.g. "libnvidia-ml.so.1 not found: …".
        reason: String,
    },
}

/// What to dlopen: `roots.nvml_library`, else `libnvidia-ml.so.1` (via the driver root's
/// ld.so.cache when the driver root is not `/`). `None` when the cache has no NVML.
fn nvml_library(roots: &NvidiaRoots) -> Result<Option<PathBuf>, Error> {
    if let Some(lib) = &roots.nvml_library {
        return Ok(Some(lib.clone()));
    }
    if roots.driver_root == std::path::Path::new("/") {
        return Ok(Some(PathBuf::from(NVML_SONAME)));
    }
    let cache_path = roots.ld_cache_path();
    if !cache_path.exists() {
        return Ok(None);
    }
    let cache = LdCache::load(&cache_path)?;
    Ok(cache
        .lookup(NVML_SONAME, cfg!(target_pointer_width = "64"))
        .map(|e| roots.in_driver_root(&e.path)))
}

/// Load NVML as `roots` says and list the GPUs.
pub fn discover(roots: &NvidiaRoots) -> Result<Discovery, Error> {
    let Some(lib) = nvml_library(roots)? else {
        return Ok(Discovery::Absent {
            reason: format!(
                "{NVML_SONAME} is not in {}",
                roots.ld_cache_path().display()
            ),
        });
    };
    let nvml = match Nvml::builder().lib_path(lib.as_os_str()).init() {
        Ok(nvml) => nvml,
        Err(NvmlError::LibloadingError(e)) => {
            let reason = format!("{} could not be loaded: {e}", lib.display());
            tracing::info!(%reason, "no NVIDIA GPUs");
            return Ok(Discovery::Absent { reason });
        }
        Err(NvmlError::DriverNotLoaded) => {
            let reason = format!("{} loaded but the NVIDIA driver is not", lib.display());
            tracing::info!(%reason, "no NVIDIA GPUs");
            return Ok(Discovery::Absent { reason });
        }
        Err(source) => {
            return Err(Error::Nvml {
                call: "nvmlInit_v2",
                source,
            });
        }
    };
    discover_with(&nvml).map(Discovery::Found)
}

fn call<T>(call: &'static str, r: Result<T, NvmlError>) -> Result<T, Error> {
    r.map_err(|source| Error::Nvml { call, source })
}

/// `00000000:3B:00.0` → `0000:3b:00.0`.
pub(crate) fn sysfs_bus_id(nvml_bus_id: &str) -> String {
    let lower = nvml_bus_id.to_ascii_lowercase();
    match lower.split_once(':') {
        Some((domain, rest)) if domain.len() > 4 => {
            format!("{}:{rest}", &domain[domain.len() - 4..])
        }
        _ => lower,
    }
}

enum InstanceId {
    Gpu,
    Compute,
}

fn instance_id(
    nvml: &Nvml,
    dev: &nvml_wrapper::Device<'_>,
    which: InstanceId,
) -> Result<u32, NvmlError> {
    let lib = nvml.lib();
    let sym = match which {
        InstanceId::Gpu => nvml_sym(lib.nvmlDeviceGetGpuInstanceId.as_ref())?,
        InstanceId::Compute => nvml_sym(lib.nvmlDeviceGetComputeInstanceId.as_ref())?,
    };
    let mut id: c_uint = 0;
    // SAFETY: `sym` was resolved from the loaded NVML library under the name whose C
    // signature is `nvmlReturn_t (nvmlDevice_t, unsigned int *)`, which is the type
    // nvml-wrapper-sys gives it; the handle comes from `dev`, which borrows the live
    // `Nvml` so the library is still initialised; `id` is a valid, writable `c_uint`
    // for the duration of the call.
    let rc = unsafe { sym(dev.handle(), &mut id) };
    nvml_try(rc)?;
    Ok(id)
}

/// List GPUs (and MIG devices) through an already initialised NVML.
pub fn discover_with(nvml: &Nvml) -> Result<Inventory, Error> {
    let driver_version = call("nvmlSystemGetDriverVersion", nvml.sys_driver_version())?;
    let cuda_driver_version = nvml.sys_cuda_driver_version().ok();
    let count = call("nvmlDeviceGetCount_v2", nvml.device_count())?;
    let mut gpus = Vec::new();
    for index in 0..count {
        let dev = call("nvmlDeviceGetHandleByIndex_v2", nvml.device_by_index(index))?;
        let uuid = call("nvmlDeviceGetUUID", dev.uuid())?;
        let name = call("nvmlDeviceGetName", dev.name())?;
        let minor = call("nvmlDeviceGetMinorNumber", dev.minor_number())?;
        let pci = call("nvmlDeviceGetPciInfo_v3", dev.pci_info())?;
        let mig_enabled = match dev.mig_mode() {
            Ok(mode) => mode.current == 1,
            Err(NvmlError::NotSupported | NvmlError::FailedToLoadSymbol(_)) => false,
            Err(source) => {
                return Err(Error::Nvml {
                    call: "nvmlDeviceGetMigMode",
                    source,
                });
            }
        };
        let mut migs = Vec::new();
        if mig_enabled {
            let max = call("nvmlDeviceGetMaxMigDeviceCount", dev.mig_device_count())?;
            for mig_index in 0..max {
                let mig = match dev.mig_device_by_index(mig_index) {
                    Ok(mig) => mig,
                    Err(NvmlError::NotFound | NvmlError::InvalidArg) => continue,
                    Err(source) => {
                        return Err(Error::Nvml {
                            call: "nvmlDeviceGetMigDeviceHandleByIndex",
                            source,
                        });
                    }
                };
                migs.push(MigDevice {
                    index: mig_index,
                    uuid: call("nvmlDeviceGetUUID", mig.uuid())?,
                    gpu_instance: call(
                        "nvmlDeviceGetGpuInstanceId",
                        instance_id(nvml, &mig, InstanceId::Gpu),
                    )?,
                    compute_instance: call(
                        "nvmlDeviceGetComputeInstanceId",
                        instance_id(nvml, &mig, InstanceId::Compute),
                    )?,
                });
            }
        }
        gpus.push(Gpu {
            index,
            uuid,
            name,
            minor,
            pci_bus_id: sysfs_bus_id(&pci.bus_id),
            mig_enabled,
            migs,
        });
    }
    Ok(Inventory {
        driver_version,
        cuda_driver_version,
        gpus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_id_to_sysfs_form() {
        assert_eq!(sysfs_bus_id("00000000:3B:00.0"), "0000:3b:00.0");
        assert_eq!(sysfs_bus_id("0000:3b:00.0"), "0000:3b:00.0");
    }

    #[test]
    fn missing_library_is_absent_not_error() {
        let roots = NvidiaRoots {
            nvml_library: Some(PathBuf::from("/nonexistent/libnvidia-ml.so.1")),
            ..NvidiaRoots::host()
        };
        match discover(&roots).unwrap() {
            Discovery::Absent { reason } => {
                assert!(
                    reason.contains("/nonexistent/libnvidia-ml.so.1"),
                    "{reason}"
                );
            }
            Discovery::Found(inv) => panic!("found {inv:?}"),
        }
    }
}
