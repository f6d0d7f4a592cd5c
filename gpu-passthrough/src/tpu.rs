//! Google TPUs from PCI ids: every PCI function with vendor 0x1ae0 becomes a device,
//! reached either through the accel driver (`/dev/accelN`, TPU v4) or through VFIO
//! (`/dev/vfio/<group>` plus the shared `/dev/vfio/vfio`, TPU v5e/v5p/v6e).
//!
//! sysfs layout read (under `sysfs_root`): `bus/pci/devices/<bdf>/{vendor,device}`,
//! `bus/pci/devices/<bdf>/accel/accelN/dev` or `class/accel/accelN/{device,dev}`,
//! `bus/pci/devices/<bdf>/{iommu_group,driver}`, `class/vfio/<group>/dev`,
//! `class/misc/vfio/dev`.

use std::path::Path;

use crate::cdi::{CdiDevice, CdiSpec, ContainerEdits};
use crate::fsutil::generated_spec;
use crate::sysfs::{
    CharDev, SysfsError, link_basename, list_dir, read_hex_id, read_hex_id_optional,
};

/// The CDI kind of the generated spec.
pub const KIND: &str = "google.com/tpu";

/// Google's PCI vendor id.
pub const GOOGLE_VENDOR: u32 = 0x1ae0;

/// How a TPU is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TpuAccess {
    /// Through the accel driver: `/dev/accelN`.
    Accel(CharDev),
    /// Through VFIO: `/dev/vfio/<group>`.
    Vfio {
        /// The IOMMU group.
        group: String,
        /// `/dev/vfio/<group>`.
        node: CharDev,
    },
}

/// One TPU chip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tpu {
    /// Position when sorted by PCI address (the CDI device name).
    pub index: usize,
    /// PCI address (`0000:00:04.0`).
    pub pci_address: String,
    /// PCI device id (the TPU generation).
    pub device_id: u32,
    /// How the container reaches it.
    pub access: TpuAccess,
}

/// TPUs and the shared VFIO container device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TpuInventory {
    /// Chips sorted by PCI address.
    pub tpus: Vec<Tpu>,
    /// `/dev/vfio/vfio`, when any chip uses VFIO.
    pub vfio: Option<CharDev>,
}

fn accel_for(sysfs_root: &Path, pci: &Path, bdf: &str) -> Result<Option<CharDev>, SysfsError> {
    let own = pci.join("accel");
    if let Some(name) = list_dir(&own)?.into_iter().find(|n| n.starts_with("accel")) {
        return CharDev::from_sysfs(format!("/dev/{name}"), &own.join(&name).join("dev")).map(Some);
    }
    let class = sysfs_root.join("class/accel");
    for name in list_dir(&class)? {
        if link_basename(&class.join(&name).join("device"))?.as_deref() == Some(bdf) {
            return CharDev::from_sysfs(format!("/dev/{name}"), &class.join(&name).join("dev"))
                .map(Some);
        }
    }
    Ok(None)
}

/// Find TPUs under `sysfs_root` (e.g. `/sys`).
pub fn discover(sysfs_root: &Path) -> Result<TpuInventory, SysfsError> {
    let devices = sysfs_root.join("bus/pci/devices");
    let mut tpus = Vec::new();
    let mut any_vfio = false;
    for bdf in list_dir(&devices)? {
        let pci = devices.join(&bdf);
        if read_hex_id_optional(&pci.join("vendor"))? != Some(GOOGLE_VENDOR) {
            continue;
        }
        let device_id = read_hex_id(&pci.join("device"))?;
        let access = if let Some(accel) = accel_for(sysfs_root, &pci, &bdf)? {
            TpuAccess::Accel(accel)
        } else if link_basename(&pci.join("driver"))?.as_deref() == Some("vfio-pci") {
            let Some(group) = link_basename(&pci.join("iommu_group"))? else {
                tracing::warn!(%bdf, "TPU bound to vfio-pci without an IOMMU group; skipped");
                continue;
            };
            any_vfio = true;
            let node = CharDev::from_sysfs(
                format!("/dev/vfio/{group}"),
                &sysfs_root.join("class/vfio").join(&group).join("dev"),
            )?;
            TpuAccess::Vfio { group, node }
        } else {
            tracing::warn!(%bdf, "TPU without an accel node or vfio-pci binding; skipped");
            continue;
        };
        tpus.push(Tpu {
            index: 0,
            pci_address: bdf,
            device_id,
            access,
        });
    }
    for (i, t) in tpus.iter_mut().enumerate() {
        t.index = i;
    }
    let vfio = if any_vfio {
        Some(CharDev::from_sysfs(
            "/dev/vfio/vfio".into(),
            &sysfs_root.join("class/misc/vfio/dev"),
        )?)
    } else {
        None
    };
    Ok(TpuInventory { tpus, vfio })
}

/// A CDI spec with devices `0`, `1`, … and `all`; `/dev/vfio/vfio` is spec-wide when used.
/// `None` when there are no TPUs.
pub fn generate(inventory: &TpuInventory, dev_root: &Path) -> Option<CdiSpec> {
    if inventory.tpus.is_empty() {
        return None;
    }
    let mut edits = ContainerEdits::default();
    if let Some(vfio) = &inventory.vfio {
        edits.device_nodes.push(vfio.to_node(dev_root));
    }
    let devices = inventory
        .tpus
        .iter()
        .map(|t| {
            let node = match &t.access {
                TpuAccess::Accel(d) | TpuAccess::Vfio { node: d, .. } => d.to_node(dev_root),
            };
            CdiDevice {
                name: t.index.to_string(),
                annotations: Default::default(),
                container_edits: ContainerEdits {
                    device_nodes: vec![node],
                    ..ContainerEdits::default()
                },
            }
        })
        .collect();
    Some(generated_spec(KIND, edits, devices))
}
