//! Store round trips, rootfs, gc, concurrent writers, bad archives.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{RawTar, busybox_rootfs_tar, listing, run};
use warren_images::{ArchiveFormat, Digest, ImportOptions, RootfsOptions, Store};

/// Every blob hashes to its name and every named image is complete.
fn fsck(s: &Store) {
    let blobs = s.layout_dir().join("blobs/sha256");
    for e in std::fs::read_dir(&blobs).unwrap() {
        let e = e.unwrap();
        let data = std::fs::read(e.path()).unwrap();
        assert_eq!(
            Digest::of(&data).hex(),
            e.file_name().to_str().unwrap(),
            "corrupt blob"
        );
    }
    for i in s.list().unwrap() {
        let img = s.image(&i.name).unwrap();
        for l in &img.layers {
            assert!(s.blob_path(l).exists(), "{} misses {l}", i.name);
        }
    }
}

fn small_rootfs(dir: &Path, tag: &str) -> std::path::PathBuf {
    let p = dir.join(format!("{tag}.tar"));
    std::fs::write(
        &p,
        RawTar::new()
            .dir("etc/")
            .file("etc/tag", tag.as_bytes())
            .file("shared", b"same in all")
            .finish(),
    )
    .unwrap();
    p
}

#[test]
fn import_rootfs_list_inspect_tag_remove() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path().join("store")).unwrap();
    let tb = small_rootfs(t.path(), "one");
    let info = s.import_rootfs(&tb, "test/one").unwrap();
    assert_eq!(info.name, "test/one:latest");
    let img = s.image("test/one").unwrap();
    assert_eq!(img.layers.len(), 1);
    assert_eq!(img.config.os().to_string(), "linux");
    s.tag("test/one", "test/alias:v2").unwrap();
    let names: Vec<_> = s.list().unwrap().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["test/alias:v2", "test/one:latest"]);
    s.remove("test/one").unwrap();
    assert!(s.image("test/one").is_err());
    assert!(
        s.remove("test/one")
            .unwrap_err()
            .to_string()
            .contains("test/one")
    );
    fsck(&s);
    // index.json carries our format version and ref.name annotations.
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.layout_dir().join("index.json")).unwrap()).unwrap();
    assert_eq!(
        idx["annotations"][warren_images::STORE_VERSION_ANNOTATION],
        "1"
    );
    assert_eq!(
        idx["manifests"][0]["annotations"][warren_images::REF_NAME],
        "test/alias:v2"
    );
}

#[test]
fn rootfs_overlay_and_single_layer_readonly() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path().join("store")).unwrap();
    s.import_rootfs(&busybox_rootfs_tar(t.path()), "bb")
        .unwrap();
    let r = s
        .create_rootfs("bb", "c1", RootfsOptions::default())
        .unwrap();
    let cleanup = scopeguard(&s, "c1");
    assert!(r.merged.join("bin/busybox").exists());
    std::fs::write(r.merged.join("etc/new"), b"x").unwrap();
    assert!(
        r.upper.as_ref().unwrap().join("etc/new").exists(),
        "writes land in the upper dir"
    );
    let layer = s.unpack("bb").unwrap().remove(0).path;
    assert!(
        !layer.join("etc/new").exists(),
        "the shared layer stays untouched"
    );
    assert!(
        s.create_rootfs("bb", "c1", RootfsOptions::default())
            .is_err()
    );
    drop(cleanup);
    assert!(!s.root().join("containers/c1").exists());

    let r = s
        .create_rootfs(
            "bb",
            "ro",
            RootfsOptions {
                readonly: true,
                ..RootfsOptions::default()
            },
        )
        .unwrap();
    let _g = scopeguard(&s, "ro");
    assert!(r.merged.join("bin/busybox").exists());
    assert!(
        std::fs::write(r.merged.join("etc/new"), b"x").is_err(),
        "read-only bind"
    );
}

/// A volatile rootfs (for `--rm` containers) is an overlay mounted with `volatile`, works
/// like any other, and its removal leaves nothing (overlayfs adds `work/incompat/volatile`).
#[test]
fn volatile_rootfs_mounts_with_volatile_and_is_removed_whole() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path().join("store")).unwrap();
    s.import_rootfs(&busybox_rootfs_tar(t.path()), "bb")
        .unwrap();
    let r = s
        .create_rootfs(
            "bb",
            "v1",
            RootfsOptions {
                volatile: true,
                ..RootfsOptions::default()
            },
        )
        .unwrap();
    let cleanup = scopeguard(&s, "v1");
    let merged = r.merged.to_string_lossy().into_owned();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(merged.as_str()))
        .unwrap_or_else(|| panic!("{merged} not in mountinfo"));
    assert!(line.contains(" - overlay "), "{line}");
    assert!(
        line.contains("volatile"),
        "mounted without volatile: {line}"
    );
    std::fs::write(r.merged.join("etc/new"), b"x").unwrap();
    assert!(r.upper.as_ref().unwrap().join("etc/new").exists());
    assert!(r.dir.join("rootfs.json").is_file(), "the gc record");
    drop(cleanup);
    assert!(!s.root().join("containers/v1").exists());
    assert!(s.rootfs_ids().unwrap().is_empty());
}

struct Guard<'a>(&'a Store, &'static str);
impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.remove_rootfs(self.1).unwrap();
    }
}
fn scopeguard<'a>(s: &'a Store, id: &'static str) -> Guard<'a> {
    Guard(s, id)
}

#[test]
fn export_import_round_trips_oci_and_docker() {
    let t = tempfile::tempdir().unwrap();
    let a = Store::open(t.path().join("a")).unwrap();
    a.import_rootfs(&busybox_rootfs_tar(t.path()), "bb:1")
        .unwrap();
    a.import_rootfs(&small_rootfs(t.path(), "x"), "x:1")
        .unwrap();
    let want = a.image("bb:1").unwrap();
    let oci = t.path().join("out.oci.tar");
    a.export_archive(&["bb:1", "x:1"], &oci, ArchiveFormat::Oci)
        .unwrap();
    let b = Store::open(t.path().join("b")).unwrap();
    let got = b.import_archive(&oci, &ImportOptions::default()).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        b.image("bb:1").unwrap().digest,
        want.digest,
        "OCI round trip keeps the manifest digest"
    );
    fsck(&b);

    let dock = t.path().join("out.docker.tar");
    a.export_archive(&["bb:1"], &dock, ArchiveFormat::Docker)
        .unwrap();
    let c = Store::open(t.path().join("c")).unwrap();
    c.import_archive(&dock, &ImportOptions::default()).unwrap();
    let img = c.image("bb:1").unwrap();
    assert_eq!(img.diff_ids, want.diff_ids);
    assert!(
        c.unpack("bb:1").unwrap()[0]
            .path
            .join("bin/busybox")
            .exists()
    );
    fsck(&c);
}

#[test]
fn gc_removes_only_unreferenced() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path().join("s")).unwrap();
    s.import_rootfs(&small_rootfs(t.path(), "keep"), "keep")
        .unwrap();
    s.import_rootfs(&small_rootfs(t.path(), "drop"), "drop")
        .unwrap();
    let keep = s.image("keep").unwrap();
    let dropped = s.image("drop").unwrap();
    s.unpack("keep").unwrap();
    s.unpack("drop").unwrap();
    s.remove("drop").unwrap();
    let r = s.gc().unwrap();
    assert!(r.blobs_removed.contains(&dropped.digest));
    assert!(r.blobs_removed.contains(&dropped.layers[0]));
    assert_eq!(r.layers_removed, vec![dropped.diff_ids[0].clone()]);
    assert!(s.blob_path(&keep.layers[0]).exists());
    assert!(s.layer_cache().contains(&keep.diff_ids[0]));
    assert!(
        s.gc().unwrap().blobs_removed.is_empty(),
        "second gc is a no-op"
    );
    fsck(&s);
}

#[test]
fn gc_keeps_layers_of_mounted_containers() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path().join("s")).unwrap();
    s.import_rootfs(&busybox_rootfs_tar(t.path()), "bb")
        .unwrap();
    let _r = s
        .create_rootfs("bb", "pinned", RootfsOptions::default())
        .unwrap();
    let _g = scopeguard(&s, "pinned");
    let diff = s.image("bb").unwrap().diff_ids[0].clone();
    s.remove("bb").unwrap();
    let r = s.gc().unwrap();
    assert!(r.layers_removed.is_empty());
    assert!(s.layer_cache().contains(&diff));
}

#[test]
fn concurrent_threads_import_and_gc() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("s");
    Store::open(&root).unwrap();
    let tars: Vec<_> = (0..6)
        .map(|i| small_rootfs(t.path(), &format!("t{i}")))
        .collect();
    std::thread::scope(|sc| {
        for (i, tb) in tars.iter().enumerate() {
            let root = root.clone();
            sc.spawn(move || {
                let s = Store::open(&root).unwrap();
                for round in 0..3 {
                    s.import_rootfs(tb, &format!("t{i}:{round}")).unwrap();
                    s.unpack(&format!("t{i}:{round}")).unwrap();
                }
            });
        }
        let root = root.clone();
        sc.spawn(move || {
            let s = Store::open(&root).unwrap();
            for _ in 0..5 {
                s.gc().unwrap();
            }
        });
    });
    let s = Store::open(&root).unwrap();
    assert_eq!(s.list().unwrap().len(), 18);
    s.gc().unwrap();
    fsck(&s);
    for i in s.list().unwrap() {
        s.unpack(&i.name).unwrap();
    }
}

/// Not a test on its own: the body of a child process for the multi-process test.
#[test]
#[ignore = "run by concurrent_processes_import"]
fn child_importer() {
    let Ok(root) = std::env::var("WARREN_TEST_STORE") else {
        return;
    };
    let archive = std::env::var("WARREN_TEST_ARCHIVE").unwrap();
    let name = std::env::var("WARREN_TEST_NAME").unwrap();
    let s = Store::open(&root).unwrap();
    for i in 0..3 {
        s.import_archive(
            Path::new(&archive),
            &ImportOptions {
                name: Some(format!("{name}:{i}")),
            },
        )
        .unwrap();
    }
}

#[test]
fn concurrent_processes_import() {
    let t = tempfile::tempdir().unwrap();
    let src = Store::open(t.path().join("src")).unwrap();
    src.import_rootfs(&busybox_rootfs_tar(t.path()), "bb")
        .unwrap();
    let archive = t.path().join("bb.tar");
    src.export_archive(&["bb"], &archive, ArchiveFormat::Oci)
        .unwrap();
    let root = t.path().join("dst");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|i| {
            Command::new(&exe)
                .args(["--ignored", "--exact", "child_importer", "--nocapture"])
                .env("WARREN_TEST_STORE", &root)
                .env("WARREN_TEST_ARCHIVE", &archive)
                .env("WARREN_TEST_NAME", format!("p{i}"))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let s = Store::open(&root).unwrap();
    for _ in 0..3 {
        s.gc().unwrap();
    }
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(s.list().unwrap().len(), 12);
    fsck(&s);
}

/// Exports `bb` as an OCI layout directory the test can tamper with.
fn layout_dir(t: &Path) -> (std::path::PathBuf, Store) {
    let s = Store::open(t.join("store")).unwrap();
    s.import_rootfs(&busybox_rootfs_tar(t), "bb").unwrap();
    let ar = t.join("good.tar");
    s.export_archive(&["bb"], &ar, ArchiveFormat::Oci).unwrap();
    let dir = t.join("layout");
    std::fs::create_dir(&dir).unwrap();
    run(Command::new("tar").arg("-C").arg(&dir).arg("-xf").arg(&ar));
    (dir, s)
}

fn tar_dir(dir: &Path, out: &Path) {
    run(Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .arg("."));
}

fn assert_import_fails_unchanged(s: &Store, archive: &Path, needle: &str) {
    let before = listing(s.root());
    let err = s
        .import_archive(
            archive,
            &ImportOptions {
                name: Some("bad".into()),
            },
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains(needle), "error {err:?} should name {needle:?}");
    assert_eq!(
        listing(s.root()),
        before,
        "the store changed after a failed import"
    );
}

#[test]
fn corrupt_blob_is_refused_and_store_unchanged() {
    let t = tempfile::tempdir().unwrap();
    let (dir, s) = layout_dir(t.path());
    let layer = s.image("bb").unwrap().layers[0].clone();
    let p = dir.join("blobs/sha256").join(layer.hex());
    let mut data = std::fs::read(&p).unwrap();
    let n = data.len() / 2;
    data[n] ^= 0xff;
    std::fs::write(&p, data).unwrap();
    let ar = t.path().join("corrupt.tar");
    tar_dir(&dir, &ar);
    assert_import_fails_unchanged(&s, &ar, layer.hex());
    let err = s
        .import_archive(&ar, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("digest mismatch"), "{err}");
}

#[test]
fn truncated_archive_is_refused_and_store_unchanged() {
    let t = tempfile::tempdir().unwrap();
    let (_, s) = layout_dir(t.path());
    let good = std::fs::read(t.path().join("good.tar")).unwrap();
    let ar = t.path().join("trunc.tar");
    std::fs::write(&ar, &good[..good.len() / 2]).unwrap();
    assert_import_fails_unchanged(&s, &ar, "trunc.tar");
}

#[test]
fn unknown_media_type_is_refused_and_store_unchanged() {
    let t = tempfile::tempdir().unwrap();
    let (dir, s) = layout_dir(t.path());
    let img = s.image("bb").unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&s.read_blob(&img.digest).unwrap()).unwrap();
    m["layers"][0]["mediaType"] = "application/x-warren-mystery".into();
    let bytes = serde_json::to_vec(&m).unwrap();
    let d = Digest::of(&bytes);
    std::fs::write(dir.join("blobs/sha256").join(d.hex()), &bytes).unwrap();
    let mut idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    idx["manifests"][0]["digest"] = d.as_str().into();
    idx["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
    let ar = t.path().join("mystery.tar");
    tar_dir(&dir, &ar);
    assert_import_fails_unchanged(&s, &ar, "application/x-warren-mystery");
}

#[test]
fn not_an_archive_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path().join("s")).unwrap();
    let ar = t.path().join("rootfs.tar");
    std::fs::write(&ar, RawTar::new().file("etc/x", b"x").finish()).unwrap();
    assert_import_fails_unchanged(&s, &ar, "not an OCI archive");
}

#[test]
fn one_name_for_a_multi_image_archive_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let a = Store::open(t.path().join("a")).unwrap();
    a.import_rootfs(&small_rootfs(t.path(), "x"), "x:1")
        .unwrap();
    a.import_rootfs(&small_rootfs(t.path(), "y"), "y:1")
        .unwrap();
    let ar = t.path().join("two.tar");
    a.export_archive(&["x:1", "y:1"], &ar, ArchiveFormat::Oci)
        .unwrap();
    let b = Store::open(t.path().join("b")).unwrap();
    assert_import_fails_unchanged(&b, &ar, "holds 2 images");
}

#[test]
fn gzip_zstd_and_plain_layers_import_and_unpack() {
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path().join("s")).unwrap();
    let plain = RawTar::new()
        .dir("etc/")
        .file("etc/os", b"compressed")
        .finish();
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, &plain).unwrap();
        e.finish().unwrap()
    };
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    for (name, data, mt) in [
        ("plain", &plain, "application/vnd.oci.image.layer.v1.tar"),
        ("gz", &gz, "application/vnd.oci.image.layer.v1.tar+gzip"),
        ("zst", &zst, "application/vnd.oci.image.layer.v1.tar+zstd"),
    ] {
        let p = t.path().join(format!("{name}.tar"));
        std::fs::write(&p, data).unwrap();
        s.import_rootfs(&p, name).unwrap();
        let img = s.image(name).unwrap();
        assert_eq!(img.manifest.layers()[0].media_type().to_string(), mt);
        let dirs = s.unpack(name).unwrap();
        assert_eq!(
            std::fs::read(dirs[0].path.join("etc/os")).unwrap(),
            b"compressed"
        );
    }
    // Same content, same diff id: one unpacked directory serves all three.
    let ids: std::collections::BTreeSet<_> = ["plain", "gz", "zst"]
        .iter()
        .map(|n| s.image(n).unwrap().diff_ids[0].clone())
        .collect();
    assert_eq!(ids.len(), 1);
}

#[test]
fn multi_platform_archive_imports_the_host_platform() {
    let t = tempfile::tempdir().unwrap();
    let (dir, src) = common::multi_platform_layout(t.path());
    let ar = t.path().join("multi.tar");
    tar_dir(&dir, &ar);
    let s = Store::open(t.path().join("dst")).unwrap();
    let got = s.import_archive(&ar, &ImportOptions::default()).unwrap();
    assert_eq!(got[0].name, "multi:1");
    assert_eq!(
        s.image("multi:1").unwrap().digest,
        src.image("host").unwrap().digest
    );
}
