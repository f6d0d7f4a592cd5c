//! CDI resolve and apply: `warren_gpu::cdi::Registry` loading a spec directory with
//! eight fake GPU devices (device nodes made with mknod in a temp dir, as root; with
//! explicit type and numbers otherwise), resolving names, and `inject` into the default
//! OCI spec.

// Benchmarks may unwrap: a panic there is the failure report.
#![allow(clippy::unwrap_used, missing_docs)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use oci_spec::runtime::Spec;
use warren_gpu::cdi::{QualifiedName, Registry};
use warren_runtime::verbs::spec::default_spec;

const DEVICES: u32 = 8;

/// A character device node like /dev/nvidiaN (major 195) when mknod is allowed.
fn fake_node(path: &Path, minor: u32) -> bool {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    mknod(
        path,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(195, u64::from(minor)),
    )
    .is_ok()
}

fn spec_yaml(dev: &Path) -> String {
    let mut y = String::from("cdiVersion: 0.6.0\nkind: example.com/gpu\ndevices:\n");
    for i in 0..DEVICES {
        let node = dev.join(format!("nvidia{i}"));
        let explicit = if fake_node(&node, i) {
            String::new()
        } else {
            format!(", type: c, major: 195, minor: {i}")
        };
        let _ = write!(
            y,
            "- name: \"{i}\"\n  containerEdits:\n    deviceNodes:\n    - {{path: /dev/nvidia{i}, \
             hostPath: \"{}\"{explicit}}}\n    env: [GPU_{i}=1]\n",
            node.display()
        );
    }
    let _ = write!(
        y,
        "containerEdits:\n  env: [NVIDIA_VISIBLE_DEVICES=void]\n  deviceNodes:\n  - {{path: \
         /dev/nvidiactl, hostPath: \"{}\", type: c, major: 195, minor: 255}}\n  mounts:\n  - \
         {{hostPath: /usr/lib, containerPath: /usr/lib/x86_64-linux-gnu/nvidia, options: [ro, \
         nosuid, nodev, bind]}}\n",
        dev.join("nvidiactl").display()
    );
    y
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, dev) = (tmp.path().join("cdi"), tmp.path().join("dev"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::write(dir.join("gpu.yaml"), spec_yaml(&dev)).unwrap();
    let spec: Spec = serde_json::from_value(default_spec(false, 0, 0)).unwrap();
    let one: Vec<QualifiedName> = vec!["example.com/gpu=0".parse().unwrap()];
    let all: Vec<QualifiedName> = (0..DEVICES)
        .map(|i| format!("example.com/gpu={i}").parse().unwrap())
        .collect();
    let registry = Registry::load(&[&dir]);
    assert!(registry.errors().is_empty(), "{:?}", registry.errors());
    let mut g = c.benchmark_group("cdi");
    g.bench_function("Registry::load (1 spec, 8 devices)", |b| {
        b.iter(|| Registry::load(&[black_box(&dir)]))
    });
    g.bench_function("resolve 8 devices", |b| {
        b.iter(|| registry.resolve(black_box(&all)).unwrap())
    });
    g.bench_function("inject 1 device", |b| {
        b.iter_batched(
            || spec.clone(),
            |mut s| {
                registry.inject(&mut s, &one).unwrap();
                s
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.bench_function("inject 8 devices", |b| {
        b.iter_batched(
            || spec.clone(),
            |mut s| {
                registry.inject(&mut s, &all).unwrap();
                s
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
