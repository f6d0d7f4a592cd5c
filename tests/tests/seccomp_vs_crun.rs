//! Differential check of warren's precompiled seccomp filter against crun's libseccomp
//! one (issue 7): the same bundle — podman's default profile
//! (`/usr/share/containers/seccomp.json`, converted for the bundle's capabilities on amd64
//! by `shared/bench/convert_seccomp.py`, as podman does) and a static probe
//! (`tests/c/probe.c`) that attempts ~95 system calls with harmless arguments, each in its
//! own child — runs under crun and under warren-runtime. Every call must give the same
//! answer (success, the same errno, or the same fatal signal).
//!
//! crun 1.8 refuses this hybrid cgroup host, so both runtimes run in a private mount
//! namespace where `/sys/fs/cgroup/unified/cgroup.controllers` reads empty
//! ([`PrivateCgroupView`]).
//!
//! Known, documented difference: warren's precompiled filter is for the native ABI only;
//! system calls of the i386 (`int 0x80`) and x32 ABIs are killed (SIGSYS) instead of being
//! filtered by the profile's rules (README "Not supported"; the annotation
//! `run.warren.seccomp=libseccomp` selects libseccomp's multi-arch filter). The probe checks
//! that this is exactly what differs.
//!
//! The table (`syscall / crun / warren / no seccomp / verdict`) is printed and written to
//! `seccomp-vs-crun-table.md` under cargo's target tmp dir.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use warren_e2e::sandbox::{
    PROBE_SRC, PrivateCgroupView, add_podman_seccomp, crun_binary, install, static_helper,
};
use warren_e2e::{Bundle, LeakCheck, Result, Runtime, ensure, unique_id, warren_binary};

/// Calls whose answer differs by design, with warren's answer.
const KNOWN: &[(&str, &str, &str)] = &[
    (
        "i386_getpid",
        "killed=SYS",
        "warren's filter kills foreign-ABI (i386) syscalls; libseccomp filters them by the profile",
    ),
    (
        "x32_getpid",
        "killed=SYS",
        "warren's filter kills x32 syscalls; crun lets the kernel answer (ENOSYS without x32 support)",
    ),
];

fn probe_bundle(probe: &Path, seccomp: bool) -> Result<Bundle> {
    let mut b = Bundle::new()?;
    install(&b, probe, "probe", 0o755)?;
    b.set_args(&["/probe"]);
    if seccomp {
        add_podman_seccomp(&mut b)?;
    }
    b.save()?;
    Ok(b)
}

/// Runs the probe in `b` under `rt`; returns syscall → result.
fn probe_with(rt: &Runtime, b: &Bundle, tag: &str) -> Result<BTreeMap<String, String>> {
    let id = unique_id(tag);
    let _g = rt.guard(&id);
    let out = rt.run(b.path(), &id, Duration::from_secs(60))?;
    ensure!(
        out.success(),
        "{} failed to run the probe: {out}",
        rt.name()
    );
    let got: BTreeMap<String, String> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    ensure!(
        got.len() >= 60,
        "{}: the probe printed only {} results: {out}",
        rt.name(),
        got.len()
    );
    LeakCheck::new()
        .id(&id)
        .path(b.path())
        .state_root(rt.root())
        .assert_clean()?;
    Ok(got)
}

#[test]
fn podman_default_profile_gives_the_same_answers_as_crun() {
    let probe = static_helper("probe", PROBE_SRC).expect("build the probe");
    let crun = PrivateCgroupView::new("crun", &crun_binary()).expect("crun wrapper");
    let warren = PrivateCgroupView::new("warren", &warren_binary().expect("warren-runtime"))
        .expect("warren wrapper");
    let with = probe_bundle(&probe, true).expect("bundle with podman's profile");
    let without = probe_bundle(&probe, false).expect("bundle without seccomp");

    let c = probe_with(&crun.rt, &with, "scmp-crun").expect("crun");
    let w = probe_with(&warren.rt, &with, "scmp-warren").expect("warren");
    let plain = probe_with(&warren.rt, &without, "scmp-none").expect("warren, no seccomp");

    let mut table =
        String::from("| syscall | crun | warren | no seccomp | verdict |\n|---|---|---|---|---|\n");
    let mut unexpected = Vec::new();
    let (mut same, mut filtered) = (0, 0);
    for (name, cr) in &c {
        let wr = w.get(name).map_or("(missing)", String::as_str);
        let pl = plain.get(name).map_or("-", String::as_str);
        let known = KNOWN.iter().find(|k| k.0 == name);
        let verdict = match known {
            _ if wr == cr => {
                same += 1;
                if pl != cr {
                    filtered += 1;
                }
                "same".to_owned()
            }
            Some((_, want, why)) if wr == *want => format!("documented: {why}"),
            _ => {
                unexpected.push(format!("{name}: crun {cr}, warren {wr}"));
                "**DIFFERS**".to_owned()
            }
        };
        let _ = writeln!(table, "| `{name}` | {cr} | {wr} | {pl} | {verdict} |");
    }
    for name in w.keys().filter(|n| !c.contains_key(*n)) {
        unexpected.push(format!("{name}: only warren answered"));
    }
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join("seccomp-vs-crun-table.md");
    let _ = std::fs::write(&file, &table);
    println!(
        "{table}\n{} syscalls: {same} the same ({filtered} changed by the profile), {} documented \
         differences, {} unexpected (written to {})",
        c.len(),
        KNOWN.len(),
        unexpected.len(),
        file.display()
    );
    assert!(
        unexpected.is_empty(),
        "warren and crun disagree:\n  {}",
        unexpected.join("\n  ")
    );
    assert!(
        filtered >= 20,
        "only {filtered} calls differ from the unfiltered run: is the profile applied?"
    );
}
