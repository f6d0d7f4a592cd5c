//! Layer unpacking: file types and metadata, whiteouts, and hostile tarballs.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use common::{RawTar, listing};
use warren_images::layer::{LayerError, UnpackMode, unpack};

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let out = std::process::Command::new("getfattr")
        .args(["--absolute-names", "--only-values", "-n", name])
        .arg(p)
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

#[test]
fn unpacks_types_owners_modes_mtimes_xattrs() {
    let t = tempfile::tempdir().unwrap();
    let tar = RawTar::new()
        .dir("./usr/")
        .dir("usr/bin/")
        .file("usr/bin/tool", b"#!/bin/sh\n")
        .file_xattr("usr/bin/suid", b"x", 1234, &[("user.warren", b"v1")])
        .symlink("usr/bin/alias", "tool")
        .hardlink("usr/bin/tool2", "usr/bin/tool")
        .chardev("dev-null", 1, 3)
        .fifo("pipe")
        .file("implicit/parent/f", b"deep")
        .finish();
    let stats = unpack(&tar[..], t.path(), UnpackMode::Overlay).unwrap();
    assert_eq!(stats.entries, 9);
    let p = t.path();
    assert_eq!(
        std::fs::read(p.join("usr/bin/tool")).unwrap(),
        b"#!/bin/sh\n"
    );
    let m = std::fs::metadata(p.join("usr/bin/tool")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o644);
    assert_eq!(m.mtime(), 1_000_000_000);
    let s = std::fs::metadata(p.join("usr/bin/suid")).unwrap();
    assert_eq!((s.uid(), s.gid(), s.mode() & 0o7777), (1234, 1234, 0o4755));
    if common::have("getfattr") {
        assert_eq!(
            xattr(&p.join("usr/bin/suid"), "user.warren").as_deref(),
            Some(&b"v1"[..])
        );
    }
    assert_eq!(
        std::fs::read_link(p.join("usr/bin/alias")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(
        std::fs::metadata(p.join("usr/bin/tool2")).unwrap().ino(),
        m.ino()
    );
    let d = std::fs::symlink_metadata(p.join("dev-null")).unwrap();
    assert!(d.file_type().is_char_device());
    assert_eq!(d.rdev(), nix::sys::stat::makedev(1, 3));
    assert!(
        std::fs::symlink_metadata(p.join("pipe"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(std::fs::read(p.join("implicit/parent/f")).unwrap(), b"deep");
    assert_eq!(
        std::fs::metadata(p.join("implicit"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    assert_eq!(
        std::fs::metadata(p.join("usr/bin")).unwrap().mtime(),
        1_000_000_000,
        "dir mtime set last"
    );
}

#[test]
fn overlay_mode_turns_whiteouts_into_overlay_form() {
    let t = tempfile::tempdir().unwrap();
    let tar = RawTar::new()
        .dir("etc/")
        .file("etc/.wh.gone", b"")
        .dir("opq/")
        .file("opq/.wh..wh..opq", b"")
        .file("opq/new", b"n")
        .finish();
    unpack(&tar[..], t.path(), UnpackMode::Overlay).unwrap();
    let wh = std::fs::symlink_metadata(t.path().join("etc/gone")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(!t.path().join("etc/.wh.gone").exists());
    assert!(!t.path().join("opq/.wh..wh..opq").exists());
    if common::have("getfattr") {
        assert_eq!(
            xattr(&t.path().join("opq"), "trusted.overlay.opaque").as_deref(),
            Some(&b"y"[..])
        );
    }
    assert!(t.path().join("opq/new").exists());
}

#[test]
fn apply_mode_deletes_lower_content_only() {
    let t = tempfile::tempdir().unwrap();
    let lower = RawTar::new()
        .file("a", b"a")
        .dir("d/")
        .file("d/old", b"o")
        .dir("keep/")
        .finish();
    unpack(&lower[..], t.path(), UnpackMode::Apply).unwrap();
    let upper = RawTar::new()
        .file(".wh.a", b"")
        .dir("d/")
        .file("d/new", b"n")
        .file("d/.wh..wh..opq", b"")
        .finish();
    unpack(&upper[..], t.path(), UnpackMode::Apply).unwrap();
    assert!(!t.path().join("a").exists());
    assert!(!t.path().join("d/old").exists());
    assert!(
        t.path().join("d/new").exists(),
        "opaque after the new entry must keep it"
    );
    assert!(t.path().join("keep").is_dir());
}

/// Unpacks `tar` into `root/dest` next to a sentinel directory `root/outside`, expects a
/// refusal naming `entry`, and checks nothing outside `dest` changed.
fn assert_refused(make: impl Fn(&str) -> Vec<u8>, entry: &str) {
    let t = tempfile::tempdir().unwrap();
    let dest = t.path().join("dest");
    let outside = t.path().join("outside");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), b"s").unwrap();
    let before = listing(t.path());
    let before_outside = listing(&outside);
    let _ = before;
    let tar = make(outside.to_str().unwrap());
    let err = unpack(&tar[..], &dest, UnpackMode::Overlay).unwrap_err();
    match &err {
        LayerError::Refused { entry: e, .. } => assert_eq!(e, entry, "{err}"),
        other => panic!("expected a refusal for {entry}, got {other}"),
    }
    assert!(err.to_string().contains(entry));
    assert_eq!(
        listing(&outside),
        before_outside,
        "something was written outside"
    );
    let escaped: Vec<_> = listing(t.path())
        .into_iter()
        .filter(|l| !l.starts_with("dest") && !l.starts_with("outside"))
        .collect();
    assert!(escaped.is_empty(), "written next to dest: {escaped:?}");
    assert!(!Path::new("/etc/warren-evil").exists());
}

#[test]
fn refuses_dotdot() {
    assert_refused(
        |_out| {
            RawTar::new()
                .file("ok", b"")
                .file("../outside/evil", b"x")
                .finish()
        },
        "../outside/evil",
    );
    assert_refused(
        |_out| RawTar::new().file("a/../../evil", b"x").finish(),
        "a/../../evil",
    );
}

#[test]
fn refuses_absolute_paths() {
    assert_refused(
        |_out| RawTar::new().file("/etc/warren-evil", b"x").finish(),
        "/etc/warren-evil",
    );
}

#[test]
fn refuses_writes_through_escaping_symlinks() {
    // An absolute symlink to the host dir, then a file through it.
    assert_refused(
        |_out| {
            RawTar::new()
                .symlink("evil", _out)
                .file("evil/x", b"x")
                .finish()
        },
        "evil/x",
    );
    assert_refused(
        |_out| {
            RawTar::new()
                .symlink("up", "../outside")
                .file("up/x", b"x")
                .finish()
        },
        "up/x",
    );
    assert_refused(
        |_out| {
            RawTar::new()
                .dir("a/")
                .symlink("a/b", "../../outside")
                .dir("a/b/c/")
                .finish()
        },
        "a/b/c/",
    );
}

#[test]
fn refuses_hardlinks_leaving_the_destination() {
    assert_refused(
        |_out| RawTar::new().hardlink("h", "../outside/secret").finish(),
        "h",
    );
    assert_refused(
        |_out| {
            RawTar::new()
                .symlink("s", _out)
                .hardlink("h", "s/secret")
                .finish()
        },
        "h",
    );
    assert_refused(
        |_out| RawTar::new().hardlink("h", "/etc/passwd").finish(),
        "h",
    );
}

#[test]
fn in_root_symlinks_are_followed() {
    let t = tempfile::tempdir().unwrap();
    let tar = RawTar::new()
        .dir("usr/")
        .dir("usr/bin/")
        .symlink("bin", "usr/bin")
        .file("bin/x", b"x")
        .finish();
    unpack(&tar[..], t.path(), UnpackMode::Apply).unwrap();
    assert_eq!(std::fs::read(t.path().join("usr/bin/x")).unwrap(), b"x");
}

#[test]
fn truncated_stream_is_an_archive_error() {
    let t = tempfile::tempdir().unwrap();
    let mut tar = RawTar::new().file("big", &vec![7u8; 10_000]).finish();
    tar.truncate(3000);
    let err = unpack(&tar[..], t.path(), UnpackMode::Overlay).unwrap_err();
    assert!(matches!(err, LayerError::Archive(_)), "{err}");
}
