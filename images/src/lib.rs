//! warren's OCI image store and curated image recipes.
//!
//! - [`Store`]: content-addressed blobs in OCI image-layout form under a root directory,
//!   names in `index.json`, a cache of unpacked layers, overlay rootfs for containers,
//!   gc; safe against concurrent writers.
//! - Import and export of OCI archives and docker-archives ([`Store::import_archive`],
//!   [`Store::export_archive`]), registry pulls ([`Store::pull`]).
//! - Recipes ([`recipe`]) and the builder ([`build::build`]) that turns them into images
//!   with `warren-runtime`.
//!
//! Libraries take everything as parameters: the store root (default
//! [`DEFAULT_ROOT`]), the runtime binary's path, the recipe directory.

pub mod archive;
pub mod build;
mod digest;
mod error;
mod fsutil;
pub mod layer;
pub mod pull;
pub mod recipe;
mod reference;
pub mod rootfs;
mod store;

pub use archive::{ArchiveFormat, ImportOptions};
pub use digest::{Digest, DigestParseError};
pub use error::{Error, IoError, Result};
pub use reference::{NameError, normalize_name};
pub use rootfs::{Rootfs, RootfsOptions};
pub use store::{
    DEFAULT_ROOT, GcReport, Image, ImageInfo, REF_NAME, STORE_FORMAT_VERSION,
    STORE_VERSION_ANNOTATION, Store, StoreError,
};

/// The mtime every built layer's newer files are clamped to, and the `created` time of
/// built images: 2023-06-10 00:00:00 UTC (Debian 12's release), SOURCE_DATE_EPOCH-style.
pub const SOURCE_DATE_EPOCH: i64 = 1_686_355_200;

/// JSON with object keys sorted at every level, so equal values give equal bytes (and
/// digests) whatever map type produced them.
pub(crate) fn canonical_json<T: serde::Serialize>(v: &T) -> serde_json::Result<Vec<u8>> {
    fn sort(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut entries: Vec<(String, serde_json::Value)> = m.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sort(v))).collect())
            }
            serde_json::Value::Array(a) => {
                serde_json::Value::Array(a.into_iter().map(sort).collect())
            }
            other => other,
        }
    }
    serde_json::to_vec(&sort(serde_json::to_value(v)?))
}
