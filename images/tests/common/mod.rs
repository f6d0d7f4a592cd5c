//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use warren_images::{ArchiveFormat, Digest, Store};

/// Builds tar streams with arbitrary (including hostile) entry names.
pub struct RawTar {
    b: tar::Builder<Vec<u8>>,
}

impl Default for RawTar {
    fn default() -> Self {
        Self::new()
    }
}

impl RawTar {
    pub fn new() -> Self {
        Self {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, name: &str, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_000_000_000);
        let g = h.as_gnu_mut().unwrap();
        g.name = [0; 100];
        g.name[..name.len()].copy_from_slice(name.as_bytes());
        h
    }

    pub fn file(mut self, name: &str, data: &[u8]) -> Self {
        self.file_mode(name, data, 0o644);
        self
    }

    pub fn file_mode(&mut self, name: &str, data: &[u8], mode: u32) {
        let mut h = Self::header(tar::EntryType::Regular, name, mode);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
    }

    pub fn dir(mut self, name: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Directory, name, 0o755);
        h.set_size(0);
        h.set_cksum();
        self.b.append(&h, std::io::empty()).unwrap();
        self
    }

    fn link(mut self, kind: tar::EntryType, name: &str, target: &str) -> Self {
        let mut h = Self::header(kind, name, 0o777);
        h.set_size(0);
        let g = h.as_gnu_mut().unwrap();
        g.linkname = [0; 100];
        g.linkname[..target.len()].copy_from_slice(target.as_bytes());
        h.set_cksum();
        self.b.append(&h, std::io::empty()).unwrap();
        self
    }

    pub fn symlink(self, name: &str, target: &str) -> Self {
        self.link(tar::EntryType::Symlink, name, target)
    }

    pub fn hardlink(self, name: &str, target: &str) -> Self {
        self.link(tar::EntryType::Link, name, target)
    }

    pub fn chardev(mut self, name: &str, major: u32, minor: u32) -> Self {
        let mut h = Self::header(tar::EntryType::Char, name, 0o666);
        h.set_size(0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        h.set_cksum();
        self.b.append(&h, std::io::empty()).unwrap();
        self
    }

    pub fn fifo(mut self, name: &str) -> Self {
        let mut h = Self::header(tar::EntryType::Fifo, name, 0o600);
        h.set_size(0);
        h.set_cksum();
        self.b.append(&h, std::io::empty()).unwrap();
        self
    }

    /// A file with PAX xattrs and owner.
    pub fn file_xattr(
        mut self,
        name: &str,
        data: &[u8],
        uid: u64,
        xattrs: &[(&str, &[u8])],
    ) -> Self {
        let exts: Vec<(String, Vec<u8>)> = xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.to_vec()))
            .collect();
        self.b
            .append_pax_extensions(exts.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .unwrap();
        let mut h = Self::header(tar::EntryType::Regular, name, 0o4755);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

/// A sorted listing of a tree: path, type, size and a content hash, not following
/// symlinks (for "the store is unchanged" and "nothing written outside" checks).
pub fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        let mut ents: Vec<_> = rd.map(|e| e.unwrap().path()).collect();
        ents.sort();
        for p in ents {
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if m.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &p, out);
            } else if m.file_type().is_symlink() {
                out.push(format!(
                    "{rel} -> {}",
                    std::fs::read_link(&p).unwrap().display()
                ));
            } else {
                let data = std::fs::read(&p).unwrap_or_default();
                out.push(format!("{rel} {} {:x}", m.len(), crc(&data)));
            }
        }
    }
    walk(root, root, &mut out);
    out
}

fn crc(d: &[u8]) -> u64 {
    d.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Prints a clear skip line and returns true when `tool` is missing.
pub fn skip_without(tool: &str, test: &str) -> bool {
    if have(tool) {
        return false;
    }
    eprintln!("SKIPPED {test}: {tool} is not installed (apt-get install -y {tool})");
    true
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tiny rootfs tarball: busybox (static) with sh, ls, cat, echo… symlinks.
pub fn busybox_rootfs_tar(dir: &Path) -> PathBuf {
    let root = dir.join("bb-root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    for d in ["etc", "tmp", "proc", "sys", "dev", "root"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for t in [
        "sh",
        "ls",
        "cat",
        "echo",
        "mkdir",
        "ln",
        "chmod",
        "rm",
        "touch",
        "true",
        "false",
        "sha256sum",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(t)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    let tarball = dir.join("busybox-rootfs.tar");
    run(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tarball)
        .arg("."));
    tarball
}

pub fn write(path: &Path, data: &[u8]) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(data).unwrap();
}

/// An OCI layout whose `multi:1` is an index: linux/arm64 → `other`, linux/amd64 → `host`.
pub fn multi_platform_layout(t: &Path) -> (PathBuf, Store) {
    let s = Store::open(t.join("src")).unwrap();
    for n in ["host", "other"] {
        let p = t.join(format!("{n}.tar"));
        std::fs::write(&p, RawTar::new().file("etc/tag", n.as_bytes()).finish()).unwrap();
        s.import_rootfs(&p, n).unwrap();
    }
    let ar = t.join("both.tar");
    s.export_archive(&["host", "other"], &ar, ArchiveFormat::Oci)
        .unwrap();
    let dir = t.join("multi");
    std::fs::create_dir(&dir).unwrap();
    run(Command::new("tar").arg("-C").arg(&dir).arg("-xf").arg(&ar));
    let desc = |n: &str, arch: &str| {
        let img = s.image(n).unwrap();
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": img.digest.as_str(),
            "size": s.read_blob(&img.digest).unwrap().len(),
            "platform": {"os": "linux", "architecture": arch},
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [desc("other", "arm64"), desc("host", "amd64")],
    });
    let bytes = serde_json::to_vec(&index).unwrap();
    let d = Digest::of(&bytes);
    std::fs::write(dir.join("blobs/sha256").join(d.hex()), &bytes).unwrap();
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": d.as_str(),
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi:1"},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    (dir, s)
}
