//! Reading a docker-archive (`manifest.json` + config + layer tars) staged from an
//! archive, and turning each image into an OCI manifest.

use std::fs::File;
use std::io::BufReader;

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifestBuilder, MediaType};
use serde::Deserialize;

use super::import::{Contents, Found, check_image, image_blobs};
use super::oci::OCI_MANIFEST;
use crate::digest::{Digest, HashReader};
use crate::error::IoContext;
use crate::layer::{Compression, LayerError};
use crate::store::oci_digest;
use crate::store::{StoreError, Txn, bad_json};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

pub(super) fn read(txn: &mut Txn<'_>, c: &Contents) -> crate::Result<Vec<Found>> {
    let what = format!("{}: manifest.json", c.archive);
    let bytes = c
        .docs
        .get("manifest.json")
        .map(Vec::as_slice)
        .unwrap_or_default();
    let entries: Vec<Entry> = serde_json::from_slice(bytes).map_err(|e| bad_json(&what, e))?;
    let mut out = Vec::new();
    for e in entries {
        let missing = |p: &str| StoreError::MissingBlob {
            digest: p.to_string(),
            what: what.clone(),
        };
        let (cfg_digest, cfg_size) = c.blob(&e.config).ok_or_else(|| missing(&e.config))?;
        let cfg_bytes = txn.read_blob(&cfg_digest, &e.config)?;
        let cfg: ImageConfiguration = serde_json::from_slice(&cfg_bytes)
            .map_err(|err| bad_json(format!("{}: {}", c.archive, e.config), err))?;
        let mut layers = Vec::new();
        for (i, lp) in e.layers.iter().enumerate() {
            let (d, size) = c.blob(lp).ok_or_else(|| missing(lp))?;
            let path = txn.blob_path(&d).ok_or_else(|| missing(lp))?;
            let (comp, diff_id) = diff_id_of(&path)?;
            let want = cfg.rootfs().diff_ids().get(i).cloned().unwrap_or_default();
            if diff_id.as_str() != want {
                return Err(LayerError::DiffIdMismatch {
                    expected: want,
                    actual: diff_id.to_string(),
                }
                .into());
            }
            layers.push(Descriptor::new(
                MediaType::from(comp.oci_media_type()),
                size,
                oci_digest(&d)?,
            ));
        }
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(Descriptor::new(
                MediaType::ImageConfig,
                cfg_size,
                oci_digest(&cfg_digest)?,
            ))
            .layers(layers)
            .build()
            .map_err(|err| bad_json(&what, err))?;
        let mbytes = crate::canonical_json(&manifest).map_err(|err| bad_json(&what, err))?;
        let (digest, size) = txn.put_bytes(&mbytes)?;
        let img = check_image(txn, &format!("{}: {}", c.archive, e.config), &digest)?;
        out.push(Found {
            names: e.repo_tags.unwrap_or_default(),
            digest,
            media_type: OCI_MANIFEST.to_string(),
            size,
            blobs: image_blobs(&img)?,
        });
    }
    Ok(out)
}

/// The compression and uncompressed digest of a layer file.
fn diff_id_of(path: &std::path::Path) -> crate::Result<(Compression, Digest)> {
    let f = File::open(path).at("open", path)?;
    let (comp, dec) = Compression::auto_decoder(BufReader::new(f)).map_err(LayerError::Archive)?;
    let (d, _) = HashReader::new(dec).finish().map_err(LayerError::Archive)?;
    Ok((comp, d))
}
