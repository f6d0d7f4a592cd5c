//! Tests of `warren-images-bench`: usage errors, a missing store, image or umoci is a
//! clear error (exit 1, no panic), and one quick run against a one-layer busybox image
//! that the test imports into a store of its own.
//!
//! The run needs root, umoci and warren-runtime (`$WARREN_RUNTIME`, else the workspace's
//! release build); without them it says so and passes. Timings are never asserted.

// Tests may unwrap: a panic there is the failure report.
#![allow(clippy::unwrap_used)]

mod common;
use common::runtime;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_warren-images-bench"))
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn show(o: &Output) -> (i32, String, String) {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    eprintln!("stdout:\n{out}\nstderr:\n{err}");
    (o.status.code().unwrap_or(-1), out, err)
}

/// A store holding `bench/bb`: one layer, busybox with `/bin/true`.
fn busybox_store(dir: &Path) -> PathBuf {
    let root = dir.join("bb-root");
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for t in ["sh", "true", "ls", "cat"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(t)).unwrap();
    }
    let tarball = dir.join("bb.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let store = dir.join("store");
    let s = warren_images::Store::open(&store).unwrap();
    s.import_rootfs(&tarball, "bench/bb").unwrap();
    store
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = show(&bench().output().unwrap());
    assert_eq!(code, 2);
    assert!(err.contains("--image"), "{err}");
    let (code, _, err) = show(
        &bench()
            .args(["--image", "x", "--runs", "0"])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 2);
    assert!(err.contains("--runs"), "{err}");
    let (code, _, err) = show(
        &bench()
            .args(["--image", "x", "--only", "both"])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 2);
    assert!(err.contains("--only"), "{err}");
}

#[test]
fn missing_store_image_and_umoci_are_clear_errors() {
    let t = tempfile::tempdir().unwrap();
    let nostore = t.path().join("nostore");
    let o = bench()
        .arg("--store")
        .arg(&nostore)
        .args(["--image", "python", "--only", "start"])
        .output()
        .unwrap();
    let (code, _, err) = show(&o);
    assert_eq!(code, 1);
    assert!(!err.contains("panicked"), "{err}");
    if !is_root() {
        assert!(err.contains("run as root"), "{err}");
        return;
    }
    if runtime().is_none() {
        eprintln!("skipped the rest: no warren-runtime");
        return;
    }
    let rt = runtime().unwrap();
    let o = bench()
        .arg("--store")
        .arg(&nostore)
        .args(["--image", "python", "--only", "start", "--warren"])
        .arg(&rt)
        .output()
        .unwrap();
    let (code, _, err) = show(&o);
    assert_eq!(code, 1);
    assert!(err.contains("not a warren image store"), "{err}");
    assert!(!nostore.exists(), "a missing store is not created");

    let store = busybox_store(t.path());
    let o = bench()
        .arg("--store")
        .arg(&store)
        .args(["--image", "nosuch", "--only", "start", "--warren"])
        .arg(&rt)
        .output()
        .unwrap();
    let (code, _, err) = show(&o);
    assert_eq!(code, 1);
    assert!(err.contains("\"nosuch\" is not in the store"), "{err}");
    assert!(
        err.contains("bench/bb:latest"),
        "names what is there: {err}"
    );

    // No umoci on PATH: the unpack comparison refuses before measuring anything.
    let empty = t.path().join("emptybin");
    std::fs::create_dir(&empty).unwrap();
    let o = bench()
        .env("PATH", &empty)
        .arg("--store")
        .arg(&store)
        .args(["--image", "bench/bb", "--only", "unpack"])
        .output()
        .unwrap();
    let (code, _, err) = show(&o);
    assert_eq!(code, 1);
    assert!(err.contains("umoci not found"), "{err}");
}

#[test]
fn quick_run_on_a_busybox_image() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let Some(rt) = runtime() else {
        eprintln!("skipped: no warren-runtime (set WARREN_RUNTIME or build it)");
        return;
    };
    if warren_benches::images::which("umoci").is_none() {
        eprintln!("skipped: no umoci");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let store = busybox_store(t.path());
    let work = t.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let json = t.path().join("out.json");
    let o = bench()
        .arg("--store")
        .arg(&store)
        .args([
            "--image", "bench/bb", "--runs", "1", "--starts", "2", "--warmup", "1", "--warren",
        ])
        .arg(&rt)
        .arg("--workdir")
        .arg(&work)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let (code, out, _) = show(&o);
    assert_eq!(code, 0);
    assert!(out.contains("| warren, one directory |"), "{out}");
    assert!(out.contains("| umoci unpack |"), "{out}");
    assert!(out.contains("× plain bundle"), "{out}");
    assert!(out.contains("Target ≤ 1.2×"), "{out}");

    let doc: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(doc["format"], "warren-images-bench");
    let img = &doc["images"][0];
    assert_eq!(img["image"], "bench/bb:latest");
    for r in img["unpack"]["results"].as_array().unwrap() {
        assert_eq!(r["failures"], 0, "{r}");
        assert_eq!(r["samples_s"].as_array().unwrap().len(), 1, "{r}");
    }
    assert!(img["unpack"]["entries"].as_u64().unwrap() >= 8);
    let start = img["start"]["results"].as_array().unwrap();
    assert_eq!(start.len(), 3);
    for r in start {
        assert_eq!(r["failures"], 0, "{r}");
        assert_eq!(r["total"]["n"], 2, "{r}");
    }
    assert_eq!(start[2]["phases"].as_array().unwrap().len(), 4);
    // Nothing left behind: no container rootfs in the store, no scratch in the workdir.
    let s = warren_images::Store::open(&store).unwrap();
    assert!(s.rootfs_ids().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
}
