//! Garbage collection of blobs and unpacked layers no image or container refers to.

use std::collections::HashSet;
use std::path::Path;

use super::{Store, index};
use crate::digest::Digest;
use crate::error::IoContext;
use crate::fsutil;

/// What a gc removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs removed.
    pub blobs_removed: Vec<Digest>,
    /// Unpacked layer directories removed (by diff id).
    pub layers_removed: Vec<Digest>,
    /// Bytes of blob files freed.
    pub bytes_freed: u64,
}

impl Store {
    /// Removes every blob not reachable from a named image and every unpacked layer not
    /// used by a named image or a container rootfs, plus leftovers of interrupted
    /// transactions. Waits for running imports, pulls and builds to finish, and holds
    /// them off while it runs.
    pub fn gc(&self) -> crate::Result<GcReport> {
        let _l = self.gc_lock()?;
        let idx = index::read(self)?;
        let mut blobs: HashSet<Digest> = HashSet::new();
        let mut diffs: HashSet<Digest> = HashSet::new();
        let mut queue: Vec<Digest> = idx.manifests.iter().map(|m| m.digest.clone()).collect();
        while let Some(d) = queue.pop() {
            if !blobs.insert(d.clone()) {
                continue;
            }
            let Ok(bytes) = self.read_blob(&d) else {
                continue;
            };
            let v: serde_json::Value = match serde_json::from_slice(&bytes) {
                Ok(v) => v,
                Err(_) => continue,
            };
            // An index: keep its manifests. A manifest: its config and layers.
            for key in ["manifests", "layers"] {
                if let Some(arr) = v.get(key).and_then(|a| a.as_array()) {
                    for e in arr {
                        if let Some(Ok(cd)) =
                            e.get("digest").and_then(|x| x.as_str()).map(Digest::parse)
                        {
                            queue.push(cd);
                        }
                    }
                }
            }
            if let Some(Ok(cd)) = v
                .pointer("/config/digest")
                .and_then(|x| x.as_str())
                .map(Digest::parse)
            {
                blobs.insert(cd.clone());
                if let Ok(cfg) = self.read_blob(&cd) {
                    if let Ok(c) = serde_json::from_slice::<serde_json::Value>(&cfg) {
                        for id in c
                            .pointer("/rootfs/diff_ids")
                            .and_then(|x| x.as_array())
                            .into_iter()
                            .flatten()
                        {
                            if let Some(Ok(id)) = id.as_str().map(Digest::parse) {
                                diffs.insert(id);
                            }
                        }
                    }
                }
            }
        }
        for c in crate::rootfs::container_layers(self)? {
            diffs.insert(c);
        }

        let mut report = GcReport::default();
        for (name, path) in read_dir(&self.blobs_dir())? {
            match Digest::parse(&format!("sha256:{name}")) {
                Ok(d) if blobs.contains(&d) => {}
                parsed => {
                    let len = std::fs::symlink_metadata(&path)
                        .map(|m| m.len())
                        .unwrap_or(0);
                    std::fs::remove_file(&path).at("remove", &path)?;
                    report.bytes_freed += len;
                    if let Ok(d) = parsed {
                        report.blobs_removed.push(d);
                    }
                }
            }
        }
        for (name, path) in read_dir(&self.layers_dir())? {
            match Digest::parse(&format!("sha256:{name}")) {
                Ok(d) if diffs.contains(&d) => {}
                parsed => {
                    fsutil::remove_tree(&path)?;
                    if let Ok(d) = parsed {
                        report.layers_removed.push(d);
                    }
                }
            }
        }
        for (name, path) in read_dir(&self.locks_dir())? {
            if name.starts_with("layer-") {
                let _ = std::fs::remove_file(&path);
            }
        }
        for (_, path) in read_dir(&self.tmp_dir())? {
            fsutil::remove_tree(&path)?;
        }
        report.blobs_removed.sort();
        report.layers_removed.sort();
        tracing::info!(
            blobs = report.blobs_removed.len(),
            layers = report.layers_removed.len(),
            bytes = report.bytes_freed,
            "gc done"
        );
        Ok(report)
    }
}

fn read_dir(dir: &Path) -> crate::Result<Vec<(String, std::path::PathBuf)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).at("read directory", dir)? {
        let e = e.at("read directory", dir)?;
        out.push((e.file_name().to_string_lossy().into_owned(), e.path()));
    }
    out.sort();
    Ok(out)
}
