//! Interoperability with skopeo and podman: archives both ways, and the store's layout
//! read directly by skopeo.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{busybox_rootfs_tar, run, skip_without};
use warren_images::{ArchiveFormat, ImportOptions, Store};

#[test]
fn skopeo_round_trips_oci_archives_and_reads_the_store() {
    if skip_without(
        "skopeo",
        "skopeo_round_trips_oci_archives_and_reads_the_store",
    ) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let s = Store::open(t.path().join("store")).unwrap();
    s.import_rootfs(&busybox_rootfs_tar(t.path()), "warren/bb:1")
        .unwrap();
    let want = s.image("warren/bb:1").unwrap();

    // warren → oci-archive → skopeo → oci dir → skopeo → oci-archive → warren
    let a = t.path().join("a.tar");
    s.export_archive(&["warren/bb:1"], &a, ArchiveFormat::Oci)
        .unwrap();
    let dir = t.path().join("oci-dir");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci-archive:{}:warren/bb:1", a.display()))
        .arg(format!("oci:{}:bb", dir.display())));
    let b = t.path().join("b.tar");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}:bb", dir.display()))
        .arg(format!("oci-archive:{}:skopeo/bb:2", b.display())));
    let s2 = Store::open(t.path().join("store2")).unwrap();
    let got = s2.import_archive(&b, &ImportOptions::default()).unwrap();
    assert_eq!(got[0].name, "skopeo/bb:2");
    assert_eq!(s2.image("skopeo/bb:2").unwrap().diff_ids, want.diff_ids);
    assert!(
        s2.unpack("skopeo/bb:2").unwrap()[0]
            .path
            .join("bin/busybox")
            .exists()
    );

    // skopeo reads the store's layout in place, by the ref.name annotation.
    let out = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:warren/bb:1", s.layout_dir().display())));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(v["Digest"], want.digest.as_str());
}

struct PodmanImage(&'static str);
impl Drop for PodmanImage {
    fn drop(&mut self) {
        let _ = Command::new("podman").args(["rmi", "-f", self.0]).output();
    }
}

#[test]
fn podman_save_and_load_both_formats() {
    if skip_without("podman", "podman_save_and_load_both_formats") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let name = "localhost/warren-images-test:1";
    let _g = PodmanImage(name);
    let _g2 = PodmanImage("localhost/warren-images-test:back");
    run(Command::new("podman")
        .arg("import")
        .arg(busybox_rootfs_tar(t.path()))
        .arg(name));
    let s = Store::open(t.path().join("store")).unwrap();
    for (fmt, file) in [
        ("oci-archive", "p.oci.tar"),
        ("docker-archive", "p.docker.tar"),
    ] {
        let p = t.path().join(file);
        run(Command::new("podman")
            .args(["save", "--format", fmt, "-o"])
            .arg(&p)
            .arg(name));
        let imported = s
            .import_archive(
                &p,
                &ImportOptions {
                    name: Some(format!("from-podman/{fmt}")),
                },
            )
            .unwrap();
        assert_eq!(imported.len(), 1, "{fmt}");
        let layers = s.unpack(&imported[0].name).unwrap();
        assert!(layers[0].path.join("bin/busybox").exists(), "{fmt}");
    }
    // Names come from the archive when none is given.
    let p = t.path().join("p.docker.tar");
    let got = s.import_archive(&p, &ImportOptions::default()).unwrap();
    assert_eq!(got[0].name, name);

    // warren → docker-archive and oci-archive → podman load
    for fmt in [ArchiveFormat::Docker, ArchiveFormat::Oci] {
        s.tag(name, "localhost/warren-images-test:back").unwrap();
        let out = t.path().join("back.tar");
        s.export_archive(&["localhost/warren-images-test:back"], &out, fmt)
            .unwrap();
        let _ = Command::new("podman")
            .args(["rmi", "-f", "localhost/warren-images-test:back"])
            .output();
        let loaded = run(Command::new("podman").arg("load").arg("-i").arg(&out));
        assert!(loaded.contains("Loaded image"), "{fmt:?}: {loaded}");
        let id = run(Command::new("podman")
            .args(["image", "inspect", "--format", "{{.RootFS.Layers}}"])
            .arg(if fmt == ArchiveFormat::Docker {
                "localhost/warren-images-test:back".to_string()
            } else {
                loaded_name(&loaded)
            }));
        assert!(
            id.contains(s.image(name).unwrap().diff_ids[0].as_str()),
            "{fmt:?}: {id}"
        );
    }
}

fn loaded_name(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("Loaded image: "))
        .or_else(|| {
            out.lines()
                .find_map(|l| l.strip_prefix("Loaded image(s): "))
        })
        .unwrap_or("")
        .trim()
        .to_string()
}
