//! Validation of `containerEdits` (Go's `ContainerEdits.Validate`).

use super::spec::{ContainerEdits, DeviceNode, Hook, IntelRdt, Mount, NetDevice};

/// Why some container edits are invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditsError {
    /// An env entry is not `KEY=VALUE` with a non-empty key.
    #[error("invalid environment variable {0:?}")]
    Env(String),
    /// A device node has an empty path.
    #[error("invalid (empty) device path")]
    EmptyDevicePath,
    /// A device node type is not `b`, `c`, `u` or `p`.
    #[error("device {path:?}: invalid type {device_type:?}")]
    DeviceType {
        /// Container path.
        path: String,
        /// The bad type.
        device_type: String,
    },
    /// Device permissions contain something other than `r`, `w`, `m`.
    #[error("device {path:?}: invalid permissions {permissions:?}")]
    DevicePermissions {
        /// Container path.
        path: String,
        /// The bad permissions.
        permissions: String,
    },
    /// A hook has an empty path.
    #[error("invalid {0} hook with empty path")]
    EmptyHookPath(String),
    /// A mount has an empty host path.
    #[error("invalid mount of {0:?}: empty host path")]
    EmptyMountHostPath(String),
    /// A mount has an empty container path.
    #[error("invalid mount of {0:?}: empty container path")]
    EmptyMountContainerPath(String),
    /// The Intel RDT class id is not a valid resctrl group name.
    #[error("invalid intelRdt closID {0:?}")]
    ClosId(String),
    /// A network device name is not a valid interface name.
    #[error("invalid net device {name:?}: {reason}")]
    NetDevice {
        /// The name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two net devices move the same host interface.
    #[error("duplicate net device for host interface {0:?}")]
    DuplicateNetDevice(String),
}

pub(crate) fn validate_env(env: &[String]) -> Result<(), EditsError> {
    for e in env {
        if e.find('=').is_none_or(|i| i == 0) {
            return Err(EditsError::Env(e.clone()));
        }
    }
    Ok(())
}

fn validate_node(d: &DeviceNode) -> Result<(), EditsError> {
    if d.path.is_empty() {
        return Err(EditsError::EmptyDevicePath);
    }
    if let Some(t) = &d.r#type {
        if !matches!(t.as_str(), "" | "b" | "c" | "u" | "p") {
            return Err(EditsError::DeviceType {
                path: d.path.clone(),
                device_type: t.clone(),
            });
        }
    }
    if let Some(p) = &d.permissions {
        if !p.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(EditsError::DevicePermissions {
                path: d.path.clone(),
                permissions: p.clone(),
            });
        }
    }
    Ok(())
}

fn validate_hook(h: &Hook) -> Result<(), EditsError> {
    if h.path.is_empty() {
        return Err(EditsError::EmptyHookPath(h.hook_name.to_string()));
    }
    validate_env(&h.env)
}

fn validate_mount(m: &Mount) -> Result<(), EditsError> {
    if m.host_path.is_empty() {
        return Err(EditsError::EmptyMountHostPath(m.container_path.clone()));
    }
    if m.container_path.is_empty() {
        return Err(EditsError::EmptyMountContainerPath(m.host_path.clone()));
    }
    Ok(())
}

fn validate_rdt(r: &IntelRdt) -> Result<(), EditsError> {
    if let Some(id) = &r.clos_id {
        if id == "." || id == ".." || id.contains('/') || id.contains('\n') {
            return Err(EditsError::ClosId(id.clone()));
        }
    }
    Ok(())
}

/// Linux interface names: 1..=15 bytes, no `/`, `:` or whitespace, not `.` or `..`.
fn validate_ifname(name: &str) -> Result<(), EditsError> {
    let bad = |reason| {
        Err(EditsError::NetDevice {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty name");
    }
    if name.len() >= 16 {
        return bad("longer than 15 bytes");
    }
    if name == "." || name == ".." {
        return bad("reserved name");
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return bad("contains '/', ':' or whitespace");
    }
    Ok(())
}

fn validate_net_devices(devs: &[NetDevice]) -> Result<(), EditsError> {
    let mut seen = std::collections::BTreeSet::new();
    for d in devs {
        validate_ifname(&d.host_interface_name)?;
        validate_ifname(&d.name)?;
        if !seen.insert(d.host_interface_name.as_str()) {
            return Err(EditsError::DuplicateNetDevice(
                d.host_interface_name.clone(),
            ));
        }
    }
    Ok(())
}

impl ContainerEdits {
    /// Check every entry (Go's `ContainerEdits.Validate`).
    pub fn validate(&self) -> Result<(), EditsError> {
        validate_env(&self.env)?;
        self.device_nodes.iter().try_for_each(validate_node)?;
        self.hooks.iter().try_for_each(validate_hook)?;
        self.mounts.iter().try_for_each(validate_mount)?;
        if let Some(r) = &self.intel_rdt {
            validate_rdt(r)?;
        }
        validate_net_devices(&self.net_devices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdi::HookName;

    #[test]
    fn env_needs_key_and_equals() {
        validate_env(&["A=1".into(), "B=".into()]).unwrap();
        assert_eq!(
            validate_env(&["=1".into()]),
            Err(EditsError::Env("=1".into()))
        );
        assert!(validate_env(&["NOEQ".into()]).is_err());
    }

    #[test]
    fn rejects_bad_nodes_hooks_mounts() {
        let mut e = ContainerEdits::default();
        e.device_nodes.push(DeviceNode {
            r#type: Some("x".into()),
            ..DeviceNode::at("/dev/x")
        });
        assert!(matches!(e.validate(), Err(EditsError::DeviceType { .. })));
        e.device_nodes[0].r#type = Some("c".into());
        e.device_nodes[0].permissions = Some("rwx".into());
        assert!(matches!(
            e.validate(),
            Err(EditsError::DevicePermissions { .. })
        ));
        e.device_nodes[0].permissions = Some("rw".into());
        e.validate().unwrap();
        e.hooks.push(Hook {
            hook_name: HookName::Poststop,
            path: String::new(),
            args: vec![],
            env: vec![],
            timeout: None,
        });
        assert_eq!(
            e.validate(),
            Err(EditsError::EmptyHookPath("poststop".into()))
        );
        e.hooks.clear();
        e.mounts.push(Mount {
            host_path: "/a".into(),
            container_path: String::new(),
            ..Mount::default()
        });
        assert!(matches!(
            e.validate(),
            Err(EditsError::EmptyMountContainerPath(_))
        ));
    }

    #[test]
    fn net_device_names() {
        let dev = |h: &str, n: &str| NetDevice {
            host_interface_name: h.into(),
            name: n.into(),
        };
        validate_net_devices(&[dev("eth1", "net0")]).unwrap();
        assert!(validate_net_devices(&[dev("eth1", "a/b")]).is_err());
        assert!(validate_net_devices(&[dev("abcdefghijklmnop", "x")]).is_err());
        assert_eq!(
            validate_net_devices(&[dev("eth1", "a"), dev("eth1", "b")]),
            Err(EditsError::DuplicateNetDevice("eth1".into()))
        );
    }
}
