//! Config parse and validation: `warren_runtime::spec::parse_spec` + `validate` on the
//! default spec (`warren-runtime spec`, which is runc's), and the same spec carrying
//! podman's default seccomp profile (the size of what podman hands the runtime).

// Benchmarks may unwrap: a panic there is the failure report.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use warren_runtime::spec::{parse_spec, validate};
use warren_runtime::verbs::spec::default_spec;

/// podman's default profile in OCI form (containers-common, runc's default capabilities).
const PODMAN_SECCOMP: &str =
    include_str!("../../sandbox/tests/fixtures/podman-default-seccomp.json");

fn bench(c: &mut Criterion) {
    let plain = serde_json::to_vec(&default_spec(false, 0, 0)).unwrap();
    let mut with_seccomp = default_spec(false, 0, 0);
    with_seccomp["linux"]["seccomp"] = serde_json::from_str(PODMAN_SECCOMP).unwrap();
    let with_seccomp = serde_json::to_vec(&with_seccomp).unwrap();
    let path = Path::new("config.json");
    let mut g = c.benchmark_group("spec");
    g.bench_function("parse+validate default", |b| {
        b.iter(|| {
            let s = parse_spec(path, black_box(&plain)).unwrap();
            validate(&s).unwrap();
            s
        })
    });
    g.bench_function("parse+validate with podman seccomp", |b| {
        b.iter(|| {
            let s = parse_spec(path, black_box(&with_seccomp)).unwrap();
            validate(&s).unwrap();
            s
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
