//! Export of images to an OCI archive or a docker-archive.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::Path;

use serde_json::json;

use crate::digest::Digest;
use crate::error::{IoContext, IoError};
use crate::layer::Compression;
use crate::store::{REF_NAME, Store, bad_json};

/// Which archive format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// A tar of an OCI image layout (`oci-archive:` in skopeo and podman).
    Oci,
    /// `docker save` format: `manifest.json`, `<config>.json`, `<diffid>/layer.tar`.
    Docker,
}

fn header(size: u64, dir: bool) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

impl Store {
    /// Writes the images `names` to the archive `dest` (replaced atomically).
    pub fn export_archive(
        &self,
        names: &[&str],
        dest: &Path,
        format: ArchiveFormat,
    ) -> crate::Result<()> {
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".export-")
            .tempfile_in(dir)
            .at("create temp file in", dir)?;
        let w =
            BufWriter::with_capacity(1 << 20, tmp.as_file().try_clone().at("open", tmp.path())?);
        let mut b = tar::Builder::new(w);
        let err = |e: io::Error| IoError::new("write", dest, e);
        match format {
            ArchiveFormat::Oci => self.write_oci(names, &mut b).map_err(|e| match e {
                crate::Error::Io(i) => crate::Error::Io(i),
                other => other,
            })?,
            ArchiveFormat::Docker => self.write_docker(names, &mut b)?,
        }
        let mut w = b.into_inner().map_err(err)?;
        w.flush().map_err(err)?;
        drop(w);
        tmp.as_file().sync_all().at("fsync", tmp.path())?;
        tmp.persist(dest)
            .map_err(|e| IoError::new("rename into", dest, e.error))?;
        Ok(())
    }

    fn append_file<W: Write>(
        &self,
        b: &mut tar::Builder<W>,
        name: &str,
        path: &Path,
    ) -> crate::Result<()> {
        let f = File::open(path).at("open", path)?;
        let len = f.metadata().at("stat", path)?.len();
        b.append_data(&mut header(len, false), name, BufReader::new(f))
            .at("write archive entry for", path)?;
        Ok(())
    }

    fn write_oci<W: Write>(&self, names: &[&str], b: &mut tar::Builder<W>) -> crate::Result<()> {
        let mut blobs: BTreeSet<Digest> = BTreeSet::new();
        let mut manifests = Vec::new();
        for n in names {
            let e = self.entry(n)?;
            let img = self.image(n)?;
            blobs.insert(img.digest.clone());
            blobs.insert(
                Digest::parse(img.manifest.config().digest().as_ref())
                    .map_err(|x| bad_json(n, x))?,
            );
            blobs.extend(img.layers.iter().cloned());
            manifests.push(json!({
                "mediaType": e.media_type,
                "digest": e.digest,
                "size": e.size,
                "annotations": { REF_NAME: img.name },
            }));
        }
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        b.append_data(
            &mut header(layout.len() as u64, false),
            "oci-layout",
            &layout[..],
        )
        .at("write", "oci-layout")?;
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        let index = serde_json::to_vec(&index).map_err(|e| bad_json("index.json", e))?;
        b.append_data(
            &mut header(index.len() as u64, false),
            "index.json",
            index.as_slice(),
        )
        .at("write", "index.json")?;
        for d in ["blobs/", "blobs/sha256/"] {
            b.append_data(&mut header(0, true), d, io::empty())
                .at("write", d)?;
        }
        for d in &blobs {
            self.append_file(b, &format!("blobs/sha256/{}", d.hex()), &self.blob_path(d))?;
        }
        Ok(())
    }

    fn write_docker<W: Write>(&self, names: &[&str], b: &mut tar::Builder<W>) -> crate::Result<()> {
        let mut manifest = Vec::new();
        let mut written: BTreeSet<String> = BTreeSet::new();
        for n in names {
            let img = self.image(n)?;
            let cfg = Digest::parse(img.manifest.config().digest().as_ref())
                .map_err(|x| bad_json(n, x))?;
            let cfg_name = format!("{}.json", cfg.hex());
            if written.insert(cfg_name.clone()) {
                self.append_file(b, &cfg_name, &self.blob_path(&cfg))?;
            }
            let mut layers = Vec::new();
            for (blob, diff) in img.layers.iter().zip(&img.diff_ids) {
                let name = format!("{}/layer.tar", diff.hex());
                if written.insert(name.clone()) {
                    // docker-archive layers are plain tars: decompress through a temp file
                    // (a tar entry needs its size up front).
                    let src = self.blob_path(blob);
                    let f = File::open(&src).at("open", &src)?;
                    let (_, mut dec) =
                        Compression::auto_decoder(BufReader::new(f)).at("decompress", &src)?;
                    let mut t = tempfile::tempfile_in(self.tmp_dir())
                        .at("create temp file in", self.tmp_dir())?;
                    io::copy(&mut dec, &mut t).at("decompress", &src)?;
                    let len = io::Seek::stream_position(&mut t).at("seek", &src)?;
                    io::Seek::rewind(&mut t).at("seek", &src)?;
                    b.append_data(
                        &mut header(0, true),
                        format!("{}/", diff.hex()),
                        io::empty(),
                    )
                    .at("write", &src)?;
                    b.append_data(&mut header(len, false), &name, BufReader::new(t))
                        .at("write", &src)?;
                }
                layers.push(name);
            }
            manifest.push(json!({ "Config": cfg_name, "RepoTags": [img.name], "Layers": layers }));
        }
        let m = serde_json::to_vec(&manifest).map_err(|e| bad_json("manifest.json", e))?;
        b.append_data(
            &mut header(m.len() as u64, false),
            "manifest.json",
            m.as_slice(),
        )
        .at("write", "manifest.json")?;
        Ok(())
    }
}
