//! Device passthrough resolved inside the runtime: CDI names from `cdi.k8s.io/*`
//! annotations and the NVIDIA toolkit's `NVIDIA_VISIBLE_DEVICES` environment are turned
//! into spec edits at create time (runc, crun and youki leave CDI to the engine).

use std::path::PathBuf;

use libcontainer::oci_spec::runtime::Spec;
use warren_gpu::cdi::Registry;
use warren_gpu::nvidia::{self, HookStyle, NvidiaRoots, RootfsSetup};
use warren_gpu::requests::requests_from_spec;

use crate::error::{Result, RuntimeError, chain};

/// Where CDI specs are read from, in increasing priority.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub cdi_dirs: Vec<PathBuf>,
    pub nvidia_roots: NvidiaRoots,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        Self {
            cdi_dirs: warren_gpu::cdi::DEFAULT_SPEC_DIRS
                .iter()
                .map(PathBuf::from)
                .collect(),
            nvidia_roots: NvidiaRoots::host(),
        }
    }
}

fn err(e: impl std::error::Error + 'static) -> RuntimeError {
    RuntimeError::Device(chain(&e))
}

/// Applies the devices the spec asks for. Returns the rootfs work (driver library
/// symlinks, ld.so configuration) that the init does after mounting; the spec is left
/// untouched on error.
pub fn resolve(spec: &mut Spec, cfg: &DeviceConfig) -> Result<RootfsSetup> {
    let req = requests_from_spec(spec).map_err(err)?;
    if req.cdi.is_empty() && req.nvidia.is_none() {
        return Ok(RootfsSetup::default());
    }
    let mut work = spec.clone();
    if !req.cdi.is_empty() {
        let dirs: Vec<&std::path::Path> = cfg.cdi_dirs.iter().map(PathBuf::as_path).collect();
        let registry = Registry::load(&dirs);
        for e in registry.errors() {
            tracing::warn!(error = %e, "CDI spec skipped");
        }
        registry.inject(&mut work, &req.cdi).map_err(err)?;
    }
    let mut setup = RootfsSetup::take_from_spec(&mut work);
    if let Some(nv) = &req.nvidia {
        setup.merge(
            nvidia::inject_request(&mut work, nv, &cfg.nvidia_roots, HookStyle::Builtin)
                .map_err(err)?,
        );
    }
    *spec = work;
    Ok(setup)
}
