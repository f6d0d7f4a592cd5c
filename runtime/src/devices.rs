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
    if crate::sandbox::is_pod_sandbox(spec) {
        return Ok(RootfsSetup::default());
    }
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
    // Remember the variables the devices added: a process entered with `exec --process`
    // (how containerd runs `kubectl exec`) comes with the engine's env, which lacks them.
    let before: std::collections::HashSet<&String> = spec
        .process()
        .as_ref()
        .and_then(|p| p.env().as_ref())
        .map(|e| e.iter().collect())
        .unwrap_or_default();
    let added: Vec<&String> = work
        .process()
        .as_ref()
        .and_then(|p| p.env().as_ref())
        .map(|e| e.iter().filter(|v| !before.contains(v)).collect())
        .unwrap_or_default();
    if !added.is_empty() {
        let json = serde_json::to_string(&added).unwrap_or_default();
        work.annotations_mut()
            .get_or_insert_with(Default::default)
            .insert(DEVICE_ENV_ANNOTATION.to_owned(), json);
    }
    *spec = work;
    Ok(setup)
}

/// Annotation (in the saved spec) listing the `KEY=value` variables device injection
/// added to the container's environment.
pub const DEVICE_ENV_ANNOTATION: &str = "run.warren.device-env";

/// Adds the device variables recorded in `spec` to `env` where `env` lacks the key.
pub fn add_device_env(spec: &Spec, env: &mut Vec<String>) {
    let Some(json) = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(DEVICE_ENV_ANNOTATION))
    else {
        return;
    };
    let Ok(vars) = serde_json::from_str::<Vec<String>>(json) else {
        return;
    };
    let key = |v: &str| v.split_once('=').map_or(v, |(k, _)| k).to_owned();
    for v in vars {
        let k = key(&v);
        if !env.iter().any(|e| key(e) == k) {
            env.push(v);
        }
    }
}
