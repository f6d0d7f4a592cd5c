//! The foreground `run` must never lose the container's exit: 1000 runs (8 at a time)
//! of `/bin/true` and `sh -c 'exit 7'`, each with a 20 s deadline; no run may hang and
//! every exit status must be the container's. youki 0.7.0 hangs on about 1 run in 300
//! on this kind of host (its main process can miss the init's exit).
//!
//! Self-contained: its containers have ids of their own and a private `--root`, so it is
//! safe next to other tests; `E2E_RUNS=N` changes the number of runs.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use warren_e2e::{Bundle, HarnessError, LeakCheck, Runtime, unique_id};

const THREADS: usize = 8;
const DEADLINE: Duration = Duration::from_secs(20);

enum Failure {
    Hang {
        n: usize,
        id: String,
        err: String,
    },
    WrongExit {
        n: usize,
        id: String,
        want: i32,
        got: String,
    },
    Harness {
        n: usize,
        id: String,
        err: String,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Hang { n, id, err } => write!(f, "run {n} ({id}) hung: {err}"),
            Failure::WrongExit { n, id, want, got } => {
                write!(f, "run {n} ({id}) should exit {want}: {got}")
            }
            Failure::Harness { n, id, err } => write!(f, "run {n} ({id}): {err}"),
        }
    }
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[test]
fn foreground_run_never_loses_the_exit_status() {
    let runs: usize = std::env::var("E2E_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let rt = Runtime::warren().unwrap();
    let mut ok_bundle = Bundle::new().unwrap();
    ok_bundle.set_args(&["/bin/true"]);
    ok_bundle.save().unwrap();
    let mut seven_bundle = Bundle::new().unwrap();
    seven_bundle.set_sh("exit 7");
    seven_bundle.save().unwrap();

    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::<Failure>::new());
    let latencies = Mutex::new(Vec::<Duration>::with_capacity(runs));
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= runs {
                        break;
                    }
                    // One run in ten exits 7.
                    let (bundle, want) = if n % 10 == 9 {
                        (&seven_bundle, 7)
                    } else {
                        (&ok_bundle, 0)
                    };
                    let id = unique_id("runexit");
                    let t = Instant::now();
                    let res = rt.run(bundle.path(), &id, DEADLINE);
                    let failure = match res {
                        Ok(out) if out.exit_code() == want => None,
                        Ok(out) => Some(Failure::WrongExit {
                            n,
                            id: id.clone(),
                            want,
                            got: out.to_string(),
                        }),
                        Err(e @ HarnessError::Timeout { .. }) => Some(Failure::Hang {
                            n,
                            id: id.clone(),
                            err: e.to_string(),
                        }),
                        Err(e) => Some(Failure::Harness {
                            n,
                            id: id.clone(),
                            err: e.to_string(),
                        }),
                    };
                    latencies.lock().unwrap().push(t.elapsed());
                    if let Some(f) = failure {
                        // Whatever the run left must not pile up.
                        let _ = rt.delete_force(&id);
                        failures.lock().unwrap().push(f);
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let failures = failures.into_inner().unwrap();
    let mut lat = latencies.into_inner().unwrap();
    lat.sort();
    let pct = |p: usize| lat.get(lat.len().saturating_sub(1) * p / 100).copied();
    let hangs = failures
        .iter()
        .filter(|f| matches!(f, Failure::Hang { .. }))
        .count();
    println!(
        "{runs} runs, {THREADS} at a time, in {elapsed:?}: {hangs} hangs, {} other failures; \
         latency p50 {:?} p99 {:?} max {:?}",
        failures.len() - hangs,
        pct(50),
        pct(99),
        lat.last()
    );
    for f in failures.iter().take(10) {
        println!("{f}");
    }
    let leaks = LeakCheck::new()
        .id(&format!("-runexit-{}", warren_e2e::ids::salt()))
        .path(ok_bundle.path())
        .path(seven_bundle.path())
        .state_root(rt.root())
        .assert_clean_within(Duration::from_secs(5));
    assert!(
        failures.is_empty(),
        "{hangs} of {runs} runs hung and {} had a wrong exit status; first: {:?}",
        failures.len() - hangs,
        failures.first()
    );
    leaks.unwrap();
}
