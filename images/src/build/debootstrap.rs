//! The base layer: debootstrap of a Debian suite, with the downloaded packages cached
//! as a tarball under `<root>/cache/debootstrap/<recipe hash>.tgz` so reruns skip the
//! downloads.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::BuildError;
use crate::digest::Digest;
use crate::error::IoContext;
use crate::fsutil;
use crate::recipe::Debootstrap;
use crate::store::Store;

/// Key of a debootstrap spec (what decides its packages).
pub(crate) fn key(d: &Debootstrap) -> Digest {
    Digest::of(&crate::canonical_json(d).unwrap_or_default())
}

fn common_args(d: &Debootstrap) -> Vec<String> {
    let mut a = vec![
        format!("--variant={}", d.variant),
        format!("--components={}", d.components.join(",")),
    ];
    if !d.include.is_empty() {
        a.push(format!("--include={}", d.include.join(",")));
    }
    a
}

fn run(cmd: &mut Command, on_line: &mut dyn FnMut(&str)) -> Result<(), BuildError> {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| BuildError::Debootstrap {
            command: shown.clone(),
            message: e.to_string(),
        })?;
    let mut tail = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            on_line(&line);
            tail.push(line);
            if tail.len() > 30 {
                tail.remove(0);
            }
        }
    }
    let st = child.wait().map_err(|e| BuildError::Debootstrap {
        command: shown.clone(),
        message: e.to_string(),
    })?;
    if !st.success() {
        return Err(BuildError::Debootstrap {
            command: shown,
            message: format!("{st}\n{}", tail.join("\n")),
        });
    }
    Ok(())
}

/// Runs debootstrap into `scratch/rootfs` and returns that path.
pub(crate) fn debootstrap(
    store: &Store,
    d: &Debootstrap,
    scratch: &Path,
    on_line: &mut dyn FnMut(&str),
) -> crate::Result<PathBuf> {
    let cache = store.cache_dir().join("debootstrap");
    fsutil::mkdir_p(&cache)?;
    let tarball = cache.join(format!("{}.tgz", key(d).hex()));
    if !tarball.exists() {
        let tmp = cache.join(format!(".{}.{}.tgz", key(d).hex(), std::process::id()));
        let work = scratch.join("make-tarball");
        fsutil::mkdir_p(&work)?;
        on_line(&format!(
            "debootstrap: downloading {} packages into {}",
            d.suite,
            tarball.display()
        ));
        let r = run(
            Command::new("debootstrap")
                .arg(format!("--make-tarball={}", tmp.display()))
                .args(common_args(d))
                .arg(&d.suite)
                .arg(&work)
                .arg(&d.mirror),
            on_line,
        );
        if let Err(e) = r {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        std::fs::rename(&tmp, &tarball).at("rename into", &tarball)?;
        fsutil::remove_tree(&work)?;
    }
    let rootfs = scratch.join("rootfs");
    fsutil::mkdir_p(&rootfs)?;
    run(
        Command::new("debootstrap")
            .arg(format!("--unpack-tarball={}", tarball.display()))
            .args(common_args(d))
            .arg(&d.suite)
            .arg(&rootfs)
            .arg(&d.mirror),
        on_line,
    )?;
    // apt sources: the suite, its updates and its security archive, same mirror host.
    let mut sources = format!("deb {} {} {}\n", d.mirror, d.suite, d.components.join(" "));
    if d.mirror.ends_with("/debian") {
        sources.push_str(&format!(
            "deb {} {}-updates {}\n",
            d.mirror,
            d.suite,
            d.components.join(" ")
        ));
        sources.push_str(&format!(
            "deb {}-security {}-security {}\n",
            d.mirror,
            d.suite,
            d.components.join(" ")
        ));
    }
    fsutil::write_atomic(&rootfs.join("etc/apt/sources.list"), sources.as_bytes())?;
    std::fs::set_permissions(
        rootfs.join("etc/apt/sources.list"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .at("chmod", rootfs.join("etc/apt/sources.list"))?;
    Ok(rootfs)
}
