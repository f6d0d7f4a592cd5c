//! Layers: media types and compression, safe unpacking, deterministic packing, and the
//! per-diffid unpack cache.

mod cache;
mod compression;
mod pack;
mod unpack;

pub(crate) use cache::unpack_to as cache_unpack_to;
pub use cache::{LayerCache, LayerDir};
pub use compression::{Compression, LayerMediaType};
pub use pack::{Exclude, PackOptions, PackedLayer, pack_dir};
pub use unpack::{UnpackMode, UnpackStats, unpack};

/// Errors from unpacking, packing or caching layers.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The archive holds an entry we refuse to write (path traversal and the like).
    #[error("refused layer entry {entry:?}: {reason}")]
    Refused {
        /// The entry's path as written in the archive.
        entry: String,
        /// Why it was refused.
        reason: String,
    },
    /// Writing one entry failed.
    #[error("unpack layer entry {entry:?}: {source}")]
    Entry {
        /// The entry's path as written in the archive.
        entry: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The tar stream itself is broken (truncated, bad header, bad compression).
    #[error("read layer archive: {0}")]
    Archive(#[source] std::io::Error),
    /// The media type is not one of the layer types we can read.
    #[error("unsupported layer media type {0:?}")]
    UnsupportedMediaType(String),
    /// The uncompressed stream does not hash to the expected diff id.
    #[error("layer diff id mismatch: expected {expected}, got {actual}")]
    DiffIdMismatch {
        /// The diff id the image config names.
        expected: String,
        /// What the stream hashed to.
        actual: String,
    },
    /// A filesystem operation on the store failed.
    #[error(transparent)]
    Io(#[from] crate::error::IoError),
}
