//! Files of the NVIDIA user-space driver inside a driver root: libraries (through the root's
//! ld.so.cache), binaries, GSP firmware, IPC sockets and graphics ICD configs, each tagged
//! with the driver capability that needs it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use super::Error;
use super::capabilities::Capability;
use super::ldcache::LdCache;
use super::roots::NvidiaRoots;
use crate::error::IoError;

/// A driver library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverLibrary {
    /// Path inside the driver root (and inside the container), e.g.
    /// `/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.14`.
    pub path: PathBuf,
    /// Sonames the ld.so.cache maps to this file (`libcuda.so.1`).
    pub sonames: Vec<String>,
    /// 64-bit (else 32-bit, needing `compat32`).
    pub is_64bit: bool,
    /// The capability that needs it.
    pub capability: Capability,
}

/// A driver file other than a library.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverFile {
    /// Path inside the driver root (and inside the container).
    pub path: PathBuf,
    /// The capability that needs it; `None` for files every container gets (firmware).
    pub capability: Option<Capability>,
}

/// Everything found for one driver version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverFiles {
    /// `lib*.so.<version>` files from the ld.so.cache, sorted by path.
    pub libraries: Vec<DriverLibrary>,
    /// GSP firmware (`/lib/firmware/nvidia/<version>/gsp*.bin`).
    pub firmware: Vec<DriverFile>,
    /// nvidia-smi, nvidia-persistenced, MPS, …
    pub binaries: Vec<DriverFile>,
    /// IPC sockets and the MPS pipe directory (mounted `noexec`).
    pub ipc: Vec<DriverFile>,
    /// Vulkan/EGL/OptiX config files.
    pub configs: Vec<DriverFile>,
}

/// Library name stems (before `.so`) and the capability that needs them, after
/// libnvidia-container's lists.
const LIBRARY_CAPABILITIES: &[(&str, Capability)] = &[
    ("libnvidia-ml", Capability::Utility),
    ("libnvidia-cfg", Capability::Utility),
    ("libnvidia-nscq", Capability::Utility),
    ("libcuda", Capability::Compute),
    ("libcudadebugger", Capability::Compute),
    ("libnvidia-opencl", Capability::Compute),
    ("libnvidia-ptxjitcompiler", Capability::Compute),
    ("libnvidia-fatbinaryloader", Capability::Compute),
    ("libnvidia-allocator", Capability::Compute),
    ("libnvidia-compiler", Capability::Compute),
    ("libnvidia-pkcs11", Capability::Compute),
    ("libnvidia-pkcs11-openssl3", Capability::Compute),
    ("libnvidia-nvvm", Capability::Compute),
    ("libnvidia-gpucomp", Capability::Compute),
    ("libvdpau_nvidia", Capability::Video),
    ("libnvidia-encode", Capability::Video),
    ("libnvidia-opticalflow", Capability::Video),
    ("libnvcuvid", Capability::Video),
    ("libnvidia-eglcore", Capability::Graphics),
    ("libnvidia-glcore", Capability::Graphics),
    ("libnvidia-tls", Capability::Graphics),
    ("libnvidia-glsi", Capability::Graphics),
    ("libnvidia-rtcore", Capability::Graphics),
    ("libnvoptix", Capability::Graphics),
    ("libGLX_nvidia", Capability::Graphics),
    ("libEGL_nvidia", Capability::Graphics),
    ("libGLESv2_nvidia", Capability::Graphics),
    ("libGLESv1_CM_nvidia", Capability::Graphics),
    ("libnvidia-glvkspirv", Capability::Graphics),
    ("libnvidia-cbl", Capability::Graphics),
    ("libnvidia-vksc-core", Capability::Graphics),
    ("libnvidia-egl-gbm", Capability::Graphics),
    ("libnvidia-egl-wayland", Capability::Graphics),
    ("libnvidia-api", Capability::Graphics),
    ("libnvidia-fbc", Capability::Display),
    ("libnvidia-ifr", Capability::Display),
    ("libnvidia-ngx", Capability::Ngx),
];

const BINARIES: &[(&str, Capability)] = &[
    ("nvidia-smi", Capability::Utility),
    ("nvidia-debugdump", Capability::Utility),
    ("nvidia-persistenced", Capability::Utility),
    ("nvidia-cuda-mps-control", Capability::Compute),
    ("nvidia-cuda-mps-server", Capability::Compute),
    ("nvidia-imex", Capability::Compute),
    ("nvidia-imex-ctl", Capability::Compute),
];

const BINARY_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

const IPC: &[(&str, Capability)] = &[
    ("/run/nvidia-persistenced/socket", Capability::Utility),
    ("/run/nvidia-fabricmanager/socket", Capability::Compute),
    ("/tmp/nvidia-mps", Capability::Compute),
];

const CONFIGS: &[&str] = &[
    "/etc/vulkan/icd.d/nvidia_icd.json",
    "/usr/share/vulkan/icd.d/nvidia_icd.json",
    "/etc/vulkan/implicit_layer.d/nvidia_layers.json",
    "/usr/share/vulkan/implicit_layer.d/nvidia_layers.json",
    "/usr/share/glvnd/egl_vendor.d/10_nvidia.json",
    "/usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json",
    "/usr/share/egl/egl_external_platform.d/10_nvidia_wayland.json",
    "/usr/share/nvidia/nvoptix.bin",
];

const FIRMWARE_DIRS: &[&str] = &["/lib/firmware/nvidia", "/usr/lib/firmware/nvidia"];

/// The capability a library needs, from its name; unknown NVIDIA libraries count as
/// compute.
pub(crate) fn library_capability(file_name: &str) -> Capability {
    let stem = file_name.split(".so").next().unwrap_or(file_name);
    LIBRARY_CAPABILITIES
        .iter()
        .find(|(s, _)| *s == stem)
        .map_or(Capability::Compute, |(_, c)| *c)
}

/// Resolve `abs` inside `root`, following symlinks the way the container would see them
/// (absolute targets restart at `root`). Returns the final path relative to `root`
/// (as an absolute path), or `None` if it does not exist.
pub(crate) fn resolve_in_root(root: &Path, abs: &Path) -> Option<PathBuf> {
    let mut pending: Vec<OsString> = abs
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    let mut current: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            current.pop();
            continue;
        }
        let mut candidate: PathBuf = root.to_path_buf();
        candidate.extend(&current);
        candidate.push(&part);
        let meta = std::fs::symlink_metadata(&candidate).ok()?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > 40 {
                return None;
            }
            let target = std::fs::read_link(&candidate).ok()?;
            if target.is_absolute() {
                current.clear();
            }
            for c in target.components().rev() {
                match c {
                    Component::Normal(n) => pending.push(n.to_os_string()),
                    Component::ParentDir => pending.push(OsString::from("..")),
                    _ => {}
                }
            }
        } else {
            current.push(part);
        }
    }
    let mut out = PathBuf::from("/");
    out.extend(&current);
    Some(out)
}

fn exists_in(root: &Path, abs: &str) -> bool {
    std::fs::symlink_metadata(root.join(abs.trim_start_matches('/'))).is_ok()
}

/// Find the driver's files under `roots.driver_root` for `driver_version`.
pub fn locate_driver_files(
    roots: &NvidiaRoots,
    driver_version: &str,
) -> Result<DriverFiles, Error> {
    let root = &roots.driver_root;
    let mut files = DriverFiles::default();

    let cache = LdCache::load(&roots.ld_cache_path())?;
    let suffix = format!(".so.{driver_version}");
    let mut libs: BTreeMap<PathBuf, DriverLibrary> = BTreeMap::new();
    for entry in cache.entries.iter().filter(|e| e.is_elf_libc6()) {
        let Some(resolved) = resolve_in_root(root, &entry.path) else {
            continue;
        };
        let Some(name) = resolved.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !(name.starts_with("lib") && name.ends_with(&suffix)) {
            continue;
        }
        let capability = library_capability(name);
        let lib = libs
            .entry(resolved.clone())
            .or_insert_with(|| DriverLibrary {
                path: resolved.clone(),
                sonames: Vec::new(),
                is_64bit: entry.is_64bit(),
                capability,
            });
        if entry.soname != name && !lib.sonames.contains(&entry.soname) {
            lib.sonames.push(entry.soname.clone());
        }
    }
    files.libraries = libs.into_values().collect();

    for dir in FIRMWARE_DIRS {
        let fw_dir = format!("{dir}/{driver_version}");
        let host_dir = root.join(fw_dir.trim_start_matches('/'));
        let entries = match std::fs::read_dir(&host_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(IoError::new("read directory", &host_dir, e).into()),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| IoError::new("read directory", &host_dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                if name.starts_with("gsp") && name.ends_with(".bin") {
                    names.push(name.to_owned());
                }
            }
        }
        names.sort();
        for name in names {
            files.firmware.push(DriverFile {
                path: PathBuf::from(format!("{fw_dir}/{name}")),
                capability: None,
            });
        }
        if !files.firmware.is_empty() {
            break;
        }
    }

    for (name, capability) in BINARIES {
        if let Some(dir) = BINARY_DIRS
            .iter()
            .find(|d| exists_in(root, &format!("{d}/{name}")))
        {
            files.binaries.push(DriverFile {
                path: PathBuf::from(format!("{dir}/{name}")),
                capability: Some(*capability),
            });
        }
    }
    for (path, capability) in IPC {
        if exists_in(root, path) {
            files.ipc.push(DriverFile {
                path: PathBuf::from(path),
                capability: Some(*capability),
            });
        }
    }
    for path in CONFIGS {
        if exists_in(root, path) {
            files.configs.push(DriverFile {
                path: PathBuf::from(path),
                capability: Some(Capability::Graphics),
            });
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_libraries() {
        assert_eq!(
            library_capability("libcuda.so.550.54.14"),
            Capability::Compute
        );
        assert_eq!(
            library_capability("libnvidia-ml.so.550.54.14"),
            Capability::Utility
        );
        assert_eq!(
            library_capability("libnvcuvid.so.550.54.14"),
            Capability::Video
        );
        assert_eq!(
            library_capability("libGLX_nvidia.so.550.54.14"),
            Capability::Graphics
        );
        assert_eq!(
            library_capability("libnvidia-unknown.so.1"),
            Capability::Compute
        );
    }

    #[test]
    fn resolves_symlinks_inside_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("usr/lib/x")).unwrap();
        std::fs::write(root.join("usr/lib/x/libfoo.so.1.2"), b"").unwrap();
        std::os::unix::fs::symlink("libfoo.so.1.2", root.join("usr/lib/x/libfoo.so.1")).unwrap();
        // An absolute link must restart at the root, not at the host's /.
        std::os::unix::fs::symlink("/usr/lib/x/libfoo.so.1", root.join("usr/lib/x/abs.so"))
            .unwrap();
        std::os::unix::fs::symlink("x", root.join("usr/lib/y")).unwrap();
        assert_eq!(
            resolve_in_root(root, Path::new("/usr/lib/y/abs.so")),
            Some(PathBuf::from("/usr/lib/x/libfoo.so.1.2"))
        );
        assert_eq!(resolve_in_root(root, Path::new("/usr/lib/x/missing")), None);
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert_eq!(resolve_in_root(root, Path::new("/loop")), None);
    }
}
