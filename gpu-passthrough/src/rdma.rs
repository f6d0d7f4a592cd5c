//! RDMA host channel adapters from sysfs: per HCA the uverbs, umad and issm character
//! devices, the shared rdma_cm device, a CDI spec for them, and the OCI settings RDMA
//! needs that CDI cannot express (an unlimited memlock rlimit and `linux.resources.rdma`).
//!
//! sysfs layout read (under `sysfs_root`):
//! - `class/infiniband/<ibdev>` (one per HCA, `device` links to the PCI function,
//!   `ports/<p>/gid_attrs/ndevs/<i>` name the net devices)
//! - `class/infiniband_verbs/uverbsN/{ibdev,dev}` → `/dev/infiniband/uverbsN`
//! - `class/infiniband_mad/{umadN,issmN}/{ibdev,dev}` → `/dev/infiniband/{umadN,issmN}`
//! - `class/misc/rdma_cm/dev` → `/dev/infiniband/rdma_cm`

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxRdmaBuilder, LinuxResources, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Spec,
};

use crate::cdi::apply::{empty_linux, empty_process};
use crate::cdi::{CdiDevice, CdiSpec, ContainerEdits};
use crate::fsutil::generated_spec;
use crate::sysfs::{CharDev, SysfsError, link_basename, list_dir, read_optional, read_trimmed};

/// The CDI kind of the generated spec.
pub const KIND: &str = "warren.dev/rdma";

/// One HCA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hca {
    /// The ib device name (`mlx5_0`).
    pub name: String,
    /// PCI address of the function, when sysfs links it.
    pub pci_address: Option<String>,
    /// The verbs device.
    pub uverbs: Option<CharDev>,
    /// MAD devices (one per port).
    pub umad: Vec<CharDev>,
    /// Subnet-manager devices (one per port).
    pub issm: Vec<CharDev>,
    /// Network interfaces bound to the HCA's ports (for NCCL_SOCKET_IFNAME and friends).
    pub net_devices: Vec<String>,
}

/// Every HCA and the shared connection-manager device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RdmaInventory {
    /// HCAs sorted by name.
    pub hcas: Vec<Hca>,
    /// `/dev/infiniband/rdma_cm`, when the rdma_ucm module is loaded.
    pub rdma_cm: Option<CharDev>,
}

/// Read the HCAs from `sysfs_root` (e.g. `/sys`).
pub fn discover(sysfs_root: &Path) -> Result<RdmaInventory, SysfsError> {
    let class = sysfs_root.join("class");
    let mut hcas: Vec<Hca> = Vec::new();
    for name in list_dir(&class.join("infiniband"))? {
        let dir = class.join("infiniband").join(&name);
        let mut net_devices = Vec::new();
        for port in list_dir(&dir.join("ports"))? {
            let ndevs = dir.join("ports").join(&port).join("gid_attrs/ndevs");
            for i in list_dir(&ndevs)? {
                if let Some(nd) = read_optional(&ndevs.join(&i))? {
                    if !nd.is_empty() && !net_devices.contains(&nd) {
                        net_devices.push(nd);
                    }
                }
            }
        }
        hcas.push(Hca {
            pci_address: link_basename(&dir.join("device"))?,
            name,
            uverbs: None,
            umad: Vec::new(),
            issm: Vec::new(),
            net_devices,
        });
    }
    let verbs = class.join("infiniband_verbs");
    for entry in list_dir(&verbs)? {
        if !entry.starts_with("uverbs") {
            continue;
        }
        let dir = verbs.join(&entry);
        let Some(ibdev) = read_optional(&dir.join("ibdev"))? else {
            continue;
        };
        if let Some(hca) = hcas.iter_mut().find(|h| h.name == ibdev) {
            hca.uverbs = Some(CharDev::from_sysfs(
                format!("/dev/infiniband/{entry}"),
                &dir.join("dev"),
            )?);
        }
    }
    let mad = class.join("infiniband_mad");
    for entry in list_dir(&mad)? {
        let is_umad = entry.starts_with("umad");
        if !is_umad && !entry.starts_with("issm") {
            continue;
        }
        let dir = mad.join(&entry);
        let Some(ibdev) = read_optional(&dir.join("ibdev"))? else {
            continue;
        };
        if let Some(hca) = hcas.iter_mut().find(|h| h.name == ibdev) {
            let dev = CharDev::from_sysfs(format!("/dev/infiniband/{entry}"), &dir.join("dev"))?;
            if is_umad {
                hca.umad.push(dev);
            } else {
                hca.issm.push(dev);
            }
        }
    }
    let cm = class.join("misc/rdma_cm");
    let rdma_cm = if std::fs::symlink_metadata(&cm).is_ok() {
        Some(CharDev::from_sysfs(
            "/dev/infiniband/rdma_cm".into(),
            &cm.join("dev"),
        )?)
    } else {
        None
    };
    Ok(RdmaInventory { hcas, rdma_cm })
}

/// A CDI spec with one device per HCA (named after it) plus `all`; `rdma_cm` is spec-wide.
/// `None` when there are no HCAs.
pub fn generate(inventory: &RdmaInventory, dev_root: &Path) -> Option<CdiSpec> {
    if inventory.hcas.is_empty() {
        return None;
    }
    let mut edits = ContainerEdits::default();
    if let Some(cm) = &inventory.rdma_cm {
        edits.device_nodes.push(cm.to_node(dev_root));
    }
    let devices = inventory
        .hcas
        .iter()
        .map(|h| CdiDevice {
            name: h.name.clone(),
            annotations: Default::default(),
            container_edits: ContainerEdits {
                device_nodes: h
                    .uverbs
                    .iter()
                    .chain(&h.umad)
                    .chain(&h.issm)
                    .map(|d| d.to_node(dev_root))
                    .collect(),
                ..ContainerEdits::default()
            },
        })
        .filter(|d| !d.container_edits.is_empty())
        .collect();
    Some(generated_spec(KIND, edits, devices))
}

/// Limits for the rdma cgroup controller (`rdma.max`); `None` means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RdmaLimits {
    /// Maximum HCA handles.
    pub hca_handles: Option<u32>,
    /// Maximum HCA objects.
    pub hca_objects: Option<u32>,
}

/// Errors from [`apply_limits`].
#[derive(Debug, thiserror::Error)]
#[error("build OCI {what}: {reason}")]
pub struct LimitsError {
    what: &'static str,
    reason: String,
}

fn limits_err(what: &'static str) -> impl Fn(String) -> LimitsError {
    move |reason| LimitsError { what, reason }
}

/// Set what RDMA needs beyond device nodes: `RLIMIT_MEMLOCK` unlimited (verbs pin memory)
/// and, when `limits` sets anything, a `linux.resources.rdma` entry per HCA in `hcas`.
/// On error `spec` is unchanged.
pub fn apply_limits(spec: &mut Spec, hcas: &[&str], limits: RdmaLimits) -> Result<(), LimitsError> {
    let memlock: PosixRlimit = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitMemlock)
        .hard(u64::MAX)
        .soft(u64::MAX)
        .build()
        .map_err(|e| limits_err("rlimit")(e.to_string()))?;
    let mut rdma = HashMap::new();
    if limits != RdmaLimits::default() {
        for hca in hcas {
            let mut b = LinuxRdmaBuilder::default();
            if let Some(n) = limits.hca_handles {
                b = b.hca_handles(n);
            }
            if let Some(n) = limits.hca_objects {
                b = b.hca_objects(n);
            }
            rdma.insert(
                (*hca).to_owned(),
                b.build()
                    .map_err(|e| limits_err("rdma limit")(e.to_string()))?,
            );
        }
    }
    let process_template = empty_process().map_err(|e| limits_err("process")(e.to_string()))?;
    let linux_template = empty_linux().map_err(|e| limits_err("linux")(e.to_string()))?;

    let process = spec.process_mut().get_or_insert(process_template);
    let mut rlimits = process.rlimits().clone().unwrap_or_default();
    rlimits.retain(|r| r.typ() != PosixRlimitType::RlimitMemlock);
    rlimits.push(memlock);
    process.set_rlimits(Some(rlimits));
    if !rdma.is_empty() {
        let resources = spec
            .linux_mut()
            .get_or_insert(linux_template)
            .resources_mut()
            .get_or_insert_with(LinuxResources::default);
        resources
            .rdma_mut()
            .get_or_insert_with(HashMap::new)
            .extend(rdma);
    }
    Ok(())
}

/// The net devices of `hca`'s ports, read again from sysfs (for callers that only have
/// a name).
pub fn net_devices(sysfs_root: &Path, hca: &str) -> Result<Vec<String>, SysfsError> {
    let ports = sysfs_root.join("class/infiniband").join(hca).join("ports");
    let mut out = Vec::new();
    for port in list_dir(&ports)? {
        let ndevs: PathBuf = ports.join(port).join("gid_attrs/ndevs");
        for i in list_dir(&ndevs)? {
            let nd = read_trimmed(&ndevs.join(i))?;
            if !nd.is_empty() && !out.contains(&nd) {
                out.push(nd);
            }
        }
    }
    Ok(out)
}
