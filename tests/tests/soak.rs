//! Soak: 1000 create → start → (wait until stopped) → delete lifecycles, 4 at a time;
//! afterwards no mount, cgroup, state directory or process of theirs may be left, and
//! this test process has as many mounts in its mount namespace and as many open file
//! descriptors as before.
//!
//! The only test in its binary, so the fd count is not disturbed by other tests
//! (`cargo test` runs test binaries one after another; nextest gives every test its own
//! process). The mount namespace is the host's, shared with whatever else runs there
//! (other tests under nextest, other people's builds): a mount that disappeared cannot
//! be one of ours and is only reported; a mount that appeared fails the test unless it
//! goes away within 10 s. Run it alone (see `tests/nextest.toml`) for an exact count.
//! `E2E_SOAK=N` changes the number of lifecycles.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use warren_e2e::leaks::{fd_count, mount_lines};
use warren_e2e::{Bundle, LeakCheck, Result, Runtime, ensure, unique_id, wait_until};

const PARALLEL: usize = 4;

fn lifecycle(rt: &Runtime, bundle: &Bundle) -> Result<()> {
    let id = unique_id("soak");
    let g = rt.guard(&id);
    rt.create(bundle.path(), &id)?.check()?;
    let st = rt.status(&id)?;
    ensure!(
        st.as_deref() == Some("created"),
        "{id} after create: {st:?}"
    );
    rt.start(&id)?.check()?;
    rt.wait_status(&id, "stopped", Duration::from_secs(10))?;
    rt.delete(&id)?.check()?;
    let st = rt.status(&id)?;
    ensure!(st.is_none(), "{id} still has a state after delete: {st:?}");
    g.disarm();
    Ok(())
}

#[test]
fn a_thousand_lifecycles_leave_nothing_behind() {
    let n: usize = std::env::var("E2E_SOAK")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let rt = Runtime::warren().unwrap();
    let mut bundle = Bundle::new().unwrap();
    bundle.set_args(&["/bin/true"]);
    bundle.save().unwrap();
    // Warm up (first use of temp files, thread-locals, lazy statics) before counting.
    lifecycle(&rt, &bundle).unwrap();
    let mounts_before = mount_lines().unwrap();
    let fds_before = fd_count().unwrap();

    let next = AtomicUsize::new(0);
    let errors = Mutex::new(Vec::<String>::new());
    let t = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    if let Err(e) = lifecycle(&rt, &bundle) {
                        errors.lock().unwrap().push(e.to_string());
                    }
                }
            });
        }
    });
    let elapsed = t.elapsed();
    let errors = errors.into_inner().unwrap();
    println!(
        "{n} lifecycles, {PARALLEL} at a time, in {elapsed:?} ({:?} each); {} failed",
        elapsed / n.max(1) as u32,
        errors.len()
    );

    let leaks = LeakCheck::new()
        .id(&format!("-soak-{}", warren_e2e::ids::salt()))
        .path(bundle.path())
        .state_root(rt.root())
        .assert_clean_within(Duration::from_secs(5));

    let fds_after = fd_count().unwrap();
    let before: BTreeSet<String> = mounts_before.into_iter().collect();
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut count_after = 0;
    let settled = wait_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let now: BTreeSet<String> = mount_lines().unwrap_or_default().into_iter().collect();
        count_after = now.len();
        added = now.difference(&before).cloned().collect();
        removed = before.difference(&now).cloned().collect();
        added.is_empty()
    });
    println!(
        "mountinfo entries: {} before, {count_after} after; fds: {fds_before} before, \
         {fds_after} after",
        before.len()
    );
    if !removed.is_empty() {
        println!("mounts removed meanwhile (not ours): {removed:#?}");
    }

    assert!(
        errors.is_empty(),
        "{} of {n} lifecycles failed; first: {}",
        errors.len(),
        errors[0]
    );
    leaks.unwrap();
    assert!(settled, "mounts added and still there: {added:#?}");
    assert_eq!(
        fds_before, fds_after,
        "open fds of the test process changed"
    );
}
