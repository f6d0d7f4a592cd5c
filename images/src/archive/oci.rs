//! Reading an OCI image layout staged from an archive.

use oci_spec::image::ImageIndex;

use super::import::{Contents, Found, check_image, image_blobs};
use super::{ArchiveError, host_platform};
use crate::digest::Digest;
use crate::store::{StoreError, Txn, bad_json};

pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

pub(super) fn read(txn: &mut Txn<'_>, c: &Contents) -> crate::Result<Vec<Found>> {
    let what = format!("{}: index.json", c.archive);
    let bytes = c
        .docs
        .get("index.json")
        .map(Vec::as_slice)
        .unwrap_or_default();
    let index: ImageIndex = serde_json::from_slice(bytes).map_err(|e| bad_json(&what, e))?;
    let mut out = Vec::new();
    for m in index.manifests() {
        let digest = Digest::parse(m.digest().as_ref()).map_err(|e| bad_json(&what, e))?;
        let names: Vec<String> = m
            .annotations()
            .as_ref()
            .and_then(|a| a.get(crate::store::REF_NAME))
            .cloned()
            .into_iter()
            .collect();
        let (digest, media_type, size, mut blobs) = resolve_platform(
            txn,
            &format!("{} {}", c.archive, digest),
            digest,
            m.media_type().as_ref(),
            m.size(),
        )?;
        let img = check_image(
            txn,
            &format!(
                "{}: image {}",
                c.archive,
                names.first().map_or(digest.as_str(), |s| s)
            ),
            &digest,
        )?;
        blobs.extend(image_blobs(&img)?);
        out.push(Found {
            names,
            digest,
            media_type,
            size,
            blobs,
        });
    }
    Ok(out)
}

/// Follows an index (multi-platform image) down to the host platform's manifest.
pub(crate) fn resolve_platform(
    txn: &Txn<'_>,
    what: &str,
    mut digest: Digest,
    media_type: &str,
    mut size: u64,
) -> crate::Result<(Digest, String, u64, Vec<Digest>)> {
    let mut media_type = media_type.to_string();
    let mut indexes = Vec::new();
    for _ in 0..4 {
        if media_type != OCI_INDEX && media_type != DOCKER_LIST {
            if media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
                return Err(StoreError::Unsupported {
                    what: what.to_string(),
                    message: format!("manifest media type {media_type:?} is not an image manifest"),
                }
                .into());
            }
            return Ok((digest, media_type, size, indexes));
        }
        let bytes = txn.read_blob(&digest, what)?;
        let idx: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| bad_json(what, e))?;
        indexes.push(digest.clone());
        let (os, arch) = host_platform();
        let m = idx
            .manifests()
            .iter()
            .find(|m| {
                m.platform().as_ref().is_some_and(|p| {
                    p.os().to_string() == os && p.architecture().to_string() == arch
                })
            })
            .ok_or_else(|| ArchiveError::NoPlatform {
                what: what.to_string(),
                platform: format!("{os}/{arch}"),
            })?;
        digest = Digest::parse(m.digest().as_ref()).map_err(|e| bad_json(what, e))?;
        media_type = m.media_type().to_string();
        size = m.size();
    }
    Err(StoreError::Unsupported {
        what: what.to_string(),
        message: "indexes nested too deep".into(),
    }
    .into())
}
