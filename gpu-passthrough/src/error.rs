//! Crate-level error roll-up and the path-carrying I/O error shared by every module.

use std::io;
use std::path::{Path, PathBuf};

/// An I/O error together with the operation and the path it concerned.
///
/// Reads after "failed to …", e.g. `read /etc/cdi/nvidia.yaml: No such file or directory`.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct IoError {
    /// What was attempted ("read", "stat", "create symlink", …).
    pub op: &'static str,
    /// The path the operation concerned.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

impl IoError {
    /// Wrap `source`, naming `op` and `path`.
    pub fn new(op: &'static str, path: impl AsRef<Path>, source: io::Error) -> Self {
        Self {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// Whether the underlying error is "not found".
    pub fn is_not_found(&self) -> bool {
        self.source.kind() == io::ErrorKind::NotFound
    }
}

/// Any error this crate returns, by subsystem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Loading, resolving or applying CDI specs.
    #[error(transparent)]
    Cdi(#[from] crate::cdi::Error),
    /// Parsing device requests out of an OCI spec.
    #[error(transparent)]
    Request(#[from] crate::requests::RequestError),
    /// NVIDIA discovery, spec generation or container setup.
    #[error(transparent)]
    Nvidia(#[from] crate::nvidia::Error),
    /// Setting RDMA limits in an OCI spec.
    #[error(transparent)]
    Rdma(#[from] crate::rdma::LimitsError),
    /// Reading sysfs for RDMA, AMD or TPU discovery.
    #[error(transparent)]
    Sysfs(#[from] crate::sysfs::SysfsError),
}
