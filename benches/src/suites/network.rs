//! Network: loopback TCP round-trip latency and stream throughput inside the container's
//! own network namespace (loopback up), against the host's loopback.

use anyhow::Result;

use super::{Config, Ctx, args, collect_configs, interleave, need_probe, profile_for};
use crate::probe::BundleOpts;
use crate::results::Suite;

const NAME: &str = "network";
const TITLE: &str = "Network (loopback TCP)";
const METHOD: &str = "wprobe forks a peer and talks to it over 127.0.0.1 in the namespace \
it runs in: 1-byte ping-pong with TCP_NODELAY, both ends pinned to one CPU so that \
cross-CPU wakeups (an IPI, a VM exit on a VM) do not swamp the stack (µs per round trip), and a stream of 64 KiB \
writes to a reading peer (MiB/s). Containers have their own network namespace with only \
loopback up: warren-runtime with no profile and with the `experiment` profile (loopback \
only; `agent` has no network at all), and the other runtimes' default spec. Interleaved \
rounds; ratio: median over the host's median.";

/// Runs the suite.
pub fn run(ctx: &Ctx) -> Result<Suite> {
    let mut suite = Suite::new(NAME, TITLE, METHOD);
    if let Err(s) = need_probe(ctx, &suite) {
        return Ok(*s);
    }
    let w = ctx.warren();
    let (profile, label) = profile_for(ctx, "experiment", &mut suite);
    let mut made = vec![
        ("host".to_owned(), Ok(Config::host())),
        (
            w.name.clone(),
            Config::container(ctx, w, None, "net-warren", &BundleOpts::default()),
        ),
        (
            format!("{} {label}", w.name),
            Config::container(
                ctx,
                w,
                Some(&label),
                "net-warren-experiment",
                &BundleOpts {
                    profile: Some(profile),
                    ..BundleOpts::default()
                },
            ),
        ),
    ];
    made.extend(ctx.others_plain("net"));
    let configs = collect_configs(&mut suite, made);
    let s = ctx.sizes;
    let reps = s.reps + 1;
    ctx.say("network: TCP round trip");
    let g = "TCP round trip, 1 byte";
    suite.measurements.extend(interleave(
        ctx,
        &configs,
        s.rounds,
        &|_| args(&[&"tcprtt", &s.tcp_rtt_iters, &reps]),
        g,
        "µs",
        false,
    ));
    suite.set_baseline(g, &["host"]);
    ctx.say("network: TCP stream");
    let g = format!("TCP stream, {} MiB", s.tcp_mib);
    suite.measurements.extend(interleave(
        ctx,
        &configs,
        s.rounds,
        &|_| args(&[&"tcpbw", &s.tcp_mib, &reps.min(5)]),
        &g,
        "MiB/s",
        true,
    ));
    suite.set_baseline(&g, &["host"]);
    Ok(suite)
}
