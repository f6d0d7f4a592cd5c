//! Download steps: fetched on the host (never inside the build container), checked
//! against the recipe's sha256, then copied or extracted into a staging tree that
//! becomes the layer.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::BuildError;
use crate::digest::{Digest, HashWriter};
use crate::error::IoContext;
use crate::fsutil;
use crate::layer::{Compression, UnpackMode, unpack};
use crate::recipe::Download;

fn fetch(url: &str, out: &Path) -> Result<Digest, String> {
    let f = File::create(out).map_err(|e| format!("create {}: {e}", out.display()))?;
    let mut w = HashWriter::new(f);
    if let Some(p) = url.strip_prefix("file://") {
        let mut src = File::open(p).map_err(|e| format!("open {p}: {e}"))?;
        std::io::copy(&mut src, &mut w).map_err(|e| format!("copy {p}: {e}"))?;
    } else {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("start async runtime: {e}"))?;
        rt.block_on(async {
            let client = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(15))
                .timeout(Duration::from_secs(1800))
                .build()
                .map_err(|e| e.to_string())?;
            let mut resp = client.get(url).send().await.map_err(|e| e.to_string())?;
            if !resp.status().is_success() {
                return Err(format!("HTTP {}", resp.status()));
            }
            while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
                w.write_all(&chunk)
                    .map_err(|e| format!("write {}: {e}", out.display()))?;
            }
            Ok::<(), String>(())
        })?;
    }
    let (f, d, _) = w.finish();
    f.sync_all()
        .map_err(|e| format!("fsync {}: {e}", out.display()))?;
    Ok(d)
}

/// Fetches, checks and stages a download under `scratch/root`; returns that root.
pub(crate) fn stage(
    d: &Download,
    label: &str,
    recipe: &str,
    scratch: &Path,
) -> crate::Result<PathBuf> {
    let err = |message: String| BuildError::Download {
        recipe: recipe.to_string(),
        step: label.to_string(),
        url: d.url.clone(),
        message,
    };
    fsutil::mkdir_p(scratch)?;
    let file = scratch.join("download");
    let got = fetch(&d.url, &file).map_err(err)?;
    let want = format!("sha256:{}", d.sha256);
    if got.as_str() != want {
        return Err(err(format!(
            "sha256 mismatch: recipe says {want}, file has {got}"
        ))
        .into());
    }
    let root = scratch.join("root");
    let dest_rel: PathBuf = d
        .dest
        .trim_start_matches('/')
        .split('/')
        .filter(|c| !c.is_empty())
        .collect();
    let dest = root.join(&dest_rel);
    let parent = dest.parent().unwrap_or(&root).to_path_buf();
    std::fs::create_dir_all(&parent).at("create directory", &parent)?;
    let mut p = parent.as_path();
    while p.starts_with(&root) {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .at("chmod", p)?;
        match p.parent() {
            Some(pp) => p = pp,
            None => break,
        }
    }
    if d.extract {
        let x = scratch.join("extract");
        fsutil::mkdir_p(&x)?;
        std::fs::set_permissions(&x, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .at("chmod", &x)?;
        let f = File::open(&file).at("open", &file)?;
        let (_, dec) = Compression::auto_decoder(BufReader::new(f))
            .map_err(|e| err(format!("decompress: {e}")))?;
        unpack(dec, &x, UnpackMode::Plain).map_err(|e| err(e.to_string()))?;
        let mut top = x.clone();
        for _ in 0..d.strip_components {
            let entries: Vec<_> = std::fs::read_dir(&top)
                .at("read directory", &top)?
                .filter_map(Result::ok)
                .collect();
            match entries.as_slice() {
                [one] if one.file_type().is_ok_and(|t| t.is_dir()) => top = one.path(),
                _ => {
                    return Err(err(format!(
                        "strip_components: {} does not hold exactly one directory",
                        top.display()
                    ))
                    .into());
                }
            }
        }
        std::fs::rename(&top, &dest).at("rename into", &dest)?;
    } else {
        std::fs::rename(&file, &dest).at("rename into", &dest)?;
        let mode = d.mode.unwrap_or(0o644);
        std::fs::set_permissions(&dest, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .at("chmod", &dest)?;
    }
    Ok(root)
}
