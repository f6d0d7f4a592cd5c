//! End-to-end tests of `warren-bench`: the quick run's results validate against the
//! schema, bad arguments and missing or failing runtimes are reported clearly, and the
//! numbers are plausible (a plain container's CPU ratio is near 1).
//!
//! They run the binary as root with warren-runtime from `$WARREN_RUNTIME` (else the
//! workspace's release build); without root, or without a runtime when `$WARREN_RUNTIME`
//! is unset, the container tests say so and pass. Timings are never asserted, only
//! plausibility ranges.

// Tests may unwrap: a panic there is the failure report.
#![allow(clippy::unwrap_used)]

mod common;
use common::runtime;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use serde_json::Value;
use warren_benches::schema::validate_results;

/// The tests measure; running two at once would disturb both.
static SERIAL: Mutex<()> = Mutex::new(());

fn bench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_warren-bench"))
}

/// The runtime, when the container tests can run here.
fn setup(test: &str) -> Option<PathBuf> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("{test}: skipped, needs root");
        return None;
    }
    let r = runtime();
    if r.is_none() {
        eprintln!(
            "{test}: skipped, no warren-runtime (cargo build --release -p warren-runtime, or \
             set WARREN_RUNTIME)"
        );
    }
    r
}

fn run(args: &[&str], warren: &Path, out: &Path) -> Output {
    let o = bench()
        .args(args)
        .arg("--warren")
        .arg(warren)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn results(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("results.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn suite<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["suites"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no suite {name}"))
}

fn measurements<'a>(s: &'a Value, subject: &str) -> Vec<&'a Value> {
    s["measurements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["subject"] == subject)
        .collect()
}

#[test]
fn quick_run_of_warren_alone_writes_results_that_validate() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(w) = setup("quick_run") else { return };
    let out = tempfile::tempdir().unwrap();
    let t = std::time::Instant::now();
    let o = run(&["--quick"], &w, out.path());
    eprintln!("quick run took {:.1} s", t.elapsed().as_secs_f64());
    assert!(o.status.success(), "{o:?}");
    let r = results(out.path());
    if let Err(errors) = validate_results(&r) {
        panic!("results.json does not validate:\n{}", errors.join("\n"));
    }
    assert_eq!(r["level"], "quick");
    assert_eq!(r["runtimes"].as_array().unwrap().len(), 1);
    let names: Vec<&str> = r["suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "lifecycle",
            "throughput",
            "syscall",
            "fs",
            "network",
            "cpu",
            "memory",
            "gpu"
        ]
    );
    for s in [
        "lifecycle",
        "throughput",
        "syscall",
        "fs",
        "network",
        "cpu",
        "memory",
    ] {
        let s = suite(&r, s);
        assert_eq!(s["status"], "ok", "{s}");
        for m in s["measurements"].as_array().unwrap() {
            assert_eq!(m["status"], "ok", "{m}");
        }
    }
    let gpu = suite(&r, "gpu");
    if gpu["status"] == "skipped" {
        assert!(
            gpu["reason"].as_str().unwrap().contains("NVIDIA GPU"),
            "{gpu}"
        );
    }
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("## Lifecycle latency"), "{md}");
    assert!(md.contains("Landlock ABI"), "{md}");
    for png in ["lifecycle.png", "throughput.png", "overhead.png"] {
        let bytes = std::fs::read(out.path().join(png)).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{png} is not a PNG"
        );
    }
    // The binary prints the files it wrote.
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("results.json") && stdout.contains("report.md"));

    // --render writes the same report again from results.json, measuring nothing.
    let again = out.path().join("again");
    let o = bench()
        .arg("--render")
        .arg(out.path().join("results.json"))
        .arg("--out")
        .arg(&again)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let md2 = std::fs::read_to_string(again.join("report.md")).unwrap();
    assert_eq!(md, md2);
    assert!(again.join("overhead.png").is_file());
}

#[test]
fn render_refuses_results_that_do_not_validate() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("results.json");
    std::fs::write(&bad, r#"{"format": "warren-bench-results", "version": 2}"#).unwrap();
    let o = bench()
        .arg("--render")
        .arg(&bad)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("$.version: expected 1, got 2"), "{e}");
    assert!(e.contains("missing required property \"machine\""), "{e}");
}

#[test]
fn bogus_warren_path_is_a_clear_error() {
    let out = tempfile::tempdir().unwrap();
    let o = run(
        &["--quick"],
        Path::new("/nonexistent/warren-runtime"),
        out.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("--warren /nonexistent/warren-runtime: not found"),
        "{e}"
    );
    assert!(!out.path().join("results.json").exists());
}

#[test]
fn bad_flags_are_clear_errors() {
    let out = tempfile::tempdir().unwrap();
    let o = bench().args(["--quick", "--full"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("--full") && e.contains("cannot be used with"),
        "{e}"
    );
    let o = run(&["--suites", "disk"], Path::new("/bin/true"), out.path());
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("unknown suite \"disk\""), "{e}");
    let o = run(&["--vs", "runc,,crun"], Path::new("/bin/true"), out.path());
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("--vs: empty runtime name"), "{e}");
}

#[test]
fn missing_runtime_is_noted_and_skipped() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(w) = setup("missing_runtime") else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let o = run(
        &["--quick", "--vs", "nosuchruntime", "--suites", "lifecycle"],
        &w,
        out.path(),
    );
    assert!(o.status.success(), "{o:?}");
    let r = results(out.path());
    assert!(validate_results(&r).is_ok());
    let rt = r["runtimes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "nosuchruntime")
        .unwrap();
    assert_eq!(rt["found"], false);
    let notes: Vec<&str> = r["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        notes.contains(&"nosuchruntime: not found, skipped"),
        "{notes:?}"
    );
    assert!(measurements(suite(&r, "lifecycle"), "nosuchruntime").is_empty());
    let md = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(md.contains("nosuchruntime: not found, skipped"));
}

#[test]
fn failing_runtime_is_reported_failed_with_its_error() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(w) = setup("failing_runtime") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("broken-runtime");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"broken-runtime: refusing $* on purpose\" >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.path().join("out");
    let o = run(
        &[
            "--quick",
            "--vs",
            script.to_str().unwrap(),
            "--suites",
            "lifecycle,throughput,syscall,memory",
        ],
        &w,
        &out,
    );
    assert!(o.status.success(), "{o:?}");
    let r = results(&out);
    if let Err(errors) = validate_results(&r) {
        panic!("results.json does not validate:\n{}", errors.join("\n"));
    }
    for s in ["lifecycle", "throughput", "syscall", "memory"] {
        let s = suite(&r, s);
        let broken: Vec<&Value> = s["measurements"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["runtime"] == "broken-runtime")
            .collect();
        assert!(!broken.is_empty(), "{s}");
        for m in broken {
            assert_eq!(m["status"], "failed", "{m}");
            assert!(m["stats"].is_null(), "{m}");
            assert!(m["ratio"].is_null(), "{m}");
            let e = m["error"].as_str().unwrap();
            assert!(e.contains("on purpose"), "{e}");
        }
        // warren-runtime is still measured beside it.
        for m in measurements(s, "warren-runtime") {
            assert_eq!(m["status"], "ok", "{m}");
        }
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("**failed**"), "{md}");
    assert!(md.contains("on purpose"), "{md}");
}

/// A plain container's compute-bound kernel runs at host speed. The machine may be busy
/// with other work, so a ratio outside the range is retried twice before failing.
#[test]
fn plain_container_cpu_ratio_is_plausible() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(w) = setup("cpu_ratio") else { return };
    let mut seen = Vec::new();
    for _ in 0..3 {
        let out = tempfile::tempdir().unwrap();
        let o = run(&["--quick", "--suites", "cpu"], &w, out.path());
        assert!(o.status.success(), "{o:?}");
        let r = results(out.path());
        let m = measurements(suite(&r, "cpu"), "warren-runtime")[0].clone();
        assert_eq!(m["baseline"], "host", "{m}");
        let ratio = m["ratio"].as_f64().unwrap();
        if (0.8..=1.25).contains(&ratio) {
            return;
        }
        seen.push(ratio);
    }
    panic!("CPU ratio of a plain container outside 0.8..=1.25 in three runs: {seen:?}");
}
