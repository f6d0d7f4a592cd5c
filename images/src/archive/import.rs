//! Import: one pass over the archive stages every file (blobs checked against their
//! names), then the format's reader turns what was staged into images, every blob and
//! cross-reference is checked, and only then is anything moved into the store.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use super::ArchiveError;
use crate::digest::Digest;
use crate::error::IoContext;
use crate::layer::Compression;
use crate::store::{ImageInfo, Store, StoreError, Txn};

/// Options for an import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Name to give the image (when the archive holds exactly one); replaces the names
    /// the archive carries.
    pub name: Option<String>,
}

/// One file of the archive, staged.
#[derive(Debug, Clone)]
pub(super) enum Staged {
    Blob { digest: Digest, size: u64 },
    Link(String),
}

/// What the staging pass found.
#[derive(Debug, Default)]
pub(super) struct Contents {
    pub archive: String,
    pub files: BTreeMap<String, Staged>,
    /// Small JSON documents kept in memory by name.
    pub docs: BTreeMap<String, Vec<u8>>,
}

impl Contents {
    /// The blob behind an archive path, following in-archive symlinks.
    pub fn blob(&self, path: &str) -> Option<(Digest, u64)> {
        let mut p = norm(path)?;
        for _ in 0..16 {
            match self.files.get(&p)? {
                Staged::Blob { digest, size } => return Some((digest.clone(), *size)),
                Staged::Link(t) => {
                    let joined = match t.strip_prefix('/') {
                        Some(abs) => abs.to_string(),
                        None => {
                            let base = p.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                            format!("{base}/{t}")
                        }
                    };
                    p = norm(&joined)?;
                }
            }
        }
        None
    }
}

/// Normalizes an archive path: no leading `./` or `/`, `..` resolved lexically (None
/// when it climbs out).
fn norm(p: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out.join("/"))
}

const DOC_NAMES: &[&str] = &["index.json", "oci-layout", "manifest.json", "repositories"];
const MAX_DOC: u64 = 64 << 20;

fn stage(txn: &mut Txn<'_>, path: &Path) -> crate::Result<Contents> {
    let archive = path.display().to_string();
    let f = File::open(path).at("open", path)?;
    let (_, dec) =
        Compression::auto_decoder(BufReader::new(f)).map_err(|e| ArchiveError::Read {
            what: archive.clone(),
            source: e,
        })?;
    let mut ar = tar::Archive::new(dec);
    let mut c = Contents {
        archive: archive.clone(),
        ..Default::default()
    };
    let rd = |e: std::io::Error, what: &str| ArchiveError::Read {
        what: format!("{archive}: {what}"),
        source: e,
    };
    for entry in ar.entries().map_err(|e| rd(e, "entries"))? {
        let mut entry = entry.map_err(|e| rd(e, "next entry"))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(name) = norm(&raw) else {
            return Err(ArchiveError::BadEntry {
                archive,
                entry: raw,
                reason: "path leaves the archive".into(),
            }
            .into());
        };
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let t = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let t = if entry.header().entry_type() == tar::EntryType::Link {
                    format!("/{t}")
                } else {
                    t
                };
                c.files.insert(name, Staged::Link(t));
                continue;
            }
            _ => continue,
        }
        let what = format!("{archive}: {raw}");
        if DOC_NAMES.contains(&name.as_str()) {
            let mut buf = Vec::new();
            entry
                .by_ref()
                .take(MAX_DOC)
                .read_to_end(&mut buf)
                .map_err(|e| rd(e, &raw))?;
            c.docs.insert(name.clone(), buf.clone());
            let (digest, size) = txn.put_bytes(&buf)?;
            c.files.insert(name, Staged::Blob { digest, size });
            continue;
        }
        let expected = match name.strip_prefix("blobs/") {
            Some(rest) => match rest.split_once('/') {
                Some(("sha256", hex)) => {
                    Some(Digest::parse(&format!("sha256:{hex}")).map_err(|e| {
                        ArchiveError::BadEntry {
                            archive: archive.clone(),
                            entry: raw.clone(),
                            reason: e.to_string(),
                        }
                    })?)
                }
                Some((alg, _)) => {
                    return Err(ArchiveError::BadEntry {
                        archive,
                        entry: raw,
                        reason: format!("unsupported digest algorithm {alg:?}"),
                    }
                    .into());
                }
                None => None,
            },
            None => None,
        };
        let (digest, size) = txn.put_reader(&mut entry, expected.as_ref(), &what)?;
        c.files.insert(name, Staged::Blob { digest, size });
    }
    Ok(c)
}

/// An image ready to be named in the index.
#[derive(Debug)]
pub(super) struct Found {
    pub names: Vec<String>,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// Every blob the image needs (manifest, config, layers, any index above it).
    pub blobs: Vec<Digest>,
}

impl Store {
    /// Imports an OCI archive or a docker-archive (the format is detected), plain or
    /// gzip/zstd-compressed. Nothing in the store changes unless every image in the
    /// archive checks out.
    pub fn import_archive(
        &self,
        path: &Path,
        opts: &ImportOptions,
    ) -> crate::Result<Vec<ImageInfo>> {
        let mut txn = Txn::new(self)?;
        let contents = stage(&mut txn, path)?;
        let found = if contents.docs.contains_key("index.json") {
            super::oci::read(&mut txn, &contents)?
        } else if contents.docs.contains_key("manifest.json") {
            super::docker::read(&mut txn, &contents)?
        } else {
            return Err(ArchiveError::UnknownFormat(contents.archive.clone()).into());
        };
        if found.is_empty() {
            return Err(ArchiveError::Empty(contents.archive.clone()).into());
        }
        if opts.name.is_some() && found.len() > 1 {
            return Err(ArchiveError::AmbiguousName {
                archive: contents.archive.clone(),
                count: found.len(),
            }
            .into());
        }
        let mut names = Vec::new();
        let mut out = Vec::new();
        for f in &found {
            let ns: Vec<String> = match (&opts.name, found.len()) {
                (Some(n), 1) => {
                    vec![crate::reference::normalize_name(n).map_err(StoreError::from)?]
                }
                _ if !f.names.is_empty() => f
                    .names
                    .iter()
                    .map(|n| crate::reference::normalize_name(n))
                    .collect::<Result<_, _>>()
                    .map_err(StoreError::from)?,
                _ => {
                    return Err(ArchiveError::Unnamed {
                        archive: contents.archive.clone(),
                        digest: f.digest.to_string(),
                    }
                    .into());
                }
            };
            for n in ns {
                let entry = crate::store::index_entry(&f.media_type, &f.digest, f.size);
                out.push(ImageInfo {
                    name: n.clone(),
                    digest: f.digest.clone(),
                    media_type: f.media_type.clone(),
                });
                names.push((n, entry));
            }
        }
        let mut keep = std::collections::HashSet::new();
        for f in &found {
            keep.extend(f.blobs.iter().cloned());
        }
        txn.keep_only(&keep)?;
        txn.commit(&names)?;
        tracing::info!(archive = %path.display(), images = out.len(), "imported");
        Ok(out)
    }
}

/// The blobs an image needs.
pub(crate) fn image_blobs(img: &crate::Image) -> crate::Result<Vec<Digest>> {
    let mut v = vec![img.digest.clone()];
    v.push(
        Digest::parse(img.manifest.config().digest().as_ref())
            .map_err(|e| crate::store::bad_json(&img.name, e))?,
    );
    v.extend(img.layers.iter().cloned());
    Ok(v)
}

/// Checks a staged image end to end: manifest and config parse, every layer blob is
/// there with the size its descriptor claims, layer media types are ones we can unpack.
pub(crate) fn check_image(
    txn: &Txn<'_>,
    what: &str,
    digest: &Digest,
) -> crate::Result<crate::Image> {
    let bytes = txn.read_blob(digest, what)?;
    let read = |d: &Digest, w: &str| txn.read_blob(d, &format!("{w} in {what}"));
    let img = crate::store::parse_image(what, digest, &bytes, &read)?;
    let cfg = img.manifest.config();
    let cfg_d =
        Digest::parse(cfg.digest().as_ref()).map_err(|e| crate::store::bad_json(what, e))?;
    check_size(txn, &cfg_d, cfg.size(), &format!("config of {what}"))?;
    for (l, d) in img.manifest.layers().iter().zip(&img.layers) {
        check_size(txn, d, l.size(), &format!("layer {d} of {what}"))?;
    }
    Ok(img)
}

fn check_size(txn: &Txn<'_>, d: &Digest, want: u64, what: &str) -> crate::Result<()> {
    let have = txn.blob_len(d, what)?;
    if have != want {
        return Err(StoreError::SizeMismatch {
            what: what.to_string(),
            expected: want,
            actual: have,
        }
        .into());
    }
    Ok(())
}
