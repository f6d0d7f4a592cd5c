//! Writing new images: config and manifest from layers, and `import_rootfs` (one layer
//! from a rootfs tarball, like `podman import`).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use oci_spec::image::{
    ConfigBuilder, Descriptor, ImageConfiguration, ImageConfigurationBuilder, ImageManifestBuilder,
    MediaType, RootFsBuilder,
};

use super::{ImageInfo, Store, StoreError, Txn, bad_json, index::IndexEntry};
use crate::digest::{Digest, HashReader};
use crate::error::IoContext;
use crate::layer::{Compression, LayerError};

/// A layer blob staged or stored, with what a manifest and config need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LayerRef {
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
    pub media_type: String,
}

/// RFC 3339 for [`crate::SOURCE_DATE_EPOCH`].
pub(crate) const CREATED: &str = "2023-06-10T00:00:00Z";

/// An image config for `layers` (diff ids filled in) with `config`'s settings.
pub(crate) fn config_for(
    config: Option<oci_spec::image::Config>,
    layers: &[LayerRef],
) -> crate::Result<ImageConfiguration> {
    let (os, arch) = crate::archive::host_platform();
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.to_string()).collect();
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(diff_ids)
        .build()
        .map_err(|e| bad_json("rootfs", e))?;
    let mut b = ImageConfigurationBuilder::default()
        .os(os)
        .architecture(arch)
        .created(CREATED.to_string())
        .rootfs(rootfs);
    match config {
        Some(c) => b = b.config(c),
        None => {
            let c = ConfigBuilder::default()
                .env(vec![
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
                ])
                .cmd(vec!["/bin/sh".to_string()])
                .build()
                .map_err(|e| bad_json("config", e))?;
            b = b.config(c);
        }
    }
    Ok(b.build().map_err(|e| bad_json("config", e))?)
}

/// Stages config and manifest for `layers`; returns the index entry for the manifest.
pub(crate) fn stage_image(
    txn: &mut Txn<'_>,
    config: &ImageConfiguration,
    layers: &[LayerRef],
) -> crate::Result<IndexEntry> {
    let cfg = crate::canonical_json(config).map_err(|e| bad_json("config", e))?;
    let (cfg_d, cfg_size) = txn.put_bytes(&cfg)?;
    let descs = layers
        .iter()
        .map(|l| {
            Ok(Descriptor::new(
                MediaType::from(l.media_type.as_str()),
                l.size,
                oci_digest(&l.digest)?,
            ))
        })
        .collect::<crate::Result<Vec<_>>>()?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(Descriptor::new(
            MediaType::ImageConfig,
            cfg_size,
            oci_digest(&cfg_d)?,
        ))
        .layers(descs)
        .build()
        .map_err(|e| bad_json("manifest", e))?;
    let m = crate::canonical_json(&manifest).map_err(|e| bad_json("manifest", e))?;
    let (d, size) = txn.put_bytes(&m)?;
    Ok(super::index_entry(
        "application/vnd.oci.image.manifest.v1+json",
        &d,
        size,
    ))
}

pub(crate) fn oci_digest(d: &Digest) -> crate::Result<oci_spec::image::Digest> {
    d.as_str()
        .parse()
        .map_err(|e| bad_json(d.as_str(), e).into())
}

impl Store {
    /// Creates the image `name` with one layer from a rootfs tarball (plain, gzip or
    /// zstd), like `podman import`. The blob is stored as given.
    pub fn import_rootfs(&self, tarball: &Path, name: &str) -> crate::Result<ImageInfo> {
        let name = crate::reference::normalize_name(name).map_err(StoreError::from)?;
        let mut txn = Txn::new(self)?;
        let f = File::open(tarball).at("open", tarball)?;
        let (digest, size) =
            txn.put_reader(&mut BufReader::new(f), None, &tarball.display().to_string())?;
        let staged = txn
            .blob_path(&digest)
            .ok_or_else(|| StoreError::MissingBlob {
                digest: digest.to_string(),
                what: tarball.display().to_string(),
            })?;
        let f = File::open(&staged).at("open", &staged)?;
        let (comp, dec) =
            Compression::auto_decoder(BufReader::new(f)).map_err(LayerError::Archive)?;
        // Read it as a tar to the end so a broken tarball fails here, not at run time.
        let mut hr = HashReader::new(dec);
        let mut ar = tar::Archive::new(&mut hr);
        for e in ar.entries().map_err(LayerError::Archive)? {
            e.map_err(LayerError::Archive)?;
        }
        let (diff_id, _) = hr.finish().map_err(LayerError::Archive)?;
        let layer = LayerRef {
            digest,
            size,
            diff_id,
            media_type: comp.oci_media_type().to_string(),
        };
        let cfg = config_for(None, std::slice::from_ref(&layer))?;
        let entry = stage_image(&mut txn, &cfg, &[layer])?;
        let info = ImageInfo {
            name: name.clone(),
            digest: entry.digest.clone(),
            media_type: entry.media_type.clone(),
        };
        txn.commit(&[(name, entry)])?;
        Ok(info)
    }
}
