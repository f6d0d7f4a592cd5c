//! Side-by-side container benchmarks: warren-runtime against runc and crun on the same
//! machine, in one interleaved run, reported as medians, p95 and ratios.
//!
//! Used by `warren-lifecycle-bench` (this crate's binary) and by `warren bench`.

pub mod bundle;
pub mod lifecycle;
pub mod stats;
