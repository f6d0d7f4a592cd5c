//! Lifecycle latency: create → start → exit → delete of a busybox `/bin/true` container,
//! plain and with podman's default seccomp profile, and the same in `run` mode, for every
//! runtime in one interleaved loop (`crate::lifecycle::latency`).

use anyhow::Result;

use super::Ctx;
use crate::bundle;
use crate::lifecycle::{self, Mode, Order};
use crate::results::{Measurement, Suite};

const NAME: &str = "lifecycle";
const TITLE: &str = "Lifecycle latency";
const METHOD: &str = "A busybox bundle running /bin/true with a read-only root (the runtime's \
default spec). `create → start → exit → delete`: `create`, `start`, `state` polled until \
stopped, `delete`, timed end to end from the harness. `run`: `run --bundle` in the \
foreground, then `delete`. seccomp: the same bundle with podman's default profile \
(/usr/share/containers/seccomp.json converted to OCI form). The runtimes take turns, one \
lifecycle each (interleaved), after untimed warm-up lifecycles. Ratio: median over the \
baseline's median (crun when measured, else warren-runtime); < 1 is faster.";

/// Runs the suite.
pub fn run(ctx: &Ctx) -> Result<Suite> {
    let mut suite = Suite::new(NAME, TITLE, METHOD);
    let plain = bundle::make(
        &ctx.dir("lifecycle-plain")?,
        &ctx.warren().path,
        &["/bin/true"],
    )?;
    let secc_dir = ctx.dir("lifecycle-seccomp")?;
    let secc = bundle::make(&secc_dir, &ctx.warren().path, &["/bin/true"])?;
    let secc = match bundle::add_default_seccomp(&secc) {
        Ok(()) => Some(secc),
        Err(e) => {
            suite
                .notes
                .push(format!("seccomp lifecycles not measured: {e:#}"));
            None
        }
    };
    let s = ctx.sizes;
    let mut cases = vec![(
        "plain: create → start → exit → delete",
        &plain,
        Mode::CreateStart,
    )];
    if let Some(b) = &secc {
        cases.push((
            "seccomp: create → start → exit → delete",
            b,
            Mode::CreateStart,
        ));
    }
    cases.push(("plain: run", &plain, Mode::Run));
    if let Some(b) = &secc {
        cases.push(("seccomp: run", b, Mode::Run));
    }
    for (group, b, mode) in cases {
        ctx.say(&format!("lifecycle: {group}"));
        let res = lifecycle::latency(
            &ctx.runtimes,
            b,
            mode,
            s.lifecycle_runs,
            s.lifecycle_warmup,
            0,
            Order::Interleaved,
        )?;
        for r in res {
            let mut m = Measurement::new(group, &r.runtime, "ms", false)
                .runtime(&r.runtime)
                .samples(r.samples_ms, r.failures, r.first_error);
            for (op, st) in &r.ops {
                if st.n > 0 {
                    m.extra.insert(format!("{op}_median_ms"), st.median_ms);
                }
            }
            suite.measurements.push(m);
        }
        suite.set_baseline(group, &ctx.runtime_baselines());
    }
    Ok(suite)
}
