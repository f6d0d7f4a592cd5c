//! Errors from parsing spec files and from resolving and applying devices.

use std::fmt;
use std::path::PathBuf;

use super::edits::EditsError;
use super::name::NameError;
use super::version::{SUPPORTED_VERSIONS, Version};
use crate::error::IoError;

fn supported_list() -> String {
    SUPPORTED_VERSIONS
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why one spec file is invalid.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The file could not be read.
    #[error(transparent)]
    Io(IoError),
    /// The file name does not end in `.json` or `.yaml`.
    #[error("{} is not a .json or .yaml file", path.display())]
    Extension {
        /// The file.
        path: PathBuf,
    },
    /// Malformed JSON, or a key the format does not have.
    #[error("parse JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// Malformed YAML, or a key the format does not have.
    #[error("parse YAML: {0}")]
    Yaml(#[source] serde_yaml_ng::Error),
    /// `cdiVersion` is not one we know.
    #[error("unsupported cdiVersion {version:?} (supported: {})", supported_list())]
    UnsupportedVersion {
        /// The declared version.
        version: String,
    },
    /// A field needs a newer `cdiVersion` than the file declares.
    #[error(
        "field `{field}` requires cdiVersion {required} or later, but the file declares {declared}"
    )]
    VersionGate {
        /// Where the field is, e.g. `devices[0].containerEdits.netDevices`.
        field: String,
        /// The version that introduced it.
        required: Version,
        /// The file's `cdiVersion`.
        declared: Version,
    },
    /// `kind` is malformed.
    #[error("invalid kind: {0}")]
    Kind(#[source] NameError),
    /// An annotation key or value is invalid.
    #[error("invalid annotations at {at}: {reason}")]
    Annotations {
        /// `annotations` or `devices[i].annotations`.
        at: String,
        /// What is wrong.
        reason: String,
    },
    /// A device name is malformed.
    #[error("devices[{index}]: {source}")]
    DeviceName {
        /// Position in `devices`.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: NameError,
    },
    /// Two devices in the file share a name.
    #[error("device {0:?} is defined more than once")]
    DuplicateDevice(String),
    /// A device has no edits.
    #[error("device {0:?} has empty containerEdits")]
    EmptyDeviceEdits(String),
    /// The same device is defined by two files of the same priority; it was dropped.
    #[error("conflicting device {name} (specs {}, {})", first.display(), second.display())]
    Conflict {
        /// The qualified name.
        name: String,
        /// One defining file.
        first: PathBuf,
        /// The other defining file.
        second: PathBuf,
    },
    /// Some edits are invalid.
    #[error("{at}: {source}")]
    Edits {
        /// `containerEdits` or `devices[i].containerEdits`.
        at: String,
        /// What is wrong.
        #[source]
        source: EditsError,
    },
}

impl SpecError {
    pub(crate) fn unsupported(version: &str) -> Self {
        Self::UnsupportedVersion {
            version: version.to_owned(),
        }
    }
}

/// A spec file that was skipped, with the reason.
#[derive(Debug, thiserror::Error)]
pub struct SpecFileError {
    /// The file (or, for specs added in memory, their origin).
    pub path: PathBuf,
    /// Why it was skipped or what went wrong with it.
    #[source]
    pub error: SpecError,
}

impl fmt::Display for SpecFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CDI spec {}: {}", self.path.display(), self.error)
    }
}

/// Errors from resolving device names and applying edits.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Some requested devices are not in the registry.
    #[error(
        "unresolvable CDI devices {}; known devices: {}",
        unknown.join(", "),
        if known.is_empty() { "(none)".to_owned() } else { known.join(", ") }
    )]
    UnknownDevices {
        /// The names that did not resolve.
        unknown: Vec<String>,
        /// Every name the registry does know.
        known: Vec<String>,
    },
    /// A requested device is defined by two spec files of the same priority, so it was
    /// dropped.
    #[error("CDI device {name} is defined in both {} and {}", first.display(), second.display())]
    Conflict {
        /// The qualified name.
        name: String,
        /// One defining file.
        first: PathBuf,
        /// The other defining file.
        second: PathBuf,
    },
    /// A spec handed to the registry in memory is invalid.
    #[error(transparent)]
    Spec(#[from] SpecFileError),
    /// Edits handed to [`apply_edits`](super::apply_edits) are invalid.
    #[error("invalid container edits: {0}")]
    Edits(#[from] EditsError),
    /// A device node's host path could not be examined.
    #[error("stat CDI host device: {0}")]
    Stat(#[source] IoError),
    /// A device node's host path is not a device.
    #[error("CDI host device {} is not a device node", path.display())]
    NotADevice {
        /// The host path.
        path: PathBuf,
    },
    /// A device node declares a type that the host node does not have.
    #[error("CDI device ({path:?}, {host_path:?}): host type mismatch ({declared}, {actual})")]
    TypeMismatch {
        /// Container path.
        path: String,
        /// Host path.
        host_path: String,
        /// Type in the spec.
        declared: String,
        /// Type of the host node.
        actual: String,
    },
    /// The edits could not be expressed in the OCI spec types.
    #[error("build OCI {what}: {reason}")]
    Oci {
        /// Which OCI object.
        what: &'static str,
        /// What went wrong.
        reason: String,
    },
}
