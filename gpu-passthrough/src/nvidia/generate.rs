//! A CDI spec for NVIDIA GPUs equivalent to `nvidia-ctk cdi generate`: kind
//! `nvidia.com/gpu`, devices by index, UUID, MIG `<gpu>:<mig>` / `MIG-…` and `all`; the
//! control nodes, driver libraries, binaries, firmware and IPC sockets as spec-wide edits;
//! and the toolkit's `create-symlinks` / `update-ldcache` createContainer hooks, either as
//! hooks calling `nvidia-cdi-hook` or as a [`RootfsSetup`] warren performs itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Error;
use super::capabilities::{Capability, DriverCapabilities};
use super::discover::{Gpu, Inventory};
use super::driver::{DriverFile, DriverFiles, locate_driver_files};
use super::rootfs::{RootfsSetup, Symlink};
use super::roots::NvidiaRoots;
use crate::cdi::{CdiDevice, CdiSpec, ContainerEdits, DeviceNode, Hook, HookName, Mount};
use crate::fsutil::{char_node, generated_spec};
use crate::sysfs::{list_dir, read_optional, under};

/// The CDI kind of the generated spec.
pub const KIND: &str = "nvidia.com/gpu";

/// Where `nvidia-ctk cdi generate` points its hooks by default.
pub const CDI_HOOK_PATH: &str = "/usr/bin/nvidia-cdi-hook";

/// The character-device major of `/dev/nvidia*` (NV_MAJOR_DEVICE_NUMBER).
const NVIDIA_MAJOR: i64 = 195;

/// How the toolkit's createContainer work (libcuda.so symlink, ldcache) is expressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookStyle {
    /// As `nvidia-ctk cdi generate` writes it: createContainer hooks running this
    /// `nvidia-cdi-hook` binary.
    CdiHook(PathBuf),
    /// No hooks in the spec; the caller applies [`GeneratedSpec::setup`] to the rootfs.
    Builtin,
}

/// Options for [`generate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Which driver parts to include (`all` matches `nvidia-ctk cdi generate`).
    pub capabilities: DriverCapabilities,
    /// How to express the createContainer work.
    pub hooks: HookStyle,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            capabilities: DriverCapabilities::all(),
            hooks: HookStyle::CdiHook(PathBuf::from(CDI_HOOK_PATH)),
        }
    }
}

/// A generated spec plus what it was generated from.
#[derive(Debug, Clone)]
pub struct GeneratedSpec {
    /// The CDI spec (write it with [`CdiSpec::to_yaml`], or inject it directly).
    pub spec: CdiSpec,
    /// Symlinks and ld.so.conf.d entry equivalent to the toolkit hooks; apply with
    /// [`RootfsSetup::apply`] when using [`HookStyle::Builtin`].
    pub setup: RootfsSetup,
    /// The GPUs the spec describes.
    pub inventory: Inventory,
    /// The driver files found.
    pub driver: DriverFiles,
}

const MOUNT_OPTIONS: [&str; 4] = ["ro", "nosuid", "nodev", "bind"];

fn bind_mount(roots: &NvidiaRoots, path: &Path, noexec: bool) -> Mount {
    let mut options: Vec<String> = MOUNT_OPTIONS.iter().map(|s| (*s).to_owned()).collect();
    if noexec {
        options.push("noexec".into());
    }
    Mount {
        host_path: roots.in_driver_root(path).to_string_lossy().into_owned(),
        container_path: path.to_string_lossy().into_owned(),
        r#type: None,
        options,
    }
}

fn wanted(caps: DriverCapabilities, file: &DriverFile) -> bool {
    file.capability.is_none_or(|c| caps.contains(c))
}

fn node_if_present(roots: &NvidiaRoots, path: &str) -> Option<DeviceNode> {
    std::fs::symlink_metadata(under(&roots.dev_root, path))
        .is_ok()
        .then(|| char_node(&roots.dev_root, path, None))
}

/// `/proc/devices`: character major by driver name.
fn char_major(proc_root: &Path, name: &str) -> Result<Option<i64>, Error> {
    let Some(text) = read_optional(&proc_root.join("devices"))? else {
        return Ok(None);
    };
    let mut in_char = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("Character devices") {
            in_char = true;
        } else if line.starts_with("Block devices") {
            in_char = false;
        } else if in_char {
            if let Some((major, n)) = line.split_once(char::is_whitespace) {
                if n.trim() == name {
                    return Ok(major.parse().ok());
                }
            }
        }
    }
    Ok(None)
}

/// `/proc/driver/nvidia-caps/mig-minors`: `gpu0/gi1/access 12`, `gpu0/gi1/ci0/access 13`.
fn mig_minors(proc_root: &Path) -> Result<(PathBuf, BTreeMap<String, i64>), Error> {
    let path = proc_root.join("driver/nvidia-caps/mig-minors");
    let mut map = BTreeMap::new();
    if let Some(text) = read_optional(&path)? {
        for line in text.lines() {
            if let Some((key, minor)) = line.trim().split_once(char::is_whitespace) {
                if let Ok(minor) = minor.trim().parse() {
                    map.insert(key.to_owned(), minor);
                }
            }
        }
    }
    Ok((path, map))
}

fn drm_nodes(roots: &NvidiaRoots, gpu: &Gpu) -> Result<Vec<DeviceNode>, Error> {
    let drm = roots
        .sysfs_root
        .join("bus/pci/devices")
        .join(&gpu.pci_bus_id)
        .join("drm");
    let mut out = Vec::new();
    for name in list_dir(&drm)? {
        if name.starts_with("card") || name.starts_with("renderD") {
            if let Some(node) = node_if_present(roots, &format!("/dev/dri/{name}")) {
                out.push(node);
            }
        }
    }
    Ok(out)
}

fn gpu_node(roots: &NvidiaRoots, gpu: &Gpu) -> DeviceNode {
    let path = format!("/dev/nvidia{}", gpu.minor);
    node_if_present(roots, &path).unwrap_or_else(|| {
        char_node(
            &roots.dev_root,
            &path,
            Some((NVIDIA_MAJOR, i64::from(gpu.minor))),
        )
    })
}

fn device(name: String, device_nodes: Vec<DeviceNode>) -> CdiDevice {
    CdiDevice {
        name,
        annotations: Default::default(),
        container_edits: ContainerEdits {
            device_nodes,
            ..ContainerEdits::default()
        },
    }
}

fn hook(path: &Path, args: &[&str]) -> Hook {
    let argv0 = path.file_name().map_or_else(
        || "nvidia-cdi-hook".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    Hook {
        hook_name: HookName::CreateContainer,
        path: path.to_string_lossy().into_owned(),
        args: std::iter::once(argv0)
            .chain(args.iter().map(|s| (*s).to_owned()))
            .collect(),
        env: Vec::new(),
        timeout: None,
    }
}

/// Generate the spec for `inventory` with the driver found under `roots`.
pub fn generate(
    inventory: &Inventory,
    roots: &NvidiaRoots,
    opts: &GenerateOptions,
) -> Result<GeneratedSpec, Error> {
    let caps = opts.capabilities;
    let driver = locate_driver_files(roots, &inventory.driver_version)?;
    let mut edits = ContainerEdits {
        env: vec!["NVIDIA_VISIBLE_DEVICES=void".into()],
        ..ContainerEdits::default()
    };

    let mut control = vec!["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"];
    if caps.is_all() || caps.contains(Capability::Display) || caps.contains(Capability::Graphics) {
        control.push("/dev/nvidia-modeset");
    }
    edits.device_nodes = control
        .into_iter()
        .filter_map(|p| node_if_present(roots, p))
        .collect();

    let libs: Vec<_> = driver
        .libraries
        .iter()
        .filter(|l| {
            caps.contains(l.capability) && (l.is_64bit || caps.contains(Capability::Compat32))
        })
        .collect();
    for lib in &libs {
        edits.mounts.push(bind_mount(roots, &lib.path, false));
    }
    for f in driver.firmware.iter().filter(|f| wanted(caps, f)) {
        edits.mounts.push(bind_mount(roots, &f.path, false));
    }
    for f in driver.binaries.iter().filter(|f| wanted(caps, f)) {
        edits.mounts.push(bind_mount(roots, &f.path, false));
    }
    for f in driver.configs.iter().filter(|f| wanted(caps, f)) {
        edits.mounts.push(bind_mount(roots, &f.path, false));
    }
    for f in driver.ipc.iter().filter(|f| wanted(caps, f)) {
        edits.mounts.push(bind_mount(roots, &f.path, true));
    }

    // The toolkit's createContainer work: libcuda.so -> libcuda.so.1 for linking against
    // the driver, and the library folders in the container's ld cache.
    let mut setup = RootfsSetup::default();
    let mut libcuda_links = Vec::new();
    for lib in &libs {
        let (Some(dir), Some(file)) = (lib.path.parent(), lib.path.file_name()) else {
            continue;
        };
        if !setup.ld_folders.iter().any(|d| d == dir) {
            setup.ld_folders.push(dir.to_path_buf());
        }
        for soname in &lib.sonames {
            setup.symlinks.push(Symlink {
                target: PathBuf::from(file),
                link: dir.join(soname),
            });
        }
        if lib.is_64bit && file.to_string_lossy().starts_with("libcuda.so.") {
            libcuda_links.push(Symlink {
                target: PathBuf::from("libcuda.so.1"),
                link: dir.join("libcuda.so"),
            });
        }
    }
    setup.ld_folders.sort();
    setup.symlinks.extend(libcuda_links.iter().cloned());
    if let HookStyle::CdiHook(hook_path) = &opts.hooks {
        if !libcuda_links.is_empty() {
            let links: Vec<String> = libcuda_links
                .iter()
                .map(|l| format!("{}::{}", l.target.display(), l.link.display()))
                .collect();
            let mut args = vec!["create-symlinks"];
            for l in &links {
                args.extend(["--link", l.as_str()]);
            }
            edits.hooks.push(hook(hook_path, &args));
        }
        if !setup.ld_folders.is_empty() {
            let folders: Vec<String> = setup
                .ld_folders
                .iter()
                .map(|d| d.to_string_lossy().into_owned())
                .collect();
            let mut args = vec!["update-ldcache"];
            for f in &folders {
                args.extend(["--folder", f.as_str()]);
            }
            edits.hooks.push(hook(hook_path, &args));
        }
    }

    let with_drm = caps.is_all()
        || caps.contains(Capability::Graphics)
        || caps.contains(Capability::Display)
        || caps.contains(Capability::Video);
    let mut devices = Vec::new();
    for gpu in &inventory.gpus {
        let mut nodes = vec![gpu_node(roots, gpu)];
        if with_drm {
            nodes.extend(drm_nodes(roots, gpu)?);
        }
        devices.push(device(gpu.index.to_string(), nodes.clone()));
        devices.push(device(gpu.uuid.clone(), nodes));
    }
    let has_mig = inventory.gpus.iter().any(|g| !g.migs.is_empty());
    if has_mig {
        let caps_major = char_major(&roots.proc_root, "nvidia-caps")?;
        let (minors_path, minors) = mig_minors(&roots.proc_root)?;
        for gpu in &inventory.gpus {
            for mig in &gpu.migs {
                let gi_key = format!("gpu{}/gi{}/access", gpu.minor, mig.gpu_instance);
                let ci_key = format!(
                    "gpu{}/gi{}/ci{}/access",
                    gpu.minor, mig.gpu_instance, mig.compute_instance
                );
                let missing = |ci| Error::MigCaps {
                    gpu_minor: gpu.minor,
                    gi: mig.gpu_instance,
                    ci,
                    path: minors_path.clone(),
                };
                let gi_minor = *minors.get(&gi_key).ok_or_else(|| missing(None))?;
                let ci_minor = *minors
                    .get(&ci_key)
                    .ok_or_else(|| missing(Some(mig.compute_instance)))?;
                let mut nodes = vec![gpu_node(roots, gpu)];
                for minor in [gi_minor, ci_minor] {
                    let path = format!("/dev/nvidia-caps/nvidia-cap{minor}");
                    let node = node_if_present(roots, &path).unwrap_or_else(|| {
                        char_node(&roots.dev_root, &path, caps_major.map(|m| (m, minor)))
                    });
                    nodes.push(node);
                }
                devices.push(device(
                    format!("{}:{}", gpu.index, mig.index),
                    nodes.clone(),
                ));
                devices.push(device(mig.uuid.clone(), nodes));
            }
        }
    }

    let spec = generated_spec(KIND, edits, devices);
    Ok(GeneratedSpec {
        spec,
        setup,
        inventory: inventory.clone(),
        driver,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_devices_and_mig_minors() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("devices"),
            "Character devices:\n  1 mem\n195 nvidia\n237 nvidia-caps\n\nBlock devices:\n237 nvidia-caps-blk\n",
        )
        .unwrap();
        assert_eq!(char_major(tmp.path(), "nvidia-caps").unwrap(), Some(237));
        assert_eq!(char_major(tmp.path(), "nvidia-uvm").unwrap(), None);
        std::fs::create_dir_all(tmp.path().join("driver/nvidia-caps")).unwrap();
        std::fs::write(
            tmp.path().join("driver/nvidia-caps/mig-minors"),
            "config 1\nmonitor 2\ngpu0/gi1/access 12\ngpu0/gi1/ci0/access 13\n",
        )
        .unwrap();
        let (_, m) = mig_minors(tmp.path()).unwrap();
        assert_eq!(m.get("gpu0/gi1/ci0/access"), Some(&13));
        assert_eq!(m.len(), 4);
    }
}
