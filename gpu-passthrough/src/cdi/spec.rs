//! The CDI spec file format (serde types, strict) and parsing from JSON or YAML.
//!
//! Field names follow the reference Go struct tags (`additionalGids`, `schemata`, …);
//! unknown keys fail the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use super::error::SpecError;

/// Accept `null` wherever a list or map may appear, as Go's decoder does.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A whole CDI spec file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CdiSpec {
    /// The `cdiVersion` the file declares.
    pub cdi_version: String,
    /// `vendor/class`, e.g. `nvidia.com/gpu`.
    pub kind: String,
    /// Free-form annotations (cdiVersion ≥ 0.6.0).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    /// The devices the file defines.
    #[serde(default, deserialize_with = "nullable")]
    pub devices: Vec<CdiDevice>,
    /// Edits applied once whenever any device of this spec is used.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "ContainerEdits::is_empty"
    )]
    pub container_edits: ContainerEdits,
}

/// One device of a spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CdiDevice {
    /// The device name (the part after `=` in a qualified name).
    pub name: String,
    /// Free-form annotations (cdiVersion ≥ 0.6.0).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    /// The edits this device needs; must not be empty.
    #[serde(default, deserialize_with = "nullable")]
    pub container_edits: ContainerEdits,
}

/// Changes to make to an OCI spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerEdits {
    /// `KEY=VALUE` entries; an entry replaces an existing one with the same key.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    /// Device nodes to create in the container.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub device_nodes: Vec<DeviceNode>,
    /// OCI hooks to add.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub hooks: Vec<Hook>,
    /// Mounts to add; a mount replaces an existing one with the same destination.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mounts: Vec<Mount>,
    /// Intel RDT settings (cdiVersion ≥ 0.7.0); replace the spec's wholesale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<IntelRdt>,
    /// Extra groups for the container process (cdiVersion ≥ 0.7.0); 0 is ignored.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub additional_gids: Vec<u32>,
    /// Host network interfaces to move into the container (cdiVersion ≥ 1.1.0).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub net_devices: Vec<NetDevice>,
}

impl ContainerEdits {
    /// Whether there is nothing to apply.
    pub fn is_empty(&self) -> bool {
        self.env.is_empty()
            && self.device_nodes.is_empty()
            && self.hooks.is_empty()
            && self.mounts.is_empty()
            && self.intel_rdt.is_none()
            && self.additional_gids.is_empty()
            && self.net_devices.is_empty()
    }

    /// Append `other` after `self` (Go's `ContainerEdits.Append`; a later `intelRdt` wins).
    pub fn append(&mut self, other: &ContainerEdits) {
        self.env.extend(other.env.iter().cloned());
        self.device_nodes.extend(other.device_nodes.iter().cloned());
        self.hooks.extend(other.hooks.iter().cloned());
        self.mounts.extend(other.mounts.iter().cloned());
        if other.intel_rdt.is_some() {
            self.intel_rdt.clone_from(&other.intel_rdt);
        }
        self.additional_gids
            .extend(other.additional_gids.iter().copied());
        self.net_devices.extend(other.net_devices.iter().cloned());
    }
}

/// A device node to create in the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeviceNode {
    /// Path inside the container.
    pub path: String,
    /// Path on the host when it differs (cdiVersion ≥ 0.5.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    /// `b`, `c`, `u` or `p`; read from the host node when absent.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// Major number; read from the host node when absent or 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    /// Minor number; read from the host node with the major.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    /// Permission bits; read from the host node when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    /// Cgroup access (`rwm` subset); `rwm` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<String>,
    /// Owner; the container process's uid when absent and non-zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Group; the container process's gid when absent and non-zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

impl DeviceNode {
    /// A node given by container path only; everything else is read from the host node.
    pub fn at(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            ..Self::default()
        }
    }
}

/// A bind (or other) mount.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mount {
    /// Source on the host.
    pub host_path: String,
    /// Destination in the container.
    pub container_path: String,
    /// Filesystem type (cdiVersion ≥ 0.4.0).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// Mount options (`ro`, `bind`, …).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub options: Vec<String>,
}

/// The OCI lifecycle point a hook runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HookName {
    /// `prestart` (deprecated in OCI, still honoured).
    Prestart,
    /// `createRuntime`.
    CreateRuntime,
    /// `createContainer`: in the container namespaces, before pivot_root.
    CreateContainer,
    /// `startContainer`.
    StartContainer,
    /// `poststart`.
    Poststart,
    /// `poststop`.
    Poststop,
}

impl HookName {
    /// The spelling used in spec files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prestart => "prestart",
            Self::CreateRuntime => "createRuntime",
            Self::CreateContainer => "createContainer",
            Self::StartContainer => "startContainer",
            Self::Poststart => "poststart",
            Self::Poststop => "poststop",
        }
    }
}

impl fmt::Display for HookName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OCI hook to add.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Hook {
    /// When it runs.
    pub hook_name: HookName,
    /// Executable on the host.
    pub path: String,
    /// Full argv, including argv\[0\].
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<String>,
    /// Environment, `KEY=VALUE`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    /// Timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

/// Intel RDT settings (cdiVersion ≥ 0.7.0).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IntelRdt {
    /// Class of service id.
    #[serde(default, rename = "closID", skip_serializing_if = "Option::is_none")]
    pub clos_id: Option<String>,
    /// L3 cache schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l3_cache_schema: Option<String>,
    /// Memory bandwidth schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_bw_schema: Option<String>,
    /// Full schemata lines (cdiVersion ≥ 1.1.0).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub schemata: Vec<String>,
    /// Create a monitoring group (cdiVersion ≥ 1.1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_monitoring: Option<bool>,
}

/// A host network interface to move into the container (cdiVersion ≥ 1.1.0).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetDevice {
    /// Interface name on the host.
    pub host_interface_name: String,
    /// Interface name inside the container.
    pub name: String,
}

/// On-disk encoding of a spec file, chosen by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecFormat {
    /// `*.json`.
    Json,
    /// `*.yaml`.
    Yaml,
}

impl SpecFormat {
    /// The format for `path`'s extension, or `None` if it is not a spec file.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Some(Self::Json),
            Some("yaml") => Some(Self::Yaml),
            _ => None,
        }
    }
}

impl CdiSpec {
    /// Parse and fully validate a spec from bytes (strict: unknown keys, unsupported or
    /// too-old `cdiVersion`, bad names and invalid edits all fail).
    pub fn parse(data: &[u8], format: SpecFormat) -> Result<Self, SpecError> {
        let spec: CdiSpec = match format {
            SpecFormat::Json => serde_json::from_slice(data).map_err(SpecError::Json)?,
            SpecFormat::Yaml => serde_yaml_ng::from_slice(data).map_err(SpecError::Yaml)?,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Read, parse and validate a spec file; the format follows the extension.
    pub fn from_file(path: &Path) -> Result<Self, SpecError> {
        let format = SpecFormat::from_path(path).ok_or_else(|| SpecError::Extension {
            path: PathBuf::from(path),
        })?;
        let data = std::fs::read(path)
            .map_err(|e| SpecError::Io(crate::error::IoError::new("read", path, e)))?;
        Self::parse(&data, format)
    }

    /// Serialise as YAML (the form `nvidia-ctk cdi generate` writes).
    pub fn to_yaml(&self) -> Result<String, SpecError> {
        serde_yaml_ng::to_string(self).map_err(SpecError::Yaml)
    }

    /// Serialise as pretty JSON.
    pub fn to_json(&self) -> Result<String, SpecError> {
        serde_json::to_string_pretty(self).map_err(SpecError::Json)
    }

    /// The `vendor` part of `kind`, if `kind` is well formed.
    pub fn vendor(&self) -> Option<&str> {
        self.kind.split_once('/').map(|(v, _)| v)
    }
}
