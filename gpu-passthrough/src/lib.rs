//! Device passthrough for warren: a CDI (Container Device Interface) registry with the
//! reference Go library's semantics, device requests from OCI specs, and discovery of
//! NVIDIA (NVML), RDMA, AMD and TPU devices into CDI specs.
//!
//! Every discovery function takes its roots (`sysfs_root`, `dev_root`, `driver_root`,
//! `proc_root`, ld.so.cache path) as parameters; nothing here reads argv or the
//! environment of the calling process.
//!
//! ```no_run
//! use warren_gpu::cdi::{Registry, DEFAULT_SPEC_DIRS};
//! use warren_gpu::requests::requests_from_spec;
//! # fn demo(spec: &mut oci_spec::runtime::Spec) -> Result<(), warren_gpu::Error> {
//! let registry = Registry::load(&DEFAULT_SPEC_DIRS);
//! for bad in registry.errors() {
//!     eprintln!("skipped CDI spec: {bad}");
//! }
//! let requests = requests_from_spec(spec)?;
//! registry.inject(spec, &requests.cdi)?;
//! # Ok(())
//! # }
//! ```

// Tests may unwrap: a panic there is the failure report.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod amd;
pub mod cdi;
mod error;
mod fsutil;
pub mod nvidia;
pub mod rdma;
pub mod requests;
pub mod sysfs;
pub mod tpu;

pub use error::{Error, IoError};
