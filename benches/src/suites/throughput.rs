//! Throughput: containers per second (`run` of /bin/true, then `delete`) with 1, 4 and 8
//! started in parallel, per runtime (`crate::lifecycle::throughput`).

use anyhow::Result;

use super::Ctx;
use crate::bundle;
use crate::lifecycle;
use crate::results::{Measurement, Suite};

const NAME: &str = "throughput";
const TITLE: &str = "Throughput";
const METHOD: &str = "N containers of the plain /bin/true bundle, each `run` in the \
foreground then deleted, by 1, 4 or 8 workers that take the next container as soon as \
theirs is gone; containers/s = successful containers / wall time. Each trial runs every \
runtime in turn (starting with a different one each time); trials are repeated and their \
rates summarised. Ratio: rate over the \
baseline's rate (crun when measured, else warren-runtime); > 1 is faster.";

/// Parallelism levels measured.
pub const PARALLEL: [usize; 3] = [1, 4, 8];

/// Runs the suite.
pub fn run(ctx: &Ctx) -> Result<Suite> {
    let mut suite = Suite::new(NAME, TITLE, METHOD);
    let plain = bundle::make(&ctx.dir("throughput")?, &ctx.warren().path, &["/bin/true"])?;
    let s = ctx.sizes;
    let n = ctx.runtimes.len();
    let mut rates: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); n]; PARALLEL.len()];
    let mut fails = vec![vec![0usize; n]; PARALLEL.len()];
    let mut errors: Vec<Vec<Option<String>>> = vec![vec![None; n]; PARALLEL.len()];
    for trial in 0..s.throughput_trials.max(1) {
        for (pi, &p) in PARALLEL.iter().enumerate() {
            ctx.say(&format!(
                "throughput: {} containers, {p} in parallel (trial {})",
                s.throughput_containers,
                trial + 1
            ));
            // Each trial starts with another runtime, so that none always runs first.
            let mut order: Vec<usize> = (0..n).collect();
            order.rotate_left((trial + pi) % n.max(1));
            let rts: Vec<_> = order.iter().map(|&k| ctx.runtimes[k].clone()).collect();
            let res = lifecycle::throughput(&rts, &plain, s.throughput_containers, p, 0)?;
            for (&k, r) in order.iter().zip(res) {
                fails[pi][k] += r.failures;
                if errors[pi][k].is_none() {
                    errors[pi][k] = r.first_error;
                }
                let ok = r.containers.saturating_sub(r.failures);
                if ok > 0 && r.seconds > 0.0 {
                    rates[pi][k].push(ok as f64 / r.seconds);
                }
            }
        }
    }
    for (pi, &p) in PARALLEL.iter().enumerate() {
        let group = format!("{p} in parallel");
        for (k, rt) in ctx.runtimes.iter().enumerate() {
            suite.measurements.push(
                Measurement::new(&group, &rt.name, "containers/s", true)
                    .runtime(&rt.name)
                    .samples(
                        std::mem::take(&mut rates[pi][k]),
                        fails[pi][k],
                        errors[pi][k].take(),
                    ),
            );
        }
        suite.set_baseline(&group, &ctx.runtime_baselines());
    }
    Ok(suite)
}
