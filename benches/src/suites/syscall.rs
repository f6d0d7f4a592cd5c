//! Syscall overhead: `getpid(2)` and a 1-byte `write(2)` + `read(2)` through a pipe, on the
//! host, in warren-runtime containers with each built-in profile (its seccomp filter and
//! Landlock ruleset), and with podman's default seccomp profile in every runtime.

use anyhow::Result;

use super::{Config, Ctx, args, collect_configs, interleave, need_probe, profile_for};
use crate::probe::BundleOpts;
use crate::results::Suite;

const NAME: &str = "syscall";
const TITLE: &str = "Syscall overhead";
const METHOD: &str = "wprobe (static C) calls getpid(2) through syscall(2) (no libc cache) \
and write(2)+read(2) of one byte through a pipe in a loop, and prints ns per call (per \
write+read pair). It runs on the host and as the process of busybox containers: \
warren-runtime with no profile, with each built-in profile (annotation \
`warren.dev/profile`: the runtime applies the profile's seccomp filter, Landlock ruleset, \
capabilities and limits), and every runtime with podman's default seccomp profile. \
Configurations take turns (interleaved rounds); the first repetition of each run is \
dropped. Ratio: median over the host's median.";

/// Built-in profiles measured.
pub const PROFILES: [&str; 3] = ["agent", "experiment", "trusted"];

/// The configurations: host; warren-runtime plain and per profile; every runtime with
/// podman's profile (and plain, for the others).
pub fn configs(ctx: &Ctx, suite: &mut Suite, prefix: &str) -> Vec<Config> {
    let w = ctx.warren();
    let mut made = vec![("host".to_owned(), Ok(Config::host()))];
    made.push((
        w.name.clone(),
        Config::container(
            ctx,
            w,
            None,
            &format!("{prefix}-warren"),
            &BundleOpts::default(),
        ),
    ));
    for p in PROFILES {
        let (profile, label) = profile_for(ctx, p, suite);
        made.push((
            format!("{} {label}", w.name),
            Config::container(
                ctx,
                w,
                Some(&label),
                &format!("{prefix}-warren-{p}"),
                &BundleOpts {
                    profile: Some(profile),
                    ..BundleOpts::default()
                },
            ),
        ));
    }
    made.extend(ctx.others_plain(prefix));
    if ctx.podman_profile {
        for rt in &ctx.runtimes {
            made.push((
                format!("{} podman-seccomp", rt.name),
                Config::container(
                    ctx,
                    rt,
                    Some("podman-seccomp"),
                    &format!("{prefix}-{}-podman", rt.name),
                    &BundleOpts {
                        podman_seccomp: true,
                        ..BundleOpts::default()
                    },
                ),
            ));
        }
    } else {
        suite.notes.push(format!(
            "podman's default seccomp profile ({}) is missing: not measured",
            crate::bundle::DEFAULT_PROFILE
        ));
    }
    collect_configs(suite, made)
}

/// Runs the suite.
pub fn run(ctx: &Ctx) -> Result<Suite> {
    let mut suite = Suite::new(NAME, TITLE, METHOD);
    if let Err(s) = need_probe(ctx, &suite) {
        return Ok(*s);
    }
    let configs = configs(ctx, &mut suite, "syscall");
    let s = ctx.sizes;
    let reps = s.reps + 1;
    ctx.say("syscall: getpid");
    let g = "getpid";
    suite.measurements.extend(interleave(
        ctx,
        &configs,
        s.rounds,
        &|_| args(&[&"getpid", &s.getpid_iters, &reps]),
        g,
        "ns/op",
        false,
    ));
    suite.set_baseline(g, &["host"]);
    ctx.say("syscall: write+read");
    let g = "write+read 1 byte (pipe)";
    suite.measurements.extend(interleave(
        ctx,
        &configs,
        s.rounds,
        &|_| args(&[&"rw", &s.rw_iters, &reps]),
        g,
        "ns/op",
        false,
    ));
    suite.set_baseline(g, &["host"]);
    Ok(suite)
}
