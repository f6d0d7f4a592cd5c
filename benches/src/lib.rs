//! Side-by-side container benchmarks: warren-runtime against runc, crun and the bare host
//! on the same machine, reported as medians, p95 and ratios to a baseline.
//!
//! * [`report::run`] is `warren bench`: suites (lifecycle, throughput, syscall, file system,
//!   network, CPU, memory, GPU), then `report.md`, `results.json` (schema
//!   `schema/results.schema.json`, checked by [`schema::validate_results`]) and PNG plots.
//!   The binary `warren-bench` exposes it with the same flags.
//! * [`lifecycle`] and [`bundle`] are the lifecycle A/B harness behind
//!   `warren-lifecycle-bench`, which other issues quote for their targets.
//! * [`images`] is `warren-images-bench` (issue 4): unpacking an image against umoci,
//!   podman and GNU tar, and a container start from an image against the plain bundle.
//! * `benches/*.rs` are criterion micro-benchmarks of the hot paths (spec parse and
//!   validation, seccomp compile cold and cached, CDI resolve and inject, layer unpack).

pub mod bundle;
pub mod config;
pub mod container;
pub mod error;
pub mod images;
pub mod lifecycle;
pub mod machine;
pub mod markdown;
pub mod plot;
pub mod probe;
pub mod report;
pub mod results;
pub mod runtimes;
pub mod schema;
pub mod stats;
pub mod suites;

pub use config::BenchConfig;
pub use error::BenchError;
pub use report::{Report, run};
