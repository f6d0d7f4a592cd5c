//! Image layer unpack: `warren_images::layer::unpack` of an uncompressed layer (a small
//! tree: 64 directories, 1024 files of 4 KiB, 64 symlinks, 8 whiteouts) as an overlay
//! lower directory, and as a plain tarball.

// Benchmarks may unwrap: a panic there is the failure report.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use warren_images::layer::{UnpackMode, unpack};

fn layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let content = vec![0x5au8; 4096];
    let header = |t: tar::EntryType, size: u64, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(t);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h
    };
    for d in 0..64 {
        let mut h = header(tar::EntryType::Directory, 0, 0o755);
        b.append_data(&mut h, format!("usr/lib/d{d}/"), std::io::empty())
            .unwrap();
        for f in 0..16 {
            let mut h = header(tar::EntryType::Regular, content.len() as u64, 0o644);
            b.append_data(&mut h, format!("usr/lib/d{d}/f{f}.so"), &content[..])
                .unwrap();
        }
        let mut h = header(tar::EntryType::Symlink, 0, 0o777);
        b.append_link(&mut h, format!("usr/lib/d{d}/latest.so"), "f0.so")
            .unwrap();
    }
    for w in 0..8 {
        let mut h = header(tar::EntryType::Regular, 0, 0o644);
        b.append_data(
            &mut h,
            format!("usr/lib/d{w}/.wh.gone{w}"),
            std::io::empty(),
        )
        .unwrap();
    }
    b.into_inner().unwrap()
}

fn bench(c: &mut Criterion) {
    let tar = layer();
    let mut g = c.benchmark_group("unpack");
    g.throughput(Throughput::Bytes(tar.len() as u64));
    g.sample_size(20);
    for (name, mode) in [
        ("overlay", UnpackMode::Overlay),
        ("plain", UnpackMode::Plain),
    ] {
        g.bench_function(format!("layer 4 MiB, 1.2k entries ({name})"), |b| {
            b.iter_batched(
                || tempfile::tempdir().unwrap(),
                |dest| {
                    unpack(black_box(&tar[..]), dest.path(), mode).unwrap();
                    dest
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
