//! CPU: a compute-bound kernel in a container against the same on the host; the ratio
//! should be about 1.0 (a container adds nothing to user-space arithmetic).

use anyhow::Result;

use super::{Config, Ctx, args, collect_configs, interleave, need_probe};
use crate::probe::BundleOpts;
use crate::results::Suite;

const NAME: &str = "cpu";
const TITLE: &str = "CPU";
const METHOD: &str = "wprobe multiplies 64×64 double matrices (scalar code, L1-resident) \
and prints ms per batch. Host, warren-runtime with no profile, with the `agent` profile \
(cgroup CPU quota of 2 CPUs, seccomp, Landlock), and the other runtimes' default spec. At \
least six interleaved rounds of three timed batches, so load from elsewhere on the machine \
hits all alike. \
Ratio: median over the host's median (≈ 1.0 expected).";

/// The group name of the CPU kernel.
pub const GROUP: &str = "matrix multiply";

/// Runs the suite.
pub fn run(ctx: &Ctx) -> Result<Suite> {
    let mut suite = Suite::new(NAME, TITLE, METHOD);
    if let Err(s) = need_probe(ctx, &suite) {
        return Ok(*s);
    }
    let w = ctx.warren();
    let mut made = vec![
        ("host".to_owned(), Ok(Config::host())),
        (
            w.name.clone(),
            Config::container(ctx, w, None, "cpu-warren", &BundleOpts::default()),
        ),
        (
            format!("{} agent", w.name),
            Config::container(
                ctx,
                w,
                Some("agent"),
                "cpu-warren-agent",
                &BundleOpts {
                    profile: Some("agent".into()),
                    ..BundleOpts::default()
                },
            ),
        ),
    ];
    made.extend(ctx.others_plain("cpu"));
    let configs = collect_configs(&mut suite, made);
    let s = ctx.sizes;
    ctx.say("cpu: matrix multiply");
    suite.measurements.extend(interleave(
        ctx,
        &configs,
        (2 * s.rounds).max(6),
        &|_| args(&[&"cpu", &s.cpu_iters, &4]),
        GROUP,
        "ms",
        false,
    ));
    suite.set_baseline(GROUP, &["host"]);
    Ok(suite)
}
