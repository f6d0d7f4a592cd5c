//! Crate errors: one enum per subsystem, rolled up into [`Error`].

use std::path::{Path, PathBuf};

/// An I/O error together with the path it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct IoError {
    /// What was being done ("open", "rename", …).
    pub op: &'static str,
    /// The path it was done on.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    /// Wraps `source` with the operation and path it came from.
    pub fn new(op: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self {
            op,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

/// Extension to attach a path to `std::io::Result`s.
pub(crate) trait IoContext<T> {
    fn at(self, op: &'static str, path: impl AsRef<Path>) -> Result<T, IoError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, op: &'static str, path: impl AsRef<Path>) -> Result<T, IoError> {
        self.map_err(|e| IoError::new(op, path, e))
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn at(self, op: &'static str, path: impl AsRef<Path>) -> Result<T, IoError> {
        self.map_err(|e| IoError::new(op, path, std::io::Error::from(e)))
    }
}

/// Every error this crate returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A filesystem operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The store's content or layout is wrong.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A layer could not be unpacked or packed.
    #[error(transparent)]
    Layer(#[from] crate::layer::LayerError),
    /// An archive could not be imported or exported.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// A registry pull failed.
    #[error(transparent)]
    Pull(#[from] crate::pull::PullError),
    /// A container rootfs could not be set up or torn down.
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    /// A recipe is invalid.
    #[error(transparent)]
    Recipe(#[from] crate::recipe::RecipeError),
    /// A build failed.
    #[error(transparent)]
    Build(#[from] crate::build::BuildError),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
