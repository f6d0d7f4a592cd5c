//! `index.json`: the OCI image index that names the store's images.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::digest::Digest;
use crate::error::IoContext;
use crate::fsutil;

/// The annotation carrying an image's name in `index.json` (skopeo and podman read it).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation carrying our format version on `index.json`.
pub const STORE_VERSION_ANNOTATION: &str = "dev.warren.store.version";
/// The store format version this crate writes.
pub const STORE_FORMAT_VERSION: u32 = 1;

pub(crate) const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// One descriptor in `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IndexEntry {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
}

impl IndexEntry {
    pub fn name(&self) -> Option<&str> {
        self.annotations.get(REF_NAME).map(String::as_str)
    }
}

/// `index.json` as we read and write it (sorted maps: byte-stable output).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IndexFile {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<IndexEntry>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl IndexFile {
    fn empty() -> Self {
        let mut annotations = BTreeMap::new();
        annotations.insert(
            STORE_VERSION_ANNOTATION.to_string(),
            STORE_FORMAT_VERSION.to_string(),
        );
        Self {
            schema_version: 2,
            media_type: Some(INDEX_MEDIA_TYPE.to_string()),
            manifests: Vec::new(),
            annotations,
        }
    }

    /// Points `name` at `entry` (replacing what it named before).
    pub fn set(&mut self, name: &str, mut entry: IndexEntry) {
        self.manifests.retain(|m| m.name() != Some(name));
        entry
            .annotations
            .insert(REF_NAME.to_string(), name.to_string());
        self.manifests.push(entry);
        self.manifests.sort_by(|a, b| a.name().cmp(&b.name()));
    }
}

pub(crate) fn init(s: &Store) -> crate::Result<()> {
    let p = s.layout_dir().join("index.json");
    if p.exists() {
        read(s)?;
        return Ok(());
    }
    let _l = s.index_lock()?;
    if !p.exists() {
        write(s, &IndexFile::empty())?;
    }
    Ok(())
}

pub(crate) fn read(s: &Store) -> crate::Result<IndexFile> {
    let p = s.layout_dir().join("index.json");
    let data = std::fs::read(&p).at("read", &p)?;
    let idx: IndexFile = serde_json::from_slice(&data).map_err(|e| StoreError::BadJson {
        what: p.display().to_string(),
        message: e.to_string(),
    })?;
    if let Some(v) = idx.annotations.get(STORE_VERSION_ANNOTATION) {
        if v.parse::<u32>().map_or(true, |v| v > STORE_FORMAT_VERSION) {
            return Err(StoreError::FormatVersion {
                path: p,
                found: v.clone(),
                supported: STORE_FORMAT_VERSION,
            }
            .into());
        }
    }
    Ok(idx)
}

fn write(s: &Store, idx: &IndexFile) -> crate::Result<()> {
    let p = s.layout_dir().join("index.json");
    let mut data = serde_json::to_vec_pretty(idx).map_err(|e| StoreError::BadJson {
        what: "index.json".into(),
        message: e.to_string(),
    })?;
    data.push(b'\n');
    fsutil::write_atomic(&p, &data)?;
    Ok(())
}

/// Read-modify-write of `index.json` under the index lock.
pub(crate) fn update<T>(
    s: &Store,
    f: impl FnOnce(&mut IndexFile) -> crate::Result<T>,
) -> crate::Result<T> {
    let _l = s.index_lock()?;
    let mut idx = read(s)?;
    idx.annotations.insert(
        STORE_VERSION_ANNOTATION.to_string(),
        STORE_FORMAT_VERSION.to_string(),
    );
    let before = idx.clone();
    let r = f(&mut idx)?;
    if idx != before {
        write(s, &idx)?;
    }
    Ok(r)
}
