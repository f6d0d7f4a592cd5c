//! The harness checks itself: bundles run under runc, hangs are killed at the deadline,
//! and the leak check sees a live container's mounts, cgroups, state and processes (so a
//! clean report elsewhere means something).

use std::time::{Duration, Instant};

use warren_e2e::{Bundle, HarnessError, Invocation, LeakCheck, Runtime, unique_id};

#[test]
fn runtime_binary_is_found() {
    let bin = warren_e2e::warren_binary().unwrap();
    assert!(bin.is_file(), "{}", bin.display());
}

#[test]
fn runc_runs_a_busybox_bundle_and_leaves_nothing() {
    let rt = Runtime::runc().unwrap();
    let mut b = Bundle::new().unwrap();
    b.set_sh("echo hello; id");
    b.save().unwrap();
    let id = unique_id("harness");
    let out = rt.run(b.path(), &id, Duration::from_secs(20)).unwrap();
    assert_eq!(out.stdout, "hello\nuid=0(root) gid=0(root)\n", "{out}");
    LeakCheck::new()
        .id(&id)
        .path(b.path())
        .state_root(rt.root())
        .assert_clean()
        .unwrap();
}

#[test]
fn a_hang_is_killed_at_the_deadline() {
    let t = Instant::now();
    let err = Invocation::new("/bin/sh")
        .args(["-c", "sleep 30 & sleep 30"])
        .timeout(Duration::from_millis(300))
        .output()
        .unwrap_err();
    assert!(matches!(err, HarnessError::Timeout { .. }), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn leak_check_sees_a_live_container() {
    let rt = Runtime::runc().unwrap();
    let mut b = Bundle::new().unwrap();
    b.set_args(&["sleep", "30"]);
    b.save().unwrap();
    let id = unique_id("leakself");
    let guard = rt.guard(&id);
    rt.create(b.path(), &id).unwrap().check().unwrap();
    let check = LeakCheck::new()
        .id(&id)
        .path(b.path())
        .state_root(rt.root());
    let r = check.scan();
    assert!(!r.cgroups.is_empty(), "no cgroup found for {id}:\n{r}");
    assert!(!r.processes.is_empty(), "no process found for {id}:\n{r}");
    assert!(!r.state.is_empty(), "no state dir found for {id}:\n{r}");
    rt.delete_force(&id).unwrap().check().unwrap();
    drop(guard);
    check.assert_clean().unwrap();
}
