//! Seccomp profile compile, cold and cached: `compile_profile` of each built-in profile,
//! `compile_oci` of podman's default profile, and the same through `FilterCache` once the
//! entry exists (what a container start pays).

// Benchmarks may unwrap: a panic there is the failure report.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use oci_spec::runtime::LinuxSeccomp;
use warren_sandbox::profile::load_builtin;
use warren_sandbox::seccomp::{FilterCache, compile_oci, compile_profile, native_arch};

/// podman's default profile in OCI form (containers-common, runc's default capabilities).
const PODMAN_SECCOMP: &str =
    include_str!("../../sandbox/tests/fixtures/podman-default-seccomp.json");

fn bench(c: &mut Criterion) {
    let arch = native_arch().unwrap();
    let podman: LinuxSeccomp = serde_json::from_str(PODMAN_SECCOMP).unwrap();
    // The cache refuses directories that are not root-owned; as another user the cached
    // benchmarks are skipped.
    let dir = tempfile::tempdir().unwrap();
    let cache = FilterCache::open(&dir.path().join("cache")).ok();
    let mut g = c.benchmark_group("seccomp");
    for name in ["agent", "experiment", "trusted"] {
        let p = load_builtin(name).unwrap();
        g.bench_function(format!("compile_profile {name} (cold)"), |b| {
            b.iter(|| compile_profile(black_box(&p), arch).unwrap())
        });
        if let Some(cache) = &cache {
            cache.get_or_compile_profile(&p, arch).unwrap();
            g.bench_function(format!("get_or_compile_profile {name} (cached)"), |b| {
                b.iter(|| cache.get_or_compile_profile(black_box(&p), arch).unwrap())
            });
        }
    }
    g.bench_function("compile_oci podman default (cold)", |b| {
        b.iter(|| compile_oci(black_box(&podman), arch).unwrap())
    });
    if let Some(cache) = &cache {
        cache.get_or_compile_oci(&podman, arch).unwrap();
        g.bench_function("get_or_compile_oci podman default (cached)", |b| {
            b.iter(|| cache.get_or_compile_oci(black_box(&podman), arch).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
