//! AMD GPUs from sysfs: every DRM render node whose PCI vendor is AMD (0x1002) becomes a
//! device, plus `/dev/kfd` (the ROCm compute interface) for all of them.
//!
//! sysfs layout read (under `sysfs_root`): `class/drm/renderD*/{dev,device/vendor}`,
//! `class/drm/renderD*/device` → the PCI function, `class/kfd/kfd/dev`.

use std::path::Path;

use crate::cdi::{CdiDevice, CdiSpec, ContainerEdits};
use crate::fsutil::generated_spec;
use crate::sysfs::{CharDev, SysfsError, link_basename, list_dir, read_hex_id_optional};

/// The CDI kind of the generated spec (as `amd-ctk cdi generate`).
pub const KIND: &str = "amd.com/gpu";

/// AMD's PCI vendor id.
pub const AMD_VENDOR: u32 = 0x1002;

/// One AMD GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmdGpu {
    /// Position when sorted by PCI address (the CDI device name).
    pub index: usize,
    /// PCI address (`0000:03:00.0`), when sysfs links it.
    pub pci_address: Option<String>,
    /// `/dev/dri/renderD*`.
    pub render_node: CharDev,
}

/// AMD GPUs and the KFD device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AmdInventory {
    /// GPUs sorted by PCI address.
    pub gpus: Vec<AmdGpu>,
    /// `/dev/kfd`, when the amdgpu KFD is present.
    pub kfd: Option<CharDev>,
}

/// Find AMD GPUs under `sysfs_root` (e.g. `/sys`).
pub fn discover(sysfs_root: &Path) -> Result<AmdInventory, SysfsError> {
    let drm = sysfs_root.join("class/drm");
    let mut gpus = Vec::new();
    for name in list_dir(&drm)? {
        if !name.starts_with("renderD") {
            continue;
        }
        let dir = drm.join(&name);
        if read_hex_id_optional(&dir.join("device/vendor"))? != Some(AMD_VENDOR) {
            continue;
        }
        gpus.push(AmdGpu {
            index: 0,
            pci_address: link_basename(&dir.join("device"))?,
            render_node: CharDev::from_sysfs(format!("/dev/dri/{name}"), &dir.join("dev"))?,
        });
    }
    gpus.sort_by(|a, b| a.pci_address.cmp(&b.pci_address));
    for (i, g) in gpus.iter_mut().enumerate() {
        g.index = i;
    }
    let kfd_dir = sysfs_root.join("class/kfd/kfd");
    let kfd = if gpus.is_empty() || std::fs::symlink_metadata(&kfd_dir).is_err() {
        None
    } else {
        Some(CharDev::from_sysfs(
            "/dev/kfd".into(),
            &kfd_dir.join("dev"),
        )?)
    };
    Ok(AmdInventory { gpus, kfd })
}

/// A CDI spec with devices `0`, `1`, … and `all`; `/dev/kfd` is spec-wide. `None` when
/// there are no AMD GPUs.
pub fn generate(inventory: &AmdInventory, dev_root: &Path) -> Option<CdiSpec> {
    if inventory.gpus.is_empty() {
        return None;
    }
    let mut edits = ContainerEdits::default();
    if let Some(kfd) = &inventory.kfd {
        edits.device_nodes.push(kfd.to_node(dev_root));
    }
    let devices = inventory
        .gpus
        .iter()
        .map(|g| CdiDevice {
            name: g.index.to_string(),
            annotations: Default::default(),
            container_edits: ContainerEdits {
                device_nodes: vec![g.render_node.to_node(dev_root)],
                ..ContainerEdits::default()
            },
        })
        .collect();
    Some(generated_spec(KIND, edits, devices))
}
