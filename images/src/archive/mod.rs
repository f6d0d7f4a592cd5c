//! Import and export of image archives: OCI archives (a tar of an OCI image layout, as
//! `skopeo copy … oci-archive:` and `podman save --format oci-archive` write) and
//! docker-archives (`docker save`, `podman save --format docker-archive`).

mod docker;
mod export;
pub(crate) mod import;
mod oci;

pub(crate) use import::check_image as check_staged_image;
pub(crate) mod oci_types {
    pub(crate) use super::oci::{DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
}

pub use export::ArchiveFormat;
pub use import::ImportOptions;

/// Errors reading or writing archives.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive could not be read (truncated, not a tar, bad compression).
    #[error("read archive {what}: {source}")]
    Read {
        /// The archive and, where known, the entry.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An entry name in the archive is unusable.
    #[error("archive {archive}: refused entry {entry:?}: {reason}")]
    BadEntry {
        /// The archive.
        archive: String,
        /// The entry's name.
        entry: String,
        /// Why.
        reason: String,
    },
    /// The archive is neither an OCI layout nor a docker-archive.
    #[error("archive {0}: no index.json or manifest.json; not an OCI archive or docker-archive")]
    UnknownFormat(String),
    /// An image in the archive has no name and none was given.
    #[error("archive {archive}: image {digest} has no name; pass one")]
    Unnamed {
        /// The archive.
        archive: String,
        /// The image's manifest digest.
        digest: String,
    },
    /// A name was given but the archive holds several images.
    #[error("archive {archive} holds {count} images; a single name cannot be given to all")]
    AmbiguousName {
        /// The archive.
        archive: String,
        /// How many images it holds.
        count: usize,
    },
    /// The archive holds no image.
    #[error("archive {0} holds no image")]
    Empty(String),
    /// No manifest in a multi-platform index matches this host.
    #[error("{what}: no manifest for platform {platform}")]
    NoPlatform {
        /// The index.
        what: String,
        /// The platform looked for.
        platform: String,
    },
}

/// The host's platform as OCI names it (`linux/amd64`, `linux/arm64`).
pub fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        other => other,
    };
    ("linux", arch)
}
