//! The image store: an OCI image layout plus the layer cache, container rootfs
//! directories and locks, under one root directory.
//!
//! ```text
//! <root>/images/oci-layout            {"imageLayoutVersion":"1.0.0"}
//! <root>/images/index.json            names → manifests (ref.name annotations)
//! <root>/images/blobs/sha256/<hex>    manifests, configs, layers
//! <root>/layers/<diffid hex>/         unpacked layers (overlayfs lower dirs)
//! <root>/containers/<id>/             upper, work, merged, rootfs.json
//! <root>/cache/                       build cache, debootstrap tarballs
//! <root>/locks/                       store.lock (gc vs writers), index.lock, layer-*.lock
//! <root>/tmp/                         staging for transactions (same filesystem)
//! ```

mod commit;
mod gc;
mod images;
mod index;
pub(crate) mod lock;
mod txn;

use std::path::{Path, PathBuf};

pub(crate) use commit::{LayerRef, config_for, oci_digest, stage_image};
pub use gc::GcReport;
pub use images::{Image, ImageInfo};
pub(crate) use images::{bad_json, parse_image};
pub(crate) use index::IndexEntry;
pub use index::{REF_NAME, STORE_FORMAT_VERSION, STORE_VERSION_ANNOTATION};
pub(crate) use txn::Txn;

use crate::error::{IoContext, IoError};
use crate::fsutil;
use crate::layer::LayerCache;

/// An index entry for a manifest (the name is added when it is set).
pub(crate) fn index_entry(
    media_type: &str,
    digest: &crate::Digest,
    size: u64,
) -> index::IndexEntry {
    index::IndexEntry {
        media_type: media_type.to_string(),
        digest: digest.clone(),
        size,
        annotations: Default::default(),
        platform: None,
    }
}

/// The default store root.
pub const DEFAULT_ROOT: &str = "/var/lib/warren";

/// Errors about the store's content.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No image has this name.
    #[error("no image named {0:?} in the store")]
    NotFound(String),
    /// A blob's content does not match its digest.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// Which blob (archive path or descriptor).
        what: String,
        /// The digest it should have.
        expected: String,
        /// The digest it has.
        actual: String,
    },
    /// A blob's size does not match its descriptor.
    #[error("{what}: size mismatch: descriptor says {expected}, blob has {actual}")]
    SizeMismatch {
        /// Which blob.
        what: String,
        /// The descriptor's size.
        expected: u64,
        /// The blob's size.
        actual: u64,
    },
    /// A blob the image needs is missing.
    #[error("missing blob {digest} ({what})")]
    MissingBlob {
        /// The missing digest.
        digest: String,
        /// What referenced it.
        what: String,
    },
    /// A JSON document (index, manifest, config) is malformed.
    #[error("parse {what}: {message}")]
    BadJson {
        /// Which document.
        what: String,
        /// The parser's message.
        message: String,
    },
    /// A name is invalid.
    #[error(transparent)]
    BadName(#[from] crate::reference::NameError),
    /// The store was written by a newer warren.
    #[error(
        "store format version {found} at {path} is newer than this warren understands ({supported})"
    )]
    FormatVersion {
        /// The index file.
        path: PathBuf,
        /// The version found.
        found: String,
        /// The version we write.
        supported: u32,
    },
    /// A manifest's media type or shape is not an image we can use.
    #[error("unsupported {what}: {message}")]
    Unsupported {
        /// What was unsupported.
        what: String,
        /// Details.
        message: String,
    },
}

/// An image store rooted at a directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store at `root`, creating its layout if missing.
    pub fn open(root: impl Into<PathBuf>) -> crate::Result<Self> {
        let s = Self { root: root.into() };
        for d in [
            s.blobs_dir(),
            s.layers_dir(),
            s.containers_dir(),
            s.cache_dir(),
            s.locks_dir(),
            s.tmp_dir(),
        ] {
            fsutil::mkdir_p(&d)?;
        }
        std::fs::set_permissions(
            s.layers_dir(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .at("chmod", s.layers_dir())?;
        let layout = s.layout_dir().join("oci-layout");
        if !layout.exists() {
            fsutil::write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        for l in ["store.lock", "index.lock"] {
            let p = s.locks_dir().join(l);
            if !p.exists() {
                drop(lock::Lock::shared(&p)?);
            }
        }
        index::init(&s)?;
        Ok(s)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The OCI image layout directory (`skopeo copy oci:<this>:<name> …` reads it).
    pub fn layout_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.layout_dir().join("blobs").join("sha256")
    }

    pub(crate) fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    pub(crate) fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub(crate) fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    pub(crate) fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The path of a blob (whether or not it exists).
    pub fn blob_path(&self, d: &crate::Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }

    /// The layer unpack cache.
    pub fn layer_cache(&self) -> LayerCache {
        LayerCache::new(self.layers_dir(), self.locks_dir())
    }

    /// Shared lock held by everything that adds to the store; gc takes it exclusively.
    pub(crate) fn writer_lock(&self) -> Result<lock::Lock, IoError> {
        lock::Lock::shared(&self.locks_dir().join("store.lock"))
    }

    pub(crate) fn gc_lock(&self) -> Result<lock::Lock, IoError> {
        lock::Lock::exclusive(&self.locks_dir().join("store.lock"))
    }

    pub(crate) fn index_lock(&self) -> Result<lock::Lock, IoError> {
        lock::Lock::exclusive(&self.locks_dir().join("index.lock"))
    }
}
