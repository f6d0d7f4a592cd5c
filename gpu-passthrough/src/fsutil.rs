//! Helpers shared by the spec generators.

use std::path::Path;

use crate::cdi::{CdiDevice, CdiSpec, ContainerEdits, DeviceNode, minimum_required};
use crate::sysfs::under;

/// A char device node for a generated spec: container path `path`, with `hostPath` only
/// when `dev_root` is not `/`, and explicit numbers when known.
pub(crate) fn char_node(dev_root: &Path, path: &str, numbers: Option<(i64, i64)>) -> DeviceNode {
    let mut node = DeviceNode::at(path);
    if dev_root != Path::new("/") {
        node.host_path = Some(under(dev_root, path).to_string_lossy().into_owned());
    }
    if let Some((major, minor)) = numbers {
        node.r#type = Some("c".into());
        node.major = Some(major);
        node.minor = Some(minor);
    }
    node
}

/// The union of the devices' edits with device nodes and mounts de-duplicated by
/// path, named `all` (the literal device name generators emit).
pub(crate) fn all_device(devices: &[CdiDevice]) -> Option<CdiDevice> {
    if devices.is_empty() {
        return None;
    }
    let mut edits = ContainerEdits::default();
    for d in devices {
        let e = &d.container_edits;
        for n in &e.device_nodes {
            if !edits.device_nodes.iter().any(|x| x.path == n.path) {
                edits.device_nodes.push(n.clone());
            }
        }
        for m in &e.mounts {
            if !edits
                .mounts
                .iter()
                .any(|x| x.container_path == m.container_path)
            {
                edits.mounts.push(m.clone());
            }
        }
        for h in &e.hooks {
            if !edits.hooks.contains(h) {
                edits.hooks.push(h.clone());
            }
        }
        for v in &e.env {
            if !edits.env.contains(v) {
                edits.env.push(v.clone());
            }
        }
    }
    Some(CdiDevice {
        name: "all".into(),
        annotations: Default::default(),
        container_edits: edits,
    })
}

/// Assemble a generated spec with the oldest `cdiVersion` that can express it.
pub(crate) fn generated_spec(
    kind: &str,
    container_edits: ContainerEdits,
    mut devices: Vec<CdiDevice>,
) -> CdiSpec {
    if let Some(all) = all_device(&devices) {
        devices.push(all);
    }
    let mut spec = CdiSpec {
        cdi_version: String::new(),
        kind: kind.to_owned(),
        annotations: Default::default(),
        devices,
        container_edits,
    };
    spec.cdi_version = minimum_required(&spec).to_string();
    spec
}
