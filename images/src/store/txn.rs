//! Transactions: everything an import, pull or build writes is staged in a temp
//! directory under `<root>/tmp/` and moved into the store only when the whole image
//! checks out, so a failure leaves the store exactly as it was.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use super::index::{self, IndexEntry};
use super::lock::Lock;
use super::{Store, StoreError};
use crate::digest::{Digest, HashWriter};
use crate::error::{IoContext, IoError};
use crate::fsutil;
use crate::layer::{LayerDir, UnpackStats};

/// A staged set of blobs (and unpacked layers) plus the names to point at them.
#[derive(Debug)]
pub(crate) struct Txn<'s> {
    store: &'s Store,
    dir: PathBuf,
    blobs: BTreeMap<Digest, PathBuf>,
    layers: BTreeMap<Digest, PathBuf>,
    seq: u64,
    _writer: Lock,
}

impl<'s> Txn<'s> {
    pub fn new(store: &'s Store) -> crate::Result<Self> {
        let writer = store.writer_lock()?;
        let dir = tempfile::Builder::new()
            .prefix("txn-")
            .tempdir_in(store.tmp_dir())
            .at("create temp directory in", store.tmp_dir())?
            .keep();
        Ok(Self {
            store,
            dir,
            blobs: BTreeMap::new(),
            layers: BTreeMap::new(),
            seq: 0,
            _writer: writer,
        })
    }

    /// A fresh path inside the staging directory.
    pub fn scratch(&mut self, what: &str) -> PathBuf {
        self.seq += 1;
        self.dir.join(format!("{what}-{}", self.seq))
    }

    /// Stages the bytes of `r` as a blob, checking them against `expected` when given.
    pub fn put_reader(
        &mut self,
        r: &mut dyn Read,
        expected: Option<&Digest>,
        what: &str,
    ) -> crate::Result<(Digest, u64)> {
        let p = self.scratch("blob");
        let f = File::create(&p).at("create", &p)?;
        let mut w = HashWriter::new(BufWriter::with_capacity(1 << 20, f));
        io::copy(r, &mut w).map_err(|e| crate::archive::ArchiveError::Read {
            what: what.to_string(),
            source: e,
        })?;
        let (buf, digest, size) = w.finish();
        let f = buf
            .into_inner()
            .map_err(|e| IoError::new("write", &p, e.into_error()))?;
        f.sync_all().at("fsync", &p)?;
        if let Some(exp) = expected {
            if *exp != digest {
                let _ = std::fs::remove_file(&p);
                return Err(StoreError::DigestMismatch {
                    what: what.to_string(),
                    expected: exp.to_string(),
                    actual: digest.to_string(),
                }
                .into());
            }
        }
        self.adopt(p, &digest)?;
        Ok((digest, size))
    }

    pub fn put_bytes(&mut self, data: &[u8]) -> crate::Result<(Digest, u64)> {
        let d = Digest::of(data);
        if !self.blobs.contains_key(&d) {
            let p = self.scratch("blob");
            let mut f = File::create(&p).at("create", &p)?;
            f.write_all(data).at("write", &p)?;
            f.sync_all().at("fsync", &p)?;
            self.blobs.insert(d.clone(), p);
        }
        Ok((d, data.len() as u64))
    }

    /// Takes a file already written inside the staging directory as the blob `digest`.
    pub fn adopt(&mut self, path: PathBuf, digest: &Digest) -> crate::Result<()> {
        if self.blobs.contains_key(digest) {
            std::fs::remove_file(&path).at("remove", &path)?;
        } else {
            self.blobs.insert(digest.clone(), path);
        }
        Ok(())
    }

    /// Drops staged blobs not in `keep` (archive files no image refers to).
    pub fn keep_only(&mut self, keep: &std::collections::HashSet<Digest>) -> crate::Result<()> {
        let drop: Vec<Digest> = self
            .blobs
            .keys()
            .filter(|d| !keep.contains(*d))
            .cloned()
            .collect();
        for d in drop {
            if let Some(p) = self.blobs.remove(&d) {
                std::fs::remove_file(&p).at("remove", &p)?;
            }
        }
        Ok(())
    }

    /// Where the blob is: staged here, or already in the store.
    pub fn blob_path(&self, d: &Digest) -> Option<PathBuf> {
        if let Some(p) = self.blobs.get(d) {
            return Some(p.clone());
        }
        let p = self.store.blob_path(d);
        p.exists().then_some(p)
    }

    pub fn read_blob(&self, d: &Digest, what: &str) -> crate::Result<Vec<u8>> {
        let p = self.blob_path(d).ok_or_else(|| StoreError::MissingBlob {
            digest: d.to_string(),
            what: what.to_string(),
        })?;
        Ok(std::fs::read(&p).at("read", &p)?)
    }

    pub fn blob_len(&self, d: &Digest, what: &str) -> crate::Result<u64> {
        let p = self.blob_path(d).ok_or_else(|| StoreError::MissingBlob {
            digest: d.to_string(),
            what: what.to_string(),
        })?;
        Ok(std::fs::metadata(&p).at("stat", &p)?.len())
    }

    /// An unpacked layer: from the store's cache, or unpacked into the staging area
    /// (moved into the cache on commit).
    pub fn layer_dir(
        &mut self,
        diff_id: &Digest,
        blob: &Digest,
    ) -> crate::Result<(LayerDir, Option<UnpackStats>)> {
        let cache = self.store.layer_cache();
        if cache.contains(diff_id) {
            return Ok((
                LayerDir {
                    diff_id: diff_id.clone(),
                    path: cache.path(diff_id),
                },
                None,
            ));
        }
        if let Some(p) = self.layers.get(diff_id) {
            return Ok((
                LayerDir {
                    diff_id: diff_id.clone(),
                    path: p.clone(),
                },
                None,
            ));
        }
        let bp = self
            .blob_path(blob)
            .ok_or_else(|| StoreError::MissingBlob {
                digest: blob.to_string(),
                what: format!("layer {diff_id}"),
            })?;
        let dest = self.scratch("layer");
        let stats = crate::layer::cache_unpack_to(diff_id, &bp, &self.dir, &dest)
            .map_err(crate::Error::from)?;
        self.layers.insert(diff_id.clone(), dest.clone());
        Ok((
            LayerDir {
                diff_id: diff_id.clone(),
                path: dest,
            },
            Some(stats),
        ))
    }

    /// Moves the staged blobs and layers into the store, then points `names` at their
    /// manifests in one index update.
    pub fn commit(mut self, names: &[(String, IndexEntry)]) -> crate::Result<()> {
        let blobs = std::mem::take(&mut self.blobs);
        for (d, p) in &blobs {
            let dest = self.store.blob_path(d);
            if dest.exists() {
                continue;
            }
            std::fs::rename(p, &dest).at("rename into", &dest)?;
        }
        let layers = std::mem::take(&mut self.layers);
        let cache = self.store.layer_cache();
        for (d, p) in &layers {
            let dest = cache.path(d);
            if dest.exists() {
                continue;
            }
            if let Err(e) = std::fs::rename(p, &dest) {
                if !dest.is_dir() {
                    return Err(IoError::new("rename into", &dest, e).into());
                }
            }
        }
        if let Ok(d) = File::open(self.store.blobs_dir()) {
            let _ = d.sync_all();
        }
        if !names.is_empty() {
            index::update(self.store, |idx| {
                for (n, e) in names {
                    idx.set(n, e.clone());
                }
                Ok(())
            })?;
        }
        Ok(())
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if let Err(e) = fsutil::remove_tree(&self.dir) {
            tracing::warn!(error = %e, "could not remove staging directory");
        }
    }
}
