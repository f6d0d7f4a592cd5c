//! CVE-2019-5736: a process in the container that gets hold of the runtime's executable
//! through `/proc/PID/exe` of a runtime process must not be able to overwrite it.
//!
//! Made deterministic, and safe for the real binary: the runtime is copied to a temp path
//! and that copy runs the container. The attacker is `exe_guard/attack.c` (built here
//! with `gcc -static`), run as a startContainer hook — hooks are children of the
//! runtime's container init, so `/proc/$PPID/exe` is the runtime — or, for `exec`, as the
//! workload scanning `/proc` for the runtime process that enters the container. It opens
//! the exe `O_PATH`, keeps the fd in a detached child until no process executes the file
//! any more (until then the kernel may answer ETXTBSY, which protects nothing once the
//! runtime has exited), then reopens it `O_WRONLY` through `/proc/self/fd/N` and writes.
//! The runtime re-executes itself from a read-only mount for create/run/exec, so the
//! reopen must fail with EROFS and the copy's sha256 must not change.
//!
//! The control: the very same attack against an unprotected binary (a busybox copy run
//! from a writable bind mount) gets ETXTBSY while the binary runs, then succeeds and
//! changes its sha256 — so an EROFS from the runtime is the protection at work (the
//! runtime copy lives on a writable file system; only the runtime's read-only view of it
//! can answer EROFS), not an attack that never reached the write.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use sha2::{Digest, Sha256};
use warren_e2e::{Bundle, Invocation, Runtime, unique_id, wait_until};

const MARKER: &str = "warren-runtime-e2e-copy";

fn sha256(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).expect("read binary")))
}

/// The attack helper, compiled once per test into `dir`.
fn build_attack(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/exe_guard/attack.c");
    let bin = dir.join("attack");
    let out = Invocation::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .timeout(Duration::from_secs(120))
        .output()
        .expect("run gcc (needed to build the attack helper)");
    assert!(out.success(), "gcc -static failed: {out}");
    bin
}

/// A copy of the runtime under test at `DIR/warren-runtime-e2e-copy`.
fn runtime_copy(dir: &Path) -> (Runtime, PathBuf) {
    let copy = dir.join(MARKER);
    std::fs::copy(warren_e2e::warren_binary().expect("runtime binary"), &copy)
        .expect("copy runtime");
    (Runtime::new("warren-copy", &copy).expect("runtime"), copy)
}

/// A bundle with the attack helper at /attack and a writable host dir at /e2e. The
/// container gets CAP_SYS_PTRACE: runtimes make their processes non-dumpable, so without
/// it `/proc/PID/exe` of a runtime process cannot even be opened — the strongest attacker
/// is the one to test.
fn attack_bundle(attack: &Path) -> (Bundle, PathBuf) {
    let mut b = Bundle::new().expect("bundle");
    for set in ["bounding", "effective", "permitted"] {
        if let Some(a) = b.config["process"]["capabilities"][set].as_array_mut() {
            a.push(json!("CAP_SYS_PTRACE"));
        }
    }
    let dst = b.rootfs().join("attack");
    std::fs::copy(attack, &dst).expect("copy attack helper into rootfs");
    let e2e = b.path().join("e2e");
    std::fs::create_dir(&e2e).expect("mkdir e2e");
    b.add_mount(
        json!({"destination": "/e2e", "type": "bind", "source": e2e, "options": ["rbind", "rw"]}),
    );
    (b, e2e)
}

/// The attack's record once it has an outcome line (or whatever it has after `wait`).
fn outcome(result: &Path, wait: Duration) -> String {
    let done = |s: &str| {
        s.lines().last().is_some_and(|l| {
            [
                "WROTE",
                "EROFS",
                "ETXTBSY",
                "EPERM",
                "EACCES",
                "errno",
                "REFUSED",
                "NOT CAUGHT",
                "cannot",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
    };
    let mut text = String::new();
    wait_until(wait, Duration::from_millis(50), || {
        text = std::fs::read_to_string(result).unwrap_or_default();
        done(&text)
    });
    println!("attack record:\n{text}");
    text
}

fn start_container_hook(mode: &str) -> serde_json::Value {
    json!({"startContainer": [{"path": "/attack", "args": ["attack", mode, "ppid", MARKER, "/e2e/result"]}]})
}

#[test]
fn create_start_exe_cannot_be_overwritten_from_the_container() {
    let tmp = tempfile::tempdir().unwrap();
    let attack = build_attack(tmp.path());
    let (rt, copy) = runtime_copy(tmp.path());
    let before = sha256(&copy);
    let (mut b, e2e) = attack_bundle(&attack);
    b.config["hooks"] = start_container_hook("wait");
    b.set_args(&["sleep", "60"]);
    b.save().unwrap();
    let id = unique_id("exeguard");
    let _g = rt.guard(&id);
    rt.create(b.path(), &id).unwrap().check().unwrap();
    rt.start(&id).unwrap().check().unwrap();
    // The attacker waits for every runtime process to exit: `create` and `start` have,
    // and the init has exec'd `sleep`.
    let rec = outcome(&e2e.join("result"), Duration::from_secs(40));
    assert!(
        rec.contains("opened exe of pid"),
        "the attack never got the exe:\n{rec}"
    );
    assert_eq!(rec.lines().last(), Some("EROFS"), "attack record:\n{rec}");
    assert_eq!(sha256(&copy), before, "the runtime binary was modified");
}

#[test]
fn foreground_run_exe_cannot_be_overwritten_from_the_container() {
    let tmp = tempfile::tempdir().unwrap();
    let attack = build_attack(tmp.path());
    let (rt, copy) = runtime_copy(tmp.path());
    let before = sha256(&copy);
    let (mut b, e2e) = attack_bundle(&attack);
    // `run` stays attached and keeps executing the binary (ETXTBSY for a plain
    // O_WRONLY); O_TRUNC meets the read-only mount check first.
    b.config["hooks"] = start_container_hook("now");
    b.set_args(&["true"]);
    b.save().unwrap();
    let id = unique_id("exeguard");
    let _g = rt.guard(&id);
    let out = rt.run(b.path(), &id, Duration::from_secs(30)).unwrap();
    let rec = outcome(&e2e.join("result"), Duration::from_secs(5));
    assert!(
        rec.contains("opened exe of pid"),
        "the attack never got the exe:\n{rec}\n{out}"
    );
    assert_eq!(
        rec.lines().last(),
        Some("EROFS"),
        "attack record:\n{rec}\n{out}"
    );
    assert_eq!(sha256(&copy), before, "the runtime binary was modified");
}

#[test]
fn exec_exe_cannot_be_overwritten_from_the_container() {
    let tmp = tempfile::tempdir().unwrap();
    let attack = build_attack(tmp.path());
    let (rt, copy) = runtime_copy(tmp.path());
    let before = sha256(&copy);
    let (mut b, e2e) = attack_bundle(&attack);
    // The workload scans /proc for the runtime process that `exec` puts into the
    // container, in the short time before it execs the command.
    b.set_args(&["/attack", "scan", "-", MARKER, "/e2e/result"]);
    b.save().unwrap();
    let id = unique_id("exeguard");
    let _g = rt.guard(&id);
    rt.create(b.path(), &id).unwrap().check().unwrap();
    rt.start(&id).unwrap().check().unwrap();
    let result = e2e.join("result");
    let mut caught = false;
    for _ in 0..300 {
        let out = rt.cmd(["exec", &id, "/bin/true"]).output().unwrap();
        caught = std::fs::read_to_string(&result)
            .unwrap_or_default()
            .contains("caught");
        if caught {
            break;
        }
        assert!(out.success() || !out.stderr.is_empty(), "{out}");
    }
    assert!(
        caught,
        "the scanner never caught an exec'd runtime process in 300 execs: {}",
        std::fs::read_to_string(&result).unwrap_or_default()
    );
    let rec = outcome(&result, Duration::from_secs(40));
    assert_eq!(rec.lines().last(), Some("EROFS"), "attack record:\n{rec}");
    assert_eq!(sha256(&copy), before, "the runtime binary was modified");
}

/// The control: without protection the same attack overwrites the binary.
#[test]
fn control_the_attack_overwrites_an_unprotected_binary() {
    let tmp = tempfile::tempdir().unwrap();
    let attack = build_attack(tmp.path());
    let rt = Runtime::warren().unwrap();
    let (mut b, e2e) = attack_bundle(&attack);
    // busybox picks its applet from argv[0]: the victim is a busybox copy named `sleep`.
    std::fs::create_dir(e2e.join("victim")).unwrap();
    let victim = e2e.join("victim/sleep");
    std::fs::copy(warren_e2e::bundle::BUSYBOX, &victim).unwrap();
    let before = sha256(&victim);
    b.set_sh("/e2e/victim/sleep 5 & /attack wait $! /victim/ /e2e/result; sleep 60");
    b.save().unwrap();
    let id = unique_id("exectl");
    let _g = rt.guard(&id);
    rt.create(b.path(), &id).unwrap().check().unwrap();
    rt.start(&id).unwrap().check().unwrap();
    let rec = outcome(&e2e.join("result"), Duration::from_secs(40));
    assert!(
        rec.contains("opened exe of pid"),
        "the attack never got the exe:\n{rec}"
    );
    assert!(
        rec.lines().last().is_some_and(|l| l.starts_with("WROTE")),
        "the control attack did not write:\n{rec}"
    );
    assert_ne!(
        sha256(&victim),
        before,
        "the unprotected binary was not modified"
    );
}
