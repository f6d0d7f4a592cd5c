//! Layer media types and their compression.

use std::io::{self, BufRead, BufReader, Read};

use super::LayerError;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// Detects the compression from the first bytes of a stream.
    pub fn sniff(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b]) {
            Self::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Self::Zstd
        } else {
            Self::None
        }
    }

    /// Wraps `r` in the matching decoder.
    pub fn decoder<'a, R: Read + 'a>(self, r: R) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Self::None => Box::new(r),
            Self::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
            Self::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
        })
    }

    /// Sniffs the compression of `r` and returns a decoding reader.
    pub fn auto_decoder<'a, R: Read + 'a>(r: R) -> io::Result<(Self, Box<dyn Read + 'a>)> {
        let mut br = BufReader::with_capacity(256 * 1024, r);
        let head = br.fill_buf()?;
        let c = Self::sniff(head);
        Ok((c, c.decoder(br)?))
    }

    /// The OCI media type for a layer with this compression.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Self::None => LayerMediaType::OCI_TAR,
            Self::Gzip => LayerMediaType::OCI_GZIP,
            Self::Zstd => LayerMediaType::OCI_ZSTD,
        }
    }
}

/// The layer media types we accept, OCI and Docker's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerMediaType;

impl LayerMediaType {
    /// Uncompressed OCI layer.
    pub const OCI_TAR: &'static str = "application/vnd.oci.image.layer.v1.tar";
    /// gzip OCI layer.
    pub const OCI_GZIP: &'static str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// zstd OCI layer.
    pub const OCI_ZSTD: &'static str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// Docker's layer (gzip, sometimes uncompressed in practice).
    pub const DOCKER_GZIP: &'static str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker's foreign (nondistributable) layer.
    pub const DOCKER_FOREIGN: &'static str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

    /// The declared compression of a layer media type, or an error for anything that is
    /// not a layer we can unpack. The actual bytes are sniffed again when unpacking, since
    /// some tools label plain tars as gzip.
    pub fn compression(media_type: &str) -> Result<Compression, LayerError> {
        let base = media_type.replace(".nondistributable", "");
        match base.as_str() {
            Self::OCI_TAR | "application/vnd.docker.image.rootfs.diff.tar" => Ok(Compression::None),
            Self::OCI_GZIP | Self::DOCKER_GZIP | Self::DOCKER_FOREIGN => Ok(Compression::Gzip),
            Self::OCI_ZSTD => Ok(Compression::Zstd),
            _ => Err(LayerError::UnsupportedMediaType(media_type.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(
            LayerMediaType::compression(LayerMediaType::OCI_ZSTD).unwrap(),
            Compression::Zstd
        );
        assert_eq!(
            LayerMediaType::compression(
                "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            )
            .unwrap(),
            Compression::Gzip
        );
        assert!(LayerMediaType::compression("application/x-foo").is_err());
    }

    #[test]
    fn sniff() {
        assert_eq!(Compression::sniff(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"usr/"), Compression::None);
    }
}
